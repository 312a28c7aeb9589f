//! The command line: `serve` for agents' MCP clients, and the overseer's
//! commands. Thin by design: parse, call the library, render. `anyhow` and
//! printing live here and in `main.rs` only.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::audit::HeadFile;
use crate::auth::ServerKey;
use crate::bridge::{AdminError, Bridge, HeadFileState};
use crate::clock::SystemClock;
use crate::config::{Config, Database, KeySource, Overrides, audit_head_path_for, default_db_path};
use crate::redact::Redactor;
use crate::seal::Keyring;
use crate::seal::keys::KeyFile;
use crate::store::PgStore;
use crate::store::admin::FullStore;
use crate::store::sqlite::{DirState, OpenMode, SqliteStore, secure_directory};
use crate::store::url::PgUrl;
use crate::store::{Store, reseal};

/// Runs `$body` with `$b` bound to the bridge of whichever backend
/// `$opened` is: the command line is written once, generic over
/// [`FullStore`](crate::store::admin::FullStore), and compiled for both.
macro_rules! on_bridge {
    ($opened:expr, |$b:ident| $body:expr) => {
        match $opened {
            $crate::cli::Opened::Sqlite($b) => $body,
            $crate::cli::Opened::Postgres($b) => $body,
        }
    };
}

mod admin;
mod dashboard;
mod http_args;
mod render;
mod serve;
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
    /// A PostgreSQL database instead of the SQLite file: postgres://USER@HOST:PORT/DB
    /// (prefer the variable: a flag shows in `ps`). Needs the shared server key.
    #[arg(
        long,
        global = true,
        env = "MCP_BRIDGE_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// The server key file (64 hex characters, mode 0600), shared by every server on one
    /// PostgreSQL database [default with SQLite: beside the database file]
    #[arg(long, global = true, env = "MCP_BRIDGE_KEY_FILE", value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Run the overseer's commands against a remote `serve --http` (https://HOST:PORT) with
    /// the observer or admin credential in MCP_BRIDGE_CREDENTIAL, instead of the database.
    #[arg(long, global = true, env = "MCP_BRIDGE_SERVER", value_name = "URL")]
    server: Option<String>,
    /// With --server: a PEM file of the CA (or self-signed certificate) to trust besides
    /// the public CAs.
    #[arg(long, global = true, env = "MCP_BRIDGE_SERVER_CA", value_name = "PATH")]
    server_ca: Option<PathBuf>,
    /// A config file [default: $XDG_CONFIG_HOME/mcp-bridge/mcp-bridge.toml, if present]
    #[arg(long, global = true, env = "MCP_BRIDGE_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP over stdio (what an agent's client spawns), or over HTTP with --http.
    Serve(serve::ServeArgs),
    /// Show, export and verify the audit trail (without a subcommand: show entries).
    Audit(AuditArgs),
    /// The overseer's web dashboard on this database (loopback; prints a one-time login URL).
    Dashboard(dashboard::DashboardArgs),
    #[command(flatten)]
    Admin(admin::AdminCommand),
    /// Post a message into a conversation as the human overseer (every participant receives it once).
    Post(admin::post::PostArgs),
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
    /// The server key that servers on one PostgreSQL database share.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Write a new random server key to PATH (0600; an existing file is never overwritten).
    /// Copy it to every server and overseer machine and pass --key-file PATH.
    Generate {
        /// Where to write it.
        path: PathBuf,
    },
    /// Re-wrap every conversation's data key under a new wrapping key in the key file (online,
    /// audited); the messages are not re-encrypted. The old wrapping key is destroyed: copies of
    /// the database taken before open only with the key file saved with them.
    Rotate {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
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
            database_url: self.common.database_url.clone(),
            key_hex: std::env::var("MCP_BRIDGE_KEY").ok().filter(|k| !k.is_empty()),
            key_file: self.common.key_file.clone(),
            ..Overrides::default()
        }
        .with_yolo_env();
        if let Command::Serve(s) = &self.command {
            s.apply(&mut o);
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
    if let Command::Key(KeyCommand::Generate { path }) = &cli.command {
        return key_generate(path);
    }
    // `serve`, `redact` and `dashboard` never go remote: a client that spawns
    // `serve` must not fail because the human's shell exports MCP_BRIDGE_SERVER
    // (a remote server serves its own dashboard at /ui).
    let remote_command = !matches!(
        cli.command,
        Command::Serve(_) | Command::Redact { .. } | Command::Dashboard(_)
    );
    if let Some(server) = cli.common.server.as_ref().filter(|_| remote_command) {
        let remote = admin::remote::Remote::new(server, cli.common.server_ca.as_deref())?;
        return match cli.command {
            Command::Admin(c) => admin::remote::run(&remote, c).await,
            Command::Post(p) => admin::post::remote(&remote, p).await,
            Command::Audit(a) => match a.command {
                Some(AuditCommand::Verify) => admin::remote::audit(&remote, true, None).await,
                Some(AuditCommand::Export(_)) => {
                    anyhow::bail!(
                        "audit export is not available with --server; use `audit --json` (the same lines)"
                    )
                }
                None => admin::remote::audit(&remote, false, a.show.remote_query()?).await,
            },
            _ => anyhow::bail!(
                "--server runs the overseer's commands (list, show, audit, stats, post, close, revoke, rotate, export, cleanup); run this one where the database is"
            ),
        };
    }
    let config = Config::load(&cli.overrides()).context("loading configuration")?;
    match cli.command {
        Command::Serve(s) => {
            serve::serve(config, s.http()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(a) => match a.command {
            Some(AuditCommand::Verify) => audit_verify(config).await,
            Some(AuditCommand::Export(x)) => admin::audit_export(config, x).await,
            None => admin::audit_show(config, a.show).await,
        },
        Command::Admin(c) => admin::run(config, c).await,
        Command::Dashboard(d) => dashboard::run(config, d).await,
        Command::Post(p) => admin::post::run(config, p).await,
        Command::Redact { json } => redact(config, json),
        Command::Proposals { state, json } => {
            config.database.sqlite_path("YOLO mode")?;
            on_bridge!(open_bridge(&config, OpenMode::MustExist).await?, |bridge| {
                yolo::list(&bridge, state.as_deref(), json).await
            })
        }
        Command::Approve { id } => {
            let path = config.database.sqlite_path("YOLO mode")?;
            let bridge = open_sqlite(&config, path, OpenMode::MustExist).await?;
            yolo::approve(&bridge, &id, path).await
        }
        Command::Reject { id } => {
            config.database.sqlite_path("YOLO mode")?;
            on_bridge!(open_bridge(&config, OpenMode::MustExist).await?, |bridge| {
                yolo::reject(&bridge, &id).await
            })
        }
        Command::Yolo(YoloCommand::Check { mode, command }) => Ok(yolo::check(mode, &command)),
        Command::Yolo(YoloCommand::Setup) => {
            let path = config.database.sqlite_path("YOLO mode")?;
            let bridge = open_sqlite(&config, path, OpenMode::CreateIfMissing).await?;
            yolo::setup(&bridge, path).await
        }
        Command::Key(KeyCommand::Rotate { json }) => {
            on_bridge!(open_bridge(&config, OpenMode::MustExist).await?, |bridge| {
                key_rotate(&bridge, json).await
            })
        }
        Command::Key(KeyCommand::Generate { .. }) => {
            unreachable!("handled before the configuration is loaded")
        }
    }
}

#[allow(clippy::print_stdout, reason = "the overseer's commands report on stdout")]
async fn key_rotate<S: FullStore>(bridge: &Bridge<S>, json: bool) -> anyhow::Result<ExitCode> {
    let rotated = bridge
        .rotate_data_key_root()
        .await
        .context("rotating the data keys' wrapping key")?;
    if json {
        println!("{}", serde_json::to_string(&rotated)?);
    } else {
        println!(
            "re-wrapped {} data key(s) under a new wrapping key (id {} replaces {}); recorded as audit entry {}. \
             Copies of the database taken before now open only with the key file saved with them.",
            rotated.data_keys, rotated.to, rotated.from, rotated.audit_seq
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout, reason = "the overseer's commands report on stdout")]
fn key_generate(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    if path.exists() {
        anyhow::bail!(
            "{} already exists; a key file is never overwritten (every token and audit seal depends on it): choose a new path",
            path.display()
        );
    }
    ServerKey::generate_file(path).context("writing the new server key")?;
    println!(
        "wrote a new server key to {} (mode 0600). Copy it to every server and overseer machine; \
         pass --key-file (or MCP_BRIDGE_KEY_FILE) naming it. Anyone holding it can forge tokens and audit seals.",
        render::line(&path.display().to_string())
    );
    Ok(ExitCode::SUCCESS)
}

/// The bridge of one backend or the other, as the configuration says.
pub(crate) enum Opened {
    /// A SQLite file.
    Sqlite(Bridge<SqliteStore>),
    /// A PostgreSQL database.
    Postgres(Bridge<PgStore>),
}

/// Opens the configured database. `mode` says whether a new one may be
/// created (on PostgreSQL: its schema, in a database that must exist).
async fn open_bridge(config: &Config, mode: OpenMode) -> anyhow::Result<Opened> {
    match &config.database {
        Database::Sqlite(path) => Ok(Opened::Sqlite(open_sqlite(config, path, mode).await?)),
        Database::Postgres(url) => Ok(Opened::Postgres(open_postgres(config, url, mode).await?)),
    }
}

async fn open_postgres(config: &Config, url: &PgUrl, mode: OpenMode) -> anyhow::Result<Bridge<PgStore>> {
    let redactor = Redactor::new(&config.redaction).context("compiling redaction rules")?;
    // The key first: a server without it must not touch the database.
    let key = ServerKey::load_existing(&config.key).context("loading the server key")?;
    let pg_mode = match mode {
        OpenMode::CreateIfMissing => crate::store::postgres::OpenMode::CreateIfMissing,
        OpenMode::MustExist => crate::store::postgres::OpenMode::MustExist,
    };
    let store = PgStore::open(url.expose(), pg_mode)
        .await
        .with_context(|| format!("opening database {}", url.target()))?;
    install_keys(store.keyring(), &key, &config.key)?;
    reseal::run(&store)
        .await
        .context("encrypting the text stored before encryption at rest (it resumes at the next start)")?;
    Ok(Bridge::new(
        store,
        key,
        redactor,
        config.limits.clone(),
        Arc::new(SystemClock),
    ))
}

async fn open_sqlite(config: &Config, path: &Path, mode: OpenMode) -> anyhow::Result<Bridge<SqliteStore>> {
    // Validate the configuration before touching the disk: a bad custom
    // rule must not leave a new empty database behind.
    let redactor = Redactor::new(&config.redaction).context("compiling redaction rules")?;
    check_directory(path);
    let store = SqliteStore::open(path, mode)
        .await
        .with_context(|| format!("opening database {}", path.display()))?;
    let key = match mode {
        OpenMode::CreateIfMissing => ServerKey::load(&config.key),
        OpenMode::MustExist => ServerKey::load_existing(&config.key),
    }
    .context("loading the server key")?;
    let store = store.with_audit_head(HeadFile::new(audit_head_path_for(path), &key));
    install_keys(store.keyring(), &key, &config.key)?;
    reseal::run(&store)
        .await
        .context("encrypting the text stored before encryption at rest (it resumes at the next start)")?;
    Ok(Bridge::new(
        store,
        key,
        redactor,
        config.limits.clone(),
        Arc::new(SystemClock),
    ))
}

/// Gives the store's keyring the data keys' wrapping roots: from the key
/// file's `kek` lines when the key is a file (see [`crate::seal::keyfile`]),
/// else the server key itself.
pub(crate) fn install_keys(ring: &Keyring, key: &ServerKey, source: &KeySource) -> anyhow::Result<()> {
    match source {
        KeySource::File(path) | KeySource::Given(path) => ring
            .load_file(KeyFile {
                path: path.clone(),
                server_key: key.clone(),
                beside_database: matches!(source, KeySource::File(_)),
            })
            .context("reading the key file's wrapping keys"),
        KeySource::Env(_) | KeySource::Absent => {
            ring.install(key);
            Ok(())
        }
    }
}

/// The database's directory holds the key and the audit head too: the
/// default data directory is tightened to 0700, a directory the user chose
/// is only reported (see [`secure_directory`] for why).
fn check_directory(db_path: &Path) {
    let Some(dir) = db_path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return;
    };
    let is_default = default_db_path().is_ok_and(|d| d == db_path);
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

#[allow(clippy::print_stdout, reason = "the overseer's commands report on stdout")]
async fn audit_verify(config: Config) -> anyhow::Result<ExitCode> {
    on_bridge!(open_bridge(&config, OpenMode::MustExist).await?, |bridge| {
        audit_verify_on(&bridge).await
    })
}

#[allow(clippy::print_stdout, reason = "the overseer's commands report on stdout")]
async fn audit_verify_on<S: FullStore>(bridge: &Bridge<S>) -> anyhow::Result<ExitCode> {
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
