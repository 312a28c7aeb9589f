//! `agent add|list|rotate|revoke`: registered agents' identities.
//!
//! A credential appears in exactly one output, the one that issues it
//! (`add`, `rotate`), together with where it goes: the agent's MCP client
//! configuration, as the environment variable `MCP_BRIDGE_AGENT`. Names
//! are printed through the terminal escaping of `render` like every value
//! read from the database.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use super::{open, open_or_create, print_json};
use crate::bridge::{AdminError, AgentView};
use crate::cli::render::{self, Style};
use crate::clock::Millis;
use crate::config::Config;
use crate::store::agents::AgentRole;

/// `mcp-bridge agent ...`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Register an agent and print its credential (once) for its MCP client's configuration.
    Add {
        /// The agent's name: 1 to 64 of letters, digits, '-' and '_' (its role in conversations).
        name: String,
        /// What the agent may do.
        #[arg(long, value_enum, default_value = "agent")]
        role: RoleArg,
    },
    /// List registered agents (never their credentials).
    List,
    /// Issue a new credential for an agent (printed once); the old one stops working at once.
    Rotate {
        /// The agent's name.
        name: String,
    },
    /// End an agent's access; a server running with its credential then gets `agent_revoked`.
    Revoke {
        /// The agent's name.
        name: String,
    },
}

/// A role on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    /// Takes part in conversations.
    Agent,
    /// Meant to read, not to take part.
    Observer,
    /// Meant to oversee other agents.
    Admin,
}

impl From<RoleArg> for AgentRole {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Agent => AgentRole::Agent,
            RoleArg::Observer => AgentRole::Observer,
            RoleArg::Admin => AgentRole::Admin,
        }
    }
}

/// The variable an agent-mode server reads its credential from.
const ENV_VAR: &str = "MCP_BRIDGE_AGENT";

/// Runs one `agent` subcommand. A refused request (a bad, taken, unknown
/// or revoked name) exits 1 with one line on stderr; any other failure
/// (no database, no key, a database error) is returned for `main`, which
/// exits 2 like every command.
pub(super) async fn run(config: Config, args: AgentArgs, style: Style) -> anyhow::Result<ExitCode> {
    let json = args.json;
    let result = match args.command {
        AgentCommand::Add { name, role } => add(config, &name, role.into(), json).await,
        AgentCommand::List => list(config, json, style).await,
        AgentCommand::Rotate { name } => rotate(config, &name, json).await,
        AgentCommand::Revoke { name } => revoke(config, &name, json).await,
    };
    match result {
        Err(e) if is_refusal(&e) => {
            let mut err = std::io::stderr().lock();
            writeln!(err, "mcp-bridge: error: {}", render::clean(&format!("{e:#}")))?;
            Ok(ExitCode::from(1))
        }
        other => other,
    }
}

/// Whether the use case refused the request itself (the human can fix the
/// name), as opposed to failing to reach the database.
fn is_refusal(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<AdminError>(),
            Some(
                AdminError::InvalidAgentName { .. }
                    | AdminError::AgentExists { .. }
                    | AdminError::NoSuchAgent { .. }
                    | AdminError::AgentRevoked { .. }
            )
        )
    })
}

async fn add(config: Config, name: &str, role: AgentRole, json: bool) -> anyhow::Result<ExitCode> {
    // The first command of a team's set-up: it may create the database.
    on_bridge!(open_or_create(&config).await?, |bridge| {
        let a = bridge.add_agent(name, role).await.context("adding an agent")?;
        if json {
            return print_json(&a);
        }
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "Registered agent {} (role {}).",
            render::line(&a.name),
            a.role
        )?;
        print_credential(&mut out, &a.name, &a.credential)?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn rotate(config: Config, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    on_bridge!(open(&config).await?, |bridge| {
        let r = bridge
            .rotate_agent(name)
            .await
            .context("rotating an agent's credential")?;
        if json {
            return print_json(&r);
        }
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "New credential for agent {}; the old one no longer works (replace it in the agent's configuration and restart its MCP client).",
            render::line(&r.name)
        )?;
        print_credential(&mut out, &r.name, &r.credential)?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The one place a credential is printed in plain output: once, inside a
/// line that can be pasted into a client's configuration as it is.
fn print_credential(out: &mut impl Write, name: &str, credential: &str) -> std::io::Result<()> {
    writeln!(
        out,
        "It is shown only now, never again. Put it in {}'s MCP client configuration as the environment variable {ENV_VAR}, e.g. in .mcp.json:",
        render::line(name)
    )?;
    writeln!(out, "  \"env\": {{\"{ENV_VAR}\": \"{credential}\"}}")
}

async fn revoke(config: Config, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    on_bridge!(open(&config).await?, |bridge| {
        let r = bridge.revoke_agent(name).await.context("revoking an agent")?;
        if json {
            return print_json(&r);
        }
        let mut out = std::io::stdout().lock();
        if r.changed {
            writeln!(
                out,
                "agent {} revoked; a server running with its credential now gets agent_revoked",
                render::line(&r.name)
            )?;
        } else {
            writeln!(
                out,
                "agent {} was already revoked {}; nothing changed",
                render::line(&r.name),
                render::relative(r.revoked_at, bridge.now_ms())
            )?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn list(config: Config, json: bool, style: Style) -> anyhow::Result<ExitCode> {
    on_bridge!(open(&config).await?, |bridge| {
        let agents = bridge.list_agents().await.context("listing agents")?;
        if json {
            return print_json(&agents);
        }
        print_list(&agents, bridge.now_ms(), style)
    })
}

fn print_list(agents: &[AgentView], now: Millis, style: Style) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if agents.is_empty() {
        writeln!(out, "no agents; `mcp-bridge agent add NAME` registers one")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = style.table(["NAME", "ROLE", "CREATED", "ROTATED", "REVOKED"]);
    for a in agents {
        t.add_row(vec![
            render::cell(&a.name),
            render::cell(a.role.as_str()),
            render::cell(render::relative(a.created_at, now)),
            render::cell(render::relative_opt(a.rotated_at, now)),
            style.flag_cell(render::relative_opt(a.revoked_at, now), a.revoked_at.is_some()),
        ]);
    }
    writeln!(out, "{t}")?;
    Ok(ExitCode::SUCCESS)
}
