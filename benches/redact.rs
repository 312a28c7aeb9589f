//! Throughput of `Redactor::redact` on 50 KB agent messages.
//!
//! Run with `cargo bench --bench redact`. Prints median/min/max over 200
//! iterations (`REDACT_BENCH_ITERS`; `REDACT_BENCH_CASE=<id>` for one
//! message, ids below), time per message and MB/s, for:
//!
//! * the **worst case** (`with`, `without`): messages built only from the
//!   corpus's near-miss negatives, texts written to trip the rules (every
//!   paragraph is full of "token", "password", `key=`), with and without
//!   secrets sprinkled in;
//! * **typical messages**, built from real text committed in this repo and
//!   not chosen for lacking secret-ish words: a unified diff of the crate's
//!   sources (`diff`), a `cargo test` log (`log`), the Markdown docs
//!   (`markdown`), and a JSON tool result (`json`: the e2e npm lockfile,
//!   as a read-file tool returns it); each without secrets and with a
//!   positive from the corpus every fourth paragraph (`diff+secrets`, …).
//!
//! `REDACT_BENCH_PROFILE=1` prints, instead of the timing, where each
//! message's time goes rule by rule; `REDACT_BENCH_DUMP=DIR` writes each
//! message and its redaction to `DIR`.
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

/// Read a file of this repository.
fn repo_file(rel: &str) -> String {
    let path = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Paths (relative to the repository) of the `.rs` files under `dir`,
/// sorted so that the message does not depend on directory order.
fn rust_files(dir: &str, out: &mut Vec<String>) {
    let root = env!("CARGO_MANIFEST_DIR");
    let entries = std::fs::read_dir(format!("{root}/{dir}")).unwrap_or_else(|e| panic!("read {dir}: {e}"));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("{dir}/{name}");
        if entry.file_type().expect("file type").is_dir() {
            rust_files(&rel, out);
        } else if name.ends_with(".rs") {
            out.push(rel);
        }
    }
    out.sort();
}

/// A short, stable hex digest of `s` (FNV-1a), for the fake object ids
/// and hashes a diff header or a test binary's name carries.
fn hex_id(s: &str, digits: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}")[..digits].to_string()
}

/// A unified diff of the crate's sources, one hunk per file (15 context
/// lines, 5 removed, 5 added, 15 context, from a third into the file),
/// as an agent pastes a change for review. `src/redact` is left out: its
/// tests hold fake secrets on purpose.
fn diff_chunks() -> Vec<String> {
    let mut files = Vec::new();
    rust_files("src", &mut files);
    files
        .iter()
        .filter(|p| !p.starts_with("src/redact"))
        .filter_map(|path| {
            let text = repo_file(path);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len() / 3;
            let hunk = lines.get(start..start + 40)?;
            let mut out = format!(
                "diff --git a/{path} b/{path}\nindex {}..{} 100644\n--- a/{path}\n+++ b/{path}\n@@ -{},35 +{},35 @@\n",
                hex_id(path, 7),
                hex_id(&format!("{path}~"), 7),
                start + 1,
                start + 1,
            );
            for (i, line) in hunk.iter().enumerate() {
                let mark = match i {
                    15..20 => '-',
                    20..25 => '+',
                    _ => ' ',
                };
                out.push(mark);
                out.push_str(line);
                out.push('\n');
            }
            Some(out)
        })
        .collect()
}

/// A `cargo test` log: the crates of `Cargo.lock` compiling, then every
/// integration test binary running its tests (names from `tests/*.rs`).
fn log_chunks() -> Vec<String> {
    let lock = repo_file("Cargo.lock");
    let mut crates = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            crates.push(format!("   Compiling {n} v{}\n", v.trim_matches('"')));
        }
    }
    let mut out: Vec<String> = crates.chunks(20).map(|c| c.concat()).collect();
    out.push("    Finished `test` profile [unoptimized + debuginfo] target(s) in 1m 42s\n".to_string());
    let mut tests = Vec::new();
    rust_files("tests", &mut tests);
    for path in tests.iter().filter(|p| p.matches('/').count() == 1) {
        let source = repo_file(path);
        let mut names = Vec::new();
        let mut attribute = false;
        for line in source.lines().map(str::trim) {
            if line.starts_with("#[test]") || line.starts_with("#[tokio::test") {
                attribute = true;
            } else if attribute && let Some(rest) = line.split("fn ").nth(1) {
                names.push(rest.split('(').next().unwrap_or_default().to_string());
                attribute = false;
            }
        }
        let stem = path.trim_start_matches("tests/").trim_end_matches(".rs");
        let mut block = format!(
            "     Running {path} (target/debug/deps/{stem}-{})\n\nrunning {} tests\n",
            hex_id(stem, 16),
            names.len()
        );
        for name in &names {
            block.push_str(&format!("test {name} ... ok\n"));
        }
        block.push_str(&format!(
            "\ntest result: ok. {} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.{}s\n",
            names.len(),
            names.len() % 97 + 2
        ));
        out.push(block);
    }
    out
}

/// The Markdown docs, paragraph by paragraph (README and `docs/*.md`,
/// but not `docs/redaction.md`: a catalogue of fake secrets).
fn markdown_chunks() -> Vec<String> {
    let mut docs: Vec<String> = std::fs::read_dir(format!("{}/docs", env!("CARGO_MANIFEST_DIR")))
        .expect("docs/")
        .map(|e| format!("docs/{}", e.expect("entry").file_name().to_string_lossy()))
        .filter(|p| p.ends_with(".md") && p != "docs/redaction.md")
        .collect();
    docs.sort();
    docs.insert(0, "README.md".to_string());
    docs.iter()
        .flat_map(|p| {
            repo_file(p)
                .split("\n\n")
                .filter(|para| !para.trim().is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A JSON tool result: the e2e clients' npm lockfile (integrity hashes,
/// versions, URLs), one package entry per paragraph.
fn json_chunks() -> Vec<String> {
    let lock = repo_file("e2e/clients/package-lock.json");
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in lock.lines() {
        if line.starts_with("    \"") && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push_str(line);
        cur.push('\n');
    }
    out.push(cur);
    out
}

/// Real text, then every `secret_every`-th paragraph a positive, until
/// 50 KB (the text's paragraphs are taken in order and joined as they
/// came, so a diff stays a diff).
fn build_typical(chunks: &[String], pos: &[String], secret_every: usize) -> String {
    let mut msg = String::with_capacity(TARGET + 4096);
    let mut i = 0;
    let mut next = 0;
    while msg.len() < TARGET {
        if secret_every > 0 && i % secret_every == secret_every - 1 {
            msg.push_str(&pos[(i / secret_every) % pos.len()]);
            msg.push_str("\n\n");
        } else {
            msg.push_str(&chunks[next % chunks.len()]);
            next += 1;
            if !msg.ends_with('\n') {
                msg.push_str("\n\n");
            }
        }
        i += 1;
    }
    msg
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
        "{label:<30} {:>6} B  median {:>8.1} µs  min {:>8.1} µs  max {:>8.1} µs  {:>7.1} MB/s  kinds={kinds}",
        msg.len(),
        median.as_secs_f64() * 1e6,
        times[0].as_secs_f64() * 1e6,
        times[iters - 1].as_secs_f64() * 1e6,
        mbps,
    );
    median
}

/// Print the costliest steps of redacting `msg` (summed over the
/// iterations, after a warm-up): the anchor scan and each rule that ran,
/// with the bytes its regex searched (the whole text, or windows around
/// its anchors) and the spans it accepted.
fn profile(label: &str, redactor: &Redactor, msg: &str) {
    for _ in 0..10 {
        black_box(redactor.redact(black_box(msg)));
    }
    let mut total: Vec<(Option<usize>, String, String, usize, usize, Duration)> = Vec::new();
    for _ in 0..iters() {
        for cost in redactor.profile(black_box(msg)) {
            match total.iter_mut().find(|t| t.0 == cost.rule && t.2 == cost.pattern) {
                Some(t) => t.5 += cost.time,
                None => total.push((
                    cost.rule,
                    cost.kind,
                    cost.pattern,
                    cost.bytes,
                    cost.spans,
                    cost.time,
                )),
            }
        }
    }
    let sum: Duration = total.iter().map(|t| t.5).sum();
    total.sort_by_key(|t| std::cmp::Reverse(t.5));
    let n = iters() as f64;
    println!(
        "{label}: {:.1} µs per message in {} steps",
        sum.as_secs_f64() * 1e6 / n,
        total.len()
    );
    for (rule, kind, pattern, bytes, spans, time) in total.iter().take(
        std::env::var("REDACT_BENCH_TOP")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(15),
    ) {
        let pattern: String = pattern.chars().take(70).collect();
        let rule = rule.map_or("-".to_string(), |r| r.to_string());
        println!(
            "  {:>7.1} µs  rule {rule:>3} {kind:<18} {bytes:>6} B  {spans:>2} spans  {pattern}",
            time.as_secs_f64() * 1e6 / n
        );
    }
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
    // (id for REDACT_BENCH_CASE, label, label of the summary line, message)
    let mut cases: Vec<(String, String, String, String)> = vec![
        (
            "with".into(),
            "50KB with secrets".into(),
            "with secrets".into(),
            build(&neg, &pos, 4),
        ),
        (
            "without".into(),
            "50KB without secrets".into(),
            "without secrets".into(),
            build(&neg, &pos, 0),
        ),
    ];
    let typical: [(&str, Vec<String>); 4] = [
        ("diff", diff_chunks()),
        ("log", log_chunks()),
        ("markdown", markdown_chunks()),
        ("json", json_chunks()),
    ];
    for (id, chunks) in &typical {
        assert!(!chunks.is_empty(), "no text for the {id} case");
        cases.push((
            id.to_string(),
            format!("{id} 50KB without secrets"),
            format!("{id} without secrets"),
            build_typical(chunks, &pos, 0),
        ));
        cases.push((
            format!("{id}+secrets"),
            format!("{id} 50KB with secrets"),
            format!("{id} with secrets"),
            build_typical(chunks, &pos, 4),
        ));
    }
    println!("redact bench: {} iterations per case", iters());
    // `REDACT_BENCH_CASE=<id>` runs one message only (`with`, `without`,
    // `diff`, `diff+secrets`, `log`, `log+secrets`, `markdown`, ...).
    let only = std::env::var("REDACT_BENCH_CASE").unwrap_or_default();
    let mut results = Vec::new();
    // `REDACT_BENCH_DUMP=DIR` writes each case's message and its
    // redaction there, to read what a case holds and what it loses.
    if let Ok(dir) = std::env::var("REDACT_BENCH_DUMP") {
        for (id, _, _, msg) in &cases {
            let redacted = redactor.redact(msg).text;
            for (suffix, body) in [("txt", msg.as_str()), ("redacted.txt", &*redacted)] {
                let path = format!("{dir}/{id}.{suffix}");
                std::fs::write(&path, body).unwrap_or_else(|e| panic!("write {path}: {e}"));
            }
        }
    }
    // `REDACT_BENCH_PROFILE=1`: where each case's time goes, rule by rule,
    // instead of the timing.
    if std::env::var_os("REDACT_BENCH_PROFILE").is_some() {
        for (id, label, _, msg) in &cases {
            if only.is_empty() || only == *id {
                profile(label, &redactor, msg);
            }
        }
        return;
    }
    for (id, label, summary, msg) in &cases {
        if only.is_empty() || only == *id {
            results.push((summary.as_str(), run(label, &redactor, msg)));
        }
    }
    assert!(!results.is_empty(), "no case named {only:?}");
    let target = Duration::from_millis(1);
    for (label, d) in results {
        let verdict = if d < target { "OK" } else { "OVER BUDGET" };
        println!("target < 1 ms per 50 KB message, {label}: {verdict}");
    }
}
