//! The `[redaction]` configuration: custom rules and the allow-list, and
//! their validation.
//!
//! Everything is checked when the [`Redactor`] is built, so
//! a bad config fails at start-up with a message naming the rule, never at
//! the first message, and never echoing a regex (which may hold a secret).

use std::collections::HashSet;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

#[cfg(doc)]
use super::Redactor;
use super::Rule;

/// Compiled-program size limit for user-supplied regexes, so a hostile or
/// careless config cannot make construction eat memory.
const CUSTOM_REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A user-defined rule from the config file (`[[redaction.rules]]`).
///
/// Lets operators catch organisation-specific secrets (internal ticket
/// tokens, license keys) without a code change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    /// Kind used in the placeholder, `[REDACTED:<name>]`; snake_case.
    pub name: String,
    /// Rust `regex` syntax. If it has capture groups, only the first
    /// participating group is redacted; otherwise the whole match.
    pub regex: String,
    /// Optional minimum Shannon entropy (bits per character, 0..=8) of the
    /// redacted span, to skip low-entropy look-alikes.
    #[serde(default)]
    pub entropy_min: Option<f64>,
}

/// The `[redaction]` table of `mcp-bridge.toml`.
///
/// Custom rules extend the built-ins; allow entries carve out known-safe
/// strings (test fixtures, public keys) that would otherwise be redacted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Extra rules, run after the built-in ones.
    #[serde(default)]
    pub rules: Vec<CustomRule>,
    /// Regexes; a would-be redaction that lies fully inside a match of any
    /// of them is kept.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// Why a [`Settings`] could not be turned into a [`Redactor`].
///
/// Messages name the offending rule or allow entry and say what to fix; they
/// never repeat the regex text, which may contain a literal secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `[[redaction.rules]]` entry is unusable.
    #[error("invalid redaction rule `{name}`: {reason}")]
    InvalidRule {
        /// The rule's `name` (or `#<index>` when the name itself is empty).
        name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An entry of `redaction.allow` is unusable.
    #[error("invalid redaction allow entry #{index}: {reason}")]
    InvalidAllow {
        /// Zero-based position in the `allow` list.
        index: usize,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// Keep only the part of a `regex` error that describes the problem, not the
/// echoed pattern (which may contain a literal secret).
fn describe_regex_error(err: &regex::Error) -> String {
    match err {
        regex::Error::Syntax(msg) => {
            let detail = msg
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error:"))
                .map_or("syntax error", str::trim);
            format!("regex does not compile ({detail}); fix the `regex` value")
        }
        regex::Error::CompiledTooBig(_) => {
            "regex is too large once compiled; simplify it or split it into several rules".into()
        }
        _ => "regex does not compile; fix the `regex` value".into(),
    }
}

/// True when `re` can produce an empty match, probed on a few short texts.
fn matches_empty(re: &Regex) -> bool {
    ["", " ", "a", "a b", "0", "-", "\n", "ab12", "A.b"]
        .iter()
        .any(|probe| re.find_iter(probe).any(|m| m.is_empty()))
}

fn is_snake_case(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && !name.ends_with('_')
        && !name.contains("__")
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

fn compile_custom(re: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(re).size_limit(CUSTOM_REGEX_SIZE_LIMIT).build()
}

pub(super) fn validate_rule(
    index: usize,
    rule: &CustomRule,
    seen: &mut HashSet<String>,
) -> Result<Rule, Error> {
    let invalid = |reason: String| Error::InvalidRule {
        name: if rule.name.is_empty() {
            format!("#{index}")
        } else {
            rule.name.clone()
        },
        reason,
    };
    if rule.name.is_empty() {
        return Err(invalid("`name` is empty; give the rule a snake_case name".into()));
    }
    if !is_snake_case(&rule.name) {
        return Err(Error::InvalidRule {
            // Only echo names that are short; they end up in the placeholder.
            name: rule.name.chars().take(64).collect(),
            reason:
                "`name` must be snake_case (a-z, 0-9, single `_`, starting with a letter, at most 64 chars)"
                    .into(),
        });
    }
    if !seen.insert(rule.name.clone()) {
        return Err(invalid(
            "another custom rule has the same `name`; names must be unique".into(),
        ));
    }
    if let Some(e) = rule.entropy_min
        && !(e.is_finite() && (0.0..=8.0).contains(&e))
    {
        return Err(invalid(
            "`entropy_min` must be between 0 and 8 (bits per character)".into(),
        ));
    }
    let regex = compile_custom(&rule.regex).map_err(|e| invalid(describe_regex_error(&e)))?;
    if matches_empty(&regex) {
        return Err(invalid(
            "regex can match the empty string; require at least one character (e.g. `+` instead of `*`)"
                .into(),
        ));
    }
    Ok(Rule {
        anchor: super::anchors::Anchor::None,
        gate: None,
        kind: Arc::from(rule.name.as_str()),
        regex: super::lazy_regex::LazyRegex::compiled(regex),
        group: 1,
        entropy_min: rule.entropy_min,
        check: None,
        classify: None,
        window: None,
        parse: None,
    })
}

/// Compile the allow-list entries of `settings`.
pub(super) fn compile_allow(settings: &Settings) -> Result<Vec<Regex>, Error> {
    let mut allow = Vec::with_capacity(settings.allow.len());
    for (index, pattern) in settings.allow.iter().enumerate() {
        let re = compile_custom(pattern).map_err(|e| Error::InvalidAllow {
            index,
            reason: describe_regex_error(&e),
        })?;
        if matches_empty(&re) {
            return Err(Error::InvalidAllow {
                index,
                reason: "regex can match the empty string; make it match the text to keep".into(),
            });
        }
        allow.push(re);
    }
    Ok(allow)
}
