//! The built-in rule table, one file per family of mechanism.
//!
//! | file | mechanism |
//! | --- | --- |
//! | [`keys`] | key material blocks (PEM, OpenSSH, PGP) |
//! | [`vendors`] | vendor token formats with a recognisable prefix or shape |
//! | [`pairs`] | the secret half of a pair found next to its public id (AWS key id + secret, Twilio SID + auth token, Alibaba id + secret) |
//! | [`context`] | credentials recognised by where they sit: URLs, `Authorization` headers, CLI flags, registry auth files, XML, Kubernetes `data:`, HCL |
//! | [`generic`] | the keyword-anchored detector: a secret-ish key, flag or word, then a value judged by shape and entropy |
//!
//! Order is priority: when two rules claim exactly the same span, the
//! earlier one names it, so specific token formats come before generic
//! `key = value` rules.
//!
//! Regex conventions: `\b` is rewritten to the ASCII word boundary
//! `(?-u:\b)` at compile time (Unicode `\b` would force the slow engine on
//! non-ASCII input); tokens whose alphabet contains `-` end with
//! `(?:[^A-Za-z0-9_\-]|$)` instead of `\b` and keep the secret in group 1.

mod checks;
mod context;
pub mod generic;
mod keys;
mod pairs;
mod vendors;

use std::borrow::Cow;
use std::ops::Range;

use regex::Captures;

/// Extra validation a match must pass before it is redacted.
pub type Check = fn(&Hit<'_>) -> bool;

/// Like [`Check`], but also decides the kind and the exact span to replace
/// (`None` = reject). Used where the value's end or kind depends on context:
/// a bare value that stops at the next `&name=` only inside a URL query, a
/// key whose name says `password` or `api_key`.
pub type Classify = fn(&Hit<'_>) -> Option<Found>;

/// What a [`Classify`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Kind for the placeholder.
    pub kind: &'static str,
    /// Byte range in the haystack to replace.
    pub range: Range<usize>,
}

/// A regex match under consideration, as seen by a [`Check`].
pub struct Hit<'h> {
    /// The whole text being redacted.
    pub haystack: &'h str,
    /// All capture groups of the match.
    pub caps: &'h Captures<'h>,
    /// The span that would be replaced.
    pub secret: regex::Match<'h>,
}

/// Which cheap test gates a rule in the one-pass `RegexSet` prefilter.
#[derive(Debug, Clone, Copy)]
pub enum Prefilter {
    /// Case-insensitive literals, one of which must occur.
    Keywords(&'static [&'static str]),
    /// A regex of its own (pairing rules: "an AWS key id occurs somewhere").
    Pattern(&'static str),
    /// The rule's own regex (rules with no literal to anchor on).
    Itself,
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
    /// What gates the rule in the prefilter set.
    pub prefilter: Prefilter,
    /// Shape check on the match.
    pub check: Option<Check>,
    /// Check that also names the kind and the span (generic rules).
    pub classify: Option<Classify>,
}

/// A rule gated by keywords (empty = by its own regex), with an optional
/// check: the common case of every table.
pub(crate) fn rule(
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
        prefilter: if keywords.is_empty() {
            Prefilter::Itself
        } else {
            Prefilter::Keywords(keywords)
        },
        check,
        classify: None,
    }
}

/// The built-in rules in priority order.
pub fn builtin_rules() -> Vec<RuleSpec> {
    let mut rules = keys::rules();
    rules.extend(vendors::rules());
    // Context before pairs: a bearer token that happens to sit near an
    // AWS key id is named by its header, not as the id's secret half.
    rules.extend(context::rules());
    rules.extend(pairs::rules());
    rules.extend(context::late_rules());
    rules.extend(generic::rules());
    rules
}
