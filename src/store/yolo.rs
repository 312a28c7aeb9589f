//! Storage for YOLO mode: command proposals and the human's approvals.
//! Kept in its own trait so a backend without execution support need not
//! implement it, and so nothing outside `bridge::yolo` can touch approvals.

use std::future::Future;

use super::{Result, Tx};
use crate::clock::Millis;

/// A proposed command as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// `prop_` + 32 hex characters.
    pub id: String,
    /// The conversation it was proposed in.
    pub conversation_id: String,
    /// The proposer's session id.
    pub proposer: String,
    /// The command, exactly as it will be parsed again before it runs.
    pub command: String,
    /// safe, restricted or yolo.
    pub mode: String,
    /// The proposing server's workspace (absolute).
    pub workspace: String,
    /// Working directory relative to the workspace (`.` for its root).
    pub cwd: String,
    /// Why the agent wants it run (redacted).
    pub reason: String,
    /// The validator's verdict at proposal time.
    pub allowed: bool,
    /// The validator's sentence.
    pub verdict: String,
    /// SHA-256 over command, mode, workspace and cwd: what an approval binds to.
    pub plan_hash: String,
    /// pending, refused, approved, rejected, executed.
    pub state: String,
    /// When proposed.
    pub created_at: Millis,
    /// When approved, rejected or executed.
    pub decided_at: Option<Millis>,
}

/// A human's approval of one proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// The proposal.
    pub proposal_id: String,
    /// The proposal's `plan_hash` when approved.
    pub bound_hash: String,
    /// HMAC over proposal id, bound hash and expiry, under the server key.
    pub seal: String,
    /// When approved.
    pub approved_at: Millis,
    /// Unusable from this instant.
    pub expires_at: Millis,
    /// Set by the one execution it allows.
    pub used_at: Option<Millis>,
}

/// Proposal and approval queries.
pub trait YoloTx: Tx {
    /// Stores a new proposal.
    fn insert_proposal(&mut self, p: &Proposal) -> impl Future<Output = Result<()>> + Send;
    /// Finds a proposal.
    fn proposal(&mut self, id: &str) -> impl Future<Output = Result<Option<Proposal>>> + Send;
    /// Proposals, newest first, optionally only in one state.
    fn proposals(
        &mut self,
        state: Option<&str>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Proposal>>> + Send;
    /// Moves a proposal to `state` if it is in `from`; returns whether it moved.
    fn set_proposal_state(
        &mut self,
        id: &str,
        from: &str,
        state: &str,
        at: Millis,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Stores an approval.
    fn insert_approval(&mut self, a: &Approval) -> impl Future<Output = Result<()>> + Send;
    /// Finds the approval of a proposal.
    fn approval(&mut self, proposal_id: &str) -> impl Future<Output = Result<Option<Approval>>> + Send;
    /// Marks an unused approval used; returns false if it was already used.
    fn use_approval(&mut self, proposal_id: &str, at: Millis) -> impl Future<Output = Result<bool>> + Send;
}
