//! The store's team statements (addressed messages, replies, receipts,
//! per-member history, quota totals, agents' seats), written once and run
//! against both backends: SQLite always, PostgreSQL when
//! `MCP_BRIDGE_TEST_PG` is set.

mod pg_support;

use mcp_bridge::auth::TokenHash;
use mcp_bridge::store::agents::{AgentRole, AgentTx};
use mcp_bridge::store::{
    Conversation, DeliveryState, NewMessage, Participant, PgStore, SqliteStore, Status, Store, Tx, Usage,
};

const C: &str = "conv_cccccccccccccccccccccccccccccccc";
const D: &str = "conv_dddddddddddddddddddddddddddddddd";

fn seat(conversation_id: &str, session_id: &str, agent_id: Option<i64>) -> Participant {
    Participant {
        conversation_id: conversation_id.into(),
        session_id: session_id.into(),
        role: format!("role-{session_id}"),
        token_hash: agent_id.is_none().then(|| TokenHash(vec![7; 32])),
        agent_id,
        token_created_at: 1,
        revoked_at: None,
    }
}

fn message(sender: &str, body: &str, reply_to: Option<i64>) -> NewMessage {
    NewMessage {
        conversation_id: C.into(),
        sender: sender.into(),
        body: body.into(),
        action_type: "info".into(),
        files: vec!["src/lib.rs".into()],
        redactions: vec![],
        reply_to,
        created_at: 100,
    }
}

async fn teams_contract<S: Store>(store: S) {
    let mut tx = store.begin_write().await.unwrap();
    let agent = tx
        .insert_agent("worker", AgentRole::Agent, &TokenHash(vec![9; 32]), 5)
        .await
        .unwrap();
    for (id, created_at) in [(C, 10), (D, 20)] {
        tx.insert_conversation(&Conversation {
            id: id.into(),
            created_at,
            expires_at: 1_000_000,
            closed_at: None,
        })
        .await
        .unwrap();
    }
    tx.insert_participant(&seat(C, "a", None)).await.unwrap();
    tx.insert_participant(&seat(C, "b", Some(agent))).await.unwrap();
    tx.insert_participant(&seat(C, "c", None)).await.unwrap();
    tx.insert_participant(&seat(D, "a", Some(agent))).await.unwrap();
    tx.insert_participant(&seat(D, "b", None)).await.unwrap();
    tx.commit().await.unwrap();

    // A seat is held by a token or an agent: never both, never neither,
    // and never by an agent that is not registered.
    for bad in [
        seat(C, "f", Some(agent + 1)),
        Participant {
            agent_id: Some(agent),
            ..seat(C, "d", None)
        },
        Participant {
            token_hash: None,
            ..seat(C, "e", None)
        },
    ] {
        let mut tx = store.begin_write().await.unwrap();
        assert!(tx.insert_participant(&bad).await.is_err(), "{bad:?}");
    }

    let mut tx = store.begin_write().await.unwrap();
    let to_b = tx
        .insert_message(&message("a", "to b only", None), &["b".into()])
        .await
        .unwrap();
    let to_all = tx
        .insert_message(&message("a", "to everyone", None), &["b".into(), "c".into()])
        .await
        .unwrap();
    let reply = tx
        .insert_message(&message("c", "a reply", Some(to_all)), &["a".into()])
        .await
        .unwrap();

    let stored = tx.message(C, to_all).await.unwrap().unwrap();
    assert_eq!(stored.recipients, ["b", "c"]);
    assert_eq!(stored.reply_to, None);
    assert_eq!(
        tx.message(C, reply).await.unwrap().unwrap().reply_to,
        Some(to_all)
    );
    assert!(
        tx.message(D, to_all).await.unwrap().is_none(),
        "a message of another conversation"
    );

    // Each member sees what it sent or was sent.
    let seqs = |v: Vec<mcp_bridge::store::Message>| v.into_iter().map(|m| m.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(tx.history_of(C, "a", 0, 10).await.unwrap()),
        [to_b, to_all, reply]
    );
    assert_eq!(seqs(tx.history_of(C, "b", 0, 10).await.unwrap()), [to_b, to_all]);
    assert_eq!(seqs(tx.history_of(C, "c", 0, 10).await.unwrap()), [to_all, reply]);
    assert_eq!(seqs(tx.history_of(C, "c", to_all, 10).await.unwrap()), [reply]);
    assert_eq!(seqs(tx.history_of(C, "b", 0, 1).await.unwrap()), [to_b]);

    // Receipts and unread counts follow deliveries.
    tx.take_unread(C, "b", 200, 10).await.unwrap();
    assert_eq!(
        tx.receipts(to_all).await.unwrap(),
        [
            DeliveryState {
                recipient: "b".into(),
                read_at: Some(200)
            },
            DeliveryState {
                recipient: "c".into(),
                read_at: None
            },
        ]
    );
    assert_eq!(
        tx.unread_by_recipient(C).await.unwrap(),
        [("a".to_owned(), 1), ("c".to_owned(), 1)]
    );

    // Quota totals: messages, and bytes of body plus stored paths.
    let files = r#"["src/lib.rs"]"#.len() as i64;
    assert_eq!(
        tx.usage(C).await.unwrap(),
        Usage {
            messages: 3,
            bytes: ("to b only".len() + "to everyone".len() + "a reply".len()) as i64 + 3 * files,
        }
    );
    assert_eq!(tx.usage(D).await.unwrap(), Usage::default());
    assert_eq!(tx.usage("conv_none").await.unwrap(), Usage::default());

    // An agent's seats, oldest conversation first.
    let seats = tx.agent_seats(agent).await.unwrap();
    let found: Vec<_> = seats
        .iter()
        .map(|s| {
            (
                s.conversation.id.as_str(),
                s.participant.session_id.as_str(),
                s.participant.agent_id,
                s.participant.token_hash.is_none(),
            )
        })
        .collect();
    assert_eq!(found, [(C, "b", Some(agent), true), (D, "a", Some(agent), true)]);
    assert!(tx.agent_seats(agent + 1).await.unwrap().is_empty());

    // Statuses of one conversation, by session id.
    for s in ["c", "a"] {
        tx.upsert_status(&Status {
            conversation_id: C.into(),
            session_id: s.into(),
            status: "working".into(),
            note: None,
            heartbeat_at: 300,
        })
        .await
        .unwrap();
    }
    let statuses: Vec<_> = tx
        .statuses(C)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(statuses, ["a", "c"]);
    assert!(tx.statuses(D).await.unwrap().is_empty());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn sqlite_store_honours_the_teams_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("teams.db"),
        mcp_bridge::store::sqlite::OpenMode::CreateIfMissing,
    )
    .await
    .unwrap()
    .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
    teams_contract(store).await;
}

#[tokio::test]
async fn postgres_store_honours_the_teams_contract() {
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, mcp_bridge::store::postgres::OpenMode::CreateIfMissing)
            .await
            .unwrap()
            .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
        teams_contract(store.clone()).await;
        store.close();
    })
    .await;
}
