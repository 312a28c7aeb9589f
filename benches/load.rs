//! Load test (issue 17): many agents sending and receiving at once through
//! one server, measured from a second process on loopback.
//!
//! ```sh
//! scripts/with-postgres cargo bench --bench load          # PostgreSQL and SQLite, HTTP and stdio
//! cargo bench --bench load                                # without MCP_BRIDGE_TEST_PG: SQLite only
//! LOAD_ONLY=pg-http LOAD_AGENTS=50 LOAD_SECONDS=10 LOAD_RUNS=3 cargo bench --bench load
//! ```
//!
//! Scenarios (`LOAD_ONLY`, comma-separated; default all that can run):
//!
//! - `pg-http`: one `mcp-bridge --database-url postgres://... serve --http`
//!   on a fresh database (`CREATE DATABASE` through MCP_BRIDGE_TEST_PG,
//!   which `scripts/with-postgres` exports), a fixed `MCP_BRIDGE_KEY`.
//!   With `LOAD_PG_SOCKET=1` the server connects through the cluster's
//!   unix socket instead of loopback TCP (PostgreSQL on the same machine).
//! - `sqlite-http`: the same server on a fresh SQLite file.
//! - `sqlite-stdio`: one `mcp-bridge serve` per agent on one SQLite file,
//!   each started with that agent's `MCP_BRIDGE_AGENT`, newline-delimited
//!   JSON-RPC on its pipes, as MCP clients on one machine run it.
//!
//! Every scenario registers `LOAD_AGENTS` agents (default 50) with
//! `agent add`, pairs them into conversations of two (`with_agents`), and
//! then every agent loops, all at once: `send_message` to its partner
//! (timed), then `check_messages` (timed apart; after every
//! `LOAD_CHECK_EVERY` sends, default 1; 0: none), until `LOAD_SECONDS`
//! (default 10) have passed or it has sent `LOAD_MAX_SENDS` (default 5,000).
//! Afterwards each agent drains its inbox, untimed, and the bench checks
//! that every message was received exactly once. Over HTTP each agent has
//! one keep-alive connection and one request in flight; the server is
//! stateless, so each call is one `tools/call` POST with the bearer
//! credential (no `initialize`). Rate limits are off; quotas are at their
//! defaults. The client runs on one thread (tokio current-thread).
//!
//! Reported per run: sustained sends/s (sends / wall time of the loop),
//! p50/p90/p99/max latency of sends and of checks, and the server's CPU per
//! send (utime + stime from `/proc`, all server processes). `LOAD_RUNS`
//! (default 3) runs per scenario, each on a new database; the summary line
//! is the median run (by sends/s) with the medians of each figure.
//! Bounded: every request has a 30 s timeout and the whole loop stops at the
//! deadline.

#![allow(clippy::print_stdout, reason = "a bench reports on stdout")]

#[path = "load/client.rs"]
mod client;
#[path = "load/scenario.rs"]
mod scenario;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use scenario::{Kind, Options, RunFigures};

fn env_num(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{name} must be a whole number")),
        _ => Ok(default),
    }
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let bin = std::env::var_os("MCP_BRIDGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mcp-bridge")));
    let pg_admin = std::env::var("MCP_BRIDGE_TEST_PG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let opts = Options {
        bin,
        agents: env_num("LOAD_AGENTS", 50)? as usize,
        seconds: Duration::from_secs(env_num("LOAD_SECONDS", 10)?),
        max_sends: env_num("LOAD_MAX_SENDS", 5_000)? as usize,
        check_every: env_num("LOAD_CHECK_EVERY", 1)? as usize,
        pg_admin,
    };
    if opts.agents < 2 || !opts.agents.is_multiple_of(2) {
        bail!("LOAD_AGENTS must be an even number of at least 2 (agents are paired)");
    }
    let runs = env_num("LOAD_RUNS", 3)?.max(1) as usize;
    let only = std::env::var("LOAD_ONLY").unwrap_or_default();
    let wanted = |k: Kind| only.trim().is_empty() || only.split(',').any(|s| s.trim() == k.name());

    println!(
        "load: {} agents, {} s per run (at most {} sends per agent), {}, {} runs, binary {}",
        opts.agents,
        opts.seconds.as_secs(),
        opts.max_sends,
        match opts.check_every {
            0 => "no check in the timed loop (drained after it)".to_owned(),
            1 => "check_messages after every send".to_owned(),
            n => format!("check_messages after every {n} sends"),
        },
        runs,
        opts.bin.display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for kind in [Kind::PgHttp, Kind::SqliteHttp, Kind::SqliteStdio] {
        if !wanted(kind) {
            continue;
        }
        if kind == Kind::PgHttp && opts.pg_admin.is_none() {
            println!(
                "{}: skipped, MCP_BRIDGE_TEST_PG is unset (run inside scripts/with-postgres)",
                kind.name()
            );
            continue;
        }
        let mut all: Vec<RunFigures> = Vec::new();
        for run in 1..=runs {
            let figures = rt
                .block_on(scenario::run(kind, &opts))
                .with_context(|| format!("{} run {run}", kind.name()))?;
            println!("{} run {run}: {}", kind.name(), figures.line());
            all.push(figures);
        }
        println!(
            "{} MEDIAN of {runs}: {}",
            kind.name(),
            RunFigures::median(&all).line()
        );
    }
    Ok(())
}
