//! The spans a pass found: which survive (not over an existing
//! placeholder, not inside an allow-listed match) and how overlapping
//! ones merge.

use regex::Regex;

use super::PLACEHOLDER_PREFIX;

/// One span to replace.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub start: usize,
    pub end: usize,
    /// Index of the rule that produced it (lower = higher priority).
    pub rule: usize,
    /// Kind chosen by a classifying rule instead of the rule's own kind.
    pub kind: Option<&'static str>,
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
pub(super) fn drop_protected(text: &str, allow: &[Regex], spans: &mut Vec<Span>) {
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
pub(super) fn merge(mut spans: Vec<Span>) -> Vec<Span> {
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
