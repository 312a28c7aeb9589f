//! The command line: `serve` for agents' MCP clients, and the overseer's
//! commands. Thin by design: parse, call the library, render. `anyhow` and
//! printing live here and in `main.rs` only.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::audit::HeadFile;
use crate::auth::ServerKey;
use crate::bridge::{AdminError, Bridge, HeadFileState};
use crate::clock::SystemClock;
use crate::config::{Config, Overrides, audit_head_path_for, default_db_path};
use crate::mcp::BridgeServer;
use crate::redact::Redactor;
use crate::store::sqlite::{DirState, OpenMode, SqliteStore, secure_directory};

mod admin;
mod render;
mod yolo;

/// mcp-bridge: a secure coordination layer for LLM agents.
#[derive(Debug, Parser)]
#[command(name = "mcp-bridge", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand shares.
#[derive(Debug, Args)]
struct CommonArgs {
    /// The SQLite database [default: $XDG_DATA_HOME/mcp-bridge/bridge.db]
    #[arg(long, global = true, env = "MCP_BRIDGE_DB", value_name = "PATH")]
    db: Option<PathBuf>,
    /// A config file [default: $XDG_CONFIG_HOME/mcp-bridge/mcp-bridge.toml, if present]
    #[arg(long, global = true, env = "MCP_BRIDGE_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP over stdio (what an agent's client spawns), or over HTTP with --http.
    Serve(ServeArgs),
    /// Show, export and verify the audit trail (without a subcommand: show entries).
    Audit(AuditArgs),
    #[command(flatten)]
    Admin(admin::AdminCommand),
    /// Redact secrets from standard input to standard output.
    Redact {
        /// Print `{"text": ..., "redacted": [kinds]}` instead of the bare text.
        #[arg(long)]
        json: bool,
    },
    /// List YOLO-mode command proposals, newest first.
    Proposals {
        /// Only proposals in this state (pending, refused, approved, rejected, executed).
        #[arg(long)]
        state: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Approve a proposed command at this terminal (typed phrase, then a one-time code).
    Approve {
        /// The proposal id (prop_...).
        id: String,
    },
    /// Refuse a proposed command.
    Reject {
        /// The proposal id (prop_...).
        id: String,
    },
    /// YOLO-mode tools for the human.
    #[command(subcommand)]
    Yolo(YoloCommand),
}

#[derive(Debug, Subcommand)]
enum YoloCommand {
    /// Judge a command as propose_command would; exit 0 when allowed, 1 when refused.
    Check {
        /// safe, restricted or yolo.
        #[arg(long, value_parser = parse_mode)]
        mode: crate::exec::Mode,
        /// The command (after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Set the overseer passphrase once (asked at every `approve`; only its Argon2id hash
    /// is stored, 0600, beside the database).
    Setup,
}

fn parse_mode(s: &str) -> Result<crate::exec::Mode, String> {
    s.parse()
        .map_err(|_| "expected safe, restricted or yolo".to_owned())
}

#[derive(Debug, Args)]
struct ServeArgs {
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
    /// Serve MCP over streamable HTTP at IP:PORT (path /mcp) instead of stdio; every
    /// request needs `Authorization: Bearer <agent credential>`.
    #[arg(long, value_name = "IP:PORT")]
    http: Option<std::net::SocketAddr>,
    /// With --http: a further Host header value to accept (repeatable); loopback names
    /// and the bind address are always accepted.
    #[arg(long = "allowed-host", value_name = "HOST", requires = "http")]
    allowed_hosts: Vec<String>,
    /// With --http: a browser Origin to accept, e.g. https://app.example:443 (repeatable);
    /// without one, every request carrying an Origin header is refused.
    #[arg(long = "allowed-origin", value_name = "ORIGIN", requires = "http")]
    allowed_origins: Vec<String>,
    /// With --http: allow plain HTTP on a non-loopback address (TLS is not built yet).
    #[arg(long, requires = "http")]
    insecure_http: bool,
}

impl ServeArgs {
    /// The HTTP options, when `--http` was given.
    fn http(&self) -> Option<crate::http::HttpOptions> {
        self.http.map(|addr| crate::http::HttpOptions {
            addr,
            allowed_hosts: self.allowed_hosts.clone(),
            allowed_origins: self.allowed_origins.clone(),
            insecure_http: self.insecure_http,
        })
    }
}

/// `audit` shows entries; its subcommands verify and export.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    #[command(flatten)]
    show: admin::AuditShowArgs,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain; exit 0 when intact, 1 naming the first broken entry.
    Verify,
    /// Write entries for a SIEM: one JSON object per line with every column.
    Export(admin::AuditExportArgs),
}

impl Cli {
    fn overrides(&self) -> Overrides {
        let mut o = Overrides {
            db: self.common.db.clone(),
            config_file: self.common.config.clone(),
            key_hex: std::env::var("MCP_BRIDGE_KEY").ok().filter(|k| !k.is_empty()),
            ..Overrides::default()
        }
        .with_yolo_env();
        if let Command::Serve(s) = &self.command {
            o.rate_limit = s.rate_limit.clone();
            o.read_rate_limit = s.read_rate_limit.clone();
            o.conversation_ttl = s.conversation_ttl.clone();
            o.heartbeat_window = s.heartbeat_window.clone();
            o.max_message_bytes = s.max_message_bytes;
            o.max_creates_per_minute = s.max_creates_per_minute;
            o.max_messages_per_conversation = s.max_messages_per_conversation.clone();
            o.max_bytes_per_conversation = s.max_bytes_per_conversation.clone();
        }
        if let Command::Admin(admin::AdminCommand::Import { limits, .. }) = &self.command {
            o.max_import_bytes = limits.max_import_bytes;
            o.max_import_messages = limits.max_import_messages;
        }
        o
    }
}

/// Runs the parsed command; errors carry context for `main` to print, with
/// every control character escaped: an error may quote a name from a
/// hostile database or file, and it goes to the overseer's terminal.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    run_inner(cli)
        .await
        .map_err(|e| anyhow::anyhow!(render::clean(&format!("{e:#}"))))
}

async fn run_inner(cli: Cli) -> anyhow::Result<ExitCode> {
    // Completions need neither a database nor a valid config file.
    if let Command::Admin(admin::AdminCommand::Completions { shell }) = &cli.command {
        return admin::completions(*shell);
    }
    let config = Config::load(&cli.overrides()).context("loading configuration")?;
    match cli.command {
        Command::Serve(s) => {
            serve(config, s.http()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(a) => match a.command {
            Some(AuditCommand::Verify) => audit_verify(config).await,
            Some(AuditCommand::Export(x)) => admin::audit_export(config, x).await,
            None => admin::audit_show(config, a.show).await,
        },
        Command::Admin(c) => admin::run(config, c).await,
        Command::Redact { json } => redact(config, json),
        Command::Proposals { state, json } => {
            let bridge = open_bridge(&config, OpenMode::MustExist).await?;
            yolo::list(&bridge, state.as_deref(), json).await
        }
        Command::Approve { id } => {
            let bridge = open_bridge(&config, OpenMode::MustExist).await?;
            yolo::approve(&bridge, &id, &config.db_path).await
        }
        Command::Reject { id } => {
            let bridge = open_bridge(&config, OpenMode::MustExist).await?;
            yolo::reject(&bridge, &id).await
        }
        Command::Yolo(YoloCommand::Check { mode, command }) => Ok(yolo::check(mode, &command)),
        Command::Yolo(YoloCommand::Setup) => {
            let bridge = open_bridge(&config, OpenMode::CreateIfMissing).await?;
            yolo::setup(&bridge, &config.db_path).await
        }
    }
}

async fn open_bridge(config: &Config, mode: OpenMode) -> anyhow::Result<Bridge<SqliteStore>> {
    // Validate the configuration before touching the disk: a bad custom
    // rule must not leave a new empty database behind.
    let redactor = Redactor::new(&config.redaction).context("compiling redaction rules")?;
    check_directory(config);
    let store = SqliteStore::open(&config.db_path, mode)
        .await
        .with_context(|| format!("opening database {}", config.db_path.display()))?;
    let key = match mode {
        OpenMode::CreateIfMissing => ServerKey::load(&config.key),
        OpenMode::MustExist => ServerKey::load_existing(&config.key),
    }
    .context("loading the server key")?;
    let store = store.with_audit_head(HeadFile::new(audit_head_path_for(&config.db_path), &key));
    Ok(Bridge::new(
        store,
        key,
        redactor,
        config.limits.clone(),
        Arc::new(SystemClock),
    ))
}

/// The database's directory holds the key and the audit head too: the
/// default data directory is tightened to 0700, a directory the user chose
/// is only reported (see [`secure_directory`] for why).
fn check_directory(config: &Config) {
    let Some(dir) = config.db_path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return;
    };
    let is_default = default_db_path().is_ok_and(|d| d == config.db_path);
    match secure_directory(dir, is_default) {
        Ok(DirState::Private) => {}
        Ok(DirState::Tightened { from }) => {
            tracing::info!(dir = %dir.display(), from = format!("{from:o}"), "tightened the data directory to 0700");
        }
        Ok(DirState::Open { mode }) => tracing::warn!(
            dir = %dir.display(),
            mode = format!("{mode:o}"),
            "the database directory is accessible to other users; it holds the database, its key and audit head: run `chmod 700` on it"
        ),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot check the database directory's permissions")
        }
    }
}

async fn serve(config: Config, http: Option<crate::http::HttpOptions>) -> anyhow::Result<()> {
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
    let bridge = open_bridge(&config, OpenMode::CreateIfMissing)
        .await?
        .with_yolo(config.yolo.clone());
    if let Some(y) = &config.yolo {
        bridge
            .record_yolo_start()
            .await
            .context("recording the YOLO opt-in")?;
        tracing::warn!(workspace = %y.workspace.display(), dry_run = y.dry_run, "YOLO mode: command execution is enabled, behind human approval");
    }
    if let Some(h) = http {
        return serve_http(&config, bridge, h).await;
    }
    let mut server = BridgeServer::new(bridge.clone());
    if let Some(agent) = agent_identity(&bridge).await? {
        tracing::info!(agent = %agent.name, "acting as a registered agent");
        server = server.with_identity(agent);
    }
    tracing::info!(db = %config.db_path.display(), send_rate = %config.limits.send_rate, "serving MCP on stdio");
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
async fn serve_http(
    config: &Config,
    bridge: Bridge<SqliteStore>,
    options: crate::http::HttpOptions,
) -> anyhow::Result<()> {
    if std::env::var_os(AGENT_ENV).is_some() {
        tracing::warn!("{AGENT_ENV} is ignored with --http: every request brings its own bearer credential");
    }
    tracing::info!(db = %config.db_path.display(), send_rate = %config.limits.send_rate, "serving MCP over HTTP");
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
async fn agent_identity(
    bridge: &crate::bridge::Bridge<crate::store::SqliteStore>,
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

#[allow(clippy::print_stdout, reason = "the overseer's commands report on stdout")]
async fn audit_verify(config: Config) -> anyhow::Result<ExitCode> {
    let bridge = open_bridge(&config, OpenMode::MustExist).await?;
    bridge
        .flush_refusal_counts()
        .await
        .context("writing pending refusal counts to the audit trail")?;
    let check = match bridge.check_audit().await {
        Ok(c) => c,
        Err(AdminError::Store(e)) => return Err(e).context("reading the audit trail"),
        Err(e) => {
            eprintln!("{}", render::clean(&format!("audit trail BROKEN: {e}")));
            return Ok(ExitCode::from(1));
        }
    };
    match &check.head {
        Some((seq, hash)) => println!("audit chain intact: {} entries, head {seq} {hash}", check.entries),
        None => println!("audit chain intact: no entries yet"),
    }
    println!("schema matches this binary; every conversation has an audit trail");
    match &check.head_file {
        HeadFileState::Matches { path, seq } => println!(
            "head file {} (entry {seq}) is in the database: nothing was cut off",
            render::clean(&path.display().to_string())
        ),
        HeadFileState::Missing { path } => eprintln!(
            "{}",
            render::clean(&format!(
                "WARNING: no audit head file at {}; truncation of the newest entries cannot be checked \
                 until the next audited action writes one",
                path.display()
            ))
        ),
        HeadFileState::Unreadable { path } => eprintln!(
            "{}",
            render::clean(&format!(
                "WARNING: the audit head file {} is not a head record (a power cut?); \
                 truncation cannot be checked until the next audited action rewrites it",
                path.display()
            ))
        ),
        HeadFileState::NotKept => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn redact(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let redactor = Redactor::new(&config.redaction).context("compiling redaction rules")?;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading standard input (it must be UTF-8 text)")?;
    let out = redactor.redact(&input);
    let mut stdout = std::io::stdout().lock();
    if json {
        let doc = serde_json::json!({ "text": out.text, "redacted": out.kinds });
        writeln!(stdout, "{doc}").context("writing standard output")?;
    } else {
        stdout
            .write_all(out.text.as_bytes())
            .context("writing standard output")?;
    }
    stdout.flush().context("writing standard output")?;
    Ok(ExitCode::SUCCESS)
}
