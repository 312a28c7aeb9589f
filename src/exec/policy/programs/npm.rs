//! `npm` in restricted mode: installs from the configured registry or the working
//! directory, the project's own scripts and read-only queries; no global installs, no
//! other registry, no prefix outside the working directory, no swapped script shell.

use crate::exec::parse::{Refusal, show};
use crate::exec::policy::args::{has_flag, options, positionals};
use crate::exec::policy::paths::confined;
use crate::exec::policy::{Ctx, programs};

pub(super) fn npm(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
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
