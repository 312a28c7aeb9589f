//! [`crate::store::reseal`] for SQLite: one batch of legacy rows sealed.

use std::collections::HashMap;

use rusqlite::params;

use super::SqliteTx;
use super::rows::status_as_stored;
use super::yolo::proposal_as_stored;
use crate::seal::{DataKey, SEALED_PREFIX};
use crate::store::sealing::{reseal_value, seal_message_field, seal_proposal, seal_status};
use crate::store::yolo::Proposal;
use crate::store::{Result, Status};

/// `text NOT LIKE 'mcpb-sealed:v1:%'`, without LIKE's wildcards.
macro_rules! unsealed {
    ($col:literal) => {
        concat!("substr(", $col, ", 1, 15) <> 'mcpb-sealed:v1:'")
    };
}

impl SqliteTx {
    pub(super) fn reseal_done(&self) -> Result<bool> {
        Ok(self
            .row("SELECT 1 FROM reseal_done WHERE id = 1", [], |_| Ok(()))?
            .is_some())
    }

    pub(super) fn reseal(&self, limit: i64) -> Result<u64> {
        debug_assert_eq!(SEALED_PREFIX.len(), 15);
        if self.reseal_done()? {
            return Ok(0);
        }
        let mut changed = 0u64;
        let missing: Vec<String> = self.rows(
            "SELECT id FROM conversations c WHERE NOT EXISTS \
             (SELECT 1 FROM conversation_keys k WHERE k.conversation_id = c.id) LIMIT ?1",
            [limit],
            |r| r.get(0),
        )?;
        for id in &missing {
            changed += self.exec(
                "INSERT INTO conversation_keys (conversation_id, wrapped) VALUES (?1, ?2)",
                params![id, self.new_wrapped_key(id)?],
            )?;
        }
        let mut keys = Keys::default();
        let messages: Vec<(i64, String, String, String, String)> = self.rows(
            concat!(
                "SELECT seq, conversation_id, sender, body, files FROM messages WHERE ",
                unsealed!("body"),
                " OR ",
                unsealed!("files"),
                " LIMIT ?1"
            ),
            [limit],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        for (seq, conversation_id, sender, body, files) in messages {
            let key = keys.get(self, &conversation_id)?;
            let seal =
                |field, text: &str| seal_message_field(key, &conversation_id, &sender, seq, field, text);
            let body = reseal_value(body, |b| seal("body", b));
            let files = reseal_value(files, |f| seal("files", f));
            changed += self.exec(
                "UPDATE messages SET body = ?1, files = ?2 WHERE seq = ?3",
                params![body, files, seq],
            )?;
        }
        let notes: Vec<Status> = self.rows(
            concat!(
                "SELECT * FROM status WHERE note IS NOT NULL AND ",
                unsealed!("note"),
                " LIMIT ?1"
            ),
            [limit],
            status_as_stored,
        )?;
        for s in notes {
            let note = seal_status(keys.get(self, &s.conversation_id)?, &s);
            changed += self.exec(
                "UPDATE status SET note = ?1 WHERE conversation_id = ?2 AND session_id = ?3",
                params![note, s.conversation_id, s.session_id],
            )?;
        }
        let proposals: Vec<Proposal> = self.rows(
            concat!(
                "SELECT * FROM proposals WHERE ",
                unsealed!("command"),
                " LIMIT ?1"
            ),
            [limit],
            proposal_as_stored,
        )?;
        for p in proposals {
            let sealed = seal_proposal(keys.get(self, &p.conversation_id)?, &p);
            changed += self.exec(
                "UPDATE proposals SET command = ?1, reason = ?2, cwd = ?3, workspace = ?4 WHERE id = ?5",
                params![sealed.command, sealed.reason, sealed.cwd, sealed.workspace, p.id],
            )?;
        }
        if changed == 0 {
            self.exec(
                "INSERT INTO reseal_done (id, done_at) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
                [chrono::Utc::now().timestamp_millis()],
            )?;
        }
        Ok(changed)
    }
}

/// Data keys unwrapped once per batch.
#[derive(Default)]
struct Keys(HashMap<String, DataKey>);

impl Keys {
    fn get(&mut self, tx: &SqliteTx, conversation_id: &str) -> Result<&DataKey> {
        if !self.0.contains_key(conversation_id) {
            let key = tx.data_key(conversation_id)?;
            self.0.insert(conversation_id.to_owned(), key);
        }
        Ok(&self.0[conversation_id])
    }
}
