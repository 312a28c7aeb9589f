//! Secrets that are only visible once decoded, or only by the command
//! that printed them.
//!
//! * base64 near a mention of base64 (`| base64`, `ENV_FILE_B64`,
//!   "base64 encoded:"): decoded, it is `user:password`, or text that
//!   itself holds a secret (a whole `.env`), so the blob is one;
//! * `echo -n 'user:pass' | base64`: what is being encoded;
//! * the output line of a command that prints a secret
//!   (`kubectl get secret … -o jsonpath='{.data.password}'`,
//!   `vault kv get -field=password`, `gh auth token`, …).

use std::sync::LazyLock;

use regex::Regex;

use super::context::password_literal;
use super::{Found, Hit, Memo, Prefilter, RuleSpec, Window, rule};
use crate::redact::decode::decode_text;
use crate::redact::entropy::Classes;
use crate::redact::heuristics::{ValueContext, plausible_secret_value};

const LINE: ValueContext = ValueContext {
    quoted: true,
    literal: true,
    code: false,
};

/// Decoded text this long or longer is scanned for secrets of its own.
const MIN_DECODED: usize = 8;

/// A base64 blob near a mention of base64: `user:password` once decoded,
/// or decoded text that the built-in rules would redact.
fn classify_blob(h: &Hit<'_>) -> Option<Found> {
    let v = h.secret.as_str();
    let range = h.secret.range();
    let text = decode_text(v)?;
    if user_pass(&text) {
        return Some(Found {
            kind: "basic_auth",
            range,
        });
    }
    if text.len() < MIN_DECODED {
        return None;
    }
    crate::redact::Redactor::builtin()
        .redact(&text)
        .changed()
        .then_some(Found {
            kind: "encoded_secret",
            range,
        })
}

/// `user:password` and nothing else: a short single token whose user is
/// a name (not JSON, not a URL, not a sentence).
fn user_pass(text: &str) -> bool {
    let Some((user, pass)) = text.split_once(':') else {
        return false;
    };
    text.len() <= 256
        && !text.contains(char::is_whitespace)
        && (1..=64).contains(&user.len())
        && user
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'@' | b'+' | b'-'))
        && !pass.starts_with("//")
        && plausible_secret_value(pass, LINE)
}

/// What is piped into `base64`: `user:password`, or a value shaped like
/// a password (letters with digits or symbols, no spaces).
fn encoded_input(h: &Hit<'_>) -> bool {
    let v = h.secret.as_str();
    let whole = h.caps.get(0).expect("group 0");
    let after = h.haystack[whole.end()..].trim_start_matches([' ', '\t']);
    // `| base64 -d` decodes: its input is the encoded form, not a secret.
    if v.contains(char::is_whitespace)
        || after.starts_with("-d")
        || after.starts_with("-D")
        || after.starts_with("--decode")
    {
        return false;
    }
    if let Some((user, pass)) = v.split_once(':')
        && !user.is_empty()
        && !user.contains('/')
    {
        return plausible_secret_value(pass, LINE);
    }
    let c = Classes::of(v);
    password_literal(h) && (c.digit || c.symbol) && (c.upper || c.lower)
}

/// Commands whose output is a secret.
static PRINTS_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)\bkubectl\b.*\bsecrets?\b.*(?:jsonpath|template).*\.data\b",
        r"|\bkubectl\b.*\bsecrets?\b.*\|\s*base64\s+(?:-d|--decode|-D)\b",
        r"|(?:secret|password|passwd|token|credential)[^\n]*\|\s*base64\s+(?:-d|--decode|-D)\b",
        r"|\bvault\s+(?:kv\s+get|read)\b.*-field[= ]",
        r"|\baws\s+secretsmanager\s+get-secret-value\b.*--output\s+text",
        r"|\baws\s+ssm\s+get-parameters?\b.*--with-decryption.*--output\s+text",
        r"|\baws\s+ecr\s+get-login-password\b",
        r"|\bop\s+read\b|\bop\s+item\s+get\b.*--fields",
        r"|\bgh\s+auth\s+token\b|\bheroku\s+auth:token\b|\bglab\s+auth\s+token\b",
        r"|\bgcloud\s+auth\s+(?:application-default\s+)?print-(?:access|identity)-token\b",
        r"|\bgcloud\s+secrets\s+versions\s+access\b",
        r"|\baz\s+keyvault\s+secret\s+show\b.*(?:-o|--output)\s+tsv",
        r"|\baz\s+account\s+get-access-token\b.*(?:-o|--output)\s+tsv",
        r"|\bdoppler\s+secrets\s+get\b.*--plain",
        r"|\bsecurity\s+find-(?:generic|internet)-password\b.*\s-w\b",
        r"|\bpass\s+show\b|\bbw\s+get\s+password\b|\bcredstash\s+get\b|\bsops\s+-d\b.*--extract",
    ))
    .expect("valid")
});

/// Necessary: the anchor's line is a secret-printing command.
fn printing_line(text: &str, start: usize, _end: usize, _memo: &Memo) -> bool {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    line_end < text.len() && PRINTS_SECRET.is_match(&text[line_start..line_end])
}

/// The line after a secret-printing command, when it is one token.
fn command_output(h: &Hit<'_>) -> Option<Found> {
    let cmd = h.caps.name("cmd")?.as_str();
    let out = h.caps.name("out")?;
    let v = out.as_str();
    if v.starts_with(['$', '{', '[', '#', '>']) || v.ends_with(':') || !PRINTS_SECRET.is_match(cmd) {
        return None;
    }
    plausible_secret_value(v, LINE).then_some(Found {
        kind: "secret",
        range: out.range(),
    })
}

/// The rules of this file.
pub fn rules() -> Vec<RuleSpec> {
    vec![
        RuleSpec {
            kind: "encoded_secret",
            regex: r"(?:^|[^A-Za-z0-9+/=_\-])([A-Za-z0-9+/_\-]{12,}={0,2})(?:[^A-Za-z0-9+/=_\-]|$)".into(),
            group: 1,
            entropy_min: None,
            prefilter: Prefilter::Keywords(&["base64", "b64", "base 64"]),
            check: None,
            classify: Some(classify_blob),
            window: Some(Window {
                before: 256,
                after: 768,
                multiline: true,
                filter: None,
            }),
            parse: None,
        },
        rule(
            "password",
            r#"\b(?:echo|printf)[ \t]+(?:-[ne]+[ \t]+)?(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-|][^\s'"|]*))[ \t]*\|[ \t]*(?:base64|b64|openssl[ \t]+(?:base64|enc[ \t]+-base64))\b"#,
            1,
            None,
            &["base64", "b64"],
            Some(encoded_input),
        ),
        RuleSpec {
            kind: "secret",
            regex: r"(?m)^(?P<cmd>[^\n]*)\r?\n[ \t]*(?P<out>[^\s]{6,})[ \t]*\r?$".into(),
            group: 0,
            entropy_min: None,
            prefilter: Prefilter::Keywords(&[
                "kubectl",
                "vault ",
                "secretsmanager",
                "ssm ",
                "get-login-password",
                "op read",
                "op item",
                "auth token",
                "auth:token",
                "print-access-token",
                "print-identity-token",
                "versions access",
                "keyvault",
                "get-access-token",
                "doppler",
                "find-generic-password",
                "find-internet-password",
                "pass show",
                "bw get",
                "credstash",
                "sops ",
                "base64 -d",
                "base64 --decode",
                "base64 -D",
            ]),
            check: None,
            classify: Some(command_output),
            window: Some(Window {
                before: 512,
                after: 1024,
                multiline: true,
                filter: Some(printing_line),
            }),
            parse: None,
        },
    ]
}
