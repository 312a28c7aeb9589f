//! `go` in restricted mode: build, test, vet, run and list of the project's own packages
//! (no remote package paths), the read-only `go mod` subcommands, and no
//! `-exec`/`-toolexec`/`-overlay` or output outside the working directory.

use crate::exec::parse::{Refusal, show};
use crate::exec::policy::args::{has_flag, positionals};
use crate::exec::policy::paths::confined;
use crate::exec::policy::{Ctx, programs};

pub(super) fn go(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    if has_flag(
        args,
        "",
        &[
            "-exec",
            "--exec",
            "-toolexec",
            "--toolexec",
            "-overlay",
            "--overlay",
            "-modfile",
            "--modfile",
            "-pkgdir",
        ],
    ) {
        return Err(Refusal::new(
            "\"go -exec/-toolexec/-overlay\" runs or substitutes arbitrary programs",
        ));
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = if a == "-o" || a == "-C" {
            it.clone().next().map(String::as_str)
        } else {
            a.strip_prefix("-o=").or_else(|| a.strip_prefix("-C="))
        };
        if let Some(v) = v
            && !confined(v)
        {
            return Err(Refusal::new(format!(
                "\"go {a} {}\" points outside the working directory",
                show(v)
            )));
        }
    }
    let pos = positionals(args);
    match pos.first().copied().unwrap_or("") {
        sub @ ("build" | "test" | "vet" | "run" | "list") => {
            programs::remote::go_positionals(sub, &pos[1..])?;
            ctx.network = true;
            Ok(())
        }
        "mod" => match pos.get(1).copied() {
            Some("tidy" | "download" | "verify" | "graph" | "why") => {
                ctx.network = true;
                Ok(())
            }
            _ => Err(Refusal::new(
                "only \"go mod tidy/download/verify/graph/why\" are allowed",
            )),
        },
        "fmt" | "version" | "doc" | "help" | "" => Ok(()),
        "env" if !has_flag(args, "wu", &[]) => Ok(()),
        other => Err(Refusal::new(format!(
            "\"go {}\" is not on the restricted allow list (install/get/env -w write outside the project)",
            show(other)
        ))),
    }
}
