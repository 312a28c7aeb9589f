//! What every dashboard request passes before a page sees it: the `Host`
//! check (DNS rebinding), the security headers on every answer, and the
//! session lookup that turns a cookie into a [`Viewer`].
//!
//! A request without a live session never reaches a page: a page view is
//! sent to the login page, anything else (a POST, the event stream) gets
//! 401. A mounted session of a registered agent also ends the moment the
//! agent is revoked or its credential rotated.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::session::{SESSION_COOKIE, cookie};
use super::{Dashboard, PREFIX, Who};
use crate::store::admin::FullStore;
use crate::store::agents::AgentTx;

/// The Content-Security-Policy of every answer: no inline script or style,
/// nothing from elsewhere, no framing, forms only to this origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Adds the security headers to every answer, refusals included.
pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// 403 for a `Host` not on the allow-list, and for a request whose
/// `Origin` is another site's. `Origin: null` passes: under the pages'
/// `Referrer-Policy: no-referrer` Chromium sends `null` on its own form
/// POSTs, so `null` says nothing; the session's CSRF token and the
/// SameSite=Strict cookie are what stop a forged request.
pub async fn check_host<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| crate::http::overseer::host_allowed(h, &d.allowed_hosts));
    let Some(host) = host else {
        tracing::debug!("dashboard request with a Host not on the allow-list refused");
        return (StatusCode::FORBIDDEN, "forbidden host").into_response();
    };
    if let Some(origin) = request.headers().get(header::ORIGIN).filter(|o| *o != "null") {
        let same = origin.to_str().ok().is_some_and(|o| {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        });
        if !same {
            tracing::debug!("dashboard request from another origin refused");
            return (StatusCode::FORBIDDEN, "forbidden origin").into_response();
        }
    }
    next.run(request).await
}

/// Puts the session's [`Viewer`] into the request, or refuses it.
pub async fn require_session<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let viewer = cookie(request.headers(), SESSION_COOKIE).and_then(|c| d.sessions.viewer(c));
    let viewer = match viewer {
        Some(v) => match still_valid(&d, &v.who, v.since).await {
            Ok(true) => Some(v),
            Ok(false) => {
                if let Some(c) = cookie(request.headers(), SESSION_COOKIE) {
                    d.sessions.end(c);
                }
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check a dashboard session's agent");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        },
        None => None,
    };
    let Some(viewer) = viewer else {
        if request.method() == Method::GET && !request.uri().path().ends_with("/events") {
            return Redirect::to(&format!("{PREFIX}/login")).into_response();
        }
        return (StatusCode::UNAUTHORIZED, "log in to the dashboard first").into_response();
    };
    request.extensions_mut().insert(viewer);
    next.run(request).await
}

/// A registered agent's session lasts only while its credential does: not
/// revoked, not rotated since the login.
async fn still_valid<S: FullStore>(
    d: &Dashboard<S>,
    who: &Who,
    since: crate::clock::Millis,
) -> Result<bool, crate::store::Error> {
    let Who::Agent(agent) = who else {
        return Ok(true);
    };
    let mut tx = d.bridge.store().begin_read().await?;
    Ok(tx.agent(agent.id).await?.is_some_and(|a| {
        a.revoked_at.is_none() && a.role == agent.role && a.rotated_at.is_none_or(|r| r < since)
    }))
}
