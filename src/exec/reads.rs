//! Read confinement in the validator (safe and restricted modes): every word of a command
//! that names a file must stay inside the working directory or name one of the read-only
//! system locations a program needs ([`SYSTEM_READS`]). The sandbox enforces the same
//! boundary with Landlock; this check exists so the human is told clearly, before
//! approving, that `cat ~/.ssh/id_rsa`, `xxd ../../.bridge/bridge.db.key` or
//! `grep -f /proc/1/environ x` will not run.
//!
//! The validator is pure: it does not know the workspace, so "inside" means lexically
//! beneath the proposal's working directory (no absolute path outside [`SYSTEM_READS`],
//! no `~`, no `..` that climbs above it). Symlinks inside the workspace that point out are
//! the sandbox's job. Words that are program text rather than file names (a `grep`
//! pattern, a `sed` script, a `find -name` glob, an `echo` argument) are not paths, so
//! each program family says which of its words those are (`text_words`).

use crate::exec::parse::{Refusal, show};
use crate::exec::policy::{basename, effective_argv};

/// Absolute locations safe and restricted commands may name for reading: programs and
/// libraries, the loader cache, CA certificates, time zone, name-service files (no secrets:
/// `/etc/passwd` carries no hashes), harmless devices and this process's own `/proc`
/// entries. Everything else absolute is refused. The sandbox grants the same set except its
/// `/proc` and `/dev` entries, for which it grants only a fixed list of files
/// (`sandbox::restrict`'s `PROC_AND_DEV_READS`): `/proc` is never granted as a whole, so
/// other processes' environments stay out of reach (and `/proc/self` is not granted either).
pub const SYSTEM_READS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/pki",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/os-release",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/gitconfig",
    "/etc/mime.types",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/stdin",
    "/dev/stdout",
    "/dev/stderr",
    "/proc/self",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/version",
    "/proc/loadavg",
    "/proc/uptime",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
];

/// Why reading `path` leaves the allowed area, if it does.
pub(crate) fn outside(path: &str) -> Option<&'static str> {
    if path.starts_with('~') {
        return Some("a home directory");
    }
    let absolute = path.starts_with('/');
    let mut comps: Vec<&str> = Vec::new();
    let mut climbs = false;
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if comps.pop().is_none() && !absolute {
                    climbs = true;
                }
            }
            other => comps.push(other),
        }
    }
    if absolute {
        let joined = format!("/{}", comps.join("/"));
        let allowed = SYSTEM_READS
            .iter()
            .any(|s| joined == *s || joined.starts_with(&format!("{s}/")));
        return (!allowed).then_some("a location outside the working directory");
    }
    climbs.then_some("a location above the working directory")
}

/// Options (per program) whose value is text, not a file; `None` when every word of the
/// program is text (it reads no files named on its command line).
fn text_options(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "echo" | "printf" | "basename" | "dirname" | "tr" | "seq" | "yes" | "true" | "false" | "printenv"
        | "which" | "test" | "[" | "sleep" | "numfmt" | "whoami" | "id" | "uname" | "nproc" | "pwd"
        | "env" => return None,
        "grep" | "egrep" | "fgrep" => &["-e", "--regexp"],
        "rg" => &[
            "-e",
            "--regexp",
            "-g",
            "--glob",
            "--iglob",
            "-t",
            "-T",
            "--type-add",
            "-r",
            "--replace",
        ],
        "sed" => &["-e", "--expression"],
        "awk" | "gawk" | "mawk" => &["-v", "-F", "--assign", "--field-separator"],
        "jq" => &["--arg", "--argjson"],
        "find" => &[
            "-name",
            "-iname",
            "-path",
            "-ipath",
            "-wholename",
            "-iwholename",
            "-regex",
            "-iregex",
            "-lname",
            "-ilname",
            "-printf",
        ],
        "cut" => &["-d", "--delimiter"],
        "sort" => &["-t", "--field-separator"],
        "join" => &["-t"],
        "paste" => &["-d", "--delimiters"],
        "column" => &["-s", "-o", "--separator", "--output-separator"],
        "date" => &["-d", "--date"],
        "git" => &[
            "-m",
            "--message",
            "-S",
            "-G",
            "--grep",
            "--author",
            "--committer",
            "--format",
            "--pretty",
            "-e",
        ],
        _ => &[],
    })
}

/// Programs whose first positional argument is program text (a pattern, a script, a filter)
/// unless the text came through an option instead.
fn first_positional_is_text(name: &str, args: &[String]) -> bool {
    let via_option = |opts: &[&str]| {
        args.iter()
            .any(|a| opts.iter().any(|o| a == o || a.starts_with(&format!("{o}="))))
    };
    match name {
        "grep" | "egrep" | "fgrep" | "rg" => !via_option(&["-e", "--regexp", "-f", "--file"]),
        "sed" => !via_option(&["-e", "--expression", "-f", "--file"]),
        "awk" | "gawk" | "mawk" => !via_option(&["-f", "--file"]),
        "jq" => !via_option(&["-f", "--from-file"]),
        _ => false,
    }
}

/// The words of `argv` (already unwrapped) that are text rather than file names, by index.
pub(crate) fn text_words(argv: &[String]) -> Vec<bool> {
    let mut text = vec![false; argv.len()];
    let Some(first) = argv.first() else {
        return text;
    };
    text[0] = true;
    let name = basename(first);
    let Some(opts) = text_options(name) else {
        return vec![true; argv.len()];
    };
    let args = &argv[1..];
    let mut want_positional_text = first_positional_is_text(name, args);
    let mut i = 1;
    let mut after_dashdash = false;
    while i < argv.len() {
        let a = argv[i].as_str();
        if !after_dashdash && a == "--" {
            after_dashdash = true;
            text[i] = true;
        } else if !after_dashdash && opts.contains(&a) {
            text[i] = true;
            if let Some(t) = text.get_mut(i + 1) {
                *t = true;
            }
            // `jq --arg NAME VALUE` takes two words.
            if matches!(a, "--arg" | "--argjson")
                && let Some(t) = text.get_mut(i + 2)
            {
                *t = true;
                i += 1;
            }
            i += 1;
        } else if !after_dashdash
            && opts.iter().any(|o| {
                a.starts_with(&format!("{o}=")) || (o.len() == 2 && a.starts_with(o) && !o.starts_with("--"))
            })
        {
            text[i] = true;
        } else if (after_dashdash || !a.starts_with('-') || a == "-") && want_positional_text {
            text[i] = true;
            want_positional_text = false;
        }
        i += 1;
    }
    text
}

/// The file names a word may carry: the word itself, an `=value` or `@file` part, a
/// `file://` URL, or a value attached to a short option (`-f/etc/x`).
fn candidates(word: &str) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some(long) = word.strip_prefix("--") {
        if let Some((_, v)) = long.split_once('=') {
            out.push(v);
        }
        return out;
    }
    if word.starts_with('-') && word.len() > 2 {
        let v = &word[2..];
        if v.len() > 1 && (v.contains('/') || v.starts_with('~')) {
            out.push(v);
        }
        return out;
    }
    if word.starts_with('-') {
        return out;
    }
    out.push(word);
    if let Some((_, v)) = word.split_once('=') {
        out.push(v);
    }
    if let Some((_, v)) = word.split_once('@')
        && (v.starts_with('/') || v.starts_with('~'))
    {
        out.push(v);
    }
    if let Some(v) = word.strip_prefix("file://") {
        out.push(v);
    }
    out
}

/// Refuses a command (safe and restricted modes) that names a file outside the working
/// directory and the system read set, in an argument or in a `< FILE` redirection.
pub(crate) fn check_reads(argv: &[String], stdin_file: Option<&str>) -> Result<(), Refusal> {
    if let Some(path) = stdin_file
        && let Some(where_) = outside(path)
    {
        return Err(refusal(&format!("<{path}"), where_));
    }
    let inner = effective_argv(argv);
    let offset = argv.len() - inner.len();
    let text = text_words(inner);
    for (i, word) in argv.iter().enumerate().skip(1) {
        if i >= offset && text.get(i - offset).copied().unwrap_or(false) {
            continue;
        }
        // Wrapper words before the wrapped program (`timeout 5`, `nice -n 5`) are not files.
        if i < offset {
            continue;
        }
        for c in candidates(word) {
            if let Some(where_) = outside(c) {
                return Err(refusal(word, where_));
            }
        }
    }
    Ok(())
}

fn refusal(word: &str, where_: &str) -> Refusal {
    Refusal::new(format!(
        "\"{}\" reads {where_}; safe and restricted modes read only the working directory and the system files programs need (propose it from a working directory that contains the file, or use yolo mode)",
        show(word)
    ))
}

/// Lexically normalized absolute form of `word` taken relative to `cwd`.
fn resolve(cwd: &std::path::Path, word: &str) -> std::path::PathBuf {
    let joined = if word.starts_with('/') {
        std::path::PathBuf::from(word)
    } else {
        cwd.join(word)
    };
    let mut out = std::path::PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// The first word of `plan` (argument, `=value`/`@file`/`file://` part, attached option
/// value, or redirection target) that names one of `targets` or something beneath it, when
/// resolved against `cwd` (absolute). The bridge uses it to refuse, in every mode, a
/// command that names its own database, key or passphrase file; the sandbox hides them
/// anyway, this only makes the refusal visible before approval.
pub fn plan_names(
    plan: &crate::exec::Plan,
    cwd: &std::path::Path,
    targets: &[std::path::PathBuf],
) -> Option<String> {
    use crate::exec::{Input, Output};
    let hits = |word: &str| {
        let mut words = candidates(word);
        if let Some(long) = word.strip_prefix("--")
            && !long.contains('=')
        {
            words.push(word);
        }
        words.into_iter().any(|w| {
            let p = resolve(cwd, w);
            targets.iter().any(|t| p.starts_with(t))
        })
    };
    for step in &plan.steps {
        for cmd in &step.pipeline.commands {
            let mut words: Vec<&str> = cmd.argv.iter().map(String::as_str).collect();
            if let Input::File(p) = &cmd.stdin {
                words.push(p);
            }
            for out in [&cmd.stdout, &cmd.stderr] {
                if let Output::File { path, .. } = out {
                    words.push(path);
                }
            }
            if let Some(w) = words.into_iter().find(|w| hits(w)) {
                return Some(w.to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn outside_paths_are_named() {
        for p in [
            "/etc/shadow",
            "~/.ssh/id_rsa",
            "../x",
            "a/../../x",
            "/proc/1/environ",
            "/",
            "/home/u/.bash_history",
        ] {
            assert!(outside(p).is_some(), "{p}");
        }
        for p in [
            "src/x",
            "./a/../b",
            "/usr/share/zoneinfo/UTC",
            "/dev/null",
            "/proc/self/status",
            "x",
        ] {
            assert!(outside(p).is_none(), "{p}");
        }
    }

    #[test]
    fn program_text_is_not_a_path() {
        assert!(check_reads(&argv("grep -rn /api/v1 src"), None).is_ok());
        assert!(check_reads(&argv("sed -n /^#/p f"), None).is_ok());
        assert!(check_reads(&argv("cut -d/ -f1 f"), None).is_ok());
        assert!(check_reads(&argv("echo /etc/shadow"), None).is_ok());
        assert!(check_reads(&argv("grep -e /x -f /etc/y z"), None).is_err());
        assert!(check_reads(&argv("grep -f/etc/y z"), None).is_err());
        assert!(check_reads(&argv("git --git-dir=/other log"), None).is_err());
        assert!(check_reads(&argv("timeout 5 cat /etc/hostname"), None).is_err());
        assert!(check_reads(&argv("cat f"), Some("/etc/shadow")).is_err());
    }
}
