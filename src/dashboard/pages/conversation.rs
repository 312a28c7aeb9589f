//! One conversation: its seats (live), its messages in order (new ones
//! appear through the event stream, see `live`), and, for a viewer who
//! may step in, the forms to post as overseer, close, revoke and rotate.
//!
//! Message bodies, notes, roles and file names are agent text: maud
//! escapes each, and bodies are shown as preformatted text, never as
//! markup or links.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use maud::{Markup, html};

use super::layout::{self, Nav, csrf_field, when, when_opt};
use super::list::{liveness, state_badge};
use super::{Failure, PageResult};
use crate::bridge::{ConversationSummary, LiveState, MessageView, is_conversation_id};
use crate::clock::Millis;
use crate::dashboard::{Dashboard, PREFIX, Viewer};
use crate::store::admin::FullStore;

/// `GET /ui/conversations/{id}`.
pub async fn page<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> PageResult {
    if !is_conversation_id(&id) {
        return Err(Failure::bad_id("conversation"));
    }
    let detail = d.bridge.show_conversation(&id, 0).await?;
    let now = d.bridge.now_ms();
    let last = detail.messages_after.last().map_or(0, |m| m.seq);
    let c = &detail.summary;
    let body = html! {
        h1 { "Conversation " span.mono { (c.id) } }
        p.meta {
            (state_badge(c.state)) " · created " (when(c.created_at, now))
            " · expires " (when(c.expires_at, now))
            @if let Some(at) = c.closed_at { " · closed " (when(at, now)) }
            " · " (c.messages) @if c.messages == 1 { " message" } @else { " messages" }
        }
        section #live data-events=(format!("{PREFIX}/conversations/{}/events?after={last}", c.id)) {
            h2 { "Participants" }
            div #seats { (seats(c, &viewer, now)) }
            h2 { "Messages" }
            div #messages {
                @for m in &detail.messages_after { (message(m, now)) }
            }
            p #live-state.muted { "live updates: connecting…" }
        }
        @if viewer.can_act() && c.state == LiveState::Active {
            section.step-in {
                h2 { "Step in" }
                form method="post" action=(format!("{PREFIX}/conversations/{}/post", c.id)) {
                    (csrf_field(&viewer))
                    label for="message" { "Post to every participant as " strong { "overseer" } }
                    textarea #message name="message" rows="3" required {}
                    button type="submit" { "Post as overseer…" }
                }
                form method="post" action=(format!("{PREFIX}/conversations/{}/close", c.id)) {
                    (csrf_field(&viewer))
                    button.danger type="submit" { "Close this conversation…" }
                }
            }
        }
    };
    Ok(layout::page("Conversation", &viewer, Nav::Conversations, body).into_response())
}

/// The seats table; re-rendered and pushed when a status changes.
pub fn seats(c: &ConversationSummary, viewer: &Viewer, now: Millis) -> Markup {
    let actions = viewer.can_act() && c.state == LiveState::Active;
    html! {
        table.list {
            thead { tr {
                th { "Seat" } th { "Role" } th { "Status" } th { "Note" } th { "Liveness" }
                th { "Last heartbeat" } th { "Unread" }
                @if actions { th { "Step in" } }
            } }
            tbody {
                @for s in &c.participants {
                    tr {
                        td.mono { (s.session_id) }
                        td { strong { (s.role) } }
                        td { @if let Some(st) = &s.status { (st) } }
                        td.note { @if let Some(n) = &s.note { (n) } }
                        td { (liveness(s.alive, s.revoked_at.is_some())) }
                        td { (when_opt(s.last_heartbeat, now)) }
                        td.num { (s.unread) }
                        @if actions {
                            td {
                                @for action in ["revoke", "rotate"] {
                                    form.inline method="post"
                                        action=(format!("{PREFIX}/conversations/{}/seats/{}/{action}", c.id, s.session_id)) {
                                        (csrf_field(viewer))
                                        button type="submit" { (action) "…" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One message: sender, recipients with receipts, action type, files,
/// redaction kinds, and the body as inert text.
pub fn message(m: &MessageView, now: Millis) -> Markup {
    let overseer = m.from_role == "overseer";
    html! {
        article.msg.overseer[overseer] id=(format!("m-{}", m.seq)) data-seq=(m.seq) {
            header {
                span.seq { "#" (m.seq) } " "
                strong.sender { (m.from_role) } " "
                @if m.from_role != m.sender { span.mono.muted { "(" (m.sender) ")" } " " }
                span.action { (m.action_type) } " "
                (when(m.sent_at, now))
            }
            p.recipients {
                "to "
                @for (i, r) in m.read_by.iter().enumerate() {
                    @if i > 0 { ", " }
                    span.mono { (r.session_id) }
                    @match r.delivered_at {
                        Some(at) => span.receipt.read title=(crate::clock::rfc3339(at)) { " ✓ read" },
                        None => span.receipt.pending { " · unread" },
                    }
                }
            }
            @if !m.files.is_empty() {
                p.files { "files: " @for (i, f) in m.files.iter().enumerate() { @if i > 0 { ", " } code { (f) } } }
            }
            @if !m.redacted.is_empty() {
                p.redacted { "redacted: " @for (i, k) in m.redacted.iter().enumerate() { @if i > 0 { ", " } span.kind { (k) } } }
            }
            pre.body { (m.body) }
        }
    }
}
