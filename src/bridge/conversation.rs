//! Opening a conversation.

use std::time::Duration;

use rand::RngCore;
use serde_json::json;

use std::sync::Arc;

use super::access::agent_actor;
use super::{AgentIdentity, Bridge, Created, Error, Result, Seat, SessionId, validate};
use crate::audit::NewEntry;
use crate::auth::{SessionToken, ShownToken};
use crate::clock::rfc3339;
use crate::limits::{self, Decision, RateLimit, Window};
use crate::store::agents::{AgentRole, AgentTx};
use crate::store::{Conversation, Participant, Store, Tx};

/// What `create_conversation` needs.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The creator's role (session `a`); `None` for a registered agent,
    /// whose role is then its name.
    pub my_role: Option<String>,
    /// Roles of seats held by tokens, in seat order after the agents'.
    pub partner_roles: Vec<String>,
    /// Which argument the partners came in, for error messages:
    /// `partner_role` or `partner_roles`.
    pub partners_field: &'static str,
    /// Registered agents to seat directly, in seat order after the creator.
    pub with_agents: Vec<String>,
    /// The registered agent creating the conversation, if it is one.
    pub creator: Option<Arc<AgentIdentity>>,
}

impl CreateRequest {
    /// A conversation of two, as the original bridge opens it.
    pub fn pair(my_role: impl Into<String>, partner_role: impl Into<String>) -> Self {
        Self {
            my_role: Some(my_role.into()),
            partner_roles: vec![partner_role.into()],
            partners_field: "partner_role",
            with_agents: Vec::new(),
            creator: None,
        }
    }

    /// A conversation of the creator and `partner_roles`.
    pub fn team(my_role: impl Into<String>, partner_roles: Vec<String>) -> Self {
        Self {
            my_role: Some(my_role.into()),
            partner_roles,
            partners_field: "partner_roles",
            with_agents: Vec::new(),
            creator: None,
        }
    }
}

/// One seat about to be created.
struct SeatPlan {
    role: String,
    agent_id: Option<i64>,
}

/// Partners per conversation: every seat but the creator's.
pub const MAX_PARTNERS: usize = SessionId::MAX - 1;

/// 128 random bits, hex: unguessable, so knowing an id grants nothing, and
/// without the timestamp or counter a sequential id would leak.
fn new_conversation_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    format!("conv_{}", hex::encode(b))
}

impl<S: Store> Bridge<S> {
    /// Counts one creation against this process's per-minute budget, an
    /// exact sliding window kept in memory (see
    /// [`crate::config::Limits::max_creates_per_minute`] for why per process).
    fn count_creation(&self) -> Result<()> {
        let limit = RateLimit {
            windows: vec![Window {
                count: self.limits.max_creates_per_minute,
                period: Duration::from_secs(60),
            }],
        };
        let now = self.now();
        let mut log = self.creations.lock().unwrap_or_else(|p| p.into_inner());
        log.retain(|at| *at > now - 60_000);
        match limits::check(&limit, &log, now) {
            Decision::Allow => {
                log.push(now);
                Ok(())
            }
            Decision::Deny {
                window,
                retry_after_ms,
            } => Err(Error::RateLimited {
                window: format!("{window} (conversations created)"),
                scope: "by this server process",
                retry_after_ms,
            }),
        }
    }

    /// Opens a conversation between two roles and issues one token per seat.
    /// Tokens are returned here once; only their keyed hashes are stored.
    pub async fn create_conversation(&self, req: CreateRequest) -> Result<Created> {
        let result = self.create_inner(&req).await;
        if let Err(e) = &result {
            let actor = req
                .creator
                .as_ref()
                .map_or_else(|| "anonymous".into(), |a| agent_actor(&a.name));
            self.audit_refusal("conversation.create", None, actor, e).await;
        }
        result
    }

    async fn create_inner(&self, req: &CreateRequest) -> Result<Created> {
        let my_role = self.validate_request(req)?;
        self.count_creation()?;
        let now = self.now();
        let conversation = Conversation {
            id: new_conversation_id(),
            created_at: now,
            expires_at: now + self.limits.conversation_ttl.as_millis() as i64,
            closed_at: None,
        };
        let mut tx = self.store.begin_write().await?;
        let seats = self.plan_seats(&mut tx, req, my_role).await?;
        tx.insert_conversation(&conversation).await?;
        let mut issued = Vec::with_capacity(seats.len());
        for (i, plan) in seats.iter().enumerate() {
            let session =
                SessionId::nth(i).ok_or_else(|| Error::invalid(req.partners_field, "too many seats"))?;
            let token = plan.agent_id.is_none().then(SessionToken::generate);
            tx.insert_participant(&Participant {
                conversation_id: conversation.id.clone(),
                session_id: session.as_str().to_owned(),
                role: plan.role.clone(),
                token_hash: token.as_ref().map(|t| self.key.hash_token(t)),
                agent_id: plan.agent_id,
                token_created_at: now,
                revoked_at: None,
            })
            .await?;
            issued.push(Seat {
                session_id: session,
                role: plan.role.clone(),
                token: token.as_ref().map(ShownToken::new),
            });
        }
        let audited_roles: serde_json::Map<String, serde_json::Value> = issued
            .iter()
            .map(|s| (s.session_id.as_str().to_owned(), json!(s.role)))
            .collect();
        let agents: Vec<&str> = seats
            .iter()
            .zip(&issued)
            .filter(|(p, _)| p.agent_id.is_some())
            .map(|(_, s)| s.session_id.as_str())
            .collect();
        self.audit(
            &mut tx,
            now,
            NewEntry {
                actor: req
                    .creator
                    .as_ref()
                    .map_or_else(|| "anonymous".into(), |a| agent_actor(&a.name)),
                action: "conversation.create".into(),
                conversation_id: Some(conversation.id.clone()),
                detail: json!({
                    "roles": audited_roles,
                    "agent_seats": agents,
                    "expires_at": conversation.expires_at,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Created {
            conversation_id: conversation.id,
            session_a_token: issued[0].token.clone(),
            session_b_token: issued[1].token.clone(),
            expires_at: rfc3339(conversation.expires_at),
            my_role: issued[0].role.clone(),
            partner_role: issued[1].role.clone(),
            seats: issued,
        })
    }

    /// Checks everything that needs no database: the creator's role (its
    /// name for an agent), each partner role, the agents' names, and the
    /// number of seats. Returns the creator's role.
    fn validate_request(&self, req: &CreateRequest) -> Result<String> {
        let my_role = match (&req.my_role, &req.creator) {
            (Some(r), _) => r.clone(),
            (None, Some(agent)) => agent.name.clone(),
            (None, None) => return Err(Error::invalid("my_role", "is required")),
        };
        validate::role("my_role", &my_role, &self.limits, &self.redactor)?;
        if !req.with_agents.is_empty() && req.creator.is_none() {
            return Err(Error::invalid(
                "with_agents",
                "only a registered agent may seat other agents; start this server with MCP_BRIDGE_AGENT set to a credential from `mcp-bridge agent add`, or name partner_roles instead",
            ));
        }
        let partners = req.with_agents.len() + req.partner_roles.len();
        if partners == 0 {
            let field = if req.creator.is_some() {
                "with_agents"
            } else {
                req.partners_field
            };
            return Err(Error::invalid(field, "is required"));
        }
        if partners > MAX_PARTNERS {
            return Err(Error::invalid(
                if req.partner_roles.is_empty() {
                    "with_agents"
                } else {
                    req.partners_field
                },
                format!(
                    "a conversation has at most {} seats: 1 to {MAX_PARTNERS} partners in all; got {partners}",
                    SessionId::MAX
                ),
            ));
        }
        for (i, name) in req.with_agents.iter().enumerate() {
            validate::role(&format!("with_agents[{i}]"), name, &self.limits, &self.redactor)?;
        }
        for (i, role) in req.partner_roles.iter().enumerate() {
            validate::role(&partner_field(req, i), role, &self.limits, &self.redactor)?;
        }
        Ok(my_role)
    }

    /// Resolves the seats in order (the creator, the agents, the token
    /// seats), inside the creation's transaction: each named agent must be
    /// registered, live and an `agent`, and no role may appear twice
    /// (compared without case, so `Lead` cannot pose as `lead`): messages
    /// are addressed by role.
    async fn plan_seats(
        &self,
        tx: &mut S::Tx,
        req: &CreateRequest,
        my_role: String,
    ) -> Result<Vec<SeatPlan>> {
        let mut seats = vec![SeatPlan {
            role: my_role,
            agent_id: None,
        }];
        if let Some(creator) = &req.creator {
            self.ensure_agent_live(tx, creator).await?;
            seats[0].agent_id = Some(creator.id);
        }
        for (i, name) in req.with_agents.iter().enumerate() {
            let field = format!("with_agents[{i}]");
            let agent = tx
                .agent_by_name(name)
                .await?
                .filter(|a| a.revoked_at.is_none() && a.role == AgentRole::Agent)
                .ok_or_else(|| {
                    Error::invalid(
                        &field,
                        "names no registered agent that may join conversations (unknown, revoked, or an observer or admin credential); `mcp-bridge agent list` shows them",
                    )
                })?;
            if seats.iter().any(|s| s.agent_id == Some(agent.id)) {
                return Err(Error::invalid(
                    field,
                    "names an agent already seated in this conversation",
                ));
            }
            ensure_new_role(&seats, &agent.name, &field)?;
            seats.push(SeatPlan {
                role: agent.name,
                agent_id: Some(agent.id),
            });
        }
        for (i, role) in req.partner_roles.iter().enumerate() {
            ensure_new_role(&seats, role, &partner_field(req, i))?;
            seats.push(SeatPlan {
                role: role.clone(),
                agent_id: None,
            });
        }
        // A registered agent's name is its identity: no other seat may play
        // it, or a worker could pose as the lead (one real incident: a
        // worker sending as "HumanOverseer").
        for (i, seat) in seats.iter().enumerate() {
            if let Some(owner) = tx.agent_by_name(&seat.role).await?
                && owner.revoked_at.is_none()
                && seat.agent_id != Some(owner.id)
            {
                let field = match i {
                    0 => "my_role".to_owned(),
                    _ if i <= req.with_agents.len() => format!("with_agents[{}]", i - 1),
                    _ => partner_field(req, i - 1 - req.with_agents.len()),
                };
                return Err(Error::invalid(
                    field,
                    "is the name of a registered agent, and only that agent may play it; choose another role",
                ));
            }
        }
        Ok(seats)
    }
}

/// The field a partner role came in.
fn partner_field(req: &CreateRequest, i: usize) -> String {
    if req.partners_field == "partner_roles" {
        format!("partner_roles[{i}]")
    } else {
        req.partners_field.to_owned()
    }
}

/// Refuses a role already taken in the conversation, compared without case.
fn ensure_new_role(seats: &[SeatPlan], role: &str, field: &str) -> Result<()> {
    if seats.iter().any(|s| s.role.eq_ignore_ascii_case(role)) {
        return Err(Error::invalid(
            field,
            "repeats a role already in the conversation (roles are compared without case); every participant needs its own role, since messages are addressed by role",
        ));
    }
    Ok(())
}
