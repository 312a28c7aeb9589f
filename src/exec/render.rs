//! Renders a [`Plan`] back to an unambiguous shell string, for the approval prompt and for
//! the round-trip check (`validate(render(plan)) == plan`) that guarantees the validator
//! never approves something it cannot reproduce.

use crate::exec::text::is_disguising;
use crate::exec::{Connector, Input, Output, Plan, SimpleCommand};

/// Renders `plan` as a bash command line that parses back to the same plan. Words that are
/// not plainly safe are single-quoted, so what the human reads is what runs.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    for (i, step) in plan.steps.iter().enumerate() {
        if i > 0 {
            out.push_str(match step.connector {
                Connector::Always => "; ",
                Connector::And => " && ",
                Connector::Or => " || ",
            });
        }
        if step.pipeline.negated {
            out.push_str("! ");
        }
        let cmds: Vec<String> = step.pipeline.commands.iter().map(render_command).collect();
        out.push_str(&cmds.join(" | "));
    }
    out
}

fn render_command(cmd: &SimpleCommand) -> String {
    let mut words: Vec<String> = Vec::new();
    for var in &cmd.env {
        words.push(format!("{}={}", var.name, quote(&var.value)));
    }
    for (i, arg) in cmd.argv.iter().enumerate() {
        // A leading NAME=... word would parse as an assignment, so force quotes on argv[0].
        if i == 0 && arg.contains('=') {
            words.push(force_quote(arg));
        } else {
            words.push(quote(arg));
        }
    }
    match &cmd.stdin {
        Input::Pipe => {}
        Input::Null => words.push("</dev/null".to_owned()),
        Input::File(path) => words.push(format!("<{}", quote(path))),
    }
    words.extend(render_outputs(&cmd.stdout, &cmd.stderr));
    words.join(" ")
}

/// Emits redirections in an order that reproduces both resolved targets.
fn render_outputs(stdout: &Output, stderr: &Output) -> Vec<String> {
    let mut r = Vec::new();
    if *stderr == Output::Stdout {
        // `2>&1` must come before stdout is moved.
        r.push("2>&1".to_owned());
        if let Some(s) = target(stdout, "") {
            r.push(s);
        }
    } else if *stdout == Output::Stderr {
        r.push(">&2".to_owned());
        if let Some(s) = target(stderr, "2") {
            r.push(s);
        }
    } else {
        if let Some(s) = target(stdout, "") {
            r.push(s);
        }
        if stderr == stdout && matches!(stdout, Output::File { .. } | Output::Null) {
            r.push("2>&1".to_owned());
        } else if let Some(s) = target(stderr, "2") {
            r.push(s);
        }
    }
    r
}

fn target(out: &Output, fd: &str) -> Option<String> {
    match out {
        Output::Stdout if fd.is_empty() => None,
        Output::Stderr if fd == "2" => None,
        Output::Stdout => Some(format!("{fd}>&1")),
        Output::Stderr => Some(format!("{fd}>&2")),
        Output::Null => Some(format!("{fd}>/dev/null")),
        Output::File { path, append } => {
            Some(format!("{fd}{}{}", if *append { ">>" } else { ">" }, quote(path)))
        }
    }
}

/// Quotes `s` for bash: bare if it only has characters that are never special, otherwise
/// in single quotes (with `'` spelled `'\''`). A word holding a control or invisible
/// formatting character is written as `$'…'` with that character escaped, so the rendering
/// never carries a character that could act on the terminal showing it, and still parses
/// back to the same word.
pub(crate) fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-+./:,@%=^".contains(c));
    if plain { s.to_owned() } else { force_quote(s) }
}

fn force_quote(s: &str) -> String {
    if s.chars().any(is_disguising) {
        return ansi_c_quote(s);
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `$'…'` with backslash, quote and every disguising character escaped (`\xHH` below
/// 0x80, `\uHHHH` / `\UHHHHHHHH` above; the parser decodes exactly these).
fn ansi_c_quote(s: &str) -> String {
    let mut out = String::from("$'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if is_disguising(c) => {
                let v = u32::from(c);
                if v < 0x80 {
                    out.push_str(&format!("\\x{v:02x}"));
                } else if v <= 0xFFFF {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The plan as the approval screen lists it: one block per command with its program, each
/// argument on its own line (shell-quoted, so spaces and empty words are visible and control
/// characters appear as `$'\x1b'`-style escapes), its environment and where its input and
/// outputs go. This is what the validator understood, not the agent's text.
pub fn describe_plan(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    let mut n = 0;
    for (i, step) in plan.steps.iter().enumerate() {
        let gate = match (i, step.connector) {
            (0, _) => "first",
            (_, Connector::Always) => "then, whatever the status (;)",
            (_, Connector::And) => "then, only if the previous step succeeded (&&)",
            (_, Connector::Or) => "then, only if the previous step failed (||)",
        };
        let negated = if step.pipeline.negated {
            ", status inverted (!)"
        } else {
            ""
        };
        lines.push(format!("step {} ({gate}{negated}):", i + 1));
        let count = step.pipeline.commands.len();
        for (k, cmd) in step.pipeline.commands.iter().enumerate() {
            n += 1;
            let program = cmd.argv.first().map_or_else(String::new, |p| quote(p));
            let piped = if k + 1 < count {
                "  | piped into the next"
            } else {
                ""
            };
            if cmd.argv.first().is_some_and(|p| p == "cd") {
                lines.push(format!(
                    "  [{n}] change directory (inside the workspace only) to {}",
                    cmd.argv.get(1).map_or_else(String::new, |d| quote(d))
                ));
                continue;
            }
            lines.push(format!("  [{n}] program  {program}{piped}"));
            for (j, arg) in cmd.argv.iter().enumerate().skip(1) {
                lines.push(format!("      arg {j:<3}  {}", quote(arg)));
            }
            for var in &cmd.env {
                lines.push(format!("      env      {}={}", var.name, quote(&var.value)));
            }
            match &cmd.stdin {
                Input::Pipe if k > 0 => lines.push("      stdin    the previous command".to_owned()),
                Input::Pipe => {}
                Input::Null => lines.push("      stdin    /dev/null".to_owned()),
                Input::File(path) => lines.push(format!("      stdin    read from file {}", quote(path))),
            }
            for (name, out) in [("stdout", &cmd.stdout), ("stderr", &cmd.stderr)] {
                let text = match out {
                    Output::Stdout if name == "stdout" => continue,
                    Output::Stderr if name == "stderr" => continue,
                    Output::Stdout => "the same place as stdout".to_owned(),
                    Output::Stderr => "the same place as stderr".to_owned(),
                    Output::Null => "/dev/null".to_owned(),
                    Output::File { path, append } => format!(
                        "{} file {}",
                        if *append {
                            "appended to"
                        } else {
                            "written to (truncated)"
                        },
                        quote(path)
                    ),
                };
                lines.push(format!("      {name}   {text}"));
            }
        }
    }
    lines
}
