//! Team conversations and agent identities (issue 18), through the use
//! cases on a real SQLite file with an injected clock. Written as a hostile
//! participant would probe them: reading what was not addressed to it,
//! posing as another role or seat, seating agents it should not, and
//! overflowing quotas. Several `Bridge`s on one file stand in for several
//! server processes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mcp_bridge::auth::{AgentCredential, ServerKey, SessionToken};
use mcp_bridge::bridge::{
    Access, ActionType, AgentIdentity, Auth, Bridge, CreateRequest, Created, DeliveredMessage, InHand,
    SendRequest, SessionId, StatusKind, StatusRequest,
};
use mcp_bridge::clock::ManualClock;
use mcp_bridge::config::Limits;
use mcp_bridge::limits::RateLimit;
use mcp_bridge::redact::Redactor;
use mcp_bridge::store::agents::AgentRole;
use mcp_bridge::store::sqlite::OpenMode;
use mcp_bridge::store::{SqliteStore, Store, Tx};

const T0: i64 = 1_800_000_000_000;

type B = Bridge<SqliteStore>;

async fn bridge_on(path: &Path, clock: &ManualClock, limits: Limits) -> B {
    let store = SqliteStore::open(path, OpenMode::CreateIfMissing).await.unwrap();
    Bridge::new(
        store,
        ServerKey::from_bytes([9; 32]),
        Redactor::builtin(),
        limits,
        Arc::new(clock.clone()),
    )
}

/// No rate limits and no quotas: each test turns on what it tests.
fn unlimited() -> Limits {
    Limits {
        send_rate: RateLimit::parse("off").unwrap(),
        read_rate: RateLimit::parse("off").unwrap(),
        max_messages_per_conversation: None,
        max_bytes_per_conversation: None,
        ..Limits::default()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    clock: ManualClock,
    b: B,
}

async fn fixture(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bridge.db");
    let clock = ManualClock::new(T0);
    let b = bridge_on(&db, &clock, limits).await;
    Fixture {
        _dir: dir,
        db,
        clock,
        b,
    }
}

fn roles(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A team: `lead` at seat a, then `partners`.
async fn team(b: &B, partners: &[&str]) -> Created {
    b.create_conversation(CreateRequest::team("lead", roles(partners)))
        .await
        .unwrap()
}

/// The token credentials of seat `i` (0 is `a`).
fn seat(c: &Created, i: usize) -> Auth {
    let s = &c.seats[i];
    Auth {
        conversation_id: c.conversation_id.clone(),
        session_id: s.session_id,
        token: SessionToken::from_presented(s.token.as_deref().expect("a token seat")),
    }
}

fn send(auth: impl Into<Access>, body: &str, to: Option<&[&str]>) -> SendRequest {
    SendRequest {
        auth: auth.into(),
        message: body.to_owned(),
        action_type: ActionType::Info,
        files_involved: vec![],
        to: to.map(roles),
        reply_to: None,
    }
}

fn reply(auth: impl Into<Access>, body: &str, to: Option<&[&str]>, reply_to: i64) -> SendRequest {
    SendRequest {
        reply_to: Some(reply_to),
        ..send(auth, body, to)
    }
}

fn as_agent(conversation_id: &str, agent: &Arc<AgentIdentity>) -> Access {
    Access::Agent {
        conversation_id: conversation_id.to_owned(),
        seat: None,
        agent: agent.clone(),
    }
}

fn texts(messages: &[DeliveredMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.message.as_str()).collect()
}

async fn count(path: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

async fn messages_in(f: &Fixture, c: &Created) -> i64 {
    let mut tx = f.b.store().begin_read().await.unwrap();
    tx.usage(&c.conversation_id).await.unwrap().messages
}

/// Registers an agent and proves its credential; returns the identity and
/// the credential text.
async fn register(b: &B, name: &str, role: AgentRole) -> (Arc<AgentIdentity>, String) {
    let added = b.add_agent(name, role).await.unwrap();
    let text = added.credential.to_string();
    let id = b
        .identify_agent(&AgentCredential::parse(&text).unwrap())
        .await
        .unwrap();
    assert_eq!(id.name, name);
    (id, text)
}

/// A conversation created by a registered agent, with no token seats
/// unless `partner_roles` names some.
async fn agent_team(b: &B, creator: &Arc<AgentIdentity>, agents: &[&str], partner_roles: &[&str]) -> Created {
    b.create_conversation(CreateRequest {
        my_role: None,
        partner_roles: roles(partner_roles),
        partners_field: "partner_roles",
        with_agents: roles(agents),
        creator: Some(creator.clone()),
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn team_conversations_seat_every_role_in_order() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2", "w3"]).await;
    assert_eq!(c.my_role, "lead");
    assert_eq!(c.partner_role, "w1");
    let seats: Vec<(&str, &str)> = c
        .seats
        .iter()
        .map(|s| (s.session_id.as_str(), s.role.as_str()))
        .collect();
    assert_eq!(seats, [("a", "lead"), ("b", "w1"), ("c", "w2"), ("d", "w3")]);
    let tokens: Vec<&str> = c.seats.iter().map(|s| s.token.as_deref().unwrap()).collect();
    assert_eq!(
        tokens.iter().collect::<std::collections::HashSet<_>>().len(),
        4,
        "tokens must differ"
    );
    assert_eq!(c.session_a_token.as_deref(), Some(tokens[0]));
    assert_eq!(c.session_b_token.as_deref(), Some(tokens[1]));
    // Each token opens its own seat only.
    let mut wrong = seat(&c, 2);
    wrong.token = SessionToken::from_presented(tokens[3]);
    assert_eq!(
        f.b.check_messages(wrong).await.unwrap_err().code(),
        "invalid_token"
    );
    f.b.check_messages(seat(&c, 3)).await.unwrap();
    // A seat letter past the last seat is an argument error.
    let mut past = seat(&c, 3);
    past.session_id = SessionId::nth(4).unwrap();
    let err = f.b.check_messages(past).await.unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("invalid_argument", Some("session_id"))
    );
}

#[tokio::test]
async fn a_conversation_holds_sixteen_seats_at_most() {
    let f = fixture(unlimited()).await;
    let fifteen: Vec<String> = (1..=15).map(|i| format!("w{i}")).collect();
    let c =
        f.b.create_conversation(CreateRequest::team("lead", fifteen.clone()))
            .await
            .unwrap();
    assert_eq!(c.seats.len(), 16);
    assert_eq!(c.seats[15].session_id.as_str(), "p");
    assert_eq!(c.seats[15].role, "w15");
    // The sixteenth seat can send to the first and be read by it.
    f.b.send_message(send(seat(&c, 15), "from p", Some(&["lead"])))
        .await
        .unwrap();
    assert_eq!(
        texts(&f.b.check_messages(seat(&c, 0)).await.unwrap().messages),
        ["from p"]
    );

    let before = count(&f.db, "SELECT count(*) FROM conversations").await;
    let mut sixteen = fifteen;
    sixteen.push("w16".into());
    let err =
        f.b.create_conversation(CreateRequest::team("lead", sixteen))
            .await
            .unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("invalid_argument", Some("partner_roles"))
    );
    assert!(err.to_string().contains("16"), "{err}");
    assert_eq!(count(&f.db, "SELECT count(*) FROM conversations").await, before);
    // No partner at all is refused too.
    let err =
        f.b.create_conversation(CreateRequest::team("lead", vec![]))
            .await
            .unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    assert_eq!(count(&f.db, "SELECT count(*) FROM conversations").await, before);
}

#[tokio::test]
async fn roles_repeat_neither_exactly_nor_in_another_case() {
    let f = fixture(unlimited()).await;
    for (partners, field) in [
        (&["Lead"][..], "partner_roles[0]"),
        (&["lead"][..], "partner_roles[0]"),
        (&["w1", "W1"][..], "partner_roles[1]"),
        (&["w1", "w2", "w1"][..], "partner_roles[2]"),
    ] {
        let err =
            f.b.create_conversation(CreateRequest::team("lead", roles(partners)))
                .await
                .unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            ("invalid_argument", Some(field)),
            "{partners:?}"
        );
    }
    // A role that is not a plain name is refused before anything is stored.
    let err =
        f.b.create_conversation(CreateRequest::team("lead", roles(&["w 1"])))
            .await
            .unwrap_err();
    assert_eq!(err.field(), Some("partner_roles[0]"));
    assert_eq!(count(&f.db, "SELECT count(*) FROM conversations").await, 0);
    assert_eq!(count(&f.db, "SELECT count(*) FROM participants").await, 0);
}

#[tokio::test]
async fn to_addresses_a_subset_in_seat_order_and_defaults_to_everyone_else() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2", "w3"]).await;
    let s =
        f.b.send_message(send(seat(&c, 0), "m", Some(&["w2"])))
            .await
            .unwrap();
    assert_eq!(s.recipients, ["w2"]);
    let s = f.b.send_message(send(seat(&c, 0), "m", None)).await.unwrap();
    assert_eq!(s.recipients, ["w1", "w2", "w3"]);
    let s =
        f.b.send_message(send(seat(&c, 0), "m", Some(&["w3", "w1"])))
            .await
            .unwrap();
    assert_eq!(s.recipients, ["w1", "w3"]);
    let s =
        f.b.send_message(send(seat(&c, 2), "m", Some(&["w1", "w1", "lead"])))
            .await
            .unwrap();
    assert_eq!(s.recipients, ["lead", "w1"]);
    // From a partner, "everyone else" includes the creator.
    let s = f.b.send_message(send(seat(&c, 3), "m", None)).await.unwrap();
    assert_eq!(s.recipients, ["lead", "w1", "w2"]);
    // The stored address is what recipients see.
    let inbox = f.b.check_messages(seat(&c, 1)).await.unwrap();
    let to: Vec<Vec<String>> = inbox.messages.iter().map(|m| m.to.clone()).collect();
    assert_eq!(
        to,
        [
            roles(&["w1", "w2", "w3"]),
            roles(&["w1", "w3"]),
            roles(&["lead", "w1"]),
            roles(&["lead", "w1", "w2"])
        ]
    );
}

#[tokio::test]
async fn an_unknown_recipient_stores_nothing_and_names_the_valid_roles() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2"]).await;
    for (to, field) in [
        (&["w1", "ghost"][..], "to[1]"),
        (&["W1"][..], "to[0]"),
        (&["w1 "][..], "to[0]"),
        (&["b"][..], "to[0]"),
        (&["HumanOverseer"][..], "to[0]"),
    ] {
        let err =
            f.b.send_message(send(seat(&c, 0), "lost?", Some(to)))
                .await
                .unwrap_err();
        assert_eq!(err.code(), "unknown_recipient", "{to:?}");
        assert_eq!(err.field(), Some(field), "{to:?}");
        let text = err.to_string();
        assert!(text.contains("w1") && text.contains("w2"), "{text}");
        // The caller's own role is not offered, nor is the bad value echoed.
        assert!(!text.contains("lead"), "{text}");
        assert!(!text.contains("ghost") && !text.contains("Human"), "{text}");
    }
    {
        let mut tx = f.b.store().begin_read().await.unwrap();
        let usage = tx.usage(&c.conversation_id).await.unwrap();
        assert_eq!((usage.messages, usage.bytes), (0, 0));
    }
    assert_eq!(count(&f.db, "SELECT count(*) FROM messages").await, 0);
    assert_eq!(count(&f.db, "SELECT count(*) FROM deliveries").await, 0);
    for i in 0..3 {
        assert!(
            f.b.read_history(seat(&c, i), 0, 100)
                .await
                .unwrap()
                .messages
                .is_empty()
        );
        assert!(f.b.check_messages(seat(&c, i)).await.unwrap().messages.is_empty());
    }
    f.b.flush_refusal_counts().await.unwrap();
    assert_eq!(
        count(
            &f.db,
            "SELECT count(*) FROM audit WHERE action = 'message.send.refused' \
             AND json_extract(detail, '$.code') = 'unknown_recipient'"
        )
        .await,
        2,
        "the first refusal, then one entry counting the repeats"
    );
    assert_eq!(
        count(&f.db, "SELECT count(*) FROM audit WHERE detail LIKE '%ghost%'").await,
        0
    );
}

#[tokio::test]
async fn a_sender_cannot_address_itself() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2"]).await;
    for to in [&["lead"][..], &["w1", "lead"][..]] {
        let err =
            f.b.send_message(send(seat(&c, 0), "note to self", Some(to)))
                .await
                .unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{to:?}");
        assert!(err.field().unwrap().starts_with("to"), "{:?}", err.field());
    }
    let err =
        f.b.send_message(send(seat(&c, 1), "me", Some(&["w1"])))
            .await
            .unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    assert_eq!(messages_in(&f, &c).await, 0);
}

/// `to: []` would store a message nobody can ever read: a silent loss the
/// issue forbids. The MCP schema says `minItems: 1`; the use case must
/// refuse it too, since it is the layer every transport shares.
#[tokio::test]
async fn an_empty_to_is_refused_and_stores_nothing() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2"]).await;
    let result = f.b.send_message(send(seat(&c, 0), "to nobody", Some(&[]))).await;
    let stored = messages_in(&f, &c).await;
    let err = result.expect_err("a message addressed to nobody was accepted");
    assert_eq!((err.code(), err.field()), ("invalid_argument", Some("to")));
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn reply_to_must_name_a_message_the_caller_can_see() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2"]).await;
    let other = team(&f.b, &["w1", "w2"]).await;
    let to_w1 =
        f.b.send_message(send(seat(&c, 0), "for w1 only", Some(&["w1"])))
            .await
            .unwrap()
            .message_id;
    let elsewhere =
        f.b.send_message(send(seat(&other, 0), "other conversation", None))
            .await
            .unwrap()
            .message_id;
    let before = messages_in(&f, &c).await;
    // w2 was not addressed: it cannot even learn that the id exists.
    for bad in [to_w1, elsewhere, to_w1 + 1000, 0, -1] {
        let err =
            f.b.send_message(reply(seat(&c, 2), "re", None, bad))
                .await
                .unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            ("invalid_argument", Some("reply_to")),
            "{bad}"
        );
    }
    // Same refusal whether the message exists or not.
    let hidden =
        f.b.send_message(reply(seat(&c, 2), "re", None, to_w1))
            .await
            .unwrap_err()
            .to_string();
    let missing =
        f.b.send_message(reply(seat(&c, 2), "re", None, to_w1 + 1000))
            .await
            .unwrap_err()
            .to_string();
    assert_eq!(hidden, missing);
    // w1 sees a message of another conversation it is in, but not from here.
    let err =
        f.b.send_message(reply(seat(&c, 1), "re", None, elsewhere))
            .await
            .unwrap_err();
    assert_eq!(err.field(), Some("reply_to"));
    assert_eq!(messages_in(&f, &c).await, before);

    // The recipient and the sender may both refer to it.
    let answer =
        f.b.send_message(reply(seat(&c, 1), "answer", Some(&["lead"]), to_w1))
            .await
            .unwrap()
            .message_id;
    f.b.send_message(reply(seat(&c, 0), "follow-up", Some(&["w1", "w2"]), to_w1))
        .await
        .unwrap();
    // And a message the caller sent is visible to it.
    f.b.send_message(reply(seat(&c, 1), "addendum", Some(&["lead"]), answer))
        .await
        .unwrap();
    let lead = f.b.check_messages(seat(&c, 0)).await.unwrap().messages;
    assert_eq!(
        lead.iter()
            .map(|m| (m.message.as_str(), m.reply_to))
            .collect::<Vec<_>>(),
        [("answer", Some(to_w1)), ("addendum", Some(answer))]
    );
    let w2 = f.b.check_messages(seat(&c, 2)).await.unwrap().messages;
    assert_eq!(w2.len(), 1);
    assert_eq!(w2[0].reply_to, Some(to_w1));
}

#[tokio::test]
async fn every_recipient_gets_exactly_its_messages_once_in_sender_order() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2", "w3"]).await;
    let role = ["lead", "w1", "w2", "w3"];
    // (sender seat, to, body)
    let plan: [(usize, Option<&[&str]>, &str); 10] = [
        (0, None, "lead all 1"),
        (1, Some(&["w2"]), "w1 to w2"),
        (0, Some(&["w3"]), "lead to w3"),
        (2, Some(&["lead", "w1"]), "w2 to lead,w1"),
        (1, None, "w1 all"),
        (3, Some(&["w1"]), "w3 to w1"),
        (0, Some(&["w1", "w2"]), "lead to w1,w2"),
        (2, None, "w2 all"),
        (3, Some(&["w2", "lead"]), "w3 to w2,lead"),
        (0, None, "lead all 2"),
    ];
    let mut ids = vec![];
    for (from, to, body) in plan {
        let mut req = send(seat(&c, from), body, to);
        req.action_type = ActionType::Proposal;
        req.files_involved = vec![format!("src/{from}.rs")];
        ids.push(f.b.send_message(req).await.unwrap().message_id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    for (me, my_role) in role.iter().enumerate() {
        let expected: Vec<usize> = plan
            .iter()
            .enumerate()
            .filter(|(_, (from, to, _))| *from != me && to.is_none_or(|t| t.contains(my_role)))
            .map(|(i, _)| i)
            .collect();
        // A peek shows them and takes nothing.
        let peeked = f.b.peek_messages(seat(&c, me)).await.unwrap().messages;
        assert_eq!(peeked.len(), expected.len(), "{my_role}");
        let got = if me == 3 {
            f.b.wait_for_messages(seat(&c, me), Duration::from_secs(5), &InHand)
                .await
                .unwrap()
                .value
                .messages
        } else {
            f.b.check_messages(seat(&c, me)).await.unwrap().messages
        };
        assert_eq!(
            got.iter().map(|m| m.seq).collect::<Vec<_>>(),
            expected.iter().map(|&i| ids[i]).collect::<Vec<_>>(),
            "{my_role}"
        );
        for (m, &i) in got.iter().zip(&expected) {
            let (from, to, body) = plan[i];
            assert_eq!(m.message, body);
            assert_eq!(m.from_role, role[from]);
            assert_eq!(m.conversation_id, c.conversation_id);
            assert_eq!(m.reply_to, None);
            assert_eq!(m.action_type, "proposal");
            assert_eq!(m.files_involved, [format!("src/{from}.rs")]);
            let mut want: Vec<&str> = match to {
                Some(t) => t.to_vec(),
                None => role.iter().copied().filter(|r| *r != role[from]).collect(),
            };
            want.sort_by_key(|r| role.iter().position(|x| x == r));
            assert_eq!(m.to, want, "{body}");
            assert!(m.to.contains(&my_role.to_string()));
        }
        // Per sender, in send order.
        for sender in role {
            let from: Vec<i64> = got
                .iter()
                .filter(|m| m.from_role == sender)
                .map(|m| m.seq)
                .collect();
            assert!(from.windows(2).all(|w| w[0] < w[1]), "{my_role} from {sender}");
        }
        // Exactly once.
        assert!(
            f.b.check_messages(seat(&c, me))
                .await
                .unwrap()
                .messages
                .is_empty()
        );
        assert!(f.b.peek_messages(seat(&c, me)).await.unwrap().messages.is_empty());
    }
}

#[tokio::test]
async fn history_shows_a_member_only_what_it_sent_or_received() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2", "w3"]).await;
    f.b.send_message(send(seat(&c, 0), "lead secret for w1", Some(&["w1"])))
        .await
        .unwrap();
    f.b.send_message(send(seat(&c, 2), "w2 to w3", Some(&["w3"])))
        .await
        .unwrap();
    f.b.send_message(send(seat(&c, 1), "w1 to all", None))
        .await
        .unwrap();
    f.b.send_message(send(seat(&c, 3), "w3 to lead", Some(&["lead"])))
        .await
        .unwrap();
    let view = |h: mcp_bridge::bridge::History| h.messages.into_iter().map(|m| m.message).collect::<Vec<_>>();
    assert_eq!(
        view(f.b.read_history(seat(&c, 0), 0, 100).await.unwrap()),
        ["lead secret for w1", "w1 to all", "w3 to lead"]
    );
    assert_eq!(
        view(f.b.read_history(seat(&c, 1), 0, 100).await.unwrap()),
        ["lead secret for w1", "w1 to all"]
    );
    assert_eq!(
        view(f.b.read_history(seat(&c, 2), 0, 100).await.unwrap()),
        ["w2 to w3", "w1 to all"]
    );
    assert_eq!(
        view(f.b.read_history(seat(&c, 3), 0, 100).await.unwrap()),
        ["w2 to w3", "w1 to all", "w3 to lead"]
    );
    // Walking w2's history one by one never reaches another's message.
    let mut after = 0;
    let mut walked = vec![];
    loop {
        let page = f.b.read_history(seat(&c, 2), after, 1).await.unwrap();
        walked.extend(page.messages.iter().map(|m| m.message.clone()));
        after = page.next_after_seq;
        if !page.more {
            break;
        }
    }
    assert_eq!(walked, ["w2 to w3", "w1 to all"]);
    // Reading history marks nothing read.
    assert_eq!(f.b.check_messages(seat(&c, 2)).await.unwrap().messages.len(), 1);
}

#[tokio::test]
async fn message_status_answers_the_sender_only() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2", "w3"]).await;
    let other = team(&f.b, &["w1"]).await;
    let id =
        f.b.send_message(send(seat(&c, 0), "status?", Some(&["w1", "w2"])))
            .await
            .unwrap()
            .message_id;
    let elsewhere =
        f.b.send_message(send(seat(&other, 0), "x", None))
            .await
            .unwrap()
            .message_id;
    let receipts = |s: mcp_bridge::bridge::MessageStatus| {
        s.recipients
            .into_iter()
            .map(|r| (r.role, r.read_at))
            .collect::<Vec<_>>()
    };
    let s = f.b.message_status(seat(&c, 0), id).await.unwrap();
    assert_eq!(s.message_id, id);
    assert_eq!(receipts(s), [("w1".into(), None), ("w2".into(), None)]);
    // A peek is not a read.
    f.b.peek_messages(seat(&c, 1)).await.unwrap();
    f.clock.advance(1_500);
    f.b.check_messages(seat(&c, 1)).await.unwrap();
    let r = receipts(f.b.message_status(seat(&c, 0), id).await.unwrap());
    assert_eq!(r[0].0, "w1");
    assert_eq!(
        r[0].1.as_deref(),
        Some(mcp_bridge::clock::rfc3339(T0 + 1_500).as_str())
    );
    assert_eq!(r[1], ("w2".into(), None));
    // Recipients, bystanders, unknown ids and other conversations' ids
    // get the same answer: not found.
    for (who, asked) in [(1, id), (2, id), (3, id), (0, id + 1000), (0, elsewhere), (0, 0)] {
        let err = f.b.message_status(seat(&c, who), asked).await.unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            ("message_not_found", Some("message_id"))
        );
    }
}

#[tokio::test]
async fn list_participants_counts_unread_per_participant() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2", "w3"]).await;
    f.b.send_message(send(seat(&c, 0), "1", None)).await.unwrap();
    f.b.send_message(send(seat(&c, 0), "2", Some(&["w2"])))
        .await
        .unwrap();
    f.b.send_message(send(seat(&c, 3), "3", Some(&["w2", "lead"])))
        .await
        .unwrap();
    f.b.update_status(StatusRequest {
        auth: seat(&c, 2).into(),
        status: StatusKind::Blocked,
        note: Some("waiting on w3".into()),
    })
    .await
    .unwrap();
    let unread = |p: mcp_bridge::bridge::Participants| {
        p.participants
            .iter()
            .map(|v| (v.role.clone(), v.unread))
            .collect::<HashMap<_, _>>()
    };
    let list = f.b.list_participants(seat(&c, 1)).await.unwrap();
    let seats: Vec<(&str, &str, bool)> = list
        .participants
        .iter()
        .map(|p| (p.session_id.as_str(), p.role.as_str(), p.agent))
        .collect();
    assert_eq!(
        seats,
        [
            ("a", "lead", false),
            ("b", "w1", false),
            ("c", "w2", false),
            ("d", "w3", false)
        ]
    );
    let w2 = &list.participants[2];
    assert_eq!(w2.status.as_deref(), Some("blocked"));
    assert_eq!(w2.note.as_deref(), Some("waiting on w3"));
    assert!(w2.alive);
    assert!(list.participants[0].status.is_none() && !list.participants[0].alive);
    let u = unread(list);
    assert_eq!(
        u,
        HashMap::from([
            ("lead".into(), 1),
            ("w1".into(), 1),
            ("w2".into(), 3),
            ("w3".into(), 1)
        ])
    );
    f.b.check_messages(seat(&c, 2)).await.unwrap();
    let u = unread(f.b.list_participants(seat(&c, 3)).await.unwrap());
    assert_eq!(u["w2"], 0);
    assert_eq!(u["lead"], 1);
}

#[tokio::test]
async fn check_partner_status_points_a_team_to_list_participants() {
    let f = fixture(unlimited()).await;
    let c = team(&f.b, &["w1", "w2"]).await;
    let err = f.b.partner_status(seat(&c, 1)).await.unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    assert!(err.to_string().contains("list_participants"), "{err}");
    // A pair keeps the original meaning.
    let pair = team(&f.b, &["w1"]).await;
    f.b.send_message(send(seat(&pair, 0), "hi", None)).await.unwrap();
    let s = f.b.partner_status(seat(&pair, 0)).await.unwrap();
    assert_eq!((s.partner_role.as_str(), s.unread_by_partner), ("w1", 1));
}

#[tokio::test]
async fn the_message_quota_refuses_the_next_send_and_stores_nothing() {
    let f = fixture(Limits {
        max_messages_per_conversation: Some(3),
        ..unlimited()
    })
    .await;
    let c = team(&f.b, &["w1", "w2"]).await;
    let other = team(&f.b, &["w1", "w2"]).await;
    for (i, from) in [0, 1, 2].into_iter().enumerate() {
        f.b.send_message(send(seat(&c, from), &format!("m{i}"), None))
            .await
            .unwrap();
    }
    // Any sender, any address: the conversation is full.
    for (from, to) in [(0, None), (1, Some(&["lead"][..])), (2, Some(&["w1"][..]))] {
        let err =
            f.b.send_message(send(seat(&c, from), "one too many", to))
                .await
                .unwrap_err();
        assert_eq!(err.code(), "quota_exceeded");
        let text = err.to_string();
        assert!(
            text.contains("max_messages_per_conversation") && text.contains('3'),
            "{text}"
        );
    }
    assert_eq!(messages_in(&f, &c).await, 3);
    assert_eq!(
        count(
            &f.db,
            &format!(
                "SELECT count(*) FROM messages WHERE conversation_id = '{}'",
                c.conversation_id
            )
        )
        .await,
        3
    );
    assert!(
        !f.b.read_history(seat(&c, 0), 0, 100)
            .await
            .unwrap()
            .messages
            .iter()
            .any(|m| m.message == "one too many")
    );
    // Reading frees nothing: the quota counts what was stored.
    for i in 0..3 {
        f.b.check_messages(seat(&c, i)).await.unwrap();
    }
    assert_eq!(
        f.b.send_message(send(seat(&c, 0), "still full", None))
            .await
            .unwrap_err()
            .code(),
        "quota_exceeded"
    );
    // Another conversation has its own quota.
    f.b.send_message(send(seat(&other, 0), "fresh", None))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_byte_quota_refuses_the_message_that_would_exceed_it() {
    let f = fixture(Limits {
        max_bytes_per_conversation: Some(100),
        ..unlimited()
    })
    .await;
    let c = team(&f.b, &["w1", "w2"]).await;
    f.b.send_message(send(seat(&c, 0), &"a".repeat(50), None))
        .await
        .unwrap();
    let before = {
        let mut tx = f.b.store().begin_read().await.unwrap();
        tx.usage(&c.conversation_id).await.unwrap()
    };
    let err =
        f.b.send_message(send(seat(&c, 1), &"b".repeat(60), None))
            .await
            .unwrap_err();
    assert_eq!(err.code(), "quota_exceeded");
    let text = err.to_string();
    assert!(
        text.contains("max_bytes_per_conversation") && text.contains("100"),
        "{text}"
    );
    // Paths count too: a short body with long paths is refused the same way.
    let mut req = send(seat(&c, 2), "x", None);
    req.files_involved = vec!["p".repeat(60)];
    assert_eq!(f.b.send_message(req).await.unwrap_err().code(), "quota_exceeded");
    let after = {
        let mut tx = f.b.store().begin_read().await.unwrap();
        tx.usage(&c.conversation_id).await.unwrap()
    };
    assert_eq!(before, after);
    assert_eq!(
        f.b.read_history(seat(&c, 1), 0, 100)
            .await
            .unwrap()
            .messages
            .len(),
        1
    );
    // What still fits is stored.
    f.b.send_message(send(seat(&c, 1), "small", None)).await.unwrap();
}

/// Two processes sending at once into a conversation with 5 messages left
/// store exactly 5: the quota is checked in the send's own transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_hold_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bridge.db");
    let clock = ManualClock::new(T0);
    let limits = Limits {
        max_messages_per_conversation: Some(5),
        ..unlimited()
    };
    let p1 = bridge_on(&db, &clock, limits.clone()).await;
    let p2 = bridge_on(&db, &clock, limits).await;
    let c = team(&p1, &["w1", "w2"]).await;
    let c = Arc::new(c);
    let mut tasks = vec![];
    for i in 0..12usize {
        let b = if i % 2 == 0 { p1.clone() } else { p2.clone() };
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            b.send_message(send(seat(&c, i % 3), &format!("m{i}"), None))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), "quota_exceeded", "{e}"),
        }
    }
    assert_eq!(ok, 5);
    assert_eq!(count(&db, "SELECT count(*) FROM messages").await, 5);
}

#[tokio::test]
async fn registered_agents_are_seated_without_tokens() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    register(&f.b, "w1", AgentRole::Agent).await;
    register(&f.b, "w2", AgentRole::Agent).await;
    let c = agent_team(&f.b, &lead, &["w1", "w2"], &["human"]).await;
    assert_eq!(c.my_role, "lead");
    assert_eq!(c.partner_role, "w1");
    assert!(c.session_a_token.is_none());
    assert!(c.session_b_token.is_none());
    let seats: Vec<(&str, &str, bool)> = c
        .seats
        .iter()
        .map(|s| (s.session_id.as_str(), s.role.as_str(), s.token.is_some()))
        .collect();
    assert_eq!(
        seats,
        [
            ("a", "lead", false),
            ("b", "w1", false),
            ("c", "w2", false),
            ("d", "human", true)
        ]
    );
    // The token seat works as before; agent seats hold no token hash.
    f.b.send_message(send(seat(&c, 3), "from a token seat", None))
        .await
        .unwrap();
    assert_eq!(
        count(
            &f.db,
            "SELECT count(*) FROM participants WHERE agent_id IS NOT NULL AND token_hash IS NULL"
        )
        .await,
        3
    );
    let list =
        f.b.list_participants(as_agent(&c.conversation_id, &lead))
            .await
            .unwrap();
    assert_eq!(
        list.participants.iter().map(|p| p.agent).collect::<Vec<_>>(),
        [true, true, true, false]
    );
    // `{"with_agents": ["w1"]}` is a whole call; the creator's role is its name.
    let pair = agent_team(&f.b, &lead, &["w1"], &[]).await;
    assert_eq!(
        (pair.my_role.as_str(), pair.partner_role.as_str()),
        ("lead", "w1")
    );
    assert!(pair.seats.iter().all(|s| s.token.is_none()));
    // An agent may still name its own role; another seat may not repeat
    // an agent's name in another case, nor may an agent be seated twice.
    for (my_role, agents, partners, field) in [
        (Some("W1"), &["w1"][..], &[][..], "with_agents[0]"),
        (None, &["w1"][..], &["W1"][..], "partner_roles[0]"),
        (None, &["w1", "w1"][..], &[][..], "with_agents[1]"),
        (None, &["lead"][..], &[][..], "with_agents[0]"),
        (None, &["nobody"][..], &[][..], "with_agents[0]"),
    ] {
        let err =
            f.b.create_conversation(CreateRequest {
                my_role: my_role.map(str::to_owned),
                partner_roles: roles(partners),
                partners_field: "partner_roles",
                with_agents: roles(agents),
                creator: Some(lead.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            ("invalid_argument", Some(field)),
            "{agents:?} {partners:?}"
        );
    }
    assert_eq!(count(&f.db, "SELECT count(*) FROM conversations").await, 2);
}

#[tokio::test]
async fn an_agent_uses_every_use_case_by_identity_alone() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    let (w1, _) = register(&f.b, "w1", AgentRole::Agent).await;
    let c = agent_team(&f.b, &lead, &["w1"], &["human"]).await;
    let id = &c.conversation_id;
    let sent =
        f.b.send_message(send(as_agent(id, &lead), "hello w1", Some(&["w1"])))
            .await
            .unwrap();
    assert_eq!(sent.recipients, ["w1"]);
    assert_eq!(
        texts(&f.b.peek_messages(as_agent(id, &w1)).await.unwrap().messages),
        ["hello w1"]
    );
    let inbox = f.b.check_messages(as_agent(id, &w1)).await.unwrap();
    assert_eq!(inbox.messages[0].from_role, "lead");
    assert_eq!(inbox.messages[0].to, ["w1"]);
    let answer =
        f.b.send_message(reply(as_agent(id, &w1), "hello lead", None, sent.message_id))
            .await
            .unwrap();
    assert_eq!(answer.recipients, ["lead", "human"]);
    let waited =
        f.b.wait_for_messages(as_agent(id, &lead), Duration::from_secs(5), &InHand)
            .await
            .unwrap()
            .value;
    assert_eq!(texts(&waited.messages), ["hello lead"]);
    assert_eq!(waited.messages[0].reply_to, Some(sent.message_id));
    let history = f.b.read_history(as_agent(id, &w1), 0, 100).await.unwrap();
    assert_eq!(texts(&history.messages), ["hello w1", "hello lead"]);
    let status =
        f.b.message_status(as_agent(id, &lead), sent.message_id)
            .await
            .unwrap();
    assert!(status.recipients[0].read_at.is_some());
    f.b.update_status(StatusRequest {
        auth: as_agent(id, &w1),
        status: StatusKind::Working,
        note: None,
    })
    .await
    .unwrap();
    let list = f.b.list_participants(as_agent(id, &lead)).await.unwrap();
    assert_eq!(list.participants[1].status.as_deref(), Some("working"));
    assert_eq!(list.participants[2].unread, 1);
    // Naming one's own seat is allowed.
    f.b.check_messages(Access::Agent {
        conversation_id: id.clone(),
        seat: Some(SessionId::B),
        agent: w1.clone(),
    })
    .await
    .unwrap();
    // In a pair, check_partner_status works by identity too.
    f.clock.advance(1);
    let pair = agent_team(&f.b, &w1, &["lead"], &[]).await;
    let s =
        f.b.partner_status(as_agent(&pair.conversation_id, &lead))
            .await
            .unwrap();
    assert_eq!(s.partner_role, "w1");
    let mine = f.b.my_conversations(&lead).await.unwrap().conversations;
    assert_eq!(
        mine.iter()
            .map(|m| (m.conversation_id.as_str(), m.role.as_str(), m.session_id.as_str()))
            .collect::<Vec<_>>(),
        [
            (pair.conversation_id.as_str(), "lead", "b"),
            (id.as_str(), "lead", "a")
        ]
    );
    // The token seat in the mixed conversation reads what was sent to all.
    assert_eq!(
        texts(&f.b.check_messages(seat(&c, 2)).await.unwrap().messages),
        ["hello lead"]
    );
}

#[tokio::test]
async fn an_agent_cannot_take_another_seat_or_a_conversation_it_is_not_in() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    register(&f.b, "w1", AgentRole::Agent).await;
    let (outsider, _) = register(&f.b, "outsider", AgentRole::Agent).await;
    let c = agent_team(&f.b, &lead, &["w1"], &["human"]).await;
    let id = &c.conversation_id;
    f.b.send_message(send(as_agent(id, &lead), "for w1 and human", None))
        .await
        .unwrap();
    let msg =
        f.b.send_message(send(as_agent(id, &lead), "for w1", Some(&["w1"])))
            .await
            .unwrap()
            .message_id;

    // Not seated: every use case refuses with not_a_participant.
    let out = || as_agent(id, &outsider);
    let codes = [
        f.b.send_message(send(out(), "hi", None))
            .await
            .unwrap_err()
            .code(),
        f.b.check_messages(out()).await.unwrap_err().code(),
        f.b.peek_messages(out()).await.unwrap_err().code(),
        f.b.read_history(out(), 0, 100).await.unwrap_err().code(),
        f.b.list_participants(out()).await.unwrap_err().code(),
        f.b.message_status(out(), msg).await.unwrap_err().code(),
        f.b.partner_status(out()).await.unwrap_err().code(),
        f.b.wait_for_messages(out(), Duration::from_millis(10), &InHand)
            .await
            .unwrap_err()
            .code(),
        f.b.update_status(StatusRequest {
            auth: out(),
            status: StatusKind::Working,
            note: None,
        })
        .await
        .unwrap_err()
        .code(),
    ];
    assert!(codes.iter().all(|c| *c == "not_a_participant"), "{codes:?}");

    // A seated agent naming another seat is refused, not served as that seat.
    for other in [SessionId::B, SessionId::nth(2).unwrap()] {
        let err =
            f.b.check_messages(Access::Agent {
                conversation_id: id.clone(),
                seat: Some(other),
                agent: lead.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            ("invalid_argument", Some("session_id"))
        );
    }
    // An agent's seat opens to no token: not the creator's, not another seat's.
    let human_token = c.seats[2].token.as_deref().unwrap();
    for session in [SessionId::A, SessionId::B] {
        let err =
            f.b.check_messages(Auth {
                conversation_id: id.clone(),
                session_id: session,
                token: SessionToken::from_presented(human_token),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_token");
    }
    // Nothing was delivered to anyone along the way.
    let list = f.b.list_participants(as_agent(id, &lead)).await.unwrap();
    assert_eq!(
        list.participants.iter().map(|p| p.unread).collect::<Vec<_>>(),
        [0, 2, 1]
    );
    // The outsider's refusals are audited under its name.
    assert!(
        count(
            &f.db,
            "SELECT count(*) FROM audit WHERE actor = 'agent:outsider' \
             AND json_extract(detail, '$.code') = 'not_a_participant'"
        )
        .await
            >= 1
    );
}

#[tokio::test]
async fn revocation_and_rotation_take_effect_at_the_next_call() {
    let f = fixture(unlimited()).await;
    let (lead, lead_cred) = register(&f.b, "lead", AgentRole::Agent).await;
    let (w1, w1_cred) = register(&f.b, "w1", AgentRole::Agent).await;
    let c = agent_team(&f.b, &lead, &["w1"], &[]).await;
    let id = &c.conversation_id;
    f.b.send_message(send(as_agent(id, &lead), "before", None))
        .await
        .unwrap();

    // Revoke w1: its very next call fails, whatever the call.
    let revoked = f.b.revoke_agent("w1").await.unwrap();
    assert!(revoked.changed);
    let stored = messages_in(&f, &c).await;
    let codes = [
        f.b.send_message(send(as_agent(id, &w1), "after", None))
            .await
            .unwrap_err()
            .code(),
        f.b.check_messages(as_agent(id, &w1)).await.unwrap_err().code(),
        f.b.read_history(as_agent(id, &w1), 0, 10)
            .await
            .unwrap_err()
            .code(),
        f.b.list_participants(as_agent(id, &w1)).await.unwrap_err().code(),
        f.b.wait_for_any(&w1, Duration::from_millis(10), &InHand)
            .await
            .unwrap_err()
            .code(),
        f.b.my_conversations(&w1).await.unwrap_err().code(),
        f.b.create_conversation(CreateRequest {
            my_role: None,
            partner_roles: roles(&["x"]),
            partners_field: "partner_roles",
            with_agents: vec![],
            creator: Some(w1.clone()),
        })
        .await
        .unwrap_err()
        .code(),
    ];
    assert!(codes.iter().all(|c| *c == "agent_revoked"), "{codes:?}");
    assert_eq!(messages_in(&f, &c).await, stored);
    // Its unread message stays unread: the revoked agent took nothing.
    let list = f.b.list_participants(as_agent(id, &lead)).await.unwrap();
    assert_eq!(list.participants[1].unread, 1);
    // A revoked agent can no longer be seated by anyone.
    let err =
        f.b.create_conversation(CreateRequest {
            my_role: None,
            partner_roles: vec![],
            partners_field: "partner_roles",
            with_agents: roles(&["w1"]),
            creator: Some(lead.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("invalid_argument", Some("with_agents[0]"))
    );
    // Revocation is final: no rotation brings it back.
    assert!(f.b.rotate_agent("w1").await.is_err());
    assert_eq!(
        f.b.identify_agent(&AgentCredential::parse(&w1_cred).unwrap())
            .await
            .unwrap_err()
            .code(),
        "agent_revoked"
    );

    // Rotate lead: the old identity fails at once, the new one works.
    let rotated = f.b.rotate_agent("lead").await.unwrap();
    let err =
        f.b.send_message(send(as_agent(id, &lead), "old identity", None))
            .await
            .unwrap_err();
    assert_eq!(err.code(), "agent_revoked");
    assert_eq!(
        f.b.identify_agent(&AgentCredential::parse(&lead_cred).unwrap())
            .await
            .unwrap_err()
            .code(),
        "agent_revoked"
    );
    let new_lead =
        f.b.identify_agent(&AgentCredential::parse(&rotated.credential).unwrap())
            .await
            .unwrap();
    assert_eq!(new_lead.id, lead.id);
    f.b.send_message(send(as_agent(id, &new_lead), "new identity", None))
        .await
        .unwrap();
    assert_eq!(messages_in(&f, &c).await, stored + 1);
}

#[tokio::test]
async fn identify_agent_refuses_unknown_credentials_alike() {
    let f = fixture(unlimited()).await;
    register(&f.b, "w1", AgentRole::Agent).await;
    let unknown = AgentCredential::generate();
    let err = f.b.identify_agent(&unknown).await.unwrap_err();
    assert_eq!(err.code(), "agent_revoked");
    // The message never quotes the credential.
    assert!(!err.to_string().contains(unknown.expose()));
    // A seat token's text is not a credential.
    let c = team(&f.b, &["x"]).await;
    let token = c.session_a_token.as_deref().unwrap();
    assert!(AgentCredential::parse(token).is_none());
}

#[tokio::test]
async fn with_agents_needs_a_registered_creator() {
    let f = fixture(unlimited()).await;
    register(&f.b, "w1", AgentRole::Agent).await;
    let err =
        f.b.create_conversation(CreateRequest {
            my_role: Some("lead".into()),
            partner_roles: vec![],
            partners_field: "partner_roles",
            with_agents: roles(&["w1"]),
            creator: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("invalid_argument", Some("with_agents"))
    );
    // Even alongside token seats.
    let err =
        f.b.create_conversation(CreateRequest {
            my_role: Some("lead".into()),
            partner_roles: roles(&["human"]),
            partners_field: "partner_roles",
            with_agents: roles(&["w1"]),
            creator: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("with_agents"));
    // Without a creator, my_role is required.
    let err =
        f.b.create_conversation(CreateRequest {
            my_role: None,
            partner_roles: roles(&["human"]),
            partners_field: "partner_roles",
            with_agents: vec![],
            creator: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("my_role"));
    assert_eq!(count(&f.db, "SELECT count(*) FROM conversations").await, 0);
}

#[tokio::test]
async fn observers_and_admins_cannot_be_seated_by_with_agents() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    register(&f.b, "watcher", AgentRole::Observer).await;
    register(&f.b, "boss", AgentRole::Admin).await;
    register(&f.b, "w1", AgentRole::Agent).await;
    for agents in [&["watcher"][..], &["boss"][..], &["w1", "watcher"][..]] {
        let err =
            f.b.create_conversation(CreateRequest {
                my_role: None,
                partner_roles: vec![],
                partners_field: "partner_roles",
                with_agents: roles(agents),
                creator: Some(lead.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{agents:?}");
        assert_eq!(
            err.field(),
            Some(format!("with_agents[{}]", agents.len() - 1).as_str())
        );
    }
    assert_eq!(count(&f.db, "SELECT count(*) FROM conversations").await, 0);
    assert_eq!(count(&f.db, "SELECT count(*) FROM participants").await, 0);
}

/// An observer is "meant to read, not to take part": creating a
/// conversation would seat it at `a` and let it send.
#[tokio::test]
async fn an_observer_cannot_seat_itself_by_creating_a_conversation() {
    let f = fixture(unlimited()).await;
    let (watcher, _) = register(&f.b, "watcher", AgentRole::Observer).await;
    register(&f.b, "w1", AgentRole::Agent).await;
    let result =
        f.b.create_conversation(CreateRequest {
            my_role: None,
            partner_roles: roles(&["human"]),
            partners_field: "partner_roles",
            with_agents: vec![],
            creator: Some(watcher.clone()),
        })
        .await;
    let seated = count(
        &f.db,
        "SELECT count(*) FROM participants WHERE agent_id IS NOT NULL",
    )
    .await;
    assert!(
        result.is_err(),
        "an observer agent was seated as a conversation's creator"
    );
    assert_eq!(seated, 0);
}

#[tokio::test]
async fn wait_for_any_delivers_across_conversations_exactly_once() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    let (w1, _) = register(&f.b, "w1", AgentRole::Agent).await;
    let (w2, _) = register(&f.b, "w2", AgentRole::Agent).await;
    // lead holds seat a in one, seat b in the other.
    let first = agent_team(&f.b, &lead, &["w1", "w2"], &[]).await;
    f.clock.advance(1);
    let second = agent_team(&f.b, &w2, &["lead"], &["human"]).await;
    let (one, two) = (&first.conversation_id, &second.conversation_id);
    f.b.send_message(send(as_agent(one, &w1), "one: w1 to lead", Some(&["lead"])))
        .await
        .unwrap();
    f.b.send_message(send(as_agent(one, &w1), "one: w1 to w2", Some(&["w2"])))
        .await
        .unwrap();
    f.b.send_message(send(as_agent(two, &w2), "two: w2 to all", None))
        .await
        .unwrap();
    f.b.send_message(send(seat(&second, 2), "two: human to w2", Some(&["w2"])))
        .await
        .unwrap();
    f.b.send_message(send(as_agent(one, &w2), "one: w2 to all", None))
        .await
        .unwrap();
    let got =
        f.b.wait_for_any(&lead, Duration::from_secs(5), &InHand)
            .await
            .unwrap();
    let seen: Vec<(&str, &str)> = got
        .value
        .messages
        .iter()
        .map(|m| (m.conversation_id.as_str(), m.message.as_str()))
        .collect();
    // Oldest conversation first, each in order.
    assert_eq!(
        seen,
        [
            (one.as_str(), "one: w1 to lead"),
            (one.as_str(), "one: w2 to all"),
            (two.as_str(), "two: w2 to all")
        ]
    );
    assert!(!got.value.timed_out);
    let receipt = got.receipt.expect("a delivery has a receipt");
    assert_eq!(receipt.parts.len(), 2);
    // Exactly once: nothing left anywhere for lead.
    let again =
        f.b.wait_for_any(&lead, Duration::from_millis(50), &InHand)
            .await
            .unwrap();
    assert!(again.value.messages.is_empty() && again.value.timed_out);
    assert!(
        f.b.check_messages(as_agent(one, &lead))
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    assert!(
        f.b.check_messages(as_agent(two, &lead))
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    // The others' messages were not touched.
    let w2_first = f.b.check_messages(as_agent(one, &w2)).await.unwrap();
    assert_eq!(texts(&w2_first.messages), ["one: w1 to w2"]);
    let w2_second = f.b.check_messages(as_agent(two, &w2)).await.unwrap();
    assert_eq!(texts(&w2_second.messages), ["two: human to w2"]);
    // A message that arrives during the wait wakes it.
    let waiter = {
        let b = f.b.clone();
        let lead = lead.clone();
        tokio::spawn(async move { b.wait_for_any(&lead, Duration::from_secs(10), &InHand).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    f.b.send_message(send(as_agent(two, &w2), "two: late", Some(&["lead"])))
        .await
        .unwrap();
    let late = waiter.await.unwrap().unwrap().value;
    assert_eq!(texts(&late.messages), ["two: late"]);
    assert_eq!(late.messages[0].conversation_id, *two);
    // A closed conversation is no longer waited on.
    f.b.close_conversation(two).await.unwrap();
    f.b.send_message(send(as_agent(one, &w1), "one: after close", Some(&["lead"])))
        .await
        .unwrap();
    let after =
        f.b.wait_for_any(&lead, Duration::from_secs(5), &InHand)
            .await
            .unwrap()
            .value;
    assert_eq!(texts(&after.messages), ["one: after close"]);
}

#[tokio::test]
async fn credentials_never_reach_the_audit_trail_or_the_database_file() {
    let f = fixture(unlimited()).await;
    let (lead, lead_cred) = register(&f.b, "lead", AgentRole::Agent).await;
    let (w1, w1_cred) = register(&f.b, "w1", AgentRole::Agent).await;
    let (_, watcher_cred) = register(&f.b, "watcher", AgentRole::Observer).await;
    let c = agent_team(&f.b, &lead, &["w1"], &["human"]).await;
    let id = &c.conversation_id;
    f.b.send_message(send(as_agent(id, &lead), "hello", None))
        .await
        .unwrap();
    f.b.check_messages(as_agent(id, &w1)).await.unwrap();
    // Hostile: paste a credential into a message, a note and a role.
    let pasted = format!("my credential is {w1_cred}");
    let s =
        f.b.send_message(send(as_agent(id, &w1), &pasted, None))
            .await
            .unwrap();
    assert!(!s.redacted.is_empty(), "a pasted credential must be redacted");
    f.b.update_status(StatusRequest {
        auth: as_agent(id, &w1),
        status: StatusKind::Blocked,
        note: Some(lead_cred.clone()),
    })
    .await
    .unwrap();
    let _ =
        f.b.send_message(send(as_agent(id, &w1), "x", Some(&[&watcher_cred])))
            .await;
    let _ =
        f.b.create_conversation(CreateRequest::team("lead", vec![watcher_cred.clone()]))
            .await;
    let rotated = f.b.rotate_agent("lead").await.unwrap();
    f.b.revoke_agent("w1").await.unwrap();
    let _ =
        f.b.identify_agent(&AgentCredential::parse(&w1_cred).unwrap())
            .await;
    let _ = f.b.check_messages(as_agent(id, &w1)).await;
    f.b.flush_refusal_counts().await.unwrap();

    let secrets = [
        lead_cred.as_str(),
        w1_cred.as_str(),
        watcher_cred.as_str(),
        &rotated.credential,
        c.seats[2].token.as_deref().unwrap(),
    ];
    let mut tx = f.b.store().begin_read().await.unwrap();
    let entries = tx.audit_page(0, 100_000).await.unwrap();
    drop(tx);
    assert!(entries.len() > 10, "{}", entries.len());
    for e in &entries {
        let row = format!("{e:?}");
        for s in secrets {
            assert!(!row.contains(s), "audit entry {} holds a credential", e.seq);
            // Nor its random part alone.
            assert!(
                !row.contains(&s[5..]),
                "audit entry {} holds a credential body",
                e.seq
            );
        }
    }
    // Stop every connection so the WAL is checkpointed into the file, then
    // read every file the database consists of.
    f.b.shutdown().await;
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(f.db.parent().unwrap()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    for s in secrets {
        assert!(
            !bytes.windows(s.len() - 5).any(|w| w == &s.as_bytes()[5..]),
            "a credential is in the database files"
        );
    }
}

/// The overseer's `rotate_token` on a seat held by a registered agent
/// would give it a token beside its agent: the seat CHECK forbids it. The
/// overseer must get a clear refusal, not an internal database error, and
/// the agent must keep its seat.
#[tokio::test]
async fn rotating_the_token_of_an_agents_seat_is_refused_clearly() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    register(&f.b, "w1", AgentRole::Agent).await;
    let c = agent_team(&f.b, &lead, &["w1"], &[]).await;
    let err =
        f.b.rotate_token(&c.conversation_id, SessionId::B)
            .await
            .expect_err("an agent's seat was given a token");
    assert!(
        !matches!(err, mcp_bridge::bridge::AdminError::Store(_)),
        "an internal error instead of a clear refusal: {err}"
    );
    f.b.send_message(send(as_agent(&c.conversation_id, &lead), "still here", None))
        .await
        .unwrap();
}

/// The overseer revoking an agent's seat in one conversation ends its
/// access there only: calls by identity are refused, and a wait across its
/// conversations no longer delivers that seat's messages.
#[tokio::test]
async fn a_revoked_agent_seat_is_closed_to_its_agent_everywhere() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    let (w1, _) = register(&f.b, "w1", AgentRole::Agent).await;
    let kept = agent_team(&f.b, &lead, &["w1"], &[]).await;
    f.clock.advance(1);
    let cut = agent_team(&f.b, &lead, &["w1"], &[]).await;
    f.b.send_message(send(as_agent(&kept.conversation_id, &lead), "kept", None))
        .await
        .unwrap();
    f.b.send_message(send(as_agent(&cut.conversation_id, &lead), "cut", None))
        .await
        .unwrap();
    f.b.revoke_session(&cut.conversation_id, SessionId::B)
        .await
        .unwrap();
    for code in [
        f.b.check_messages(as_agent(&cut.conversation_id, &w1))
            .await
            .unwrap_err()
            .code(),
        f.b.read_history(as_agent(&cut.conversation_id, &w1), 0, 10)
            .await
            .unwrap_err()
            .code(),
        f.b.send_message(send(as_agent(&cut.conversation_id, &w1), "x", None))
            .await
            .unwrap_err()
            .code(),
    ] {
        assert_eq!(code, "session_revoked");
    }
    let got =
        f.b.wait_for_any(&w1, Duration::from_secs(5), &InHand)
            .await
            .unwrap()
            .value;
    assert_eq!(texts(&got.messages), ["kept"]);
    let again =
        f.b.wait_for_any(&w1, Duration::from_millis(30), &InHand)
            .await
            .unwrap()
            .value;
    assert!(again.messages.is_empty() && again.timed_out);
    // The revoked seat's message stays unread; nothing was handed over.
    let list =
        f.b.list_participants(as_agent(&cut.conversation_id, &lead))
            .await
            .unwrap();
    assert_eq!(list.participants[1].unread, 1);
    assert!(list.participants[1].revoked);
}

/// Seats held by agents count against the 16 like token seats.
#[tokio::test]
async fn agents_and_token_seats_together_hold_sixteen_seats_at_most() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    let mut names = vec![];
    for i in 1..=15 {
        let name = format!("w{i}");
        register(&f.b, &name, AgentRole::Agent).await;
        names.push(name);
    }
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let full = agent_team(&f.b, &lead, &all, &[]).await;
    assert_eq!(full.seats.len(), 16);
    assert!(full.seats.iter().all(|s| s.token.is_none()));
    let before = count(&f.db, "SELECT count(*) FROM conversations").await;
    for (agents, partners) in [(&all[..], &["human"][..]), (&all[..14], &["h1", "h2"][..])] {
        let err =
            f.b.create_conversation(CreateRequest {
                my_role: None,
                partner_roles: roles(partners),
                partners_field: "partner_roles",
                with_agents: roles(agents),
                creator: Some(lead.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_argument");
        assert!(err.to_string().contains("16"), "{err}");
    }
    assert_eq!(count(&f.db, "SELECT count(*) FROM conversations").await, before);
}

/// Exactly once whatever the number of processes: one seat checking and
/// waiting through three `Bridge`s on one file while two others send.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_message_reaches_its_recipient_once_across_processes() {
    const EACH: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bridge.db");
    let clock = ManualClock::new(T0);
    let mut procs = vec![];
    for _ in 0..3 {
        procs.push(bridge_on(&db, &clock, unlimited()).await);
    }
    let c = Arc::new(team(&procs[0], &["w1", "w2", "w3"]).await);
    let mut senders = vec![];
    for (p, from) in [(0usize, 0usize), (1, 2)] {
        let (b, c) = (procs[p].clone(), c.clone());
        senders.push(tokio::spawn(async move {
            let mut mine = vec![];
            for i in 0..EACH {
                let to: Option<&[&str]> = if i % 4 == 0 { Some(&["w3"]) } else { None };
                let s = b
                    .send_message(send(seat(&c, from), &format!("{from}:{i}"), to))
                    .await
                    .unwrap();
                if to.is_none() {
                    mine.push(s.message_id);
                }
            }
            mine
        }));
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = vec![];
    for (r, b) in procs.iter().enumerate() {
        let (b, c, done) = (b.clone(), c.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut got: Vec<DeliveredMessage> = vec![];
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let batch = if r == 0 {
                    b.wait_for_messages(seat(&c, 1), Duration::from_millis(20), &InHand)
                        .await
                        .unwrap()
                        .value
                        .messages
                } else {
                    b.check_messages(seat(&c, 1)).await.unwrap().messages
                };
                assert!(batch.windows(2).all(|w| w[0].seq < w[1].seq));
                if batch.is_empty() {
                    if finished {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                got.extend(batch);
            }
            got
        }));
    }
    let mut expected = vec![];
    for s in senders {
        expected.extend(s.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut got = vec![];
    for r in readers {
        got.extend(r.await.unwrap());
    }
    assert!(got.iter().all(|m| m.to.contains(&"w1".to_owned())));
    let mut seqs: Vec<i64> = got.iter().map(|m| m.seq).collect();
    seqs.sort();
    let before = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), before, "a message reached w1 twice");
    expected.sort();
    assert_eq!(seqs, expected, "w1 did not get exactly its messages");
    // w3 got the direct ones too, once.
    let w3 = procs[2].check_messages(seat(&c, 3)).await.unwrap();
    assert_eq!(w3.messages.len() as i64 + w3.remaining, (2 * EACH) as i64);
}

/// A wait across conversations that never reached its caller is taken
/// back in every conversation it touched: unread again, receipts cleared,
/// delivered again once.
#[tokio::test]
async fn a_returned_wait_across_conversations_is_unread_again_everywhere() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    let (w1, _) = register(&f.b, "w1", AgentRole::Agent).await;
    let one = agent_team(&f.b, &lead, &["w1"], &[]).await;
    f.clock.advance(1);
    let two = agent_team(&f.b, &w1, &["lead"], &[]).await;
    let m1 =
        f.b.send_message(send(as_agent(&one.conversation_id, &w1), "in one", None))
            .await
            .unwrap()
            .message_id;
    let m2 =
        f.b.send_message(send(as_agent(&two.conversation_id, &w1), "in two", None))
            .await
            .unwrap()
            .message_id;
    f.clock.advance(10);
    let handed =
        f.b.wait_for_any(&lead, Duration::from_secs(5), &InHand)
            .await
            .unwrap();
    assert_eq!(texts(&handed.value.messages), ["in one", "in two"]);
    let receipt = handed.receipt.unwrap();
    for (conv, id) in [(&one, m1), (&two, m2)] {
        let s =
            f.b.message_status(as_agent(&conv.conversation_id, &w1), id)
                .await
                .unwrap();
        assert!(s.recipients[0].read_at.is_some());
    }
    assert_eq!(
        f.b.return_unread(&receipt, mcp_bridge::bridge::ReturnReason::Closed)
            .await
            .unwrap(),
        2
    );
    // Returning twice changes nothing.
    assert_eq!(
        f.b.return_unread(&receipt, mcp_bridge::bridge::ReturnReason::Closed)
            .await
            .unwrap(),
        0
    );
    for (conv, id) in [(&one, m1), (&two, m2)] {
        let s =
            f.b.message_status(as_agent(&conv.conversation_id, &w1), id)
                .await
                .unwrap();
        assert_eq!(s.recipients[0].read_at, None);
    }
    let again =
        f.b.wait_for_any(&lead, Duration::from_secs(5), &InHand)
            .await
            .unwrap();
    assert_eq!(texts(&again.value.messages), ["in one", "in two"]);
    assert!(
        f.b.wait_for_any(&lead, Duration::from_millis(20), &InHand)
            .await
            .unwrap()
            .value
            .messages
            .is_empty()
    );
}

/// Identities exist so that a sender cannot pose as someone else (the
/// issue's incident: a worker sending as "HumanOverseer"). A registered
/// agent that names its own role must not take another registered agent's
/// name: its seat shows `agent: true`, so the others would take its
/// messages for that agent's.
#[tokio::test]
async fn an_agent_cannot_take_another_registered_agents_name_as_its_role() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    register(&f.b, "w1", AgentRole::Agent).await;
    register(&f.b, "reviewer", AgentRole::Agent).await;
    let result =
        f.b.create_conversation(CreateRequest {
            my_role: Some("reviewer".into()),
            partner_roles: vec![],
            partners_field: "partner_roles",
            with_agents: roles(&["w1"]),
            creator: Some(lead.clone()),
        })
        .await;
    let err = result.expect_err("agent lead was seated under registered agent reviewer's name");
    assert_eq!((err.code(), err.field()), ("invalid_argument", Some("my_role")));
}

/// A caller that has gone before its delivery commits.
struct Gone;

impl mcp_bridge::bridge::Recipient for Gone {
    fn is_gone(&self) -> bool {
        true
    }

    fn gone(&self) -> impl std::future::Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// Receipts are honest: a delivery to a caller who left is not a read,
/// for a token seat, an agent in one conversation, or a wait across all.
#[tokio::test]
async fn nothing_is_marked_read_for_a_caller_who_has_gone() {
    let f = fixture(unlimited()).await;
    let (lead, _) = register(&f.b, "lead", AgentRole::Agent).await;
    let (w1, _) = register(&f.b, "w1", AgentRole::Agent).await;
    let c = agent_team(&f.b, &lead, &["w1"], &["human"]).await;
    let id = &c.conversation_id;
    let m =
        f.b.send_message(send(as_agent(id, &lead), "are you there?", None))
            .await
            .unwrap()
            .message_id;
    let codes = [
        f.b.check_messages_for(seat(&c, 2), &Gone)
            .await
            .unwrap_err()
            .code(),
        f.b.check_messages_for(as_agent(id, &w1), &Gone)
            .await
            .unwrap_err()
            .code(),
        f.b.wait_for_any(&w1, Duration::from_secs(1), &Gone)
            .await
            .unwrap_err()
            .code(),
    ];
    assert_eq!(codes, ["cancelled"; 3]);
    let s = f.b.message_status(as_agent(id, &lead), m).await.unwrap();
    assert!(s.recipients.iter().all(|r| r.read_at.is_none()), "{s:?}");
    assert_eq!(f.b.check_messages(seat(&c, 2)).await.unwrap().messages.len(), 1);
    assert_eq!(
        f.b.check_messages(as_agent(id, &w1))
            .await
            .unwrap()
            .messages
            .len(),
        1
    );
}
