//! Secret redaction for every free-text field the bridge stores.
//!
//! Agents paste `.env` files, stack traces, curl commands and k8s manifests
//! into messages; anything that looks like a credential is replaced with
//! `[REDACTED:<kind>]` before the message is persisted, so a leaked store
//! does not leak the secrets agents happened to see.
//!
//! Design, in one pass over the text:
//! 1. one Aho-Corasick scan over every rule's literal anchors (`anchors`)
//!    tells which rules can possibly match (for a message with no
//!    secret-ish words this is the only work done, and nothing is
//!    allocated for the output);
//! 2. only those rules' regexes are run; each candidate is checked for shape
//!    and entropy, and only the secret capture group is kept (the key name in
//!    `password=...` stays readable);
//!    Text with invisible characters, lookalike letters, escapes or
//!    split values is also scanned, region by region, as a normalised
//!    view (`normalize`), whose spans map back to the original;
//! 3. candidates overlapping an existing placeholder or inside an allow-list
//!    match are dropped, overlapping/adjacent spans are merged (widest rule
//!    names the merged span; ties go to the earlier, more specific rule) and
//!    the output is built once.
//!
//! See `docs/redaction.md` for the rule list and configuration.

mod anchors;
mod config;
mod decode;
mod entropy;
mod heuristics;
mod lazy_regex;
mod normalize;
mod rules;
mod spans;
mod windows;

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use regex::Regex;

use crate::redact::anchors::{Anchor, Anchors};
pub use crate::redact::config::{CustomRule, Error, Settings};
use crate::redact::lazy_regex::LazyRegex;
use crate::redact::rules::{Check, Classify, Hit, Memo, Prefilter, Window, builtin_rules};
use crate::redact::spans::{Span, drop_protected, merge};
use crate::redact::windows::{same_shape, windows};

/// Start of every placeholder; text after it up to `]` is never re-redacted.
const PLACEHOLDER_PREFIX: &str = "[REDACTED:";

/// Lazy-DFA cache per built-in rule (bytes); see where rules are built.
const BUILTIN_DFA_CACHE: usize = 16 << 20;

/// A compiled rule, built-in or custom.
#[derive(Clone)]
struct Rule {
    /// What must occur in the text for the rule to run.
    anchor: Anchor,
    /// A regex that must match somewhere before the rule runs.
    gate: Option<LazyRegex>,
    kind: Arc<str>,
    regex: LazyRegex,
    group: usize,
    entropy_min: Option<f64>,
    check: Option<Check>,
    classify: Option<Classify>,
    /// Search only around anchor occurrences.
    window: Option<Window>,
    /// Splits a match of `regex` into its groups more cheaply.
    parse: Option<LazyRegex>,
}

/// Everything a [`Redactor`] shares between clones.
struct Inner {
    rules: Vec<Rule>,
    /// Which rules can match a text, from one scan.
    anchors: Anchors,
    allow: Vec<Regex>,
}

/// Redaction rules, compiled on first use; cheap to clone (one `Arc`).
///
/// Build once at start-up ([`Redactor::builtin`] or [`Redactor::new`]) and
/// share. Building validates every custom rule at once (a bad config fails
/// at start-up) but defers compiling the rule set, which costs tens of
/// milliseconds, to the first redaction: a server answers `initialize` and
/// `tools/list` without it, and one that never writes never pays it. Every
/// clone shares the one compiled set.
#[derive(Clone)]
pub struct Redactor {
    inner: Arc<Compiled>,
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

/// A rule set, compiled by its first user.
type Compiled = LazyLock<Inner, Box<dyn FnOnce() -> Inner + Send>>;

/// The built-in redactor. Creating it compiles nothing.
static BUILTIN: LazyLock<Redactor> = LazyLock::new(|| Redactor {
    inner: Arc::new(LazyLock::new(Box::new(compile_builtin))),
});

/// Compiles the built-in rules.
fn compile_builtin() -> Inner {
    let mut rules = Vec::new();
    for spec in builtin_rules() {
        let pattern = ascii_boundaries(&spec.regex);
        // A larger lazy-DFA cache than the default: the generic rules'
        // automata are big, and a cache that keeps filling up makes the
        // engine fall back to its slow path on 50 KB messages.
        let regex = LazyRegex::new(pattern, Some(BUILTIN_DFA_CACHE));
        // A rule gated by a pattern checks it on its own (`gate`); a rule
        // gated by itself always runs (its own scan is the check).
        let (anchor, gate) = match spec.prefilter {
            Prefilter::Keywords(words) => (Anchor::Keywords(words), None),
            Prefilter::Run(min) => (Anchor::Run(min), None),
            Prefilter::Pattern(p) => (Anchor::None, Some(LazyRegex::new(ascii_boundaries(p), None))),
            Prefilter::Itself => (Anchor::None, None),
        };
        rules.push(Rule {
            anchor,
            gate,
            kind: Arc::from(spec.kind),
            regex,
            group: spec.group,
            entropy_min: spec.entropy_min,
            check: spec.check,
            classify: spec.classify,
            window: rules::window_of(&spec),
            parse: spec
                .parse
                .map(|p| LazyRegex::new(ascii_boundaries(&p), Some(BUILTIN_DFA_CACHE))),
        });
    }
    assemble(rules, Vec::new())
}

/// Indexes the rules' anchors and wraps everything up.
fn assemble(rules: Vec<Rule>, allow: Vec<Regex>) -> Inner {
    let per_rule: Vec<Anchor> = rules.iter().map(|r| r.anchor).collect();
    let windowed: Vec<bool> = rules.iter().map(|r| r.window.is_some()).collect();
    Inner {
        anchors: Anchors::new(&per_rule, &windowed),
        rules,
        allow,
    }
}

impl Redactor {
    /// The built-in rules only.
    ///
    /// Compiled on the first redaction and cached for the life of the
    /// process; every call is an `Arc` clone.
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
        let mut seen = HashSet::new();
        let custom = settings
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| config::validate_rule(index, rule, &mut seen))
            .collect::<Result<Vec<_>, _>>()?;
        let allow = config::compile_allow(settings)?;
        let compile = move || {
            let mut rules = BUILTIN.inner.rules.clone();
            rules.extend(custom);
            assemble(rules, allow)
        };
        Ok(Redactor {
            inner: Arc::new(LazyLock::new(Box::new(compile))),
        })
    }

    /// Replace every secret in `text` with `[REDACTED:<kind>]`.
    ///
    /// Idempotent: existing placeholders are never matched again. Borrows
    /// the input when nothing is found.
    pub fn redact<'a>(&self, text: &'a str) -> Redacted<'a> {
        let (mut result, mut pass) = self.redact_pass(text, Scope::Whole);
        // Views make one pass not always enough: a view reaches a fixed
        // distance around what it undoes, so redacting brings more context
        // into it, and a span found in a view may cross a joint
        // (`"a" + "b"`) and change what the rules see. Pass again until
        // nothing changes (only texts with a view), so that redaction
        // stays idempotent. When every span came from the text itself, its
        // rules would find nothing new in the result (as for a text without
        // views); only the views are looked at again.
        for _ in 0..3 {
            if !(pass.viewed && result.changed()) {
                break;
            }
            let scope = if pass.view_added {
                Scope::Whole
            } else {
                Scope::ViewsOnly
            };
            let (again, next) = self.redact_pass(&result.text, scope);
            if !again.changed() {
                break;
            }
            let mut kinds = std::mem::take(&mut result.kinds);
            kinds.extend(again.kinds);
            kinds.sort();
            kinds.dedup();
            result = Redacted {
                text: Cow::Owned(again.text.into_owned()),
                kinds,
            };
            pass = next;
        }
        result
    }

    /// Where the time of one redaction pass over `text` goes: the anchor
    /// scan, then every rule that ran, in table order, over the text and
    /// then over each detection view. For `cargo bench --bench redact`
    /// (`REDACT_BENCH_PROFILE=1`); not a stable interface.
    #[doc(hidden)]
    pub fn profile(&self, text: &str) -> Vec<RuleCost> {
        let inner: &Inner = &self.inner;
        let mut costs = Vec::new();
        inner.spans(text, Some(&mut costs));
        for (_, view) in normalize::views(text) {
            inner.spans(&view.text, Some(&mut costs));
        }
        costs
    }

    /// One redaction pass over `scope`, and what the views did in it.
    fn redact_pass<'a>(&self, text: &'a str, scope: Scope) -> (Redacted<'a>, Pass) {
        let unchanged = Redacted {
            text: Cow::Borrowed(text),
            kinds: Vec::new(),
        };
        let inner: &Inner = &self.inner;
        let mut spans = match scope {
            Scope::Whole => inner.spans(text, None),
            Scope::ViewsOnly => Vec::new(),
        };
        let from_text = spans.len();
        // Invisible characters, lookalike letters and percent-encoded
        // syntax hide secrets from the rules: run them again on a view
        // without those, and map what they find back.
        let views = normalize::views(text);
        let viewed = !views.is_empty();
        for (offset, view) in views {
            spans.extend(inner.spans(&view.text, None).into_iter().map(|s| Span {
                start: offset + view.map[s.start],
                end: offset + view.map[s.end],
                ..s
            }));
        }
        let (in_text, in_views) = spans.split_at(from_text);
        let mut pass = Pass {
            viewed,
            view_added: in_views
                .iter()
                .any(|v| !in_text.iter().any(|t| t.start <= v.start && v.end <= t.end)),
        };
        if spans.is_empty() {
            return (unchanged, pass);
        }
        drop_protected(text, &inner.allow, &mut spans);
        if spans.is_empty() {
            pass.view_added = false;
            return (unchanged, pass);
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
        (
            Redacted {
                text: Cow::Owned(out),
                kinds,
            },
            pass,
        )
    }
}

/// What a redaction pass runs the rules on.
#[derive(Clone, Copy)]
enum Scope {
    /// The text and its detection views.
    Whole,
    /// Only the detection views (the text's own spans are already
    /// placeholders).
    ViewsOnly,
}

/// What the detection views did in one pass.
#[derive(Clone, Copy)]
struct Pass {
    /// The text had a view.
    viewed: bool,
    /// A view found a span the text's own rules did not cover.
    view_added: bool,
}

/// What one step of a redaction pass cost (see [`Redactor::profile`]).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct RuleCost {
    /// The rule's index in the table; `None` for the anchor scan.
    pub rule: Option<usize>,
    /// The rule's kind.
    pub kind: String,
    /// The rule's pattern (empty for the anchor scan).
    pub pattern: String,
    /// Bytes its regex searched (whole text or windows).
    pub bytes: usize,
    /// Spans it accepted.
    pub spans: usize,
    /// Wall-clock time, judging included.
    pub time: std::time::Duration,
}

impl Inner {
    /// Every span the rules accept in `text`, unmerged; with `profile`,
    /// also what each step cost.
    fn spans(&self, text: &str, mut profile: Option<&mut Vec<RuleCost>>) -> Vec<Span> {
        let inner = self;
        let scan = profile.is_some().then(std::time::Instant::now);
        let found = inner.anchors.candidates(text);
        if let (Some(costs), Some(t)) = (profile.as_deref_mut(), scan) {
            costs.push(RuleCost {
                rule: None,
                kind: "anchor scan".into(),
                pattern: String::new(),
                bytes: text.len(),
                spans: 0,
                time: t.elapsed(),
            });
        }
        let mut spans = Vec::new();
        let memo = Memo::default();
        // Run rules share their anchors (the long token runs) and their
        // window shape: their windows are computed once.
        let mut run_windows: Option<(Window, Vec<(usize, usize)>)> = None;
        for (idx, rule) in inner.rules.iter().enumerate() {
            if !found.run[idx] {
                continue;
            }
            let started = profile.is_some().then(std::time::Instant::now);
            let before = spans.len();
            let mut searched = 0;
            // A gated rule's windows open around the gate's matches.
            let hits = match &rule.gate {
                Some(gate) => {
                    let gate_hits: Vec<(usize, usize)> =
                        gate.find_iter(text).map(|m| (m.start(), m.end())).collect();
                    if gate_hits.is_empty() {
                        continue;
                    }
                    gate_hits
                }
                None => found.hits(idx),
            };
            match rule.window {
                Some(window) if !hits.is_empty() => {
                    let shared = found.on_runs(idx) && window.filter.is_none();
                    let ranges = match &run_windows {
                        Some((w, ranges)) if shared && same_shape(w, &window) => ranges.clone(),
                        _ => {
                            let ranges = windows(text, &hits, window, &memo);
                            if shared {
                                run_windows = Some((window, ranges.clone()));
                            }
                            ranges
                        }
                    };
                    for (lo, hi) in ranges {
                        searched += hi - lo;
                        collect(idx, rule, text, lo..hi, &memo, &mut spans);
                    }
                }
                _ => {
                    searched = text.len();
                    collect(idx, rule, text, 0..text.len(), &memo, &mut spans);
                }
            }
            if let (Some(costs), Some(t)) = (profile.as_deref_mut(), started) {
                costs.push(RuleCost {
                    rule: Some(idx),
                    kind: rule.kind.to_string(),
                    pattern: rule.regex.as_str().to_string(),
                    bytes: searched,
                    spans: spans.len() - before,
                    time: t.elapsed(),
                });
            }
        }
        spans
    }
}

/// Run one rule over `range` of `text` and push its accepted spans.
///
/// Matches are searched one at a time rather than with `captures_iter`:
/// after a rejected match the search resumes at its last capture (the
/// value), not after the whole match, so a value that ran over a later
/// `key=value` (`X-Amz-Credential=…&X-Amz-Signature=…`, `KEY=a\nSECRET=b`
/// in a JSON string) cannot hide it. After an accepted one it resumes at
/// the end of the redacted span.
fn collect(
    idx: usize,
    rule: &Rule,
    text: &str,
    range: std::ops::Range<usize>,
    memo: &Memo,
    spans: &mut Vec<Span>,
) {
    // Slicing the end keeps the offsets; the checks still see all of `text`.
    let hay = &text[..range.end];
    let mut pos = range.start;
    while pos <= hay.len() {
        let Some(caps) = search(rule, hay, pos) else {
            break;
        };
        let whole = caps.get(0).expect("group 0 always participates");
        let last_group = (1..caps.len()).rev().find_map(|g| caps.get(g));
        let accepted = judge_match(idx, rule, text, &caps, memo, spans);
        let resume = match accepted {
            Some(end) => end,
            None => last_group.map_or(whole.end(), |m| m.start()),
        };
        // Always progress by at least one character.
        let mut min = whole.start() + 1;
        while min < hay.len() && !hay.is_char_boundary(min) {
            min += 1;
        }
        pos = resume.max(min);
    }
}

/// The next match of `rule` at or after `pos`, with its groups.
fn search<'h>(rule: &Rule, hay: &'h str, pos: usize) -> Option<regex::Captures<'h>> {
    let Some(parse) = &rule.parse else {
        return rule.regex.captures_at(hay, pos);
    };
    let m = rule.regex.find_at(hay, pos)?;
    match parse.captures_at(&hay[..m.end()], m.start()) {
        Some(caps) if caps.get(0).is_some_and(|g| g.range() == m.range()) => Some(caps),
        _ => rule.regex.captures_at(hay, m.start()),
    }
}

/// Decide one match; push its span and return the span's end when accepted.
fn judge_match(
    idx: usize,
    rule: &Rule,
    text: &str,
    caps: &regex::Captures<'_>,
    memo: &Memo,
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
        memo,
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod lazy_tests {
    /// Built-in patterns compile only when first searched, so a broken one
    /// would otherwise surface in production at its first anchor hit.
    #[test]
    fn every_builtin_pattern_compiles() {
        let inner = super::compile_builtin();
        for (i, rule) in inner.rules.iter().enumerate() {
            let kind = &rule.kind;
            rule.regex
                .try_compile()
                .unwrap_or_else(|e| panic!("rule {i} ({kind}): {e}"));
            if let Some(gate) = &rule.gate {
                gate.try_compile()
                    .unwrap_or_else(|e| panic!("gate of rule {i} ({kind}): {e}"));
            }
            if let Some(parse) = &rule.parse {
                parse
                    .try_compile()
                    .unwrap_or_else(|e| panic!("parse of rule {i} ({kind}): {e}"));
            }
        }
    }
}
