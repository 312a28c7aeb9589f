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

use crate::exec::parse::{Refusal, show};
use crate::exec::{Mode, programs};

/// Deepest wrapper/`sh -c` nesting judged before refusing.
const MAX_DEPTH: usize = 8;

/// Mutable state while judging one plan.
pub(crate) struct Ctx {
    pub(crate) mode: Mode,
    pub(crate) depth: usize,
    /// Some command in the plan needs the network (restricted mode).
    pub(crate) network: bool,
}

/// A refusal that is catastrophic in every mode (used to decide which refusals found in
/// embedded strings of unknown yolo commands are propagated).
fn fatal(msg: impl Into<String>) -> Refusal {
    Refusal::new(format!("{} (catastrophic; refused in every mode)", msg.into()))
}

pub(crate) fn is_fatal(r: &Refusal) -> bool {
    r.0.contains("(catastrophic; refused in every mode)")
}

/// `name args…`, shortened, for reasons.
fn cmdline(name: &str, args: &[String]) -> String {
    let mut s = name.to_owned();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    show(&s)
}

pub(crate) fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Arguments before `--`, for flag scanning.
fn options(args: &[String]) -> impl Iterator<Item = &str> {
    args.iter()
        .map(String::as_str)
        .take_while(|a| *a != "--")
        .filter(|a| a.starts_with('-') && a.len() > 1)
}

/// True if any option before `--` is one of `longs` (exactly or as `--long=value`), or a
/// short-option cluster (`-abc`) containing one of `shorts`. Deliberately conservative:
/// a short option's attached value is scanned too.
fn has_flag(args: &[String], shorts: &str, longs: &[&str]) -> bool {
    options(args).any(|a| {
        if let Some(long) = a.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            longs.iter().any(|l| l.trim_start_matches('-') == name)
        } else {
            longs.contains(&a) || a[1..].chars().any(|c| shorts.contains(c))
        }
    })
}

/// Arguments that do not look like options (everything after `--` counts).
fn positionals(args: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut after = false;
    for a in args {
        if after {
            out.push(a.as_str());
        } else if a == "--" {
            after = true;
        } else if !(a.starts_with('-') && a.len() > 1) {
            out.push(a.as_str());
        }
    }
    out
}

/// Lexically normalized path: (is_absolute, components). `..` pops (saturating at `/` for
/// absolute paths, kept as a leading `..` for relative ones).
fn normalize(path: &str) -> (bool, Vec<&str>) {
    let absolute = path.starts_with('/');
    let mut comps: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if comps.last().is_some_and(|l| *l != "..") {
                    comps.pop();
                } else if !absolute {
                    comps.push("..");
                }
            }
            other => comps.push(other),
        }
    }
    (absolute, comps)
}

const SYSTEM_DIRS: &[&str] = &[
    "etc", "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "boot", "dev", "proc", "sys",
];

/// Why deleting/chmodding `path` recursively would be catastrophic, if it would.
fn dangerous_tree(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return None;
    }
    let (absolute, comps) = normalize(path);
    if absolute {
        if comps.is_empty() {
            return Some("the filesystem root");
        }
        if comps.len() == 1 {
            return Some("a top-level system directory");
        }
        if matches!(comps[0], "home" | "Users") && comps.len() == 2 {
            return Some("a home directory");
        }
        if SYSTEM_DIRS.contains(&comps[0]) {
            return Some("a system directory");
        }
    } else {
        if comps.is_empty() {
            return Some("the whole working directory");
        }
        if comps.iter().all(|c| *c == "..") {
            return Some("a parent of the working directory");
        }
    }
    if comps.last() == Some(&".git") {
        return Some("the git repository's history");
    }
    None
}

const STARTUP_FILES: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".inputrc",
    ".xinitrc",
    ".xprofile",
];
const HISTORY_FILES: &[&str] = &[
    ".bash_history",
    ".zsh_history",
    ".history",
    ".sh_history",
    ".python_history",
    ".node_repl_history",
];
const HARMLESS_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/tty",
    "/dev/fd/1",
    "/dev/fd/2",
];

/// Why writing to (or truncating, or deleting) `path` would be catastrophic, if it would.
pub(crate) fn protected_write(path: &str) -> Option<&'static str> {
    let (absolute, comps) = normalize(path);
    if absolute && comps.first() == Some(&"dev") {
        let joined = format!("/{}", comps.join("/"));
        if HARMLESS_DEVICES.contains(&joined.as_str()) {
            return None;
        }
        return Some("a device (raw disks and terminals are off limits)");
    }
    if absolute && comps.first().is_some_and(|c| SYSTEM_DIRS.contains(c)) {
        return Some("a system path");
    }
    if let Some(last) = comps.last() {
        if STARTUP_FILES.contains(last) {
            return Some("a shell startup file");
        }
        if HISTORY_FILES.contains(last) {
            return Some("shell history (wiping history hides what happened)");
        }
    }
    if comps.contains(&".ssh") {
        return Some("the SSH directory");
    }
    if comps.windows(2).any(|w| w == [".git", "hooks"]) {
        return Some("git hooks (they run on later git commands)");
    }
    match dangerous_tree(path) {
        Some(d @ ("the filesystem root" | "a top-level system directory" | "a home directory")) => Some(d),
        _ => None,
    }
}

/// What credential `path` names, if any.
fn secret_path(path: &str) -> Option<&'static str> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    let last = *comps.last()?;
    const KEYS: &[&str] = &[
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "id_ecdsa_sk",
        "id_ed25519_sk",
        "identity",
    ];
    if KEYS.contains(&last) {
        return Some("an SSH private key");
    }
    if comps.first() == Some(&"proc") && comps.len() >= 3 && matches!(last, "environ" | "mem" | "auxv") {
        return Some("a process's environment or memory (where MCP_BRIDGE_KEY and tokens may live)");
    }
    if comps
        .windows(2)
        .any(|w| w[0] == "mcp-bridge" && w[1].starts_with("bridge.db"))
    {
        return Some("the bridge's own database or key");
    }
    if let Some(i) = comps.iter().position(|c| *c == ".ssh")
        && i + 1 < comps.len()
        && !last.ends_with(".pub")
        && last != "known_hosts"
    {
        return Some("a file in ~/.ssh");
    }
    if comps.windows(2).any(|w| w[0] == ".aws" && w[1] == "credentials") {
        return Some("AWS credentials");
    }
    if comps.windows(2).any(|w| {
        w[0] == "etc"
            && matches!(
                w[1],
                "shadow" | "gshadow" | "shadow-" | "sudoers" | "sudoers.d" | "master.passwd"
            )
    }) {
        return Some("a system password or sudo file");
    }
    if comps
        .windows(2)
        .any(|w| w[0] == "ssh" && w[1].starts_with("ssh_host_") && w[1].ends_with("_key"))
    {
        return Some("an SSH host key");
    }
    if comps.contains(&".gnupg") {
        return Some("the GnuPG keyring");
    }
    if comps.windows(2).any(|w| {
        (w[0] == ".docker" && w[1] == "config.json")
            || (w[0] == ".kube" && w[1] == "config")
            || (w[0] == ".cargo" && w[1].starts_with("credentials"))
    }) {
        return Some("registry or cluster credentials");
    }
    if last == ".env"
        || (last.starts_with(".env.")
            && !matches!(
                last,
                ".env.example" | ".env.sample" | ".env.template" | ".env.dist" | ".env.defaults"
            ))
    {
        return Some("an .env secrets file");
    }
    if matches!(
        last,
        ".netrc" | ".git-credentials" | ".pgpass" | ".npmrc" | ".pypirc" | ".vault-token" | ".my.cnf"
    ) {
        return Some("a credentials file");
    }
    None
}

/// Checks an argument and its `=value` / `@file` parts for credential paths.
pub(crate) fn secret_in_arg(arg: &str) -> Option<&'static str> {
    let mut candidates = vec![arg];
    if let Some((_, v)) = arg.split_once('=') {
        candidates.push(v);
    }
    if let Some((_, v)) = arg.split_once('@') {
        candidates.push(v);
    }
    if let Some(v) = arg.strip_prefix("file://") {
        candidates.push(v);
    }
    candidates.into_iter().find_map(secret_path)
}

/// A relative path that stays beneath the working directory (lexically).
pub(crate) fn confined(path: &str) -> bool {
    let (absolute, comps) = normalize(path);
    !absolute && !path.starts_with('~') && !comps.contains(&"..")
}

const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "mksh", "pdksh", "fish", "csh", "tcsh", "ash", "yash", "rbash",
];

fn interpreter_family(name: &str) -> Option<&'static str> {
    let family = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match family {
        "python" | "pypy" => "python",
        "perl" => "perl",
        "ruby" | "irb" => "ruby",
        "node" | "nodejs" | "deno" | "bun" => "node",
        "php" => "php",
        "lua" | "luajit" => "lua",
        "tclsh" | "wish" => "tcl",
        "Rscript" => "R",
        "osascript" => "osascript",
        "pwsh" | "powershell" => "powershell",
        _ => return None,
    })
}

/// The inline-code option of an interpreter, if `args` use one: returns the code.
fn inline_code<'a>(family: &str, args: &'a [String]) -> Option<&'a str> {
    let flags: &[&str] = match family {
        "python" => &["-c"],
        "perl" => &["-e", "-E"],
        "ruby" => &["-e"],
        "node" => &["-e", "--eval", "-p", "--print"],
        "php" => &["-r"],
        "lua" => &["-e"],
        "R" => &["-e"],
        "osascript" => &["-e"],
        "powershell" => &["-c", "-Command", "-command", "-EncodedCommand"],
        _ => &[],
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" || !a.starts_with('-') {
            return None;
        }
        for f in flags {
            if a == *f {
                return Some(args.get(i + 1).map_or("", String::as_str));
            }
            // -c'code', -e'code', --eval=code
            if let Some(rest) = a.strip_prefix(f) {
                let rest = rest.strip_prefix('=').unwrap_or(rest);
                if !rest.is_empty() && f.len() == 2 {
                    return Some(rest);
                }
                if f.starts_with("--") && a.starts_with(&format!("{f}=")) {
                    return Some(rest);
                }
            }
        }
        // python -Bc 'code' style clusters
        if family == "python" && !a.starts_with("--") && a.ends_with('c') {
            return Some(args.get(i + 1).map_or("", String::as_str));
        }
        i += 1;
    }
    None
}

/// True when the program reads the program text to execute from standard input.
pub(crate) fn reads_program_from_stdin(argv: &[String]) -> bool {
    let Some(first) = argv.first() else {
        return false;
    };
    let name = basename(first);
    let args = &argv[1..];
    if SHELLS.contains(&name) {
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            if a == "-s" || a == "-" {
                return true;
            }
            if a == "--" {
                return args.get(i + 1).is_none_or(|x| x == "-");
            }
            if matches!(a, "-o" | "+o" | "-O" | "+O") {
                i += 2;
                continue;
            }
            if a.starts_with('-') || a.starts_with('+') {
                if !a.starts_with("--") && a.contains('c') {
                    return false;
                }
                i += 1;
                continue;
            }
            return false;
        }
        return true;
    }
    if let Some(family) = interpreter_family(name) {
        if inline_code(family, args).is_some() {
            return false;
        }
        if family == "python" && args.iter().any(|a| a == "-m") {
            return false;
        }
        let pos = positionals(args);
        return pos.is_empty() || pos[0] == "-";
    }
    false
}

/// Strips well-known wrappers (best effort) to find the program that really runs.
pub(crate) fn effective_argv(argv: &[String]) -> &[String] {
    let mut cur = argv;
    for _ in 0..MAX_DEPTH {
        let Some(first) = cur.first() else {
            return cur;
        };
        let name = basename(first);
        let Some(spec) = wrapper_spec(name) else {
            return cur;
        };
        match split_wrapper(&cur[1..], &spec) {
            Ok(w) if !w.inner.is_empty() => cur = w.inner,
            _ => return cur,
        }
    }
    cur
}

/// Options of a wrapper command that take a value, and how many positionals precede the
/// wrapped command.
struct WrapperSpec {
    with_value: &'static [&'static str],
    leading_positionals: usize,
    /// Leading `NAME=value` words are environment assignments (env).
    assignments: bool,
}

fn wrapper_spec(name: &str) -> Option<WrapperSpec> {
    let spec = |with_value, leading_positionals, assignments| WrapperSpec {
        with_value,
        leading_positionals,
        assignments,
    };
    Some(match name {
        "env" => spec(&["-u", "--unset", "-C", "--chdir"], 0, true),
        "nohup" => spec(&[], 0, false),
        "timeout" => spec(&["-s", "--signal", "-k", "--kill-after"], 1, false),
        "nice" => spec(&["-n", "--adjustment"], 0, false),
        "ionice" => spec(&["-c", "--class", "-n", "--classdata"], 0, false),
        "stdbuf" => spec(&["-i", "-o", "-e", "--input", "--output", "--error"], 0, false),
        "setsid" => spec(&[], 0, false),
        "xargs" => spec(
            &[
                "-n",
                "-L",
                "-P",
                "-d",
                "-s",
                "-E",
                "-a",
                "-I",
                "--max-args",
                "--max-lines",
                "--max-procs",
                "--delimiter",
                "--max-chars",
                "--eof",
                "--arg-file",
                "--process-slot-var",
            ],
            0,
            false,
        ),
        "flock" => spec(&["-w", "--timeout", "-E", "--conflict-exit-code"], 1, false),
        "busybox" | "toybox" => spec(&[], 0, false),
        "time" => spec(&["-f", "--format"], 0, false),
        "chrt" => spec(&[], 1, false),
        "taskset" => spec(&[], 1, false),
        "fakeroot" | "eatmydata" | "unbuffer" | "catchsegv" | "rlwrap" => spec(&[], 0, false),
        _ => return None,
    })
}

struct Wrapped<'a> {
    opts: Vec<&'a str>,
    env: Vec<(&'a str, &'a str)>,
    leading: Vec<&'a str>,
    inner: &'a [String],
}

fn split_wrapper<'a>(args: &'a [String], spec: &WrapperSpec) -> Result<Wrapped<'a>, Refusal> {
    let mut opts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if a.starts_with('-') && a.len() > 1 {
            opts.push(a);
            if spec.with_value.contains(&a) {
                if let Some(v) = args.get(i + 1) {
                    opts.push(v.as_str());
                }
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        break;
    }
    let mut env = Vec::new();
    if spec.assignments {
        while let Some((name, value)) = args.get(i).and_then(|a| a.split_once('=')) {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                break;
            }
            env.push((name, value));
            i += 1;
        }
    }
    let mut leading = Vec::new();
    for _ in 0..spec.leading_positionals {
        match args.get(i) {
            Some(a) => {
                leading.push(a.as_str());
                i += 1;
            }
            None => break,
        }
    }
    Ok(Wrapped {
        opts,
        env,
        leading,
        inner: args.get(i..).unwrap_or(&[]),
    })
}

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

fn wrapper(name: &str, args: &[String], spec: &WrapperSpec, ctx: &mut Ctx) -> Result<(), Refusal> {
    let w = split_wrapper(args, spec)?;
    let mode = ctx.mode;
    let strict = mode != Mode::Yolo;
    match name {
        "env" => {
            if w.opts.iter().any(|o| {
                o.starts_with("-S")
                    || o.starts_with("--split-string")
                    || (o.starts_with('-') && !o.starts_with("--") && o.contains('S'))
            }) {
                return Err(Refusal::new(
                    "\"env -S\" splits a string into a command line, which is not judged",
                ));
            }
            if strict && let Some(pos) = w.opts.iter().position(|o| *o == "-C" || o.starts_with("--chdir")) {
                let dir = w.opts.get(pos + 1).copied().unwrap_or("");
                if !confined(dir) {
                    return Err(Refusal::new(format!(
                        "\"env -C {}\" leaves the working directory",
                        show(dir)
                    )));
                }
            }
            for (n, v) in &w.env {
                judge_env(n, v, mode)?;
            }
            if w.inner.is_empty() {
                return Ok(()); // plain `env` prints the (fixed) environment
            }
        }
        "xargs" => {
            if w.opts
                .iter()
                .any(|o| matches!(*o, "-p" | "--interactive" | "-o" | "--open-tty"))
            {
                return Err(Refusal::new("\"xargs -p/-o\" needs a terminal"));
            }
            let inner_name = w.inner.first().map_or("echo", |s| basename(s));
            const XARGS_SAFE: &[&str] = &[
                "grep",
                "egrep",
                "fgrep",
                "rg",
                "wc",
                "cat",
                "head",
                "tail",
                "ls",
                "stat",
                "du",
                "echo",
                "basename",
                "dirname",
                "file",
                "md5sum",
                "sha256sum",
                "sha1sum",
                "realpath",
            ];
            const DESTRUCTIVE: &[&str] = &[
                "rm", "rmdir", "unlink", "shred", "chmod", "chown", "chgrp", "dd", "mv", "kill", "pkill",
                "truncate", "srm",
            ];
            if strict && !XARGS_SAFE.contains(&inner_name) {
                return Err(Refusal::new(format!(
                    "\"xargs {}\" passes unchecked arguments from stdin; in {mode} mode xargs may only run {}",
                    show(inner_name),
                    XARGS_SAFE.join(", ")
                )));
            }
            if DESTRUCTIVE.contains(&inner_name) {
                return Err(fatal(format!(
                    "\"xargs {inner_name}\" applies a destructive command to targets read from stdin, which cannot be checked"
                )));
            }
            if w.inner.is_empty() {
                return Ok(());
            }
        }
        "flock" => {
            if w.opts.iter().any(|o| *o == "-c" || o.starts_with("--command")) {
                if strict {
                    return Err(Refusal::new("\"flock -c\" runs a shell command string"));
                }
                let pos = w
                    .opts
                    .iter()
                    .position(|o| *o == "-c" || o.starts_with("--command"));
                let script = pos
                    .and_then(|p| w.opts.get(p + 1))
                    .copied()
                    .or_else(|| w.inner.first().map(String::as_str))
                    .unwrap_or("");
                return judge_shell_string(script, "flock -c", ctx);
            }
            if strict {
                return Err(Refusal::new(format!(
                    "\"flock\" creates lock files; it is not on the {mode} allow list"
                )));
            }
            if let Some(file) = w.leading.first()
                && let Some(what) = protected_write(file)
            {
                return Err(fatal(format!("\"flock {}\" would create {what}", show(file))));
            }
        }
        "ionice"
            if w.opts
                .iter()
                .any(|o| matches!(*o, "-p" | "-P" | "-u" | "--pid" | "--pgid" | "--uid")) =>
        {
            return Err(Refusal::new("\"ionice -p/-P/-u\" changes other processes"));
        }
        "time"
            if w.opts.iter().any(|o| {
                matches!(*o, "-o" | "--output" | "-a" | "--append") || o.starts_with("--output=")
            }) =>
        {
            return Err(Refusal::new("\"time -o\" writes a file"));
        }
        "chrt" | "taskset" | "fakeroot" | "eatmydata" | "unbuffer" | "catchsegv" | "rlwrap" if strict => {
            return Err(Refusal::new(format!(
                "\"{name}\" is not on the {mode} allow list"
            )));
        }
        "chrt" | "taskset" if w.opts.iter().any(|o| o.contains('p')) => {
            return Err(Refusal::new(format!("\"{name} -p\" changes other processes")));
        }
        _ => {}
    }
    if w.inner.is_empty() {
        return Err(Refusal::new(format!("\"{name}\" has no command to run")));
    }
    ctx.depth += 1;
    let r = judge(w.inner, ctx);
    ctx.depth -= 1;
    r
}

/// Re-validates a string that another program will hand to a shell (`sh -c`, `flock -c`).
fn judge_shell_string(script: &str, via: &str, ctx: &mut Ctx) -> Result<(), Refusal> {
    let steps = crate::exec::parse::parse_command(script)
        .map_err(|r| Refusal::new(format!("the {via} script: {}", r.0)))?;
    ctx.depth += 1;
    let r = crate::exec::validate::judge_steps(&steps, ctx);
    ctx.depth -= 1;
    r.map_err(|r| {
        let fatal_inner = is_fatal(&r);
        let msg = format!("the {via} script \"{}\": {}", show(script), r.0);
        if fatal_inner {
            Refusal(msg)
        } else {
            Refusal::new(msg)
        }
    })
}

const BUILTINS: &[&str] = &[
    "eval",
    "source",
    ".",
    "exec",
    "command",
    "builtin",
    "export",
    "unset",
    "set",
    "alias",
    "unalias",
    "history",
    "trap",
    "shopt",
    "declare",
    "typeset",
    "local",
    "readonly",
    "let",
    "ulimit",
    "umask",
    "wait",
    "fg",
    "bg",
    "jobs",
    "disown",
    "read",
    "mapfile",
    "readarray",
    "hash",
    "enable",
    "exit",
    "return",
    "shift",
    "getopts",
    "fc",
    ":",
    "pushd",
    "popd",
    "dirs",
    "suspend",
    "logout",
    "complete",
    "compgen",
    "bind",
];

/// Commands refused in every mode (or refused with these arguments in every mode).
fn catastrophic(name: &str, args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    let pos = positionals(args);
    match name {
        "sudo" | "su" | "doas" | "pkexec" | "run0" | "sg" | "newgrp" | "setpriv" | "capsh" | "chroot"
        | "unshare" | "nsenter" | "machinectl" | "systemd-run" | "runuser" | "ksu" | "calife" | "super" => {
            return Err(fatal(format!(
                "\"{name}\" changes user, privileges or namespaces"
            )));
        }
        n if BUILTINS.contains(&n) => {
            return Err(Refusal::new(format!(
                "\"{name}\" is a shell builtin; commands run without a shell, so it cannot work (and eval/source/exec would hide the real command)"
            )));
        }
        "shutdown" | "reboot" | "halt" | "poweroff" | "kexec" | "telinit" | "init" => {
            return Err(fatal(format!("\"{name}\" shuts down or reboots the machine")));
        }
        "systemctl" | "loginctl"
            if pos.iter().any(|a| {
                matches!(
                    *a,
                    "reboot"
                        | "poweroff"
                        | "halt"
                        | "kexec"
                        | "suspend"
                        | "hibernate"
                        | "hybrid-sleep"
                        | "rescue"
                        | "emergency"
                        | "isolate"
                        | "soft-reboot"
                        | "kill-user"
                        | "terminate-user"
                        | "kill-session"
                        | "terminate-session"
                )
            }) =>
        {
            return Err(fatal(format!("\"{name}\" would stop the machine or sessions")));
        }
        n if n.starts_with("mkfs")
            || matches!(
                n,
                "mke2fs"
                    | "mkswap"
                    | "wipefs"
                    | "fdisk"
                    | "sfdisk"
                    | "cfdisk"
                    | "gdisk"
                    | "sgdisk"
                    | "parted"
                    | "blkdiscard"
                    | "hdparm"
                    | "badblocks"
                    | "cryptsetup"
                    | "losetup"
                    | "mount"
                    | "umount"
                    | "swapoff"
                    | "swapon"
                    | "debugfs"
                    | "tune2fs"
                    | "e2fsck"
                    | "fsck"
                    | "zpool"
                    | "lvremove"
                    | "vgremove"
                    | "pvremove"
                    | "mdadm"
            ) =>
        {
            return Err(fatal(format!("\"{name}\" formats, partitions or mounts disks")));
        }
        "dd" => {
            for a in args {
                if let Some(target) = a.strip_prefix("of=")
                    && let Some(what) = protected_write(target)
                {
                    return Err(fatal(format!("\"dd {a}\" writes to {what}")));
                }
            }
        }
        "shred" | "truncate" | "srm" | "wipe" => {
            for p in &pos {
                if let Some(what) = protected_write(p).or_else(|| dangerous_tree(p)) {
                    return Err(fatal(format!("\"{name} {}\" destroys {what}", show(p))));
                }
            }
        }
        "rm" | "rmdir" | "unlink" => {
            if has_flag(args, "", &["--no-preserve-root"]) {
                return Err(fatal(
                    "\"rm --no-preserve-root\" exists only to delete the filesystem root",
                ));
            }
            let recursive = name == "rm" && has_flag(args, "rR", &["--recursive"]);
            for p in &pos {
                if let Some(what) = protected_write(p) {
                    return Err(fatal(format!("\"{}\" deletes {what}", cmdline(name, args))));
                }
                if recursive && let Some(what) = dangerous_tree(p) {
                    return Err(fatal(format!(
                        "\"{}\" recursively deletes {what}",
                        cmdline(name, args)
                    )));
                }
                if p.contains('*') && normalize(p).1.len() <= 2 {
                    return Err(fatal(format!(
                        "\"{name} {}\" looks like a wildcard delete near the root",
                        show(p)
                    )));
                }
            }
        }
        "chmod" | "chown" | "chgrp" | "chattr" | "setfacl" => {
            for p in &pos {
                if let Some(what) = dangerous_tree(p).or_else(|| protected_write(p)) {
                    return Err(fatal(format!(
                        "\"{name} … {}\" changes permissions of {what}",
                        show(p)
                    )));
                }
            }
        }
        "crontab" if args.len() != 1 || args[0] != "-l" => {
            return Err(fatal(
                "\"crontab\" (other than -l) replaces or removes scheduled jobs",
            ));
        }
        "kill" => {
            let mut signal_given = false;
            let mut i = 0;
            while i < args.len() {
                let a = args[i].as_str();
                if a == "--" {
                    if args[i + 1..].iter().any(|x| x == "-1") {
                        return Err(fatal("\"kill -- -1\" signals every process of the account"));
                    }
                    break;
                }
                if matches!(a, "-s" | "-n" | "--signal") {
                    signal_given = true;
                    i += 2;
                    continue;
                }
                if a == "-1" && signal_given {
                    return Err(fatal("\"kill … -1\" signals every process of the account"));
                }
                if a.starts_with('-') {
                    signal_given = true;
                }
                i += 1;
            }
        }
        "killall" | "pkill" if pos.is_empty() => {
            return Err(fatal(format!("\"{name}\" without a process name")));
        }
        "killall5" => return Err(fatal("\"killall5\" signals every process")),
        "iptables" | "ip6tables" | "iptables-legacy" | "ip6tables-legacy" | "iptables-nft"
        | "ip6tables-nft" | "iptables-restore" | "ip6tables-restore" | "nft" | "ufw" | "firewall-cmd"
        | "ebtables" | "arptables" => {
            let listing = match name {
                "nft" => pos.first().is_some_and(|a| *a == "list"),
                "ufw" => pos.first().is_some_and(|a| *a == "status"),
                "firewall-cmd" => args
                    .iter()
                    .all(|a| a.starts_with("--list") || a.starts_with("--get") || a == "--state"),
                _ => {
                    !args.is_empty()
                        && args.iter().all(|a| {
                            matches!(
                                a.as_str(),
                                "-L" | "-S"
                                    | "--list"
                                    | "--list-rules"
                                    | "-n"
                                    | "-v"
                                    | "--line-numbers"
                                    | "-t"
                                    | "nat"
                                    | "filter"
                                    | "mangle"
                                    | "raw"
                                    | "INPUT"
                                    | "OUTPUT"
                                    | "FORWARD"
                            )
                        })
                }
            };
            if !listing {
                return Err(fatal(format!("\"{name}\" changes the firewall")));
            }
        }
        "passwd"
        | "chpasswd"
        | "useradd"
        | "userdel"
        | "usermod"
        | "adduser"
        | "deluser"
        | "groupadd"
        | "groupdel"
        | "groupmod"
        | "visudo"
        | "vipw"
        | "vigr"
        | "modprobe"
        | "insmod"
        | "rmmod"
        | "chsh"
        | "chfn"
        | "update-alternatives"
        | "grub-install"
        | "update-grub"
        | "efibootmgr" => {
            return Err(fatal(format!(
                "\"{name}\" changes accounts, boot or kernel configuration"
            )));
        }
        "sysctl"
            if args
                .iter()
                .any(|a| a == "-w" || a.contains('=') || a == "-p" || a == "--load") =>
        {
            return Err(fatal("\"sysctl -w\" changes kernel settings"));
        }
        "vi" | "vim" | "nvim" | "view" | "vimdiff" | "ex" | "nano" | "pico" | "emacs" | "emacsclient"
        | "joe" | "mcedit" | "less" | "more" | "most" | "pg" | "man" | "info" | "top" | "htop" | "btop"
        | "screen" | "tmux" | "ed" | "mc" | "ranger" | "nnn" => {
            return Err(Refusal::new(format!(
                "\"{name}\" is interactive (pagers and editors can also run shell commands); there is no terminal — use cat, head or sed -n instead"
            )));
        }
        "watch" => {
            return Err(Refusal::new(
                "\"watch\" re-runs its argument through sh -c until killed; run the command once instead",
            ));
        }
        "script" | "strace" | "ltrace" | "gdb" | "lldb" | "parallel" | "expect" | "valgrind" => {
            return Err(Refusal::new(format!(
                "\"{name}\" runs commands or writes files this validator cannot inspect"
            )));
        }
        "tar" | "bsdtar" | "gtar" => {
            if has_flag(
                args,
                "IF",
                &[
                    "--to-command",
                    "--checkpoint-action",
                    "--use-compress-program",
                    "--rsh-command",
                    "--info-script",
                    "--new-volume-script",
                    "--rmt-command",
                ],
            ) || args.iter().any(|a| {
                // old-style `tar xvf…` bundles: only the command-running letters matter
                !a.starts_with('-')
                    && a.len() < 12
                    && a.chars().all(|c| c.is_ascii_alphabetic())
                    && a.contains('I')
                    && args.first() == Some(a)
            }) {
                return Err(fatal(
                    "\"tar --to-command/--checkpoint-action/-I/-F\" runs arbitrary programs",
                ));
            }
            let mut it = args.iter();
            while let Some(a) = it.next() {
                let dir = if a == "-C" || a == "--directory" {
                    it.next().map(String::as_str)
                } else {
                    a.strip_prefix("--directory=")
                };
                if let Some(d) = dir
                    && let Some(what) = protected_write(d)
                        .or_else(|| dangerous_tree(d).filter(|w| *w != "the whole working directory"))
                {
                    return Err(fatal(format!("\"tar -C {}\" extracts into {what}", show(d))));
                }
            }
        }
        "zip" if has_flag(args, "", &["-TT", "--unzip-command"]) => {
            return Err(fatal("\"zip -TT\" runs an arbitrary test command"));
        }
        "rsync" => {
            if has_flag(args, "e", &["--rsh", "--rsync-path"]) {
                return Err(fatal("\"rsync -e/--rsh/--rsync-path\" runs an arbitrary program"));
            }
            if let Some(dest) = pos.last()
                && let Some(what) = protected_write(dest).or_else(|| {
                    dangerous_tree(dest).filter(|_| {
                        has_flag(
                            args,
                            "",
                            &[
                                "--delete",
                                "--delete-before",
                                "--delete-after",
                                "--delete-during",
                                "--del",
                            ],
                        )
                    })
                })
            {
                return Err(fatal(format!("\"rsync … {}\" overwrites {what}", show(dest))));
            }
        }
        "ssh" | "scp" | "sftp" | "autossh" => {
            let lower: Vec<String> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
            let bad = lower.iter().any(|a| {
                a.contains("proxycommand")
                    || a.contains("localcommand")
                    || a.contains("knownhostscommand")
                    || a.contains("remotecommand")
            }) || (name != "ssh" && args.iter().any(|a| a == "-S"));
            if bad {
                return Err(fatal(format!(
                    "\"{name} -o ProxyCommand/LocalCommand\" (or -S) runs a local command"
                )));
            }
        }
        "git" => git_universal(args, ctx)?,
        "find" => find_universal(args, ctx)?,
        "sed" | "gsed" => sed_universal(args, ctx.mode)?,
        "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk" => awk_universal(args, ctx.mode)?,
        "mv" | "cp" | "ln" | "install" | "tee" | "touch" | "mkdir" | "rename" => {
            let targets: Vec<&str> = match name {
                "tee" | "touch" | "mkdir" => pos.clone(),
                _ => {
                    let mut t: Vec<&str> = pos.last().copied().into_iter().collect();
                    for (i, a) in args.iter().enumerate() {
                        if a == "-t" || a == "--target-directory" {
                            t.extend(args.get(i + 1).map(String::as_str));
                        } else if let Some(d) = a.strip_prefix("--target-directory=") {
                            t.push(d);
                        }
                    }
                    t
                }
            };
            for t in targets {
                if let Some(what) = protected_write(t) {
                    return Err(fatal(format!("\"{name} … {}\" overwrites {what}", show(t))));
                }
            }
            if name == "mv" {
                for p in &pos {
                    if let Some(what) = dangerous_tree(p).filter(|w| *w != "the git repository's history") {
                        return Err(fatal(format!("\"mv {}\" moves away {what}", show(p))));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Git configuration keys whose values are commands (or enable running them).
fn git_key_runs_code(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("alias.")
        || k.starts_with("filter.")
        || k.starts_with("diff.")
            && (k.ends_with(".textconv") || k.ends_with(".command") || k == "diff.external")
        || k.starts_with("merge.") && k.ends_with(".driver")
        || k.starts_with("pager.")
        || k.starts_with("credential")
        || k.starts_with("uploadpack.")
        || k.starts_with("receivepack.")
        || k.starts_with("protocol.")
        || k.starts_with("url.")
        || k.starts_with("gpg.")
        || k.starts_with("include")
        || k.starts_with("remote.")
            && (k.ends_with(".uploadpack") || k.ends_with(".receivepack") || k.ends_with(".vcs"))
        || matches!(
            k.as_str(),
            "core.pager"
                | "core.editor"
                | "core.sshcommand"
                | "core.fsmonitor"
                | "core.hookspath"
                | "core.gitproxy"
                | "core.askpass"
                | "core.worktree"
                | "sequence.editor"
                | "sendemail.smtpserver"
                | "sendemail.tocmd"
                | "sendemail.cccmd"
                | "ssh.variant"
                | "http.proxy"
                | "web.browser"
                | "difftool.cmd"
                | "mergetool.cmd"
        )
        || k.starts_with("difftool.")
        || k.starts_with("mergetool.")
        || k.starts_with("browser.")
}

/// Git global options: returns the index of the subcommand. Refuses code-running config.
fn git_globals(args: &[String], mode: Mode) -> Result<usize, Refusal> {
    let strict = mode != Mode::Yolo;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if !a.starts_with('-') {
            return Ok(i);
        }
        match a {
            "-c" => {
                let kv = args.get(i + 1).map_or("", String::as_str);
                let key = kv.split('=').next().unwrap_or(kv);
                if git_key_runs_code(key) {
                    return Err(fatal(format!(
                        "\"git -c {}\" sets a configuration value that runs a program",
                        show(kv)
                    )));
                }
                if strict {
                    return Err(Refusal::new(format!(
                        "\"git -c {}\" overrides configuration; not allowed in {mode} mode",
                        show(kv)
                    )));
                }
                i += 2;
            }
            "-C" => {
                let dir = args.get(i + 1).map_or("", String::as_str);
                if strict && !confined(dir) {
                    return Err(Refusal::new(format!(
                        "\"git -C {}\" points outside the working directory",
                        show(dir)
                    )));
                }
                i += 2;
            }
            "--no-pager"
            | "--no-replace-objects"
            | "--literal-pathspecs"
            | "--glob-pathspecs"
            | "--noglob-pathspecs"
            | "--icase-pathspecs"
            | "--no-optional-locks"
            | "--version"
            | "--help"
            | "--exec-path"
            | "--html-path"
            | "--man-path"
            | "--info-path"
            | "--no-lazy-fetch"
            | "--no-advice"
            | "-P" => i += 1,
            _ if a.starts_with("--config-env") => {
                return Err(fatal(
                    "\"git --config-env\" sets configuration from the environment (core.pager, aliases…), which can run programs",
                ));
            }
            _ if a.starts_with("--exec-path=") => {
                return Err(fatal(
                    "\"git --exec-path=…\" makes git run programs from another directory",
                ));
            }
            _ if strict => {
                return Err(Refusal::new(format!(
                    "the git option \"{}\" is not allowed in {mode} mode",
                    show(a)
                )));
            }
            "--git-dir" | "--work-tree" | "--namespace" | "--super-prefix" => i += 2,
            _ => i += 1,
        }
    }
    Ok(args.len())
}

fn git_universal(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    let sub_i = git_globals(args, ctx.mode)?;
    let sub = args.get(sub_i).map_or("", String::as_str);
    let rest = args.get(sub_i + 1..).unwrap_or(&[]);
    if has_flag(
        rest,
        "",
        &["--upload-pack", "--receive-pack", "--exec", "--ext-diff-cmd"],
    ) || (matches!(sub, "fetch" | "pull" | "clone" | "ls-remote" | "archive")
        && rest.iter().any(|a| a == "-u"))
    {
        return Err(fatal(format!(
            "\"git {sub} --upload-pack/--receive-pack/--exec\" runs an arbitrary program"
        )));
    }
    for a in rest {
        if let Some(path) = a.strip_prefix("--output=")
            && let Some(what) = protected_write(path)
        {
            return Err(fatal(format!(
                "\"git {sub} --output={}\" overwrites {what}",
                show(path)
            )));
        }
    }
    match sub {
        "push" => {
            let forced = has_flag(rest, "f", &["--force", "--mirror"])
                || positionals(rest).iter().any(|r| r.starts_with('+'));
            if forced && ctx.mode == Mode::Yolo {
                return Err(fatal(
                    "\"git push --force/-f/--mirror/+refspec\" rewrites the remote's history (use --force-with-lease)",
                ));
            }
        }
        "config" if rest.iter().any(|a| git_key_runs_code(a)) => {
            return Err(fatal(
                "\"git config\" of a key that runs programs (alias, core.pager, hooks…)",
            ));
        }
        _ => {}
    }
    Ok(())
}

fn find_universal(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    const ACTIONS: &[&str] = &["-exec", "-execdir", "-ok", "-okdir"];
    const WRITES: &[&str] = &["-delete", "-fprint", "-fprint0", "-fprintf", "-fls"];
    let starts: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .take_while(|a| !a.starts_with('-') && *a != "(" && *a != "!")
        .collect();
    let starts = if starts.is_empty() { vec!["."] } else { starts };
    let strict = ctx.mode != Mode::Yolo;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if ACTIONS.contains(&a) {
            if strict {
                return Err(Refusal::new(format!(
                    "\"find {a}\" runs a command on every match; not allowed in {} mode",
                    ctx.mode
                )));
            }
            let end = args[i + 1..]
                .iter()
                .position(|x| x == ";" || x == "+")
                .map_or(args.len(), |p| i + 1 + p);
            let inner = &args[i + 1..end];
            let inner_name = inner.first().map_or("", |s| basename(s));
            if matches!(
                inner_name,
                "rm" | "shred" | "chmod" | "chown" | "chgrp" | "mv" | "truncate" | "srm"
            ) {
                for s in &starts {
                    if let Some(what) = dangerous_tree(s).filter(|w| *w != "the whole working directory") {
                        return Err(fatal(format!(
                            "\"find {} {a} {inner_name}\" applies a destructive command across {what}",
                            show(s)
                        )));
                    }
                }
            }
            ctx.depth += 1;
            let r = judge(inner, ctx);
            ctx.depth -= 1;
            r.map_err(|r| Refusal(format!("the command run by \"find {a}\": {}", r.0)))?;
            i = end + 1;
            continue;
        }
        if WRITES.contains(&a) {
            if strict {
                return Err(Refusal::new(format!(
                    "\"find {a}\" deletes or writes files; {} mode allows no such find actions",
                    ctx.mode
                )));
            }
            if a == "-delete" {
                for s in &starts {
                    if let Some(what) = dangerous_tree(s).filter(|w| *w != "the whole working directory") {
                        return Err(fatal(format!("\"find {} -delete\" deletes {what}", show(s))));
                    }
                }
            } else if let Some(path) = args.get(i + 1)
                && let Some(what) = protected_write(path)
            {
                return Err(fatal(format!("\"find {a} {}\" overwrites {what}", show(path))));
            }
        }
        i += 1;
    }
    Ok(())
}

/// Result of scanning a sed script.
enum SedScript {
    Ok,
    Executes,
    Writes,
    Unparsed,
}

/// Walks a GNU sed script far enough to find `e`, `w`, `W` commands and `s///e`/`s///w`.
fn scan_sed(script: &str) -> SedScript {
    let c: Vec<char> = script.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < c.len() && (c[*i].is_whitespace() || c[*i] == ';') {
            *i += 1;
        }
    };
    // Reads a delimited part starting after the delimiter; returns index after the closing one.
    let delimited = |mut i: usize, d: char| -> Option<usize> {
        while i < c.len() {
            if c[i] == '\\' {
                i += 2;
                continue;
            }
            if c[i] == d {
                return Some(i + 1);
            }
            if c[i] == '\n' && d != '\n' {
                return None;
            }
            i += 1;
        }
        None
    };
    loop {
        skip_ws(&mut i);
        if i >= c.len() {
            return SedScript::Ok;
        }
        // addresses: numbers, $, /re/, \cREc, first~step, +N, ~N, ranges, !
        for _ in 0..2 {
            if i < c.len() && (c[i].is_ascii_digit() || c[i] == '$') {
                while i < c.len() && (c[i].is_ascii_digit() || c[i] == '$' || c[i] == '~') {
                    i += 1;
                }
            } else if i < c.len() && c[i] == '/' {
                let Some(n) = delimited(i + 1, '/') else {
                    return SedScript::Unparsed;
                };
                i = n;
                while i < c.len() && matches!(c[i], 'I' | 'M') {
                    i += 1;
                }
            } else if i + 1 < c.len() && c[i] == '\\' {
                let d = c[i + 1];
                let Some(n) = delimited(i + 2, d) else {
                    return SedScript::Unparsed;
                };
                i = n;
            }
            if i < c.len() && c[i] == ',' {
                i += 1;
                if i < c.len() && matches!(c[i], '+' | '~') {
                    i += 1;
                }
                continue;
            }
            break;
        }
        while i < c.len() && (c[i] == '!' || c[i] == ' ') {
            i += 1;
        }
        if i >= c.len() {
            return SedScript::Unparsed;
        }
        let cmd = c[i];
        i += 1;
        match cmd {
            '{' | '}' | '=' | 'd' | 'D' | 'g' | 'G' | 'h' | 'H' | 'n' | 'N' | 'p' | 'P' | 'x' | 'z' | 'F' => {
            }
            'e' => return SedScript::Executes,
            'w' | 'W' => return SedScript::Writes,
            'q' | 'Q' | 'l' | 'L' => {
                while i < c.len() && (c[i].is_ascii_digit() || c[i] == ' ') {
                    i += 1;
                }
            }
            ':' | 'b' | 't' | 'T' | 'r' | 'R' | 'a' | 'i' | 'c' | 'v' => {
                // label / filename / text: to end of line (a/i/c) or ; (labels)
                let to_semicolon = matches!(cmd, 'b' | 't' | 'T' | 'v');
                while i < c.len() && c[i] != '\n' && !(to_semicolon && (c[i] == ';' || c[i] == '}')) {
                    if c[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            's' | 'y' => {
                let Some(&d) = c.get(i) else {
                    return SedScript::Unparsed;
                };
                if d == '\n' || d == '\\' {
                    return SedScript::Unparsed;
                }
                let Some(n) = delimited(i + 1, d) else {
                    return SedScript::Unparsed;
                };
                let Some(n) = delimited(n, d) else {
                    return SedScript::Unparsed;
                };
                i = n;
                if cmd == 's' {
                    while i < c.len() && !matches!(c[i], ';' | '\n' | '}') {
                        match c[i] {
                            'e' => return SedScript::Executes,
                            'w' => return SedScript::Writes,
                            'g' | 'p' | 'i' | 'I' | 'm' | 'M' | ' ' => {}
                            d if d.is_ascii_digit() => {}
                            _ => return SedScript::Unparsed,
                        }
                        i += 1;
                    }
                }
            }
            '#' => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            _ => return SedScript::Unparsed,
        }
    }
}

fn sed_universal(args: &[String], mode: Mode) -> Result<(), Refusal> {
    let strict = mode != Mode::Yolo;
    let mut scripts: Vec<&str> = Vec::new();
    let mut explicit = false;
    let mut i = 0;
    let mut positional_seen = false;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "-e" || a == "--expression" {
            explicit = true;
            scripts.extend(args.get(i + 1).map(String::as_str));
            i += 2;
            continue;
        }
        if let Some(s) = a.strip_prefix("--expression=") {
            explicit = true;
            scripts.push(s);
        } else if a == "-f"
            || a.starts_with("--file")
            || (a.starts_with('-') && !a.starts_with("--") && a.contains('f'))
        {
            return Err(Refusal::new(
                "\"sed -f\" reads a script file that cannot be inspected",
            ));
        } else if a == "-i"
            || a.starts_with("--in-place")
            || (a.starts_with('-') && !a.starts_with("--") && a.contains('i'))
        {
            if strict {
                return Err(Refusal::new(format!(
                    "\"sed -i\" edits files in place; {mode} mode {}",
                    if mode == Mode::Safe {
                        "allows no writes"
                    } else {
                        "only writes through the build tools on its allow list"
                    }
                )));
            }
        } else if !a.starts_with('-') || a == "-" {
            if !explicit && !positional_seen {
                scripts.push(a);
            }
            positional_seen = true;
        } else if a.starts_with('-') && !a.starts_with("--") && a.contains('e') {
            // -ne 'script'
            explicit = true;
            scripts.extend(args.get(i + 1).map(String::as_str));
            i += 2;
            continue;
        }
        i += 1;
    }
    for s in scripts {
        match scan_sed(s) {
            SedScript::Ok => {}
            SedScript::Executes => {
                return Err(fatal(format!(
                    "the sed script \"{}\" executes shell commands (e)",
                    show(s)
                )));
            }
            SedScript::Writes => {
                return Err(Refusal::new(format!(
                    "the sed script \"{}\" writes files (w) whose targets are not checked; use a redirection instead",
                    show(s)
                )));
            }
            SedScript::Unparsed => {
                return Err(Refusal::new(format!(
                    "the sed script \"{}\" could not be analysed for e/w commands",
                    show(s)
                )));
            }
        }
    }
    Ok(())
}

fn awk_universal(args: &[String], mode: Mode) -> Result<(), Refusal> {
    let strict = mode != Mode::Yolo;
    let mut i = 0;
    let mut program: Option<&str> = None;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-f" | "--file" | "-E" | "--exec" | "-i" | "--include" | "-l" | "--load" => {
                return Err(Refusal::new(format!(
                    "\"awk {a}\" loads program code that cannot be inspected"
                )));
            }
            "-F" | "-v" | "--assign" | "--field-separator" => i += 2,
            "--" => {
                program = args.get(i + 1).map(String::as_str);
                break;
            }
            _ if a.starts_with('-') && a.len() > 1 => i += 1,
            _ => {
                program = Some(a);
                break;
            }
        }
    }
    let Some(p) = program else {
        return Ok(());
    };
    if p.contains("system") || p.contains('|') || p.contains('@') {
        return Err(fatal(format!(
            "the awk program \"{}\" runs commands (system(), pipes or @load)",
            show(p)
        )));
    }
    if strict && p.contains('>') {
        return Err(Refusal::new(format!(
            "the awk program \"{}\" contains \">\" (it may redirect output to a file); use sort/grep or yolo mode",
            show(p)
        )));
    }
    Ok(())
}

/// Yolo-mode checks for commands that passed the catastrophic list.
fn yolo(name: &str, args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    ctx.network = true;
    if SHELLS.contains(&name) {
        let mut i = 0;
        let mut wants_c = false;
        while i < args.len() {
            let a = args[i].as_str();
            if a == "--" {
                i += 1;
                break;
            }
            if matches!(a, "-o" | "+o" | "-O" | "+O") {
                i += 2;
                continue;
            }
            if a.starts_with("--") {
                if matches!(
                    a,
                    "--norc" | "--noprofile" | "--posix" | "--login" | "--noediting"
                ) {
                    i += 1;
                    continue;
                }
                return Err(Refusal::new(format!(
                    "the shell option \"{}\" is not supported",
                    show(a)
                )));
            }
            if a.starts_with('-') || a.starts_with('+') {
                if a.contains('c') {
                    wants_c = true;
                }
                i += 1;
                continue;
            }
            break;
        }
        if wants_c {
            let script = args.get(i).map_or("", String::as_str);
            return judge_shell_string(script, &format!("{name} -c"), ctx);
        }
        return Ok(()); // `bash script.sh`: runs a file from the workspace
    }
    if let Some(family) = interpreter_family(name) {
        if let Some(code) = inline_code(family, args) {
            return scan_inline_code(name, code);
        }
        return Ok(());
    }
    // Unknown program: look for catastrophic commands hidden in its arguments
    // (`taskset 1 rm -rf /`, `ssh host 'rm -rf /'`).
    if !is_known_tool(name) {
        for start in 0..args.len() {
            let sub = &args[start..];
            let mut probe = Ctx {
                mode: Mode::Yolo,
                depth: ctx.depth + 1,
                network: false,
            };
            let sub_name = basename(&sub[0]);
            if !sub_name.is_empty()
                && let Err(r) = catastrophic(sub_name, &sub[1..], &mut probe)
                && is_fatal(&r)
            {
                return Err(Refusal(format!(
                    "an argument of \"{name}\" spells a catastrophic command: {}",
                    r.0
                )));
            }
            if sub[0].contains(char::is_whitespace)
                && ctx.depth < MAX_DEPTH
                && let Ok(steps) = crate::exec::parse::parse_command(&sub[0])
                && let Err(r) = crate::exec::validate::judge_steps(&steps, &mut probe)
                && is_fatal(&r)
            {
                return Err(Refusal(format!(
                    "the argument \"{}\" of \"{name}\" contains a catastrophic command: {}",
                    show(&sub[0]),
                    r.0
                )));
            }
        }
    }
    Ok(())
}

/// Programs whose arguments are data, not commands (not scanned for embedded commands).
fn is_known_tool(name: &str) -> bool {
    matches!(
        name,
        "git"
            | "echo"
            | "printf"
            | "grep"
            | "egrep"
            | "fgrep"
            | "rg"
            | "cargo"
            | "npm"
            | "make"
            | "go"
            | "pytest"
            | "cat"
            | "ls"
            | "head"
            | "tail"
            | "wc"
            | "diff"
            | "sort"
            | "jq"
            | "cp"
            | "mv"
            | "rm"
            | "mkdir"
            | "touch"
            | "tee"
            | "sed"
            | "awk"
            | "find"
            | "tar"
            | "curl"
            | "wget"
            | "rustc"
            | "rustup"
            | "node"
            | "npx"
            | "yarn"
            | "pnpm"
    )
}

fn scan_inline_code(name: &str, code: &str) -> Result<(), Refusal> {
    const PATTERNS: &[&str] = &[
        "rm -rf",
        "rm -fr",
        "rm -r",
        "rmtree",
        "mkfs",
        "/dev/sd",
        "/dev/nvme",
        "/dev/hd",
        "/dev/vd",
        "/dev/mmcblk",
        "dd if=",
        "of=/dev",
        "os.system",
        "subprocess",
        "pty.spawn",
        "child_process",
        "execSync",
        "spawnSync",
        "execFile",
        "Runtime.getRuntime",
        "shell_exec",
        "passthru",
        "proc_open",
        "popen",
        "system(",
        "system ",
        "exec(",
        "exec ",
        "`",
        "%x",
        "/etc/shadow",
        ".ssh",
        "id_rsa",
        "id_ed25519",
        ".aws",
        ".env",
        "shutdown",
        "reboot",
        "poweroff",
        "kill -9",
        "killpg",
        "fork",
        ":(){",
        "eval(",
        "__import__",
        "sudo ",
        "chmod -R",
        "chown -R",
        "iptables",
        "crontab",
        "os.remove",
        "os.unlink",
        "unlinkSync",
        "rmSync",
        "rmdirSync",
        "fs.rm",
        "shutil",
        "base64",
        "b64decode",
        "Deno.run",
        "Deno.Command",
        "Bun.spawn",
        "io.popen",
        "os.execute",
    ];
    if let Some(p) = PATTERNS.iter().find(|p| code.contains(**p)) {
        return Err(fatal(format!(
            "inline {name} code contains \"{p}\", which may run commands, destroy files or read secrets; put the code in a file so it can be reviewed"
        )));
    }
    Ok(())
}

/// Safe and restricted allow lists. `None` = not listed.
fn allowlisted(name: &str, args: &[String], ctx: &mut Ctx) -> Option<Result<(), Refusal>> {
    let mode = ctx.mode;
    let restricted = mode == Mode::Restricted;
    let no_write = |what: &str| -> Result<(), Refusal> {
        Err(Refusal::new(format!(
            "\"{what}\" writes files; {mode} mode {}",
            if mode == Mode::Safe {
                "allows no writes"
            } else {
                "only writes through the build tools on its allow list"
            }
        )))
    };
    let r = match name {
        "ls" | "cat" | "head" | "tail" | "wc" | "grep" | "egrep" | "fgrep" | "diff" | "cmp" | "stat"
        | "pwd" | "echo" | "printf" | "cut" | "tr" | "du" | "df" | "true" | "false" | "basename"
        | "dirname" | "realpath" | "readlink" | "nl" | "tac" | "rev" | "comm" | "join" | "paste" | "fold"
        | "column" | "expand" | "unexpand" | "seq" | "md5sum" | "sha1sum" | "sha256sum" | "sha512sum"
        | "b2sum" | "cksum" | "od" | "hexdump" | "strings" | "which" | "whoami" | "id" | "uname"
        | "printenv" | "test" | "[" | "sleep" | "jq" | "yes" | "numfmt" | "nproc" | "sed" | "awk"
        | "gawk" | "mawk" | "find" => Ok(()),
        "rg" => {
            if has_flag(args, "", &["--pre", "--pre-glob"]) {
                Err(Refusal::new(
                    "\"rg --pre\" runs a preprocessor command on every file",
                ))
            } else {
                Ok(())
            }
        }
        "sort" => {
            if has_flag(args, "o", &["--output", "--compress-program"]) {
                if has_flag(args, "", &["--compress-program"]) {
                    Err(Refusal::new("\"sort --compress-program\" runs a program"))
                } else {
                    no_write("sort -o")
                }
            } else {
                Ok(())
            }
        }
        "uniq" => {
            let mut n = 0;
            let mut it = args.iter();
            while let Some(a) = it.next() {
                if matches!(a.as_str(), "-f" | "-s" | "-w") {
                    it.next();
                } else if !a.starts_with('-') || a == "-" {
                    n += 1;
                }
            }
            if n > 1 {
                no_write("uniq INPUT OUTPUT")
            } else {
                Ok(())
            }
        }
        "tree" => {
            if has_flag(args, "oR", &["--output"]) {
                no_write("tree -o/-R")
            } else {
                Ok(())
            }
        }
        "file" => {
            if has_flag(args, "C", &["--compile"]) {
                no_write("file -C")
            } else {
                Ok(())
            }
        }
        "date" => {
            if has_flag(args, "s", &["--set"]) {
                Err(Refusal::new("\"date -s\" sets the system clock"))
            } else {
                Ok(())
            }
        }
        "xxd" => {
            let mut n = 0;
            let mut it = args.iter();
            while let Some(a) = it.next() {
                if matches!(
                    a.as_str(),
                    "-c" | "-g" | "-l" | "-s" | "-o" | "-n" | "-cols" | "-len" | "-seek"
                ) {
                    it.next();
                } else if !a.starts_with('-') || a == "-" {
                    n += 1;
                }
            }
            if n > 1 {
                no_write("xxd INFILE OUTFILE")
            } else {
                Ok(())
            }
        }
        "git" => git_allowlisted(args, ctx),
        "cargo" if restricted => cargo(args, ctx),
        "npm" if restricted => npm(args, ctx),
        "pytest" | "py.test" if restricted => pytest(args),
        n if restricted && interpreter_family(n) == Some("python") => {
            if args.len() >= 2 && args[0] == "-m" && args[1] == "pytest" {
                pytest(&args[2..])
            } else {
                Err(Refusal::new(format!(
                    "\"{n}\" may only run \"-m pytest\" in restricted mode"
                )))
            }
        }
        "make" | "gmake" if restricted => make(args),
        "go" if restricted => go(args, ctx),
        "mkdir" | "touch" if restricted => {
            let mut bad = None;
            for p in positionals(args) {
                if !confined(p) {
                    bad = Some(p);
                }
            }
            match bad {
                Some(p) => Err(Refusal::new(format!(
                    "\"{name} {}\" is outside the working directory",
                    show(p)
                ))),
                None => Ok(()),
            }
        }
        _ => return None,
    };
    Some(r)
}

fn git_allowlisted(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    let mode = ctx.mode;
    let restricted = mode == Mode::Restricted;
    let sub_i = git_globals(args, mode)?;
    let Some(sub) = args.get(sub_i).map(String::as_str) else {
        return Ok(()); // `git --version`
    };
    let rest = &args[sub_i + 1..];
    let refuse = |why: &str| -> Result<(), Refusal> {
        Err(Refusal::new(format!(
            "\"git {sub}\" {why}; not allowed in {mode} mode"
        )))
    };
    // Flags that run programs or write files, whatever the subcommand.
    if has_flag(
        rest,
        "",
        &[
            "--output",
            "--ext-diff",
            "--exec",
            "--upload-pack",
            "--receive-pack",
            "--open-files-in-pager",
            "--edit-description",
            "--textconv",
        ],
    ) {
        return refuse("with --output/--ext-diff/--exec/--upload-pack writes files or runs programs");
    }
    let pos = positionals(rest);
    match sub {
        "status" | "log" | "diff" | "show" | "rev-parse" | "ls-files" | "blame" | "describe" | "shortlog"
        | "cat-file" | "ls-tree" | "rev-list" | "whatchanged" | "name-rev" | "merge-base" | "show-ref"
        | "for-each-ref" | "count-objects" | "version" | "help" => {
            if sub == "help"
                && rest
                    .iter()
                    .any(|a| a == "-w" || a == "--web" || a == "-m" || a == "--man")
            {
                return refuse("opens a browser or pager");
            }
            Ok(())
        }
        "grep" => {
            if has_flag(rest, "O", &[]) {
                refuse("-O opens a pager command")
            } else {
                Ok(())
            }
        }
        "branch" => {
            let listing = has_flag(
                rest,
                "alr",
                &[
                    "--list",
                    "--all",
                    "--remotes",
                    "--contains",
                    "--no-contains",
                    "--merged",
                    "--no-merged",
                    "--points-at",
                    "--show-current",
                ],
            );
            let destructive = has_flag(
                rest,
                "DdMmCcf",
                &[
                    "--delete",
                    "--move",
                    "--copy",
                    "--force",
                    "--set-upstream-to",
                    "--unset-upstream",
                    "--edit-description",
                    "--track",
                    "--no-track",
                ],
            );
            if destructive
                && !(restricted
                    && !has_flag(rest, "DMCf", &["--force", "--move", "--copy"])
                    && !has_flag(rest, "m", &[]))
            {
                return refuse("deletes, renames or force-moves branches (-D/-M/-f)");
            }
            if !pos.is_empty() && !listing && !restricted {
                return refuse("creates a branch (list-only in safe mode)");
            }
            Ok(())
        }
        "tag" => {
            let listing = pos.is_empty()
                || has_flag(
                    rest,
                    "l",
                    &["--list", "--contains", "--points-at", "--merged", "--no-merged"],
                );
            if has_flag(rest, "df", &["--delete", "--force"]) {
                return refuse("deletes or moves tags");
            }
            if !listing && !restricted {
                return refuse("creates a tag");
            }
            if !listing
                && !has_flag(rest, "mF", &["--message", "--file"])
                && has_flag(rest, "as", &["--annotate", "--sign"])
            {
                return refuse("without -m would open an editor");
            }
            Ok(())
        }
        "remote" => match pos.first().copied() {
            None | Some("show" | "get-url") => Ok(()),
            Some(_) => refuse("changes remotes"),
        },
        "stash" => match pos.first().copied() {
            Some("list" | "show") => Ok(()),
            None | Some("push" | "save" | "pop" | "apply") if restricted => {
                if has_flag(rest, "p", &["--patch"]) {
                    refuse("--patch needs a terminal")
                } else {
                    Ok(())
                }
            }
            Some("drop" | "clear") => refuse("discards stashed work"),
            _ => refuse("modifies the stash"),
        },
        "reflog" => match pos.first().copied() {
            None | Some("show") => Ok(()),
            Some("expire" | "delete") => refuse("destroys the safety net of the reflog"),
            _ => refuse("is not a listing"),
        },
        "config" => {
            let read_only = rest.iter().any(|a| {
                matches!(
                    a.as_str(),
                    "--get" | "--get-all" | "--get-regexp" | "--list" | "-l" | "get" | "list"
                )
            });
            if read_only
                && !rest.iter().any(|a| {
                    matches!(
                        a.as_str(),
                        "--add"
                            | "--unset"
                            | "--unset-all"
                            | "--replace-all"
                            | "--edit"
                            | "-e"
                            | "set"
                            | "unset"
                            | "edit"
                            | "--rename-section"
                            | "--remove-section"
                    )
                })
            {
                Ok(())
            } else {
                refuse("writes configuration")
            }
        }
        _ if !restricted => refuse("is not a read-only git command"),
        "add" => {
            if has_flag(rest, "pie", &["--patch", "--interactive", "--edit"]) {
                refuse("-p/-i/-e needs a terminal")
            } else {
                Ok(())
            }
        }
        "commit" => {
            if has_flag(rest, "", &["--amend"]) {
                return refuse("--amend rewrites history");
            }
            if has_flag(
                rest,
                "ecp",
                &[
                    "--edit",
                    "--reedit-message",
                    "--patch",
                    "--interactive",
                    "--fixup",
                    "--squash",
                ],
            ) && !has_flag(rest, "m", &["--message"])
            {
                return refuse("with -e/-c/-p needs an editor or terminal");
            }
            if !has_flag(
                rest,
                "mFC",
                &["--message", "--file", "--reuse-message", "--no-edit"],
            ) {
                return refuse("without -m would open an editor");
            }
            Ok(())
        }
        "checkout" => {
            if rest.first().is_some_and(|a| a == "-b")
                && (2..=3).contains(&rest.len())
                && rest[1..].iter().all(|a| !a.starts_with('-'))
            {
                Ok(())
            } else {
                refuse(
                    "other than \"checkout -b NAME [START]\" can discard uncommitted work (use git switch)",
                )
            }
        }
        "switch" => {
            if has_flag(
                rest,
                "fC",
                &["--force", "--discard-changes", "--force-create", "--orphan"],
            ) {
                refuse("--force/--discard-changes/-C discards work")
            } else {
                Ok(())
            }
        }
        "fetch" | "pull" | "push" => {
            ctx.network = true;
            if has_flag(
                rest,
                "f",
                &[
                    "--force",
                    "--force-with-lease",
                    "--force-if-includes",
                    "--mirror",
                    "--upload-pack",
                    "--receive-pack",
                    "--exec",
                    "--prune-tags",
                ],
            ) || (sub == "push"
                && (has_flag(rest, "d", &["--delete", "--prune"])
                    || pos.iter().any(|r| r.starts_with('+') || r.starts_with(':'))))
            {
                return refuse("forces, deletes or rewrites refs");
            }
            if sub == "pull" && has_flag(rest, "r", &["--rebase"]) {
                return refuse("--rebase rewrites history");
            }
            Ok(())
        }
        "merge" => {
            if has_flag(rest, "", &["--edit"]) {
                refuse("--edit opens an editor")
            } else {
                Ok(())
            }
        }
        "init" | "worktree" | "clone" => refuse("creates repositories outside the allow list"),
        "reset" => {
            if rest.is_empty()
                || rest.first().is_some_and(|a| a == "--")
                || rest.iter().all(|a| a == "-q" || a == "--quiet")
            {
                Ok(())
            } else {
                refuse(
                    "moves the branch or discards work (only plain \"git reset\" / \"git reset -- PATHS\" unstage)",
                )
            }
        }
        "restore" => refuse("discards uncommitted work"),
        "clean" => {
            if has_flag(rest, "n", &["--dry-run"]) && !has_flag(rest, "f", &["--force"]) {
                Ok(())
            } else {
                refuse("deletes untracked files")
            }
        }
        "rebase" | "filter-branch" | "filter-repo" | "replace" | "update-ref" | "gc" | "prune"
        | "cherry-pick" | "revert" | "am" | "apply" | "rm" | "mv" | "submodule" | "bisect" | "notes"
        | "hook" => refuse("rewrites history or the working tree beyond the allow list"),
        _ => refuse("is not on the restricted allow list (aliases and unknown subcommands are refused)"),
    }
}

fn cargo(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    let refuse = |why: String| Err(Refusal::new(why));
    let mut i = 0;
    if args.first().is_some_and(|a| a.starts_with('+')) {
        i = 1;
    }
    let rest = &args[i..];
    let sub_pos = rest.iter().position(|a| !a.starts_with('-'));
    let before_sub = &rest[..sub_pos.unwrap_or(rest.len())];
    if has_flag(before_sub, "Z", &["--config"]) || has_flag(rest, "", &["--config"]) {
        return refuse(
            "\"cargo --config/-Z\" can point cargo at arbitrary programs (runners, rustc wrappers)".into(),
        );
    }
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        for opt in [
            "--manifest-path",
            "--target-dir",
            "--lockfile-path",
            "--artifact-dir",
            "-C",
        ] {
            let value = if a == opt {
                it.clone().next().map(String::as_str)
            } else {
                a.strip_prefix(&format!("{opt}="))
            };
            if let Some(v) = value
                && !confined(v)
            {
                return refuse(format!(
                    "\"cargo {opt} {}\" points outside the working directory",
                    show(v)
                ));
            }
        }
        if a == "--" {
            break;
        }
    }
    let Some(p) = sub_pos else {
        return Ok(()); // cargo --version
    };
    match rest[p].as_str() {
        "build" | "b" | "test" | "t" | "check" | "c" | "clippy" | "run" | "r" | "doc" | "d" | "bench"
        | "tree" | "metadata" | "fetch" | "update" | "generate-lockfile" | "nextest" => {
            ctx.network = true;
            if rest[p] == "doc" && has_flag(&rest[p + 1..], "", &["--open"]) {
                return refuse("\"cargo doc --open\" starts a browser".into());
            }
            Ok(())
        }
        "fmt" | "version" | "help" | "pkgid" | "locate-project" | "verify-project" | "search" => Ok(()),
        other => refuse(format!(
            "\"cargo {}\" is not on the restricted allow list (install/publish/login and friends reach outside the workspace)",
            show(other)
        )),
    }
}

fn npm(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    if has_flag(
        args,
        "g",
        &[
            "--global",
            "--location",
            "--userconfig",
            "--globalconfig",
            "--script-shell",
            "--node-options",
        ],
    ) {
        return Err(Refusal::new(
            "\"npm -g/--location/--userconfig/--script-shell\" reaches outside the workspace or swaps the script shell",
        ));
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = if a == "--prefix" || a == "-C" {
            it.clone().next().map(String::as_str)
        } else {
            a.strip_prefix("--prefix=")
        };
        if let Some(v) = v
            && !confined(v)
        {
            return Err(Refusal::new(format!(
                "\"npm --prefix {}\" points outside the working directory",
                show(v)
            )));
        }
    }
    if options(args).any(|o| o.contains("registry")) {
        return Err(Refusal::new(
            "\"npm --registry\" swaps where packages come from; restricted mode installs from the project's configured registry only",
        ));
    }
    let pos = positionals(args);
    let sub = pos.first().copied().unwrap_or("");
    match sub {
        "install" | "i" | "ci" | "add" | "isntall" | "in" | "ins" | "inst" | "insta" | "instal"
        | "install-test" | "it" | "install-ci-test" | "cit" => {
            programs::remote::npm_install(&pos[1..])?;
            ctx.network = true;
            Ok(())
        }
        "test" | "t" | "run" | "run-script" | "start" | "ls" | "list" | "outdated" | "audit"
        | "--version" | "-v" | "" | "help" | "view" | "explain" | "why" => {
            if matches!(sub, "audit" | "outdated" | "view") {
                ctx.network = true;
            }
            if sub == "audit" && positionals(args).get(1) == Some(&"fix") {
                ctx.network = true;
            }
            Ok(())
        }
        other => Err(Refusal::new(format!(
            "\"npm {}\" is not on the restricted allow list (exec/publish/config/link reach beyond the project)",
            show(other)
        ))),
    }
}

fn pytest(args: &[String]) -> Result<(), Refusal> {
    if has_flag(args, "", &["--pdb", "--trace", "--pdbcls"]) {
        return Err(Refusal::new("\"pytest --pdb/--trace\" needs a terminal"));
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = if a == "--basetemp" || a == "--rootdir" || a == "-c" {
            it.clone().next().map(String::as_str)
        } else {
            a.strip_prefix("--basetemp=")
        };
        if let Some(v) = v
            && !confined(v)
        {
            return Err(Refusal::new(format!(
                "\"pytest {a} {}\" points outside the working directory",
                show(v)
            )));
        }
    }
    Ok(())
}

fn make(args: &[String]) -> Result<(), Refusal> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-f" | "--file" | "--makefile" | "-C" | "--directory" | "-I" | "--include-dir" => {
                let v = it.next().map_or("", String::as_str);
                if !confined(v) {
                    return Err(Refusal::new(format!(
                        "\"make {a} {}\" points outside the working directory",
                        show(v)
                    )));
                }
            }
            "-j" | "--jobs" | "-l" | "--load-average" | "-o" | "-W" | "--old-file" | "--what-if"
            | "--assume-new" | "--new-file" | "--assume-old" => {
                // numeric or file-name argument; -j may stand alone
            }
            s if s.starts_with("--eval") || s == "-E" => {
                return Err(Refusal::new("\"make --eval\" injects makefile code"));
            }
            s if !s.starts_with('-') && s.contains('=') => {
                return Err(Refusal::new(format!(
                    "the make variable override \"{}\" can replace recipe commands (SHELL, CC…)",
                    show(s)
                )));
            }
            s if (s.starts_with("--file=")
                || s.starts_with("--directory=")
                || s.starts_with("--makefile=")
                || s.starts_with("--include-dir=")) =>
            {
                let v = s.split_once('=').map_or("", |(_, v)| v);
                if !confined(v) {
                    return Err(Refusal::new(format!(
                        "\"make {}\" points outside the working directory",
                        show(s)
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn go(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    if has_flag(
        args,
        "",
        &[
            "-exec",
            "--exec",
            "-toolexec",
            "--toolexec",
            "-overlay",
            "--overlay",
            "-modfile",
            "--modfile",
            "-pkgdir",
        ],
    ) {
        return Err(Refusal::new(
            "\"go -exec/-toolexec/-overlay\" runs or substitutes arbitrary programs",
        ));
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = if a == "-o" || a == "-C" {
            it.clone().next().map(String::as_str)
        } else {
            a.strip_prefix("-o=").or_else(|| a.strip_prefix("-C="))
        };
        if let Some(v) = v
            && !confined(v)
        {
            return Err(Refusal::new(format!(
                "\"go {a} {}\" points outside the working directory",
                show(v)
            )));
        }
    }
    let pos = positionals(args);
    match pos.first().copied().unwrap_or("") {
        sub @ ("build" | "test" | "vet" | "run" | "list") => {
            programs::remote::go_positionals(sub, &pos[1..])?;
            ctx.network = true;
            Ok(())
        }
        "mod" => match pos.get(1).copied() {
            Some("tidy" | "download" | "verify" | "graph" | "why") => {
                ctx.network = true;
                Ok(())
            }
            _ => Err(Refusal::new(
                "only \"go mod tidy/download/verify/graph/why\" are allowed",
            )),
        },
        "fmt" | "version" | "doc" | "help" | "" => Ok(()),
        "env" if !has_flag(args, "wu", &[]) => Ok(()),
        other => Err(Refusal::new(format!(
            "\"go {}\" is not on the restricted allow list (install/get/env -w write outside the project)",
            show(other)
        ))),
    }
}
