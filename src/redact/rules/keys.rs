//! Key material blocks: PEM, OpenSSH, PGP and PuTTY private keys.

use super::{RuleSpec, rule};

/// Key blocks come first: a block swallows every token-shaped line inside it.
pub fn rules() -> Vec<RuleSpec> {
    vec![
        rule(
            "private_key",
            r#"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|(?:\r?\n|\\n)[^"]*)"#,
            0,
            None,
            &["-----begin"],
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
