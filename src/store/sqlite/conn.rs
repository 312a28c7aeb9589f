//! Opening the connection and starting transactions on it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use crate::store::{Error, Result};

/// How long a writer waits for another process's write lock before giving up.
/// Transactions here last microseconds; 10 s covers a burst of hundreds.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest single pause between two attempts at the write lock.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Statements kept prepared per connection: every statement of the hot
/// paths (a few dozen) fits, so none is parsed twice.
const STATEMENT_CACHE: usize = 128;

/// The connection of a transaction in progress.
pub(super) type Held = OwnedMappedMutexGuard<Option<Connection>, Connection>;

/// Opens `path` (which exists) with the settings every connection needs.
pub(super) fn open(path: &Path) -> Result<Connection> {
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    configure(&conn).map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// Opens a private in-memory database (the schema reference).
pub(super) fn open_in_memory() -> Result<Connection> {
    Ok(Connection::open_in_memory()?)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // journal_mode answers with a row, so it is queried, not executed; the
    // first statement that reads the file also tells whether it is SQLite.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "the database did not switch to WAL journaling");
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF; \
         PRAGMA secure_delete = ON;",
    )?;
    Ok(())
}

/// Takes this process's connection and starts a write transaction on it
/// with `BEGIN IMMEDIATE`, which takes the database's write lock up front.
///
/// The attempt is made without a busy handler, so it never blocks the
/// thread; while another process holds the lock, the connection is let go
/// (other tasks of this process can read meanwhile) and the attempt is
/// repeated after an async pause that doubles up to 20 ms, with jitter so
/// that several waiting processes do not retry in step, for at most
/// [`BUSY_TIMEOUT`] in all: what SQLite's own busy handler does, without
/// holding a thread.
pub(super) async fn begin_immediate(conn: &Arc<Mutex<Option<Connection>>>) -> Result<Held> {
    let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        let held = hold(conn).await?;
        match try_begin_immediate(&held) {
            Ok(()) => return Ok(held),
            Err(Error::Busy) if tokio::time::Instant::now() + pause < deadline => {
                drop(held);
                let jitter = rand::random_range(0..=pause.as_micros() as u64 / 2);
                tokio::time::sleep(pause + Duration::from_micros(jitter)).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
}

fn try_begin_immediate(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::ZERO)?;
    let begun = conn
        .prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut s| s.execute([]));
    // Statements inside the transaction keep the normal busy timeout (in WAL
    // mode they have nothing to wait for once the write lock is held).
    conn.busy_timeout(BUSY_TIMEOUT)?;
    begun?;
    Ok(())
}

/// Takes the connection and starts a read transaction (its snapshot is
/// taken by the first read).
pub(super) async fn begin_deferred(conn: &Arc<Mutex<Option<Connection>>>) -> Result<Held> {
    let held = hold(conn).await?;
    held.prepare_cached("BEGIN")?.execute([])?;
    Ok(held)
}

async fn hold(conn: &Arc<Mutex<Option<Connection>>>) -> Result<Held> {
    let guard: OwnedMutexGuard<Option<Connection>> = conn.clone().lock_owned().await;
    OwnedMutexGuard::try_map(guard, Option::as_mut).map_err(|_| Error::Closed)
}

pub(super) fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    if is_not_a_database(&e) {
        return not_a_bridge_db(path);
    }
    // Switching a new file to WAL needs an exclusive lock, and SQLite
    // answers BUSY at once (without its busy handler) when another process
    // starting on the same file holds one: the caller retries.
    if is_busy(&e) {
        return Error::Busy;
    }
    Error::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

pub(super) fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase)
}

pub(super) fn not_a_bridge_db(path: &Path) -> Error {
    Error::NotABridgeDatabase {
        path: path.to_owned(),
        reason: "the file is not a SQLite database".into(),
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED: another connection holds a lock.
pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
