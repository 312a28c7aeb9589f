//! Yolo mode's judgement of a program past the catastrophic list: shells get their `-c`
//! script re-validated, interpreters their inline code scanned, and unknown programs their
//! arguments scanned for an embedded catastrophic command.

use crate::exec::Mode;
use crate::exec::parse::{Refusal, show};
use crate::exec::policy::args::basename;
use crate::exec::policy::catastrophic::catastrophic;
use crate::exec::policy::interpreters::{SHELLS, inline_code, interpreter_family, scan_inline_code};
use crate::exec::policy::wrappers::judge_shell_string;
use crate::exec::policy::{Ctx, MAX_DEPTH, is_fatal};

/// Yolo-mode checks for commands that passed the catastrophic list.
pub(super) fn yolo(name: &str, args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
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
                walk: ctx.walk,
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
                && let Err(r) = (probe.walk)(&steps, &mut probe)
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
