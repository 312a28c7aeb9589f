//! `cargo` in restricted mode: build, test, check and friends (which may use the network),
//! no `--config`/`-Z`, no path option pointing outside the working directory, and no
//! install, publish or login.

use crate::exec::parse::{Refusal, show};
use crate::exec::policy::Ctx;
use crate::exec::policy::args::has_flag;
use crate::exec::policy::paths::confined;

pub(super) fn cargo(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    let refuse = |why: String| Err(Refusal::new(why));
    let mut i = 0;
    if args.first().is_some_and(|a| a.starts_with('+')) {
        i = 1;
    }
    let rest = &args[i..];
    let sub_pos = rest.iter().position(|a| !a.starts_with('-'));
    let before_sub = &rest[..sub_pos.unwrap_or(rest.len())];
    if has_flag(before_sub, "Z", &["--config"]) || has_flag(rest, "", &["--config"]) {
        return refuse(
            "\"cargo --config/-Z\" can point cargo at arbitrary programs (runners, rustc wrappers)".into(),
        );
    }
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        for opt in [
            "--manifest-path",
            "--target-dir",
            "--lockfile-path",
            "--artifact-dir",
            "-C",
        ] {
            let value = if a == opt {
                it.clone().next().map(String::as_str)
            } else {
                a.strip_prefix(&format!("{opt}="))
            };
            if let Some(v) = value
                && !confined(v)
            {
                return refuse(format!(
                    "\"cargo {opt} {}\" points outside the working directory",
                    show(v)
                ));
            }
        }
        if a == "--" {
            break;
        }
    }
    let Some(p) = sub_pos else {
        return Ok(()); // cargo --version
    };
    match rest[p].as_str() {
        "build" | "b" | "test" | "t" | "check" | "c" | "clippy" | "run" | "r" | "doc" | "d" | "bench"
        | "tree" | "metadata" | "fetch" | "update" | "generate-lockfile" | "nextest" => {
            ctx.network = true;
            if rest[p] == "doc" && has_flag(&rest[p + 1..], "", &["--open"]) {
                return refuse("\"cargo doc --open\" starts a browser".into());
            }
            Ok(())
        }
        "fmt" | "version" | "help" | "pkgid" | "locate-project" | "verify-project" | "search" => Ok(()),
        other => refuse(format!(
            "\"cargo {}\" is not on the restricted allow list (install/publish/login and friends reach outside the workspace)",
            show(other)
        )),
    }
}
