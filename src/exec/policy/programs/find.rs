//! `find`, in every mode: `-exec`/`-ok` and the actions that delete or write (`-delete`,
//! `-fprint`, ...) are refused in safe and restricted mode; in yolo mode the command an
//! `-exec` runs is judged like any other, and deleting or overwriting a protected tree is
//! catastrophic.

use crate::exec::Mode;
use crate::exec::parse::{Refusal, show};
use crate::exec::policy::args::basename;
use crate::exec::policy::paths::{dangerous_tree, protected_write};
use crate::exec::policy::{Ctx, fatal, judge};

pub(in crate::exec::policy) fn find_universal(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
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
