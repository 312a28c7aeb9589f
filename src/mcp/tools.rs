//! The five tools: names and arguments kept from the original Python bridge
//! so its users switch without rewriting prompts, each with a strict input
//! schema (unknown fields refused), an output schema, and truthful
//! annotations.

use std::sync::{Arc, LazyLock};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};

use super::schema::{self, Side};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::bridge::{ActionType, Created, Inbox, PartnerStatus, Sent, SessionId, StatusKind, StatusUpdated};

/// Drops a field's description from its schema, for fields whose name and
/// pattern say everything and that repeat in every tool.
fn bare(schema: &mut schemars::Schema) {
    schema.remove("description");
}

/// Arguments of `create_conversation`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationArgs {
    /// Your role, e.g. "backend".
    #[serde(default)]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub my_role: Option<String>,
    /// Your partner's role; as my_role, so no description.
    #[serde(default)]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"), transform = bare)]
    pub partner_role: Option<String>,
    /// Instead of partner_role, for a team: seats b, c, ... in this order.
    #[serde(default)]
    #[schemars(
        length(min = 1, max = 15),
        inner(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))
    )]
    pub partner_roles: Option<Vec<String>>,
    /// Registered agents to seat (their role is their name); they need no token.
    #[serde(default)]
    #[schemars(
        length(min = 1, max = 15),
        inner(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))
    )]
    pub with_agents: Option<Vec<String>>,
}

/// Arguments of `my_conversations`: none.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// Arguments of `send_message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageArgs {
    /// From create_conversation; its pattern says it all, so no description.
    #[schemars(regex(pattern = r"^conv_[0-9a-f]{32}$"), transform = bare)]
    pub conversation_id: String,
    /// Your seat; the pattern says it, so no description.
    #[serde(default)]
    #[schemars(transform = bare)]
    pub session_id: Option<SessionId>,
    /// Your seat's token; its pattern says it all, so no description.
    #[serde(default)]
    #[schemars(regex(pattern = r"^mcpb_[A-Za-z0-9_-]{43}$"), transform = bare)]
    pub token: Option<String>,
    /// At most 51,200 bytes by default.
    #[schemars(length(min = 1))]
    pub message: String,
    /// Roles to address (default: every other participant).
    #[serde(default)]
    #[schemars(length(min = 1, max = 15), inner(length(min = 1, max = 64)))]
    pub to: Option<Vec<String>>,
    /// What the message is for; the names say it, so no description.
    #[schemars(transform = bare)]
    #[serde(default)]
    pub action_type: ActionType,
    /// Paths the message concerns; the name says it, so no description.
    #[serde(default)]
    #[schemars(length(max = 50), inner(length(min = 1, max = 1024)), transform = bare)]
    pub files_involved: Vec<String>,
    /// The seq of the message this answers.
    #[serde(default)]
    #[schemars(range(min = 1, max = i64::MAX))]
    pub reply_to: Option<i64>,
}

/// Arguments of `message_status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageStatusArgs {
    /// From create_conversation; its pattern says it all, so no description.
    #[schemars(regex(pattern = r"^conv_[0-9a-f]{32}$"), transform = bare)]
    pub conversation_id: String,
    /// Your seat; the pattern says it, so no description.
    #[serde(default)]
    #[schemars(transform = bare)]
    pub session_id: Option<SessionId>,
    /// Your seat's token; its pattern says it all, so no description.
    #[serde(default)]
    #[schemars(regex(pattern = r"^mcpb_[A-Za-z0-9_-]{43}$"), transform = bare)]
    pub token: Option<String>,
    /// The message_id send_message returned.
    #[schemars(range(min = 1, max = i64::MAX))]
    pub message_id: i64,
}

/// Arguments of `send_to_partner`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendToPartnerArgs {
    /// From create_conversation; its pattern says it all, so no description.
    #[schemars(regex(pattern = r"^conv_[0-9a-f]{32}$"), transform = bare)]
    pub conversation_id: String,
    /// Your seat; the pattern says it, so no description.
    #[serde(default)]
    #[schemars(transform = bare)]
    pub session_id: Option<SessionId>,
    /// Your seat's token; its pattern says it all, so no description.
    #[serde(default)]
    #[schemars(regex(pattern = r"^mcpb_[A-Za-z0-9_-]{43}$"), transform = bare)]
    pub token: Option<String>,
    /// At most 51,200 bytes by default.
    #[schemars(length(min = 1))]
    pub message: String,
    /// What the message is for; the names say it, so no description.
    #[schemars(transform = bare)]
    #[serde(default)]
    pub action_type: ActionType,
    /// Paths the message concerns; the name says it, so no description.
    #[serde(default)]
    #[schemars(length(max = 50), inner(length(min = 1, max = 1024)), transform = bare)]
    pub files_involved: Vec<String>,
}

/// Arguments of the tools that only authenticate: `check_messages`, `check_partner_status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionArgs {
    /// From create_conversation; its pattern says it all, so no description.
    #[schemars(regex(pattern = r"^conv_[0-9a-f]{32}$"), transform = bare)]
    pub conversation_id: String,
    /// Your seat; the pattern says it, so no description.
    #[serde(default)]
    #[schemars(transform = bare)]
    pub session_id: Option<SessionId>,
    /// Your seat's token; its pattern says it all, so no description.
    #[serde(default)]
    #[schemars(regex(pattern = r"^mcpb_[A-Za-z0-9_-]{43}$"), transform = bare)]
    pub token: Option<String>,
}

/// Arguments of `check_messages`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckMessagesArgs {
    /// From create_conversation; its pattern says it all, so no description.
    #[schemars(regex(pattern = r"^conv_[0-9a-f]{32}$"), transform = bare)]
    pub conversation_id: String,
    /// Your seat; the pattern says it, so no description.
    #[serde(default)]
    #[schemars(transform = bare)]
    pub session_id: Option<SessionId>,
    /// Your seat's token; its pattern says it all, so no description.
    #[serde(default)]
    #[schemars(regex(pattern = r"^mcpb_[A-Za-z0-9_-]{43}$"), transform = bare)]
    pub token: Option<String>,
    /// Look without marking read; the tool's description says it, so no description here.
    #[serde(default)]
    #[schemars(transform = bare)]
    pub peek: bool,
}

/// Arguments of `wait_for_messages`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// From create_conversation; its pattern says it all, so no description.
    /// A registered agent may leave it out to wait on all its conversations.
    #[serde(default)]
    #[schemars(regex(pattern = r"^conv_[0-9a-f]{32}$"), transform = bare)]
    pub conversation_id: Option<String>,
    /// Your seat; the pattern says it, so no description.
    #[serde(default)]
    #[schemars(transform = bare)]
    pub session_id: Option<SessionId>,
    /// Your seat's token; its pattern says it all, so no description.
    #[serde(default)]
    #[schemars(regex(pattern = r"^mcpb_[A-Za-z0-9_-]{43}$"), transform = bare)]
    pub token: Option<String>,
    /// Seconds; the name and bounds say it, so no description. At most 55,
    /// below the 60 s after which common clients give up on a request.
    #[serde(default = "default_wait")]
    #[schemars(range(min = 0, max = 55), transform = bare)]
    pub timeout_seconds: u32,
}

fn default_wait() -> u32 {
    30
}

/// Arguments of `read_history`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryArgs {
    /// From create_conversation; its pattern says it all, so no description.
    #[schemars(regex(pattern = r"^conv_[0-9a-f]{32}$"), transform = bare)]
    pub conversation_id: String,
    /// Your seat; the pattern says it, so no description.
    #[serde(default)]
    #[schemars(transform = bare)]
    pub session_id: Option<SessionId>,
    /// Your seat's token; its pattern says it all, so no description.
    #[serde(default)]
    #[schemars(regex(pattern = r"^mcpb_[A-Za-z0-9_-]{43}$"), transform = bare)]
    pub token: Option<String>,
    /// Start after this seq; the tool's description says it, so no description here.
    #[serde(default)]
    #[schemars(range(min = 0, max = i64::MAX), transform = bare)]
    pub after_seq: i64,
    /// At most this many; the bounds say it, so no description.
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 1, max = 100), transform = bare)]
    pub limit: u32,
}

fn default_history_limit() -> u32 {
    50
}

/// Arguments of `update_my_status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatusArgs {
    /// From create_conversation; its pattern says it all, so no description.
    #[schemars(regex(pattern = r"^conv_[0-9a-f]{32}$"), transform = bare)]
    pub conversation_id: String,
    /// Your seat; the pattern says it, so no description.
    #[serde(default)]
    #[schemars(transform = bare)]
    pub session_id: Option<SessionId>,
    /// Your seat's token; its pattern says it all, so no description.
    #[serde(default)]
    #[schemars(regex(pattern = r"^mcpb_[A-Za-z0-9_-]{43}$"), transform = bare)]
    pub token: Option<String>,
    /// Your state; the enum says it, so no description.
    #[schemars(transform = bare)]
    pub status: StatusKind,
    /// Optional context, redacted before storage; the name says it, so no description.
    #[serde(default)]
    #[schemars(length(max = 1024), transform = bare)]
    pub note: Option<String>,
}

/// Arguments of `propose_command` (YOLO mode only).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeCommandArgs {
    /// From create_conversation; its pattern says it all, so no description.
    #[schemars(regex(pattern = r"^conv_[0-9a-f]{32}$"), transform = bare)]
    pub conversation_id: String,
    /// Your seat; the pattern says it, so no description.
    #[serde(default)]
    #[schemars(transform = bare)]
    pub session_id: Option<SessionId>,
    /// Your seat's token; its pattern says it all, so no description.
    #[serde(default)]
    #[schemars(regex(pattern = r"^mcpb_[A-Za-z0-9_-]{43}$"), transform = bare)]
    pub token: Option<String>,
    /// The command line, at most 4096 bytes. Simple commands, pipelines, && and || only; it is parsed, never handed to a shell. Never put secrets in it.
    #[schemars(length(min = 1))]
    pub command: String,
    /// The policy to judge it by: safe (read-only inspection), restricted (safe plus local git, build and test), yolo (most commands, never catastrophic ones).
    pub mode: crate::exec::Mode,
    /// Working directory relative to the workspace (default ".").
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub cwd: Option<String>,
    /// Why the command should run; the human reads it before approving. At most 1024 characters.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
}

/// Arguments of `execute_approved` (YOLO mode only).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteApprovedArgs {
    /// From create_conversation; its pattern says it all, so no description.
    #[schemars(regex(pattern = r"^conv_[0-9a-f]{32}$"), transform = bare)]
    pub conversation_id: String,
    /// Your seat (the proposer's).
    #[serde(default)]
    pub session_id: Option<SessionId>,
    /// Your seat's token; its pattern says it all, so no description.
    #[serde(default)]
    #[schemars(regex(pattern = r"^mcpb_[A-Za-z0-9_-]{43}$"), transform = bare)]
    pub token: Option<String>,
    /// From propose_command, approved by a human.
    #[schemars(regex(pattern = r"^prop_[0-9a-f]{32}$"))]
    pub proposal_id: String,
}

crate::bridge::types::string_enum_schema!(crate::exec::Mode, "Mode");

/// See [`CREATE_CONVERSATION`].
pub const PROPOSE_COMMAND: &str = "propose_command";
/// See [`CREATE_CONVERSATION`].
pub const EXECUTE_APPROVED: &str = "execute_approved";

/// The audit action a tool's calls are recorded under, also when refused
/// before reaching the bridge.
pub fn audit_action(tool: &str) -> Option<&'static str> {
    Some(match tool {
        CREATE_CONVERSATION => "conversation.create",
        SEND_TO_PARTNER => "message.send",
        CHECK_MESSAGES => "message.check",
        UPDATE_MY_STATUS => "status.update",
        CHECK_PARTNER_STATUS => "status.check",
        WAIT_FOR_MESSAGES => "message.wait",
        READ_HISTORY => "message.history",
        SEND_MESSAGE => "message.send",
        LIST_PARTICIPANTS => "participants.list",
        MESSAGE_STATUS => "message.status",
        MY_CONVERSATIONS => "conversations.mine",
        PROPOSE_COMMAND => "command.propose",
        EXECUTE_APPROVED => "command.execute",
        _ => return None,
    })
}

/// The execution tools, listed only when the human enabled YOLO mode.
pub static YOLO_TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    vec![
        tool::<ProposeCommandArgs, crate::bridge::yolo::Proposed>(
            PROPOSE_COMMAND,
            "Propose command",
            "Propose a command for a human to approve. Nothing runs: the command is validated for the mode you name, stored, and shown to your partner; a human must then run `mcp-bridge approve <proposal_id>` in a terminal. Commands containing secrets are refused.",
            ToolAnnotations::new()
                .read_only(false)
                .destructive(false)
                .idempotent(false)
                .open_world(false),
        ),
        tool::<ExecuteApprovedArgs, crate::bridge::yolo::Executed>(
            EXECUTE_APPROVED,
            "Execute approved command",
            "Run a command a human approved, exactly once, within 5 minutes of the approval, in a sandbox confined to the workspace. The output (redacted) is returned and sent to your partner.",
            ToolAnnotations::new()
                .read_only(false)
                .destructive(true)
                .idempotent(false)
                .open_world(true),
        ),
    ]
});

/// The tool names, in the order they are listed.
pub const CREATE_CONVERSATION: &str = "create_conversation";
/// See [`CREATE_CONVERSATION`].
pub const SEND_TO_PARTNER: &str = "send_to_partner";
/// See [`CREATE_CONVERSATION`].
pub const CHECK_MESSAGES: &str = "check_messages";
/// See [`CREATE_CONVERSATION`].
pub const UPDATE_MY_STATUS: &str = "update_my_status";
/// See [`CREATE_CONVERSATION`].
pub const CHECK_PARTNER_STATUS: &str = "check_partner_status";
/// See [`CREATE_CONVERSATION`].
pub const WAIT_FOR_MESSAGES: &str = "wait_for_messages";
/// See [`CREATE_CONVERSATION`].
pub const READ_HISTORY: &str = "read_history";
/// See [`CREATE_CONVERSATION`].
pub const SEND_MESSAGE: &str = "send_message";
/// See [`CREATE_CONVERSATION`].
pub const LIST_PARTICIPANTS: &str = "list_participants";
/// See [`CREATE_CONVERSATION`].
pub const MESSAGE_STATUS: &str = "message_status";
/// See [`CREATE_CONVERSATION`]; listed only to a registered agent.
pub const MY_CONVERSATIONS: &str = "my_conversations";

/// A JSON schema for `T`, with every subschema inlined (some clients still
/// do not resolve `$ref` in tool schemas), made portable and compact by
/// [`schema::portable`].
pub fn schema_of<T: JsonSchema>(side: Side) -> JsonObject {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
    });
    let schema = settings.into_generator().into_root_schema_for::<T>();
    match serde_json::to_value(schema) {
        Ok(serde_json::Value::Object(obj)) => schema::portable(obj, side),
        _ => JsonObject::new(),
    }
}

/// Annotations for the tools that touch only the bridge's own data. The
/// display title is the tool's own `title`, not repeated here. A hint equal
/// to the spec's default (`readOnlyHint` and `idempotentHint` false) is left
/// out, since every agent pays for the listing; `destructiveHint` and
/// `openWorldHint` default to true and so are always stated.
fn annotations(read_only: bool, idempotent: bool) -> ToolAnnotations {
    let mut ann = ToolAnnotations::new().destructive(false).open_world(false);
    if read_only {
        ann = ann.read_only(true);
    }
    if idempotent {
        ann = ann.idempotent(true);
    }
    ann
}

fn tool<I: JsonSchema, O: JsonSchema>(
    name: &'static str,
    title: &str,
    description: &'static str,
    ann: ToolAnnotations,
) -> Tool {
    Tool::new(name, description, Arc::new(schema_of::<I>(Side::Input)))
        .with_title(title)
        .with_raw_output_schema(Arc::new(schema_of::<O>(Side::Output)))
        .with_annotations(ann)
}

/// Every tool as a client without an agent identity sees it: `session_id`
/// and `token` required wherever they appear, and no `with_agents`. Built
/// once per process.
pub static TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(|| base_tools().into_iter().map(for_seats).collect());

/// Every tool as a registered agent's server lists it: the seat
/// credentials optional (the process's identity stands in for them),
/// `with_agents` offered, and `my_conversations` added.
pub static AGENT_TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    let mut tools = base_tools();
    if let Some(create) = tools.iter_mut().find(|t| t.name == CREATE_CONVERSATION) {
        create.description = Some(
            "Start here; you become session \"a\". with_agents seats registered agents, who need no token; partner_role(s) add token seats, whose tokens (shown once) go to their agents via the human."
                .into(),
        );
    }
    tools.push(tool::<NoArgs, crate::bridge::MyConversations>(
        MY_CONVERSATIONS,
        "My conversations",
        "The conversations your agent holds a seat in, with your role and unread count. Start here after a restart.",
        annotations(true, true),
    ));
    tools
});

/// The execution tools as a client without an agent identity sees them.
pub static YOLO_SEAT_TOOLS: LazyLock<Vec<Tool>> =
    LazyLock::new(|| YOLO_TOOLS.iter().cloned().map(for_seats).collect());

/// Makes a tool's schema what a caller proving itself with a seat token
/// must send: `conversation_id`, `session_id` and `token` required where
/// they appear, `my_role` required, `with_agents` not offered.
fn for_seats(mut tool: Tool) -> Tool {
    let mut schema = (*tool.input_schema).clone();
    let props: Vec<String> = schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(serde_json::Value::Object(p)) = schema.get_mut("properties") {
        p.remove("with_agents");
    }
    let mut required: Vec<serde_json::Value> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    for name in ["conversation_id", "session_id", "token", "my_role"] {
        let wanted = serde_json::Value::String(name.into());
        if props.iter().any(|p| p == name) && !required.contains(&wanted) {
            required.push(wanted);
        }
    }
    schema.insert("required".into(), serde_json::Value::Array(required));
    tool.input_schema = Arc::new(schema);
    tool
}

/// The tools common to both listings. Each description says when to use
/// the tool and what its result means; the output schemas carry only shape.
fn base_tools() -> Vec<Tool> {
    vec![
        tool::<CreateConversationArgs, Created>(
            CREATE_CONVERSATION,
            "Create conversation",
            "Start here; you become session \"a\". Name partner_role, or partner_roles for a team. Give each partner, via the human, conversation_id, its session_id and token (shown once).",
            annotations(false, false),
        ),
        tool::<SendToPartnerArgs, Sent>(
            SEND_TO_PARTNER,
            "Send to partner",
            "Message your partner; secrets are redacted before storage (`redacted` lists the kinds).",
            annotations(false, false),
        ),
        tool::<CheckMessagesArgs, Inbox>(
            CHECK_MESSAGES,
            "Check messages",
            "Fetch unread messages, oldest first, marking them read (unless peek=true): each arrives once. To wait, use wait_for_messages.",
            annotations(false, false),
        ),
        tool::<UpdateStatusArgs, StatusUpdated>(
            UPDATE_MY_STATUS,
            "Update my status",
            "Tell your partner your status; each call is also your heartbeat (alive 5 min by default).",
            annotations(false, true),
        ),
        tool::<SessionArgs, PartnerStatus>(
            CHECK_PARTNER_STATUS,
            "Check partner status",
            "Is your partner alive? Its status, note, and how many of your messages it has not read.",
            annotations(true, true),
        ),
        tool::<WaitArgs, crate::bridge::Waited>(
            WAIT_FOR_MESSAGES,
            "Wait for messages",
            "Wait for a reply instead of polling: returns unread messages (marked read) once any arrive, or timed_out=true. Cancelling marks nothing read.",
            annotations(false, false),
        ),
        tool::<HistoryArgs, crate::bridge::History>(
            READ_HISTORY,
            "Read history",
            "Re-read what you sent and received, marking nothing (after a restart): after_seq=0, then after_seq=next_after_seq while more is true.",
            annotations(true, true),
        ),
        tool::<SendMessageArgs, crate::bridge::Stored>(
            SEND_MESSAGE,
            "Send message",
            "Send to some participants (to: [roles]) or all (no to); reply_to links an answer. Stored is not read: see message_status.",
            annotations(false, false),
        ),
        tool::<SessionArgs, crate::bridge::Participants>(
            LIST_PARTICIPANTS,
            "List participants",
            "Everyone in the conversation: role, seat, status, note, alive, and unread messages.",
            annotations(true, true),
        ),
        tool::<MessageStatusArgs, crate::bridge::MessageStatus>(
            MESSAGE_STATUS,
            "Message status",
            "Receipts for a message you sent: each recipient's read_at, null until read.",
            annotations(true, true),
        ),
    ]
}

/// The budget for the default tools' `tools/list` result, in characters of
/// its JSON: every agent pays for the listing on every turn (issue 11).
///
/// Issue 11 set 8,000 for the seven; Teams (issue 18) then added to them
/// what a team needs: `partner_roles` and `seats` in create_conversation,
/// `to`, `reply_to` and `conversation_id` on every message. 1,000 characters
/// more, so no field of those goes undeclared.
pub const TOOLS_LIST_BUDGET: usize = 9_000;

/// The budget of the three team tools (`send_message`, `list_participants`,
/// `message_status`) on top of [`TOOLS_LIST_BUDGET`].
pub const TEAM_TOOLS_BUDGET: usize = 4_000;

/// The budget of the listing a registered agent's server sends: the same
/// tools with optional credentials, plus `my_conversations`.
pub const AGENT_TOOLS_BUDGET: usize = TOOLS_LIST_BUDGET + TEAM_TOOLS_BUDGET + 1_000;

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11: the 7 default tools' listing was 16,226 characters; they
    /// keep to [`TOOLS_LIST_BUDGET`]. The team tools (issue 18) come on top, within their
    /// own budget, [`TEAM_TOOLS_BUDGET`].
    #[test]
    fn default_tools_list_fits_its_budget() {
        let listing = rmcp::model::ListToolsResult::with_all_items(TOOLS.clone());
        let total = serde_json::to_string(&listing).unwrap().len();
        let original: Vec<Tool> = TOOLS.iter().take(7).cloned().collect();
        let seven = rmcp::model::ListToolsResult::with_all_items(original);
        let seven_len = serde_json::to_string(&seven).unwrap().len();
        for t in TOOLS.iter() {
            let one = serde_json::to_string(t).unwrap().len();
            eprintln!("{:<22} {one:>5}", t.name);
        }
        eprintln!("{:<22} {seven_len:>5}", "the original seven");
        eprintln!("{:<22} {total:>5}", "tools/list result");
        let agent = rmcp::model::ListToolsResult::with_all_items(AGENT_TOOLS.clone());
        let agent_len = serde_json::to_string(&agent).unwrap().len();
        eprintln!("{:<22} {agent_len:>5}", "agent listing");
        for (len, value, budget) in [
            (
                agent_len,
                serde_json::to_value(&agent).unwrap(),
                AGENT_TOOLS_BUDGET,
            ),
            (
                seven_len,
                serde_json::to_value(&seven).unwrap(),
                TOOLS_LIST_BUDGET,
            ),
            (
                total,
                serde_json::to_value(&listing).unwrap(),
                TOOLS_LIST_BUDGET + TEAM_TOOLS_BUDGET,
            ),
        ] {
            assert!(len <= budget, "{len} characters > {budget}");
            // The same listing as Python's default `json.dumps` prints it (a
            // space after every `,` and `:`), the measure the budget was first set in.
            let spaced = len + separators(&value);
            assert!(spaced <= budget, "{spaced} characters with spaces > {budget}");
        }
    }

    /// How many `,` and `:` separators the compact JSON of `v` has.
    fn separators(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => {
                a.len().saturating_sub(1) + a.iter().map(separators).sum::<usize>()
            }
            serde_json::Value::Object(o) => {
                o.len() + o.len().saturating_sub(1) + o.values().map(separators).sum::<usize>()
            }
            _ => 0,
        }
    }

    #[test]
    fn every_tool_has_a_title_and_portable_schemas() {
        for t in TOOLS.iter().chain(YOLO_TOOLS.iter()) {
            assert!(t.title.as_deref().is_some_and(|s| !s.is_empty()), "{}", t.name);
            let text = serde_json::to_string(&(&t.input_schema, &t.output_schema)).unwrap();
            for bad in [
                "int64",
                "int32",
                "uint",
                "\"double\"",
                "\"float\"",
                "[\"string\",\"null\"]",
                "\"null\",\"",
            ] {
                assert!(!text.contains(bad), "{}: {bad} in {text}", t.name);
            }
        }
    }

    #[test]
    fn every_input_schema_refuses_unknown_fields() {
        for t in TOOLS.iter() {
            assert_eq!(
                t.input_schema.get("additionalProperties"),
                Some(&serde_json::Value::Bool(false)),
                "{}",
                t.name
            );
            assert_eq!(t.input_schema.get("type"), Some(&serde_json::json!("object")));
            let out = t.output_schema.as_ref().expect("output schema");
            assert_eq!(out.get("type"), Some(&serde_json::json!("object")), "{}", t.name);
        }
    }

    #[test]
    fn schemas_inline_their_enums() {
        let text = serde_json::to_string(&*TOOLS).unwrap();
        assert!(!text.contains("$ref"), "{text}");
        assert!(text.contains("review_request"));
    }

    #[test]
    fn schema_limits_match_the_default_limits() {
        let l = crate::config::Limits::default();
        let send = schema_of::<SendToPartnerArgs>(Side::Input);
        let files = &send["properties"]["files_involved"];
        assert_eq!(files["maxItems"], serde_json::json!(l.max_files));
        assert_eq!(files["items"]["maxLength"], serde_json::json!(l.max_path_chars));
        let create = schema_of::<CreateConversationArgs>(Side::Input);
        assert_eq!(
            create["properties"]["my_role"]["maxLength"],
            serde_json::json!(l.max_role_chars)
        );
        let status = schema_of::<UpdateStatusArgs>(Side::Input);
        assert_eq!(
            status["properties"]["note"]["maxLength"],
            serde_json::json!(l.max_note_chars)
        );
    }
}
