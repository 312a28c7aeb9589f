//! Logging in and out.
//!
//! Locally (`mcp-bridge dashboard`), `GET /ui/login?token=...` redeems the
//! one-time token the command printed: the first use gets a session cookie
//! and a redirect to a URL without the token; any later use is refused.
//!
//! Mounted (`serve --http`), the login page is a form where the overseer
//! pastes an observer or admin credential (`mcpa_...`), proven like a
//! bearer credential. The form is bound to the browser that fetched it by
//! a login cookie its hidden field must match (login CSRF). The credential
//! is never stored: the session keeps the proven identity.

use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::pages::layout;
use super::session::{LOGIN_COOKIE, SESSION_COOKIE, SESSION_TTL, cookie, random_secret, set_cookie};
use super::{Dashboard, Mode, PREFIX, Viewer, Who};
use crate::auth::AgentCredential;
use crate::store::admin::FullStore;
use crate::store::agents::AgentRole;

/// How long the credential form stays usable.
const LOGIN_FORM_TTL: Duration = Duration::from_secs(600);

/// `GET /ui/login` query.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// The one-time token (local mode).
    #[serde(default)]
    token: Option<String>,
}

/// `GET /ui/login`.
pub async fn page<S: FullStore>(State(d): State<Arc<Dashboard<S>>>, Query(q): Query<LoginQuery>) -> Response {
    match d.mode {
        Mode::Local => local(&d, q.token.as_deref()),
        Mode::Mounted => credential_form(&d, None, StatusCode::OK),
    }
}

fn local<S: FullStore>(d: &Dashboard<S>, token: Option<&str>) -> Response {
    let Some(token) = token else {
        return message(
            StatusCode::UNAUTHORIZED,
            "Open the login URL that `mcp-bridge dashboard` printed; each URL works once. Restart the command for a new one.",
        );
    };
    if !d.sessions.redeem_login_token(token) {
        tracing::debug!("dashboard login with a used or unknown token refused");
        return message(
            StatusCode::FORBIDDEN,
            "This login URL was already used or is not this dashboard's. Restart `mcp-bridge dashboard` for a new one.",
        );
    }
    tracing::info!("dashboard: the overseer logged in");
    let cookie = d.sessions.start(Who::Local, d.bridge.now_ms());
    logged_in(d, &cookie)
}

fn logged_in<S: FullStore>(d: &Dashboard<S>, session: &str) -> Response {
    let mut response = Redirect::to(&format!("{PREFIX}/")).into_response();
    let h = response.headers_mut();
    if let Ok(v) = set_cookie(SESSION_COOKIE, session, SESSION_TTL, d.tls).parse() {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(v) = set_cookie(LOGIN_COOKIE, "", Duration::ZERO, d.tls).parse() {
        h.append(header::SET_COOKIE, v);
    }
    response
}

fn message(status: StatusCode, text: &str) -> Response {
    let body = layout::bare("Log in", html! { h1 { "Log in" } p.error { (text) } });
    (status, body).into_response()
}

fn credential_form<S: FullStore>(d: &Dashboard<S>, error: Option<&str>, status: StatusCode) -> Response {
    let nonce = random_secret();
    let body = layout::bare(
        "Log in",
        html! {
            h1 { "mcp-bridge dashboard" }
            p { "Paste an " strong { "observer" } " or " strong { "admin" }
                " credential (" code { "mcpa_…" } ", from " code { "mcp-bridge agent add NAME --role observer" } ")." }
            @if let Some(e) = error { p.error { (e) } }
            form method="post" action=(format!("{PREFIX}/login")) {
                input type="hidden" name="login_csrf" value=(nonce);
                label for="credential" { "Credential" }
                input #credential type="password" name="credential" autocomplete="off" required;
                button type="submit" { "Log in" }
            }
        },
    );
    let mut response = (status, body).into_response();
    if let Ok(v) = set_cookie(LOGIN_COOKIE, &nonce, LOGIN_FORM_TTL, d.tls).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The credential form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login_csrf: Option<String>,
    #[serde(default)]
    credential: Option<String>,
}

/// `POST /ui/login` (mounted only).
pub async fn submit<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if d.mode == Mode::Local {
        return message(
            StatusCode::NOT_FOUND,
            "Open the login URL `mcp-bridge dashboard` printed.",
        );
    }
    let bound = match (cookie(&headers, LOGIN_COOKIE), form.login_csrf.as_deref()) {
        (Some(c), Some(f)) if !c.is_empty() => bool::from(c.as_bytes().ct_eq(f.as_bytes())),
        _ => false,
    };
    if !bound {
        return credential_form(
            &d,
            Some("The login form expired or did not come from this page; try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let Some(credential) = form
        .credential
        .as_deref()
        .map(str::trim)
        .and_then(AgentCredential::parse)
    else {
        return credential_form(
            &d,
            Some("That is not a credential: it starts with mcpa_ and has 48 characters."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let agent = match d.bridge.identify_agent(&credential).await {
        Ok(a) => a,
        Err(crate::bridge::Error::AgentRevoked) => {
            tracing::debug!("dashboard login with an unknown, rotated or revoked credential refused");
            return credential_form(
                &d,
                Some("Unknown, rotated or revoked credential."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check a dashboard login credential");
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable; try again.",
            );
        }
    };
    if agent.role == AgentRole::Agent {
        d.bridge
            .record_forbidden("dashboard.login", &agent, "observer")
            .await;
        return credential_form(
            &d,
            Some("An agent credential cannot open the dashboard; use an observer or admin credential."),
            StatusCode::FORBIDDEN,
        );
    }
    tracing::info!(agent = %agent.name, role = %agent.role, "dashboard: logged in");
    let cookie = d.sessions.start(Who::Agent(agent), d.bridge.now_ms());
    logged_in(&d, &cookie)
}

/// The logout form's field.
#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /ui/logout`.
pub async fn logout<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !viewer.csrf_matches(form.csrf.as_deref()) {
        return message(
            StatusCode::FORBIDDEN,
            "Missing or wrong CSRF token; reload the page.",
        );
    }
    if let Some(c) = cookie(&headers, SESSION_COOKIE) {
        d.sessions.end(c);
    }
    let mut response = message(StatusCode::OK, "Logged out.");
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", Duration::ZERO, d.tls).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
