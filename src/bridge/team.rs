//! The team views: who is in a conversation and how they are doing, and a
//! sender's receipts. Both read only, but audited like every call.

use std::collections::HashMap;

use serde_json::json;

use super::{
    Auth, Bridge, Error, MessageStatus, ParticipantView, Participants, RateClass, RecipientReceipt, Result,
    SessionId,
};
use crate::clock::rfc3339;
use crate::store::{Store, Tx};

impl<S: Store> Bridge<S> {
    /// Every participant's role, seat, status, note, liveness and unread count.
    pub async fn list_participants(&self, auth: Auth) -> Result<Participants> {
        let result = self.participants_inner(&auth).await;
        self.audited("participants.list", &auth, result).await
    }

    async fn participants_inner(&self, auth: &Auth) -> Result<Participants> {
        let mut tx = self.store.begin_write().await?;
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
        let window = self.limits.heartbeat_window;
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
                    alive: status.is_some_and(|s| now - s.heartbeat_at <= window.as_millis() as i64),
                    seconds_since_heartbeat: status.map(|s| (now - s.heartbeat_at).max(0) / 1000),
                    unread: unread.get(&p.session_id).copied().unwrap_or(0),
                    agent: p.agent_id.is_some(),
                    revoked: p.revoked_at.is_some(),
                })
            })
            .collect();
        Ok(Participants {
            participants,
            heartbeat_window_seconds: window.as_secs(),
        })
    }

    /// For the sender of `message_id`: each recipient and when it read the
    /// message. Anyone else learns nothing, not even that it exists.
    pub async fn message_status(&self, auth: Auth, message_id: i64) -> Result<MessageStatus> {
        let result = self.message_status_inner(&auth, message_id).await;
        self.audited("message.status", &auth, result).await
    }

    async fn message_status_inner(&self, auth: &Auth, message_id: i64) -> Result<MessageStatus> {
        let mut tx = self.store.begin_write().await?;
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
                    role: roles.get(&d.recipient).cloned().unwrap_or(d.recipient),
                    read_at: d.read_at.map(rfc3339),
                })
                .collect(),
        })
    }
}
