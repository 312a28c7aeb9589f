//! Runs the bench's own scenarios (benches/common) at a tiny size against the
//! binary Cargo built for the tests, and checks they complete correctly:
//! what was sent is what was received, counts are right. No timing
//! assertions: this only keeps `cargo bench --bench bridge` from rotting.

#[path = "../benches/common/mod.rs"]
mod common;

use std::path::PathBuf;

use common::{Env, Layout};

fn env() -> (tempfile::TempDir, Env) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = Env {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_mcp-bridge")),
        work: dir.path().to_path_buf(),
    };
    (dir, env)
}

#[tokio::test(flavor = "current_thread")]
async fn startup_lists_the_tools() {
    let (_dir, env) = env();
    let warm = common::startup(&env, 2, false).await.unwrap();
    let fresh = common::startup(&env, 2, true).await.unwrap();
    assert_eq!((warm.len(), fresh.len()), (2, 2));
    assert!(warm.iter().chain(&fresh).all(|&ms| ms > 0.0));
}

#[tokio::test(flavor = "current_thread")]
async fn round_trip_receives_each_message_sent() {
    let (_dir, env) = env();
    let samples = common::round_trip(&env, &env.db("rt"), 10, 2).await.unwrap();
    assert_eq!(samples.len(), 10);
    let s = common::summary(&samples);
    assert!(s.min <= s.median && s.median <= s.p90 && s.p90 <= s.max);
}

#[tokio::test(flavor = "current_thread")]
async fn throughput_delivers_every_message_once() {
    let (_dir, env) = env();
    let t = common::throughput(&env, &env.db("tp1"), 1, 20, Layout::OwnConversations)
        .await
        .unwrap();
    assert_eq!((t.sends, t.received), (20, 20));
    let t = common::throughput(&env, &env.db("tp3"), 3, 7, Layout::OwnConversations)
        .await
        .unwrap();
    assert_eq!((t.sends, t.received), (21, 21));
    let t = common::throughput(&env, &env.db("tp4"), 4, 6, Layout::OneConversation)
        .await
        .unwrap();
    assert_eq!((t.sends, t.received), (24, 24));
}

#[tokio::test(flavor = "current_thread")]
async fn seeded_history_is_a_valid_bridge_database() {
    let (dir, env) = env();
    let cache = dir.path().join("fixtures");
    let db = env.db("history");
    let seeded = common::history_db(&cache, &db, 250, 20)
        .await
        .unwrap()
        .expect("built");
    assert_eq!((seeded.messages, seeded.conversations), (250, 20));
    // The last round (10 messages) is unread in conversations 0 and 10.
    assert_eq!(seeded.unread, 2);
    // One create per conversation, one send per message, one check per read message.
    assert_eq!(seeded.audit, 20 + 250 + 248);
    // The second call reuses the cache.
    assert!(common::history_db(&cache, &db, 250, 20).await.unwrap().is_none());

    let l = common::check_latency(&env, &db, 5, 1).await.unwrap();
    assert_eq!((l.with_message.len(), l.empty.len()), (5, 5));

    // The seeded audit chain, and what the servers appended to it, verify.
    let out = std::process::Command::new(&env.bin)
        .args(["audit", "verify"])
        .env("MCP_BRIDGE_DB", &db)
        .env("MCP_BRIDGE_KEY", common::KEY_HEX)
        .env("XDG_CONFIG_HOME", dir.path().join("config-home"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn memory_is_read_from_proc() {
    let (_dir, env) = env();
    let idle = common::rss_idle(&env, &env.db("idle")).await.unwrap();
    assert!(idle.hwm_kb >= idle.rss_kb && idle.rss_kb > 0);
    assert!(idle.anon_kb > 0 && idle.file_kb > 0 && idle.anon_kb + idle.file_kb <= idle.rss_kb + 64);
    let loaded = common::rss_loaded(&env, &env.db("load"), 20).await.unwrap();
    assert!(loaded.hwm_kb > 0);
}

#[tokio::test(flavor = "current_thread")]
async fn every_wake_returns_the_message_sent() {
    let (_dir, env) = env();
    let samples = common::wake::wake_latency(&env, &env.db("wake"), 5, 1)
        .await
        .unwrap();
    assert_eq!(samples.len(), 5);
    assert!(samples.iter().all(|&ms| ms >= 0.0));
}

#[tokio::test(flavor = "current_thread")]
async fn idle_waiting_cpu_is_read_from_proc() {
    let (_dir, env) = env();
    let percent = common::wake::idle_cpu(&env, &env.db("idle"), 2, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert!(percent >= 0.0 && percent.is_finite());
}
