//! Live updates of a conversation page, as server-sent events.
//!
//! One task per open page sleeps on the store's wake source (the same one
//! `wait_for_messages` uses: a file watch on SQLite, `LISTEN` on
//! PostgreSQL) and re-reads the conversation when it fires, then sends:
//! - `msg`: a new message, rendered by the same function as the page
//!   (event id = its seq, so a reconnecting browser resumes after it);
//! - `receipt`: a shown message whose read state changed, re-rendered;
//! - `seats`: the participants table, when a status, note, liveness,
//!   unread count or revocation changed;
//! - `reload`: the conversation's state changed (closed, expired).
//!
//! A wake is only a hint: the database stays the truth, and a slow poll
//! ([`POLL`], faster when the source is not live) covers a missed one and
//! liveness that lapses without any write. The task ends when the browser
//! goes or the server stops.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::pages::conversation::{message, seats};
use super::pages::{Failure, PageResult};
use super::{Dashboard, Viewer};
use crate::bridge::{ConversationDetail, is_conversation_id};
use crate::store::admin::FullStore;

/// The safety-net poll while the wake source is live.
const POLL: Duration = Duration::from_secs(2);

/// The poll when no trigger feeds the wake source.
const POLL_NOT_LIVE: Duration = Duration::from_millis(250);

/// After a wake, how long to wait before reading: a write event can
/// precede the moment its commit is visible (see `store::wake`).
const SETTLE: Duration = Duration::from_millis(5);

/// The query string.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// The newest seq the page shows.
    #[serde(default)]
    after: i64,
}

/// `GET /ui/conversations/{id}/events`.
pub async fn events<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
    headers: HeaderMap,
) -> PageResult {
    if !is_conversation_id(&id) {
        return Err(Failure::bad_id("conversation"));
    }
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    let after = q.after.max(resumed).max(0);
    // Fails here, as a plain 404, when the conversation does not exist.
    let first = d.bridge.show_conversation(&id, 0).await?;
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    tokio::spawn(follow(d, viewer, id, after, first, tx));
    let stream =
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok::<_, Infallible>)));
    let response: Response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    Ok(response)
}

/// What the page is known to show.
struct Shown {
    last_seq: i64,
    /// Messages with an unread recipient: seq -> how many have read it.
    unread: BTreeMap<i64, usize>,
    seats_key: String,
    state: &'static str,
}

impl Shown {
    fn diff(&mut self, detail: &ConversationDetail, viewer: &Viewer, now: i64) -> Vec<Event> {
        let mut out = Vec::new();
        for m in &detail.messages_after {
            let read = m.read_by.iter().filter(|r| r.delivered_at.is_some()).count();
            let all_read = read == m.read_by.len();
            if m.seq > self.last_seq {
                self.last_seq = m.seq;
                out.push(
                    Event::default()
                        .event("msg")
                        .id(m.seq.to_string())
                        .data(message(m, now).into_string()),
                );
            } else if let Some(before) = self.unread.get(&m.seq) {
                if *before == read {
                    continue;
                }
                out.push(
                    Event::default()
                        .event("receipt")
                        .data(message(m, now).into_string()),
                );
            } else {
                continue;
            }
            if all_read {
                self.unread.remove(&m.seq);
            } else {
                self.unread.insert(m.seq, read);
            }
        }
        let key = serde_json::to_string(&detail.summary.participants).unwrap_or_default();
        if key != self.seats_key {
            self.seats_key = key;
            out.push(
                Event::default()
                    .event("seats")
                    .data(seats(&detail.summary, viewer, now).into_string()),
            );
        }
        let state = detail.summary.state.as_str();
        if state != self.state {
            self.state = state;
            out.push(Event::default().event("reload").data(state));
        }
        out
    }

    /// Where the next read starts: before the oldest message still
    /// watched for receipts, or after the newest shown.
    fn read_from(&self) -> i64 {
        self.unread
            .keys()
            .next()
            .map_or(self.last_seq, |s| (s - 1).min(self.last_seq))
    }
}

async fn follow<S: FullStore>(
    d: Arc<Dashboard<S>>,
    viewer: Viewer,
    id: String,
    after: i64,
    first: ConversationDetail,
    tx: mpsc::Sender<Event>,
) {
    let mut changes = d.bridge.store().changes();
    let mut shown = Shown {
        last_seq: after,
        unread: BTreeMap::new(),
        seats_key: serde_json::to_string(&first.summary.participants).unwrap_or_default(),
        state: first.summary.state.as_str(),
    };
    for m in first.messages_after.iter().filter(|m| m.seq <= after) {
        let read = m.read_by.iter().filter(|r| r.delivered_at.is_some()).count();
        if read < m.read_by.len() {
            shown.unread.insert(m.seq, read);
        }
    }
    // Messages newer than the page go out at once (sent while it loaded).
    let mut detail = Some(first);
    loop {
        if let Some(detail) = detail.take() {
            for event in shown.diff(&detail, &viewer, d.bridge.now_ms()) {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
        let poll = if changes.is_live() { POLL } else { POLL_NOT_LIVE };
        tokio::select! {
            () = changes.changed() => tokio::time::sleep(SETTLE).await,
            () = tokio::time::sleep(poll) => {}
            () = d.stopping.cancelled() => return,
            () = tx.closed() => return,
        }
        match d.bridge.show_conversation(&id, shown.read_from()).await {
            Ok(next) => detail = Some(next),
            Err(e) => {
                tracing::debug!(error = %e, "live updates of a conversation stopped");
                return;
            }
        }
    }
}
