//! The team views: who is in a conversation and how they are doing, and a
//! sender's receipts. Both read only, but audited like every call.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use super::access::agent_actor;
use super::messages::role_of;
use super::status::seconds_since;
use super::{
    Access, AgentIdentity, Bridge, Error, MessageStatus, MyConversation, MyConversations, ParticipantView,
    Participants, RateClass, RecipientReceipt, Result, SessionId,
};
use crate::audit::NewEntry;
use crate::clock::rfc3339;
use crate::store::{Store, Tx};

/// Most conversations `my_conversations` lists.
pub const MAX_LISTED: usize = 100;

impl<S: Store> Bridge<S> {
    /// Every participant's role, seat, status, note, liveness and unread count.
    pub async fn list_participants(&self, auth: impl Into<Access>) -> Result<Participants> {
        let auth: Access = auth.into();
        let result = self.participants_inner(&auth).await;
        self.audited("participants.list", &auth, result).await
    }

    async fn participants_inner(&self, auth: &Access) -> Result<Participants> {
        let mut tx = self.store.begin_concurrent_write().await?;
        let now = self.now();
        let caller = self.authenticate(&mut tx, auth, now).await?;
        self.rate(&mut tx, &caller, RateClass::Read, now).await?;
        let id = &caller.conversation.id;
        let statuses: HashMap<String, _> = tx
            .statuses(id)
            .await?
            .into_iter()
            .map(|s| (s.session_id.clone(), s))
            .collect();
        let unread: HashMap<String, i64> = tx.unread_by_recipient(id).await?.into_iter().collect();
        self.audit_caller(&mut tx, now, &caller, "participants.list", json!({}))
            .await?;
        tx.commit().await?;
        let participants = caller
            .participants
            .iter()
            .filter_map(|p| {
                let session_id = SessionId::parse(&p.session_id)?;
                let status = statuses.get(&p.session_id);
                Some(ParticipantView {
                    session_id,
                    role: p.role.clone(),
                    status: status.map(|s| s.status.clone()),
                    note: status.and_then(|s| s.note.clone()),
                    last_heartbeat: status.map(|s| rfc3339(s.heartbeat_at)),
                    alive: status.is_some_and(|s| self.is_alive(s.heartbeat_at, now)),
                    seconds_since_heartbeat: status.map(|s| seconds_since(s.heartbeat_at, now)),
                    unread: unread.get(&p.session_id).copied().unwrap_or(0),
                    agent: p.agent_id.is_some(),
                    revoked: p.revoked_at.is_some(),
                })
            })
            .collect();
        Ok(Participants {
            participants,
            heartbeat_window_seconds: self.limits.heartbeat_window.as_secs(),
        })
    }

    /// The conversations where `agent` holds a seat, newest first (at most
    /// `MAX_LISTED`, 100), with its role and unread count in each.
    pub async fn my_conversations(&self, agent: &Arc<AgentIdentity>) -> Result<MyConversations> {
        let result = self.my_conversations_inner(agent).await;
        if let Err(e) = &result {
            self.audit_refusal("conversations.mine", None, agent_actor(&agent.name), e)
                .await;
        }
        result
    }

    async fn my_conversations_inner(&self, agent: &Arc<AgentIdentity>) -> Result<MyConversations> {
        let mut tx = self.store.begin_concurrent_write().await?;
        let now = self.now();
        self.ensure_agent_live(&mut tx, agent).await?;
        let actor = agent_actor(&agent.name);
        self.rate_key(&mut tx, &format!("read:{actor}"), &self.limits.read_rate, now)
            .await?;
        let mut seats = tx.agent_seats(agent.id).await?;
        seats.reverse();
        seats.truncate(MAX_LISTED);
        let mut conversations = Vec::with_capacity(seats.len());
        for seat in seats {
            let (c, me) = (&seat.conversation, &seat.participant);
            let Some(session_id) = SessionId::parse(&me.session_id) else {
                continue;
            };
            let state = if c.closed_at.is_some() {
                "closed"
            } else if c.expires_at <= now {
                "expired"
            } else {
                "active"
            };
            conversations.push(MyConversation {
                conversation_id: c.id.clone(),
                role: me.role.clone(),
                session_id,
                participants: tx
                    .participants(&c.id)
                    .await?
                    .into_iter()
                    .map(|p| p.role)
                    .collect(),
                unread: tx.count_unread(&c.id, &me.session_id).await?,
                expires_at: rfc3339(c.expires_at),
                state: state.into(),
                revoked: me.revoked_at.is_some(),
            });
        }
        self.audit(
            &mut tx,
            now,
            NewEntry {
                actor,
                action: "conversations.mine".into(),
                conversation_id: None,
                detail: json!({ "listed": conversations.len() }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(MyConversations { conversations })
    }

    /// For the sender of `message_id`: each recipient and when it read the
    /// message. Anyone else learns nothing, not even that it exists.
    pub async fn message_status(&self, auth: impl Into<Access>, message_id: i64) -> Result<MessageStatus> {
        let auth: Access = auth.into();
        let result = self.message_status_inner(&auth, message_id).await;
        self.audited("message.status", &auth, result).await
    }

    async fn message_status_inner(&self, auth: &Access, message_id: i64) -> Result<MessageStatus> {
        let mut tx = self.store.begin_concurrent_write().await?;
        let now = self.now();
        let caller = self.authenticate(&mut tx, auth, now).await?;
        self.rate(&mut tx, &caller, RateClass::Read, now).await?;
        let message = tx
            .message(&caller.conversation.id, message_id)
            .await?
            .filter(|m| m.sender == caller.participant.session_id)
            .ok_or(Error::MessageNotFound)?;
        let states = tx.receipts(message.seq).await?;
        self.audit_caller(
            &mut tx,
            now,
            &caller,
            "message.status",
            json!({ "message_id": message.seq }),
        )
        .await?;
        tx.commit().await?;
        let roles = caller.roles();
        Ok(MessageStatus {
            message_id: message.seq,
            recipients: states
                .into_iter()
                .map(|d| RecipientReceipt {
                    role: role_of(&roles, &d.recipient),
                    read_at: d.read_at.map(rfc3339),
                })
                .collect(),
        })
    }
}
