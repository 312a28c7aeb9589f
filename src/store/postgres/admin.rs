//! PostgreSQL implementation of the overseer's queries ([`AdminTx`],
//! [`AdminStore`]): the same statements and results as the SQLite backend's,
//! with PostgreSQL's spelling (`LEAST`, a regular expression for `GLOB`).

use std::path::Path;

use super::rows::{audit_entry, conversation, message, participant, status};
use super::{PgStore, PgTx};
use crate::audit;
use crate::auth::TokenHash;
use crate::clock::Millis;
use crate::store::admin::{
    AdminStore, AdminTx, AuditFilter, ConversationRow, DbFigures, Delivery, PurgeCounts, UnreadCount,
};
use crate::store::sealing::body_matches;

/// Messages opened per statement while searching.
const SEARCH_PAGE: i64 = 256;
use crate::store::{Conversation, Error, Message, Participant, Result, Status};

impl AdminTx for PgTx {
    async fn conversation_rows(&mut self) -> Result<Vec<ConversationRow>> {
        self.rows(
            "SELECT c.id, c.created_at, c.expires_at, c.closed_at, \
                    count(m.seq) AS messages, max(m.created_at) AS last_message_at \
             FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id \
             GROUP BY c.id ORDER BY c.created_at, c.id",
            &[],
            |r| {
                Ok(ConversationRow {
                    conversation: conversation(r)?,
                    messages: r.try_get("messages")?,
                    last_message_at: r.try_get("last_message_at")?,
                })
            },
        )
        .await
    }

    async fn all_participants(&mut self) -> Result<Vec<Participant>> {
        self.rows(
            "SELECT * FROM participants ORDER BY conversation_id, session_id",
            &[],
            participant,
        )
        .await
    }

    async fn unread_counts(&mut self) -> Result<Vec<UnreadCount>> {
        // Served by the partial index `deliveries_pending`.
        self.rows(
            "SELECT conversation_id, recipient, count(*) AS unread FROM deliveries \
             WHERE delivered_at IS NULL GROUP BY conversation_id, recipient \
             ORDER BY conversation_id, recipient",
            &[],
            |r| {
                Ok(UnreadCount {
                    conversation_id: r.try_get("conversation_id")?,
                    recipient: r.try_get("recipient")?,
                    unread: r.try_get("unread")?,
                })
            },
        )
        .await
    }

    async fn all_statuses(&mut self) -> Result<Vec<Status>> {
        self.sealed_rows(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = status.conversation_id) AS dek FROM status ORDER BY conversation_id, session_id",
            &[],
            status,
        )
        .await
    }

    async fn deliveries_after(&mut self, conversation_id: &str, after: i64) -> Result<Vec<Delivery>> {
        self.rows(
            "SELECT message_seq, recipient, delivered_at FROM deliveries \
             WHERE conversation_id = $1 AND message_seq > $2 ORDER BY message_seq, recipient",
            &[&conversation_id, &after],
            |r| {
                Ok(Delivery {
                    message_seq: r.try_get("message_seq")?,
                    recipient: r.try_get("recipient")?,
                    delivered_at: r.try_get("delivered_at")?,
                })
            },
        )
        .await
    }

    async fn message_totals(&mut self, conversation_id: &str) -> Result<(i64, Option<Millis>)> {
        Ok(self
            .row(
                "SELECT count(*) AS n, max(created_at) AS last FROM messages WHERE conversation_id = $1",
                &[&conversation_id],
                |r| Ok((r.try_get("n")?, r.try_get("last")?)),
            )
            .await?
            .unwrap_or((0, None)))
    }

    async fn audit_filtered(
        &mut self,
        filter: &AuditFilter,
        after: i64,
        limit: i64,
    ) -> Result<Vec<audit::Entry>> {
        let action = match filter.action_glob.as_deref().map(glob_regex) {
            // A glob SQLite would match nothing with (an unclosed `[`).
            Some(None) => return Ok(Vec::new()),
            Some(Some(re)) => Some(re),
            None => None,
        };
        // NULL parameters switch a condition off, so one static statement
        // serves every combination of filters.
        self.rows(
            "SELECT * FROM audit WHERE seq > $1 \
             AND ($2::text IS NULL OR conversation_id = $2) \
             AND ($3::text IS NULL OR action ~ $3) \
             AND ($4::bigint IS NULL OR at >= $4) \
             AND ($5::bigint IS NULL OR at < $5) \
             ORDER BY seq LIMIT $6",
            &[
                &after,
                &filter.conversation_id,
                &action,
                &filter.since,
                &filter.until,
                &limit,
            ],
            audit_entry,
        )
        .await
    }

    async fn ended_before(&mut self, cutoff: Millis) -> Result<Vec<Conversation>> {
        self.rows(
            "SELECT * FROM conversations \
             WHERE LEAST(expires_at, coalesce(closed_at, expires_at)) <= $1 ORDER BY created_at, id",
            &[&cutoff],
            conversation,
        )
        .await
    }

    async fn named_kek_id(&mut self) -> Result<Option<String>> {
        self.row("SELECT kek_id FROM key_state WHERE id = 1", &[], |r| r.try_get(0))
            .await
    }

    async fn wrapped_data_keys(&mut self) -> Result<Vec<(String, String)>> {
        self.rows(
            "SELECT conversation_id, wrapped FROM conversation_keys ORDER BY conversation_id",
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )
        .await
    }

    async fn rewrap_data_keys(&mut self, to: &crate::seal::Kek) -> Result<u64> {
        let keys = self.wrapped_data_keys().await?;
        if !keys.is_empty() {
            // One statement for all of them: ids and new wrappings as arrays.
            let mut ids = Vec::with_capacity(keys.len());
            let mut wrapped = Vec::with_capacity(keys.len());
            for (id, w) in &keys {
                wrapped.push(to.wrap(&self.keys.unwrap(w, id)?, id));
                ids.push(id.clone());
            }
            self.exec(
                "UPDATE conversation_keys k SET wrapped = n.wrapped \
                 FROM unnest($1::text[], $2::text[]) AS n(id, wrapped) WHERE k.conversation_id = n.id",
                &[&ids, &wrapped],
            )
            .await?;
        }
        self.exec(
            "INSERT INTO key_state (id, kek_id) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET kek_id = excluded.kek_id",
            &[&to.id()],
        )
        .await?;
        Ok(keys.len() as u64)
    }

    async fn purge_conversation(&mut self, conversation_id: &str) -> Result<PurgeCounts> {
        let id: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&conversation_id];
        // The data key first: the rest is then unreadable wherever a copy
        // of it lies. Children next, so the counts are exact whatever
        // ON DELETE CASCADE would have removed silently.
        let data_keys = self
            .exec("DELETE FROM conversation_keys WHERE conversation_id = $1", &id)
            .await?;
        let deliveries = self
            .exec("DELETE FROM deliveries WHERE conversation_id = $1", &id)
            .await?;
        let messages = self
            .exec("DELETE FROM messages WHERE conversation_id = $1", &id)
            .await?;
        let status = self
            .exec("DELETE FROM status WHERE conversation_id = $1", &id)
            .await?;
        // Rate keys are `send:<id>/<session>` and `read:<id>/<session>`: the
        // SQLite backend's `GLOB '*:' || id || '/*'`, without LIKE's `_`
        // wildcard (ids contain `_`).
        let rate_events = self
            .exec(
                "DELETE FROM rate_events WHERE strpos(key, ':' || $1 || '/') > 0",
                &id,
            )
            .await?;
        let participants = self
            .exec("DELETE FROM participants WHERE conversation_id = $1", &id)
            .await?;
        let conversations = self.exec("DELETE FROM conversations WHERE id = $1", &id).await?;
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
        let changed = self
            .exec(
                "UPDATE participants SET token_hash = $1, token_created_at = $2, revoked_at = NULL \
                 WHERE conversation_id = $3 AND session_id = $4",
                &[&hash.0, &at, &conversation_id, &session_id],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn revoke(&mut self, conversation_id: &str, session_id: &str, at: Millis) -> Result<bool> {
        let changed = self
            .exec(
                "UPDATE participants SET revoked_at = coalesce(revoked_at, $1) \
                 WHERE conversation_id = $2 AND session_id = $3",
                &[&at, &conversation_id, &session_id],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn close_conversation(&mut self, conversation_id: &str, at: Millis) -> Result<bool> {
        let changed = self
            .exec(
                "UPDATE conversations SET closed_at = coalesce(closed_at, $1) WHERE id = $2",
                &[&at, &conversation_id],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn set_delivered(&mut self, message_seq: i64, recipient: &str, at: Millis) -> Result<()> {
        self.exec(
            "UPDATE deliveries SET delivered_at = $1 WHERE message_seq = $2 AND recipient = $3",
            &[&at, &message_seq, &recipient],
        )
        .await?;
        Ok(())
    }

    async fn search_messages(&mut self, query: &str, limit: i64) -> Result<Vec<Message>> {
        // Bodies are sealed, so no SQL can match them: pages newest first,
        // opened and matched in the process (see the SQLite backend's
        // search.rs for the reasoning).
        let needle = query.to_lowercase();
        let mut found = Vec::new();
        let mut before = i64::MAX;
        while (found.len() as i64) < limit {
            let page = self
                .sealed_rows(
                    "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = messages.conversation_id) AS dek \
                     FROM messages WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                    &[&before, &SEARCH_PAGE],
                    message,
                )
                .await?;
            let Some(last) = page.last() else { break };
            before = last.seq;
            let full = page.len() as i64 == SEARCH_PAGE;
            found.extend(page.into_iter().filter(|m| body_matches(&needle, &m.body)));
            if !full {
                break;
            }
        }
        found.truncate(limit.max(0) as usize);
        Ok(found)
    }

    async fn figures(&mut self, now: Millis) -> Result<DbFigures> {
        self.row(
            "SELECT \
               (SELECT count(*) FROM conversations) AS conversations, \
               (SELECT count(*) FROM conversations WHERE closed_at IS NULL AND expires_at > $1) AS active, \
               (SELECT count(*) FROM conversations WHERE expires_at <= $1) AS expired, \
               (SELECT count(*) FROM conversations WHERE closed_at IS NOT NULL AND expires_at > $1) AS closed, \
               (SELECT count(*) FROM messages) AS messages, \
               (SELECT count(*) FROM deliveries WHERE delivered_at IS NULL) AS unread, \
               (SELECT count(*) FROM audit) AS audit_entries, \
               pg_database_size(current_database()) AS database_bytes",
            &[&now],
            |r| {
                Ok(DbFigures {
                    conversations: r.try_get("conversations")?,
                    active: r.try_get("active")?,
                    expired: r.try_get("expired")?,
                    closed: r.try_get("closed")?,
                    messages: r.try_get("messages")?,
                    unread: r.try_get("unread")?,
                    audit_entries: r.try_get("audit_entries")?,
                    database_bytes: r.try_get("database_bytes")?,
                })
            },
        )
        .await?
        .ok_or_else(|| Error::internal("the figures query gave no row"))
    }

    async fn unaudited_conversation(&mut self) -> Result<Option<String>> {
        // Served by the index `audit_by_conversation`.
        self.row(
            "SELECT c.id FROM conversations c \
             WHERE NOT EXISTS (SELECT 1 FROM audit a WHERE a.conversation_id = c.id) \
             ORDER BY c.created_at, c.id LIMIT 1",
            &[],
            |r| r.try_get(0),
        )
        .await
    }
}

/// The POSIX regular expression (anchored, case-sensitive) that matches
/// exactly what SQLite's `GLOB` pattern does: `*` any run, `?` one
/// character, `[...]` a set (`[^...]` its complement, `]` first is
/// literal, `a-z` a range); anything else literally. `None` for a pattern
/// with an unclosed `[`, which SQLite's GLOB matches with nothing.
pub(super) fn glob_regex(glob: &str) -> Option<String> {
    let mut out = String::from("^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                let mut first = true;
                loop {
                    match chars.next()? {
                        ']' if !first => break,
                        // Escaped inside a bracket expression (ARE syntax).
                        c @ ('\\' | '[' | ']' | '^') => {
                            out.push('\\');
                            out.push(c);
                        }
                        c => out.push(c),
                    }
                    first = false;
                }
                out.push(']');
            }
            c if c.is_alphanumeric() || c == '_' => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out.push('$');
    Some(out)
}

impl AdminStore for PgStore {
    async fn size_bytes(&self) -> Result<i64> {
        let conn = self.connection().await?;
        let row = conn
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?;
        Ok(row.try_get(0)?)
    }

    /// A PostgreSQL database is copied with its own tools (`pg_dump`, or
    /// the operator's base backups), which know its roles, extensions and
    /// versions; the bridge does not reimplement them.
    async fn backup_to(&self, _dest: &Path) -> Result<()> {
        Err(Error::Unsupported(
            "`backup` copies a SQLite file; back up a PostgreSQL database with pg_dump (see docs/deployment.md)",
        ))
    }

    /// PostgreSQL checks its own pages (checksums, WAL) as it reads them;
    /// a deeper check is `pg_amcheck`, run by the operator. Here: every
    /// table of the schema can be read to its end.
    async fn migrations_current(&self) -> Result<bool> {
        let conn = self.connection().await?;
        match super::migrate::pending(&conn, self.target()).await {
            Ok(n) => Ok(n == 0),
            Err(Error::NotABridgeDatabase { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn integrity_check(&self) -> Result<Vec<String>> {
        let conn = self.connection().await?;
        let mut problems = Vec::new();
        for table in [
            "conversations",
            "participants",
            "messages",
            "deliveries",
            "status",
            "rate_events",
            "audit",
            "proposals",
            "approvals",
            "refusal_tally",
            "agents",
        ] {
            if let Err(e) = conn.batch_execute(&format!("SELECT count(*) FROM {table}")).await {
                tracing::warn!(error = %e, table, "integrity check: table unreadable");
                problems.push(format!("table {table:?} cannot be read to its end"));
            }
        }
        Ok(problems)
    }

    async fn schema_problems(&self) -> Result<Vec<String>> {
        let conn = self.connection().await?;
        super::schema::differences(conn).await
    }

    async fn shutdown(&self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::glob_regex;

    #[test]
    fn globs_become_anchored_regexes() {
        for (glob, re) in [
            ("message.*", r"^message\..*$"),
            ("*.refused", r"^.*\.refused$"),
            ("a?c", "^a.c$"),
            ("[ab]x", "^[ab]x$"),
            ("[^ab]", "^[^ab]$"),
            ("[]a]", r"^[\]a]$"),
            ("a-z", r"^a\-z$"),
            ("[a-z]", "^[a-z]$"),
            ("(x)|y+", r"^\(x\)\|y\+$"),
        ] {
            assert_eq!(glob_regex(glob).as_deref(), Some(re), "{glob}");
        }
        assert_eq!(glob_regex("message[.*"), None);
    }
}
