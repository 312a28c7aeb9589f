//! [`YoloTx`] for SQLite.

use sqlx::Row;

use super::Result;
use super::sqlite::SqliteTx;
use super::yolo::{Approval, Proposal, YoloTx};
use crate::clock::Millis;

fn proposal_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Proposal> {
    Ok(Proposal {
        id: r.try_get("id")?,
        conversation_id: r.try_get("conversation_id")?,
        proposer: r.try_get("proposer")?,
        command: r.try_get("command")?,
        mode: r.try_get("mode")?,
        workspace: r.try_get("workspace")?,
        cwd: r.try_get("cwd")?,
        reason: r.try_get("reason")?,
        allowed: r.try_get::<i64, _>("allowed")? != 0,
        verdict: r.try_get("verdict")?,
        plan_hash: r.try_get("plan_hash")?,
        state: r.try_get("state")?,
        created_at: r.try_get("created_at")?,
        decided_at: r.try_get("decided_at")?,
    })
}

impl YoloTx for SqliteTx {
    async fn insert_proposal(&mut self, p: &Proposal) -> Result<()> {
        sqlx::query(
            "INSERT INTO proposals (id, conversation_id, proposer, command, mode, workspace, cwd, reason, \
             allowed, verdict, plan_hash, state, created_at, decided_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.conversation_id)
        .bind(&p.proposer)
        .bind(&p.command)
        .bind(&p.mode)
        .bind(&p.workspace)
        .bind(&p.cwd)
        .bind(&p.reason)
        .bind(i64::from(p.allowed))
        .bind(&p.verdict)
        .bind(&p.plan_hash)
        .bind(&p.state)
        .bind(p.created_at)
        .bind(p.decided_at)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn proposal(&mut self, id: &str) -> Result<Option<Proposal>> {
        let row = sqlx::query("SELECT * FROM proposals WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.0)
            .await?;
        row.as_ref().map(proposal_from_row).transpose()
    }

    async fn proposals(&mut self, state: Option<&str>, limit: i64) -> Result<Vec<Proposal>> {
        let rows = sqlx::query(
            "SELECT * FROM proposals WHERE (?1 IS NULL OR state = ?1) ORDER BY created_at DESC LIMIT ?2",
        )
        .bind(state)
        .bind(limit)
        .fetch_all(&mut *self.0)
        .await?;
        rows.iter().map(proposal_from_row).collect()
    }

    async fn set_proposal_state(&mut self, id: &str, from: &str, state: &str, at: Millis) -> Result<bool> {
        let done = sqlx::query("UPDATE proposals SET state = ?, decided_at = ? WHERE id = ? AND state = ?")
            .bind(state)
            .bind(at)
            .bind(id)
            .bind(from)
            .execute(&mut *self.0)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_approval(&mut self, a: &Approval) -> Result<()> {
        sqlx::query(
            "INSERT INTO approvals (proposal_id, bound_hash, seal, approved_at, expires_at, used_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.proposal_id)
        .bind(&a.bound_hash)
        .bind(&a.seal)
        .bind(a.approved_at)
        .bind(a.expires_at)
        .bind(a.used_at)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn approval(&mut self, proposal_id: &str) -> Result<Option<Approval>> {
        let row = sqlx::query("SELECT * FROM approvals WHERE proposal_id = ?")
            .bind(proposal_id)
            .fetch_optional(&mut *self.0)
            .await?;
        row.map(|r| {
            Ok(Approval {
                proposal_id: r.try_get("proposal_id")?,
                bound_hash: r.try_get("bound_hash")?,
                seal: r.try_get("seal")?,
                approved_at: r.try_get("approved_at")?,
                expires_at: r.try_get("expires_at")?,
                used_at: r.try_get("used_at")?,
            })
        })
        .transpose()
    }

    async fn use_approval(&mut self, proposal_id: &str, at: Millis) -> Result<bool> {
        let done = sqlx::query("UPDATE approvals SET used_at = ? WHERE proposal_id = ? AND used_at IS NULL")
            .bind(at)
            .bind(proposal_id)
            .execute(&mut *self.0)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
