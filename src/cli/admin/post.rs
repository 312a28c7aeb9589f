//! `mcp-bridge post CONVERSATION_ID MESSAGE`: the human steps into a
//! conversation. Every participant receives the message once, with
//! `from_role: "overseer"` and `from_overseer: true`, which no agent can
//! send; it is redacted like any message and audited (`overseer.post`,
//! actor `cli`).

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::{open, print_json};
use crate::cli::render;
use crate::config::Config;

/// `post`'s arguments.
#[derive(Debug, Args)]
pub struct PostArgs {
    /// The conversation id.
    pub id: String,
    /// The message; `-` reads it from standard input (prefer that for anything
    /// sensitive: arguments show in `ps`). One trailing newline is dropped.
    pub message: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `post` on the local database.
pub async fn run(config: Config, args: PostArgs) -> anyhow::Result<ExitCode> {
    let message = message_of(&args.message, config.limits.max_message_bytes)?;
    on_bridge!(open(&config).await?, |bridge| {
        let posted = bridge
            .post_as_overseer(&args.id, &message)
            .await
            .context("posting the message")?;
        if args.json {
            return print_json(&posted);
        }
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "posted message {} as overseer to {} ({})",
            posted.message_id,
            render::line(&args.id),
            render::line(&posted.recipients.join(", "))
        )?;
        if !posted.redacted.is_empty() {
            writeln!(
                out,
                "redacted before storage: {}",
                render::line(&posted.redacted.join(", "))
            )?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `post` against a `serve --http` with an admin credential
/// (`--server`): the server's answer is printed as JSON.
pub async fn remote(remote: &super::remote::Remote, args: PostArgs) -> anyhow::Result<ExitCode> {
    // The server enforces the size; this bound only caps what is read.
    let message = message_of(&args.message, REMOTE_READ_CAP)?;
    super::remote::post(remote, &args.id, &message).await
}

/// How much of stdin a remote `post` reads: past any server's message limit.
const REMOTE_READ_CAP: usize = 4 * 1024 * 1024;

/// The message from the argument, or from stdin for `-`. Stdin is read
/// at most one byte past the limit, so a huge pipe is refused (by the
/// bridge, with the size rule) without being held in memory.
fn message_of(arg: &str, max_bytes: usize) -> anyhow::Result<String> {
    if arg != "-" {
        return Ok(arg.to_owned());
    }
    let mut raw = Vec::new();
    std::io::stdin()
        .lock()
        .take(max_bytes as u64 + 2)
        .read_to_end(&mut raw)
        .context("reading the message from standard input")?;
    let mut text = String::from_utf8(raw)
        .map_err(|_| anyhow::anyhow!("the message on standard input is not UTF-8 text"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}
