//! `serve`: MCP for one agent's client over stdio, or for a team over
//! streamable HTTP (`--http`). The flags that only `--http` reads live in
//! [`HttpArgs`](super::http_args::HttpArgs).

use anyhow::Context;
use clap::Args;

use super::open_bridge;
use crate::bridge::Bridge;
use crate::config::{Config, Database};
use crate::mcp::BridgeServer;
use crate::store::admin::FullStore;
use crate::store::sqlite::OpenMode;

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Sends per session, e.g. "10/min,100/h,500/day", or "off".
    #[arg(long, env = "MCP_BRIDGE_RATE_LIMIT", value_name = "SPEC")]
    rate_limit: Option<String>,
    /// Reads and heartbeats per session, e.g. "120/min,5000/h", or "off".
    #[arg(long, env = "MCP_BRIDGE_READ_RATE_LIMIT", value_name = "SPEC")]
    read_rate_limit: Option<String>,
    /// Conversation lifetime, e.g. "3h", "90m", "600" (seconds).
    #[arg(long, env = "MCP_BRIDGE_CONVERSATION_TTL", value_name = "DURATION")]
    conversation_ttl: Option<String>,
    /// A partner is alive while its last heartbeat is younger than this.
    #[arg(long, env = "MCP_BRIDGE_HEARTBEAT_WINDOW", value_name = "DURATION")]
    heartbeat_window: Option<String>,
    /// Largest message in bytes of UTF-8 (before redaction).
    #[arg(long, env = "MCP_BRIDGE_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    max_message_bytes: Option<usize>,
    /// Conversations this server process may create per minute (no token is
    /// needed to create one, so this bounds a looping agent) [default: 300].
    #[arg(long, env = "MCP_BRIDGE_MAX_CREATES_PER_MINUTE", value_name = "N")]
    max_creates_per_minute: Option<u32>,
    /// Most messages one conversation stores, or "off" [default: 10000].
    #[arg(long, env = "MCP_BRIDGE_MAX_MESSAGES_PER_CONVERSATION", value_name = "N")]
    max_messages_per_conversation: Option<String>,
    /// Most bytes of messages one conversation stores, or "off" [default: 67108864].
    #[arg(long, env = "MCP_BRIDGE_MAX_BYTES_PER_CONVERSATION", value_name = "BYTES")]
    max_bytes_per_conversation: Option<String>,
    #[command(flatten)]
    http: super::http_args::HttpArgs,
}

impl ServeArgs {
    /// The HTTP options, when `--http` was given.
    pub(super) fn http(&self) -> Option<crate::http::HttpOptions> {
        self.http.options()
    }

    /// Writes the limits given as flags (or their variables) over the file's.
    pub(super) fn apply(&self, o: &mut crate::config::Overrides) {
        o.rate_limit = self.rate_limit.clone();
        o.read_rate_limit = self.read_rate_limit.clone();
        o.conversation_ttl = self.conversation_ttl.clone();
        o.heartbeat_window = self.heartbeat_window.clone();
        o.max_message_bytes = self.max_message_bytes;
        o.max_creates_per_minute = self.max_creates_per_minute;
        o.max_messages_per_conversation = self.max_messages_per_conversation.clone();
        o.max_bytes_per_conversation = self.max_bytes_per_conversation.clone();
    }
}

pub(super) async fn serve(config: Config, http: Option<crate::http::HttpOptions>) -> anyhow::Result<()> {
    // Refuse plain HTTP on the network before touching the disk.
    if let Some(h) = &http {
        h.check()?;
        // Command execution answers to agents on this machine only until
        // HTTP has roles and audited remote approval (issue 17).
        if config.yolo.is_some() {
            anyhow::bail!(
                "YOLO mode (MCP_BRIDGE_YOLO) is not available with --http yet: remote agents must not propose commands to this machine; serve YOLO over stdio"
            );
        }
    }
    if config.yolo.is_some() {
        config.database.sqlite_path("YOLO mode")?;
    }
    if http.is_some() && matches!(config.database, Database::Postgres(_)) {
        return on_worker_threads(move || serve_opened(config, http)).await;
    }
    serve_opened(config, http).await
}

async fn serve_opened(config: Config, http: Option<crate::http::HttpOptions>) -> anyhow::Result<()> {
    on_bridge!(open_bridge(&config, OpenMode::CreateIfMissing).await?, |bridge| {
        serve_on(&config, bridge, http).await
    })
}

/// Runs `serve` on a runtime with a worker thread per core, on a thread of
/// its own, and waits for it.
///
/// The process runs on one thread (`main.rs`): an agent's stdio server and
/// the overseer's commands serve one caller, and a team's HTTP server on
/// SQLite funnels into its one writer, where hand-offs between threads cost
/// more than they give (measured: about 10% fewer sends/s, 30% more CPU).
/// On PostgreSQL every write ends waiting for the audit chain's lock, whose
/// holder must get the chain's tail back to this process and its entry back
/// to the database; on one thread that answer queues behind every other
/// request (docs/deployment.md: 413-460 sends/s on one thread, 596-614 on
/// two, same load).
async fn on_worker_threads<F, Fut>(serve: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("mcp-bridge-http".to_owned())
        .spawn(move || {
            let served = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the HTTP server's worker threads")
                .and_then(|runtime| runtime.block_on(serve()));
            // The receiver only goes away with the process.
            let _ = done.send(served);
        })
        .context("starting the HTTP server's thread")?;
    finished
        .await
        .context("the HTTP server's thread ended without a result")?
}

async fn serve_on<S: FullStore>(
    config: &Config,
    bridge: Bridge<S>,
    http: Option<crate::http::HttpOptions>,
) -> anyhow::Result<()> {
    let bridge = bridge.with_yolo(config.yolo.clone());
    if let Some(y) = &config.yolo {
        bridge
            .record_yolo_start()
            .await
            .context("recording the YOLO opt-in")?;
        tracing::warn!(workspace = %y.workspace.display(), dry_run = y.dry_run, "YOLO mode: command execution is enabled, behind human approval");
    }
    if let Some(h) = http {
        return serve_http(config, bridge, h).await;
    }
    let mut server = BridgeServer::new(bridge.clone());
    if let Some(agent) = agent_identity(&bridge).await? {
        tracing::info!(agent = %agent.name, "acting as a registered agent");
        server = server.with_identity(agent);
    }
    tracing::info!(db = %config.database.describe(), send_rate = %config.limits.send_rate, "serving MCP on stdio");
    let agent = server.acts_as_agent();
    // A thread of its own, so the runtime answers `initialize` meanwhile;
    // if it has not finished, the first `tools/list` waits for it.
    std::thread::spawn(move || crate::mcp::args::warm(agent));
    let served = server.serve_stdio().await;
    // Refusal counts still open go to the trail before the process ends.
    if let Err(e) = bridge.flush_refusal_counts().await {
        tracing::warn!(error = %e, "could not write pending refusal counts to the audit trail");
    }
    served
}

/// `serve --http`: each request proves its own agent by its bearer
/// credential, so `MCP_BRIDGE_AGENT` plays no part. Stops on SIGTERM or
/// SIGINT, then writes the refusal counts still open, as stdio does.
async fn serve_http<S: FullStore>(
    config: &Config,
    bridge: Bridge<S>,
    options: crate::http::HttpOptions,
) -> anyhow::Result<()> {
    if std::env::var_os(AGENT_ENV).is_some() {
        tracing::warn!("{AGENT_ENV} is ignored with --http: every request brings its own bearer credential");
    }
    tracing::info!(db = %config.database.describe(), send_rate = %config.limits.send_rate, "serving MCP over HTTP");
    let served = crate::http::serve(bridge.clone(), &options, crate::http::shutdown_signal()).await;
    if let Err(e) = bridge.flush_refusal_counts().await {
        tracing::warn!(error = %e, "could not write pending refusal counts to the audit trail");
    }
    served.context("serving MCP over HTTP")
}

/// The registered agent named by `MCP_BRIDGE_AGENT`, when it is set. A
/// credential that is malformed, unknown, rotated away or revoked stops the
/// server with one line naming the variable (never its value), which the
/// client shows the human; a bad credential never degrades to token mode.
async fn agent_identity<S: FullStore>(
    bridge: &Bridge<S>,
) -> anyhow::Result<Option<std::sync::Arc<crate::bridge::AgentIdentity>>> {
    let Some(raw) = std::env::var_os(AGENT_ENV) else {
        return Ok(None);
    };
    let credential = raw
        .to_str()
        .and_then(crate::auth::AgentCredential::parse)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{AGENT_ENV} is not an agent credential (\"mcpa_\" and 43 more characters); copy it again from the output of `mcp-bridge agent add` or `agent rotate`"
            )
        })?;
    match bridge.identify_agent(&credential).await {
        Ok(agent) if agent.role == crate::store::agents::AgentRole::Agent => Ok(Some(agent)),
        Ok(agent) => anyhow::bail!(
            "{AGENT_ENV} holds the credential of {}, an {} identity; the tools need an agent credential (`mcp-bridge agent add NAME`)",
            agent.name,
            agent.role
        ),
        Err(crate::bridge::Error::AgentRevoked) => anyhow::bail!(
            "{AGENT_ENV} holds a credential this database does not accept (unknown, rotated or revoked); ask the overseer for a new one (`mcp-bridge agent rotate NAME`) and put it in this client's configuration"
        ),
        Err(e) => Err(e).context("checking the agent credential in MCP_BRIDGE_AGENT"),
    }
}

/// The environment variable an agent's client configuration sets.
const AGENT_ENV: &str = "MCP_BRIDGE_AGENT";
