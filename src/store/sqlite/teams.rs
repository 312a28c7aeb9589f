//! The statements of team conversations: addressed messages, receipts,
//! per-recipient history, quotas' running totals and agents' seats. Plain
//! functions on [`SqliteTx`], which the [`crate::store::Tx`] impl calls, so
//! `tx.rs` keeps the statements every call runs and this file the rest.

use rusqlite::params;

use super::rows::{conversation, json_list, message, participant};
use super::tx::SqliteTx;
use crate::store::sealing::seal_message_field;
use crate::store::{AgentSeat, DeliveryState, Message, NewMessage, Result, Usage};

impl SqliteTx {
    /// Stores a message, one pending delivery per recipient, and moves the
    /// conversation's running totals forward, all in the caller's transaction.
    pub(super) fn insert_message_to(&self, m: &NewMessage, recipients: &[String]) -> Result<i64> {
        // Seat order, each once, whatever order the caller gave.
        let mut recipients = recipients.to_vec();
        recipients.sort();
        recipients.dedup();
        let files = json_list(&m.files);
        // The seq is part of the seals' associated data, so it is chosen
        // first: AUTOINCREMENT's next value, exact under BEGIN IMMEDIATE.
        let next: i64 = self
            .row(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0), \
                        coalesce((SELECT max(seq) FROM messages), 0)) + 1",
                [],
                |r| r.get(0),
            )?
            .unwrap_or(1);
        let key = self.data_key(&m.conversation_id)?;
        let seq = self
            .row(
                "INSERT INTO messages \
                 (seq, conversation_id, sender, body, action_type, files, redactions, recipients, reply_to, created_at) \
                 VALUES (?10, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING seq",
                params![
                    m.conversation_id,
                    m.sender,
                    seal_message_field(&key, &m.conversation_id, &m.sender, next, "body", &m.body),
                    m.action_type,
                    seal_message_field(&key, &m.conversation_id, &m.sender, next, "files", &files),
                    json_list(&m.redactions),
                    json_list(&recipients),
                    m.reply_to,
                    m.created_at,
                    next
                ],
                |r| r.get::<_, i64>(0),
            )?
            .ok_or_else(|| crate::store::Error::internal("INSERT ... RETURNING gave no row"))?;
        for r in &recipients {
            self.exec(
                "INSERT INTO deliveries (message_seq, conversation_id, recipient) VALUES (?1, ?2, ?3)",
                params![seq, m.conversation_id, r],
            )?;
        }
        self.exec(
            "UPDATE conversations SET message_count = message_count + 1, stored_bytes = stored_bytes + ?2 \
             WHERE id = ?1",
            params![m.conversation_id, stored_bytes(m, &files)],
        )?;
        Ok(seq)
    }

    pub(super) fn member_history(
        &self,
        conversation_id: &str,
        member: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        // The delivery row is found by its primary key (message_seq, recipient).
        self.sealed_rows(
            "SELECT m.*, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = m.conversation_id) AS dek FROM messages m \
             WHERE m.conversation_id = +?1 AND m.seq > +?3 \
               AND (m.sender = ?2 OR EXISTS \
                    (SELECT 1 FROM deliveries d WHERE d.message_seq = m.seq AND d.recipient = ?2)) \
             ORDER BY m.seq LIMIT +?4",
            params![conversation_id, member, after, limit as i64],
            message,
        )
    }

    pub(super) fn one_message(&self, conversation_id: &str, seq: i64) -> Result<Option<Message>> {
        self.sealed_row(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = messages.conversation_id) AS dek FROM messages WHERE seq = ?2 AND conversation_id = ?1",
            params![conversation_id, seq],
            message,
        )
    }

    pub(super) fn delivery_states(&self, seq: i64) -> Result<Vec<DeliveryState>> {
        self.rows(
            "SELECT recipient, delivered_at FROM deliveries WHERE message_seq = ?1 ORDER BY recipient",
            [seq],
            |r| {
                Ok(DeliveryState {
                    recipient: r.get(0)?,
                    read_at: r.get(1)?,
                })
            },
        )
    }

    pub(super) fn pending_per_recipient(&self, conversation_id: &str) -> Result<Vec<(String, i64)>> {
        self.rows(
            "SELECT recipient, count(*) FROM deliveries \
             WHERE conversation_id = ?1 AND delivered_at IS NULL GROUP BY recipient ORDER BY recipient",
            [conversation_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    pub(super) fn conversation_usage(&self, conversation_id: &str) -> Result<Usage> {
        Ok(self
            .row(
                "SELECT message_count, stored_bytes FROM conversations WHERE id = ?1",
                [conversation_id],
                |r| {
                    Ok(Usage {
                        messages: r.get(0)?,
                        bytes: r.get(1)?,
                    })
                },
            )?
            .unwrap_or_default())
    }

    pub(super) fn seats_of_agent(&self, agent_id: i64) -> Result<Vec<AgentSeat>> {
        self.rows(
            "SELECT c.id, c.created_at, c.expires_at, c.closed_at, p.* \
             FROM participants p JOIN conversations c ON c.id = p.conversation_id \
             WHERE p.agent_id = ?1 ORDER BY c.created_at, c.id",
            [agent_id],
            |r| {
                Ok(AgentSeat {
                    conversation: conversation(r)?,
                    participant: participant(r)?,
                })
            },
        )
    }
}

/// What a message adds to its conversation's byte quota: the stored body
/// and paths, as they are stored.
fn stored_bytes(m: &NewMessage, files_json: &str) -> i64 {
    (m.body.len() + files_json.len()) as i64
}
