//! Judging a value found after a secret-bearing key.
//!
//! Shared by every key/value rule: the key picks a family and strength
//! ([`family_of`]), the joint and the surrounding syntax say whether the
//! value is a literal, and the value's own shape decides.

use super::Found;
use super::family::{PUBLIC_KEY_QUALIFIERS, Strength, family_of};
use crate::redact::decode::is_basic_credentials;
use crate::redact::entropy::Classes;
use crate::redact::heuristics::{ValueContext, plausible_secret_value, token_shaped};

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
    // Inside a template expression (`{{ lookup('vault', 'secret=...') }}`,
    // `${{ secrets.TOKEN }}`): the text names where a secret is fetched
    // from at render time; it is not the secret.
    if inside_template(hay, key.start) || inside_identifier(hay, key.start) {
        return None;
    }
    // psql interpolation `PASSWORD :'name'`: a variable, not a literal.
    if value.quoted && hay[..value.start].ends_with(":'") && hay[..value.start - 2].ends_with([' ', '\t']) {
        return None;
    }
    // cmd's `set "NAME=value"` quotes the whole assignment: the value runs
    // to the closing quote, through `&` and `^`.
    let cmd_quoted = !value.quoted
        && hay[..key.start].ends_with('"')
        && hay[..key.start]
            .trim_end_matches('"')
            .trim_end()
            .to_ascii_lowercase()
            .ends_with("set");
    let end = if value.quoted {
        value.end
    } else if cmd_quoted {
        let line_end = hay[value.start..]
            .find('\n')
            .map_or(hay.len(), |i| value.start + i);
        hay[value.start..line_end]
            .rfind('"')
            .map_or(line_end, |i| value.start + i)
    } else {
        bare_end(hay, key.start, value.start, value.end)
    };
    let v = &hay[value.start..end];
    if v.is_empty() {
        return None;
    }
    // `AgentCredential::generate()`, `Secret::new(bytes)`: a path, whose
    // `::` is no `key: value`.
    if hay[key.end..].starts_with("::") {
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
    // A type or a reference in code (`token: TokenHash,`, `credential:
    // &AgentCredential)`, `secret: &'a SecretKey`) and a YAML anchor
    // (`password: &default_pw`) name something; they hold no value.
    let annotated = !value.quoted && sep == ":" && (code || v.starts_with('&'));
    if annotated && names_a_type(v) {
        return None;
    }
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

/// Whether `v` reads as a type or a name rather than a value: an optional
/// `&`, `&mut ` or lifetime, then a path of letters and `_` (with `::`,
/// generics), no digit. A secret of letters alone after `: ` in code is
/// rare next to the types agents paste from their diffs.
fn names_a_type(v: &str) -> bool {
    let rest = v.strip_prefix('&').unwrap_or(v);
    let rest = rest.strip_prefix("mut ").unwrap_or(rest);
    let rest = match rest.strip_prefix('\'') {
        Some(after) => after.split_once(' ').map_or("", |(_, t)| t),
        None => rest,
    };
    let mut chars = rest.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && rest
            .chars()
            .all(|c| c.is_ascii_alphabetic() || matches!(c, '_' | ':' | '<' | '>'))
}

/// Whether `pos` lies inside an ARN or URN (`arn:aws:secretsmanager:…:secret:name`):
/// a resource name, whose `secret:` is a path segment, not a key.
fn inside_identifier(hay: &str, pos: usize) -> bool {
    let token_start = hay[..pos]
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '=' | ','))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let token = hay[token_start..pos].to_ascii_lowercase();
    token.starts_with("arn:") || token.starts_with("urn:")
}

/// Whether `pos` lies inside an unclosed `{{`, `{%` or `${` on its line.
fn inside_template(hay: &str, pos: usize) -> bool {
    let line = &hay[hay[..pos].rfind('\n').map_or(0, |i| i + 1)..pos];
    let open = ["{{", "{%", "${"].iter().filter_map(|o| line.rfind(o)).max();
    let close = ["}}", "%}", "}"].iter().filter_map(|c| line.rfind(c)).max();
    match (open, close) {
        (Some(o), Some(c)) => o > c,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The word before `key_start` (skipping spaces) is a public qualifier:
/// `public key: age1…`, `primary key abc`.
fn public_word_before(hay: &str, key_start: usize) -> bool {
    let before = hay[..key_start].trim_end_matches([' ', '\t', '_', '-']);
    let word_start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| !c.is_ascii_alphanumeric())
        .map_or(0, |(i, c)| i + c.len_utf8());
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
