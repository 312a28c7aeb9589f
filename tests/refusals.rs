//! Refused calls and the audit trail: what a hostile caller can make the
//! bridge record, and how much. Regression tests for issue 10 ("Hostile ids
//! reach the append-only audit trail", "Unbounded growth without a token").
//! Real SQLite files, an injected clock, no sleeping.

use std::path::Path;
use std::sync::Arc;

use mcp_bridge::auth::{ServerKey, SessionToken};
use mcp_bridge::bridge::{ActionType, Auth, Bridge, CreateRequest, Created, Error, SendRequest, SessionId};
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

fn auth_raw(conversation_id: &str, session: SessionId, token: &str) -> Auth {
    Auth {
        conversation_id: conversation_id.to_owned(),
        session_id: session,
        token: SessionToken::from_presented(token),
    }
}

fn send_as(auth: Auth) -> SendRequest {
    SendRequest {
        auth: auth.into(),
        message: "hello".into(),
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

/// Every audit row as `(actor, action, conversation_id, detail)`.
async fn audit_rows(path: &Path) -> Vec<(String, String, Option<String>, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT actor, action, conversation_id, detail FROM audit ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn refusals(path: &Path) -> Vec<(String, String, Option<String>, String)> {
    audit_rows(path)
        .await
        .into_iter()
        .filter(|r| r.1.ends_with(".refused"))
        .collect()
}

#[tokio::test]
async fn a_refused_call_never_stores_a_hostile_conversation_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let b = bridge_on(&db, &clock, unlimited()).await;
    let hostile = [
        // An AWS key id and a GitHub token pasted into the wrong field.
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
        // Escape sequences that would erase the overseer's line.
        "conv_\x1b[2K\r\x1b[1Aall good",
        // The right shape, but no such conversation: made up, not recorded.
        "conv_0123456789abcdef0123456789abcdef",
    ];
    for id in hostile {
        let e = b
            .send_message(send_as(auth_raw(id, SessionId::A, "mcpb_x")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "conversation_not_found");
        b.check_messages(auth_raw(id, SessionId::B, "mcpb_x"))
            .await
            .unwrap_err();
        b.record_invalid_call(
            "message.send",
            Some(id),
            &Error::invalid("message", "is required"),
        )
        .await;
    }
    b.flush_refusal_counts().await.unwrap();
    let rows = audit_rows(&db).await;
    assert!(!rows.is_empty());
    for (actor, _, conversation, detail) in &rows {
        let all = format!("{actor} {conversation:?} {detail}");
        for id in hostile {
            assert!(!all.contains(id), "{all}");
        }
        assert!(
            !all.contains("AKIA") && !all.contains("ghp_") && !all.contains('\x1b'),
            "{all}"
        );
        assert_eq!(actor, "unauthenticated");
        assert_eq!(conversation, &None);
    }
}

#[tokio::test]
async fn a_refusal_names_only_an_existing_conversation_and_its_seat() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let b = bridge_on(&db, &clock, unlimited()).await;
    let c = create(&b).await;
    b.send_message(send_as(auth_raw(&c.conversation_id, SessionId::B, "mcpb_wrong")))
        .await
        .unwrap_err();
    let rows = refusals(&db).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, format!("{}/b", c.conversation_id));
    assert_eq!(rows[0].2.as_deref(), Some(c.conversation_id.as_str()));
    assert_eq!(rows[0].3, r#"{"code":"invalid_token"}"#);
}

#[tokio::test]
async fn an_unknown_field_name_never_reaches_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let b = bridge_on(&db, &clock, unlimited()).await;
    // What the schema check reports for `{"ghp_...": 1}` or a key holding escapes.
    for name in ["ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "x\x1b[31m"] {
        let e = Error::invalid(name, "unknown field; send_to_partner accepts only: message");
        b.record_invalid_call("message.send", None, &e).await;
        clock.advance(61_000);
    }
    // A field the schema names is kept; a made-up shape is not.
    b.record_invalid_call(
        "status.update",
        None,
        &Error::invalid("files_involved[3]", "too long"),
    )
    .await;
    b.record_invalid_call("status.update", None, &Error::invalid("NOTE\u{9b}", "bad"))
        .await;
    b.flush_refusal_counts().await.unwrap();
    let details: Vec<String> = refusals(&db).await.into_iter().map(|r| r.3).collect();
    let all = details.join(" ");
    assert!(
        !all.contains("ghp_") && !all.contains('\x1b') && !all.contains('\u{9b}'),
        "{all}"
    );
    assert!(all.contains(r#""field":"(unknown field)""#), "{all}");
    assert!(all.contains(r#""field":"files_involved[3]""#), "{all}");
}

#[tokio::test]
async fn a_flood_of_refusals_adds_a_bounded_number_of_audit_rows_and_loses_no_count() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let b = bridge_on(&db, &clock, unlimited()).await;
    let c = create(&b).await;
    // 1,000 refused calls in one window (wrong token), from a caller who
    // could otherwise add one permanent row each.
    for _ in 0..1000 {
        b.send_message(send_as(auth_raw(&c.conversation_id, SessionId::A, "mcpb_wrong")))
            .await
            .unwrap_err();
        clock.advance(10);
    }
    assert_eq!(
        refusals(&db).await.len(),
        1,
        "only the first refusal is audited at once"
    );

    // The window closes; the next refusal writes the count, then opens a new window.
    clock.advance(60_000);
    b.send_message(send_as(auth_raw(&c.conversation_id, SessionId::A, "mcpb_wrong")))
        .await
        .unwrap_err();
    let rows = refusals(&db).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let counted: serde_json::Value = serde_json::from_str(&rows[1].3).unwrap();
    assert_eq!(counted["code"], "invalid_token");
    assert_eq!(counted["repeats"], 999);
    assert_eq!(counted["first_at"], T0 + 10);
    assert_eq!(counted["last_at"], T0 + 9_990);
    assert_eq!(rows[2].3, r#"{"code":"invalid_token"}"#);

    // Repeats in an open window reach the trail when the overseer reads it.
    for _ in 0..5 {
        b.send_message(send_as(auth_raw(&c.conversation_id, SessionId::A, "mcpb_wrong")))
            .await
            .unwrap_err();
    }
    b.flush_refusal_counts().await.unwrap();
    let rows = refusals(&db).await;
    assert_eq!(rows.len(), 4);
    let counted: serde_json::Value = serde_json::from_str(&rows[3].3).unwrap();
    assert_eq!(counted["repeats"], 5);
    let total: i64 = rows
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(&r.3).unwrap()["repeats"]
                .as_i64()
                .unwrap_or(1)
        })
        .sum();
    assert_eq!(total, 1006, "every refusal is in the record");
    assert!(b.verify_audit().await.is_ok());
}

#[tokio::test]
async fn rate_limit_refusals_are_coalesced_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let limits = Limits {
        send_rate: RateLimit::parse("1/min").unwrap(),
        ..unlimited()
    };
    let b = bridge_on(&db, &clock, limits).await;
    let c = create(&b).await;
    let token = c.session_a_token.as_deref().unwrap().to_owned();
    b.send_message(send_as(auth_raw(&c.conversation_id, SessionId::A, &token)))
        .await
        .unwrap();
    for _ in 0..200 {
        let e = b
            .send_message(send_as(auth_raw(&c.conversation_id, SessionId::A, &token)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "rate_limited");
    }
    b.flush_refusal_counts().await.unwrap();
    let rows = refusals(&db).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[1].3.contains(r#""repeats":199"#), "{}", rows[1].3);
}

#[tokio::test]
async fn creating_conversations_is_limited_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let limits = Limits {
        max_creates_per_minute: 5,
        ..unlimited()
    };
    let p1 = bridge_on(&db, &clock, limits.clone()).await;
    let p2 = bridge_on(&db, &clock, limits).await;
    for _ in 0..5 {
        create(&p1).await;
    }
    let e = p1
        .create_conversation(CreateRequest::pair("backend", "frontend"))
        .await
        .unwrap_err();
    match &e {
        Error::RateLimited { retry_after_ms, .. } => {
            assert!(*retry_after_ms > 0 && *retry_after_ms <= 60_000)
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("server process"), "{e}");
    // Another agent's process has its own budget: one flood starves no one else.
    create(&p2).await;
    clock.advance(60_000);
    create(&p1).await;
}

#[tokio::test]
async fn a_role_that_is_a_secret_is_refused_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let clock = ManualClock::new(T0);
    let b = bridge_on(&db, &clock, unlimited()).await;
    let e = b
        .create_conversation(CreateRequest::pair(
            "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
            "frontend",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert_eq!(e.field(), Some("my_role"));
    b.flush_refusal_counts().await.unwrap();
    for (_, _, _, detail) in audit_rows(&db).await {
        assert!(!detail.contains("ghp_"), "{detail}");
    }
}
