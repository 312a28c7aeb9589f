//! Shape checks shared by the rule tables.

use super::Hit;
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
