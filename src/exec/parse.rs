//! Turns a command string into literal pipelines using `brush-parser`, refusing every shell
//! construct the runner does not model. This stage knows nothing about which programs are
//! allowed; it only guarantees that what the policy judges is exactly what will execute.

use brush_parser::ast;
use brush_parser::word::WordPiece;

use crate::exec::{Connector, EnvVar, Input, Output, Pipeline, SimpleCommand, Step};

/// Longest command accepted; longer proposals are almost certainly not hand-reviewable.
pub(crate) const MAX_COMMAND_LEN: usize = 16 * 1024;
/// Deepest bracket nesting accepted before parsing, to keep the recursive parser's stack
/// bounded on adversarial input.
const MAX_NESTING: usize = 48;

/// A refusal: one human-readable clause naming the offending word or construct. The
/// validator prefixes it with "refused in MODE mode: ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub(crate) String);

impl Refusal {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Refusal(msg.into())
    }
}

/// Shortens and escapes a fragment for quoting inside a reason.
pub(crate) fn show(s: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out.escape_debug().to_string()
}

/// Parses `command` into plan steps (without policy decisions).
pub(crate) fn parse_command(command: &str) -> Result<Vec<Step>, Refusal> {
    if command.len() > MAX_COMMAND_LEN {
        return Err(Refusal::new(format!(
            "the command is {} bytes long; the limit is {MAX_COMMAND_LEN}",
            command.len()
        )));
    }
    if command.contains('\0') {
        return Err(Refusal::new("the command contains a NUL byte"));
    }
    if command.trim().is_empty() {
        return Err(Refusal::new("the command is empty"));
    }
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    for c in command.chars() {
        match c {
            '(' | '{' | '[' | '`' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            ')' | '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max_depth > MAX_NESTING {
        return Err(Refusal::new(format!(
            "brackets are nested {max_depth} deep; the limit is {MAX_NESTING}"
        )));
    }

    let program = parse_program(command)?;
    let mut steps = Vec::new();
    for complete in &program.complete_commands {
        for ast::CompoundListItem(and_or, sep) in &complete.0 {
            if matches!(sep, ast::SeparatorOperator::Async) {
                return Err(Refusal::new(format!(
                    "\"&\" after \"{}\" runs it in the background; background jobs are not supported",
                    show(&and_or.to_string())
                )));
            }
            steps.push(Step {
                connector: Connector::Always,
                pipeline: pipeline(&and_or.first)?,
            });
            for next in &and_or.additional {
                let (connector, p) = match next {
                    ast::AndOr::And(p) => (Connector::And, p),
                    ast::AndOr::Or(p) => (Connector::Or, p),
                };
                steps.push(Step {
                    connector,
                    pipeline: pipeline(p)?,
                });
            }
        }
    }
    if steps.is_empty() {
        return Err(Refusal::new("the command contains nothing to run"));
    }
    Ok(steps)
}

fn parse_program(command: &str) -> Result<ast::Program, Refusal> {
    let options = brush_parser::ParserOptions::default();
    // brush-parser is not expected to panic, but a parser bug must refuse, not crash the
    // bridge; the closure only borrows immutable data.
    let parse = || {
        let mut parser = brush_parser::Parser::new(std::io::Cursor::new(command.as_bytes()), &options);
        parser.parse_program()
    };
    #[cfg(fuzzing)]
    let result: Result<_, ()> = Ok(parse());
    #[cfg(not(fuzzing))]
    let result = std::panic::catch_unwind(parse);
    match result {
        Ok(Ok(program)) => Ok(program),
        Ok(Err(e)) => Err(Refusal::new(format!(
            "the shell parser could not parse the command ({e})"
        ))),
        Err(_) => Err(Refusal::new("the shell parser failed on this command")),
    }
}

fn pipeline(p: &ast::Pipeline) -> Result<Pipeline, Refusal> {
    if p.timed.is_some() {
        return Err(Refusal::new(
            "the \"time\" keyword is not supported; run the command without it",
        ));
    }
    let mut commands = Vec::with_capacity(p.seq.len());
    for cmd in &p.seq {
        commands.push(command(cmd)?);
    }
    Ok(Pipeline {
        negated: p.bang,
        commands,
    })
}

fn command(cmd: &ast::Command) -> Result<SimpleCommand, Refusal> {
    let text = show(&cmd.to_string());
    let what = match cmd {
        ast::Command::Simple(simple) => return simple_command(simple),
        ast::Command::Function(_) => "a function definition (the shape of a fork bomb)",
        ast::Command::ExtendedTest(..) => "a [[ … ]] test",
        ast::Command::Compound(compound, _) => match compound {
            ast::CompoundCommand::Arithmetic(_) => "an (( … )) arithmetic command",
            ast::CompoundCommand::ArithmeticForClause(_) | ast::CompoundCommand::ForClause(_) => "a for loop",
            ast::CompoundCommand::BraceGroup(_) => "a { …; } group",
            ast::CompoundCommand::Subshell(_) => "a ( … ) subshell",
            ast::CompoundCommand::CaseClause(_) => "a case statement",
            ast::CompoundCommand::IfClause(_) => "an if statement",
            ast::CompoundCommand::WhileClause(_) => "a while loop",
            ast::CompoundCommand::UntilClause(_) => "an until loop",
            ast::CompoundCommand::Coprocess(_) => "a coproc",
        },
    };
    Err(Refusal::new(format!(
        "\"{text}\" is {what}; only simple commands joined by |, &&, || and ; are supported"
    )))
}

/// Tracks where fds 0–2 point while redirections are applied in order.
struct Fds {
    stdin: Input,
    stdout: Output,
    stderr: Output,
}

fn simple_command(sc: &ast::SimpleCommand) -> Result<SimpleCommand, Refusal> {
    let mut fds = Fds {
        stdin: Input::Pipe,
        stdout: Output::Stdout,
        stderr: Output::Stderr,
    };
    let mut env = Vec::new();
    let mut argv = Vec::new();

    if let Some(prefix) = &sc.prefix {
        for item in &prefix.0 {
            match item {
                ast::CommandPrefixOrSuffixItem::AssignmentWord(assignment, word) => {
                    env.push(assignment_var(assignment, word)?);
                }
                ast::CommandPrefixOrSuffixItem::IoRedirect(r) => redirect(r, &mut fds)?,
                ast::CommandPrefixOrSuffixItem::Word(w) => argv.push(literal(&w.value)?),
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(kind, sub) => {
                    return Err(process_substitution(kind, sub));
                }
            }
        }
    }
    match &sc.word_or_name {
        Some(w) => argv.push(literal(&w.value)?),
        None => {
            return Err(Refusal::new(
                "an assignment or redirection without a command does nothing useful here \
                 (and shell variables do not persist); name a program",
            ));
        }
    }
    if let Some(suffix) = &sc.suffix {
        for item in &suffix.0 {
            match item {
                ast::CommandPrefixOrSuffixItem::Word(w)
                | ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => {
                    argv.push(literal(&w.value)?);
                }
                ast::CommandPrefixOrSuffixItem::IoRedirect(r) => redirect(r, &mut fds)?,
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(kind, sub) => {
                    return Err(process_substitution(kind, sub));
                }
            }
        }
    }
    Ok(SimpleCommand {
        env,
        argv,
        stdin: fds.stdin,
        stdout: fds.stdout,
        stderr: fds.stderr,
    })
}

fn process_substitution(kind: &ast::ProcessSubstitutionKind, sub: &ast::SubshellCommand) -> Refusal {
    let (open, dir) = match kind {
        ast::ProcessSubstitutionKind::Read => ("<(", "reads the output of"),
        ast::ProcessSubstitutionKind::Write => (">(", "feeds output into"),
    };
    Refusal::new(format!(
        "process substitution \"{open}{})\" {dir} a hidden command; it is not supported",
        show(&sub.list.to_string())
    ))
}

fn assignment_var(assignment: &ast::Assignment, word: &ast::Word) -> Result<EnvVar, Refusal> {
    let name = match &assignment.name {
        ast::AssignmentName::VariableName(n) if !assignment.append => n.clone(),
        _ => {
            return Err(Refusal::new(format!(
                "the assignment \"{}\" is not a plain NAME=value",
                show(&word.value)
            )));
        }
    };
    let value = match &assignment.value {
        ast::AssignmentValue::Scalar(v) => literal(&v.value)?,
        ast::AssignmentValue::Array(_) => {
            return Err(Refusal::new(format!(
                "the array assignment \"{}\" is not supported",
                show(&word.value)
            )));
        }
    };
    Ok(EnvVar { name, value })
}

fn redirect(r: &ast::IoRedirect, fds: &mut Fds) -> Result<(), Refusal> {
    match r {
        ast::IoRedirect::HereDocument(..) => Err(Refusal::new(
            "here-documents (<<) are not supported; put the text in a file in the workspace",
        )),
        ast::IoRedirect::HereString(_, w) => Err(Refusal::new(format!(
            "the here-string \"<<< {}\" is not supported",
            show(&w.value)
        ))),
        ast::IoRedirect::OutputAndError(w, append) => {
            let target = output_target(&literal(&w.value)?, *append);
            fds.stdout = target.clone();
            fds.stderr = target;
            Ok(())
        }
        ast::IoRedirect::File(fd, kind, target) => {
            let shown = format!(
                "{}{}{}",
                fd.map(|f| f.to_string()).unwrap_or_default(),
                kind,
                target
            );
            let unsupported = || {
                Refusal::new(format!(
                    "the redirection \"{}\" is not supported (only <, >, >>, &>, 2>&1 and >&2 on fds 0-2)",
                    show(&shown)
                ))
            };
            let target_word = match target {
                ast::IoFileRedirectTarget::Filename(w) | ast::IoFileRedirectTarget::Duplicate(w) => {
                    literal(&w.value)?
                }
                ast::IoFileRedirectTarget::Fd(n) => n.to_string(),
                ast::IoFileRedirectTarget::ProcessSubstitution(k, sub) => {
                    return Err(process_substitution(k, sub));
                }
            };
            match kind {
                ast::IoFileRedirectKind::Read => {
                    if fd.unwrap_or(0) != 0 {
                        return Err(unsupported());
                    }
                    fds.stdin = if target_word == "/dev/null" {
                        Input::Null
                    } else {
                        Input::File(target_word)
                    };
                    Ok(())
                }
                ast::IoFileRedirectKind::Write
                | ast::IoFileRedirectKind::Clobber
                | ast::IoFileRedirectKind::Append => {
                    let out = output_target(&target_word, matches!(kind, ast::IoFileRedirectKind::Append));
                    match fd.unwrap_or(1) {
                        1 => fds.stdout = out,
                        2 => fds.stderr = out,
                        _ => return Err(unsupported()),
                    }
                    Ok(())
                }
                ast::IoFileRedirectKind::DuplicateOutput => {
                    let source = match target_word.as_str() {
                        "1" => fds.stdout.clone(),
                        "2" => fds.stderr.clone(),
                        _ => return Err(unsupported()),
                    };
                    match fd.unwrap_or(1) {
                        1 => fds.stdout = source,
                        2 => fds.stderr = source,
                        _ => return Err(unsupported()),
                    }
                    Ok(())
                }
                ast::IoFileRedirectKind::DuplicateInput | ast::IoFileRedirectKind::ReadAndWrite => {
                    Err(unsupported())
                }
            }
        }
    }
}

fn output_target(path: &str, append: bool) -> Output {
    if path == "/dev/null" {
        Output::Null
    } else {
        Output::File {
            path: path.to_owned(),
            append,
        }
    }
}

/// Performs quote removal on one word, refusing anything a shell would expand.
pub(crate) fn literal(word: &str) -> Result<String, Refusal> {
    let options = brush_parser::ParserOptions::default();
    let pieces = brush_parser::word::parse(word, &options)
        .map_err(|e| Refusal::new(format!("the word \"{}\" could not be parsed ({e})", show(word))))?;
    let mut out = String::new();
    for piece in &pieces {
        match &piece.piece {
            WordPiece::Text(s) => {
                if let Some(c) = s.chars().find(|c| "*?[]{}()$".contains(*c)) {
                    if word == "{}" {
                        out.push_str(s);
                        continue;
                    }
                    let why = match c {
                        '*' | '?' | '[' | ']' => "a glob pattern a shell would expand",
                        '{' | '}' => "brace expansion",
                        '$' => "a bare \"$\"",
                        _ => "an extended glob",
                    };
                    return Err(Refusal::new(format!(
                        "the unquoted \"{c}\" in \"{}\" is {why}; nothing is expanded here, so quote it to mean it literally or list the files",
                        show(word)
                    )));
                }
                out.push_str(s);
            }
            WordPiece::SingleQuotedText(s) => out.push_str(s),
            WordPiece::AnsiCQuotedText(s) => out.push_str(&ansi_c(s, word)?),
            WordPiece::DoubleQuotedSequence(inner) => {
                for p in inner {
                    match &p.piece {
                        WordPiece::Text(s) => out.push_str(s),
                        WordPiece::EscapeSequence(e) => double_quoted_escape(e, &mut out),
                        other => return Err(expansion(other, word)),
                    }
                }
            }
            WordPiece::EscapeSequence(e) => {
                let mut chars = e.chars();
                chars.next(); // the backslash
                match chars.as_str() {
                    "\n" => {}
                    rest => out.push_str(rest),
                }
            }
            other => return Err(expansion(other, word)),
        }
    }
    if out.contains('\0') {
        return Err(Refusal::new(format!(
            "the word \"{}\" contains a NUL byte",
            show(word)
        )));
    }
    Ok(out)
}

fn double_quoted_escape(e: &str, out: &mut String) {
    let mut chars = e.chars();
    chars.next();
    match chars.as_str() {
        "\n" => {}
        rest @ ("$" | "`" | "\"" | "\\") => out.push_str(rest),
        _ => out.push_str(e),
    }
}

fn expansion(piece: &WordPiece, word: &str) -> Refusal {
    let what = match piece {
        WordPiece::CommandSubstitution(inner) => format!(
            "command substitution, which would run the hidden command \"{}\"",
            show(inner)
        ),
        WordPiece::BackquotedCommandSubstitution(inner) => format!(
            "backtick command substitution, which would run the hidden command \"{}\"",
            show(inner)
        ),
        WordPiece::ParameterExpansion(_) => "variable expansion".to_owned(),
        WordPiece::ArithmeticExpression(_) => "arithmetic expansion".to_owned(),
        WordPiece::TildeExpansion(_) => {
            "tilde expansion (HOME is the workspace in the sandbox; write the path out)".to_owned()
        }
        WordPiece::GettextDoubleQuotedSequence(_) => "a $\"…\" translated string".to_owned(),
        _ => "an unsupported expansion".to_owned(),
    };
    Refusal::new(format!(
        "\"{}\" uses {what}; commands run without a shell, so nothing is expanded",
        show(word)
    ))
}

/// Decodes the body of a `$'…'` string the way bash does, for the escapes agents use.
fn ansi_c(body: &str, word: &str) -> Result<String, Refusal> {
    let bad = || {
        Refusal::new(format!(
            "the $'…' string in \"{}\" uses an escape this validator does not decode",
            show(word)
        ))
    };
    let mut out = String::new();
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else {
            out.push('\\');
            break;
        };
        i += 1;
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'e' | 'E' => Some('\x1b'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' | '\'' | '"' | '?' => Some(e),
            _ => None,
        };
        if let Some(s) = simple {
            out.push(s);
            continue;
        }
        let (radix, max_digits) = match e {
            'x' => (16, 2),
            'u' => (16, 4),
            'U' => (16, 8),
            '0'..='7' => {
                i -= 1;
                (8, 3)
            }
            _ => return Err(bad()),
        };
        let start = i;
        while i < chars.len() && i - start < max_digits && chars[i].is_digit(radix) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let digits: String = chars[start..i].iter().collect();
        let value = u32::from_str_radix(&digits, radix).map_err(|_| bad())?;
        match e {
            // \xHH and octal produce bytes; only ASCII is representable without guessing.
            'x' | '0'..='7' if value > 0x7f => return Err(bad()),
            _ => {}
        }
        out.push(char::from_u32(value).ok_or_else(bad)?);
    }
    Ok(out)
}
