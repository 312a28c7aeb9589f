//! Registered agents: identities that live in an MCP client's configuration
//! (`MCP_BRIDGE_AGENT`), never in a transcript.
//!
//! Every store keeps them ([`Store::Tx`](super::Store::Tx) requires
//! [`AgentTx`]): an agent-mode server resolves its identity here at start
//! and again inside every call's transaction, so a revocation or rotation
//! takes effect at once across processes. Only the credential's keyed hash
//! is stored ([`crate::auth::ServerKey::hash_agent_credential`]); a
//! revoked agent keeps its row and name, so the audit trail and the seats it
//! held keep meaning something.

use std::future::Future;

use super::{Conversation, Participant, Result, Tx};
use crate::auth::TokenHash;
use crate::clock::Millis;

/// What a registered agent may do. Stored as its [`AgentRole::as_str`] word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentRole {
    /// Takes part in conversations (the default).
    Agent,
    /// Meant to read, not to take part.
    Observer,
    /// Meant to oversee other agents.
    Admin,
}

impl AgentRole {
    /// Every role, in the order the CLI lists them.
    pub const ALL: [AgentRole; 3] = [AgentRole::Agent, AgentRole::Observer, AgentRole::Admin];

    /// The stored and shown word: `agent`, `observer` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRole::Agent => "agent",
            AgentRole::Observer => "observer",
            AgentRole::Admin => "admin",
        }
    }

    /// The role a word names, exactly as [`AgentRole::as_str`] spells it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for AgentRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered agent as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// The row id, what seats held by this agent refer to.
    pub id: i64,
    /// Unique; follows the role rules (`[A-Za-z0-9_-]`, 1 to 64), and is
    /// the agent's role in the conversations it is seated in by name.
    pub name: String,
    /// What it may do.
    pub role: AgentRole,
    /// Keyed hash of its current credential (unique).
    pub credential_hash: TokenHash,
    /// When it was registered.
    pub created_at: Millis,
    /// When its credential was last replaced, if ever.
    pub rotated_at: Option<Millis>,
    /// When it was revoked; from then on its credential opens nothing.
    pub revoked_at: Option<Millis>,
}

/// What [`AgentTx::agent_and_conversation`] reads: the agent as stored now,
/// and the conversation with its seats.
pub type AgentAndConversation = (Option<Agent>, Option<(Conversation, Vec<Participant>)>);

/// Agent queries, inside the caller's transaction like every other
/// statement, so a change commits together with its audit entry.
pub trait AgentTx: Send {
    /// Registers an agent; returns its id. A name (or credential hash)
    /// already stored fails with [`super::Error::Conflict`].
    fn insert_agent(
        &mut self,
        name: &str,
        role: AgentRole,
        hash: &TokenHash,
        at: Millis,
    ) -> impl Future<Output = Result<i64>> + Send;
    /// The agent with this id.
    fn agent(&mut self, id: i64) -> impl Future<Output = Result<Option<Agent>>> + Send;
    /// The agent with this id and the conversation with its seats, read
    /// together: a registered agent's call starts here, so a backend that
    /// can sends both in one round trip. `lock` locks the conversation's
    /// row as [`Tx::conversation_for_update`] does.
    fn agent_and_conversation(
        &mut self,
        agent_id: i64,
        conversation_id: &str,
        lock: bool,
    ) -> impl Future<Output = Result<AgentAndConversation>> + Send
    where
        Self: Tx,
    {
        async move {
            let agent = self.agent(agent_id).await?;
            let conversation = if lock {
                self.conversation_for_update(conversation_id).await?
            } else {
                self.conversation_with_participants(conversation_id).await?
            };
            Ok((agent, conversation))
        }
    }
    /// The agent with this name (exact, case-sensitive).
    fn agent_by_name(&mut self, name: &str) -> impl Future<Output = Result<Option<Agent>>> + Send;
    /// The agent whose current credential has this hash, revoked or not
    /// (the caller tells "revoked" from "unknown"). A rotated-away
    /// credential's hash finds nothing.
    fn agent_by_credential(&mut self, hash: &TokenHash)
    -> impl Future<Output = Result<Option<Agent>>> + Send;
    /// The conversation and seat whose current token has this hash, when
    /// the seat is not revoked: a seat token presented as an HTTP bearer
    /// credential. A rotated-away token's hash finds nothing.
    fn seat_by_token(
        &mut self,
        hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<(String, String)>>> + Send;
    /// Every agent, revoked ones included, by name.
    fn agents(&mut self) -> impl Future<Output = Result<Vec<Agent>>> + Send;
    /// Replaces an agent's credential hash (the old credential then finds
    /// nothing) and sets `rotated_at`; a revocation stays as it was. An id
    /// with no row is a broken invariant ([`super::Error::Internal`]).
    fn set_agent_credential(
        &mut self,
        id: i64,
        hash: &TokenHash,
        at: Millis,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Sets `revoked_at` unless it is already set (the first revocation's
    /// time stands). An id with no row is a broken invariant.
    fn revoke_agent(&mut self, id: i64, at: Millis) -> impl Future<Output = Result<()>> + Send;
}
