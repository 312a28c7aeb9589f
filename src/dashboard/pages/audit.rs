//! The audit page: entries with filters (conversation, action glob), a
//! page at a time, and the chain's verification state (verified up to
//! entry N, the head hash, when) with a button that re-verifies.
//!
//! The full check (`audit verify`: chain, seals, schema, head file) reads
//! the whole trail, so it runs on the button, not on every page view; the
//! page shows the last result and when it was taken.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Nav, csrf_field, when};
use super::{Failure, PageResult};
use crate::bridge::{AdminError, HeadFileState, is_conversation_id};
use crate::clock::Millis;
use crate::dashboard::{Dashboard, PREFIX, Viewer};
use crate::store::admin::{AuditFilter, FullStore};

/// Entries per page.
const PAGE: i64 = 100;

/// The longest action glob accepted.
const MAX_GLOB: usize = 64;

/// The outcome of the last verification.
#[derive(Debug, Clone)]
pub enum Verified {
    /// The chain and the rest of the full check passed.
    Intact {
        /// When it ran.
        at: Millis,
        /// Entries verified.
        entries: u64,
        /// The newest entry's seq and hash.
        head: Option<(i64, String)>,
        /// What the head file outside the database said.
        head_file: String,
    },
    /// The check failed; the sentence says where.
    Broken {
        /// When it ran.
        at: Millis,
        /// What is wrong.
        reason: String,
    },
}

/// The last verification, shared by every viewer of one dashboard.
pub type LastVerified = Mutex<Option<Verified>>;

/// The query string.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    conversation: Option<String>,
    #[serde(default)]
    action: Option<String>,
    /// Entries with seq greater than this; default: the newest page.
    #[serde(default)]
    after: Option<i64>,
}

/// `GET /ui/audit`.
pub async fn page<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    let conversation = q.conversation.filter(|c| !c.is_empty());
    if conversation.as_deref().is_some_and(|c| !is_conversation_id(c)) {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "conversation must be a conversation id (conv_ and 32 hex digits)",
        ));
    }
    let action = q.action.filter(|a| !a.is_empty());
    if action.as_deref().is_some_and(|a| {
        a.len() > MAX_GLOB
            || !a
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._*-".contains(&b))
    }) {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            format!("action must be at most {MAX_GLOB} characters of letters, digits, '.', '_', '-' and '*'"),
        ));
    }
    if d.verified.lock().map(|v| v.is_none()).unwrap_or(true) {
        verify_now(&d).await?;
    }
    let figures = d.bridge.stats().await?.figures;
    let after = q.after.unwrap_or(figures.audit_entries - PAGE).max(0);
    let filter = AuditFilter {
        conversation_id: conversation.clone(),
        action_glob: action.clone(),
        since: None,
        until: None,
    };
    let entries = d.bridge.audit_entries(&filter, after, PAGE).await?;
    let now = d.bridge.now_ms();
    let verified = d.verified.lock().ok().and_then(|v| v.clone());
    let query = |after: i64| {
        let mut s = format!("{PREFIX}/audit?after={after}");
        if let Some(c) = &conversation {
            s.push_str(&format!("&conversation={c}"));
        }
        if let Some(a) = &action {
            s.push_str(&format!("&action={a}"));
        }
        s
    };
    let body = html! {
        h1 { "Audit trail" }
        section.verify {
            (verification(verified.as_ref(), now))
            form.inline method="post" action=(format!("{PREFIX}/audit/verify")) {
                (csrf_field(&viewer))
                button type="submit" { "Re-verify" }
            }
        }
        form.filters method="get" action=(format!("{PREFIX}/audit")) {
            label { "Conversation " input name="conversation" value=[conversation.as_deref()] placeholder="conv_…"; }
            label { "Action " input name="action" value=[action.as_deref()] placeholder="message.* or *.refused"; }
            button type="submit" { "Filter" }
        }
        p.pager {
            @if after > 0 { a href=(query((after - PAGE).max(0))) { "← older" } " " }
            @if let Some(last) = entries.last() { a href=(query(last.seq)) { "newer →" } }
        }
        table.list.audit {
            thead { tr { th { "#" } th { "When" } th { "Actor" } th { "Action" } th { "Conversation" } th { "Detail" } th { "Hash" } } }
            tbody {
                @for e in entries.iter().rev() {
                    tr {
                        td.num { (e.seq) }
                        td { (when(e.at, now)) }
                        td.mono { (e.actor) }
                        td.mono { (e.action) }
                        td { @if let Some(c) = &e.conversation_id { a.mono href=(format!("{PREFIX}/conversations/{c}")) { (c) } } }
                        td { code.detail { (e.detail) } }
                        td.mono.hash title=(e.hash) { (e.hash.get(..12).unwrap_or(&e.hash)) "…" }
                    }
                }
            }
        }
    };
    Ok(layout::page("Audit", &viewer, Nav::Audit, body).into_response())
}

fn verification(v: Option<&Verified>, now: Millis) -> Markup {
    match v {
        None => html! { p { "Not verified yet." } },
        Some(Verified::Intact {
            at,
            entries,
            head,
            head_file,
        }) => html! {
            p.ok {
                strong { "Chain verified" }
                @if let Some((seq, _)) = head { " up to entry " strong { (seq) } } @else { " (no entries yet)" }
                " (" (entries) " entries, checked " (when(*at, now)) ")."
            }
            @if let Some((_, hash)) = head { p { "Head hash " code { (hash) } } }
            p.muted { (head_file) }
        },
        Some(Verified::Broken { at, reason }) => html! {
            p.error { strong { "Chain BROKEN" } " (checked " (when(*at, now)) "): " (reason) }
        },
    }
}

/// Runs the full check and keeps its result.
async fn verify_now<S: FullStore>(d: &Dashboard<S>) -> Result<(), Failure> {
    let at = d.bridge.now_ms();
    if let Err(e) = d.bridge.flush_refusal_counts().await {
        tracing::warn!(error = %e, "cannot write pending refusal counts before verifying");
    }
    let result = match d.bridge.check_audit().await {
        Ok(check) => Verified::Intact {
            at,
            entries: check.entries,
            head: check.head,
            head_file: match check.head_file {
                HeadFileState::NotKept => "This backend keeps no head file outside the database.".to_owned(),
                HeadFileState::Missing { .. } => {
                    "No head file yet: truncation of the newest entries cannot be checked until the next audited action.".to_owned()
                }
                HeadFileState::Unreadable { .. } => {
                    "The head file is not a head record; it is rewritten at the next audited action.".to_owned()
                }
                HeadFileState::Matches { seq, .. } => {
                    format!("The head recorded outside the database (entry {seq}) is in the chain: nothing was cut off.")
                }
            },
        },
        Err(AdminError::Store(e)) => return Err(AdminError::Store(e).into()),
        Err(e) => Verified::Broken {
            at,
            reason: e.to_string(),
        },
    };
    if let Ok(mut v) = d.verified.lock() {
        *v = Some(result);
    }
    Ok(())
}

/// The re-verify form's field.
#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /ui/audit/verify`: reads only, but still a POST with the CSRF
/// token: it writes pending refusal counts first, as `audit verify` does.
pub async fn verify<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<VerifyForm>,
) -> PageResult {
    if !viewer.csrf_matches(form.csrf.as_deref()) {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token; reload the page and try again",
        ));
    }
    verify_now(&d).await?;
    Ok(Redirect::to(&format!("{PREFIX}/audit")).into_response())
}
