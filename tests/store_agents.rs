//! The store contract for registered agents ([`AgentTx`]), written once as
//! a story over any [`Store`] and run on a fresh SQLite file, and on a fresh
//! PostgreSQL database when `MCP_BRIDGE_TEST_PG` is set. See issue 18
//! ("agent identities").

mod pg_support;

use mcp_bridge::auth::{AgentCredential, ServerKey, SessionToken};
use mcp_bridge::store::agents::{AgentRole, AgentTx};
use mcp_bridge::store::sqlite::OpenMode;
use mcp_bridge::store::{Error, PgStore, SqliteStore, Store, Tx};

async fn contract<S: Store>(store: S) {
    let key = ServerKey::from_bytes([5; 32]);
    let cred = AgentCredential::generate();
    let hash = key.hash_agent_credential(&cred);

    // A rolled-back registration leaves nothing.
    {
        let mut tx = store.begin_write().await.unwrap();
        tx.insert_agent("worker", AgentRole::Agent, &hash, 1_000)
            .await
            .unwrap();
        drop(tx);
        let mut tx = store.begin_read().await.unwrap();
        assert!(tx.agent_by_name("worker").await.unwrap().is_none());
        assert!(tx.agents().await.unwrap().is_empty());
    }

    let mut tx = store.begin_write().await.unwrap();
    let worker = tx
        .insert_agent("worker", AgentRole::Agent, &hash, 1_000)
        .await
        .unwrap();
    let lead_hash = key.hash_agent_credential(&AgentCredential::generate());
    let lead = tx
        .insert_agent("lead", AgentRole::Admin, &lead_hash, 2_000)
        .await
        .unwrap();
    assert_ne!(worker, lead);
    tx.commit().await.unwrap();

    // Names are unique (case-sensitive), and so are credential hashes.
    let mut tx = store.begin_write().await.unwrap();
    let other = key.hash_agent_credential(&AgentCredential::generate());
    assert!(matches!(
        tx.insert_agent("worker", AgentRole::Observer, &other, 3_000)
            .await,
        Err(Error::Conflict)
    ));
    drop(tx);
    let mut tx = store.begin_write().await.unwrap();
    assert!(matches!(
        tx.insert_agent("worker2", AgentRole::Agent, &hash, 3_000).await,
        Err(Error::Conflict)
    ));
    drop(tx);
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_agent("Worker", AgentRole::Observer, &other, 3_000)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Lookups by id, name and credential hash find the same row.
    let mut tx = store.begin_read().await.unwrap();
    let a = tx.agent(worker).await.unwrap().unwrap();
    assert_eq!(a.id, worker);
    assert_eq!(a.name, "worker");
    assert_eq!(a.role, AgentRole::Agent);
    assert_eq!(a.created_at, 1_000);
    assert_eq!(a.rotated_at, None);
    assert_eq!(a.revoked_at, None);
    assert!(key.verify_agent_credential(&cred, &a.credential_hash));
    assert_eq!(tx.agent_by_name("worker").await.unwrap(), Some(a.clone()));
    assert_eq!(tx.agent_by_credential(&hash).await.unwrap(), Some(a.clone()));
    assert!(tx.agent(worker + lead + 100).await.unwrap().is_none());
    assert!(tx.agent_by_name("nobody").await.unwrap().is_none());
    // A seat token's hash of the same text is not the credential's hash.
    let as_token = key.hash_token(&SessionToken::from_presented(cred.expose()));
    assert!(tx.agent_by_credential(&as_token).await.unwrap().is_none());
    // Listed by name (byte order: upper case first), with every role kept.
    let all = tx.agents().await.unwrap();
    assert_eq!(
        all.iter().map(|a| (a.name.as_str(), a.role)).collect::<Vec<_>>(),
        [
            ("Worker", AgentRole::Observer),
            ("lead", AgentRole::Admin),
            ("worker", AgentRole::Agent)
        ]
    );
    drop(tx);

    // Rotation: the old hash finds nothing, the new one the same agent,
    // rotated_at is set and nothing else changes.
    let new_cred = AgentCredential::generate();
    let new_hash = key.hash_agent_credential(&new_cred);
    let mut tx = store.begin_write().await.unwrap();
    tx.set_agent_credential(worker, &new_hash, 5_000).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin_read().await.unwrap();
    assert!(tx.agent_by_credential(&hash).await.unwrap().is_none());
    let rotated = tx.agent_by_credential(&new_hash).await.unwrap().unwrap();
    assert_eq!(rotated.id, worker);
    assert_eq!(rotated.rotated_at, Some(5_000));
    assert_eq!(rotated.created_at, 1_000);
    assert_eq!(rotated.revoked_at, None);
    assert!(key.verify_agent_credential(&new_cred, &rotated.credential_hash));
    assert!(!key.verify_agent_credential(&cred, &rotated.credential_hash));
    drop(tx);

    // A rotation that is rolled back changes nothing.
    let mut tx = store.begin_write().await.unwrap();
    tx.set_agent_credential(worker, &hash, 6_000).await.unwrap();
    drop(tx);
    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(tx.agent(worker).await.unwrap().unwrap(), rotated);
    drop(tx);

    // Revocation keeps the row (and the credential's lookup, so a server
    // can tell "revoked" from "unknown"); the first time stands.
    let mut tx = store.begin_write().await.unwrap();
    tx.revoke_agent(worker, 7_000).await.unwrap();
    tx.revoke_agent(worker, 8_000).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let revoked = tx.agent_by_credential(&new_hash).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(7_000));
    assert_eq!(revoked.rotated_at, Some(5_000));
    // Rotating a revoked agent does not lift the revocation.
    tx.set_agent_credential(worker, &hash, 9_000).await.unwrap();
    let after = tx.agent(worker).await.unwrap().unwrap();
    assert_eq!((after.rotated_at, after.revoked_at), (Some(9_000), Some(7_000)));
    // The other agents are untouched.
    let l = tx.agent(lead).await.unwrap().unwrap();
    assert_eq!((l.rotated_at, l.revoked_at), (None, None));
    // An id without a row is an error, never a silent no-op.
    let missing = worker + lead + 100;
    assert!(tx.set_agent_credential(missing, &other, 1).await.is_err());
    assert!(tx.revoke_agent(missing, 1).await.is_err());
}

#[tokio::test]
async fn sqlite_keeps_the_agent_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bridge.db"), OpenMode::CreateIfMissing)
        .await
        .unwrap()
        .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
    contract(store).await;
}

#[tokio::test]
async fn postgres_keeps_the_agent_contract() {
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, mcp_bridge::store::postgres::OpenMode::CreateIfMissing)
            .await
            .unwrap()
            .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
        contract(store.clone()).await;
        store.close();
    })
    .await;
}
