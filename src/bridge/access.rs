//! Who is calling: a seat's token (the original bridge's flow) or a
//! registered agent's identity, proven once when its server process
//! started (or, over HTTP, by its bearer credential) and re-checked
//! against the agents table on every call, so a revocation or rotation by
//! the overseer takes effect at the next call.

use std::sync::Arc;

use super::{Auth, Bridge, Error, Result, SessionId};
use crate::auth::{AgentCredential, SessionToken, TokenHash};
use crate::store::agents::{Agent, AgentRole, AgentTx};
use crate::store::{Store, Tx};

/// A registered agent, as its credential proved it. Holds the credential's
/// keyed hash (never the credential): a rotation changes the stored hash,
/// and every call compares the two.
#[derive(Clone)]
pub struct AgentIdentity {
    /// Row id in `agents`.
    pub id: i64,
    /// The agent's name (validated like a role when it was registered).
    pub name: String,
    /// What the agent may do.
    pub role: AgentRole,
    credential_hash: TokenHash,
}

impl std::fmt::Debug for AgentIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentIdentity")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The credentials of one call.
#[derive(Debug)]
pub enum Access {
    /// A seat's token.
    Seat(Auth),
    /// The process's (or the request's) registered agent, in one of its
    /// conversations. `seat`, when the caller named one, must be the
    /// agent's own.
    Agent {
        /// The conversation.
        conversation_id: String,
        /// The seat the caller named, if any.
        seat: Option<SessionId>,
        /// Who.
        agent: Arc<AgentIdentity>,
    },
}

impl From<Auth> for Access {
    fn from(a: Auth) -> Self {
        Access::Seat(a)
    }
}

impl Access {
    /// The conversation the call concerns.
    pub fn conversation_id(&self) -> &str {
        match self {
            Access::Seat(a) => &a.conversation_id,
            Access::Agent { conversation_id, .. } => conversation_id,
        }
    }

    /// The actor a refused call is recorded under before it is known
    /// whether the caller holds a seat: the seat claimed, or the agent.
    pub(super) fn claimed_actor(&self) -> String {
        match self {
            Access::Seat(a) => format!("{}/{}", a.conversation_id, a.session_id),
            Access::Agent { agent, .. } => agent_actor(&agent.name),
        }
    }
}

/// An agent's actor name in the audit trail.
pub(super) fn agent_actor(name: &str) -> String {
    format!("agent:{name}")
}

impl<S: Store> Bridge<S> {
    /// Proves an agent credential: the agent it belongs to, unless it is
    /// unknown, rotated away or revoked (all three are [`Error::AgentRevoked`]:
    /// a caller learns nothing about which).
    pub async fn identify_agent(&self, credential: &AgentCredential) -> Result<Arc<AgentIdentity>> {
        let hash = self.key.hash_agent_credential(credential);
        let agent = self
            .store
            .agent_by_credential_now(&hash)
            .await?
            .filter(|a| a.revoked_at.is_none())
            .ok_or(Error::AgentRevoked)?;
        Ok(Arc::new(AgentIdentity {
            id: agent.id,
            name: agent.name,
            role: agent.role,
            credential_hash: agent.credential_hash,
        }))
    }

    /// Whether `token` is the current token of a seat that is not revoked,
    /// in a conversation that is neither closed nor expired: a seat token
    /// presented as an HTTP bearer credential. Only admits the request; every
    /// tool call still proves its own `token` argument as over stdio.
    ///
    /// Returns the seat's `(conversation_id, session_id)`, or `None`. The
    /// token's shape was checked by [`SessionToken::parse`].
    pub async fn live_seat_of_token(&self, token: &SessionToken) -> Result<Option<(String, String)>> {
        let hash = self.key.hash_token(token);
        let mut tx = self.store.begin_read().await?;
        let Some((conversation_id, seat)) = tx.seat_by_token(&hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        let live = tx
            .conversation(&conversation_id)
            .await?
            .is_some_and(|c| c.closed_at.is_none() && c.expires_at > now);
        Ok(live.then_some((conversation_id, seat)))
    }

    /// Refuses an agent whose credential was revoked or replaced since it
    /// was proven, inside the call's own transaction, and an identity that
    /// is not an `agent` (an observer or admin credential reads and
    /// administers; it does not take part in conversations).
    pub(super) async fn ensure_agent_live(&self, tx: &mut S::Tx, agent: &AgentIdentity) -> Result<()> {
        check_standing(tx.agent(agent.id).await?, agent)
    }
}

/// [`Bridge::ensure_agent_live`]'s check on the agent's row as read.
pub(super) fn check_standing(stored: Option<Agent>, agent: &AgentIdentity) -> Result<()> {
    match stored {
        Some(a) if a.revoked_at.is_none() && a.credential_hash == agent.credential_hash => {
            if a.role == AgentRole::Agent {
                Ok(())
            } else {
                Err(Error::NotAnAgent {
                    role: a.role.as_str(),
                })
            }
        }
        _ => Err(Error::AgentRevoked),
    }
}
