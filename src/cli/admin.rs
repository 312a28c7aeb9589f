//! The overseer's commands: see, audit, clean up, rotate, export, back up.
//!
//! Each handler parses nothing and decides nothing beyond what to print:
//! it opens the same database and key as `serve` (never creating a
//! database: `OpenMode::MustExist`), calls one `bridge` use case, and
//! renders the result as a table for a person or as JSON for a script
//! (`--json`). Output goes through a locked stdout writer, so a closed pipe
//! (`mcp-bridge audit export | head`) ends the command quietly instead of
//! panicking. Tokens appear only in the one output that issues them.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, CommandFactory, Subcommand, ValueEnum};
use serde::Serialize;

use super::render::{self, Style};
use super::{Cli, open_bridge};
use crate::audit::HeadFile;
use crate::auth::ServerKey;
use crate::bridge::{
    Bridge, CleanupRequest, ConversationDetail, ConversationSummary, Export, ImportRequest, ListFilter,
    LiveState, MessageView, SessionId,
};
use crate::clock::{Millis, SystemClock, rfc3339};
use crate::config::{Config, KeySource, audit_head_path_for, key_path_for, parse_duration};
use crate::redact::Redactor;
use crate::store::admin::AuditFilter;
use crate::store::sqlite::{OpenMode, SqliteStore};

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
        /// The seat whose token to replace.
        #[arg(long, value_enum)]
        session: Seat,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// End a seat's access; its agent then gets `session_revoked`.
    Revoke {
        /// The conversation id.
        id: String,
        /// The seat to revoke.
        #[arg(long, value_enum)]
        session: Seat,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Close a conversation early; its agents then get `conversation_closed`.
    Close {
        /// The conversation id.
        id: String,
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
    /// Print a shell completion script, e.g. `mcp-bridge completions bash > ...`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The bounds `import` puts on a file, before it reads it.
#[derive(Debug, Args)]
pub struct ImportLimitArgs {
    /// Largest file accepted, in bytes [default: 67108864].
    #[arg(long, env = "MCP_BRIDGE_MAX_IMPORT_BYTES", value_name = "BYTES")]
    pub max_import_bytes: Option<u64>,
    /// Most messages accepted [default: 10000].
    #[arg(long, env = "MCP_BRIDGE_MAX_IMPORT_MESSAGES", value_name = "N")]
    pub max_import_messages: Option<usize>,
}

/// `mcp-bridge audit` without a subcommand: show entries.
#[derive(Debug, Args)]
pub struct AuditShowArgs {
    #[command(flatten)]
    filter: AuditFilterArgs,
    /// Show only the newest N matching entries (0: all).
    #[arg(long, default_value_t = 50, value_name = "N")]
    limit: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// `mcp-bridge audit export`.
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    #[command(flatten)]
    filter: AuditFilterArgs,
    /// Output format; jsonl is one JSON object per entry and line, every column.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: AuditFormat,
    /// Write to this file (created 0600; must not exist) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Filters shared by `audit` and `audit export`.
#[derive(Debug, Args)]
struct AuditFilterArgs {
    /// Only entries about this conversation.
    #[arg(long, value_name = "ID")]
    conversation: Option<String>,
    /// Only actions matching this glob, e.g. "message.*", "*.refused", "session.rotate".
    #[arg(long, value_name = "GLOB")]
    action: Option<String>,
    /// From this time: RFC 3339 ("2026-01-31T12:00:00Z"), a date ("2026-01-31") or an age ("2h").
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

/// Audit export formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuditFormat {
    /// One JSON object per line.
    Jsonl,
}

/// A seat on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Seat {
    /// The creator's seat.
    A,
    /// The partner's seat.
    B,
}

impl From<Seat> for SessionId {
    fn from(s: Seat) -> Self {
        match s {
            Seat::A => SessionId::A,
            Seat::B => SessionId::B,
        }
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

/// `--since`/`--until`: an RFC 3339 time, a date (midnight UTC), or an age.
fn parse_instant(flag: &str, text: &str, now: Millis) -> anyhow::Result<Millis> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_millis());
    }
    match parse_duration(flag, text) {
        Ok(age) => Ok(now - age.as_millis() as i64),
        Err(_) => bail!(
            "{flag}: expected an RFC 3339 time (2026-01-31T12:00:00Z), a date (2026-01-31) or an age (90m, 2h, 7d)"
        ),
    }
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
        } => {
            let filter = if active {
                ListFilter::Active
            } else if expired {
                ListFilter::Ended
            } else {
                ListFilter::All
            };
            let bridge = open(&config).await?;
            let list = bridge
                .list_conversations(filter)
                .await
                .context("listing conversations")?;
            if json {
                return print_json(&list);
            }
            print_list(&list, bridge.now_ms(), style)
        }
        AdminCommand::Show { id, follow, json } => show(&config, &id, follow, json, style).await,
        AdminCommand::Cleanup {
            older_than,
            dry_run,
            json,
        } => {
            let bridge = open(&config).await?;
            let report = bridge
                .cleanup(CleanupRequest {
                    older_than: older_than.0,
                    dry_run,
                })
                .await
                .context("cleaning up")?;
            if json {
                return print_json(&report);
            }
            let mut out = std::io::stdout().lock();
            let verb = if dry_run { "would purge" } else { "purged" };
            writeln!(
                out,
                "{verb} {} conversation(s) that ended before {}",
                report.conversations.len(),
                rfc3339(report.cutoff)
            )?;
            for id in &report.conversations {
                writeln!(out, "  {}", render::line(id))?;
            }
            let d = &report.deleted;
            writeln!(
                out,
                "rows: {} messages, {} deliveries, {} participants, {} statuses, {} rate events",
                d.messages, d.deliveries, d.participants, d.status, d.rate_events
            )?;
            match report.audit_seq {
                Some(seq) => writeln!(
                    out,
                    "recorded as audit entry {seq}; audit entries are never purged"
                )?,
                None if dry_run => writeln!(out, "dry run: nothing was changed")?,
                None => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Rotate { id, session, json } => {
            let bridge = open(&config).await?;
            let r = bridge
                .rotate_token(&id, session.into())
                .await
                .with_context(|| format!("rotating the token of session {}", SessionId::from(session)))?;
            if json {
                return print_json(&r);
            }
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "New token for session {} ({}) of {}; the old token no longer works.",
                r.session_id,
                render::line(&r.role),
                r.conversation_id
            )?;
            writeln!(
                out,
                "It is shown once; give it to the agent through a trusted channel:"
            )?;
            writeln!(out, "{}", &*r.token)?;
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Revoke { id, session, json } => {
            let bridge = open(&config).await?;
            let r = bridge
                .revoke_session(&id, session.into())
                .await
                .context("revoking the session")?;
            if json {
                return print_json(&r);
            }
            let seat = SessionId::from(session);
            let now = bridge.now_ms();
            let mut out = std::io::stdout().lock();
            if r.changed {
                writeln!(
                    out,
                    "session {seat} of {id} revoked; its agent now gets session_revoked (`mcp-bridge rotate` issues a new token)"
                )?;
            } else {
                writeln!(
                    out,
                    "session {seat} of {id} was already revoked {}; nothing changed",
                    render::relative(r.at, now)
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Close { id, json } => {
            let bridge = open(&config).await?;
            let r = bridge
                .close_conversation(&id)
                .await
                .context("closing the conversation")?;
            if json {
                return print_json(&r);
            }
            let now = bridge.now_ms();
            let mut out = std::io::stdout().lock();
            if r.changed {
                writeln!(
                    out,
                    "conversation {id} closed; its agents now get conversation_closed"
                )?;
            } else {
                writeln!(
                    out,
                    "conversation {id} was already closed {}; nothing changed",
                    render::relative(r.at, now)
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Export { id, output } => {
            if let Some(path) = &output {
                refuse_existing(path, "export file")?;
            }
            let bridge = open(&config).await?;
            let export = bridge.export_conversation(&id).await.context("exporting")?;
            let text = render::json(&serde_json::to_string_pretty(&export)?) + "\n";
            write_output(output.as_deref(), text.as_bytes())?;
            if let Some(path) = output {
                eprintln!(
                    "exported {} message(s) of {id} to {}",
                    export.messages.len(),
                    path.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Import {
            file,
            keep_id,
            ttl,
            json,
            limits: _,
        } => {
            let text = read_bounded(&file, config.limits.max_import_bytes)?;
            let export: Export = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not an export written by `mcp-bridge export`",
                    file.display()
                )
            })?;
            let bridge = open(&config).await?;
            let r = bridge
                .import_conversation(ImportRequest {
                    export,
                    keep_id,
                    ttl: ttl.map(|t| t.0),
                })
                .await
                .with_context(|| format!("importing {}", file.display()))?;
            if json {
                return print_json(&r);
            }
            let now = bridge.now_ms();
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "imported {} message(s) as {} (expires {})",
                r.messages,
                r.conversation_id,
                render::relative(r.expires_at, now)
            )?;
            writeln!(out, "Fresh tokens, shown once:")?;
            for t in &r.tokens {
                match &t.token {
                    Some(tok) => writeln!(
                        out,
                        "  session {} ({}): {}",
                        t.session_id,
                        render::line(&t.role),
                        &**tok
                    )?,
                    None => writeln!(
                        out,
                        "  session {} ({}): revoked, no token",
                        t.session_id,
                        render::line(&t.role)
                    )?,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Backup { path, with_key } => backup(&config, &path, with_key).await,
        AdminCommand::Restore { path, with_key } => restore(&config, &path, with_key).await,
        AdminCommand::Stats { json } => {
            let bridge = open(&config).await?;
            let s = bridge.stats().await.context("reading statistics")?;
            let wal = std::fs::metadata(sidecar(&config.db_path, "-wal"))
                .map(|m| m.len() as i64)
                .unwrap_or(0);
            if json {
                #[derive(Serialize)]
                struct Out<'a> {
                    #[serde(flatten)]
                    stats: &'a crate::bridge::Stats,
                    wal_bytes: i64,
                    path: String,
                }
                return print_json(&Out {
                    stats: &s,
                    wal_bytes: wal,
                    path: config.db_path.display().to_string(),
                });
            }
            let now = bridge.now_ms();
            let f = &s.figures;
            let mut t = style.pairs();
            t.add_row(vec![
                "database".to_owned(),
                render::line(&config.db_path.display().to_string()),
            ]);
            t.add_row(vec![
                "size".to_owned(),
                format!(
                    "{} (+ {} WAL)",
                    render::bytes(f.database_bytes),
                    render::bytes(wal)
                ),
            ]);
            t.add_row(vec![
                "conversations".to_owned(),
                format!(
                    "{} ({} active, {} expired, {} closed)",
                    f.conversations, f.active, f.expired, f.closed
                ),
            ]);
            t.add_row(vec![
                "messages".to_owned(),
                format!("{} ({} unread)", f.messages, f.unread),
            ]);
            t.add_row(vec!["audit entries".to_owned(), f.audit_entries.to_string()]);
            t.add_row(vec![
                "oldest conversation".to_owned(),
                render::relative_opt(s.oldest_conversation, now),
            ]);
            t.add_row(vec![
                "last activity".to_owned(),
                render::relative_opt(s.last_activity, now),
            ]);
            writeln!(std::io::stdout().lock(), "{t}")?;
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Completions { shell } => completions(shell),
    }
}

/// Reads an import file, refusing one larger than `limit` bytes before
/// reading it (and a stream that grows past it while being read).
fn read_bounded(file: &Path, limit: u64) -> anyhow::Result<String> {
    use std::io::Read;
    let too_big = || {
        anyhow::anyhow!(
            "{} is larger than max_import_bytes ({limit} bytes); raise it with --max-import-bytes \
             or MCP_BRIDGE_MAX_IMPORT_BYTES if the file is trusted",
            file.display()
        )
    };
    let f = std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    if f.metadata().is_ok_and(|m| m.is_file() && m.len() > limit) {
        return Err(too_big());
    }
    let mut text = String::new();
    f.take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .with_context(|| format!("reading {} (it must be UTF-8 JSON)", file.display()))?;
    if text.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(text)
}

/// Prints a completion script; needs no database or config.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "mcp-bridge", &mut out);
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

async fn open(config: &Config) -> anyhow::Result<Bridge<SqliteStore>> {
    open_bridge(config, OpenMode::MustExist).await
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

fn seats_of(c: &ConversationSummary, f: impl Fn(&crate::bridge::SeatView) -> String) -> String {
    c.participants
        .iter()
        .map(|p| format!("{}:{}", p.session_id, f(p)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_list(list: &[ConversationSummary], now: Millis, style: Style) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(out, "no conversations")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = style.table([
        "ID", "STATE", "ROLES", "MSGS", "UNREAD", "CREATED", "EXPIRES", "ACTIVITY", "ALIVE",
    ]);
    for c in list {
        let alive: Vec<&str> = c
            .participants
            .iter()
            .filter(|p| p.alive && p.revoked_at.is_none())
            .map(|p| p.session_id.as_str())
            .collect();
        let revoked = c.participants.iter().any(|p| p.revoked_at.is_some());
        let roles = seats_of(c, |p| {
            if p.revoked_at.is_some() {
                format!("{} (revoked)", p.role)
            } else {
                p.role.clone()
            }
        });
        t.add_row(vec![
            render::cell(&c.id),
            style.state_cell(c.state),
            style.flag_cell(roles, revoked),
            comfy_table::Cell::new(c.messages),
            render::cell(seats_of(c, |p| p.unread.to_string())),
            comfy_table::Cell::new(render::relative(c.created_at, now)),
            comfy_table::Cell::new(match c.state {
                LiveState::Closed => "closed".to_owned(),
                _ => render::relative(c.expires_at, now),
            }),
            comfy_table::Cell::new(render::relative_opt(c.last_activity, now)),
            render::cell(if alive.is_empty() {
                "-".to_owned()
            } else {
                alive.join(",")
            }),
        ]);
    }
    writeln!(out, "{t}")?;
    Ok(ExitCode::SUCCESS)
}

fn print_header(
    d: &ConversationDetail,
    now: Millis,
    style: Style,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let c = &d.summary;
    let ends = match c.state {
        LiveState::Closed => format!("closed {}", render::relative_opt(c.closed_at, now)),
        LiveState::Expired => format!("expired {}", render::relative(c.expires_at, now)),
        LiveState::Active => format!("expires {}", render::relative(c.expires_at, now)),
    };
    writeln!(
        out,
        "{}  {}  created {}, {ends}, {} message(s)",
        style.paint(&render::line(&c.id), "1"),
        style.paint(
            c.state.as_str(),
            match c.state {
                LiveState::Active => "32",
                LiveState::Expired => "90",
                LiveState::Closed => "33",
            }
        ),
        render::relative(c.created_at, now),
        c.messages
    )?;
    let mut t = style.table([
        "SEAT",
        "ROLE",
        "STATUS",
        "NOTE",
        "HEARTBEAT",
        "ALIVE",
        "UNREAD",
        "TOKEN",
    ]);
    for p in &c.participants {
        let token = match p.revoked_at {
            Some(at) => format!("revoked {}", render::relative(at, now)),
            None => format!("issued {}", render::relative(p.token_created_at, now)),
        };
        t.add_row(vec![
            render::cell(&p.session_id),
            render::cell(&p.role),
            render::cell(p.status.as_deref().unwrap_or("-")),
            render::cell(p.note.as_deref().unwrap_or("-")),
            comfy_table::Cell::new(render::relative_opt(p.last_heartbeat, now)),
            style.flag_cell(
                if p.alive { "yes" } else { "no" },
                !p.alive && c.state == LiveState::Active,
            ),
            comfy_table::Cell::new(p.unread),
            style.flag_cell(token, p.revoked_at.is_some()),
        ]);
    }
    writeln!(out, "{t}")?;
    Ok(())
}

fn print_message(m: &MessageView, now: Millis, style: Style, out: &mut impl Write) -> anyhow::Result<()> {
    let to: Vec<String> = m
        .read_by
        .iter()
        .map(|r| match r.delivered_at {
            Some(at) => format!(
                "{} read {}",
                render::line(&r.session_id),
                render::relative(at, now)
            ),
            None => format!("{} unread", render::line(&r.session_id)),
        })
        .collect();
    let mut head = format!(
        "#{} {} {} ({}) {}",
        m.seq,
        render::when(m.sent_at, now),
        render::line(&m.sender),
        render::line(&m.from_role),
        style.paint(&render::line(&m.action_type), "36"),
    );
    if !m.redacted.is_empty() {
        head.push_str(&format!(
            " {}",
            style.paint(
                &render::line(&format!("[redacted: {}]", m.redacted.join(", "))),
                "33"
            )
        ));
    }
    if !to.is_empty() {
        head.push_str(&format!(" -> {}", to.join(", ")));
    }
    writeln!(out, "\n{head}")?;
    for line in render::clean(&m.body).lines() {
        writeln!(out, "    {line}")?;
    }
    if !m.files.is_empty() {
        let files: Vec<String> = m.files.iter().map(|f| render::line(f)).collect();
        writeln!(out, "    files: {}", files.join(", "))?;
    }
    Ok(())
}

/// Polls start fast after activity and slow down while the conversation is
/// quiet, so an idle `show --follow` costs a read every two seconds.
const FOLLOW_MIN: Duration = Duration::from_millis(200);
const FOLLOW_MAX: Duration = Duration::from_secs(2);

async fn show(config: &Config, id: &str, follow: bool, json: bool, style: Style) -> anyhow::Result<ExitCode> {
    let bridge = open(config).await?;
    let detail = bridge
        .show_conversation(id, 0)
        .await
        .with_context(|| format!("showing {id}"))?;
    let now = bridge.now_ms();
    let mut out = std::io::stdout().lock();
    if json && !follow {
        drop(out);
        return print_json(&detail);
    }
    let mut last = detail.messages_after.last().map_or(0, |m| m.seq);
    if json {
        for m in &detail.messages_after {
            writeln!(out, "{}", render::json(&serde_json::to_string(m)?))?;
        }
    } else {
        print_header(&detail, now, style, &mut out)?;
        for m in &detail.messages_after {
            print_message(m, now, style, &mut out)?;
        }
        if detail.messages_after.is_empty() {
            writeln!(out, "\nno messages yet")?;
        }
    }
    out.flush()?;
    drop(out);
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    if !json {
        eprintln!("following {id}; Ctrl-C to stop");
    }
    let mut state = detail.summary.state;
    let mut wait = FOLLOW_MIN;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
            _ = tokio::time::sleep(wait) => {}
        }
        let d = match bridge.show_conversation(id, last).await {
            Ok(d) => d,
            Err(crate::bridge::AdminError::NotFound { .. }) => {
                eprintln!("{id} was purged; stopping");
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(e).with_context(|| format!("following {id}")),
        };
        let now = bridge.now_ms();
        let mut out = std::io::stdout().lock();
        for m in &d.messages_after {
            if json {
                writeln!(out, "{}", render::json(&serde_json::to_string(m)?))?;
            } else {
                print_message(m, now, style, &mut out)?;
            }
        }
        out.flush()?;
        wait = if d.messages_after.is_empty() {
            (wait * 2).min(FOLLOW_MAX)
        } else {
            FOLLOW_MIN
        };
        last = d.messages_after.last().map_or(last, |m| m.seq);
        if d.summary.state != state {
            state = d.summary.state;
            if state != LiveState::Active {
                eprintln!("{id} is now {}; no more messages can arrive", state.as_str());
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

fn audit_filter(args: &AuditFilterArgs, now: Millis) -> anyhow::Result<AuditFilter> {
    Ok(AuditFilter {
        conversation_id: args.conversation.clone(),
        action_glob: args.action.clone(),
        since: args
            .since
            .as_deref()
            .map(|t| parse_instant("--since", t, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| parse_instant("--until", t, now))
            .transpose()?,
    })
}

/// One audit entry as a SIEM line: every column, `detail` as an object.
fn audit_json(e: &crate::audit::Entry) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq,
        "at": rfc3339(e.at),
        "at_ms": e.at,
        "actor": e.actor,
        "action": e.action,
        "conversation_id": e.conversation_id,
        "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or_else(|_| e.detail.clone().into()),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
        "seal": e.seal,
    })
}

/// Refusal counts still pending go to the trail first, so what the
/// overseer reads is the whole record.
async fn flush_counts(bridge: &Bridge<SqliteStore>) -> anyhow::Result<()> {
    bridge
        .flush_refusal_counts()
        .await
        .context("writing pending refusal counts to the audit trail")
}

/// How many events an entry stands for: a coalesced refusal entry counts
/// the repeats after the window's first refusal (which has its own entry).
fn times(e: &crate::audit::Entry) -> String {
    serde_json::from_str::<serde_json::Value>(&e.detail)
        .ok()
        .and_then(|d| d.get("repeats").and_then(serde_json::Value::as_i64))
        .map_or_else(|| "1".to_owned(), |n| format!("{n} more"))
}

/// `mcp-bridge audit`: the newest matching entries, oldest first.
pub async fn audit_show(config: Config, args: AuditShowArgs) -> anyhow::Result<ExitCode> {
    let result = async {
        let bridge = open(&config).await?;
        flush_counts(&bridge).await?;
        let now = bridge.now_ms();
        let filter = audit_filter(&args.filter, now)?;
        let mut shown: std::collections::VecDeque<crate::audit::Entry> = Default::default();
        let mut after = 0;
        loop {
            let page = bridge
                .audit_entries(&filter, after, 1000)
                .await
                .context("reading the audit trail")?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in page {
                shown.push_back(e);
                if args.limit > 0 && shown.len() > args.limit {
                    shown.pop_front();
                }
            }
        }
        let mut out = std::io::stdout().lock();
        if args.json {
            for e in &shown {
                writeln!(out, "{}", render::json(&audit_json(e).to_string()))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        if shown.is_empty() {
            writeln!(out, "no matching audit entries")?;
            return Ok(ExitCode::SUCCESS);
        }
        let style = Style::detect();
        let mut t = style.table(["SEQ", "AT", "ACTOR", "ACTION", "TIMES", "CONVERSATION", "DETAIL"]);
        for e in &shown {
            t.add_row(vec![
                comfy_table::Cell::new(e.seq),
                comfy_table::Cell::new(render::relative(e.at, now)),
                render::cell(&e.actor),
                style.flag_cell(e.action.clone(), e.action.ends_with(".refused")),
                comfy_table::Cell::new(times(e)),
                render::cell(e.conversation_id.as_deref().unwrap_or("-")),
                render::cell(&e.detail),
            ]);
        }
        writeln!(out, "{t}")?;
        Ok(ExitCode::SUCCESS)
    }
    .await;
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

/// `mcp-bridge audit export`: every matching entry, streamed page by page.
pub async fn audit_export(config: Config, args: AuditExportArgs) -> anyhow::Result<ExitCode> {
    let AuditFormat::Jsonl = args.format;
    if let Some(p) = &args.output {
        refuse_existing(p, "output file")?;
    }
    let result = async {
        let bridge = open(&config).await?;
        flush_counts(&bridge).await?;
        let filter = audit_filter(&args.filter, bridge.now_ms())?;
        let mut sink: Box<dyn Write> = match &args.output {
            Some(p) => Box::new(std::io::BufWriter::new(
                crate::auth::create_private_file(p).with_context(|| format!("creating {}", p.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        };
        let mut after = 0;
        let mut n = 0u64;
        loop {
            let page = bridge
                .audit_entries(&filter, after, 1000)
                .await
                .context("reading the audit trail")?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                writeln!(sink, "{}", render::json(&audit_json(e).to_string()))?;
                n += 1;
            }
        }
        sink.flush()?;
        if let Some(p) = &args.output {
            eprintln!("exported {n} audit entries to {}", p.display());
        }
        Ok(ExitCode::SUCCESS)
    }
    .await;
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

fn key_file(config: &Config) -> anyhow::Result<&Path> {
    match &config.key {
        KeySource::File(p) => Ok(p),
        KeySource::Env(_) => bail!(
            "the server key comes from MCP_BRIDGE_KEY, not a file; keep it in your secrets store (--with-key copies key files only)"
        ),
    }
}

/// Copies a key file to a new 0600 file.
fn copy_private(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let bytes =
        zeroize::Zeroizing::new(std::fs::read(src).with_context(|| format!("reading {}", src.display()))?);
    let mut f =
        crate::auth::create_private_file(dest).with_context(|| format!("creating {}", dest.display()))?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", dest.display()))
}

async fn backup(config: &Config, dest: &Path, with_key: bool) -> anyhow::Result<ExitCode> {
    refuse_existing(dest, "backup target")?;
    let key_dest = key_path_for(dest);
    let key_src = if with_key {
        refuse_existing(&key_dest, "key copy")?;
        Some(key_file(config)?.to_owned())
    } else {
        None
    };
    let bridge = open(config).await?;
    let total = bridge.database_size().await.unwrap_or(0).max(1) as u64;
    // A progress bar on stderr, only for a person watching it.
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} backing up {bytes}/{total_bytes} [{wide_bar}] {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    } else {
        None
    };
    let job = bridge.backup(dest);
    tokio::pin!(job);
    let result = loop {
        tokio::select! {
            r = &mut job => break r,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if let (Some(bar), Ok(m)) = (&bar, std::fs::metadata(dest)) {
                    bar.set_position(m.len().min(total));
                }
            }
        }
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let seq = result.with_context(|| format!("backing up to {}", dest.display()))?;
    let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "backup written to {} ({}); recorded as audit entry {seq}",
        dest.display(),
        render::bytes(size as i64)
    )?;
    if let Some(src) = key_src {
        copy_private(&src, &key_dest)?;
        writeln!(out, "server key copied to {}", key_dest.display())?;
        eprintln!(
            "WARNING: {} is the secret that protects every session token and seals the audit trail. \
             Anyone holding it with the database can test token guesses offline and forge audit entries. \
             Store it apart from the backup.",
            key_dest.display()
        );
    } else {
        writeln!(
            out,
            "the server key was not copied; restoring needs the key this database uses ({}), or pass --with-key",
            match &config.key {
                KeySource::File(p) => p.display().to_string(),
                KeySource::Env(_) => "MCP_BRIDGE_KEY".into(),
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn restore(config: &Config, src: &Path, with_key: bool) -> anyhow::Result<ExitCode> {
    let target = &config.db_path;
    if !src.is_file() {
        bail!("backup {} does not exist or is not a file", src.display());
    }
    // The key that will verify the copy: the backup's own (--with-key), or
    // the one the target uses. Never create one here: a fresh key cannot
    // verify anything, and a failed restore must leave no file behind.
    let (key, install_key) = if with_key {
        let k = key_path_for(src);
        let dest = key_file(config)?.to_owned();
        if !k.is_file() {
            bail!("--with-key: no key file at {}", k.display());
        }
        let key = ServerKey::load(&KeySource::File(k.clone())).context("loading the backup's key")?;
        (key, Some((k, dest)))
    } else {
        if let KeySource::File(k) = &config.key
            && !k.is_file()
        {
            bail!(
                "no server key at {}: a backup can only be verified with the key it was made under; \
                 pass --with-key if it was saved beside the backup ({})",
                k.display(),
                key_path_for(src).display()
            );
        }
        (
            ServerKey::load(&config.key).context("loading the server key")?,
            None,
        )
    };
    let in_use = || async {
        if SqliteStore::in_use(target)
            .await
            .with_context(|| format!("checking whether {} is in use", target.display()))?
        {
            bail!(
                "{} is in use by another process (an `mcp-bridge serve` or other client has it open); \
                 stop every agent's server on it, then retry. Nothing was changed.",
                target.display()
            );
        }
        Ok(())
    };
    in_use().await?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!("the directory of {} does not exist", target.display());
    }
    let staged =
        SqliteStore::stage_copy(src, target).with_context(|| format!("copying {}", src.display()))?;
    let checked = async {
        let store = SqliteStore::open(&staged, OpenMode::MustExist)
            .await
            .context("opening the copy")?;
        let redactor = Redactor::new(&config.redaction).context("compiling redaction rules")?;
        let bridge = Bridge::new(
            store,
            key.clone(),
            redactor,
            config.limits.clone(),
            Arc::new(SystemClock),
        );
        let check = bridge.restore_check().await;
        let check = match check {
            Ok(c) => c,
            Err(e) => {
                bridge.shutdown().await;
                return Err(anyhow::Error::new(e));
            }
        };
        let head = bridge.record_restore(src, target).await;
        bridge.shutdown().await;
        Ok::<_, anyhow::Error>((check, head?))
    }
    .await;
    let (check, head) = match checked {
        Ok(v) => v,
        Err(e) => {
            SqliteStore::discard(&staged);
            return Err(e.context(format!(
                "the backup {} failed verification; nothing was changed",
                src.display()
            )));
        }
    };
    // Check again right before the swap: a server may have started meanwhile.
    if let Err(e) = in_use().await {
        SqliteStore::discard(&staged);
        return Err(e);
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let keep = sidecar(target, &format!(".pre-restore-{stamp}"));
    if let Err(e) = SqliteStore::swap_into_place(&staged, target, Some(&keep)) {
        SqliteStore::discard(&staged);
        return Err(e).context("replacing the database");
    }
    // The restored chain is the database's chain from now on: its head
    // replaces the one recorded for the database it replaced.
    HeadFile::new(audit_head_path_for(target), &key)
        .reset(Some(&head))
        .context("recording the restored audit head")?;
    let seq = head.seq;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "restored {} into {}: integrity ok, schema ok, audit chain intact ({} entries), {} conversation(s), {} message(s); recorded as audit entry {seq}",
        src.display(),
        target.display(),
        check.audit_entries,
        check.conversations,
        check.messages
    )?;
    if keep.exists() {
        writeln!(out, "the previous database is kept at {}", keep.display())?;
    }
    if let Some((from, to)) = install_key {
        if to.exists() {
            let old = sidecar(&to, &format!(".pre-restore-{stamp}"));
            std::fs::rename(&to, &old)
                .with_context(|| format!("keeping the old key as {}", old.display()))?;
            writeln!(out, "the previous key is kept at {}", old.display())?;
        }
        copy_private(&from, &to)?;
        writeln!(out, "installed the backup's key at {}", to.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
