//! The human's side of YOLO mode: list proposals, approve one at a terminal
//! (typed phrase, then a one-time code), reject one, and check a command
//! against the validator. Approval reads and writes `/dev/tty`, never
//! stdin/stdout, so an agent cannot pipe an approval in.

mod passphrase;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use rand::Rng;

use crate::bridge::Bridge;
use crate::clock::rfc3339;
use crate::exec::text::escape;
use crate::exec::{self, Mode, Plan};
use crate::store::SqliteStore;
use crate::store::admin::FullStore;
use crate::store::yolo::Proposal;

/// How long an approval stays usable; the same for every server.
const APPROVAL_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// `mcp-bridge proposals`: one line per proposal, newest first.
#[allow(clippy::print_stdout, reason = "the overseer's commands report on stdout")]
pub async fn list<S: FullStore>(
    bridge: &Bridge<S>,
    state: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let proposals = bridge.list_proposals(state).await.context("reading proposals")?;
    if json {
        for p in &proposals {
            let line = serde_json::json!({
                "id": p.id, "conversation_id": p.conversation_id, "proposer": p.proposer,
                "command": p.command, "mode": p.mode, "cwd": p.cwd, "reason": p.reason,
                "allowed": p.allowed, "verdict": p.verdict, "state": p.state,
                "created_at": rfc3339(p.created_at),
            });
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if proposals.is_empty() {
        println!("no proposals");
    }
    for p in &proposals {
        println!(
            "{}  {:<9} {:<10} {}  {}\n    {}",
            escape(&p.id),
            escape(&p.state),
            escape(&p.mode),
            rfc3339(p.created_at),
            escape(&p.conversation_id),
            escape(&p.command)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `mcp-bridge approve ID`: stages 3 and 4 of the guard.
pub async fn approve(bridge: &Bridge<SqliteStore>, id: &str, db_path: &Path) -> anyhow::Result<ExitCode> {
    let tty = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    {
        Ok(t) => t,
        Err(_) => {
            bridge.record_approval_refusal(id, "no terminal").await;
            bail!(
                "approval needs an interactive terminal: run `mcp-bridge approve {id}` yourself in a terminal (it reads the terminal, never standard input)"
            );
        }
    };
    let p = bridge.proposal(id).await.context("finding the proposal")?;
    let mut out = tty.try_clone().context("opening the terminal")?;
    let mut input = BufReader::new(tty);
    let (screen, plan) = approval_screen(&p);
    writeln!(out, "{screen}")?;
    if !p.allowed || plan.is_none() {
        bail!("the validator refuses this command; it cannot be approved");
    }
    if p.state != "pending" {
        bail!(
            "the proposal is {}; only a pending proposal can be approved",
            escape(&p.state)
        );
    }
    let hash_path = passphrase::path_for(db_path);
    let Some(stored_hash) = passphrase::load(&hash_path)? else {
        bridge
            .record_approval_refusal(id, "no overseer passphrase set up")
            .await;
        bail!(
            "no overseer passphrase is set up for this database, so nothing can be approved: run `mcp-bridge yolo setup` once yourself, at a terminal"
        );
    };
    let short = &p.id[..p.id.len().min(13)];
    let phrase = format!("approve {short}");
    write!(out, "To approve running this command once, type: {phrase}\n> ")?;
    out.flush()?;
    if read_line(&mut input)? != phrase {
        bridge
            .record_approval_refusal(id, "confirmation phrase mismatch")
            .await;
        bail!("the phrase did not match; nothing was approved");
    }
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    write!(
        out,
        "One-time code: {} {}\nType the code to confirm:\n> ",
        &code[..3],
        &code[3..]
    )?;
    out.flush()?;
    let typed: String = read_line(&mut input)?
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    if typed != code {
        bridge.record_approval_refusal(id, "one-time code mismatch").await;
        bail!("the code did not match; nothing was approved");
    }
    let mut accepted = false;
    for attempt in 1..=passphrase::ATTEMPTS {
        write!(out, "Overseer passphrase (not shown): ")?;
        out.flush()?;
        let typed = passphrase::read_hidden(&out, &mut input)?;
        if passphrase::verify(&typed, &stored_hash) {
            accepted = true;
            break;
        }
        bridge
            .record_approval_refusal(id, "overseer passphrase mismatch")
            .await;
        writeln!(out, "Wrong passphrase ({attempt} of {}).", passphrase::ATTEMPTS)?;
    }
    if !accepted {
        bail!(
            "the overseer passphrase was wrong {} times; nothing was approved",
            passphrase::ATTEMPTS
        );
    }
    let approved = bridge
        .approve_proposal(id, APPROVAL_TTL)
        .await
        .context("recording the approval")?;
    writeln!(
        out,
        "Approved. The proposing agent may run it once with execute_approved until {}.",
        approved.expires_at
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The approval screen for `p`, and the plan it shows when this binary's validator allows
/// the stored command now.
///
/// The command is re-parsed here and the screen lists what the validator understood
/// (program, each argument, environment, redirections), never the agent's string; every
/// stored field is escaped, so no control or invisible character reaches the terminal.
pub fn approval_screen(p: &Proposal) -> (String, Option<Plan>) {
    let mode: Option<Mode> = p.mode.parse().ok();
    let verdict = mode.map(|m| exec::validate(&p.command, m));
    let plan = verdict.as_ref().and_then(|v| v.plan.clone());
    let mut s = format!(
        "Proposal {}\n  conversation: {} (proposed by session {})\n  mode:         {}\n  workspace:    {}\n  directory:    {} (inside the workspace)\n  reason:       {}\n  state:        {}\n",
        escape(&p.id),
        escape(&p.conversation_id),
        escape(&p.proposer),
        escape(&p.mode),
        escape(&p.workspace),
        escape(&p.cwd),
        escape(&p.reason),
        escape(&p.state),
    );
    match (&verdict, &plan) {
        (Some(v), Some(plan)) if p.allowed => {
            s.push_str(&format!(
                "  validator:    allowed ({})\n  network:      {}\n\n  What will run, as this binary's validator parsed it (not the agent's text;\n  control and invisible characters are shown as escapes such as $'\\x1b'):\n\n    {}\n\n",
                escape(&v.reason),
                if plan.allow_network { "allowed" } else { "blocked" },
                exec::render_plan(plan)
            ));
            for line in exec::describe_plan(plan) {
                s.push_str("    ");
                s.push_str(&line);
                s.push('\n');
            }
        }
        (Some(v), _) => s.push_str(&format!("  validator:    REFUSED ({})\n", escape(&v.reason))),
        (None, _) => s.push_str("  validator:    REFUSED (unknown mode)\n"),
    }
    (s, if p.allowed { plan } else { None })
}

fn read_line(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input.read_line(&mut line).context("reading the terminal")?;
    Ok(line.trim().to_owned())
}

/// `mcp-bridge yolo setup`: sets the overseer passphrase once, typed twice at the terminal
/// without echo, and stores only its Argon2id hash beside the database.
pub async fn setup(bridge: &Bridge<SqliteStore>, db_path: &Path) -> anyhow::Result<ExitCode> {
    let path = passphrase::path_for(db_path);
    if path.exists() {
        bail!(
            "an overseer passphrase is already set ({}); it is set once. To reset it, delete that file yourself and run setup again",
            path.display()
        );
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context("setting the passphrase needs an interactive terminal (it reads the terminal, never standard input)")?;
    let mut out = tty.try_clone().context("opening the terminal")?;
    let mut input = BufReader::new(tty);
    writeln!(
        out,
        "Choose the overseer passphrase. It is asked at every `mcp-bridge approve`; agents must never learn it.\nAt least {} characters.",
        passphrase::MIN_CHARS
    )?;
    write!(out, "Passphrase (not shown): ")?;
    out.flush()?;
    let first = passphrase::read_hidden(&out, &mut input)?;
    if first.chars().count() < passphrase::MIN_CHARS {
        bail!(
            "the passphrase must be at least {} characters; nothing was stored",
            passphrase::MIN_CHARS
        );
    }
    if first.chars().any(exec::text::is_disguising) {
        bail!("the passphrase must not contain control characters; nothing was stored");
    }
    write!(out, "Again (not shown): ")?;
    out.flush()?;
    let second = passphrase::read_hidden(&out, &mut input)?;
    if *first != *second {
        bail!("the two entries differ; nothing was stored");
    }
    passphrase::store(&path, &passphrase::hash(&first)?)?;
    bridge.record_passphrase_setup().await;
    writeln!(
        out,
        "Stored (Argon2id hash only) in {}. `mcp-bridge approve` will ask for it.",
        path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `mcp-bridge reject ID`.
#[allow(clippy::print_stdout, reason = "the overseer's commands report on stdout")]
pub async fn reject<S: FullStore>(bridge: &Bridge<S>, id: &str) -> anyhow::Result<ExitCode> {
    bridge
        .reject_proposal(id)
        .await
        .context("rejecting the proposal")?;
    println!("rejected {id}");
    Ok(ExitCode::SUCCESS)
}

/// `mcp-bridge yolo check --mode M -- COMMAND`: exit 0 when allowed, 1 when refused.
#[allow(clippy::print_stdout, reason = "the overseer's commands report on stdout")]
pub fn check(mode: Mode, words: &[String]) -> ExitCode {
    let command = words.join(" ");
    let verdict = exec::validate(&command, mode);
    if verdict.allowed {
        println!("{}", verdict.reason);
        ExitCode::SUCCESS
    } else {
        println!("{}", verdict.reason);
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(command: &str, reason: &str) -> Proposal {
        Proposal {
            id: "prop_0123".into(),
            conversation_id: "conv_1".into(),
            proposer: "a".into(),
            command: command.into(),
            mode: "safe".into(),
            workspace: "/ws".into(),
            cwd: ".".into(),
            reason: reason.into(),
            allowed: true,
            verdict: "allowed".into(),
            plan_hash: String::new(),
            state: "pending".into(),
            created_at: 0,
            decided_at: None,
        }
    }

    /// Issue 10: a stored proposal (from before proposals were checked, or written by hand)
    /// must not reach the terminal raw: the screen lists the re-parsed plan, escaped.
    #[test]
    fn approval_screen_escapes_control_characters() {
        let p = stored("cat key '\r\x1b[2Kgit log'", "fine\x1b[2K\u{202e}");
        let (screen, plan) = approval_screen(&p);
        assert!(plan.is_some());
        assert!(
            screen.chars().all(|c| c == '\n' || !exec::text::is_disguising(c)),
            "{screen:?}"
        );
        assert!(screen.contains("program  cat"), "{screen}");
        assert!(screen.contains("arg 1    key"), "{screen}");
        assert!(screen.contains(r"$'\x0d\x1b[2Kgit log'"), "{screen}");
    }
}
