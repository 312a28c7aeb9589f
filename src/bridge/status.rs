//! Liveness: self-reported status with a heartbeat, and the partner's view of it.

use serde_json::json;

use super::{Access, Bridge, Error, PartnerStatus, RateClass, Result, StatusKind, StatusUpdated, validate};
use crate::clock::{Millis, rfc3339};
use crate::store::{Status, Store, Tx};

/// What `update_my_status` needs.
#[derive(Debug)]
pub struct StatusRequest {
    /// Who reports.
    pub auth: Access,
    /// The new state.
    pub status: StatusKind,
    /// Optional free text; redacted before storage.
    pub note: Option<String>,
}

impl<S: Store> Bridge<S> {
    /// Records the caller's status; every call is also a heartbeat.
    pub async fn update_status(&self, req: StatusRequest) -> Result<StatusUpdated> {
        let result = self.update_inner(&req).await;
        self.audited("status.update", &req.auth, result).await
    }

    async fn update_inner(&self, req: &StatusRequest) -> Result<StatusUpdated> {
        let mut tx = self.store.begin_concurrent_write().await?;
        let now = self.now();
        let caller = self.authenticate(&mut tx, &req.auth, now).await?;
        self.rate(&mut tx, &caller, RateClass::Read, now).await?;
        if let Some(n) = &req.note {
            validate::note(n, &self.limits)?;
        }
        let (note, kinds) = match &req.note {
            Some(n) => {
                let r = self.redactor.redact(n);
                (Some(r.text.into_owned()), r.kinds)
            }
            None => (None, Vec::new()),
        };
        tx.upsert_status(&Status {
            conversation_id: caller.conversation.id.clone(),
            session_id: caller.participant.session_id.clone(),
            status: req.status.as_str().to_owned(),
            note: note.clone(),
            heartbeat_at: now,
        })
        .await?;
        self.audit_caller(
            &mut tx,
            now,
            &caller,
            "status.update",
            json!({ "status": req.status.as_str(), "note_redacted": kinds }),
        )
        .await?;
        tx.commit().await?;
        Ok(StatusUpdated {
            status: req.status.as_str().to_owned(),
            note,
            heartbeat_at: rfc3339(now),
        })
    }

    /// The partner's role, status, note and liveness.
    pub async fn partner_status(&self, auth: impl Into<Access>) -> Result<PartnerStatus> {
        let auth: Access = auth.into();
        let result = self.partner_inner(&auth).await;
        self.audited("status.check", &auth, result).await
    }

    async fn partner_inner(&self, auth: &Access) -> Result<PartnerStatus> {
        let mut tx = self.store.begin_concurrent_write().await?;
        let now = self.now();
        let caller = self.authenticate(&mut tx, auth, now).await?;
        self.rate(&mut tx, &caller, RateClass::Read, now).await?;
        if caller.participants.len() > 2 {
            return Err(Error::invalid(
                "conversation_id",
                format!(
                    "this conversation has {} participants, so there is no single partner; call list_participants for everyone's status",
                    caller.participants.len()
                ),
            ));
        }
        let partner = caller
            .participants
            .iter()
            .find(|p| p.session_id != caller.participant.session_id)
            .cloned()
            .ok_or_else(|| Error::invalid("session_id", "this conversation has no partner"))?;
        let status = tx.status(&caller.conversation.id, &partner.session_id).await?;
        let unread_by_partner = tx
            .count_unread(&caller.conversation.id, &partner.session_id)
            .await?;
        self.audit_caller(
            &mut tx,
            now,
            &caller,
            "status.check",
            json!({ "partner": partner.session_id }),
        )
        .await?;
        tx.commit().await?;
        let since = status.as_ref().map(|s| seconds_since(s.heartbeat_at, now));
        Ok(PartnerStatus {
            partner_role: partner.role,
            partner_session_id: partner.session_id,
            alive: status
                .as_ref()
                .is_some_and(|s| self.is_alive(s.heartbeat_at, now)),
            last_heartbeat: status.as_ref().map(|s| rfc3339(s.heartbeat_at)),
            note: status.as_ref().and_then(|s| s.note.clone()),
            status: status.map(|s| s.status),
            seconds_since_heartbeat: since,
            heartbeat_window_seconds: self.limits.heartbeat_window.as_secs(),
            unread_by_partner,
        })
    }
}

impl<S: Store> Bridge<S> {
    /// Whether a heartbeat at `heartbeat_at` still counts as alive at `now`:
    /// the one judge of liveness for agents and the overseer alike.
    pub(super) fn is_alive(&self, heartbeat_at: Millis, now: Millis) -> bool {
        now - heartbeat_at <= self.limits.heartbeat_window.as_millis() as i64
    }
}

/// Whole seconds from `heartbeat_at` to `now`, never negative.
pub(super) fn seconds_since(heartbeat_at: Millis, now: Millis) -> i64 {
    (now - heartbeat_at).max(0) / 1000
}
