//! The data keys a SQLite transaction seals and opens rows with, and the
//! query helpers that return rows opened (see [`crate::store::sealing`]).

use rusqlite::{Params, Row};

use super::SqliteTx;
use crate::seal::DataKey;
use crate::store::Result;
use crate::store::sealing::{Sealed, SealedFields, open_all, open_one};

impl SqliteTx {
    /// A new data key for `conversation_id`, wrapped under the KEK the
    /// database names as current (naming this process's if it names none).
    pub(super) fn new_wrapped_key(&self, conversation_id: &str) -> Result<String> {
        let named: Option<String> =
            self.row("SELECT kek_id FROM key_state WHERE id = 1", [], |r| r.get(0))?;
        let kek = self.keys.wrapping_kek(named.as_deref())?;
        if named.is_none() {
            self.exec("INSERT INTO key_state (id, kek_id) VALUES (1, ?1)", [kek.id()])?;
        }
        Ok(kek.wrap(&DataKey::generate(), conversation_id))
    }

    /// The data key of `conversation_id`, unwrapped (an internal error if
    /// the conversation has none: it was purged, or never existed).
    pub(super) fn data_key(&self, conversation_id: &str) -> Result<DataKey> {
        let wrapped: Option<String> = self.row(
            "SELECT wrapped FROM conversation_keys WHERE conversation_id = ?1",
            [conversation_id],
            |r| r.get(0),
        )?;
        let wrapped = wrapped.ok_or(crate::seal::Error::NoDataKey)?;
        Ok(self.keys.unwrap(&wrapped, conversation_id)?)
    }

    /// [`SqliteTx::rows`] for rows with sealed fields, opened.
    pub(super) fn sealed_rows<T: SealedFields>(
        &self,
        sql: &str,
        params: impl Params,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<Sealed<T>>,
    ) -> Result<Vec<T>> {
        Ok(open_all(&self.keys, self.rows(sql, params, map)?)?)
    }

    /// [`SqliteTx::row`] for a row with sealed fields, opened.
    pub(super) fn sealed_row<T: SealedFields>(
        &self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<Sealed<T>>,
    ) -> Result<Option<T>> {
        Ok(open_one(&self.keys, self.row(sql, params, map)?)?)
    }
}
