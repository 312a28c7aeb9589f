//! Key material blocks: PEM, OpenSSH, PGP and PuTTY private keys.

use super::{Hit, RuleSpec, rule};
use crate::redact::heuristics::is_placeholder;

/// A key block holds key material, not a placeholder (`<your key here>`,
/// `...`) between its armour lines.
fn key_body(h: &Hit<'_>) -> bool {
    let block = h.secret.as_str();
    let body = block
        .split_once("-----")
        .and_then(|(_, r)| r.split_once("-----"))
        .map_or(block, |(_, r)| r);
    let body = body.split("-----END").next().unwrap_or(body);
    let body = body.replace("\\n", "\n");
    let material: usize = body
        .lines()
        .filter(|l| !l.contains(':'))
        .map(|l| {
            l.bytes()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
                .count()
        })
        .sum();
    // Fails closed: any material is redacted unless what little there is
    // reads as a placeholder (a real key cut short with `...` still has
    // lines of base64).
    let trimmed = body.trim();
    material > 0 && (material >= 64 || !is_placeholder(trimmed))
}

/// Key blocks come first: a block swallows every token-shaped line inside it.
pub fn rules() -> Vec<RuleSpec> {
    vec![
        rule(
            "private_key",
            r#"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|(?:\r?\n|\\n)[^"]*)"#,
            0,
            None,
            &["-----begin"],
            Some(key_body),
        ),
        // minisign / signify / rsign secret keys: a comment line, then the
        // key as one line of base64.
        rule(
            "private_key",
            r"(?i)\buntrusted comment:[^\n]*\bsecret key[^\n]*\r?\n[ \t]*([A-Za-z0-9+/]{40,}={0,2})",
            1,
            None,
            &["untrusted comment:"],
            None,
        ),
        // PuTTY .ppk: everything from the private lines to the MAC.
        rule(
            "private_key",
            r"\bPrivate-Lines:[ \t]*[0-9]+\r?\n(?:[ \t]*[A-Za-z0-9+/=]+\r?\n?)+",
            0,
            None,
            &["private-lines:"],
            None,
        ),
    ]
}
