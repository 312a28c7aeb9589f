//! Secret redaction (interim rule set; the full engine replaces this file).

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use regex::Regex;

/// A user-defined rule from the config file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    /// The kind shown in the placeholder.
    pub name: String,
    /// The pattern.
    pub regex: String,
    /// Minimum Shannon entropy of a match.
    #[serde(default)]
    pub entropy_min: Option<f64>,
}

/// `[redaction]` table of mcp-bridge.toml.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Extra rules.
    #[serde(default)]
    pub rules: Vec<CustomRule>,
    /// Matches inside these are kept.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// Why a redactor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A custom rule is invalid.
    #[error("redaction rule {name:?} is invalid: {reason}")]
    InvalidRule {
        /// Rule name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Compiled rules.
#[derive(Clone)]
pub struct Redactor {
    rules: Arc<Vec<(String, Regex)>>,
}

/// Redacted text plus the kinds found.
pub struct Redacted<'a> {
    /// The text with placeholders.
    pub text: Cow<'a, str>,
    /// Kinds redacted, sorted, deduplicated.
    pub kinds: Vec<String>,
}

impl Redacted<'_> {
    /// Whether anything was replaced.
    pub fn changed(&self) -> bool {
        !self.kinds.is_empty()
    }
}

static BUILTIN: LazyLock<Redactor> = LazyLock::new(|| {
    let rules = [
        (
            "private_key",
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)",
        ),
        ("aws_access_key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
        (
            "github_token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b",
        ),
        ("openai_key", r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}\b"),
        ("bearer_token", r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}"),
        (
            "password",
            r#"(?i)\b(?:password|passwd|pwd|secret|api_key|apikey|token)\s*[=:]\s*["']?[^\s"']{6,}"#,
        ),
        ("bridge_token", r"\bmcpb_[A-Za-z0-9_-]{43}\b"),
    ];
    Redactor {
        rules: Arc::new(
            rules
                .iter()
                .map(|(k, r)| ((*k).to_owned(), Regex::new(r).expect("built-in rule compiles")))
                .collect(),
        ),
    }
});

impl Redactor {
    /// Built-in rules only.
    pub fn builtin() -> Redactor {
        BUILTIN.clone()
    }

    /// Built-in plus custom rules.
    pub fn new(settings: &Settings) -> Result<Redactor, Error> {
        let mut rules = (*BUILTIN.rules).clone();
        for r in &settings.rules {
            let re = Regex::new(&r.regex).map_err(|e| Error::InvalidRule {
                name: r.name.clone(),
                reason: e.to_string(),
            })?;
            rules.push((r.name.clone(), re));
        }
        Ok(Redactor {
            rules: Arc::new(rules),
        })
    }

    /// Replaces every secret with a typed placeholder.
    pub fn redact<'a>(&self, text: &'a str) -> Redacted<'a> {
        let mut out = Cow::Borrowed(text);
        let mut kinds = Vec::new();
        for (kind, re) in self.rules.iter() {
            if re.is_match(&out) {
                let replaced = re
                    .replace_all(&out, format!("[REDACTED:{kind}]").as_str())
                    .into_owned();
                out = Cow::Owned(replaced);
                kinds.push(kind.clone());
            }
        }
        kinds.sort();
        kinds.dedup();
        Redacted { text: out, kinds }
    }
}

/// Convenience entry point.
pub fn redact(text: &str) -> String {
    Redactor::builtin().redact(text).text.into_owned()
}
