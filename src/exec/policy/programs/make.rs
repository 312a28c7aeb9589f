//! `make` and `pytest` in restricted mode: no option pointing outside the working
//! directory; for make no `--eval` and no variable overrides (they can replace recipe
//! commands), for pytest no debugger (there is no terminal).

use crate::exec::parse::{Refusal, show};
use crate::exec::policy::args::has_flag;
use crate::exec::policy::paths::confined;

pub(super) fn pytest(args: &[String]) -> Result<(), Refusal> {
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

pub(super) fn make(args: &[String]) -> Result<(), Refusal> {
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
