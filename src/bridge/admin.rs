//! The overseer's use cases: what the human who runs the agents does from
//! a terminal (`list`, `show`, `audit`, `cleanup`, `rotate`, `revoke`,
//! `close`, `export`, `import`, `stats`, `backup`, `restore`).
//!
//! Same rules as the agents' use cases: every state change commits in ONE
//! `begin_write` transaction together with its audit entry (actor `cli`),
//! tokens are shown once and stored only as keyed hashes, and nothing here
//! knows SQL or how results are printed. Reads take a consistent snapshot
//! (`begin_read`) and write nothing, so looking never changes the trail.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AuditFailure, AuditReport, Bridge, SessionId, validate};
use crate::audit::{self, NewEntry};
use crate::auth::{SessionToken, ShownToken};
use crate::clock::{Millis, rfc3339};
use crate::store::admin::{AdminStore, AdminTx, AuditFilter, DbFigures, PurgeCounts};
use crate::store::{self, Conversation, Participant, Status, Tx};

/// The actor recorded for every overseer action.
const ACTOR: &str = "cli";

/// Messages read per query when a use case walks a whole conversation, so
/// one huge conversation never becomes one huge result set.
const PAGE: usize = 1000;

/// Why an overseer command failed. Messages name the id or the file at
/// fault and what to do; they never show a token or a message body.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No conversation has this id.
    #[error("no conversation has id {id:?}; `mcp-bridge list` shows the ids")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The conversation has no such seat.
    #[error("conversation {id} has no session {session:?}")]
    NoSuchSession {
        /// The conversation.
        id: String,
        /// The session asked for.
        session: String,
    },
    /// The conversation has ended, so the action would achieve nothing.
    #[error("conversation {id} is {state}; {what} only applies to a live conversation")]
    Ended {
        /// The conversation.
        id: String,
        /// `expired` or `closed`.
        state: &'static str,
        /// The refused action.
        what: &'static str,
    },
    /// An import file is malformed or breaks a limit.
    #[error("invalid export file: {reason}")]
    BadImport {
        /// What is wrong (a field name, never a value).
        reason: String,
    },
    /// The id in the import file is taken and a new one was not allowed.
    #[error("conversation {id} already exists in this database; import it with a new id (drop --keep-id)")]
    IdTaken {
        /// The id.
        id: String,
    },
    /// A structural check of the database failed.
    #[error("the database failed its integrity check: {0}")]
    Integrity(String),
    /// The audit chain does not verify.
    #[error("the audit chain does not verify: {0}")]
    AuditBroken(audit::Break),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl From<AuditFailure> for AdminError {
    fn from(e: AuditFailure) -> Self {
        match e {
            AuditFailure::Broken(b) => AdminError::AuditBroken(b),
            AuditFailure::Store(s) => AdminError::Store(s),
        }
    }
}

/// Shorthand for overseer results.
pub type AdminResult<T> = std::result::Result<T, AdminError>;

/// Timestamps serialise as RFC 3339 UTC, the form every tool output uses.
mod ts {
    use serde::Serializer;

    use crate::clock::{Millis, rfc3339};

    pub fn one<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*ms))
    }

    pub fn opt<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&rfc3339(*ms)),
            None => s.serialize_none(),
        }
    }
}

/// Where a conversation stands, judged at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LiveState {
    /// Agents can use it.
    Active,
    /// Its lifetime is over (`conversation_expired`).
    Expired,
    /// The overseer closed it (`conversation_closed`).
    Closed,
}

impl LiveState {
    /// The state of `c` at `now`; closing wins over expiry because it is
    /// what agents are told first.
    pub fn of(c: &Conversation, now: Millis) -> Self {
        if c.closed_at.is_some() {
            LiveState::Closed
        } else if c.expires_at <= now {
            LiveState::Expired
        } else {
            LiveState::Active
        }
    }

    /// The lowercase spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LiveState::Active => "active",
            LiveState::Expired => "expired",
            LiveState::Closed => "closed",
        }
    }
}

/// Which conversations `list` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListFilter {
    /// Every conversation.
    #[default]
    All,
    /// Only live ones.
    Active,
    /// Only ended ones (expired or closed): what `cleanup` would purge.
    Ended,
}

/// One seat of a conversation as the overseer sees it (never its token hash).
#[derive(Debug, Clone, Serialize)]
pub struct SeatView {
    /// `a`, `b`, ...
    pub session_id: String,
    /// The role it plays.
    pub role: String,
    /// Messages waiting for it.
    pub unread: i64,
    /// Its last self-reported status, if any.
    pub status: Option<String>,
    /// Its status note (redacted), if any.
    pub note: Option<String>,
    /// Its last heartbeat.
    #[serde(serialize_with = "ts::opt")]
    pub last_heartbeat: Option<Millis>,
    /// Whether the last heartbeat is within the heartbeat window.
    pub alive: bool,
    /// When its current token was issued.
    #[serde(serialize_with = "ts::one")]
    pub token_created_at: Millis,
    /// When its access was revoked, if it was.
    #[serde(serialize_with = "ts::opt")]
    pub revoked_at: Option<Millis>,
}

/// One line of `list`.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationSummary {
    /// `conv_...`.
    pub id: String,
    /// Active, expired or closed, now.
    pub state: LiveState,
    /// Creation time.
    #[serde(serialize_with = "ts::one")]
    pub created_at: Millis,
    /// Expiry time.
    #[serde(serialize_with = "ts::one")]
    pub expires_at: Millis,
    /// When the overseer closed it.
    #[serde(serialize_with = "ts::opt")]
    pub closed_at: Option<Millis>,
    /// Messages stored.
    pub messages: i64,
    /// The newest message or heartbeat.
    #[serde(serialize_with = "ts::opt")]
    pub last_activity: Option<Millis>,
    /// Its seats, by session id.
    pub participants: Vec<SeatView>,
}

/// Who has read one message.
#[derive(Debug, Clone, Serialize)]
pub struct ReadState {
    /// The recipient.
    pub session_id: String,
    /// When it was delivered; `None` while unread.
    #[serde(serialize_with = "ts::opt")]
    pub delivered_at: Option<Millis>,
}

/// One message as `show` prints it (the stored, already-redacted body).
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    /// Global order.
    pub seq: i64,
    /// Sender's session id.
    pub sender: String,
    /// Sender's role.
    pub from_role: String,
    /// info, question, ...
    pub action_type: String,
    /// The redacted body.
    pub body: String,
    /// Redacted paths.
    pub files: Vec<String>,
    /// Kinds of secrets redacted from it.
    pub redacted: Vec<String>,
    /// Send time.
    #[serde(serialize_with = "ts::one")]
    pub sent_at: Millis,
    /// Delivery state per recipient.
    pub read_by: Vec<ReadState>,
}

/// What `show` prints: the conversation and its messages after a point.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationDetail {
    /// The conversation, its seats and their status.
    #[serde(flatten)]
    pub summary: ConversationSummary,
    /// Messages with seq greater than the one asked for, in order.
    pub messages_after: Vec<MessageView>,
}

/// What `cleanup` needs.
#[derive(Debug, Clone, Copy)]
pub struct CleanupRequest {
    /// Only conversations that ended at least this long ago.
    pub older_than: Duration,
    /// Count what would go, inside a transaction that is then rolled back.
    pub dry_run: bool,
}

/// What `cleanup` did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct CleanupReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Conversations that ended at or before this instant qualified.
    #[serde(serialize_with = "ts::one")]
    pub cutoff: Millis,
    /// The purged conversations.
    pub conversations: Vec<String>,
    /// Rows deleted (or that would be), by table.
    pub deleted: PurgeCounts,
    /// The audit entry that records the purge (none for a dry run or when nothing qualified).
    pub audit_seq: Option<i64>,
}

/// A freshly issued token. The only place it ever appears in clear.
#[derive(Debug, Serialize)]
pub struct Rotated {
    /// The conversation.
    pub conversation_id: String,
    /// The seat.
    pub session_id: String,
    /// The seat's role.
    pub role: String,
    /// The new token; give it to the agent through a trusted channel.
    pub token: ShownToken,
    /// When it was issued.
    #[serde(serialize_with = "ts::one")]
    pub issued_at: Millis,
}

/// The outcome of `revoke` or `close`.
#[derive(Debug, Clone, Serialize)]
pub struct Ended {
    /// The conversation.
    pub conversation_id: String,
    /// The seat, for `revoke`.
    pub session_id: Option<String>,
    /// When access ended (the earlier time if it had already ended).
    #[serde(serialize_with = "ts::one")]
    pub at: Millis,
    /// False when it had already been revoked or closed (nothing changed).
    pub changed: bool,
}

/// The format tag of an export file.
pub const EXPORT_FORMAT: &str = "mcp-bridge.conversation";
/// The version of the export format this binary writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// A conversation as an export file: everything but token hashes, which
/// are useless without the key and would help an offline guesser.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// Always [`EXPORT_VERSION`].
    pub version: u32,
    /// When the file was written (RFC 3339).
    pub exported_at: String,
    /// The conversation.
    pub conversation: ExportConversation,
    /// Its seats, without token hashes.
    pub participants: Vec<ExportParticipant>,
    /// Its messages, oldest first.
    pub messages: Vec<ExportMessage>,
    /// Its statuses.
    pub statuses: Vec<ExportStatus>,
}

/// The conversation row of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConversation {
    /// `conv_...`.
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// RFC 3339, if closed.
    pub closed_at: Option<String>,
}

/// One seat of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParticipant {
    /// `a`, `b`.
    pub session_id: String,
    /// The role.
    pub role: String,
    /// RFC 3339, if revoked.
    pub revoked_at: Option<String>,
}

/// One message of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportMessage {
    /// The seq in the source database (a new one is assigned on import).
    pub seq: i64,
    /// Sender's session id.
    pub sender: String,
    /// info, question, ...
    pub action_type: String,
    /// The redacted body.
    pub body: String,
    /// Redacted paths.
    pub files: Vec<String>,
    /// Kinds redacted.
    pub redacted: Vec<String>,
    /// RFC 3339.
    pub sent_at: String,
    /// Recipient session id -> delivery time (RFC 3339) or null while unread.
    pub delivered: BTreeMap<String, Option<String>>,
}

/// One status row of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportStatus {
    /// Whose.
    pub session_id: String,
    /// working, waiting, blocked, complete.
    pub status: String,
    /// Redacted note.
    pub note: Option<String>,
    /// RFC 3339.
    pub heartbeat_at: String,
}

/// What `import` needs.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The parsed file.
    pub export: Export,
    /// Refuse instead of choosing a new id when the exported id is taken.
    pub keep_id: bool,
    /// Give the imported conversation a new lifetime from now (and reopen it).
    pub ttl: Option<Duration>,
}

/// A fresh token for an imported seat.
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    /// The seat.
    pub session_id: String,
    /// Its role.
    pub role: String,
    /// The token, shown once; `None` for a seat that was revoked in the export.
    pub token: Option<ShownToken>,
}

/// What `import` did.
#[derive(Debug, Serialize)]
pub struct Imported {
    /// The id in this database.
    pub conversation_id: String,
    /// The id in the file.
    pub source_id: String,
    /// Messages imported.
    pub messages: usize,
    /// One fresh token per seat, shown once.
    pub tokens: Vec<IssuedToken>,
    /// Expiry in this database.
    #[serde(serialize_with = "ts::one")]
    pub expires_at: Millis,
}

/// What `stats` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Counts and sizes.
    #[serde(flatten)]
    pub figures: DbFigures,
    /// The oldest conversation's creation time.
    #[serde(serialize_with = "ts::opt")]
    pub oldest_conversation: Option<Millis>,
    /// The newest activity anywhere.
    #[serde(serialize_with = "ts::opt")]
    pub last_activity: Option<Millis>,
}

/// What a restore check found in a staged copy.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreCheck {
    /// Audit entries verified.
    pub audit_entries: u64,
    /// The head `(seq, hash)` of the verified chain.
    pub audit_head: Option<(i64, String)>,
    /// Conversations in the copy.
    pub conversations: i64,
    /// Messages in the copy.
    pub messages: i64,
}

fn parse_time(field: &str, text: &str) -> AdminResult<Millis> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|d| d.timestamp_millis())
        .map_err(|_| AdminError::BadImport {
            reason: format!("{field} is not an RFC 3339 time"),
        })
}

fn parse_opt_time(field: &str, text: &Option<String>) -> AdminResult<Option<Millis>> {
    text.as_deref().map(|t| parse_time(field, t)).transpose()
}

fn bad(reason: impl Into<String>) -> AdminError {
    AdminError::BadImport {
        reason: reason.into(),
    }
}

/// Same shape as the ids `create_conversation` draws: 128 random bits, hex.
fn new_conversation_id() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    format!("conv_{}", hex::encode(b))
}

fn is_conversation_id(id: &str) -> bool {
    id.len() == 37
        && id.starts_with("conv_")
        && id[5..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl<S: AdminStore> Bridge<S> {
    /// The current time, for renderers that show relative times consistently
    /// with the states computed here.
    pub fn now_ms(&self) -> Millis {
        self.now()
    }

    /// Every conversation matching `filter`, oldest first, with its seats,
    /// unread counts, statuses and liveness.
    pub async fn list_conversations(&self, filter: ListFilter) -> AdminResult<Vec<ConversationSummary>> {
        let mut tx = self.store.begin_read().await?;
        let now = self.now();
        let rows = tx.conversation_rows().await?;
        let mut participants: HashMap<String, Vec<Participant>> = HashMap::new();
        for p in tx.all_participants().await? {
            participants.entry(p.conversation_id.clone()).or_default().push(p);
        }
        let unread: HashMap<(String, String), i64> = tx
            .unread_counts()
            .await?
            .into_iter()
            .map(|u| ((u.conversation_id, u.recipient), u.unread))
            .collect();
        let mut statuses: HashMap<(String, String), Status> = HashMap::new();
        for s in tx.all_statuses().await? {
            statuses.insert((s.conversation_id.clone(), s.session_id.clone()), s);
        }
        drop(tx);
        let mut out = Vec::new();
        for row in rows {
            let state = LiveState::of(&row.conversation, now);
            let keep = match filter {
                ListFilter::All => true,
                ListFilter::Active => state == LiveState::Active,
                ListFilter::Ended => state != LiveState::Active,
            };
            if !keep {
                continue;
            }
            let id = row.conversation.id.clone();
            let seats = participants.remove(&id).unwrap_or_default();
            out.push(self.summary(
                row.conversation,
                row.messages,
                row.last_message_at,
                seats,
                now,
                |s| {
                    (
                        unread.get(&(id.clone(), s.to_owned())).copied().unwrap_or(0),
                        statuses.get(&(id.clone(), s.to_owned())).cloned(),
                    )
                },
            ));
        }
        Ok(out)
    }

    fn summary(
        &self,
        c: Conversation,
        messages: i64,
        last_message_at: Option<Millis>,
        seats: Vec<Participant>,
        now: Millis,
        seat_state: impl Fn(&str) -> (i64, Option<Status>),
    ) -> ConversationSummary {
        let window = self.limits.heartbeat_window.as_millis() as i64;
        let mut last_activity = last_message_at;
        let participants = seats
            .into_iter()
            .map(|p| {
                let (unread, status) = seat_state(&p.session_id);
                let hb = status.as_ref().map(|s| s.heartbeat_at);
                last_activity = last_activity.max(hb);
                SeatView {
                    alive: hb.is_some_and(|h| now - h <= window),
                    status: status.as_ref().map(|s| s.status.clone()),
                    note: status.and_then(|s| s.note),
                    last_heartbeat: hb,
                    unread,
                    token_created_at: p.token_created_at,
                    revoked_at: p.revoked_at,
                    role: p.role,
                    session_id: p.session_id,
                }
            })
            .collect();
        ConversationSummary {
            state: LiveState::of(&c, now),
            id: c.id,
            created_at: c.created_at,
            expires_at: c.expires_at,
            closed_at: c.closed_at,
            messages,
            last_activity,
            participants,
        }
    }

    /// One conversation and its messages with seq > `after_seq`, in order,
    /// each with its read state. `show --follow` calls this again with the
    /// last seq it printed.
    pub async fn show_conversation(&self, id: &str, after_seq: i64) -> AdminResult<ConversationDetail> {
        let mut tx = self.store.begin_read().await?;
        let now = self.now();
        let c = tx
            .conversation(id)
            .await?
            .ok_or_else(|| AdminError::NotFound { id: id.to_owned() })?;
        let seats = tx.participants(id).await?;
        let roles: HashMap<String, String> = seats
            .iter()
            .map(|p| (p.session_id.clone(), p.role.clone()))
            .collect();
        let statuses: HashMap<String, Status> = tx
            .statuses(id)
            .await?
            .into_iter()
            .map(|s| (s.session_id.clone(), s))
            .collect();
        let mut unread: HashMap<String, i64> = HashMap::new();
        for p in &seats {
            unread.insert(p.session_id.clone(), tx.count_unread(id, &p.session_id).await?);
        }
        let mut messages = Vec::new();
        let mut after = after_seq;
        loop {
            let page = tx.history_after(id, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            messages.extend(page);
        }
        let mut reads: HashMap<i64, Vec<ReadState>> = HashMap::new();
        for d in tx.deliveries_after(id, after_seq).await? {
            reads.entry(d.message_seq).or_default().push(ReadState {
                session_id: d.recipient,
                delivered_at: d.delivered_at,
            });
        }
        // Counted over the whole conversation, not just the page shown.
        let (count, last_message_at) = tx.message_totals(id).await?;
        drop(tx);
        let summary = self.summary(c, count, last_message_at, seats, now, |s| {
            (unread.get(s).copied().unwrap_or(0), statuses.get(s).cloned())
        });
        let messages_after = messages
            .into_iter()
            .map(|m| MessageView {
                from_role: roles.get(&m.sender).cloned().unwrap_or_else(|| m.sender.clone()),
                read_by: reads.remove(&m.seq).unwrap_or_default(),
                seq: m.seq,
                sender: m.sender,
                action_type: m.action_type,
                body: m.body,
                files: m.files,
                redacted: m.redactions,
                sent_at: m.created_at,
            })
            .collect();
        Ok(ConversationDetail {
            summary,
            messages_after,
        })
    }

    /// Up to `limit` audit entries matching `filter` with seq > `after`.
    /// Callers page with the last seq they got.
    pub async fn audit_entries(
        &self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> AdminResult<Vec<audit::Entry>> {
        let mut tx = self.store.begin_read().await?;
        Ok(tx.audit_filtered(filter, after, limit).await?)
    }

    /// Purges conversations that ended (expired or closed) at least
    /// `older_than` ago, with their messages, deliveries, seats, statuses
    /// and rate events, and records the purge, with its counts, as one audit
    /// entry in the same transaction. Audit entries are never deleted, so
    /// the chain stays valid and still tells what the purged conversations did.
    pub async fn cleanup(&self, req: CleanupRequest) -> AdminResult<CleanupReport> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let cutoff = now - req.older_than.as_millis() as i64;
        let ended = tx.ended_before(cutoff).await?;
        let mut deleted = PurgeCounts::default();
        for c in &ended {
            deleted.add(&tx.purge_conversation(&c.id).await?);
        }
        let conversations: Vec<String> = ended.into_iter().map(|c| c.id).collect();
        let mut audit_seq = None;
        if req.dry_run {
            // Dropping the transaction rolls every deletion back: the counts
            // are exact, and nothing changed.
            drop(tx);
        } else if !conversations.is_empty() {
            audit_seq = Some(
                self.admin_audit(
                    &mut tx,
                    now,
                    "conversations.purge",
                    None,
                    json!({
                        "cutoff": cutoff,
                        "older_than_seconds": req.older_than.as_secs(),
                        "conversations": conversations,
                        "deleted": deleted,
                    }),
                )
                .await?,
            );
            tx.commit().await?;
        }
        Ok(CleanupReport {
            dry_run: req.dry_run,
            cutoff,
            conversations,
            deleted,
            audit_seq,
        })
    }

    /// Issues a new token for a seat and replaces the stored hash, which
    /// revokes the old token at once; also lifts a revocation, since a new
    /// token is how the overseer gives access back. Only the HMAC of the new
    /// token is stored; the clear token is returned once.
    pub async fn rotate_token(&self, id: &str, session: SessionId) -> AdminResult<Rotated> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let c = tx
            .conversation(id)
            .await?
            .ok_or_else(|| AdminError::NotFound { id: id.to_owned() })?;
        match LiveState::of(&c, now) {
            LiveState::Active => {}
            state => {
                return Err(AdminError::Ended {
                    id: id.to_owned(),
                    state: state.as_str(),
                    what: "rotating a token",
                });
            }
        }
        let p = tx
            .participant(id, session.as_str())
            .await?
            .ok_or_else(|| AdminError::NoSuchSession {
                id: id.to_owned(),
                session: session.as_str().to_owned(),
            })?;
        let token = SessionToken::generate();
        tx.replace_token(id, session.as_str(), &self.key.hash_token(&token), now)
            .await?;
        self.admin_audit(
            &mut tx,
            now,
            "session.rotate",
            Some(id),
            json!({ "session": session.as_str(), "was_revoked": p.revoked_at.is_some() }),
        )
        .await?;
        tx.commit().await?;
        Ok(Rotated {
            conversation_id: id.to_owned(),
            session_id: session.as_str().to_owned(),
            role: p.role,
            token: ShownToken::new(&token),
            issued_at: now,
        })
    }

    /// Ends a seat's access: its calls fail with `session_revoked` from the
    /// next transaction on. Revoking twice changes nothing and records nothing.
    pub async fn revoke_session(&self, id: &str, session: SessionId) -> AdminResult<Ended> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        tx.conversation(id)
            .await?
            .ok_or_else(|| AdminError::NotFound { id: id.to_owned() })?;
        let p = tx
            .participant(id, session.as_str())
            .await?
            .ok_or_else(|| AdminError::NoSuchSession {
                id: id.to_owned(),
                session: session.as_str().to_owned(),
            })?;
        if let Some(at) = p.revoked_at {
            return Ok(Ended {
                conversation_id: id.to_owned(),
                session_id: Some(p.session_id),
                at,
                changed: false,
            });
        }
        tx.revoke(id, session.as_str(), now).await?;
        self.admin_audit(
            &mut tx,
            now,
            "session.revoke",
            Some(id),
            json!({ "session": session.as_str() }),
        )
        .await?;
        tx.commit().await?;
        Ok(Ended {
            conversation_id: id.to_owned(),
            session_id: Some(p.session_id),
            at: now,
            changed: true,
        })
    }

    /// Closes a conversation early: every call on it then fails with
    /// `conversation_closed`. Closing twice changes nothing.
    pub async fn close_conversation(&self, id: &str) -> AdminResult<Ended> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let c = tx
            .conversation(id)
            .await?
            .ok_or_else(|| AdminError::NotFound { id: id.to_owned() })?;
        if let Some(at) = c.closed_at {
            return Ok(Ended {
                conversation_id: id.to_owned(),
                session_id: None,
                at,
                changed: false,
            });
        }
        tx.close_conversation(id, now).await?;
        self.admin_audit(&mut tx, now, "conversation.close", Some(id), json!({}))
            .await?;
        tx.commit().await?;
        Ok(Ended {
            conversation_id: id.to_owned(),
            session_id: None,
            at: now,
            changed: true,
        })
    }

    /// A conversation as an export document: seats without token hashes,
    /// messages (already redacted at rest) with their delivery state, and
    /// statuses. The export is recorded in the audit trail, since data
    /// leaves the bridge.
    pub async fn export_conversation(&self, id: &str) -> AdminResult<Export> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let c = tx
            .conversation(id)
            .await?
            .ok_or_else(|| AdminError::NotFound { id: id.to_owned() })?;
        let participants = tx
            .participants(id)
            .await?
            .into_iter()
            .map(|p| ExportParticipant {
                session_id: p.session_id,
                role: p.role,
                revoked_at: p.revoked_at.map(rfc3339),
            })
            .collect();
        let mut delivered: HashMap<i64, BTreeMap<String, Option<String>>> = HashMap::new();
        for d in tx.deliveries_after(id, 0).await? {
            delivered
                .entry(d.message_seq)
                .or_default()
                .insert(d.recipient, d.delivered_at.map(rfc3339));
        }
        let mut messages = Vec::new();
        let mut after = 0;
        loop {
            let page = tx.history_after(id, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            messages.extend(page.into_iter().map(|m| ExportMessage {
                delivered: delivered.remove(&m.seq).unwrap_or_default(),
                seq: m.seq,
                sender: m.sender,
                action_type: m.action_type,
                body: m.body,
                files: m.files,
                redacted: m.redactions,
                sent_at: rfc3339(m.created_at),
            }));
        }
        let statuses = tx
            .statuses(id)
            .await?
            .into_iter()
            .map(|s| ExportStatus {
                session_id: s.session_id,
                status: s.status,
                note: s.note,
                heartbeat_at: rfc3339(s.heartbeat_at),
            })
            .collect();
        self.admin_audit(
            &mut tx,
            now,
            "conversation.export",
            Some(id),
            json!({ "messages": messages.len() }),
        )
        .await?;
        tx.commit().await?;
        Ok(Export {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            exported_at: rfc3339(now),
            conversation: ExportConversation {
                id: c.id,
                created_at: rfc3339(c.created_at),
                expires_at: rfc3339(c.expires_at),
                closed_at: c.closed_at.map(rfc3339),
            },
            participants,
            messages,
            statuses,
        })
    }

    /// Restores an exported conversation with fresh tokens (the export has
    /// none): under its own id when that is free, else under a new one.
    /// Every text field is validated and redacted again, since a file can
    /// be edited by hand; messages get new seqs in their original order.
    /// All of it and its audit entry commit in one transaction.
    pub async fn import_conversation(&self, req: ImportRequest) -> AdminResult<Imported> {
        let e = &req.export;
        if e.format != EXPORT_FORMAT || e.version != EXPORT_VERSION {
            return Err(bad(format!(
                "expected format {EXPORT_FORMAT:?} version {EXPORT_VERSION}, as written by `mcp-bridge export`"
            )));
        }
        // Validate everything before touching the database.
        let mut seats: Vec<(SessionId, &ExportParticipant)> = Vec::new();
        for p in &e.participants {
            let s = SessionId::parse(&p.session_id)
                .ok_or_else(|| bad("participants[].session_id must be \"a\" or \"b\""))?;
            if seats.iter().any(|(t, _)| *t == s) {
                return Err(bad("participants[].session_id appears twice"));
            }
            validate::role("participants[].role", &p.role, &self.limits, &self.redactor)
                .map_err(|e| bad(e.to_string()))?;
            seats.push((s, p));
        }
        if seats.len() < 2 {
            return Err(bad("a conversation needs at least two participants"));
        }
        let known = |s: &str| seats.iter().any(|(t, _)| t.as_str() == s);
        // Bodies are stored redacted, and a placeholder can be longer than
        // the secret it replaced; allow for that, not for arbitrary growth.
        let max_body = self.limits.max_message_bytes.saturating_mul(4);
        for m in &e.messages {
            if !known(&m.sender) {
                return Err(bad("messages[].sender is not a participant"));
            }
            if super::ActionType::parse(&m.action_type).is_none() {
                return Err(bad("messages[].action_type is not a known action type"));
            }
            if m.body.is_empty() || m.body.len() > max_body {
                return Err(bad(format!("messages[].body must be 1 to {max_body} bytes")));
            }
            validate::files(&m.files, &self.limits).map_err(|e| bad(e.to_string()))?;
            if m.delivered.keys().any(|r| !known(r) || *r == m.sender) {
                return Err(bad(
                    "messages[].delivered names a recipient that is not another participant",
                ));
            }
            parse_time("messages[].sent_at", &m.sent_at)?;
        }
        for s in &e.statuses {
            if !known(&s.session_id) {
                return Err(bad("statuses[].session_id is not a participant"));
            }
            if super::StatusKind::parse(&s.status).is_none() {
                return Err(bad("statuses[].status is not a known status"));
            }
            if let Some(n) = &s.note {
                validate::note(n, &self.limits).map_err(|e| bad(e.to_string()))?;
            }
        }
        let created_at = parse_time("conversation.created_at", &e.conversation.created_at)?;
        let mut expires_at = parse_time("conversation.expires_at", &e.conversation.expires_at)?;
        let mut closed_at = parse_opt_time("conversation.closed_at", &e.conversation.closed_at)?;

        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        if let Some(ttl) = req.ttl {
            expires_at = now + ttl.as_millis() as i64;
            closed_at = None;
        }
        let source_id = e.conversation.id.clone();
        let id = if is_conversation_id(&source_id) && tx.conversation(&source_id).await?.is_none() {
            source_id.clone()
        } else if req.keep_id {
            return Err(if is_conversation_id(&source_id) {
                AdminError::IdTaken { id: source_id }
            } else {
                bad("conversation.id is not a conversation id (conv_ + 32 hex characters)")
            });
        } else {
            new_conversation_id()
        };
        tx.insert_conversation(&Conversation {
            id: id.clone(),
            created_at,
            expires_at,
            closed_at,
        })
        .await?;
        let mut tokens = Vec::new();
        for (s, p) in &seats {
            let token = SessionToken::generate();
            let revoked_at = parse_opt_time("participants[].revoked_at", &p.revoked_at)?;
            tx.insert_participant(&Participant {
                conversation_id: id.clone(),
                session_id: s.as_str().to_owned(),
                role: p.role.clone(),
                token_hash: self.key.hash_token(&token),
                token_created_at: now,
                revoked_at,
            })
            .await?;
            tokens.push(IssuedToken {
                session_id: s.as_str().to_owned(),
                role: p.role.clone(),
                token: revoked_at.is_none().then(|| ShownToken::new(&token)),
            });
        }
        let mut kinds_found: Vec<String> = Vec::new();
        for m in &e.messages {
            // Redaction runs before the write, as for a sent message.
            let body = self.redactor.redact(&m.body);
            let mut kinds = m.redacted.clone();
            kinds.extend(body.kinds.iter().cloned());
            let mut files = Vec::with_capacity(m.files.len());
            for f in &m.files {
                let r = self.redactor.redact(f);
                kinds.extend(r.kinds.iter().cloned());
                files.push(r.text.into_owned());
            }
            kinds_found.extend(body.kinds.iter().cloned());
            kinds.sort();
            kinds.dedup();
            let recipients: Vec<String> = m.delivered.keys().cloned().collect();
            let seq = tx
                .insert_message(
                    &store::NewMessage {
                        conversation_id: id.clone(),
                        sender: m.sender.clone(),
                        body: body.text.into_owned(),
                        action_type: m.action_type.clone(),
                        files,
                        redactions: kinds,
                        created_at: parse_time("messages[].sent_at", &m.sent_at)?,
                    },
                    &recipients,
                )
                .await?;
            for (r, at) in &m.delivered {
                if let Some(at) = parse_opt_time("messages[].delivered", at)? {
                    tx.set_delivered(seq, r, at).await?;
                }
            }
        }
        for s in &e.statuses {
            let note = s.note.as_deref().map(|n| {
                let r = self.redactor.redact(n);
                kinds_found.extend(r.kinds.iter().cloned());
                r.text.into_owned()
            });
            tx.upsert_status(&Status {
                conversation_id: id.clone(),
                session_id: s.session_id.clone(),
                status: s.status.clone(),
                note,
                heartbeat_at: parse_time("statuses[].heartbeat_at", &s.heartbeat_at)?,
            })
            .await?;
        }
        kinds_found.sort();
        kinds_found.dedup();
        self.admin_audit(
            &mut tx,
            now,
            "conversation.import",
            Some(&id),
            json!({
                "source_id": if is_conversation_id(&source_id) { json!(source_id) } else { json!(null) },
                "messages": e.messages.len(),
                "participants": seats.len(),
                "redacted_on_import": kinds_found,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(Imported {
            conversation_id: id,
            source_id: if is_conversation_id(&source_id) {
                source_id
            } else {
                String::new()
            },
            messages: e.messages.len(),
            tokens,
            expires_at,
        })
    }

    /// Whole-database figures.
    pub async fn stats(&self) -> AdminResult<Stats> {
        let mut tx = self.store.begin_read().await?;
        let now = self.now();
        let figures = tx.figures(now).await?;
        let rows = tx.conversation_rows().await?;
        let heartbeats = tx.all_statuses().await?;
        drop(tx);
        let last_activity = rows
            .iter()
            .filter_map(|r| r.last_message_at)
            .chain(heartbeats.iter().map(|s| s.heartbeat_at))
            .max();
        Ok(Stats {
            figures,
            oldest_conversation: rows.iter().map(|r| r.conversation.created_at).min(),
            last_activity,
        })
    }

    /// Size of the live database, for a backup's progress bar.
    pub async fn database_size(&self) -> AdminResult<i64> {
        Ok(self.store.size_bytes().await?)
    }

    /// Writes a consistent online copy of the whole database to `dest`
    /// (which must not exist) while agents keep writing, then records the
    /// backup in the live trail. The copy holds every transaction committed
    /// before it started and none after.
    pub async fn backup(&self, dest: &Path) -> AdminResult<i64> {
        self.store.backup_to(dest).await?;
        let bytes = std::fs::metadata(dest).map(|m| m.len() as i64).unwrap_or(0);
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let seq = self
            .admin_audit(
                &mut tx,
                now,
                "database.backup",
                None,
                json!({ "path": dest.display().to_string(), "bytes": bytes }),
            )
            .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Checks a database before it replaces another: the backend's
    /// integrity check, then the audit chain against this bridge's key (a
    /// copy made under another key fails at its first seal).
    pub async fn restore_check(&self) -> AdminResult<RestoreCheck> {
        let problems = self.store.integrity_check().await?;
        if !problems.is_empty() {
            return Err(AdminError::Integrity(problems.join("; ")));
        }
        let AuditReport { entries, head } = self.verify_audit().await?;
        let mut tx = self.store.begin_read().await?;
        let figures = tx.figures(self.now()).await?;
        Ok(RestoreCheck {
            audit_entries: entries,
            audit_head: head,
            conversations: figures.conversations,
            messages: figures.messages,
        })
    }

    /// Records, in the restored database itself, where it came from.
    pub async fn record_restore(&self, from: &Path, target: &Path) -> AdminResult<i64> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let seq = self
            .admin_audit(
                &mut tx,
                now,
                "database.restore",
                None,
                json!({ "from": from.display().to_string(), "to": target.display().to_string() }),
            )
            .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Closes the store's connections (before its file is renamed).
    pub async fn shutdown(&self) {
        self.store.shutdown().await;
    }

    /// Appends an overseer audit entry inside `tx`; returns its seq.
    async fn admin_audit(
        &self,
        tx: &mut S::Tx,
        now: Millis,
        action: &str,
        conversation_id: Option<&str>,
        detail: serde_json::Value,
    ) -> AdminResult<i64> {
        let head = tx.audit_head().await?;
        let e = audit::chain(
            head,
            now,
            NewEntry {
                actor: ACTOR.into(),
                action: action.into(),
                conversation_id: conversation_id.map(str::to_owned),
                detail,
            },
            &self.key,
        );
        tx.insert_audit(&e).await?;
        Ok(e.seq)
    }
}
