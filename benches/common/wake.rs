//! Wake-up scenarios: how soon a `wait_for_messages` in one server process
//! returns after a `send_to_partner` in another, and what waiting costs
//! while nothing happens.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;

use super::{Agent, Conv, Env, body};

/// How long the sender lets the waiter settle into its wait before sending,
/// so each sample measures a wake-up, not a message already waiting.
const SETTLE: Duration = Duration::from_millis(30);

/// `wait_for_messages` as `session`; the bodies it returned.
async fn wait(agent: &Agent, conv: &Conv, session: &str, seconds: u32) -> Result<Vec<String>> {
    let r = agent
        .call(
            "wait_for_messages",
            json!({
                "conversation_id": conv.id,
                "session_id": session,
                "token": conv.token(session),
                "timeout_seconds": seconds,
            }),
        )
        .await?;
    r["messages"]
        .as_array()
        .context("wait_for_messages: no messages")?
        .iter()
        .map(|m| Ok(m["message"].as_str().context("no message")?.to_owned()))
        .collect()
}

/// Wake-up latency across processes, in ms: process B waits, process A
/// sends; each sample runs from just before A's `send_to_partner` is
/// written to the moment B's `wait_for_messages` response is read, so it
/// includes A's own call. Checks that every wait returned exactly the
/// message sent.
pub async fn wake_latency(env: &Env, db: &Path, n: usize, warmup: usize) -> Result<Vec<f64>> {
    let a = env.spawn(db).await?;
    let b = env.spawn(db).await?;
    let conv = a.create("backend", "frontend").await?;
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let text = body("wake", i);
        let waiting = async {
            let got = wait(&b, &conv, "b", 30).await;
            (got, Instant::now())
        };
        let sending = async {
            tokio::time::sleep(SETTLE).await;
            let t0 = Instant::now();
            a.send(&conv, "a", &text).await.map(|_| t0)
        };
        let ((got, woke), sent) = tokio::join!(waiting, sending);
        let got = got?;
        let t0 = sent?;
        ensure!(got == [text.clone()], "wake {i}: the wait returned {got:?}");
        if i >= warmup {
            samples.push(woke.saturating_duration_since(t0).as_secs_f64() * 1000.0);
        }
    }
    a.close().await?;
    b.close().await?;
    Ok(samples)
}

/// CPU used by idle waiting servers: `servers` processes on one database,
/// each with a `wait_for_messages` in flight that nothing answers, for
/// `window`. Returns the total CPU time of all of them as a percentage of
/// one core (utime + stime from `/proc/<pid>/stat`).
pub async fn idle_cpu(env: &Env, db: &Path, servers: usize, window: Duration) -> Result<f64> {
    let mut agents = Vec::with_capacity(servers);
    for _ in 0..servers {
        agents.push(env.spawn(db).await?);
    }
    let mut convs = Vec::with_capacity(servers);
    for agent in &agents {
        convs.push(agent.create("backend", "frontend").await?);
    }
    let wait_s = u32::try_from(window.as_secs() + 20).unwrap_or(55).min(55);
    let waits = futures_waits(&agents, &convs, wait_s);
    let measure = async {
        // Let start-up and the first check finish before the window opens.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = cpu_ticks(&agents)?;
        let t0 = Instant::now();
        tokio::time::sleep(window).await;
        let after = cpu_ticks(&agents)?;
        let seconds = t0.elapsed().as_secs_f64();
        anyhow::Ok((after - before) as f64 / clock_ticks_per_second() / seconds * 100.0)
    };
    // The waits are still in flight when the window closes; closing the
    // clients ends them (and their servers) without delivering anything.
    let percent = tokio::select! {
        r = measure => r?,
        r = waits => anyhow::bail!("a wait returned before the window closed: {r:?}"),
    };
    for agent in agents {
        agent.close().await?;
    }
    Ok(percent)
}

/// All the agents' waits, each in its own conversation, as one future that
/// resolves when the first returns.
async fn futures_waits(agents: &[Agent], convs: &[Conv], seconds: u32) -> Result<Vec<String>> {
    let mut waits: Vec<_> = agents
        .iter()
        .zip(convs)
        .map(|(agent, conv)| Box::pin(wait(agent, conv, "b", seconds)))
        .collect();
    std::future::poll_fn(|cx| {
        for w in &mut waits {
            if let std::task::Poll::Ready(out) = w.as_mut().poll(cx) {
                return std::task::Poll::Ready(out);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// utime + stime of every agent's server process, in clock ticks.
fn cpu_ticks(agents: &[Agent]) -> Result<u64> {
    let mut total = 0;
    for a in agents {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", a.pid))
            .context("reading /proc/<pid>/stat (Linux only)")?;
        // The command name (field 2) may hold spaces; fields after its ')'.
        let rest = stat.rsplit_once(')').context("malformed /proc/<pid>/stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
        let utime: u64 = fields.get(11).context("no utime")?.parse()?;
        let stime: u64 = fields.get(12).context("no stime")?.parse()?;
        total += utime + stime;
    }
    Ok(total)
}

/// `sysconf(_SC_CLK_TCK)`, from `getconf`; 100 on every Linux we know.
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The `q`-quantile (0..=1) of `samples` by nearest rank.
pub fn percentile(samples: &[f64], q: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((s.len() as f64 * q).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}
