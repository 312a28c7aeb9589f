//! The sandbox helper: a freshly exec'd, single-threaded process (`mcp-bridge __sandbox`)
//! that reads a [`Request`] from stdin, confines itself (rlimits, no-new-privs, Landlock),
//! then executes the plan with `std::process::Command` — pipes, `&&`/`||`, output caps and
//! the timeout — and prints one JSON [`Outcome`] on stdout.
//!
//! Confinement happens in this separate process because Landlock and rlimits apply to the
//! calling process and its descendants; the bridge itself must stay unrestricted.
//!
//! `restrict` lowers the rlimits and applies Landlock; `execute` then runs the plan's
//! steps and pipelines and captures their output.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::exec::{Error, Outcome, Plan, RunLimits};

mod execute;
mod restrict;

use execute::execute;
use restrict::{apply_landlock, apply_rlimits};

/// Largest request accepted on stdin.
const MAX_REQUEST_BYTES: u64 = 8 * 1024 * 1024;

/// What the runner sends to the helper.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) plan: Plan,
    pub(crate) limits: RunLimits,
    /// Canonical workspace root.
    pub(crate) workspace: PathBuf,
    /// Private temporary directory inside the workspace (also `TMPDIR`).
    pub(crate) tmp_dir: PathBuf,
    /// Canonical paths never granted, in any mode: the bridge's own state.
    #[serde(default)]
    pub(crate) hidden: Vec<PathBuf>,
}

/// Entry point of the hidden `__sandbox` subcommand. Prints exactly one JSON [`Outcome`] on
/// stdout and exits 0, or prints a diagnostic on stderr and exits 2 if it could not run the
/// plan at all. Call it before starting any thread, since Landlock confines the calling
/// thread and its future children only.
pub fn sandbox_child_main() -> ExitCode {
    match child_main() {
        Ok(outcome) => match serde_json::to_string(&outcome) {
            Ok(json) => {
                let mut out = io::stdout().lock();
                if writeln!(out, "{json}").and_then(|()| out.flush()).is_ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                }
            }
            Err(e) => {
                eprintln!("mcp-bridge sandbox: cannot encode outcome: {e}");
                ExitCode::from(2)
            }
        },
        Err(e) => {
            eprintln!("mcp-bridge sandbox: {e}");
            ExitCode::from(2)
        }
    }
}

fn child_main() -> Result<Outcome, Error> {
    let mut raw = String::new();
    io::stdin()
        .lock()
        .take(MAX_REQUEST_BYTES)
        .read_to_string(&mut raw)?;
    let req: Request = serde_json::from_str(&raw)?;
    let cwd = std::env::current_dir()?;
    if !cwd.starts_with(&req.workspace) {
        return Err(Error::CwdOutsideWorkspace {
            cwd,
            workspace: req.workspace,
        });
    }
    apply_rlimits(&req.limits)?;
    rustix::thread::set_no_new_privs(true).map_err(io::Error::from)?;
    let sandbox = apply_landlock(&req);
    Ok(execute(&req, cwd, sandbox))
}
