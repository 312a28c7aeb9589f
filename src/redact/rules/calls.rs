//! Credentials passed as call arguments, keyed by the function's name.
//!
//! `basic_auth("user", Some("pw"))`, `.bearer_auth("…")`,
//! `set_password("…")`, `with_token("…")`, `Secret::new("…")`,
//! `login("user", "pw")`, `OpenAIClient("…")`: the name of the function
//! (or of the type a constructor builds) says what its last argument is,
//! the way a key name does for `key = value`. Getters and checks
//! (`get_secret("db-password")`, `verify_token(t)`) name a secret they look
//! up or test, so their arguments are never taken.

use std::borrow::Cow;

use super::family::{Strength, family_of};
use super::{Found, Hit, Prefilter, RuleSpec, Window};
use crate::redact::heuristics::{ValueContext, plausible_secret_value, token_shaped};

/// Leading verbs of functions that look a secret up, test, derive or
/// print it: their string arguments are names, hashes or messages.
const NOT_SETTERS: &[&str] = &[
    "get",
    "fetch",
    "read",
    "load",
    "lookup",
    "find",
    "retrieve",
    "resolve",
    "delete",
    "remove",
    "del",
    "has",
    "is",
    "validate",
    "check",
    "verify",
    "parse",
    "decode",
    "encode",
    "hash",
    "revoke",
    "rotate",
    "generate",
    "gen",
    "list",
    "describe",
    "encrypt",
    "decrypt",
    "sign",
    "print",
    "log",
    "mask",
    "redact",
    "require",
    "expect",
    "assert",
    "compare",
    "refresh",
    "invalidate",
    "clear",
    "reset",
    "forgot",
    "send",
    "request",
    "prompt",
    "ask",
    "input",
    "getpass",
    "env",
    "var",
    "getenv",
    "error",
    "raise",
    "throw",
    "warn",
    "debug",
    "info",
    "format",
    "t",
    "i18n",
    "translate",
    "gettext",
    "label",
    "placeholder",
    "route",
    "path",
    "url",
    // Error variants and states: `InvalidToken("signature mismatch")`.
    "invalid",
    "missing",
    "expired",
    "bad",
    "wrong",
    "unknown",
    "no",
    "empty",
    "malformed",
    "unauthorized",
];

/// Trailing words of constructors: the type before them names the value.
const CONSTRUCTORS: &[&str] = &["new", "from", "of", "create", "init", "build", "with"];

/// Functions whose last argument is a password although their name has no
/// secret word: `login("user", "pw")`.
const LOGIN_WORDS: &[&str] = &["login", "signin", "logon", "authenticate"];

/// Type names whose only argument is an API key: `OpenAI("…")`,
/// `stripe.Client("…")`, `Api("…")`.
const CLIENT_WORDS: &[&str] = &["client", "api", "sdk"];

const QUOTED: ValueContext = ValueContext {
    quoted: true,
    literal: true,
    code: false,
};

/// Every word of an identifier path, lower-cased (`Secret::new` ->
/// `secret`, `new`; `basic_auth` -> `basic`, `auth`).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The string literals among `args` (byte ranges of their contents,
/// absolute), and whether the last one is the last argument.
fn literals(hay: &str, args: std::ops::Range<usize>) -> (Vec<std::ops::Range<usize>>, bool) {
    let b = hay.as_bytes();
    let mut out = Vec::new();
    let mut i = args.start;
    let mut last_is_last = false;
    while i < args.end {
        let q = b[i];
        if q == b'"' || q == b'\'' {
            let start = i + 1;
            let mut j = start;
            while j < args.end && b[j] != q {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            if j >= args.end {
                break;
            }
            out.push(start..j);
            // Only closing brackets, blanks and conversions
            // (`.to_string()`, `.into()`) may follow the last argument.
            let mut rest = hay[j + 1..args.end].trim_start();
            while let Some(r) = rest.strip_prefix('.') {
                let name = r
                    .bytes()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    .count();
                rest = r[name..].strip_prefix("()").unwrap_or(&r[name..]).trim_start();
                if name == 0 {
                    break;
                }
            }
            last_is_last = rest
                .bytes()
                .all(|c| matches!(c, b')' | b' ' | b'\t' | b'?' | b'!'));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    (out, last_is_last)
}

fn classify(h: &Hit<'_>) -> Option<Found> {
    let hay = h.haystack;
    let name = h.caps.name("fn")?;
    let args = h.caps.name("args")?;
    // The function is the last segment of the path (`self.api.set_token`);
    // a constructor (`Secret::new`, `Password.from`) is named by its type.
    let segments: Vec<&str> = name
        .as_str()
        .split(['.', ':'])
        .filter(|s| !s.is_empty())
        .collect();
    let mut callee = *segments.last()?;
    if segments.len() > 1 && CONSTRUCTORS.contains(&callee.to_ascii_lowercase().as_str()) {
        callee = segments[segments.len() - 2];
    }
    let mut w = words(callee);
    if w.first().is_some_and(|v| NOT_SETTERS.contains(&v.as_str())) {
        return None;
    }
    if w.len() > 1 && w.last().is_some_and(|v| CONSTRUCTORS.contains(&v.as_str())) {
        w.pop();
    }
    let (lits, last_is_last) = literals(hay, args.range());
    let last = lits.last()?.clone();
    if !last_is_last {
        return None;
    }
    let v = &hay[last.clone()];
    // Messages, not credentials: code rarely hard-codes a secret with a space.
    if v.contains(char::is_whitespace) {
        return None;
    }
    let key = w.join("_");
    let (kind, ok) = match family_of(&key) {
        Some((kind, Strength::Strong | Strength::Auth)) => (kind, plausible_secret_value(v, QUOTED)),
        Some((kind, Strength::Weak)) => (kind, token_shaped(v)),
        None if w.last().is_some_and(|l| LOGIN_WORDS.contains(&l.as_str())) && lits.len() >= 2 => {
            ("password", plausible_secret_value(v, QUOTED))
        }
        None if w.last().is_some_and(|l| CLIENT_WORDS.contains(&l.as_str())) && lits.len() == 1 => {
            ("api_key", token_shaped(v))
        }
        None => return None,
    };
    ok.then_some(Found { kind, range: last })
}

/// A cheap necessary condition: the word the anchor is in is followed by
/// `(` (a call), possibly after `::new`/`.from`-style constructors.
fn call_follows(text: &str, start: usize, _end: usize) -> bool {
    let b = text.as_bytes();
    let mut q = start;
    while q < b.len() && (b[q].is_ascii_alphanumeric() || matches!(b[q], b'_' | b':' | b'.')) {
        q += 1;
    }
    while q < b.len() && matches!(b[q], b' ' | b'\t') {
        q += 1;
    }
    b.get(q) == Some(&b'(')
}

/// The call-argument rule.
pub fn rules() -> Vec<RuleSpec> {
    vec![RuleSpec {
        kind: "secret",
        regex: Cow::Borrowed(
            r#"(?P<fn>[A-Za-z_][A-Za-z0-9_]*(?:(?:::|\.)[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*\((?P<args>(?:[^()\n]|\([^()\n]*\)){1,400})\)"#,
        ),
        group: 0,
        entropy_min: None,
        prefilter: Prefilter::Keywords(&[
            "auth", "token", "pass", "pwd", "secret", "cred", "key", "login", "signin", "logon", "client",
            "api", "sdk", "bearer", "basic",
        ]),
        check: None,
        classify: Some(classify),
        window: Some(Window {
            before: 128,
            after: 1024,
            multiline: false,
            filter: Some(call_follows),
        }),
        parse: None,
    }]
}
