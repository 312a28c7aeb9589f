//! YOLO mode: the only path by which the bridge ever runs a command.
//!
//! Four stages, all required, each audited:
//! 1. the human opted in when the server started (`MCP_BRIDGE_YOLO=1`);
//!    without it the tools are not listed and calls are refused;
//! 2. an agent proposes a command ([`Bridge::propose_command`]): it is
//!    validated and stored, the partner sees it, nothing runs;
//! 3. the human runs `mcp-bridge approve ID` in a terminal, reads the command
//!    and the verdict, types the confirmation phrase and then the one-time
//!    code shown ([`Bridge::approve_proposal`] records the result);
//! 4. the approval is single-use, bound to the hash of the exact command,
//!    mode, workspace and working directory, sealed with the server key, and
//!    valid 5 minutes; [`Bridge::execute_approved`] consumes it (committed
//!    before the command starts, so a crash cannot replay it) and runs the
//!    re-validated plan in the sandboxed runner, never through a shell.
//!
//! Stage 1 and what the stages share (the plan hash, the approval seal's
//! input, the state-file check) are here; stage 2 is in `proposal`, stage
//! 3's outcome in `approval`, stage 4 in `execution`.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Bridge, Error, Result};
use crate::audit::NewEntry;
use crate::clock::Millis;
use crate::config::Yolo;
use crate::exec;
use crate::store::yolo::YoloTx;
use crate::store::{Store, Tx};

mod approval;
mod execution;
mod proposal;

pub use approval::Approved;
pub use execution::{Executed, redact_known_secrets};
pub use proposal::{ProposeRequest, Proposed};

/// Longest command accepted, in bytes.
pub const MAX_COMMAND_BYTES: usize = 4096;
/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 1024;
/// Longest working directory, in characters.
pub const MAX_CWD_CHARS: usize = 1024;

/// The hash an approval binds to: any change to the command, mode,
/// workspace or working directory after approval voids it.
pub fn plan_hash(command: &str, mode: &str, workspace: &str, cwd: &str) -> String {
    let canonical = json!([command, mode, workspace, cwd]).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn approval_seal_input(proposal_id: &str, bound_hash: &str, expires_at: Millis) -> String {
    format!("approval\n{proposal_id}\n{bound_hash}\n{expires_at}")
}

/// The word of `plan` naming one of the bridge's state files (or their directory), if any.
fn names_state(plan: Option<&exec::Plan>, yolo: &Yolo, cwd: &str) -> Option<String> {
    let plan = plan?;
    let mut targets: Vec<PathBuf> = Vec::new();
    for f in &yolo.state_files {
        targets.push(f.clone());
        if let Some(dir) = f.parent()
            && let (Ok(dir), Some(name)) = (dir.canonicalize(), f.file_name())
        {
            targets.push(dir.join(name));
        }
    }
    // Everything beside the database whose name starts with its name (-wal, -shm, .key,
    // .overseer) counts too.
    let prefixed: Vec<PathBuf> = targets
        .iter()
        .filter_map(|t| {
            let dir = t.parent()?;
            let name = t.file_name()?.to_string_lossy().into_owned();
            Some(
                std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(move |e| e.file_name().to_string_lossy().starts_with(&name))
                    .map(|e| e.path())
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect();
    targets.extend(prefixed);
    exec::reads::plan_names(plan, &yolo.workspace.join(cwd), &targets)
}

impl<S: Store> Bridge<S>
where
    S::Tx: YoloTx,
{
    fn yolo(&self) -> Result<&Arc<Yolo>> {
        self.yolo.as_ref().ok_or(Error::YoloDisabled)
    }

    /// Records the opt-in (stage 1) when a YOLO server starts. Refuses to start when the
    /// bridge's database or key lives inside the workspace, where commands could read it.
    pub async fn record_yolo_start(&self) -> Result<()> {
        let yolo = self.yolo()?.clone();
        for file in &yolo.state_files {
            let dir = file.parent().and_then(|d| d.canonicalize().ok());
            if dir.is_some_and(|d| d.starts_with(&yolo.workspace)) {
                return Err(Error::invalid(
                    "MCP_BRIDGE_YOLO_WORKSPACE",
                    format!(
                        "the workspace {} contains the bridge's own state ({}); commands could read it. Keep the database and key outside the workspace (--db / MCP_BRIDGE_DB)",
                        yolo.workspace.display(),
                        file.display()
                    ),
                ));
            }
        }
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        self.audit(
            &mut tx,
            now,
            NewEntry {
                actor: "server".into(),
                action: "yolo.enabled".into(),
                conversation_id: None,
                detail: json!({
                    "workspace": yolo.workspace.display().to_string(),
                    "dry_run": yolo.dry_run,
                    "timeout_ms": yolo.timeout.as_millis() as u64,
                    "pid": std::process::id(),
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
