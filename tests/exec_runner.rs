//! Runs real commands through `run` inside a temporary workspace.
#![allow(
    clippy::print_stdout,
    reason = "tests report their tables and notices on stdout"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mcp_bridge as crate_under_test;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate_under_test::exec::{self, Mode, Outcome, RunLimits, SandboxStatus};

const SANDBOX_EXE: &str = env!("CARGO_BIN_EXE_mcp-bridge");

/// A unique temporary workspace, removed on drop.
struct Workspace(PathBuf);

impl Workspace {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("mcp-exec-test-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("hello.txt"), "hello\nworld\n").unwrap();
        Workspace(dir.canonicalize().unwrap())
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_in(ws: &Workspace, command: &str, mode: Mode, limits: &RunLimits) -> Outcome {
    let verdict = exec::validate(command, mode);
    assert!(verdict.allowed, "{command:?} refused: {}", verdict.reason);
    let plan = verdict.plan.unwrap();
    exec::run(&plan, ws.path(), ws.path(), limits, Path::new(SANDBOX_EXE))
        .unwrap_or_else(|e| panic!("{command:?}: run failed: {e}"))
}

fn run_ok(ws: &Workspace, command: &str, mode: Mode) -> Outcome {
    run_in(ws, command, mode, &RunLimits::default())
}

fn confined(status: &SandboxStatus) -> bool {
    matches!(
        status,
        SandboxStatus::Enforced { .. } | SandboxStatus::Partial { .. }
    )
}

#[test]
fn captures_stdout_and_exit_code() {
    let ws = Workspace::new("capture");
    let out = run_ok(&ws, "cat hello.txt", Mode::Safe);
    assert_eq!(out.stdout, "hello\nworld\n");
    assert_eq!(out.exit_code, Some(0));
    assert!(!out.timed_out && !out.truncated);
    println!("sandbox status: {:?}", out.sandbox);

    let out = run_ok(&ws, "ls does-not-exist", Mode::Safe);
    assert_ne!(out.exit_code, Some(0));
    assert!(out.stderr.contains("does-not-exist"), "{}", out.stderr);
}

#[test]
fn pipelines_and_connectors() {
    let ws = Workspace::new("pipe");
    let out = run_ok(&ws, "cat hello.txt | grep wor | tr a-z A-Z", Mode::Safe);
    assert_eq!(out.stdout, "WORLD\n");

    let out = run_ok(&ws, "false && echo no || echo yes; echo end", Mode::Safe);
    assert_eq!(out.stdout, "yes\nend\n");
    assert_eq!(out.exit_code, Some(0));

    let out = run_ok(&ws, "true || echo skipped && echo ran", Mode::Safe);
    assert_eq!(out.stdout, "ran\n");

    let out = run_ok(&ws, "! grep -q absent hello.txt && echo negated", Mode::Safe);
    assert_eq!(out.stdout, "negated\n");

    let out = run_ok(&ws, "ls nope 2>&1 | wc -l", Mode::Safe);
    assert_eq!(out.stdout.trim(), "1");
    assert_eq!(out.stderr, "");

    let out = run_ok(&ws, "echo oops >&2", Mode::Safe);
    assert_eq!(out.stderr, "oops\n");
    assert_eq!(out.stdout, "");

    let out = run_ok(&ws, "cd sub && pwd", Mode::Safe);
    assert_eq!(out.stdout.trim(), ws.path().join("sub").to_str().unwrap());

    let out = run_ok(&ws, "no-such-program-xyz; echo after", Mode::Yolo);
    assert!(out.stderr.contains("command not found"), "{}", out.stderr);
    assert_eq!(out.stdout, "after\n");
}

#[test]
fn yolo_redirection_writes_inside_workspace() {
    let ws = Workspace::new("redirect");
    let out = run_ok(
        &ws,
        "echo one > out.txt && echo two >> out.txt && cat out.txt",
        Mode::Yolo,
    );
    assert_eq!(out.stdout, "one\ntwo\n");
    let out = run_ok(&ws, "ls missing > both.txt 2>&1; cat both.txt", Mode::Yolo);
    assert!(out.stdout.contains("missing"), "{}", out.stdout);
}

#[test]
fn timeout_kills_the_pipeline() {
    let ws = Workspace::new("timeout");
    let limits = RunLimits {
        timeout: Duration::from_secs(1),
        ..RunLimits::default()
    };
    let out = run_in(&ws, "sleep 60", Mode::Safe, &limits);
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
    assert!(out.duration < Duration::from_secs(30));

    let out = run_in(&ws, "sleep 60 | cat; echo never", Mode::Safe, &limits);
    assert!(out.timed_out);
    assert!(!out.stdout.contains("never"));
}

#[test]
fn output_is_capped() {
    let ws = Workspace::new("cap");
    let limits = RunLimits {
        max_output_bytes: 1000,
        ..RunLimits::default()
    };
    let out = run_in(&ws, "yes | head -c 10000000", Mode::Safe, &limits);
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), 1000);
    assert_eq!(out.exit_code, Some(0));
}

#[test]
fn environment_is_cleared() {
    let ws = Workspace::new("env");
    let out = run_ok(&ws, "env", Mode::Safe);
    let mut names: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["HOME", "LANG", "PATH", "TMPDIR"], "{}", out.stdout);
    assert!(out.stdout.contains(&format!("HOME={}\n", ws.path().display())));
    assert!(out.stdout.contains("PATH=/usr/local/bin:/usr/bin:/bin\n"));

    let out = run_ok(&ws, "RUST_BACKTRACE=1 env", Mode::Safe);
    assert!(out.stdout.contains("RUST_BACKTRACE=1\n"));
    // The private tmp dir is gone after the run.
    assert!(!ws.path().join(".mcp-bridge").exists());
}

#[test]
fn writes_outside_the_workspace_fail_under_landlock() {
    let ws = Workspace::new("landlock");
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let outside = std::env::temp_dir().join(format!("mcp-outside-{nanos}"));
    let outside_str = outside.to_str().unwrap().to_owned();
    let out = run_ok(&ws, &format!("touch {outside_str}"), Mode::Yolo);
    if !confined(&out.sandbox) {
        println!(
            "NOTICE: Landlock not available ({:?}); skipping the confinement assertions",
            out.sandbox
        );
        let _ = std::fs::remove_file(&outside);
        return;
    }
    assert_ne!(out.exit_code, Some(0), "{out:?}");
    assert!(!outside.exists(), "touch escaped the sandbox");

    // Inside the workspace, restricted/yolo may write...
    let out = run_ok(&ws, "touch inside.txt", Mode::Restricted);
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert!(ws.path().join("inside.txt").exists());
    // ...but safe mode cannot write even there (only its private tmp dir).
    let out = run_ok(&ws, "sort --help", Mode::Safe);
    assert_eq!(out.exit_code, Some(0));
}

#[test]
fn safe_mode_git_status_works_in_a_read_only_sandbox() {
    let ws = Workspace::new("safe-git");
    let init = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(ws.path())
        .status();
    if !init.is_ok_and(|s| s.success()) {
        println!("NOTICE: git not available; skipping");
        return;
    }
    // git status normally refreshes .git/index; under safe mode's read-only sandbox that
    // write fails and git must still report the status.
    let out = run_ok(&ws, "git status --short", Mode::Safe);
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert!(out.stdout.contains("hello.txt"), "{out:?}");
    if let SandboxStatus::Enforced { network_blocked, .. } = out.sandbox {
        assert!(network_blocked, "safe mode must block the network");
    }
}

#[test]
fn network_is_blocked_in_safe_and_restricted_plans_without_network() {
    let ws = Workspace::new("net");
    let plan = exec::validate("git status", Mode::Restricted).plan.unwrap();
    assert!(!plan.allow_network);
    let plan = exec::validate("cargo build", Mode::Restricted).plan.unwrap();
    assert!(plan.allow_network);
    let plan = exec::validate("ls", Mode::Safe).plan.unwrap();
    assert!(!plan.allow_network);
    drop(ws);
}

#[test]
fn cwd_outside_the_workspace_is_refused() {
    let ws = Workspace::new("cwd");
    let plan = exec::validate("ls", Mode::Safe).plan.unwrap();
    let err = exec::run(
        &plan,
        ws.path(),
        Path::new("/"),
        &RunLimits::default(),
        Path::new(SANDBOX_EXE),
    )
    .unwrap_err();
    assert!(matches!(err, exec::Error::CwdOutsideWorkspace { .. }), "{err}");
    let err = exec::run(
        &plan,
        ws.path(),
        &ws.path().join("sub/../.."),
        &RunLimits::default(),
        Path::new(SANDBOX_EXE),
    )
    .unwrap_err();
    assert!(matches!(err, exec::Error::CwdOutsideWorkspace { .. }));

    // A relative cwd is taken relative to the workspace.
    let out = exec::run(
        &plan,
        ws.path(),
        Path::new("sub"),
        &RunLimits::default(),
        Path::new(SANDBOX_EXE),
    )
    .unwrap();
    assert_eq!(out.exit_code, Some(0));

    // `cd` cannot leave the workspace either.
    let out = run_ok(&ws, "cd .. && pwd", Mode::Yolo);
    assert_ne!(out.exit_code, Some(0));
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn tampered_plans_are_refused() {
    let ws = Workspace::new("tamper");
    let mut plan = exec::validate("ls", Mode::Safe).plan.unwrap();
    plan.steps[0].pipeline.commands[0].argv = vec!["rm".into(), "-rf".into(), "/".into()];
    let err = exec::run(
        &plan,
        ws.path(),
        ws.path(),
        &RunLimits::default(),
        Path::new(SANDBOX_EXE),
    )
    .unwrap_err();
    assert!(matches!(err, exec::Error::PlanRejected(_)), "{err}");
}

/// A unique directory outside every workspace, removed on drop.
fn outside_dir(tag: &str) -> Workspace {
    Workspace::new(&format!("outside-{tag}"))
}

/// Issue 10: reads were allowed everywhere; a symlink inside the workspace (which the
/// validator cannot see through) must not reach a file outside it in safe or restricted mode.
#[test]
fn safe_mode_sandbox_refuses_reading_outside_the_workspace() {
    let ws = Workspace::new("reads");
    let outside = outside_dir("reads");
    std::fs::write(outside.path().join("secret.txt"), "TOP-SECRET\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), ws.path().join("link")).unwrap();
    for mode in [Mode::Safe, Mode::Restricted] {
        let out = run_ok(&ws, "cat link", mode);
        if !confined(&out.sandbox) {
            println!(
                "NOTICE: no Landlock here ({:?}); read confinement not enforced",
                out.sandbox
            );
            return;
        }
        assert!(!out.stdout.contains("TOP-SECRET"), "{mode}: {}", out.stdout);
        assert_ne!(out.exit_code, Some(0), "{mode}");
        // The workspace itself and the system files programs need stay readable.
        let out = run_ok(&ws, "cat hello.txt && head -c 1 /usr/bin/env | wc -c", mode);
        assert_eq!(out.stdout, "hello\nworld\n1\n", "{mode}: {}", out.stderr);
    }
}

/// Issue 10: the bridge's own database and key must be unreadable from the sandbox in
/// every mode, yolo included (where everything else on the machine is readable).
#[test]
fn the_sandbox_never_reads_the_bridge_key_in_yolo_mode() {
    // State in its own directory, away from the workspace.
    let ws = Workspace::new("hide-a");
    let state = outside_dir("state");
    let db = state.path().join("bridge.db");
    let key = state.path().join("bridge.db.key");
    std::fs::write(&db, "SQLITE-BYTES").unwrap();
    std::fs::write(&key, "KEY-BYTES").unwrap();
    std::fs::write(state.path().join("bridge.db-wal"), "WAL-BYTES").unwrap();
    let cmd = format!(
        "cat {} ; cat {} ; cat {}/bridge.db-wal",
        key.display(),
        db.display(),
        state.path().display()
    );
    let plan = exec::validate(&cmd, Mode::Yolo).plan.unwrap();
    let out = exec::run_hiding(
        &plan,
        ws.path(),
        ws.path(),
        &RunLimits::default(),
        Path::new(SANDBOX_EXE),
        &[db.clone(), key.clone()],
    )
    .unwrap();
    if !confined(&out.sandbox) {
        println!("NOTICE: no Landlock here ({:?})", out.sandbox);
        return;
    }
    for secret in ["KEY-BYTES", "SQLITE-BYTES", "WAL-BYTES"] {
        assert!(!out.stdout.contains(secret), "{secret} leaked: {}", out.stdout);
    }

    // State directly above the workspace: only the bridge's files are hidden there.
    let root = outside_dir("hide-b");
    let ws = root.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    std::fs::write(root.path().join("bridge.db.key"), "KEY-BYTES").unwrap();
    std::fs::write(root.path().join("bridge.db.overseer"), "PHC-BYTES").unwrap();
    std::fs::write(root.path().join("notes.txt"), "PUBLIC").unwrap();
    let plan = exec::validate(
        "cat ../bridge.db.key; cat ../bridge.db.overseer; cat ../notes.txt",
        Mode::Yolo,
    )
    .plan
    .unwrap();
    let out = exec::run_hiding(
        &plan,
        &ws,
        &ws,
        &RunLimits::default(),
        Path::new(SANDBOX_EXE),
        &[root.path().join("bridge.db"), root.path().join("bridge.db.key")],
    )
    .unwrap();
    assert!(!out.stdout.contains("KEY-BYTES"), "{}", out.stdout);
    assert!(!out.stdout.contains("PHC-BYTES"), "{}", out.stdout);
    assert!(
        out.stdout.contains("PUBLIC"),
        "yolo still reads elsewhere: {}",
        out.stderr
    );
}

/// Issue 10: state inside the workspace cannot be hidden without hiding the workspace.
#[test]
fn state_inside_the_workspace_refuses_to_run() {
    let ws = Workspace::new("inside");
    let plan = exec::validate("ls", Mode::Safe).plan.unwrap();
    let err = exec::run_hiding(
        &plan,
        ws.path(),
        ws.path(),
        &RunLimits::default(),
        Path::new(SANDBOX_EXE),
        &[ws.path().join("sub/bridge.db")],
    )
    .unwrap_err();
    assert!(err.to_string().contains("inside the workspace"), "{err}");
}

/// Issue 10: another process's `/proc/PID/environ` (where `MCP_BRIDGE_KEY` may live) must be
/// out of reach from the sandbox in every mode, even through a symlink the validator cannot
/// see through. (With `/proc` readable it was not, despite Landlock's ptrace rules.)
#[test]
fn sandbox_refuses_reading_other_processes_environment() {
    let ws = Workspace::new("environ");
    let target = format!("/proc/{}/environ", std::process::id());
    std::os::unix::fs::symlink(&target, ws.path().join("e")).unwrap();
    for mode in Mode::ALL {
        let out = run_ok(&ws, "cat e", mode);
        if !confined(&out.sandbox) {
            println!("NOTICE: no Landlock here ({:?})", out.sandbox);
            return;
        }
        assert!(!out.stdout.contains("CARGO"), "{mode}: {}", out.stdout);
        assert_ne!(out.exit_code, Some(0), "{mode}");
    }
}
