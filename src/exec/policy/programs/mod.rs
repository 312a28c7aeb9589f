//! The safe and restricted allow list, a registry from program name to its judge, and
//! one module per program family. Each family module owns its rules; the registry and
//! `catastrophic` call down into them, and they use only the shared vocabulary above them
//! (`args`, `paths`, [`Ctx`], `fatal`, and [`judge`] for a command `find -exec` runs).
//!
//! [`judge`]: crate::exec::policy::judge

mod awk;
mod cargo;
mod find;
mod git;
mod go;
mod make;
mod npm;
pub(crate) mod remote;
mod sed;

pub(in crate::exec::policy) use awk::awk_universal;
pub(in crate::exec::policy) use find::find_universal;
pub(in crate::exec::policy) use git::git_universal;
pub(in crate::exec::policy) use sed::sed_universal;

use cargo::cargo;
use git::git_allowlisted;
use go::go;
use make::{make, pytest};
use npm::npm;

use crate::exec::Mode;
use crate::exec::parse::{Refusal, show};
use crate::exec::policy::Ctx;
use crate::exec::policy::args::{has_flag, positionals};
use crate::exec::policy::interpreters::interpreter_family;
use crate::exec::policy::paths::confined;

/// Safe and restricted allow lists. `None` = not listed.
pub(super) fn allowlisted(name: &str, args: &[String], ctx: &mut Ctx) -> Option<Result<(), Refusal>> {
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
