//! The embedded SQLite backend, the default.
//!
//! Many `mcp-bridge serve` processes (one per agent) share one file, so:
//! WAL journaling (readers never block the writer), `synchronous=NORMAL`
//! (durable across process crashes; a power cut may lose the last commits),
//! a busy timeout (a writer waits for the lock instead of failing), and
//! `BEGIN IMMEDIATE` for every transaction that writes. The database file is
//! created 0600 in a 0700 directory before SQLite opens it; SQLite gives its
//! -wal and -shm files the same mode.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::sqlite_rows::{audit_entry, conversation, json_list, message, participant, status};
use super::wake::{Changes, FileWatch, WakeSource};
use super::{
    Conversation, Error, Message, NewMessage, Participant, RefusalKey, RefusalTally, Result, Status, Store,
    Tx,
};
use crate::audit::{self, Head, HeadFile};
use crate::clock::Millis;

/// How long a writer waits for another process's write lock before giving up.
/// Transactions here last microseconds; 10 s covers a burst of hundreds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A pool of connections to one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    /// Moved forward after every commit that appended to the audit trail.
    head: Option<Arc<HeadFile>>,
    /// The process's one wake source for this file, started by the first
    /// [`Store::changes`] call (overseer commands never start a watch).
    wake: Arc<OnceLock<Wake>>,
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
    /// Opens (and migrates) the database at `path`.
    pub async fn open(path: &Path, mode: OpenMode) -> Result<Self> {
        let exists = path.exists();
        if !exists {
            if mode == OpenMode::MustExist {
                return Err(Error::Open {
                    path: path.to_owned(),
                    reason: "no such file; check --db / MCP_BRIDGE_DB".into(),
                });
            }
            create_private_db_file(path)?;
        } else if mode == OpenMode::MustExist && std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(Error::NotABridgeDatabase {
                path: path.to_owned(),
                reason: "the file is empty".into(),
            });
        }
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(Error::Internal)?
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("trusted_schema", "OFF");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(BUSY_TIMEOUT * 2)
            .connect_with(opts)
            .await
            .map_err(|e| open_error(path, e))?;
        let store = Self {
            pool,
            path: path.to_owned(),
            head: None,
            wake: Arc::new(OnceLock::new()),
        };
        store.check_and_migrate(exists).await?;
        Ok(store)
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

    /// The underlying pool, for the overseer's maintenance commands.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn check_and_migrate(&self, existed: bool) -> Result<()> {
        if existed {
            // A file with tables but none of ours is someone else's database:
            // refuse rather than add our schema to it.
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(|e| not_a_bridge_db(&self.path, e))?;
            let ours = tables.iter().any(|t| t == "_sqlx_migrations" || t == "audit");
            if !tables.is_empty() && !ours {
                return Err(Error::NotABridgeDatabase {
                    path: self.path.clone(),
                    reason: "it holds other tables and no bridge schema".into(),
                });
            }
        }
        // Several processes may start on a fresh file together; whoever loses
        // the race sees a conflict or busy error and retries after the winner.
        let mut attempt = 0;
        loop {
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(sqlx::migrate::MigrateError::VersionMissing(v)) => {
                    return Err(Error::NotABridgeDatabase {
                        path: self.path.clone(),
                        reason: format!(
                            "it was written by a newer mcp-bridge (schema version {v}); upgrade this binary"
                        ),
                    });
                }
                Err(e) if attempt < 20 => {
                    tracing::debug!(error = %e, attempt, "migration raced another process; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => {
                    return Err(Error::NotABridgeDatabase {
                        path: self.path.clone(),
                        reason: format!("schema migration failed: {e}"),
                    });
                }
            }
        }
    }
}

/// What [`secure_directory`] found in the database's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// Only its owner can enter it (no group or other bits), or it does not exist yet.
    Private,
    /// It was group- or world-accessible, owned by this user, and is now 0700.
    Tightened {
        /// The mode it had.
        from: u32,
    },
    /// It is group- or world-accessible and was left alone.
    Open {
        /// Its mode.
        mode: u32,
    },
}

/// Checks that the directory holding the database (and, beside it, the key
/// and the audit head) is private, and makes it so when `tighten` holds and
/// this user owns it.
///
/// The caller passes `tighten` only for the default data directory, which
/// exists for the bridge alone: narrowing it can break nothing. A directory
/// the user chose (`--db ~/project/bridge.db`) may be shared with other
/// tools or people on purpose, so it is reported, never changed. The files
/// inside are 0600 either way; an open directory still lets others see
/// their names and sizes, and lets a group with write access replace them.
pub fn secure_directory(dir: &Path, tighten: bool) -> std::io::Result<DirState> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = match std::fs::metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::Private),
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(DirState::Private);
        }
        if tighten && meta.uid() == rustix::process::geteuid().as_raw() {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            return Ok(DirState::Tightened { from: mode });
        }
        Ok(DirState::Open { mode })
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, tighten);
        Ok(DirState::Private)
    }
}

fn create_private_db_file(path: &Path) -> Result<()> {
    let open_err = |e: std::io::Error| Error::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(open_err)?;
    }
    match crate::auth::create_private_file(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(open_err(e)),
    }
}

fn open_error(path: &Path, e: sqlx::Error) -> Error {
    if is_not_a_database(&e) {
        return not_a_bridge_db(path, e);
    }
    Error::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn is_not_a_database(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("26"))
}

fn not_a_bridge_db(path: &Path, e: sqlx::Error) -> Error {
    if is_not_a_database(&e) {
        Error::NotABridgeDatabase {
            path: path.to_owned(),
            reason: "the file is not a SQLite database".into(),
        }
    } else {
        Error::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    }
}

/// The one place `sqlx::Error` becomes a store error.
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(d) = &e {
            if d.kind() == sqlx::error::ErrorKind::UniqueViolation {
                return Error::Conflict;
            }
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes.
            let code = d.code().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            if code & 0xff == 5 || code & 0xff == 6 {
                return Error::Busy;
            }
        }
        if matches!(e, sqlx::Error::PoolTimedOut) {
            return Error::Busy;
        }
        Error::Internal(e)
    }
}

impl Store for SqliteStore {
    type Tx = SqliteTx;

    async fn begin_write(&self) -> Result<SqliteTx> {
        Ok(SqliteTx(
            self.pool.begin_with("BEGIN IMMEDIATE").await?,
            HeadSink::new(&self.head),
        ))
    }

    async fn begin_read(&self) -> Result<SqliteTx> {
        Ok(SqliteTx(self.pool.begin().await?, HeadSink::default()))
    }

    fn audit_head_file(&self) -> Option<&HeadFile> {
        self.head.as_deref()
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

/// A SQLite transaction; rolls back on drop.
#[derive(Debug)]
pub struct SqliteTx(pub(crate) Transaction<'static, Sqlite>, HeadSink);

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
    fn new(file: &Option<Arc<HeadFile>>) -> Self {
        Self {
            file: file.clone(),
            ..Self::default()
        }
    }

    /// Called after the commit, never before: the file may lag behind the
    /// database (a crash in between), never run ahead of it. A failure is
    /// logged; the commit it follows stands.
    fn publish(self) {
        let (Some(file), Some(first), Some((seq, hash))) = (self.file, self.first, self.newest) else {
            return;
        };
        if let Err(e) = file.advance(&Head { first, seq, hash }) {
            tracing::warn!(error = %e, "could not move the audit head file forward");
        }
    }
}

impl Tx for SqliteTx {
    async fn commit(self) -> Result<()> {
        let SqliteTx(tx, sink) = self;
        tx.commit().await?;
        sink.publish();
        Ok(())
    }

    async fn insert_conversation(&mut self, c: &Conversation) -> Result<()> {
        sqlx::query("INSERT INTO conversations (id, created_at, expires_at, closed_at) VALUES (?, ?, ?, ?)")
            .bind(&c.id)
            .bind(c.created_at)
            .bind(c.expires_at)
            .bind(c.closed_at)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn conversation(&mut self, id: &str) -> Result<Option<Conversation>> {
        let row = sqlx::query("SELECT id, created_at, expires_at, closed_at FROM conversations WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.0)
            .await?;
        row.as_ref().map(conversation).transpose()
    }

    async fn conversation_with_participants(
        &mut self,
        id: &str,
    ) -> Result<Option<(Conversation, Vec<Participant>)>> {
        let rows = sqlx::query(
            "SELECT c.id AS conv_id, c.created_at AS conv_created_at, c.expires_at AS conv_expires_at, \
             c.closed_at AS conv_closed_at, p.* \
             FROM conversations c LEFT JOIN participants p ON p.conversation_id = c.id \
             WHERE c.id = ? ORDER BY p.session_id",
        )
        .bind(id)
        .fetch_all(&mut *self.0)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let conversation = Conversation {
            id: first.try_get("conv_id")?,
            created_at: first.try_get("conv_created_at")?,
            expires_at: first.try_get("conv_expires_at")?,
            closed_at: first.try_get("conv_closed_at")?,
        };
        let mut participants = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.try_get::<Option<String>, _>("session_id")?.is_some() {
                participants.push(participant(r)?);
            }
        }
        Ok(Some((conversation, participants)))
    }

    async fn insert_participant(&mut self, p: &Participant) -> Result<()> {
        sqlx::query(
            "INSERT INTO participants (conversation_id, session_id, role, token_hash, token_created_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.conversation_id)
        .bind(&p.session_id)
        .bind(&p.role)
        .bind(&p.token_hash.0)
        .bind(p.token_created_at)
        .bind(p.revoked_at)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn participant(&mut self, conversation_id: &str, session_id: &str) -> Result<Option<Participant>> {
        let row = sqlx::query("SELECT * FROM participants WHERE conversation_id = ? AND session_id = ?")
            .bind(conversation_id)
            .bind(session_id)
            .fetch_optional(&mut *self.0)
            .await?;
        row.as_ref().map(participant).transpose()
    }

    async fn participants(&mut self, conversation_id: &str) -> Result<Vec<Participant>> {
        let rows = sqlx::query("SELECT * FROM participants WHERE conversation_id = ? ORDER BY session_id")
            .bind(conversation_id)
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter().map(participant).collect()
    }

    async fn insert_message(&mut self, m: &NewMessage, recipients: &[String]) -> Result<i64> {
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO messages (conversation_id, sender, body, action_type, files, redactions, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        )
        .bind(&m.conversation_id)
        .bind(&m.sender)
        .bind(&m.body)
        .bind(&m.action_type)
        .bind(json_list(&m.files))
        .bind(json_list(&m.redactions))
        .bind(m.created_at)
        .fetch_one(&mut *self.0)
        .await?;
        for r in recipients {
            sqlx::query("INSERT INTO deliveries (message_seq, conversation_id, recipient) VALUES (?, ?, ?)")
                .bind(seq)
                .bind(&m.conversation_id)
                .bind(r)
                .execute(&mut *self.0)
                .await?;
        }
        Ok(seq)
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
            sqlx::query(
                "UPDATE deliveries SET delivered_at = ? \
                 WHERE conversation_id = ? AND recipient = ? AND delivered_at IS NULL AND message_seq <= ?",
            )
            .bind(now)
            .bind(conversation_id)
            .bind(recipient)
            .bind(last.seq)
            .execute(&mut *self.0)
            .await?;
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
            returned += sqlx::query(
                "UPDATE deliveries SET delivered_at = NULL \
                 WHERE conversation_id = ? AND recipient = ? AND message_seq = ? AND delivered_at = ?",
            )
            .bind(conversation_id)
            .bind(recipient)
            .bind(seq)
            .bind(delivered_at)
            .execute(&mut *self.0)
            .await?
            .rows_affected();
        }
        Ok(returned)
    }

    async fn peek_unread(
        &mut self,
        conversation_id: &str,
        recipient: &str,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT m.* FROM deliveries d JOIN messages m ON m.seq = d.message_seq \
             WHERE d.conversation_id = ? AND d.recipient = ? AND d.delivered_at IS NULL \
             ORDER BY d.message_seq LIMIT ?",
        )
        .bind(conversation_id)
        .bind(recipient)
        .bind(limit as i64)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(message).collect()
    }

    async fn history_after(
        &mut self,
        conversation_id: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let rows =
            sqlx::query("SELECT * FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?")
                .bind(conversation_id)
                .bind(after)
                .bind(limit as i64)
                .fetch_all(&mut *self.0)
                .await?;
        rows.iter().map(message).collect()
    }

    async fn count_unread(&mut self, conversation_id: &str, recipient: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE conversation_id = ? AND recipient = ? AND delivered_at IS NULL",
        )
        .bind(conversation_id)
        .bind(recipient)
        .fetch_one(&mut *self.0)
        .await?)
    }

    async fn upsert_status(&mut self, s: &Status) -> Result<()> {
        sqlx::query(
            "INSERT INTO status (conversation_id, session_id, status, note, heartbeat_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (conversation_id, session_id) DO UPDATE SET \
             status = excluded.status, note = excluded.note, heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&s.conversation_id)
        .bind(&s.session_id)
        .bind(&s.status)
        .bind(&s.note)
        .bind(s.heartbeat_at)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn status(&mut self, conversation_id: &str, session_id: &str) -> Result<Option<Status>> {
        let row = sqlx::query("SELECT * FROM status WHERE conversation_id = ? AND session_id = ?")
            .bind(conversation_id)
            .bind(session_id)
            .fetch_optional(&mut *self.0)
            .await?;
        row.as_ref().map(status).transpose()
    }

    async fn rate_events(&mut self, key: &str, since: Millis) -> Result<Vec<Millis>> {
        Ok(
            sqlx::query_scalar("SELECT at FROM rate_events WHERE key = ? AND at > ? ORDER BY at")
                .bind(key)
                .bind(since)
                .fetch_all(&mut *self.0)
                .await?,
        )
    }

    async fn record_rate_event(&mut self, key: &str, at: Millis, forget_before: Millis) -> Result<()> {
        sqlx::query("DELETE FROM rate_events WHERE key = ? AND at <= ?")
            .bind(key)
            .bind(forget_before)
            .execute(&mut *self.0)
            .await?;
        sqlx::query("INSERT INTO rate_events (key, at) VALUES (?, ?)")
            .bind(key)
            .bind(at)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn audit_head(&mut self) -> Result<Option<(i64, String)>> {
        let row = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *self.0)
            .await?;
        row.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?)))
            .transpose()
    }

    async fn insert_audit(&mut self, e: &audit::Entry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (seq, at, actor, action, conversation_id, detail, prev_hash, hash, seal) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.seq)
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.action)
        .bind(&e.conversation_id)
        .bind(&e.detail)
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .bind(&e.seal)
        .execute(&mut *self.0)
        .await?;
        if self.1.file.is_some() {
            if self.1.first.is_none() {
                self.1.first = if e.seq == 1 {
                    Some(e.hash.clone())
                } else {
                    sqlx::query_scalar("SELECT hash FROM audit WHERE seq = 1")
                        .fetch_optional(&mut *self.0)
                        .await?
                };
            }
            self.1.newest = Some((e.seq, e.hash.clone()));
        }
        Ok(())
    }

    async fn tally_refusal(&mut self, key: &RefusalKey, now: Millis) -> Result<bool> {
        let repeats: i64 = sqlx::query_scalar(
            "INSERT INTO refusal_tally (actor, action, code, conversation_id, window_start, repeats) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0) \
             ON CONFLICT (actor, action, code, conversation_id) DO UPDATE SET \
             repeats = repeats + 1, first_at = coalesce(first_at, ?5), last_at = ?5 \
             RETURNING repeats",
        )
        .bind(&key.actor)
        .bind(&key.action)
        .bind(&key.code)
        .bind(key.conversation_id.as_deref().unwrap_or(""))
        .bind(now)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(repeats == 0)
    }

    async fn take_refusal_tallies(&mut self, opened_by: Millis) -> Result<Vec<RefusalTally>> {
        let rows = sqlx::query(
            "DELETE FROM refusal_tally WHERE window_start <= ? \
             RETURNING actor, action, code, conversation_id, window_start, repeats, first_at, last_at",
        )
        .bind(opened_by)
        .fetch_all(&mut *self.0)
        .await?;
        let mut out: Vec<RefusalTally> = rows
            .iter()
            .map(|r| {
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
            })
            .collect::<Result<_>>()?;
        // RETURNING gives no order; the audit trail should read the same
        // whichever process flushes.
        out.sort_by(|a, b| {
            (a.window_start, &a.key.action, &a.key.actor).cmp(&(b.window_start, &b.key.action, &b.key.actor))
        });
        Ok(out)
    }

    async fn audit_page(&mut self, after: i64, limit: i64) -> Result<Vec<audit::Entry>> {
        let rows = sqlx::query("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter().map(audit_entry).collect()
    }
}
