//! The vocabulary of the use cases: closed sets of values as enums, and the
//! results each use case returns. Results derive `JsonSchema` because they
//! are exactly what tools return as structured content.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A participant's seat in a conversation: `a` (the creator), `b`, `c`,
/// ... up to `p`, so a conversation holds at most [`SessionId::MAX`]
/// participants. The original bridge's two seats are `a` and `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(u8);

/// The spelling of every seat, in order.
const SEAT_NAMES: [&str; SessionId::MAX] = [
    "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p",
];

impl SessionId {
    /// The creator's seat.
    pub const A: SessionId = SessionId(0);
    /// The first partner's seat.
    pub const B: SessionId = SessionId(1);
    /// Seats per conversation, the creator's included.
    pub const MAX: usize = 16;

    /// The seat at `index` (0 is `a`), if a conversation can have it.
    pub fn nth(index: usize) -> Option<Self> {
        (index < Self::MAX).then_some(SessionId(index as u8))
    }

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        SEAT_NAMES[self.0 as usize]
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        SEAT_NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| SessionId(i as u8))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SessionId::parse(&s).ok_or_else(|| serde::de::Error::custom("a seat is one letter from a to p"))
    }
}

/// A seat is one lowercase letter, `a` to `p`: a pattern, shorter in every
/// tool listing than an enum of sixteen values.
impl JsonSchema for SessionId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("SessionId")
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^[a-p]$" })
    }
}

/// What a message is for, so the receiving agent knows how to treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// A fact or progress report; no answer expected (the default).
    #[default]
    Info,
    /// A question that expects an `answer`.
    Question,
    /// A suggested change or plan, awaiting agreement.
    Proposal,
    /// A request to review the files listed in `files_involved`.
    ReviewRequest,
    /// A reply to a `question` (or a review).
    Answer,
}

impl ActionType {
    /// Every value, in documentation order.
    pub const ALL: [ActionType; 5] = [
        ActionType::Info,
        ActionType::Question,
        ActionType::Proposal,
        ActionType::ReviewRequest,
        ActionType::Answer,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Info => "info",
            ActionType::Question => "question",
            ActionType::Proposal => "proposal",
            ActionType::ReviewRequest => "review_request",
            ActionType::Answer => "answer",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A participant's self-reported state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    /// Busy on its part of the task.
    Working,
    /// Idle until the partner answers.
    Waiting,
    /// Cannot continue; the note says why.
    Blocked,
    /// Done with its part.
    Complete,
}

impl StatusKind {
    /// Every value.
    pub const ALL: [StatusKind; 4] = [
        StatusKind::Working,
        StatusKind::Waiting,
        StatusKind::Blocked,
        StatusKind::Complete,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Working => "working",
            StatusKind::Waiting => "waiting",
            StatusKind::Blocked => "blocked",
            StatusKind::Complete => "complete",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Closed sets are plain `{"type": "string", "enum": [...]}` schemas, the
/// form every MCP client understands (schemars would emit `oneOf` + `const`
/// for documented variants).
macro_rules! string_enum_schema {
    ($t:ty, $name:literal) => {
        impl ::schemars::JsonSchema for $t {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed($name)
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                let values: Vec<&str> = <$t>::ALL.iter().map(|v| v.as_str()).collect();
                ::schemars::json_schema!({ "type": "string", "enum": values })
            }
        }
    };
}

pub(crate) use string_enum_schema;

string_enum_schema!(ActionType, "ActionType");
string_enum_schema!(StatusKind, "StatusKind");

/// What `create_conversation` returns. The tokens appear here and nowhere else, ever.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Created {
    /// `conv_` followed by 32 hex characters.
    pub conversation_id: String,
    /// The creator's token (session `a`); null when a registered agent holds the seat. Keep it secret; it is never shown again.
    pub session_a_token: Option<crate::auth::ShownToken>,
    /// The token of session `b`; null when a registered agent holds the seat. Hand it to that agent through a trusted channel.
    pub session_b_token: Option<crate::auth::ShownToken>,
    /// When the conversation stops accepting calls (RFC 3339, UTC).
    pub expires_at: String,
    /// The creator's role (session `a`).
    pub my_role: String,
    /// The role of session `b`, the first partner.
    pub partner_role: String,
    /// Every seat in order: `a` (the creator), `b`, `c`, ...
    pub seats: Vec<Seat>,
}

/// One seat of a new conversation.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Seat {
    /// `a`, `b`, ...
    pub session_id: SessionId,
    /// The role the seat plays.
    pub role: String,
    /// The seat's token, shown this once; null for a seat held by a registered agent (it needs none).
    pub token: Option<crate::auth::ShownToken>,
}

/// What `send_to_partner` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Sent {
    /// The message's position in the global order (`seq` on the receiving side).
    pub message_id: i64,
    /// The roles it was stored for (not yet read by them: see message_status).
    pub recipients: Vec<String>,
    /// Kinds of secrets replaced by placeholders before storage (never the values).
    pub redacted: Vec<String>,
    /// When it was stored (RFC 3339, UTC).
    pub sent_at: String,
}

/// What `send_message` returns: stored, and for whom; never "delivered".
#[derive(Debug, Serialize, JsonSchema)]
pub struct Stored {
    /// The message's id (`seq` on the receiving side; `reply_to` and message_status take it).
    pub message_id: i64,
    /// The roles it was stored for; message_status tells which have read it.
    pub recipients: Vec<String>,
    /// Kinds of secrets replaced by placeholders before storage (never the values).
    pub redacted: Vec<String>,
    /// When it was stored (RFC 3339, UTC).
    pub stored_at: String,
}

impl From<Stored> for Sent {
    fn from(s: Stored) -> Self {
        Sent {
            message_id: s.message_id,
            recipients: s.recipients,
            redacted: s.redacted,
            sent_at: s.stored_at,
        }
    }
}

/// One delivered message.
#[derive(Debug, Serialize, JsonSchema, Clone)]
pub struct DeliveredMessage {
    /// Global order; increases with every message sent. Also the message's id.
    pub seq: i64,
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// The body, with secrets replaced by `[REDACTED:kind]`.
    pub message: String,
    /// The sender's role.
    pub from_role: String,
    /// True only if the human overseer sent it (from_role `overseer`).
    pub from_overseer: bool,
    /// The roles it was addressed to.
    pub to: Vec<String>,
    /// The id of the message it answers, or null.
    pub reply_to: Option<i64>,
    /// info, question, proposal, review_request or answer.
    pub action_type: String,
    /// Paths the message concerns.
    pub files_involved: Vec<String>,
    /// When it was sent (RFC 3339, UTC).
    pub sent_at: String,
    /// Kinds of secrets redacted from it.
    pub redacted: Vec<String>,
}

/// What `check_messages` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Inbox {
    /// Unread messages addressed to the caller, oldest first, now marked read.
    pub messages: Vec<DeliveredMessage>,
    /// Unread messages left for the next call (a call returns at most `max_batch`).
    pub remaining: i64,
}

/// What `wait_for_messages` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Waited {
    /// Messages delivered by this call, oldest first, now marked read.
    pub messages: Vec<DeliveredMessage>,
    /// Unread messages left for the next call.
    pub remaining: i64,
    /// True when the timeout passed with nothing to deliver.
    pub timed_out: bool,
}

impl Waited {
    /// Wraps an inbox read.
    pub fn from_inbox(inbox: Inbox, timed_out: bool) -> Self {
        Self {
            messages: inbox.messages,
            remaining: inbox.remaining,
            timed_out,
        }
    }
}

/// What `read_history` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct History {
    /// Messages after the cursor that you sent or that were addressed to you, in order.
    pub messages: Vec<DeliveredMessage>,
    /// Pass this as `after_seq` to continue.
    pub next_after_seq: i64,
    /// Whether more messages follow.
    pub more: bool,
}

/// What `update_my_status` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusUpdated {
    /// The status now recorded.
    pub status: String,
    /// The note now recorded (redacted), if any.
    pub note: Option<String>,
    /// This heartbeat (RFC 3339, UTC).
    pub heartbeat_at: String,
}

/// What `check_partner_status` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PartnerStatus {
    /// The partner's role.
    pub partner_role: String,
    /// The partner's session id.
    pub partner_session_id: String,
    /// working, waiting, blocked or complete; null if the partner never reported.
    pub status: Option<String>,
    /// The partner's note, if any.
    pub note: Option<String>,
    /// The partner's last heartbeat (RFC 3339, UTC), or null.
    pub last_heartbeat: Option<String>,
    /// Whether the last heartbeat is within the heartbeat window.
    pub alive: bool,
    /// Seconds since the last heartbeat, or null.
    pub seconds_since_heartbeat: Option<i64>,
    /// The heartbeat window in seconds that `alive` is judged by.
    pub heartbeat_window_seconds: u64,
    /// Messages the caller sent that the partner has not read yet.
    pub unread_by_partner: i64,
}

/// One participant, as `list_participants` shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ParticipantView {
    /// The seat.
    pub session_id: SessionId,
    /// The role.
    pub role: String,
    /// working, waiting, blocked or complete; null if never reported.
    pub status: Option<String>,
    /// The participant's note (redacted), if any.
    pub note: Option<String>,
    /// Its last heartbeat (RFC 3339, UTC), or null.
    pub last_heartbeat: Option<String>,
    /// Whether the last heartbeat is within the heartbeat window.
    pub alive: bool,
    /// Seconds since the last heartbeat, or null.
    pub seconds_since_heartbeat: Option<i64>,
    /// Messages addressed to it that it has not read yet.
    pub unread: i64,
    /// Whether a registered agent holds the seat (it needs no token).
    pub agent: bool,
    /// Whether the overseer revoked the seat.
    pub revoked: bool,
}

/// What `list_participants` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Participants {
    /// Every participant, in seat order, the caller included.
    pub participants: Vec<ParticipantView>,
    /// The heartbeat window in seconds that `alive` is judged by.
    pub heartbeat_window_seconds: u64,
}

/// One recipient's receipt.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RecipientReceipt {
    /// The recipient's role.
    pub role: String,
    /// When it was handed the message (RFC 3339, UTC); null until then.
    pub read_at: Option<String>,
}

/// What `message_status` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MessageStatus {
    /// The message.
    pub message_id: i64,
    /// Every recipient and whether it has read the message.
    pub recipients: Vec<RecipientReceipt>,
}

/// One conversation a registered agent holds a seat in.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MyConversation {
    /// The conversation.
    pub conversation_id: String,
    /// Your role in it.
    pub role: String,
    /// Your seat in it.
    pub session_id: SessionId,
    /// Every participant's role, in seat order.
    pub participants: Vec<String>,
    /// Messages addressed to you that you have not read.
    pub unread: i64,
    /// When it stops accepting calls (RFC 3339, UTC).
    pub expires_at: String,
    /// active, closed or expired.
    pub state: String,
    /// Whether the overseer revoked your seat in it.
    pub revoked: bool,
}

/// What `my_conversations` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MyConversations {
    /// Your conversations, newest first (at most 100).
    pub conversations: Vec<MyConversation>,
}
