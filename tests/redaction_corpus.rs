//! Corpus-level recall / false-positive measurement for the redaction engine.
//!
//! Positive cases must lose every listed secret and gain a placeholder;
//! negative cases must come back unchanged. Three corpora, same JSONL shape
//! (`{"category", "text", "secrets"}`, category = family):
//!
//! | corpus | files | gate |
//! | --- | --- | --- |
//! | generated | `positive.jsonl`, `negative.jsonl` (written with the rules, `generate.py`) | overall and every family |
//! | held-out | `heldout_*.jsonl` (written from vendor formats by someone who never read the rules) | overall; families printed |
//! | blind | `blind_*.jsonl` (written without reading the rules; its misses were read and fixed by mechanism in session 5; optional) | overall; families printed |
//! | blind2 | `blind2_*.jsonl` (a third author, from vendor docs only; `BLIND2.md`; misses read and fixed by mechanism in session 5) | overall; families printed |
//!
//! Gates: recall >= 0.98, false-positive rate <= 0.02. Each corpus's table
//! is written straight to stderr (not through the test harness's capture),
//! so `cargo test --test redaction_corpus` always shows them.
//!
//! `REDACTION_SKIP_BLIND=1` skips the blind corpus: whoever tunes the rules
//! sets it, so they never see figures from the set reserved for the final,
//! untuned measurement.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use mcp_bridge::redact::{Redactor, redact};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const MIN_RECALL: f64 = 0.98;
const MAX_FP: f64 = 0.02;

struct Case {
    category: String,
    text: String,
    secrets: Vec<String>,
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/redaction")
        .join(name)
}

/// The cases of `name`, or `None` when the file does not exist.
fn load_optional(name: &str) -> Option<Vec<Case>> {
    let path = path(name);
    let raw = match std::fs::read_to_string(&path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    let cases = raw
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}:{}: invalid JSON: {e}", i + 1));
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
        .collect();
    Some(cases)
}

fn load(name: &str) -> Vec<Case> {
    load_optional(name).unwrap_or_else(|| panic!("missing corpus file {}", path(name).display()))
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

/// Whether every family must pass the gate, or only the overall figure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gate {
    Overall,
    EveryFamily,
}

/// Measure one corpus, print its table and return whether it met the gate.
fn measure(label: &str, positives: &[Case], negatives: &[Case], gate: Gate, show_cases: bool) -> bool {
    let redactor = Redactor::builtin();
    let mut recall: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut misses = Vec::new();
    for case in positives {
        assert!(!case.secrets.is_empty(), "{label}: positive case without secrets");
        let out = redactor.redact(&case.text);
        let ok =
            out.text.contains("[REDACTED:") && case.secrets.iter().all(|s| !out.text.contains(s.as_str()));
        let t = recall.entry(&case.category).or_default();
        t.total += 1;
        if ok {
            t.good += 1;
        } else {
            misses.push(format!("[{}] {}", case.category, out.text));
        }
    }
    let mut fp: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut mangled = Vec::new();
    for case in negatives {
        let out = redactor.redact(&case.text);
        let t = fp.entry(&case.category).or_default();
        t.total += 1;
        if out.changed() {
            t.good += 1; // "good" counts false positives here
            mangled.push(format!("[{}] {}", case.category, out.text));
        }
    }

    let mut report = String::new();
    let mut failed = false;
    report.push_str(&format!(
        "\n== {label} corpus ==\n{:<24} {:>5} {:>8}\n",
        "positive family", "n", "recall"
    ));
    for (cat, t) in &recall {
        failed |= gate == Gate::EveryFamily && t.rate() < MIN_RECALL;
        report.push_str(&format!("{cat:<24} {:>5} {:>8.3}\n", t.total, t.rate()));
    }
    let all_pos = Tally {
        total: positives.len(),
        good: recall.values().map(|t| t.good).sum(),
    };
    report.push_str(&format!(
        "{:<24} {:>5} {:>8.3}\n",
        "OVERALL",
        all_pos.total,
        all_pos.rate()
    ));
    report.push_str(&format!(
        "\n{:<24} {:>5} {:>8}\n",
        "negative family", "n", "fp_rate"
    ));
    for (cat, t) in &fp {
        failed |= gate == Gate::EveryFamily && t.rate() > MAX_FP;
        report.push_str(&format!("{cat:<24} {:>5} {:>8.3}\n", t.total, t.rate()));
    }
    let all_neg = Tally {
        total: negatives.len(),
        good: fp.values().map(|t| t.good).sum(),
    };
    report.push_str(&format!(
        "{:<24} {:>5} {:>8.3}\n",
        "OVERALL",
        all_neg.total,
        all_neg.rate()
    ));
    failed |= all_pos.rate() < MIN_RECALL || all_neg.rate() > MAX_FP;
    // Redacted output only: the secrets are gone or fake. The blind corpus
    // never shows its cases, only its figures.
    if show_cases {
        // `REDACTION_CORPUS_VERBOSE=1` lists every case, not the first 15.
        let limit = if std::env::var_os("REDACTION_CORPUS_VERBOSE").is_some() {
            usize::MAX
        } else {
            15
        };
        for m in misses.iter().take(limit) {
            report.push_str(&format!("MISS: {m}\n"));
        }
        for m in mangled.iter().take(limit) {
            report.push_str(&format!("FALSE POSITIVE: {m}\n"));
        }
    }
    // Straight to the stream, past the harness's capture: the tables are
    // the point of this test even when it passes.
    std::io::stderr().write_all(report.as_bytes()).expect("stderr");
    !failed
}

#[test]
fn generated_corpus_meets_recall_and_false_positive_gates_per_family() {
    let positives = load("positive.jsonl");
    let negatives = load("negative.jsonl");
    assert!(
        positives.len() >= 200 && negatives.len() >= 200,
        "corpus too small"
    );
    assert!(
        measure("generated", &positives, &negatives, Gate::EveryFamily, true),
        "generated corpus: recall/false-positive thresholds not met (see table above)"
    );
}

#[test]
fn heldout_corpus_meets_recall_and_false_positive_gates() {
    let positives = load("heldout_positive.jsonl");
    let negatives = load("heldout_negative.jsonl");
    assert!(
        positives.len() >= 100 && negatives.len() >= 100,
        "held-out corpus too small"
    );
    assert!(
        measure("held-out", &positives, &negatives, Gate::Overall, true),
        "held-out corpus: recall/false-positive thresholds not met (see table above)"
    );
}

/// The blind corpus, when present, is measured and gated like the held-out
/// one; absent (or skipped by `REDACTION_SKIP_BLIND`), this test does nothing.
///
/// No longer blind: session 5 read its misses (recall was 0.940) and
/// closed them by mechanism (docs/redaction.md), so it now gates as a
/// regression corpus, not as a measure of generalisation.
#[test]
fn blind_corpus_when_present_meets_recall_and_false_positive_gates() {
    if std::env::var_os("REDACTION_SKIP_BLIND").is_some() {
        std::io::stderr()
            .write_all(b"\n== blind corpus skipped (REDACTION_SKIP_BLIND) ==\n")
            .expect("stderr");
        return;
    }
    let (Some(positives), Some(negatives)) = (
        load_optional("blind_positive.jsonl"),
        load_optional("blind_negative.jsonl"),
    ) else {
        return;
    };
    assert!(
        measure("blind", &positives, &negatives, Gate::Overall, false),
        "blind corpus: recall/false-positive thresholds not met (see table above)"
    );
}

/// The second blind corpus (tests/data/redaction/BLIND2.md), written by a
/// third author from vendors' published formats. Measured once untuned
/// (recall 0.922); session 5 then read its misses and closed them by
/// mechanism, so, like the first, it now gates as a regression corpus.
#[test]
fn blind2_corpus_meets_recall_and_false_positive_gates() {
    if std::env::var_os("REDACTION_SKIP_BLIND").is_some() {
        return;
    }
    let (Some(positives), Some(negatives)) = (
        load_optional("blind2_positive.jsonl"),
        load_optional("blind2_negative.jsonl"),
    ) else {
        return;
    };
    assert!(
        measure("blind2", &positives, &negatives, Gate::Overall, true),
        "blind2 corpus: recall/false-positive thresholds not met (see table above)"
    );
}

/// On every generated and held-out text and on simple mutations of it,
/// redaction is idempotent and never lets a listed secret through (when it
/// caught it unmutated).
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
    for case in load("heldout_positive.jsonl")
        .into_iter()
        .chain(load("heldout_negative.jsonl"))
    {
        let once = redact(&case.text);
        assert_eq!(redact(&once), once, "not idempotent: [{}] {once}", case.category);
    }
}

/// Hiding tricks the detection views undo: a string concatenation or a
/// line continuation inside a value, a lookalike letter, a percent-encoded
/// or escaped character, an invisible character.
fn obfuscate(text: &str, rng: &mut StdRng) -> String {
    let boundaries: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
    // A random slice first, so a joint or a cut lands anywhere in a value.
    let (mut a, mut b) = (
        *boundaries.choose(rng).expect("boundary"),
        *boundaries.choose(rng).expect("boundary"),
    );
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    if rng.random_bool(0.5) {
        (a, b) = (0, text.len());
    }
    let mut out = text[a..b].to_string();
    for _ in 0..rng.random_range(1..=3) {
        let at: Vec<usize> = (0..=out.len()).filter(|&i| out.is_char_boundary(i)).collect();
        let i = *at.choose(rng).expect("boundary");
        let next = out[i..].chars().next();
        let trick = rng.random_range(0..7);
        let replaced = match (trick, next) {
            (0, _) => Some((0, "\" + \"".to_string())),
            (1, _) => Some((0, "\\\n".to_string())),
            (2, _) => Some((0, "\u{200b}".to_string())),
            (3, Some(c)) => {
                let look = match c {
                    'a' => Some('а'),
                    'e' => Some('е'),
                    'o' => Some('о'),
                    'p' => Some('р'),
                    'c' => Some('с'),
                    'x' => Some('х'),
                    _ => None,
                };
                look.map(|l| (c.len_utf8(), l.to_string()))
            }
            (4, Some(c)) if c.is_ascii_graphic() => Some((1, format!("%{:02X}", c as u32))),
            (5, Some(c)) if c.is_ascii_graphic() => Some((1, format!("\\u{:04x}", c as u32))),
            (6, Some(c)) if c.is_ascii_graphic() => Some((1, format!("&#{};", c as u32))),
            _ => None,
        };
        if let Some((len, with)) = replaced {
            out.replace_range(i..i + len, &with);
        }
    }
    out
}

/// Redaction stays idempotent when a detection view is what found the
/// secret: every positive of every corpus, sliced at random and hidden
/// with the tricks the views undo (a span found in a view can cross a
/// joint and change what the next pass sees; the redactor must settle
/// that itself).
#[test]
fn idempotent_on_texts_hidden_from_the_rules() {
    let redactor = Redactor::builtin();
    let mut rng = StdRng::seed_from_u64(0x0b5c_0001);
    let mut failures = Vec::new();
    let corpora = [
        "positive.jsonl",
        "heldout_positive.jsonl",
        "blind2_positive.jsonl",
    ];
    for case in corpora.iter().flat_map(|name| load(name)) {
        for _ in 0..4 {
            let text = obfuscate(&case.text, &mut rng);
            let once = redactor.redact(&text).text.into_owned();
            let twice = redactor.redact(&once).text.into_owned();
            if once != twice && failures.len() < 10 {
                failures.push(format!("input {text:?}\n once {once:?}\n twice {twice:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "not idempotent:\n{}", failures.join("\n"));
}
