//! The use cases: one function per thing an agent or the overseer does.
//!
//! Each runs in ONE store transaction, in this order: authenticate ->
//! rate-limit -> validate -> redact -> write -> audit -> commit. A failure at
//! any step drops the transaction (nothing is written) and then records the
//! refusal, with its code, as an audit entry of its own: only validated
//! values (a conversation id that exists, a seat, a fixed actor, a code), and
//! repeats of the same refusal coalesced into one counted entry per window,
//! so a flood of refused calls adds a bounded number of rows. This module
//! knows no transport and no SQL: `mcp/` and `cli/` call it, `store/` serves it.

use std::sync::{Arc, Mutex};

use crate::auth::{ServerKey, SessionToken};
use crate::clock::{Clock, Millis, rfc3339};
use crate::config::Limits;
use crate::limits::{self, Decision};
use crate::redact::Redactor;
use crate::store::agents::AgentTx;
use crate::store::{self, Conversation, Participant, Store, Tx};

mod access;
mod admin;
mod auditing;
mod conversation;
mod error;
pub mod handoff;
mod messages;
mod status;
mod team;
pub mod types;
mod validate;
mod waiting;
pub mod yolo;

pub use access::{Access, AgentIdentity};
pub use admin::{
    AdminError, AdminResult, AgentAdded, AgentRevoked, AgentRotated, AgentView, AuditCheck, CleanupReport,
    CleanupRequest, ConversationDetail, ConversationSummary, EXPORT_FORMAT, EXPORT_VERSION, Ended, Export,
    ExportConversation, ExportMessage, ExportParticipant, ExportStatus, HeadFileState, ImportRequest,
    Imported, IssuedToken, KeyRotated, ListFilter, LiveState, MessageView, ReadState, RestoreCheck, Rotated,
    SeatView, Stats,
};
pub use admin::{MAX_SEARCH_QUERY_CHARS, OverseerPost, SearchHit};
pub use auditing::{AuditFailure, AuditReport};
pub use conversation::{CreateRequest, MAX_PARTNERS};
pub use error::{Error, retry_after_secs};
pub use handoff::{Handed, InHand, Receipt, ReceiptPart, Recipient, ReturnReason};
pub use messages::SendRequest;
pub use status::StatusRequest;
pub use types::*;
pub use validate::is_conversation_id;

/// Shorthand for use-case results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a use case needs, shared by every request of one process.
#[derive(Clone)]
pub struct Bridge<S: Store> {
    store: S,
    key: ServerKey,
    redactor: Redactor,
    limits: Arc<Limits>,
    clock: Arc<dyn Clock>,
    yolo: Option<Arc<crate::config::Yolo>>,
    /// When this process created its recent conversations: the creation
    /// limit is per process (see [`Limits::max_creates_per_minute`]).
    creations: Arc<Mutex<Vec<Millis>>>,
    /// Who the overseer's operations are recorded as: `cli` at a terminal,
    /// `agent:NAME` for an admin credential over HTTP (see [`Bridge::acting_for`]).
    admin_actor: Arc<str>,
    /// Cancelled when the server stops: every wait returns empty at once
    /// (see `waiting.rs`, [`Bridge::stop_waits`]).
    stopping: tokio_util::sync::CancellationToken,
}

impl<S: Store> std::fmt::Debug for Bridge<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Which rate window set a call counts against.
#[derive(Debug, Clone, Copy)]
enum RateClass {
    /// `send_to_partner`.
    Send,
    /// Polls and heartbeats.
    Read,
}

/// A caller who presented a valid token.
#[derive(Debug, Clone)]
struct Caller {
    conversation: Conversation,
    participant: Participant,
    /// Everyone in the conversation, the caller included, by session id.
    participants: Vec<Participant>,
}

impl Caller {
    fn actor(&self) -> String {
        format!("{}/{}", self.conversation.id, self.participant.session_id)
    }

    /// The other participants' session ids: a message's recipients.
    fn others(&self) -> Vec<String> {
        self.participants
            .iter()
            .filter(|p| p.session_id != self.participant.session_id)
            .map(|p| p.session_id.clone())
            .collect()
    }

    /// The seats a message goes to: every other participant, or the roles
    /// named in `to` (exact spelling), in seat order. A role that names no
    /// participant, or the caller itself, is refused.
    fn recipients(&self, to: Option<&[String]>) -> Result<Vec<String>> {
        let Some(to) = to else {
            return Ok(self.others());
        };
        if to.is_empty() {
            return Err(Error::invalid(
                "to",
                "names no recipient; name at least one role, or leave `to` out to address every other participant",
            ));
        }
        let me = &self.participant.session_id;
        let mut seats = Vec::with_capacity(to.len());
        for (i, role) in to.iter().enumerate() {
            let field = format!("to[{i}]");
            match self.participants.iter().find(|p| &p.role == role) {
                Some(p) if &p.session_id == me => {
                    return Err(Error::invalid(
                        field,
                        "is your own role; a message goes to other participants (leave `to` out to address all of them)",
                    ));
                }
                Some(p) => seats.push(p.session_id.clone()),
                None => {
                    return Err(Error::UnknownRecipient {
                        field,
                        valid: self
                            .participants
                            .iter()
                            .filter(|p| &p.session_id != me)
                            .map(|p| p.role.clone())
                            .collect(),
                    });
                }
            }
        }
        seats.sort();
        seats.dedup();
        Ok(seats)
    }

    /// Role by session id, to label messages.
    fn roles(&self) -> std::collections::HashMap<String, String> {
        self.participants
            .iter()
            .map(|p| (p.session_id.clone(), p.role.clone()))
            .collect()
    }
}

impl<S: Store> Bridge<S> {
    /// Assembles a bridge over `store`.
    pub fn new(store: S, key: ServerKey, redactor: Redactor, limits: Limits, clock: Arc<dyn Clock>) -> Self {
        // A store opened by the CLI already holds its key file's roots.
        if store.keyring().is_empty() {
            store.keyring().install(&key);
        }
        Self {
            store,
            key,
            redactor,
            limits: Arc::new(limits),
            clock,
            yolo: None,
            creations: Arc::default(),
            admin_actor: Arc::from(admin::CLI_ACTOR),
            stopping: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// This bridge with the overseer's operations recorded under `agent`'s
    /// name (`agent:NAME`) instead of `cli`: an admin or observer credential
    /// over HTTP is accountable for what it does.
    pub fn acting_for(&self, agent: &AgentIdentity) -> Self {
        Self {
            admin_actor: Arc::from(access::agent_actor(&agent.name)),
            ..self.clone()
        }
    }

    /// Records that `agent` asked for `operation` and its role does not
    /// allow it (HTTP answers 403). Counted like every refusal: the first
    /// of its kind in a window is an entry at once, repeats are tallied.
    pub async fn record_forbidden(&self, operation: &str, agent: &AgentIdentity, needed: &'static str) {
        let err = Error::RoleForbidden {
            role: agent.role.as_str(),
            needed,
        };
        self.audit_refusal(operation, None, access::agent_actor(&agent.name), &err)
            .await;
    }

    /// Enables the execution use cases: the human opted in at start.
    pub fn with_yolo(mut self, yolo: Option<crate::config::Yolo>) -> Self {
        self.yolo = yolo.map(Arc::new);
        self
    }

    /// The YOLO settings, when execution is enabled.
    pub fn yolo_settings(&self) -> Option<&crate::config::Yolo> {
        self.yolo.as_deref()
    }

    /// The limits in force, for tool descriptions and errors.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The store, for the overseer's commands.
    pub fn store(&self) -> &S {
        &self.store
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// Checks conversation, expiry, seat and credential, in that order: a
    /// seat's token (compared in constant time) and the seat's revocation,
    /// or a registered agent's seat and the agent's standing.
    async fn authenticate(&self, tx: &mut S::Tx, access: &Access, now: Millis) -> Result<Caller> {
        self.read_and_admit(tx, access, false, now).await
    }

    /// [`Bridge::authenticate`] for a call that adds to the conversation (a
    /// send): also locks the conversation's row until commit, so its seqs
    /// commit in order and its quotas count exactly (see
    /// [`Tx::conversation_for_update`]).
    async fn authenticate_to_add(&self, tx: &mut S::Tx, access: &Access, now: Millis) -> Result<Caller> {
        self.read_and_admit(tx, access, true, now).await
    }

    /// Reads the conversation (locking its row when `lock`) and, for a
    /// registered agent, the agent as stored now, in one round trip where
    /// the backend can; then checks them.
    async fn read_and_admit(
        &self,
        tx: &mut S::Tx,
        access: &Access,
        lock: bool,
        now: Millis,
    ) -> Result<Caller> {
        let id = access.conversation_id();
        let (stored_agent, found) = match access {
            Access::Agent { agent, .. } => {
                let (stored, found) = tx.agent_and_conversation(agent.id, id, lock).await?;
                (Some(stored), found)
            }
            Access::Seat(_) if lock => (None, tx.conversation_for_update(id).await?),
            Access::Seat(_) => (None, tx.conversation_with_participants(id).await?),
        };
        self.admit(access, found, stored_agent, now)
    }

    /// The checks of [`Bridge::authenticate`] on what was read: the
    /// conversation with its seats and, for an agent, the agent as stored
    /// (`Some(None)`: no longer there).
    fn admit(
        &self,
        access: &Access,
        found: Option<(Conversation, Vec<Participant>)>,
        stored_agent: Option<Option<store::agents::Agent>>,
        now: Millis,
    ) -> Result<Caller> {
        let (conversation, participants) = found.ok_or(Error::ConversationNotFound)?;
        ensure_open(&conversation, now)?;
        let participant = match access {
            Access::Seat(auth) => {
                // A seat the conversation does not have is a mistake in the
                // argument, as it was when only `a` and `b` existed; saying
                // so tells nothing beyond how many seats there are.
                let participant = participants
                    .iter()
                    .find(|p| p.session_id == auth.session_id.as_str())
                    .cloned()
                    .ok_or_else(|| no_such_seat(auth.session_id, participants.len()))?;
                let token_ok = participant
                    .token_hash
                    .as_ref()
                    .is_some_and(|h| self.key.verify_token(&auth.token, h));
                if !token_ok {
                    return Err(Error::InvalidToken {
                        session_id: auth.session_id.as_str().to_owned(),
                    });
                }
                participant
            }
            Access::Agent { agent, seat, .. } => {
                access::check_standing(stored_agent.flatten(), agent)?;
                let participant = participants
                    .iter()
                    .find(|p| p.agent_id == Some(agent.id))
                    .cloned()
                    .ok_or(Error::NotAParticipant)?;
                if let Some(seat) = seat
                    && seat.as_str() != participant.session_id
                {
                    return Err(Error::invalid(
                        "session_id",
                        format!(
                            "your agent holds seat \"{}\" in this conversation, not \"{seat}\"; leave session_id out",
                            participant.session_id
                        ),
                    ));
                }
                participant
            }
        };
        if participant.revoked_at.is_some() {
            return Err(Error::SessionRevoked {
                session_id: participant.session_id.clone(),
            });
        }
        Ok(Caller {
            conversation,
            participant,
            participants,
        })
    }

    /// Counts one event against the caller's windows, inside `tx`, so the
    /// limit holds across processes.
    async fn rate(&self, tx: &mut S::Tx, caller: &Caller, class: RateClass, now: Millis) -> Result<()> {
        let (limit, prefix) = match class {
            RateClass::Send => (&self.limits.send_rate, "send"),
            RateClass::Read => (&self.limits.read_rate, "read"),
        };
        self.rate_key(tx, &format!("{prefix}:{}", caller.actor()), limit, now)
            .await
    }

    /// Counts one event under `key` against `limit`, inside `tx`.
    async fn rate_key(
        &self,
        tx: &mut S::Tx,
        key: &str,
        limit: &limits::RateLimit,
        now: Millis,
    ) -> Result<()> {
        if limit.is_off() {
            return Ok(());
        }
        let horizon = now - limit.horizon().as_millis() as i64;
        // Recorded before the decision, in one step; a denial returns an
        // error, so the transaction is dropped and the record with it.
        let events = tx.count_and_record_rate_event(key, horizon, now, horizon).await?;
        match limits::check(limit, &events, now) {
            Decision::Allow => Ok(()),
            Decision::Deny {
                window,
                retry_after_ms,
            } => Err(Error::RateLimited {
                window: window.to_string(),
                scope: "for this session",
                retry_after_ms,
            }),
        }
    }
}

/// The overseer's actor name.
/// The refusal of a seat letter beyond the conversation's last seat.
fn no_such_seat(seat: SessionId, seats: usize) -> Error {
    let last = SessionId::nth(seats.saturating_sub(1)).unwrap_or(SessionId::B);
    Error::invalid(
        "session_id",
        format!("this conversation has no seat \"{seat}\"; its seats are \"a\" to \"{last}\""),
    )
}

/// Refuses a closed or expired conversation: every agent call and every
/// approval passes through here.
fn ensure_open(conversation: &Conversation, now: Millis) -> Result<()> {
    if conversation.closed_at.is_some() {
        return Err(Error::ConversationClosed);
    }
    if conversation.expires_at <= now {
        return Err(Error::ConversationExpired {
            expired_at: rfc3339(conversation.expires_at),
        });
    }
    Ok(())
}

/// The credentials every authenticated tool carries.
#[derive(Debug)]
pub struct Auth {
    /// The conversation.
    pub conversation_id: String,
    /// The caller's session in it.
    pub session_id: SessionId,
    /// The caller's token, in clear only for the duration of the call.
    pub token: SessionToken,
}
