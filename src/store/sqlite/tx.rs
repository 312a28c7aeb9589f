//! [`Tx`] for SQLite: the use cases' statements, each a cached prepared
//! statement run in place on the held connection.

use std::sync::Arc;

use rusqlite::{OptionalExtension, Params, Row, params};

use super::conn::Held;
use super::rows::{audit_entry, conversation, message, participant, status};
use crate::audit::{self, Head, HeadFile};
use crate::clock::Millis;
use crate::seal::Keyring;
use crate::store::sealing::seal_status;
use crate::store::{
    AgentSeat, Conversation, DeliveryState, Message, NewMessage, Participant, RefusalKey, RefusalTally,
    Result, Status, Tx, Usage,
};

/// A SQLite transaction on this process's connection; rolls back on drop.
pub struct SqliteTx {
    conn: Held,
    sink: HeadSink,
    /// The store's keys, for sealing and opening free-text fields.
    pub(super) keys: Arc<Keyring>,
}

impl std::fmt::Debug for SqliteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTx").finish_non_exhaustive()
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        // Not committed (an error, or the task was cancelled): nothing of it
        // may stay. A failed COMMIT also leaves the transaction open.
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %e, "rolling back a transaction failed");
        }
    }
}

/// The audit head a write transaction will publish once it has committed.
#[derive(Debug, Default)]
pub(crate) struct HeadSink {
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
    /// database (a crash in between), never run ahead of it. A failure is
    /// logged; the commit it follows stands.
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

// A note on `+?N` in the statements below: SQLite (3.54) re-prepares a
// statement that compares an indexed column with a bound parameter and has
// an ORDER BY, at every execution (it re-plans for the bound value). A
// unary plus on the parameter keeps the same plan (the index still serves
// the comparison and the order; `EXPLAIN QUERY PLAN` shows no temporary
// B-tree) without the re-prepare, which cost about a tenth of a send. The
// test `hot_statements_are_never_prepared_twice` keeps it so.

impl SqliteTx {
    pub(super) fn new(conn: Held, sink: HeadSink, keys: Arc<Keyring>) -> Self {
        Self { conn, sink, keys }
    }

    /// The connection, for the other statement modules of this backend.
    pub(super) fn conn(&self) -> &rusqlite::Connection {
        &self.conn
    }

    /// Runs a statement; returns the number of rows it changed.
    pub(super) fn exec(&self, sql: &str, params: impl Params) -> Result<u64> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let changed = stmt.execute(params)? as u64;
        reprepare_probe::record(&stmt);
        Ok(changed)
    }

    /// The first row of a query, if any.
    pub(super) fn row<T>(
        &self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let row = stmt.query_row(params, map).optional()?;
        reprepare_probe::record(&stmt);
        Ok(row)
    }

    /// Every row of a query.
    pub(super) fn rows<T>(
        &self,
        sql: &str,
        params: impl Params,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params, map)?
            .collect::<rusqlite::Result<Vec<T>>>()?;
        reprepare_probe::record(&stmt);
        Ok(rows)
    }
}

/// In tests, the statements that SQLite had to prepare again since they
/// entered the cache; nothing in other builds.
mod reprepare_probe {
    #[cfg(test)]
    thread_local! {
        pub(super) static SEEN: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    #[cfg(test)]
    pub(super) fn record(stmt: &rusqlite::Statement<'_>) {
        if stmt.get_status(rusqlite::StatementStatus::RePrepare) > 0 {
            let sql = stmt.expanded_sql().unwrap_or_default();
            SEEN.with(|s| s.borrow_mut().push(sql));
        }
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(super) fn record(_: &rusqlite::Statement<'_>) {}
}

impl Tx for SqliteTx {
    async fn reseal_batch(&mut self, limit: i64) -> Result<u64> {
        self.reseal(limit)
    }

    async fn resealed(&mut self) -> Result<bool> {
        self.reseal_done()
    }

    async fn commit(mut self) -> Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.sink.publish();
        Ok(())
    }

    async fn insert_conversation(&mut self, c: &Conversation) -> Result<()> {
        self.exec(
            "INSERT INTO conversations (id, created_at, expires_at, closed_at) VALUES (?1, ?2, ?3, ?4)",
            params![c.id, c.created_at, c.expires_at, c.closed_at],
        )?;
        self.exec(
            "INSERT INTO conversation_keys (conversation_id, wrapped) VALUES (?1, ?2)",
            params![c.id, self.new_wrapped_key(&c.id)?],
        )?;
        Ok(())
    }

    async fn conversation(&mut self, id: &str) -> Result<Option<Conversation>> {
        self.row(
            "SELECT id, created_at, expires_at, closed_at FROM conversations WHERE id = ?1",
            [id],
            conversation,
        )
    }

    async fn conversation_with_participants(
        &mut self,
        id: &str,
    ) -> Result<Option<(Conversation, Vec<Participant>)>> {
        let mut found: Option<(Conversation, Vec<Participant>)> = None;
        let rows = self.rows(
            "SELECT c.id AS conv_id, c.created_at AS conv_created_at, c.expires_at AS conv_expires_at, \
             c.closed_at AS conv_closed_at, p.* \
             FROM conversations c LEFT JOIN participants p ON p.conversation_id = c.id \
             WHERE c.id = +?1 ORDER BY p.session_id",
            [id],
            |r| {
                let conv = Conversation {
                    id: r.get("conv_id")?,
                    created_at: r.get("conv_created_at")?,
                    expires_at: r.get("conv_expires_at")?,
                    closed_at: r.get("conv_closed_at")?,
                };
                let seat = match r.get::<_, Option<String>>("session_id")? {
                    Some(_) => Some(participant(r)?),
                    None => None,
                };
                Ok((conv, seat))
            },
        )?;
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                p.conversation_id,
                p.session_id,
                p.role,
                p.token_hash.as_ref().map(|h| &h.0),
                p.agent_id,
                p.token_created_at,
                p.revoked_at
            ],
        )?;
        Ok(())
    }

    async fn participant(&mut self, conversation_id: &str, session_id: &str) -> Result<Option<Participant>> {
        self.row(
            "SELECT * FROM participants WHERE conversation_id = ?1 AND session_id = ?2",
            [conversation_id, session_id],
            participant,
        )
    }

    async fn participants(&mut self, conversation_id: &str) -> Result<Vec<Participant>> {
        self.rows(
            "SELECT * FROM participants WHERE conversation_id = +?1 ORDER BY session_id",
            [conversation_id],
            participant,
        )
    }

    async fn insert_message(&mut self, m: &NewMessage, recipients: &[String]) -> Result<i64> {
        self.insert_message_to(m, recipients)
    }

    async fn take_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let messages = self.peek_unread(conversation_id, recipient, limit).await?;
        if let Some(last) = messages.last() {
            // Inside BEGIN IMMEDIATE no other process can deliver these
            // between the SELECT and this UPDATE.
            self.exec(
                "UPDATE deliveries SET delivered_at = ?1 \
                 WHERE conversation_id = ?2 AND recipient = ?3 AND delivered_at IS NULL AND message_seq <= ?4",
                params![now, conversation_id, recipient, last.seq],
            )?;
        }
        Ok(messages)
    }

    async fn return_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
        seqs: &[i64],
        delivered_at: Millis,
    ) -> Result<u64> {
        let mut returned = 0;
        for seq in seqs {
            returned += self.exec(
                "UPDATE deliveries SET delivered_at = NULL \
                 WHERE conversation_id = ?1 AND recipient = ?2 AND message_seq = ?3 AND delivered_at = ?4",
                params![conversation_id, recipient, seq, delivered_at],
            )?;
        }
        Ok(returned)
    }

    async fn peek_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.sealed_rows(
            "SELECT m.*, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = m.conversation_id) AS dek FROM deliveries d JOIN messages m ON m.seq = d.message_seq \
             WHERE d.conversation_id = +?1 AND d.recipient = +?2 AND d.delivered_at IS NULL \
             ORDER BY d.message_seq LIMIT +?3",
            params![conversation_id, recipient, limit as i64],
            message,
        )
    }

    async fn history_after(
        &mut self,
        conversation_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.sealed_rows(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = messages.conversation_id) AS dek FROM messages WHERE conversation_id = +?1 AND seq > +?2 ORDER BY seq LIMIT +?3",
            params![conversation_id, after, limit as i64],
            message,
        )
    }

    async fn history_of(
        &mut self,
        conversation_id: &str,
        member: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        self.member_history(conversation_id, member, after, limit)
    }

    async fn message(&mut self, conversation_id: &str, seq: i64) -> Result<Option<Message>> {
        self.one_message(conversation_id, seq)
    }

    async fn receipts(&mut self, seq: i64) -> Result<Vec<DeliveryState>> {
        self.delivery_states(seq)
    }

    async fn unread_by_recipient(&mut self, conversation_id: &str) -> Result<Vec<(String, i64)>> {
        self.pending_per_recipient(conversation_id)
    }

    async fn usage(&mut self, conversation_id: &str) -> Result<Usage> {
        self.conversation_usage(conversation_id)
    }

    async fn agent_seats(&mut self, agent_id: i64) -> Result<Vec<AgentSeat>> {
        self.seats_of_agent(agent_id)
    }

    async fn statuses(&mut self, conversation_id: &str) -> Result<Vec<Status>> {
        self.sealed_rows(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = status.conversation_id) AS dek FROM status WHERE conversation_id = +?1 ORDER BY session_id",
            [conversation_id],
            status,
        )
    }

    async fn count_unread(&mut self, conversation_id: &str, recipient: &str) -> Result<i64> {
        Ok(self
            .row(
                "SELECT count(*) FROM deliveries \
                 WHERE conversation_id = ?1 AND recipient = ?2 AND delivered_at IS NULL",
                [conversation_id, recipient],
                |r| r.get(0),
            )?
            .unwrap_or(0))
    }

    async fn upsert_status(&mut self, s: &Status) -> Result<()> {
        let note = match &s.note {
            Some(_) => seal_status(&self.data_key(&s.conversation_id)?, s),
            None => None,
        };
        self.exec(
            "INSERT INTO status (conversation_id, session_id, status, note, heartbeat_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (conversation_id, session_id) DO UPDATE SET \
             status = excluded.status, note = excluded.note, heartbeat_at = excluded.heartbeat_at",
            params![s.conversation_id, s.session_id, s.status, note, s.heartbeat_at],
        )?;
        Ok(())
    }

    async fn status(&mut self, conversation_id: &str, session_id: &str) -> Result<Option<Status>> {
        self.sealed_row(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = status.conversation_id) AS dek FROM status WHERE conversation_id = ?1 AND session_id = ?2",
            [conversation_id, session_id],
            status,
        )
    }

    async fn rate_events(&mut self, key: &str, since: Millis) -> Result<Vec<Millis>> {
        self.rows(
            "SELECT at FROM rate_events WHERE key = +?1 AND at > +?2 ORDER BY at",
            params![key, since],
            |r| r.get(0),
        )
    }

    async fn record_rate_event(&mut self, key: &str, at: Millis, forget_before: Millis) -> Result<()> {
        self.exec(
            "DELETE FROM rate_events WHERE key = ?1 AND at <= ?2",
            params![key, forget_before],
        )?;
        self.exec(
            "INSERT INTO rate_events (key, at) VALUES (?1, ?2)",
            params![key, at],
        )?;
        Ok(())
    }

    async fn audit_head(&mut self) -> Result<Option<(i64, String)>> {
        self.row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    }

    async fn insert_audit(&mut self, e: &audit::Entry) -> Result<()> {
        self.exec(
            "INSERT INTO audit (seq, at, actor, action, conversation_id, detail, prev_hash, hash, seal) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                e.seq,
                e.at,
                e.actor,
                e.action,
                e.conversation_id,
                e.detail,
                e.prev_hash,
                e.hash,
                e.seal
            ],
        )?;
        if self.sink.file.is_some() {
            if self.sink.first.is_none() {
                self.sink.first = if e.seq == 1 {
                    Some(e.hash.clone())
                } else {
                    self.row("SELECT hash FROM audit WHERE seq = 1", [], |r| r.get(0))?
                };
            }
            self.sink.newest = Some((e.seq, e.hash.clone()));
        }
        Ok(())
    }

    async fn tally_refusal(&mut self, key: &RefusalKey, now: Millis) -> Result<bool> {
        let repeats: Option<i64> = self.row(
            "INSERT INTO refusal_tally (actor, action, code, conversation_id, window_start, repeats) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0) \
             ON CONFLICT (actor, action, code, conversation_id) DO UPDATE SET \
             repeats = repeats + 1, first_at = coalesce(first_at, ?5), last_at = ?5 \
             RETURNING repeats",
            params![
                key.actor,
                key.action,
                key.code,
                key.conversation_id.as_deref().unwrap_or(""),
                now
            ],
            |r| r.get(0),
        )?;
        Ok(repeats == Some(0))
    }

    async fn take_refusal_tallies(&mut self, opened_by: Millis) -> Result<Vec<RefusalTally>> {
        let mut out = self.rows(
            "DELETE FROM refusal_tally WHERE window_start <= ?1 \
             RETURNING actor, action, code, conversation_id, window_start, repeats, first_at, last_at",
            [opened_by],
            |r| {
                let conversation_id: String = r.get("conversation_id")?;
                Ok(RefusalTally {
                    key: RefusalKey {
                        actor: r.get("actor")?,
                        action: r.get("action")?,
                        code: r.get("code")?,
                        conversation_id: (!conversation_id.is_empty()).then_some(conversation_id),
                    },
                    window_start: r.get("window_start")?,
                    repeats: r.get("repeats")?,
                    first_at: r.get("first_at")?,
                    last_at: r.get("last_at")?,
                })
            },
        )?;
        // RETURNING gives no order; the audit trail should read the same
        // whichever process flushes.
        out.sort_by(|a, b| {
            (a.window_start, &a.key.action, &a.key.actor).cmp(&(b.window_start, &b.key.action, &b.key.actor))
        });
        Ok(out)
    }

    async fn audit_page(&mut self, after: i64, limit: i64) -> Result<Vec<audit::Entry>> {
        self.rows(
            "SELECT * FROM audit WHERE seq > +?1 ORDER BY seq LIMIT +?2",
            [after, limit],
            audit_entry,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::reprepare_probe::SEEN;
    use crate::audit::{self, NewEntry};
    use crate::auth::{ServerKey, TokenHash};
    use crate::store::sqlite::{OpenMode, SqliteStore};
    use crate::store::{Conversation, NewMessage, Participant, RefusalKey, Status, Store, Tx};

    /// Every statement a send, a check, a status, a rate check, an audit
    /// append and a refusal run, three times over: SQLite must never have
    /// to prepare one of them again (see the note on `+?N` above).
    #[tokio::test]
    async fn hot_statements_are_never_prepared_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("b.db"), OpenMode::CreateIfMissing)
            .await
            .unwrap();
        let key = ServerKey::from_bytes([7; 32]);
        store.keyring().install(&key);
        let id = "conv_0123456789abcdef0123456789abcdef".to_owned();
        let mut tx = store.begin_write().await.unwrap();
        tx.insert_conversation(&Conversation {
            id: id.clone(),
            created_at: 1,
            expires_at: i64::MAX,
            closed_at: None,
        })
        .await
        .unwrap();
        for seat in ["a", "b"] {
            tx.insert_participant(&Participant {
                conversation_id: id.clone(),
                session_id: seat.into(),
                role: format!("role-{seat}"),
                token_hash: Some(TokenHash(vec![1; 32])),
                agent_id: None,
                token_created_at: 1,
                revoked_at: None,
            })
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();

        for round in 0..3 {
            let now = 10 + round;
            let mut tx = store.begin_write().await.unwrap();
            assert!(tx.conversation_with_participants(&id).await.unwrap().is_some());
            tx.participants(&id).await.unwrap();
            tx.participant(&id, "a").await.unwrap();
            tx.conversation(&id).await.unwrap();
            tx.rate_events("send:x", 0).await.unwrap();
            tx.record_rate_event("send:x", now, 0).await.unwrap();
            let message = NewMessage {
                reply_to: None,
                conversation_id: id.clone(),
                sender: "a".into(),
                body: "hello".into(),
                action_type: "info".into(),
                files: vec![],
                redactions: vec![],
                created_at: now,
            };
            let seq = tx.insert_message(&message, &["b".into()]).await.unwrap();
            tx.peek_unread(&id, "b", 10).await.unwrap();
            tx.count_unread(&id, "b").await.unwrap();
            tx.take_unread(&id, "b", now, 10).await.unwrap();
            tx.return_unread(&id, "b", &[seq], now).await.unwrap();
            tx.history_after(&id, 0, 10).await.unwrap();
            tx.upsert_status(&Status {
                conversation_id: id.clone(),
                session_id: "a".into(),
                status: "working".into(),
                note: None,
                heartbeat_at: now,
            })
            .await
            .unwrap();
            tx.status(&id, "a").await.unwrap();
            let refusal = RefusalKey {
                actor: "unauthenticated".into(),
                action: "message.send.refused".into(),
                code: "invalid_token".into(),
                conversation_id: Some(id.clone()),
            };
            tx.tally_refusal(&refusal, now).await.unwrap();
            tx.take_refusal_tallies(now).await.unwrap();
            let head = tx.audit_head().await.unwrap();
            let entry = audit::chain(
                head,
                now,
                NewEntry {
                    actor: "cli".into(),
                    action: "test".into(),
                    conversation_id: Some(id.clone()),
                    detail: serde_json::json!({}),
                },
                &key,
            );
            tx.insert_audit(&entry).await.unwrap();
            tx.audit_page(0, 10).await.unwrap();
            tx.commit().await.unwrap();
        }
        let seen = SEEN.with(|s| s.borrow().clone());
        assert!(seen.is_empty(), "statements prepared again: {seen:#?}");
    }
}
