//! [`YoloTx`] for SQLite.

use rusqlite::{Row, params};

use super::SqliteTx;
use crate::clock::Millis;
use crate::store::Result;
use crate::store::sealing::{Sealed, seal_proposal};
use crate::store::yolo::{Approval, Proposal, YoloTx};

/// A proposal row as stored (its text fields still sealed).
pub(super) fn proposal_as_stored(r: &Row<'_>) -> rusqlite::Result<Proposal> {
    Ok(Proposal {
        id: r.get("id")?,
        conversation_id: r.get("conversation_id")?,
        proposer: r.get("proposer")?,
        command: r.get("command")?,
        mode: r.get("mode")?,
        workspace: r.get("workspace")?,
        cwd: r.get("cwd")?,
        reason: r.get("reason")?,
        allowed: r.get::<_, i64>("allowed")? != 0,
        verdict: r.get("verdict")?,
        plan_hash: r.get("plan_hash")?,
        state: r.get("state")?,
        created_at: r.get("created_at")?,
        decided_at: r.get("decided_at")?,
    })
}

fn proposal_from_row(r: &Row<'_>) -> rusqlite::Result<Sealed<Proposal>> {
    Ok(Sealed {
        value: proposal_as_stored(r)?,
        wrapped: r.get("dek")?,
    })
}

fn approval_from_row(r: &Row<'_>) -> rusqlite::Result<Approval> {
    Ok(Approval {
        proposal_id: r.get("proposal_id")?,
        bound_hash: r.get("bound_hash")?,
        seal: r.get("seal")?,
        approved_at: r.get("approved_at")?,
        expires_at: r.get("expires_at")?,
        used_at: r.get("used_at")?,
    })
}

impl YoloTx for SqliteTx {
    async fn insert_proposal(&mut self, p: &Proposal) -> Result<()> {
        let key = self.data_key(&p.conversation_id)?;
        let p = &seal_proposal(&key, p);
        self.exec(
            "INSERT INTO proposals (id, conversation_id, proposer, command, mode, workspace, cwd, reason, \
             allowed, verdict, plan_hash, state, created_at, decided_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                p.id,
                p.conversation_id,
                p.proposer,
                p.command,
                p.mode,
                p.workspace,
                p.cwd,
                p.reason,
                i64::from(p.allowed),
                p.verdict,
                p.plan_hash,
                p.state,
                p.created_at,
                p.decided_at
            ],
        )?;
        Ok(())
    }

    async fn proposal(&mut self, id: &str) -> Result<Option<Proposal>> {
        self.sealed_row("SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = proposals.conversation_id) AS dek FROM proposals WHERE id = ?1", [id], proposal_from_row)
    }

    async fn proposals(&mut self, state: Option<&str>, limit: i64) -> Result<Vec<Proposal>> {
        self.sealed_rows(
            "SELECT *, (SELECT wrapped FROM conversation_keys k WHERE k.conversation_id = proposals.conversation_id) AS dek FROM proposals WHERE (?1 IS NULL OR state = ?1) ORDER BY created_at DESC LIMIT ?2",
            params![state, limit],
            proposal_from_row,
        )
    }

    async fn set_proposal_state(&mut self, id: &str, from: &str, state: &str, at: Millis) -> Result<bool> {
        let changed = self.exec(
            "UPDATE proposals SET state = ?1, decided_at = ?2 WHERE id = ?3 AND state = ?4",
            params![state, at, id, from],
        )?;
        Ok(changed == 1)
    }

    async fn insert_approval(&mut self, a: &Approval) -> Result<()> {
        self.exec(
            "INSERT INTO approvals (proposal_id, bound_hash, seal, approved_at, expires_at, used_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                a.proposal_id,
                a.bound_hash,
                a.seal,
                a.approved_at,
                a.expires_at,
                a.used_at
            ],
        )?;
        Ok(())
    }

    async fn approval(&mut self, proposal_id: &str) -> Result<Option<Approval>> {
        self.row(
            "SELECT * FROM approvals WHERE proposal_id = ?1",
            [proposal_id],
            approval_from_row,
        )
    }

    async fn use_approval(&mut self, proposal_id: &str, at: Millis) -> Result<bool> {
        let changed = self.exec(
            "UPDATE approvals SET used_at = ?1 WHERE proposal_id = ?2 AND used_at IS NULL",
            params![at, proposal_id],
        )?;
        Ok(changed == 1)
    }
}
