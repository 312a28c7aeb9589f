//! Bearer authentication for `/mcp`: every request carries
//! `Authorization: Bearer mcpa_...`, a registered agent's credential, which
//! [`Bridge::identify_agent`] proves against the agents table before the
//! body is read. The proven [`AgentIdentity`] goes into the request's
//! extensions; rmcp hands the request's parts to the MCP handler, which
//! acts as that agent for this call only.
//!
//! A seat token (`Bearer mcpb_...`, from `create_conversation`) is taken
//! too, for clients of the original token flow: it admits the request when
//! it is the current token of a seat that is not revoked in a live
//! conversation, and the call is served the seat-token tools, which prove
//! their own `token` argument as over stdio.
//!
//! A missing, malformed, unknown, rotated or revoked credential gets 401
//! with an empty body and `WWW-Authenticate: Bearer`, and nothing says
//! which of the five it was. A credential whose role is not `agent` gets
//! 403. Neither the header nor the credential is ever logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{AgentCredential, SessionToken};
use crate::bridge::{self, AgentIdentity, Bridge};
use crate::store::Store;
use crate::store::agents::AgentRole;

/// The middleware: authenticates, then passes the request on with the
/// identity in its extensions.
pub async fn require_agent<S: Store>(
    State(bridge): State<Bridge<S>>,
    mut request: Request,
    next: Next,
) -> Response {
    let credential = match bearer(request.headers()) {
        Some(Bearer::Agent(credential)) => credential,
        // A seat token admits the request to the seat-token tools; each
        // call still proves its own `token` argument, exactly as on stdio.
        Some(Bearer::Seat(token)) => {
            return match bridge.live_seat_of_token(&token).await {
                Ok(Some(seat)) => {
                    request
                        .extensions_mut()
                        .insert(super::limits::Key::of_seat(&seat.0, &seat.1));
                    next.run(request).await
                }
                Ok(None) => {
                    tracing::debug!("request with an unknown, rotated or revoked seat token refused");
                    unauthorized()
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot check a bearer seat token");
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                }
            };
        }
        None => {
            tracing::debug!("request without a well-formed bearer credential refused");
            return unauthorized();
        }
    };
    let agent: Arc<AgentIdentity> = match bridge.identify_agent(&credential).await {
        Ok(agent) => agent,
        Err(bridge::Error::AgentRevoked) => {
            tracing::debug!("request with an unknown, rotated or revoked credential refused");
            return unauthorized();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check a bearer credential");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    if agent.role != AgentRole::Agent {
        tracing::debug!(agent = %agent.name, role = %agent.role, "a non-agent credential asked for the agent tools");
        bridge.record_forbidden("mcp", &agent, "agent").await;
        return super::closing(
            (
                StatusCode::FORBIDDEN,
                "this credential's role may not use the agent tools; use an agent credential (`mcp-bridge agent add NAME`)",
            )
                .into_response(),
        );
    }
    request
        .extensions_mut()
        .insert(super::limits::Key::of_agent(&agent));
    request.extensions_mut().insert(agent);
    next.run(request).await
}

/// 401 with no detail: the client learns only that it must authenticate.
pub(crate) fn unauthorized() -> Response {
    let mut response = super::closing(StatusCode::UNAUTHORIZED.into_response());
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// What a well-formed bearer credential is.
pub(crate) enum Bearer {
    /// A registered agent's credential (`mcpa_...`).
    Agent(AgentCredential),
    /// A seat token (`mcpb_...`) from `create_conversation`.
    Seat(SessionToken),
}

/// The credential in the request's one `Authorization` header, when it is
/// `Bearer <credential>` (the scheme in any case, RFC 9110 11.1) and the
/// credential is a well-formed agent credential or seat token. Two headers
/// are refused: which one a proxy in front would have checked is unknowable.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<Bearer> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    if let Some(agent) = AgentCredential::parse(credential) {
        return Some(Bearer::Agent(agent));
    }
    SessionToken::parse(credential).map(Bearer::Seat)
}

/// The agent credential of the request, when that is what it carries (the
/// overseer's API takes no seat token).
pub(crate) fn bearer_credential(headers: &HeaderMap) -> Option<AgentCredential> {
    match bearer(headers)? {
        Bearer::Agent(credential) => Some(credential),
        Bearer::Seat(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const GOOD: &str = "mcpa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn a_bearer_agent_credential_is_taken() {
        assert!(
            AgentCredential::parse(GOOD).is_some(),
            "test credential must be well-formed"
        );
        assert!(bearer_credential(&headers(&[&format!("Bearer {GOOD}")])).is_some());
        assert!(bearer_credential(&headers(&[&format!("bearer {GOOD}")])).is_some());
        let seat = format!("Bearer mcpb_{}", "A".repeat(43));
        assert!(matches!(bearer(&headers(&[&seat])), Some(Bearer::Seat(_))));
        assert!(
            bearer_credential(&headers(&[&seat])).is_none(),
            "the API takes agent credentials only"
        );
        assert!(bearer(&headers(&[&format!("Bearer mcpb_{}", "A".repeat(42))])).is_none());
        assert!(bearer(&headers(&[&format!("Bearer mcpb_{}!", "A".repeat(42))])).is_none());
    }

    #[test]
    fn anything_else_is_refused() {
        assert!(bearer_credential(&headers(&[])).is_none());
        assert!(bearer_credential(&headers(&[GOOD])).is_none());
        assert!(bearer_credential(&headers(&[&format!("Basic {GOOD}")])).is_none());
        assert!(bearer_credential(&headers(&[&format!("Bearer  {GOOD}")])).is_none());
        assert!(bearer_credential(&headers(&["Bearer mcpa_short"])).is_none());
        assert!(
            bearer_credential(&headers(&[
                "Bearer mcpb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            ]))
            .is_none()
        );
        let twice = format!("Bearer {GOOD}");
        assert!(bearer_credential(&headers(&[&twice, &twice])).is_none());
    }
}
