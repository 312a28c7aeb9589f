//! Baseline: gitleaks' default rules run on the same corpora as our engine.
//!
//! Ignored by default (it needs gitleaks' rule file, which we do not
//! vendor). Run with:
//!
//! ```text
//! GITLEAKS_TOML=/path/to/gitleaks/config/gitleaks.toml \
//!     cargo test --release --test redaction_gitleaks_baseline -- --ignored --nocapture
//! ```
//!
//! Each rule's `regex` is compiled with Rust `regex` (rules whose syntax it
//! cannot compile are skipped and counted), gated by its `keywords` like
//! gitleaks does, and its `entropy` floor applied to the secret (its
//! `secretGroup`, else group 1 when present, else the whole match).
//! Allow-lists are not applied. A positive counts as caught when every
//! listed secret is covered by the union of matched secret spans; a
//! negative is a false positive when any rule matches.
#![allow(clippy::print_stdout, reason = "a baseline report prints its table")]

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

struct GitleaksRule {
    regex: Regex,
    group: Option<usize>,
    keywords: Vec<String>,
    entropy: Option<f64>,
}

fn shannon(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for &b in s.as_bytes() {
        counts[usize::from(b)] += 1;
    }
    let len = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

fn load_rules(path: &str) -> (Vec<GitleaksRule>, usize, usize) {
    let raw = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let doc: toml::Value = toml::from_str(&raw).expect("gitleaks.toml parses");
    let mut rules = Vec::new();
    let mut skipped = 0;
    let mut total = 0;
    for r in doc.get("rules").and_then(|r| r.as_array()).expect("[[rules]]") {
        let Some(re) = r.get("regex").and_then(|v| v.as_str()) else {
            continue;
        };
        total += 1;
        let Ok(regex) = Regex::new(re) else {
            skipped += 1;
            continue;
        };
        rules.push(GitleaksRule {
            regex,
            group: r
                .get("secretGroup")
                .and_then(|v| v.as_integer())
                .map(|g| g as usize),
            keywords: r
                .get("keywords")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str())
                        .map(str::to_lowercase)
                        .collect()
                })
                .unwrap_or_default(),
            entropy: r.get("entropy").and_then(|v| v.as_float()),
        });
    }
    (rules, skipped, total)
}

/// Byte ranges gitleaks would report as secrets in `text`.
fn findings(rules: &[GitleaksRule], text: &str) -> Vec<(usize, usize)> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    for rule in rules {
        if !rule.keywords.is_empty() && !rule.keywords.iter().any(|k| lower.contains(k.as_str())) {
            continue;
        }
        for caps in rule.regex.captures_iter(text) {
            let m = match rule.group {
                Some(g) => caps.get(g),
                None if caps.len() > 1 => caps.get(1).or_else(|| caps.get(0)),
                None => caps.get(0),
            };
            let Some(m) = m else { continue };
            if m.is_empty() || rule.entropy.is_some_and(|e| shannon(m.as_str()) < e) {
                continue;
            }
            out.push((m.start(), m.end()));
        }
    }
    out
}

fn load(name: &str) -> Option<Vec<(String, String, Vec<String>)>> {
    let path = format!("{}/tests/data/redaction/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(path).ok()?;
    Some(
        raw.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("JSONL");
                let secrets = v["secrets"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s.as_str()).map(String::from).collect())
                    .unwrap_or_default();
                (
                    v["category"].as_str().expect("category").to_string(),
                    v["text"].as_str().expect("text").to_string(),
                    secrets,
                )
            })
            .collect(),
    )
}

/// Every occurrence of every secret lies inside a finding.
fn caught(text: &str, secrets: &[String], found: &[(usize, usize)]) -> bool {
    secrets.iter().all(|s| {
        text.match_indices(s.as_str())
            .all(|(at, _)| (at..at + s.len()).all(|b| found.iter().any(|&(x, y)| x <= b && b < y)))
    })
}

fn report(label: &str, rules: &[GitleaksRule], pos: &str, neg: &str) {
    let (Some(positives), Some(negatives)) = (load(pos), load(neg)) else {
        println!("\n== {label}: corpus files missing, skipped ==");
        return;
    };
    let mut recall: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (cat, text, secrets) in &positives {
        let t = recall.entry(cat.clone()).or_default();
        t.0 += 1;
        if caught(text, secrets, &findings(rules, text)) {
            t.1 += 1;
        }
    }
    let mut fp: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (cat, text, _) in &negatives {
        let t = fp.entry(cat.clone()).or_default();
        t.0 += 1;
        if !findings(rules, text).is_empty() {
            t.1 += 1;
        }
    }
    let rate = |(n, k): (usize, usize)| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    println!(
        "\n== gitleaks rules on the {label} corpus ==\n{:<24} {:>5} {:>8}",
        "positive family", "n", "recall"
    );
    for (cat, t) in &recall {
        println!("{cat:<24} {:>5} {:>8.3}", t.0, rate(*t));
    }
    let all = recall.values().fold((0, 0), |a, t| (a.0 + t.0, a.1 + t.1));
    println!("{:<24} {:>5} {:>8.3}", "OVERALL", all.0, rate(all));
    println!("\n{:<24} {:>5} {:>8}", "negative family", "n", "fp_rate");
    for (cat, t) in &fp {
        println!("{cat:<24} {:>5} {:>8.3}", t.0, rate(*t));
    }
    let all = fp.values().fold((0, 0), |a, t| (a.0 + t.0, a.1 + t.1));
    println!("{:<24} {:>5} {:>8.3}", "OVERALL", all.0, rate(all));
}

#[test]
#[ignore = "needs GITLEAKS_TOML pointing at gitleaks' config/gitleaks.toml"]
fn gitleaks_rules_baseline_on_every_corpus() {
    let path = std::env::var("GITLEAKS_TOML").expect("set GITLEAKS_TOML to gitleaks' config/gitleaks.toml");
    let (rules, skipped, total) = load_rules(&path);
    println!(
        "gitleaks rules: {total} with a regex, {} compiled, {skipped} skipped (syntax Rust regex rejects)",
        rules.len()
    );
    report("generated", &rules, "positive.jsonl", "negative.jsonl");
    report(
        "held-out",
        &rules,
        "heldout_positive.jsonl",
        "heldout_negative.jsonl",
    );
    report("blind", &rules, "blind_positive.jsonl", "blind_negative.jsonl");
    report("blind2", &rules, "blind2_positive.jsonl", "blind2_negative.jsonl");
}
