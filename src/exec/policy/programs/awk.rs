//! `awk` and its variants, in every mode: options that load code (`-f`, `-E`, `-i`, `-l`)
//! are refused, a program that runs commands (`system()`, pipes, `@load`) is
//! catastrophic, and one that may redirect to a file (`>`) is refused outside yolo mode.

use crate::exec::Mode;
use crate::exec::parse::{Refusal, show};
use crate::exec::policy::fatal;

pub(in crate::exec::policy) fn awk_universal(args: &[String], mode: Mode) -> Result<(), Refusal> {
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
