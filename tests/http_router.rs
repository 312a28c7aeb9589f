//! The HTTP application in-process (`tower::ServiceExt::oneshot`): limits
//! per credential keyed by the authenticated agent, 429 with
//! `Retry-After`, request ids on every response, and `/metrics` without a
//! credential and without names. Over real sockets: `e2e/test_http_ops.py`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use mcp_bridge::auth::ServerKey;
use mcp_bridge::bridge::Bridge;
use mcp_bridge::clock::SystemClock;
use mcp_bridge::config::Limits;
use mcp_bridge::http::{CredentialLimits, HttpOptions, Metrics, router};
use mcp_bridge::redact::Redactor;
use mcp_bridge::store::SqliteStore;
use mcp_bridge::store::agents::AgentRole;
use mcp_bridge::store::sqlite::OpenMode;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

async fn app(limits: CredentialLimits) -> (axum::Router, Arc<Metrics>, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("b.db"), OpenMode::CreateIfMissing)
        .await
        .unwrap();
    let bridge = Bridge::new(
        store,
        ServerKey::from_bytes([7; 32]),
        Redactor::builtin(),
        Limits::default(),
        Arc::new(SystemClock),
    );
    let lead = bridge.add_agent("lead-name", AgentRole::Agent).await.unwrap();
    let other = bridge.add_agent("other-name", AgentRole::Agent).await.unwrap();
    let options = HttpOptions {
        addr: "127.0.0.1:8750".parse().unwrap(),
        allowed_hosts: Vec::new(),
        allowed_origins: Vec::new(),
        insecure_http: false,
        tls: None,
        limits,
    };
    let metrics = Arc::new(Metrics::new(false));
    let app = router(bridge, &options, CancellationToken::new(), Arc::clone(&metrics));
    (
        app,
        metrics,
        lead.credential.to_string(),
        other.credential.to_string(),
        dir,
    )
}

fn init(credential: &str) -> Request<Body> {
    Request::post("/mcp")
        .header(header::HOST, "localhost")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {credential}"))
        .body(Body::from(INIT))
        .unwrap()
}

async fn text(response: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn over_the_rate_an_agent_gets_429_and_another_agent_does_not() {
    let limits = CredentialLimits {
        max_in_flight: None,
        per_second: Some(2),
    };
    let (app, _metrics, lead, other, _dir) = app(limits).await;
    for _ in 0..2 {
        let ok = app.clone().oneshot(init(&lead)).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
    }
    // The bucket holds two; a third in the same instant (well under the
    // half second one token takes to come back) is refused.
    let refused = app.clone().oneshot(init(&lead)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
    assert_eq!(refused.headers()[header::CONNECTION], "close");
    assert!(refused.headers().contains_key("x-request-id"));
    let body = text(refused).await;
    assert!(body.contains("per second") && !body.contains(&lead), "{body}");
    let fine = app.clone().oneshot(init(&other)).await.unwrap();
    assert_eq!(fine.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_credential_is_401_before_any_limit() {
    let limits = CredentialLimits {
        max_in_flight: Some(1),
        per_second: Some(1),
    };
    let (app, metrics, _lead, _other, _dir) = app(limits).await;
    let unknown = format!("mcpa_{}", "A".repeat(43));
    for _ in 0..3 {
        let r = app.clone().oneshot(init(&unknown)).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(!metrics.render(None).contains("http_limited"));
}

#[tokio::test]
async fn metrics_need_no_credential_and_carry_no_names() {
    let (app, _metrics, lead, _other, _dir) = app(CredentialLimits::default()).await;
    assert_eq!(
        app.clone().oneshot(init(&lead)).await.unwrap().status(),
        StatusCode::OK
    );
    let scrape = app
        .clone()
        .oneshot(
            Request::get("/metrics")
                .header(header::HOST, "localhost")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(scrape.status(), StatusCode::OK);
    let id = scrape.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert!(
        scrape.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let body = text(scrape).await;
    assert!(
        body.contains("mcp_bridge_http_responses_total{class=\"2xx\"} 1"),
        "{body}"
    );
    assert!(!body.contains("lead-name") && !body.contains(&lead), "{body}");
}
