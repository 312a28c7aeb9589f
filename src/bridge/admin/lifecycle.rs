//! Lifecycle: what ends or renews access (`cleanup`, `close`, `revoke`,
//! `rotate`) and the reports those return. Every change commits in one
//! `begin_write` transaction together with its audit entry.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::observing::LiveState;
use super::{AdminError, AdminResult, ts};
use crate::auth::{SessionToken, ShownToken};
use crate::bridge::{Bridge, SessionId};
use crate::clock::Millis;
use crate::store::Tx;
use crate::store::admin::{AdminStore, AdminTx, PurgeCounts};

/// What `cleanup` needs.
#[derive(Debug, Clone)]
pub struct CleanupRequest {
    /// Only conversations that ended at least this long ago.
    pub older_than: Duration,
    /// Count what would go, inside a transaction that is then rolled back.
    pub dry_run: bool,
    /// Only this conversation (`close --purge`), if it has ended.
    pub only: Option<String>,
}

/// What `cleanup` did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct CleanupReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Conversations that ended at or before this instant qualified.
    #[serde(serialize_with = "ts::one")]
    pub cutoff: Millis,
    /// The purged conversations.
    pub conversations: Vec<String>,
    /// Rows deleted (or that would be), by table.
    pub deleted: PurgeCounts,
    /// The audit entry that records the purge (none for a dry run or when nothing qualified).
    pub audit_seq: Option<i64>,
    /// The data keys' wrapping key was rotated with the purge, so backups
    /// taken before it cannot yield the purged conversations (nor any
    /// other, without the key file saved with them). False when the key is
    /// not a file beside the database that the bridge may rewrite: then
    /// `mcp-bridge key rotate` does it.
    pub earlier_backups_shredded: bool,
}

/// A freshly issued token. The only place it ever appears in clear.
#[derive(Debug, Serialize)]
pub struct Rotated {
    /// The conversation.
    pub conversation_id: String,
    /// The seat.
    pub session_id: String,
    /// The seat's role.
    pub role: String,
    /// The new token; give it to the agent through a trusted channel.
    pub token: ShownToken,
    /// When it was issued.
    #[serde(serialize_with = "ts::one")]
    pub issued_at: Millis,
}

/// The outcome of `revoke` or `close`.
#[derive(Debug, Clone, Serialize)]
pub struct Ended {
    /// The conversation.
    pub conversation_id: String,
    /// The seat, for `revoke`.
    pub session_id: Option<String>,
    /// When access ended (the earlier time if it had already ended).
    #[serde(serialize_with = "ts::one")]
    pub at: Millis,
    /// False when it had already been revoked or closed (nothing changed).
    pub changed: bool,
}

impl<S: AdminStore> Bridge<S> {
    /// Purges conversations that ended (expired or closed) at least
    /// `older_than` ago, with their messages, deliveries, seats, statuses
    /// and rate events, and records the purge, with its counts, as one audit
    /// entry in the same transaction. Audit entries are never deleted, so
    /// the chain stays valid and still tells what the purged conversations did.
    pub async fn cleanup(&self, req: CleanupRequest) -> AdminResult<CleanupReport> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let cutoff = now - req.older_than.as_millis() as i64;
        let mut ended = tx.ended_before(cutoff).await?;
        if let Some(only) = &req.only {
            ended.retain(|c| &c.id == only);
        }
        let mut deleted = PurgeCounts::default();
        for c in &ended {
            deleted.add(&tx.purge_conversation(&c.id).await?);
        }
        let conversations: Vec<String> = ended.into_iter().map(|c| c.id).collect();
        // Deleting the data keys shreds the live database and every later
        // copy; a copy taken earlier still holds them, wrapped. Rotating the
        // wrapping key in the same transaction retires the key those copies
        // need. Only for the key file beside a SQLite database: a key given
        // to several servers would leave the others without it.
        let rotation = match self.rotatable_key_file() {
            Some(file) if file.beside_database && !req.dry_run && !conversations.is_empty() => {
                let pending = self.begin_rotation(&mut tx).await?;
                tx.rewrap_data_keys(&pending.kek).await?;
                Some(pending)
            }
            _ => None,
        };
        let wrapping_key = rotation
            .as_ref()
            .map(|p| json!({ "from": p.from, "to": p.kek.id() }));
        let mut audit_seq = None;
        if req.dry_run {
            // Dropping the transaction rolls every deletion back: the counts
            // are exact, and nothing changed.
            drop(tx);
        } else if !conversations.is_empty() {
            audit_seq = Some(
                self.admin_audit(
                    &mut tx,
                    now,
                    "conversations.purge",
                    None,
                    json!({
                        "cutoff": cutoff,
                        "older_than_seconds": req.older_than.as_secs(),
                        "conversations": conversations,
                        "deleted": deleted,
                        "wrapping_key_rotated": wrapping_key,
                    }),
                )
                .await?,
            );
            tx.commit().await?;
        }
        let earlier_backups_shredded = rotation.is_some();
        if let Some(pending) = rotation {
            self.finish_rotation(pending)?;
        }
        Ok(CleanupReport {
            dry_run: req.dry_run,
            cutoff,
            conversations,
            deleted,
            audit_seq,
            earlier_backups_shredded,
        })
    }

    /// Issues a new token for a seat and replaces the stored hash, which
    /// revokes the old token at once; also lifts a revocation, since a new
    /// token is how the overseer gives access back. Only the HMAC of the new
    /// token is stored; the clear token is returned once.
    pub async fn rotate_token(&self, id: &str, session: SessionId) -> AdminResult<Rotated> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let c = tx
            .conversation(id)
            .await?
            .ok_or_else(|| AdminError::NotFound { id: id.to_owned() })?;
        match LiveState::of(&c, now) {
            LiveState::Active => {}
            state => {
                return Err(AdminError::Ended {
                    id: id.to_owned(),
                    state: state.as_str(),
                    what: "rotating a token",
                });
            }
        }
        let p = tx
            .participant(id, session.as_str())
            .await?
            .ok_or_else(|| AdminError::NoSuchSession {
                id: id.to_owned(),
                session: session.as_str().to_owned(),
            })?;
        if p.agent_id.is_some() {
            return Err(AdminError::AgentSeat {
                id: id.to_owned(),
                session: session.as_str().to_owned(),
            });
        }
        let token = SessionToken::generate();
        tx.replace_token(id, session.as_str(), &self.key.hash_token(&token), now)
            .await?;
        self.admin_audit(
            &mut tx,
            now,
            "session.rotate",
            Some(id),
            json!({ "session": session.as_str(), "was_revoked": p.revoked_at.is_some() }),
        )
        .await?;
        tx.commit().await?;
        Ok(Rotated {
            conversation_id: id.to_owned(),
            session_id: session.as_str().to_owned(),
            role: p.role,
            token: ShownToken::new(&token),
            issued_at: now,
        })
    }

    /// Ends a seat's access: its calls fail with `session_revoked` from the
    /// next transaction on. Revoking twice changes nothing and records nothing.
    pub async fn revoke_session(&self, id: &str, session: SessionId) -> AdminResult<Ended> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        tx.conversation(id)
            .await?
            .ok_or_else(|| AdminError::NotFound { id: id.to_owned() })?;
        let p = tx
            .participant(id, session.as_str())
            .await?
            .ok_or_else(|| AdminError::NoSuchSession {
                id: id.to_owned(),
                session: session.as_str().to_owned(),
            })?;
        if let Some(at) = p.revoked_at {
            return Ok(Ended {
                conversation_id: id.to_owned(),
                session_id: Some(p.session_id),
                at,
                changed: false,
            });
        }
        tx.revoke(id, session.as_str(), now).await?;
        self.admin_audit(
            &mut tx,
            now,
            "session.revoke",
            Some(id),
            json!({ "session": session.as_str() }),
        )
        .await?;
        tx.commit().await?;
        Ok(Ended {
            conversation_id: id.to_owned(),
            session_id: Some(p.session_id),
            at: now,
            changed: true,
        })
    }

    /// Closes a conversation early: every call on it then fails with
    /// `conversation_closed`. Closing twice changes nothing.
    pub async fn close_conversation(&self, id: &str) -> AdminResult<Ended> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let c = tx
            .conversation(id)
            .await?
            .ok_or_else(|| AdminError::NotFound { id: id.to_owned() })?;
        if let Some(at) = c.closed_at {
            return Ok(Ended {
                conversation_id: id.to_owned(),
                session_id: None,
                at,
                changed: false,
            });
        }
        tx.close_conversation(id, now).await?;
        self.admin_audit(&mut tx, now, "conversation.close", Some(id), json!({}))
            .await?;
        tx.commit().await?;
        Ok(Ended {
            conversation_id: id.to_owned(),
            session_id: None,
            at: now,
            changed: true,
        })
    }
}
