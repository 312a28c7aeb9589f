//! Which programs and arguments each [`Mode`] accepts.
//!
//! Judging works on literal `argv` vectors produced by `parse`, so quoting tricks are
//! already gone. Order of checks for every command, in every mode:
//!
//! 1. credentials: no argument may name a private key or credential file;
//! 2. catastrophic commands (privilege escalation, disk formatting, recursive deletes of
//!    `/`, home or a parent directory, power-off, firewall flushes, ...);
//! 3. wrappers (`env`, `timeout`, `nice`, `xargs`, ...) are unwrapped and the inner command
//!    is judged recursively;
//! 4. safe/restricted: the command must be on the mode's allow list and pass its argument
//!    checks; yolo: shells (`sh -c`) are re-validated, inline interpreter code is scanned,
//!    and unknown programs are scanned for embedded catastrophic commands.
//!
//! One module per concern, each with its rules (and its tests, where it has unit tests):
//! - this module: [`Ctx`], the order of checks ([`judge`]) and what marks a refusal as
//!   catastrophic;
//! - `args`: the argument vocabulary (flags, positionals); `paths`: credentials, protected
//!   files and trees, confinement; `env`: environment assignments;
//! - `catastrophic`: the list refused in every mode; `wrappers`: `env`, `timeout`, `xargs`,
//!   ... and the command they wrap; `interpreters`: shells and language interpreters;
//!   `yolo`: yolo mode past the catastrophic list;
//! - `programs`: the safe/restricted allow list (a registry from program name to judge)
//!   and one module per program family (`git`, `find`, `sed`, `awk`, `cargo`, `npm`, `go`,
//!   `make` and `pytest`, remote package sources).
//!
//! To teach the validator a new program, add its family module under `programs/` and its
//! name to the registry in `programs/mod.rs` (and, if some use of it is catastrophic in
//! every mode, to `catastrophic`).
//!
//! `validate` walks the parse and calls down into [`judge`]; nothing here imports it.

mod args;
mod catastrophic;
mod env;
mod interpreters;
mod paths;
mod programs;
mod wrappers;
mod yolo;

pub(crate) use args::basename;
pub(crate) use env::judge_env;
pub(crate) use interpreters::reads_program_from_stdin;
pub(crate) use paths::{confined, protected_write, secret_in_arg};
pub(crate) use wrappers::effective_argv;

use catastrophic::catastrophic;
use programs::allowlisted;
use wrappers::{wrapper, wrapper_spec};
use yolo::yolo;

use crate::exec::parse::{Refusal, show};
use crate::exec::{Mode, Step};

/// Deepest wrapper/`sh -c` nesting judged before refusing.
const MAX_DEPTH: usize = 8;

/// Mutable state while judging one plan.
pub(crate) struct Ctx {
    pub(crate) mode: Mode,
    pub(crate) depth: usize,
    /// Some command in the plan needs the network (restricted mode).
    pub(crate) network: bool,
    /// The parse walker (`validate::judge_steps`), handed in so that a judge can
    /// re-validate a string another program hands to a shell (`sh -c`, `flock -c`) without
    /// importing the walker: `validate` calls down into the judges, never the reverse.
    pub(crate) walk: Walk,
}

/// Judges every command of parsed steps; see [`Ctx::walk`].
pub(crate) type Walk = fn(&[Step], &mut Ctx) -> Result<(), Refusal>;

/// A refusal that is catastrophic in every mode (used to decide which refusals found in
/// embedded strings of unknown yolo commands are propagated).
fn fatal(msg: impl Into<String>) -> Refusal {
    Refusal::new(format!("{} (catastrophic; refused in every mode)", msg.into()))
}

pub(crate) fn is_fatal(r: &Refusal) -> bool {
    r.0.contains("(catastrophic; refused in every mode)")
}

/// Judges one command's argv. Recurses through wrappers and, in yolo mode, `sh -c`.
pub(crate) fn judge(argv: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    if ctx.depth > MAX_DEPTH {
        return Err(Refusal::new("commands are wrapped too deeply to judge"));
    }
    let Some(arg0) = argv.first() else {
        return Err(Refusal::new("a wrapper has no command to run"));
    };
    let args = &argv[1..];
    let name = basename(arg0);
    if name.is_empty() {
        return Err(Refusal::new(format!(
            "\"{}\" does not name a program",
            show(arg0)
        )));
    }
    if arg0.contains('/') && ctx.mode != Mode::Yolo {
        return Err(Refusal::new(format!(
            "\"{}\" names a program by path; {} mode only runs bare command names from its allow list (found on the fixed PATH)",
            show(arg0),
            ctx.mode
        )));
    }
    for a in argv {
        if let Some(what) = secret_in_arg(a) {
            return Err(fatal(format!(
                "\"{}\" refers to {what}; credentials must not be read or sent anywhere",
                show(a)
            )));
        }
    }
    catastrophic(name, args, ctx)?;
    if let Some(spec) = wrapper_spec(name) {
        return wrapper(name, args, &spec, ctx);
    }
    match ctx.mode {
        Mode::Safe | Mode::Restricted => match allowlisted(name, args, ctx) {
            Some(result) => result,
            None => {
                let hint = if ctx.mode == Mode::Safe
                    && allowlisted(
                        name,
                        args,
                        &mut Ctx {
                            mode: Mode::Restricted,
                            depth: ctx.depth,
                            network: false,
                            walk: ctx.walk,
                        },
                    )
                    .is_some()
                {
                    " (restricted mode allows it)"
                } else {
                    ""
                };
                Err(Refusal::new(format!(
                    "\"{}\" is not on the {} allow list{hint}",
                    show(name),
                    ctx.mode
                )))
            }
        },
        Mode::Yolo => yolo(name, args, ctx),
    }
}
