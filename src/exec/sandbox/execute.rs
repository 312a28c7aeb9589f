//! Running the plan inside the confined helper: steps joined by `&&`/`||`/`;`, pipelines
//! of directly spawned programs (never a shell), redirections, `cd`, output capped per
//! stream, and the timeout that kills the whole process group.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

use crate::exec::{Connector, Input, Outcome, Output, Pipeline, SandboxStatus};

use super::Request;

/// How often running children are polled.
const POLL: Duration = Duration::from_millis(10);

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

pub(super) fn execute(req: &Request, mut cwd: PathBuf, sandbox: SandboxStatus) -> Outcome {
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
