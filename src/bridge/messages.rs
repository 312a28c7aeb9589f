//! Sending and receiving messages.

use std::collections::HashMap;

use serde_json::json;

use super::{ActionType, Auth, Bridge, DeliveredMessage, Inbox, RateClass, Result, Sent, validate};
use crate::audit::NewEntry;
use crate::clock::rfc3339;
use crate::store::{NewMessage, Store, Tx};

/// What `send_to_partner` needs.
#[derive(Debug)]
pub struct SendRequest {
    /// Who sends.
    pub auth: Auth,
    /// The body, in clear; redacted before anything is stored.
    pub message: String,
    /// What the message is for.
    pub action_type: ActionType,
    /// Paths the message concerns; redacted too.
    pub files_involved: Vec<String>,
}

impl<S: Store> Bridge<S> {
    /// Stores a redacted message for every other participant.
    pub async fn send_message(&self, req: SendRequest) -> Result<Sent> {
        let result = self.send_inner(&req).await;
        if let Err(e) = &result {
            let actor = format!("{}/{}", req.auth.conversation_id, req.auth.session_id);
            self.audit_refusal("message.send", Some(&req.auth.conversation_id), actor, e)
                .await;
        }
        result
    }

    async fn send_inner(&self, req: &SendRequest) -> Result<Sent> {
        let mut tx = self.store.begin_write().await?;
        // Read the clock once the write lock is held, so timestamps follow
        // commit order across processes.
        let now = self.now();
        let caller = self.authenticate(&mut tx, &req.auth, now).await?;
        self.rate(&mut tx, &caller, RateClass::Send, now).await?;
        validate::message(&req.message, &self.limits)?;
        validate::files(&req.files_involved, &self.limits)?;

        // Redaction runs before anything is written: the clear text of a
        // secret never reaches the database, the log or the audit trail.
        let body = self.redactor.redact(&req.message);
        let mut kinds = body.kinds.clone();
        let mut files = Vec::with_capacity(req.files_involved.len());
        for f in &req.files_involved {
            let r = self.redactor.redact(f);
            kinds.extend(r.kinds.iter().cloned());
            files.push(r.text.into_owned());
        }
        kinds.sort();
        kinds.dedup();

        let recipients: Vec<String> = tx
            .participants(&caller.conversation.id)
            .await?
            .into_iter()
            .filter(|p| p.session_id != caller.participant.session_id)
            .map(|p| p.session_id)
            .collect();
        let seq = tx
            .insert_message(
                &NewMessage {
                    conversation_id: caller.conversation.id.clone(),
                    sender: caller.participant.session_id.clone(),
                    body: body.text.into_owned(),
                    action_type: req.action_type.as_str().to_owned(),
                    files,
                    redactions: kinds.clone(),
                    created_at: now,
                },
                &recipients,
            )
            .await?;
        self.audit(
            &mut tx,
            now,
            NewEntry {
                actor: caller.actor(),
                action: "message.send".into(),
                conversation_id: Some(caller.conversation.id.clone()),
                detail: json!({
                    "message_id": seq,
                    "bytes": req.message.len(),
                    "action_type": req.action_type.as_str(),
                    "files": req.files_involved.len(),
                    "redacted": kinds,
                    "to": recipients,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Sent {
            message_id: seq,
            redacted: kinds,
            sent_at: rfc3339(now),
        })
    }

    /// Returns the caller's unread messages, oldest first, and marks them
    /// read in the same transaction: each message is delivered exactly once.
    pub async fn check_messages(&self, auth: Auth) -> Result<Inbox> {
        let result = self.check_inner(&auth).await;
        if let Err(e) = &result {
            let actor = format!("{}/{}", auth.conversation_id, auth.session_id);
            self.audit_refusal("message.check", Some(&auth.conversation_id), actor, e)
                .await;
        }
        result
    }

    async fn check_inner(&self, auth: &Auth) -> Result<Inbox> {
        let mut tx = self.store.begin_write().await?;
        // Read the clock once the write lock is held, so timestamps follow
        // commit order across processes.
        let now = self.now();
        let caller = self.authenticate(&mut tx, auth, now).await?;
        self.rate(&mut tx, &caller, RateClass::Read, now).await?;
        let me = caller.participant.session_id.clone();
        let taken = tx
            .take_unread(&caller.conversation.id, &me, now, self.limits.max_batch)
            .await?;
        let remaining = if taken.len() == self.limits.max_batch {
            tx.count_unread(&caller.conversation.id, &me).await?
        } else {
            0
        };
        let roles: HashMap<String, String> = tx
            .participants(&caller.conversation.id)
            .await?
            .into_iter()
            .map(|p| (p.session_id, p.role))
            .collect();
        self.audit(
            &mut tx,
            now,
            NewEntry {
                actor: caller.actor(),
                action: "message.check".into(),
                conversation_id: Some(caller.conversation.id.clone()),
                detail: json!({
                    "delivered": taken.iter().map(|m| m.seq).collect::<Vec<_>>(),
                    "remaining": remaining,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        let messages = taken
            .into_iter()
            .map(|m| DeliveredMessage {
                seq: m.seq,
                from_role: roles.get(&m.sender).cloned().unwrap_or_else(|| m.sender.clone()),
                message: m.body,
                action_type: m.action_type,
                files_involved: m.files,
                sent_at: rfc3339(m.created_at),
                redacted: m.redactions,
            })
            .collect();
        Ok(Inbox { messages, remaining })
    }
}
