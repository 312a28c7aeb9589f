//! Corpus-level recall / false-positive measurement for the redaction engine.
//!
//! Positive cases must lose every listed secret and gain a placeholder;
//! negative cases must come back unchanged. Fails when overall or any
//! category's recall < 0.98 or false-positive rate > 0.02.
#![allow(
    clippy::print_stdout,
    reason = "tests report their tables and notices on stdout"
)]

use mcp_bridge::redact as crate_under_test;

use std::collections::BTreeMap;

use crate_under_test::{Redactor, redact};
use serde_json::Value;

const MIN_RECALL: f64 = 0.98;
const MAX_FP: f64 = 0.02;

struct Case {
    category: String,
    text: String,
    secrets: Vec<String>,
}

fn load(name: &str) -> Vec<Case> {
    let path = format!("{}/tests/data/redaction/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    raw.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("valid JSONL line");
            Case {
                category: v["category"].as_str().expect("category").to_string(),
                text: v["text"].as_str().expect("text").to_string(),
                secrets: v["secrets"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| s.as_str().expect("secret string").to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    total: usize,
    good: usize,
}

impl Tally {
    fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.good as f64 / self.total as f64
        }
    }
}

#[test]
fn corpus_recall_and_false_positives() {
    let redactor = Redactor::builtin();
    let positives = load("positive.jsonl");
    let negatives = load("negative.jsonl");
    assert!(
        positives.len() >= 200 && negatives.len() >= 200,
        "corpus too small"
    );

    let mut recall: BTreeMap<String, Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    for case in &positives {
        assert!(!case.secrets.is_empty(), "positive case without secrets");
        let out = redactor.redact(&case.text);
        let ok =
            out.text.contains("[REDACTED:") && case.secrets.iter().all(|s| !out.text.contains(s.as_str()));
        let t = recall.entry(case.category.clone()).or_default();
        t.total += 1;
        if ok {
            t.good += 1;
        } else {
            misses.push(format!("[{}] {}", case.category, out.text));
        }
    }

    let mut fp: BTreeMap<String, Tally> = BTreeMap::new();
    let mut mangled = Vec::new();
    for case in &negatives {
        let out = redactor.redact(&case.text);
        let t = fp.entry(case.category.clone()).or_default();
        t.total += 1;
        if out.changed() {
            t.good += 1; // "good" counts false positives here
            mangled.push(format!("[{}] {}", case.category, out.text));
        }
    }

    println!("\n{:<22} {:>5} {:>8}", "positive category", "n", "recall");
    let mut failed = false;
    for (cat, t) in &recall {
        failed |= t.rate() < MIN_RECALL;
        println!("{cat:<22} {:>5} {:>8.3}", t.total, t.rate());
    }
    let all_pos = Tally {
        total: positives.len(),
        good: recall.values().map(|t| t.good).sum(),
    };
    println!("{:<22} {:>5} {:>8.3}", "OVERALL", all_pos.total, all_pos.rate());
    println!("\n{:<22} {:>5} {:>8}", "negative category", "n", "fp_rate");
    for (cat, t) in &fp {
        failed |= t.rate() > MAX_FP;
        println!("{cat:<22} {:>5} {:>8.3}", t.total, t.rate());
    }
    let all_neg = Tally {
        total: negatives.len(),
        good: fp.values().map(|t| t.good).sum(),
    };
    println!("{:<22} {:>5} {:>8.3}", "OVERALL", all_neg.total, all_neg.rate());
    failed |= all_pos.rate() < MIN_RECALL || all_neg.rate() > MAX_FP;

    // Show what went wrong (redacted output only: the secrets are gone or
    // fake) so a failure is actionable.
    for m in misses.iter().take(10) {
        println!("MISS: {m}");
    }
    for m in mangled.iter().take(10) {
        println!("FALSE POSITIVE: {m}");
    }
    assert!(
        !failed,
        "recall/false-positive thresholds not met (see table above)"
    );
}

/// Property-style: on every corpus text and on simple mutations of it,
/// redaction is idempotent and never lets a listed secret through.
#[test]
fn idempotent_and_leak_free() {
    let mut texts: Vec<(String, Vec<String>)> = Vec::new();
    for case in load("positive.jsonl").into_iter().chain(load("negative.jsonl")) {
        let Case { text, secrets, .. } = case;
        // Mutations: wrapped in quotes/backticks, glued to punctuation,
        // doubled, CRLF line endings, non-ASCII prefix.
        texts.push((format!("`{text}`"), secrets.clone()));
        texts.push((format!("«{text}»,"), secrets.clone()));
        texts.push((format!("{text}\n{text}"), secrets.clone()));
        texts.push((text.replace('\n', "\r\n"), secrets.clone()));
        texts.push((text, secrets));
    }
    for (text, secrets) in &texts {
        let once = redact(text);
        let twice = redact(&once);
        assert_eq!(once, twice, "not idempotent for input of {} bytes", text.len());
        for s in secrets {
            assert!(!once.contains(s.as_str()), "secret survived: {once}");
        }
    }
}
