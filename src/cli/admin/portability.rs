//! Portability: `export` and `import` of one conversation, and the bounds
//! an import file is read under.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::{DurationArg, open, print_json, refuse_existing, write_output};
use crate::bridge::{Export, ImportRequest};
use crate::cli::render::{self};
use crate::config::Config;

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

/// `mcp-bridge export`.
pub(super) async fn export(config: Config, id: String, output: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if let Some(path) = &output {
        refuse_existing(path, "export file")?;
    }
    on_bridge!(open(&config).await?, |bridge| {
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
    })
}

/// `mcp-bridge import`.
pub(super) async fn import(
    config: Config,
    file: PathBuf,
    keep_id: bool,
    ttl: Option<DurationArg>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let text = read_bounded(&file, config.limits.max_import_bytes)?;
    let export: Export = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not an export written by `mcp-bridge export`",
            file.display()
        )
    })?;
    on_bridge!(open(&config).await?, |bridge| {
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
    })
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
