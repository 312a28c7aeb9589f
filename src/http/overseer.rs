//! The overseer's operations over HTTP, at `/api/v1/...`, for `observer`
//! and `admin` credentials: what `mcp-bridge list`, `show`, `audit`,
//! `stats` (observer) and `close`, `revoke`, `rotate`, `export`, `cleanup`
//! and `post` (admin) do at a terminal, as JSON.
//!
//! Every request is authenticated like `/mcp` (a bearer credential from
//! `mcp-bridge agent add`; anything else is 401 with no detail). A role that
//! may not do what it asked gets 403 and an audit entry (`api.*.refused`,
//! code `forbidden`, actor `agent:NAME`); an `agent` credential may do none
//! of this. What an admin changes is audited under its own name, not `cli`.
//!
//! Ids from the path are checked for shape before use, so an error never
//! repeats a value the caller made up; every answer is `no-store`, since a
//! rotated token is in one.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bridge::{self, AdminError, AgentIdentity, Bridge, CleanupRequest, ListFilter, SessionId};
use crate::store::admin::{AuditFilter, FullStore};
use crate::store::agents::AgentRole;

/// Where the API is mounted.
pub const API_PREFIX: &str = "/api/v1";

/// The most audit entries one page returns.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// The routes, behind their own authentication and the same `Host`
/// allow-list as `/mcp`. No browser is expected here (the dashboard will
/// have its own pages), so a request carrying `Origin` is refused.
pub fn routes<S: FullStore>(bridge: Bridge<S>, allowed_hosts: Vec<String>) -> Router {
    Router::new()
        .route("/api/v1/conversations", get(list::<S>))
        .route("/api/v1/conversations/{id}", get(show::<S>))
        .route("/api/v1/conversations/{id}/export", get(export::<S>))
        .route("/api/v1/conversations/{id}/close", post(close::<S>))
        .route(
            "/api/v1/conversations/{id}/seats/{seat}/revoke",
            post(revoke::<S>),
        )
        .route(
            "/api/v1/conversations/{id}/seats/{seat}/rotate",
            post(rotate::<S>),
        )
        .route("/api/v1/conversations/{id}/messages", post(post_message::<S>))
        .route("/api/v1/audit", get(audit::<S>))
        .route("/api/v1/audit/verify", get(verify::<S>))
        .route("/api/v1/stats", get(stats::<S>))
        .route("/api/v1/agents", get(agents::<S>))
        .route("/api/v1/cleanup", post(cleanup::<S>))
        .layer(axum::middleware::from_fn_with_state(
            bridge.clone(),
            authenticate::<S>,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(allowed_hosts),
            check_host_and_origin,
        ))
        .with_state(bridge)
}

/// 403 for a `Host` not on the allow-list (DNS rebinding) or any `Origin`.
async fn check_host_and_origin(
    State(hosts): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host_ok = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| host_allowed(h, &hosts));
    if !host_ok || headers.contains_key(header::ORIGIN) {
        return (StatusCode::FORBIDDEN, "forbidden host or origin").into_response();
    }
    next.run(request).await
}

/// Whether `host` (`name`, `name:port`, `[v6]:port`) is on the list; an
/// entry without a port matches any port.
pub(crate) fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default().to_owned(),
        None => host.rsplit_once(':').map_or(host.as_str(), |(n, _)| n).to_owned(),
    };
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&host) || a.eq_ignore_ascii_case(&name))
}

/// Proves the bearer credential (any role) and puts the identity in the
/// request's extensions; 401 otherwise.
async fn authenticate<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(credential) = super::auth::bearer_credential(request.headers()) else {
        return super::auth::unauthorized();
    };
    match bridge.identify_agent(&credential).await {
        Ok(agent) => {
            request.extensions_mut().insert(agent);
            let mut response = next.run(request).await;
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(bridge::Error::AgentRevoked) => super::auth::unauthorized(),
        Err(e) => {
            tracing::error!(error = %e, "cannot check a bearer credential");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// A refusal: its status and a JSON body shaped like the tools' errors.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let (status, code) = match &e {
            AdminError::NotFound { .. } => (StatusCode::NOT_FOUND, "conversation_not_found"),
            AdminError::NoSuchSession { .. } => (StatusCode::NOT_FOUND, "session_not_found"),
            AdminError::AgentSeat { .. } => (StatusCode::CONFLICT, "agent_seat"),
            AdminError::Ended { .. } => (StatusCode::CONFLICT, "conversation_ended"),
            AdminError::Store(crate::store::Error::Busy) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            AdminError::Refused(r) => {
                let status = match r.code() {
                    "quota_exceeded" => StatusCode::CONFLICT,
                    "message_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                (status, r.code())
            }
            _ => {
                tracing::error!(error = %e, "an overseer operation over HTTP failed");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the operation failed; the server's log says why",
                );
            }
        };
        // Only ids whose shape was checked reach these messages.
        Self::new(status, code, e.to_string())
    }
}

type ApiResult = Result<Response, ApiError>;

/// What an operation needs.
#[derive(Clone, Copy)]
enum Need {
    /// Reading: `observer` or `admin`.
    Observer,
    /// Changing or exporting: `admin`.
    Admin,
}

/// Lets `who` do `operation` when its role allows it; otherwise records the
/// attempt and answers 403. Returns the bridge acting under `who`'s name.
async fn allow<S: FullStore>(
    bridge: &Bridge<S>,
    who: &AgentIdentity,
    operation: &str,
    need: Need,
) -> Result<Bridge<S>, ApiError> {
    let allowed = match need {
        Need::Observer => matches!(who.role, AgentRole::Observer | AgentRole::Admin),
        Need::Admin => who.role == AgentRole::Admin,
    };
    if allowed {
        return Ok(bridge.acting_for(who));
    }
    let needed = match need {
        Need::Observer => "observer or admin",
        Need::Admin => "admin",
    };
    bridge.record_forbidden(operation, who, needed).await;
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "this {} credential may not do this; it needs an {needed} credential",
            who.role
        ),
    ))
}

fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(Json(value).into_response())
}

/// A conversation id from the path, checked for shape.
fn conversation_id(id: &str) -> Result<&str, ApiError> {
    if bridge::is_conversation_id(id) {
        Ok(id)
    } else {
        Err(ApiError::bad(
            "the conversation id in the path is not an id (conv_ and 32 hex characters); GET /api/v1/conversations lists them",
        ))
    }
}

/// The one id segment of the path.
fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|_| ApiError::bad("the conversation id in the path is not an id"))
}

/// A seat letter from the path.
fn seat(text: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(text).ok_or_else(|| ApiError::bad("the seat in the path must be one letter from a to p"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `all` (default), `active` or `ended`.
    state: Option<String>,
}

async fn list<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.list", Need::Observer).await?;
    let Query(q) = q.map_err(|_| ApiError::bad("the only query parameter is state=all|active|ended"))?;
    let filter = match q.state.as_deref() {
        None | Some("all") => ListFilter::All,
        Some("active") => ListFilter::Active,
        Some("ended") => ListFilter::Ended,
        Some(_) => return Err(ApiError::bad("state must be all, active or ended")),
    };
    ok(bridge.list_conversations(filter).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowQuery {
    /// Only messages after this seq (for following a conversation).
    after_seq: Option<i64>,
}

async fn show<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ShowQuery>, QueryRejection>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.show", Need::Observer).await?;
    let Query(q) =
        q.map_err(|_| ApiError::bad("the only query parameter is after_seq=N (a whole number)"))?;
    let id = path_id(id)?;
    let id = conversation_id(&id)?;
    let after = q.after_seq.unwrap_or(0).max(0);
    ok(bridge.show_conversation(id, after).await?)
}

async fn export<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.export", Need::Admin).await?;
    let id = path_id(id)?;
    let id = conversation_id(&id)?;
    ok(bridge.export_conversation(id).await?)
}

async fn close<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.close", Need::Admin).await?;
    let id = path_id(id)?;
    let id = conversation_id(&id)?;
    ok(bridge.close_conversation(id).await?)
}

async fn revoke<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.revoke", Need::Admin).await?;
    let Path((id, s)) =
        path.map_err(|_| ApiError::bad("the path must be /api/v1/conversations/ID/seats/SEAT/revoke"))?;
    let id = conversation_id(&id)?;
    ok(bridge.revoke_session(id, seat(&s)?).await?)
}

async fn rotate<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.rotate", Need::Admin).await?;
    let Path((id, s)) =
        path.map_err(|_| ApiError::bad("the path must be /api/v1/conversations/ID/seats/SEAT/rotate"))?;
    let id = conversation_id(&id)?;
    ok(bridge.rotate_token(id, seat(&s)?).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Entries after this seq.
    after: Option<i64>,
    /// At most this many (default and most: [`MAX_AUDIT_PAGE`]).
    limit: Option<usize>,
    /// Only entries about this conversation.
    conversation_id: Option<String>,
    /// Only actions matching this glob (`message.*`, `*.refused`).
    action: Option<String>,
}

async fn audit<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.audit", Need::Observer).await?;
    let Query(q) = q.map_err(|_| {
        ApiError::bad("query parameters: after=N, limit=N, conversation_id=ID, action=GLOB (no others)")
    })?;
    let limit = q.limit.unwrap_or(MAX_AUDIT_PAGE);
    if limit == 0 || limit > MAX_AUDIT_PAGE {
        return Err(ApiError::bad(format!("limit must be 1 to {MAX_AUDIT_PAGE}")));
    }
    if let Some(c) = &q.conversation_id {
        conversation_id(c)?;
    }
    if let Some(a) = &q.action
        && (a.is_empty()
            || a.len() > 64
            || !a
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._*-".contains(&b)))
    {
        return Err(ApiError::bad(
            "action must be a glob of at most 64 letters, digits and . _ - * (for example message.* or *.refused)",
        ));
    }
    // Pending refusal counts first, so the page is the whole record.
    if let Err(e) = bridge.flush_refusal_counts().await {
        tracing::error!(error = %e, "cannot write pending refusal counts before an audit read");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the audit trail cannot be read right now; retry in a moment",
        ));
    }
    let filter = AuditFilter {
        conversation_id: q.conversation_id,
        action_glob: q.action,
        since: None,
        until: None,
    };
    let entries = bridge
        .audit_entries(&filter, q.after.unwrap_or(0).max(0), limit as i64)
        .await?;
    let entries: Vec<Value> = entries.iter().map(crate::audit::Entry::to_json).collect();
    ok(json!({ "entries": entries }))
}

async fn verify<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.audit_verify", Need::Observer).await?;
    match bridge.check_audit().await {
        Ok(check) => ok(json!({
            "intact": true,
            "entries": check.entries,
            "head": check.head.map(|(seq, hash)| json!({ "seq": seq, "hash": hash })),
        })),
        Err(AdminError::AuditBroken(broken)) => ok(json!({ "intact": false, "problem": broken.to_string() })),
        Err(e) => Err(e.into()),
    }
}

async fn stats<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.stats", Need::Observer).await?;
    ok(bridge.stats().await?)
}

async fn agents<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.agents", Need::Observer).await?;
    ok(bridge.list_agents().await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CleanupBody {
    /// Only conversations that ended at least this many seconds ago.
    older_than_seconds: u64,
    /// Count what would go without deleting.
    #[serde(default)]
    dry_run: bool,
}

async fn cleanup<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
    body: Result<Json<CleanupBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.cleanup", Need::Admin).await?;
    let Json(body) = body.map_err(|_| {
        ApiError::bad("the body must be JSON {\"older_than_seconds\": N, \"dry_run\": true|false}")
    })?;
    ok(bridge
        .cleanup(CleanupRequest {
            older_than: Duration::from_secs(body.older_than_seconds),
            dry_run: body.dry_run,
            only: None,
        })
        .await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostBody {
    /// The overseer's message, in clear; redacted before storage.
    message: String,
}

/// `mcp-bridge post` over HTTP: the human (an admin credential) posts as
/// `overseer`, audited under the credential's name.
async fn post_message<S: FullStore>(
    State(bridge): State<Bridge<S>>,
    Extension(who): Extension<Arc<AgentIdentity>>,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<PostBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let bridge = allow(&bridge, &who, "api.post", Need::Admin).await?;
    let id = path_id(id)?;
    let id = conversation_id(&id)?;
    let Json(body) = body.map_err(|_| ApiError::bad("the body must be JSON {\"message\": \"...\"}"))?;
    ok(bridge.post_as_overseer(id, &body.message).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_with_or_without_their_port() {
        let allowed = vec![
            "localhost".to_owned(),
            "::1".to_owned(),
            "bridge.example:8443".to_owned(),
        ];
        assert!(host_allowed("localhost", &allowed));
        assert!(host_allowed("LOCALHOST:8750", &allowed));
        assert!(host_allowed("[::1]:8750", &allowed));
        assert!(host_allowed("bridge.example:8443", &allowed));
        assert!(!host_allowed("bridge.example:9999", &allowed));
        assert!(!host_allowed("evil.example", &allowed));
        assert!(!host_allowed("localhost.evil.example", &allowed));
    }
}
