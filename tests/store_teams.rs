//! The store contract of team conversations (issue 18): messages addressed
//! to some seats, per-recipient delivery exactly once, per-member history,
//! receipts, quotas' running totals, agents' seats and the seat CHECK.
//! Written once over any [`Store`] and run on a fresh SQLite file, and on a
//! fresh PostgreSQL database each when `MCP_BRIDGE_TEST_PG` is set. The
//! last test runs several `SqliteStore`s on one file, as several server
//! processes would (`store_postgres.rs` does the same on PostgreSQL).

mod pg_support;

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mcp_bridge::auth::{AgentCredential, ServerKey, SessionToken};
use mcp_bridge::clock::Millis;
use mcp_bridge::store::agents::{AgentRole, AgentTx};
use mcp_bridge::store::sqlite::OpenMode;
use mcp_bridge::store::{
    Conversation, Message, NewMessage, Participant, PgStore, SqliteStore, Status, Store, Tx,
};

const KEY: [u8; 32] = [7; 32];

fn conversation(n: u8, created_at: Millis) -> Conversation {
    Conversation {
        id: format!("conv_{:032x}", n),
        created_at,
        expires_at: created_at + 1_000_000,
        closed_at: None,
    }
}

fn token_seat(conversation_id: &str, session: &str) -> Participant {
    Participant {
        conversation_id: conversation_id.into(),
        session_id: session.into(),
        role: format!("role-{session}"),
        token_hash: Some(ServerKey::from_bytes(KEY).hash_token(&SessionToken::generate())),
        agent_id: None,
        token_created_at: 1_000,
        revoked_at: None,
    }
}

fn agent_seat(conversation_id: &str, session: &str, agent_id: i64) -> Participant {
    Participant {
        token_hash: None,
        agent_id: Some(agent_id),
        ..token_seat(conversation_id, session)
    }
}

fn message(conversation_id: &str, sender: &str, body: &str, at: Millis) -> NewMessage {
    NewMessage {
        conversation_id: conversation_id.into(),
        sender: sender.into(),
        body: body.into(),
        action_type: "info".into(),
        files: vec![],
        redactions: vec![],
        reply_to: None,
        created_at: at,
    }
}

fn seats(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn seqs(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.seq).collect()
}

fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, OpenMode::CreateIfMissing)
        .await
        .unwrap()
        .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]))
}

/// Stores a conversation with token seats `a` .. the last of `sessions`.
async fn seed<S: Store>(store: &S, c: &Conversation, sessions: &[&str]) {
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_conversation(c).await.unwrap();
    for s in sessions {
        tx.insert_participant(&token_seat(&c.id, s)).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// Addressed messages: deliveries for the recipients only, the address and
/// the reply kept, each recipient served once in seq order, nobody else.
async fn addressed_delivery<S: Store>(store: S) {
    let c = conversation(1, 1_000);
    seed(&store, &c, &["a", "b", "c", "d", "e"]).await;
    let mut tx = store.begin_write().await.unwrap();
    let to_bd = tx
        .insert_message(&message(&c.id, "a", "to b and d", 2_000), &seats(&["b", "d"]))
        .await
        .unwrap();
    let mut reply = message(&c.id, "b", "answer to all", 2_001);
    reply.reply_to = Some(to_bd);
    reply.files = vec!["src/lib.rs".into()];
    reply.redactions = vec!["aws_access_key".into()];
    reply.action_type = "answer".into();
    let all = tx
        .insert_message(&reply, &seats(&["a", "c", "d", "e"]))
        .await
        .unwrap();
    let to_c = tx
        .insert_message(&message(&c.id, "d", "to c only", 2_002), &seats(&["c"]))
        .await
        .unwrap();
    assert!(to_bd < all && all < to_c);

    // What was stored, exactly.
    let m = tx.message(&c.id, to_bd).await.unwrap().unwrap();
    assert_eq!(m.sender, "a");
    assert_eq!(m.recipients, seats(&["b", "d"]));
    assert_eq!(m.reply_to, None);
    let m = tx.message(&c.id, all).await.unwrap().unwrap();
    assert_eq!(m.recipients, seats(&["a", "c", "d", "e"]));
    assert_eq!(m.reply_to, Some(to_bd));
    assert_eq!(m.files, vec!["src/lib.rs".to_owned()]);
    assert_eq!(m.redactions, vec!["aws_access_key".to_owned()]);
    assert_eq!(m.action_type, "answer");
    assert_eq!(m.created_at, 2_001);
    assert_eq!(m.conversation_id, c.id);

    // Deliveries exist for the recipients only.
    for (seat, expected) in [
        ("a", vec![all]),
        ("b", vec![to_bd]),
        ("c", vec![all, to_c]),
        ("d", vec![to_bd, all]),
        ("e", vec![all]),
    ] {
        assert_eq!(
            tx.count_unread(&c.id, seat).await.unwrap(),
            expected.len() as i64,
            "{seat}"
        );
        // Peeking shows the same and marks nothing.
        assert_eq!(
            seqs(&tx.peek_unread(&c.id, seat, 100).await.unwrap()),
            expected,
            "{seat}"
        );
    }
    // A sender is not a recipient of its own message.
    assert!(
        !tx.peek_unread(&c.id, "a", 100)
            .await
            .unwrap()
            .iter()
            .any(|m| m.seq == to_bd)
    );

    // Each recipient is served once, in seq order; a limit is honoured.
    let first = tx.take_unread(&c.id, "c", 3_000, 1).await.unwrap();
    assert_eq!(seqs(&first), [all]);
    let rest = tx.take_unread(&c.id, "c", 3_001, 100).await.unwrap();
    assert_eq!(seqs(&rest), [to_c]);
    assert!(tx.take_unread(&c.id, "c", 3_002, 100).await.unwrap().is_empty());
    let d = tx.take_unread(&c.id, "d", 3_000, 100).await.unwrap();
    assert_eq!(seqs(&d), [to_bd, all]);
    assert_eq!(bodies(&d), ["to b and d", "answer to all"]);
    assert_eq!(d[1].reply_to, Some(to_bd));
    assert_eq!(d[1].recipients, seats(&["a", "c", "d", "e"]));
    assert!(tx.take_unread(&c.id, "d", 3_003, 100).await.unwrap().is_empty());
    // c and d taking theirs left b's, e's and a's alone.
    assert_eq!(
        seqs(&tx.take_unread(&c.id, "b", 3_004, 100).await.unwrap()),
        [to_bd]
    );
    assert_eq!(
        seqs(&tx.take_unread(&c.id, "e", 3_004, 100).await.unwrap()),
        [all]
    );
    assert_eq!(
        seqs(&tx.take_unread(&c.id, "a", 3_004, 100).await.unwrap()),
        [all]
    );
    // Seats that were never addressed, or do not exist, get nothing.
    assert!(tx.take_unread(&c.id, "f", 3_005, 100).await.unwrap().is_empty());
    assert!(tx.take_unread(&c.id, "zz", 3_005, 100).await.unwrap().is_empty());
    // Another conversation's id gets nothing either.
    assert!(
        tx.take_unread(&conversation(2, 0).id, "b", 3_005, 100)
            .await
            .unwrap()
            .is_empty()
    );
    for seat in ["a", "b", "c", "d", "e"] {
        assert_eq!(tx.count_unread(&c.id, seat).await.unwrap(), 0, "{seat}");
    }
    tx.commit().await.unwrap();

    // A take that is rolled back delivered nothing.
    let mut tx = store.begin_write().await.unwrap();
    let late = tx
        .insert_message(&message(&c.id, "e", "late", 4_000), &seats(&["b"]))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin_write().await.unwrap();
    assert_eq!(
        seqs(&tx.take_unread(&c.id, "b", 4_001, 100).await.unwrap()),
        [late]
    );
    drop(tx);
    let mut tx = store.begin_write().await.unwrap();
    assert_eq!(
        seqs(&tx.take_unread(&c.id, "b", 4_002, 100).await.unwrap()),
        [late]
    );
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn addressed_messages_are_delivered_to_their_recipients_only_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    addressed_delivery(open(&dir.path().join("b.db")).await).await;
}

/// `Message.recipients` is documented as seat order; the store keeps that
/// promise whatever order a caller passed them in.
async fn recipients_in_seat_order<S: Store>(store: S) {
    let c = conversation(1, 1_000);
    seed(&store, &c, &["a", "b", "c", "d"]).await;
    let mut tx = store.begin_write().await.unwrap();
    let seq = tx
        .insert_message(&message(&c.id, "a", "m", 2_000), &seats(&["d", "b"]))
        .await
        .unwrap();
    let receipts: Vec<String> = tx
        .receipts(seq)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.recipient)
        .collect();
    assert_eq!(receipts, seats(&["b", "d"]));
    assert_eq!(
        tx.message(&c.id, seq).await.unwrap().unwrap().recipients,
        seats(&["b", "d"])
    );
}

#[tokio::test]
async fn recipients_come_back_in_seat_order_whatever_order_they_were_given() {
    let dir = tempfile::tempdir().unwrap();
    recipients_in_seat_order(open(&dir.path().join("b.db")).await).await;
}

/// One member's view of the history: what it sent or was addressed,
/// nothing else, walked with a cursor and a limit.
async fn member_history<S: Store>(store: S) {
    let c = conversation(1, 1_000);
    let other = conversation(2, 1_000);
    seed(&store, &c, &["a", "b", "c", "d"]).await;
    seed(&store, &other, &["a", "b"]).await;
    let mut tx = store.begin_write().await.unwrap();
    let mut sent = vec![];
    for (sender, to, body) in [
        ("a", &["b"][..], "a->b"),
        ("b", &["a", "c", "d"][..], "b->all"),
        ("c", &["d"][..], "c->d"),
        ("d", &["a"][..], "d->a"),
        ("a", &["c", "d"][..], "a->cd"),
    ] {
        sent.push(
            tx.insert_message(&message(&c.id, sender, body, 2_000), &seats(to))
                .await
                .unwrap(),
        );
    }
    // The other conversation's traffic never shows.
    tx.insert_message(&message(&other.id, "a", "elsewhere", 2_000), &seats(&["b"]))
        .await
        .unwrap();

    let view = |rows: Vec<Message>| rows.into_iter().map(|m| m.body).collect::<Vec<_>>();
    assert_eq!(
        view(tx.history_of(&c.id, "a", 0, 100).await.unwrap()),
        ["a->b", "b->all", "d->a", "a->cd"]
    );
    assert_eq!(
        view(tx.history_of(&c.id, "b", 0, 100).await.unwrap()),
        ["a->b", "b->all"]
    );
    assert_eq!(
        view(tx.history_of(&c.id, "c", 0, 100).await.unwrap()),
        ["b->all", "c->d", "a->cd"]
    );
    assert_eq!(
        view(tx.history_of(&c.id, "d", 0, 100).await.unwrap()),
        ["b->all", "c->d", "d->a", "a->cd"]
    );
    assert!(tx.history_of(&c.id, "e", 0, 100).await.unwrap().is_empty());
    assert!(
        tx.history_of("conv_missing", "a", 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Reading takes nothing away from history, and history marks nothing read.
    tx.take_unread(&c.id, "d", 3_000, 100).await.unwrap();
    assert_eq!(tx.history_of(&c.id, "d", 0, 100).await.unwrap().len(), 4);
    assert_eq!(tx.count_unread(&c.id, "c").await.unwrap(), 2);

    // Cursor and limit: strictly after the cursor, at most `limit`.
    let page = tx.history_of(&c.id, "d", 0, 2).await.unwrap();
    assert_eq!(seqs(&page), [sent[1], sent[2]]);
    let page = tx.history_of(&c.id, "d", sent[2], 2).await.unwrap();
    assert_eq!(seqs(&page), [sent[3], sent[4]]);
    assert!(tx.history_of(&c.id, "d", sent[4], 2).await.unwrap().is_empty());
    assert!(tx.history_of(&c.id, "d", 0, 0).await.unwrap().is_empty());
    // A cursor between a member's messages skips only what came before it.
    let page = tx.history_of(&c.id, "b", sent[0], 100).await.unwrap();
    assert_eq!(seqs(&page), [sent[1]]);
    // The whole conversation (the overseer's view) still has everything.
    assert_eq!(seqs(&tx.history_after(&c.id, 0, 100).await.unwrap()), sent);

    // `message` finds a message only in its own conversation.
    assert_eq!(tx.message(&c.id, sent[2]).await.unwrap().unwrap().body, "c->d");
    assert!(tx.message(&other.id, sent[2]).await.unwrap().is_none());
    assert!(tx.message(&c.id, sent[4] + 100).await.unwrap().is_none());
    assert!(tx.message(&c.id, 0).await.unwrap().is_none());
    assert!(tx.message(&c.id, -1).await.unwrap().is_none());
}

#[tokio::test]
async fn history_of_shows_a_member_only_what_it_sent_or_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    member_history(open(&dir.path().join("b.db")).await).await;
}

/// Receipts and unread counts follow each recipient's delivery state.
async fn receipts_and_unread<S: Store>(store: S) {
    let c = conversation(1, 1_000);
    seed(&store, &c, &["a", "b", "c", "d"]).await;
    let mut tx = store.begin_write().await.unwrap();
    assert!(tx.unread_by_recipient(&c.id).await.unwrap().is_empty());
    let m1 = tx
        .insert_message(&message(&c.id, "a", "m1", 2_000), &seats(&["b", "c", "d"]))
        .await
        .unwrap();
    let m2 = tx
        .insert_message(&message(&c.id, "a", "m2", 2_001), &seats(&["c"]))
        .await
        .unwrap();
    let states = |v: Vec<mcp_bridge::store::DeliveryState>| {
        v.into_iter()
            .map(|d| (d.recipient, d.read_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states(tx.receipts(m1).await.unwrap()),
        [("b".into(), None), ("c".into(), None), ("d".into(), None)]
    );
    assert_eq!(
        tx.unread_by_recipient(&c.id).await.unwrap(),
        [("b".into(), 1), ("c".into(), 2), ("d".into(), 1)]
    );

    // c reads both; only c's receipts change, stamped with the read time.
    let taken = tx.take_unread(&c.id, "c", 5_000, 100).await.unwrap();
    assert_eq!(seqs(&taken), [m1, m2]);
    assert_eq!(
        states(tx.receipts(m1).await.unwrap()),
        [("b".into(), None), ("c".into(), Some(5_000)), ("d".into(), None)]
    );
    assert_eq!(
        states(tx.receipts(m2).await.unwrap()),
        [("c".into(), Some(5_000))]
    );
    assert_eq!(
        tx.unread_by_recipient(&c.id).await.unwrap(),
        [("b".into(), 1), ("d".into(), 1)]
    );
    // Peeking changes no receipt.
    tx.peek_unread(&c.id, "b", 100).await.unwrap();
    assert_eq!(states(tx.receipts(m1).await.unwrap())[0], ("b".into(), None));

    // A delivery taken back is unread again, for that recipient only.
    assert_eq!(tx.return_unread(&c.id, "c", &[m1], 5_000).await.unwrap(), 1);
    assert_eq!(
        states(tx.receipts(m1).await.unwrap()),
        [("b".into(), None), ("c".into(), None), ("d".into(), None)]
    );
    assert_eq!(
        states(tx.receipts(m2).await.unwrap()),
        [("c".into(), Some(5_000))]
    );
    assert_eq!(
        tx.unread_by_recipient(&c.id).await.unwrap(),
        [("b".into(), 1), ("c".into(), 1), ("d".into(), 1)]
    );
    // Everyone reads: nobody is listed.
    for seat in ["b", "c", "d"] {
        tx.take_unread(&c.id, seat, 6_000, 100).await.unwrap();
    }
    assert!(tx.unread_by_recipient(&c.id).await.unwrap().is_empty());
    assert!(
        states(tx.receipts(m1).await.unwrap())
            .iter()
            .all(|(_, at)| *at == Some(6_000))
    );
    // A message that does not exist has no receipts.
    assert!(tx.receipts(m2 + 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn receipts_and_unread_counts_follow_each_recipient() {
    let dir = tempfile::tempdir().unwrap();
    receipts_and_unread(open(&dir.path().join("b.db")).await).await;
}

/// The quotas' running totals: one message and its stored bytes per insert,
/// per conversation, and nothing for a rolled-back insert.
async fn usage_totals<S: Store>(store: S) {
    let c = conversation(1, 1_000);
    let other = conversation(2, 1_000);
    seed(&store, &c, &["a", "b", "c"]).await;
    seed(&store, &other, &["a", "b"]).await;
    let mut tx = store.begin_write().await.unwrap();
    let zero = tx.usage(&c.id).await.unwrap();
    assert_eq!((zero.messages, zero.bytes), (0, 0));
    assert_eq!(tx.usage("conv_missing").await.unwrap().messages, 0);

    tx.insert_message(&message(&c.id, "a", &"x".repeat(10), 2_000), &seats(&["b"]))
        .await
        .unwrap();
    let one = tx.usage(&c.id).await.unwrap();
    assert_eq!(one.messages, 1);
    assert!(one.bytes >= 10, "{one:?}");
    tx.insert_message(&message(&c.id, "b", &"y".repeat(110), 2_001), &seats(&["a", "c"]))
        .await
        .unwrap();
    let two = tx.usage(&c.id).await.unwrap();
    assert_eq!(two.messages, 2);
    // The body's bytes count once whatever the number of recipients.
    assert_eq!(two.bytes - one.bytes, one.bytes + 100, "{one:?} {two:?}");
    // Paths count too.
    let mut with_files = message(&c.id, "a", &"x".repeat(10), 2_002);
    with_files.files = vec!["a/very/long/path/to/a/file.rs".into()];
    tx.insert_message(&with_files, &seats(&["b"])).await.unwrap();
    let three = tx.usage(&c.id).await.unwrap();
    assert_eq!(three.messages, 3);
    assert!(three.bytes - two.bytes >= one.bytes + 29, "{two:?} {three:?}");
    // Bytes are bytes of UTF-8, not characters.
    tx.insert_message(&message(&c.id, "a", &"é".repeat(10), 2_003), &seats(&["b"]))
        .await
        .unwrap();
    let four = tx.usage(&c.id).await.unwrap();
    assert_eq!(four.bytes - three.bytes, one.bytes + 10, "{three:?} {four:?}");
    // The other conversation is untouched.
    assert_eq!(tx.usage(&other.id).await.unwrap().messages, 0);
    tx.commit().await.unwrap();

    // A rolled-back insert moves nothing.
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_message(&message(&c.id, "a", "gone", 3_000), &seats(&["b"]))
        .await
        .unwrap();
    assert_eq!(tx.usage(&c.id).await.unwrap().messages, 5);
    drop(tx);
    let mut tx = store.begin_read().await.unwrap();
    assert_eq!(tx.usage(&c.id).await.unwrap(), four);
}

#[tokio::test]
async fn usage_moves_with_each_insert_of_its_conversation() {
    let dir = tempfile::tempdir().unwrap();
    usage_totals(open(&dir.path().join("b.db")).await).await;
}

/// Seats held by registered agents: found by agent, oldest conversation
/// first, with no token hash.
async fn seats_of_agents<S: Store>(store: S) {
    let key = ServerKey::from_bytes(KEY);
    let mut tx = store.begin_write().await.unwrap();
    let lead = tx
        .insert_agent(
            "lead",
            AgentRole::Agent,
            &key.hash_agent_credential(&AgentCredential::generate()),
            500,
        )
        .await
        .unwrap();
    let worker = tx
        .insert_agent(
            "worker",
            AgentRole::Agent,
            &key.hash_agent_credential(&AgentCredential::generate()),
            500,
        )
        .await
        .unwrap();
    let idle = tx
        .insert_agent(
            "idle",
            AgentRole::Agent,
            &key.hash_agent_credential(&AgentCredential::generate()),
            500,
        )
        .await
        .unwrap();
    // Created out of id order: the newer conversation has the smaller id.
    let newer = conversation(1, 3_000);
    let older = conversation(2, 2_000);
    tx.insert_conversation(&newer).await.unwrap();
    tx.insert_conversation(&older).await.unwrap();
    tx.insert_participant(&agent_seat(&older.id, "a", lead))
        .await
        .unwrap();
    tx.insert_participant(&agent_seat(&older.id, "b", worker))
        .await
        .unwrap();
    tx.insert_participant(&token_seat(&older.id, "c")).await.unwrap();
    tx.insert_participant(&agent_seat(&newer.id, "a", worker))
        .await
        .unwrap();
    tx.insert_participant(&token_seat(&newer.id, "b")).await.unwrap();
    tx.insert_participant(&agent_seat(&newer.id, "c", lead))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin_read().await.unwrap();
    let mine = tx.agent_seats(lead).await.unwrap();
    assert_eq!(
        mine.iter()
            .map(|s| (s.conversation.id.as_str(), s.participant.session_id.as_str()))
            .collect::<Vec<_>>(),
        [(older.id.as_str(), "a"), (newer.id.as_str(), "c")]
    );
    assert_eq!(mine[0].conversation, older);
    assert_eq!(mine[1].conversation, newer);
    for s in &mine {
        assert_eq!(s.participant.agent_id, Some(lead));
        assert!(s.participant.token_hash.is_none());
        assert_eq!(s.participant.conversation_id, s.conversation.id);
    }
    let theirs = tx.agent_seats(worker).await.unwrap();
    assert_eq!(
        theirs
            .iter()
            .map(|s| (s.conversation.id.as_str(), s.participant.session_id.as_str()))
            .collect::<Vec<_>>(),
        [(older.id.as_str(), "b"), (newer.id.as_str(), "a")]
    );
    assert!(tx.agent_seats(idle).await.unwrap().is_empty());
    assert!(
        tx.agent_seats(lead + worker + idle + 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Participants read back the same way: agent seats without a hash,
    // token seats without an agent.
    let ps = tx.participants(&older.id).await.unwrap();
    assert_eq!(
        ps.iter()
            .map(|p| (p.agent_id, p.token_hash.is_some()))
            .collect::<Vec<_>>(),
        [(Some(lead), false), (Some(worker), false), (None, true)]
    );
}

#[tokio::test]
async fn agent_seats_lists_an_agents_seats_oldest_first_without_token_hashes() {
    let dir = tempfile::tempdir().unwrap();
    seats_of_agents(open(&dir.path().join("b.db")).await).await;
}

/// A seat has exactly one of a token hash and an agent: both or neither is
/// refused, and the refused row leaves nothing behind.
async fn seat_check<S: Store>(store: S) {
    let key = ServerKey::from_bytes(KEY);
    let mut tx = store.begin_write().await.unwrap();
    let agent = tx
        .insert_agent(
            "worker",
            AgentRole::Agent,
            &key.hash_agent_credential(&AgentCredential::generate()),
            500,
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let c = conversation(1, 1_000);

    let both = Participant {
        agent_id: Some(agent),
        ..token_seat(&c.id, "b")
    };
    let neither = Participant {
        token_hash: None,
        ..token_seat(&c.id, "c")
    };
    let unknown_agent = agent_seat(&c.id, "d", agent + 100);
    for bad in [both, neither, unknown_agent] {
        let mut tx = store.begin_write().await.unwrap();
        tx.insert_conversation(&c).await.unwrap();
        tx.insert_participant(&token_seat(&c.id, "a")).await.unwrap();
        let err = tx.insert_participant(&bad).await;
        assert!(err.is_err(), "seat {} was accepted", bad.session_id);
        // The statement wrote nothing, and the transaction's earlier rows stand.
        let ps = tx.participants(&c.id).await.unwrap();
        assert_eq!(
            ps.iter().map(|p| p.session_id.as_str()).collect::<Vec<_>>(),
            ["a"],
            "{}",
            bad.session_id
        );
        assert!(tx.participant(&c.id, &bad.session_id).await.unwrap().is_none());
        // The use cases drop the transaction on error: nothing stays.
        drop(tx);
        let mut tx = store.begin_read().await.unwrap();
        assert!(tx.conversation(&c.id).await.unwrap().is_none());
        assert!(tx.participants(&c.id).await.unwrap().is_empty());
    }

    // Committing after a refused row keeps only the good rows.
    let mut tx = store.begin_write().await.unwrap();
    tx.insert_conversation(&c).await.unwrap();
    tx.insert_participant(&agent_seat(&c.id, "a", agent))
        .await
        .unwrap();
    assert!(
        tx.insert_participant(&Participant {
            agent_id: Some(agent),
            ..token_seat(&c.id, "b")
        })
        .await
        .is_err()
    );
    tx.insert_participant(&token_seat(&c.id, "c")).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin_read().await.unwrap();
    let ps = tx.participants(&c.id).await.unwrap();
    assert_eq!(
        ps.iter()
            .map(|p| (p.session_id.as_str(), p.agent_id, p.token_hash.is_some()))
            .collect::<Vec<_>>(),
        [("a", Some(agent), false), ("c", None, true)]
    );
}

#[tokio::test]
async fn a_seat_has_exactly_one_of_token_hash_and_agent() {
    let dir = tempfile::tempdir().unwrap();
    seat_check(open(&dir.path().join("b.db")).await).await;
}

/// Statuses: every seat's latest report, by session id, for one conversation.
async fn statuses_story<S: Store>(store: S) {
    let c = conversation(1, 1_000);
    let other = conversation(2, 1_000);
    seed(&store, &c, &["a", "b", "c", "d"]).await;
    seed(&store, &other, &["a", "b"]).await;
    let mut tx = store.begin_write().await.unwrap();
    assert!(tx.statuses(&c.id).await.unwrap().is_empty());
    let report = |conv: &str, seat: &str, status: &str, at: Millis| Status {
        conversation_id: conv.into(),
        session_id: seat.into(),
        status: status.into(),
        note: Some(format!("{seat} {status}")),
        heartbeat_at: at,
    };
    tx.upsert_status(&report(&c.id, "c", "working", 2_000))
        .await
        .unwrap();
    tx.upsert_status(&report(&c.id, "a", "waiting", 2_001))
        .await
        .unwrap();
    tx.upsert_status(&report(&c.id, "c", "blocked", 2_002))
        .await
        .unwrap();
    tx.upsert_status(&report(&other.id, "b", "complete", 2_003))
        .await
        .unwrap();
    let all = tx.statuses(&c.id).await.unwrap();
    assert_eq!(
        all,
        [
            report(&c.id, "a", "waiting", 2_001),
            report(&c.id, "c", "blocked", 2_002)
        ]
    );
    assert_eq!(
        tx.statuses(&other.id).await.unwrap(),
        [report(&other.id, "b", "complete", 2_003)]
    );
    assert!(tx.statuses("conv_missing").await.unwrap().is_empty());
}

#[tokio::test]
async fn statuses_lists_each_seats_latest_report() {
    let dir = tempfile::tempdir().unwrap();
    statuses_story(open(&dir.path().join("b.db")).await).await;
}

/// Several stores on one file (as several server processes): concurrent
/// `take_unread` for one recipient, while a writer keeps adding, never
/// hands a message out twice, and together they hand out all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takes_across_stores_deliver_each_message_exactly_once() {
    const READERS: usize = 4;
    const MESSAGES: usize = 240;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let writer = open(&path).await;
    let c = conversation(1, 1_000);
    seed(&writer, &c, &["a", "b", "c"]).await;

    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..READERS {
        let store = open(&path).await;
        let id = c.id.clone();
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut got: Vec<i64> = Vec::new();
            let mut round = 0;
            loop {
                // Read the flag first: once the writer is done, one more
                // empty take means nothing is left for anyone.
                let writer_done = done.load(Ordering::SeqCst);
                let mut tx = store.begin_write().await.unwrap();
                round += 1;
                let taken = tx
                    .take_unread(&id, "b", (r * 1_000_000 + round) as Millis, 1 + (r % 3) * 4)
                    .await
                    .unwrap();
                // Every few rounds a reader "crashes" before commit: its
                // take must come back for someone else.
                if round % 7 == 0 && !taken.is_empty() {
                    drop(tx);
                    continue;
                }
                tx.commit().await.unwrap();
                // Nothing for c leaks into b's takes.
                assert!(taken.iter().all(|m| m.recipients.contains(&"b".to_owned())));
                if taken.is_empty() {
                    if writer_done {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                got.extend(taken.iter().map(|m| m.seq));
            }
            got
        }));
    }

    let mut stored = Vec::new();
    for i in 0..MESSAGES {
        let mut tx = writer.begin_write().await.unwrap();
        let to = if i % 5 == 0 {
            seats(&["c"])
        } else {
            seats(&["b", "c"])
        };
        let seq = tx
            .insert_message(&message(&c.id, "a", &format!("m{i}"), 2_000 + i as Millis), &to)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        if i % 5 != 0 {
            stored.push(seq);
        }
    }
    done.store(true, Ordering::SeqCst);

    let mut all = Vec::new();
    for reader in readers {
        let got = reader.await.unwrap();
        // Each reader sees its share in seq order.
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        all.extend(got);
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a message was delivered twice");
    let mut all_sorted = all.clone();
    all_sorted.sort();
    assert_eq!(all_sorted, stored, "not every message was delivered");
    let mut tx = writer.begin_read().await.unwrap();
    assert_eq!(tx.count_unread(&c.id, "b").await.unwrap(), 0);
    // c's deliveries were not touched by b's readers.
    assert_eq!(tx.count_unread(&c.id, "c").await.unwrap(), MESSAGES as i64);
}

/// Runs one story on a fresh PostgreSQL database (skipped without a server).
async fn on_postgres<F, Fut>(story: F)
where
    F: FnOnce(PgStore) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    pg_support::with_fresh_db(|url| async move {
        let store = PgStore::open(&url, mcp_bridge::store::postgres::OpenMode::CreateIfMissing)
            .await
            .unwrap()
            .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
        story(store.clone()).await;
        store.close();
    })
    .await;
}

#[tokio::test]
async fn postgres_addressed_messages_are_delivered_to_their_recipients_only_once_in_order() {
    on_postgres(addressed_delivery).await;
}

#[tokio::test]
async fn postgres_recipients_come_back_in_seat_order_whatever_order_they_were_given() {
    on_postgres(recipients_in_seat_order).await;
}

#[tokio::test]
async fn postgres_history_of_shows_a_member_only_what_it_sent_or_was_sent() {
    on_postgres(member_history).await;
}

#[tokio::test]
async fn postgres_receipts_and_unread_counts_follow_each_recipient() {
    on_postgres(receipts_and_unread).await;
}

#[tokio::test]
async fn postgres_usage_moves_with_each_insert_of_its_conversation() {
    on_postgres(usage_totals).await;
}

#[tokio::test]
async fn postgres_agent_seats_lists_an_agents_seats_oldest_first_without_token_hashes() {
    on_postgres(seats_of_agents).await;
}

#[tokio::test]
async fn postgres_a_seat_has_exactly_one_of_token_hash_and_agent() {
    on_postgres(seat_check).await;
}

#[tokio::test]
async fn postgres_statuses_lists_each_seats_latest_report() {
    on_postgres(statuses_story).await;
}
