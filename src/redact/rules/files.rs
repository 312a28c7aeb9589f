//! Credentials in files and structured config: `.netrc`, `.pgpass`, XML
//! elements, name/value pairs, Terraform variables, `define(...)`, JWKs,
//! key arrays, WIF keys and Kubernetes secrets.

use std::borrow::Cow;

use super::context::{LITERAL, password_literal};
use super::generic::{Joint, KEY_WORDS, VALUE, Value, judge, value_of};
use super::{Found, Hit, Memo, Prefilter, RuleSpec, Window, YamlDocument, on_runs, rule};
use crate::redact::entropy::Classes;
use crate::redact::heuristics::{is_placeholder, plausible_secret_value, token_shaped};

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

/// A document marker line (`---`, `...`) or a Markdown fence: where a
/// YAML document starts or ends.
fn is_marker(line: &str) -> bool {
    let t = line.trim_end();
    t == "---" || t == "..." || t.trim_start().starts_with("```")
}

/// The YAML documents of `hay`, once per text (`memo`): the spans between
/// document markers or the text's ends, each with whether it is a
/// `kind: Secret`. Looking the document up per value walked it line by
/// line for every value, quadratic in a long message.
fn yaml_documents<'m>(hay: &str, memo: &'m Memo) -> &'m [YamlDocument] {
    memo.yaml_documents.get_or_init(|| {
        let mut docs = Vec::new();
        let mut doc_start = 0;
        for (line_start, line_end) in marker_lines(hay) {
            docs.push(document(
                hay,
                doc_start,
                line_start.saturating_sub(1).max(doc_start),
            ));
            doc_start = (line_end + 1).min(hay.len());
        }
        docs.push(document(hay, doc_start, hay.len()));
        docs
    })
}

/// The marker lines of `hay` ([`is_marker`]), in order, as (start, end).
///
/// Only lines that can be markers are looked at, found by literal
/// searches: `---` and `...` open their line, a fence has only blanks
/// before it. Searching for the marker characters anywhere stopped at
/// every `...` of a `cargo test` log (`test x ... ok`) and every `---`
/// of a table or a diff.
fn marker_lines(hay: &str) -> Vec<(usize, usize)> {
    let b = hay.as_bytes();
    let mut starts: Vec<usize> = Vec::new();
    if b.starts_with(b"---") || b.starts_with(b"...") {
        starts.push(0);
    }
    for opening in [&b"\n---"[..], b"\n..."] {
        starts.extend(memchr::memmem::find_iter(b, opening).map(|i| i + 1));
    }
    starts.extend(
        memchr::memmem::find_iter(b, b"```").map(|i| memchr::memrchr(b'\n', &b[..i]).map_or(0, |p| p + 1)),
    );
    starts.sort_unstable();
    starts.dedup();
    starts
        .into_iter()
        .filter_map(|start| {
            let end = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |p| start + p);
            is_marker(&hay[start..end]).then_some((start, end))
        })
        .collect()
}

fn document(hay: &str, start: usize, end: usize) -> YamlDocument {
    let text = &hay[start..end];
    YamlDocument {
        start,
        end,
        secret: text.contains("kind: Secret") || text.contains("kind: \"Secret\""),
    }
}

/// Whether the YAML document around `pos` (the lines between the nearest
/// document markers or Markdown fences, or the text's ends) is a
/// `kind: Secret`. `pos` is not on a marker line.
fn in_secret_document(hay: &str, pos: usize, memo: &Memo) -> bool {
    let docs = yaml_documents(hay, memo);
    let i = docs.partition_point(|d| d.start <= pos).saturating_sub(1);
    docs.get(i)
        .is_some_and(|d| d.start <= pos && pos <= d.end && d.secret)
}

/// Necessary for the Kubernetes rule: the `data:` at `start..end` opens a
/// YAML map (nothing after it on its line) in a document that is a
/// `kind: Secret`. A `data:` of a ConfigMap or a JSON payload opens no
/// window.
fn secret_data_map(text: &str, start: usize, end: usize, memo: &Memo) -> bool {
    let rest = &text[end..];
    let line_end = rest.find('\n').unwrap_or(rest.len());
    if !rest[..line_end].trim().is_empty() {
        return false;
    }
    in_secret_document(text, start, memo)
}

/// A value under `data:`/`binaryData:` (base64) or `stringData:` of a
/// Kubernetes `kind: Secret` (in the same YAML document: a `ConfigMap`
/// next to it keeps its data).
fn k8s_secret_value(h: &Hit<'_>) -> bool {
    let hay = h.haystack;
    let value = h.secret.as_str();
    let accepted = match yaml_parent(hay, h.secret.start()) {
        Some("data:" | "binaryData:") => value.len() >= 4,
        Some("stringData:") => plausible_secret_value(value, LITERAL),
        _ => false,
    };
    accepted && !is_placeholder(value) && in_secret_document(hay, h.secret.start(), h.memo)
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
        window: None,
        parse: None,
    }
}

/// The file and structured-config rules in priority order.
pub fn rules() -> Vec<RuleSpec> {
    vec![
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
        // ipsec.secrets / strongSwan: `: PSK "…"`, `user : XAUTH "…"`.
        rule(
            "password",
            r#"(?i):[ \t]*(?:PSK|XAUTH|EAP|NTLM|P12|PIN)[ \t]+(?:"([^"\n]+)"|'([^'\n]+)'|(0s[A-Za-z0-9+/=]{8,}|0x[0-9a-fA-F]{8,}))"#,
            1,
            None,
            &["psk", "xauth", "eap", "ntlm"],
            Some(password_literal),
        ),
        // pgbouncer `userlist.txt`: `"user" "password"` lines.
        RuleSpec {
            window: Some(Window {
                before: 0,
                after: 4096,
                multiline: true,
                filter: None,
            }),
            ..rule(
                "password",
                r#"(?m)^\W?[ \t]*"[^"\n]+"[ \t]+"([^"\n]+)""#,
                1,
                None,
                &["userlist", "auth_file"],
                Some(password_literal),
            )
        },
        // `bundle config` output: the setting's name on one line, its
        // `user:password` on the next.
        rule(
            "password",
            r#"\bBUNDLE_[A-Z0-9_]+__[A-Z0-9_]+[ \t]*\r?\n[ \t]*Set[^\n:]*:[ \t]*"[^\s:"]+:([^\s"]+)""#,
            1,
            None,
            &["bundle_"],
            Some(password_literal),
        ),
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
        on_runs(
            rule(
                "private_key",
                r"\b[5KL][1-9A-HJ-NP-Za-km-z]{50,51}\b",
                0,
                Some(4.0),
                &[],
                Some(mixed_b58),
            ),
            51,
        ),
        RuleSpec {
            kind: "k8s_secret",
            regex: Cow::Borrowed(
                r#"(?m)^[ \t]+[A-Za-z0-9_.\-]+:[ \t]+(?:"([^"\n]+)"|'([^'\n]+)'|([^\s"'#|>][^\n#]*?))[ \t]*\r?$"#,
            ),
            group: 1,
            entropy_min: None,
            // Anchored on the maps that hold the values (`data:` also
            // occurs in `stringData:`, `binaryData:`); the check reads the
            // value's YAML document for `kind: Secret`.
            prefilter: Prefilter::Keywords(&["data:"]),
            check: Some(k8s_secret_value),
            classify: None,
            window: Some(Window {
                before: 0,
                after: 4096,
                multiline: true,
                filter: Some(secret_data_map),
            }),
            parse: None,
        },
    ]
}

/// Rules that yield to the pairing rules (a more specific kind for the
/// same span): two quoted call arguments, an id then a secret.
pub fn late_rules() -> Vec<RuleSpec> {
    vec![
        // Two quoted arguments, a public id then a secret:
        // `Client("AC…", "…")`, `OAuth1UserHandler("key", "secret")`.
        //
        // The call starts at its anchor (`(` and a quote) and ends within a
        // few hundred bytes of it: searched around each, not over the text.
        RuleSpec {
            window: Some(Window {
                before: 256,
                after: 1024,
                multiline: true,
                filter: None,
            }),
            ..rule(
                "secret",
                r#"(?:\b[A-Za-z_][\w.]*|\))\(\s*[urb]?["']([A-Za-z0-9_\-]{8,64})["']\s*,\s*[urb]?["']([^"'\s]{16,256})["']"#,
                2,
                None,
                &["(\"", "('"],
                Some(id_then_secret),
            )
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`marker_lines`] against the scan it replaced (every line holding
    /// a marker's characters, judged whole), on texts mixing marker lines
    /// with lines that hold the same characters elsewhere.
    #[test]
    fn marker_lines_match_a_scan_of_every_candidate_line() {
        fn reference(hay: &str) -> Vec<(usize, usize)> {
            let mut out = Vec::new();
            let mut from = 0;
            while let Some(at) = ["---", "...", "```"]
                .iter()
                .filter_map(|p| hay[from..].find(p))
                .min()
                .map(|i| from + i)
            {
                let line_start = hay[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = hay[at..].find('\n').map_or(hay.len(), |i| at + i);
                if is_marker(&hay[line_start..line_end]) {
                    out.push((line_start, line_end));
                }
                from = line_end;
            }
            out
        }
        let lines = [
            "---",
            "...",
            "```yaml",
            "  ```",
            "test a ... ok",
            "a---b",
            "----",
            "--- ",
            "...\r",
            "kind: Secret",
            "data:",
            "  k: djE=",
            "",
            " ---",
            "x ```",
            "``````",
            "-- -",
            "..",
        ];
        let mut seed: u64 = 0xd0c5;
        for _ in 0..3000 {
            let mut text = String::new();
            for i in 0..12 {
                crate::redact::tests::next_random(&mut seed);
                if i > 0 {
                    text.push(if seed >> 62 == 0 { '\r' } else { '\n' });
                    if seed >> 62 == 0 {
                        text.push('\n');
                    }
                }
                text.push_str(lines[(seed >> 33) as usize % lines.len()]);
            }
            assert_eq!(marker_lines(&text), reference(&text), "{text:?}");
        }
    }
}
