//! Stepping in: post as overseer, close a conversation, revoke or rotate a
//! seat, reject a YOLO proposal. Every one is a POST that must carry the
//! session's CSRF token, comes from a viewer allowed to act, and goes
//! through a confirmation page first (the same POST again with
//! `confirm=yes`). The bridge call is audited under the viewer's name.
//!
//! An observer's attempt is refused with 403 and recorded in the audit
//! trail, as the HTTP API does.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::layout::{self, Nav, csrf_field};
use super::pages::{Failure, PageResult};
use super::{Dashboard, PREFIX, Viewer, Who};
use crate::bridge::{Bridge, SessionId, is_conversation_id};
use crate::store::admin::FullStore;

/// The fields an action form may carry.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    /// The session's CSRF token.
    #[serde(default)]
    csrf: Option<String>,
    /// `yes` once the overseer confirmed.
    #[serde(default)]
    confirm: Option<String>,
    /// The confirmation page's single-use intent.
    #[serde(default)]
    intent: Option<String>,
    /// The text to post (post only).
    #[serde(default)]
    message: Option<String>,
}

impl ActionForm {
    fn confirmed(&self) -> bool {
        self.confirm.as_deref() == Some("yes")
    }
}

/// Whether the form answers a confirmation page: `Ok(false)` shows the
/// page; `Ok(true)` acts, once per page shown (its intent is consumed, so
/// a reload or a second submit of the answer does not act again).
fn confirmed<S: FullStore>(d: &Dashboard<S>, form: &ActionForm) -> Result<bool, Failure> {
    if !form.confirmed() {
        return Ok(false);
    }
    match form.intent.as_deref() {
        Some(intent) if d.sessions.redeem_intent(intent) => Ok(true),
        _ => Err(Failure::new(
            StatusCode::CONFLICT,
            "this confirmation was already used or has expired; nothing was done again. Start from the conversation page",
        )),
    }
}

/// Checks the CSRF token and the viewer's right to act; returns the bridge
/// acting for the viewer. `operation` names the refusal in the trail.
pub async fn authorize<S: FullStore>(
    d: &Dashboard<S>,
    viewer: &Viewer,
    csrf: Option<&str>,
    operation: &str,
) -> Result<Bridge<S>, Failure> {
    if !viewer.csrf_matches(csrf) {
        tracing::debug!("dashboard POST without this session's CSRF token refused");
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "this form is stale or did not come from the dashboard (missing or wrong CSRF token); reload the page and try again",
        ));
    }
    if !viewer.can_act() {
        if let Who::Agent(agent) = &viewer.who {
            d.bridge.record_forbidden(operation, agent, "admin").await;
        }
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "an observer credential watches only; stepping in needs an admin credential",
        ));
    }
    Ok(d.bridge_for(viewer))
}

/// The confirmation page: what will happen, and the same form again with
/// `confirm=yes`.
fn confirm_page<S: FullStore>(
    d: &Dashboard<S>,
    viewer: &Viewer,
    action: &str,
    what: Markup,
    form: &ActionForm,
    back: &str,
) -> Response {
    let body = html! {
        h1 { "Confirm" }
        div.confirm { (what) }
        form method="post" action=(action) {
            (csrf_field(viewer))
            input type="hidden" name="confirm" value="yes";
            input type="hidden" name="intent" value=(d.sessions.issue_intent());
            @if let Some(m) = &form.message { textarea hidden name="message" { (m) } }
            button.danger type="submit" { "Confirm" }
            " "
            a href=(back) { "Cancel" }
        }
    };
    layout::page("Confirm", viewer, Nav::Conversations, body).into_response()
}

fn conversation_url(id: &str) -> String {
    format!("{PREFIX}/conversations/{id}")
}

/// `POST /ui/conversations/{id}/close`.
pub async fn close<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> PageResult {
    let bridge = authorize(&d, &viewer, form.csrf.as_deref(), "dashboard.close").await?;
    if !is_conversation_id(&id) {
        return Err(Failure::bad_id("conversation"));
    }
    let back = conversation_url(&id);
    if !confirmed(&d, &form)? {
        let what = html! {
            p { "Close conversation " span.mono { (id) } "? Every participant's next call fails with "
                code { "conversation_closed" } ". This cannot be undone." }
        };
        return Ok(confirm_page(
            &d,
            &viewer,
            &format!("{back}/close"),
            what,
            &form,
            &back,
        ));
    }
    bridge.close_conversation(&id).await?;
    Ok(Redirect::to(&back).into_response())
}

/// `POST /ui/conversations/{id}/seats/{seat}/{revoke|rotate}`.
pub async fn seat<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
    Path((id, seat, action)): Path<(String, String, String)>,
    axum::Form(form): axum::Form<ActionForm>,
) -> PageResult {
    let operation = match action.as_str() {
        "revoke" => "dashboard.revoke",
        "rotate" => "dashboard.rotate",
        _ => return Err(Failure::bad_id("action")),
    };
    let bridge = authorize(&d, &viewer, form.csrf.as_deref(), operation).await?;
    if !is_conversation_id(&id) {
        return Err(Failure::bad_id("conversation"));
    }
    let Some(session) = SessionId::parse(&seat) else {
        return Err(Failure::bad_id("seat"));
    };
    let back = conversation_url(&id);
    if !confirmed(&d, &form)? {
        let what = if action == "revoke" {
            html! { p { "Revoke seat " strong.mono { (session) } " of " span.mono { (id) }
            "? Its calls fail with " code { "session_revoked" } " from now on (rotating gives access back)." } }
        } else {
            html! { p { "Rotate seat " strong.mono { (session) } " of " span.mono { (id) }
            "? Its current token stops working at once; the new token is shown once, on the next page." } }
        };
        return Ok(confirm_page(
            &d,
            &viewer,
            &format!("{back}/seats/{session}/{action}"),
            what,
            &form,
            &back,
        ));
    }
    if action == "revoke" {
        bridge.revoke_session(&id, session).await?;
        return Ok(Redirect::to(&back).into_response());
    }
    let rotated = bridge.rotate_token(&id, session).await?;
    // The one place a token is rendered: this answer, to the overseer who
    // asked for it, `no-store` like every dashboard answer.
    let body = html! {
        h1 { "New token for seat " span.mono { (rotated.session_id) } }
        p { "Seat " strong { (rotated.session_id) } " (" (rotated.role) ") of " span.mono { (rotated.conversation_id) }
            " has a new token. It is shown " strong { "once" } ": give it to the agent through a trusted channel." }
        pre.token { (&*rotated.token) }
        p { a href=(back) { "Back to the conversation" } }
    };
    Ok(layout::page("Rotated", &viewer, Nav::Conversations, body).into_response())
}

/// `POST /ui/conversations/{id}/post`: a message from the overseer.
pub async fn post_message<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> PageResult {
    let bridge = authorize(&d, &viewer, form.csrf.as_deref(), "dashboard.post").await?;
    if !is_conversation_id(&id) {
        return Err(Failure::bad_id("conversation"));
    }
    let back = conversation_url(&id);
    let message = form.message.as_deref().unwrap_or_default();
    if message.trim().is_empty() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "message is empty; write what to post",
        ));
    }
    if !confirmed(&d, &form)? {
        let what = html! {
            p { "Post this to every participant of " span.mono { (id) } " as " strong { "overseer" } "?" }
            pre.body { (message) }
        };
        return Ok(confirm_page(
            &d,
            &viewer,
            &format!("{back}/post"),
            what,
            &form,
            &back,
        ));
    }
    let posted = bridge.post_as_overseer(&id, message).await?;
    Ok(Redirect::to(&format!("{back}#m-{}", posted.message_id)).into_response())
}

/// `POST /ui/proposals/{id}/reject`: the dashboard may reject a YOLO
/// proposal, never approve one (approval needs the human at a terminal).
pub async fn reject<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> PageResult {
    let bridge = authorize(&d, &viewer, form.csrf.as_deref(), "dashboard.reject").await?;
    if !is_proposal_id(&id) {
        return Err(Failure::bad_id("proposal"));
    }
    let back = format!("{PREFIX}/proposals");
    if !confirmed(&d, &form)? {
        let what = html! { p { "Reject proposal " span.mono { (id) } "? It can then never run." } };
        return Ok(confirm_page(
            &d,
            &viewer,
            &format!("{back}/{id}/reject"),
            what,
            &form,
            &back,
        ));
    }
    bridge.reject_proposal(&id).await?;
    Ok(Redirect::to(&back).into_response())
}

/// `prop_` and 32 lowercase hex digits.
pub fn is_proposal_id(id: &str) -> bool {
    id.strip_prefix("prop_")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}
