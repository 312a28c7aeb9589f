//! `/healthz` (the process answers) and `/readyz` (the database answers a
//! read transaction). Neither needs a credential and neither says more
//! than its status: a probe from a load balancer carries none, and an
//! unauthenticated caller learns nothing about the store.

use axum::extract::State;
use axum::http::StatusCode;

use crate::bridge::Bridge;
use crate::store::Store;
use crate::store::agents::AgentTx;

/// Liveness: 200 `ok` whenever the server can answer at all.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 `ready` when a read transaction on the store starts and
/// runs one query; 503 otherwise (logged at error, it is the server's
/// fault). Whether migrations are current is checked at start-up, which
/// refuses a database of another schema.
pub async fn readyz<S: Store>(State(bridge): State<Bridge<S>>) -> (StatusCode, &'static str) {
    let probe = async {
        let mut tx = bridge.store().begin_read().await?;
        // Any row id: the query must run, its answer does not matter.
        tx.agent(0).await?;
        Ok::<_, crate::store::Error>(())
    };
    match probe.await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::error!(error = %e, "readiness probe: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
        }
    }
}
