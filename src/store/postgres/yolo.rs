//! [`YoloTx`] for PostgreSQL: the same statements as the SQLite backend's.

use tokio_postgres::Row;

use super::PgTx;
use super::rows::{RowResult, sealed};
use crate::clock::Millis;
use crate::store::Result;
use crate::store::sealing::{Sealed, seal_proposal};
use crate::store::yolo::{Approval, Proposal, YoloTx};

/// A proposal row as stored (its text fields still sealed).
pub(super) fn proposal_as_stored(r: &Row) -> RowResult<Proposal> {
    Ok(Proposal {
        id: r.try_get("id")?,
        conversation_id: r.try_get("conversation_id")?,
        proposer: r.try_get("proposer")?,
        command: r.try_get("command")?,
        mode: r.try_get("mode")?,
        workspace: r.try_get("workspace")?,
        cwd: r.try_get("cwd")?,
        reason: r.try_get("reason")?,
        allowed: r.try_get("allowed")?,
        verdict: r.try_get("verdict")?,
        plan_hash: r.try_get("plan_hash")?,
        state: r.try_get("state")?,
        created_at: r.try_get("created_at")?,
        decided_at: r.try_get("decided_at")?,
    })
}

fn proposal_from_row(r: &Row) -> RowResult<Sealed<Proposal>> {
    sealed(r, proposal_as_stored(r)?)
}

fn approval_from_row(r: &Row) -> RowResult<Approval> {
    Ok(Approval {
        proposal_id: r.try_get("proposal_id")?,
        bound_hash: r.try_get("bound_hash")?,
        seal: r.try_get("seal")?,
        approved_at: r.try_get("approved_at")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
    })
}

impl YoloTx for PgTx {
    async fn insert_proposal(&mut self, p: &Proposal) -> Result<()> {
        let key = self.data_key(&p.conversation_id).await?;
        let p = &seal_proposal(&key, p);
        self.exec(
            "INSERT INTO proposals (id, conversation_id, proposer, command, mode, workspace, cwd, reason, \
             allowed, verdict, plan_hash, state, created_at, decided_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                &p.id,
                &p.conversation_id,
                &p.proposer,
                &p.command,
                &p.mode,
                &p.workspace,
                &p.cwd,
                &p.reason,
                &p.allowed,
                &p.verdict,
                &p.plan_hash,
                &p.state,
                &p.created_at,
                &p.decided_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn proposal(&mut self, id: &str) -> Result<Option<Proposal>> {
        self.sealed_row("SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = proposals.conversation_id) AS dek FROM proposals WHERE id = $1", &[&id], proposal_from_row)
            .await
    }

    async fn proposals(&mut self, state: Option<&str>, limit: i64) -> Result<Vec<Proposal>> {
        self.sealed_rows(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = proposals.conversation_id) AS dek FROM proposals WHERE ($1::text IS NULL OR state = $1) ORDER BY created_at DESC LIMIT $2",
            &[&state, &limit],
            proposal_from_row,
        )
        .await
    }

    async fn set_proposal_state(&mut self, id: &str, from: &str, state: &str, at: Millis) -> Result<bool> {
        let changed = self
            .exec(
                "UPDATE proposals SET state = $1, decided_at = $2 WHERE id = $3 AND state = $4",
                &[&state, &at, &id, &from],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn insert_approval(&mut self, a: &Approval) -> Result<()> {
        self.exec(
            "INSERT INTO approvals (proposal_id, bound_hash, seal, approved_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &a.proposal_id,
                &a.bound_hash,
                &a.seal,
                &a.approved_at,
                &a.expires_at,
                &a.used_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn approval(&mut self, proposal_id: &str) -> Result<Option<Approval>> {
        self.row(
            "SELECT * FROM approvals WHERE proposal_id = $1",
            &[&proposal_id],
            approval_from_row,
        )
        .await
    }

    async fn use_approval(&mut self, proposal_id: &str, at: Millis) -> Result<bool> {
        let changed = self
            .exec(
                "UPDATE approvals SET used_at = $1 WHERE proposal_id = $2 AND used_at IS NULL",
                &[&at, &proposal_id],
            )
            .await?;
        Ok(changed == 1)
    }
}
