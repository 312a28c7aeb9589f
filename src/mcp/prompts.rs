//! MCP prompts (`prompts/list`, `prompts/get`): ready-made first messages
//! that get a team going. Claude Code shows each as a slash command
//! (`/mcp__bridge__start_team`), other clients as a template; the text says
//! which tools to call, in which order, with which arguments.
//!
//! Every argument value is a human's or an agent's text, and the result is
//! read by a model as instructions. So names (roles, agents, ids) must match
//! their grammar exactly or are refused, and free text is length-bounded and
//! shown quoted with every control and invisible character escaped: it can
//! neither break out of its quotes nor hide anything. A refusal is a
//! JSON-RPC `invalid params` error (what the spec asks of `prompts/get`) that
//! names the argument and the limit and never repeats the value.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rmcp::ErrorData as McpError;
use rmcp::model::{
    CacheScope, GetPromptResult, JsonObject, ListPromptsResult, Prompt, PromptArgument, PromptMessage,
    ProtocolVersion, Role,
};
use serde_json::{Value, json};

mod render;
#[cfg(test)]
mod tests;

/// Longest free-text argument (a goal, a task), in characters. A prompt only
/// starts the work; details belong in the first message, which has the
/// bridge's own 50 KB limit.
pub const MAX_TEXT_CHARS: usize = 2_000;

/// Most names in one list argument: a conversation has at most 16 seats and
/// the caller holds one.
pub const MAX_NAMES: usize = 15;

/// Longest list argument, in characters: 15 names of 64 and their separators.
const MAX_LIST_CHARS: usize = 1_024;

/// A role or agent name: 1-64 of `[A-Za-z0-9_-]`, the bridge's role rule.
const MAX_NAME_CHARS: usize = 64;

/// How long a 2026-07-28 client may reuse the listing: the catalogue is
/// compiled in, the same for every server and every caller.
const LIST_TTL_MS: u64 = 60 * 60 * 1000;

/// Why a `prompts/get` was refused. `Display` is the sentence the client
/// sees: it names the argument and the limit, never the value sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No prompt has the requested name (the name is not repeated).
    #[error(
        "no prompt by that name; this server offers: {offered}. Call prompts/list to see their arguments"
    )]
    UnknownPrompt {
        /// The prompt names on offer.
        offered: String,
    },
    /// An argument this prompt does not take (its name is not repeated).
    #[error("unknown argument: {prompt} takes {accepted}")]
    UnknownArgument {
        /// The prompt asked for.
        prompt: &'static str,
        /// Its arguments.
        accepted: String,
    },
    /// A required argument is absent, empty or only whitespace.
    #[error("missing argument {argument}, which {prompt} needs: {what}")]
    Missing {
        /// The prompt asked for.
        prompt: &'static str,
        /// The argument.
        argument: &'static str,
        /// What the argument is, from its description.
        what: &'static str,
    },
    /// An argument value that is not a JSON string.
    #[error("invalid argument {argument}: must be a string")]
    NotString {
        /// The argument.
        argument: &'static str,
    },
    /// An argument value over its length limit.
    #[error(
        "invalid argument {argument}: at most {limit} characters; shorten it and put details in your first message"
    )]
    TooLong {
        /// The argument.
        argument: &'static str,
        /// The limit in characters.
        limit: usize,
    },
    /// A role or agent name that breaks the role rule.
    #[error(
        "invalid argument {argument}: each name must be 1-64 characters of A-Z a-z 0-9 - _ (several separated by commas or spaces)"
    )]
    BadName {
        /// The argument.
        argument: &'static str,
    },
    /// More names than a conversation has seats for.
    #[error("invalid argument {argument}: at most {MAX_NAMES} names in all (a conversation has 16 seats)")]
    TooMany {
        /// The argument.
        argument: &'static str,
    },
    /// A name given twice, or equal to the caller's own role.
    #[error("invalid argument {argument}: every role and agent name must be unique, and differ from {mine}")]
    Duplicate {
        /// The argument.
        argument: &'static str,
        /// The caller's own role in this prompt.
        mine: String,
    },
    /// A conversation id of the wrong shape.
    #[error(
        "invalid argument conversation_id: must be conv_ followed by 32 lowercase hex characters, as create_conversation returned it"
    )]
    BadConversationId,
    /// A seat that is not one of `a`..`p`.
    #[error("invalid argument session_id: must be one letter from a to p, the seat you were given")]
    BadSessionId,
}

impl Error {
    /// The argument at fault, when one is.
    pub fn argument(&self) -> Option<&'static str> {
        match self {
            Self::UnknownPrompt { .. } | Self::UnknownArgument { .. } => None,
            Self::Missing { argument, .. }
            | Self::NotString { argument }
            | Self::TooLong { argument, .. }
            | Self::BadName { argument }
            | Self::TooMany { argument }
            | Self::Duplicate { argument, .. } => Some(argument),
            Self::BadConversationId => Some("conversation_id"),
            Self::BadSessionId => Some("session_id"),
        }
    }
}

impl From<Error> for McpError {
    fn from(e: Error) -> Self {
        let data = e.argument().map(|a| json!({ "argument": a }));
        McpError::invalid_params(e.to_string(), data)
    }
}

/// What an argument holds, which decides how it is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Free text, shown quoted and escaped.
    Text,
    /// One role or agent name.
    Name,
    /// Role or agent names separated by commas or spaces.
    Names,
    /// A `conv_` id.
    ConversationId,
    /// A seat letter.
    SessionId,
}

/// One argument of one prompt.
struct Arg {
    name: &'static str,
    description: &'static str,
    required: bool,
    kind: Kind,
}

/// One prompt: its listing and the function that writes its text.
struct Spec {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    /// In the order Claude Code takes positional arguments.
    args: &'static [Arg],
    render: fn(&Args) -> Result<String, Error>,
}

/// The catalogue, in listing order.
const PROMPTS: &[Spec] = &[
    Spec {
        name: "start_team",
        title: "Start a team conversation",
        description: "Lead a team: create a conversation, seat agents, send each its first task, then wait for replies.",
        args: &[
            text("goal", "What the team should achieve", true),
            names("roles", "Token seats, e.g. backend,frontend"),
            names(
                "agents",
                "Registered agents to seat directly, e.g. worker1,worker2",
            ),
            name("my_role", "Your role (default lead)"),
        ],
        render: render::start_team,
    },
    Spec {
        name: "join_conversation",
        title: "Join a conversation",
        description: "Join a conversation someone started: get your seat, read the history, report status, wait for messages.",
        args: &[
            Arg {
                name: "conversation_id",
                description: "conv_... as the creator received it",
                required: true,
                kind: Kind::ConversationId,
            },
            Arg {
                name: "session_id",
                description: "Your seat letter (b, c, ...), for a token seat",
                required: false,
                kind: Kind::SessionId,
            },
        ],
        render: render::join_conversation,
    },
    Spec {
        name: "api_first",
        title: "API-first development",
        description: "Backend designs the API contract with a frontend partner, agrees it, then both implement.",
        args: &[
            text("feature", "What the API is for", true),
            name(
                "partner",
                "Registered agent as frontend (default: token seat frontend)",
            ),
        ],
        render: render::api_first,
    },
    Spec {
        name: "security_review",
        title: "Security review",
        description: "Implement while a security reviewer checks each change; fix and answer every finding.",
        args: &[
            text("scope", "What is built and reviewed", true),
            name(
                "partner",
                "Registered agent as reviewer (default: token seat security_reviewer)",
            ),
        ],
        render: render::security_review,
    },
    Spec {
        name: "specialised_expertise",
        title: "Specialised expertise",
        description: "Coordinate experts who each work only in their own domain (e.g. Python backend, TypeScript frontend).",
        args: &[
            text("task", "What is built", true),
            names(
                "roles",
                "Expert token seats, e.g. python_expert,typescript_expert",
            ),
            names("agents", "Registered agents as experts"),
        ],
        render: render::specialised_expertise,
    },
    Spec {
        name: "parallel_problem_solving",
        title: "Parallel problem-solving",
        description: "Find a problem's root cause while a partner ships a workaround, neither blocking the other.",
        args: &[
            text("problem", "The bug or problem", true),
            name(
                "partner",
                "Registered agent for the workaround (default: token seat mitigator)",
            ),
        ],
        render: render::parallel_problem_solving,
    },
];

const fn text(name: &'static str, description: &'static str, required: bool) -> Arg {
    Arg {
        name,
        description,
        required,
        kind: Kind::Text,
    }
}

const fn name(name: &'static str, description: &'static str) -> Arg {
    Arg {
        name,
        description,
        required: false,
        kind: Kind::Name,
    }
}

const fn names(name: &'static str, description: &'static str) -> Arg {
    Arg {
        name,
        description,
        required: false,
        kind: Kind::Names,
    }
}

/// The `prompts/list` result. A 2026-07-28 client gets cache hints, as for
/// `tools/list` (it drops listings without them); older ones get the listing
/// exactly as their version defines it.
pub fn list(protocol: Option<ProtocolVersion>) -> ListPromptsResult {
    let prompts = PROMPTS.iter().map(listing).collect();
    let result = ListPromptsResult::with_all_items(prompts);
    if protocol.is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str()) {
        result
            .with_ttl_ms(LIST_TTL_MS)
            .with_cache_scope(CacheScope::Public)
    } else {
        result
    }
}

fn listing(spec: &Spec) -> Prompt {
    let args = spec
        .args
        .iter()
        .map(|a| {
            PromptArgument::new(a.name)
                .with_description(a.description)
                .with_required(a.required)
        })
        .collect();
    Prompt::new(spec.name, Some(spec.description), Some(args)).with_title(spec.title)
}

/// The `prompts/get` result for prompt `name`: one user message.
pub fn get(name: &str, arguments: Option<JsonObject>) -> Result<GetPromptResult, Error> {
    let spec = PROMPTS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Error::UnknownPrompt {
            offered: PROMPTS.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
        })?;
    let args = Args::parse(spec, arguments.unwrap_or_default())?;
    let text = (spec.render)(&args)?;
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(spec.description),
    )
}

/// One prompt's arguments after checking: free text already quoted,
/// names split and validated. Empty values count as absent, since some
/// clients send every declared argument, empty when not typed.
#[derive(Debug, Default)]
struct Args {
    text: BTreeMap<&'static str, String>,
    names: BTreeMap<&'static str, Vec<String>>,
}

impl Args {
    fn parse(spec: &Spec, raw: JsonObject) -> Result<Self, Error> {
        let accepted = || spec.args.iter().map(|a| a.name).collect::<Vec<_>>().join(", ");
        if raw.keys().any(|k| !spec.args.iter().any(|a| a.name == k)) {
            return Err(Error::UnknownArgument {
                prompt: spec.name,
                accepted: accepted(),
            });
        }
        let mut out = Self::default();
        for arg in spec.args {
            let value = match raw.get(arg.name) {
                None | Some(Value::Null) => "",
                Some(Value::String(s)) => s.trim(),
                Some(_) => return Err(Error::NotString { argument: arg.name }),
            };
            if value.is_empty() {
                if arg.required {
                    return Err(Error::Missing {
                        prompt: spec.name,
                        argument: arg.name,
                        what: arg.description,
                    });
                }
                continue;
            }
            match arg.kind {
                Kind::Text => {
                    check_length(arg.name, value, MAX_TEXT_CHARS)?;
                    out.text.insert(arg.name, quote(value));
                }
                Kind::Name | Kind::Names => {
                    check_length(arg.name, value, MAX_LIST_CHARS)?;
                    let list = split_names(arg.name, value)?;
                    if arg.kind == Kind::Name && list.len() != 1 {
                        return Err(Error::BadName { argument: arg.name });
                    }
                    out.names.insert(arg.name, list);
                }
                Kind::ConversationId if is_conversation_id(value) => {
                    out.text.insert(arg.name, value.to_owned());
                }
                Kind::ConversationId => return Err(Error::BadConversationId),
                Kind::SessionId if matches!(value.as_bytes(), [b'a'..=b'p']) => {
                    out.text.insert(arg.name, value.to_owned());
                }
                Kind::SessionId => return Err(Error::BadSessionId),
            }
        }
        Ok(out)
    }

    /// A checked text or id argument (quoted, for free text).
    fn text(&self, name: &str) -> Option<&str> {
        self.text.get(name).map(String::as_str)
    }

    /// A checked name list; empty when absent.
    fn names(&self, name: &str) -> &[String] {
        self.names.get(name).map_or(&[], Vec::as_slice)
    }

    /// A checked single name, or `default`.
    fn name_or(&self, name: &str, default: &str) -> String {
        self.names(name)
            .first()
            .map_or_else(|| default.to_owned(), Clone::clone)
    }
}

/// Refuses `value` when it has more than `limit` characters, without
/// counting past the limit.
fn check_length(argument: &'static str, value: &str, limit: usize) -> Result<(), Error> {
    match value.chars().nth(limit) {
        Some(_) => Err(Error::TooLong { argument, limit }),
        None => Ok(()),
    }
}

/// Splits on commas and whitespace; every piece must follow the role rule.
fn split_names(argument: &'static str, value: &str) -> Result<Vec<String>, Error> {
    let list: Vec<String> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if list.iter().any(|n| !is_name(n)) {
        return Err(Error::BadName { argument });
    }
    if list.len() > MAX_NAMES {
        return Err(Error::TooMany { argument });
    }
    Ok(list)
}

fn is_name(s: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_conversation_id(s: &str) -> bool {
    s.len() == 37
        && s.starts_with("conv_")
        && s[5..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `value` in double quotes with `"` and `\` escaped, `\n` `\r` `\t` as
/// such, and every other control character and every invisible formatting
/// character (zero-width, bidirectional overrides, line separators, tag
/// characters) as `\u{XXXX}`: what the model reads is exactly what a person
/// reviewing the transcript sees.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_invisible(c) => {
                let _ = write!(out, "\\u{{{:04X}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Format characters that render as nothing or reorder text (Unicode
/// category Cf, plus the line and paragraph separators).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}
