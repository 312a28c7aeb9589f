//! [`Tx`] for PostgreSQL: the use cases' statements, each a prepared
//! statement cached on its pooled connection, most of them one round trip
//! (a send's message and deliveries, a take's select and update, a rate
//! event's prune and insert are each one statement).

use std::future::Future;
use std::sync::Arc;

use deadpool_postgres::Object;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::rows::{RowResult, audit_entry, conversation, message, participant, status};
use crate::audit::{self, Head, HeadFile};
use crate::clock::Millis;
use crate::store::{
    AgentSeat, Conversation, DeliveryState, Error, Message, NewMessage, Participant, RefusalKey,
    RefusalTally, Result, Status, Tx, Usage,
};

/// Statement parameters, as `tokio-postgres` takes them.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A PostgreSQL transaction on one pooled connection; rolls back on drop.
pub struct PgTx {
    /// `None` once committed (or handed to the rollback task).
    conn: Option<Object>,
    /// Took the write lock; its commit notifies the other servers.
    write: bool,
    sink: HeadSink,
}

impl std::fmt::Debug for PgTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTx")
            .field("write", &self.write)
            .finish_non_exhaustive()
    }
}

impl Drop for PgTx {
    /// Not committed (an error, or the task was cancelled): nothing of it may
    /// stay, and its connection must not serve anyone mid-transaction. Drop
    /// cannot wait, so a task takes the connection, runs `ROLLBACK` and only
    /// then lets it back into the pool; without a runtime, or if that task is
    /// itself dropped or fails, the connection is closed instead, and the
    /// server rolls back (and releases the write lock) when it sees it go.
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // Guarded before the spawn: a task dropped unpolled (the
                // runtime shutting down) closes the connection too.
                runtime.spawn(roll_back(CloseUnlessReturned(Some(conn))));
            }
            Err(_) => drop(Object::take(conn)),
        }
    }
}

/// Closes the connection it still holds when dropped.
struct CloseUnlessReturned(Option<Object>);

impl Drop for CloseUnlessReturned {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(Object::take(conn));
        }
    }
}

async fn roll_back(mut held: CloseUnlessReturned) {
    let rolled_back = match &held.0 {
        Some(conn) => conn.batch_execute("ROLLBACK").await,
        None => return,
    };
    match rolled_back {
        // Outside any transaction now: back to the pool.
        Ok(()) => drop(held.0.take()),
        Err(e) => tracing::warn!(error = %e, "rolling back a transaction failed; closing its connection"),
    }
}

/// The audit head a write transaction will publish once it has committed.
#[derive(Debug, Default)]
pub(super) struct HeadSink {
    file: Option<Arc<HeadFile>>,
    /// Hash of entry 1, read once per transaction.
    first: Option<String>,
    /// The newest entry this transaction appended.
    newest: Option<(i64, String)>,
}

impl HeadSink {
    pub(super) fn new(file: &Option<Arc<HeadFile>>) -> Self {
        Self {
            file: file.clone(),
            ..Self::default()
        }
    }

    /// Called after the commit, never before: the file may lag behind the
    /// database, never run ahead of it. A failure is logged; the commit stands.
    fn publish(&mut self) {
        let (Some(file), Some(first), Some((seq, hash))) =
            (self.file.take(), self.first.take(), self.newest.take())
        else {
            return;
        };
        if let Err(e) = file.advance(&Head { first, seq, hash }) {
            tracing::warn!(error = %e, "could not move the audit head file forward");
        }
    }
}

impl PgTx {
    pub(super) fn new(conn: Object, write: bool, sink: HeadSink) -> Self {
        Self {
            conn: Some(conn),
            write,
            sink,
        }
    }

    fn client(&self) -> Result<&Object> {
        self.conn
            .as_ref()
            .ok_or_else(|| Error::internal("statement on a finished transaction"))
    }

    /// Runs simple statements (no parameters) in one round trip.
    pub(super) async fn batch(&self, sql: &str) -> Result<()> {
        Ok(self.client()?.batch_execute(sql).await?)
    }

    /// Runs a statement; returns the number of rows it changed.
    pub(super) async fn exec(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        let conn = self.client()?;
        let stmt = conn.prepare_cached(sql).await?;
        self.atomic(conn, conn.execute(&stmt, params)).await
    }

    /// The first row of a query, if any.
    pub(super) async fn row<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl FnOnce(&Row) -> RowResult<T>,
    ) -> Result<Option<T>> {
        let conn = self.client()?;
        let stmt = conn.prepare_cached(sql).await?;
        match self.atomic(conn, conn.query_opt(&stmt, params)).await? {
            Some(r) => Ok(Some(map(&r)?)),
            None => Ok(None),
        }
    }

    /// Every row of a query.
    pub(super) async fn rows<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl FnMut(&Row) -> RowResult<T>,
    ) -> Result<Vec<T>> {
        let conn = self.client()?;
        let stmt = conn.prepare_cached(sql).await?;
        let rows = self.atomic(conn, conn.query(&stmt, params)).await?;
        Ok(rows.iter().map(map).collect::<RowResult<Vec<T>>>()?)
    }

    /// Runs one statement of a write transaction with SQLite's
    /// statement-level atomicity: a statement that fails (a duplicate id, a
    /// refused seat) changes nothing, and the transaction with its earlier
    /// rows goes on. PostgreSQL would instead abort the whole transaction,
    /// so each statement runs after a `SAVEPOINT`, sent in the same round
    /// trip (requests polled together are pipelined; `biased` sends the
    /// savepoint first), and a failure rolls back to it. Read transactions
    /// write nothing and run their statements as they are.
    async fn atomic<T>(
        &self,
        conn: &Object,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        if !self.write {
            return Ok(statement.await?);
        }
        let (mark, result) = tokio::join!(biased; conn.batch_execute("SAVEPOINT statement"), statement);
        mark?;
        match result {
            Ok(value) => Ok(value),
            Err(e) => {
                if let Err(undo) = conn.batch_execute("ROLLBACK TO SAVEPOINT statement").await {
                    tracing::warn!(error = %undo, "undoing a failed statement failed");
                }
                Err(e.into())
            }
        }
    }
}

impl Tx for PgTx {
    async fn commit(mut self) -> Result<()> {
        // A write tells every server's listener (see `listen`); NOTIFY is
        // delivered at COMMIT and only if it commits. On an error the
        // transaction stays with `self`, whose drop rolls it back.
        let end = if self.write {
            "NOTIFY mcp_bridge_changes; COMMIT"
        } else {
            "COMMIT"
        };
        self.batch(end).await?;
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
        let rows = self
            .rows(
                "SELECT c.id AS conv_id, c.created_at AS conv_created_at, c.expires_at AS conv_expires_at, \
                 c.closed_at AS conv_closed_at, p.* \
                 FROM conversations c LEFT JOIN participants p ON p.conversation_id = c.id \
                 WHERE c.id = $1 ORDER BY p.session_id",
                &[&id],
                |r| {
                    let conv = Conversation {
                        id: r.try_get("conv_id")?,
                        created_at: r.try_get("conv_created_at")?,
                        expires_at: r.try_get("conv_expires_at")?,
                        closed_at: r.try_get("conv_closed_at")?,
                    };
                    let seat = match r.try_get::<_, Option<String>>("session_id")? {
                        Some(_) => Some(participant(r)?),
                        None => None,
                    };
                    Ok((conv, seat))
                },
            )
            .await?;
        let mut found: Option<(Conversation, Vec<Participant>)> = None;
        for (conv, seat) in rows {
            let entry = found.get_or_insert_with(|| (conv, Vec::new()));
            entry.1.extend(seat);
        }
        Ok(found)
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
        self.rows(
            "WITH taken AS ( \
               UPDATE deliveries SET delivered_at = $3 \
               WHERE conversation_id = $1 AND recipient = $2 AND delivered_at IS NULL \
                 AND message_seq IN ( \
                   SELECT message_seq FROM deliveries \
                   WHERE conversation_id = $1 AND recipient = $2 AND delivered_at IS NULL \
                   ORDER BY message_seq LIMIT $4) \
               RETURNING message_seq) \
             SELECT m.* FROM messages m JOIN taken t ON m.seq = t.message_seq ORDER BY m.seq",
            &[&conversation_id, &recipient, &now, &(limit as i64)],
            message,
        )
        .await
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
        self.rows(
            "SELECT m.* FROM deliveries d JOIN messages m ON m.seq = d.message_seq \
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
        self.rows(
            "SELECT * FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
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
        self.conversation_usage(conversation_id).await
    }

    async fn agent_seats(&mut self, agent_id: i64) -> Result<Vec<AgentSeat>> {
        self.seats_of_agent(agent_id).await
    }

    async fn statuses(&mut self, conversation_id: &str) -> Result<Vec<Status>> {
        self.rows(
            "SELECT * FROM status WHERE conversation_id = $1 ORDER BY session_id",
            &[&conversation_id],
            status,
        )
        .await
    }

    async fn count_unread(&mut self, conversation_id: &str, recipient: &str) -> Result<i64> {
        Ok(self
            .row(
                "SELECT count(*) FROM deliveries \
                 WHERE conversation_id = $1 AND recipient = $2 AND delivered_at IS NULL",
                &[&conversation_id, &recipient],
                |r| r.try_get(0),
            )
            .await?
            .unwrap_or(0))
    }

    async fn upsert_status(&mut self, s: &Status) -> Result<()> {
        self.exec(
            "INSERT INTO status (conversation_id, session_id, status, note, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (conversation_id, session_id) DO UPDATE SET \
             status = excluded.status, note = excluded.note, heartbeat_at = excluded.heartbeat_at",
            &[
                &s.conversation_id,
                &s.session_id,
                &s.status,
                &s.note,
                &s.heartbeat_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn status(&mut self, conversation_id: &str, session_id: &str) -> Result<Option<Status>> {
        self.row(
            "SELECT * FROM status WHERE conversation_id = $1 AND session_id = $2",
            &[&conversation_id, &session_id],
            status,
        )
        .await
    }

    async fn rate_events(&mut self, key: &str, since: Millis) -> Result<Vec<Millis>> {
        self.rows(
            "SELECT at FROM rate_events WHERE key = $1 AND at > $2 ORDER BY at",
            &[&key, &since],
            |r| r.try_get(0),
        )
        .await
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
        self.row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )
        .await
    }

    async fn insert_audit(&mut self, e: &audit::Entry) -> Result<()> {
        self.exec(
            "INSERT INTO audit (seq, at, actor, action, conversation_id, detail, prev_hash, hash, seal) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &e.seq,
                &e.at,
                &e.actor,
                &e.action,
                &e.conversation_id,
                &e.detail,
                &e.prev_hash,
                &e.hash,
                &e.seal,
            ],
        )
        .await?;
        if self.sink.file.is_some() {
            if self.sink.first.is_none() {
                self.sink.first = if e.seq == 1 {
                    Some(e.hash.clone())
                } else {
                    self.row("SELECT hash FROM audit WHERE seq = 1", &[], |r| r.try_get(0))
                        .await?
                };
            }
            self.sink.newest = Some((e.seq, e.hash.clone()));
        }
        Ok(())
    }

    async fn tally_refusal(&mut self, key: &RefusalKey, now: Millis) -> Result<bool> {
        let repeats: Option<i64> = self
            .row(
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
                |r| r.try_get(0),
            )
            .await?;
        Ok(repeats == Some(0))
    }

    async fn take_refusal_tallies(&mut self, opened_by: Millis) -> Result<Vec<RefusalTally>> {
        let mut out = self
            .rows(
                "DELETE FROM refusal_tally WHERE window_start <= $1 \
                 RETURNING actor, action, code, conversation_id, window_start, repeats, first_at, last_at",
                &[&opened_by],
                |r| {
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
                },
            )
            .await?;
        // RETURNING gives no order; the trail should read the same whichever
        // server flushes.
        out.sort_by(|a, b| {
            (a.window_start, &a.key.action, &a.key.actor).cmp(&(b.window_start, &b.key.action, &b.key.actor))
        });
        Ok(out)
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
