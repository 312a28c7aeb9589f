//! [`AgentTx`] for SQLite: the `agents` table of migration 0005.

use rusqlite::{Row, params};

use super::SqliteTx;
use crate::auth::TokenHash;
use crate::clock::Millis;
use crate::store::agents::{Agent, AgentRole, AgentTx};
use crate::store::{Error, Result};

/// A `SELECT` of every column, built at compile time: an agent-mode server
/// looks its agent up in every call, so no statement text is formatted then.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, role, credential_hash, created_at, rotated_at, revoked_at FROM agents ",
            $rest
        )
    };
}

fn agent_from_row(r: &Row<'_>) -> rusqlite::Result<Agent> {
    let role: String = r.get("role")?;
    // The CHECK constraint admits only the three words; anything else means
    // the file was edited outside the bridge.
    let role = AgentRole::parse(&role).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            "unknown agent role in the database".into(),
        )
    })?;
    Ok(Agent {
        id: r.get("id")?,
        name: r.get("name")?,
        role,
        credential_hash: TokenHash(r.get("credential_hash")?),
        created_at: r.get("created_at")?,
        rotated_at: r.get("rotated_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

/// One changed row, or the broken invariant the caller's read ruled out.
fn one_row(changed: u64) -> Result<()> {
    match changed {
        1 => Ok(()),
        _ => Err(Error::internal("no agent has this id")),
    }
}

impl AgentTx for SqliteTx {
    async fn insert_agent(
        &mut self,
        name: &str,
        role: AgentRole,
        hash: &TokenHash,
        at: Millis,
    ) -> Result<i64> {
        self.exec(
            "INSERT INTO agents (name, role, credential_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), hash.0, at],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    async fn agent(&mut self, id: i64) -> Result<Option<Agent>> {
        self.row(select!("WHERE id = ?1"), [id], agent_from_row)
    }

    async fn agent_by_name(&mut self, name: &str) -> Result<Option<Agent>> {
        self.row(select!("WHERE name = ?1"), [name], agent_from_row)
    }

    async fn agent_by_credential(&mut self, hash: &TokenHash) -> Result<Option<Agent>> {
        self.row(select!("WHERE credential_hash = ?1"), [&hash.0], agent_from_row)
    }

    async fn seat_by_token(&mut self, hash: &TokenHash) -> Result<Option<(String, String)>> {
        self.row(
            "SELECT conversation_id, session_id FROM participants \
             WHERE token_hash = ?1 AND revoked_at IS NULL",
            [&hash.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    async fn agents(&mut self) -> Result<Vec<Agent>> {
        self.rows(select!("ORDER BY name"), [], agent_from_row)
    }

    async fn set_agent_credential(&mut self, id: i64, hash: &TokenHash, at: Millis) -> Result<()> {
        one_row(self.exec(
            "UPDATE agents SET credential_hash = ?1, rotated_at = ?2 WHERE id = ?3",
            params![hash.0, at, id],
        )?)
    }

    async fn revoke_agent(&mut self, id: i64, at: Millis) -> Result<()> {
        one_row(self.exec(
            "UPDATE agents SET revoked_at = coalesce(revoked_at, ?1) WHERE id = ?2",
            params![at, id],
        )?)
    }
}
