//! Literal defaults behind a lookup: the lookup names where the secret
//! should come from, the default is the secret itself.
//!
//! `jwtSecret: process.env.JWT_SECRET || "76aa…"`, `token = env.TOKEN ??
//! 'x…'`, `password = os.environ.get("X") or "…"`, compose's
//! `${POSTGRES_PASSWORD:-s3cret}`. The key before the lookup (or the
//! variable inside `${…}`) says what the default is.

use std::borrow::Cow;

use super::family::{Strength, family_of};
use super::generic::{ANY_KEY_WORD, KEY_VALUE_WINDOW, KEY_WORDS, assignment_follows};
use super::{Found, Hit, Memo, Prefilter, RuleSpec, Window};
use crate::redact::heuristics::{ValueContext, plausible_secret_value, token_shaped};

const DEFAULT: ValueContext = ValueContext {
    quoted: true,
    literal: true,
    code: false,
};

fn classify(h: &Hit<'_>) -> Option<Found> {
    let key = h.caps.name("key")?;
    let value = h
        .caps
        .name("dq")
        .or_else(|| h.caps.name("sq"))
        .or_else(|| h.caps.name("bare"))?;
    let (kind, strength) = family_of(key.as_str())?;
    let v = value.as_str();
    let ok = match strength {
        Strength::Strong | Strength::Auth => plausible_secret_value(v, DEFAULT),
        Strength::Weak => token_shaped(v),
    };
    (ok && !v.contains(char::is_whitespace)).then_some(Found {
        kind,
        range: value.range(),
    })
}

/// The fallback rule: `key = <lookup> || "literal"`, and `${KEY:-literal}`.
pub fn rules() -> Vec<RuleSpec> {
    vec![RuleSpec {
        kind: "secret",
        regex: fallback_regex(KEY_WORDS),
        group: 0,
        entropy_min: None,
        prefilter: Prefilter::Keywords(&["pass", "pwd", "token", "secret", "key", "auth", "cred"]),
        check: None,
        classify: Some(classify_any),
        window: Some(Window {
            filter: Some(fallback_follows),
            ..KEY_VALUE_WINDOW
        }),
        // Captures from a small regex, as for the generic rule.
        parse: Some(fallback_regex(ANY_KEY_WORD)),
    }]
}

/// The fallback rule's regex with `k` as the key-word alternation.
fn fallback_regex(k: &str) -> Cow<'static, str> {
    Cow::Owned(format!(
        concat!(
            r#"(?i)(?:(?P<key>(?-u:[a-z0-9_.\-])*(?:{k}))["']?[ \t]*(?:=|:|:=)[ \t]*"#,
            r#"(?-u:[a-z_$])[^\n|?,;]*?[ \t]*(?:\|\||\?\?|[ \t]or[ \t])[ \t]*"#,
            r#"(?:"(?P<dq>[^"\n]+)"|'(?P<sq>[^'\n]+)')"#,
            r#"|\$\{{(?P<vkey>(?-u:[a-z0-9_])*(?:{k}))(?:-|:-|=|:=)(?P<bare>[^}}\s"']+)\}})"#
        ),
        k = k
    ))
}

/// `key` is either the assigned key or the variable of `${VAR:-x}`.
fn classify_any(h: &Hit<'_>) -> Option<Found> {
    if h.caps.name("key").is_some() {
        return classify(h);
    }
    let key = h.caps.name("vkey")?;
    let value = h.caps.name("bare")?;
    let (kind, strength) = family_of(key.as_str())?;
    let v = value.as_str();
    let ok = match strength {
        Strength::Strong | Strength::Auth => plausible_secret_value(v, DEFAULT),
        Strength::Weak => token_shaped(v),
    };
    ok.then_some(Found {
        kind,
        range: value.range(),
    })
}

/// Necessary: the key is assigned (see [`assignment_follows`]) and a
/// fallback operator (`||`, `??`, ` or `) or a `${VAR:-…}` default
/// follows on its line.
fn fallback_follows(text: &str, start: usize, end: usize, memo: &Memo) -> bool {
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let rest = &text[end..line_end];
    // On the key's line only: a search back through the whole text per
    // occurrence was quadratic.
    // Byte scans, not substring searches: asked for every key-word
    // occurrence, and a `str` pattern search costs its set-up each time.
    let before = &text.as_bytes()[line_start..start];
    let rest = rest.as_bytes();
    let open_default = before
        .windows(2)
        .rposition(|w| w == b"${")
        .is_some_and(|i| !before[i..].contains(&b'}'));
    // `:-`, `:=`, `-`, `=`: the first two contain the last two.
    let default = open_default && rest.iter().any(|&c| c == b'-' || c == b'=');
    let fallback_operator =
        || rest.windows(2).any(|w| w == b"||" || w == b"??") || rest.windows(4).any(|w| w == b" or ");
    default || (fallback_operator() && assignment_follows(text, start, end, memo))
}
