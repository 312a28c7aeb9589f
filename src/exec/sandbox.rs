//! The sandbox helper: a freshly exec'd, single-threaded process (`mcp-bridge __sandbox`)
//! that reads a [`Request`] from stdin, confines itself (rlimits, no-new-privs, Landlock),
//! then executes the plan with `std::process::Command` — pipes, `&&`/`||`, output caps and
//! the timeout — and prints one JSON [`Outcome`] on stdout.
//!
//! Confinement happens in this separate process because Landlock and rlimits apply to the
//! calling process and its descendants; the bridge itself must stay unrestricted.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use landlock::{
    ABI, Access, AccessFs, AccessNet, LandlockStatus, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use serde::{Deserialize, Serialize};

use crate::exec::{Connector, Error, Input, Mode, Outcome, Output, Pipeline, Plan, RunLimits, SandboxStatus};

/// The Landlock ABI this code was written and tested against; newer kernels are used at
/// this level, older ones best-effort.
const TARGET_ABI: ABI = ABI::V6;
/// Largest request accepted on stdin.
const MAX_REQUEST_BYTES: u64 = 8 * 1024 * 1024;
/// How often running children are polled.
const POLL: Duration = Duration::from_millis(10);

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

/// The `/proc` and `/dev` entries granted for reading in every mode. `/proc` is never
/// granted as a whole: on the machine this was written on (root, kernel 6.18, Landlock ABI
/// 7) a sandboxed process could read `/proc/PID/environ` of its unsandboxed ancestors when
/// `/proc` was readable, so other processes' entries must stay outside every grant. A
/// child's own `/proc/self` is a directory created after the rules, so it is not granted
/// either; programs that need it (rare: `ps`, sanitizers) fail in the sandbox.
const PROC_AND_DEV_READS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/version",
    "/proc/loadavg",
    "/proc/uptime",
    "/proc/stat",
    "/proc/filesystems",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// What the sandbox may read: in safe and restricted modes the validator's system read
/// set plus the workspace; in yolo mode the whole filesystem except `/proc` and `/dev`
/// (other processes' environments, raw disks). Both then get [`PROC_AND_DEV_READS`], and
/// the bridge's state (`Request::hidden`) is carved out of every grant.
fn read_roots(req: &Request) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let extra = PROC_AND_DEV_READS.iter().map(PathBuf::from);
    if req.plan.mode == Mode::Yolo {
        let mut hidden = req.hidden.clone();
        hidden.extend([PathBuf::from("/proc"), PathBuf::from("/dev")]);
        let mut roots = vec![PathBuf::from("/")];
        roots.extend(extra);
        return (roots, hidden);
    }
    let mut roots: Vec<PathBuf> = crate::exec::reads::SYSTEM_READS
        .iter()
        .filter(|p| !p.starts_with("/dev/") && !p.starts_with("/proc/"))
        .map(PathBuf::from)
        .collect();
    roots.extend(extra);
    roots.push(req.workspace.clone());
    (roots, req.hidden.clone())
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

/// Lowers one limit (never above the current hard limit, which would fail).
fn lower(resource: rlimit::Resource, value: u64) -> io::Result<()> {
    let (_, hard) = rlimit::getrlimit(resource)?;
    let v = value.min(hard);
    rlimit::setrlimit(resource, v, v)
}

fn apply_rlimits(limits: &RunLimits) -> io::Result<()> {
    use rlimit::Resource;
    lower(Resource::CORE, 0)?;
    lower(Resource::DATA, limits.max_memory_bytes)?;
    lower(Resource::FSIZE, limits.max_file_size_bytes)?;
    lower(Resource::CPU, limits.timeout.as_secs().saturating_add(1))?;
    // RLIMIT_NPROC counts every task of the real user, so allow what already runs plus the
    // budget; otherwise a busy desktop session would make every spawn fail.
    let existing = count_user_tasks().unwrap_or(0);
    lower(Resource::NPROC, existing.saturating_add(limits.max_processes))?;
    Ok(())
}

/// Counts threads (tasks) owned by this process's user, as RLIMIT_NPROC does.
fn count_user_tasks() -> io::Result<u64> {
    let uid = std::fs::metadata("/proc/self")?.uid();
    let mut n = 0u64;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if entry.metadata().is_ok_and(|m| m.uid() == uid) {
            n += std::fs::read_dir(entry.path().join("task")).map_or(1, |d| d.count() as u64);
        }
    }
    Ok(n)
}

#[derive(Debug, thiserror::Error)]
enum LandlockError {
    #[error(transparent)]
    Ruleset(#[from] landlock::RulesetError),
    #[error(transparent)]
    Path(#[from] landlock::PathFdError),
}

fn apply_landlock(req: &Request) -> SandboxStatus {
    let block_network = !req.plan.allow_network;
    // Safe mode may write nothing but its private tmp dir.
    let writable: &Path = if req.plan.mode == Mode::Safe {
        &req.tmp_dir
    } else {
        &req.workspace
    };
    let attempt = || -> Result<landlock::RestrictionStatus, LandlockError> {
        let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(TARGET_ABI))?;
        if block_network {
            ruleset = ruleset.handle_access(AccessNet::from_all(TARGET_ABI))?;
        }
        let ruleset = ruleset.scope(Scope::from_all(TARGET_ABI))?;
        let mut created = ruleset.create()?;
        let mut grants = Vec::new();
        let (roots, hidden) = read_roots(req);
        for root in roots {
            // A listed /proc or /dev entry is granted even though yolo hides their parents.
            let hidden: Vec<PathBuf> = hidden.iter().filter(|h| !root.starts_with(h)).cloned().collect();
            crate::exec::confine::grant_except(&root, &hidden, &mut grants);
        }
        for path in grants {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let access = if meta.is_dir() {
                AccessFs::from_read(TARGET_ABI)
            } else {
                AccessFs::from_read(TARGET_ABI) & AccessFs::from_file(TARGET_ABI)
            };
            if let Ok(fd) = PathFd::new(&path) {
                created = created.add_rule(PathBeneath::new(fd, access))?;
            }
        }
        created = created.add_rule(PathBeneath::new(
            PathFd::new(writable)?,
            AccessFs::from_all(TARGET_ABI),
        ))?;
        for dev in ["/dev/null", "/dev/zero", "/dev/full"] {
            if let Ok(fd) = PathFd::new(dev) {
                created = created.add_rule(PathBeneath::new(fd, AccessFs::from_file(TARGET_ABI)))?;
            }
        }
        Ok(created.restrict_self()?)
    };
    match attempt() {
        Err(e) => SandboxStatus::Unavailable {
            reason: format!("Landlock setup failed: {e}"),
        },
        Ok(status) => {
            let abi = match status.landlock {
                LandlockStatus::Available { effective_abi, .. } => abi_number(effective_abi),
                _ => 0,
            };
            match status.ruleset {
                RulesetStatus::FullyEnforced => SandboxStatus::Enforced {
                    landlock_abi: abi,
                    network_blocked: block_network,
                },
                RulesetStatus::PartiallyEnforced => {
                    let mut missing = Vec::new();
                    if abi < 2 {
                        missing.push("rename/link across directories (refer)".to_owned());
                    }
                    if abi < 3 {
                        missing.push("truncate".to_owned());
                    }
                    if abi < 4 && block_network {
                        missing.push("network (TCP bind/connect)".to_owned());
                    }
                    if abi < 5 {
                        missing.push("device ioctl".to_owned());
                    }
                    if abi < 6 {
                        missing.push("signal and abstract-socket scoping".to_owned());
                    }
                    SandboxStatus::Partial {
                        landlock_abi: abi,
                        network_blocked: block_network && abi >= 4,
                        missing,
                    }
                }
                RulesetStatus::NotEnforced => SandboxStatus::Unavailable {
                    reason: match status.landlock {
                        LandlockStatus::NotEnabled => {
                            "the kernel has Landlock but it is not enabled (add landlock to the lsm= boot parameter)".to_owned()
                        }
                        LandlockStatus::NotImplemented => {
                            "the kernel does not implement Landlock (Linux < 5.13, built without it, or blocked by a container's seccomp policy)".to_owned()
                        }
                        LandlockStatus::Available { .. } => {
                            "Landlock is available but the ruleset was not enforced".to_owned()
                        }
                    },
                },
            }
        }
    }
}

fn abi_number(abi: ABI) -> i32 {
    // ABI is a fieldless enum whose discriminants are the kernel ABI versions.
    abi as i32
}

/// A capped, shared capture buffer fed by a reader thread.
struct Capture {
    data: Arc<Mutex<Vec<u8>>>,
    truncated: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
}

fn capture(mut reader: io::PipeReader, cap: usize) -> Capture {
    let data = Arc::new(Mutex::new(Vec::new()));
    let truncated = Arc::new(AtomicBool::new(false));
    let (tx, done) = mpsc::channel();
    let (d, t) = (Arc::clone(&data), Arc::clone(&truncated));
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Ok(mut v) = d.lock() {
                        let room = cap.saturating_sub(v.len());
                        if n > room {
                            t.store(true, Ordering::Relaxed);
                        }
                        v.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    Capture {
        data,
        truncated,
        done,
    }
}

impl Capture {
    /// Waits (bounded) for EOF, then returns the text and whether it was truncated.
    fn finish(self, wait: Duration) -> (String, bool) {
        let _ = self.done.recv_timeout(wait);
        let bytes = self.data.lock().map(|v| v.clone()).unwrap_or_default();
        (
            String::from_utf8_lossy(&bytes).into_owned(),
            self.truncated.load(Ordering::Relaxed),
        )
    }
}

/// Result of one pipeline.
struct PipelineResult {
    /// Shell-style status ($?), after negation.
    status: i32,
    exit_code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
}

fn execute(req: &Request, mut cwd: PathBuf, sandbox: SandboxStatus) -> Outcome {
    let start = Instant::now();
    let deadline = start + req.limits.timeout;
    let cap = req.limits.max_output_bytes;
    let pipes = io::pipe().and_then(|(or, ow)| io::pipe().map(|(er, ew)| (or, ow, er, ew)));
    let (out_r, out_w, err_r, mut err_w) = match pipes {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                exit_code: None,
                signal: None,
                timed_out: false,
                stdout: String::new(),
                stderr: format!("mcp-bridge: cannot create pipes: {e}\n"),
                truncated: false,
                duration: start.elapsed(),
                sandbox,
            };
        }
    };
    let out_cap = capture(out_r, cap);
    let err_cap = capture(err_r, cap);

    let mut last = PipelineResult {
        status: 0,
        exit_code: Some(0),
        signal: None,
        timed_out: false,
    };
    for step in &req.plan.steps {
        let run_it = match step.connector {
            Connector::Always => true,
            Connector::And => last.status == 0,
            Connector::Or => last.status != 0,
        };
        if !run_it {
            continue;
        }
        last = match run_pipeline(&step.pipeline, &mut cwd, req, &out_w, &err_w, deadline) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err_w, "mcp-bridge: {e}");
                PipelineResult {
                    status: 126,
                    exit_code: Some(126),
                    signal: None,
                    timed_out: false,
                }
            }
        };
        if last.timed_out {
            let _ = writeln!(
                err_w,
                "mcp-bridge: timed out after {:?}; all processes were killed",
                req.limits.timeout
            );
            break;
        }
    }
    drop(out_w);
    drop(err_w);
    let (stdout, t1) = out_cap.finish(Duration::from_secs(2));
    let (stderr, t2) = err_cap.finish(Duration::from_millis(500));
    Outcome {
        exit_code: if last.timed_out { None } else { last.exit_code },
        signal: last.signal,
        timed_out: last.timed_out,
        stdout,
        stderr,
        truncated: t1 || t2,
        duration: start.elapsed(),
        sandbox,
    }
}

/// `cd DIR`, confined to the workspace.
fn builtin_cd(target: &str, cwd: &mut PathBuf, workspace: &Path, err: &io::PipeWriter) -> i32 {
    let mut err = err;
    match cwd.join(target).canonicalize() {
        Ok(dir) if dir.is_dir() && dir.starts_with(workspace) => {
            *cwd = dir;
            0
        }
        Ok(_) => {
            let _ = writeln!(err, "cd: {target}: not a directory inside the workspace");
            1
        }
        Err(e) => {
            let _ = writeln!(err, "cd: {target}: {e}");
            1
        }
    }
}

/// Opens a redirection target relative to `cwd`.
fn open_output(cwd: &Path, path: &str, append: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(cwd.join(path))
}

fn run_pipeline(
    p: &Pipeline,
    cwd: &mut PathBuf,
    req: &Request,
    out_w: &io::PipeWriter,
    err_w: &io::PipeWriter,
    deadline: Instant,
) -> io::Result<PipelineResult> {
    let negate = |status: i32| {
        if p.negated { i32::from(status == 0) } else { status }
    };
    if let [single] = p.commands.as_slice()
        && single.argv.first().is_some_and(|a| a == "cd")
    {
        let target = single.argv.get(1).map_or("", String::as_str);
        let status = negate(builtin_cd(target, cwd, &req.workspace, err_w));
        return Ok(PipelineResult {
            status,
            exit_code: Some(status),
            signal: None,
            timed_out: false,
        });
    }

    let n = p.commands.len();
    let mut children: Vec<Option<Child>> = Vec::with_capacity(n);
    let mut failed_status: Vec<i32> = vec![0; n];
    let mut pgid: Option<u32> = None;
    let mut prev_reader: Option<io::PipeReader> = None;
    let mut err_note = err_w.try_clone()?;

    for (k, cmd) in p.commands.iter().enumerate() {
        let upstream = prev_reader.take();
        let stdin = match &cmd.stdin {
            Input::Pipe => upstream.map_or_else(Stdio::null, Stdio::from),
            Input::Null => Stdio::null(),
            Input::File(path) => match File::open(cwd.join(path)) {
                Ok(f) => Stdio::from(f),
                Err(e) => {
                    let _ = writeln!(err_note, "mcp-bridge: {path}: {e}");
                    children.push(None);
                    failed_status[k] = 1;
                    continue;
                }
            },
        };
        let (next_reader, orig_stdout) = if k + 1 < n {
            let (r, w) = io::pipe()?;
            (Some(r), w)
        } else {
            (None, out_w.try_clone()?)
        };
        prev_reader = next_reader;
        let orig_stderr = err_w.try_clone()?;

        let mut shared_file: Option<File> = None;
        let mut resolve = |out: &Output| -> io::Result<Stdio> {
            Ok(match out {
                Output::Stdout => Stdio::from(orig_stdout.try_clone()?),
                Output::Stderr => Stdio::from(orig_stderr.try_clone()?),
                Output::Null => Stdio::null(),
                Output::File { path, append } => {
                    if cmd.stdout == cmd.stderr {
                        if let Some(f) = &shared_file {
                            return Ok(Stdio::from(f.try_clone()?));
                        }
                        let f = open_output(cwd, path, *append)?;
                        let clone = f.try_clone()?;
                        shared_file = Some(f);
                        return Ok(Stdio::from(clone));
                    }
                    Stdio::from(open_output(cwd, path, *append)?)
                }
            })
        };
        let (stdout, stderr) = match (resolve(&cmd.stdout), resolve(&cmd.stderr)) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                let _ = writeln!(err_note, "mcp-bridge: redirection failed: {e}");
                children.push(None);
                failed_status[k] = 1;
                continue;
            }
        };

        let Some(program) = cmd.argv.first() else {
            children.push(None);
            failed_status[k] = 127;
            continue;
        };
        let mut command = Command::new(program);
        command
            .args(&cmd.argv[1..])
            .current_dir(&*cwd)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .process_group(pgid.map_or(0, |g| g as i32));
        for var in &cmd.env {
            command.env(&var.name, &var.value);
        }
        match command.spawn() {
            Ok(child) => {
                if pgid.is_none() {
                    pgid = Some(child.id());
                }
                children.push(Some(child));
            }
            Err(e) => {
                let status = if e.kind() == io::ErrorKind::NotFound {
                    let _ = writeln!(err_note, "mcp-bridge: {program}: command not found");
                    127
                } else {
                    let _ = writeln!(err_note, "mcp-bridge: {program}: {e}");
                    126
                };
                children.push(None);
                failed_status[k] = status;
            }
        }
        // `command` (holding our copies of the pipe ends) is dropped here.
    }
    drop(prev_reader);

    // Wait without reaping (WNOWAIT) so the process group id cannot be recycled before we
    // kill the group's stragglers.
    let mut timed_out = false;
    loop {
        let all_exited = children.iter().flatten().all(|c| {
            let Some(pid) = Pid::from_raw(c.id() as i32) else {
                return true;
            };
            matches!(
                rustix::process::waitid(
                    WaitId::Pid(pid),
                    WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG,
                ),
                Ok(Some(_)) | Err(_)
            )
        });
        if all_exited {
            break;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        std::thread::sleep(POLL);
    }
    if let Some(g) = pgid.and_then(|g| Pid::from_raw(g as i32)) {
        // Kills background stragglers after a normal exit, everything on timeout.
        let _ = rustix::process::kill_process_group(g, Signal::KILL);
    }
    let mut last_code: Option<i32> = None;
    let mut last_signal: Option<i32> = None;
    let mut last_status = 0;
    for (k, child) in children.iter_mut().enumerate() {
        let (code, signal, status) = match child {
            Some(c) => match c.wait() {
                Ok(st) => match (st.code(), st.signal()) {
                    (Some(code), _) => (Some(code), None, code),
                    (None, Some(sig)) => (None, Some(sig), 128 + sig),
                    (None, None) => (None, None, 1),
                },
                Err(_) => (None, None, 1),
            },
            None => (Some(failed_status[k]), None, failed_status[k]),
        };
        if k + 1 == n {
            last_code = code;
            last_signal = signal;
            last_status = status;
        }
    }
    let status = negate(last_status);
    Ok(PipelineResult {
        status,
        exit_code: if p.negated { Some(status) } else { last_code },
        signal: last_signal,
        timed_out,
    })
}
