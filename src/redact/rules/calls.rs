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
use super::{Found, Hit, Memo, Prefilter, RuleSpec, Window, rule};
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
fn call_follows(text: &str, start: usize, _end: usize, _memo: &Memo) -> bool {
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
            r#"(?P<fn>[A-Za-z_][A-Za-z0-9_]*(?:(?:::|\.)[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*\((?P<args>(?:[^()\n]|\([^()\n]*\))+)\)"#,
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

/// Functions whose secret is a positional argument (0-based) although
/// neither their name nor a key says so: signing and MAC keys, database
/// logins. Matched on the end of the callee's dotted path.
const POSITIONAL: &[(&str, usize, &str)] = &[
    ("jwt.encode", 1, "jwt_secret"),
    ("jwt.decode", 1, "jwt_secret"),
    ("jwt.sign", 1, "jwt_secret"),
    ("jwt.verify", 1, "jwt_secret"),
    ("jsonwebtoken.sign", 1, "jwt_secret"),
    ("jsonwebtoken.verify", 1, "jwt_secret"),
    ("hmac.new", 0, "hmac_key"),
    ("hmac.New", 1, "hmac_key"),
    ("createHmac", 1, "hmac_key"),
    ("HMAC.digest", 1, "hmac_key"),
    ("HMAC.hexdigest", 1, "hmac_key"),
    ("HMAC.base64digest", 1, "hmac_key"),
    ("hash_hmac", 2, "hmac_key"),
    ("new_from_slice", 0, "hmac_key"),
    ("PDO", 2, "password"),
    ("mysqli", 2, "password"),
    ("mysqli_connect", 2, "password"),
    ("mysql_connect", 2, "password"),
    ("pg_connect", 0, "password"),
    ("DriverManager.getConnection", 2, "password"),
    ("MySQLdb.connect", 2, "password"),
    ("pymysql.connect", 2, "password"),
];

/// The top-level arguments of `args` (absolute byte ranges, trimmed),
/// split at commas outside quotes and brackets.
fn split_args(hay: &str, args: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
    let b = hay.as_bytes();
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0usize, 0u8, args.start);
    let mut i = args.start;
    while i < args.end {
        let c = b[i];
        if quote != 0 {
            if c == b'\\' {
                i += 1;
            } else if c == quote {
                quote = 0;
            }
        } else {
            match c {
                b'"' | b'\'' | b'`' => quote = c,
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                b',' if depth == 0 => {
                    out.push(start..i);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    out.push(start..args.end);
    out.into_iter()
        .map(|r| {
            let s = &hay[r.clone()];
            let lead = s.len() - s.trim_start().len();
            r.start + lead..r.start + s.trim_end().len()
        })
        .collect()
}

/// The contents of a string literal argument: `"…"`, `'…'`, `b"…"`,
/// Go's `[]byte("…")`, Rust's `b"…"`.
fn literal_in(hay: &str, arg: std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
    let mut a = &hay[arg.clone()];
    let mut start = arg.start;
    for wrapper in ["[]byte(", "Buffer.from(", "bytes("] {
        if let Some(rest) = a.strip_prefix(wrapper) {
            start += wrapper.len();
            a = rest.strip_suffix(')').unwrap_or(rest).trim_end();
        }
    }
    let prefix = a
        .bytes()
        .take_while(|c| matches!(c, b'b' | b'r' | b'u' | b'B' | b'R' | b'U'))
        .count();
    let q = *a.as_bytes().get(prefix)?;
    if !matches!(q, b'"' | b'\'') || a.len() < prefix + 2 || a.as_bytes()[a.len() - 1] != q {
        return None;
    }
    Some(start + prefix + 1..start + a.len() - 1)
}

fn classify_positional(h: &Hit<'_>) -> Option<Found> {
    let hay = h.haystack;
    let name = h.caps.name("fn")?.as_str().replace("::", ".");
    let name = name.as_str();
    let args = h.caps.name("args")?;
    let &(_, index, kind) = POSITIONAL
        .iter()
        .find(|(f, _, _)| name == *f || name.strip_suffix(f).is_some_and(|p| p.ends_with(['.', ':', ' '])))?;
    let arg = split_args(hay, args.range()).into_iter().nth(index)?;
    let lit = literal_in(hay, arg)?;
    let v = &hay[lit.clone()];
    (plausible_secret_value(v, QUOTED) && !v.contains(char::is_whitespace))
        .then_some(Found { kind, range: lit })
}

/// The positional-argument rule: a known signing, MAC or database-login
/// call and the literal at the secret's position.
pub fn positional_rules() -> Vec<RuleSpec> {
    vec![RuleSpec {
        kind: "secret",
        regex: Cow::Borrowed(
            r#"(?P<fn>(?:\bnew[ \t]+)?(?:[A-Za-z_][A-Za-z0-9_]*(?:\.|::))*(?:encode|decode|sign|verify|new|New|createHmac|digest|hexdigest|base64digest|hash_hmac|new_from_slice|PDO|mysqli|mysqli_connect|mysql_connect|pg_connect|getConnection|connect))[ \t]*\((?P<args>(?:[^()\n]|\((?:[^()\n]|\([^()\n]*\))*\))+)\)"#,
        ),
        group: 0,
        entropy_min: None,
        prefilter: Prefilter::Keywords(&[
            "jwt.",
            "jsonwebtoken.",
            "hmac",
            "pdo(",
            "mysqli",
            "mysql_connect",
            "pg_connect",
            "getconnection",
            "mysqldb.",
            "pymysql.",
            "new_from_slice",
        ]),
        check: None,
        classify: Some(classify_positional),
        window: Some(Window {
            before: 64,
            after: 1024,
            multiline: false,
            filter: None,
        }),
        parse: None,
    }]
}

/// Credentials handed over as a pair or typed into a password field:
/// `auth=("admin", "pw")` (requests, httpx, Elasticsearch `http_auth`),
/// `page.fill('#password', 'pw')`, `cy.get('#password').type('pw')`,
/// `find_element(By.ID, "password").send_keys("pw")`.
pub fn ui_and_pair_rules() -> Vec<RuleSpec> {
    vec![
        RuleSpec {
            window: Some(Window::line(64, 512)),
            ..rule(
                "password",
                r#"(?i)\b[a-z_]*auth["']?[ \t]*[=:][ \t]*[\(\[][ \t]*[urb]?(?:"[^"\n]*"|'[^'\n]*')[ \t]*,[ \t]*[urb]?(?:"([^"\n]+)"|'([^'\n]+)')[ \t]*[\)\]]"#,
                1,
                None,
                &["auth"],
                Some(quoted_password),
            )
        },
        rule(
            "password",
            concat!(
                r#"(?i)\.(?:fill|type|setValue)\([ \t]*(?:'[^'\n]*(?:pass|pwd|secret|token)[^'\n]*'|"[^"\n]*(?:pass|pwd|secret|token)[^"\n]*")"#,
                r#"[ \t]*,[ \t]*(?:"([^"\n]+)"|'([^'\n]+)'|`([^`\n]+)`)"#
            ),
            1,
            None,
            &[".fill(", ".type(", ".setvalue("],
            Some(quoted_password),
        ),
        rule(
            "password",
            concat!(
                r#"(?i)(?:pass|pwd|secret|token)[^\n()]*\)[ \t]*\.(?:fill|type|send_keys|sendKeys|setValue|val|press_sequentially|pressSequentially)"#,
                r#"\([ \t]*(?:"([^"\n]+)"|'([^'\n]+)'|`([^`\n]+)`)"#
            ),
            1,
            None,
            &[
                ".fill(",
                ".type(",
                ".send_keys(",
                ".sendkeys(",
                ".setvalue(",
                ".val(",
                ".press",
            ],
            Some(quoted_password),
        ),
    ]
}

/// A quoted literal in a password slot: any plausible value with no space.
fn quoted_password(h: &Hit<'_>) -> bool {
    let v = h.secret.as_str();
    !v.contains(char::is_whitespace) && plausible_secret_value(v, QUOTED)
}
