//! Limits per credential on `/mcp`, applied after authentication and keyed
//! by the proven agent (its row id), never by the raw header: requests in
//! flight at once (`--max-connections-per-credential`) and requests per
//! second (`--max-requests-per-second`, a token bucket that holds one
//! second's worth). Over either: `429 Too Many Requests` with
//! `Retry-After`, a short sentence, and a count in `/metrics`.
//!
//! These protect the server process from one runaway client; the bridge's
//! own rate windows (per session, in the database, across servers) still
//! decide what an agent may send. State is per process, so with several
//! servers each allows this much.
//!
//! Memory: one small entry per agent that authenticated (agents are
//! registered by the overseer, so their number is bounded), and entries
//! that are idle and full are dropped once there are many.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::metrics::Metrics;
use crate::bridge::AgentIdentity;

/// Default of `--max-connections-per-credential`: well above what one
/// client does (a few calls and one long wait at a time).
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 16;

/// Default of `--max-requests-per-second`: far above an agent's pace,
/// low enough that a loop cannot monopolise a server.
pub const DEFAULT_PER_SECOND: u32 = 200;

/// Past this many entries, idle full ones are dropped on the next insert.
const PRUNE_AT: usize = 1024;

/// The limits in force; `None` is "off".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialLimits {
    /// Requests of one agent in flight at once.
    pub max_in_flight: Option<u32>,
    /// Requests of one agent per second (the bucket holds this many).
    pub per_second: Option<u32>,
}

impl Default for CredentialLimits {
    fn default() -> Self {
        Self {
            max_in_flight: Some(DEFAULT_MAX_IN_FLIGHT),
            per_second: Some(DEFAULT_PER_SECOND),
        }
    }
}

impl CredentialLimits {
    /// Whether any limit is on.
    pub fn any(&self) -> bool {
        self.max_in_flight.is_some() || self.per_second.is_some()
    }
}

/// Parses a limit flag: a positive whole number, or `off`.
pub fn parse_limit(s: &str) -> Result<Option<u32>, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(0) => Err("must be at least 1; use \"off\" for no limit".into()),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err("must be a whole number from 1 to 4294967295, or \"off\"".into()),
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// As many requests of this agent are in flight as allowed.
    InFlight,
    /// The bucket is empty; a token comes back after this long.
    Rate(Duration),
}

impl Refusal {
    /// The label in `mcp_bridge_http_limited_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::InFlight => "in_flight",
            Refusal::Rate(_) => "rate",
        }
    }

    /// Whole seconds for `Retry-After`: at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Refusal::InFlight => 1,
            Refusal::Rate(d) => (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1),
        }
    }
}

#[derive(Debug)]
struct Entry {
    in_flight: u32,
    tokens: f64,
    at: Instant,
}

/// The per-agent state of one server process.
#[derive(Debug)]
pub struct Limiter {
    limits: CredentialLimits,
    /// A `std::sync::Mutex`: held for a few arithmetic steps, never across
    /// an await.
    entries: Mutex<HashMap<i64, Entry>>,
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: CredentialLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// Admits one request of `agent` at `now`, or says why not. The permit
    /// holds the in-flight slot until dropped. A refused request takes
    /// neither a slot nor a token.
    pub fn admit(self: &Arc<Self>, agent: i64, now: Instant) -> Result<Permit, Refusal> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let capacity = self.limits.per_second.map_or(0.0, f64::from);
        if entries.len() >= PRUNE_AT && !entries.contains_key(&agent) {
            entries.retain(|_, e| e.in_flight > 0 || self.refilled(e, now) < capacity);
        }
        let entry = entries.entry(agent).or_insert(Entry {
            in_flight: 0,
            tokens: capacity,
            at: now,
        });
        if let Some(max) = self.limits.max_in_flight
            && entry.in_flight >= max
        {
            return Err(Refusal::InFlight);
        }
        if let Some(rate) = self.limits.per_second {
            let tokens = self.refilled(entry, now);
            if tokens < 1.0 {
                entry.tokens = tokens;
                entry.at = now;
                return Err(Refusal::Rate(Duration::from_secs_f64(
                    (1.0 - tokens) / f64::from(rate),
                )));
            }
            entry.tokens = tokens - 1.0;
            entry.at = now;
        }
        entry.in_flight += 1;
        Ok(Permit {
            limiter: Arc::clone(self),
            agent,
        })
    }

    /// The entry's tokens at `now`: refilled at the rate, up to capacity.
    fn refilled(&self, e: &Entry, now: Instant) -> f64 {
        let Some(rate) = self.limits.per_second else {
            return 0.0;
        };
        let elapsed = now.saturating_duration_since(e.at).as_secs_f64();
        (e.tokens + elapsed * f64::from(rate)).min(f64::from(rate))
    }

    fn release(&self, agent: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = entries.get_mut(&agent) {
            e.in_flight = e.in_flight.saturating_sub(1);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

/// One admitted request's slot; released when dropped.
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
    agent: i64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.release(self.agent);
    }
}

/// A response body that holds its request's permit until it is finished
/// or dropped: a wait answered as an SSE stream is in flight until its
/// last event.
struct Held {
    body: Body,
    _permit: Permit,
}

impl HttpBody for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Middleware state: the limiter and where refusals are counted.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The per-agent state.
    pub limiter: Arc<Limiter>,
    /// Counts each 429.
    pub metrics: Arc<Metrics>,
}

/// Middleware behind [`super::auth::require_agent`]: admits the request of
/// the agent it proved, or answers 429.
pub async fn limit(State(layer): State<Layer>, request: Request, next: Next) -> Response {
    let Some(key) = request.extensions().get::<Key>().copied() else {
        // Authentication runs first and always sets it; without it there is
        // nothing to key on, and the request is refused rather than unlimited.
        tracing::error!("a request reached the limits without an authenticated credential");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match layer.limiter.admit(key.0, Instant::now()) {
        Ok(permit) => {
            let response = next.run(request).await;
            response.map(|body| {
                Body::new(Held {
                    body,
                    _permit: permit,
                })
            })
        }
        Err(refusal) => {
            layer.metrics.count_limited(refusal.label());
            tracing::debug!(
                limit = refusal.label(),
                "request over a per-credential limit refused"
            );
            super::closing(too_many(refusal))
        }
    }
}

/// What the limits are kept per, set by authentication: a registered
/// agent's row id (positive), or for a seat token its seat (a negative
/// number derived from the conversation id and seat letter, so the two never
/// share an entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(i64);

impl Key {
    /// The key of a registered agent.
    pub fn of_agent(agent: &AgentIdentity) -> Self {
        Self(agent.id)
    }

    /// The key of a seat presented by its token.
    pub fn of_seat(conversation_id: &str, seat: &str) -> Self {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (conversation_id, seat).hash(&mut h);
        Self(-((h.finish() >> 1) as i64) - 1)
    }
}

/// 429 with `Retry-After` and one sentence.
fn too_many(refusal: Refusal) -> Response {
    let text = match refusal {
        Refusal::InFlight => "too many requests in flight for this credential; retry when one has finished",
        Refusal::Rate(_) => {
            "too many requests per second for this credential; retry after the Retry-After delay"
        }
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, text).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(refusal.retry_after_secs()));
    response
}

#[cfg(test)]
mod tests;
