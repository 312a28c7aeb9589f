//! Throughput figures on PostgreSQL, printed, never asserted (timings are
//! not test results). Ignored by default; run beside a server with
//!
//! ```text
//! scripts/with-postgres cargo test --test bench_postgres -- --ignored --nocapture
//! ```
//!
//! Each send is what `send_message` does to the store: one write
//! transaction (write lock), authenticate, rate check and record, message
//! and delivery, audit head and append, commit with NOTIFY.

mod pg_support;

use std::sync::Arc;
use std::time::Instant;

use mcp_bridge::audit::{self, NewEntry};
use mcp_bridge::auth::{ServerKey, SessionToken, TokenHash};
use mcp_bridge::bridge::{Auth, Bridge, CreateRequest, SendRequest, SessionId};
use mcp_bridge::clock::ManualClock;
use mcp_bridge::config::Limits;
use mcp_bridge::limits::RateLimit;
use mcp_bridge::redact::Redactor;
use mcp_bridge::store::postgres::OpenMode;
use mcp_bridge::store::{Conversation, NewMessage, Participant, PgStore, Store, Tx};
use serde_json::json;

const TASKS: usize = 8;
const SENDS_PER_TASK: usize = 250;
const CONV: &str = "conv_0123456789abcdef0123456789abcdef";

async fn one_send(store: &PgStore, key: &ServerKey, task: usize, i: usize) {
    let now = 1_000 + i as i64;
    let mut tx = store.begin_write().await.unwrap();
    let (_, seats) = tx.conversation_with_participants(CONV).await.unwrap().unwrap();
    assert_eq!(seats.len(), 2);
    let rate_key = format!("send:{CONV}/a{task}");
    tx.rate_events(&rate_key, now - 60_000).await.unwrap();
    tx.record_rate_event(&rate_key, now, now - 60_000).await.unwrap();
    let seq = tx
        .insert_message(
            &NewMessage {
                conversation_id: CONV.into(),
                sender: "a".into(),
                body: format!("message {i} from task {task}"),
                action_type: "info".into(),
                files: vec![],
                redactions: vec![],
                reply_to: None,
                created_at: now,
            },
            &["b".into()],
        )
        .await
        .unwrap();
    let head = tx.audit_head().await.unwrap();
    let entry = audit::chain(
        head,
        now,
        NewEntry {
            actor: "a".into(),
            action: "message.send".into(),
            conversation_id: Some(CONV.into()),
            detail: json!({ "seq": seq }),
        },
        key,
    );
    tx.insert_audit(&entry).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a figure, not a test: run with --ignored --nocapture beside a server"]
async fn sends_per_second_through_the_tx_api_with_8_tasks() {
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, OpenMode::CreateIfMissing).await.unwrap();
        let key = ServerKey::from_bytes([8; 32]);
        let mut tx = store.begin_write().await.unwrap();
        tx.insert_conversation(&Conversation {
            id: CONV.into(),
            created_at: 1,
            expires_at: i64::MAX,
            closed_at: None,
        })
        .await
        .unwrap();
        for s in ["a", "b"] {
            tx.insert_participant(&Participant {
                conversation_id: CONV.into(),
                session_id: s.into(),
                role: "r".into(),
                token_hash: Some(TokenHash(vec![0; 32])),
                agent_id: None,
                token_created_at: 1,
                revoked_at: None,
            })
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        // Warm the pool and the statement caches.
        one_send(&store, &key, 99, 0).await;

        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let (store, key) = (store.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..SENDS_PER_TASK {
                    one_send(&store, &key, t, i).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = started.elapsed();
        let sends = TASKS * SENDS_PER_TASK;
        eprintln!(
            "PostgreSQL, Tx API: {sends} sends by {TASKS} tasks in {:.2} s = {:.0} sends/s",
            elapsed.as_secs_f64(),
            sends as f64 / elapsed.as_secs_f64()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a figure, not a test: run with --ignored --nocapture beside a server"]
async fn sends_per_second_through_send_message_with_8_tasks() {
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, OpenMode::CreateIfMissing).await.unwrap();
        let limits = Limits {
            send_rate: RateLimit::parse("off").unwrap(),
            read_rate: RateLimit::parse("off").unwrap(),
            ..Limits::default()
        };
        let bridge = Arc::new(Bridge::new(
            store,
            ServerKey::from_bytes([8; 32]),
            Redactor::builtin(),
            limits,
            Arc::new(ManualClock::new(1_800_000_000_000)),
        ));
        let created = bridge
            .create_conversation(CreateRequest::pair("backend", "frontend"))
            .await
            .unwrap();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let bridge = Arc::clone(&bridge);
            let conversation_id = created.conversation_id.clone();
            let token = created
                .seats
                .iter()
                .find(|seat| seat.session_id == SessionId::A)
                .and_then(|seat| seat.token.as_deref())
                .expect("a token seat")
                .to_owned();
            tasks.push(tokio::spawn(async move {
                for i in 0..SENDS_PER_TASK {
                    bridge
                        .send_message(SendRequest::to_all(
                            Auth {
                                conversation_id: conversation_id.clone(),
                                session_id: SessionId::A,
                                token: SessionToken::from_presented(&token),
                            },
                            format!("message {i} from task {t}"),
                        ))
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = started.elapsed();
        let sends = TASKS * SENDS_PER_TASK;
        eprintln!(
            "PostgreSQL, Bridge::send_message: {sends} sends by {TASKS} tasks in {:.2} s = {:.0} sends/s",
            elapsed.as_secs_f64(),
            sends as f64 / elapsed.as_secs_f64()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a figure, not a test: run with --ignored --nocapture beside a server"]
async fn wake_latency_from_a_commit_on_another_server() {
    pg_support::with_fresh_db(|url| async move {
        let writer = PgStore::open(&url, OpenMode::CreateIfMissing).await.unwrap();
        let waiter = PgStore::open(&url, OpenMode::CreateIfMissing).await.unwrap();
        let probe = waiter.changes();
        while !probe.is_live() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let mut samples = Vec::new();
        for i in 0..200 {
            let mut changes = waiter.changes();
            let started = Instant::now();
            let mut tx = writer.begin_write().await.unwrap();
            tx.record_rate_event("k", i, i - 1).await.unwrap();
            tx.commit().await.unwrap();
            changes.changed().await;
            samples.push(started.elapsed());
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        eprintln!(
            "PostgreSQL wake-up (begin_write, one insert, commit + NOTIFY, LISTEN on another server): \
             median {:.2} ms, p99 {:.2} ms over {} commits",
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            samples.len()
        );
    })
    .await;
}
