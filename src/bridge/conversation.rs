//! Opening a conversation.

use std::time::Duration;

use rand::RngCore;
use serde_json::json;

use super::{Bridge, Created, Error, Result, SessionId, validate};
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
    /// The partner's role (session `b`).
    pub partner_role: String,
}

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
        validate::role("my_role", &req.my_role, &self.limits, &self.redactor)?;
        validate::role("partner_role", &req.partner_role, &self.limits, &self.redactor)?;
        self.count_creation()?;
        let now = self.now();
        let conversation = Conversation {
            id: new_conversation_id(),
            created_at: now,
            expires_at: now + self.limits.conversation_ttl.as_millis() as i64,
            closed_at: None,
        };
        let token_a = SessionToken::generate();
        let token_b = SessionToken::generate();
        let mut tx = self.store.begin_write().await?;
        tx.insert_conversation(&conversation).await?;
        for (session, role, token) in [
            (SessionId::A, &req.my_role, &token_a),
            (SessionId::B, &req.partner_role, &token_b),
        ] {
            tx.insert_participant(&Participant {
                conversation_id: conversation.id.clone(),
                session_id: session.as_str().to_owned(),
                role: role.clone(),
                token_hash: self.key.hash_token(token),
                token_created_at: now,
                revoked_at: None,
            })
            .await?;
        }
        self.audit(
            &mut tx,
            now,
            NewEntry {
                actor: "anonymous".into(),
                action: "conversation.create".into(),
                conversation_id: Some(conversation.id.clone()),
                detail: json!({
                    "roles": { "a": req.my_role, "b": req.partner_role },
                    "expires_at": conversation.expires_at,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Created {
            conversation_id: conversation.id,
            session_a_token: ShownToken::new(&token_a),
            session_b_token: ShownToken::new(&token_b),
            expires_at: rfc3339(conversation.expires_at),
            my_role: req.my_role.clone(),
            partner_role: req.partner_role.clone(),
        })
    }
}
