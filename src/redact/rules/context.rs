//! Credentials recognised by where they sit rather than by their shape:
//! URLs, `Authorization` headers, command-line flags, registry and
//! credential files, XML, Kubernetes secrets and Terraform variables.

use std::borrow::Cow;

use super::generic::{Joint, KEY_WORDS, VALUE, Value, judge, value_of};
use super::{Found, Hit, Prefilter, RuleSpec, rule};
use crate::redact::decode::is_basic_credentials;
use crate::redact::entropy::Classes;
use crate::redact::heuristics::{ValueContext, is_placeholder, plausible_secret_value, token_shaped};

/// A literal written where only a credential belongs (after `-p`, in a
/// URL's password slot): anything but a placeholder of 4+ characters.
const LITERAL: ValueContext = ValueContext {
    quoted: true,
    literal: true,
    code: false,
};

fn password_literal(h: &Hit<'_>) -> bool {
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
        .rfind(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | '<'))
        .map_or(0, |i| i + 1);
    before[word_start..].contains("://") && token_shaped(h.secret.as_str())
}

/// Which short flags carry a password, per tool: `-p` means a port to
/// ssh and docker run, a password to docker login and mongosh.
const TOOL_FLAGS: &[(&str, &str)] = &[
    ("login", "p"),
    ("mongo", "p"),
    ("mongosh", "p"),
    ("mongodump", "p"),
    ("mongorestore", "p"),
    ("mongoimport", "p"),
    ("mongoexport", "p"),
    ("sshpass", "p"),
    ("sqlcmd", "P"),
    ("bcp", "P"),
    ("mosquitto_pub", "P"),
    ("mosquitto_sub", "P"),
    ("zip", "P"),
    ("7z", "p"),
    ("7za", "p"),
    ("rar", "p"),
    ("unrar", "p"),
    ("ldapsearch", "w"),
    ("ldapadd", "w"),
    ("ldapmodify", "w"),
    ("ldapdelete", "w"),
    ("ldappasswd", "w"),
    ("ldapwhoami", "w"),
    ("redis-cli", "a"),
    ("psexec", "p"),
    ("openconnect", "p"),
    ("rabbitmqadmin", "p"),
    ("influx", "p"),
    ("cf", "p"),
    ("oc", "p"),
    ("az", "p"),
    ("keytool", "k"),
];

/// The flag at the hit belongs to a tool that takes a password with it.
fn tool_flag(h: &Hit<'_>) -> bool {
    let hay = h.haystack;
    let whole = h.caps.get(0).expect("group 0");
    let flag = hay[whole.start()..]
        .trim_start()
        .as_bytes()
        .get(1)
        .copied()
        .unwrap_or(0);
    let line_start = hay[..whole.start()]
        .rfind(['\n', '|', ';', '&'])
        .map_or(0, |i| i + 1);
    let command = &hay[line_start..whole.start()];
    let allowed = command.split_whitespace().any(|word| {
        let word = word.trim_start_matches(['$', '>', '(']);
        let name = word.rsplit(['/', '\\']).next().unwrap_or(word);
        let name = name.strip_suffix(".exe").unwrap_or(name).to_ascii_lowercase();
        TOOL_FLAGS
            .iter()
            .any(|(tool, flags)| name == *tool && flags.as_bytes().contains(&flag))
    });
    allowed && password_literal(h)
}

/// First argument id-like, second a token-shaped secret (not a second id
/// of the same shape, not two hex digests compared).
fn id_then_secret(h: &Hit<'_>) -> bool {
    let Some(id) = h.caps.get(1) else { return false };
    let secret = h.secret.as_str();
    let id_c = Classes::of(id.as_str());
    let hex = |s: &str| s.bytes().all(|c| c.is_ascii_hexdigit());
    (id_c.digit || id_c.upper)
        && token_shaped(secret)
        && !(hex(id.as_str()) && hex(secret) && id.as_str().len() == secret.len())
}

/// Base58 with upper, lower and digits.
fn mixed_b58(h: &Hit<'_>) -> bool {
    Classes::of(h.secret.as_str()).mixed_alnum()
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

/// Key/value rules whose key sits in a group named `key` and value in
/// `dq`/`sq`/`bq`/`bare`, read as config (XML elements, name/value pairs,
/// Terraform variables).
fn keyed_literal(h: &Hit<'_>) -> Option<Found> {
    let key = h.caps.name("key")?;
    let value = value_of(h)?;
    // XML: the closing tag must be the opening one.
    if let Some(close) = h.caps.name("close") {
        let want = if h.caps.name("wrap").is_some() {
            "value"
        } else {
            key.as_str()
        };
        if !close.as_str().eq_ignore_ascii_case(want) {
            return None;
        }
    }
    let v = &h.haystack[value.start..value.end];
    let trimmed_start = value.start + (v.len() - v.trim_start().len());
    let trimmed_end = value.start + v.trim_end().len();
    let value = Value {
        start: trimmed_start,
        end: trimmed_end.max(trimmed_start),
        ..value
    };
    judge(h.haystack, key.range(), value, Joint::Assign, true)
}

/// Nearest enclosing YAML key of the line at `pos` (the first line above
/// with less indentation), and the indentation of `pos`'s line.
fn yaml_parent(hay: &str, pos: usize) -> Option<&str> {
    let line_start = hay[..pos].rfind('\n').map_or(0, |i| i + 1);
    let indent = hay[line_start..]
        .bytes()
        .take_while(|c| *c == b' ' || *c == b'\t')
        .count();
    let mut end = line_start.checked_sub(1)?;
    loop {
        let start = hay[..end].rfind('\n').map_or(0, |i| i + 1);
        let line = &hay[start..end];
        let ind = line.bytes().take_while(|c| *c == b' ' || *c == b'\t').count();
        if !line.trim().is_empty() && ind < indent {
            return Some(line.trim());
        }
        if start == 0 {
            return None;
        }
        end = start - 1;
    }
}

/// A value under `data:`/`binaryData:` (base64) or `stringData:` of a
/// Kubernetes `kind: Secret`.
fn k8s_secret_value(h: &Hit<'_>) -> bool {
    let hay = h.haystack;
    let is_secret_doc = hay.contains("kind: Secret") || hay.contains("kind: \"Secret\"");
    if !is_secret_doc || is_placeholder(h.secret.as_str()) {
        return false;
    }
    match yaml_parent(hay, h.secret.start()) {
        Some("data:" | "binaryData:") => h.secret.as_str().len() >= 4,
        Some("stringData:") => plausible_secret_value(h.secret.as_str(), LITERAL),
        _ => false,
    }
}

fn keyed(kind: &'static str, regex: String, prefilter: Prefilter) -> RuleSpec {
    RuleSpec {
        kind,
        regex: Cow::Owned(regex),
        group: 0,
        entropy_min: None,
        prefilter,
        check: None,
        classify: Some(keyed_literal),
    }
}

/// A quoted or bare command-line argument, in groups 1..=3.
macro_rules! arg {
    () => {
        r#"(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-][^\s'"]*))"#
    };
}

/// The context rules in priority order.
pub fn rules() -> Vec<RuleSpec> {
    vec![
        // --- URLs ---------------------------------------------------------
        rule(
            "url_password",
            r#"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@?#\[\]"'`<>]*:([^\s/"'`<>]+)@[^\s@]"#,
            1,
            None,
            &["://"],
            Some(url_password),
        ),
        rule(
            "url_token",
            r#"(?i)/(?:hooks?|webhooks?|bot|tokens?|keys?|secrets?|api[_\-]?keys?|auth|triggers?|catch)/(?:[0-9]+/)?([A-Za-z0-9_\-:.~]{16,})(?:[/?#\s"'<>)\]]|$)"#,
            1,
            None,
            &[
                "/hook", "/webhook", "/bot", "/token", "/key", "/secret", "/api", "/auth", "/trigger",
                "/catch",
            ],
            Some(segment_token),
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
        // --- command-line flags ---------------------------------------------
        rule(
            "password",
            r#"(?:^|[\s"'])(?:-u|--user|-a|--auth|--basic-auth|--creds?|--credentials|--proxy-user)(?:[ \t]+|=)["']?[^\s:"'@/$]+:([^\s"'@]+)"#,
            1,
            None,
            &[
                "-u",
                "--user",
                "-a",
                "--auth",
                "--basic-auth",
                "--cred",
                "--proxy-user",
            ],
            Some(password_literal),
        ),
        rule(
            "password",
            concat!(r#"[ \t]-(?:p|P|w|a|k)(?:[ \t]+|=)?"#, arg!()),
            1,
            None,
            &[" -p", " -w", " -a", " -k"],
            Some(tool_flag),
        ),
        rule(
            "password",
            concat!(
                r#"\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n|;&]*?[ \t]-p"#,
                arg!()
            ),
            1,
            None,
            &["mysql", "mariadb"],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"\bsqlplus[ \t]+(?:-[A-Za-z]+[ \t]+)*["']?[A-Za-z0-9_$#.]+/([^\s@'"/]+)(?:@|\s|["']|$)"#,
            1,
            None,
            &["sqlplus"],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"(?:^|\s)(?:-U|--user)[ \t=]+["']?[^\s%"']+%([^\s"']+)"#,
            1,
            None,
            &["-u", "--user"],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"\bpass:([^\s"']+)"#,
            1,
            None,
            &["pass:"],
            Some(password_literal),
        ),
        rule(
            "secret",
            concat!(
                r#"\bgh[ \t]+secret[ \t]+set\b[^\n]*?[ \t](?:--body|-b)(?:[ \t]+|=)"#,
                arg!()
            ),
            1,
            None,
            &["secret"],
            Some(password_literal),
        ),
        // --- positional arguments of tools that take a password ----------
        rule(
            "password",
            concat!(
                r#"\b(?:echo|printf)[ \t]+(?:-[ne]+[ \t]+)?"#,
                arg!(),
                r#"[ \t]*\|[ \t]*(?:sudo\b[^\n|]*[ \t]-S\b|[^\n|]*--password-stdin|passwd\b[^\n|]*--stdin|chpasswd)"#
            ),
            1,
            None,
            &["echo", "printf"],
            Some(password_literal),
        ),
        rule(
            "password",
            concat!(
                r#"\brabbitmqctl[ \t]+(?:add_user|change_password)[ \t]+\S+[ \t]+"#,
                arg!()
            ),
            1,
            None,
            &["rabbitmqctl"],
            Some(password_literal),
        ),
        rule(
            "password",
            concat!(
                r#"(?m)\bhtpasswd[ \t]+-[A-Za-z]*b[A-Za-z]*(?:[ \t]+[^\s|;&]+)+?[ \t]+"#,
                arg!(),
                r#"[ \t]*(?:$|[|;&])"#
            ),
            1,
            None,
            &["htpasswd"],
            Some(password_literal),
        ),
        rule(
            "password",
            concat!(r#"(?i)\bnet[ \t]+use\b[^\n]*?[ \t]"#, arg!(), r#"[ \t]+/user:"#),
            1,
            None,
            &["net use"],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"(?i)(?:\bnet[ \t]+use\b[^\n]*?/user:\S+[ \t]+([^\s/"'][^\s"']*)|/pass(?:word)?:("[^"\n]+"|[^\s"]+))"#,
            1,
            None,
            &["net use", "/pass"],
            Some(password_literal),
        ),
        rule(
            "secret",
            concat!(
                r#"\b(?:mc[ \t]+(?:alias[ \t]+set|config[ \t]+host[ \t]+add)[ \t]+\S+[ \t]+\S+[ \t]+\S+|b2[ \t]+authorize[-_]account[ \t]+\S+)[ \t]+"#,
                arg!()
            ),
            1,
            None,
            &["mc ", "b2 "],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"(?i)\bexpect[ \t]+"[^"\n]*pass[^"\n]*"\s*\n\s*send[ \t]+"([^"\n]+?)(?:\\r|\\n)?""#,
            1,
            None,
            &["expect"],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"(?i)\bidentified[ \t]+by[ \t]+(?:'([^'\n]+)'|"([^"\n]+)"|([^\s;'"]+))"#,
            1,
            None,
            &["identified"],
            Some(password_literal),
        ),
        // Go MySQL DSN: `user:pass@tcp(host:3306)/db`.
        rule(
            "url_password",
            r#"[A-Za-z0-9_.\-]+:([^\s@"'/:]+)@(?:tcp|unix|udp)\("#,
            1,
            None,
            &["@tcp(", "@unix(", "@udp("],
            Some(password_literal),
        ),
        // Bundler: `BUNDLE_GEMS__EXAMPLE__COM=user:pass`.
        rule(
            "password",
            r#"\bBUNDLE_[A-Z0-9_]+__[A-Z0-9_]+[ \t]*[=:][ \t]*["']?[^\s:"']+:([^\s"']+)"#,
            1,
            None,
            &["bundle_"],
            Some(password_literal),
        ),
        // --- credential files ---------------------------------------------
        // .netrc / _netrc, on one line or several.
        rule(
            "password",
            r"\blogin[ \t]+\S+\s+password[ \t]+(\S+)",
            1,
            None,
            &["login"],
            Some(password_literal),
        ),
        // .pgpass: host:port:database:user:password
        RuleSpec {
            prefilter: Prefilter::Pattern(r":[0-9*]{1,5}:[^:\s]+:[^:\s]+:"),
            ..rule(
                "password",
                r"(?m)^[A-Za-z0-9_.\-*]+:(?:[0-9]{1,5}|\*):[^:\s]+:[^:\s]+:(\S+?)\r?$",
                1,
                None,
                &[],
                Some(password_literal),
            )
        },
        // --- structured config --------------------------------------------
        keyed(
            "secret",
            format!(
                r#"(?i)<(?P<key>[a-z0-9_.:\-]*(?:{KEY_WORDS}))(?:\s[^>]*)?>\s*(?P<wrap><value>)?(?P<dq>[^<\n]{{1,512}})</(?P<close>[a-z0-9_.:\-]+)>"#
            ),
            Prefilter::Keywords(&["</"]),
        ),
        keyed(
            "secret",
            format!(
                concat!(
                    r#"(?i)\b(?:name|key)["']?[ \t]*[:=][ \t]*["']?(?P<key>[a-z0-9_.\-]*(?:{k}))["']?[ \t]*"#,
                    r#"\s*,?\s*["']?value["']?[ \t]*[:=][ \t]*{v}"#
                ),
                k = KEY_WORDS,
                v = VALUE
            ),
            Prefilter::Keywords(&["value"]),
        ),
        keyed(
            "secret",
            format!(
                r#"(?i)\bvariable[ \t]+"(?P<key>[a-z0-9_\-]*(?:{KEY_WORDS}))"[ \t]*\{{[^}}]*?\bdefault[ \t]*=[ \t]*"(?P<dq>[^"\n]*)""#
            ),
            Prefilter::Keywords(&["variable"]),
        ),
        // `define('AUTH_KEY', '…')`, `setProperty("mail.smtp.password", "…")`.
        keyed(
            "secret",
            format!(
                r#"(?i)\(\s*["'](?P<key>[a-z0-9_.\-]*(?:{k}))["']\s*,\s*{v}"#,
                k = KEY_WORDS,
                v = VALUE
            ),
            Prefilter::Keywords(&["("]),
        ),
        // `AuthenticationHeaderValue("Bearer", "…")`.
        rule(
            "bearer_token",
            r#"(?i)\(\s*["'](?:bearer|basic|token)["']\s*,\s*["']([^"'\s]{8,})["']"#,
            1,
            None,
            &["bearer", "basic", "token"],
            Some(password_literal),
        ),
        // JWK private members, when the object is a JWK.
        rule(
            "private_key",
            r#""(?:d|p|q|dp|dq|qi|k)"\s*:\s*"([A-Za-z0-9_\-]{16,})""#,
            1,
            None,
            &["\"kty\""],
            None,
        ),
        // Solana keypair file: a JSON array of exactly 64 bytes.
        RuleSpec {
            prefilter: Prefilter::Pattern(r"\[\s*[0-9]{1,3}\s*,\s*[0-9]{1,3}\s*,"),
            ..rule(
                "private_key",
                r"\[\s*(?:[0-9]{1,3}\s*,\s*){63}[0-9]{1,3}\s*\]",
                0,
                None,
                &[],
                None,
            )
        },
        // Bitcoin WIF private key (base58, compressed or not).
        RuleSpec {
            prefilter: Prefilter::Pattern(r"[5KL][1-9A-HJ-NP-Za-km-z]{24}"),
            ..rule(
                "private_key",
                r"\b[5KL][1-9A-HJ-NP-Za-km-z]{50,51}\b",
                0,
                Some(4.0),
                &[],
                Some(mixed_b58),
            )
        },
        RuleSpec {
            kind: "k8s_secret",
            regex: Cow::Borrowed(
                r#"(?m)^[ \t]+[A-Za-z0-9_.\-]+:[ \t]+(?:"([^"\n]+)"|'([^'\n]+)'|([^\s"'#|>][^\n#]*?))[ \t]*\r?$"#,
            ),
            group: 1,
            entropy_min: None,
            prefilter: Prefilter::Keywords(&["kind: secret", "kind: \"secret\""]),
            check: Some(k8s_secret_value),
            classify: None,
        },
    ]
}

/// Rules that yield to the pairing rules (a more specific kind for the
/// same span): two quoted call arguments, an id then a secret.
pub fn late_rules() -> Vec<RuleSpec> {
    vec![
        // Two quoted arguments, a public id then a secret:
        // `Client("AC…", "…")`, `OAuth1UserHandler("key", "secret")`.
        rule(
            "secret",
            r#"\b[A-Za-z_][\w.]*\(\s*[urb]?["']([A-Za-z0-9_\-]{8,64})["']\s*,\s*[urb]?["']([^"'\s]{16,256})["']"#,
            2,
            None,
            &["(\"", "('"],
            Some(id_then_secret),
        ),
    ]
}
