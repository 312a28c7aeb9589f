//! Wrappers (`env`, `timeout`, `nice`, `xargs`, `flock`, `busybox`, ...): how each one's
//! options are split from the command it runs, the rules for the wrapper itself, and the
//! recursive judgement of the wrapped command or of a string it hands to a shell.

use crate::exec::Mode;
use crate::exec::parse::{Refusal, show};
use crate::exec::policy::args::basename;
use crate::exec::policy::env::judge_env;
use crate::exec::policy::paths::{confined, protected_write};
use crate::exec::policy::{Ctx, MAX_DEPTH, fatal, is_fatal, judge};

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
pub(super) struct WrapperSpec {
    with_value: &'static [&'static str],
    leading_positionals: usize,
    /// Leading `NAME=value` words are environment assignments (env).
    assignments: bool,
}

pub(super) fn wrapper_spec(name: &str) -> Option<WrapperSpec> {
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

pub(super) fn wrapper(name: &str, args: &[String], spec: &WrapperSpec, ctx: &mut Ctx) -> Result<(), Refusal> {
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
pub(super) fn judge_shell_string(script: &str, via: &str, ctx: &mut Ctx) -> Result<(), Refusal> {
    let steps = crate::exec::parse::parse_command(script)
        .map_err(|r| Refusal::new(format!("the {via} script: {}", r.0)))?;
    ctx.depth += 1;
    let r = (ctx.walk)(&steps, ctx);
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
