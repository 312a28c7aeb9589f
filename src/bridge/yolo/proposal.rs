//! Stage 2: an agent proposes a command; it is checked, judged, stored and
//! shown to the partner, and nothing runs. Also the overseer's reads of
//! proposals.

use std::path::{Component, Path};

use rand::RngCore;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use super::{MAX_COMMAND_BYTES, MAX_CWD_CHARS, MAX_REASON_CHARS, names_state, plan_hash};
use crate::bridge::Access;
use crate::bridge::{ActionType, Bridge, Error, RateClass, Result};
use crate::exec::{self, Mode, text};
use crate::store::yolo::{Proposal, YoloTx};
use crate::store::{NewMessage, Store, Tx};

/// What `propose_command` needs.
#[derive(Debug)]
pub struct ProposeRequest {
    /// Who proposes.
    pub auth: Access,
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

fn new_proposal_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    format!("prop_{}", hex::encode(b))
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

impl<S: Store> Bridge<S>
where
    S::Tx: YoloTx,
{
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
                    reply_to: None,
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
}
