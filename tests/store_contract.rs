//! The store contract, written once and run against every backend: SQLite
//! always (a fresh file per run), PostgreSQL when `MCP_BRIDGE_TEST_PG` names
//! a server (a fresh database per run; `scripts/with-postgres` starts one).

mod pg_support;

use mcp_bridge::audit::{self, NewEntry, Verifier};
use mcp_bridge::auth::{ServerKey, SessionToken};
use mcp_bridge::store::sqlite::OpenMode;
use mcp_bridge::store::{Conversation, NewMessage, Participant, PgStore, SqliteStore, Status, Store, Tx};
use serde_json::json;

async fn contract<S: Store>(store: S) {
    let key = ServerKey::from_bytes([3; 32]);
    let conv = Conversation {
        id: "conv_0123456789abcdef0123456789abcdef".into(),
        created_at: 1_000,
        expires_at: 10_000,
        closed_at: None,
    };

    // A rolled-back transaction leaves nothing.
    {
        let mut tx = store.begin_write().await.unwrap();
        tx.insert_conversation(&conv).await.unwrap();
        drop(tx);
        let mut tx = store.begin_read().await.unwrap();
        assert!(
            tx.conversation(&conv.id).await.unwrap().is_none(),
            "dropped tx must roll back"
        );
    }

    let token = SessionToken::generate();
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_conversation(&conv).await.unwrap();
    for s in ["a", "b"] {
        tx.insert_participant(&Participant {
            conversation_id: conv.id.clone(),
            session_id: s.into(),
            role: format!("role-{s}"),
            token_hash: Some(key.hash_token(&token)),
            agent_id: None,
            token_created_at: 1_000,
            revoked_at: None,
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    // Ids are unique.
    let mut tx = store.begin_write().await.unwrap();
    assert!(matches!(
        tx.insert_conversation(&conv).await,
        Err(mcp_bridge::store::Error::Conflict)
    ));
    drop(tx);

    let mut tx = store.begin_write().await.unwrap();
    assert_eq!(tx.conversation(&conv.id).await.unwrap(), Some(conv.clone()));
    let p = tx.participant(&conv.id, "b").await.unwrap().unwrap();
    assert!(key.verify_token(&token, p.token_hash.as_ref().unwrap()));
    assert!(tx.participant(&conv.id, "c").await.unwrap().is_none());
    assert_eq!(tx.participants(&conv.id).await.unwrap().len(), 2);
    let (c, seats) = tx
        .conversation_with_participants(&conv.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c, conv);
    assert_eq!(
        seats.iter().map(|p| p.session_id.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(
        tx.conversation_with_participants("conv_missing")
            .await
            .unwrap()
            .is_none()
    );

    // Messages come back once, in order, only to their recipient.
    let mut seqs = vec![];
    for i in 0..5 {
        let seq = tx
            .insert_message(
                &NewMessage {
                    reply_to: None,
                    conversation_id: conv.id.clone(),
                    sender: "a".into(),
                    body: format!("m{i}"),
                    action_type: "info".into(),
                    files: vec![format!("f{i}")],
                    redactions: vec![],
                    created_at: 2_000 + i,
                },
                &["b".to_owned()],
            )
            .await
            .unwrap();
        seqs.push(seq);
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(tx.count_unread(&conv.id, "b").await.unwrap(), 5);
    assert!(tx.take_unread(&conv.id, "a", 3_000, 10).await.unwrap().is_empty());
    let first = tx.take_unread(&conv.id, "b", 3_000, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["m0", "m1"]
    );
    assert_eq!(first[0].files, vec!["f0".to_owned()]);
    let rest = tx.take_unread(&conv.id, "b", 3_001, 10).await.unwrap();
    assert_eq!(rest.iter().map(|m| m.seq).collect::<Vec<_>>(), seqs[2..]);
    assert!(tx.take_unread(&conv.id, "b", 3_002, 10).await.unwrap().is_empty());
    assert_eq!(tx.count_unread(&conv.id, "b").await.unwrap(), 0);

    // A delivery whose response never arrived is returned: only its own
    // rows (right recipient, right stamp) become pending, once.
    assert_eq!(
        tx.return_unread(&conv.id, "b", &seqs[..2], 3_001).await.unwrap(),
        0
    );
    assert_eq!(
        tx.return_unread(&conv.id, "a", &seqs[..2], 3_000).await.unwrap(),
        0
    );
    assert_eq!(
        tx.return_unread(&conv.id, "b", &seqs[..2], 3_000).await.unwrap(),
        2
    );
    assert_eq!(
        tx.return_unread(&conv.id, "b", &seqs[..2], 3_000).await.unwrap(),
        0
    );
    assert_eq!(tx.count_unread(&conv.id, "b").await.unwrap(), 2);
    let again = tx.take_unread(&conv.id, "b", 3_003, 10).await.unwrap();
    assert_eq!(again.iter().map(|m| m.seq).collect::<Vec<_>>(), seqs[..2]);

    // Status upserts.
    let mut st = Status {
        conversation_id: conv.id.clone(),
        session_id: "a".into(),
        status: "working".into(),
        note: Some("n".into()),
        heartbeat_at: 4_000,
    };
    tx.upsert_status(&st).await.unwrap();
    st.status = "blocked".into();
    st.note = None;
    tx.upsert_status(&st).await.unwrap();
    assert_eq!(tx.status(&conv.id, "a").await.unwrap(), Some(st));
    assert_eq!(tx.status(&conv.id, "b").await.unwrap(), None);

    // Rate log: only events after `since`, ascending; old ones pruned.
    for at in [100, 200, 300] {
        tx.record_rate_event("k", at, 150).await.unwrap();
    }
    assert_eq!(tx.rate_events("k", 0).await.unwrap(), vec![200, 300]);
    assert_eq!(tx.rate_events("k", 200).await.unwrap(), vec![300]);
    assert!(tx.rate_events("other", 0).await.unwrap().is_empty());

    // Audit chain round trip.
    assert_eq!(tx.audit_head().await.unwrap(), None);
    for i in 0..3 {
        let head = tx.audit_head().await.unwrap();
        let e = audit::chain(
            head,
            5_000 + i,
            NewEntry {
                actor: "cli".into(),
                action: "test".into(),
                conversation_id: Some(conv.id.clone()),
                detail: json!({"i": i}),
            },
            &key,
        );
        tx.insert_audit(&e).await.unwrap();
    }
    tx.commit().await.unwrap();
    let mut tx = store.begin_read().await.unwrap();
    let page = tx.audit_page(0, 100).await.unwrap();
    assert_eq!(page.len(), 3);
    let mut v = Verifier::new(Some(&key));
    for e in &page {
        v.push(e).unwrap();
    }
    assert_eq!(tx.audit_page(2, 100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_store_honours_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("contract.db"), OpenMode::CreateIfMissing)
        .await
        .unwrap()
        .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
    contract(store).await;
}

#[tokio::test]
async fn postgres_store_honours_the_contract() {
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

#[tokio::test]
async fn sqlite_refuses_to_create_when_told_the_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    let err = SqliteStore::open(&path, OpenMode::MustExist).await.unwrap_err();
    assert!(err.to_string().contains("no such file"), "{err}");
    assert!(!path.exists());
}

#[tokio::test]
async fn sqlite_refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are not the tables you are looking for ".repeat(100)).unwrap();
    let err = SqliteStore::open(&path, OpenMode::MustExist).await.unwrap_err();
    assert!(
        matches!(err, mcp_bridge::store::Error::NotABridgeDatabase { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_refuses_a_foreign_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE invoices (id INTEGER)")
        .unwrap();
    let err = SqliteStore::open(&path, OpenMode::MustExist).await.unwrap_err();
    assert!(
        matches!(err, mcp_bridge::store::Error::NotABridgeDatabase { .. }),
        "{err}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_creates_private_files_in_a_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("bridge.db");
    let store = SqliteStore::open(&path, OpenMode::CreateIfMissing)
        .await
        .unwrap()
        .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&path), 0o600);
    let mut tx = store.begin_write().await.unwrap();
    tx.record_rate_event("k", 1, 0).await.unwrap();
    tx.commit().await.unwrap();
    let wal = dir.path().join("nested").join("bridge.db-wal");
    assert!(wal.exists());
    assert_eq!(mode(&wal), 0o600);
}
