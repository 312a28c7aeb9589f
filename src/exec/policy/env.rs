//! Environment assignments in front of a command (`NAME=value cmd`, `env NAME=value`):
//! names that change which code runs or where it is found (the loader, interpreters'
//! start-up and library paths, compiler wrappers, `HOME`, ...) are catastrophic in every
//! mode; safe and restricted mode allow only a short list of names, with tame values.

use crate::exec::Mode;
use crate::exec::parse::{Refusal, show};
use crate::exec::policy::fatal;

/// Environment variables a command prefix may set in safe and restricted mode.
const ENV_ALLOWED: &[&str] = &[
    "RUST_BACKTRACE",
    "RUST_LOG",
    "RUST_TEST_THREADS",
    "CARGO_TERM_COLOR",
    "CI",
    "NO_COLOR",
    "FORCE_COLOR",
    "CLICOLOR",
    "TERM",
    "TZ",
    "LC_ALL",
    "LANG",
    "COLUMNS",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "NODE_ENV",
    "GIT_PAGER_IN_USE",
];

/// Environment variables that change which code runs; refused even in yolo mode.
fn env_dangerous(name: &str) -> bool {
    name.starts_with("LD_")
        || name.starts_with("DYLD_")
        || name.starts_with("GIT_CONFIG")
        || matches!(
            name,
            "PATH"
                | "BASH_ENV"
                | "ENV"
                | "SHELLOPTS"
                | "BASHOPTS"
                | "PS4"
                | "PROMPT_COMMAND"
                | "IFS"
                | "GIT_SSH"
                | "GIT_SSH_COMMAND"
                | "GIT_EXTERNAL_DIFF"
                | "GIT_PAGER"
                | "GIT_EDITOR"
                | "GIT_SEQUENCE_EDITOR"
                | "GIT_ASKPASS"
                | "GIT_EXEC_PATH"
                | "GIT_PROXY_COMMAND"
                | "GIT_DIR"
                | "GIT_WORK_TREE"
                | "PAGER"
                | "MANPAGER"
                | "EDITOR"
                | "VISUAL"
                | "BROWSER"
                | "SSH_ASKPASS"
                | "SUDO_ASKPASS"
                | "NODE_OPTIONS"
                | "PYTHONSTARTUP"
                | "PYTHONPATH"
                | "PYTHONHOME"
                | "PERL5OPT"
                | "PERL5LIB"
                | "PERLLIB"
                | "RUBYOPT"
                | "RUBYLIB"
                | "RUSTC_WRAPPER"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "RUSTC"
                | "CARGO_BUILD_RUSTC_WRAPPER"
                | "LESSOPEN"
                | "LESSCLOSE"
                | "HOME"
                | "TMPDIR"
        )
}

/// Judges one environment assignment (`NAME=value` prefix or `env NAME=value`).
pub(crate) fn judge_env(name: &str, value: &str, mode: Mode) -> Result<(), Refusal> {
    if env_dangerous(name) {
        return Err(fatal(format!(
            "setting {name} changes which code runs or where it is found"
        )));
    }
    if mode == Mode::Yolo {
        return Ok(());
    }
    if !ENV_ALLOWED.contains(&name) {
        return Err(Refusal::new(format!(
            "the environment assignment \"{name}=…\" is not allowed in {mode} mode (allowed: {})",
            ENV_ALLOWED.join(", ")
        )));
    }
    let tame = value.len() <= 256
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.,:=/+-".contains(c));
    if !tame {
        return Err(Refusal::new(format!(
            "the value of {name} (\"{}\") has unexpected characters",
            show(value)
        )));
    }
    Ok(())
}
