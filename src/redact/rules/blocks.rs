//! Values written as a block on the lines after their key: YAML block
//! scalars (`password: |`, `token: >-`) and plain scalars continued on
//! the next, deeper line (`password:⏎  value`), heredocs (HCL and shell
//! `<<EOT` … `EOT`) and TOML multi-line strings (`key = """⏎…⏎"""`). The key says what the block is; the block is judged
//! as one value, with its line breaks removed.

use std::borrow::Cow;

use super::family::{Strength, family_of};
use super::generic::{ANY_KEY_WORD, KEY_WORDS};
use super::{Found, Hit, Memo, Prefilter, RuleSpec, Window};
use crate::redact::heuristics::{ValueContext, plausible_secret_value, token_shaped};

const BLOCK: ValueContext = ValueContext {
    quoted: true,
    literal: true,
    code: false,
};

/// Longest block taken as one value.
const MAX_BLOCK: usize = 8192;

/// Indentation width of the line starting at `start`.
fn indent_at(hay: &str, start: usize) -> usize {
    hay[start..]
        .bytes()
        .take_while(|c| *c == b' ' || *c == b'\t')
        .count()
}

fn classify(h: &Hit<'_>) -> Option<Found> {
    let hay = h.haystack;
    let key = h.caps.name("key")?;
    let (kind, strength) = family_of(key.as_str())?;
    let whole = h.caps.get(0).expect("group 0");
    let body_start = whole.end();
    let line_start = hay[..key.start()].rfind('\n').map_or(0, |i| i + 1);
    let delim = h.caps.name("delim").or_else(|| h.caps.name("tq"));
    // A plain `key:` with the value on the next lines must be a scalar,
    // not a map or a list under the key.
    // A YAML key starts its line (after indentation, a list's `- `, a
    // quote): `if not SECRET_KEY:` and `-> Token:` are code.
    let lead = hay[line_start..key.start()].trim_start_matches([' ', '\t', '-', '"', '\'']);
    if delim.is_none() && !lead.is_empty() {
        return None;
    }
    if h.caps.name("ind").is_none() && delim.is_none() {
        let next = hay[whole.end()..].trim_start();
        let first_line = next.split('\n').next().unwrap_or("").trim_end();
        if next.starts_with(['-', '#', '{', '[']) || first_line.contains(": ") || first_line.ends_with(':') {
            return None;
        }
    }
    let end = match delim {
        // Heredoc: up to the line that is the delimiter.
        Some(delim) => {
            let mut pos = body_start;
            loop {
                let line_end = hay[pos..].find('\n').map_or(hay.len(), |i| pos + i);
                let line = hay[pos..line_end].trim();
                let quotes = delim.as_str().starts_with(['"', '\'']);
                if line == delim.as_str() || (quotes && line.starts_with(delim.as_str())) {
                    break pos.saturating_sub(1).max(body_start);
                }
                if line_end >= hay.len() || line_end - body_start > MAX_BLOCK {
                    return None;
                }
                pos = line_end + 1;
            }
        }
        // Block scalar: the lines indented deeper than the key's.
        None => {
            let key_indent = indent_at(hay, line_start);
            let mut pos = body_start;
            let mut end = body_start;
            while pos < hay.len() && pos - body_start <= MAX_BLOCK {
                let line_end = hay[pos..].find('\n').map_or(hay.len(), |i| pos + i);
                let line = &hay[pos..line_end];
                if !line.trim().is_empty() {
                    if indent_at(hay, pos) <= key_indent {
                        break;
                    }
                    end = line_end;
                }
                pos = line_end + 1;
            }
            end
        }
    };
    let block = hay.get(body_start..end)?;
    let first = body_start + (block.len() - block.trim_start().len());
    let last = body_start + block.trim_end().len();
    if first >= last {
        return None;
    }
    let joined: String = hay[first..last].split_whitespace().collect();
    let ok = match strength {
        Strength::Strong | Strength::Auth => plausible_secret_value(&joined, BLOCK),
        Strength::Weak => joined.len() <= 1024 && token_shaped(&joined) || joined.len() > 1024,
    };
    ok.then_some(Found {
        kind,
        range: first..last,
    })
}

/// Necessary: the key before the anchor (`key: |`, `key:⏎`, `key = <<`,
/// `key = """`) names a secret.
fn secret_key_before(text: &str, start: usize, _end: usize, _memo: &Memo) -> bool {
    let before = text[..start].trim_end_matches([' ', '\t', '=', '"', '\'']);
    let key_start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .map_or(0, |(i, c)| i + c.len_utf8());
    key_start < before.len() && family_of(&before[key_start..]).is_some()
}

/// The block rule.
pub fn rules() -> Vec<RuleSpec> {
    vec![RuleSpec {
        kind: "secret",
        regex: blocks_regex(KEY_WORDS),
        group: 0,
        entropy_min: None,
        prefilter: Prefilter::Keywords(&[": |", ": >", ":\n", ":\r\n", "<<", "\"\"\"", "\'\'\'"]),
        check: None,
        classify: Some(classify),
        window: Some(Window {
            before: 256,
            after: 64,
            // The match ends with the key line's line break.
            multiline: true,
            filter: Some(secret_key_before),
        }),
        // Captures from a small regex, as for the generic rule.
        parse: Some(blocks_regex(ANY_KEY_WORD)),
    }]
}

/// The block rule's regex with `k` as the key-word alternation.
fn blocks_regex(k: &str) -> Cow<'static, str> {
    Cow::Owned(format!(
        concat!(
            r#"(?i)(?P<key>(?-u:[a-z0-9_.\-])*(?:{k}))["']?[ \t]*(?::[ \t]*(?P<ind>[|>][+\-]?[0-9]?)?"#,
            r#"|=[ \t]*<<-?[ \t]*["']?(?P<delim>(?-u:[A-Z_][A-Z0-9_]*))["']?"#,
            r#"|=[ \t]*(?P<tq>"""|'''))[ \t]*\r?\n"#
        ),
        k = k
    ))
}
