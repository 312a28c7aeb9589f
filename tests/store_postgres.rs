//! What only a networked backend can get wrong: several servers (separate
//! `PgStore`s, each with its own pool) on one PostgreSQL database at once.
//! Exactly-once delivery, exact rate windows and one unforked audit chain
//! must hold across them, as `BEGIN IMMEDIATE` makes them hold across
//! SQLite processes. Runs when `MCP_BRIDGE_TEST_PG` is set (see
//! `pg_support`); each test has its own database.

mod pg_support;

use std::collections::BTreeSet;
use std::time::Duration;

use mcp_bridge::audit::{self, NewEntry, Verifier};
use mcp_bridge::auth::{ServerKey, TokenHash};
use mcp_bridge::store::postgres::OpenMode;
use mcp_bridge::store::{Conversation, Error, NewMessage, Participant, PgStore, Store, Tx};
use serde_json::json;

const CONV: &str = "conv_00112233445566778899aabbccddeeff";

/// Servers on one database, as if on separate machines.
async fn servers(url: &str, n: usize) -> Vec<PgStore> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            PgStore::open(url, OpenMode::CreateIfMissing)
                .await
                .unwrap()
                .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32])),
        );
    }
    out
}

async fn seed_conversation(store: &PgStore) {
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_conversation(&Conversation {
        id: CONV.into(),
        created_at: 1,
        expires_at: i64::MAX,
        closed_at: None,
    })
    .await
    .unwrap();
    for seat in ["a", "b"] {
        tx.insert_participant(&Participant {
            conversation_id: CONV.into(),
            session_id: seat.into(),
            role: "r".into(),
            token_hash: Some(TokenHash(vec![seat.as_bytes()[0]; 32])),
            agent_id: None,
            token_created_at: 1,
            revoked_at: None,
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

fn message(i: i64) -> NewMessage {
    NewMessage {
        conversation_id: CONV.into(),
        sender: "a".into(),
        body: format!("m{i}"),
        action_type: "info".into(),
        files: vec![],
        redactions: vec![],
        reply_to: None,
        created_at: 10 + i,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takers_on_separate_servers_get_every_message_once() {
    pg_support::with_fresh_db(|url| async move {
        let stores = servers(&url, 4).await;
        seed_conversation(&stores[0]).await;
        let mut sent = BTreeSet::new();
        let mut tx = stores[0].begin_write().await.unwrap();
        for i in 0..200 {
            sent.insert(tx.insert_message(&message(i), &["b".into()]).await.unwrap());
        }
        tx.commit().await.unwrap();

        let mut takers = Vec::new();
        for (n, store) in stores.iter().cloned().enumerate() {
            // Two takers per server: pooled connections race too.
            for k in 0..2 {
                let store = store.clone();
                takers.push(tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        let mut tx = store.begin_write().await.unwrap();
                        let now = 1_000 + (n * 2 + k) as i64;
                        let batch = tx.take_unread(CONV, "b", now, 3).await.unwrap();
                        tx.commit().await.unwrap();
                        if batch.is_empty() {
                            return got;
                        }
                        got.extend(batch.into_iter().map(|m| m.seq));
                    }
                }));
            }
        }
        let mut taken = Vec::new();
        for t in takers {
            taken.extend(t.await.unwrap());
        }
        let unique: BTreeSet<i64> = taken.iter().copied().collect();
        assert_eq!(taken.len(), unique.len(), "a message was delivered twice");
        assert_eq!(unique, sent, "every message is delivered");
        let mut tx = stores[1].begin_read().await.unwrap();
        assert_eq!(tx.count_unread(CONV, "b").await.unwrap(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_audited_writes_keep_one_verifiable_chain() {
    pg_support::with_fresh_db(|url| async move {
        let key = ServerKey::from_bytes([5; 32]);
        let stores = servers(&url, 4).await;
        let mut writers = Vec::new();
        for (n, store) in stores.iter().cloned().enumerate() {
            for k in 0..2 {
                let store = store.clone();
                let key = key.clone();
                writers.push(tokio::spawn(async move {
                    for i in 0..25 {
                        let mut tx = store.begin_write().await.unwrap();
                        let head = tx.audit_head().await.unwrap();
                        let e = audit::chain(
                            head,
                            100 + i,
                            NewEntry {
                                actor: format!("server{n}-{k}"),
                                action: "test.append".into(),
                                conversation_id: None,
                                detail: json!({ "i": i }),
                            },
                            &key,
                        );
                        tx.insert_audit(&e).await.unwrap();
                        tx.commit().await.unwrap();
                    }
                }));
            }
        }
        for w in writers {
            w.await.unwrap();
        }
        let mut tx = stores[3].begin_read().await.unwrap();
        let page = tx.audit_page(0, 1_000).await.unwrap();
        assert_eq!(page.len(), 4 * 2 * 25, "no append was lost");
        let mut verifier = Verifier::new(Some(&key));
        for e in &page {
            verifier.push(e).unwrap();
        }
        let (entries, _) = verifier.finish();
        assert_eq!(entries, 200);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_window_is_exact_across_servers() {
    pg_support::with_fresh_db(|url| async move {
        const LIMIT: usize = 10;
        let stores = servers(&url, 4).await;
        let mut callers = Vec::new();
        for store in &stores {
            for _ in 0..3 {
                let store = store.clone();
                callers.push(tokio::spawn(async move {
                    let mut admitted = 0;
                    for i in 0..8 {
                        let mut tx = store.begin_write().await.unwrap();
                        if tx.rate_events("send:x", 0).await.unwrap().len() < LIMIT {
                            tx.record_rate_event("send:x", 10 + i, 0).await.unwrap();
                            admitted += 1;
                        }
                        tx.commit().await.unwrap();
                    }
                    admitted
                }));
            }
        }
        let mut admitted = 0;
        for c in callers {
            admitted += c.await.unwrap();
        }
        assert_eq!(admitted, LIMIT, "96 attempts, exactly the limit admitted");
    })
    .await;
}

#[tokio::test]
async fn a_commit_on_one_server_wakes_waiters_on_another() {
    pg_support::with_fresh_db(|url| async move {
        let stores = servers(&url, 2).await;
        let changes = stores[1].changes();
        // The listener connects in the background: wait until it is live.
        for _ in 0..500 {
            if changes.is_live() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(changes.is_live(), "the listener never came up");
        // Going live itself wakes; start from a quiet subscription.
        let mut changes = stores[1].changes();
        let mut tx = stores[0].begin_write().await.unwrap();
        tx.record_rate_event("k", 1, 0).await.unwrap();
        tx.commit().await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), changes.changed())
            .await
            .expect("a commit on another server must wake the waiter");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_together_on_a_new_database_migrate_once() {
    pg_support::with_fresh_db(|url| async move {
        let mut starts = Vec::new();
        for _ in 0..6 {
            let url = url.clone();
            starts.push(tokio::spawn(async move {
                PgStore::open(&url, OpenMode::CreateIfMissing)
                    .await
                    .unwrap()
                    .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]))
            }));
        }
        let mut stores = Vec::new();
        for s in starts {
            stores.push(s.await.unwrap());
        }
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let n: i64 = client
            .query_one("SELECT count(*) FROM _sqlx_migrations", &[])
            .await
            .unwrap()
            .get(0);
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
            .unwrap()
            .count();
        assert_eq!(n as usize, files, "one record per embedded migration");
        // And a later start only reads.
        PgStore::open(&url, OpenMode::MustExist)
            .await
            .unwrap()
            .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
    })
    .await;
}

#[tokio::test]
async fn an_empty_or_foreign_database_is_refused() {
    pg_support::with_fresh_db(|url| async move {
        let err = PgStore::open(&url, OpenMode::MustExist).await.unwrap_err();
        assert!(matches!(err, Error::NotABridgeDatabase { .. }), "{err}");
        assert!(err.to_string().contains("no mcp-bridge schema"), "{err}");
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute("CREATE TABLE invoices (id INT)")
            .await
            .unwrap();
        let err = PgStore::open(&url, OpenMode::CreateIfMissing).await.unwrap_err();
        assert!(matches!(err, Error::NotABridgeDatabase { .. }), "{err}");
        assert!(err.to_string().contains("other tables"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_dropped_write_releases_the_write_lock_for_other_servers() {
    pg_support::with_fresh_db(|url| async move {
        let stores = servers(&url, 2).await;
        for _ in 0..3 {
            let mut tx = stores[0].begin_write().await.unwrap();
            tx.record_rate_event("k", 1, 0).await.unwrap();
            drop(tx);
            // Would fail with Busy after the 10 s lock timeout if the lock
            // stayed with the dropped transaction's connection.
            let mut other = stores[1].begin_write().await.unwrap();
            assert!(other.rate_events("k", 0).await.unwrap().is_empty());
            other.commit().await.unwrap();
        }
        // A cancelled transaction (its future dropped mid-statement) too.
        let store = stores[0].clone();
        let task = tokio::spawn(async move {
            let mut tx = store.begin_write().await.unwrap();
            tx.record_rate_event("k", 2, 0).await.unwrap();
            std::future::pending::<()>().await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        task.abort();
        let _ = task.await;
        let mut other = stores[1].begin_write().await.unwrap();
        assert!(other.rate_events("k", 0).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn the_audit_table_refuses_update_delete_and_truncate() {
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, OpenMode::CreateIfMissing)
            .await
            .unwrap()
            .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
        let key = ServerKey::from_bytes([1; 32]);
        let mut tx = store.begin_write().await.unwrap();
        let e = audit::chain(
            None,
            1,
            NewEntry {
                actor: "cli".into(),
                action: "test".into(),
                conversation_id: None,
                detail: json!({}),
            },
            &key,
        );
        tx.insert_audit(&e).await.unwrap();
        tx.commit().await.unwrap();
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        for statement in [
            "UPDATE audit SET actor = 'x'",
            "DELETE FROM audit",
            "TRUNCATE audit",
        ] {
            let err = client.batch_execute(statement).await.unwrap_err();
            let db = err.as_db_error().map(|d| d.message().to_owned());
            assert_eq!(db.as_deref(), Some("audit is append-only"), "{statement}");
        }
    })
    .await;
}

/// A database made by a build before teams (migrations 1, 3, 4) with
/// messages in it: opening it applies 0006 and fills the new columns from
/// the rows already there.
#[tokio::test]
async fn the_teams_migration_fills_in_existing_rows() {
    use sha2::{Digest, Sha384};
    pg_support::with_fresh_db(|url| async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
                 installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, \
                 checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)",
            )
            .await
            .unwrap();
        for (version, description, file) in [
            (1_i64, "init", "0001_init.sql"),
            (3, "yolo", "0003_yolo.sql"),
            (4, "refusal tally", "0004_refusal_tally.sql"),
        ] {
            let sql = std::fs::read_to_string(format!(
                "{}/migrations/postgres/{file}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            client.batch_execute(&sql).await.unwrap();
            client
                .execute(
                    "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                     VALUES ($1, $2, TRUE, $3, 0)",
                    &[&version, &description, &Sha384::digest(sql.as_bytes()).to_vec()],
                )
                .await
                .unwrap();
        }
        client
            .batch_execute(&format!(
                "INSERT INTO conversations VALUES ('{CONV}', 1, 1000, NULL); \
                 INSERT INTO participants VALUES ('{CONV}', 'a', 'r', '\\x00', 1, NULL), \
                                                 ('{CONV}', 'b', 'r', '\\x01', 1, NULL), \
                                                 ('{CONV}', 'c', 'r', '\\x02', 1, NULL); \
                 INSERT INTO messages (conversation_id, sender, body, action_type, files, redactions, created_at) \
                   VALUES ('{CONV}', 'a', 'héllo', 'info', '[\"x\"]', '[]', 5); \
                 INSERT INTO deliveries SELECT seq, '{CONV}', r, NULL FROM messages, unnest(ARRAY['c', 'b']) r;"
            ))
            .await
            .unwrap();

        let store = PgStore::open(&url, OpenMode::MustExist).await.unwrap()
        .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
        let mut tx = store.begin_read().await.unwrap();
        let m = tx.history_after(CONV, 0, 10).await.unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].recipients, ["b", "c"]);
        assert_eq!(m[0].reply_to, None);
        let usage = tx.usage(CONV).await.unwrap();
        assert_eq!(usage.messages, 1);
        assert_eq!(usage.bytes, ("héllo".len() + "[\"x\"]".len()) as i64);
        let seat = tx.participant(CONV, "a").await.unwrap().unwrap();
        assert_eq!((seat.token_hash.map(|h| h.0), seat.agent_id), (Some(vec![0]), None));
        drop(tx);
        assert_eq!(
            mcp_bridge::store::admin::AdminStore::schema_problems(&store)
                .await
                .unwrap(),
            Vec::<String>::new(),
            "an upgraded schema is exactly a fresh one"
        );
    })
    .await;
}
