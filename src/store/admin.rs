//! The overseer's queries: the reads and maintenance writes that only the
//! human's command line needs (`list`, `show`, `audit`, `cleanup`, `rotate`,
//! `revoke`, `close`, `export`, `import`, `stats`, `backup`).
//!
//! They live in an extension of [`Tx`] and [`Store`] rather than in the
//! core traits, so an agent-facing use case cannot reach a purge or a raw
//! token update by accident, and a backend can ship the agent path first.
//! Like the core traits, everything here speaks in rows and ids, never SQL;
//! every write runs inside the caller's [`Tx`], next to its audit entry.

use std::future::Future;
use std::path::Path;

use super::{Conversation, Message, Participant, Result, Status, Store, Tx};
use crate::audit;
use crate::auth::TokenHash;
use crate::clock::Millis;

/// The stored sender of a message the human overseer posted (`mcp-bridge
/// post`, the dashboard). Every other message's sender is a seat, one letter
/// `a`..`p`, so this value can never be an agent's; migration 8 makes the
/// database refuse any sender that is neither.
pub const OVERSEER_SENDER: &str = "overseer";

/// The most hits one search returns.
pub const MAX_SEARCH_HITS: usize = 200;

/// A conversation with the aggregates `list` shows, computed by the backend
/// in a handful of queries instead of one round trip per conversation.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    /// The conversation itself.
    pub conversation: Conversation,
    /// Messages stored in it.
    pub messages: i64,
    /// The newest message's time, if any.
    pub last_message_at: Option<Millis>,
}

/// Unread messages waiting for one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadCount {
    /// The conversation.
    pub conversation_id: String,
    /// The recipient's session id.
    pub recipient: String,
    /// Messages not yet taken by `check_messages`.
    pub unread: i64,
}

/// Delivery state of one message for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message's seq.
    pub message_seq: i64,
    /// The recipient's session id.
    pub recipient: String,
    /// When `check_messages` handed it over; `None` while unread.
    pub delivered_at: Option<Millis>,
}

/// Which audit entries a query returns; every filter is optional and they combine with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries about this conversation.
    pub conversation_id: Option<String>,
    /// Only actions matching this glob (`message.*`, `*.refused`), case-sensitive.
    pub action_glob: Option<String>,
    /// Only entries at or after this instant.
    pub since: Option<Millis>,
    /// Only entries before this instant.
    pub until: Option<Millis>,
}

/// Rows deleted by [`AdminTx::purge_conversation`], for the purge's audit entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeCounts {
    /// Conversation rows (0 or 1).
    pub conversations: i64,
    /// Messages.
    pub messages: i64,
    /// Delivery rows.
    pub deliveries: i64,
    /// Participants.
    pub participants: i64,
    /// Status rows.
    pub status: i64,
    /// Rate-limit events of the conversation's sessions.
    pub rate_events: i64,
    /// Data keys destroyed (crypto-shredding): with its key gone, no copy
    /// of the conversation's sealed text, in any backup, opens again.
    pub data_keys: i64,
}

impl PurgeCounts {
    /// Adds another purge's counts to these.
    pub fn add(&mut self, o: &PurgeCounts) {
        self.conversations += o.conversations;
        self.messages += o.messages;
        self.deliveries += o.deliveries;
        self.participants += o.participants;
        self.status += o.status;
        self.rate_events += o.rate_events;
        self.data_keys += o.data_keys;
    }
}

/// Whole-database figures for `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DbFigures {
    /// Conversations stored.
    pub conversations: i64,
    /// Conversations neither expired (at `now`) nor closed.
    pub active: i64,
    /// Conversations past their expiry.
    pub expired: i64,
    /// Conversations the overseer closed (before expiring).
    pub closed: i64,
    /// Messages stored.
    pub messages: i64,
    /// Deliveries still pending.
    pub unread: i64,
    /// Audit entries.
    pub audit_entries: i64,
    /// Bytes used by the main database file (pages times page size).
    pub database_bytes: i64,
}

/// The overseer's queries inside one transaction.
pub trait AdminTx: Tx {
    /// Every conversation with its message count and last message time, oldest first.
    fn conversation_rows(&mut self) -> impl Future<Output = Result<Vec<ConversationRow>>> + Send;
    /// Every participant of every conversation.
    fn all_participants(&mut self) -> impl Future<Output = Result<Vec<Participant>>> + Send;
    /// Pending deliveries per conversation and recipient (only non-zero counts).
    fn unread_counts(&mut self) -> impl Future<Output = Result<Vec<UnreadCount>>> + Send;
    /// Every status row of every conversation.
    fn all_statuses(&mut self) -> impl Future<Output = Result<Vec<Status>>> + Send;

    /// Delivery rows of a conversation's messages with seq > `after`.
    fn deliveries_after(
        &mut self,
        conversation_id: &str,
        after: i64,
    ) -> impl Future<Output = Result<Vec<Delivery>>> + Send;
    /// How many messages a conversation holds, and the newest one's time.
    fn message_totals(
        &mut self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<(i64, Option<Millis>)>> + Send;

    /// Up to `limit` audit entries matching `filter` with seq > `after`, ascending.
    fn audit_filtered(
        &mut self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<audit::Entry>>> + Send;

    /// Conversations that ended (expired, or closed) at or before `cutoff`, oldest first.
    fn ended_before(&mut self, cutoff: Millis) -> impl Future<Output = Result<Vec<Conversation>>> + Send;
    /// Deletes a conversation and everything that hangs off it except its
    /// audit entries (the trail is append-only), returning what went.
    fn purge_conversation(
        &mut self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<PurgeCounts>> + Send;

    /// Every conversation's wrapped data key, by conversation id.
    fn wrapped_data_keys(&mut self) -> impl Future<Output = Result<Vec<(String, String)>>> + Send;

    /// The id of the KEK the database names as current, if any.
    fn named_kek_id(&mut self) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Re-wraps every conversation's data key under `to` (unwrapping each
    /// with the store's keyring) and names `to` as the KEK new keys are
    /// wrapped with; the number of keys re-wrapped. No message is touched.
    fn rewrap_data_keys(&mut self, to: &crate::seal::Kek) -> impl Future<Output = Result<u64>> + Send;

    /// Replaces a participant's token hash and clears any revocation;
    /// returns false when no such participant exists.
    fn replace_token(
        &mut self,
        conversation_id: &str,
        session_id: &str,
        hash: &TokenHash,
        at: Millis,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Marks a participant revoked (keeps an earlier revocation time);
    /// returns false when no such participant exists.
    fn revoke(
        &mut self,
        conversation_id: &str,
        session_id: &str,
        at: Millis,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Marks a conversation closed (keeps an earlier closing time);
    /// returns false when no such conversation exists.
    fn close_conversation(
        &mut self,
        conversation_id: &str,
        at: Millis,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Sets a delivery's time (for imports of already-read messages).
    fn set_delivered(
        &mut self,
        message_seq: i64,
        recipient: &str,
        at: Millis,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Messages of every conversation whose stored (redacted) body contains
    /// `query`, compared case-insensitively, newest first, at most `limit`.
    /// `query` is matched literally: no character in it is a wildcard or
    /// an operator on any backend.
    fn search_messages(
        &mut self,
        query: &str,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Message>>> + Send;

    /// Counts for `stats`, judged at `now`.
    fn figures(&mut self, now: Millis) -> impl Future<Output = Result<DbFigures>> + Send;

    /// A conversation that no audit entry mentions, if any: it was written
    /// without the bridge, since creating or importing one is always audited.
    fn unaudited_conversation(&mut self) -> impl Future<Output = Result<Option<String>>> + Send;
}

/// Whole-database maintenance that cannot run inside a transaction.
pub trait AdminStore: Store<Tx: AdminTx> {
    /// Size in bytes of the live database (main file pages), for progress bars.
    fn size_bytes(&self) -> impl Future<Output = Result<i64>> + Send;

    /// Writes a consistent copy of the whole database to `dest`, which must
    /// not exist, while other processes keep reading and writing. The copy
    /// is created 0600 before anything is written into it.
    fn backup_to(&self, dest: &Path) -> impl Future<Output = Result<()>> + Send;

    /// The backend's own structural check; `Ok(vec![])` when sound,
    /// otherwise the problems it reports (never row contents).
    fn integrity_check(&self) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// How the schema differs from exactly what this binary's migrations
    /// create (tables, indexes, triggers, views); `Ok(vec![])` when it does
    /// not, otherwise one sentence per difference, the most telling first.
    fn schema_problems(&self) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Whether the database's schema is exactly this binary's: every
    /// migration applied, none unknown or edited (`/readyz`: another
    /// server may have upgraded the database since this one started).
    fn migrations_current(&self) -> impl Future<Output = Result<bool>> + Send;

    /// Closes every connection, so the file can be renamed or copied safely.
    fn shutdown(&self) -> impl Future<Output = ()> + Send;
}

/// Everything a server and the overseer's commands need from a backend:
/// the store, its administration, and YOLO's proposals. Both backends are
/// one; the command line is written once against this.
pub trait FullStore: AdminStore<Tx: AdminTx + super::yolo::YoloTx> {}

impl<T: AdminStore<Tx: AdminTx + super::yolo::YoloTx>> FullStore for T {}
