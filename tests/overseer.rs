//! The overseer steps in (issue 15): `post_as_overseer`, `search_messages`
//! and the `overseer` sender marker, written once and run against every
//! backend: SQLite always, PostgreSQL when `MCP_BRIDGE_TEST_PG` names a
//! server (`scripts/with-postgres cargo test --test overseer`).

mod pg_support;

use std::sync::Arc;

use mcp_bridge::auth::{ServerKey, SessionToken};
use mcp_bridge::bridge::{
    AdminError, Auth, Bridge, CreateRequest, Created, DeliveredMessage, Error, ImportRequest, SendRequest,
    SessionId,
};
use mcp_bridge::clock::ManualClock;
use mcp_bridge::config::Limits;
use mcp_bridge::limits::RateLimit;
use mcp_bridge::redact::Redactor;
use mcp_bridge::store::admin::{AdminStore, AdminTx, AuditFilter, OVERSEER_SENDER};
use mcp_bridge::store::sqlite::OpenMode;
use mcp_bridge::store::{NewMessage, PgStore, SqliteStore, Store, Tx};
use serde_json::Value;

const T0: i64 = 1_800_000_000_000;

/// An AWS access key id of the documented shape (not a live key).
const FAKE_KEY: &str = "AKIAQWERTYUIOPASDFGH";

fn limits() -> Limits {
    Limits {
        // One send a minute: the overseer is not rate limited, agents are.
        send_rate: RateLimit::parse("1/min").unwrap(),
        read_rate: RateLimit::parse("off").unwrap(),
        max_messages_per_conversation: Some(6),
        ..Limits::default()
    }
}

fn bridge<S: Store>(store: S, clock: &ManualClock) -> Bridge<S> {
    Bridge::new(
        store,
        ServerKey::from_bytes([5; 32]),
        Redactor::builtin(),
        limits(),
        Arc::new(clock.clone()),
    )
}

fn seat(c: &Created, n: usize) -> Auth {
    let s = &c.seats[n];
    Auth {
        conversation_id: c.conversation_id.clone(),
        session_id: s.session_id,
        token: SessionToken::from_presented(s.token.as_deref().expect("a token seat")),
    }
}

async fn check<S: Store>(b: &Bridge<S>, c: &Created, n: usize) -> Vec<DeliveredMessage> {
    b.check_messages(seat(c, n)).await.unwrap().messages
}

async fn audit_of<S: AdminStore>(b: &Bridge<S>, action: &str) -> Vec<(String, Value)> {
    let mut tx = b.store().begin_read().await.unwrap();
    let filter = AuditFilter {
        action_glob: Some(action.into()),
        ..AuditFilter::default()
    };
    tx.audit_filtered(&filter, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, serde_json::from_str(&e.detail).unwrap()))
        .collect()
}

/// Every behaviour of the overseer's post and search on one backend.
async fn overseer_contract<S: AdminStore>(store: S) {
    let clock = ManualClock::new(T0);
    let b = bridge(store, &clock);
    let c = b
        .create_conversation(CreateRequest::team(
            "lead",
            vec!["backend".into(), "frontend".into()],
        ))
        .await
        .unwrap();
    let id = c.conversation_id.clone();

    // An agent's message: never from the overseer.
    b.send_message(SendRequest::to_all(seat(&c, 0), "Hello TEAM, plan at 100%_done"))
        .await
        .unwrap();

    // The overseer's post: redacted, stored for every seat, not rate limited
    // (the agent's one send a minute is spent; the human posts three times).
    let post = b
        .post_as_overseer(&id, &format!("Stop. Rotate {FAKE_KEY} first, then carry on."))
        .await
        .unwrap();
    assert_eq!(post.recipients, ["lead", "backend", "frontend"]);
    assert_eq!(post.redacted, ["aws_access_key"]);
    let second = b.post_as_overseer(&id, "second word").await.unwrap();
    assert!(second.message_id > post.message_id);
    assert!(
        b.send_message(SendRequest::to_all(seat(&c, 0), "too soon"))
            .await
            .is_err_and(|e| e.code() == "rate_limited"),
        "the agent's window still applies"
    );

    // Each seat receives each post exactly once, in order, marked; the
    // agent's message to the other seats is not marked.
    for n in 0..3 {
        let got = check(&b, &c, n).await;
        let (agent, overseer): (Vec<_>, Vec<_>) = got.iter().partition(|m| !m.from_overseer);
        assert_eq!(agent.len(), if n == 0 { 0 } else { 1 }, "seat {n}");
        for m in &agent {
            assert_eq!(m.from_role, "lead");
        }
        assert_eq!(
            overseer.iter().map(|m| m.seq).collect::<Vec<_>>(),
            [post.message_id, second.message_id],
            "seat {n}"
        );
        let m = overseer[0];
        assert_eq!(m.from_role, "overseer");
        assert_eq!(
            m.message,
            "Stop. Rotate [REDACTED:aws_access_key] first, then carry on."
        );
        assert_eq!(m.redacted, ["aws_access_key"]);
        assert_eq!(m.to, ["lead", "backend", "frontend"]);
        assert!(got.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
        assert!(check(&b, &c, n).await.is_empty(), "delivered once (seat {n})");
    }
    // History shows the same marker; the agent's own message stays unmarked.
    let history = b.read_history(seat(&c, 0), 0, 50).await.unwrap().messages;
    let marks: Vec<(&str, bool)> = history
        .iter()
        .map(|m| (m.from_role.as_str(), m.from_overseer))
        .collect();
    assert_eq!(marks, [("lead", false), ("overseer", true), ("overseer", true)]);

    // Audited under the admin actor: `cli`, then `dashboard`.
    b.acting_as_dashboard()
        .post_as_overseer(&id, "from the browser")
        .await
        .unwrap();
    let entries = audit_of(&b, "overseer.post").await;
    let actors: Vec<&str> = entries.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actors, ["cli", "cli", "dashboard"]);
    let detail = &entries[0].1;
    assert_eq!(detail["message_id"], post.message_id);
    assert_eq!(detail["redacted"], serde_json::json!(["aws_access_key"]));
    assert_eq!(detail["to"], serde_json::json!(["a", "b", "c"]));
    assert!(detail["bytes"].as_u64().unwrap() > 40);
    assert!(!detail.to_string().contains(FAKE_KEY), "no secret in the trail");

    // Search: case-insensitive, newest first, literal, over redacted text.
    let hits = b.search_messages("hello team", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].from_role.as_str(), hits[0].conversation_id.as_str()),
        ("lead", id.as_str())
    );
    let hits = b.search_messages("ROTATE", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].from_role, "overseer");
    assert_eq!(hits[0].message_id, post.message_id);
    assert!(hits[0].body.contains("[REDACTED:aws_access_key]"));
    assert!(
        b.search_messages(FAKE_KEY, 10).await.unwrap().is_empty(),
        "the secret was never stored"
    );
    assert!(b.search_messages("QWERTY", 10).await.unwrap().is_empty());
    // Wildcards are literal, short queries work, quotes are no syntax.
    let hits = b.search_messages("%_", 10).await.unwrap();
    assert_eq!(hits.len(), 1, "only the message with a literal %_");
    assert!(b.search_messages("0%", 10).await.unwrap().len() == 1);
    assert!(b.search_messages("\"OR\" NEAR(*", 10).await.unwrap().is_empty());
    let words = b.search_messages("r", 200).await.unwrap();
    let seqs: Vec<i64> = words.iter().map(|h| h.message_id).collect();
    assert!(
        seqs.len() >= 3 && seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    let limited = b.search_messages("r", 2).await.unwrap();
    assert_eq!(
        limited.iter().map(|h| h.message_id).collect::<Vec<_>>(),
        seqs[..2]
    );
    for (q, limit, field) in [
        ("", 5, "query"),
        ("x\ny", 5, "query"),
        ("ok", 0, "limit"),
        ("ok", 201, "limit"),
    ] {
        match b.search_messages(q, limit).await {
            Err(AdminError::InvalidSearch { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{q:?}/{limit}: {other:?}"),
        }
    }

    // Refusals store nothing: bad message, full conversation, unknown, closed.
    let stored = || async {
        let mut tx = b.store().begin_read().await.unwrap();
        tx.usage(&id).await.unwrap().messages
    };
    assert_eq!(stored().await, 4);
    match b.post_as_overseer(&id, "   ").await {
        Err(AdminError::Refused(e)) => assert_eq!(e.code(), "invalid_argument"),
        other => panic!("{other:?}"),
    }
    let huge = "x".repeat(limits().max_message_bytes + 1);
    match b.post_as_overseer(&id, &huge).await {
        Err(AdminError::Refused(e)) => assert_eq!(e.code(), "message_too_large"),
        other => panic!("{other:?}"),
    }
    b.post_as_overseer(&id, "five").await.unwrap();
    b.post_as_overseer(&id, "six").await.unwrap();
    match b.post_as_overseer(&id, "seven").await {
        Err(AdminError::Refused(e @ Error::QuotaExceeded { .. })) => {
            assert!(e.to_string().contains("max_messages_per_conversation"), "{e}")
        }
        other => panic!("quota: {other:?}"),
    }
    assert_eq!(stored().await, 6);
    assert!(matches!(
        b.post_as_overseer("conv_00000000000000000000000000000000", "hi")
            .await,
        Err(AdminError::NotFound { .. })
    ));
    let other = b
        .create_conversation(CreateRequest::pair("x", "y"))
        .await
        .unwrap();
    b.close_conversation(&other.conversation_id).await.unwrap();
    match b.post_as_overseer(&other.conversation_id, "anyone there?").await {
        Err(e @ AdminError::Ended { state: "closed", .. }) => {
            assert!(e.to_string().contains("posting a message"), "{e}")
        }
        other => panic!("closed: {other:?}"),
    }
    let expiring = b
        .create_conversation(CreateRequest::pair("x", "y"))
        .await
        .unwrap();
    clock.advance(365 * 24 * 3600 * 1000);
    assert!(matches!(
        b.post_as_overseer(&expiring.conversation_id, "late").await,
        Err(AdminError::Ended { state: "expired", .. })
    ));
    assert_eq!(
        audit_of(&b, "overseer.post").await.len(),
        5,
        "refusals add no post entry"
    );
}

/// The stored sender is a seat or the overseer marker, and nothing else:
/// the database refuses a role name or a differently spelt marker.
async fn sender_domain<S: Store>(store: S) {
    let clock = ManualClock::new(T0);
    let b = bridge(store.clone(), &clock);
    let c = b
        .create_conversation(CreateRequest::pair("x", "y"))
        .await
        .unwrap();
    let message = |sender: &str| NewMessage {
        conversation_id: c.conversation_id.clone(),
        sender: sender.into(),
        body: "hi".into(),
        action_type: "info".into(),
        files: vec![],
        redactions: vec![],
        reply_to: None,
        created_at: T0,
    };
    for ok in ["a", "p", OVERSEER_SENDER] {
        let mut tx = store.begin_write().await.unwrap();
        tx.insert_message(&message(ok), &["b".into()]).await.unwrap();
        drop(tx);
    }
    for bad in ["Overseer", "overseer ", "x", "q", "ab", ""] {
        let mut tx = store.begin_write().await.unwrap();
        assert!(
            tx.insert_message(&message(bad), &["b".into()]).await.is_err(),
            "sender {bad:?} must be refused"
        );
        drop(tx);
    }
}

#[tokio::test]
async fn sqlite_overseer_posts_and_searches() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("o.db"), OpenMode::CreateIfMissing)
        .await
        .unwrap();
    overseer_contract(store).await;
}

#[tokio::test]
async fn sqlite_refuses_any_other_sender() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db"), OpenMode::CreateIfMissing)
        .await
        .unwrap();
    sender_domain(store).await;
}

#[tokio::test]
async fn postgres_overseer_posts_and_searches() {
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, mcp_bridge::store::postgres::OpenMode::CreateIfMissing)
            .await
            .unwrap();
        overseer_contract(store.clone()).await;
        store.close();
    })
    .await;
}

#[tokio::test]
async fn postgres_refuses_any_other_sender() {
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, mcp_bridge::store::postgres::OpenMode::CreateIfMissing)
            .await
            .unwrap();
        sender_domain(store.clone()).await;
        store.close();
    })
    .await;
}

/// An export carries the overseer's posts, and importing it keeps them
/// the overseer's (a file naming any other unknown sender is refused).
#[tokio::test]
async fn an_export_round_trip_keeps_the_overseer_marker() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("x.db"), OpenMode::CreateIfMissing)
        .await
        .unwrap();
    let b = bridge(store, &ManualClock::new(T0));
    let c = b
        .create_conversation(CreateRequest::pair("lead", "dev"))
        .await
        .unwrap();
    b.post_as_overseer(&c.conversation_id, "ship it").await.unwrap();
    let export = b.export_conversation(&c.conversation_id).await.unwrap();
    assert_eq!(export.messages[0].sender, OVERSEER_SENDER);
    let mut forged = export.clone();
    forged.messages[0].sender = "boss".into();
    let req = |e| ImportRequest {
        export: e,
        keep_id: false,
        ttl: Some(std::time::Duration::from_secs(3600)),
    };
    assert!(matches!(
        b.import_conversation(req(forged)).await,
        Err(AdminError::BadImport { .. })
    ));
    let imported = b.import_conversation(req(export)).await.unwrap();
    let token = &imported.tokens[1];
    let auth = Auth {
        conversation_id: imported.conversation_id.clone(),
        session_id: SessionId::B,
        token: SessionToken::from_presented(token.token.as_deref().unwrap()),
    };
    let got = b.check_messages(auth).await.unwrap().messages;
    assert_eq!(got.len(), 1);
    assert!(got[0].from_overseer);
    assert_eq!(
        (got[0].from_role.as_str(), got[0].message.as_str()),
        ("overseer", "ship it")
    );
}

/// A role spelt like the overseer is refused at creation, so no seat can
/// ever label its messages `overseer`.
#[tokio::test]
async fn no_seat_can_be_the_overseer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("r.db"), OpenMode::CreateIfMissing)
        .await
        .unwrap();
    let b = bridge(store, &ManualClock::new(T0));
    for role in ["overseer", "Overseer", "OVERSEER"] {
        let err = b
            .create_conversation(CreateRequest::pair("lead", role))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{role}");
    }
}
