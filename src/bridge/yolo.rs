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

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, LazyLock};

use regex::Regex;

use rand::RngCore;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{ActionType, Auth, Bridge, Error, RateClass, Result};
use crate::audit::NewEntry;
use crate::clock::{Millis, rfc3339};
use crate::config::Yolo;
use crate::exec::{self, Mode, Outcome, SandboxStatus, text};
use crate::store::yolo::{Approval, Proposal, YoloTx};
use crate::store::{NewMessage, Store, Tx};

/// Longest command accepted, in bytes.
pub const MAX_COMMAND_BYTES: usize = 4096;
/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 1024;
/// Longest working directory, in characters.
pub const MAX_CWD_CHARS: usize = 1024;

/// What `propose_command` needs.
#[derive(Debug)]
pub struct ProposeRequest {
    /// Who proposes.
    pub auth: Auth,
    /// The command line, parsed by a real shell parser; never run by a shell.
    pub command: String,
    /// The policy to judge it by.
    pub mode: Mode,
    /// Working directory relative to the workspace.
    pub cwd: Option<String>,
    /// Why it should run; shown to the human.
    pub reason: String,
}

/// What `propose_command` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Proposed {
    /// `prop_` + 32 hex characters; what the human approves.
    pub proposal_id: String,
    /// Whether the validator allows the command in the requested mode.
    pub allowed: bool,
    /// The validator's reason.
    pub verdict: String,
    /// `pending` (awaiting the human) or `refused` (the validator said no).
    pub state: String,
    /// The message that showed the proposal to the partner.
    pub message_id: i64,
    /// What happens next.
    pub next_step: String,
}

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

/// What the overseer's approval recorded.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Approved {
    /// The proposal.
    pub proposal_id: String,
    /// The approval is unusable from this instant.
    pub expires_at: String,
}

fn new_proposal_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    format!("prop_{}", hex::encode(b))
}

/// The hash an approval binds to: any change to the command, mode,
/// workspace or working directory after approval voids it.
pub fn plan_hash(command: &str, mode: &str, workspace: &str, cwd: &str) -> String {
    let canonical = json!([command, mode, workspace, cwd]).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn approval_seal_input(proposal_id: &str, bound_hash: &str, expires_at: Millis) -> String {
    format!("approval\n{proposal_id}\n{bound_hash}\n{expires_at}")
}

/// Refuses a proposal field holding a control or invisible formatting character: the
/// human approves what a terminal shows, and a carriage return, an escape sequence or a
/// bidi override can make a field show something other than what it holds. The error
/// names the code point and position, never the character itself.
fn refuse_disguised(field: &str, value: &str) -> Result<()> {
    let Some((position, c)) = text::disguising_char(value) else {
        return Ok(());
    };
    let hint = if field == "command" {
        "; join commands with ';' or '&&' instead of newlines, and if a program needs such a character write it as an escape inside $'...' (it is then shown escaped)"
    } else {
        ""
    };
    Err(Error::invalid(
        field,
        format!(
            "contains a {} ({}) at character {position}; proposal fields must be printable text, so the human approving sees exactly what will run{hint}",
            text::describe(c),
            text::code_point(c)
        ),
    ))
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

/// A working directory relative to the workspace, without `..` or a root:
/// the runner also canonicalises it against the workspace, this refuses the
/// obvious escapes early with a clear message.
fn check_cwd(cwd: Option<&str>) -> Result<String> {
    let cwd = cwd.unwrap_or(".").trim();
    let cwd = if cwd.is_empty() { "." } else { cwd };
    if cwd.chars().count() > MAX_CWD_CHARS || cwd.chars().any(char::is_control) {
        return Err(Error::invalid(
            "cwd",
            format!("must be at most {MAX_CWD_CHARS} characters without control characters"),
        ));
    }
    let p = Path::new(cwd);
    if p.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    }) {
        return Err(Error::invalid(
            "cwd",
            "must be a path relative to the workspace, without '..' (e.g. \".\" or \"crates/core\")",
        ));
    }
    Ok(cwd.to_owned())
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

    /// Stage 2: validates and stores a proposal and shows it to the partner.
    pub async fn propose_command(&self, req: ProposeRequest) -> Result<Proposed> {
        let result = self.propose_inner(&req).await;
        self.audited("command.propose", &req.auth, result).await
    }

    async fn propose_inner(&self, req: &ProposeRequest) -> Result<Proposed> {
        let yolo = self.yolo()?.clone();
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let caller = self.authenticate(&mut tx, &req.auth, now).await?;
        self.rate(&mut tx, &caller, RateClass::Send, now).await?;
        if req.command.trim().is_empty() || req.command.len() > MAX_COMMAND_BYTES {
            return Err(Error::invalid(
                "command",
                format!(
                    "must be 1 to {MAX_COMMAND_BYTES} bytes (got {})",
                    req.command.len()
                ),
            ));
        }
        let reason_chars = req.reason.chars().count();
        if req.reason.trim().is_empty() || reason_chars > MAX_REASON_CHARS {
            return Err(Error::invalid(
                "reason",
                format!(
                    "must be 1 to {MAX_REASON_CHARS} characters (got {reason_chars}); say why the command should run"
                ),
            ));
        }
        refuse_disguised("command", &req.command)?;
        refuse_disguised("reason", &req.reason)?;
        if let Some(cwd) = &req.cwd {
            refuse_disguised("cwd", cwd)?;
        }
        let cwd = check_cwd(req.cwd.as_deref())?;
        // A command is stored as proposed (it must run exactly as approved),
        // so one that carries a secret is refused rather than stored.
        let scan = self.redactor.redact(&req.command);
        if scan.changed() {
            return Err(Error::invalid(
                "command",
                format!(
                    "contains what looks like a secret ({}); commands are stored and shown to people, so pass secrets through files in the workspace, never on the command line",
                    scan.kinds.join(", ")
                ),
            ));
        }
        let reason = self.redactor.redact(&req.reason).text.into_owned();
        let mut verdict = exec::validate(&req.command, req.mode);
        if let Some(word) = names_state(verdict.plan.as_ref(), &yolo, &cwd) {
            verdict = exec::Verdict {
                allowed: false,
                reason: format!(
                    "refused in {} mode: \"{}\" names the bridge's own database, key or passphrase file (refused in every mode)",
                    req.mode,
                    text::escape(&word)
                ),
                plan: None,
            };
        }
        let workspace = yolo.workspace.display().to_string();
        let proposal = Proposal {
            id: new_proposal_id(),
            conversation_id: caller.conversation.id.clone(),
            proposer: caller.participant.session_id.clone(),
            command: req.command.clone(),
            mode: req.mode.as_str().to_owned(),
            workspace: workspace.clone(),
            cwd: cwd.clone(),
            reason: reason.clone(),
            allowed: verdict.allowed,
            verdict: verdict.reason.clone(),
            plan_hash: plan_hash(&req.command, req.mode.as_str(), &workspace, &cwd),
            state: if verdict.allowed { "pending" } else { "refused" }.into(),
            created_at: now,
            decided_at: None,
        };
        tx.insert_proposal(&proposal).await?;
        let next_step = if verdict.allowed {
            format!(
                "A human must run `mcp-bridge approve {}` in a terminal; then call execute_approved within 5 minutes of the approval.",
                proposal.id
            )
        } else {
            "The validator refused this command; nothing can run it. Propose a different command or mode."
                .to_owned()
        };
        let body = format!(
            "Command proposal {} ({} mode, in {}):\n{}\nReason: {}\nValidator: {} ({})\n{}",
            proposal.id,
            proposal.mode,
            proposal.cwd,
            proposal.command,
            reason,
            if verdict.allowed { "allowed" } else { "refused" },
            verdict.reason,
            next_step
        );
        let recipients = caller.others();
        let message_id = tx
            .insert_message(
                &NewMessage {
                    conversation_id: caller.conversation.id.clone(),
                    sender: caller.participant.session_id.clone(),
                    body,
                    action_type: ActionType::Proposal.as_str().into(),
                    files: vec![],
                    redactions: vec![],
                    created_at: now,
                },
                &recipients,
            )
            .await?;
        self.audit_caller(
            &mut tx,
            now,
            &caller,
            "command.propose",
            json!({
                "proposal_id": proposal.id,
                "mode": proposal.mode,
                "allowed": proposal.allowed,
                "plan_hash": proposal.plan_hash,
                "message_id": message_id,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(Proposed {
            proposal_id: proposal.id,
            allowed: verdict.allowed,
            verdict: verdict.reason,
            state: proposal.state,
            message_id,
            next_step,
        })
    }

    /// Proposals for the overseer, newest first.
    pub async fn list_proposals(&self, state: Option<&str>) -> Result<Vec<Proposal>> {
        let mut tx = self.store.begin_read().await?;
        Ok(tx.proposals(state, 200).await?)
    }

    /// One proposal, for the approval prompt.
    pub async fn proposal(&self, id: &str) -> Result<Proposal> {
        let mut tx = self.store.begin_read().await?;
        tx.proposal(id).await?.ok_or(Error::ProposalNotFound)
    }

    /// Stage 3's outcome: called by `mcp-bridge approve` after the human typed
    /// the phrase and the one-time code at a terminal. Records a sealed,
    /// single-use approval bound to the proposal's hash, valid 5 minutes.
    pub async fn approve_proposal(&self, id: &str, ttl: std::time::Duration) -> Result<Approved> {
        let result = self.approve_inner(id, ttl).await;
        if let Err(e) = &result {
            self.audit_refusal("command.approve", None, "cli".into(), e).await;
        }
        result
    }

    async fn approve_inner(&self, id: &str, ttl: std::time::Duration) -> Result<Approved> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let p = tx.proposal(id).await?.ok_or(Error::ProposalNotFound)?;
        if p.state != "pending" {
            return Err(Error::ProposalNotPending { state: p.state });
        }
        if p.plan_hash != plan_hash(&p.command, &p.mode, &p.workspace, &p.cwd) {
            return Err(Error::ApprovalMismatch);
        }
        let conversation = tx
            .conversation(&p.conversation_id)
            .await?
            .ok_or(Error::ConversationNotFound)?;
        super::ensure_open(&conversation, now)?;
        let expires_at = now + ttl.as_millis() as i64;
        let seal = hex::encode(
            self.key
                .mac(approval_seal_input(&p.id, &p.plan_hash, expires_at).as_bytes()),
        );
        tx.insert_approval(&Approval {
            proposal_id: p.id.clone(),
            bound_hash: p.plan_hash.clone(),
            seal,
            approved_at: now,
            expires_at,
            used_at: None,
        })
        .await?;
        tx.set_proposal_state(&p.id, "pending", "approved", now).await?;
        self.audit(
            &mut tx,
            now,
            NewEntry {
                actor: "cli".into(),
                action: "command.approve".into(),
                conversation_id: Some(p.conversation_id.clone()),
                detail: json!({
                    "proposal_id": p.id,
                    "plan_hash": p.plan_hash,
                    "expires_at": expires_at,
                    "stages": ["env_opt_in", "typed_phrase", "one_time_code", "overseer_passphrase"],
                }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Approved {
            proposal_id: p.id,
            expires_at: rfc3339(expires_at),
        })
    }

    /// The overseer refuses a pending or approved (not yet executed) proposal.
    pub async fn reject_proposal(&self, id: &str) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let p = tx.proposal(id).await?.ok_or(Error::ProposalNotFound)?;
        let moved = tx.set_proposal_state(id, "pending", "rejected", now).await?
            || tx.set_proposal_state(id, "approved", "rejected", now).await?;
        if !moved {
            return Err(Error::ProposalNotPending { state: p.state });
        }
        self.audit(
            &mut tx,
            now,
            NewEntry {
                actor: "cli".into(),
                action: "command.reject".into(),
                conversation_id: Some(p.conversation_id),
                detail: json!({ "proposal_id": id }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed approval attempt at the terminal (wrong phrase or
    /// code, no terminal), so the trail shows every try.
    pub async fn record_approval_refusal(&self, id: &str, reason: &str) {
        let err = Error::invalid("approval", reason.to_owned());
        self.audit_refusal("command.approve", None, "cli".into(), &err)
            .await;
        tracing::debug!(proposal = id, reason, "approval refused at the terminal");
    }

    /// Records that the overseer passphrase was set (`mcp-bridge yolo setup`). Best effort:
    /// the passphrase file is already written, and a database that cannot take the entry
    /// fails loudly at the next approval anyway.
    pub async fn record_passphrase_setup(&self) {
        let entry = NewEntry {
            actor: "cli".into(),
            action: "yolo.passphrase.set".into(),
            conversation_id: None,
            detail: json!({ "hash": "argon2id" }),
        };
        let written = async {
            let mut tx = self.store.begin_write().await?;
            let now = self.now();
            self.audit(&mut tx, now, entry).await?;
            tx.commit().await?;
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = written {
            tracing::error!(error = %e, "could not audit the passphrase setup");
        }
    }

    /// Stage 4: consumes the approval and runs the command once.
    pub async fn execute_approved(&self, auth: Auth, proposal_id: &str) -> Result<Executed> {
        let result = self.execute_inner(&auth, proposal_id).await;
        self.audited("command.execute", &auth, result).await
    }

    async fn execute_inner(&self, auth: &Auth, proposal_id: &str) -> Result<Executed> {
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
        caller: &super::Caller,
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
