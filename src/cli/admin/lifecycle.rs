//! Lifecycle: `cleanup`, `rotate`, `revoke`, `close`: what ends or renews
//! access. Each calls one bridge use case and prints what changed.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use super::{DurationArg, Seat, open, print_json};
use crate::bridge::{CleanupRequest, SessionId};
use crate::cli::render::{self};
use crate::clock::rfc3339;
use crate::config::Config;

/// `mcp-bridge cleanup`.
pub(super) async fn cleanup(
    config: Config,
    older_than: DurationArg,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    on_bridge!(open(&config).await?, |bridge| {
        let report = bridge
            .cleanup(CleanupRequest {
                older_than: older_than.0,
                dry_run,
                only: None,
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
        if d.data_keys > 0 {
            writeln!(
                out,
                "destroyed {} data key(s): the purged messages cannot be decrypted from any copy of this database",
                d.data_keys
            )?;
            if report.earlier_backups_shredded {
                writeln!(
                    out,
                    "rotated the key file's wrapping key: backups taken before now open only with the key file saved with them (backup --with-key)"
                )?;
            } else {
                writeln!(
                    out,
                    "note: backups taken before now still open with the current key; run `mcp-bridge key rotate` (and give every server the new key file) to retire it"
                )?;
            }
        }
        match report.audit_seq {
            Some(seq) => writeln!(
                out,
                "recorded as audit entry {seq}; audit entries are never purged"
            )?,
            None if dry_run => writeln!(out, "dry run: nothing was changed")?,
            None => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `mcp-bridge rotate`.
pub(super) async fn rotate(
    config: Config,
    id: String,
    session: Seat,
    json: bool,
) -> anyhow::Result<ExitCode> {
    on_bridge!(open(&config).await?, |bridge| {
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
    })
}

/// `mcp-bridge revoke`.
pub(super) async fn revoke(
    config: Config,
    id: String,
    session: Seat,
    json: bool,
) -> anyhow::Result<ExitCode> {
    on_bridge!(open(&config).await?, |bridge| {
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
    })
}

/// `mcp-bridge close`.
pub(super) async fn close(config: Config, id: String, purge: bool, json: bool) -> anyhow::Result<ExitCode> {
    on_bridge!(open(&config).await?, |bridge| {
        let r = bridge
            .close_conversation(&id)
            .await
            .context("closing the conversation")?;
        let purged = if purge {
            Some(
                bridge
                    .cleanup(CleanupRequest {
                        older_than: std::time::Duration::ZERO,
                        dry_run: false,
                        only: Some(id.clone()),
                    })
                    .await
                    .context("purging the conversation")?,
            )
        } else {
            None
        };
        if json {
            return match purged {
                Some(p) => print_json(&serde_json::json!({ "closed": r, "purged": p })),
                None => print_json(&r),
            };
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
        if let Some(p) = purged {
            writeln!(
                out,
                "purged: {} messages; its data key destroyed{}; recorded as audit entry {}",
                p.deleted.messages,
                if p.earlier_backups_shredded {
                    ", and the wrapping key rotated so earlier backups cannot open it"
                } else {
                    " (earlier backups still open with the current key until `mcp-bridge key rotate`)"
                },
                p.audit_seq.map_or_else(|| "-".into(), |s| s.to_string())
            )?;
        }
        Ok(ExitCode::SUCCESS)
    })
}
