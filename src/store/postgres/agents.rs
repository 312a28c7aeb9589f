//! [`AgentTx`] for PostgreSQL: the `agents` table of migration 0005, with
//! the same statements as the SQLite backend's.

use tokio_postgres::Row;

use super::PgTx;
use super::rows::RowResult;
use crate::auth::TokenHash;
use crate::clock::Millis;
use crate::store::agents::{Agent, AgentAndConversation, AgentRole, AgentTx};
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

/// A row, with its role word still to be checked.
fn agent_from_row(r: &Row) -> RowResult<(Agent, Option<String>)> {
    let word: String = r.try_get("role")?;
    let role = AgentRole::parse(&word);
    Ok((
        Agent {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            role: role.unwrap_or(AgentRole::Observer),
            credential_hash: TokenHash(r.try_get("credential_hash")?),
            created_at: r.try_get("created_at")?,
            rotated_at: r.try_get("rotated_at")?,
            revoked_at: r.try_get("revoked_at")?,
        },
        role.is_none().then_some(word),
    ))
}

/// The agent, unless its role word is unknown: the CHECK constraint admits
/// only the three words, so anything else means the table was edited
/// outside the bridge, and nothing is granted on it.
fn checked((agent, unknown): (Agent, Option<String>)) -> Result<Agent> {
    match unknown {
        None => Ok(agent),
        Some(_) => Err(Error::internal("unknown agent role in the database")),
    }
}

/// One changed row, or the broken invariant the caller's read ruled out.
fn one_row(changed: u64) -> Result<()> {
    match changed {
        1 => Ok(()),
        _ => Err(Error::internal("no agent has this id")),
    }
}

impl super::PgStore {
    /// [`Store::agent_by_credential_now`](crate::store::Store::agent_by_credential_now)
    /// in one autocommit statement on a pooled connection: one round trip
    /// instead of `BEGIN`, the query and `ROLLBACK`.
    pub(super) async fn agent_by_credential_now(&self, hash: &TokenHash) -> Result<Option<Agent>> {
        let conn = self.connection().await?;
        let stmt = conn.prepare_cached(select!("WHERE credential_hash = $1")).await?;
        match conn.query_opt(&stmt, &[&hash.0]).await? {
            Some(row) => Ok(Some(checked(agent_from_row(&row)?)?)),
            None => Ok(None),
        }
    }
}

impl AgentTx for PgTx {
    async fn insert_agent(
        &mut self,
        name: &str,
        role: AgentRole,
        hash: &TokenHash,
        at: Millis,
    ) -> Result<i64> {
        self.row(
            "INSERT INTO agents (name, role, credential_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&name, &role.as_str(), &hash.0, &at],
            |r| r.try_get(0),
        )
        .await?
        .ok_or_else(|| Error::internal("INSERT ... RETURNING gave no row"))
    }

    async fn agent(&mut self, id: i64) -> Result<Option<Agent>> {
        self.row(select!("WHERE id = $1"), &[&id], agent_from_row)
            .await?
            .map(checked)
            .transpose()
    }

    async fn agent_and_conversation(
        &mut self,
        agent_id: i64,
        conversation_id: &str,
        lock: bool,
    ) -> Result<AgentAndConversation> {
        let (rows, conversation) = self
            .rows_and_conversation(select!("WHERE id = $1"), &[&agent_id], conversation_id, lock)
            .await?;
        let agent = match rows.first() {
            Some(r) => Some(checked(agent_from_row(r)?)?),
            None => None,
        };
        Ok((agent, conversation))
    }

    async fn agent_by_name(&mut self, name: &str) -> Result<Option<Agent>> {
        self.row(select!("WHERE name = $1"), &[&name], agent_from_row)
            .await?
            .map(checked)
            .transpose()
    }

    async fn agent_by_credential(&mut self, hash: &TokenHash) -> Result<Option<Agent>> {
        self.row(select!("WHERE credential_hash = $1"), &[&hash.0], agent_from_row)
            .await?
            .map(checked)
            .transpose()
    }

    async fn seat_by_token(&mut self, hash: &TokenHash) -> Result<Option<(String, String)>> {
        self.row(
            "SELECT conversation_id, session_id FROM participants \
             WHERE token_hash = $1 AND revoked_at IS NULL",
            &[&hash.0],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )
        .await
    }

    async fn agents(&mut self) -> Result<Vec<Agent>> {
        // Byte order, as SQLite's default BINARY collation sorts names.
        self.rows(select!("ORDER BY name COLLATE \"C\""), &[], agent_from_row)
            .await?
            .into_iter()
            .map(checked)
            .collect()
    }

    async fn set_agent_credential(&mut self, id: i64, hash: &TokenHash, at: Millis) -> Result<()> {
        one_row(
            self.exec(
                "UPDATE agents SET credential_hash = $1, rotated_at = $2 WHERE id = $3",
                &[&hash.0, &at, &id],
            )
            .await?,
        )
    }

    async fn revoke_agent(&mut self, id: i64, at: Millis) -> Result<()> {
        one_row(
            self.exec(
                "UPDATE agents SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2",
                &[&at, &id],
            )
            .await?,
        )
    }
}
