//! Throughput of `Redactor::redact` on 50 KB agent messages.
//!
//! Run with `cargo bench --bench redact`. Prints median/min/max over 200
//! iterations (`REDACT_BENCH_ITERS`; `REDACT_BENCH_CASE=with|without` for
//! one message), time per message and MB/s, for a message with secrets
//! sprinkled in and one with none (but full of secret-ish words such as
//! "token" and "password", so the prefilter cannot skip everything).
#![allow(clippy::print_stdout, reason = "a bench prints its figures")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use mcp_bridge::redact::Redactor;

const TARGET: usize = 50 * 1024;
/// Iterations per case; `REDACT_BENCH_ITERS` overrides it (instruction
/// counts under callgrind take the difference of two small counts, so
/// one-time compilation and cache warm-up cancel out).
const ITERS: usize = 200;

fn iters() -> usize {
    std::env::var("REDACT_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(ITERS)
}

fn corpus_texts(name: &str) -> Vec<String> {
    let path = format!("{}/tests/data/redaction/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    raw.lines()
        .filter_map(|l| {
            let key = "\"text\": \"";
            let start = l.find(key)? + key.len();
            // Minimal JSON string decoding (the corpus only uses these escapes).
            let mut out = String::new();
            let mut chars = l[start..].chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'u' => {
                            let hex: String = chars.by_ref().take(4).collect();
                            out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                        }
                        other => out.push(other),
                    },
                    c => out.push(c),
                }
            }
            Some(out)
        })
        .collect()
}

/// Interleave prose-like negatives with (every `secret_every`-th) positives
/// until the message reaches 50 KB.
fn build(neg: &[String], pos: &[String], secret_every: usize) -> String {
    let mut msg = String::with_capacity(TARGET + 4096);
    let mut i = 0;
    while msg.len() < TARGET {
        if secret_every > 0 && i % secret_every == 0 {
            msg.push_str(&pos[(i / secret_every) % pos.len()]);
        } else {
            msg.push_str(&neg[i % neg.len()]);
        }
        msg.push_str("\n\n");
        i += 1;
    }
    msg
}

fn run(label: &str, redactor: &Redactor, msg: &str) -> Duration {
    let iters = iters();
    // Warm-up (lazy DFA caches, LazyLock).
    for _ in 0..10 {
        black_box(redactor.redact(black_box(msg)));
    }
    let mut times: Vec<Duration> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            let r = redactor.redact(black_box(msg));
            black_box(&r);
            t.elapsed()
        })
        .collect();
    times.sort();
    let median = times[iters / 2];
    let mbps = msg.len() as f64 / median.as_secs_f64() / 1e6;
    let kinds = redactor.redact(msg).kinds.len();
    println!(
        "{label:<28} {:>6} B  median {:>8.1} µs  min {:>8.1} µs  max {:>8.1} µs  {:>7.1} MB/s  kinds={kinds}",
        msg.len(),
        median.as_secs_f64() * 1e6,
        times[0].as_secs_f64() * 1e6,
        times[iters - 1].as_secs_f64() * 1e6,
        mbps,
    );
    median
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`; the
    // scenarios are covered by tests there, so only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("skipping the redact bench: run it with `cargo bench --bench redact`");
        return;
    }
    let pos = corpus_texts("positive.jsonl");
    let neg = corpus_texts("negative.jsonl");
    assert!(!pos.is_empty() && !neg.is_empty(), "corpus missing");
    let redactor = Redactor::builtin();
    let with_secrets = build(&neg, &pos, 4);
    let without = build(&neg, &pos, 0);
    println!("redact bench: {} iterations per case", iters());
    // `REDACT_BENCH_CASE=with` or `without` runs one message only.
    let case = std::env::var("REDACT_BENCH_CASE").unwrap_or_default();
    let mut results = Vec::new();
    if case != "without" {
        results.push(("with secrets", run("50KB with secrets", &redactor, &with_secrets)));
    }
    if case != "with" {
        results.push((
            "without secrets",
            run("50KB without secrets", &redactor, &without),
        ));
    }
    let target = Duration::from_millis(1);
    for (label, d) in results {
        let verdict = if d < target { "OK" } else { "OVER BUDGET" };
        println!("target < 1 ms per 50 KB message, {label}: {verdict}");
    }
}
