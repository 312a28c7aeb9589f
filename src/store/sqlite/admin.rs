//! SQLite implementation of the overseer's queries ([`AdminTx`], [`AdminStore`]).
//!
//! Reads aggregate in SQL (one query per kind of row, not one per
//! conversation) so `list` stays fast on a database with thousands of
//! conversations. The online backup is `VACUUM INTO`: it reads one
//! consistent snapshot (a WAL read transaction) while other processes keep
//! committing, and writes a compact, self-contained file with no `-wal`.

use std::path::Path;

use rusqlite::params;

use super::rows::{audit_entry, conversation, participant, status};
use super::{SqliteStore, SqliteTx};
use crate::audit;
use crate::auth::TokenHash;
use crate::clock::Millis;
use crate::store::admin::{
    AdminStore, AdminTx, AuditFilter, ConversationRow, DbFigures, Delivery, PurgeCounts, UnreadCount,
};
use crate::store::{Conversation, Error, Message, Participant, Result, Status};

impl AdminTx for SqliteTx {
    async fn conversation_rows(&mut self) -> Result<Vec<ConversationRow>> {
        self.rows(
            "SELECT c.id, c.created_at, c.expires_at, c.closed_at, \
                    count(m.seq) AS messages, max(m.created_at) AS last_message_at \
             FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id \
             GROUP BY c.id ORDER BY c.created_at, c.id",
            [],
            |r| {
                Ok(ConversationRow {
                    conversation: conversation(r)?,
                    messages: r.get("messages")?,
                    last_message_at: r.get("last_message_at")?,
                })
            },
        )
    }

    async fn all_participants(&mut self) -> Result<Vec<Participant>> {
        self.rows(
            "SELECT * FROM participants ORDER BY conversation_id, session_id",
            [],
            participant,
        )
    }

    async fn unread_counts(&mut self) -> Result<Vec<UnreadCount>> {
        // Served by the partial index `deliveries_pending`.
        self.rows(
            "SELECT conversation_id, recipient, count(*) AS unread FROM deliveries \
             WHERE delivered_at IS NULL GROUP BY conversation_id, recipient",
            [],
            |r| {
                Ok(UnreadCount {
                    conversation_id: r.get("conversation_id")?,
                    recipient: r.get("recipient")?,
                    unread: r.get("unread")?,
                })
            },
        )
    }

    async fn all_statuses(&mut self) -> Result<Vec<Status>> {
        self.sealed_rows(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = status.conversation_id) AS dek FROM status ORDER BY conversation_id, session_id",
            [],
            status,
        )
    }

    async fn deliveries_after(&mut self, conversation_id: &str, after: i64) -> Result<Vec<Delivery>> {
        self.rows(
            "SELECT message_seq, recipient, delivered_at FROM deliveries \
             WHERE conversation_id = +?1 AND message_seq > +?2 ORDER BY message_seq, recipient",
            params![conversation_id, after],
            |r| {
                Ok(Delivery {
                    message_seq: r.get("message_seq")?,
                    recipient: r.get("recipient")?,
                    delivered_at: r.get("delivered_at")?,
                })
            },
        )
    }

    async fn message_totals(&mut self, conversation_id: &str) -> Result<(i64, Option<Millis>)> {
        Ok(self
            .row(
                "SELECT count(*) AS n, max(created_at) AS last FROM messages WHERE conversation_id = ?1",
                [conversation_id],
                |r| Ok((r.get("n")?, r.get("last")?)),
            )?
            .unwrap_or((0, None)))
    }

    async fn audit_filtered(
        &mut self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<audit::Entry>> {
        // NULL parameters switch a condition off, so one static statement
        // serves every combination of filters.
        self.rows(
            "SELECT * FROM audit WHERE seq > ?1 \
             AND (?2 IS NULL OR conversation_id = ?2) \
             AND (?3 IS NULL OR action GLOB ?3) \
             AND (?4 IS NULL OR at >= ?4) \
             AND (?5 IS NULL OR at < ?5) \
             ORDER BY seq LIMIT ?6",
            params![
                after,
                filter.conversation_id,
                filter.action_glob,
                filter.since,
                filter.until,
                limit
            ],
            audit_entry,
        )
    }

    async fn ended_before(&mut self, cutoff: Millis) -> Result<Vec<Conversation>> {
        self.rows(
            "SELECT * FROM conversations \
             WHERE min(expires_at, coalesce(closed_at, expires_at)) <= ?1 ORDER BY created_at, id",
            [cutoff],
            conversation,
        )
    }

    async fn named_kek_id(&mut self) -> Result<Option<String>> {
        self.row("SELECT kek_id FROM key_state WHERE id = 1", [], |r| r.get(0))
    }

    async fn wrapped_data_keys(&mut self) -> Result<Vec<(String, String)>> {
        self.rows(
            "SELECT conversation_id, wrapped FROM conversation_keys ORDER BY conversation_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    async fn rewrap_data_keys(&mut self, to: &crate::seal::Kek) -> Result<u64> {
        let keys = self.wrapped_data_keys().await?;
        for (id, wrapped) in &keys {
            let rewrapped = to.wrap(&self.keys.unwrap(wrapped, id)?, id);
            self.exec(
                "UPDATE conversation_keys SET wrapped = ?1 WHERE conversation_id = ?2",
                [&rewrapped, id],
            )?;
        }
        self.exec(
            "INSERT INTO key_state (id, kek_id) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET kek_id = excluded.kek_id",
            [to.id()],
        )?;
        Ok(keys.len() as u64)
    }

    async fn purge_conversation(&mut self, conversation_id: &str) -> Result<PurgeCounts> {
        let id = [conversation_id];
        // The data key first: the rest is then unreadable wherever a copy
        // of it lies. Children next, so the counts are exact whatever
        // ON DELETE CASCADE would have removed silently.
        let data_keys = self.exec("DELETE FROM conversation_keys WHERE conversation_id = ?1", id)?;
        let deliveries = self.exec("DELETE FROM deliveries WHERE conversation_id = ?1", id)?;
        let messages = self.exec("DELETE FROM messages WHERE conversation_id = ?1", id)?;
        let status = self.exec("DELETE FROM status WHERE conversation_id = ?1", id)?;
        // Rate keys are `send:<id>/<session>` and `read:<id>/<session>`; ids
        // are hex, so they hold no GLOB metacharacters.
        let rate_events = self.exec("DELETE FROM rate_events WHERE key GLOB '*:' || ?1 || '/*'", id)?;
        let participants = self.exec("DELETE FROM participants WHERE conversation_id = ?1", id)?;
        let conversations = self.exec("DELETE FROM conversations WHERE id = ?1", id)?;
        let n = |v: u64| v as i64;
        Ok(PurgeCounts {
            conversations: n(conversations),
            messages: n(messages),
            deliveries: n(deliveries),
            participants: n(participants),
            status: n(status),
            rate_events: n(rate_events),
            data_keys: n(data_keys),
        })
    }

    async fn replace_token(
        &mut self,
        conversation_id: &str,
        session_id: &str,
        hash: &TokenHash,
        at: Millis,
    ) -> Result<bool> {
        let changed = self.exec(
            "UPDATE participants SET token_hash = ?1, token_created_at = ?2, revoked_at = NULL \
             WHERE conversation_id = ?3 AND session_id = ?4",
            params![hash.0, at, conversation_id, session_id],
        )?;
        Ok(changed == 1)
    }

    async fn revoke(&mut self, conversation_id: &str, session_id: &str, at: Millis) -> Result<bool> {
        let changed = self.exec(
            "UPDATE participants SET revoked_at = coalesce(revoked_at, ?1) \
             WHERE conversation_id = ?2 AND session_id = ?3",
            params![at, conversation_id, session_id],
        )?;
        Ok(changed == 1)
    }

    async fn close_conversation(&mut self, conversation_id: &str, at: Millis) -> Result<bool> {
        let changed = self.exec(
            "UPDATE conversations SET closed_at = coalesce(closed_at, ?1) WHERE id = ?2",
            params![at, conversation_id],
        )?;
        Ok(changed == 1)
    }

    async fn set_delivered(&mut self, message_seq: i64, recipient: &str, at: Millis) -> Result<()> {
        self.exec(
            "UPDATE deliveries SET delivered_at = ?1 WHERE message_seq = ?2 AND recipient = ?3",
            params![at, message_seq, recipient],
        )?;
        Ok(())
    }

    async fn search_messages(&mut self, query: &str, limit: i64) -> Result<Vec<Message>> {
        self.search(query, limit)
    }

    async fn figures(&mut self, now: Millis) -> Result<DbFigures> {
        let figures = self.row(
            "SELECT \
               (SELECT count(*) FROM conversations) AS conversations, \
               (SELECT count(*) FROM conversations WHERE closed_at IS NULL AND expires_at > ?1) AS active, \
               (SELECT count(*) FROM conversations WHERE expires_at <= ?1) AS expired, \
               (SELECT count(*) FROM conversations WHERE closed_at IS NOT NULL AND expires_at > ?1) AS closed, \
               (SELECT count(*) FROM messages) AS messages, \
               (SELECT count(*) FROM deliveries WHERE delivered_at IS NULL) AS unread, \
               (SELECT count(*) FROM audit) AS audit_entries",
            [now],
            |r| {
                Ok(DbFigures {
                    conversations: r.get("conversations")?,
                    active: r.get("active")?,
                    expired: r.get("expired")?,
                    closed: r.get("closed")?,
                    messages: r.get("messages")?,
                    unread: r.get("unread")?,
                    audit_entries: r.get("audit_entries")?,
                    database_bytes: 0,
                })
            },
        )?;
        let mut figures = figures.ok_or_else(|| Error::internal("the figures query gave no row"))?;
        figures.database_bytes = database_bytes(self.conn())?;
        Ok(figures)
    }

    async fn unaudited_conversation(&mut self) -> Result<Option<String>> {
        // Served by the index `audit_by_conversation`.
        self.row(
            "SELECT c.id FROM conversations c \
             WHERE NOT EXISTS (SELECT 1 FROM audit a WHERE a.conversation_id = c.id) \
             ORDER BY c.created_at, c.id LIMIT 1",
            [],
            |r| r.get(0),
        )
    }
}

/// The file's size as SQLite sees it (pages in use times page size).
fn database_bytes(conn: &rusqlite::Connection) -> Result<i64> {
    let page_count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(page_count * page_size)
}

impl AdminStore for SqliteStore {
    async fn size_bytes(&self) -> Result<i64> {
        self.with_conn(database_bytes).await
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
        let result = self
            .with_conn(|conn| {
                conn.execute("VACUUM INTO ?1", [&text])?;
                Ok(())
            })
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
        self.with_conn(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows.into_iter().filter(|r| r != "ok").collect())
        })
        .await
    }

    async fn migrations_current(&self) -> Result<bool> {
        let path = self.path().to_owned();
        self.with_conn(move |conn| match super::migrate::pending(conn, &path) {
            Ok(n) => Ok(n == 0),
            Err(Error::NotABridgeDatabase { .. }) => Ok(false),
            Err(e) => Err(e),
        })
        .await
    }

    async fn schema_problems(&self) -> Result<Vec<String>> {
        self.with_conn(super::schema::differences).await
    }

    async fn shutdown(&self) {
        self.close().await;
    }
}
