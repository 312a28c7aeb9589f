//! The conversations page: every conversation with its state, seats
//! (role, status, note, liveness, unread) and last activity, filtered by
//! state, and the search box over message text (the overseer's search use
//! case: FTS5 on SQLite, ILIKE on PostgreSQL; bodies as stored, redacted).
//! The script refreshes the table every few seconds.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::{Extension, http::StatusCode};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Nav, when, when_opt};
use super::{Failure, PageResult};
use crate::bridge::{ConversationSummary, ListFilter, LiveState, SearchHit};
use crate::dashboard::{Dashboard, PREFIX, Viewer};
use crate::store::admin::FullStore;

/// The query string.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// `all` (default), `active`, `expired` or `closed`.
    #[serde(default)]
    state: Option<String>,
    /// Message text to search for.
    #[serde(default)]
    q: Option<String>,
}

/// Hits shown for one search.
const SEARCH_HITS: usize = 50;

/// Characters of a hit's body shown in the results.
const EXCERPT_CHARS: usize = 300;

/// The states the filter offers, in order.
const FILTERS: [&str; 4] = ["all", "active", "expired", "closed"];

/// `GET /ui/`.
pub async fn page<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let want = q.state.as_deref().unwrap_or("all");
    if !FILTERS.contains(&want) {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "state must be one of all, active, expired, closed",
        ));
    }
    let query = q.q.as_deref().filter(|q| !q.is_empty());
    let hits = match query {
        Some(query) => Some(d.bridge.search_messages(query, SEARCH_HITS).await?),
        None => None,
    };
    let all = d.bridge.list_conversations(ListFilter::All).await?;
    let now = d.bridge.now_ms();
    let shown: Vec<&ConversationSummary> = all
        .iter()
        .rev()
        .filter(|c| want == "all" || c.state.as_str() == want)
        .collect();
    let body = html! {
        h1 { "Conversations" }
        div.toolbar {
            nav.filters {
                @for f in FILTERS {
                    a href=(format!("{PREFIX}/?state={f}")) class=[(f == want).then_some("current")] { (f) }
                }
            }
            form.search method="get" action=(format!("{PREFIX}/")) {
                input type="search" name="q" value=[query] placeholder="search message text" maxlength="256";
                " "
                button type="submit" { "Search" }
            }
        }
        @if let (Some(query), Some(hits)) = (query, &hits) {
            (search_results(query, hits, now))
            h2 { "All conversations" }
        }
        div #conversations data-refresh=(format!("{PREFIX}/?state={want}")) {
            (table(&shown, now))
        }
    };
    Ok(layout::page("Conversations", &viewer, Nav::Conversations, body).into_response())
}

/// The table, newest first. Also what the live refresh swaps in.
pub fn table(rows: &[&ConversationSummary], now: crate::clock::Millis) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted { "No conversations." }
        } @else {
            table.list {
                thead { tr {
                    th { "Conversation" } th { "State" } th { "Messages" } th { "Last activity" }
                    th { "Participants (role · status · note · liveness · unread)" }
                } }
                tbody {
                    @for c in rows {
                        tr {
                            td { a.mono href=(format!("{PREFIX}/conversations/{}", c.id)) { (c.id) } }
                            td { (state_badge(c.state)) }
                            td.num { (c.messages) }
                            td { (when_opt(c.last_activity, now)) }
                            td {
                                ul.seats {
                                    @for s in &c.participants {
                                        li {
                                            span.mono { (s.session_id) } " "
                                            strong { (s.role) }
                                            @if let Some(st) = &s.status { " · " span.status { (st) } }
                                            @if let Some(n) = &s.note { " · " span.note { (n) } }
                                            " · " (liveness(s.alive, s.revoked_at.is_some()))
                                            @if s.unread > 0 { " · " span.unread { (s.unread) " unread" } }
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
}

/// A conversation's state as a coloured word.
pub fn state_badge(state: LiveState) -> Markup {
    html! { span class=(format!("badge {}", state.as_str())) { (state.as_str()) } }
}

/// A seat's liveness as a word.
pub fn liveness(alive: bool, revoked: bool) -> Markup {
    if revoked {
        html! { span.badge.revoked { "revoked" } }
    } else if alive {
        html! { span.badge.alive { "alive" } }
    } else {
        html! { span.badge.idle { "idle" } }
    }
}

/// The hits of one search, newest first, each linking to its message.
fn search_results(query: &str, hits: &[SearchHit], now: crate::clock::Millis) -> Markup {
    html! {
        h2 { "Messages containing “" (query) "” (" (hits.len()) @if hits.len() == SEARCH_HITS { "+" } ")" }
        @if hits.is_empty() { p.muted { "No message contains it." } }
        @else {
            table.list.hits {
                thead { tr { th { "Conversation" } th { "#" } th { "From" } th { "When" } th { "Message" } } }
                tbody {
                    @for h in hits {
                        tr {
                            td { a.mono href=(format!("{PREFIX}/conversations/{}#m-{}", h.conversation_id, h.message_id)) { (h.conversation_id) } }
                            td.num { (h.message_id) }
                            td { strong { (h.from_role) } }
                            td { (when(h.created_at, now)) }
                            td.body { (excerpt(&h.body)) }
                        }
                    }
                }
            }
        }
    }
}

/// The start of a body, cut at a character boundary.
fn excerpt(body: &str) -> String {
    match body.char_indices().nth(EXCERPT_CHARS) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}
