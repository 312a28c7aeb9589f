//! The overseer's use cases: what the human who runs the agents does from
//! a terminal (`list`, `show`, `audit`, `cleanup`, `rotate`, `revoke`,
//! `close`, `export`, `import`, `stats`, `backup`, `restore`).
//!
//! Same rules as the agents' use cases: every state change commits in ONE
//! `begin_write` transaction together with its audit entry (actor `cli`),
//! tokens are shown once and stored only as keyed hashes, and nothing here
//! knows SQL or how results are printed. Reads take a consistent snapshot
//! (`begin_read`) and write nothing. Export and import live in `transfer`,
//! the trail's full check and the restore check in `integrity`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::{AuditFailure, Bridge, SessionId};
use crate::audit::{self, NewEntry};
use crate::auth::{SessionToken, ShownToken};
use crate::clock::Millis;
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
    /// The schema is not exactly what this binary's migrations create.
    #[error("the database schema is not the one mcp-bridge creates: {0}")]
    Schema(String),
    /// A conversation exists that no audit entry records.
    #[error(
        "conversation {id} has no audit entry: it was written without the bridge, so the trail is incomplete"
    )]
    Unaudited {
        /// The conversation.
        id: String,
    },
    /// The database ends before the head recorded outside it.
    #[error(
        "the audit trail was cut short: the head file {path} records entry {recorded}, the database ends at entry {found}. \
         If the database was replaced on purpose, `mcp-bridge restore` it instead, or delete the head file"
    )]
    Truncated {
        /// The head file.
        path: std::path::PathBuf,
        /// The seq it records.
        recorded: i64,
        /// The newest seq in the database.
        found: i64,
    },
    /// The database holds another chain than the head file records.
    #[error(
        "the audit trail is not the one the head file {path} records ({what}): the database was replaced or rewritten. \
         If that was deliberate, `mcp-bridge restore` it instead, or delete the head file"
    )]
    OtherChain {
        /// The head file.
        path: std::path::PathBuf,
        /// Which entry differs.
        what: String,
    },
    /// The head file cannot be read or does not verify.
    #[error(transparent)]
    HeadFile(audit::head::Error),
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
pub(super) mod ts {
    use serde::Serializer;

    use crate::clock::{Millis, rfc3339};

    pub(in crate::bridge) fn one<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*ms))
    }

    pub(in crate::bridge) fn opt<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
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

    /// Closes the store's connections (before its file is renamed).
    pub async fn shutdown(&self) {
        self.store.shutdown().await;
    }

    /// Appends an overseer audit entry inside `tx`; returns its seq.
    pub(super) async fn admin_audit(
        &self,
        tx: &mut S::Tx,
        now: Millis,
        action: &str,
        conversation_id: Option<&str>,
        detail: serde_json::Value,
    ) -> AdminResult<i64> {
        // Pending refusal counts whose window closed go first, as for every write.
        self.flush_tallies(tx, now, now - self.refusal_window()).await?;
        let entry = NewEntry {
            actor: ACTOR.into(),
            action: action.into(),
            conversation_id: conversation_id.map(str::to_owned),
            detail,
        };
        Ok(self.append(tx, now, entry).await?)
    }
}
