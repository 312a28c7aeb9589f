//! YOLO proposals: the pending ones in full (exact command, mode,
//! directory, the validator's verdict, the reason) with the exact
//! `mcp-bridge approve ID` line to run at a terminal, and the decided ones
//! below. The dashboard may reject; approval stays at the terminal, where
//! stage 3 needs a human at a TTY.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::IntoResponse;
use maud::html;

use super::PageResult;
use super::layout::{self, Nav, csrf_field, when, when_opt};
use crate::dashboard::{Dashboard, PREFIX, Viewer};
use crate::store::admin::FullStore;

/// `GET /ui/proposals`.
pub async fn page<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
) -> PageResult {
    let all = d.bridge.list_proposals(None).await?;
    let now = d.bridge.now_ms();
    let (pending, decided): (Vec<_>, Vec<_>) = all.iter().partition(|p| p.state == "pending");
    let body = html! {
        h1 { "YOLO proposals" }
        p.muted { "Approval needs the human at a terminal: run the line shown. The dashboard can only reject." }
        h2 { "Pending (" (pending.len()) ")" }
        @if pending.is_empty() { p.muted { "Nothing is waiting." } }
        @for p in &pending {
            article.proposal id=(p.id) {
                header {
                    span.mono { (p.id) } " · proposed by seat " span.mono { (p.proposer) }
                    " of " a.mono href=(format!("{PREFIX}/conversations/{}", p.conversation_id)) { (p.conversation_id) }
                    " · " (when(p.created_at, now))
                }
                dl {
                    dt { "Command" } dd { pre.command { (p.command) } }
                    dt { "Mode" } dd { (p.mode) }
                    dt { "Directory" } dd.mono { (p.workspace) " / " (p.cwd) }
                    dt { "Validator" } dd class=(if p.allowed { "ok" } else { "error" }) {
                        (if p.allowed { "allowed: " } else { "refused: " }) (p.verdict)
                    }
                    dt { "Reason" } dd { (p.reason) }
                    dt { "To approve, at a terminal" } dd { pre.approve { "mcp-bridge approve " (p.id) } }
                }
                @if viewer.can_act() {
                    form method="post" action=(format!("{PREFIX}/proposals/{}/reject", p.id)) {
                        (csrf_field(&viewer))
                        button.danger type="submit" { "Reject…" }
                    }
                }
            }
        }
        h2 { "Decided" }
        @if decided.is_empty() { p.muted { "None." } }
        @else {
            table.list {
                thead { tr { th { "Proposal" } th { "State" } th { "Mode" } th { "Command" } th { "Proposed" } th { "Decided" } } }
                tbody {
                    @for p in &decided {
                        tr {
                            td.mono { (p.id) }
                            td { span class=(format!("badge {}", p.state)) { (p.state) } }
                            td { (p.mode) }
                            td { code { (p.command) } }
                            td { (when(p.created_at, now)) }
                            td { (when_opt(p.decided_at, now)) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page("Proposals", &viewer, Nav::Proposals, body).into_response())
}
