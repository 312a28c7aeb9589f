//! [`Tx`](crate::store::Tx) for PostgreSQL: how a transaction holds its
//! connection, which locks it takes when, and how its statements are sent.
//! The use cases' statements themselves are in `calls.rs`: each a prepared
//! statement cached on its pooled connection, most of them one round trip
//! (a send's message and deliveries, a take's select and update, a rate
//! event's prune and insert are each one statement).
//!
//! # Round trips under the audit chain's lock
//!
//! In a concurrent write transaction (see `postgres/mod.rs`) the chain's
//! lock is held from the statement that reads the chain's tail to the
//! commit, so that stretch is kept to two round trips: the lock, the
//! refusal tallies and the head are sent together ([`PgTx::pipeline`]), and
//! the audit entries are not inserted when the use case appends them but
//! held and sent together with `COMMIT`. A held entry is sent before any
//! other statement too, so the transaction reads its own writes as usual.
//!
//! `BEGIN` (with its lock) is not a round trip of its own either: it is
//! sent with the transaction's first statement. A transaction that runs no
//! statement never begins, so it has nothing to commit or roll back.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use deadpool_postgres::Object;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::rows::RowResult;
use crate::audit::{self, Head, HeadFile};
use crate::clock::Millis;
use crate::seal::{DataKey, Keyring};
use crate::store::sealing::{Sealed, SealedFields, open_all, open_one};
use crate::store::{Error, Result, Usage};

mod calls;
pub(in crate::store::postgres) use calls::NEXT_MESSAGE;
use calls::TALLIES_AND_HEAD;

/// Statement parameters, as `tokio-postgres` takes them.
pub(in crate::store::postgres) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// What a transaction may do, fixed at `BEGIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store::postgres) enum Mode {
    /// A read-only snapshot: no lock, no savepoints.
    Read,
    /// Holds the write lock exclusively from `BEGIN`: alone among writers,
    /// with SQLite's statement-level atomicity (see [`PgTx::atomic`]).
    Exclusive,
    /// Shares the write lock with others of its kind and takes the finer
    /// locks as it goes (see `postgres/mod.rs`); all or nothing.
    Concurrent,
}

/// A statement sent just before another, in the same round trip: a lock the
/// other must run under.
type Before<'a> = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a>>;

/// A PostgreSQL transaction on one pooled connection; rolls back on drop.
pub struct PgTx {
    /// `None` once committed (or handed to the rollback task).
    conn: Option<Object>,
    mode: Mode,
    /// The `BEGIN` batch, until it is sent with the first statement.
    begin: Mutex<Option<&'static str>>,
    /// A concurrent transaction holds the audit chain's lock (it has read
    /// the chain's tail); from here on it writes nothing but audit entries.
    chain_locked: bool,
    /// Audit entries appended but not yet sent (see the module's doc).
    held: Mutex<Vec<audit::Entry>>,
    /// The conversation row this transaction locked, with its totals as
    /// read under the lock: exact until this transaction adds a message.
    locked_usage: Option<(String, Usage)>,
    /// The locked conversation's wrapped data key and the `seq` its next
    /// message will take, fetched under the row lock in the same round trip.
    pub(in crate::store::postgres) next_message: Option<(String, Option<String>, i64)>,
    /// Announced by [`Tx::audit_tail_next`](crate::store::Tx::audit_tail_next):
    /// the next insert or take sends the chain's lock and tail read for
    /// this `opened_by` right behind it.
    pub(in crate::store::postgres) tail_next: Option<Millis>,
    /// The rows of that tail read ([`TALLIES_AND_HEAD`]) and its `opened_by`,
    /// until the audit append asks for them.
    pub(in crate::store::postgres) prefetched_tail: Option<(Millis, Vec<Row>)>,
    sink: HeadSink,
    /// The store's keys, for sealing and opening free-text fields.
    pub(in crate::store::postgres) keys: Arc<Keyring>,
}

impl std::fmt::Debug for PgTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTx")
            .field("mode", &self.mode)
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
        if self.begin.get_mut().unwrap_or_else(|p| p.into_inner()).is_some() {
            // Never begun: the connection is outside any transaction.
            return;
        }
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
pub(in crate::store::postgres) struct HeadSink {
    file: Option<Arc<HeadFile>>,
    /// Hash of entry 1, read once per transaction.
    first: Option<String>,
    /// The newest entry this transaction appended.
    newest: Option<(i64, String)>,
}

impl HeadSink {
    pub(in crate::store::postgres) fn new(file: &Option<Arc<HeadFile>>) -> Self {
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

/// The audit chain's lock (ASCII "mcpbchan"), taken by a concurrent write
/// transaction when it reads the chain's tail and held to its commit.
pub const CHAIN_LOCK: i64 = 0x6d63_7062_6368_616e;

/// [`CHAIN_LOCK`]'s statement, prepared once per connection like the
/// others (a simple query would be parsed again on every call). Literal; a
/// test checks it against the constant.
const TAKE_CHAIN_LOCK: &str = "SELECT pg_advisory_xact_lock(7882267340705390958)";

/// The key space of the rate keys' locks (ASCII "rate"), in the two-key
/// form of advisory locks, which never meets the one-key form's.
const RATE_LOCKS: i32 = 0x7261_7465;

/// A rate key's lock: its holder is the only one counting and recording
/// that key's events.
const TAKE_RATE_LOCK: &str = "SELECT pg_advisory_xact_lock($1::int4, $2::int4)";

/// The same 32 bits for a rate key on every server and every version: the
/// first four bytes of its SHA-256. Two keys that share them only wait for
/// each other.
fn rate_lock_id(key: &str) -> i32 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

impl PgTx {
    /// A transaction on `conn` that `begin` (a batch of simple statements)
    /// will open, sent with its first statement.
    pub(in crate::store::postgres) fn new(
        conn: Object,
        begin: &'static str,
        mode: Mode,
        sink: HeadSink,
        keys: Arc<Keyring>,
    ) -> Self {
        Self {
            conn: Some(conn),
            mode,
            begin: Mutex::new(Some(begin)),
            chain_locked: false,
            held: Mutex::new(Vec::new()),
            locked_usage: None,
            next_message: None,
            tail_next: None,
            prefetched_tail: None,
            sink,
            keys,
        }
    }

    fn client(&self) -> Result<&Object> {
        self.conn
            .as_ref()
            .ok_or_else(|| Error::internal("statement on a finished transaction"))
    }

    fn is_write(&self) -> bool {
        self.mode != Mode::Read
    }

    /// Sends `BEGIN` if it has not been sent: polled together with the
    /// first statement, so both go in one round trip.
    fn open(&self) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send + '_ {
        let begin = self.begin.lock().unwrap_or_else(|p| p.into_inner()).take();
        let conn = self.conn.as_ref();
        async move {
            match (begin, conn) {
                (Some(begin), Some(conn)) => conn.batch_execute(begin).await,
                _ => Ok(()),
            }
        }
    }

    /// Whether `BEGIN` was sent.
    fn begun(&self) -> bool {
        self.begin.lock().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    /// Runs a statement; returns the number of rows it changed.
    pub(in crate::store::postgres) async fn exec(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        self.keep_lock_order();
        self.exec_after(None, sql, params).await
    }

    /// The first row of a query, if any.
    pub(in crate::store::postgres) async fn row<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl FnOnce(&Row) -> RowResult<T>,
    ) -> Result<Option<T>> {
        self.keep_lock_order();
        let rows = self.query_after(None, sql, params).await?;
        match rows.first() {
            Some(r) => Ok(Some(map(r)?)),
            None => Ok(None),
        }
    }

    /// [`PgTx::rows`] for rows with sealed fields, opened.
    pub(in crate::store::postgres) async fn sealed_rows<T: SealedFields>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl FnMut(&Row) -> RowResult<Sealed<T>>,
    ) -> Result<Vec<T>> {
        Ok(open_all(&self.keys, self.rows(sql, params, map).await?)?)
    }

    /// [`PgTx::row`] for a row with sealed fields, opened.
    pub(in crate::store::postgres) async fn sealed_row<T: SealedFields>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl FnOnce(&Row) -> RowResult<Sealed<T>>,
    ) -> Result<Option<T>> {
        Ok(open_one(&self.keys, self.row(sql, params, map).await?)?)
    }

    /// A new data key for `conversation_id`, wrapped under the KEK the
    /// database names as current (naming this process's if it names none).
    pub(in crate::store::postgres) async fn new_wrapped_key(&self, conversation_id: &str) -> Result<String> {
        let named: Option<String> = self
            .row("SELECT kek_id FROM key_state WHERE id = 1", &[], |r| r.try_get(0))
            .await?;
        let kek = self.keys.wrapping_kek(named.as_deref())?;
        if named.is_none() {
            self.exec(
                "INSERT INTO key_state (id, kek_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                &[&kek.id()],
            )
            .await?;
        }
        Ok(kek.wrap(&DataKey::generate(), conversation_id))
    }

    /// The data key of `conversation_id`, unwrapped (an internal error if
    /// the conversation has none: it was purged, or never existed).
    pub(in crate::store::postgres) async fn data_key(&self, conversation_id: &str) -> Result<DataKey> {
        let wrapped: Option<String> = self
            .row(
                "SELECT wrapped FROM conversation_keys WHERE conversation_id = $1",
                &[&conversation_id],
                |r| r.try_get(0),
            )
            .await?;
        let wrapped = wrapped.ok_or(crate::seal::Error::NoDataKey)?;
        Ok(self.keys.unwrap(&wrapped, conversation_id)?)
    }

    /// Every row of a query.
    pub(in crate::store::postgres) async fn rows<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        map: impl FnMut(&Row) -> RowResult<T>,
    ) -> Result<Vec<T>> {
        self.keep_lock_order();
        let rows = self.query_after(None, sql, params).await?;
        Ok(rows.iter().map(map).collect::<RowResult<Vec<T>>>()?)
    }

    /// A concurrent transaction that holds the chain's lock must not wait
    /// for a row lock: another transaction holding that row could be
    /// waiting for the chain, and the two would deadlock. Every statement
    /// after the chain's tail is an audit statement, which do not come
    /// through here; a use case that breaks this is a bug, caught in tests.
    fn keep_lock_order(&self) {
        debug_assert!(
            !(self.mode == Mode::Concurrent && self.chain_locked),
            "a concurrent write transaction ran a statement after reading the audit chain's tail"
        );
    }

    /// Whether the statement that is about to touch the chain (its tail, its
    /// head, the refusal tallies) must take the chain's lock first: only a
    /// concurrent transaction takes it, once. An exclusive one holds every
    /// writer off already. Marks it taken.
    fn claim_chain(&mut self) -> bool {
        let first = self.mode == Mode::Concurrent && !self.chain_locked;
        self.chain_locked |= first;
        first
    }

    /// The chain's lock, to send before a statement when [`PgTx::claim_chain`]
    /// said so. Prepared here, before anything is sent: a statement
    /// prepared while the lock's request waited would go out ahead of it.
    async fn chain_lock(&self, needed: bool) -> Result<Option<Before<'_>>> {
        if !needed {
            return Ok(None);
        }
        let conn = self.client()?;
        let stmt = conn.prepare_cached(TAKE_CHAIN_LOCK).await?;
        Ok(Some(Box::pin(
            async move { conn.execute(&stmt, &[]).await.map(drop) },
        )))
    }

    /// Every row of `sql`, the last statement before the audit append when
    /// the use case said so ([`PgTx::tail_next`]): then the chain's lock and
    /// the tail read follow it in the same round trip, in that order, so the
    /// tail's snapshot is taken under the lock, and their rows wait in
    /// [`PgTx::prefetched_tail`]. The lock is requested after this
    /// transaction's row locks, as the lock order wants.
    pub(in crate::store::postgres) async fn rows_then_tail(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>> {
        self.keep_lock_order();
        let tail_next = self.tail_next.take().filter(|_| self.mode == Mode::Concurrent);
        let Some(opened_by) = tail_next else {
            return self.query_after(None, sql, params).await;
        };
        self.send_held().await?;
        let needed = self.claim_chain();
        let lock = self.chain_lock(needed).await?;
        let conn = self.client()?;
        let (stmt, tail) = tokio::join!(conn.prepare_cached(sql), conn.prepare_cached(TALLIES_AND_HEAD));
        let (stmt, tail) = (stmt?, tail?);
        let lock = lock_if_any(lock);
        let by: [&(dyn ToSql + Sync); 1] = [&opened_by];
        let (opened, rows, locked, tail_rows) = tokio::join!(biased;
            self.open(), conn.query(&stmt, params), lock, conn.query(&tail, &by));
        opened?;
        // The statement's own error first: after it, the rest failed only
        // because the transaction had aborted.
        let rows = rows?;
        locked?;
        self.prefetched_tail = Some((opened_by, tail_rows?));
        Ok(rows)
    }

    /// A rate key's lock, to send before the query that counts its events:
    /// only a concurrent transaction takes it.
    async fn rate_lock<'a>(&'a self, id: &'a i32) -> Result<Option<Before<'a>>> {
        if self.mode != Mode::Concurrent {
            return Ok(None);
        }
        let conn = self.client()?;
        let stmt = conn.prepare_cached(TAKE_RATE_LOCK).await?;
        Ok(Some(Box::pin(async move {
            conn.execute(&stmt, &[&RATE_LOCKS, id]).await.map(drop)
        })))
    }

    /// Runs a statement after `before` (in the same round trip); returns the
    /// number of rows it changed.
    async fn exec_after(&self, before: Option<Before<'_>>, sql: &str, params: Params<'_>) -> Result<u64> {
        self.send_held().await?;
        let conn = self.client()?;
        let stmt = conn.prepare_cached(sql).await?;
        self.pipeline(conn, before, conn.execute(&stmt, params)).await
    }

    /// Every row of a query run after `before` (in the same round trip).
    async fn query_after(
        &self,
        before: Option<Before<'_>>,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>> {
        self.send_held().await?;
        let conn = self.client()?;
        let stmt = conn.prepare_cached(sql).await?;
        self.pipeline(conn, before, conn.query(&stmt, params)).await
    }

    /// Sends `before` (a lock) and then `statement` without waiting in
    /// between: requests polled together are pipelined, and `biased` sends
    /// the lock first. The statement takes its snapshot when it starts, so
    /// after the lock is granted: it sees every commit of the lock's
    /// previous holder. In an exclusive transaction the statement runs as
    /// [`PgTx::atomic`] does.
    async fn pipeline<T>(
        &self,
        conn: &Object,
        before: Option<Before<'_>>,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        if self.mode == Mode::Exclusive && before.is_none() {
            // Rare enough that its own BEGIN round trip does not matter.
            self.open().await?;
            return self.atomic(conn, statement).await;
        }
        let before = lock_if_any(before);
        let (opened, locked, result) = tokio::join!(biased; self.open(), before, statement);
        opened?;
        locked?;
        Ok(result?)
    }

    /// Runs one statement of an exclusive write transaction with SQLite's
    /// statement-level atomicity: a statement that fails (a duplicate id, a
    /// refused seat) changes nothing, and the transaction with its earlier
    /// rows goes on. PostgreSQL would instead abort the whole transaction,
    /// so each statement runs after a `SAVEPOINT`, sent in the same round
    /// trip, and a failure rolls back to it. Concurrent transactions are all
    /// or nothing and need none; read transactions write nothing.
    async fn atomic<T>(
        &self,
        conn: &Object,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
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

    /// Holds an audit entry until the next statement or the commit.
    fn hold(&self, e: audit::Entry) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).push(e);
    }

    /// The newest entry held, if any: the chain's head as this transaction
    /// sees it.
    fn newest_held(&self) -> Option<(i64, String)> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.last().map(|e| (e.seq, e.hash.clone()))
    }

    fn take_held(&self) -> Vec<audit::Entry> {
        std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Inserts the held audit entries now, before a statement that might
    /// read them.
    async fn send_held(&self) -> Result<()> {
        self.insert_entries(self.take_held()).await
    }

    async fn insert_entries(&self, entries: Vec<audit::Entry>) -> Result<()> {
        for e in entries {
            let conn = self.client()?;
            let stmt = conn.prepare_cached(INSERT_AUDIT).await?;
            let params = audit_params(&e);
            self.pipeline(conn, None, conn.execute(&stmt, &params)).await?;
        }
        Ok(())
    }

    /// Ends the transaction with `end` (`COMMIT`, after `NOTIFY` for a
    /// write), the last held audit entry sent in the same round trip.
    async fn finish(&mut self, end: &str) -> Result<()> {
        let mut held = self.take_held();
        let last = held.pop();
        self.insert_entries(held).await?;
        let conn = self.client()?;
        let Some(last) = last else {
            if !self.begun() {
                // No statement ran: nothing to commit.
                return Ok(());
            }
            return Ok(conn.batch_execute(end).await?);
        };
        let stmt = conn.prepare_cached(INSERT_AUDIT).await?;
        let params = audit_params(&last);
        let (opened, inserted, ended) =
            tokio::join!(biased; self.open(), conn.execute(&stmt, &params), conn.batch_execute(end));
        opened?;
        // A failed insert aborted the transaction, and PostgreSQL answers
        // the COMMIT after it with a rollback: nothing of it stays either way.
        inserted?;
        Ok(ended?)
    }
}

/// `before`'s lock, or nothing to wait for: one future either way, to poll
/// beside the statement it guards.
async fn lock_if_any(before: Option<Before<'_>>) -> Result<(), tokio_postgres::Error> {
    match before {
        Some(lock) => lock.await,
        None => Ok(()),
    }
}

/// The audit insert, held until the commit (see the module's doc).
const INSERT_AUDIT: &str = "INSERT INTO audit (seq, at, actor, action, conversation_id, detail, prev_hash, hash, seal) \
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

fn audit_params(e: &audit::Entry) -> [&(dyn ToSql + Sync); 9] {
    [
        &e.seq,
        &e.at,
        &e.actor,
        &e.action,
        &e.conversation_id,
        &e.detail,
        &e.prev_hash,
        &e.hash,
        &e.seal,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_statements_name_their_constants() {
        assert!(TAKE_CHAIN_LOCK.ends_with(&format!("({CHAIN_LOCK})")));
        assert_eq!(CHAIN_LOCK.to_be_bytes(), *b"mcpbchan");
        assert_eq!(RATE_LOCKS.to_be_bytes(), *b"rate");
    }

    #[test]
    fn a_rate_key_locks_the_same_id_everywhere() {
        // Fixed by SHA-256, not by a per-process hasher: every server must agree.
        assert_eq!(rate_lock_id("send:agent:w1"), rate_lock_id("send:agent:w1"));
        assert_ne!(rate_lock_id("send:agent:w1"), rate_lock_id("send:agent:w2"));
        assert_eq!(rate_lock_id(""), i32::from_be_bytes([0xe3, 0xb0, 0xc4, 0x42]));
    }
}
