//! The bench's scenarios, shared with `tests/bench_scenarios.rs` so they
//! cannot rot: every scenario drives the real `mcp-bridge serve` binary over
//! real stdio pipes with rmcp's client, checks that what was sent is what was
//! received, and returns raw samples. `benches/bridge.rs` runs them at full
//! size and prints the figures; the test runs them tiny and checks counts.

#![allow(dead_code, reason = "the test uses a subset of the scenarios")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

pub mod wake;

/// The server key every bench process shares (`MCP_BRIDGE_KEY`), so seeded
/// fixtures can carry real token hashes and a real sealed audit chain.
/// It protects nothing: bench databases hold nothing secret.
pub const KEY_HEX: &str = "6d63702d6272696467652062656e6368206b6579206e6f7420612073656372ff";

/// Bumped whenever the fixture's content changes, so stale caches are ignored.
pub const FIXTURE_VERSION: u32 = 1;

/// Where and how to spawn servers.
#[derive(Clone, Debug)]
pub struct Env {
    /// The `mcp-bridge` binary.
    pub bin: PathBuf,
    /// A scratch directory (databases, an empty `XDG_CONFIG_HOME`).
    pub work: PathBuf,
}

/// One running `mcp-bridge serve` process and the client connected to it.
pub struct Agent {
    client: RunningService<RoleClient, ()>,
    /// The server's process id.
    pub pid: u32,
}

/// A conversation created through the real tool, with both tokens.
#[derive(Clone, Debug)]
pub struct Conv {
    /// `conv_...`.
    pub id: String,
    /// Session a's token.
    pub token_a: String,
    /// Session b's token.
    pub token_b: String,
}

impl Conv {
    /// The token of `session` (`"a"` or `"b"`).
    pub fn token(&self, session: &str) -> &str {
        if session == "a" {
            &self.token_a
        } else {
            &self.token_b
        }
    }
}

/// One delivered message as `check_messages` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The message id (`seq`).
    pub seq: i64,
    /// The body.
    pub message: String,
}

/// Peak and current resident set size of a process, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct Rss {
    /// `VmHWM`: the peak.
    pub hwm_kb: u64,
    /// `VmRSS`: now.
    pub rss_kb: u64,
    /// `RssAnon`: heap, stacks (private to the process).
    pub anon_kb: u64,
    /// `RssFile`: mapped pages of the binary and libraries (shared by
    /// every process running the same binary).
    pub file_kb: u64,
}

impl Env {
    /// A fresh database path inside the scratch directory.
    pub fn db(&self, name: &str) -> PathBuf {
        self.work.join(format!("{name}.db"))
    }

    /// Spawns `mcp-bridge serve` on `db` and runs the MCP handshake
    /// (`initialize` + `notifications/initialized`). Rate limits are off; any
    /// `MCP_BRIDGE_*` variable of the caller's environment is dropped, and the
    /// config home is an empty directory, so a user's config cannot skew it.
    pub async fn spawn(&self, db: &Path) -> Result<Agent> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("MCP_BRIDGE_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("serve")
            .env("MCP_BRIDGE_DB", db)
            .env("MCP_BRIDGE_KEY", KEY_HEX)
            .env("MCP_BRIDGE_RATE_LIMIT", "off")
            .env("MCP_BRIDGE_READ_RATE_LIMIT", "off")
            .env("XDG_CONFIG_HOME", self.work.join("config-home"))
            .env("XDG_DATA_HOME", self.work.join("data-home"));
        let (transport, _stderr) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        let pid = transport.id().context("the child has no pid")?;
        let client = ().serve(transport).await.context("MCP initialize with mcp-bridge serve")?;
        Ok(Agent { client, pid })
    }
}

impl Agent {
    /// `tools/list`: the tool names.
    pub async fn list_tools(&self) -> Result<Vec<String>> {
        let r = self.client.list_tools(None).await.context("tools/list")?;
        Ok(r.tools.iter().map(|t| t.name.to_string()).collect())
    }

    /// `tools/call`; the structured content of a success, an error otherwise.
    pub async fn call(&self, tool: &'static str, args: Value) -> Result<Value> {
        let Value::Object(args) = args else {
            bail!("arguments must be an object");
        };
        let r = self
            .client
            .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
            .await
            .with_context(|| format!("tools/call {tool}"))?;
        if r.is_error == Some(true) {
            // An error travels as text only: `code: sentence` and its JSON.
            let text: String = r
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
                .collect();
            bail!("{tool} failed: {text}");
        }
        Ok(r.structured_content.unwrap_or(Value::Null))
    }

    /// `create_conversation`.
    pub async fn create(&self, my_role: &str, partner_role: &str) -> Result<Conv> {
        let c = self
            .call(
                "create_conversation",
                json!({ "my_role": my_role, "partner_role": partner_role }),
            )
            .await?;
        let s = |k: &str| -> Result<String> {
            Ok(c[k]
                .as_str()
                .with_context(|| format!("create_conversation: no {k}"))?
                .to_owned())
        };
        Ok(Conv {
            id: s("conversation_id")?,
            token_a: s("session_a_token")?,
            token_b: s("session_b_token")?,
        })
    }

    /// `send_to_partner` as `session`; the message id.
    pub async fn send(&self, conv: &Conv, session: &str, message: &str) -> Result<i64> {
        let r = self
            .call(
                "send_to_partner",
                json!({
                    "conversation_id": conv.id,
                    "session_id": session,
                    "token": conv.token(session),
                    "message": message,
                }),
            )
            .await?;
        r["message_id"].as_i64().context("send_to_partner: no message_id")
    }

    /// `check_messages` as `session`: the messages and `remaining`.
    pub async fn check(&self, conv: &Conv, session: &str) -> Result<(Vec<Received>, i64)> {
        let r = self
            .call(
                "check_messages",
                json!({
                    "conversation_id": conv.id,
                    "session_id": session,
                    "token": conv.token(session),
                }),
            )
            .await?;
        let messages = r["messages"]
            .as_array()
            .context("check_messages: no messages")?
            .iter()
            .map(|m| {
                Ok(Received {
                    seq: m["seq"].as_i64().context("no seq")?,
                    message: m["message"].as_str().context("no message")?.to_owned(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let remaining = r["remaining"].as_i64().context("check_messages: no remaining")?;
        Ok((messages, remaining))
    }

    /// Calls `check_messages` until nothing is left; everything received.
    pub async fn drain(&self, conv: &Conv, session: &str) -> Result<Vec<Received>> {
        let mut all = Vec::new();
        loop {
            let (batch, _remaining) = self.check(conv, session).await?;
            if batch.is_empty() {
                return Ok(all);
            }
            all.extend(batch);
        }
    }

    /// `VmHWM` and `VmRSS` from `/proc/<pid>/status`.
    pub fn rss(&self) -> Result<Rss> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("reading /proc/<pid>/status (Linux only)")?;
        let field = |name: &str| -> Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("no {name} in /proc/<pid>/status"))?;
            Ok(line
                .split_whitespace()
                .nth(1)
                .context("malformed status line")?
                .parse()?)
        };
        Ok(Rss {
            hwm_kb: field("VmHWM:")?,
            rss_kb: field("VmRSS:")?,
            anon_kb: field("RssAnon:")?,
            file_kb: field("RssFile:")?,
        })
    }

    /// Closes stdin and waits for the server to exit (rmcp's graceful shutdown).
    pub async fn close(self) -> Result<()> {
        let client = self.client;
        client.cancel().await.context("closing the client")?;
        Ok(())
    }
}

/// A message body of realistic shape, unique per `(tag, i)`.
pub fn body(tag: &str, i: usize) -> String {
    format!(
        "{tag} #{i}: the users endpoint now returns 201 with a Location header; \
         the frontend should read the id from it instead of the body. Tests pass locally."
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------- 1. start-up

/// Spawn -> `initialize` -> first `tools/list` answer, `runs` times, in
/// milliseconds. With `fresh`, every run starts on a new database file
/// (creation + migrations); otherwise on one that already exists.
pub async fn startup(env: &Env, runs: usize, fresh: bool) -> Result<Vec<f64>> {
    let shared = env.db("startup");
    if !fresh {
        env.spawn(&shared).await?.close().await?;
    }
    let mut samples = Vec::with_capacity(runs);
    for run in 0..runs {
        let db = if fresh {
            env.db(&format!("startup-fresh-{run}"))
        } else {
            shared.clone()
        };
        let t0 = Instant::now();
        let agent = env.spawn(&db).await?;
        let tools = agent.list_tools().await?;
        samples.push(ms(t0.elapsed()));
        ensure!(
            tools.iter().any(|t| t == "send_to_partner") && tools.iter().any(|t| t == "check_messages"),
            "tools/list lacks the bridge tools: {tools:?}"
        );
        agent.close().await?;
    }
    Ok(samples)
}

// -------------------------------------------------------------- 2. round trip

/// Agent A (one process) sends, agent B (another process) receives it with
/// `check_messages`; the time of both calls, in milliseconds, `n` times
/// after `warmup` untimed round trips. Each check must return exactly the
/// message just sent.
pub async fn round_trip(env: &Env, db: &Path, n: usize, warmup: usize) -> Result<Vec<f64>> {
    let a = env.spawn(db).await?;
    let b = env.spawn(db).await?;
    let conv = a.create("backend", "frontend").await?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let text = body("round trip", i);
        let t0 = Instant::now();
        let id = a.send(&conv, "a", &text).await?;
        let (got, remaining) = b.check(&conv, "b").await?;
        let elapsed = t0.elapsed();
        ensure!(
            got == [Received {
                seq: id,
                message: text
            }] && remaining == 0,
            "round trip {i}: sent message {id}, received {got:?} (remaining {remaining})"
        );
        if i >= warmup {
            samples.push(ms(elapsed));
        }
    }
    a.close().await?;
    b.close().await?;
    Ok(samples)
}

// -------------------------------------------------------------- 3. throughput

/// How the parallel agents are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Every agent process has its own conversation and sends as its session a.
    OwnConversations,
    /// All agents share one conversation: half send as a, half as b.
    OneConversation,
}

/// One throughput run.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// Successful sends.
    pub sends: usize,
    /// Wall time from the common start to the last send's answer.
    pub elapsed: Duration,
    /// Messages received back (untimed drain), all checked.
    pub received: usize,
}

impl Throughput {
    /// Sends per second.
    pub fn rate(&self) -> f64 {
        self.sends as f64 / self.elapsed.as_secs_f64()
    }
}

/// `agents` server processes on `db` each send `per_agent` messages as fast
/// as they are answered (one request in flight per agent, as an agent's
/// client does), all starting together. Afterwards every message is
/// drained with `check_messages` and compared with what was sent.
pub async fn throughput(
    env: &Env,
    db: &Path,
    agents: usize,
    per_agent: usize,
    layout: Layout,
) -> Result<Throughput> {
    let mut procs = Vec::with_capacity(agents);
    for _ in 0..agents {
        procs.push(env.spawn(db).await?);
    }
    let shared = procs[0].create("team-a", "team-b").await?;
    let mut plan = Vec::with_capacity(agents);
    for (k, p) in procs.iter().enumerate() {
        match layout {
            Layout::OwnConversations => plan.push((p.create("backend", "frontend").await?, "a")),
            Layout::OneConversation => plan.push((shared.clone(), if k % 2 == 0 { "a" } else { "b" })),
        }
    }

    let start = std::sync::Arc::new(tokio::sync::Barrier::new(agents + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for (k, (agent, (conv, session))) in procs.into_iter().zip(plan).enumerate() {
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            let mut sent = Vec::with_capacity(per_agent);
            for i in 0..per_agent {
                let text = body(&format!("agent {k}"), i);
                let id = agent.send(&conv, session, &text).await?;
                sent.push(Received {
                    seq: id,
                    message: text,
                });
            }
            let done = Instant::now();
            anyhow::Ok((k, agent, conv, session, sent, done))
        });
    }
    start.wait().await;
    let t0 = Instant::now();
    let mut finished = Vec::with_capacity(agents);
    while let Some(r) = tasks.join_next().await {
        finished.push(r.context("a sender task panicked")??);
    }
    let last = finished.iter().map(|f| f.5).max().unwrap_or(t0);
    let elapsed = last - t0;
    finished.sort_by_key(|f| f.0);

    // Untimed: everything sent must come out exactly once, unchanged.
    let mut expected: BTreeSet<(i64, String)> = BTreeSet::new();
    let mut sends = 0;
    for f in &finished {
        sends += f.4.len();
        expected.extend(f.4.iter().map(|r| (r.seq, r.message.clone())));
    }
    ensure!(
        expected.len() == sends,
        "duplicate message ids among {sends} sends"
    );
    let mut received = Vec::new();
    match layout {
        Layout::OwnConversations => {
            for f in &finished {
                received.extend(f.1.drain(&f.2, "b").await?);
            }
        }
        Layout::OneConversation => {
            received.extend(finished[0].1.drain(&shared, "a").await?);
            received.extend(finished[0].1.drain(&shared, "b").await?);
        }
    }
    let got: BTreeSet<(i64, String)> = received.iter().map(|r| (r.seq, r.message.clone())).collect();
    ensure!(
        got.len() == received.len() && got == expected,
        "sent {} messages, received {} ({} distinct), sets differ",
        sends,
        received.len(),
        got.len()
    );
    for f in finished {
        f.1.close().await?;
    }
    Ok(Throughput {
        sends,
        elapsed,
        received: received.len(),
    })
}

// ------------------------------------------------------- 4. history scaling

/// `check_messages` latency on a database with history.
#[derive(Clone, Debug)]
pub struct CheckLatency {
    /// A check that returns the one message just sent, in ms.
    pub with_message: Vec<f64>,
    /// A check that finds nothing (an idle poll), in ms.
    pub empty: Vec<f64>,
}

/// On `db` (seeded or not), creates a conversation through the real tools
/// and times, `n` times, B's `check_messages` right after A's send (which is
/// not timed), then B's empty poll.
pub async fn check_latency(env: &Env, db: &Path, n: usize, warmup: usize) -> Result<CheckLatency> {
    let a = env.spawn(db).await?;
    let b = env.spawn(db).await?;
    let conv = a.create("backend", "frontend").await?;
    let mut out = CheckLatency {
        with_message: Vec::with_capacity(n),
        empty: Vec::with_capacity(n),
    };
    for i in 0..warmup + n {
        let text = body("history", i);
        let id = a.send(&conv, "a", &text).await?;
        let t0 = Instant::now();
        let (got, _) = b.check(&conv, "b").await?;
        let t1 = t0.elapsed();
        ensure!(
            got == [Received {
                seq: id,
                message: text
            }],
            "check {i}: sent message {id}, received {got:?}"
        );
        let t0 = Instant::now();
        let (none, _) = b.check(&conv, "b").await?;
        let t2 = t0.elapsed();
        ensure!(none.is_empty(), "an empty poll returned {none:?}");
        if i >= warmup {
            out.with_message.push(ms(t1));
            out.empty.push(ms(t2));
        }
    }
    a.close().await?;
    b.close().await?;
    Ok(out)
}

/// What [`seed`] wrote.
#[derive(Clone, Debug, Default)]
pub struct Seeded {
    /// Conversations.
    pub conversations: usize,
    /// Messages.
    pub messages: usize,
    /// Of which still unread.
    pub unread: usize,
    /// Audit entries.
    pub audit: usize,
}

/// A database holding `messages` messages in `conversations` conversations,
/// cached under `cache_dir` (built once, then copied to `dest` for each run
/// so runs do not accumulate rows). Returns the seeding stats when built.
pub async fn history_db(
    cache_dir: &Path,
    dest: &Path,
    messages: usize,
    conversations: usize,
) -> Result<Option<Seeded>> {
    std::fs::create_dir_all(cache_dir)?;
    let cached = cache_dir.join(format!(
        "history-v{FIXTURE_VERSION}-{messages}m-{conversations}c.db"
    ));
    let mut built = None;
    if !cached.exists() {
        let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        built = Some(seed(&tmp, messages, conversations).await?);
        std::fs::rename(&tmp, &cached)?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", dest.display()));
    }
    std::fs::copy(&cached, dest).with_context(|| format!("copying {}", cached.display()))?;
    // Flush the copy now: otherwise the server's first WAL checkpoint (which
    // fsyncs the database file) pays for writing back the whole copied file,
    // a bench artifact of up to 0.6 s at 1 M messages.
    std::fs::File::open(dest)?.sync_all()?;
    Ok(built)
}

/// One seeded message row: seq, conversation index, sender, body, action type,
/// files JSON, redactions JSON, created_at, delivered_at.
type SeedRow<'a> = (
    i64,
    usize,
    &'a str,
    String,
    &'a str,
    String,
    String,
    i64,
    Option<i64>,
);
/// Seeds a fresh database at `path` directly with SQL, in large
/// transactions: `conversations` conversations (two participants with real
/// token hashes and statuses each), `messages` messages spread round-robin
/// over them, alternating senders, each with its delivery row (delivered,
/// except the last message of every tenth conversation), and the audit trail
/// the real server would have written (one `conversation.create`, one
/// `message.send` and one `message.check` per message), hash-chained and
/// sealed with [`KEY_HEX`], so `mcp-bridge audit verify` accepts it. The
/// schema comes from the binary's own migrations.
pub async fn seed(path: &Path, messages: usize, conversations: usize) -> Result<Seeded> {
    use mcp_bridge::audit::{self, NewEntry};
    use mcp_bridge::auth::{ServerKey, SessionToken};
    use mcp_bridge::store::sqlite::{OpenMode, SqliteStore};
    use rusqlite::{OptionalExtension, params};

    let conversations = conversations.max(1);
    let mut key_bytes = [0u8; 32];
    hex_decode(KEY_HEX, &mut key_bytes)?;
    let key = ServerKey::from_bytes(key_bytes);

    // The schema comes from the binary's own migrations; the rows go in
    // through a connection of our own, with durability off while seeding.
    SqliteStore::open(path, OpenMode::CreateIfMissing)
        .await?
        .close()
        .await;
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA synchronous = OFF")?;
    let (mut audit_seq, mut prev_hash): (i64, Option<String>) = match conn
        .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .optional()?
    {
        Some((s, h)) => (s, Some(h)),
        None => (0, None),
    };
    let mut audit_rows: Vec<audit::Entry> = Vec::new();
    let mut push_audit =
        |at: i64, actor: String, action: &str, conv: &str, detail: Value, rows: &mut Vec<audit::Entry>| {
            let e = audit::chain(
                prev_hash.take().map(|h| (audit_seq, h)),
                at,
                NewEntry {
                    actor,
                    action: action.to_owned(),
                    conversation_id: Some(conv.to_owned()),
                    detail,
                },
                &key,
            );
            audit_seq = e.seq;
            prev_hash = Some(e.hash.clone());
            rows.push(e);
        };

    // Time runs from 30 days ago, 100 ms per message, so every seeded
    // conversation has long expired, like the bulk of a real history.
    let now = chrono::Utc::now().timestamp_millis();
    let t_base = now - 30 * 24 * 3600 * 1000;
    let roles = [
        ("backend", "frontend"),
        ("developer", "reviewer"),
        ("api", "ui"),
        ("planner", "coder"),
    ];
    let ids: Vec<String> = (0..conversations)
        .map(|_| format!("conv_{:032x}", rand::random::<u128>()))
        .collect();

    let mut tx = conn.unchecked_transaction()?;
    for chunk in (0..conversations).collect::<Vec<_>>().chunks(1000) {
        for &i in chunk {
            let at = t_base + i as i64;
            tx.prepare_cached(
                "INSERT INTO conversations (id, created_at, expires_at, closed_at) VALUES (?1, ?2, ?3, NULL)",
            )?
            .execute(params![ids[i], at, at + 3 * 3600 * 1000])?;
        }
        let rows: Vec<(usize, &str, &str)> = chunk
            .iter()
            .flat_map(|&i| {
                let (ra, rb) = roles[i % roles.len()];
                [(i, "a", ra), (i, "b", rb)]
            })
            .collect();
        for &(i, s, role) in &rows {
            tx.prepare_cached(
                "INSERT INTO participants (conversation_id, session_id, role, token_hash, token_created_at, revoked_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
            )?
            .execute(params![
                ids[i],
                s,
                role,
                key.hash_token(&SessionToken::generate()).0,
                t_base + i as i64
            ])?;
            tx.prepare_cached(
                "INSERT INTO status (conversation_id, session_id, status, note, heartbeat_at) \
                 VALUES (?1, ?2, 'complete', 'done; handing over', ?3)",
            )?
            .execute(params![ids[i], s, t_base + i as i64 + 1000])?;
        }
        for &i in chunk {
            let (ra, rb) = roles[i % roles.len()];
            push_audit(
                t_base + i as i64,
                "anonymous".into(),
                "conversation.create",
                &ids[i],
                json!({ "roles": { "a": ra, "b": rb }, "expires_at": t_base + i as i64 + 3 * 3600 * 1000 }),
                &mut audit_rows,
            );
        }
    }
    insert_audit(&tx, &mut audit_rows)?;

    let first_seq: i64 = tx.query_row("SELECT coalesce(max(seq), 0) + 1 FROM messages", [], |r| r.get(0))?;
    let actions = [
        "info",
        "info",
        "question",
        "answer",
        "info",
        "proposal",
        "review_request",
        "answer",
    ];
    let mut unread = 0;
    let chunk_rows = 1000;
    let mut j = 0;
    while j < messages {
        let end = (j + chunk_rows).min(messages);
        let rows: Vec<SeedRow> = (j..end)
            .map(|j| {
                let c = j % conversations;
                let round = j / conversations;
                let sender = if round.is_multiple_of(2) { "a" } else { "b" };
                let at = t_base + 10_000_000 + j as i64 * 100;
                let mut text = body(&format!("{} to partner", roles[c % roles.len()].0), round);
                // Lengths vary like real messages: 150 bytes to about 1.5 KB.
                for _ in 0..(j * 7919) % 9 {
                    text.push_str(" Next: migrate the sessions table and rerun the integration suite.");
                }
                let (files, redactions) = if j % 50 == 0 {
                    text.push_str(" Key was [REDACTED:aws_access_key].");
                    ("[]".to_owned(), r#"["aws_access_key"]"#.to_owned())
                } else if j % 4 == 0 {
                    (
                        format!(r#"["src/api/handler_{}.rs","web/src/users.ts"]"#, j % 50),
                        "[]".to_owned(),
                    )
                } else {
                    ("[]".to_owned(), "[]".to_owned())
                };
                let last_round = j + conversations >= messages;
                let delivered = if last_round && c.is_multiple_of(10) {
                    None
                } else {
                    Some(at + 2_000)
                };
                (
                    first_seq + j as i64,
                    c,
                    sender,
                    text,
                    actions[j % actions.len()],
                    files,
                    redactions,
                    at,
                    delivered,
                )
            })
            .collect();
        for r in &rows {
            tx.prepare_cached(
                "INSERT INTO messages (seq, conversation_id, sender, body, action_type, files, redactions, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![r.0, ids[r.1], r.2, r.3, r.4, r.5, r.6, r.7])?;
            tx.prepare_cached(
                "INSERT INTO deliveries (message_seq, conversation_id, recipient, delivered_at) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![r.0, ids[r.1], if r.2 == "a" { "b" } else { "a" }, r.8])?;
        }
        for r in &rows {
            let to = if r.2 == "a" { "b" } else { "a" };
            let files = if r.5 == "[]" { 0 } else { 2 };
            let redacted: Value = serde_json::from_str(&r.6)?;
            push_audit(
                r.7,
                format!("{}/{}", ids[r.1], r.2),
                "message.send",
                &ids[r.1],
                json!({ "message_id": r.0, "bytes": r.3.len(), "action_type": r.4,
                        "files": files, "redacted": redacted, "to": [to] }),
                &mut audit_rows,
            );
            match r.8 {
                Some(at) => push_audit(
                    at,
                    format!("{}/{}", ids[r.1], to),
                    "message.check",
                    &ids[r.1],
                    json!({ "delivered": [r.0], "remaining": 0 }),
                    &mut audit_rows,
                ),
                None => unread += 1,
            }
        }
        insert_audit(&tx, &mut audit_rows)?;
        j = end;
        if j % 100_000 == 0 {
            tx.commit()?;
            tx = conn.unchecked_transaction()?;
        }
    }
    tx.commit()?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    Ok(Seeded {
        conversations,
        messages,
        unread,
        audit: audit_seq as usize,
    })
}

fn insert_audit(tx: &rusqlite::Connection, rows: &mut Vec<mcp_bridge::audit::Entry>) -> Result<()> {
    for e in rows.iter() {
        tx.prepare_cached(
            "INSERT INTO audit (seq, at, actor, action, conversation_id, detail, prev_hash, hash, seal) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(rusqlite::params![
            e.seq,
            e.at,
            e.actor,
            e.action,
            e.conversation_id,
            e.detail,
            e.prev_hash,
            e.hash,
            e.seal
        ])?;
    }
    rows.clear();
    Ok(())
}

fn hex_decode(text: &str, out: &mut [u8]) -> Result<()> {
    ensure!(text.len() == out.len() * 2, "bad hex length");
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)?;
    }
    Ok(())
}

// ------------------------------------------------------------------ 5. memory

/// Peak RSS of a server that has only answered `initialize` + `tools/list`.
pub async fn rss_idle(env: &Env, db: &Path) -> Result<Rss> {
    let a = env.spawn(db).await?;
    a.list_tools().await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = a.rss()?;
    a.close().await?;
    Ok(r)
}

/// Peak RSS of one server after `n` sends (as a) and `n` checks (as b, each
/// returning the message just sent) through it.
pub async fn rss_loaded(env: &Env, db: &Path, n: usize) -> Result<Rss> {
    let a = env.spawn(db).await?;
    let conv = a.create("backend", "frontend").await?;
    for i in 0..n {
        let text = body("load", i);
        let id = a.send(&conv, "a", &text).await?;
        let (got, _) = a.check(&conv, "b").await?;
        ensure!(
            got == [Received {
                seq: id,
                message: text
            }],
            "load {i}: got {got:?}"
        );
    }
    let r = a.rss()?;
    a.close().await?;
    Ok(r)
}

// ------------------------------------------------------------------- figures

/// Median, p90, min, max of samples.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// 90th percentile (nearest rank).
    pub p90: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// Summarises `samples` (must not be empty).
pub fn summary(samples: &[f64]) -> Summary {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    let p90 = s[((n as f64 * 0.9).ceil() as usize).clamp(1, n) - 1];
    Summary {
        n,
        median,
        p90,
        min: s[0],
        max: s[n - 1],
    }
}
