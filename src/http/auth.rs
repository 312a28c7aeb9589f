//! Bearer authentication for `/mcp`: every request carries
//! `Authorization: Bearer mcpa_...`, a registered agent's credential, which
//! [`Bridge::identify_agent`] proves against the agents table before the
//! body is read. The proven [`AgentIdentity`] goes into the request's
//! extensions; rmcp hands the request's parts to the MCP handler, which
//! acts as that agent for this call only.
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

use crate::auth::AgentCredential;
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
    let Some(credential) = bearer_credential(request.headers()) else {
        tracing::debug!("request without a well-formed bearer credential refused");
        return unauthorized();
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
        return super::closing(
            (
                StatusCode::FORBIDDEN,
                "this credential's role may not use the agent tools; use an agent credential (`mcp-bridge agent add NAME`)",
            )
                .into_response(),
        );
    }
    request.extensions_mut().insert(agent);
    next.run(request).await
}

/// 401 with no detail: the client learns only that it must authenticate.
fn unauthorized() -> Response {
    let mut response = super::closing(StatusCode::UNAUTHORIZED.into_response());
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The agent credential in the request's one `Authorization` header, when
/// it is `Bearer <credential>` (the scheme in any case, RFC 9110 11.1) and
/// the credential is well-formed. Two headers are refused: which one a
/// proxy in front would have checked is unknowable.
fn bearer_credential(headers: &HeaderMap) -> Option<AgentCredential> {
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
    AgentCredential::parse(credential)
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
