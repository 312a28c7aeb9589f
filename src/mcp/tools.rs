//! The five tools: names and arguments kept from the original Python bridge
//! so its users switch without rewriting prompts, each with a strict input
//! schema (unknown fields refused), an output schema, and truthful
//! annotations.

use std::sync::{Arc, LazyLock};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::bridge::{ActionType, Created, Inbox, PartnerStatus, Sent, SessionId, StatusKind, StatusUpdated};

/// Arguments of `create_conversation`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationArgs {
    /// Your role, e.g. "backend". 1-64 characters: letters, digits, '-' and '_'. You become session "a".
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub my_role: String,
    /// Your partner's role, e.g. "frontend". Same rules. The partner becomes session "b".
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$"))]
    pub partner_role: String,
}

/// Arguments of `send_to_partner`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendToPartnerArgs {
    /// The id returned by create_conversation ("conv_" + 32 hex characters).
    #[schemars(length(min = 1, max = 64))]
    pub conversation_id: String,
    /// Your seat: "a" (the creator) or "b" (the partner).
    pub session_id: SessionId,
    /// The token issued for your seat.
    #[schemars(length(min = 1, max = 128))]
    pub token: String,
    /// The message. At most 51,200 bytes of UTF-8 (configurable by the operator). Secrets are replaced by `[REDACTED:kind]` before storage.
    #[schemars(length(min = 1))]
    pub message: String,
    /// What the message is for: info (default; no reply expected), question (expects an answer), proposal (a plan awaiting agreement), review_request (review the files_involved), answer (reply to a question or review).
    #[serde(default)]
    pub action_type: ActionType,
    /// Paths the message concerns: at most 50, each 1-1024 characters.
    #[serde(default)]
    #[schemars(length(max = 50), inner(length(min = 1, max = 1024)))]
    pub files_involved: Vec<String>,
}

/// Arguments of the tools that only authenticate: `check_messages`, `check_partner_status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionArgs {
    /// The id returned by create_conversation.
    #[schemars(length(min = 1, max = 64))]
    pub conversation_id: String,
    /// Your seat: "a" or "b".
    pub session_id: SessionId,
    /// The token issued for your seat.
    #[schemars(length(min = 1, max = 128))]
    pub token: String,
}

/// Arguments of `check_messages`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckMessagesArgs {
    /// The id returned by create_conversation.
    #[schemars(length(min = 1, max = 64))]
    pub conversation_id: String,
    /// Your seat: "a" or "b".
    pub session_id: SessionId,
    /// The token issued for your seat.
    #[schemars(length(min = 1, max = 128))]
    pub token: String,
    /// Look without marking read (default false): a later check still delivers them.
    #[serde(default)]
    pub peek: bool,
}

/// Arguments of `wait_for_messages`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitArgs {
    /// The id returned by create_conversation.
    #[schemars(length(min = 1, max = 64))]
    pub conversation_id: String,
    /// Your seat: "a" or "b".
    pub session_id: SessionId,
    /// The token issued for your seat.
    #[schemars(length(min = 1, max = 128))]
    pub token: String,
    /// How long to wait for a message, 0-55 seconds (default 30): below the 60 s after which common clients give up on a request.
    #[serde(default = "default_wait")]
    #[schemars(range(min = 0, max = 55))]
    pub timeout_seconds: u32,
}

fn default_wait() -> u32 {
    30
}

/// Arguments of `read_history`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryArgs {
    /// The id returned by create_conversation.
    #[schemars(length(min = 1, max = 64))]
    pub conversation_id: String,
    /// Your seat: "a" or "b".
    pub session_id: SessionId,
    /// The token issued for your seat.
    #[schemars(length(min = 1, max = 128))]
    pub token: String,
    /// Return messages with seq greater than this (default 0: from the start).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub after_seq: i64,
    /// At most this many, 1-100 (default 50).
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

fn default_history_limit() -> u32 {
    50
}

/// Arguments of `update_my_status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatusArgs {
    /// The id returned by create_conversation.
    #[schemars(length(min = 1, max = 64))]
    pub conversation_id: String,
    /// Your seat: "a" or "b".
    pub session_id: SessionId,
    /// The token issued for your seat.
    #[schemars(length(min = 1, max = 128))]
    pub token: String,
    /// working (busy on your part), waiting (for the partner), blocked (cannot continue; say why in note), complete (done).
    pub status: StatusKind,
    /// Optional context, at most 1024 characters; redacted before storage.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub note: Option<String>,
}

/// Arguments of `propose_command` (YOLO mode only).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeCommandArgs {
    /// The id returned by create_conversation.
    #[schemars(length(min = 1, max = 64))]
    pub conversation_id: String,
    /// Your seat: "a" or "b".
    pub session_id: SessionId,
    /// The token issued for your seat.
    #[schemars(length(min = 1, max = 128))]
    pub token: String,
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
    /// The id returned by create_conversation.
    #[schemars(length(min = 1, max = 64))]
    pub conversation_id: String,
    /// Your seat: "a" or "b" (the proposer's).
    pub session_id: SessionId,
    /// The token issued for your seat.
    #[schemars(length(min = 1, max = 128))]
    pub token: String,
    /// The id returned by propose_command, approved by a human.
    #[schemars(length(min = 1, max = 64))]
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
            "Propose a command for a human to approve. Nothing runs: the command is validated for the mode you name, stored, and shown to your partner; a human must then run `mcp-bridge approve <proposal_id>` in a terminal. Commands containing secrets are refused.",
            ToolAnnotations::with_title("Propose command")
                .read_only(false)
                .destructive(false)
                .idempotent(false)
                .open_world(false),
        ),
        tool::<ExecuteApprovedArgs, crate::bridge::yolo::Executed>(
            EXECUTE_APPROVED,
            "Run a command a human approved, exactly once, within 5 minutes of the approval, in a sandbox confined to the workspace. The output (redacted) is returned and sent to your partner.",
            ToolAnnotations::with_title("Execute approved command")
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

/// A JSON schema for `T`, with every subschema inlined: some clients still
/// do not resolve `$ref` in tool schemas.
pub fn schema_of<T: JsonSchema>() -> JsonObject {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
    });
    let schema = settings.into_generator().into_root_schema_for::<T>();
    match serde_json::to_value(schema) {
        Ok(serde_json::Value::Object(mut obj)) => {
            obj.remove("$schema");
            obj
        }
        _ => JsonObject::new(),
    }
}

fn annotations(title: &str, read_only: bool, idempotent: bool) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(read_only)
        .destructive(false)
        .idempotent(idempotent)
        .open_world(false)
}

fn tool<I: JsonSchema, O: JsonSchema>(
    name: &'static str,
    description: &'static str,
    ann: ToolAnnotations,
) -> Tool {
    Tool::new(name, description, Arc::new(schema_of::<I>()))
        .with_raw_output_schema(Arc::new(schema_of::<O>()))
        .with_annotations(ann)
}

/// Every tool, built once per process.
pub static TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(|| {
    vec![
        tool::<CreateConversationArgs, Created>(
            CREATE_CONVERSATION,
            "Open a conversation between your role and a partner's role. Returns the conversation_id and one secret token per seat: you are session \"a\" (keep session_a_token), the partner is session \"b\" (hand session_b_token to the partner agent through the human). Tokens are shown only here. The conversation expires after 3 hours by default.",
            annotations("Create conversation", false, false),
        ),
        tool::<SendToPartnerArgs, Sent>(
            SEND_TO_PARTNER,
            "Send a message to your partner. Secrets (keys, tokens, passwords, private keys) are replaced by [REDACTED:kind] before storage; the result lists the kinds redacted. Limits: 51,200 bytes per message, 50 files_involved, and a per-session send rate (10/min, 100/h, 500/day by default).",
            annotations("Send to partner", false, false),
        ),
        tool::<CheckMessagesArgs, Inbox>(
            CHECK_MESSAGES,
            "Fetch your unread messages, oldest first, and mark them read: each message is delivered exactly once, so keep what you receive. Returns at most 100 per call; `remaining` says how many are left. With peek=true nothing is marked read.",
            annotations("Check messages", false, false),
        ),
        tool::<UpdateStatusArgs, StatusUpdated>(
            UPDATE_MY_STATUS,
            "Report your status (working, waiting, blocked, complete) with an optional note. Each call is also your heartbeat: your partner sees you as alive while you call this within the heartbeat window (5 minutes by default).",
            annotations("Update my status", false, true),
        ),
        tool::<SessionArgs, PartnerStatus>(
            CHECK_PARTNER_STATUS,
            "See your partner's role, status, note, last heartbeat, whether it counts as alive, and how many of your messages it has not read yet.",
            annotations("Check partner status", true, true),
        ),
        tool::<WaitArgs, crate::bridge::Waited>(
            WAIT_FOR_MESSAGES,
            "Like check_messages, but when nothing is waiting it waits (up to timeout_seconds, default 30, max 55) and returns as soon as a message arrives: use it instead of polling. `timed_out` is true when nothing came. Sends progress notifications if you pass a progressToken; cancelling the request marks nothing read.",
            annotations("Wait for messages", false, false),
        ),
        tool::<HistoryArgs, crate::bridge::History>(
            READ_HISTORY,
            "Read the conversation's messages in both directions after a cursor (after_seq), read or not, without marking anything: recover context after a restart. Continue with next_after_seq while `more` is true.",
            annotations("Read history", true, true),
        ),
    ]
});

#[cfg(test)]
mod tests {
    use super::*;

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
        let send = schema_of::<SendToPartnerArgs>();
        let files = &send["properties"]["files_involved"];
        assert_eq!(files["maxItems"], serde_json::json!(l.max_files));
        assert_eq!(files["items"]["maxLength"], serde_json::json!(l.max_path_chars));
        let create = schema_of::<CreateConversationArgs>();
        assert_eq!(
            create["properties"]["my_role"]["maxLength"],
            serde_json::json!(l.max_role_chars)
        );
        let status = schema_of::<UpdateStatusArgs>();
        assert_eq!(
            status["properties"]["note"]["maxLength"],
            serde_json::json!(l.max_note_chars)
        );
    }
}
