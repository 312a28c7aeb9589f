//! The use cases' error: each variant is a condition an agent or operator can
//! act on, with a stable machine code and a sentence naming the field, the
//! limit and what to do. Messages never echo a token, a message body or any
//! other caller-supplied text beyond a field name.

use crate::store;

/// Why a use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field is missing, unknown, mistyped, or breaks a documented limit.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The field, as named in the tool's input schema.
        field: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The message body exceeds the byte limit (checked before redaction).
    #[error(
        "message is {size} bytes of UTF-8; the limit is {limit} bytes. Split it into several messages, or summarise and list the files in files_involved"
    )]
    MessageTooLarge {
        /// Bytes received.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The token does not match the conversation and session it was presented for.
    #[error(
        "the token is not valid for session \"{session_id}\" of this conversation; pass the token issued for this session (each session has its own, shown once at creation or rotation)"
    )]
    InvalidToken {
        /// The session the caller claimed.
        session_id: String,
    },
    /// The overseer revoked this participant's access.
    #[error("access for session \"{session_id}\" was revoked by the overseer; ask them for a new token")]
    SessionRevoked {
        /// The session.
        session_id: String,
    },
    /// No conversation has this id.
    #[error("no conversation has this conversation_id; check it, or start one with create_conversation")]
    ConversationNotFound,
    /// The conversation's lifetime is over.
    #[error("the conversation expired at {expired_at}; start a new one with create_conversation")]
    ConversationExpired {
        /// When it expired, RFC 3339.
        expired_at: String,
    },
    /// The overseer closed the conversation.
    #[error("the conversation was closed by the overseer; start a new one with create_conversation")]
    ConversationClosed,
    /// A rate window is full.
    #[error(
        "rate limit reached: at most {window} {scope}; retry in {} s",
        retry_after_secs(*retry_after_ms)
    )]
    RateLimited {
        /// The window that refused, e.g. "10 per minute".
        window: String,
        /// Whose budget: "for this session", or "created by this server process".
        scope: &'static str,
        /// Milliseconds until it has room again.
        retry_after_ms: i64,
    },
    /// A role in `to` is not a participant of the conversation. The
    /// caller's value is not repeated (it could be anything); the valid
    /// roles, which passed validation when the conversation was created, are.
    #[error("{field} names no participant of this conversation; the other participants' roles are: {}", valid.join(", "))]
    UnknownRecipient {
        /// `to[i]`.
        field: String,
        /// The roles the caller may address.
        valid: Vec<String>,
    },
    /// A per-conversation quota is used up, or would be by this message.
    #[error(
        "{quota} is {limit} {unit} per conversation, and {reason}; nothing was stored. Start a new conversation, or ask the overseer to raise {quota}"
    )]
    QuotaExceeded {
        /// Why this message does not fit.
        reason: String,
        /// The setting: `max_messages_per_conversation` or `max_bytes_per_conversation`.
        quota: &'static str,
        /// Its value.
        limit: u64,
        /// `messages` or `bytes`.
        unit: &'static str,
    },
    /// No message with this id that the caller sent.
    #[error(
        "no message with this message_id was sent by you in this conversation; message_status answers only the sender"
    )]
    MessageNotFound,
    /// The calling agent holds no seat in the conversation.
    #[error(
        "your agent holds no seat in this conversation; call my_conversations for yours, or pass the seat's session_id and token"
    )]
    NotAParticipant,
    /// The agent's credential was revoked or rotated by the overseer.
    #[error(
        "this agent's credential was revoked or replaced by the overseer; ask them for a new one (mcp-bridge agent rotate) and restart the client"
    )]
    AgentRevoked,
    /// The identity is an observer or an admin, not an agent.
    #[error(
        "this identity is an {role} credential; taking part in conversations needs an agent credential (`mcp-bridge agent add NAME`)"
    )]
    NotAnAgent {
        /// `observer` or `admin`.
        role: &'static str,
    },
    /// A credential asked for an operation its role does not allow.
    #[error("this {role} credential may not do this; it needs an {needed} credential")]
    RoleForbidden {
        /// The caller's role.
        role: &'static str,
        /// The least role that may.
        needed: &'static str,
    },
    /// The database stayed locked past the busy timeout.
    #[error("the database is busy; retry in a moment")]
    Busy,
    /// Execution tools were called on a server started without the opt-in.
    #[error(
        "command execution is disabled on this server; the human must start it with MCP_BRIDGE_YOLO=1 (see docs/yolo.md)"
    )]
    YoloDisabled,
    /// No proposal with this id is visible to the caller.
    #[error("no proposal with this proposal_id in this conversation from this session; check the id")]
    ProposalNotFound,
    /// The proposal is not in a state that allows this step.
    #[error(
        "the proposal is {state}; only a pending proposal can be approved, only an approved one executed"
    )]
    ProposalNotPending {
        /// Its current state.
        state: String,
    },
    /// No human approved the proposal yet.
    #[error(
        "the proposal has not been approved; a human must run `mcp-bridge approve <proposal_id>` in a terminal first"
    )]
    NotApproved,
    /// The approval's five minutes are over.
    #[error(
        "the approval expired at {expired_at}; propose the command again and ask the human to approve it anew"
    )]
    ApprovalExpired {
        /// When it expired.
        expired_at: String,
    },
    /// The approval was already used: each allows one execution.
    #[error(
        "this approval was already used; each approval runs the command once. Propose it again to run it again"
    )]
    ApprovalUsed,
    /// The proposal or the approval changed after the human approved it.
    #[error(
        "the proposal no longer matches what the human approved (command, mode or directory changed); it will not run"
    )]
    ApprovalMismatch,
    /// The validator refuses the command now.
    #[error("the validator refuses this command: {reason}")]
    CommandRefused {
        /// The validator's reason.
        reason: String,
    },
    /// The runner could not start or finish the command.
    #[error("the command could not be run: {reason}")]
    ExecFailed {
        /// What failed.
        reason: String,
    },
    /// The caller cancelled the request or its connection closed before the
    /// delivery committed: nothing was marked read. The transport drops the
    /// response, so a client rarely sees this.
    #[error(
        "the request was cancelled or the client went away before delivery; nothing was marked read, the next check returns the messages"
    )]
    CallerGone,
    /// A server-side fault; details go to the server log only.
    #[error("an internal error occurred; the operator can find details in the server log")]
    Internal(#[source] store::Error),
}

/// Whole seconds to wait, rounded up so a client that waits exactly this
/// long is not refused again.
pub fn retry_after_secs(ms: i64) -> i64 {
    (ms + 999) / 1000
}

impl Error {
    /// The stable snake_case code clients match on; documented in the README.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::MessageTooLarge { .. } => "message_too_large",
            Error::InvalidToken { .. } => "invalid_token",
            Error::SessionRevoked { .. } => "session_revoked",
            Error::ConversationNotFound => "conversation_not_found",
            Error::ConversationExpired { .. } => "conversation_expired",
            Error::ConversationClosed => "conversation_closed",
            Error::RateLimited { .. } => "rate_limited",
            Error::UnknownRecipient { .. } => "unknown_recipient",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::MessageNotFound => "message_not_found",
            Error::NotAParticipant => "not_a_participant",
            Error::AgentRevoked => "agent_revoked",
            Error::NotAnAgent { .. } | Error::RoleForbidden { .. } => "forbidden",
            Error::Busy => "busy",
            Error::YoloDisabled => "yolo_disabled",
            Error::ProposalNotFound => "proposal_not_found",
            Error::ProposalNotPending { .. } => "proposal_not_pending",
            Error::NotApproved => "not_approved",
            Error::ApprovalExpired { .. } => "approval_expired",
            Error::ApprovalUsed => "approval_used",
            Error::ApprovalMismatch => "approval_mismatch",
            Error::CommandRefused { .. } => "command_refused",
            Error::ExecFailed { .. } => "exec_failed",
            Error::CallerGone => "cancelled",
            Error::Internal(_) => "internal_error",
        }
    }

    /// The field at fault, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidArgument { field, .. } => Some(field),
            Error::MessageTooLarge { .. } => Some("message"),
            Error::InvalidToken { .. } | Error::SessionRevoked { .. } => Some("token"),
            Error::UnknownRecipient { field, .. } => Some(field),
            Error::MessageNotFound => Some("message_id"),
            Error::QuotaExceeded { unit: "bytes", .. } => Some("message"),
            Error::NotAParticipant => Some("conversation_id"),
            Error::ConversationNotFound | Error::ConversationExpired { .. } | Error::ConversationClosed => {
                Some("conversation_id")
            }
            _ => None,
        }
    }

    /// Whether the fault is the server's (log at error) rather than the caller's (log at debug).
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Error::Internal(_))
    }

    /// Shorthand for an invalid argument.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Busy => Error::Busy,
            other => Error::Internal(other),
        }
    }
}
