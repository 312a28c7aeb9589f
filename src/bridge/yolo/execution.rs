//! Stage 4: the approval is consumed (committed before the command starts)
//! and the re-validated plan runs once in the sandboxed runner; its output
//! is redacted and sent to the partner.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use super::{approval_seal_input, names_state, plan_hash};
use crate::bridge::Access;
use crate::bridge::{ActionType, Bridge, Error, RateClass, Result};
use crate::clock::rfc3339;
use crate::config::Yolo;
use crate::exec::{self, Mode, Outcome, SandboxStatus, text};
use crate::store::yolo::{Proposal, YoloTx};
use crate::store::{NewMessage, Store, Tx};

/// What `execute_approved` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Executed {
    /// The proposal that ran.
    pub proposal_id: String,
    /// True when the server is in dry-run mode: nothing ran, the approval is still unused.
    pub dry_run: bool,
    /// The plan that ran (or would run), rendered as a command line.
    pub plan: String,
    /// Exit status, when the command exited normally.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Whether it was killed for exceeding the time limit.
    pub timed_out: bool,
    /// Whether output beyond the cap was dropped.
    pub truncated: bool,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
    /// Standard output, redacted.
    pub stdout: String,
    /// Standard error, redacted.
    pub stderr: String,
    /// Kinds of secrets redacted from the output.
    pub redacted: Vec<String>,
    /// How the kernel sandbox was applied.
    pub sandbox: String,
    /// The message that carried the output to the partner (none in dry-run).
    pub message_id: Option<i64>,
}

/// 64 hex digits standing alone: the shape of the key file's text.
static HEX_RUN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[0-9A-Fa-f]{64}\b").expect("static regex"));
/// A bridge token, also truncated or with extra characters (`mcpb_` + 20 or more).
static TOKEN_LIKE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"mcpb_[A-Za-z0-9_\-]{20,}").expect("static regex"));

/// Redacts, by value, the secrets the bridge knows from command output: its server key
/// (any 64-hex-digit run, either case, that decodes to it: the key file's text) and
/// anything shaped like a bridge token (`mcpb_` plus 20 or more base64url characters),
/// live or not: only token hashes are stored, so redacting every candidate is the safe
/// side. Returns the text and the kinds found. Runs before the general redactor.
pub fn redact_known_secrets(key: &crate::auth::ServerKey, text: &str) -> (String, Vec<String>) {
    let mut kinds = Vec::new();
    let probe = b"mcp-bridge: is this the server key?";
    let mine = key.mac(probe);
    let mut key_seen = false;
    let keyless = HEX_RUN.replace_all(text, |c: &regex::Captures<'_>| {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        let is_key = hex::decode_to_slice(&c[0], bytes.as_mut()).is_ok()
            && crate::auth::ServerKey::from_bytes(*bytes).verify_mac(probe, &mine);
        if is_key {
            key_seen = true;
            "[REDACTED:server_key]".to_owned()
        } else {
            c[0].to_owned()
        }
    });
    if key_seen {
        kinds.push("server_key".to_owned());
    }
    let clean = TOKEN_LIKE.replace_all(&keyless, "[REDACTED:bridge_token]");
    if clean != keyless {
        kinds.push("bridge_token".to_owned());
    }
    (clean.into_owned(), kinds)
}

fn sandbox_text(s: &SandboxStatus) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "unknown".into())
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl<S: Store> Bridge<S>
where
    S::Tx: YoloTx,
{
    /// Stage 4: consumes the approval and runs the command once.
    pub async fn execute_approved(&self, auth: impl Into<Access>, proposal_id: &str) -> Result<Executed> {
        let auth: Access = auth.into();
        let result = self.execute_inner(&auth, proposal_id).await;
        self.audited("command.execute", &auth, result).await
    }

    async fn execute_inner(&self, auth: &Access, proposal_id: &str) -> Result<Executed> {
        let yolo = self.yolo()?.clone();
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let caller = self.authenticate(&mut tx, auth, now).await?;
        self.rate(&mut tx, &caller, RateClass::Send, now).await?;
        let p = tx
            .proposal(proposal_id)
            .await?
            .filter(|p| {
                p.conversation_id == caller.conversation.id && p.proposer == caller.participant.session_id
            })
            .ok_or(Error::ProposalNotFound)?;
        let approval = tx.approval(&p.id).await?.ok_or(Error::NotApproved)?;
        if approval.used_at.is_some() || p.state == "executed" {
            return Err(Error::ApprovalUsed);
        }
        if p.state != "approved" {
            return Err(Error::ProposalNotPending { state: p.state });
        }
        if approval.expires_at <= now {
            return Err(Error::ApprovalExpired {
                expired_at: rfc3339(approval.expires_at),
            });
        }
        let current_hash = plan_hash(&p.command, &p.mode, &p.workspace, &p.cwd);
        let seal_ok = hex::decode(&approval.seal)
            .map(|tag| {
                self.key.verify_mac(
                    approval_seal_input(&p.id, &approval.bound_hash, approval.expires_at).as_bytes(),
                    &tag,
                )
            })
            .unwrap_or(false);
        if !seal_ok || approval.bound_hash != current_hash || p.plan_hash != current_hash {
            return Err(Error::ApprovalMismatch);
        }
        if Path::new(&p.workspace) != yolo.workspace {
            return Err(Error::invalid(
                "proposal_id",
                "was proposed for another workspace than this server's; execute it from a server started with the same MCP_BRIDGE_YOLO_WORKSPACE",
            ));
        }
        let mode: Mode = p.mode.parse().map_err(|_| Error::ApprovalMismatch)?;
        // Judge again now: the approval covers this exact text, and the
        // validator in this binary has the last word.
        let verdict = exec::validate(&p.command, mode);
        let plan = match (verdict.allowed, verdict.plan) {
            (true, Some(plan)) => plan,
            _ => {
                return Err(Error::CommandRefused {
                    reason: verdict.reason,
                });
            }
        };
        if let Some(word) = names_state(Some(&plan), &yolo, &p.cwd) {
            return Err(Error::CommandRefused {
                reason: format!(
                    "\"{}\" names the bridge's own database, key or passphrase file",
                    text::escape(&word)
                ),
            });
        }
        let rendered = exec::render_plan(&plan);
        if yolo.dry_run {
            self.audit_caller(
                &mut tx,
                now,
                &caller,
                "command.execute.dry_run",
                json!({ "proposal_id": p.id }),
            )
            .await?;
            tx.commit().await?;
            return Ok(Executed {
                proposal_id: p.id,
                dry_run: true,
                plan: rendered,
                exit_code: None,
                signal: None,
                timed_out: false,
                truncated: false,
                duration_ms: 0,
                stdout: String::new(),
                stderr: String::new(),
                redacted: vec![],
                sandbox: "not run (dry run)".into(),
                message_id: None,
            });
        }
        if !tx.use_approval(&p.id, now).await? {
            return Err(Error::ApprovalUsed);
        }
        tx.set_proposal_state(&p.id, "approved", "executed", now).await?;
        self.audit_caller(
            &mut tx,
            now,
            &caller,
            "command.execute.start",
            json!({ "proposal_id": p.id, "plan_hash": current_hash }),
        )
        .await?;
        // Committed before the command starts: the approval is spent even if
        // this process dies while the command runs (at most once).
        tx.commit().await?;

        let outcome = self.run_plan(plan, &yolo, &p.cwd).await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(reason) => {
                let mut tx = self.store.begin_write().await?;
                let now = self.now();
                self.audit_caller(
                    &mut tx,
                    now,
                    &caller,
                    "command.execute.failed",
                    json!({ "proposal_id": p.id, "error": reason }),
                )
                .await?;
                tx.commit().await?;
                return Err(Error::ExecFailed { reason });
            }
        };
        self.record_outcome(&caller, &p, rendered, outcome).await
    }

    async fn run_plan(
        &self,
        plan: exec::Plan,
        yolo: &Yolo,
        cwd: &str,
    ) -> std::result::Result<Outcome, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot locate the sandbox helper: {e}"))?;
        let workspace = yolo.workspace.clone();
        let cwd: PathBuf = workspace.join(cwd);
        let limits = exec::RunLimits {
            timeout: yolo.timeout,
            ..exec::RunLimits::default()
        };
        let state = yolo.state_files.clone();
        tokio::task::spawn_blocking(move || exec::run_hiding(&plan, &workspace, &cwd, &limits, &exe, &state))
            .await
            .map_err(|e| format!("the runner task failed: {e}"))?
            .map_err(|e| e.to_string())
    }

    async fn record_outcome(
        &self,
        caller: &crate::bridge::Caller,
        p: &Proposal,
        rendered: String,
        o: Outcome,
    ) -> Result<Executed> {
        if let SandboxStatus::Unavailable { reason } = &o.sandbox {
            tracing::warn!(reason = %reason, "command ran WITHOUT a kernel sandbox");
        }
        let (raw_out, mut kinds) = redact_known_secrets(&self.key, &o.stdout);
        let (raw_err, err_kinds) = redact_known_secrets(&self.key, &o.stderr);
        kinds.extend(err_kinds);
        let out = self.redactor.redact(&raw_out);
        let err = self.redactor.redact(&raw_err);
        kinds.extend(out.kinds.iter().chain(err.kinds.iter()).cloned());
        kinds.sort();
        kinds.dedup();
        let stdout = out.text.into_owned();
        let stderr = err.text.into_owned();
        let duration_ms = o.duration.as_millis() as u64;
        let status = match (o.exit_code, o.signal, o.timed_out) {
            (_, _, true) => "was killed after the time limit".to_owned(),
            (Some(c), _, _) => format!("exited with status {c}"),
            (None, Some(s), _) => format!("was killed by signal {s}"),
            _ => "ended".to_owned(),
        };
        let header = format!("Command {} {status} after {duration_ms} ms:\n{rendered}\n", p.id);
        let budget = self.limits.max_message_bytes.saturating_sub(header.len() + 64) / 2;
        let body = format!(
            "{header}--- stdout ---\n{}\n--- stderr ---\n{}",
            cut(&stdout, budget),
            cut(&stderr, budget)
        );
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let recipients = caller.others();
        let message_id = tx
            .insert_message(
                &NewMessage {
                    reply_to: None,
                    conversation_id: p.conversation_id.clone(),
                    sender: p.proposer.clone(),
                    body,
                    action_type: ActionType::Info.as_str().into(),
                    files: vec![],
                    redactions: kinds.clone(),
                    created_at: now,
                },
                &recipients,
            )
            .await?;
        let sandbox = sandbox_text(&o.sandbox);
        // The proposal belongs to the caller's conversation (checked before it ran).
        self.audit_caller(
            &mut tx,
            now,
            caller,
            "command.execute",
            json!({
                "proposal_id": p.id,
                "exit_code": o.exit_code,
                "signal": o.signal,
                "timed_out": o.timed_out,
                "truncated": o.truncated,
                "duration_ms": duration_ms,
                "sandbox": o.sandbox,
                "redacted": kinds,
                "message_id": message_id,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(Executed {
            proposal_id: p.id.clone(),
            dry_run: false,
            plan: rendered,
            exit_code: o.exit_code,
            signal: o.signal,
            timed_out: o.timed_out,
            truncated: o.truncated,
            duration_ms,
            stdout,
            stderr,
            redacted: kinds,
            sandbox,
            message_id: Some(message_id),
        })
    }
}
