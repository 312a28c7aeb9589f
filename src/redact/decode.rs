//! Decoding of base64: `user:password` credentials, and text that may
//! hold secrets of its own.
//!
//! HTTP Basic auth, docker `config.json` `auth` fields and npm `_auth` all
//! carry `base64(user:password)`. Decoding is what tells such a value from
//! any other base64 blob next to the same word: it is a credential exactly
//! when it decodes to printable text with a `:` between two non-empty parts.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Longest value worth decoding; credentials are short.
const MAX_ENCODED: usize = 1024;

/// True when `value` is base64 (standard or URL-safe, padded or not) of
/// printable `user:password` with both parts non-empty.
pub fn is_basic_credentials(value: &str) -> bool {
    let v = value.trim();
    if v.len() < 8 || v.len() > MAX_ENCODED {
        return false;
    }
    let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(v).ok());
    let Some(bytes) = decoded else { return false };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return false;
    };
    if text.chars().any(char::is_control) {
        return false;
    }
    match text.split_once(':') {
        Some((user, pass)) => !user.is_empty() && !pass.is_empty() && !user.contains(char::is_whitespace),
        None => false,
    }
}

/// Longest blob decoded to look for secrets inside it.
const MAX_BLOB: usize = 64 * 1024;

/// `value` decoded from base64 (standard or URL-safe, padded or not) when
/// the result is text: UTF-8 with no control character but line breaks
/// and tabs. Images, archives and random key bytes are not.
pub fn decode_text(value: &str) -> Option<String> {
    let v = value.trim();
    if v.len() < 8 || v.len() > MAX_BLOB {
        return None;
    }
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(v).ok())?;
    let text = String::from_utf8(bytes).ok()?;
    (!text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')))
    .then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_table() {
        let cases: &[(&str, bool)] = &[
            ("dXNlcjpwYXNzd29yZA==", true), // user:password
            ("dXNlcjpwYXNzd29yZA", true),   // unpadded
            ("YWRtaW46UzNjcjN0IQ==", true), // admin:S3cr3t!
            ("aGVsbG8gd29ybGQ=", false),    // hello world
            ("dXNlcjo=", false),            // user: (empty password)
            ("not base64 at all", false),
            ("iVBORw0KGgoAAAANSUhEUg==", false), // PNG header bytes
        ];
        for &(v, want) in cases {
            assert_eq!(is_basic_credentials(v), want, "{v}");
        }
    }
}
