//! Agent identities: `agent add`, `agent list`, `agent rotate`, `agent
//! revoke`, and the views they return.
//!
//! A credential is generated here, shown once in the returned value and
//! stored only as its keyed hash; it never enters an audit entry, an error
//! or a log line (the audit detail holds the name and role only). Each
//! change commits in one `begin_write` transaction with its audit entry
//! (actor `cli`). Names follow the rules of roles (`validate::role`),
//! because an agent seated by name plays its name as its role; a name is
//! checked before it is looked up, so an error only ever quotes a valid name.

use serde::Serialize;
use serde_json::json;

use super::{AdminError, AdminResult, ts};
use crate::auth::{AgentCredential, ShownCredential};
use crate::bridge::{Bridge, Error, validate};
use crate::clock::Millis;
use crate::store::admin::AdminStore;
use crate::store::agents::{Agent, AgentRole, AgentTx};
use crate::store::{self, Tx};

/// A registered agent and its credential, shown this once. Serializes as
/// exactly `{"name", "role", "credential"}`.
#[derive(Debug, Serialize)]
pub struct AgentAdded {
    /// The agent's name.
    pub name: String,
    /// Its role.
    pub role: AgentRole,
    /// The credential for the agent's MCP client (`MCP_BRIDGE_AGENT`).
    pub credential: ShownCredential,
}

/// An agent's new credential, shown this once; the old one no longer
/// works. Serializes as exactly `{"name", "credential"}`.
#[derive(Debug, Serialize)]
pub struct AgentRotated {
    /// The agent's name.
    pub name: String,
    /// The new credential.
    pub credential: ShownCredential,
}

/// The outcome of `agent revoke`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRevoked {
    /// The agent's name.
    pub name: String,
    /// When it was revoked (the earlier time if it already was).
    #[serde(serialize_with = "ts::one")]
    pub revoked_at: Millis,
    /// False when it had already been revoked (nothing changed).
    pub changed: bool,
}

/// A registered agent as `agent list` shows it: never its credential or hash.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    /// The agent's name.
    pub name: String,
    /// Its role.
    pub role: AgentRole,
    /// When it was registered.
    #[serde(serialize_with = "ts::one")]
    pub created_at: Millis,
    /// When its credential was last replaced.
    #[serde(serialize_with = "ts::opt")]
    pub rotated_at: Option<Millis>,
    /// When it was revoked.
    #[serde(serialize_with = "ts::opt")]
    pub revoked_at: Option<Millis>,
}

impl From<Agent> for AgentView {
    fn from(a: Agent) -> Self {
        Self {
            name: a.name,
            role: a.role,
            created_at: a.created_at,
            rotated_at: a.rotated_at,
            revoked_at: a.revoked_at,
        }
    }
}

impl<S: AdminStore> Bridge<S> {
    /// Registers an agent under `name` and returns its credential, which
    /// is shown this once: only its keyed hash is stored. A taken name is
    /// refused, revoked agents' names included.
    pub async fn add_agent(&self, name: &str, role: AgentRole) -> AdminResult<AgentAdded> {
        self.check_agent_name(name)?;
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        if tx.agent_by_name(name).await?.is_some() {
            return Err(AdminError::AgentExists {
                name: name.to_owned(),
            });
        }
        let credential = AgentCredential::generate();
        match tx
            .insert_agent(name, role, &self.key.hash_agent_credential(&credential), now)
            .await
        {
            Ok(_) => {}
            // Under the write lock the name was free a moment ago; a
            // conflict can only be a (2^-256) collision of credentials.
            Err(store::Error::Conflict) => {
                return Err(AdminError::AgentExists {
                    name: name.to_owned(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.admin_audit(
            &mut tx,
            now,
            "agent.add",
            None,
            json!({ "name": name, "role": role.as_str() }),
        )
        .await?;
        tx.commit().await?;
        Ok(AgentAdded {
            name: name.to_owned(),
            role,
            credential: ShownCredential::new(&credential),
        })
    }

    /// Every registered agent, revoked ones included, by name.
    pub async fn list_agents(&self) -> AdminResult<Vec<AgentView>> {
        let mut tx = self.store.begin_read().await?;
        Ok(tx.agents().await?.into_iter().map(AgentView::from).collect())
    }

    /// Issues a new credential for an agent and replaces the stored hash,
    /// so the old credential opens nothing from the next transaction on.
    /// A revoked agent is refused: revocation is final, and a credential
    /// that opens nothing must not be handed out.
    pub async fn rotate_agent(&self, name: &str) -> AdminResult<AgentRotated> {
        self.check_agent_name(name)?;
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let agent = known_agent(&mut tx, name).await?;
        if agent.revoked_at.is_some() {
            return Err(AdminError::AgentRevoked { name: agent.name });
        }
        let credential = AgentCredential::generate();
        tx.set_agent_credential(agent.id, &self.key.hash_agent_credential(&credential), now)
            .await?;
        self.admin_audit(
            &mut tx,
            now,
            "agent.rotate",
            None,
            json!({ "name": agent.name, "role": agent.role.as_str() }),
        )
        .await?;
        tx.commit().await?;
        Ok(AgentRotated {
            name: agent.name,
            credential: ShownCredential::new(&credential),
        })
    }

    /// Ends an agent's access: a server holding its credential fails every
    /// call with `agent_revoked` from the next transaction on, and cannot
    /// start again. Revoking twice changes nothing and records nothing.
    pub async fn revoke_agent(&self, name: &str) -> AdminResult<AgentRevoked> {
        self.check_agent_name(name)?;
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let agent = known_agent(&mut tx, name).await?;
        if let Some(at) = agent.revoked_at {
            return Ok(AgentRevoked {
                name: agent.name,
                revoked_at: at,
                changed: false,
            });
        }
        tx.revoke_agent(agent.id, now).await?;
        self.admin_audit(
            &mut tx,
            now,
            "agent.revoke",
            None,
            json!({ "name": agent.name, "role": agent.role.as_str() }),
        )
        .await?;
        tx.commit().await?;
        Ok(AgentRevoked {
            name: agent.name,
            revoked_at: now,
            changed: true,
        })
    }

    /// The role rules, with the role limit; the reason never quotes the name.
    fn check_agent_name(&self, name: &str) -> AdminResult<()> {
        validate::role("name", name, &self.limits, &self.redactor).map_err(|e| match e {
            Error::InvalidArgument { reason, .. } => AdminError::InvalidAgentName { reason },
            other => AdminError::InvalidAgentName {
                reason: other.to_string(),
            },
        })
    }
}

/// The agent named `name`, or an error naming it (it was validated first).
async fn known_agent<T: AgentTx>(tx: &mut T, name: &str) -> AdminResult<Agent> {
    tx.agent_by_name(name)
        .await?
        .ok_or_else(|| AdminError::NoSuchAgent {
            name: name.to_owned(),
        })
}
