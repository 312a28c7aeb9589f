//! `/metrics`: the server's counters in the Prometheus (OpenMetrics) text
//! format, unauthenticated like `/healthz` so a scraper needs no credential.
//!
//! What it must never do: carry an agent's name, a conversation id, a
//! token or any text an agent sent. Every label value comes from a closed
//! set this module knows: a tool name this server offers (anything else
//! is `unknown`), an error code of our own making, a status class, a limit
//! name. Nothing here is keyed by who called.
//!
//! Tool calls are counted where they are dispatched
//! ([`observe_tool_call`]): over HTTP the request carries the [`Metrics`]
//! in its extensions; a stdio server has none, and pays one failed lookup.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rmcp::model::CallToolResult;

use crate::mcp::tools::{
    CHECK_MESSAGES, CHECK_PARTNER_STATUS, CREATE_CONVERSATION, EXECUTE_APPROVED, LIST_PARTICIPANTS,
    MESSAGE_STATUS, MY_CONVERSATIONS, PROPOSE_COMMAND, READ_HISTORY, SEND_MESSAGE, SEND_TO_PARTNER,
    UPDATE_MY_STATUS, WAIT_FOR_MESSAGES,
};
use crate::store::Store;

/// Every tool name that may become a label; any other name is `unknown`.
const TOOL_NAMES: [&str; 13] = [
    CREATE_CONVERSATION,
    SEND_TO_PARTNER,
    SEND_MESSAGE,
    CHECK_MESSAGES,
    WAIT_FOR_MESSAGES,
    READ_HISTORY,
    UPDATE_MY_STATUS,
    CHECK_PARTNER_STATUS,
    LIST_PARTICIPANTS,
    MESSAGE_STATUS,
    MY_CONVERSATIONS,
    PROPOSE_COMMAND,
    EXECUTE_APPROVED,
];

/// Latency buckets in seconds: a plain call takes milliseconds, a
/// `wait_for_messages` up to its 55 s cap.
const LATENCY_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The media type prometheus-client writes (Prometheus scrapes it natively).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcome {
    tool: &'static str,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusClass {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    state: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The server's metrics, shared by every request of one process.
pub struct Metrics {
    registry: Registry,
    tool_calls: Family<ToolOutcome, Counter>,
    tool_seconds: Family<ToolLabel, Histogram, fn() -> Histogram>,
    messages_stored: Counter,
    waiting: Gauge,
    responses: Family<StatusClass, Counter>,
    limited: Family<LimitLabel, Counter>,
    /// Present when the store has a pool (PostgreSQL).
    pool: Option<Family<PoolLabel, Gauge>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every metric; `pool` when the store has a connection pool.
    pub fn new(pool: bool) -> Self {
        let mut registry = Registry::with_prefix("mcp_bridge");
        let tool_calls = Family::<ToolOutcome, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls by tool and outcome (ok, or the error code the call returned)",
            tool_calls.clone(),
        );
        let tool_seconds = Family::<ToolLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "tool_call_duration_seconds",
            "Time from dispatch to result of each tool call, by tool",
            tool_seconds.clone(),
        );
        let messages_stored = Counter::default();
        registry.register(
            "messages_stored",
            "Messages stored by send_message and send_to_partner",
            messages_stored.clone(),
        );
        let waiting = Gauge::default();
        registry.register(
            "waiting_calls",
            "wait_for_messages calls waiting now",
            waiting.clone(),
        );
        let responses = Family::<StatusClass, Counter>::default();
        registry.register(
            "http_responses",
            "HTTP responses by status class",
            responses.clone(),
        );
        let limited = Family::<LimitLabel, Counter>::default();
        registry.register(
            "http_limited",
            "Requests to /mcp refused with 429 by a per-credential limit (in_flight or rate)",
            limited.clone(),
        );
        let pool = pool.then(|| {
            let family = Family::<PoolLabel, Gauge>::default();
            registry.register(
                "db_pool_connections",
                "Database pool connections: in_use now, and max (the pool's size limit)",
                family.clone(),
            );
            family
        });
        Self {
            registry,
            tool_calls,
            tool_seconds,
            messages_stored,
            waiting,
            responses,
            limited,
            pool,
        }
    }

    /// The text a scrape gets, after setting the pool gauges from `pool`.
    pub fn render(&self, pool: Option<(usize, usize)>) -> String {
        if let (Some(family), Some((in_use, max))) = (&self.pool, pool) {
            family
                .get_or_create(&PoolLabel { state: "in_use" })
                .set(i64::try_from(in_use).unwrap_or(i64::MAX));
            family
                .get_or_create(&PoolLabel { state: "max" })
                .set(i64::try_from(max).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Counts a 429 from a per-credential limit (`in_flight` or `rate`).
    pub fn count_limited(&self, limit: &'static str) {
        self.limited.get_or_create(&LimitLabel { limit }).inc();
    }

    fn count_response(&self, status: StatusCode) {
        let class = match status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.responses.get_or_create(&StatusClass { class }).inc();
    }

    fn record_call(&self, tool: &'static str, outcome: String, seconds: f64) {
        if outcome == "ok" && (tool == SEND_MESSAGE || tool == SEND_TO_PARTNER) {
            self.messages_stored.inc();
        }
        self.tool_calls
            .get_or_create(&ToolOutcome { tool, outcome })
            .inc();
        self.tool_seconds
            .get_or_create(&ToolLabel { tool })
            .observe(seconds);
    }
}

/// `GET /metrics`.
pub async fn scrape<S: Store>(State((metrics, store)): State<(Arc<Metrics>, S)>) -> Response {
    let mut response = metrics.render(store.pool_status()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Middleware: counts every response by status class, and puts the
/// metrics into the request's extensions for the tool dispatch.
pub async fn count_responses(
    State(metrics): State<Arc<Metrics>>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(Arc::clone(&metrics));
    let response = next.run(request).await;
    metrics.count_response(response.status());
    response
}

/// The label for tool `name`: the constant when this server knows it.
fn tool_label(name: &str) -> &'static str {
    TOOL_NAMES
        .iter()
        .find(|t| **t == name)
        .copied()
        .unwrap_or("unknown")
}

/// `ok`, or the code of an error result: the text before the first `: ` of
/// its first block (see `mcp::render`), which this server wrote from a
/// `&'static str`. Anything else (never expected) is `error`, so no label
/// value can come from a caller.
fn outcome_label(result: Option<&CallToolResult>) -> String {
    let Some(result) = result else {
        return "unknown_tool".to_owned();
    };
    if result.is_error != Some(true) {
        return "ok".to_owned();
    }
    let code = result
        .content
        .first()
        .and_then(|c| c.as_text())
        .and_then(|t| t.text.split_once(": "))
        .map(|(code, _)| code)
        .filter(|c| !c.is_empty() && c.len() <= 40 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    code.unwrap_or("error").to_owned()
}

/// Runs one tool call, measured when the request carries [`Metrics`]
/// (HTTP); as is otherwise (stdio).
///
/// Its log lines carry the request id without help from here: rmcp opens
/// its `serve_inner` span inside the request's span and runs the handler
/// under it, and the JSON logs list every span (`spans`). The e2e test of
/// the logs pins that.
pub async fn observe_tool_call<F>(
    extensions: Option<&axum::http::Extensions>,
    name: &str,
    call: F,
) -> Option<CallToolResult>
where
    F: Future<Output = Option<CallToolResult>>,
{
    let Some(metrics) = extensions.and_then(|e| e.get::<Arc<Metrics>>()).cloned() else {
        return call.await;
    };
    let tool = tool_label(name);
    let waiting = (tool == WAIT_FOR_MESSAGES).then(|| WaitingGuard::new(&metrics.waiting));
    let started = Instant::now();
    let result = call.await;
    drop(waiting);
    metrics.record_call(
        tool,
        outcome_label(result.as_ref()),
        started.elapsed().as_secs_f64(),
    );
    result
}

/// Holds the waiting gauge up for as long as a wait runs, also when the
/// call's future is dropped (the client went away).
struct WaitingGuard(Gauge);

impl WaitingGuard {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ContentBlock;

    fn error(text: &str) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(text)])
    }

    #[test]
    fn the_outcome_is_ok_or_our_code_and_never_caller_text() {
        let ok = CallToolResult::success(vec![ContentBlock::text("fine")]);
        assert_eq!(outcome_label(Some(&ok)), "ok");
        assert_eq!(
            outcome_label(Some(&error("rate_limited: slow down\n{}"))),
            "rate_limited"
        );
        assert_eq!(outcome_label(Some(&error("Bearer mcpa_x: y"))), "error");
        assert_eq!(outcome_label(Some(&error("no colon"))), "error");
        assert_eq!(outcome_label(None), "unknown_tool");
    }

    #[test]
    fn only_offered_tool_names_become_labels() {
        assert_eq!(tool_label("send_message"), "send_message");
        assert_eq!(tool_label("conv_0123"), "unknown");
        assert_eq!(tool_label("wait_for_messages\n"), "unknown");
    }

    #[tokio::test]
    async fn a_scrape_shows_calls_latency_messages_waits_and_statuses() {
        let metrics = Arc::new(Metrics::new(true));
        let mut ext = axum::http::Extensions::new();
        ext.insert(Arc::clone(&metrics));
        let ok = || async { Some(CallToolResult::success(vec![ContentBlock::text("x")])) };
        observe_tool_call(Some(&ext), SEND_MESSAGE, ok()).await;
        observe_tool_call(Some(&ext), SEND_MESSAGE, async {
            Some(error("invalid_argument: no\n{}"))
        })
        .await;
        observe_tool_call(Some(&ext), "made_up", async { None }).await;
        metrics.count_response(StatusCode::TOO_MANY_REQUESTS);
        metrics.count_limited("rate");
        let text = metrics.render(Some((3, 10)));
        for line in [
            "mcp_bridge_tool_calls_total{tool=\"send_message\",outcome=\"ok\"} 1",
            "mcp_bridge_tool_calls_total{tool=\"send_message\",outcome=\"invalid_argument\"} 1",
            "mcp_bridge_tool_calls_total{tool=\"unknown\",outcome=\"unknown_tool\"} 1",
            "mcp_bridge_tool_call_duration_seconds_count{tool=\"send_message\"} 2",
            "mcp_bridge_messages_stored_total 1",
            "mcp_bridge_waiting_calls 0",
            "mcp_bridge_http_responses_total{class=\"4xx\"} 1",
            "mcp_bridge_http_limited_total{limit=\"rate\"} 1",
            "mcp_bridge_db_pool_connections{state=\"in_use\"} 3",
            "mcp_bridge_db_pool_connections{state=\"max\"} 10",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("made_up"));
    }

    #[tokio::test]
    async fn the_waiting_gauge_counts_a_wait_while_it_runs() {
        let metrics = Arc::new(Metrics::new(false));
        let mut ext = axum::http::Extensions::new();
        ext.insert(Arc::clone(&metrics));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let wait = tokio::spawn(async move {
            observe_tool_call(Some(&ext), WAIT_FOR_MESSAGES, async {
                let _ = rx.await;
                Some(CallToolResult::success(vec![]))
            })
            .await
        });
        while metrics.waiting.get() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(metrics.render(None).contains("mcp_bridge_waiting_calls 1"));
        tx.send(()).unwrap();
        wait.await.unwrap();
        assert_eq!(metrics.waiting.get(), 0);
        assert!(!metrics.render(None).contains("db_pool"));
    }
}
