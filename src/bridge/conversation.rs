//! Opening a conversation.

use std::time::Duration;

use rand::RngCore;
use serde_json::json;

use super::{Bridge, Created, Error, Result, Seat, SessionId, validate};
use crate::audit::NewEntry;
use crate::auth::{SessionToken, ShownToken};
use crate::clock::rfc3339;
use crate::limits::{self, Decision, RateLimit, Window};
use crate::store::{Conversation, Participant, Store, Tx};

/// What `create_conversation` needs.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The creator's role (session `a`).
    pub my_role: String,
    /// The other seats' roles, in seat order (`b`, `c`, ...): one for the
    /// original bridge's pair, up to [`MAX_PARTNERS`].
    pub partner_roles: Vec<String>,
    /// Which argument the partners came in, for error messages:
    /// `partner_role` or `partner_roles`.
    pub partners_field: &'static str,
}

impl CreateRequest {
    /// A conversation of two, as the original bridge opens it.
    pub fn pair(my_role: impl Into<String>, partner_role: impl Into<String>) -> Self {
        Self {
            my_role: my_role.into(),
            partner_roles: vec![partner_role.into()],
            partners_field: "partner_role",
        }
    }

    /// A conversation of the creator and `partner_roles`.
    pub fn team(my_role: impl Into<String>, partner_roles: Vec<String>) -> Self {
        Self {
            my_role: my_role.into(),
            partner_roles,
            partners_field: "partner_roles",
        }
    }
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
            self.audit_refusal("conversation.create", None, "anonymous".into(), e)
                .await;
        }
        result
    }

    async fn create_inner(&self, req: &CreateRequest) -> Result<Created> {
        self.validate_seats(req)?;
        self.count_creation()?;
        let now = self.now();
        let conversation = Conversation {
            id: new_conversation_id(),
            created_at: now,
            expires_at: now + self.limits.conversation_ttl.as_millis() as i64,
            closed_at: None,
        };
        let roles: Vec<&String> = std::iter::once(&req.my_role).chain(&req.partner_roles).collect();
        let tokens: Vec<SessionToken> = roles.iter().map(|_| SessionToken::generate()).collect();
        let mut tx = self.store.begin_write().await?;
        tx.insert_conversation(&conversation).await?;
        let mut seats = Vec::with_capacity(roles.len());
        for (i, (role, token)) in roles.iter().zip(&tokens).enumerate() {
            let session =
                SessionId::nth(i).ok_or_else(|| Error::invalid(req.partners_field, "too many seats"))?;
            tx.insert_participant(&Participant {
                conversation_id: conversation.id.clone(),
                session_id: session.as_str().to_owned(),
                role: (*role).clone(),
                token_hash: Some(self.key.hash_token(token)),
                agent_id: None,
                token_created_at: now,
                revoked_at: None,
            })
            .await?;
            seats.push(Seat {
                session_id: session,
                role: (*role).clone(),
                token: Some(ShownToken::new(token)),
            });
        }
        let audited_roles: serde_json::Map<String, serde_json::Value> = seats
            .iter()
            .map(|s| (s.session_id.as_str().to_owned(), json!(s.role)))
            .collect();
        self.audit(
            &mut tx,
            now,
            NewEntry {
                actor: "anonymous".into(),
                action: "conversation.create".into(),
                conversation_id: Some(conversation.id.clone()),
                detail: json!({
                    "roles": audited_roles,
                    "expires_at": conversation.expires_at,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Created {
            conversation_id: conversation.id,
            session_a_token: Some(ShownToken::new(&tokens[0])),
            session_b_token: Some(ShownToken::new(&tokens[1])),
            expires_at: rfc3339(conversation.expires_at),
            my_role: req.my_role.clone(),
            partner_role: req.partner_roles[0].clone(),
            seats,
        })
    }

    /// Every role valid, 1 to [`MAX_PARTNERS`] partners, and no role twice
    /// (compared without case, so `Lead` cannot pose as `lead`): messages
    /// are addressed by role.
    fn validate_seats(&self, req: &CreateRequest) -> Result<()> {
        validate::role("my_role", &req.my_role, &self.limits, &self.redactor)?;
        let field = req.partners_field;
        if req.partner_roles.is_empty() || req.partner_roles.len() > MAX_PARTNERS {
            return Err(Error::invalid(
                field,
                format!(
                    "must name 1 to {MAX_PARTNERS} partners (a conversation has at most {} seats); got {}",
                    SessionId::MAX,
                    req.partner_roles.len()
                ),
            ));
        }
        let mut seen = vec![req.my_role.to_ascii_lowercase()];
        for (i, role) in req.partner_roles.iter().enumerate() {
            let name = if field == "partner_roles" {
                format!("partner_roles[{i}]")
            } else {
                field.to_owned()
            };
            validate::role(&name, role, &self.limits, &self.redactor)?;
            let folded = role.to_ascii_lowercase();
            if seen.contains(&folded) {
                return Err(Error::invalid(
                    name,
                    "repeats a role already in the conversation (roles are compared without case); every participant needs its own role, since messages are addressed by role",
                ));
            }
            seen.push(folded);
        }
        Ok(())
    }
}
