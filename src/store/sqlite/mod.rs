//! The embedded SQLite backend, the default.
//!
//! Many `mcp-bridge serve` processes (one per agent) share one file, so:
//! WAL journaling (readers never block the writer), `synchronous=NORMAL`
//! (durable across process crashes; a power cut may lose the last commits),
//! a busy timeout (a writer waits for the lock instead of failing), and
//! `BEGIN IMMEDIATE` for every transaction that writes. The database file is
//! created 0600 in a 0700 directory before SQLite opens it; SQLite gives its
//! -wal and -shm files the same mode.
//!
//! # Where the statements run
//!
//! A process owns one connection, behind an async mutex that a transaction
//! holds from `BEGIN` to `COMMIT`. Statements run on the task that holds the
//! transaction, synchronously, with cached prepared statements: there is no
//! hand-off to a worker thread at all, so a whole use case (authenticate,
//! rate, write, audit) costs a few microseconds of SQLite work and no
//! wake-up of another thread. The one wait that can be long, for another
//! process's write lock, never blocks the thread: `BEGIN IMMEDIATE` is tried
//! without a busy handler and, while the lock is taken, retried after an
//! async sleep (see `conn::begin_immediate`). Inside a transaction that
//! holds the write lock, WAL mode gives statements nothing to wait for.
//!
//! The [`Store`]/[`Tx`](super::Tx) contract stays async so that a networked backend can
//! implement it with one round trip per statement; here each of those
//! futures is ready at once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tokio::sync::Mutex;

use super::wake::{Changes, FileWatch, WakeSource};
use super::{Error, Result, Store};
use crate::audit::HeadFile;
use crate::seal::Keyring;

mod admin;
mod agents;
mod conn;
mod files;
mod migrate;
mod reseal;
mod rows;
mod schema;
mod sealed;
mod search;
mod teams;
mod tx;
mod yolo;

pub use files::{DirState, secure_directory};
pub use tx::SqliteTx;

/// One SQLite file, through this process's connection to it.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// `None` once [`SqliteStore::close`] ran (before the file is renamed).
    conn: Arc<Mutex<Option<rusqlite::Connection>>>,
    path: PathBuf,
    /// Moved forward after every commit that appended to the audit trail.
    head: Option<Arc<HeadFile>>,
    /// The process's one wake source for this file, started by the first
    /// [`Store::changes`] call (overseer commands never start a watch).
    wake: Arc<OnceLock<Wake>>,
    /// Shared with every transaction: seals and opens free-text fields.
    keys: Arc<Keyring>,
}

/// A wake source and the file watch that feeds it (none if it could not start).
#[derive(Debug)]
struct Wake {
    source: WakeSource,
    _watch: Option<FileWatch>,
}

/// Whether [`SqliteStore::open`] may create a missing database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `serve`: create the file (and its 0700 directory) on first use.
    CreateIfMissing,
    /// Overseer commands: a missing file is an error, never a new empty database.
    MustExist,
}

impl SqliteStore {
    /// Opens the database at `path`, bringing its schema up to date (a
    /// database already current is only checked, not migrated again).
    pub async fn open(path: &Path, mode: OpenMode) -> Result<Self> {
        let exists = path.exists();
        if !exists {
            if mode == OpenMode::MustExist {
                return Err(Error::Open {
                    path: path.to_owned(),
                    reason: "no such file; check --db / MCP_BRIDGE_DB".into(),
                });
            }
            files::create_private_db_file(path)?;
        } else if mode == OpenMode::MustExist && std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(Error::NotABridgeDatabase {
                path: path.to_owned(),
                reason: "the file is empty".into(),
            });
        }
        let conn = Self::connect(path, exists).await?;
        Ok(Self {
            conn: Arc::new(Mutex::new(Some(conn))),
            path: path.to_owned(),
            head: None,
            wake: Arc::new(OnceLock::new()),
            keys: Arc::default(),
        })
    }

    /// Opens the connection and checks (or brings up to date) the schema.
    ///
    /// Several servers often start on a new file at the same moment (two
    /// agents' clients spawning theirs): the first to switch it to WAL and
    /// create the schema holds an exclusive lock for a few milliseconds, and
    /// SQLite answers the others BUSY without waiting. They retry after a
    /// short async pause, for at most the busy timeout, and find the work
    /// done.
    async fn connect(path: &Path, existed: bool) -> Result<rusqlite::Connection> {
        let deadline = tokio::time::Instant::now() + conn::BUSY_TIMEOUT;
        let mut pause = std::time::Duration::from_millis(2);
        loop {
            let attempt = conn::open(path).and_then(|conn| {
                if existed {
                    migrate::ensure_ours(&conn, path)?;
                }
                migrate::run(&conn, path)?;
                Ok(conn)
            });
            match attempt {
                Err(Error::Busy) if tokio::time::Instant::now() + pause < deadline => {
                    tracing::debug!(
                        ?pause,
                        "the database is being set up by another process; retrying"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    /// This store sealing with `key`'s keys (what [`crate::bridge::Bridge::new`]
    /// does; for code that uses a store without a bridge).
    pub fn with_key(self, key: &crate::auth::ServerKey) -> Self {
        self.keys.install(key);
        self
    }

    /// Keeps the audit head in `head` from now on: every commit that
    /// appends to the trail moves it forward (see [`crate::audit::head`]).
    pub fn with_audit_head(mut self, head: HeadFile) -> Self {
        self.head = Some(Arc::new(head));
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes this process's connection, waiting for a transaction in
    /// progress to end; later calls fail with [`Error::Closed`]. Closing the
    /// last connection to the file checkpoints its WAL into it, so the file
    /// alone is then complete (what `restore` relies on before a rename).
    pub async fn close(&self) {
        let conn = self.conn.lock().await.take();
        if let Some(conn) = conn
            && let Err((_, e)) = conn.close()
        {
            tracing::warn!(error = %e, "closing the database connection failed");
        }
    }

    /// Runs `f` on the connection outside any transaction (maintenance:
    /// `VACUUM INTO`, `PRAGMA integrity_check`).
    async fn with_conn<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        let guard = self.conn.lock().await;
        let conn = guard.as_ref().ok_or(Error::Closed)?;
        f(conn)
    }
}

impl Store for SqliteStore {
    type Tx = SqliteTx;

    async fn begin_write(&self) -> Result<SqliteTx> {
        let conn = conn::begin_immediate(&self.conn).await?;
        Ok(SqliteTx::new(
            conn,
            tx::HeadSink::new(&self.head),
            self.keys.clone(),
        ))
    }

    async fn begin_read(&self) -> Result<SqliteTx> {
        let conn = conn::begin_deferred(&self.conn).await?;
        Ok(SqliteTx::new(conn, tx::HeadSink::default(), self.keys.clone()))
    }

    fn audit_head_file(&self) -> Option<&HeadFile> {
        self.head.as_deref()
    }

    fn keyring(&self) -> &Keyring {
        &self.keys
    }

    /// The WAL still holds the pages as they were before the reseal, and
    /// free pages may too: a checkpoint that truncates the WAL, then a
    /// VACUUM, leaves the plaintext nowhere in the files. Another process
    /// holding the database open can make either fail; that is logged, and
    /// secure_delete has already zeroed the old cells in the main file.
    async fn scrub(&self) -> Result<()> {
        self.with_conn(|conn| {
            if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;") {
                tracing::warn!(error = %e, "could not compact the database after sealing it; run `mcp-bridge backup` to write a clean copy");
            }
            Ok(())
        })
        .await
    }

    fn changes(&self) -> Changes {
        let wake = self.wake.get_or_init(|| {
            let source = WakeSource::new();
            let watch = FileWatch::start(&self.path, source.clone())
                .inspect_err(
                    |e| tracing::warn!(error = %e, "cannot watch the database files; waits poll instead"),
                )
                .ok();
            Wake {
                source,
                _watch: watch,
            }
        });
        wake.source.subscribe()
    }
}

/// The one place `rusqlite::Error` becomes a store error.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi;
        if conn::is_busy(&e) {
            return Error::Busy;
        }
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            match f.code {
                ffi::ErrorCode::ConstraintViolation
                    if matches!(
                        f.extended_code,
                        ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    ) =>
                {
                    return Error::Conflict;
                }
                _ => {}
            }
        }
        Error::Internal(Box::new(e))
    }
}
