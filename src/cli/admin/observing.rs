//! Observing: `list`, `show` (and `--follow`) and `stats`, which read the
//! database and change nothing. The audit trail's reads are in `audit`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::{open, print_json, sidecar};
use crate::bridge::{ConversationDetail, ConversationSummary, ListFilter, LiveState, MessageView};
use crate::cli::render::{self, Style};
use crate::clock::Millis;
use crate::config::{Config, Database};

/// `mcp-bridge list`.
pub(super) async fn list(
    config: Config,
    active: bool,
    expired: bool,
    json: bool,
    style: Style,
) -> anyhow::Result<ExitCode> {
    let filter = if active {
        ListFilter::Active
    } else if expired {
        ListFilter::Ended
    } else {
        ListFilter::All
    };
    on_bridge!(open(&config).await?, |bridge| {
        let list = bridge
            .list_conversations(filter)
            .await
            .context("listing conversations")?;
        if json {
            return print_json(&list);
        }
        print_list(&list, bridge.now_ms(), style)
    })
}

/// `mcp-bridge stats`.
pub(super) async fn stats(config: Config, json: bool, style: Style) -> anyhow::Result<ExitCode> {
    on_bridge!(open(&config).await?, |bridge| {
        let s = bridge.stats().await.context("reading statistics")?;
        let wal = match &config.database {
            Database::Sqlite(path) => std::fs::metadata(sidecar(path, "-wal"))
                .map(|m| m.len() as i64)
                .unwrap_or(0),
            Database::Postgres(_) => 0,
        };
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
                path: config.database.describe(),
            });
        }
        let now = bridge.now_ms();
        let f = &s.figures;
        let mut t = style.pairs();
        t.add_row(vec![
            "database".to_owned(),
            render::line(&config.database.describe()),
        ]);
        t.add_row(vec![
            "size".to_owned(),
            match &config.database {
                Database::Sqlite(_) => format!(
                    "{} (+ {} WAL)",
                    render::bytes(f.database_bytes),
                    render::bytes(wal)
                ),
                Database::Postgres(_) => render::bytes(f.database_bytes),
            },
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
    })
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

pub(super) async fn show(
    config: &Config,
    id: &str,
    follow: bool,
    json: bool,
    style: Style,
) -> anyhow::Result<ExitCode> {
    on_bridge!(open(config).await?, |bridge| {
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
    })
}
