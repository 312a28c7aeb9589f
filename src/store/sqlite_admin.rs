//! SQLite implementation of the overseer's queries ([`AdminTx`], [`AdminStore`]).
//!
//! Reads aggregate in SQL (one query per kind of row, not one per
//! conversation) so `list` stays fast on a database with thousands of
//! conversations. The online backup is `VACUUM INTO`: it reads one
//! consistent snapshot (a WAL read transaction) while other processes keep
//! committing, and writes a compact, self-contained file with no `-wal`.

use std::path::Path;

use sqlx::Row;

use super::admin::{
    AdminStore, AdminTx, AuditFilter, ConversationRow, DbFigures, Delivery, PurgeCounts, UnreadCount,
};
use super::sqlite::{SqliteStore, SqliteTx};
use super::sqlite_rows::{audit_entry, conversation, participant, status};
use super::{Conversation, Error, Participant, Result, Status};
use crate::audit;
use crate::auth::TokenHash;
use crate::clock::Millis;

impl AdminTx for SqliteTx {
    async fn conversation_rows(&mut self) -> Result<Vec<ConversationRow>> {
        let rows = sqlx::query(
            "SELECT c.id, c.created_at, c.expires_at, c.closed_at, \
                    count(m.seq) AS messages, max(m.created_at) AS last_message_at \
             FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id \
             GROUP BY c.id ORDER BY c.created_at, c.id",
        )
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConversationRow {
                    conversation: conversation(r)?,
                    messages: r.try_get("messages")?,
                    last_message_at: r.try_get("last_message_at")?,
                })
            })
            .collect()
    }

    async fn all_participants(&mut self) -> Result<Vec<Participant>> {
        let rows = sqlx::query("SELECT * FROM participants ORDER BY conversation_id, session_id")
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter().map(participant).collect()
    }

    async fn unread_counts(&mut self) -> Result<Vec<UnreadCount>> {
        // Served by the partial index `deliveries_pending`.
        let rows = sqlx::query(
            "SELECT conversation_id, recipient, count(*) AS unread FROM deliveries \
             WHERE delivered_at IS NULL GROUP BY conversation_id, recipient",
        )
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UnreadCount {
                    conversation_id: r.try_get("conversation_id")?,
                    recipient: r.try_get("recipient")?,
                    unread: r.try_get("unread")?,
                })
            })
            .collect()
    }

    async fn all_statuses(&mut self) -> Result<Vec<Status>> {
        let rows = sqlx::query("SELECT * FROM status ORDER BY conversation_id, session_id")
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter().map(status).collect()
    }

    async fn deliveries_after(&mut self, conversation_id: &str, after: i64) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT message_seq, recipient, delivered_at FROM deliveries \
             WHERE conversation_id = ? AND message_seq > ? ORDER BY message_seq, recipient",
        )
        .bind(conversation_id)
        .bind(after)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Delivery {
                    message_seq: r.try_get("message_seq")?,
                    recipient: r.try_get("recipient")?,
                    delivered_at: r.try_get("delivered_at")?,
                })
            })
            .collect()
    }

    async fn message_totals(&mut self, conversation_id: &str) -> Result<(i64, Option<Millis>)> {
        let r = sqlx::query(
            "SELECT count(*) AS n, max(created_at) AS last FROM messages WHERE conversation_id = ?",
        )
        .bind(conversation_id)
        .fetch_one(&mut *self.0)
        .await?;
        Ok((r.try_get("n")?, r.try_get("last")?))
    }

    async fn statuses(&mut self, conversation_id: &str) -> Result<Vec<Status>> {
        let rows = sqlx::query("SELECT * FROM status WHERE conversation_id = ? ORDER BY session_id")
            .bind(conversation_id)
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter().map(status).collect()
    }

    async fn audit_filtered(
        &mut self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<audit::Entry>> {
        // NULL parameters switch a condition off, so one static statement
        // serves every combination of filters.
        let rows = sqlx::query(
            "SELECT * FROM audit WHERE seq > ?1 \
             AND (?2 IS NULL OR conversation_id = ?2) \
             AND (?3 IS NULL OR action GLOB ?3) \
             AND (?4 IS NULL OR at >= ?4) \
             AND (?5 IS NULL OR at < ?5) \
             ORDER BY seq LIMIT ?6",
        )
        .bind(after)
        .bind(&filter.conversation_id)
        .bind(&filter.action_glob)
        .bind(filter.since)
        .bind(filter.until)
        .bind(limit)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(audit_entry).collect()
    }

    async fn ended_before(&mut self, cutoff: Millis) -> Result<Vec<Conversation>> {
        let rows = sqlx::query(
            "SELECT * FROM conversations \
             WHERE min(expires_at, coalesce(closed_at, expires_at)) <= ? ORDER BY created_at, id",
        )
        .bind(cutoff)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(conversation).collect()
    }

    async fn purge_conversation(&mut self, conversation_id: &str) -> Result<PurgeCounts> {
        let id = conversation_id;
        let tx = &mut self.0;
        // Children first, so the counts are exact whatever ON DELETE CASCADE
        // would have removed silently.
        let deliveries = exec(tx, "DELETE FROM deliveries WHERE conversation_id = ?", id).await?;
        let messages = exec(tx, "DELETE FROM messages WHERE conversation_id = ?", id).await?;
        let status = exec(tx, "DELETE FROM status WHERE conversation_id = ?", id).await?;
        // Rate keys are `send:<id>/<session>` and `read:<id>/<session>`; ids
        // are hex, so they hold no GLOB metacharacters.
        let rate_events = exec(tx, "DELETE FROM rate_events WHERE key GLOB '*:' || ? || '/*'", id).await?;
        let participants = exec(tx, "DELETE FROM participants WHERE conversation_id = ?", id).await?;
        let conversations = exec(tx, "DELETE FROM conversations WHERE id = ?", id).await?;
        Ok(PurgeCounts {
            conversations,
            messages,
            deliveries,
            participants,
            status,
            rate_events,
        })
    }

    async fn replace_token(
        &mut self,
        conversation_id: &str,
        session_id: &str,
        hash: &TokenHash,
        at: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE participants SET token_hash = ?, token_created_at = ?, revoked_at = NULL \
             WHERE conversation_id = ? AND session_id = ?",
        )
        .bind(&hash.0)
        .bind(at)
        .bind(conversation_id)
        .bind(session_id)
        .execute(&mut *self.0)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke(&mut self, conversation_id: &str, session_id: &str, at: Millis) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE participants SET revoked_at = coalesce(revoked_at, ?) \
             WHERE conversation_id = ? AND session_id = ?",
        )
        .bind(at)
        .bind(conversation_id)
        .bind(session_id)
        .execute(&mut *self.0)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn close_conversation(&mut self, conversation_id: &str, at: Millis) -> Result<bool> {
        let done = sqlx::query("UPDATE conversations SET closed_at = coalesce(closed_at, ?) WHERE id = ?")
            .bind(at)
            .bind(conversation_id)
            .execute(&mut *self.0)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_delivered(&mut self, message_seq: i64, recipient: &str, at: Millis) -> Result<()> {
        sqlx::query("UPDATE deliveries SET delivered_at = ? WHERE message_seq = ? AND recipient = ?")
            .bind(at)
            .bind(message_seq)
            .bind(recipient)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn figures(&mut self, now: Millis) -> Result<DbFigures> {
        let r = sqlx::query(
            "SELECT \
               (SELECT count(*) FROM conversations) AS conversations, \
               (SELECT count(*) FROM conversations WHERE closed_at IS NULL AND expires_at > ?1) AS active, \
               (SELECT count(*) FROM conversations WHERE expires_at <= ?1) AS expired, \
               (SELECT count(*) FROM conversations WHERE closed_at IS NOT NULL AND expires_at > ?1) AS closed, \
               (SELECT count(*) FROM messages) AS messages, \
               (SELECT count(*) FROM deliveries WHERE delivered_at IS NULL) AS unread, \
               (SELECT count(*) FROM audit) AS audit_entries",
        )
        .bind(now)
        .fetch_one(&mut *self.0)
        .await?;
        let page_count: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *self.0)
            .await?;
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&mut *self.0)
            .await?;
        Ok(DbFigures {
            conversations: r.try_get("conversations")?,
            active: r.try_get("active")?,
            expired: r.try_get("expired")?,
            closed: r.try_get("closed")?,
            messages: r.try_get("messages")?,
            unread: r.try_get("unread")?,
            audit_entries: r.try_get("audit_entries")?,
            database_bytes: page_count * page_size,
        })
    }

    async fn unaudited_conversation(&mut self) -> Result<Option<String>> {
        // Served by the index `audit_by_conversation`.
        Ok(sqlx::query_scalar(
            "SELECT c.id FROM conversations c \
             WHERE NOT EXISTS (SELECT 1 FROM audit a WHERE a.conversation_id = c.id) \
             ORDER BY c.created_at, c.id LIMIT 1",
        )
        .fetch_optional(&mut *self.0)
        .await?)
    }
}

async fn exec(tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>, sql: &'static str, id: &str) -> Result<i64> {
    Ok(sqlx::query(sql)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected() as i64)
}

impl AdminStore for SqliteStore {
    async fn size_bytes(&self) -> Result<i64> {
        let mut conn = self.pool().acquire().await?;
        let page_count: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *conn)
            .await?;
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&mut *conn)
            .await?;
        Ok(page_count * page_size)
    }

    async fn backup_to(&self, dest: &Path) -> Result<()> {
        let open_err = |reason: String| Error::Open {
            path: dest.to_owned(),
            reason,
        };
        let text = dest
            .to_str()
            .ok_or_else(|| open_err("the backup path must be valid UTF-8".into()))?
            .to_owned();
        // create_new: refuses an existing path atomically, and gives the copy
        // mode 0600 before a byte is in it. VACUUM INTO accepts an empty file.
        crate::auth::create_private_file(dest).map_err(|e| open_err(e.to_string()))?;
        let result = async {
            let mut conn = self.pool().acquire().await?;
            sqlx::query("VACUUM INTO ?")
                .bind(&text)
                .execute(&mut *conn)
                .await?;
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = result {
            let _ = std::fs::remove_file(dest);
            return Err(e);
        }
        // VACUUM INTO does not fsync its output; make the copy durable
        // before anyone relies on it.
        std::fs::File::open(dest)
            .and_then(|f| f.sync_all())
            .map_err(|e| open_err(e.to_string()))?;
        Ok(())
    }

    async fn integrity_check(&self) -> Result<Vec<String>> {
        let mut conn = self.pool().acquire().await?;
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&mut *conn)
            .await?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    async fn schema_problems(&self) -> Result<Vec<String>> {
        super::sqlite_schema::differences(self.pool()).await
    }

    async fn shutdown(&self) {
        self.pool().close().await;
    }
}

/// How long the in-use probe waits for a lock before concluding that
/// another process holds the database. Short: a live server holds its lock
/// for as long as it runs, so waiting longer would not change the answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// File maintenance for `restore`: these work on paths, not on an open store.
impl SqliteStore {
    /// Whether another process has the database at `path` open.
    ///
    /// Method: open one connection in `locking_mode=EXCLUSIVE` and run
    /// `BEGIN EXCLUSIVE` plus a read, with a short busy timeout. In WAL mode
    /// every open connection of every process (an idle `mcp-bridge serve`
    /// included) holds a shared lock on the file for as long as it is open,
    /// so the exclusive lock is only granted when nobody else has the file
    /// open. Closing the probe, as the last connection, checkpoints and
    /// removes the `-wal` and `-shm` files. A missing file is not in use.
    pub async fn in_use(path: &Path) -> Result<bool> {
        use sqlx::Connection;
        use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteLockingMode};
        if !path.exists() {
            return Ok(false);
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .locking_mode(SqliteLockingMode::Exclusive)
            .busy_timeout(PROBE_TIMEOUT);
        let mut conn = match SqliteConnection::connect_with(&opts).await {
            Ok(c) => c,
            Err(e) => return busy_or(path, e),
        };
        let probe = async {
            let mut tx = conn.begin_with("BEGIN EXCLUSIVE").await?;
            let _: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
                .fetch_one(&mut *tx)
                .await?;
            tx.rollback().await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        let result = match probe {
            Ok(()) => Ok(false),
            Err(e) => busy_or(path, e),
        };
        let _ = conn.close().await;
        result
    }

    /// Copies `src` to a new 0600 file beside `target` (same directory, so
    /// the final rename is atomic) and returns its path. Refuses a source
    /// with a non-empty `-wal` file: that is a live database or a copy
    /// taken while it was open, and its main file alone may be incomplete.
    pub fn stage_copy(src: &Path, target: &Path) -> Result<std::path::PathBuf> {
        let err = |path: &Path, reason: String| Error::Open {
            path: path.to_owned(),
            reason,
        };
        let wal = sidecar(src, "-wal");
        if std::fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false) {
            return Err(err(
                src,
                "it has a non-empty -wal file, so it is a live database or a copy taken while open; \
                 make a consistent copy with `mcp-bridge backup`"
                    .into(),
            ));
        }
        let mut input = std::fs::File::open(src).map_err(|e| err(src, e.to_string()))?;
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".restore-{}.tmp", std::process::id()));
        let staged = target.with_file_name(name);
        let mut out = crate::auth::create_private_file(&staged).map_err(|e| err(&staged, e.to_string()))?;
        let copied = std::io::copy(&mut input, &mut out).and_then(|_| out.sync_all());
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&staged);
            return Err(err(&staged, e.to_string()));
        }
        Ok(staged)
    }

    /// Replaces `target` with `staged` in one atomic rename. When `keep` is
    /// given and `target` exists, the old database stays reachable there (a
    /// hard link, so there is no instant without a file at `target`).
    /// Leftover `-wal`/`-shm` files of the old database are removed first:
    /// SQLite would otherwise replay an old WAL onto the new file.
    pub fn swap_into_place(staged: &Path, target: &Path, keep: Option<&Path>) -> Result<()> {
        let err = |path: &Path, e: std::io::Error| Error::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        if let Some(keep) = keep.filter(|_| target.exists()) {
            std::fs::hard_link(target, keep).map_err(|e| err(keep, e))?;
        }
        for suffix in ["-wal", "-shm"] {
            let p = sidecar(target, suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(&p, e)),
            }
        }
        std::fs::rename(staged, target).map_err(|e| err(target, e))?;
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable.
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }

    /// Removes a staged copy and any `-wal`/`-shm` SQLite left beside it.
    pub fn discard(staged: &Path) {
        for p in [
            staged.to_owned(),
            sidecar(staged, "-wal"),
            sidecar(staged, "-shm"),
        ] {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    std::path::PathBuf::from(name)
}

/// `Ok(true)` for a lock held elsewhere, the translated error otherwise.
fn busy_or(path: &Path, e: sqlx::Error) -> Result<bool> {
    match Error::from(e) {
        Error::Busy => Ok(true),
        Error::Internal(e) => Err(Error::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        other => Err(other),
    }
}
