//! Value limits that the JSON schema alone cannot express exactly (bytes vs
//! characters) or that every entry point must share (MCP and the CLI).
//! Each check names the field and the limit, never the value.

use super::{Error, Result};
use crate::config::Limits;
use crate::redact::Redactor;

/// Whether `id` has the exact shape of a conversation id: `conv_` and 32
/// lowercase hex digits. Only such a value is ever recorded from a refused
/// call; anything else (a key pasted into the field, escape sequences) is not.
pub fn is_conversation_id(id: &str) -> bool {
    id.len() == 37
        && id.starts_with("conv_")
        && id[5..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The role of the human overseer's messages, which no seat may take.
pub const OVERSEER_ROLE: &str = "overseer";

/// Roles are identifiers agents put in prompts: 1..=64 of `[A-Za-z0-9_-]`,
/// never the overseer's, and never something redaction would change.
///
/// A role is stored and shown verbatim (it names the seat in every
/// message, export and audit entry), and `[A-Za-z0-9_-]{1,64}` fits
/// `ghp_…`, `npm_…` and other vendor tokens. Refusing such a role, rather
/// than storing its redacted form, keeps roles readable identifiers; the
/// refusal names the field and never echoes the value.
pub fn role(field: &str, value: &str, limits: &Limits, redactor: &Redactor) -> Result<()> {
    let n = value.chars().count();
    if n == 0 || n > limits.max_role_chars {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {} characters long (got {n})", limits.max_role_chars),
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::invalid(
            field,
            "may contain only letters, digits, '-' and '_' (e.g. \"backend\", \"security-reviewer\")",
        ));
    }
    if value.eq_ignore_ascii_case(OVERSEER_ROLE) {
        return Err(Error::invalid(
            field,
            "\"overseer\" is reserved for the human overseer, whom no agent can play; choose another role",
        ));
    }
    if redactor.redact(value).changed() {
        return Err(Error::invalid(
            field,
            "looks like a credential (secret redaction would change it); use a plain name such as \"backend\"",
        ));
    }
    Ok(())
}

/// The body: non-empty, at most `max_message_bytes` bytes of UTF-8 before redaction.
pub fn message(value: &str, limits: &Limits) -> Result<()> {
    if value.len() > limits.max_message_bytes {
        return Err(Error::MessageTooLarge {
            size: value.len(),
            limit: limits.max_message_bytes,
        });
    }
    if value.trim().is_empty() {
        return Err(Error::invalid("message", "must not be empty"));
    }
    Ok(())
}

/// Up to `max_files` non-empty paths of at most `max_path_chars` characters,
/// without control characters (they would corrupt terminals and logs).
pub fn files(values: &[String], limits: &Limits) -> Result<()> {
    if values.len() > limits.max_files {
        return Err(Error::invalid(
            "files_involved",
            format!(
                "at most {} paths are allowed (got {})",
                limits.max_files,
                values.len()
            ),
        ));
    }
    for (i, p) in values.iter().enumerate() {
        let field = format!("files_involved[{i}]");
        let n = p.chars().count();
        if n == 0 || n > limits.max_path_chars {
            return Err(Error::invalid(
                field,
                format!("must be 1 to {} characters long (got {n})", limits.max_path_chars),
            ));
        }
        if p.chars().any(char::is_control) {
            return Err(Error::invalid(
                field,
                "must not contain control characters (newlines, tabs, ...)",
            ));
        }
    }
    Ok(())
}

/// An optional free-text note of at most `max_note_chars` characters.
pub fn note(value: &str, limits: &Limits) -> Result<()> {
    let n = value.chars().count();
    if n > limits.max_note_chars {
        return Err(Error::invalid(
            "note",
            format!("must be at most {} characters (got {n})", limits.max_note_chars),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        let l = Limits::default();
        let r = Redactor::builtin();
        assert!(role("my_role", "backend", &l, &r).is_ok());
        assert!(role("my_role", "security-reviewer_2", &l, &r).is_ok());
        for bad in ["", "a b", "é", "x".repeat(65).as_str(), "a/b"] {
            assert!(role("my_role", bad, &l, &r).is_err(), "{bad}");
        }
    }

    /// Issue 12: a role fits `[A-Za-z0-9_-]{1,64}`, and so does a GitHub
    /// token; it must be refused, naming the field and not echoing it.
    #[test]
    fn refuses_a_role_that_is_a_credential_without_echoing_it() {
        let l = Limits::default();
        let r = Redactor::builtin();
        let token = "ghp_Zx81kQ0pLm3vT7a9Qw12Er34Ty56Ui78Op90";
        let err = role("partner_role", token, &l, &r).expect_err("a token is not a role");
        let text = err.to_string();
        assert!(text.contains("partner_role"), "{text}");
        assert!(!text.contains(token) && !text.contains("Zx81kQ0p"), "{text}");
        assert!(role("my_role", "npm-publisher", &l, &r).is_ok());
    }

    #[test]
    fn message_limit_is_in_bytes() {
        let l = Limits::default();
        assert!(message(&"x".repeat(51_200), &l).is_ok());
        match message(&"x".repeat(51_201), &l) {
            Err(Error::MessageTooLarge {
                size: 51_201,
                limit: 51_200,
            }) => {}
            other => panic!("{other:?}"),
        }
        // 25,601 two-byte characters are 51,202 bytes.
        assert!(message(&"é".repeat(25_601), &l).is_err());
    }

    #[test]
    fn files_limits() {
        let l = Limits::default();
        assert!(files(&vec!["src/main.rs".into(); 50], &l).is_ok());
        assert!(files(&vec!["a".into(); 51], &l).is_err());
        assert!(files(&["x".repeat(1025)], &l).is_err());
        assert!(files(&["a\nb".into()], &l).is_err());
        assert!(files(&["".into()], &l).is_err());
    }
}
