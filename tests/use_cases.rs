//! The use cases against a real SQLite file, with an injected clock so
//! expiry and rate windows are tested without sleeping. Several `Bridge`s
//! on one file, each with its own connection pool, stand in for several
//! server processes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mcp_bridge::auth::{ServerKey, SessionToken};
use mcp_bridge::bridge::{
    ActionType, Auth, Bridge, CreateRequest, Created, Error, SendRequest, SessionId, StatusKind,
    StatusRequest,
};
use mcp_bridge::clock::ManualClock;
use mcp_bridge::config::Limits;
use mcp_bridge::limits::RateLimit;
use mcp_bridge::redact::Redactor;
use mcp_bridge::store::SqliteStore;
use mcp_bridge::store::sqlite::OpenMode;

const T0: i64 = 1_800_000_000_000;

async fn bridge_on(path: &Path, clock: &ManualClock, limits: Limits) -> Bridge<SqliteStore> {
    let store = SqliteStore::open(path, OpenMode::CreateIfMissing).await.unwrap();
    Bridge::new(
        store,
        ServerKey::from_bytes([9; 32]),
        Redactor::builtin(),
        limits,
        Arc::new(clock.clone()),
    )
}

fn unlimited() -> Limits {
    Limits {
        send_rate: RateLimit::parse("off").unwrap(),
        read_rate: RateLimit::parse("off").unwrap(),
        ..Limits::default()
    }
}

fn auth(c: &Created, session: SessionId) -> Auth {
    let token = c
        .seats
        .iter()
        .find(|seat| seat.session_id == session)
        .and_then(|seat| seat.token.as_deref())
        .expect("a token seat");
    Auth {
        conversation_id: c.conversation_id.clone(),
        session_id: session,
        token: SessionToken::from_presented(token),
    }
}

fn send(c: &Created, session: SessionId, body: &str) -> SendRequest {
    SendRequest {
        auth: auth(c, session).into(),
        message: body.to_owned(),
        action_type: ActionType::Info,
        files_involved: vec![],
        to: None,
        reply_to: None,
    }
}

async fn create(b: &Bridge<SqliteStore>) -> Created {
    b.create_conversation(CreateRequest::pair("backend", "frontend"))
        .await
        .unwrap()
}

async fn count(path: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn a_conversation_expires_after_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let limits = Limits {
        conversation_ttl: Duration::from_secs(3 * 3600),
        ..unlimited()
    };
    let b = bridge_on(&db, &clock, limits).await;
    let c = create(&b).await;
    clock.advance(3 * 3600 * 1000 - 1);
    b.send_message(send(&c, SessionId::A, "still open"))
        .await
        .unwrap();
    clock.advance(1);
    let err = b
        .send_message(send(&c, SessionId::A, "too late"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "conversation_expired");
    let err = b.check_messages(auth(&c, SessionId::B)).await.unwrap_err();
    assert_eq!(err.code(), "conversation_expired");
    assert_eq!(count(&db, "SELECT count(*) FROM messages").await, 1);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM audit WHERE action = 'message.send.refused'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn the_send_limit_holds_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let limits = Limits {
        send_rate: RateLimit::parse("5/min").unwrap(),
        ..unlimited()
    };
    let p1 = bridge_on(&db, &clock, limits.clone()).await;
    let p2 = bridge_on(&db, &clock, limits).await;
    let c = create(&p1).await;
    let mut ok = 0;
    for i in 0..10 {
        let p = if i % 2 == 0 { &p1 } else { &p2 };
        match p.send_message(send(&c, SessionId::A, &format!("m{i}"))).await {
            Ok(_) => ok += 1,
            Err(Error::RateLimited {
                window,
                retry_after_ms,
                ..
            }) => {
                assert_eq!(window, "5 per minute");
                assert!(retry_after_ms > 0 && retry_after_ms <= 60_000, "{retry_after_ms}");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 5);
    // The other seat has its own budget.
    p2.send_message(send(&c, SessionId::B, "reply")).await.unwrap();
    clock.advance(60_000);
    p2.send_message(send(&c, SessionId::A, "after the window"))
        .await
        .unwrap();
    assert_eq!(count(&db, "SELECT count(*) FROM messages").await, 7);
}

#[tokio::test]
async fn reads_have_their_own_budget() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let limits = Limits {
        send_rate: RateLimit::parse("1/min").unwrap(),
        read_rate: RateLimit::parse("3/min").unwrap(),
        ..unlimited()
    };
    let b = bridge_on(&db, &clock, limits).await;
    let c = create(&b).await;
    b.send_message(send(&c, SessionId::A, "one")).await.unwrap();
    // A full send window does not stop polling.
    for _ in 0..3 {
        b.check_messages(auth(&c, SessionId::A)).await.unwrap();
    }
    assert_eq!(
        b.check_messages(auth(&c, SessionId::A)).await.unwrap_err().code(),
        "rate_limited"
    );
}

#[tokio::test]
async fn a_token_is_bound_to_its_conversation_and_seat() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let b = bridge_on(&db, &clock, unlimited()).await;
    let c1 = create(&b).await;
    let c2 = create(&b).await;
    let mut wrong_seat = auth(&c1, SessionId::B);
    wrong_seat.token = SessionToken::from_presented(c1.session_a_token.as_deref().unwrap());
    assert_eq!(
        b.check_messages(wrong_seat).await.unwrap_err().code(),
        "invalid_token"
    );
    let mut other_conv = auth(&c1, SessionId::A);
    other_conv.token = SessionToken::from_presented(c2.session_a_token.as_deref().unwrap());
    assert_eq!(
        b.check_messages(other_conv).await.unwrap_err().code(),
        "invalid_token"
    );
    let mut unknown = auth(&c1, SessionId::A);
    unknown.conversation_id = "conv_00000000000000000000000000000000".into();
    assert_eq!(
        b.check_messages(unknown).await.unwrap_err().code(),
        "conversation_not_found"
    );
    let err = b.check_messages(auth(&c1, SessionId::A)).await;
    assert!(err.is_ok());
    // Refusals are audited without the token.
    let refused = count(
        &db,
        "SELECT count(*) FROM audit WHERE action = 'message.check.refused'",
    )
    .await;
    assert_eq!(refused, 3);
    let leaked = count(
        &db,
        &format!(
            "SELECT count(*) FROM audit WHERE detail LIKE '%{}%'",
            &c1.session_a_token.as_deref().unwrap()[5..20]
        ),
    )
    .await;
    assert_eq!(leaked, 0);
}

#[tokio::test]
async fn secrets_are_redacted_before_storage() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let b = bridge_on(&db, &clock, unlimited()).await;
    let c = create(&b).await;
    let key = "AKIAQWERTYUIOPASDFGH";
    let sent = b
        .send_message(SendRequest {
            files_involved: vec![format!("config/{key}.txt")],
            ..send(&c, SessionId::A, &format!("the key is {key}"))
        })
        .await
        .unwrap();
    assert_eq!(sent.redacted, vec!["aws_access_key".to_owned()]);
    b.update_status(StatusRequest {
        auth: auth(&c, SessionId::A).into(),
        status: StatusKind::Blocked,
        note: Some(format!("need {key}")),
    })
    .await
    .unwrap();
    let inbox = b.check_messages(auth(&c, SessionId::B)).await.unwrap();
    assert_eq!(inbox.messages[0].message, "the key is [REDACTED:aws_access_key]");
    assert_eq!(
        inbox.messages[0].files_involved,
        vec!["config/[REDACTED:aws_access_key].txt".to_owned()]
    );
    let partner = b.partner_status(auth(&c, SessionId::B)).await.unwrap();
    assert_eq!(partner.note.as_deref(), Some("need [REDACTED:aws_access_key]"));
    assert!(partner.alive);
    let q = format!(
        "SELECT (SELECT count(*) FROM messages WHERE body LIKE '%{key}%' OR files LIKE '%{key}%') + \
         (SELECT count(*) FROM status WHERE note LIKE '%{key}%') + (SELECT count(*) FROM audit WHERE detail LIKE '%{key}%')"
    );
    assert_eq!(count(&db, &q).await, 0);
}

#[tokio::test]
async fn liveness_follows_the_heartbeat_window() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let limits = Limits {
        heartbeat_window: Duration::from_secs(60),
        ..unlimited()
    };
    let b = bridge_on(&db, &clock, limits).await;
    let c = create(&b).await;
    let before = b.partner_status(auth(&c, SessionId::A)).await.unwrap();
    assert_eq!((before.status, before.alive), (None, false));
    b.update_status(StatusRequest {
        auth: auth(&c, SessionId::B).into(),
        status: StatusKind::Working,
        note: None,
    })
    .await
    .unwrap();
    clock.advance(60_000);
    let p = b.partner_status(auth(&c, SessionId::A)).await.unwrap();
    assert_eq!(
        (p.status.as_deref(), p.alive, p.seconds_since_heartbeat),
        (Some("working"), true, Some(60))
    );
    clock.advance(1);
    assert!(!b.partner_status(auth(&c, SessionId::A)).await.unwrap().alive);
}

#[tokio::test]
async fn a_check_returns_at_most_a_batch_and_says_how_many_remain() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let limits = Limits {
        max_batch: 3,
        ..unlimited()
    };
    let b = bridge_on(&db, &clock, limits).await;
    let c = create(&b).await;
    for i in 0..5 {
        b.send_message(send(&c, SessionId::A, &format!("m{i}")))
            .await
            .unwrap();
    }
    let first = b.check_messages(auth(&c, SessionId::B)).await.unwrap();
    assert_eq!((first.messages.len(), first.remaining), (3, 2));
    let second = b.check_messages(auth(&c, SessionId::B)).await.unwrap();
    assert_eq!((second.messages.len(), second.remaining), (2, 0));
    assert_eq!(second.messages[1].message, "m4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_is_delivered_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let mut procs = vec![];
    for _ in 0..7 {
        procs.push(bridge_on(&db, &clock, unlimited()).await);
    }
    let c = Arc::new(create(&procs[0]).await);
    const PER_SENDER: usize = 50;
    let mut senders = vec![];
    for (k, b) in procs.iter().take(4).enumerate() {
        let b = b.clone();
        let c = c.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..PER_SENDER {
                b.send_message(send(&c, SessionId::A, &format!("s{k}-{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    // Readers stop once the senders are done and a check comes back empty,
    // so nothing is left behind however the scheduler orders the tasks.
    let senders_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = vec![];
    for r in 0..3 {
        let b = procs[4 + r].clone();
        let c = c.clone();
        let done = senders_done.clone();
        readers.push(tokio::spawn(async move {
            let mut got = vec![];
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let inbox = b.check_messages(auth(&c, SessionId::B)).await.unwrap();
                if inbox.messages.is_empty() {
                    if finished {
                        break;
                    }
                    tokio::task::yield_now().await;
                } else {
                    got.extend(inbox.messages.into_iter().map(|m| (m.seq, m.message)));
                }
            }
            got
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    senders_done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut all = vec![];
    for r in readers {
        let got = r.await.unwrap();
        assert!(
            got.windows(2).all(|w| w[0].0 < w[1].0),
            "a reader saw messages out of order"
        );
        all.extend(got);
    }
    let tail = procs[0].check_messages(auth(&c, SessionId::B)).await.unwrap();
    assert!(
        tail.messages.is_empty(),
        "messages left unread after every reader finished"
    );
    all.sort();
    assert_eq!(all.len(), 4 * PER_SENDER, "every message exactly once");
    let mut bodies: Vec<&str> = all.iter().map(|(_, b)| b.as_str()).collect();
    bodies.dedup();
    assert_eq!(bodies.len(), 4 * PER_SENDER, "no duplicates");
    for k in 0..4 {
        let order: Vec<usize> = all
            .iter()
            .filter_map(|(_, b)| b.strip_prefix(&format!("s{k}-")).map(|i| i.parse().unwrap()))
            .collect();
        assert_eq!(
            order,
            (0..PER_SENDER).collect::<Vec<_>>(),
            "sender {k} out of order"
        );
    }
    assert!(procs[0].verify_audit().await.is_ok());
}

#[tokio::test]
async fn the_audit_chain_covers_every_action_and_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let b = bridge_on(&db, &clock, unlimited()).await;
    let c = create(&b).await;
    b.send_message(send(&c, SessionId::A, "hi")).await.unwrap();
    b.check_messages(auth(&c, SessionId::B)).await.unwrap();
    b.partner_status(auth(&c, SessionId::B)).await.unwrap();
    let _ = b
        .send_message(send(&c, SessionId::A, &"x".repeat(60_000)))
        .await
        .unwrap_err();
    let report = b.verify_audit().await.unwrap();
    assert_eq!(report.entries, 5);
    let actions: i64 = count(
        &db,
        "SELECT count(DISTINCT action) FROM audit WHERE action IN ('conversation.create','message.send','message.check','status.check','message.send.refused')",
    )
    .await;
    assert_eq!(actions, 5);
}
