//! The argument vocabulary every judge shares: options before `--`, flag tests that read
//! short-option clusters conservatively, positionals, and the shortened command line that
//! refusals quote.

use crate::exec::parse::show;

/// `name args…`, shortened, for reasons.
pub(super) fn cmdline(name: &str, args: &[String]) -> String {
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
pub(super) fn options(args: &[String]) -> impl Iterator<Item = &str> {
    args.iter()
        .map(String::as_str)
        .take_while(|a| *a != "--")
        .filter(|a| a.starts_with('-') && a.len() > 1)
}

/// True if any option before `--` is one of `longs` (exactly or as `--long=value`), or a
/// short-option cluster (`-abc`) containing one of `shorts`. Deliberately conservative:
/// a short option's attached value is scanned too.
pub(super) fn has_flag(args: &[String], shorts: &str, longs: &[&str]) -> bool {
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
pub(super) fn positionals(args: &[String]) -> Vec<&str> {
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
