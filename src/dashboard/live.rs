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

/// The most messages watched for receipts at once (the newest unread
/// ones): each wake re-reads from the oldest watched message, so this
/// bounds that read when a recipient never reads (a revoked seat). Older
/// receipts show on the next page load.
const MAX_WATCHED: usize = 100;

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
        self.forget_oldest();
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

    /// Keeps at most [`MAX_WATCHED`] messages watched, the newest.
    fn forget_oldest(&mut self) {
        while self.unread.len() > MAX_WATCHED {
            self.unread.pop_first();
        }
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
    shown.forget_oldest();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::{ConversationSummary, LiveState, MessageView, ReadState};
    use crate::dashboard::Who;

    fn message(seq: i64, read: bool) -> MessageView {
        MessageView {
            seq,
            sender: "a".into(),
            from_role: "planner".into(),
            action_type: "info".into(),
            body: format!("m{seq}"),
            files: Vec::new(),
            redacted: Vec::new(),
            sent_at: 0,
            read_by: vec![ReadState {
                session_id: "b".into(),
                delivered_at: read.then_some(1),
            }],
        }
    }

    fn detail(messages: Vec<MessageView>) -> ConversationDetail {
        ConversationDetail {
            summary: ConversationSummary {
                id: "conv_00000000000000000000000000000000".into(),
                state: LiveState::Active,
                created_at: 0,
                expires_at: 1,
                closed_at: None,
                messages: messages.len() as i64,
                last_activity: None,
                participants: Vec::new(),
            },
            messages_after: messages,
        }
    }

    fn kinds(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                // An event's Debug shows its wire bytes, newlines escaped.
                let text = format!("{e:?}");
                ["msg", "receipt", "seats", "reload"]
                    .into_iter()
                    .find(|k| text.contains(&format!("event: {k}\\n")))
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn new_messages_then_receipts_are_sent_once() {
        let viewer = Viewer {
            who: Who::Local,
            csrf: "c".into(),
            since: 0,
        };
        let mut shown = Shown {
            last_seq: 1,
            unread: BTreeMap::new(),
            seats_key: "[]".into(),
            state: "active",
        };
        let events = shown.diff(&detail(vec![message(1, true), message(2, false)]), &viewer, 0);
        assert_eq!(kinds(&events), ["msg"], "only the message the page lacks");
        assert_eq!(shown.last_seq, 2);
        assert_eq!(shown.read_from(), 1, "the next read covers the unread message");
        let events = shown.diff(&detail(vec![message(2, false)]), &viewer, 0);
        assert!(events.is_empty(), "nothing changed");
        let events = shown.diff(&detail(vec![message(2, true)]), &viewer, 0);
        assert_eq!(kinds(&events), ["receipt"]);
        assert!(shown.unread.is_empty());
        assert_eq!(shown.read_from(), 2);
    }

    #[test]
    fn at_most_the_newest_unread_messages_are_watched() {
        let mut shown = Shown {
            last_seq: 0,
            unread: (1..=150).map(|s| (s, 0)).collect(),
            seats_key: String::new(),
            state: "active",
        };
        shown.last_seq = 150;
        shown.forget_oldest();
        assert_eq!(shown.unread.len(), MAX_WATCHED);
        assert_eq!(shown.read_from(), 50);
    }
}
