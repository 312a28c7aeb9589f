//! Issue 17 ("Scale out"): a server that stops wakes every wait at once
//! with an empty result, not an error, so no client waits out a grace
//! period or sees its call fail (`Bridge::stop_waits`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mcp_bridge::auth::{ServerKey, SessionToken};
use mcp_bridge::bridge::{ActionType, Auth, Bridge, CreateRequest, Created, InHand, SendRequest, SessionId};
use mcp_bridge::clock::SystemClock;
use mcp_bridge::config::Limits;
use mcp_bridge::limits::RateLimit;
use mcp_bridge::redact::Redactor;
use mcp_bridge::store::SqliteStore;
use mcp_bridge::store::sqlite::OpenMode;

async fn bridge_on(path: &Path) -> Bridge<SqliteStore> {
    let store = SqliteStore::open(path, OpenMode::CreateIfMissing).await.unwrap();
    let limits = Limits {
        send_rate: RateLimit::parse("off").unwrap(),
        read_rate: RateLimit::parse("off").unwrap(),
        ..Limits::default()
    };
    Bridge::new(
        store,
        ServerKey::from_bytes([9; 32]),
        Redactor::builtin(),
        limits,
        Arc::new(SystemClock),
    )
}

fn auth_b(c: &Created) -> Auth {
    auth(c, SessionId::B)
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

/// Far longer than the test may take: a wait that returns did so because
/// it was woken.
const LONG: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn stopping_wakes_a_wait_in_progress_with_an_empty_result() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = bridge_on(&dir.path().join("bridge.db")).await;
    let c = bridge
        .create_conversation(CreateRequest::pair("backend", "frontend"))
        .await
        .unwrap();
    let waiter = {
        let bridge = bridge.clone();
        let auth = auth_b(&c);
        tokio::spawn(async move { bridge.wait_for_messages(auth, LONG, &InHand).await })
    };
    // Let the wait reach its sleep, then stop through another clone.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "the wait must be waiting before the stop");
    bridge.clone().stop_waits();
    let waited = tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("the stop must end the wait")
        .unwrap()
        .expect("an empty result, not an error")
        .value;
    assert!(waited.messages.is_empty());
    assert_eq!(waited.remaining, 0);
}

#[tokio::test]
async fn after_the_stop_a_wait_returns_at_once_but_still_delivers_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = bridge_on(&dir.path().join("bridge.db")).await;
    let c = bridge
        .create_conversation(CreateRequest::pair("backend", "frontend"))
        .await
        .unwrap();
    bridge.stop_waits();
    let empty = tokio::time::timeout(
        Duration::from_secs(60),
        bridge.wait_for_messages(auth_b(&c), LONG, &InHand),
    )
    .await
    .expect("a wait after the stop returns at once")
    .unwrap()
    .value;
    assert!(empty.messages.is_empty());

    bridge
        .send_message(SendRequest {
            auth: auth(&c, SessionId::A).into(),
            message: "still delivered".into(),
            action_type: ActionType::Info,
            files_involved: vec![],
            to: None,
            reply_to: None,
        })
        .await
        .unwrap();
    let got = bridge
        .wait_for_messages(auth_b(&c), LONG, &InHand)
        .await
        .unwrap()
        .value;
    let bodies: Vec<&str> = got.messages.iter().map(|m| m.message.as_str()).collect();
    assert_eq!(bodies, ["still delivered"]);
    assert!(!got.timed_out);
}
