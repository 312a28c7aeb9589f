//! Validation and sandboxed execution of agent-proposed shell commands ("YOLO mode").
//!
//! The flow is: an agent proposes a command string, [`validate`] parses it with a real bash
//! parser (`brush-parser`) and either refuses it or returns a [`Plan`], a fully literal,
//! shell-free description of what will run. A human approves the plan, and [`run`] executes
//! it exactly once inside a re-executed helper process ([`sandbox_child_main`]) that applies
//! resource limits and a Landlock sandbox before spawning anything.
//!
//! Nothing in this module ever passes a string to a shell: the runner executes `argv` vectors
//! directly, so every shell feature the validator does not model (expansions, globbing,
//! substitutions, functions, loops) is refused up front instead of being interpreted later.
//!
//! See `docs/yolo.md` for the policy of each [`Mode`] and the threat model.

mod confine;
mod parse;
mod policy;
pub mod reads;
mod render;
mod run;
mod sandbox;
pub mod text;
mod validate;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use render::{describe_plan, render_plan};
pub use run::{SANDBOX_PATH, TMP_SUBDIR, run, run_hiding};
pub use sandbox::sandbox_child_main;
pub use validate::validate;

/// How much a proposed command may do. Chosen by the human who enables YOLO mode; the
/// validator applies the matching policy and the sandbox tightens itself accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Read-only inspection of the working directory (ls, grep, git status/log/diff, ...); reads
    /// outside it and the system files programs need are refused.
    Safe,
    /// Safe plus ordinary development (git commit, cargo test, npm install, make, ...).
    Restricted,
    /// Almost anything, except a documented list of catastrophic commands.
    Yolo,
}

impl Mode {
    /// All modes, in increasing order of permissiveness (handy for tests and fuzzing).
    pub const ALL: [Mode; 3] = [Mode::Safe, Mode::Restricted, Mode::Yolo];

    /// The lowercase name used in configuration, reasons and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Safe => "safe",
            Mode::Restricted => "restricted",
            Mode::Yolo => "yolo",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "safe" => Ok(Mode::Safe),
            "restricted" => Ok(Mode::Restricted),
            "yolo" => Ok(Mode::Yolo),
            _ => Err(Error::UnknownMode(s.to_owned())),
        }
    }
}

/// A validated command, ready to execute without a shell.
///
/// The plan is what the human approves and what the runner executes; it is deliberately
/// small and literal so that it can be rendered back to an unambiguous shell string
/// ([`render_plan`]) for the approval prompt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plan {
    /// The mode the plan was validated in; the sandbox uses it (safe mode gets no write
    /// access to the workspace) and [`run`] re-validates the plan in this mode.
    pub mode: Mode,
    /// Whether the sandbox leaves TCP connect/bind open. Safe never does; restricted only
    /// for commands that fetch dependencies (git fetch/pull/push, cargo, npm install, go);
    /// yolo always does.
    pub allow_network: bool,
    /// Pipelines executed left to right, each gated by its [`Connector`].
    pub steps: Vec<Step>,
}

/// One pipeline of a [`Plan`] together with the operator that precedes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Step {
    /// How this pipeline depends on the previous exit status (`Always` for the first step).
    pub connector: Connector,
    /// The pipeline to run.
    pub pipeline: Pipeline,
}

/// The operator joining a pipeline to the one before it (bash semantics: `&&` and `||` have
/// equal precedence and associate to the left; `;` and newlines always run the next one).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Connector {
    /// `;`, a newline, or the start of the plan.
    Always,
    /// `&&`: run only if the previous status is 0.
    And,
    /// `||`: run only if the previous status is non-zero.
    Or,
}

/// `cmd1 | cmd2 | ...`, optionally negated with `!`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pipeline {
    /// `!`: the pipeline's status is inverted.
    pub negated: bool,
    /// The commands, connected stdout to stdin.
    pub commands: Vec<SimpleCommand>,
}

/// One program invocation with fully literal words.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SimpleCommand {
    /// `NAME=value` prefixes (only names the mode allows).
    pub env: Vec<EnvVar>,
    /// The program and its arguments after quote removal; `argv[0]` is looked up on the
    /// sandbox's fixed `PATH`. `cd DIR` is executed by the runner itself.
    pub argv: Vec<String>,
    /// Where standard input comes from.
    pub stdin: Input,
    /// Where standard output goes.
    pub stdout: Output,
    /// Where standard error goes.
    pub stderr: Output,
}

/// An environment variable set for one command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Literal value.
    pub value: String,
}

/// Source of a command's standard input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// The previous command's output in a pipeline, or empty input for the first command.
    Pipe,
    /// `< /dev/null`.
    Null,
    /// `< FILE` (path relative to the command's working directory).
    File(String),
}

/// Destination of a command's standard output or standard error, resolved in the order the
/// redirections were written (so `2>&1 >f` and `>f 2>&1` differ, as in bash).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// The command's original standard output: the next command in the pipeline, or the
    /// captured stdout of the plan for the last command.
    Stdout,
    /// The captured stderr of the plan.
    Stderr,
    /// `/dev/null`.
    Null,
    /// A file (yolo mode only), truncated or appended to.
    File {
        /// Path relative to the command's working directory.
        path: String,
        /// `>>` instead of `>`.
        append: bool,
    },
}

/// The validator's answer, shown to the human in the approval prompt.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Whether the command may be proposed for approval.
    pub allowed: bool,
    /// One sentence: why it is allowed, or which rule refused which word.
    pub reason: String,
    /// The plan to approve and run; `Some` iff `allowed`.
    pub plan: Option<Plan>,
}

/// Resource limits for one run. The defaults suit a test suite or a build of a mid-sized
/// project on a developer machine; the lead may expose them as configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunLimits {
    /// Wall-clock limit for the whole plan; on expiry every process is killed.
    pub timeout: Duration,
    /// Bytes kept per stream (stdout, stderr); the rest is drained and dropped.
    pub max_output_bytes: usize,
    /// `RLIMIT_DATA` per process (heap and private mappings).
    pub max_memory_bytes: u64,
    /// Additional processes/threads the plan may create on top of those the account
    /// already runs (`RLIMIT_NPROC` counts per user, so the runner adds the current count).
    pub max_processes: u64,
    /// `RLIMIT_FSIZE`: the largest file any process may write.
    pub max_file_size_bytes: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_output_bytes: 64 * 1024,
            max_memory_bytes: 4 * 1024 * 1024 * 1024,
            max_processes: 512,
            max_file_size_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// What happened when a plan ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code of the last pipeline that ran (after `!` negation), if it exited normally.
    pub exit_code: Option<i32>,
    /// Signal that killed the last command of the last pipeline that ran, if any.
    pub signal: Option<i32>,
    /// The timeout fired and the remaining processes were killed.
    pub timed_out: bool,
    /// Captured standard output (lossy UTF-8, at most `max_output_bytes` bytes of input).
    pub stdout: String,
    /// Captured standard error, including the runner's own messages (command not found...).
    pub stderr: String,
    /// At least one stream exceeded `max_output_bytes`.
    pub truncated: bool,
    /// Wall-clock time of the plan inside the sandbox.
    pub duration: Duration,
    /// How strongly the run was confined.
    pub sandbox: SandboxStatus,
}

/// How the kernel sandbox was applied. The lead should log anything but `Enforced` loudly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SandboxStatus {
    /// Landlock enforces every requested restriction: writes only beneath the workspace
    /// (or only the private tmp dir in safe mode) and `/dev/null`.
    Enforced {
        /// Landlock ABI version in use.
        landlock_abi: i32,
        /// TCP connect/bind are denied.
        network_blocked: bool,
    },
    /// Landlock is active but the kernel lacks some requested features (older ABI).
    Partial {
        /// Landlock ABI version in use.
        landlock_abi: i32,
        /// TCP connect/bind are denied.
        network_blocked: bool,
        /// The restrictions this kernel could not apply.
        missing: Vec<String>,
    },
    /// No kernel sandbox; only the validator and rlimits protect the machine.
    Unavailable {
        /// Why (kernel without Landlock, container policy, error).
        reason: String,
    },
}

/// Errors of the runner and of [`Mode::from_str`]. Validation itself never fails; it
/// refuses with a [`Verdict`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A mode name other than safe, restricted or yolo.
    #[error("unknown mode {0:?}; expected safe, restricted or yolo")]
    UnknownMode(String),
    /// The workspace cannot be canonicalized or is not a directory.
    #[error("workspace {path:?} is not usable: {source}")]
    Workspace {
        /// The path given.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The working directory does not resolve inside the workspace.
    #[error("working directory {cwd:?} is outside the workspace {workspace:?}")]
    CwdOutsideWorkspace {
        /// Canonical working directory (or the given path if it does not exist).
        cwd: std::path::PathBuf,
        /// Canonical workspace.
        workspace: std::path::PathBuf,
    },
    /// The bridge's database or key lives inside the workspace, where the sandbox cannot
    /// hide it without taking away the workspace itself.
    #[error(
        "the bridge's state file {path:?} is inside the workspace {workspace:?}; commands could read or overwrite it, so nothing runs. Keep the database and its key outside the workspace (--db / MCP_BRIDGE_DB)"
    )]
    StateInsideWorkspace {
        /// The state file.
        path: std::path::PathBuf,
        /// Canonical workspace.
        workspace: std::path::PathBuf,
    },
    /// The plan does not re-validate to itself in its own mode (hand-built or tampered).
    #[error("plan refused on re-validation: {0}")]
    PlanRejected(String),
    /// Spawning or talking to the sandbox helper failed.
    #[error("sandbox helper I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The helper did not report an outcome.
    #[error("sandbox helper failed ({status}): {stderr}")]
    SandboxFailed {
        /// Exit status of the helper.
        status: String,
        /// The tail of its stderr.
        stderr: String,
    },
    /// The helper did not finish within the timeout plus a grace period and was killed.
    #[error("sandbox helper did not finish within {0:?} and was killed")]
    SandboxHung(Duration),
    /// JSON encoding or decoding between runner and helper failed.
    #[error("sandbox protocol error: {0}")]
    Protocol(#[from] serde_json::Error),
}
