//! The overseer's and YOLO's store contract ([`AdminTx`], [`AdminStore`],
//! [`YoloTx`]), written once and run against both backends: SQLite always,
//! PostgreSQL when `MCP_BRIDGE_TEST_PG` is set. Same rows in, same answers
//! out, including the order of lists and what an audit glob matches.

mod pg_support;

use mcp_bridge::audit::{self, NewEntry};
use mcp_bridge::auth::{ServerKey, TokenHash};
use mcp_bridge::store::admin::{AdminStore, AdminTx, AuditFilter, Delivery, PurgeCounts, UnreadCount};
use mcp_bridge::store::yolo::{Approval, Proposal, YoloTx};
use mcp_bridge::store::{Conversation, NewMessage, Participant, PgStore, SqliteStore, Status, Tx};
use serde_json::json;

const A: &str = "conv_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "conv_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn conversation(id: &str, created_at: i64, expires_at: i64) -> Conversation {
    Conversation {
        id: id.into(),
        created_at,
        expires_at,
        closed_at: None,
    }
}

fn seat(conversation_id: &str, session_id: &str) -> Participant {
    Participant {
        conversation_id: conversation_id.into(),
        session_id: session_id.into(),
        role: "r".into(),
        token_hash: Some(TokenHash(vec![1; 32])),
        agent_id: None,
        token_created_at: 1,
        revoked_at: None,
    }
}

fn message(conversation_id: &str, at: i64) -> NewMessage {
    NewMessage {
        conversation_id: conversation_id.into(),
        sender: "a".into(),
        body: "hello".into(),
        action_type: "info".into(),
        files: vec![],
        redactions: vec![],
        reply_to: None,
        created_at: at,
    }
}

async fn append<T: Tx>(tx: &mut T, key: &ServerKey, at: i64, action: &str, conversation_id: Option<&str>) {
    let head = tx.audit_head().await.unwrap();
    let e = audit::chain(
        head,
        at,
        NewEntry {
            actor: "cli".into(),
            action: action.into(),
            conversation_id: conversation_id.map(str::to_owned),
            detail: json!({}),
        },
        key,
    );
    tx.insert_audit(&e).await.unwrap();
}

async fn admin_contract<S>(store: S)
where
    S: AdminStore,
    S::Tx: YoloTx,
{
    let key = ServerKey::from_bytes([4; 32]);
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_conversation(&conversation(A, 100, 10_000))
        .await
        .unwrap();
    tx.insert_conversation(&conversation(B, 200, 500)).await.unwrap();
    for id in [A, B] {
        for s in ["a", "b"] {
            tx.insert_participant(&seat(id, s)).await.unwrap();
        }
    }
    let m1 = tx.insert_message(&message(A, 300), &["b".into()]).await.unwrap();
    let m2 = tx.insert_message(&message(A, 400), &["b".into()]).await.unwrap();
    tx.insert_message(&message(B, 450), &["b".into()]).await.unwrap();
    tx.take_unread(A, "b", 410, 1).await.unwrap();
    tx.upsert_status(&Status {
        conversation_id: A.into(),
        session_id: "b".into(),
        status: "working".into(),
        note: None,
        heartbeat_at: 420,
    })
    .await
    .unwrap();
    tx.record_rate_event(&format!("send:{B}/a"), 450, 0)
        .await
        .unwrap();
    tx.record_rate_event(&format!("send:{A}/a"), 450, 0)
        .await
        .unwrap();
    append(&mut tx, &key, 100, "conversation.create", Some(A)).await;
    append(&mut tx, &key, 200, "message.send", Some(A)).await;
    append(&mut tx, &key, 300, "message.send.refused", None).await;
    append(&mut tx, &key, 400, "token.rotate", Some(A)).await;
    tx.commit().await.unwrap();

    let mut tx = store.begin_read().await.unwrap();
    let rows = tx.conversation_rows().await.unwrap();
    let summary: Vec<_> = rows
        .iter()
        .map(|r| (r.conversation.id.as_str(), r.messages, r.last_message_at))
        .collect();
    assert_eq!(summary, [(A, 2, Some(400)), (B, 1, Some(450))]);
    assert_eq!(tx.all_participants().await.unwrap().len(), 4);
    let mut unread = tx.unread_counts().await.unwrap();
    unread.sort_by(|x, y| x.conversation_id.cmp(&y.conversation_id));
    let count = |c: &str, n| UnreadCount {
        conversation_id: c.into(),
        recipient: "b".into(),
        unread: n,
    };
    assert_eq!(unread, [count(A, 1), count(B, 1)]);
    assert_eq!(tx.all_statuses().await.unwrap().len(), 1);
    assert_eq!(
        tx.deliveries_after(A, 0).await.unwrap(),
        [
            Delivery {
                message_seq: m1,
                recipient: "b".into(),
                delivered_at: Some(410)
            },
            Delivery {
                message_seq: m2,
                recipient: "b".into(),
                delivered_at: None
            },
        ]
    );
    assert_eq!(tx.message_totals(A).await.unwrap(), (2, Some(400)));
    assert_eq!(tx.message_totals("conv_none").await.unwrap(), (0, None));
    assert_eq!(tx.statuses(A).await.unwrap().len(), 1);

    // Audit filters, globs as SQLite's GLOB reads them.
    let actions = |entries: Vec<audit::Entry>| entries.into_iter().map(|e| e.action).collect::<Vec<_>>();
    let glob = |g: &str| AuditFilter {
        action_glob: Some(g.into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        actions(tx.audit_filtered(&glob("message.*"), 0, 100).await.unwrap()),
        ["message.send", "message.send.refused"]
    );
    assert_eq!(
        actions(tx.audit_filtered(&glob("*.refused"), 0, 100).await.unwrap()),
        ["message.send.refused"]
    );
    assert_eq!(
        actions(tx.audit_filtered(&glob("[ct]*"), 0, 100).await.unwrap()),
        ["conversation.create", "token.rotate"]
    );
    assert_eq!(
        actions(tx.audit_filtered(&glob("token?rotate"), 0, 100).await.unwrap()),
        ["token.rotate"]
    );
    assert!(
        tx.audit_filtered(&glob("MESSAGE.*"), 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        tx.audit_filtered(&glob("message.(send)"), 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let combined = AuditFilter {
        conversation_id: Some(A.into()),
        action_glob: None,
        since: Some(200),
        until: Some(400),
    };
    assert_eq!(
        actions(tx.audit_filtered(&combined, 0, 100).await.unwrap()),
        ["message.send"]
    );
    assert_eq!(
        tx.audit_filtered(&AuditFilter::default(), 1, 2)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(tx.unaudited_conversation().await.unwrap().as_deref(), Some(B));

    let ended: Vec<_> = tx
        .ended_before(600)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ended, [B]);
    let figures = tx.figures(600).await.unwrap();
    assert_eq!(
        (
            figures.conversations,
            figures.active,
            figures.expired,
            figures.closed,
            figures.messages,
            figures.unread,
            figures.audit_entries
        ),
        (2, 1, 1, 0, 3, 2, 4)
    );
    assert!(figures.database_bytes > 0);
    drop(tx);

    // Maintenance writes.
    let mut tx = store.begin_write().await.unwrap();
    assert!(
        tx.replace_token(A, "a", &TokenHash(vec![2; 32]), 700)
            .await
            .unwrap()
    );
    assert!(
        !tx.replace_token(A, "z", &TokenHash(vec![2; 32]), 700)
            .await
            .unwrap()
    );
    assert!(tx.revoke(A, "b", 710).await.unwrap());
    assert!(tx.revoke(A, "b", 720).await.unwrap());
    assert_eq!(
        tx.participant(A, "b").await.unwrap().unwrap().revoked_at,
        Some(710)
    );
    let a = tx.participant(A, "a").await.unwrap().unwrap();
    assert_eq!(
        (a.token_hash.map(|h| h.0), a.token_created_at),
        (Some(vec![2; 32]), 700)
    );
    assert!(tx.close_conversation(A, 730).await.unwrap());
    assert!(tx.close_conversation(A, 740).await.unwrap());
    assert!(!tx.close_conversation("conv_none", 740).await.unwrap());
    assert_eq!(tx.conversation(A).await.unwrap().unwrap().closed_at, Some(730));
    tx.set_delivered(m2, "b", 750).await.unwrap();
    assert_eq!(tx.count_unread(A, "b").await.unwrap(), 0);
    let purged = tx.purge_conversation(B).await.unwrap();
    assert_eq!(
        purged,
        PurgeCounts {
            conversations: 1,
            messages: 1,
            deliveries: 1,
            participants: 2,
            status: 0,
            rate_events: 1,
            data_keys: 1,
        }
    );
    assert!(tx.conversation(B).await.unwrap().is_none());
    assert_eq!(tx.rate_events(&format!("send:{A}/a"), 0).await.unwrap(), [450]);

    // YOLO proposals and approvals.
    let proposal = Proposal {
        id: "prop_0123".into(),
        conversation_id: A.into(),
        proposer: "a".into(),
        command: "cargo test".into(),
        mode: "safe".into(),
        workspace: "/w".into(),
        cwd: ".".into(),
        reason: "why".into(),
        allowed: true,
        verdict: "ok".into(),
        plan_hash: "h".into(),
        state: "pending".into(),
        created_at: 800,
        decided_at: None,
    };
    tx.insert_proposal(&proposal).await.unwrap();
    tx.insert_proposal(&Proposal {
        id: "prop_4567".into(),
        created_at: 810,
        allowed: false,
        state: "refused".into(),
        ..proposal.clone()
    })
    .await
    .unwrap();
    assert_eq!(tx.proposal("prop_0123").await.unwrap(), Some(proposal.clone()));
    let ids = |v: Vec<Proposal>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(
        ids(tx.proposals(None, 10).await.unwrap()),
        ["prop_4567", "prop_0123"]
    );
    assert_eq!(
        ids(tx.proposals(Some("pending"), 10).await.unwrap()),
        ["prop_0123"]
    );
    assert!(
        !tx.set_proposal_state("prop_0123", "approved", "executed", 820)
            .await
            .unwrap()
    );
    assert!(
        tx.set_proposal_state("prop_0123", "pending", "approved", 820)
            .await
            .unwrap()
    );
    let approval = Approval {
        proposal_id: "prop_0123".into(),
        bound_hash: "h".into(),
        seal: "s".into(),
        approved_at: 820,
        expires_at: 1_120,
        used_at: None,
    };
    tx.insert_approval(&approval).await.unwrap();
    assert!(matches!(
        tx.insert_approval(&approval).await,
        Err(mcp_bridge::store::Error::Conflict)
    ));
    drop(tx);
    // The conflict ended that transaction: the YOLO part again, committed.
    let mut tx = store.begin_write().await.unwrap();
    assert!(tx.approval("prop_0123").await.unwrap().is_none(), "rolled back");
    tx.insert_proposal(&proposal).await.unwrap();
    tx.insert_approval(&approval).await.unwrap();
    assert_eq!(tx.approval("prop_0123").await.unwrap(), Some(approval));
    assert!(tx.use_approval("prop_0123", 900).await.unwrap());
    assert!(!tx.use_approval("prop_0123", 901).await.unwrap());
    assert_eq!(
        tx.approval("prop_0123").await.unwrap().unwrap().used_at,
        Some(900)
    );
    tx.commit().await.unwrap();

    assert!(store.size_bytes().await.unwrap() > 0);
    assert_eq!(store.integrity_check().await.unwrap(), Vec::<String>::new());
    assert_eq!(store.schema_problems().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn sqlite_store_honours_the_admin_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &dir.path().join("admin.db"),
        mcp_bridge::store::sqlite::OpenMode::CreateIfMissing,
    )
    .await
    .unwrap()
    .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
    admin_contract(store).await;
}

#[tokio::test]
async fn postgres_store_honours_the_admin_contract() {
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, mcp_bridge::store::postgres::OpenMode::CreateIfMissing)
            .await
            .unwrap()
            .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
        admin_contract(store.clone()).await;
        store.close();
    })
    .await;
}

#[tokio::test]
async fn postgres_schema_check_names_what_was_planted() {
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, mcp_bridge::store::postgres::OpenMode::CreateIfMissing)
            .await
            .unwrap()
            .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        for (plant, undo, expected) in [
            (
                "ALTER TABLE audit DISABLE TRIGGER audit_no_delete",
                "ALTER TABLE audit ENABLE TRIGGER audit_no_delete",
                "trigger \"audit_no_delete\" differs",
            ),
            (
                "CREATE RULE drop_inserts AS ON INSERT TO audit DO INSTEAD NOTHING",
                "DROP RULE drop_inserts ON audit",
                "unexpected rule \"drop_inserts\"",
            ),
            (
                "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RETURN NEW; END $$",
                "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n\
                 BEGIN\n    RAISE EXCEPTION 'audit is append-only';\nEND;\n$$",
                "function \"audit_append_only\" differs",
            ),
            (
                "DROP INDEX audit_by_conversation",
                "CREATE INDEX audit_by_conversation ON audit(conversation_id, seq)",
                "index \"audit_by_conversation\" is missing",
            ),
            (
                "ALTER TABLE audit ENABLE ROW LEVEL SECURITY",
                "ALTER TABLE audit DISABLE ROW LEVEL SECURITY",
                "unexpected row security \"audit\"",
            ),
        ] {
            client.batch_execute(plant).await.unwrap();
            let problems = store.schema_problems().await.unwrap();
            assert!(
                problems.first().is_some_and(|p| p.contains(expected)),
                "{plant}: {problems:?}"
            );
            client.batch_execute(undo).await.unwrap();
            assert_eq!(
                store.schema_problems().await.unwrap(),
                Vec::<String>::new(),
                "{undo}"
            );
        }
    })
    .await;
}
