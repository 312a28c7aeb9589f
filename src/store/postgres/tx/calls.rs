//! The use cases' statements: [`Tx`] for [`PgTx`].

use super::super::rows::{RowResult, audit_entry, conversation, message, participant, status};
use super::{Mode, Params, PgTx, rate_lock_id};
use crate::audit;
use crate::clock::Millis;
use crate::store::sealing::{open_all, seal_status};
use crate::store::{
    AgentSeat, AuditTail, Conversation, DeliveryState, Message, NewMessage, Participant, RefusalKey,
    RefusalTally, Result, Status, Tx, Usage,
};

impl Tx for PgTx {
    async fn reseal_batch(&mut self, limit: i64) -> Result<u64> {
        self.reseal(limit).await
    }

    async fn resealed(&mut self) -> Result<bool> {
        self.reseal_done().await
    }

    async fn commit(mut self) -> Result<()> {
        // A write tells every server's listener (see `listen`); NOTIFY is
        // delivered at COMMIT and only if it commits. On an error the
        // transaction stays with `self`, whose drop rolls it back.
        let end = if self.is_write() {
            "NOTIFY mcp_bridge_changes; COMMIT"
        } else {
            "COMMIT"
        };
        self.finish(end).await?;
        // Committed: the connection goes back to the pool as it is.
        drop(self.conn.take());
        self.sink.publish();
        Ok(())
    }

    async fn insert_conversation(&mut self, c: &Conversation) -> Result<()> {
        self.exec(
            "INSERT INTO conversations (id, created_at, expires_at, closed_at) VALUES ($1, $2, $3, $4)",
            &[&c.id, &c.created_at, &c.expires_at, &c.closed_at],
        )
        .await?;
        self.exec(
            "INSERT INTO conversation_keys (conversation_id, wrapped) VALUES ($1, $2)",
            &[&c.id, &self.new_wrapped_key(&c.id).await?],
        )
        .await?;
        Ok(())
    }

    async fn conversation(&mut self, id: &str) -> Result<Option<Conversation>> {
        self.row(
            "SELECT id, created_at, expires_at, closed_at FROM conversations WHERE id = $1",
            &[&id],
            conversation,
        )
        .await
    }

    async fn conversation_with_participants(
        &mut self,
        id: &str,
    ) -> Result<Option<(Conversation, Vec<Participant>)>> {
        Ok(self
            .seated_conversation(WITH_PARTICIPANTS, id)
            .await?
            .map(|(c, seats, _)| (c, seats)))
    }

    async fn conversation_for_update(
        &mut self,
        id: &str,
    ) -> Result<Option<(Conversation, Vec<Participant>)>> {
        if self.mode != Mode::Concurrent {
            return self.conversation_with_participants(id).await;
        }
        // The data key and the next seq ride in the same round trip, after
        // the row lock (statements of a pipeline run in order): a message
        // added under this lock is sealed for the seq it will have.
        self.keep_lock_order();
        self.send_held().await?;
        let conn = self.client()?;
        let (locked, next) = tokio::join!(
            conn.prepare_cached(WITH_PARTICIPANTS_FOR_UPDATE),
            conn.prepare_cached(NEXT_MESSAGE)
        );
        let (locked, next) = (locked?, next?);
        let by_id: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
        let (opened, rows, next) =
            tokio::join!(biased; self.open(), conn.query(&locked, &by_id), conn.query(&next, &by_id));
        opened?;
        let (rows, next) = (rows?, next?);
        if let Some(r) = next.first() {
            self.next_message = Some((id.to_owned(), r.try_get(0)?, r.try_get(1)?));
        }
        let found = seated(&rows)?;
        Ok(found.map(|(c, seats, usage)| {
            self.locked_usage = Some((c.id.clone(), usage));
            (c, seats)
        }))
    }

    async fn insert_participant(&mut self, p: &Participant) -> Result<()> {
        self.exec(
            "INSERT INTO participants \
             (conversation_id, session_id, role, token_hash, agent_id, token_created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &p.conversation_id,
                &p.session_id,
                &p.role,
                &p.token_hash.as_ref().map(|h| &h.0),
                &p.agent_id,
                &p.token_created_at,
                &p.revoked_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn participant(&mut self, conversation_id: &str, session_id: &str) -> Result<Option<Participant>> {
        self.row(
            "SELECT * FROM participants WHERE conversation_id = $1 AND session_id = $2",
            &[&conversation_id, &session_id],
            participant,
        )
        .await
    }

    async fn participants(&mut self, conversation_id: &str) -> Result<Vec<Participant>> {
        self.rows(
            "SELECT * FROM participants WHERE conversation_id = $1 ORDER BY session_id",
            &[&conversation_id],
            participant,
        )
        .await
    }

    async fn insert_message(&mut self, m: &NewMessage, recipients: &[String]) -> Result<i64> {
        // The conversation's totals change with it.
        self.locked_usage = None;
        self.insert_message_to(m, recipients).await
    }

    async fn take_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<Message>> {
        // Exactly-once across servers: this runs under the write lock, so no
        // other transaction can deliver these rows between the inner SELECT
        // and the UPDATE; `delivered_at IS NULL` is checked again by the
        // UPDATE itself all the same.
        let rows = self
            .rows_then_tail(
            "WITH taken AS ( \
               UPDATE deliveries SET delivered_at = $3 \
               WHERE conversation_id = $1 AND recipient = $2 AND delivered_at IS NULL \
                 AND message_seq IN ( \
                   SELECT message_seq FROM deliveries \
                   WHERE conversation_id = $1 AND recipient = $2 AND delivered_at IS NULL \
                   ORDER BY message_seq LIMIT $4) \
               RETURNING message_seq) \
             SELECT m.*, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = m.conversation_id) AS dek FROM messages m JOIN taken t ON m.seq = t.message_seq ORDER BY m.seq",
                &[&conversation_id, &recipient, &now, &(limit as i64)],
            )
            .await?;
        let sealed = rows.iter().map(message).collect::<RowResult<Vec<_>>>()?;
        Ok(open_all(&self.keys, sealed)?)
    }

    async fn return_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
        seqs: &[i64],
        delivered_at: Millis,
    ) -> Result<u64> {
        self.exec(
            "UPDATE deliveries SET delivered_at = NULL \
             WHERE conversation_id = $1 AND recipient = $2 AND message_seq = ANY($3) AND delivered_at = $4",
            &[&conversation_id, &recipient, &seqs, &delivered_at],
        )
        .await
    }

    async fn peek_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.sealed_rows(
            "SELECT m.*, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = m.conversation_id) AS dek FROM deliveries d JOIN messages m ON m.seq = d.message_seq \
             WHERE d.conversation_id = $1 AND d.recipient = $2 AND d.delivered_at IS NULL \
             ORDER BY d.message_seq LIMIT $3",
            &[&conversation_id, &recipient, &(limit as i64)],
            message,
        )
        .await
    }

    async fn history_after(
        &mut self,
        conversation_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.sealed_rows(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = messages.conversation_id) AS dek FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&conversation_id, &after, &(limit as i64)],
            message,
        )
        .await
    }

    async fn history_of(
        &mut self,
        conversation_id: &str,
        member: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.member_history(conversation_id, member, after, limit).await
    }

    async fn message(&mut self, conversation_id: &str, seq: i64) -> Result<Option<Message>> {
        self.one_message(conversation_id, seq).await
    }

    async fn receipts(&mut self, seq: i64) -> Result<Vec<DeliveryState>> {
        self.delivery_states(seq).await
    }

    async fn unread_by_recipient(&mut self, conversation_id: &str) -> Result<Vec<(String, i64)>> {
        self.pending_per_recipient(conversation_id).await
    }

    async fn usage(&mut self, conversation_id: &str) -> Result<Usage> {
        match &self.locked_usage {
            Some((id, usage)) if id == conversation_id => Ok(*usage),
            _ => self.conversation_usage(conversation_id).await,
        }
    }

    async fn agent_seats(&mut self, agent_id: i64) -> Result<Vec<AgentSeat>> {
        self.seats_of_agent(agent_id).await
    }

    async fn statuses(&mut self, conversation_id: &str) -> Result<Vec<Status>> {
        self.sealed_rows(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = status.conversation_id) AS dek FROM status WHERE conversation_id = $1 ORDER BY session_id",
            &[&conversation_id],
            status,
        )
        .await
    }

    async fn count_unread(&mut self, conversation_id: &str, recipient: &str) -> Result<i64> {
        // May follow a take that read the audit chain's tail already (see
        // `Tx::audit_tail_next`): a plain read takes no row lock, so it
        // cannot wait for a transaction that waits for the chain.
        let rows = self
            .query_after(
                None,
                "SELECT count(*) FROM deliveries \
                 WHERE conversation_id = $1 AND recipient = $2 AND delivered_at IS NULL",
                &[&conversation_id, &recipient],
            )
            .await?;
        Ok(rows.first().map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
    }

    async fn upsert_status(&mut self, s: &Status) -> Result<()> {
        let note = match &s.note {
            Some(_) => seal_status(&self.data_key(&s.conversation_id).await?, s),
            None => None,
        };
        self.exec(
            "INSERT INTO status (conversation_id, session_id, status, note, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (conversation_id, session_id) DO UPDATE SET \
             status = excluded.status, note = excluded.note, heartbeat_at = excluded.heartbeat_at",
            &[
                &s.conversation_id,
                &s.session_id,
                &s.status,
                &note,
                &s.heartbeat_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn status(&mut self, conversation_id: &str, session_id: &str) -> Result<Option<Status>> {
        self.sealed_row(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = status.conversation_id) AS dek FROM status WHERE conversation_id = $1 AND session_id = $2",
            &[&conversation_id, &session_id],
            status,
        )
        .await
    }

    async fn rate_events(&mut self, key: &str, since: Millis) -> Result<Vec<Millis>> {
        // A concurrent transaction counts under the key's lock, held until
        // it has recorded its own event and committed: the count is exact.
        let id = rate_lock_id(key);
        let lock = self.rate_lock(&id).await?;
        let rows = self
            .query_after(
                lock,
                "SELECT at FROM rate_events WHERE key = $1 AND at > $2 ORDER BY at",
                &[&key, &since],
            )
            .await?;
        Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<Vec<_>, _>>()?)
    }

    async fn count_and_record_rate_event(
        &mut self,
        key: &str,
        since: Millis,
        at: Millis,
        forget_before: Millis,
    ) -> Result<Vec<Millis>> {
        // All parts see the statement's one snapshot: the SELECT counts the
        // events from before this one, and the new event is never pruned.
        let id = rate_lock_id(key);
        let lock = self.rate_lock(&id).await?;
        let rows = self
            .query_after(
                lock,
                "WITH gone AS (DELETE FROM rate_events WHERE key = $1 AND at <= $4), \
                 added AS (INSERT INTO rate_events (key, at) VALUES ($1, $3)) \
                 SELECT at FROM rate_events WHERE key = $1 AND at > $2 ORDER BY at",
                &[&key, &since, &at, &forget_before],
            )
            .await?;
        Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<Vec<_>, _>>()?)
    }

    async fn record_rate_event(&mut self, key: &str, at: Millis, forget_before: Millis) -> Result<()> {
        // Both parts see the same snapshot: the new event is never pruned.
        self.exec(
            "WITH gone AS (DELETE FROM rate_events WHERE key = $1 AND at <= $3) \
             INSERT INTO rate_events (key, at) VALUES ($1, $2)",
            &[&key, &at, &forget_before],
        )
        .await?;
        Ok(())
    }

    async fn audit_head(&mut self) -> Result<Option<(i64, String)>> {
        if let Some(held) = self.newest_held() {
            return Ok(Some(held));
        }
        let needed = self.claim_chain();
        let lock = self.chain_lock(needed).await?;
        let rows = self.query_after(lock, AUDIT_HEAD, &[]).await?;
        Ok(rows.first().map(head_of).transpose()?)
    }

    async fn insert_audit(&mut self, e: &audit::Entry) -> Result<()> {
        if self.sink.file.is_some() {
            if self.sink.first.is_none() {
                self.sink.first = if e.seq == 1 {
                    Some(e.hash.clone())
                } else {
                    let rows = self
                        .query_after(None, "SELECT hash FROM audit WHERE seq = 1", &[])
                        .await?;
                    rows.first().map(|r| r.try_get(0)).transpose()?
                };
            }
            self.sink.newest = Some((e.seq, e.hash.clone()));
        }
        // Sent with the next statement or the commit (see the module's doc).
        self.hold(e.clone());
        Ok(())
    }

    fn audit_tail_next(&mut self, opened_by: Millis) {
        self.tail_next = Some(opened_by);
    }

    async fn audit_tail(&mut self, opened_by: Millis) -> Result<AuditTail> {
        self.tail_next = None;
        let rows = match self.prefetched_tail.take() {
            // Read under the chain's lock with the last statement. The
            // tallies it removed are this transaction's to chain, whatever
            // was asked now; the use cases ask for what they announced.
            Some((announced, rows)) => {
                debug_assert_eq!(announced, opened_by, "an audit tail announced for another moment");
                rows
            }
            None => {
                self.send_held().await?;
                let needed = self.claim_chain();
                let lock = self.chain_lock(needed).await?;
                let conn = self.client()?;
                let tail = conn.prepare_cached(TALLIES_AND_HEAD).await?;
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&opened_by];
                self.pipeline(conn, lock, conn.query(&tail, &params)).await?
            }
        };
        let mut tallies = Vec::new();
        let mut head = None;
        for r in &rows {
            match r.try_get::<_, Option<i64>>("head_seq")? {
                Some(seq) => head = Some((seq, r.try_get("head_hash")?)),
                None => tallies.push(tally(r)?),
            }
        }
        Ok((sorted(tallies), head))
    }

    async fn tally_refusal(&mut self, key: &RefusalKey, now: Millis) -> Result<bool> {
        let needed = self.claim_chain();
        let lock = self.chain_lock(needed).await?;
        let rows = self
            .query_after(
                lock,
                "INSERT INTO refusal_tally (actor, action, code, conversation_id, window_start, repeats) \
                 VALUES ($1, $2, $3, $4, $5, 0) \
                 ON CONFLICT (actor, action, code, conversation_id) DO UPDATE SET \
                 repeats = refusal_tally.repeats + 1, \
                 first_at = coalesce(refusal_tally.first_at, $5), last_at = $5 \
                 RETURNING repeats",
                &[
                    &key.actor,
                    &key.action,
                    &key.code,
                    &key.conversation_id.as_deref().unwrap_or(""),
                    &now,
                ],
            )
            .await?;
        let repeats: Option<i64> = rows.first().map(|r| r.try_get(0)).transpose()?;
        Ok(repeats == Some(0))
    }

    async fn take_refusal_tallies(&mut self, opened_by: Millis) -> Result<Vec<RefusalTally>> {
        let needed = self.claim_chain();
        let lock = self.chain_lock(needed).await?;
        let rows = self.query_after(lock, TAKE_TALLIES, &[&opened_by]).await?;
        let tallies = rows.iter().map(tally).collect::<Result<Vec<_>, _>>()?;
        Ok(sorted(tallies))
    }

    async fn audit_page(&mut self, after: i64, limit: i64) -> Result<Vec<audit::Entry>> {
        self.rows(
            "SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit],
            audit_entry,
        )
        .await
    }
}

/// The `DELETE` of the refusal tallies whose window has closed, returning
/// them: [`TAKE_TALLIES`] alone, and the first half of [`TALLIES_AND_HEAD`].
macro_rules! delete_tallies {
    () => {
        "DELETE FROM refusal_tally WHERE window_start <= $1 \
         RETURNING actor, action, code, conversation_id, window_start, repeats, first_at, last_at"
    };
}

/// The refusal tallies whose window has closed, removed.
const TAKE_TALLIES: &str = delete_tallies!();

/// [`TAKE_TALLIES`] and [`AUDIT_HEAD`] in one statement: the tallies'
/// rows, then the head's (the one with `head_seq` set). The head is read
/// in the statement's snapshot, taken after the chain's lock was granted.
pub(super) const TALLIES_AND_HEAD: &str = concat!(
    "WITH t AS (",
    delete_tallies!(),
    ") SELECT actor, action, code, conversation_id, window_start, repeats, first_at, last_at, \
     NULL::bigint AS head_seq, NULL::text AS head_hash FROM t \
     UNION ALL \
     SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, seq, hash \
     FROM (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) h"
);

/// The audit chain's newest entry.
const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";

/// A conversation with its seats (none: one row of nulls) and totals.
const WITH_PARTICIPANTS: &str = "SELECT c.id AS conv_id, c.created_at AS conv_created_at, \
     c.expires_at AS conv_expires_at, c.closed_at AS conv_closed_at, \
     c.message_count AS conv_messages, c.stored_bytes AS conv_bytes, p.* \
     FROM conversations c LEFT JOIN participants p ON p.conversation_id = c.id \
     WHERE c.id = $1 ORDER BY p.session_id";

/// A conversation's wrapped data key and a seq for its next message.
pub(in crate::store::postgres) const NEXT_MESSAGE: &str = "SELECT k.wrapped, nextval(pg_get_serial_sequence('messages', 'seq')) \
     FROM (SELECT $1::text AS id) c LEFT JOIN conversation_keys k ON k.conversation_id = c.id";

/// [`WITH_PARTICIPANTS`], locking the conversation's row (not its seats').
const WITH_PARTICIPANTS_FOR_UPDATE: &str = "SELECT c.id AS conv_id, c.created_at AS conv_created_at, \
     c.expires_at AS conv_expires_at, c.closed_at AS conv_closed_at, \
     c.message_count AS conv_messages, c.stored_bytes AS conv_bytes, p.* \
     FROM conversations c LEFT JOIN participants p ON p.conversation_id = c.id \
     WHERE c.id = $1 ORDER BY p.session_id FOR UPDATE OF c";

fn head_of(r: &tokio_postgres::Row) -> Result<(i64, String), tokio_postgres::Error> {
    Ok((r.try_get(0)?, r.try_get(1)?))
}

fn tally(r: &tokio_postgres::Row) -> Result<RefusalTally, tokio_postgres::Error> {
    let conversation_id: String = r.try_get("conversation_id")?;
    Ok(RefusalTally {
        key: RefusalKey {
            actor: r.try_get("actor")?,
            action: r.try_get("action")?,
            code: r.try_get("code")?,
            conversation_id: (!conversation_id.is_empty()).then_some(conversation_id),
        },
        window_start: r.try_get("window_start")?,
        repeats: r.try_get("repeats")?,
        first_at: r.try_get("first_at")?,
        last_at: r.try_get("last_at")?,
    })
}

/// `RETURNING` gives no order; the trail should read the same whichever
/// server flushes.
fn sorted(mut tallies: Vec<RefusalTally>) -> Vec<RefusalTally> {
    tallies.sort_by(|a, b| {
        (a.window_start, &a.key.action, &a.key.actor).cmp(&(b.window_start, &b.key.action, &b.key.actor))
    });
    tallies
}

impl PgTx {
    /// A conversation, its seats and its totals, by `sql`
    /// ([`WITH_PARTICIPANTS`] or its locking twin).
    async fn seated_conversation(&self, sql: &str, id: &str) -> Result<Option<Seated>> {
        self.keep_lock_order();
        let rows = self.query_after(None, sql, &[&id]).await?;
        seated(&rows)
    }

    /// The rows of `first` and the conversation `id` with its seats, the two
    /// queries sent together (one round trip) unless the transaction is
    /// exclusive. `lock` locks the conversation's row in a concurrent
    /// transaction, as [`Tx::conversation_for_update`] does.
    pub(in crate::store::postgres) async fn rows_and_conversation(
        &mut self,
        first: &str,
        params: Params<'_>,
        id: &str,
        lock: bool,
    ) -> Result<(Vec<tokio_postgres::Row>, Option<(Conversation, Vec<Participant>)>)> {
        let lock = lock && self.mode == Mode::Concurrent;
        let sql = if lock {
            WITH_PARTICIPANTS_FOR_UPDATE
        } else {
            WITH_PARTICIPANTS
        };
        if self.mode == Mode::Exclusive {
            let rows = self.query_after(None, first, params).await?;
            let found = self.seated_conversation(sql, id).await?;
            return Ok((rows, found.map(|(c, seats, _)| (c, seats))));
        }
        self.keep_lock_order();
        self.send_held().await?;
        let conn = self.client()?;
        let (first, second, third) = tokio::join!(
            conn.prepare_cached(first),
            conn.prepare_cached(sql),
            conn.prepare_cached(NEXT_MESSAGE)
        );
        let (first, second, third) = (first?, second?, third?);
        let by_id: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
        // Under the row lock, the data key and next seq come along (see
        // `conversation_for_update`).
        let next = async {
            if lock {
                conn.query(&third, &by_id).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let (opened, rows, conversation, next) = tokio::join!(biased;
            self.open(), conn.query(&first, params), conn.query(&second, &by_id), next);
        opened?;
        let (rows, conversation) = (rows?, conversation?);
        if let Some(r) = next?.as_ref().and_then(|rows| rows.first()) {
            self.next_message = Some((id.to_owned(), r.try_get(0)?, r.try_get(1)?));
        }
        let found = seated(&conversation)?;
        Ok((
            rows,
            found.map(|(c, seats, usage)| {
                if lock {
                    self.locked_usage = Some((c.id.clone(), usage));
                }
                (c, seats)
            }),
        ))
    }
}

/// A conversation, its seats and its totals.
type Seated = (Conversation, Vec<Participant>, Usage);

/// The rows of [`WITH_PARTICIPANTS`] (or its twin) as one conversation.
fn seated(rows: &[tokio_postgres::Row]) -> Result<Option<Seated>> {
    let mut found: Option<Seated> = None;
    for r in rows {
        let conv = Conversation {
            id: r.try_get("conv_id")?,
            created_at: r.try_get("conv_created_at")?,
            expires_at: r.try_get("conv_expires_at")?,
            closed_at: r.try_get("conv_closed_at")?,
        };
        let usage = Usage {
            messages: r.try_get("conv_messages")?,
            bytes: r.try_get("conv_bytes")?,
        };
        let entry = found.get_or_insert_with(|| (conv, Vec::new(), usage));
        if r.try_get::<_, Option<String>>("session_id")?.is_some() {
            entry.1.push(participant(r)?);
        }
    }
    Ok(found)
}
