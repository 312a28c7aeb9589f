//! `sed`, in every mode: a scanner for scripts (the `e` command and `s///e` run shell
//! commands and are catastrophic; `w`/`W` and `s///w` write unchecked files), script files
//! (`-f`) are refused, and in-place edits (`-i`) only in yolo mode.

use crate::exec::Mode;
use crate::exec::parse::{Refusal, show};
use crate::exec::policy::fatal;

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

pub(in crate::exec::policy) fn sed_universal(args: &[String], mode: Mode) -> Result<(), Refusal> {
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
