//! The keyword-anchored generic detector.
//!
//! A value is a secret when its *context* says so (the key name, the CLI
//! flag, the word before it) and its *shape* agrees. The context picks a
//! family and a strength:
//!
//! * strong keys (`password`, `*_token`, `*_secret`, `api_key`,
//!   `client_secret`, `account key`, ...) accept any plausible literal
//!   ([`plausible_secret_value`]: not a placeholder, template, path, code
//!   expression or prose);
//! * weak keys (a bare `key`, `*_key` with an unknown qualifier,
//!   `signature`) accept only token-shaped values ([`token_shaped`]: long,
//!   letters and digits, high entropy);
//! * `auth` keys (docker `config.json`, npm `_auth`) accept base64 that
//!   decodes to `user:password`, or a token-shaped value.
//!
//! The separator matters too: `key = v`, `key: v`, `--key v`, `setx KEY v`
//! are assignments; `the password is v` is prose and needs a stricter
//! value; `token v` (only whitespace) needs a token-shaped one.
//!
//! A bare value extends to the end of its token, never stopping at `&`,
//! `;`, `#` or `!` (`DB_PASSWORD=K9v#Xq2!mZ&7pLw` is one value), except
//! where the syntax says the value ended: `&` in a URL query, `;Name=` in a
//! connection string, `,name=` in a list, closing brackets that were never
//! opened, sentence punctuation.

use std::borrow::Cow;

use super::{Found, Hit, Prefilter, RuleSpec};
use crate::redact::decode::is_basic_credentials;
use crate::redact::entropy::Classes;
use crate::redact::heuristics::{ValueContext, key_words, plausible_secret_value, token_shaped};

/// Words a secret-bearing key ends with (regex alternation, case-insensitive).
/// `[ ]key` lets prose keys such as `API key` and `secret key` through;
/// `api_key`, `api-key`, `apiKey` are covered by the plain `key`.
pub const KEY_WORDS: &str = concat!(
    r"pass(?:word|wd|phrase|e)?|pwd|pw|psk|token|secret|credentials?|creds?|auth|authident|sig(?:nature)?|pat|jwt|",
    r"passwort|kennwort|contrase(?:ñ|n)a|senha|parola|wachtwoord|has(?:ł|l)o|lozinka|salasana|l(?:ö|o)senord|",
    r"adgangskode|heslo|jelsz(?:ó|o)|(?:ş|s)ifre|пароль|密码|密碼|パスワード|비밀번호|",
    r"(?:secret|token|password|key)[_\-.]?(?:base|value|data|b64|base64|hex|raw)|",
    r"(?:api|secret|private|access|auth|client|app|account|master|admin|service|signing|encryption|",
    r"license|subscription|storage|consumer|webhook|session|shared|hmac|jwt)[ ]key|key"
);

/// How strongly a key name says "the value is a secret".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// Any plausible literal.
    Strong,
    /// Only token-shaped values.
    Weak,
    /// Base64 `user:password`, or a token-shaped value.
    Auth,
}

/// Qualifiers that make `<q> key` a secret.
const STRONG_KEY_QUALIFIERS: &[&str] = &[
    "secret",
    "access",
    "auth",
    "encryption",
    "decryption",
    "signing",
    "master",
    "client",
    "app",
    "service",
    "shared",
    "hmac",
    "jwt",
    "session",
    "webhook",
    "account",
    "admin",
    "license",
    "subscription",
    "storage",
    "root",
    "deploy",
    "write",
    "sas",
    "crypto",
    "aes",
    "cipher",
    "vault",
    "bot",
    "integration",
    "ingest",
    "ingestion",
    "management",
];

/// Qualifiers that make `<q> key` something that is not a secret.
const PUBLIC_KEY_QUALIFIERS: &[&str] = &[
    "public",
    "pub",
    "publishable",
    "primary",
    "foreign",
    "sort",
    "partition",
    "cache",
    "idempotency",
    "routing",
    "shard",
    "row",
    "object",
    "map",
    "lookup",
    "dedup",
    "dedupe",
    "hash",
    "host",
    "gpg",
    "pgp",
    "kms",
    "ssh",
    "unique",
    "composite",
    "index",
    "table",
    "translation",
    "i18n",
    "site",
    "recaptcha",
    "s3",
    "bucket",
    "storage_account",
    "registry",
    "group",
    "label",
];

/// Password words in other languages (lower-case), matched at the end of
/// the key: agents write config and chat in every language.
const FOREIGN_PASSWORD_WORDS: &[&str] = &[
    "passwort",
    "kennwort",
    "contraseña",
    "contrasena",
    "senha",
    "parola",
    "wachtwoord",
    "hasło",
    "haslo",
    "lozinka",
    "salasana",
    "lösenord",
    "losenord",
    "adgangskode",
    "heslo",
    "jelszó",
    "jelszo",
    "şifre",
    "sifre",
    "пароль",
    "密码",
    "密碼",
    "パスワード",
    "비밀번호",
];

/// Trailing key words that describe an encoding, not a meaning.
const ENCODING_WORDS: &[&str] = &[
    "base",
    "value",
    "data",
    "b64",
    "base64",
    "hex",
    "raw",
    "plain",
    "plaintext",
    "str",
    "encoded",
];

/// Words ending in `pass` that are not passwords.
const NOT_PASS: &[&str] = &[
    "bypass",
    "compass",
    "surpass",
    "overpass",
    "underpass",
    "trespass",
    "encompass",
    "impass",
    "multipass",
    "firstpass",
    "onepass",
    "subpass",
    "renderpass",
];

/// The placeholder kind and strength for a key name, or `None` when the
/// name does not denote a secret (`password_hash`, `max_tokens`,
/// `public_key`, `monkey`).
pub fn family_of(key: &str) -> Option<(&'static str, Strength)> {
    use Strength::{Auth, Strong, Weak};
    let lower = key.to_lowercase();
    if FOREIGN_PASSWORD_WORDS.iter().any(|w| lower.ends_with(w)) {
        return Some(("password", Strong));
    }
    let mut words = key_words(key);
    // `secret_key_base`, `password_b64`, `client-key-data`: the last word
    // says how the secret is encoded, the one before says what it is.
    if words.len() > 1 && ENCODING_WORDS.contains(&words[words.len() - 1].as_str()) {
        words.pop();
    }
    let last = words.last().map_or("", String::as_str);
    let prev = if words.len() > 1 {
        words[words.len() - 2].as_str()
    } else {
        ""
    };
    if matches!(last, "pass" | "pw" | "pword" | "psk")
        || last.ends_with("password")
        || last.ends_with("passwd")
        || last.ends_with("passphrase")
        || last.ends_with("pwd")
        || (last.len() <= 8 && last.ends_with("pw"))
        || (last.ends_with("pass") && !NOT_PASS.contains(&last))
        || (last == "passe" && prev == "de")
        || (last.len() > 4 && last.ends_with("auth") && last != "oauth")
    {
        return Some(("password", Strong));
    }
    if last == "ident" && prev == "auth" || last == "authident" {
        return Some(("auth", Auth));
    }
    if last.ends_with("token") || matches!(last, "pat" | "jwt") {
        return Some(("token", Strong));
    }
    if last.ends_with("secret") || matches!(last, "credential" | "credentials" | "creds" | "cred") {
        // `existingSecret: my-release-db` names a secret, it is not one.
        if matches!(prev, "existing" | "ref" | "k8s" | "kubernetes" | "vault") {
            return None;
        }
        return Some(("secret", Strong));
    }
    if last == "auth" {
        return Some(("auth", Auth));
    }
    if matches!(last, "sig" | "signature") {
        return Some(("signature", Weak));
    }
    if last == "apikey" || (last == "key" && prev == "api") {
        return Some(("api_key", Strong));
    }
    if last == "privatekey" || (last == "key" && prev == "private") {
        return Some(("private_key", Strong));
    }
    if last == "key" {
        if STRONG_KEY_QUALIFIERS.contains(&prev) {
            return Some(("secret", Strong));
        }
        if PUBLIC_KEY_QUALIFIERS.contains(&prev) {
            return None;
        }
        return Some(("secret", Weak));
    }
    if let Some(q) = last.strip_suffix("key")
        && STRONG_KEY_QUALIFIERS.contains(&q)
    {
        return Some(("secret", Strong));
    }
    None
}

/// How the key and value were joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joint {
    /// `=`, `:`, `:=`, `=>`, a CLI flag, `setx NAME v`, an XML element.
    Assign,
    /// `the password is v`, `set the token to v`.
    Prose,
    /// `token v`: whitespace only.
    Space,
}

/// The value as found: its range in the haystack and whether it was quoted.
#[derive(Debug, Clone, Copy)]
pub struct Value {
    /// Start byte (inside the quotes, if any).
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
    /// Inside `"…"`, `'…'`, `` `…` `` or an XML element: a literal.
    pub quoted: bool,
}

/// Judge `value`, found after `key` (a range of the haystack) joined by
/// `joint`. `literal_hint` forces the config-file reading (XML elements,
/// Kubernetes env entries). Shared by every key/value rule.
pub fn judge(
    hay: &str,
    key: std::ops::Range<usize>,
    value: Value,
    joint: Joint,
    literal_hint: bool,
) -> Option<Found> {
    let (kind, strength) = family_of(&hay[key.clone()])?;
    if joint != Joint::Assign && strength != Strength::Strong {
        return None;
    }
    // `${DB_PASSWORD:-x}`, `${TOKEN:?must be set}`: shell parameter
    // expansion names a variable, it does not assign one. A kind inside an
    // existing `[REDACTED:api_token]` is not a key either (idempotence).
    if hay[..key.start].ends_with("${") || hay[..key.start].ends_with("[REDACTED:") {
        return None;
    }
    if kind == "secret" && strength == Strength::Weak && public_word_before(hay, key.start) {
        return None;
    }
    // psql interpolation `PASSWORD :'name'`: a variable, not a literal.
    if value.quoted && hay[..value.start].ends_with(":'") && hay[..value.start - 2].ends_with([' ', '\t']) {
        return None;
    }
    let end = if value.quoted {
        value.end
    } else {
        bare_end(hay, key.start, value.start, value.end)
    };
    let v = &hay[value.start..end];
    if v.is_empty() {
        return None;
    }
    let before = &hay[..key.start];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let prefix = before[line_start..].trim();
    let prefix = prefix.trim_end_matches(['"', '\'', '[']).trim();
    let sep = hay[key.end..value.start].trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
    let key_text = &hay[key.clone()];
    let env_style = sep == "=" && key_text.bytes().all(|c| !c.is_ascii_lowercase());
    // `;Password=…;` (connection strings) and `?key=…&` are config too.
    let structured = before.ends_with([';', '?', '&']);
    let literal = literal_hint
        || structured
        || matches!(
            prefix,
            "" | "export" | "-" | "set" | "ENV" | "env" | "setx" | "declare -x"
        )
        || env_style
        || prefix.starts_with('[');
    let next = hay[end..].bytes().next();
    let code = !value.quoted
        && !literal
        && joint == Joint::Assign
        && (matches!(next, Some(b',' | b')' | b';' | b'(' | b'['))
            || prefix.ends_with('(')
            || prefix.ends_with(','));
    let ctx = ValueContext {
        quoted: value.quoted,
        literal,
        code,
    };
    let accepted = match (joint, strength) {
        (Joint::Space | Joint::Prose, _) => {
            (token_shaped(v) || (v.len() >= 10 && Classes::of(v).mixed_alnum()))
                && plausible_secret_value(v, ctx)
        }
        (Joint::Assign, Strength::Strong) => plausible_secret_value(v, ctx),
        (Joint::Assign, Strength::Weak) => token_shaped(v),
        (Joint::Assign, Strength::Auth) => {
            if is_basic_credentials(v) {
                return Some(Found {
                    kind: "basic_auth",
                    range: value.start..end,
                });
            }
            // Plain `user:password` (yarn `npmAuthIdent`, bundler).
            let user_pass = v
                .split_once(':')
                .is_some_and(|(u, p)| !u.is_empty() && !u.contains('/') && plausible_secret_value(p, ctx));
            user_pass || token_shaped(v)
        }
    };
    accepted.then_some(Found {
        kind,
        range: value.start..end,
    })
}

/// The word before `key_start` (skipping spaces) is a public qualifier:
/// `public key: age1…`, `primary key abc`.
fn public_word_before(hay: &str, key_start: usize) -> bool {
    let before = hay[..key_start].trim_end_matches([' ', '\t', '_', '-']);
    let word_start = before
        .rfind(|c: char| !c.is_ascii_alphanumeric())
        .map_or(0, |i| i + 1);
    let word = before[word_start..].to_ascii_lowercase();
    PUBLIC_KEY_QUALIFIERS.contains(&word.as_str())
}

/// Where an unquoted value really ends, given the regex took every
/// non-space, non-quote character from `start` to `end`.
pub fn bare_end(hay: &str, key_start: usize, start: usize, end: usize) -> usize {
    let v = &hay[start..end];
    let bytes = v.as_bytes();
    let in_query = hay[..key_start].ends_with(['?', '&']);
    let mut cut = bytes.len();
    for (i, &b) in bytes.iter().enumerate() {
        let rest = &bytes[i + 1..];
        let stop = match b {
            // URL query: `&` and `#` are delimiters there (a literal one
            // would be percent-encoded).
            b'&' | b'#' if in_query => true,
            // Another `name=` follows: a connection string, a form body,
            // a `k=v,k=v` list. `&&` ends a shell command.
            b'&' | b';' | b',' => starts_assignment(rest) || (b == b'&' && rest.first() == Some(&b'&')),
            // Escaped line breaks inside a JSON string.
            b'\\' => matches!(rest.first(), Some(b'n' | b'r' | b't' | b'"')),
            _ => false,
        };
        if stop {
            cut = i;
            break;
        }
    }
    let mut v = &v[..cut];
    // Closing brackets never opened inside the value, and sentence or list
    // punctuation, end it.
    while let Some(last) = v.bytes().last() {
        let unbalanced = |open: u8, close: u8| {
            last == close
                && v.bytes().filter(|&c| c == open).count() < v.bytes().filter(|&c| c == close).count()
        };
        let trim = matches!(last, b',' | b';' | b'.' | b':' | b'\\')
            || unbalanced(b'(', b')')
            || unbalanced(b'[', b']')
            || unbalanced(b'{', b'}')
            || unbalanced(b'<', b'>');
        if !trim {
            break;
        }
        v = &v[..v.len() - 1];
    }
    start + v.len()
}

/// `Name=` or `Name =` at the start of `s` (1..=40 name characters).
fn starts_assignment(s: &[u8]) -> bool {
    let name = s
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b' '))
        .count();
    name > 0 && name <= 40 && s[0].is_ascii_alphabetic() && s.get(name) == Some(&b'=')
}

/// A value after its key, in named groups: `dq`, `sq`, `bq` (quoted, with
/// an optional Python string prefix `u`/`b`/`r`/`f`), `eq` (`\"…\"`
/// inside a JSON-escaped string), or `bare` (to the end of the token; a
/// JSON escape such as `\n` ends it too).
pub const VALUE: &str = concat!(
    r#"(?:[urbfURBF]{0,2}"(?P<dq>(?:[^"\\\n]|\\.)*)"|[urbfURBF]{0,2}'(?P<sq>[^'\n]*)'|`(?P<bq>[^`\n]*)`"#,
    r#"|\\"(?P<eq>(?:[^"\\\n]|\\[^"\n])*)\\""#,
    r#"|(?P<bare>[^\s"'`(\[{<\\][^\s"'`\\]*(?:\\[^nrt"\s\\][^\s"'`\\]*)*))"#
);

/// The generic rule's regex. Named groups: `fkey` (CLI flag), `skey`
/// (`set`/`setx NAME value`), `key` with `sep` (assignment, prose or
/// whitespace), then the value as `dq`, `sq`, `bq` or `bare`.
fn generic_regex() -> Cow<'static, str> {
    Cow::Owned(format!(
        concat!(
            r#"(?i)(?:(?:^|[\s"'(\[=,;|])--?(?P<fkey>[a-z0-9_\-]*(?:{k}))(?:=|[ \t]+)"#,
            r#"|\bsetx?[ \t]+(?:-[a-z]+[ \t]+)?(?P<skey>[a-z0-9_.\-]*(?:{k}))[ \t]+"#,
            r#"|(?P<key>[a-z0-9_.\-]*(?:{k}))["']?\]?[ \t]*"#,
            r#"(?P<sep>=>|:=|\?=|\+=|=|:[ \t]*&?'?[a-z_][a-z0-9_<>\[\]:]*[ \t]+=|:))"#,
            r#"[ \t]*{v}"#
        ),
        k = KEY_WORDS,
        v = VALUE
    ))
}

/// Strong secret words for prose and whitespace-separated forms.
const PROSE_KEYS: &str = concat!(
    r"pass(?:word|wd|phrase|wort)|pwd|token|secret|api[ _\-]?key|mot de passe|kennwort|contrase(?:ñ|n)a|",
    r"senha|parola|wachtwoord|has(?:ł|l)o|пароль|密码|パスワード|비밀번호|requirepass|masterauth"
);

/// The prose/whitespace form: a strong secret word, then whitespace, a
/// verb (`is`, `es`, `est`, `ist`), or up to 40 characters of filler
/// ending in `:` or a verb, then a token of 10+ characters of a token
/// alphabet. The value shape is in the regex itself so that ordinary
/// prose (`token refresh race`) never becomes a candidate.
fn prose_regex() -> String {
    format!(
        concat!(
            r#"(?i)(?P<key>{k})["'`]?(?P<gap>[ \t]+(?:is|was|to|as|es|est|ist|are|är|er)[ \t]+|[ \t]+"#,
            r#"|[^\n:=]{{0,40}}?(?:[ \t]*:|[ \t]+(?:is|was|es|est|ist|are))[ \t]+)(?:«[ \t]*|`)?"#,
            r#"(?P<bare>[A-Za-z0-9+/=_\-.~!@#$%^&*]{{10,}})"#
        ),
        k = PROSE_KEYS
    )
}

/// The value groups of a key/value regex as a [`Value`].
pub fn value_of(h: &Hit<'_>) -> Option<Value> {
    let caps = h.caps;
    for (name, quoted) in [
        ("dq", true),
        ("sq", true),
        ("bq", true),
        ("eq", true),
        ("bare", false),
    ] {
        if let Some(m) = caps.name(name) {
            return Some(Value {
                start: m.start(),
                end: m.end(),
                quoted,
            });
        }
    }
    None
}

fn classify(h: &Hit<'_>) -> Option<Found> {
    let caps = h.caps;
    let value = value_of(h)?;
    if let Some(flag) = caps.name("fkey") {
        // `--password -x`: the next thing is another flag, not a value.
        if !value.quoted && h.haystack[value.start..].starts_with('-') {
            return None;
        }
        return judge(h.haystack, flag.range(), value, Joint::Assign, false);
    }
    if let Some(key) = caps.name("skey") {
        return judge(h.haystack, key.range(), value, Joint::Assign, true);
    }
    let key = caps.name("key")?;
    let joint = match caps.name("sep") {
        Some(_) => Joint::Assign,
        None if caps.name("gap").is_some_and(|g| g.as_str().trim().is_empty()) => Joint::Space,
        None => Joint::Prose,
    };
    // The key must start a word: `one-time-password x` is not `password x`.
    if joint != Joint::Assign
        && h.haystack[..key.start()]
            .bytes()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return None;
    }
    judge(h.haystack, key.range(), value, joint, false)
}

/// The generic rules: assignment form, then prose form.
pub fn rules() -> Vec<RuleSpec> {
    vec![
        RuleSpec {
            kind: "secret",
            regex: generic_regex(),
            group: 0,
            entropy_min: None,
            prefilter: Prefilter::Keywords(&[
                "pass",
                "pwd",
                "pw",
                "psk",
                "token",
                "secret",
                "cred",
                "auth",
                "sig",
                "pat",
                "jwt",
                "key",
                "kennwort",
                "contrase",
                "senha",
                "parola",
                "wachtwoord",
                "hasło",
                "haslo",
                "lozinka",
                "salasana",
                "senord",
                "adgangskode",
                "heslo",
                "jelsz",
                "ifre",
                "пароль",
                "密码",
                "密碼",
                "パスワード",
                "비밀번호",
            ]),
            check: None,
            classify: Some(classify),
        },
        RuleSpec {
            kind: "secret",
            regex: Cow::Owned(prose_regex()),
            group: 0,
            entropy_min: None,
            prefilter: Prefilter::Keywords(&[
                "pass",
                "pwd",
                "token",
                "secret",
                "key",
                "kennwort",
                "contrase",
                "senha",
                "parola",
                "wachtwoord",
                "hasło",
                "haslo",
                "пароль",
                "密码",
                "パスワード",
                "비밀번호",
                "masterauth",
            ]),
            check: None,
            classify: Some(classify),
        },
    ]
}
