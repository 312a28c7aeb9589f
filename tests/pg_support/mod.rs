//! A fresh PostgreSQL database per test, when `MCP_BRIDGE_TEST_PG` names a
//! server (`scripts/with-postgres` starts one and sets it). Without it the
//! PostgreSQL tests say so on stderr and pass without running: SQLite is
//! always tested, PostgreSQL where a server is at hand.
//!
//! Each test gets its own database, created through the URL in the
//! variable (a role that may create databases) and dropped afterwards,
//! also when the test panics, so tests run in parallel without sharing rows.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::future::Future;

use tokio_postgres::NoTls;

/// The server URL from the environment, if PostgreSQL tests should run.
pub fn admin_url() -> Option<String> {
    std::env::var("MCP_BRIDGE_TEST_PG").ok().filter(|u| !u.is_empty())
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .expect("MCP_BRIDGE_TEST_PG must be a postgres:// URL");
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split_once('/').map_or(before_query, |(a, _)| a);
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn admin_client(admin: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(admin, NoTls)
        .await
        .expect("connecting to MCP_BRIDGE_TEST_PG");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Creates a uniquely named empty database; returns its name and URL.
pub async fn create_db(admin: &str) -> (String, String) {
    let name = format!("mcp_bridge_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    admin_client(admin)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("creating a test database");
    let url = with_database(admin, &name);
    (name, url)
}

/// Drops a database made by [`create_db`], closing whatever still uses it.
pub async fn drop_db(admin: &str, name: &str) {
    let result = admin_client(admin)
        .await
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
    if let Err(e) = result {
        eprintln!("could not drop test database {name}: {e}");
    }
}

/// Runs `test` with the URL of a fresh database, then drops it (a panic in
/// the test is re-raised after the drop). Skips with a note on stderr when
/// no server is configured.
pub async fn with_fresh_db<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin) = admin_url() else {
        eprintln!("MCP_BRIDGE_TEST_PG is not set: PostgreSQL part skipped (run under scripts/with-postgres)");
        return;
    };
    let (name, url) = create_db(&admin).await;
    let outcome = tokio::spawn(test(url)).await;
    drop_db(&admin, &name).await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}
