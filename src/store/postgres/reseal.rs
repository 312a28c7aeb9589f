//! [`crate::store::reseal`] for PostgreSQL: one batch of legacy rows
//! sealed (the same steps as `store/sqlite/reseal.rs`).

use std::collections::HashMap;

use super::PgTx;
use super::rows::status_as_stored;
use super::yolo::proposal_as_stored;
use crate::seal::DataKey;
use crate::store::sealing::{reseal_value, seal_message_field, seal_proposal, seal_status};
use crate::store::yolo::Proposal;
use crate::store::{Result, Status};

/// `text NOT LIKE 'mcpb-sealed:v1:%'`, without LIKE's wildcards.
macro_rules! unsealed {
    ($col:literal) => {
        concat!("substr(", $col, ", 1, 15) <> 'mcpb-sealed:v1:'")
    };
}

impl PgTx {
    pub(super) async fn reseal_done(&self) -> Result<bool> {
        Ok(self
            .row("SELECT 1 FROM reseal_done WHERE id = 1", &[], |_| Ok(()))
            .await?
            .is_some())
    }

    pub(super) async fn reseal(&self, limit: i64) -> Result<u64> {
        if self.reseal_done().await? {
            return Ok(0);
        }
        let mut changed = 0u64;
        let missing: Vec<String> = self
            .rows(
                "SELECT id FROM conversations c WHERE NOT EXISTS \
                 (SELECT 1 FROM conversation_keys k WHERE k.conversation_id = c.id) LIMIT $1",
                &[&limit],
                |r| r.try_get(0),
            )
            .await?;
        for id in &missing {
            changed += self
                .exec(
                    "INSERT INTO conversation_keys (conversation_id, wrapped) VALUES ($1, $2)",
                    &[id, &self.new_wrapped_key(id).await?],
                )
                .await?;
        }
        let mut keys: HashMap<String, DataKey> = HashMap::new();
        let messages: Vec<(i64, String, String, String, String)> = self
            .rows(
                concat!(
                    "SELECT seq, conversation_id, sender, body, files FROM messages WHERE ",
                    unsealed!("body"),
                    " OR ",
                    unsealed!("files"),
                    " LIMIT $1"
                ),
                &[&limit],
                |r| {
                    Ok((
                        r.try_get(0)?,
                        r.try_get(1)?,
                        r.try_get(2)?,
                        r.try_get(3)?,
                        r.try_get(4)?,
                    ))
                },
            )
            .await?;
        for (seq, conversation_id, sender, body, files) in messages {
            let key = self.key_for(&mut keys, &conversation_id).await?;
            let seal =
                |field, text: &str| seal_message_field(key, &conversation_id, &sender, seq, field, text);
            let body = reseal_value(body, |b| seal("body", b));
            let files = reseal_value(files, |f| seal("files", f));
            changed += self
                .exec(
                    "UPDATE messages SET body = $1, files = $2 WHERE seq = $3",
                    &[&body, &files, &seq],
                )
                .await?;
        }
        let notes: Vec<Status> = self
            .rows(
                concat!(
                    "SELECT * FROM status WHERE note IS NOT NULL AND ",
                    unsealed!("note"),
                    " LIMIT $1"
                ),
                &[&limit],
                status_as_stored,
            )
            .await?;
        for s in notes {
            let note = seal_status(self.key_for(&mut keys, &s.conversation_id).await?, &s);
            changed += self
                .exec(
                    "UPDATE status SET note = $1 WHERE conversation_id = $2 AND session_id = $3",
                    &[&note, &s.conversation_id, &s.session_id],
                )
                .await?;
        }
        let proposals: Vec<Proposal> = self
            .rows(
                concat!(
                    "SELECT * FROM proposals WHERE ",
                    unsealed!("command"),
                    " LIMIT $1"
                ),
                &[&limit],
                proposal_as_stored,
            )
            .await?;
        for p in proposals {
            let sealed = seal_proposal(self.key_for(&mut keys, &p.conversation_id).await?, &p);
            changed += self
                .exec(
                    "UPDATE proposals SET command = $1, reason = $2, cwd = $3, workspace = $4 WHERE id = $5",
                    &[
                        &sealed.command,
                        &sealed.reason,
                        &sealed.cwd,
                        &sealed.workspace,
                        &p.id,
                    ],
                )
                .await?;
        }
        if changed == 0 {
            self.exec(
                "INSERT INTO reseal_done (id, done_at) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                &[&chrono::Utc::now().timestamp_millis()],
            )
            .await?;
        }
        Ok(changed)
    }

    /// `conversation_id`'s data key, unwrapped once per batch.
    async fn key_for<'k>(
        &self,
        keys: &'k mut HashMap<String, DataKey>,
        conversation_id: &str,
    ) -> Result<&'k DataKey> {
        if !keys.contains_key(conversation_id) {
            let key = self.data_key(conversation_id).await?;
            keys.insert(conversation_id.to_owned(), key);
        }
        Ok(&keys[conversation_id])
    }
}
