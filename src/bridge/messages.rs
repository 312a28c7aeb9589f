//! Sending and receiving messages.

use std::collections::HashMap;

use serde_json::json;

use super::handoff::{Handed, InHand, Receipt, ReceiptPart, Recipient};
use super::validate::OVERSEER_ROLE;
use super::{
    Access, ActionType, Bridge, Caller, DeliveredMessage, Error, History, Inbox, RateClass, Result, Stored,
    validate,
};
use crate::clock::rfc3339;
use crate::store::admin::OVERSEER_SENDER;
use crate::store::{Message, NewMessage, Store, Tx};

/// What `send_to_partner` needs.
#[derive(Debug)]
pub struct SendRequest {
    /// Who sends.
    pub auth: Access,
    /// The body, in clear; redacted before anything is stored.
    pub message: String,
    /// What the message is for.
    pub action_type: ActionType,
    /// Paths the message concerns; redacted too.
    pub files_involved: Vec<String>,
    /// The roles to address; `None` is every other participant.
    pub to: Option<Vec<String>>,
    /// The id of a message of this conversation this one answers.
    pub reply_to: Option<i64>,
}

impl SendRequest {
    /// A message to every other participant, as `send_to_partner` sends.
    pub fn to_all(auth: impl Into<Access>, message: impl Into<String>) -> Self {
        Self {
            auth: auth.into(),
            message: message.into(),
            action_type: ActionType::default(),
            files_involved: Vec::new(),
            to: None,
            reply_to: None,
        }
    }
}

impl<S: Store> Bridge<S> {
    /// Stores a redacted message for its recipients (every other
    /// participant unless `to` names some) and says for whom it was stored.
    pub async fn send_message(&self, req: SendRequest) -> Result<Stored> {
        let result = self.send_inner(&req).await;
        self.audited("message.send", &req.auth, result).await
    }

    async fn send_inner(&self, req: &SendRequest) -> Result<Stored> {
        let mut tx = self.store.begin_concurrent_write().await?;
        let caller = self.authenticate_to_add(&mut tx, &req.auth, self.now()).await?;
        // Read the clock once the conversation is locked, so a
        // conversation's timestamps follow its commit order across processes.
        let now = self.now();
        self.rate(&mut tx, &caller, RateClass::Send, now).await?;
        validate::message(&req.message, &self.limits)?;
        validate::files(&req.files_involved, &self.limits)?;
        let recipients = caller.recipients(req.to.as_deref())?;
        if let Some(seq) = req.reply_to {
            self.ensure_visible(&mut tx, &caller, seq).await?;
        }

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
        let message = NewMessage {
            conversation_id: caller.conversation.id.clone(),
            sender: caller.participant.session_id.clone(),
            body: body.text.into_owned(),
            action_type: req.action_type.as_str().to_owned(),
            files,
            redactions: kinds.clone(),
            reply_to: req.reply_to,
            created_at: now,
        };
        self.check_quotas(&mut tx, &caller, &message).await?;

        self.audit_follows(&mut tx, now);
        let seq = tx.insert_message(&message, &recipients).await?;
        self.audit_caller(
            &mut tx,
            now,
            &caller,
            "message.send",
            json!({
                "message_id": seq,
                "bytes": req.message.len(),
                "action_type": req.action_type.as_str(),
                "files": req.files_involved.len(),
                "redacted": kinds,
                "to": recipients,
                "reply_to": req.reply_to,
            }),
        )
        .await?;
        tx.commit().await?;
        let roles = caller.roles();
        Ok(Stored {
            message_id: seq,
            recipients: recipients.iter().map(|s| role_of(&roles, s)).collect(),
            redacted: kinds,
            stored_at: rfc3339(now),
        })
    }

    /// Refuses a message that would take the conversation past a quota.
    async fn check_quotas(&self, tx: &mut S::Tx, caller: &Caller, m: &NewMessage) -> Result<()> {
        self.check_quotas_of(tx, &caller.conversation.id, m).await
    }

    /// [`Self::check_quotas`] by conversation id, for senders that are not
    /// a seat (the overseer's posts count against the same quotas).
    pub(super) async fn check_quotas_of(
        &self,
        tx: &mut S::Tx,
        conversation_id: &str,
        m: &NewMessage,
    ) -> Result<()> {
        let (max_messages, max_bytes) = (
            self.limits.max_messages_per_conversation,
            self.limits.max_bytes_per_conversation,
        );
        if max_messages.is_none() && max_bytes.is_none() {
            return Ok(());
        }
        let usage = tx.usage(conversation_id).await?;
        if let Some(limit) = max_messages
            && usage.messages as u64 >= limit
        {
            return Err(Error::QuotaExceeded {
                reason: format!("this conversation holds {} already", usage.messages),
                quota: "max_messages_per_conversation",
                limit,
                unit: "messages",
            });
        }
        let adding = m.body.len() + serde_json::to_string(&m.files).map_or(0, |s| s.len());
        if let Some(limit) = max_bytes
            && usage.bytes as u64 + adding as u64 > limit
        {
            return Err(Error::QuotaExceeded {
                reason: format!(
                    "this message ({adding} bytes stored) would bring the conversation from {} to {} bytes",
                    usage.bytes,
                    usage.bytes as u64 + adding as u64
                ),
                quota: "max_bytes_per_conversation",
                limit,
                unit: "bytes",
            });
        }
        Ok(())
    }

    /// `reply_to` must name a message of this conversation the caller sent
    /// or received; anything else is refused without saying which.
    async fn ensure_visible(&self, tx: &mut S::Tx, caller: &Caller, seq: i64) -> Result<()> {
        let me = &caller.participant.session_id;
        let visible = tx
            .message(&caller.conversation.id, seq)
            .await?
            .is_some_and(|m| &m.sender == me || m.recipients.contains(me));
        if visible {
            Ok(())
        } else {
            Err(Error::invalid(
                "reply_to",
                "names no message of this conversation that you sent or received; pass the seq of one",
            ))
        }
    }

    /// Returns the caller's unread messages, oldest first, and marks them
    /// read in the same transaction: each message is delivered exactly once.
    /// For callers that hold the result in hand; a transport uses
    /// [`Bridge::check_messages_for`].
    pub async fn check_messages(&self, auth: impl Into<Access>) -> Result<Inbox> {
        let auth: Access = auth.into();
        Ok(self.check_messages_for(auth, &InHand).await?.value)
    }

    /// [`Bridge::check_messages`] for a caller behind a transport: if `to`
    /// has gone by the time the messages would be marked read, nothing is
    /// marked and [`Error::CallerGone`] is returned. The receipt lets the
    /// transport take the delivery back if it cannot write the response.
    pub async fn check_messages_for(
        &self,
        auth: impl Into<Access>,
        to: &impl Recipient,
    ) -> Result<Handed<Inbox>> {
        let auth: Access = auth.into();
        self.read_inbox(&auth, Read::Take, true, "message.check", to)
            .await
    }

    /// Returns the caller's unread messages without marking them read: a
    /// later `check_messages` still delivers them.
    pub async fn peek_messages(&self, auth: impl Into<Access>) -> Result<Inbox> {
        let auth: Access = auth.into();
        Ok(self
            .read_inbox(&auth, Read::Peek, true, "message.peek", &InHand)
            .await?
            .value)
    }

    /// The conversation's messages after a cursor, in both directions and
    /// whatever their delivery state; changes nothing but the audit trail.
    /// Lets an agent that restarted recover the context it already consumed.
    pub async fn read_history(
        &self,
        auth: impl Into<Access>,
        after_seq: i64,
        limit: usize,
    ) -> Result<History> {
        let auth: Access = auth.into();
        let result = self.history_inner(&auth, after_seq, limit).await;
        self.audited("message.history", &auth, result).await
    }

    async fn history_inner(&self, auth: &Access, after_seq: i64, limit: usize) -> Result<History> {
        let mut tx = self.store.begin_concurrent_write().await?;
        let now = self.now();
        let caller = self.authenticate(&mut tx, auth, now).await?;
        self.rate(&mut tx, &caller, RateClass::Read, now).await?;
        let limit = limit.clamp(1, self.limits.max_batch);
        // One extra row tells whether more follow, without a count query.
        let mut rows = tx
            .history_of(
                &caller.conversation.id,
                &caller.participant.session_id,
                after_seq,
                limit + 1,
            )
            .await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let roles = caller.roles();
        self.audit_caller(
            &mut tx,
            now,
            &caller,
            "message.history",
            json!({ "after_seq": after_seq, "returned": rows.len() }),
        )
        .await?;
        tx.commit().await?;
        let next_after_seq = rows.last().map(|m| m.seq).unwrap_or(after_seq);
        let messages = rows.into_iter().map(|m| delivered(m, &roles)).collect();
        Ok(History {
            messages,
            next_after_seq,
            more,
        })
    }

    pub(super) async fn read_inbox(
        &self,
        auth: &Access,
        read: Read,
        count_rate: bool,
        action: &str,
        to: &impl Recipient,
    ) -> Result<Handed<Inbox>> {
        let result = self.read_inbox_inner(auth, read, count_rate, action, to).await;
        match &result {
            // Not a refusal: the caller left; nothing changed.
            Err(Error::CallerGone) | Ok(_) => {}
            Err(e) => {
                self.audit_refusal(action, Some(auth.conversation_id()), auth.claimed_actor(), e)
                    .await;
            }
        }
        result
    }

    async fn read_inbox_inner(
        &self,
        auth: &Access,
        read: Read,
        count_rate: bool,
        action: &str,
        to: &impl Recipient,
    ) -> Result<Handed<Inbox>> {
        let mut tx = self.store.begin_concurrent_write().await?;
        let now = self.now();
        let caller = self.authenticate(&mut tx, auth, now).await?;
        if count_rate {
            self.rate(&mut tx, &caller, RateClass::Read, now).await?;
        }
        let me = caller.participant.session_id.clone();
        let taken = match read {
            Read::Take => {
                self.audit_follows(&mut tx, now);
                tx.take_unread(&caller.conversation.id, &me, now, self.limits.max_batch)
                    .await?
            }
            Read::Peek => {
                tx.peek_unread(&caller.conversation.id, &me, self.limits.max_batch)
                    .await?
            }
        };
        let remaining = if taken.len() == self.limits.max_batch {
            tx.count_unread(&caller.conversation.id, &me).await?
        } else {
            0
        };
        let roles = caller.roles();
        self.audit_caller(
            &mut tx,
            now,
            &caller,
            action,
            json!({
                "delivered": taken.iter().map(|m| m.seq).collect::<Vec<_>>(),
                "remaining": remaining,
            }),
        )
        .await?;
        let receipt = (read == Read::Take && !taken.is_empty()).then(|| Receipt {
            parts: vec![ReceiptPart {
                conversation_id: caller.conversation.id.clone(),
                session_id: me.clone(),
                seqs: taken.iter().map(|m| m.seq).collect(),
            }],
            delivered_at: now,
        });
        // The last moment to change our mind: marking read for a caller who
        // has gone would lose these messages. Dropping `tx` rolls back.
        if receipt.is_some() && to.is_gone() {
            return Err(Error::CallerGone);
        }
        tx.commit().await?;
        let messages = taken.into_iter().map(|m| delivered(m, &roles)).collect();
        Ok(Handed {
            value: Inbox { messages, remaining },
            receipt,
        })
    }
}

/// Whether reading marks messages delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// Deliver: mark read in the same transaction (exactly once).
    Take,
    /// Look only.
    Peek,
}

/// A stored message as its recipient sees it. `from_overseer` is derived
/// from the stored sender alone, which an agent's send always sets to its
/// own seat: nothing an agent writes (a role, a body, a file) can set it.
pub(super) fn delivered(m: Message, roles: &HashMap<String, String>) -> DeliveredMessage {
    let from_overseer = m.sender == OVERSEER_SENDER;
    DeliveredMessage {
        seq: m.seq,
        from_role: if from_overseer {
            OVERSEER_ROLE.to_owned()
        } else {
            role_of(roles, &m.sender)
        },
        from_overseer,
        to: m.recipients.iter().map(|s| role_of(roles, s)).collect(),
        reply_to: m.reply_to,
        conversation_id: m.conversation_id,
        message: m.body,
        action_type: m.action_type,
        files_involved: m.files,
        sent_at: rfc3339(m.created_at),
        redacted: m.redactions,
    }
}

/// A seat's role; the seat itself if the role is unknown (never happens
/// for a seat of the conversation).
pub(super) fn role_of(roles: &HashMap<String, String>, session_id: &str) -> String {
    roles
        .get(session_id)
        .cloned()
        .unwrap_or_else(|| session_id.to_owned())
}
