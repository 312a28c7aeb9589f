//! `cargo bench --bench bridge`: start-up, round trip, throughput, history
//! scaling and memory of the real `mcp-bridge serve` binary, driven over
//! real stdio pipes by rmcp's client. See docs/performance.md.
//!
//! Knobs (environment):
//! - `MCP_BRIDGE_BIN`: the binary to measure (default: the release binary
//!   Cargo built next to this bench, `<target>/release/mcp-bridge`).
//! - `BENCH_QUICK=1`: fewer runs and at most 100 k seeded messages.
//! - `BENCH_MAX_MESSAGES=N`: cap the history sizes (10 k, 100 k, 1 M) at N.
//! - `BENCH_FIXTURES_DIR`: where seeded databases are cached
//!   (default `<target>/bench-fixtures`; delete it to rebuild them).
//! - `BENCH_ONLY=startup,roundtrip,throughput,history,memory,wake,idle`: a subset.

#![allow(clippy::print_stdout, reason = "a bench reports on stdout")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use common::{Env, Layout, Summary, summary};

struct Plan {
    quick: bool,
    startup_runs: usize,
    fresh_runs: usize,
    round_trips: usize,
    tp_runs: usize,
    tp_single: usize,
    tp_per_agent: usize,
    agents: usize,
    history_sizes: Vec<usize>,
    history_conversations: usize,
    history_checks: usize,
    rss_idle_runs: usize,
    rss_load_runs: usize,
    rss_load_ops: usize,
    wakes: usize,
    idle_servers: usize,
    idle_seconds: u64,
    only: Option<Vec<String>>,
}

impl Plan {
    fn from_env() -> Self {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let default_max = if quick { 100_000 } else { 1_000_000 };
        let max: usize = std::env::var("BENCH_MAX_MESSAGES")
            .ok()
            .and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or(default_max);
        let only = std::env::var("BENCH_ONLY")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
        let q = |quick_v: usize, full: usize| if quick { quick_v } else { full };
        Plan {
            quick,
            startup_runs: q(10, 30),
            fresh_runs: q(3, 10),
            round_trips: q(100, 500),
            tp_runs: q(3, 5),
            tp_single: q(500, 2000),
            tp_per_agent: q(100, 500),
            agents: 8,
            history_sizes: [10_000, 100_000, 1_000_000]
                .into_iter()
                .filter(|&s| s <= max)
                .collect(),
            history_conversations: 10_000,
            history_checks: q(100, 300),
            rss_idle_runs: q(3, 5),
            rss_load_runs: q(1, 3),
            rss_load_ops: q(1000, 5000),
            wakes: q(200, 500),
            idle_servers: 10,
            idle_seconds: q(10, 20) as u64,
            only,
        }
    }

    fn runs(&self, section: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.iter().any(|s| s == section))
    }
}

fn line(label: &str, s: Summary, unit: &str) {
    println!(
        "  {label:<44} median {:>9.3} {unit}  p90 {:>9.3}  min {:>9.3}  max {:>9.3}  (n={})",
        s.median, s.p90, s.min, s.max, s.n
    );
}

fn verdict(what: &str, ok: bool, detail: String) {
    println!(
        "  target {what}: {} ({detail})",
        if ok { "met" } else { "MISSED" }
    );
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown kernel".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}, Linux {kernel}")
}

fn main() -> Result<()> {
    // `cargo test --all-targets` runs bench binaries without `--bench`; the
    // scenarios are covered by tests there, so only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("skipping the bridge bench: run it with `cargo bench --bench bridge`");
        return Ok(());
    }
    let plan = Plan::from_env();
    let bin = std::env::var_os("MCP_BRIDGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mcp-bridge")));
    anyhow::ensure!(bin.exists(), "no binary at {}; set MCP_BRIDGE_BIN", bin.display());
    // <target>/release/mcp-bridge -> <target>
    let target = Path::new(env!("CARGO_BIN_EXE_mcp-bridge"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let fixtures = std::env::var_os("BENCH_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("bench-fixtures"));
    std::fs::create_dir_all(&target)?;
    let work = tempfile::Builder::new()
        .prefix("bench-work-")
        .tempdir_in(&target)
        .context("creating the scratch directory")?;
    // Private, as `serve` expects of a database's directory (it warns on
    // every start otherwise, flooding the bench's output).
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o700))?;
    }
    let env = Env {
        bin: bin.clone(),
        work: work.path().to_path_buf(),
    };

    println!("mcp-bridge bench");
    println!("  binary   {}", bin.display());
    println!("  machine  {}", machine());
    println!(
        "  mode     {}; rate limits off; client: rmcp over stdio pipes, one request in flight per process",
        if plan.quick { "BENCH_QUICK" } else { "full" }
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(&plan, &env, &fixtures))
}

async fn run(plan: &Plan, env: &Env, fixtures: &Path) -> Result<()> {
    if plan.runs("startup") {
        println!("\n1. start-up: spawn -> initialize -> first tools/list answer (ms)");
        let warm = summary(&common::startup(env, plan.startup_runs, false).await?);
        line("existing database", warm, "ms");
        let fresh = summary(&common::startup(env, plan.fresh_runs, true).await?);
        line("new database file (create + migrate)", fresh, "ms");
        verdict(
            "first tools/list < 15 ms",
            warm.median < 15.0,
            format!("median {:.2} ms", warm.median),
        );
    }

    if plan.runs("roundtrip") {
        println!("\n2. round trip: A send_to_partner, then B check_messages returns it (two processes, ms)");
        let s = summary(&common::round_trip(env, &env.db("roundtrip"), plan.round_trips, 20).await?);
        line("send + check", s, "ms");
        verdict(
            "round trip < 1 ms median",
            s.median < 1.0,
            format!("median {:.3} ms", s.median),
        );
    }

    if plan.runs("throughput") {
        println!("\n3. throughput: sends/s, one request in flight per agent process, one database");
        let mut single = Vec::new();
        for run in 0..plan.tp_runs {
            let t = common::throughput(
                env,
                &env.db(&format!("tp1-{run}")),
                1,
                plan.tp_single,
                Layout::OwnConversations,
            )
            .await?;
            single.push(t.rate());
        }
        let s1 = summary(&single);
        line(&format!("1 agent ({} sends/run)", plan.tp_single), s1, "/s");
        let mut own = Vec::new();
        let mut one = Vec::new();
        for run in 0..plan.tp_runs {
            let t = common::throughput(
                env,
                &env.db(&format!("tp8own-{run}")),
                plan.agents,
                plan.tp_per_agent,
                Layout::OwnConversations,
            )
            .await?;
            own.push(t.rate());
            let t = common::throughput(
                env,
                &env.db(&format!("tp8one-{run}")),
                plan.agents,
                plan.tp_per_agent,
                Layout::OneConversation,
            )
            .await?;
            one.push(t.rate());
        }
        line(
            &format!(
                "{} agents, {0} conversations ({} sends each)",
                plan.agents, plan.tp_per_agent
            ),
            summary(&own),
            "/s",
        );
        line(
            &format!(
                "{} agents, one conversation ({} sends each)",
                plan.agents, plan.tp_per_agent
            ),
            summary(&one),
            "/s",
        );
        verdict(
            "one agent >= 3000 sends/s",
            s1.median >= 3000.0,
            format!("median {:.0}/s", s1.median),
        );
    }

    if plan.runs("history") && !plan.history_sizes.is_empty() {
        println!(
            "\n4. check_messages latency vs history ({} conversations seeded; ms)",
            plan.history_conversations
        );
        let mut medians = Vec::new();
        for &size in &plan.history_sizes {
            let db = env.db(&format!("history-{size}"));
            let t0 = Instant::now();
            let built = common::history_db(fixtures, &db, size, plan.history_conversations).await?;
            match built {
                Some(s) => println!(
                    "  seeded {} messages ({} unread), {} audit entries in {:.1} s (cached in {})",
                    s.messages,
                    s.unread,
                    s.audit,
                    t0.elapsed().as_secs_f64(),
                    fixtures.display()
                ),
                None => println!(
                    "  {size} messages: cached fixture copied in {:.1} s",
                    t0.elapsed().as_secs_f64()
                ),
            }
            let l = common::check_latency(env, &db, plan.history_checks, 20).await?;
            let w = summary(&l.with_message);
            line(&format!("{size:>9} messages: check returning 1"), w, "ms");
            line(
                &format!("{size:>9} messages: empty poll"),
                summary(&l.empty),
                "ms",
            );
            medians.push((size, w.median));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
        }
        if let (Some(first), Some(last)) = (medians.first(), medians.last())
            && medians.len() > 1
        {
            let ratio = last.1 / first.1;
            verdict(
                &format!("check at {} within 20% of {}", last.0, first.0),
                ratio <= 1.2,
                format!("{:.3} ms vs {:.3} ms, x{ratio:.2}", last.1, first.1),
            );
        }
    }

    if plan.runs("memory") {
        println!("\n5. memory: one server process, /proc/<pid>/status (MB)");
        let mut idle_hwm = Vec::new();
        let mut idle_anon = Vec::new();
        let mut idle_file = Vec::new();
        for run in 0..plan.rss_idle_runs {
            let r = common::rss_idle(env, &env.db(&format!("rss-idle-{run}"))).await?;
            idle_hwm.push(r.hwm_kb as f64 / 1024.0);
            idle_anon.push(r.anon_kb as f64 / 1024.0);
            idle_file.push(r.file_kb as f64 / 1024.0);
        }
        let mut load_hwm = Vec::new();
        let mut load_anon = Vec::new();
        for run in 0..plan.rss_load_runs {
            let r = common::rss_loaded(env, &env.db(&format!("rss-load-{run}")), plan.rss_load_ops).await?;
            load_hwm.push(r.hwm_kb as f64 / 1024.0);
            load_anon.push(r.anon_kb as f64 / 1024.0);
        }
        let idle = summary(&idle_hwm);
        line("idle (initialize + tools/list): VmHWM", idle, "MB");
        line("  of which RssAnon (heap, stacks)", summary(&idle_anon), "MB");
        line(
            "  of which RssFile (binary pages, shared)",
            summary(&idle_file),
            "MB",
        );
        line(
            &format!("after {} sends + {0} checks: VmHWM", plan.rss_load_ops),
            summary(&load_hwm),
            "MB",
        );
        line("  of which RssAnon (heap, stacks)", summary(&load_anon), "MB");
        verdict(
            "idle RSS < 10 MB",
            idle.median < 10.0,
            format!("median VmHWM {:.1} MB", idle.median),
        );
    }
    if plan.runs("wake") {
        println!("\n6. wake-up across processes: B waits in wait_for_messages, A sends (ms)");
        let samples = common::wake::wake_latency(env, &env.db("wake"), plan.wakes, 20).await?;
        let s = summary(&samples);
        line("send -> the wait returns", s, "ms");
        let p99 = common::wake::percentile(&samples, 0.99);
        println!("  p99 {p99:.3} ms");
        verdict(
            "median < 10 ms and p99 < 50 ms",
            s.median < 10.0 && p99 < 50.0,
            format!("median {:.3} ms, p99 {p99:.3} ms", s.median),
        );
    }

    if plan.runs("idle") {
        println!(
            "\n7. idle waiting: {} server processes, each in wait_for_messages, for {} s (CPU)",
            plan.idle_servers, plan.idle_seconds
        );
        let percent = common::wake::idle_cpu(
            env,
            &env.db("idle"),
            plan.idle_servers,
            std::time::Duration::from_secs(plan.idle_seconds),
        )
        .await?;
        println!("  all {} together: {percent:.3} % of one core", plan.idle_servers);
        verdict(
            "10 idle waiting servers < 1 % of one core",
            percent < 1.0,
            format!("{percent:.3} %"),
        );
    }
    Ok(())
}
