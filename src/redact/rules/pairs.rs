//! The secret half of a credential pair, recognised by its public half.
//!
//! An AWS secret access key is 40 characters of base64 with nothing to
//! mark it; a Twilio auth token is 32 hex digits, the shape of an MD5. Alone
//! they are indistinguishable from hashes, but agents almost always paste
//! them next to their public id (`AKIA…`, `AC…`), in code, CLI arguments or
//! prose. Each rule here matches the secret's shape and accepts it only when
//! the id occurs within [`WINDOW`] bytes; the prefilter runs the rule only
//! when the id occurs in the message at all.

use std::sync::LazyLock;

use regex::Regex;

use super::{Hit, Prefilter, RuleSpec, Window};
use crate::redact::entropy::{Classes, shannon};
use crate::redact::heuristics::is_placeholder;

/// How far (bytes, either side) the public id may be from the secret:
/// enough for a few lines of config or a sentence between them.
const WINDOW: usize = 600;

const AWS_ID: &str = r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b";
const TWILIO_SID: &str = r"\b(?:AC|SK)[0-9a-f]{32}\b";
const ALIBABA_ID: &str = r"\bLTAI[A-Za-z0-9]{12,20}\b";
const RAZORPAY_ID: &str = r"\brzp_(?:live|test)_[A-Za-z0-9]{14}\b";

static AWS_ID_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(AWS_ID).expect("valid"));
static TWILIO_SID_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(TWILIO_SID).expect("valid"));
static ALIBABA_ID_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(ALIBABA_ID).expect("valid"));
static RAZORPAY_ID_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(RAZORPAY_ID).expect("valid"));

/// Whether `id` matches within [`WINDOW`] bytes of the hit.
fn near(h: &Hit<'_>, id: &Regex) -> bool {
    let hay = h.haystack;
    let mut from = h.secret.start().saturating_sub(WINDOW);
    while !hay.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (h.secret.end() + WINDOW).min(hay.len());
    while !hay.is_char_boundary(to) {
        to += 1;
    }
    id.find_iter(&hay[from..to]).any(|m| {
        let (s, e) = (from + m.start(), from + m.end());
        e <= h.secret.start() || s >= h.secret.end()
    })
}

/// Random-looking: upper and lower case, high entropy, not a placeholder.
/// Hex digests (one case) fail the first test.
fn random_b64(s: &str) -> bool {
    let c = Classes::of(s);
    c.upper && c.lower && shannon(s) >= 3.5 && !is_placeholder(s)
}

fn aws_pair(h: &Hit<'_>) -> bool {
    random_b64(h.secret.as_str()) && near(h, &AWS_ID_RE)
}

/// 32 hex digits with letters and digits, next to a Twilio SID.
fn twilio_pair(h: &Hit<'_>) -> bool {
    let s = h.secret.as_str();
    let c = Classes::of(s);
    c.lower && c.digit && shannon(s) >= 3.0 && near(h, &TWILIO_SID_RE)
}

fn alibaba_pair(h: &Hit<'_>) -> bool {
    random_b64(h.secret.as_str()) && near(h, &ALIBABA_ID_RE)
}

fn razorpay_pair(h: &Hit<'_>) -> bool {
    random_b64(h.secret.as_str()) && near(h, &RAZORPAY_ID_RE)
}

fn pair(kind: &'static str, shape: &'static str, anchor: &'static str, check: super::Check) -> RuleSpec {
    RuleSpec {
        kind,
        regex: shape.into(),
        group: 1,
        entropy_min: None,
        prefilter: Prefilter::Pattern(anchor),
        check: Some(check),
        classify: None,
        // Only the id's neighbourhood can hold its secret.
        window: Some(Window {
            before: WINDOW + 64,
            after: WINDOW + 64,
            multiline: true,
            filter: None,
        }),
        parse: None,
    }
}

/// The pairing rules.
pub fn rules() -> Vec<RuleSpec> {
    vec![
        pair(
            "aws_secret_key",
            r"(?:^|[^A-Za-z0-9/+=])([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)",
            AWS_ID,
            aws_pair,
        ),
        pair(
            "twilio_auth_token",
            r"(?:^|[^A-Za-z0-9])([0-9a-f]{32})(?:[^A-Za-z0-9]|$)",
            TWILIO_SID,
            twilio_pair,
        ),
        pair(
            "alibaba_secret_key",
            r"(?:^|[^A-Za-z0-9])([A-Za-z0-9]{30})(?:[^A-Za-z0-9]|$)",
            ALIBABA_ID,
            alibaba_pair,
        ),
        pair(
            "razorpay_secret",
            r"(?:^|[^A-Za-z0-9])([A-Za-z0-9]{24})(?:[^A-Za-z0-9]|$)",
            RAZORPAY_ID,
            razorpay_pair,
        ),
    ]
}
