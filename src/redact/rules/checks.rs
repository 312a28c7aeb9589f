//! Shape checks shared by the rule tables.

use super::Hit;
use super::family::is_public_key_name;
use crate::redact::entropy::{Classes, shannon};
use crate::redact::heuristics::is_placeholder;

/// Upper, lower and digit present (generated keys; not `sk-learn-...`).
pub fn mixed(h: &Hit<'_>) -> bool {
    Classes::of(h.secret.as_str()).mixed_alnum()
}

/// Upper and lower case present.
pub fn two_case(h: &Hit<'_>) -> bool {
    let c = Classes::of(h.secret.as_str());
    c.upper && c.lower
}

/// Letters and digits present.
pub fn alnum(h: &Hit<'_>) -> bool {
    let c = Classes::of(h.secret.as_str());
    (c.upper || c.lower) && c.digit
}

/// At least 3 bits of entropy per char over the whole token: a prefix
/// followed by random material, not `ghp_xxxx…`. Deliberately no
/// placeholder test: a vendor-shaped `…EXAMPLE` key costs nothing to hide.
pub fn random_tail(h: &Hit<'_>) -> bool {
    shannon(h.secret.as_str()) >= 3.0
}

/// Not a documentation placeholder.
pub fn not_placeholder(h: &Hit<'_>) -> bool {
    !is_placeholder(h.secret.as_str())
}

/// AWS secret access key: 40 chars of mixed base64 (a lower-case hex SHA
/// next to the word "secret" is not one).
pub fn aws_secret(h: &Hit<'_>) -> bool {
    let s = h.secret.as_str();
    let c = Classes::of(s);
    c.upper && c.lower && (c.digit || c.symbol) && !is_placeholder(s)
}

/// The value of a key that is public by design (`NEXT_PUBLIC_…=`,
/// `VITE_…:`): what a frontend build ships to every browser.
pub fn assigned_to_public_key(h: &Hit<'_>) -> bool {
    let hay = h.haystack;
    let line = &hay[hay[..h.secret.start()].rfind('\n').map_or(0, |i| i + 1)..h.secret.start()];
    let Some(before) = line
        .trim_end_matches(['"', '\'', '`', ' ', '\t'])
        .strip_suffix(['=', ':'])
    else {
        return false;
    };
    let before = before.trim_end_matches(['"', '\'', ' ', '\t']);
    let start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$')))
        .map_or(0, |(i, c)| i + c.len_utf8());
    is_public_key_name(&before[start..])
}

/// [`random_tail`], unless assigned to a public-by-design key: JWTs and
/// browser API keys in `NEXT_PUBLIC_SUPABASE_ANON_KEY=eyJ…`.
pub fn random_tail_not_public(h: &Hit<'_>) -> bool {
    random_tail(h) && !assigned_to_public_key(h)
}
