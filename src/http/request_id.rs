//! A request id for every HTTP request: 128 random bits in hex, made here
//! (a client's `x-request-id` is not trusted into the logs), echoed in the
//! `x-request-id` response header, and carried by a span around everything
//! logged while the request is served, so an operator can find every line
//! of one request, and a client can quote the id in a report.
//!
//! The span is at ERROR level so it is enabled whatever `MCP_BRIDGE_LOG`
//! lets through: a span below the filter would leave its events without
//! the id. It holds the id only: never a path, a header or a name. Work
//! rmcp spawns for the request runs in spans opened inside this one, so
//! its lines list the id too (`spans` in JSON, the span prefix in text).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The response header that carries the id.
pub const HEADER: &str = "x-request-id";

/// The id of one HTTP request.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    /// A fresh id: 32 lowercase hex digits.
    pub fn new() -> Self {
        Self(hex::encode(rand::random::<[u8; 16]>()).into())
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware: a new id, its span around the rest of the request, and
/// the response header.
pub async fn assign(request: Request, next: Next) -> Response {
    let id = RequestId::new();
    let span = tracing::error_span!("request", request_id = %id.0);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_hex() {
        let (a, b) = (RequestId::new(), RequestId::new());
        assert_eq!(a.0.len(), 32);
        assert!(
            a.0.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a.0, b.0);
    }
}
