//! Secret redaction for every free-text field the bridge stores.
//!
//! Agents paste `.env` files, stack traces, curl commands and k8s manifests
//! into messages; anything that looks like a credential is replaced with
//! `[REDACTED:<kind>]` before the message is persisted, so a leaked store
//! does not leak the secrets agents happened to see.
//!
//! Design, in one pass over the text:
//! 1. a [`regex::RegexSet`] of cheap per-rule keyword patterns tells which
//!    rules can possibly match (for a message with no secret-ish words this
//!    is the only work done, and nothing is allocated for the output);
//! 2. only those rules' regexes are run; each candidate is checked for shape
//!    and entropy, and only the secret capture group is kept (the key name in
//!    `password=...` stays readable);
//! 3. candidates overlapping an existing placeholder or inside an allow-list
//!    match are dropped, overlapping/adjacent spans are merged (widest rule
//!    names the merged span; ties go to the earlier, more specific rule) and
//!    the output is built once.
//!
//! See `docs/redaction.md` for the rule list and configuration.

mod decode;
mod entropy;
mod heuristics;
mod rules;

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;

use crate::redact::rules::{Check, Classify, Hit, Prefilter, builtin_rules};

/// Start of every placeholder; text after it up to `]` is never re-redacted.
const PLACEHOLDER_PREFIX: &str = "[REDACTED:";

/// Lazy-DFA cache per built-in rule (bytes); see where rules are built.
const BUILTIN_DFA_CACHE: usize = 16 << 20;

/// Compiled-program size limit for user-supplied regexes, so a hostile or
/// careless config cannot make construction eat memory.
const CUSTOM_REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A user-defined rule from the config file (`[[redaction.rules]]`).
///
/// Lets operators catch organisation-specific secrets (internal ticket
/// tokens, license keys) without a code change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    /// Kind used in the placeholder, `[REDACTED:<name>]`; snake_case.
    pub name: String,
    /// Rust `regex` syntax. If it has capture groups, only the first
    /// participating group is redacted; otherwise the whole match.
    pub regex: String,
    /// Optional minimum Shannon entropy (bits per character, 0..=8) of the
    /// redacted span, to skip low-entropy look-alikes.
    #[serde(default)]
    pub entropy_min: Option<f64>,
}

/// The `[redaction]` table of `mcp-bridge.toml`.
///
/// Custom rules extend the built-ins; allow entries carve out known-safe
/// strings (test fixtures, public keys) that would otherwise be redacted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Extra rules, run after the built-in ones.
    #[serde(default)]
    pub rules: Vec<CustomRule>,
    /// Regexes; a would-be redaction that lies fully inside a match of any
    /// of them is kept.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// Why a [`Settings`] could not be turned into a [`Redactor`].
///
/// Messages name the offending rule or allow entry and say what to fix; they
/// never repeat the regex text, which may contain a literal secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `[[redaction.rules]]` entry is unusable.
    #[error("invalid redaction rule `{name}`: {reason}")]
    InvalidRule {
        /// The rule's `name` (or `#<index>` when the name itself is empty).
        name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An entry of `redaction.allow` is unusable.
    #[error("invalid redaction allow entry #{index}: {reason}")]
    InvalidAllow {
        /// Zero-based position in the `allow` list.
        index: usize,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// A compiled rule, built-in or custom.
#[derive(Clone)]
struct Rule {
    /// Checked before the rule runs when the set cannot gate it.
    gate: Option<Regex>,
    kind: Arc<str>,
    regex: Regex,
    group: usize,
    entropy_min: Option<f64>,
    check: Option<Check>,
    classify: Option<Classify>,
}

/// Everything a [`Redactor`] shares between clones.
struct Inner {
    rules: Vec<Rule>,
    /// Pattern `i` is the prefilter for `rules[i]`.
    prefilter: RegexSet,
    allow: Vec<Regex>,
}

/// Compiled redaction rules; cheap to clone (one `Arc`).
///
/// Build once at start-up ([`Redactor::builtin`] or [`Redactor::new`]) and
/// share: compilation costs milliseconds, redaction microseconds.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Inner>,
}

/// The result of redacting one text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted<'a> {
    /// The redacted text; borrowed (no allocation) when nothing was found.
    pub text: Cow<'a, str>,
    /// Sorted, deduplicated kinds of the placeholders inserted (never the
    /// secret values), for audit logs and metrics.
    pub kinds: Vec<String>,
}

impl Redacted<'_> {
    /// Whether anything was redacted.
    pub fn changed(&self) -> bool {
        matches!(self.text, Cow::Owned(_))
    }
}

/// Redact `text` with the built-in rules.
///
/// Convenience entry point for call sites without configuration and for
/// property/fuzz tests.
pub fn redact(text: &str) -> String {
    Redactor::builtin().redact(text).text.into_owned()
}

/// Every kind a built-in rule is registered under, sorted and
/// deduplicated (generic rules may also report the kind their key names:
/// `password`, `token`, `api_key`, ...). For tests that must cover every
/// rule, and for documentation.
pub fn builtin_kinds() -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = builtin_rules().iter().map(|r| r.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// Rewrite `\b` into the ASCII word boundary so the lazy DFA never has to
/// bail out on non-ASCII text.
fn ascii_boundaries(pattern: &str) -> String {
    pattern.replace(r"\b", r"(?-u:\b)")
}

fn keyword_pattern(keywords: &[&str]) -> String {
    let alts: Vec<String> = keywords.iter().map(|k| regex::escape(k)).collect();
    format!("(?i-u:{})", alts.join("|"))
}

static BUILTIN: LazyLock<Redactor> = LazyLock::new(|| {
    let mut rules = Vec::new();
    let mut prefilters = Vec::new();
    for spec in builtin_rules() {
        let pattern = ascii_boundaries(&spec.regex);
        // A larger lazy-DFA cache than the default: the generic rules'
        // automata are big, and a cache that keeps filling up makes the
        // engine fall back to its slow path on 50 KB messages.
        let regex = RegexBuilder::new(&pattern)
            .dfa_size_limit(BUILTIN_DFA_CACHE)
            .build()
            .expect("built-in rule compiles");
        // Only literal keywords go into the shared set: regexes with counted
        // repetitions multiply its automaton's states until the lazy DFA
        // gives up (measured: 140 ms per 50 KB). A rule gated by a pattern
        // checks it on its own (`gate`); a rule gated by itself always runs
        // (its own scan is the check). Both sit in the set as `(?:)`.
        let (set_pattern, gate) = match spec.prefilter {
            Prefilter::Keywords(words) => (keyword_pattern(words), None),
            Prefilter::Pattern(p) => (
                String::from("(?:)"),
                Some(Regex::new(&ascii_boundaries(p)).expect("built-in gate compiles")),
            ),
            Prefilter::Itself => (String::from("(?:)"), None),
        };
        prefilters.push(set_pattern);
        rules.push(Rule {
            gate,
            kind: Arc::from(spec.kind),
            regex,
            group: spec.group,
            entropy_min: spec.entropy_min,
            check: spec.check,
            classify: spec.classify,
        });
    }
    let prefilter = RegexSet::new(&prefilters).expect("built-in prefilter compiles");
    Redactor {
        inner: Arc::new(Inner {
            rules,
            prefilter,
            allow: Vec::new(),
        }),
    }
});

/// Patterns of the built-in prefilter set, in rule order.
fn builtin_prefilter_patterns() -> &'static [String] {
    BUILTIN.inner.prefilter.patterns()
}

/// Keep only the part of a `regex` error that describes the problem, not the
/// echoed pattern (which may contain a literal secret).
fn describe_regex_error(err: &regex::Error) -> String {
    match err {
        regex::Error::Syntax(msg) => {
            let detail = msg
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error:"))
                .map_or("syntax error", str::trim);
            format!("regex does not compile ({detail}); fix the `regex` value")
        }
        regex::Error::CompiledTooBig(_) => {
            "regex is too large once compiled; simplify it or split it into several rules".into()
        }
        _ => "regex does not compile; fix the `regex` value".into(),
    }
}

/// True when `re` can produce an empty match, probed on a few short texts.
fn matches_empty(re: &Regex) -> bool {
    ["", " ", "a", "a b", "0", "-", "\n", "ab12", "A.b"]
        .iter()
        .any(|probe| re.find_iter(probe).any(|m| m.is_empty()))
}

fn is_snake_case(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && !name.ends_with('_')
        && !name.contains("__")
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

fn compile_custom(re: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(re).size_limit(CUSTOM_REGEX_SIZE_LIMIT).build()
}

fn validate_rule(index: usize, rule: &CustomRule, seen: &mut HashSet<String>) -> Result<Rule, Error> {
    let invalid = |reason: String| Error::InvalidRule {
        name: if rule.name.is_empty() {
            format!("#{index}")
        } else {
            rule.name.clone()
        },
        reason,
    };
    if rule.name.is_empty() {
        return Err(invalid("`name` is empty; give the rule a snake_case name".into()));
    }
    if !is_snake_case(&rule.name) {
        return Err(Error::InvalidRule {
            // Only echo names that are short; they end up in the placeholder.
            name: rule.name.chars().take(64).collect(),
            reason:
                "`name` must be snake_case (a-z, 0-9, single `_`, starting with a letter, at most 64 chars)"
                    .into(),
        });
    }
    if !seen.insert(rule.name.clone()) {
        return Err(invalid(
            "another custom rule has the same `name`; names must be unique".into(),
        ));
    }
    if let Some(e) = rule.entropy_min
        && !(e.is_finite() && (0.0..=8.0).contains(&e))
    {
        return Err(invalid(
            "`entropy_min` must be between 0 and 8 (bits per character)".into(),
        ));
    }
    let regex = compile_custom(&rule.regex).map_err(|e| invalid(describe_regex_error(&e)))?;
    if matches_empty(&regex) {
        return Err(invalid(
            "regex can match the empty string; require at least one character (e.g. `+` instead of `*`)"
                .into(),
        ));
    }
    Ok(Rule {
        gate: None,
        kind: Arc::from(rule.name.as_str()),
        regex,
        group: 1,
        entropy_min: rule.entropy_min,
        check: None,
        classify: None,
    })
}

/// One span to replace.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// Index of the rule that produced it (lower = higher priority).
    rule: usize,
    /// Kind chosen by a classifying rule instead of the rule's own kind.
    kind: Option<&'static str>,
}

impl Redactor {
    /// The built-in rules only.
    ///
    /// Compiled on first use and cached for the life of the process; every
    /// call after that is an `Arc` clone.
    pub fn builtin() -> Redactor {
        BUILTIN.clone()
    }

    /// Built-in rules plus the custom rules and allow-list of `settings`.
    ///
    /// Everything is validated here so that a bad config fails at start-up
    /// with a message naming the rule, not at the first message.
    pub fn new(settings: &Settings) -> Result<Redactor, Error> {
        if settings.rules.is_empty() && settings.allow.is_empty() {
            return Ok(Redactor::builtin());
        }
        let base = &BUILTIN.inner;
        let mut rules = base.rules.clone();
        let mut prefilters: Vec<String> = builtin_prefilter_patterns().to_vec();
        let mut seen = HashSet::new();
        for (index, custom) in settings.rules.iter().enumerate() {
            let rule = validate_rule(index, custom, &mut seen)?;
            prefilters.push(custom.regex.clone());
            rules.push(rule);
        }
        let mut allow = Vec::with_capacity(settings.allow.len());
        for (index, pattern) in settings.allow.iter().enumerate() {
            let re = compile_custom(pattern).map_err(|e| Error::InvalidAllow {
                index,
                reason: describe_regex_error(&e),
            })?;
            if matches_empty(&re) {
                return Err(Error::InvalidAllow {
                    index,
                    reason: "regex can match the empty string; make it match the text to keep".into(),
                });
            }
            allow.push(re);
        }
        let prefilter = RegexSetBuilder::new(&prefilters)
            .size_limit(CUSTOM_REGEX_SIZE_LIMIT * 16)
            .build()
            .map_err(|e| Error::InvalidRule {
                name: settings.rules.last().map_or_else(String::new, |r| r.name.clone()),
                reason: describe_regex_error(&e),
            })?;
        Ok(Redactor {
            inner: Arc::new(Inner {
                rules,
                prefilter,
                allow,
            }),
        })
    }

    /// Replace every secret in `text` with `[REDACTED:<kind>]`.
    ///
    /// Idempotent: existing placeholders are never matched again. Borrows
    /// the input when nothing is found.
    pub fn redact<'a>(&self, text: &'a str) -> Redacted<'a> {
        let unchanged = Redacted {
            text: Cow::Borrowed(text),
            kinds: Vec::new(),
        };
        let inner = &*self.inner;
        let candidates = inner.prefilter.matches(text);
        if !candidates.matched_any() {
            return unchanged;
        }
        let mut spans = Vec::new();
        for idx in candidates.iter() {
            let rule = &inner.rules[idx];
            if rule.gate.as_ref().is_some_and(|g| !g.is_match(text)) {
                continue;
            }
            collect(idx, rule, text, &mut spans);
        }
        if spans.is_empty() {
            return unchanged;
        }
        drop_protected(text, &inner.allow, &mut spans);
        if spans.is_empty() {
            return unchanged;
        }
        let merged = merge(spans);
        let mut out = String::with_capacity(text.len());
        let mut kinds: Vec<String> = Vec::new();
        let mut last = 0;
        for span in &merged {
            let kind = span.kind.unwrap_or(&inner.rules[span.rule].kind);
            out.push_str(&text[last..span.start]);
            out.push_str(PLACEHOLDER_PREFIX);
            out.push_str(kind);
            out.push(']');
            last = span.end;
            if !kinds.iter().any(|k| k == kind) {
                kinds.push(kind.to_string());
            }
        }
        out.push_str(&text[last..]);
        kinds.sort();
        Redacted {
            text: Cow::Owned(out),
            kinds,
        }
    }
}

/// Run one rule and push its accepted spans.
///
/// Matches are searched one at a time rather than with `captures_iter`:
/// after a rejected match the search resumes at its last capture (the
/// value), not after the whole match, so a value that ran over a later
/// `key=value` (`X-Amz-Credential=…&X-Amz-Signature=…`, `KEY=a\nSECRET=b`
/// in a JSON string) cannot hide it. After an accepted one it resumes at
/// the end of the redacted span.
fn collect(idx: usize, rule: &Rule, text: &str, spans: &mut Vec<Span>) {
    let mut pos = 0;
    while pos <= text.len() {
        let Some(caps) = rule.regex.captures_at(text, pos) else {
            break;
        };
        let whole = caps.get(0).expect("group 0 always participates");
        let last_group = (1..caps.len()).rev().find_map(|g| caps.get(g));
        let accepted = judge_match(idx, rule, text, &caps, spans);
        let resume = match accepted {
            Some(end) => end,
            None => last_group.map_or(whole.end(), |m| m.start()),
        };
        // Always progress by at least one character.
        let mut min = whole.start() + 1;
        while min < text.len() && !text.is_char_boundary(min) {
            min += 1;
        }
        pos = resume.max(min);
    }
}

/// Decide one match; push its span and return the span's end when accepted.
fn judge_match(
    idx: usize,
    rule: &Rule,
    text: &str,
    caps: &regex::Captures<'_>,
    spans: &mut Vec<Span>,
) -> Option<usize> {
    let secret = if rule.group == 0 || caps.len() == 1 {
        caps.get(0)
    } else {
        (rule.group..caps.len())
            .find_map(|g| caps.get(g))
            .or_else(|| caps.get(0))
    }?;
    if secret.is_empty() {
        return None;
    }
    if let Some(min) = rule.entropy_min
        && entropy::shannon(secret.as_str()) < min
    {
        return None;
    }
    let hit = Hit {
        haystack: text,
        caps,
        secret,
    };
    if let Some(check) = rule.check
        && !check(&hit)
    {
        return None;
    }
    let (kind, start, end) = match rule.classify {
        Some(classify) => match classify(&hit) {
            Some(found) if !found.range.is_empty() => (Some(found.kind), found.range.start, found.range.end),
            _ => return None,
        },
        None => (None, secret.start(), secret.end()),
    };
    spans.push(Span {
        start,
        end,
        rule: idx,
        kind,
    });
    Some(end)
}

/// Spans of existing `[REDACTED:kind]` placeholders.
fn placeholder_spans(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find(PLACEHOLDER_PREFIX) {
        let start = from + pos;
        let body = start + PLACEHOLDER_PREFIX.len();
        let kind_len = text[body..]
            .bytes()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
            .count();
        let end = body + kind_len;
        if kind_len > 0 && text.as_bytes().get(end) == Some(&b']') {
            out.push((start, end + 1));
            from = end + 1;
        } else {
            from = body;
        }
    }
    out
}

/// Remove spans that touch an existing placeholder (idempotence) or lie
/// fully inside an allow-list match.
fn drop_protected(text: &str, allow: &[Regex], spans: &mut Vec<Span>) {
    if text.contains(PLACEHOLDER_PREFIX) {
        let placeholders = placeholder_spans(text);
        spans.retain(|s| !placeholders.iter().any(|&(a, b)| s.start < b && a < s.end));
    }
    if !allow.is_empty() && !spans.is_empty() {
        let allowed: Vec<(usize, usize)> = allow
            .iter()
            .flat_map(|re| re.find_iter(text).map(|m| (m.start(), m.end())))
            .collect();
        spans.retain(|s| !allowed.iter().any(|&(a, b)| a <= s.start && s.end <= b));
    }
}

/// Merge overlapping or adjacent spans. The merged span is named by its
/// widest member; ties go to the higher-priority (lower index) rule.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable_by_key(|s| (s.start, s.rule));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    // Width of the member that currently names each merged span.
    let mut namer_width: Vec<usize> = Vec::with_capacity(spans.len());
    for s in spans {
        let width = s.end - s.start;
        if let (Some(cur), Some(w)) = (out.last_mut(), namer_width.last_mut())
            && s.start <= cur.end
        {
            cur.end = cur.end.max(s.end);
            if width > *w || (width == *w && s.rule < cur.rule) {
                cur.rule = s.rule;
                *w = width;
            }
            continue;
        }
        out.push(s);
        namer_width.push(width);
    }
    out
}

#[cfg(test)]
mod tests;
