//! Persistence: the [`Store`] and [`Tx`] traits the use cases are written
//! against, and their backends: SQLite (embedded, the default) and
//! PostgreSQL (several servers on one database), picked by [`url`].
//!
//! Everything above this module speaks in rows and ids, never in SQL, and
//! never matches on a driver's error type: backends translate their errors into
//! [`Error`] here. Every state change happens inside a [`Tx`] that also
//! appends its audit entry; a `Tx` dropped without [`Tx::commit`] rolls back,
//! so an error anywhere leaves nothing behind.

use std::future::Future;

use crate::audit;
use crate::auth::TokenHash;
use crate::clock::Millis;

pub mod admin;
pub mod agents;
pub mod postgres;
pub mod reseal;
pub(crate) mod sealing;
pub mod sqlite;
pub mod url;
pub mod wake;
pub mod yolo;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Why a store operation failed. `Display` never shows SQL, paths inside the
/// database, or stored values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database file cannot be opened or created.
    #[error("cannot open database {path}: {reason}")]
    Open {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The file exists but is not a bridge database (or is from a newer version).
    #[error("{path} is not an mcp-bridge database: {reason}")]
    NotABridgeDatabase {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The database stayed locked by other processes past the busy timeout.
    #[error("the database is busy (locked by another process for too long); retry shortly")]
    Busy,
    /// A uniqueness constraint was violated (an id collision).
    #[error("a record with this id already exists")]
    Conflict,
    /// The store was closed (before its file was replaced).
    #[error("the database was closed")]
    Closed,
    /// The operation does not exist on this backend; the sentence says what
    /// to use instead.
    #[error("{0}")]
    Unsupported(&'static str),
    /// Any other database failure. The detail goes to the server log only.
    #[error("an internal database error occurred")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// An internal failure that is not a driver error (a broken invariant).
    pub(crate) fn internal(what: &'static str) -> Self {
        Error::Internal(what.into())
    }
}

impl From<crate::seal::Error> for Error {
    fn from(e: crate::seal::Error) -> Self {
        Error::Internal(Box::new(e))
    }
}

/// Shorthand for store results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// `conv_` + 32 hex characters.
    pub id: String,
    /// Creation time.
    pub created_at: Millis,
    /// After this instant every call on the conversation fails.
    pub expires_at: Millis,
    /// Set when the overseer closed it early.
    pub closed_at: Option<Millis>,
}

/// One participant of a conversation.
#[derive(Debug, Clone)]
pub struct Participant {
    /// The conversation.
    pub conversation_id: String,
    /// `a`, `b`, ...
    pub session_id: String,
    /// The role name the participant plays.
    pub role: String,
    /// Keyed hash of the session token; `None` for a seat held by a
    /// registered agent, which proves itself with its credential instead.
    pub token_hash: Option<TokenHash>,
    /// The registered agent holding the seat, if one does.
    pub agent_id: Option<i64>,
    /// When the current token was issued.
    pub token_created_at: Millis,
    /// Set when access was revoked.
    pub revoked_at: Option<Millis>,
}

/// A message to store; its body and files are already redacted.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The conversation.
    pub conversation_id: String,
    /// Sender's session id.
    pub sender: String,
    /// Redacted body.
    pub body: String,
    /// info, question, ...
    pub action_type: String,
    /// Redacted paths.
    pub files: Vec<String>,
    /// Kinds redacted from body, files or both.
    pub redactions: Vec<String>,
    /// The message of this conversation it answers, if any.
    pub reply_to: Option<i64>,
    /// Send time.
    pub created_at: Millis,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Global order.
    pub seq: i64,
    /// The conversation.
    pub conversation_id: String,
    /// Sender's session id.
    pub sender: String,
    /// Redacted body.
    pub body: String,
    /// info, question, ...
    pub action_type: String,
    /// Redacted paths.
    pub files: Vec<String>,
    /// Kinds redacted.
    pub redactions: Vec<String>,
    /// The recipients' session ids, in seat order.
    pub recipients: Vec<String>,
    /// The message of this conversation it answers, if any.
    pub reply_to: Option<i64>,
    /// Send time.
    pub created_at: Millis,
}

/// What a conversation holds so far, for its quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Messages stored.
    pub messages: i64,
    /// Bytes of message bodies and paths stored (after redaction).
    pub bytes: i64,
}

/// One recipient's delivery state of a message: the receipt its sender sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    /// The recipient's session id.
    pub recipient: String,
    /// When the recipient was handed the message; `None` while unread.
    pub read_at: Option<Millis>,
}

/// A seat held by a registered agent, with its conversation.
#[derive(Debug, Clone)]
pub struct AgentSeat {
    /// The conversation.
    pub conversation: Conversation,
    /// The agent's seat in it.
    pub participant: Participant,
}

/// A participant's self-reported status and heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The conversation.
    pub conversation_id: String,
    /// Whose status.
    pub session_id: String,
    /// working, waiting, blocked, complete.
    pub status: String,
    /// Redacted free text.
    pub note: Option<String>,
    /// Last heartbeat.
    pub heartbeat_at: Millis,
}

/// What repeated refusals are counted by: one audited entry per window
/// for each distinct key. Every part was validated (or is a fixed word)
/// before it got here, and the set of keys is bounded: actions and codes
/// are closed sets, and a conversation is named only when it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalKey {
    /// The (validated) actor.
    pub actor: String,
    /// The refused action, e.g. `message.send.refused`.
    pub action: String,
    /// The error code.
    pub code: String,
    /// The existing conversation concerned, if any.
    pub conversation_id: Option<String>,
}

/// Refusals counted under one key since its window opened, not yet audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalTally {
    /// What was refused, and for whom.
    pub key: RefusalKey,
    /// When the audited first refusal opened the window.
    pub window_start: Millis,
    /// Refusals after that one.
    pub repeats: i64,
    /// The first of the repeats.
    pub first_at: Option<Millis>,
    /// The last of the repeats.
    pub last_at: Option<Millis>,
}

/// What an audit append starts from ([`Tx::audit_tail`]): the refusal
/// tallies to write out first, and the chain's head `(seq, hash)`.
pub type AuditTail = (Vec<RefusalTally>, Option<(i64, String)>);

/// A database: hands out transactions.
pub trait Store: Clone + Send + Sync + 'static {
    /// The transaction type.
    type Tx: Tx + agents::AgentTx;

    /// Starts a transaction that will write. On SQLite this is
    /// `BEGIN IMMEDIATE`: the write lock is taken up front, so two processes
    /// never both read and then fail to upgrade (`SQLITE_BUSY`), and every
    /// read inside sees a state no other writer can change before commit.
    fn begin_write(&self) -> impl Future<Output = Result<Self::Tx>> + Send;

    /// Starts a write transaction that may run beside others of its kind:
    /// one agent's tool call on one conversation. PostgreSQL runs such calls
    /// of every server in parallel and serialises only what must be (see
    /// `postgres/mod.rs`); SQLite has one writer at a time anyway, so there
    /// it is [`Store::begin_write`]. The caller keeps this contract:
    ///
    /// - it locks rows in one order: its conversation's row (only through
    ///   [`Tx::conversation_for_update`]), then its rate key (through
    ///   [`Tx::count_and_record_rate_event`]), then the rows it writes or
    ///   delivers;
    /// - the audit chain comes last: once it has read the chain's tail
    ///   ([`Tx::audit_tail`], [`Tx::audit_head`], the refusal tallies) it
    ///   writes nothing but audit entries, and commits;
    /// - it is all or nothing: a statement that fails ends it (nothing is
    ///   retried inside it).
    fn begin_concurrent_write(&self) -> impl Future<Output = Result<Self::Tx>> + Send {
        self.begin_write()
    }

    /// Starts a read-only transaction (a consistent snapshot).
    fn begin_read(&self) -> impl Future<Output = Result<Self::Tx>> + Send;

    /// The agent whose current credential has this hash, read on its own
    /// (the HTTP door's check before a call, which the call's transaction
    /// repeats). The default runs a read transaction; a backend where that
    /// costs round trips answers with one statement.
    fn agent_by_credential_now(
        &self,
        hash: &crate::auth::TokenHash,
    ) -> impl Future<Output = Result<Option<agents::Agent>>> + Send {
        async move {
            use agents::AgentTx;
            let mut tx = self.begin_read().await?;
            tx.agent_by_credential(hash).await
        }
    }

    /// The file outside the database that every commit appending to the
    /// audit trail moves forward, when the backend keeps one.
    fn audit_head_file(&self) -> Option<&audit::HeadFile> {
        None
    }

    /// The keys this store seals and opens free-text fields with, shared by
    /// every clone and transaction; [`crate::bridge::Bridge::new`] installs
    /// the server key's. Without one, no conversation can be created.
    fn keyring(&self) -> &crate::seal::Keyring;

    /// Removes what a [`reseal`] left of the plaintext outside the live
    /// rows (SQLite: the WAL and free pages); nothing by default.
    fn scrub(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// A subscription that wakes when another writer (in this process or
    /// another) may have committed: the trigger a waiting reader sleeps on
    /// instead of polling. Only a hint; the rows stay the truth. Each backend
    /// brings its own source (SQLite: a watch on the database files;
    /// PostgreSQL would use LISTEN/NOTIFY), started on first use.
    fn changes(&self) -> wake::Changes;

    /// Connections of the backend's pool in use and its maximum size, for
    /// `/metrics`; `None` for a backend without a pool (SQLite).
    fn pool_status(&self) -> Option<(usize, usize)> {
        None
    }
}

/// One transaction. Dropping it without [`Tx::commit`] rolls back.
pub trait Tx: Send {
    /// Seals up to `limit` rows written before encryption at rest (and
    /// gives data keys to conversations that have none); the count of rows
    /// changed, 0 once none is left. See [`reseal`].
    fn reseal_batch(&mut self, limit: i64) -> impl Future<Output = Result<u64>> + Send;
    /// Whether the database records that every legacy row was sealed: a
    /// read, so a start on a finished database takes no write lock.
    fn resealed(&mut self) -> impl Future<Output = Result<bool>> + Send;

    /// Makes every change of this transaction durable and visible.
    fn commit(self) -> impl Future<Output = Result<()>> + Send;

    /// Stores a new conversation.
    fn insert_conversation(&mut self, c: &Conversation) -> impl Future<Output = Result<()>> + Send;
    /// Finds a conversation by id.
    fn conversation(&mut self, id: &str) -> impl Future<Output = Result<Option<Conversation>>> + Send;
    /// A conversation and all its participants, in one round trip: every
    /// authenticated call starts here, so it is one statement, not two.
    fn conversation_with_participants(
        &mut self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(Conversation, Vec<Participant>)>>> + Send;
    /// [`Tx::conversation_with_participants`], and in a concurrent write
    /// transaction also a lock on the conversation's row until commit: the
    /// sends of one conversation then commit in the order they were given
    /// seqs, and its quotas are counted exactly. Elsewhere the whole
    /// database is locked already, so the default is the plain read.
    fn conversation_for_update(
        &mut self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(Conversation, Vec<Participant>)>>> + Send {
        self.conversation_with_participants(id)
    }
    /// Stores a participant.
    fn insert_participant(&mut self, p: &Participant) -> impl Future<Output = Result<()>> + Send;
    /// Finds one participant.
    fn participant(
        &mut self,
        conversation_id: &str,
        session_id: &str,
    ) -> impl Future<Output = Result<Option<Participant>>> + Send;
    /// All participants of a conversation, by session id.
    fn participants(
        &mut self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<Vec<Participant>>> + Send;

    /// Stores a message and a pending delivery for each recipient; returns its seq.
    fn insert_message(
        &mut self,
        m: &NewMessage,
        recipients: &[String],
    ) -> impl Future<Output = Result<i64>> + Send;
    /// Marks up to `limit` of the recipient's pending messages delivered and
    /// returns them in seq order. Exactly-once: a message is returned by one
    /// call only, whatever the number of processes.
    fn take_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
        now: Millis,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Message>>> + Send;
    /// Marks deliveries that [`Tx::take_unread`] handed over at `delivered_at`
    /// pending again, because their response never reached the recipient.
    /// Only the recipient's rows among `seqs` still stamped `delivered_at`
    /// change, so a repeated call, or one after a later delivery, is a
    /// no-op. Returns how many rows became pending again.
    fn return_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
        seqs: &[i64],
        delivered_at: Millis,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// The recipient's pending messages without marking them delivered
    /// (`check_messages` with `peek`).
    fn peek_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Message>>> + Send;
    /// Up to `limit` messages of a conversation with seq > `after`, in
    /// order, whatever their delivery state: the history a cursor walks.
    fn history_after(
        &mut self,
        conversation_id: &str,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Message>>> + Send;
    /// Up to `limit` messages with seq > `after` that `member` sent or that
    /// were addressed to it, in order: one participant's view of the history.
    fn history_of(
        &mut self,
        conversation_id: &str,
        member: &str,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Message>>> + Send;
    /// One message of a conversation.
    fn message(
        &mut self,
        conversation_id: &str,
        seq: i64,
    ) -> impl Future<Output = Result<Option<Message>>> + Send;
    /// Every recipient of a message with its delivery state, in seat order.
    fn receipts(&mut self, seq: i64) -> impl Future<Output = Result<Vec<DeliveryState>>> + Send;
    /// Unread messages per recipient of a conversation (recipients with
    /// none are left out).
    fn unread_by_recipient(
        &mut self,
        conversation_id: &str,
    ) -> impl Future<Output = Result<Vec<(String, i64)>>> + Send;
    /// Messages and bytes the conversation holds.
    fn usage(&mut self, conversation_id: &str) -> impl Future<Output = Result<Usage>> + Send;
    /// Every seat the registered agent holds, oldest conversation first.
    fn agent_seats(&mut self, agent_id: i64) -> impl Future<Output = Result<Vec<AgentSeat>>> + Send;
    /// How many messages still wait for the recipient.
    fn count_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
    ) -> impl Future<Output = Result<i64>> + Send;

    /// Inserts or replaces a participant's status.
    fn upsert_status(&mut self, s: &Status) -> impl Future<Output = Result<()>> + Send;
    /// Every status reported in a conversation, by session id.
    fn statuses(&mut self, conversation_id: &str) -> impl Future<Output = Result<Vec<Status>>> + Send;
    /// A participant's status, if ever reported.
    fn status(
        &mut self,
        conversation_id: &str,
        session_id: &str,
    ) -> impl Future<Output = Result<Option<Status>>> + Send;

    /// Timestamps of the rate key's events after `since`, ascending.
    fn rate_events(&mut self, key: &str, since: Millis) -> impl Future<Output = Result<Vec<Millis>>> + Send;
    /// Records an event for a rate key and forgets its events at or before `forget_before`.
    fn record_rate_event(
        &mut self,
        key: &str,
        at: Millis,
        forget_before: Millis,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The newest audit entry's `(seq, hash)`.
    fn audit_head(&mut self) -> impl Future<Output = Result<Option<(i64, String)>>> + Send;
    /// Appends a chained audit entry.
    fn insert_audit(&mut self, e: &audit::Entry) -> impl Future<Output = Result<()>> + Send;
    /// Counts one refusal under `key` at `now`: `true` when it opens a new
    /// window (the caller audits it at once), `false` when it was counted
    /// as a repeat of the window's first refusal.
    fn tally_refusal(&mut self, key: &RefusalKey, now: Millis) -> impl Future<Output = Result<bool>> + Send;
    /// Removes and returns the tallies whose window opened at or before `opened_by`.
    fn take_refusal_tallies(
        &mut self,
        opened_by: Millis,
    ) -> impl Future<Output = Result<Vec<RefusalTally>>> + Send;
    /// A rate check in one step: records an event for `key` at `at`
    /// (forgetting its events at or before `forget_before`) and returns the
    /// key's events after `since` other than this one, ascending. The caller
    /// decides with them and, when the event is not allowed, ends the
    /// transaction without committing, which takes the record back. In a
    /// concurrent write transaction this takes the key's lock first (see
    /// [`Store::begin_concurrent_write`]).
    fn count_and_record_rate_event(
        &mut self,
        key: &str,
        since: Millis,
        at: Millis,
        forget_before: Millis,
    ) -> impl Future<Output = Result<Vec<Millis>>> + Send {
        async move {
            let events = self.rate_events(key, since).await?;
            self.record_rate_event(key, at, forget_before).await?;
            Ok(events)
        }
    }
    /// Announces that the transaction's next message insert
    /// ([`Tx::insert_message`]) or take ([`Tx::take_unread`]) is its last
    /// statement before its audit append, whose tail ([`Tx::audit_tail`])
    /// will be read for `opened_by`. A backend that holds the audit chain
    /// from that read to the commit may send the read right behind the
    /// statement, one round trip fewer. The caller then runs no statement
    /// but [`Tx::count_unread`] (a plain read) before the append.
    fn audit_tail_next(&mut self, _opened_by: Millis) {}
    /// The start of every audit append: the refusal tallies whose window
    /// opened at or before `opened_by` (removed, as
    /// [`Tx::take_refusal_tallies`]) and the chain's head, read together. A
    /// backend that can sends both in one round trip.
    fn audit_tail(&mut self, opened_by: Millis) -> impl Future<Output = Result<AuditTail>> + Send {
        async move {
            let tallies = self.take_refusal_tallies(opened_by).await?;
            let head = self.audit_head().await?;
            Ok((tallies, head))
        }
    }
    /// Up to `limit` audit entries with seq > `after`, ascending.
    fn audit_page(
        &mut self,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<audit::Entry>>> + Send;
}
