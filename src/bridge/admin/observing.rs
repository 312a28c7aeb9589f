//! Observing: what the overseer reads without changing anything (`list`,
//! `show`, `audit`, `stats`) and the view types those return. Reads take a
//! consistent snapshot (`begin_read`) and write nothing.

use std::collections::HashMap;

use serde::Serialize;

use super::{AdminError, AdminResult, ts};
use crate::audit;
use crate::bridge::Bridge;
use crate::clock::Millis;
use crate::store::admin::{AdminStore, AdminTx, AuditFilter, DbFigures};
use crate::store::{Conversation, Participant, Status, Tx};

/// Messages read per query when a use case walks a whole conversation, so
/// one huge conversation never becomes one huge result set.
const PAGE: usize = 1000;

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
        let mut last_activity = last_message_at;
        let participants = seats
            .into_iter()
            .map(|p| {
                let (unread, status) = seat_state(&p.session_id);
                let hb = status.as_ref().map(|s| s.heartbeat_at);
                last_activity = last_activity.max(hb);
                SeatView {
                    alive: hb.is_some_and(|h| self.is_alive(h, now)),
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
}
