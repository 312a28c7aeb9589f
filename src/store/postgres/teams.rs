//! The statements of team conversations on PostgreSQL: addressed messages,
//! receipts, per-recipient history, quotas' running totals and agents'
//! seats (the same statements as `store/sqlite/teams.rs`). Plain functions
//! on [`PgTx`], which the [`crate::store::Tx`] impl calls.

use super::rows::{conversation, json_list, message, participant};
use super::tx::{NEXT_MESSAGE, PgTx};
use crate::store::sealing::seal_message_field;
use crate::store::{AgentSeat, DeliveryState, Error, Message, NewMessage, Result, Usage};

impl PgTx {
    /// Stores a message, one pending delivery per recipient, and moves the
    /// conversation's running totals forward: one statement, one round trip,
    /// in the caller's transaction.
    pub(super) async fn insert_message_to(&mut self, m: &NewMessage, recipients: &[String]) -> Result<i64> {
        let files = json_list(&m.files);
        // The seq is part of the seals' associated data, so it is taken
        // first: fetched with the row lock by `conversation_for_update` on
        // the agents' path, here otherwise (the overseer's exclusive ones).
        let (wrapped, seq) = match self.next_message.take() {
            Some((id, wrapped, seq)) if id == m.conversation_id => (wrapped, seq),
            _ => {
                let row = self
                    .row(NEXT_MESSAGE, &[&m.conversation_id], |r| {
                        Ok((r.try_get::<_, Option<String>>(0)?, r.try_get::<_, i64>(1)?))
                    })
                    .await?;
                row.ok_or_else(|| Error::internal("nextval gave no row"))?
            }
        };
        let wrapped = wrapped.ok_or(crate::seal::Error::NoDataKey)?;
        let key = self.keys.unwrap(&wrapped, &m.conversation_id)?;
        let bytes = stored_bytes(m, &files);
        // Seat order, each once, whatever order the caller gave (as the
        // SQLite backend stores them).
        let mut recipients = recipients.to_vec();
        recipients.sort();
        recipients.dedup();
        let rows = self
            .rows_then_tail(
            "WITH m AS ( \
               INSERT INTO messages \
               (seq, conversation_id, sender, body, action_type, files, redactions, recipients, reply_to, created_at) \
               VALUES ($12, $1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq), \
             d AS ( \
               INSERT INTO deliveries (message_seq, conversation_id, recipient) \
               SELECT m.seq, $1, r FROM m, unnest($10::text[]) AS r), \
             c AS ( \
               UPDATE conversations SET message_count = message_count + 1, stored_bytes = stored_bytes + $11 \
               WHERE id = $1) \
             SELECT seq FROM m",
            &[
                &m.conversation_id,
                &m.sender,
                &seal_message_field(&key, &m.conversation_id, &m.sender, seq, "body", &m.body),
                &m.action_type,
                &seal_message_field(&key, &m.conversation_id, &m.sender, seq, "files", &files),
                &json_list(&m.redactions),
                &json_list(&recipients),
                &m.reply_to,
                &m.created_at,
                &recipients,
                &bytes,
                &seq,
            ],
        )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::internal("INSERT ... RETURNING gave no row"))?;
        Ok(row.try_get::<_, i64>(0)?)
    }

    pub(super) async fn member_history(
        &self,
        conversation_id: &str,
        member: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        // The delivery row is found by its primary key (message_seq, recipient).
        self.sealed_rows(
            "SELECT m.*, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = m.conversation_id) AS dek FROM messages m \
             WHERE m.conversation_id = $1 AND m.seq > $3 \
               AND (m.sender = $2 OR EXISTS \
                    (SELECT 1 FROM deliveries d WHERE d.message_seq = m.seq AND d.recipient = $2)) \
             ORDER BY m.seq LIMIT $4",
            &[&conversation_id, &member, &after, &(limit as i64)],
            message,
        )
        .await
    }

    pub(super) async fn one_message(&self, conversation_id: &str, seq: i64) -> Result<Option<Message>> {
        self.sealed_row(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = messages.conversation_id) AS dek FROM messages WHERE seq = $2 AND conversation_id = $1",
            &[&conversation_id, &seq],
            message,
        )
        .await
    }

    pub(super) async fn delivery_states(&self, seq: i64) -> Result<Vec<DeliveryState>> {
        self.rows(
            "SELECT recipient, delivered_at FROM deliveries WHERE message_seq = $1 ORDER BY recipient",
            &[&seq],
            |r| {
                Ok(DeliveryState {
                    recipient: r.try_get(0)?,
                    read_at: r.try_get(1)?,
                })
            },
        )
        .await
    }

    pub(super) async fn pending_per_recipient(&self, conversation_id: &str) -> Result<Vec<(String, i64)>> {
        self.rows(
            "SELECT recipient, count(*) FROM deliveries \
             WHERE conversation_id = $1 AND delivered_at IS NULL GROUP BY recipient ORDER BY recipient",
            &[&conversation_id],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )
        .await
    }

    pub(super) async fn conversation_usage(&self, conversation_id: &str) -> Result<Usage> {
        Ok(self
            .row(
                "SELECT message_count, stored_bytes FROM conversations WHERE id = $1",
                &[&conversation_id],
                |r| {
                    Ok(Usage {
                        messages: r.try_get(0)?,
                        bytes: r.try_get(1)?,
                    })
                },
            )
            .await?
            .unwrap_or_default())
    }

    pub(super) async fn seats_of_agent(&self, agent_id: i64) -> Result<Vec<AgentSeat>> {
        self.rows(
            "SELECT c.id, c.created_at, c.expires_at, c.closed_at, p.* \
             FROM participants p JOIN conversations c ON c.id = p.conversation_id \
             WHERE p.agent_id = $1 ORDER BY c.created_at, c.id",
            &[&agent_id],
            |r| {
                Ok(AgentSeat {
                    conversation: conversation(r)?,
                    participant: participant(r)?,
                })
            },
        )
        .await
    }
}

/// What a message adds to its conversation's byte quota: the stored body
/// and paths, as they are stored (the same count as the SQLite backend's).
fn stored_bytes(m: &NewMessage, files_json: &str) -> i64 {
    (m.body.len() + files_json.len()) as i64
}
