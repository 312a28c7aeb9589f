//! The runner: confines the working directory, re-validates the plan, and hands it to a
//! freshly exec'd sandbox helper with a cleared environment. Blocking; the bridge calls it
//! from `spawn_blocking`.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::process::{Pid, Signal};

use crate::exec::confine;
use crate::exec::sandbox::Request;
use crate::exec::{Error, Outcome, Plan, RunLimits, render_plan, validate};

/// The only `PATH` the sandboxed commands see.
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Directory (relative to the workspace) holding per-run private temp dirs.
pub const TMP_SUBDIR: &str = ".mcp-bridge/tmp";
/// Extra time the helper gets beyond the plan's timeout before it is killed.
const HELPER_GRACE: Duration = Duration::from_secs(5);
/// Largest helper stdout (the JSON outcome) accepted.
const MAX_HELPER_STDOUT: usize = 16 * 1024 * 1024;

/// Runs an approved plan once, in `cwd` (which must resolve inside `workspace`), by
/// spawning `sandbox_exe __sandbox` and waiting for its [`Outcome`].
///
/// The plan is re-validated in its own mode first, so a hand-built or altered plan cannot
/// slip past the validator. The helper gets a cleared environment (`PATH`, `HOME` =
/// workspace, `LANG=C.UTF-8`, `TMPDIR` = a private dir under [`TMP_SUBDIR`] removed after
/// the run). If the helper outlives `limits.timeout` plus a grace period its whole process
/// group is killed and [`Error::SandboxHung`] is returned.
pub fn run(
    plan: &Plan,
    workspace: &Path,
    cwd: &Path,
    limits: &RunLimits,
    sandbox_exe: &Path,
) -> Result<Outcome, Error> {
    run_hiding(plan, workspace, cwd, limits, sandbox_exe, &[])
}

/// [`run`], keeping the bridge's state files (`state_files`: the database and its key file)
/// out of the sandbox's reach in every mode: their directory (or, when it contains the
/// workspace, every `NAME*` file beside them) is left out of the Landlock read grants.
/// Refuses to run ([`Error::StateInsideWorkspace`]) when state lives inside the workspace.
pub fn run_hiding(
    plan: &Plan,
    workspace: &Path,
    cwd: &Path,
    limits: &RunLimits,
    sandbox_exe: &Path,
    state_files: &[std::path::PathBuf],
) -> Result<Outcome, Error> {
    let ws = workspace.canonicalize().map_err(|source| Error::Workspace {
        path: workspace.to_owned(),
        source,
    })?;
    if !ws.is_dir() {
        return Err(Error::Workspace {
            path: workspace.to_owned(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let joined = if cwd.is_absolute() {
        cwd.to_owned()
    } else {
        ws.join(cwd)
    };
    let cwd = joined.canonicalize().map_err(|_| Error::CwdOutsideWorkspace {
        cwd: joined.clone(),
        workspace: ws.clone(),
    })?;
    if !cwd.starts_with(&ws) || !cwd.is_dir() {
        return Err(Error::CwdOutsideWorkspace { cwd, workspace: ws });
    }

    let again = validate(&render_plan(plan), plan.mode);
    if again.plan.as_ref() != Some(plan) {
        return Err(Error::PlanRejected(if again.allowed {
            "the plan differs from what its rendering validates to".to_owned()
        } else {
            again.reason
        }));
    }

    let hidden = confine::hidden_paths(&ws, state_files)?;

    let tmp_root = ws.join(TMP_SUBDIR);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp_dir = tmp_root.join(format!("run-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&tmp_dir)?;
    let result = spawn_helper(plan, &ws, &cwd, &tmp_dir, &hidden, limits, sandbox_exe);
    let _ = std::fs::remove_dir_all(&tmp_dir);
    // Leave no empty scaffolding behind (fails harmlessly if something else lives there).
    let _ = std::fs::remove_dir(&tmp_root);
    if let Some(parent) = tmp_root.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    result
}

fn reader<R: Read + Send + 'static>(mut r: R, cap: usize) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(kept);
    });
    rx
}

fn spawn_helper(
    plan: &Plan,
    ws: &Path,
    cwd: &Path,
    tmp_dir: &Path,
    hidden: &[std::path::PathBuf],
    limits: &RunLimits,
    sandbox_exe: &Path,
) -> Result<Outcome, Error> {
    let request = Request {
        plan: plan.clone(),
        limits: limits.clone(),
        workspace: ws.to_owned(),
        tmp_dir: tmp_dir.to_owned(),
        hidden: hidden.to_vec(),
    };
    let payload = serde_json::to_vec(&request)?;
    let mut child = Command::new(sandbox_exe)
        .arg("__sandbox")
        .env_clear()
        .env("PATH", SANDBOX_PATH)
        .env("HOME", ws)
        .env("LANG", "C.UTF-8")
        .env("TMPDIR", tmp_dir)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let stdout = child.stdout.take().map(|s| reader(s, MAX_HELPER_STDOUT));
    let stderr = child.stderr.take().map(|s| reader(s, 64 * 1024));
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that died early closes the pipe; its stderr explains why.
        let _ = stdin.write_all(&payload);
    }

    let budget = limits.timeout.saturating_add(HELPER_GRACE);
    let deadline = Instant::now() + budget;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            if let Some(pid) = Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::SandboxHung(budget));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| {
        rx.and_then(|rx| rx.recv_timeout(Duration::from_secs(2)).ok())
            .unwrap_or_default()
    };
    let out = collect(stdout);
    let err = String::from_utf8_lossy(&collect(stderr)).into_owned();
    if !status.success() {
        return Err(Error::SandboxFailed {
            status: status.to_string(),
            stderr: err,
        });
    }
    serde_json::from_slice::<Outcome>(&out).map_err(|e| Error::SandboxFailed {
        status: status.to_string(),
        stderr: format!("invalid outcome ({e}); helper stderr: {err}"),
    })
}
