//! One run of a load scenario: a fresh database, the server(s), the agents
//! and their conversations, the timed loop, the exactly-once check, the
//! figures. See `benches/load.rs` for what is measured and why.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::{Value, json};
use tokio::process::Command;
use tokio::sync::Barrier;

use crate::client::{Client, HttpClient, StdioClient};

/// The server key of every bench process (`MCP_BRIDGE_KEY`); protects nothing.
const KEY_HEX: &str = "6c6f61642d74657374206b6579206e6f74206120736563726574206174206c6c";

/// `/proc/<pid>/stat` counts CPU time in USER_HZ, 100 per second on Linux.
const USER_HZ: f64 = 100.0;

/// Which server and transport a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One `serve --http` on PostgreSQL.
    PgHttp,
    /// One `serve --http` on SQLite.
    SqliteHttp,
    /// One `serve` per agent over stdio, one SQLite file.
    SqliteStdio,
}

impl Kind {
    /// The name `LOAD_ONLY` and the report use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::PgHttp => "pg-http",
            Kind::SqliteHttp => "sqlite-http",
            Kind::SqliteStdio => "sqlite-stdio",
        }
    }
}

/// What every run shares.
pub struct Options {
    /// The `mcp-bridge` binary.
    pub bin: PathBuf,
    /// Number of agents (even: they are paired).
    pub agents: usize,
    /// How long the timed loop runs.
    pub seconds: Duration,
    /// Most sends per agent in one run.
    pub max_sends: usize,
    /// An agent checks its inbox after every this many sends; 0: only in
    /// the untimed drain after the loop.
    pub check_every: usize,
    /// The PostgreSQL superuser URL (MCP_BRIDGE_TEST_PG).
    pub pg_admin: Option<String>,
}

/// The figures of one run (or their medians).
#[derive(Clone, Debug, Default)]
pub struct RunFigures {
    sends: usize,
    seconds: f64,
    sends_per_s: f64,
    send_ms: [f64; 4],
    check_ms: [f64; 4],
    server_cpu_us_per_send: f64,
    pg_cpu_us_per_send: Option<f64>,
}

impl RunFigures {
    /// One line for the report.
    pub fn line(&self) -> String {
        let pg = self
            .pg_cpu_us_per_send
            .map(|v| format!(", PostgreSQL backends {v:.0} us CPU/send"))
            .unwrap_or_default();
        format!(
            "{:.0} sends/s ({} sends in {:.1} s); send p50 {:.2} / p90 {:.2} / p99 {:.2} / max {:.1} ms; \
             check p50 {:.2} / p99 {:.2} ms; server {:.0} us CPU/send{pg}",
            self.sends_per_s,
            self.sends,
            self.seconds,
            self.send_ms[0],
            self.send_ms[1],
            self.send_ms[2],
            self.send_ms[3],
            self.check_ms[0],
            self.check_ms[2],
            self.server_cpu_us_per_send,
        )
    }

    /// Each figure's median over `runs`.
    pub fn median(runs: &[RunFigures]) -> RunFigures {
        fn med(mut v: Vec<f64>) -> f64 {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        }
        let m = |f: &dyn Fn(&RunFigures) -> f64| med(runs.iter().map(f).collect());
        let arr = |f: &dyn Fn(&RunFigures) -> [f64; 4]| std::array::from_fn(|i| m(&|r| f(r)[i]));
        RunFigures {
            sends: m(&|r| r.sends as f64) as usize,
            seconds: m(&|r| r.seconds),
            sends_per_s: m(&|r| r.sends_per_s),
            send_ms: arr(&|r| r.send_ms),
            check_ms: arr(&|r| r.check_ms),
            server_cpu_us_per_send: m(&|r| r.server_cpu_us_per_send),
            pg_cpu_us_per_send: runs
                .iter()
                .all(|r| r.pg_cpu_us_per_send.is_some())
                .then(|| m(&|r| r.pg_cpu_us_per_send.unwrap_or_default())),
        }
    }
}

/// p50, p90, p99 and max of `v`, in ms.
fn percentiles(v: &mut [Duration]) -> [f64; 4] {
    if v.is_empty() {
        return [0.0; 4];
    }
    v.sort();
    let at = |q: f64| v[((q * v.len() as f64) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    [at(0.50), at(0.90), at(0.99), v[v.len() - 1].as_secs_f64() * 1e3]
}

/// utime + stime of `pid` in seconds (0 when it is gone).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // After the name: state is field 3 of the man page, so utime (14) and stime (15) are 11 and 12 here.
    (ticks(11) + ticks(12)) / USER_HZ
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// A fresh PostgreSQL database, dropped by [`PgDb::drop_now`].
struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    async fn create(admin: &str) -> Result<Self> {
        let name = format!("load_{}", unique_suffix());
        Self::exec(admin, &format!("CREATE DATABASE {name}")).await?;
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .ok_or_else(|| anyhow!("MCP_BRIDGE_TEST_PG has no database path"))?;
        // LOAD_PG_SOCKET=1: the server connects through the cluster's unix
        // socket (PostgreSQL on the bridge's machine), not loopback TCP.
        let url = match std::env::var("LOAD_PG_SOCKET").ok().filter(|v| v == "1") {
            Some(_) => {
                let dir = std::env::var("MCP_BRIDGE_TEST_PG_SOCKET_DIR").context(
                    "LOAD_PG_SOCKET needs MCP_BRIDGE_TEST_PG_SOCKET_DIR (scripts/with-postgres sets it)",
                )?;
                let port = base
                    .rsplit_once(':')
                    .map(|(_, p)| p)
                    .ok_or_else(|| anyhow!("MCP_BRIDGE_TEST_PG has no port"))?;
                format!("postgres://postgres@{}:{port}/{name}", dir.replace('/', "%2F"))
            }
            None => format!("{base}/{name}"),
        };
        Ok(Self {
            admin: admin.to_owned(),
            url,
            name,
        })
    }

    async fn exec(url: &str, sql: &str) -> Result<()> {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .context("connecting to PostgreSQL")?;
        let task = tokio::spawn(conn);
        client
            .batch_execute(sql)
            .await
            .with_context(|| format!("running {sql}"))?;
        drop(client);
        let _ = task.await;
        Ok(())
    }

    /// Process ids of the server backends connected to this database.
    async fn backend_pids(&self) -> Result<Vec<u32>> {
        let (client, conn) = tokio_postgres::connect(&self.admin, tokio_postgres::NoTls).await?;
        let task = tokio::spawn(conn);
        let rows = client
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1",
                &[&self.name],
            )
            .await?;
        drop(client);
        let _ = task.await;
        Ok(rows.iter().map(|r| r.get::<_, i32>(0) as u32).collect())
    }

    async fn drop_now(self) -> Result<()> {
        Self::exec(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await
    }
}

/// A scratch directory, the database arguments and environment every process of the run gets.
struct Setup {
    dir: tempfile::TempDir,
    db_args: Vec<String>,
    pg: Option<PgDb>,
}

impl Setup {
    fn command(&self, bin: &Path) -> Command {
        let mut c = Command::new(bin);
        let home = self.dir.path().join("home");
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("MCP_BRIDGE_KEY", KEY_HEX)
            .env("MCP_BRIDGE_RATE_LIMIT", "off")
            .env("MCP_BRIDGE_READ_RATE_LIMIT", "off")
            .args(&self.db_args)
            .kill_on_drop(true);
        c
    }

    async fn add_agent(&self, bin: &Path, name: &str) -> Result<String> {
        let out = self
            .command(bin)
            .args(["agent", "add", name, "--json"])
            .output()
            .await?;
        ensure!(
            out.status.success(),
            "agent add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout)?;
        v["credential"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("agent add {name}: no credential"))
    }
}

/// Waits until `GET /readyz` answers 200.
async fn wait_ready(addr: &str, server: &mut tokio::process::Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.try_wait()? {
            return Err(anyhow!("the server exited at start: {status}"));
        }
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let req = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await?;
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            if buf.starts_with(b"HTTP/1.1 200") {
                return Ok(());
            }
        }
        ensure!(Instant::now() < deadline, "the server was not ready within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One agent in the loop.
struct Agent {
    name: String,
    client: Client,
    conversation: String,
}

/// What one agent did in the timed loop.
#[derive(Default)]
struct Outcome {
    sent: Vec<String>,
    received: Vec<String>,
    send_lat: Vec<Duration>,
    check_lat: Vec<Duration>,
}

fn bodies(result: &Value) -> Vec<String> {
    result["messages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn agent_loop(
    mut agent: Agent,
    barrier: Arc<Barrier>,
    seconds: Duration,
    max_sends: usize,
    check_every: usize,
) -> Result<(Agent, Outcome)> {
    let mut out = Outcome::default();
    barrier.wait().await;
    let deadline = Instant::now() + seconds;
    while out.sent.len() < max_sends && Instant::now() < deadline {
        let body = format!("{}-{}", agent.name, out.sent.len());
        let conv = agent.conversation.clone();
        let t = Instant::now();
        agent
            .client
            .call("send_message", json!({"conversation_id": conv, "message": body}))
            .await?;
        out.send_lat.push(t.elapsed());
        out.sent.push(body);
        if check_every == 0 || !out.sent.len().is_multiple_of(check_every) {
            continue;
        }
        let t = Instant::now();
        let got = agent
            .client
            .call("check_messages", json!({"conversation_id": conv}))
            .await?;
        out.check_lat.push(t.elapsed());
        out.received.extend(bodies(&got));
    }
    Ok((agent, out))
}

/// One run of `kind`.
pub async fn run(kind: Kind, opts: &Options) -> Result<RunFigures> {
    let dir = tempfile::Builder::new().prefix("mcp-bridge-load-").tempdir()?;
    std::fs::create_dir_all(dir.path().join("home"))?;
    let (db_args, pg) = match kind {
        Kind::PgHttp => {
            let admin = opts
                .pg_admin
                .as_deref()
                .ok_or_else(|| anyhow!("MCP_BRIDGE_TEST_PG is unset"))?;
            let db = PgDb::create(admin).await?;
            (vec!["--database-url".to_owned(), db.url.clone()], Some(db))
        }
        Kind::SqliteHttp | Kind::SqliteStdio => (
            vec![
                "--db".to_owned(),
                dir.path().join("bridge.db").display().to_string(),
            ],
            None,
        ),
    };
    let setup = Setup { dir, db_args, pg };
    let result = run_on(kind, opts, &setup).await;
    if let Some(db) = setup.pg {
        db.drop_now().await?;
    }
    result
}

async fn run_on(kind: Kind, opts: &Options, setup: &Setup) -> Result<RunFigures> {
    let names: Vec<String> = (0..opts.agents).map(|i| format!("agent{i:03}")).collect();
    // HTTP: one server, started first (it creates the schema); stdio: agents registered first.
    let mut server = None;
    let mut addr = String::new();
    if kind != Kind::SqliteStdio {
        addr = format!("127.0.0.1:{}", free_port()?);
        let mut child = setup
            .command(&opts.bin)
            .args(["serve", "--http", &addr])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()?;
        wait_ready(&addr, &mut child).await?;
        server = Some(child);
    }
    let mut creds = HashMap::new();
    for name in &names {
        creds.insert(name.clone(), setup.add_agent(&opts.bin, name).await?);
    }
    let mut clients = Vec::new();
    let mut server_pids = Vec::new();
    for name in &names {
        let client = match kind {
            Kind::SqliteStdio => {
                let mut c = setup.command(&opts.bin);
                c.arg("serve").env("MCP_BRIDGE_AGENT", &creds[name]);
                let c = StdioClient::spawn(c)
                    .await
                    .with_context(|| format!("starting {name}'s server"))?;
                server_pids.extend(c.pid());
                Client::Stdio(Box::new(c))
            }
            _ => Client::Http(HttpClient::connect(&addr, &creds[name]).await?),
        };
        clients.push(client);
    }
    if let Some(s) = &server {
        server_pids.extend(s.id());
    }
    // Pairs: agent 2k creates a conversation with agent 2k+1.
    let mut agents = Vec::new();
    let mut it = names.iter().zip(clients);
    while let (Some((a, mut ca)), Some((b, cb))) = (it.next(), it.next()) {
        let created = ca
            .call("create_conversation", json!({"with_agents": [b]}))
            .await?;
        let conv = created["conversation_id"]
            .as_str()
            .ok_or_else(|| anyhow!("no conversation id"))?
            .to_owned();
        agents.push(Agent {
            name: a.clone(),
            client: ca,
            conversation: conv.clone(),
        });
        agents.push(Agent {
            name: b.clone(),
            client: cb,
            conversation: conv,
        });
    }

    let pg_before: Vec<(u32, f64)> = match &setup.pg {
        Some(db) => db
            .backend_pids()
            .await?
            .into_iter()
            .map(|p| (p, cpu_seconds(p)))
            .collect(),
        None => Vec::new(),
    };
    let cpu_before: f64 = server_pids.iter().map(|&p| cpu_seconds(p)).sum();
    let barrier = Arc::new(Barrier::new(agents.len() + 1));
    let mut tasks = Vec::new();
    for agent in agents {
        tasks.push(tokio::spawn(agent_loop(
            agent,
            barrier.clone(),
            opts.seconds,
            opts.max_sends,
            opts.check_every,
        )));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after: f64 = server_pids.iter().map(|&p| cpu_seconds(p)).sum();
    let pg_cpu = match &setup.pg {
        Some(db) => {
            let before: HashMap<u32, f64> = pg_before.into_iter().collect();
            let pids = db.backend_pids().await?;
            Some(
                pids.iter()
                    .map(|p| cpu_seconds(*p) - before.get(p).copied().unwrap_or(0.0))
                    .sum::<f64>(),
            )
        }
        None => None,
    };

    // Untimed: drain every inbox, then check exactly once and in order.
    let sent_by: HashMap<String, Vec<String>> = done
        .iter()
        .map(|(a, o)| (a.name.clone(), o.sent.clone()))
        .collect();
    let mut partner = HashMap::new();
    for pair in names.chunks(2) {
        partner.insert(pair[0].clone(), pair[1].clone());
        partner.insert(pair[1].clone(), pair[0].clone());
    }
    let mut send_lat = Vec::new();
    let mut check_lat = Vec::new();
    let mut sends = 0;
    for (agent, out) in &mut done {
        let expected = &sent_by[&partner[&agent.name]];
        let deadline = Instant::now() + Duration::from_secs(60);
        while out.received.len() < expected.len() && Instant::now() < deadline {
            let got = agent
                .client
                .call("check_messages", json!({"conversation_id": agent.conversation}))
                .await?;
            out.received.extend(bodies(&got));
        }
        ensure!(
            &out.received == expected,
            "{}: received {} messages, its partner sent {} (duplicates, losses or disorder)",
            agent.name,
            out.received.len(),
            expected.len()
        );
        sends += out.sent.len();
        send_lat.append(&mut out.send_lat);
        check_lat.append(&mut out.check_lat);
    }
    drop(done);
    if let Some(mut s) = server {
        s.kill().await?;
    }
    ensure!(sends > 0, "no send completed");
    Ok(RunFigures {
        sends,
        seconds: elapsed,
        sends_per_s: sends as f64 / elapsed,
        send_ms: percentiles(&mut send_lat),
        check_ms: percentiles(&mut check_lat),
        server_cpu_us_per_send: (cpu_after - cpu_before) * 1e6 / sends as f64,
        pg_cpu_us_per_send: pg_cpu.map(|c| c * 1e6 / sends as f64),
    })
}
