//! Rotating the data keys' wrapping root: `mcp-bridge key rotate`, and
//! the rotation every purge makes so that backups taken before it cannot
//! yield the purged conversations.
//!
//! A rotation writes a new root to the key file, keeping the old one as
//! `kek-previous`, re-wraps every conversation's data key under the new
//! one in one transaction (with its audit entry), then rewrites the file
//! without the old root, which no copy of the database can then open. The
//! messages are never touched: only 72 bytes per conversation change. A
//! crash before the commit leaves the database on the old root, which the
//! file still holds; after it, the file holds both until the next rotation.

use serde::Serialize;
use serde_json::json;

use super::{AdminError, AdminResult};
use crate::bridge::Bridge;
use crate::seal::Kek;
use crate::seal::keyfile::{self, Roots};
use crate::seal::keys::KeyFile;
use crate::store::Tx;
use crate::store::admin::{AdminStore, AdminTx};

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRotated {
    /// The id of the wrapping key replaced (an id, never key material).
    pub from: String,
    /// The id of the new one.
    pub to: String,
    /// Data keys re-wrapped.
    pub data_keys: u64,
    /// The audit entry that records it.
    pub audit_seq: i64,
}

/// A rotation between its first file write and its last.
pub(super) struct Pending {
    file: KeyFile,
    new_root: crate::auth::ServerKey,
    pub(super) kek: std::sync::Arc<Kek>,
    pub(super) from: String,
}

impl<S: AdminStore> Bridge<S> {
    /// Rotates the data keys' wrapping root (`mcp-bridge key rotate`),
    /// online: agents' calls go on, each waiting at most for the one
    /// transaction that re-wraps the keys.
    pub async fn rotate_data_key_root(&self) -> AdminResult<KeyRotated> {
        let mut tx = self.store.begin_write().await?;
        let pending = self.begin_rotation(&mut tx).await?;
        let data_keys = tx.rewrap_data_keys(&pending.kek).await?;
        let now = self.now();
        let detail = json!({ "from": pending.from, "to": pending.kek.id(), "data_keys": data_keys });
        let audit_seq = self.admin_audit(&mut tx, now, "key.rotate", None, detail).await?;
        tx.commit().await?;
        let (from, to) = (pending.from.clone(), pending.kek.id().to_owned());
        self.finish_rotation(pending)?;
        Ok(KeyRotated {
            from,
            to,
            data_keys,
            audit_seq,
        })
    }

    /// Checks that every conversation's data key opens with this process's
    /// keys (`restore`, before a copy replaces the database): a copy taken
    /// before a purge or a rotation retired its wrapping key does not.
    pub async fn check_data_keys(&self) -> AdminResult<()> {
        let mut tx = self.store.begin_read().await?;
        let keys = tx.wrapped_data_keys().await?;
        drop(tx);
        let ring = self.store.keyring();
        let failed: Vec<crate::seal::Error> = keys
            .iter()
            .filter_map(|(id, wrapped)| ring.unwrap(wrapped, id).err())
            .collect();
        match failed.first() {
            None => Ok(()),
            Some(first) => Err(AdminError::KeyRotation(format!(
                "{} of {} conversations' data keys do not open with this key file ({first}). \
                 The copy was taken before a purge or `mcp-bridge key rotate` retired the wrapping key it \
                 was written under: restore it with the key file saved with it (`backup --with-key`, \
                 then `restore --with-key`); without that key file its messages cannot be read",
                failed.len(),
                keys.len()
            ))),
        }
    }

    /// The key file this process's keys came from, if it may rewrite it.
    pub(super) fn rotatable_key_file(&self) -> Option<KeyFile> {
        self.store.keyring().key_file()
    }

    /// Writes a new root to the key file (keeping the one the database's
    /// keys are wrapped under as `kek-previous`) and makes it this
    /// process's current KEK. Runs inside `tx`, the write transaction that
    /// will re-wrap the keys, so no other writer sees the file half-way.
    pub(super) async fn begin_rotation(&self, tx: &mut S::Tx) -> AdminResult<Pending> {
        let file = self.rotatable_key_file().ok_or_else(|| {
            AdminError::KeyRotation(
                "the server key comes from MCP_BRIDGE_KEY, which the bridge cannot rewrite: \
                 pass the key as a file (--key-file PATH, 0600) to rotate the data keys' wrapping key"
                    .into(),
            )
        })?;
        let roots = keyfile::read(&file.path)?;
        let named = tx.named_kek_id().await?;
        let candidates = [
            roots.current.as_ref(),
            roots.previous.as_ref(),
            Some(&file.server_key),
        ];
        let old_root = match &named {
            None => roots.current.clone().unwrap_or_else(|| file.server_key.clone()),
            Some(id) => candidates
                .into_iter()
                .flatten()
                .find(|root| Kek::derive(root).id() == id)
                .cloned()
                .ok_or_else(|| {
                    AdminError::KeyRotation(format!(
                        "the key file {} does not hold the wrapping key the database names (id {id}); \
                         use the key file this database was written with",
                        file.path.display()
                    ))
                })?,
        };
        let from = Kek::derive(&old_root).id().to_owned();
        let new_root = keyfile::generate_root();
        keyfile::write(
            &file.path,
            &file.server_key,
            &Roots {
                current: Some(new_root.clone()),
                previous: Some(old_root),
            },
        )?;
        let kek = self.store.keyring().install(&new_root);
        Ok(Pending {
            file,
            new_root,
            kek,
            from,
        })
    }

    /// After the re-wrap committed: the file keeps only the new root, and
    /// this process forgets the old one.
    pub(super) fn finish_rotation(&self, pending: Pending) -> AdminResult<()> {
        keyfile::write(
            &pending.file.path,
            &pending.file.server_key,
            &Roots {
                current: Some(pending.new_root),
                previous: None,
            },
        )?;
        self.store.keyring().retire_others();
        Ok(())
    }
}
