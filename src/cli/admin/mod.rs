//! The overseer's commands: see, audit, clean up, rotate, export, back up.
//!
//! Each handler parses nothing and decides nothing beyond what to print:
//! it opens the same database and key as `serve` (never creating a
//! database: `OpenMode::MustExist`), calls one `bridge` use case, and
//! renders the result as a table for a person or as JSON for a script
//! (`--json`). Output goes through a locked stdout writer, so a closed pipe
//! (`mcp-bridge audit export | head`) ends the command quietly instead of
//! panicking. Tokens appear only in the one output that issues them.
//!
//! One module per concern: `observing` (list, show, stats), `audit`
//! (audit, audit export), `lifecycle` (cleanup, rotate, revoke, close),
//! `portability` (export, import), `safety` (backup, restore) and `agents`
//! (agent add, list, rotate, revoke). This one
//! holds the command line, the dispatch and the output helpers they share.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{CommandFactory, Subcommand};
use serde::Serialize;

use crate::bridge::SessionId;
use crate::cli::render::{self, Style};
use crate::cli::{Cli, Opened, open_bridge};
use crate::config::{Config, Database, parse_duration};
use crate::store::sqlite::OpenMode;

mod agents;
mod audit;
mod lifecycle;
mod observing;
mod portability;
pub(super) mod post;
pub mod remote;
mod safety;

pub use audit::{AuditExportArgs, AuditShowArgs, audit_export, audit_show};
pub use portability::ImportLimitArgs;

/// The overseer's commands, flattened into the top-level command list.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// List conversations: roles, message and unread counts, activity, state.
    List {
        /// Only live conversations.
        #[arg(long, conflicts_with = "expired")]
        active: bool,
        /// Only ended conversations (expired or closed): what `cleanup` would purge.
        #[arg(long)]
        expired: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a conversation: seats, status, and every message in order.
    Show {
        /// The conversation id (conv_...).
        id: String,
        /// Keep printing new messages as they arrive (Ctrl-C to stop).
        #[arg(long, short)]
        follow: bool,
        /// Print JSON instead of text (with --follow: one message per line).
        #[arg(long)]
        json: bool,
    },
    /// Purge ended conversations and their messages; the audit trail is kept.
    Cleanup {
        /// Only conversations that ended at least this long ago, e.g. "7d", "12h".
        #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "0")]
        older_than: DurationArg,
        /// Show what would be purged, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new token for a seat and revoke its old one (prints the token once).
    Rotate {
        /// The conversation id.
        id: String,
        /// The seat whose token to replace: a (the creator), b, ... p.
        #[arg(long, value_name = "SEAT")]
        session: Seat,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// End a seat's access; its agent then gets `session_revoked`.
    Revoke {
        /// The conversation id.
        id: String,
        /// The seat to revoke: a (the creator), b, ... p.
        #[arg(long, value_name = "SEAT")]
        session: Seat,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Close a conversation early; its agents then get `conversation_closed`.
    Close {
        /// The conversation id.
        id: String,
        /// Purge it at once (as `cleanup` would): its data key is destroyed, so no copy of the
        /// database opens its messages again.
        #[arg(long)]
        purge: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write a conversation as JSON (no tokens, no token hashes).
    Export {
        /// The conversation id.
        id: String,
        /// Write to this file (created 0600; must not exist) instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Restore an exported conversation with fresh tokens (printed once).
    Import {
        /// A file written by `mcp-bridge export`.
        file: PathBuf,
        /// Fail if the exported id is taken instead of choosing a new one.
        #[arg(long)]
        keep_id: bool,
        /// Reopen it with this lifetime from now, e.g. "3h" (default: keep its
        /// expiry, never beyond the configured conversation lifetime from now).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        ttl: Option<DurationArg>,
        #[command(flatten)]
        limits: ImportLimitArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Copy the database consistently while agents keep writing.
    Backup {
        /// The copy to create; refused if it exists.
        path: PathBuf,
        /// Also copy the server key to PATH.key. The key protects every token:
        /// store it apart from the backup.
        #[arg(long)]
        with_key: bool,
    },
    /// Replace the database with a verified backup (refused while in use).
    Restore {
        /// A file written by `mcp-bridge backup`.
        path: PathBuf,
        /// Verify with, and install, the key saved beside the backup (PATH.key).
        #[arg(long)]
        with_key: bool,
    },
    /// Counts and sizes: conversations, messages, database, audit trail.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Registered agents: add (prints a credential once), list, rotate, revoke.
    Agent(agents::AgentArgs),
    /// Print a shell completion script, e.g. `mcp-bridge completions bash > ...`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// A seat on the command line: `a` (the creator), `b`, ... `p`.
#[derive(Debug, Clone, Copy)]
pub struct Seat(SessionId);

impl std::str::FromStr for Seat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionId::parse(s)
            .map(Seat)
            .ok_or_else(|| "a seat is one letter from a (the creator) to p".to_owned())
    }
}

impl From<Seat> for SessionId {
    fn from(s: Seat) -> Self {
        s.0
    }
}

/// A parsed duration flag.
#[derive(Debug, Clone, Copy)]
pub struct DurationArg(Duration);

fn duration(text: &str) -> Result<DurationArg, String> {
    if text.trim() == "0" {
        return Ok(DurationArg(Duration::ZERO));
    }
    parse_duration("duration", text)
        .map(DurationArg)
        .map_err(|e| e.to_string())
}

/// Runs one overseer command. A closed stdout pipe ends it quietly.
pub async fn run(config: Config, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match dispatch(config, cmd).await {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn dispatch(config: Config, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let style = Style::detect();
    match cmd {
        AdminCommand::List {
            active,
            expired,
            json,
        } => observing::list(config, active, expired, json, style).await,
        AdminCommand::Show { id, follow, json } => observing::show(&config, &id, follow, json, style).await,
        AdminCommand::Cleanup {
            older_than,
            dry_run,
            json,
        } => lifecycle::cleanup(config, older_than, dry_run, json).await,
        AdminCommand::Rotate { id, session, json } => lifecycle::rotate(config, id, session, json).await,
        AdminCommand::Revoke { id, session, json } => lifecycle::revoke(config, id, session, json).await,
        AdminCommand::Close { id, purge, json } => lifecycle::close(config, id, purge, json).await,
        AdminCommand::Export { id, output } => portability::export(config, id, output).await,
        AdminCommand::Import {
            file,
            keep_id,
            ttl,
            json,
            limits: _,
        } => portability::import(config, file, keep_id, ttl, json).await,
        AdminCommand::Backup { path, with_key } => safety::backup(&config, &path, with_key).await,
        AdminCommand::Restore { path, with_key } => safety::restore(&config, &path, with_key).await,
        AdminCommand::Stats { json } => observing::stats(config, json, style).await,
        AdminCommand::Agent(args) => agents::run(config, args, style).await,
        AdminCommand::Completions { shell } => completions(shell),
    }
}

/// Prints a completion script; needs no database or config.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "mcp-bridge", &mut out);
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn open(config: &Config) -> anyhow::Result<Opened> {
    open_bridge(config, OpenMode::MustExist).await
}

/// Opens the database, creating it and its key when there is no database
/// yet: for `agent add`, the first step of setting up a team, before any
/// agent runs. An existing database must come with its key, as for every
/// other command: a new key would silently invalidate every credential.
async fn open_or_create(config: &Config) -> anyhow::Result<Opened> {
    let mode = match &config.database {
        Database::Sqlite(path) if path.exists() => OpenMode::MustExist,
        // PostgreSQL: the schema is created in a database that must exist,
        // and the key is never created (it must be given).
        _ => OpenMode::CreateIfMissing,
    };
    open_bridge(config, mode).await
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", render::json(&serde_json::to_string_pretty(value)?))?;
    Ok(ExitCode::SUCCESS)
}

fn refuse_existing(path: &Path, what: &str) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{what} {} already exists; choose a new path (nothing is ever overwritten)",
            path.display()
        );
    }
    Ok(())
}

/// Writes to a new 0600 file (exports hold message bodies), or to stdout.
fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(p) => {
            let mut f =
                crate::auth::create_private_file(p).with_context(|| format!("creating {}", p.display()))?;
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("writing {}", p.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()?;
            Ok(())
        }
    }
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}
