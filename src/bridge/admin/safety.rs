//! Safety copies: `backup` writes an online copy and records it; `restore`
//! checks a copy with [`Bridge::restore_check`] (in `integrity`, which it
//! shares with `audit verify`), closes the store and records where the
//! restored database came from.

use std::path::Path;

use serde_json::json;

use super::AdminResult;
use crate::bridge::Bridge;
use crate::store::Tx;
use crate::store::admin::AdminStore;

impl<S: AdminStore> Bridge<S> {
    /// Size of the live database, for a backup's progress bar.
    pub async fn database_size(&self) -> AdminResult<i64> {
        Ok(self.store.size_bytes().await?)
    }

    /// Writes a consistent online copy of the whole database to `dest`
    /// (which must not exist) while agents keep writing, then records the
    /// backup in the live trail. The copy holds every transaction committed
    /// before it started and none after.
    pub async fn backup(&self, dest: &Path) -> AdminResult<i64> {
        self.store.backup_to(dest).await?;
        let bytes = std::fs::metadata(dest).map(|m| m.len() as i64).unwrap_or(0);
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let seq = self
            .admin_audit(
                &mut tx,
                now,
                "database.backup",
                None,
                json!({ "path": dest.display().to_string(), "bytes": bytes }),
            )
            .await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Closes the store's connections (before its file is renamed).
    pub async fn shutdown(&self) {
        self.store.shutdown().await;
    }
}
