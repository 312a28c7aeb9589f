//! The built-in rule table.
//!
//! One entry per rule: kind (placeholder name), regex, which capture group
//! holds the secret, an optional entropy floor for that group, keywords for
//! the `RegexSet` prefilter and an optional shape check. Order is priority:
//! when two rules claim exactly the same span, the earlier one names it, so
//! specific token formats come before generic `key = value` rules.
//!
//! Regex conventions: `\b` is rewritten to the ASCII word boundary
//! `(?-u:\b)` at compile time (Unicode `\b` would force the slow engine on
//! non-ASCII input); tokens whose alphabet contains `-` end with
//! `(?:[^A-Za-z0-9_\-]|$)` instead of `\b` and keep the secret in group 1.

use std::borrow::Cow;

use regex::Captures;

use crate::redact::entropy::{Classes, shannon};
use crate::redact::heuristics::{ValueContext, is_placeholder, key_tail, plausible_secret_value};

/// Extra validation a match must pass before it is redacted.
pub type Check = fn(&Hit<'_>) -> bool;

/// Like [`Check`], but returns the kind to use (`None` = reject).
pub type Classify = fn(&Hit<'_>) -> Option<&'static str>;

/// A regex match under consideration, as seen by a [`Check`].
pub struct Hit<'h> {
    /// The whole text being redacted.
    pub haystack: &'h str,
    /// All capture groups of the match.
    pub caps: &'h Captures<'h>,
    /// The span that would be replaced.
    pub secret: regex::Match<'h>,
}

/// One built-in rule. See the module docs for field semantics.
pub struct RuleSpec {
    /// Placeholder kind, `[REDACTED:<kind>]`.
    pub kind: &'static str,
    /// Pattern (Rust `regex` syntax).
    pub regex: Cow<'static, str>,
    /// 0 = whole match; k = first participating capture group with index >= k.
    pub group: usize,
    /// Minimum Shannon entropy (bits/char) of the secret span.
    pub entropy_min: Option<f64>,
    /// Case-insensitive literals, one of which must occur for the rule to
    /// be run; empty = the regex itself is used in the prefilter set.
    pub keywords: &'static [&'static str],
    /// Shape check on the match.
    pub check: Option<Check>,
    /// Check that also names the kind (used by the generic rule, whose kind
    /// depends on the key: `DB_PASSWORD` -> `password`, `apiKey` -> `api_key`).
    pub classify: Option<Classify>,
}

fn rule(
    kind: &'static str,
    regex: &'static str,
    group: usize,
    entropy_min: Option<f64>,
    keywords: &'static [&'static str],
    check: Option<Check>,
) -> RuleSpec {
    RuleSpec {
        kind,
        regex: Cow::Borrowed(regex),
        group,
        entropy_min,
        keywords,
        check,
        classify: None,
    }
}

// ---------------------------------------------------------------- checks --

/// Upper, lower and digit present (generated keys; not `sk-learn-...`).
fn mixed(h: &Hit<'_>) -> bool {
    Classes::of(h.secret.as_str()).mixed_alnum()
}

/// Upper and lower case present.
fn two_case(h: &Hit<'_>) -> bool {
    let c = Classes::of(h.secret.as_str());
    c.upper && c.lower
}

/// Letters and digits present.
fn alnum(h: &Hit<'_>) -> bool {
    let c = Classes::of(h.secret.as_str());
    (c.upper || c.lower) && c.digit
}

/// Not a documentation placeholder.
fn not_placeholder(h: &Hit<'_>) -> bool {
    !is_placeholder(h.secret.as_str())
}

/// AWS secret access key: 40 chars of mixed base64 (a lower-case hex SHA
/// next to the word "secret" is not one).
fn aws_secret(h: &Hit<'_>) -> bool {
    let s = h.secret.as_str();
    let c = Classes::of(s);
    c.upper && c.lower && (c.digit || c.symbol) && !is_placeholder(s)
}

/// `Authorization: Bearer x` is trusted with any non-placeholder of 8+
/// chars; a bare `Bearer x` in prose needs a token-shaped value.
fn bearer(h: &Hit<'_>) -> bool {
    let s = h.secret.as_str();
    if is_placeholder(s) {
        return false;
    }
    let whole = h.caps.get(0).map_or("", |m| m.as_str());
    let header = whole
        .get(..13)
        .is_some_and(|p| p.eq_ignore_ascii_case("authorization"));
    if header {
        s.len() >= 8
    } else {
        let c = Classes::of(s);
        s.len() >= 16 && c.digit && (c.upper || c.lower) && shannon(s) >= 3.0
    }
}

/// Key families for the generic `key = value` rules.
#[derive(Clone, Copy)]
enum Family {
    Password,
    Token,
    Secret,
    ApiKey,
    PrivateKey,
}

/// The family (and so the placeholder kind) a key name belongs to, checked
/// most specific first.
fn family_of(key: &str) -> Option<Family> {
    let (last, prev) = key_tail(key);
    [
        Family::PrivateKey,
        Family::ApiKey,
        Family::Secret,
        Family::Token,
        Family::Password,
    ]
    .into_iter()
    .find(|&f| family_matches(f, &last, &prev))
}

fn family_matches(family: Family, last: &str, prev: &str) -> bool {
    match family {
        Family::Password => {
            last == "pass"
                || last.ends_with("password")
                || last.ends_with("passwd")
                || last.ends_with("passphrase")
                || last.ends_with("pwd")
        }
        Family::Token => last.ends_with("token"),
        Family::Secret => {
            last.ends_with("secret")
                || (last == "key"
                    && matches!(
                        prev,
                        "secret"
                            | "access"
                            | "auth"
                            | "encryption"
                            | "signing"
                            | "master"
                            | "client"
                            | "app"
                            | "service"
                            | "shared"
                            | "hmac"
                            | "jwt"
                            | "session"
                            | "webhook"
                    ))
                || matches!(
                    last,
                    "secretkey" | "accesskey" | "authkey" | "signingkey" | "masterkey"
                )
        }
        Family::ApiKey => (last == "key" && prev == "api") || last.ends_with("apikey"),
        Family::PrivateKey => (last == "key" && prev == "private") || last == "privatekey",
    }
}

/// Groups of [`assignment`]: 1 = CLI key, 2 = assignment key,
/// 3 = double-quoted value, 4 = single-quoted value, 5 = bare value.
///
/// Returns the placeholder kind for the key's family when the value is a
/// plausible secret.
fn generic(h: &Hit<'_>) -> Option<&'static str> {
    let caps = h.caps;
    let key = caps.get(1).or_else(|| caps.get(2))?;
    if caps.get(1).is_some() {
        // CLI flags start a word: ` --password x`, not `one-time-password x`.
        let dashes = caps.get(0)?.start();
        let before = h.haystack[..dashes].bytes().next_back();
        if before.is_some_and(|c| {
            !matches!(
                c,
                b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'(' | b'[' | b'=' | b',' | b';'
            )
        }) {
            return None;
        }
    }
    let kind = match family_of(key.as_str())? {
        Family::Password => "password",
        Family::Token => "token",
        Family::Secret => "secret",
        Family::ApiKey => "api_key",
        Family::PrivateKey => "private_key",
    };
    let quoted = caps.get(3).is_some() || caps.get(4).is_some();
    let before = &h.haystack[..key.start()];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let prefix = before[line_start..].trim();
    let prefix = prefix.trim_end_matches(['"', '\'']).trim();
    let sep = &h.haystack[key.end()..h.secret.start()];
    let env_style =
        sep == "=" && key.as_str().bytes().all(|c| !c.is_ascii_lowercase()) && caps.get(1).is_none();
    let literal = caps.get(1).is_none()
        && (matches!(prefix, "" | "export" | "-" | "set" | "ENV" | "env" | "setx") || env_style);
    let next = h.haystack[h.secret.end()..].bytes().next();
    let code = !quoted
        && (matches!(next, Some(b',' | b')' | b';' | b'(' | b'['))
            || prefix.ends_with('(')
            || prefix.ends_with(','));
    plausible_secret_value(
        h.secret.as_str(),
        ValueContext {
            quoted,
            literal,
            code,
        },
    )
    .then_some(kind)
}

/// `key = value` in env, YAML, JSON, TOML, code and `--key value` CLI form,
/// for any key ending in one of `keys` (an alternation).
fn assignment(keys: &str) -> Cow<'static, str> {
    Cow::Owned(format!(
        concat!(
            r#"(?i)(?:--?([a-z0-9_\-]*(?:{k}))(?:=|[ \t]+)"#,
            r#"|([a-z0-9_.\-]*(?:{k}))["']?[ \t]*(?::=|=>|[:=])[ \t]*)"#,
            r#"(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"'`,;&)(\]\[{{}}<>=][^\s"'`,;&)(\]\[{{}}<>]*))"#
        ),
        k = keys
    ))
}

fn generic_rule() -> RuleSpec {
    RuleSpec {
        kind: "secret",
        regex: assignment(concat!(
            r"pass(?:word|wd|phrase)?|pwd|token|secret|",
            r"(?:api|secret|private|access|auth|encryption|signing|master|client|app|service|shared|hmac|jwt|session|webhook)[_\-.]?key"
        )),
        group: 3,
        entropy_min: None,
        keywords: &["pass", "pwd", "token", "secret", "key"],
        check: None,
        classify: Some(generic),
    }
}

/// The built-in rules in priority order.
pub fn builtin_rules() -> Vec<RuleSpec> {
    vec![
        // --- key material blocks -------------------------------------------
        rule(
            "private_key",
            r#"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|[^"]*)"#,
            0,
            None,
            &["-----begin"],
            None,
        ),
        // --- vendor token formats (exact shapes) ---------------------------
        rule(
            "bridge_token",
            r"\b(mcpb_[A-Za-z0-9_\-]{43})(?:[^A-Za-z0-9_\-]|$)",
            1,
            None,
            &["mcpb_"],
            None,
        ),
        rule(
            "anthropic_key",
            r"\bsk-ant-[A-Za-z0-9_\-]{20,}",
            0,
            None,
            &["sk-ant-"],
            None,
        ),
        rule(
            "openai_key",
            r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
            0,
            None,
            &["sk-"],
            Some(mixed),
        ),
        rule(
            "github_token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
            0,
            None,
            &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            None,
        ),
        rule(
            "gitlab_token",
            r"\bgl(?:pat|dt|rt|ptt)-[A-Za-z0-9_\-]{20,}",
            0,
            None,
            &["glpat-", "gldt-", "glrt-", "glptt-"],
            None,
        ),
        rule(
            "slack_token",
            r"\b(?:xox[abposre]-[A-Za-z0-9\-]{10,}|xapp-[0-9]-[A-Za-z0-9\-]{10,})",
            0,
            None,
            &["xox", "xapp-"],
            None,
        ),
        rule(
            "slack_webhook",
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9_/\-]{20,})",
            1,
            None,
            &["hooks.slack.com"],
            None,
        ),
        rule(
            "discord_webhook",
            r"https://(?:canary\.|ptb\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/([A-Za-z0-9_\-]{30,})",
            1,
            None,
            &["/api/webhooks/"],
            None,
        ),
        rule(
            "stripe_key",
            r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
            0,
            None,
            &["k_live_", "k_test_"],
            None,
        ),
        rule(
            "stripe_webhook_secret",
            r"\bwhsec_[A-Za-z0-9]{24,}",
            0,
            None,
            &["whsec_"],
            None,
        ),
        rule(
            "google_api_key",
            r"\bAIza[0-9A-Za-z_\-]{35}",
            0,
            None,
            &["aiza"],
            None,
        ),
        rule(
            "google_oauth",
            r"\b(?:GOCSPX-[A-Za-z0-9_\-]{20,}|ya29\.[A-Za-z0-9_\-]{20,})",
            0,
            None,
            &["gocspx-", "ya29."],
            None,
        ),
        rule(
            "aws_access_key",
            r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b",
            0,
            None,
            &["akia", "asia", "abia", "acca", "a3t"],
            None,
        ),
        rule(
            "aws_secret_key",
            r#"(?i)(?:\baws[a-z0-9_ \-]{0,30}?(?:secret|key)|secret[_ \-]?access[_ \-]?key)[a-z0-9_ \-\[\]"']{0,20}?[ \t]*(?::=|=>|[:=])[ \t]*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            1,
            Some(3.5),
            &["aws", "secret"],
            Some(aws_secret),
        ),
        rule(
            "azure_storage_key",
            r"(?i)\b(?:AccountKey|SharedAccessKey)[ \t]*=[ \t]*([A-Za-z0-9+/%]{20,}={0,2})",
            1,
            None,
            &["accountkey", "sharedaccesskey"],
            Some(not_placeholder),
        ),
        rule(
            "azure_sas_token",
            r"[?&]sig=([A-Za-z0-9%+/=]{20,})",
            1,
            None,
            &["sig="],
            None,
        ),
        rule(
            "twilio_key",
            r"\b(?:SK|AC)[0-9a-f]{32}\b",
            0,
            None,
            &["sk", "ac"],
            None,
        ),
        rule(
            "sendgrid_key",
            r"\bSG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}",
            0,
            None,
            &["sg."],
            None,
        ),
        rule("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b", 0, None, &["npm_"], None),
        rule(
            "pypi_token",
            r"\bpypi-AgE[A-Za-z0-9_\-]{50,}",
            0,
            None,
            &["pypi-age"],
            None,
        ),
        rule(
            "huggingface_token",
            r"\bhf_[A-Za-z0-9]{34,40}\b",
            0,
            None,
            &["hf_"],
            Some(two_case),
        ),
        rule(
            "digitalocean_token",
            r"\bdo[opr]_v1_[a-f0-9]{64}\b",
            0,
            None,
            &["_v1_"],
            None,
        ),
        rule(
            "shopify_token",
            r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b",
            0,
            None,
            &["shpat_", "shpss_", "shpca_", "shppa_"],
            None,
        ),
        rule(
            "discord_bot_token",
            r"\b([MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38})(?:[^A-Za-z0-9_\-.]|$)",
            1,
            Some(3.5),
            &[],
            Some(mixed),
        ),
        rule(
            "telegram_bot_token",
            r"\b([0-9]{8,10}:A[A-Za-z0-9_\-]{34})(?:[^A-Za-z0-9_\-]|$)",
            1,
            None,
            &[":a"],
            Some(alnum),
        ),
        rule(
            "mailgun_key",
            r"\bkey-[0-9a-zA-Z]{32}\b",
            0,
            None,
            &["key-"],
            Some(alnum),
        ),
        rule(
            "jwt",
            r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
            0,
            None,
            &["eyj"],
            None,
        ),
        // --- credentials by context ----------------------------------------
        rule(
            "url_password",
            r"\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|https?|s?ftps?|smtps?|ldaps?|git|ssh|svn|nats|kafka|jdbc:[a-z]+)://[^\s:/@?#\[\]]*:([^\s@/]+)@",
            1,
            None,
            &["://"],
            Some(not_placeholder),
        ),
        rule(
            "basic_auth",
            r#"(?i)\bauthorization["']?[ \t]*[:=][ \t]*["']?basic[ \t]+([A-Za-z0-9+/._\-]{6,}={0,2})"#,
            1,
            None,
            &["basic"],
            Some(not_placeholder),
        ),
        rule(
            "bearer_token",
            r#"(?i)(?:\bauthorization["']?[ \t]*[:=][ \t]*["']?(?:bearer|token)|\bbearer)[ \t]+([A-Za-z0-9\-._~+/]+=*)"#,
            1,
            None,
            &["bearer", "authorization"],
            Some(bearer),
        ),
        rule(
            "password",
            r#"\bcurl\b[^\n]*?[ \t](?:-u|--user)[ \t]*['"]?[^\s:'"]+:([^\s'"]+)"#,
            1,
            None,
            &["curl"],
            Some(not_placeholder),
        ),
        rule(
            "password",
            r#"\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n|;&]*?[ \t]-p(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-][^\s'"]*))"#,
            1,
            None,
            &["mysql", "mariadb"],
            Some(not_placeholder),
        ),
        rule(
            "password",
            r#"\b(?:sshpass[ \t]+-p|redis-cli\b[^\n|;&]*?[ \t](?:-a|--pass))[ \t]*(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-][^\s'"]*))"#,
            1,
            None,
            &["sshpass", "redis-cli"],
            Some(not_placeholder),
        ),
        rule(
            "password",
            r"(?m)\bmachine[ \t]+\S+[ \t]+login[ \t]+\S+[ \t]+password[ \t]+(\S+)",
            1,
            None,
            &["machine"],
            Some(not_placeholder),
        ),
        // --- generic key = value ------------------------------------------
        generic_rule(),
    ]
}
