//! Stage 3's outcome: the overseer's sealed, single-use approval, or a
//! rejection, and the audit entries for attempts made at the terminal.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use super::{approval_seal_input, plan_hash};
use crate::audit::NewEntry;
use crate::bridge::{Bridge, Error, Result};
use crate::clock::rfc3339;
use crate::store::yolo::{Approval, YoloTx};
use crate::store::{Store, Tx};

/// What the overseer's approval recorded.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Approved {
    /// The proposal.
    pub proposal_id: String,
    /// The approval is unusable from this instant.
    pub expires_at: String,
}

impl<S: Store> Bridge<S>
where
    S::Tx: YoloTx,
{
    /// Stage 3's outcome: called by `mcp-bridge approve` after the human typed
    /// the phrase and the one-time code at a terminal. Records a sealed,
    /// single-use approval bound to the proposal's hash, valid 5 minutes.
    pub async fn approve_proposal(&self, id: &str, ttl: std::time::Duration) -> Result<Approved> {
        let result = self.approve_inner(id, ttl).await;
        if let Err(e) = &result {
            self.audit_refusal("command.approve", None, "cli".into(), e).await;
        }
        result
    }

    async fn approve_inner(&self, id: &str, ttl: std::time::Duration) -> Result<Approved> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let p = tx.proposal(id).await?.ok_or(Error::ProposalNotFound)?;
        if p.state != "pending" {
            return Err(Error::ProposalNotPending { state: p.state });
        }
        if p.plan_hash != plan_hash(&p.command, &p.mode, &p.workspace, &p.cwd) {
            return Err(Error::ApprovalMismatch);
        }
        let conversation = tx
            .conversation(&p.conversation_id)
            .await?
            .ok_or(Error::ConversationNotFound)?;
        crate::bridge::ensure_open(&conversation, now)?;
        let expires_at = now + ttl.as_millis() as i64;
        let seal = hex::encode(
            self.key
                .mac(approval_seal_input(&p.id, &p.plan_hash, expires_at).as_bytes()),
        );
        tx.insert_approval(&Approval {
            proposal_id: p.id.clone(),
            bound_hash: p.plan_hash.clone(),
            seal,
            approved_at: now,
            expires_at,
            used_at: None,
        })
        .await?;
        tx.set_proposal_state(&p.id, "pending", "approved", now).await?;
        self.audit(
            &mut tx,
            now,
            NewEntry {
                actor: "cli".into(),
                action: "command.approve".into(),
                conversation_id: Some(p.conversation_id.clone()),
                detail: json!({
                    "proposal_id": p.id,
                    "plan_hash": p.plan_hash,
                    "expires_at": expires_at,
                    "stages": ["env_opt_in", "typed_phrase", "one_time_code", "overseer_passphrase"],
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Approved {
            proposal_id: p.id,
            expires_at: rfc3339(expires_at),
        })
    }

    /// The overseer refuses a pending or approved (not yet executed) proposal.
    pub async fn reject_proposal(&self, id: &str) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let p = tx.proposal(id).await?.ok_or(Error::ProposalNotFound)?;
        let moved = tx.set_proposal_state(id, "pending", "rejected", now).await?
            || tx.set_proposal_state(id, "approved", "rejected", now).await?;
        if !moved {
            return Err(Error::ProposalNotPending { state: p.state });
        }
        self.audit(
            &mut tx,
            now,
            NewEntry {
                // The overseer's actor: `cli` at a terminal, `dashboard` or
                // `agent:NAME` from the web pages.
                actor: self.admin_actor.to_string(),
                action: "command.reject".into(),
                conversation_id: Some(p.conversation_id),
                detail: json!({ "proposal_id": id }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed approval attempt at the terminal (wrong phrase or
    /// code, no terminal), so the trail shows every try.
    pub async fn record_approval_refusal(&self, id: &str, reason: &str) {
        let err = Error::invalid("approval", reason.to_owned());
        self.audit_refusal("command.approve", None, "cli".into(), &err)
            .await;
        tracing::debug!(proposal = id, reason, "approval refused at the terminal");
    }

    /// Records that the overseer passphrase was set (`mcp-bridge yolo setup`). Best effort:
    /// the passphrase file is already written, and a database that cannot take the entry
    /// fails loudly at the next approval anyway.
    pub async fn record_passphrase_setup(&self) {
        let entry = NewEntry {
            actor: "cli".into(),
            action: "yolo.passphrase.set".into(),
            conversation_id: None,
            detail: json!({ "hash": "argon2id" }),
        };
        let written = async {
            let mut tx = self.store.begin_write().await?;
            let now = self.now();
            self.audit(&mut tx, now, entry).await?;
            tx.commit().await?;
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = written {
            tracing::error!(error = %e, "could not audit the passphrase setup");
        }
    }
}
