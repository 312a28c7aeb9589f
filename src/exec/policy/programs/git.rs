//! `git`: the global options and configuration keys that run commands (refused in every
//! mode), and the subcommands and options safe and restricted mode allow.

use crate::exec::Mode;
use crate::exec::parse::{Refusal, show};
use crate::exec::policy::args::{has_flag, positionals};
use crate::exec::policy::paths::{confined, protected_write};
use crate::exec::policy::{Ctx, fatal};

/// Git configuration keys whose values are commands (or enable running them).
fn git_key_runs_code(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("alias.")
        || k.starts_with("filter.")
        || k.starts_with("diff.")
            && (k.ends_with(".textconv") || k.ends_with(".command") || k == "diff.external")
        || k.starts_with("merge.") && k.ends_with(".driver")
        || k.starts_with("pager.")
        || k.starts_with("credential")
        || k.starts_with("uploadpack.")
        || k.starts_with("receivepack.")
        || k.starts_with("protocol.")
        || k.starts_with("url.")
        || k.starts_with("gpg.")
        || k.starts_with("include")
        || k.starts_with("remote.")
            && (k.ends_with(".uploadpack") || k.ends_with(".receivepack") || k.ends_with(".vcs"))
        || matches!(
            k.as_str(),
            "core.pager"
                | "core.editor"
                | "core.sshcommand"
                | "core.fsmonitor"
                | "core.hookspath"
                | "core.gitproxy"
                | "core.askpass"
                | "core.worktree"
                | "sequence.editor"
                | "sendemail.smtpserver"
                | "sendemail.tocmd"
                | "sendemail.cccmd"
                | "ssh.variant"
                | "http.proxy"
                | "web.browser"
                | "difftool.cmd"
                | "mergetool.cmd"
        )
        || k.starts_with("difftool.")
        || k.starts_with("mergetool.")
        || k.starts_with("browser.")
}

/// Git global options: returns the index of the subcommand. Refuses code-running config.
fn git_globals(args: &[String], mode: Mode) -> Result<usize, Refusal> {
    let strict = mode != Mode::Yolo;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if !a.starts_with('-') {
            return Ok(i);
        }
        match a {
            "-c" => {
                let kv = args.get(i + 1).map_or("", String::as_str);
                let key = kv.split('=').next().unwrap_or(kv);
                if git_key_runs_code(key) {
                    return Err(fatal(format!(
                        "\"git -c {}\" sets a configuration value that runs a program",
                        show(kv)
                    )));
                }
                if strict {
                    return Err(Refusal::new(format!(
                        "\"git -c {}\" overrides configuration; not allowed in {mode} mode",
                        show(kv)
                    )));
                }
                i += 2;
            }
            "-C" => {
                let dir = args.get(i + 1).map_or("", String::as_str);
                if strict && !confined(dir) {
                    return Err(Refusal::new(format!(
                        "\"git -C {}\" points outside the working directory",
                        show(dir)
                    )));
                }
                i += 2;
            }
            "--no-pager"
            | "--no-replace-objects"
            | "--literal-pathspecs"
            | "--glob-pathspecs"
            | "--noglob-pathspecs"
            | "--icase-pathspecs"
            | "--no-optional-locks"
            | "--version"
            | "--help"
            | "--exec-path"
            | "--html-path"
            | "--man-path"
            | "--info-path"
            | "--no-lazy-fetch"
            | "--no-advice"
            | "-P" => i += 1,
            _ if a.starts_with("--config-env") => {
                return Err(fatal(
                    "\"git --config-env\" sets configuration from the environment (core.pager, aliases…), which can run programs",
                ));
            }
            _ if a.starts_with("--exec-path=") => {
                return Err(fatal(
                    "\"git --exec-path=…\" makes git run programs from another directory",
                ));
            }
            _ if strict => {
                return Err(Refusal::new(format!(
                    "the git option \"{}\" is not allowed in {mode} mode",
                    show(a)
                )));
            }
            "--git-dir" | "--work-tree" | "--namespace" | "--super-prefix" => i += 2,
            _ => i += 1,
        }
    }
    Ok(args.len())
}

pub(in crate::exec::policy) fn git_universal(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    let sub_i = git_globals(args, ctx.mode)?;
    let sub = args.get(sub_i).map_or("", String::as_str);
    let rest = args.get(sub_i + 1..).unwrap_or(&[]);
    if has_flag(
        rest,
        "",
        &["--upload-pack", "--receive-pack", "--exec", "--ext-diff-cmd"],
    ) || (matches!(sub, "fetch" | "pull" | "clone" | "ls-remote" | "archive")
        && rest.iter().any(|a| a == "-u"))
    {
        return Err(fatal(format!(
            "\"git {sub} --upload-pack/--receive-pack/--exec\" runs an arbitrary program"
        )));
    }
    for a in rest {
        if let Some(path) = a.strip_prefix("--output=")
            && let Some(what) = protected_write(path)
        {
            return Err(fatal(format!(
                "\"git {sub} --output={}\" overwrites {what}",
                show(path)
            )));
        }
    }
    match sub {
        "push" => {
            let forced = has_flag(rest, "f", &["--force", "--mirror"])
                || positionals(rest).iter().any(|r| r.starts_with('+'));
            if forced && ctx.mode == Mode::Yolo {
                return Err(fatal(
                    "\"git push --force/-f/--mirror/+refspec\" rewrites the remote's history (use --force-with-lease)",
                ));
            }
        }
        "config" if rest.iter().any(|a| git_key_runs_code(a)) => {
            return Err(fatal(
                "\"git config\" of a key that runs programs (alias, core.pager, hooks…)",
            ));
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn git_allowlisted(args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    let mode = ctx.mode;
    let restricted = mode == Mode::Restricted;
    let sub_i = git_globals(args, mode)?;
    let Some(sub) = args.get(sub_i).map(String::as_str) else {
        return Ok(()); // `git --version`
    };
    let rest = &args[sub_i + 1..];
    let refuse = |why: &str| -> Result<(), Refusal> {
        Err(Refusal::new(format!(
            "\"git {sub}\" {why}; not allowed in {mode} mode"
        )))
    };
    // Flags that run programs or write files, whatever the subcommand.
    if has_flag(
        rest,
        "",
        &[
            "--output",
            "--ext-diff",
            "--exec",
            "--upload-pack",
            "--receive-pack",
            "--open-files-in-pager",
            "--edit-description",
            "--textconv",
        ],
    ) {
        return refuse("with --output/--ext-diff/--exec/--upload-pack writes files or runs programs");
    }
    let pos = positionals(rest);
    match sub {
        "status" | "log" | "diff" | "show" | "rev-parse" | "ls-files" | "blame" | "describe" | "shortlog"
        | "cat-file" | "ls-tree" | "rev-list" | "whatchanged" | "name-rev" | "merge-base" | "show-ref"
        | "for-each-ref" | "count-objects" | "version" | "help" => {
            if sub == "help"
                && rest
                    .iter()
                    .any(|a| a == "-w" || a == "--web" || a == "-m" || a == "--man")
            {
                return refuse("opens a browser or pager");
            }
            Ok(())
        }
        "grep" => {
            if has_flag(rest, "O", &[]) {
                refuse("-O opens a pager command")
            } else {
                Ok(())
            }
        }
        "branch" => {
            let listing = has_flag(
                rest,
                "alr",
                &[
                    "--list",
                    "--all",
                    "--remotes",
                    "--contains",
                    "--no-contains",
                    "--merged",
                    "--no-merged",
                    "--points-at",
                    "--show-current",
                ],
            );
            let destructive = has_flag(
                rest,
                "DdMmCcf",
                &[
                    "--delete",
                    "--move",
                    "--copy",
                    "--force",
                    "--set-upstream-to",
                    "--unset-upstream",
                    "--edit-description",
                    "--track",
                    "--no-track",
                ],
            );
            if destructive
                && !(restricted
                    && !has_flag(rest, "DMCf", &["--force", "--move", "--copy"])
                    && !has_flag(rest, "m", &[]))
            {
                return refuse("deletes, renames or force-moves branches (-D/-M/-f)");
            }
            if !pos.is_empty() && !listing && !restricted {
                return refuse("creates a branch (list-only in safe mode)");
            }
            Ok(())
        }
        "tag" => {
            let listing = pos.is_empty()
                || has_flag(
                    rest,
                    "l",
                    &["--list", "--contains", "--points-at", "--merged", "--no-merged"],
                );
            if has_flag(rest, "df", &["--delete", "--force"]) {
                return refuse("deletes or moves tags");
            }
            if !listing && !restricted {
                return refuse("creates a tag");
            }
            if !listing
                && !has_flag(rest, "mF", &["--message", "--file"])
                && has_flag(rest, "as", &["--annotate", "--sign"])
            {
                return refuse("without -m would open an editor");
            }
            Ok(())
        }
        "remote" => match pos.first().copied() {
            None | Some("show" | "get-url") => Ok(()),
            Some(_) => refuse("changes remotes"),
        },
        "stash" => match pos.first().copied() {
            Some("list" | "show") => Ok(()),
            None | Some("push" | "save" | "pop" | "apply") if restricted => {
                if has_flag(rest, "p", &["--patch"]) {
                    refuse("--patch needs a terminal")
                } else {
                    Ok(())
                }
            }
            Some("drop" | "clear") => refuse("discards stashed work"),
            _ => refuse("modifies the stash"),
        },
        "reflog" => match pos.first().copied() {
            None | Some("show") => Ok(()),
            Some("expire" | "delete") => refuse("destroys the safety net of the reflog"),
            _ => refuse("is not a listing"),
        },
        "config" => {
            let read_only = rest.iter().any(|a| {
                matches!(
                    a.as_str(),
                    "--get" | "--get-all" | "--get-regexp" | "--list" | "-l" | "get" | "list"
                )
            });
            if read_only
                && !rest.iter().any(|a| {
                    matches!(
                        a.as_str(),
                        "--add"
                            | "--unset"
                            | "--unset-all"
                            | "--replace-all"
                            | "--edit"
                            | "-e"
                            | "set"
                            | "unset"
                            | "edit"
                            | "--rename-section"
                            | "--remove-section"
                    )
                })
            {
                Ok(())
            } else {
                refuse("writes configuration")
            }
        }
        _ if !restricted => refuse("is not a read-only git command"),
        "add" => {
            if has_flag(rest, "pie", &["--patch", "--interactive", "--edit"]) {
                refuse("-p/-i/-e needs a terminal")
            } else {
                Ok(())
            }
        }
        "commit" => {
            if has_flag(rest, "", &["--amend"]) {
                return refuse("--amend rewrites history");
            }
            if has_flag(
                rest,
                "ecp",
                &[
                    "--edit",
                    "--reedit-message",
                    "--patch",
                    "--interactive",
                    "--fixup",
                    "--squash",
                ],
            ) && !has_flag(rest, "m", &["--message"])
            {
                return refuse("with -e/-c/-p needs an editor or terminal");
            }
            if !has_flag(
                rest,
                "mFC",
                &["--message", "--file", "--reuse-message", "--no-edit"],
            ) {
                return refuse("without -m would open an editor");
            }
            Ok(())
        }
        "checkout" => {
            if rest.first().is_some_and(|a| a == "-b")
                && (2..=3).contains(&rest.len())
                && rest[1..].iter().all(|a| !a.starts_with('-'))
            {
                Ok(())
            } else {
                refuse(
                    "other than \"checkout -b NAME [START]\" can discard uncommitted work (use git switch)",
                )
            }
        }
        "switch" => {
            if has_flag(
                rest,
                "fC",
                &["--force", "--discard-changes", "--force-create", "--orphan"],
            ) {
                refuse("--force/--discard-changes/-C discards work")
            } else {
                Ok(())
            }
        }
        "fetch" | "pull" | "push" => {
            ctx.network = true;
            if has_flag(
                rest,
                "f",
                &[
                    "--force",
                    "--force-with-lease",
                    "--force-if-includes",
                    "--mirror",
                    "--upload-pack",
                    "--receive-pack",
                    "--exec",
                    "--prune-tags",
                ],
            ) || (sub == "push"
                && (has_flag(rest, "d", &["--delete", "--prune"])
                    || pos.iter().any(|r| r.starts_with('+') || r.starts_with(':'))))
            {
                return refuse("forces, deletes or rewrites refs");
            }
            if sub == "pull" && has_flag(rest, "r", &["--rebase"]) {
                return refuse("--rebase rewrites history");
            }
            Ok(())
        }
        "merge" => {
            if has_flag(rest, "", &["--edit"]) {
                refuse("--edit opens an editor")
            } else {
                Ok(())
            }
        }
        "init" | "worktree" | "clone" => refuse("creates repositories outside the allow list"),
        "reset" => {
            if rest.is_empty()
                || rest.first().is_some_and(|a| a == "--")
                || rest.iter().all(|a| a == "-q" || a == "--quiet")
            {
                Ok(())
            } else {
                refuse(
                    "moves the branch or discards work (only plain \"git reset\" / \"git reset -- PATHS\" unstage)",
                )
            }
        }
        "restore" => refuse("discards uncommitted work"),
        "clean" => {
            if has_flag(rest, "n", &["--dry-run"]) && !has_flag(rest, "f", &["--force"]) {
                Ok(())
            } else {
                refuse("deletes untracked files")
            }
        }
        "rebase" | "filter-branch" | "filter-repo" | "replace" | "update-ref" | "gc" | "prune"
        | "cherry-pick" | "revert" | "am" | "apply" | "rm" | "mv" | "submodule" | "bisect" | "notes"
        | "hook" => refuse("rewrites history or the working tree beyond the allow list"),
        _ => refuse("is not on the restricted allow list (aliases and unknown subcommands are refused)"),
    }
}
