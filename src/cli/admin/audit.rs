//! The audit trail's reads: `audit` (the newest matching entries) and
//! `audit export` (every matching entry, streamed), with their filters.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use super::{is_broken_pipe, open, refuse_existing};
use crate::bridge::Bridge;
use crate::cli::render::{self, Style};
use crate::clock::Millis;
use crate::config::{Config, parse_duration};
use crate::store::admin::AuditFilter;
use crate::store::admin::FullStore;

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

impl AuditShowArgs {
    /// The filters as the HTTP API's query (`--server`); the API has no
    /// time filters, so `--since`/`--until` are refused there.
    pub fn remote_query(&self) -> anyhow::Result<Option<String>> {
        if self.filter.since.is_some() || self.filter.until.is_some() {
            bail!(
                "--since and --until are not available with --server; filter by --conversation or --action"
            );
        }
        Ok(super::remote::audit_query(
            self.filter.conversation.as_deref(),
            self.filter.action.as_deref(),
        ))
    }
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

/// Refusal counts still pending go to the trail first, so what the
/// overseer reads is the whole record.
async fn flush_counts<S: FullStore>(bridge: &Bridge<S>) -> anyhow::Result<()> {
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
        on_bridge!(open(&config).await?, |bridge| {
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
                    writeln!(out, "{}", render::json(&e.to_json().to_string()))?;
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
        })
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
        on_bridge!(open(&config).await?, |bridge| {
            flush_counts(&bridge).await?;
            let filter = audit_filter(&args.filter, bridge.now_ms())?;
            let mut sink: Box<dyn Write> = match &args.output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    crate::auth::create_private_file(p)
                        .with_context(|| format!("creating {}", p.display()))?,
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
                    writeln!(sink, "{}", render::json(&e.to_json().to_string()))?;
                    n += 1;
                }
            }
            sink.flush()?;
            if let Some(p) = &args.output {
                eprintln!("exported {n} audit entries to {}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        })
    }
    .await;
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        other => other,
    }
}
