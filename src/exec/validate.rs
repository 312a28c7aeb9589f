//! The public entry point [`validate`]: parse, judge every command and redirection, then
//! prove the plan round-trips through [`render_plan`] before approving it.

use std::collections::BTreeSet;

use crate::exec::parse::{Refusal, parse_command, show};
use crate::exec::policy::{self, Ctx};
use crate::exec::reads;
use crate::exec::{Input, Mode, Output, Plan, Step, Verdict, render_plan};

/// Decides whether `command` may run in `mode`, and if so returns the exact [`Plan`].
///
/// Pure: it never touches the filesystem, the environment or a process, and never panics
/// (an internal panic is caught and turned into a refusal). The reason is one sentence for
/// the human approving the command; refusals name the offending word or construct.
pub fn validate(command: &str, mode: Mode) -> Verdict {
    // Under the fuzzer a panic must surface as a crash instead of a refusal.
    #[cfg(fuzzing)]
    let result: Result<_, ()> = Ok(validate_inner(command, mode));
    #[cfg(not(fuzzing))]
    let result = std::panic::catch_unwind(|| validate_inner(command, mode));
    match result {
        Ok(Ok((plan, reason))) => Verdict {
            allowed: true,
            reason,
            plan: Some(plan),
        },
        Ok(Err(refusal)) => Verdict {
            allowed: false,
            reason: format!("refused in {mode} mode: {}", refusal.0),
            plan: None,
        },
        Err(_) => Verdict {
            allowed: false,
            reason: format!("refused in {mode} mode: the validator failed internally on this command"),
            plan: None,
        },
    }
}

fn validate_inner(command: &str, mode: Mode) -> Result<(Plan, String), Refusal> {
    let steps = parse_command(command)?;
    let mut ctx = Ctx {
        mode,
        depth: 0,
        network: false,
        walk: judge_steps,
    };
    judge_steps(&steps, &mut ctx)?;
    let plan = Plan {
        mode,
        allow_network: match mode {
            Mode::Safe => false,
            Mode::Restricted => ctx.network,
            Mode::Yolo => true,
        },
        steps,
    };
    // Never approve what we cannot show faithfully: the rendered plan must parse back to
    // exactly the same steps.
    let rendered = render_plan(&plan);
    match parse_command(&rendered) {
        Ok(again) if again == plan.steps => {}
        _ => {
            return Err(Refusal::new(format!(
                "the parsed command could not be reproduced faithfully (rendered as \"{}\")",
                show(&rendered)
            )));
        }
    }
    let reason = summary(&plan);
    Ok((plan, reason))
}

fn summary(plan: &Plan) -> String {
    let names: BTreeSet<&str> = plan
        .steps
        .iter()
        .flat_map(|s| s.pipeline.commands.iter())
        .filter_map(|c| c.argv.first().map(String::as_str))
        .collect();
    let names: Vec<String> = names.into_iter().map(show).collect();
    let names = names.join(", ");
    let network = if plan.allow_network {
        "network allowed"
    } else {
        "network blocked"
    };
    match plan.mode {
        Mode::Safe => {
            format!(
                "allowed in safe mode: {names} only read the working directory and system files (no writes, {network})"
            )
        }
        Mode::Restricted => format!(
            "allowed in restricted mode: {names} are on the development allow list (writes confined to the workspace, {network})"
        ),
        Mode::Yolo => format!(
            "allowed in yolo mode: no catastrophic pattern matched ({names}); review the command yourself (writes confined to the workspace, {network})"
        ),
    }
}

/// Judges every command of the parsed steps (also used for `sh -c` strings in yolo mode).
pub(crate) fn judge_steps(steps: &[Step], ctx: &mut Ctx) -> Result<(), Refusal> {
    let strict = ctx.mode != Mode::Yolo;
    for step in steps {
        let cmds = &step.pipeline.commands;
        for (j, cmd) in cmds.iter().enumerate() {
            if cmd.argv.first().is_some_and(|a| a == "cd") {
                let default_io =
                    cmd.stdin == Input::Pipe && cmd.stdout == Output::Stdout && cmd.stderr == Output::Stderr;
                let target = cmd.argv.get(1).map_or("", String::as_str);
                if cmds.len() != 1 || cmd.argv.len() != 2 || !cmd.env.is_empty() || !default_io {
                    return Err(Refusal::new(
                        "\"cd\" is supported only as \"cd DIR\" on its own (e.g. \"cd sub && make\")",
                    ));
                }
                if target.is_empty() || target == "-" {
                    return Err(Refusal::new("\"cd\" needs an explicit directory"));
                }
                if let Some(what) = policy::secret_in_arg(target) {
                    return Err(Refusal::new(format!("\"cd {}\" enters {what}", show(target))));
                }
                continue;
            }
            for var in &cmd.env {
                policy::judge_env(&var.name, &var.value, ctx.mode)?;
            }
            if let Input::File(path) = &cmd.stdin
                && let Some(what) = policy::secret_in_arg(path)
            {
                return Err(Refusal::new(format!(
                    "the redirection \"<{}\" reads {what}; credentials must not be read (catastrophic; refused in every mode)",
                    show(path)
                )));
            }
            for (fd, out) in [("", &cmd.stdout), ("2", &cmd.stderr)] {
                if let Output::File { path, append } = out {
                    let op = if *append { ">>" } else { ">" };
                    if let Some(what) = policy::protected_write(path) {
                        return Err(Refusal::new(format!(
                            "the redirection \"{fd}{op}{}\" writes to {what} (catastrophic; refused in every mode)",
                            show(path)
                        )));
                    }
                    if strict {
                        return Err(Refusal::new(format!(
                            "the redirection \"{fd}{op}{}\" writes a file; {} mode allows redirection only to /dev/null (and 2>&1)",
                            show(path),
                            ctx.mode
                        )));
                    }
                }
            }
            policy::judge(&cmd.argv, ctx)?;
            if strict {
                let stdin_file = match &cmd.stdin {
                    Input::File(path) => Some(path.as_str()),
                    _ => None,
                };
                reads::check_reads(&cmd.argv, stdin_file)?;
            }
            if j > 0 && cmd.stdin == Input::Pipe {
                let eff = policy::effective_argv(&cmd.argv);
                if policy::reads_program_from_stdin(eff) {
                    let prev = cmds[j - 1].argv.first().map_or("", String::as_str);
                    let name = eff.first().map_or("", String::as_str);
                    return Err(Refusal::new(format!(
                        "\"{} | {}\" pipes data into {} as a program to execute, which cannot be reviewed (catastrophic; refused in every mode)",
                        show(prev),
                        show(name),
                        show(name)
                    )));
                }
            }
        }
    }
    Ok(())
}
