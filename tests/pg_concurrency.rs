//! The agents' calls run concurrently on PostgreSQL (issue 17): they share
//! the write lock and serialise only on their conversation's row, their
//! rate key, the rows they deliver and, last, the audit chain. These tests
//! attack exactly what that must still guarantee, with two servers (two
//! connection pools, as two `serve` processes have) calling at once on one
//! database: every message delivered once, in order; the audit chain one
//! unforked line; quotas and rate limits exact; an exclusive operation
//! (the overseer's close) among the calls without a deadlock.
//!
//! Run under `scripts/with-postgres`; without `MCP_BRIDGE_TEST_PG` they
//! say so and pass without running.

mod pg_support;

use std::collections::HashSet;
use std::sync::Arc;

use mcp_bridge::auth::{AgentCredential, ServerKey, SessionToken};
use mcp_bridge::bridge::{Access, AgentIdentity, Auth, Bridge, CreateRequest, Error, SendRequest, SessionId};
use mcp_bridge::clock::ManualClock;
use mcp_bridge::config::Limits;
use mcp_bridge::limits::RateLimit;
use mcp_bridge::redact::Redactor;
use mcp_bridge::store::PgStore;
use mcp_bridge::store::agents::AgentRole;
use mcp_bridge::store::postgres::OpenMode;

type PgBridge = Bridge<PgStore>;

const KEY: [u8; 32] = [23; 32];

/// Two servers on one database, with `limits`.
async fn two_servers(url: &str, limits: Limits) -> [Arc<PgBridge>; 2] {
    two_servers_on(url, limits, Arc::new(ManualClock::new(1_800_000_000_000))).await
}

/// Two servers on one database, with `limits`, reading `clock`.
async fn two_servers_on(url: &str, limits: Limits, clock: Arc<ManualClock>) -> [Arc<PgBridge>; 2] {
    let mut servers = Vec::new();
    for _ in 0..2 {
        let store = PgStore::open(url, OpenMode::CreateIfMissing)
            .await
            .unwrap()
            .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
        servers.push(Arc::new(Bridge::new(
            store,
            ServerKey::from_bytes(KEY),
            Redactor::builtin(),
            limits.clone(),
            clock.clone(),
        )));
    }
    [servers[0].clone(), servers[1].clone()]
}

fn unlimited() -> Limits {
    Limits {
        send_rate: RateLimit::parse("off").unwrap(),
        read_rate: RateLimit::parse("off").unwrap(),
        ..Limits::default()
    }
}

/// A conversation of two token seats: its id and the seats' credentials.
async fn pair(bridge: &PgBridge) -> (Seat, Seat) {
    let created = bridge
        .create_conversation(CreateRequest::pair("sender", "receiver"))
        .await
        .unwrap();
    let token = |id: SessionId| {
        let t = created
            .seats
            .iter()
            .find(|s| s.session_id == id)
            .and_then(|s| s.token.as_deref())
            .unwrap();
        Seat {
            conversation_id: created.conversation_id.clone(),
            session_id: id,
            token: t.to_owned(),
        }
    };
    (token(SessionId::A), token(SessionId::B))
}

#[derive(Clone)]
struct Seat {
    conversation_id: String,
    session_id: SessionId,
    token: String,
}

impl Seat {
    fn auth(&self) -> Auth {
        Auth {
            conversation_id: self.conversation_id.clone(),
            session_id: self.session_id,
            token: SessionToken::from_presented(&self.token),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_on_two_servers_deliver_each_message_once_in_order_on_one_audit_chain() {
    pg_support::with_fresh_db(|url| async move {
        const CONVERSATIONS: usize = 4;
        const SENDERS: usize = 3;
        const EACH: usize = 25;
        let servers = two_servers(&url, unlimited()).await;
        let mut conversations = Vec::new();
        for _ in 0..CONVERSATIONS {
            conversations.push(pair(&servers[0]).await);
        }

        // Several senders per conversation, spread over both servers, all
        // at once; each sent id is kept.
        let mut senders = Vec::new();
        for (c, (sender, _)) in conversations.iter().enumerate() {
            for s in 0..SENDERS {
                let bridge = servers[(c + s) % 2].clone();
                let seat = sender.clone();
                senders.push(tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for i in 0..EACH {
                        let stored = bridge
                            .send_message(SendRequest::to_all(seat.auth(), format!("c{c} s{s} m{i}")))
                            .await
                            .unwrap();
                        ids.push(stored.message_id);
                    }
                    ids
                }));
            }
        }

        // Even conversations: one receiver alternating between the servers,
        // whose batches must follow each other in seq order. Odd ones: two
        // receivers racing on different servers for the same inbox.
        let mut receivers = Vec::new();
        for (c, (_, receiver)) in conversations.iter().enumerate() {
            let racers = if c % 2 == 0 { 1 } else { 2 };
            for r in 0..racers {
                let servers = servers.clone();
                let seat = receiver.clone();
                receivers.push(tokio::spawn(async move {
                    let mut batches: Vec<Vec<i64>> = Vec::new();
                    let mut idle = 0;
                    let mut turn = r;
                    while idle < 200 {
                        let inbox = servers[turn % 2].check_messages(seat.auth()).await.unwrap();
                        turn += 1;
                        if inbox.messages.is_empty() {
                            idle += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                            continue;
                        }
                        idle = 0;
                        batches.push(inbox.messages.iter().map(|m| m.seq).collect());
                    }
                    (c, racers, batches)
                }));
            }
        }

        let mut sent: Vec<HashSet<i64>> = vec![HashSet::new(); CONVERSATIONS];
        for (n, task) in senders.into_iter().enumerate() {
            sent[n / SENDERS].extend(task.await.unwrap());
        }
        let mut received: Vec<Vec<i64>> = vec![Vec::new(); CONVERSATIONS];
        for task in receivers {
            let (c, racers, batches) = task.await.unwrap();
            for batch in &batches {
                assert!(
                    batch.windows(2).all(|w| w[0] < w[1]),
                    "a batch out of order: {batch:?}"
                );
            }
            if racers == 1 {
                for w in batches.windows(2) {
                    assert!(
                        w[0].last() < w[1].first(),
                        "conversation {c}: a later call delivered an older message: {:?} then {:?}",
                        w[0],
                        w[1]
                    );
                }
            }
            received[c].extend(batches.into_iter().flatten());
        }
        for c in 0..CONVERSATIONS {
            let unique: HashSet<i64> = received[c].iter().copied().collect();
            assert_eq!(
                unique.len(),
                received[c].len(),
                "conversation {c}: a message delivered twice"
            );
            assert_eq!(
                unique, sent[c],
                "conversation {c}: delivered is not what was sent"
            );
            assert_eq!(sent[c].len(), SENDERS * EACH);
        }

        // One chain, every call in it, no fork.
        let report = servers[1].verify_audit().await.expect("the audit chain verifies");
        let sends = (CONVERSATIONS * SENDERS * EACH) as u64;
        assert!(
            report.entries > sends + CONVERSATIONS as u64,
            "{} entries for {sends} sends",
            report.entries
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quota_holds_exactly_when_two_servers_send_at_once() {
    pg_support::with_fresh_db(|url| async move {
        const QUOTA: u64 = 25;
        let limits = Limits {
            max_messages_per_conversation: Some(QUOTA),
            ..unlimited()
        };
        let servers = two_servers(&url, limits).await;
        let (sender, _) = pair(&servers[0]).await;
        let mut tasks = Vec::new();
        for t in 0..4 {
            let bridge = servers[t % 2].clone();
            let seat = sender.clone();
            tasks.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..10 {
                    outcomes.push(
                        bridge
                            .send_message(SendRequest::to_all(seat.auth(), format!("t{t} m{i}")))
                            .await,
                    );
                }
                outcomes
            }));
        }
        let (mut stored, mut refused) = (0, 0);
        for task in tasks {
            for outcome in task.await.unwrap() {
                match outcome {
                    Ok(_) => stored += 1,
                    Err(Error::QuotaExceeded { .. }) => refused += 1,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        }
        assert_eq!((stored, refused), (QUOTA, 40 - QUOTA));
        servers[0].verify_audit().await.expect("the audit chain verifies");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_holds_exactly_when_two_servers_count_at_once() {
    pg_support::with_fresh_db(|url| async move {
        let limits = Limits {
            send_rate: RateLimit::parse("10/min").unwrap(),
            ..unlimited()
        };
        let servers = two_servers(&url, limits).await;
        let (sender, _) = pair(&servers[0]).await;
        let mut tasks = Vec::new();
        for t in 0..3 {
            let bridge = servers[t % 2].clone();
            let seat = sender.clone();
            tasks.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..8 {
                    outcomes.push(
                        bridge
                            .send_message(SendRequest::to_all(seat.auth(), format!("t{t} m{i}")))
                            .await,
                    );
                }
                outcomes
            }));
        }
        let (mut stored, mut limited) = (0, 0);
        for task in tasks {
            for outcome in task.await.unwrap() {
                match outcome {
                    Ok(_) => stored += 1,
                    Err(Error::RateLimited { .. }) => limited += 1,
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        }
        assert_eq!((stored, limited), (10, 14));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_overseer_closes_a_conversation_among_calls_without_a_deadlock() {
    pg_support::with_fresh_db(|url| async move {
        let servers = two_servers(&url, unlimited()).await;
        let (sender, receiver) = pair(&servers[0]).await;
        let mut tasks = Vec::new();
        for t in 0..4 {
            let bridge = servers[t % 2].clone();
            let (sender, receiver) = (sender.clone(), receiver.clone());
            tasks.push(tokio::spawn(async move {
                let mut errors = Vec::new();
                for i in 0..40 {
                    let sent = bridge
                        .send_message(SendRequest::to_all(sender.auth(), format!("t{t} m{i}")))
                        .await;
                    let checked = bridge.check_messages(receiver.auth()).await.map(drop);
                    errors.extend(sent.err());
                    errors.extend(checked.err());
                }
                errors
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        servers[1]
            .close_conversation(&sender.conversation_id)
            .await
            .expect("close among the calls");
        for task in tasks {
            for e in task.await.unwrap() {
                // After the close every call is refused as closed; a
                // deadlock would have surfaced as Busy (or as a hang).
                assert!(matches!(e, Error::ConversationClosed), "unexpected error: {e}");
            }
        }
        servers[0].verify_audit().await.expect("the audit chain verifies");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_counted_on_two_servers_reach_the_chain_once_with_every_repeat() {
    pg_support::with_fresh_db(|url| async move {
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let servers = two_servers_on(&url, unlimited(), clock.clone()).await;
        let (sender, _) = pair(&servers[0]).await;
        let forged = Seat {
            token: format!("mcpb_{}", "A".repeat(43)),
            ..sender.clone()
        };
        let mut tasks = Vec::new();
        for t in 0..6 {
            let bridge = servers[t % 2].clone();
            let (forged, sender) = (forged.clone(), sender.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..5 {
                    let refused = bridge
                        .send_message(SendRequest::to_all(forged.auth(), "forged"))
                        .await;
                    assert!(matches!(refused, Err(Error::InvalidToken { .. })), "{refused:?}");
                    bridge
                        .send_message(SendRequest::to_all(sender.auth(), format!("t{t} m{i}")))
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // The window closes; the next write, on either server, writes the count.
        clock.advance(61_000);
        servers[1]
            .send_message(SendRequest::to_all(sender.auth(), "after the window"))
            .await
            .unwrap();
        servers[0].verify_audit().await.expect("the audit chain verifies");

        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let rows = client
            .query(
                "SELECT detail FROM audit WHERE action = 'message.send.refused' ORDER BY seq",
                &[],
            )
            .await
            .unwrap();
        let details: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap())
            .collect();
        assert_eq!(details.len(), 2, "one entry at once, one counted: {details:?}");
        assert_eq!(details[1]["repeats"], 29, "{details:?}");
        let left: i64 = client
            .query_one("SELECT count(*) FROM refusal_tally", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0);
    })
    .await;
}

/// A registered agent, proven on `bridge`.
async fn register(admin: &PgBridge, on: &PgBridge, name: &str) -> Arc<AgentIdentity> {
    let added = admin.add_agent(name, AgentRole::Agent).await.unwrap();
    let credential = AgentCredential::parse(&added.credential).unwrap();
    on.identify_agent(&credential).await.unwrap()
}

fn as_agent(conversation_id: &str, agent: &Arc<AgentIdentity>) -> Access {
    Access::Agent {
        conversation_id: conversation_id.to_owned(),
        seat: None,
        agent: agent.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registered_agents_call_on_two_servers_and_a_revocation_stops_the_next_call() {
    pg_support::with_fresh_db(|url| async move {
        let servers = two_servers(&url, unlimited()).await;
        let lead = register(&servers[0], &servers[0], "lead").await;
        let worker = register(&servers[0], &servers[1], "worker").await;
        let created = servers[0]
            .create_conversation(CreateRequest {
                my_role: None,
                partner_roles: Vec::new(),
                partners_field: "partner_roles",
                with_agents: vec!["worker".into()],
                creator: Some(lead.clone()),
            })
            .await
            .unwrap();
        let id = created.conversation_id.clone();
        let mut tasks = Vec::new();
        for t in 0..4 {
            let (bridge, agent) = (servers[t % 2].clone(), if t < 2 { &lead } else { &worker });
            let (agent, id) = (agent.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                let mut received = Vec::new();
                for i in 0..20 {
                    bridge
                        .send_message(SendRequest::to_all(as_agent(&id, &agent), format!("t{t} m{i}")))
                        .await
                        .unwrap();
                    let inbox = bridge.check_messages(as_agent(&id, &agent)).await.unwrap();
                    received.extend(inbox.messages.into_iter().map(|m| m.message));
                }
                (t, received)
            }));
        }
        let mut by_worker = Vec::new();
        let mut by_lead = Vec::new();
        for task in tasks {
            let (t, received) = task.await.unwrap();
            if t < 2 {
                by_lead.extend(received)
            } else {
                by_worker.extend(received)
            }
        }
        // Drain what is left, then every message arrived once, at the other side.
        for (agent, into) in [(&lead, &mut by_lead), (&worker, &mut by_worker)] {
            loop {
                let inbox = servers[1].check_messages(as_agent(&id, agent)).await.unwrap();
                if inbox.messages.is_empty() {
                    break;
                }
                into.extend(inbox.messages.into_iter().map(|m| m.message));
            }
        }
        let unique = |v: &Vec<String>| v.iter().collect::<HashSet<_>>().len();
        assert_eq!((by_lead.len(), unique(&by_lead)), (40, 40));
        assert_eq!((by_worker.len(), unique(&by_worker)), (40, 40));
        assert!(by_lead.iter().all(|m| m.starts_with("t2") || m.starts_with("t3")));

        // Revoked on one server: the next call on the other is refused.
        servers[0].revoke_agent("worker").await.unwrap();
        let refused = servers[1]
            .send_message(SendRequest::to_all(as_agent(&id, &worker), "after revocation"))
            .await;
        assert!(matches!(refused, Err(Error::AgentRevoked)), "{refused:?}");
        let refused = servers[1].check_messages(as_agent(&id, &worker)).await;
        assert!(matches!(refused, Err(Error::AgentRevoked)), "{refused:?}");
        servers[1].verify_audit().await.expect("the audit chain verifies");
    })
    .await;
}
