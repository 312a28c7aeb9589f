//! How a tool's outcome reaches the client, in a form every client passes
//! on intact.
//!
//! A success carries its result twice: as `structuredContent` (validated by
//! clients against the tool's `outputSchema`) and in one text block, a
//! one-line summary followed by the same JSON on the block's last line. The
//! MCP spec asks a tool with structured content to also return the
//! serialized JSON as text, and clients on 2024-11-05 or 2025-03-26, or
//! hosts that hand the model only text, need every id, token and body from
//! the text alone.
//!
//! An error is `isError: true` with one text block: `code: sentence`, then
//! `{"error": {"code", "message", "field"?, "retry_after_seconds"?}}` on the
//! last line, and no `structuredContent`. Structured content on an error
//! would have to match the tool's `outputSchema`, which describes the
//! success; the TypeScript SDK's `Client.callTool` (and so MCP Inspector,
//! VS Code, Cursor) validates any structured content it gets and turns a
//! mismatch into a -32602 protocol error, so the agent would never see the
//! code or the retry-after.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::{Value, json};

use crate::bridge;

/// A refusal the agent can act on: the stable code clients match on, the
/// sentence for the model, the field at fault, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable snake_case code, documented in the README.
    pub code: &'static str,
    /// The sentence: what is wrong, the limit, what to do. Never a value the caller sent.
    pub message: String,
    /// The argument at fault, as named in the input schema.
    pub field: Option<String>,
    /// For `rate_limited`: whole seconds until the window has room.
    pub retry_after_seconds: Option<i64>,
}

impl From<&bridge::Error> for Refusal {
    fn from(e: &bridge::Error) -> Self {
        let retry_after_seconds = match e {
            bridge::Error::RateLimited { retry_after_ms, .. } => {
                Some(bridge::retry_after_secs(*retry_after_ms))
            }
            _ => None,
        };
        Refusal {
            code: e.code(),
            message: e.to_string(),
            field: e.field().map(str::to_owned),
            retry_after_seconds,
        }
    }
}

impl Refusal {
    /// The error object carried on the text block's last line.
    pub fn to_json(&self) -> Value {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
        if let Some(s) = self.retry_after_seconds {
            body["retry_after_seconds"] = json!(s);
        }
        json!({ "error": body })
    }

    /// The tool result: `isError`, text only (see the module doc).
    pub fn into_result(self) -> CallToolResult {
        let text = format!("{}: {}\n{}", self.code, one_line(&self.message), self.to_json());
        CallToolResult::error(vec![ContentBlock::text(text)])
    }
}

/// A use case's outcome as a tool result: on success the structured result
/// plus its summary and JSON as text; on failure [`error_result`].
pub fn render<T: Serialize>(result: bridge::Result<T>, summary: impl FnOnce(&T) -> String) -> CallToolResult {
    match result {
        Ok(value) => success(summary(&value), &value),
        Err(e) => error_result(&e),
    }
}

/// `structuredContent` plus one text block: the summary, a newline, and the
/// same JSON, compact, on the last line.
pub fn success<T: Serialize>(summary: String, value: &T) -> CallToolResult {
    let structured = match serde_json::to_value(value) {
        Ok(v) => v,
        Err(e) => {
            // Our result types always serialize; if one ever does not, the
            // agent gets an internal error rather than an empty success.
            tracing::error!(error = %e, "a tool result did not serialize");
            return Refusal {
                code: "internal_error",
                message: "an internal error occurred; the operator can find details in the server log".into(),
                field: None,
                retry_after_seconds: None,
            }
            .into_result();
        }
    };
    let text = format!("{}\n{}", one_line(&summary), structured);
    let mut r = CallToolResult::structured(structured);
    r.content = vec![ContentBlock::text(text)];
    r
}

/// A bridge error as an `isError` tool result; server faults are logged at
/// error, the agent's mistakes only at debug (clients show stderr to people).
pub fn error_result(e: &bridge::Error) -> CallToolResult {
    if e.is_server_fault() {
        tracing::error!(error = ?e, "tool call failed");
    } else {
        tracing::debug!(code = e.code(), "tool call refused");
    }
    Refusal::from(e).into_result()
}

/// The summary line with control characters shown escaped, so the JSON is
/// always on the last line and nothing steers a terminal.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The summary of delivered messages; the messages themselves are in the JSON.
pub fn inbox_summary(count: usize, remaining: i64, marked_read: bool) -> String {
    if count == 0 {
        return "No new messages.".to_owned();
    }
    let state = if marked_read {
        "now marked read"
    } else {
        "not marked read"
    };
    let mut text = format!("{count} message(s), {state}, oldest first, in `messages` below.");
    if remaining > 0 {
        text.push_str(&format!(" {remaining} more unread: call check_messages again."));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &CallToolResult) -> String {
        r.content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect()
    }

    fn last_line_json(r: &CallToolResult) -> Value {
        let t = text(r);
        serde_json::from_str(t.lines().last().unwrap()).unwrap()
    }

    #[test]
    fn an_error_has_no_structured_content_and_its_json_in_the_text() {
        let r = error_result(&bridge::Error::RateLimited {
            window: "10 per minute".into(),
            retry_after_ms: 1500,
        });
        assert_eq!(r.is_error, Some(true));
        assert!(r.structured_content.is_none(), "would break the outputSchema");
        assert!(text(&r).starts_with("rate_limited: rate limit reached"));
        assert_eq!(last_line_json(&r)["error"]["code"], "rate_limited");
        assert_eq!(last_line_json(&r)["error"]["retry_after_seconds"], 2);
    }

    #[test]
    fn an_error_names_its_field_in_the_text() {
        let r = error_result(&bridge::Error::invalid("token", "must be \"mcpb_\" + 43"));
        let err = &last_line_json(&r)["error"];
        assert_eq!(err["code"], "invalid_argument");
        assert_eq!(err["field"], "token");
        assert!(err.get("retry_after_seconds").is_none());
    }

    #[test]
    fn a_success_carries_its_json_in_the_text_too() {
        let r = success("Done.".into(), &json!({"token": "mcpb_x", "n": 1}));
        assert_eq!(r.structured_content, Some(json!({"token": "mcpb_x", "n": 1})));
        assert_eq!(last_line_json(&r), json!({"token": "mcpb_x", "n": 1}));
        assert!(text(&r).starts_with("Done.\n"));
    }

    #[test]
    fn a_control_character_in_a_summary_cannot_split_or_steer_the_text() {
        let r = success("a\nb\u{1b}[2K".into(), &json!({"k": "v\nw"}));
        let t = text(&r);
        assert_eq!(t.lines().count(), 2, "{t:?}");
        assert!(!t.contains('\u{1b}'));
        assert_eq!(last_line_json(&r), json!({"k": "v\nw"}));
    }
}
