//! Credentials recognised by where they sit rather than by their shape:
//! URLs and `Authorization` headers. Command-line flags are in `cli.rs`,
//! credential files and structured config in `files.rs`; their rules come
//! right after these ones, in that order.

use std::borrow::Cow;

use super::{Found, Hit, Prefilter, RuleSpec, cli, files, rule};
use crate::redact::decode::is_basic_credentials;
use crate::redact::entropy::Classes;
use crate::redact::heuristics::{ValueContext, is_placeholder, plausible_secret_value, token_shaped};

/// A literal written where only a credential belongs (after `-p`, in a
/// URL's password slot): anything but a placeholder of 4+ characters.
pub(super) const LITERAL: ValueContext = ValueContext {
    quoted: true,
    literal: true,
    code: false,
};

pub(super) fn password_literal(h: &Hit<'_>) -> bool {
    plausible_secret_value(h.secret.as_str(), LITERAL)
}

fn url_password(h: &Hit<'_>) -> bool {
    let s = h.secret.as_str();
    !is_placeholder(s) && !s.starts_with('$')
}

/// A token-shaped path segment of a URL (not of a file path such as
/// `src/auth/token.rs`): the word it sits in must contain `://`.
fn segment_token(h: &Hit<'_>) -> bool {
    let before = &h.haystack[..h.secret.start()];
    let word_start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | '<'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    before[word_start..].contains("://") && token_shaped(h.secret.as_str())
}

/// A URL's user part that is a token: token-shaped, not an e-mail-like
/// name (`first.last2024`), and not a key of the vendor tables.
fn userinfo_token(h: &Hit<'_>) -> bool {
    token_shaped(h.secret.as_str()) && Classes::of(h.secret.as_str()).mixed_alnum()
        || (token_shaped(h.secret.as_str()) && h.secret.as_str().bytes().all(|c| c.is_ascii_hexdigit()))
}

/// A cookie value on a `Cookie`/`Set-Cookie` line (or after curl's
/// `-b`) that is token-shaped.
fn cookie_value(h: &Hit<'_>) -> bool {
    let hay = h.haystack;
    let line_start = hay[..h.secret.start()].rfind('\n').map_or(0, |i| i + 1);
    let line = hay[line_start..h.secret.start()].to_ascii_lowercase();
    (line.contains("cookie") || line.contains(" -b ")) && token_shaped(h.secret.as_str())
}

/// The password half of `user / password` in prose: a literal with a
/// digit or symbol besides letters (`admin / dashboard` is a path).
fn prose_credential(h: &Hit<'_>) -> bool {
    let v = h.secret.as_str().trim_end_matches(['.', ',', ';', ')']);
    let c = Classes::of(v);
    (c.upper || c.lower) && (c.digit || c.symbol) && plausible_secret_value(v, LITERAL)
}

fn basic_b64(h: &Hit<'_>) -> bool {
    is_basic_credentials(h.secret.as_str())
}

/// A bare `Bearer <x>` outside a header needs a token-shaped value.
fn bare_bearer(h: &Hit<'_>) -> bool {
    let s = h.secret.as_str();
    let c = Classes::of(s);
    s.len() >= 16
        && c.digit
        && (c.upper || c.lower)
        && !is_placeholder(s)
        && crate::redact::entropy::shannon(s) >= 3.0
}

/// Schemes whose credential is a list of `name=value` parameters: the
/// whole rest of the header is redacted.
const PARAM_SCHEMES: &[&str] = &[
    "digest",
    "aws4-hmac-sha256",
    "hawk",
    "oauth",
    "signature",
    "mac",
    "sharedkey",
    "sharedkeylite",
];

/// Scheme words, which are never the credential themselves.
const SCHEMES: &str = concat!(
    "basic|bearer|token|digest|negotiate|ntlm|apikey|api-key|key|sso-key|ssws|geniekey|splunk|dsn|",
    "hmac|hawk|oauth|aws4-hmac-sha256|sharedkeylite|sharedkey|jwt|mac|otp|signature|klaviyo-api-key|",
    "zoho-oauthtoken|bot|pat|client-token|access-token|ltpa2"
);

/// `Authorization: <scheme> <credential>` in any syntax: HTTP, curl `-H`,
/// JSON/YAML headers maps, nginx `proxy_set_header Authorization "…"`,
/// Apache `RequestHeader set Authorization …`.
fn authorization(h: &Hit<'_>) -> Option<Found> {
    let caps = h.caps;
    let cred = caps.name("cred")?;
    let scheme = caps.name("scheme").map(|m| m.as_str().to_ascii_lowercase());
    let value = cred.as_str();
    let lower = value.to_ascii_lowercase();
    if SCHEMES.split('|').any(|s| s == lower) || is_placeholder(value) {
        return None;
    }
    let (kind, end) = match scheme.as_deref() {
        Some(s) if PARAM_SCHEMES.contains(&s) => {
            let rest = caps.name("rest").map_or(cred.end(), |m| m.end());
            let trimmed = h.haystack[cred.start()..rest].trim_end_matches([' ', '\t', ';', ',']);
            ("authorization", cred.start() + trimmed.len())
        }
        Some(s) => {
            let kind = match s {
                "basic" => "basic_auth",
                "bearer" | "token" | "jwt" | "bot" | "pat" => "bearer_token",
                _ => "authorization",
            };
            let trimmed = value.trim_end_matches([';', ',', ')', '\\']);
            (kind, cred.start() + trimmed.len())
        }
        None => {
            // No scheme word: the value itself must look like a credential.
            let trimmed = value.trim_end_matches([';', ',', ')', '\\']);
            let c = Classes::of(trimmed);
            if !((c.upper || c.lower) && c.digit && trimmed.len() >= 12) {
                return None;
            }
            ("authorization", cred.start() + trimmed.len())
        }
    };
    let v = &h.haystack[cred.start()..end];
    if v.len() < 6 || is_placeholder(v) || v.contains("${") || v.starts_with('{') {
        return None;
    }
    if kind == "authorization" && scheme.is_none() && v.len() < 8 {
        return None;
    }
    Some(Found {
        kind,
        range: cred.start()..end,
    })
}

/// The context rules in priority order: URLs and headers, then
/// command-line flags, then files and structured config.
pub fn rules() -> Vec<RuleSpec> {
    let mut out = vec![
        // --- URLs ---------------------------------------------------------
        rule(
            "url_password",
            r#"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@?#\[\]"'`<>]*:([^\s/"'`<>]+)@[^\s@]"#,
            1,
            None,
            &["://"],
            Some(url_password),
        ),
        // `nats://TOKEN@host`, `https://<token>@git.example.com/…`: a
        // user part with no password that is a token, not a name.
        rule(
            "url_token",
            r#"\b[a-zA-Z][a-zA-Z0-9+.\-]*://([A-Za-z0-9_\-.~%]{16,})@[^\s@/]"#,
            1,
            None,
            &["://"],
            Some(userinfo_token),
        ),
        rule(
            "url_token",
            r#"(?i)/(?:hooks?|webhooks?|bot|tokens?|keys?|secrets?|api[_\-]?keys?|auth|triggers?|catch|t)/(?:[0-9]+/)?([A-Za-z0-9_\-:.~]{16,})(?:[/?#\s"'<>)\]]|$)"#,
            1,
            None,
            &[
                "/hook", "/webhook", "/bot", "/token", "/key", "/secret", "/api", "/auth", "/trigger",
                "/catch", "/t/",
            ],
            Some(segment_token),
        ),
        // --- cookies -------------------------------------------------------
        // A session cookie is a bearer credential: `Cookie: session_id=…`,
        // `Set-Cookie: connect.sid=…`, `curl -b 'sessionid=…'`.
        RuleSpec {
            window: Some(super::Window::line(0, 4096)),
            ..rule(
                "session_cookie",
                r#"(?i)(?:^|[\s;:"'])[A-Za-z0-9_.\-]*(?:sess(?:ion)?|sid|auth|token|remember|jwt|login)[A-Za-z0-9_.\-]*=([^\s;,"']{16,})"#,
                1,
                None,
                &["cookie", " -b "],
                Some(cookie_value),
            )
        },
        // --- credentials in prose --------------------------------------------
        // `creds for the box are admin / S3cr3t`, `login: deploy:Pa55word1`.
        rule(
            "password",
            r#"(?i)\b(?:creds?|credentials|logins?|log-in|user(?:name)?[ \t]*(?:/|and|&)[ \t]*pass(?:word)?)\b[^\n]{0,48}?(?:[ \t]are|[ \t]is|:|=)[ \t]*[`'"]?[A-Za-z0-9_.@\-]{1,64}[`'"]?[ \t]*(?:/|:)[ \t]*[`'"]?([^\s`'"/][^\s`'"]{5,63})"#,
            1,
            None,
            &["cred", "login", "log-in"],
            Some(prose_credential),
        ),
        // --- headers -------------------------------------------------------
        RuleSpec {
            kind: "authorization",
            regex: Cow::Owned(format!(
                concat!(
                    r#"(?i)\b(?:proxy-)?authorization\b["']?[ \t]*[:=]?[ \t]*["']?[ \t]*"#,
                    r#"(?:(?P<scheme>{s})[ \t]+)?(?P<cred>(?:[^\s"'`=]|=[ \t]*"[^"\r\n]*"|=[ \t]*'[^'\r\n]*'|=)+)"#,
                    r#"(?P<rest>(?:[^\r\n"'`=]|=[ \t]*"[^"\r\n]*"|=[ \t]*'[^'\r\n]*'|=)*)"#
                ),
                s = SCHEMES
            )),
            group: 0,
            entropy_min: None,
            prefilter: Prefilter::Keywords(&["authorization"]),
            check: None,
            classify: Some(authorization),
            window: None,
            parse: None,
        },
        rule(
            "basic_auth",
            r"(?i)\bbasic[ \t]+([A-Za-z0-9+/_\-]{8,}={0,2})",
            1,
            None,
            &["basic"],
            Some(basic_b64),
        ),
        rule(
            "bearer_token",
            r"(?i)\bbearer[ \t]+([A-Za-z0-9\-._~+/]+=*)",
            1,
            None,
            &["bearer"],
            Some(bare_bearer),
        ),
    ];
    out.extend(cli::rules());
    out.extend(files::rules());
    out
}
