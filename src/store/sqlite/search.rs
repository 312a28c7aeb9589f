//! Message search for the overseer (`search_messages`).
//!
//! Bodies are sealed at rest, so no index in the database can see them:
//! the search walks the messages newest first, a page at a time, opens
//! each body in the process and keeps those containing the query
//! (case-insensitive, Unicode), stopping after `limit` hits. It costs a
//! decryption per message walked (about a microsecond per kilobyte): fine
//! for an overseer's query, and no plaintext index leaks what the seals
//! protect.

use rusqlite::params;

use super::SqliteTx;
use super::rows::message;
use crate::store::sealing::body_matches;
use crate::store::{Message, Result};

/// Messages opened per statement while searching.
const PAGE: i64 = 256;

impl SqliteTx {
    /// Up to `limit` messages whose body contains `query`, newest first.
    pub(super) fn search(&self, query: &str, limit: i64) -> Result<Vec<Message>> {
        let needle = query.to_lowercase();
        let mut found = Vec::new();
        let mut before = i64::MAX;
        while (found.len() as i64) < limit {
            let page = self.sealed_rows(
                "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = messages.conversation_id) AS dek \
                 FROM messages WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
                params![before, PAGE],
                message,
            )?;
            let Some(last) = page.last() else { break };
            before = last.seq;
            let full = page.len() as i64 == PAGE;
            found.extend(page.into_iter().filter(|m| body_matches(&needle, &m.body)));
            if !full {
                break;
            }
        }
        found.truncate(limit.max(0) as usize);
        Ok(found)
    }
}
