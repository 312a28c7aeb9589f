//! Message search for the overseer (`search_messages`), over the FTS5 index
//! of migration 8.
//!
//! The index uses the trigram tokenizer, so a quoted phrase matches any
//! substring of three or more characters, case-insensitively (Unicode case
//! folding). Shorter queries have no trigram to look up; they fall back to
//! `LIKE` over the bodies, newest first, which stops after `limit` hits
//! (`LIKE` folds ASCII case only, a limit of SQLite without ICU).

use rusqlite::params;

use super::SqliteTx;
use super::rows::message;
use crate::store::admin::like_pattern;
use crate::store::{Message, Result};

/// The fewest characters the trigram index can look up.
const TRIGRAM: usize = 3;

impl SqliteTx {
    /// Up to `limit` messages whose body contains `query`, newest first.
    pub(super) fn search(&self, query: &str, limit: i64) -> Result<Vec<Message>> {
        if query.chars().count() >= TRIGRAM {
            self.rows(
                "SELECT * FROM messages WHERE seq IN \
                    (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1) \
                 ORDER BY seq DESC LIMIT ?2",
                params![fts_phrase(query), limit],
                message,
            )
        } else {
            self.rows(
                "SELECT * FROM messages WHERE body LIKE ?1 ESCAPE '\\' ORDER BY seq DESC LIMIT ?2",
                params![like_pattern(query), limit],
                message,
            )
        }
    }
}

/// `query` as one FTS5 phrase: inside double quotes nothing is an operator,
/// and a double quote is written twice.
fn fts_phrase(query: &str) -> String {
    format!("\"{}\"", query.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phrase_has_no_operator() {
        assert_eq!(fts_phrase(r#"a "b" OR c*"#), r#""a ""b"" OR c*""#);
    }
}
