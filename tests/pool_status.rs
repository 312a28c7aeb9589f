//! `Store::pool_status`, what `/metrics` reports as
//! `mcp_bridge_db_pool_connections`: SQLite has no pool; PostgreSQL counts
//! the connections a transaction holds against the pool's size.

mod pg_support;

use mcp_bridge::store::postgres::PgStore;
use mcp_bridge::store::sqlite::OpenMode;
use mcp_bridge::store::{SqliteStore, Store};

#[tokio::test]
async fn sqlite_has_no_pool() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("b.db"), OpenMode::CreateIfMissing)
        .await
        .unwrap();
    assert_eq!(store.pool_status(), None);
}

#[tokio::test]
async fn postgres_counts_connections_in_use() {
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, mcp_bridge::store::postgres::OpenMode::CreateIfMissing)
            .await
            .unwrap();
        let (in_use, max) = store.pool_status().expect("PostgreSQL has a pool");
        assert!(max >= 1, "{max}");
        assert_eq!(in_use, 0, "no transaction is open");
        let tx = store.begin_read().await.unwrap();
        assert_eq!(store.pool_status(), Some((1, max)));
        drop(tx);
    })
    .await;
}
