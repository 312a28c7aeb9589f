//! `/healthz` (the process answers) and `/readyz` (the database answers a
//! read transaction). Neither needs a credential and neither says more
//! than its status: a probe from a load balancer carries none, and an
//! unauthenticated caller learns nothing about the store.

use axum::extract::State;
use axum::http::StatusCode;

use crate::bridge::Bridge;
use crate::store::admin::FullStore;
use crate::store::agents::AgentTx;

/// Liveness: 200 `ok` whenever the server can answer at all.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 `ready` when a read transaction on the store starts and
/// runs one query, and the schema is exactly this binary's migrations; 503
/// otherwise. A database upgraded by a newer server since this one started
/// (`not ready: schema`) is the operator's to resolve (upgrade this binary);
/// an unreachable database is logged at error, it is the server's fault.
pub async fn readyz<S: FullStore>(State(bridge): State<Bridge<S>>) -> (StatusCode, &'static str) {
    let probe = async {
        let mut tx = bridge.store().begin_read().await?;
        // Any row id: the query must run, its answer does not matter.
        tx.agent(0).await?;
        drop(tx);
        bridge.store().migrations_current().await
    };
    match probe.await {
        Ok(true) => (StatusCode::OK, "ready"),
        Ok(false) => {
            tracing::warn!(
                "readiness probe: the database's schema is not this binary's (upgraded by a newer server?)"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: schema")
        }
        Err(e) => {
            tracing::error!(error = %e, "readiness probe: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
        }
    }
}
