//! The dashboard's pages, one module each, and what they share: the page
//! shell ([`layout`]), the embedded assets, and the error page.

pub mod assets;
pub mod audit;
pub mod conversation;
pub mod layout;
pub mod list;
pub mod proposals;
pub mod stats;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::bridge::AdminError;

/// A request that cannot be served: its status and a sentence for the
/// overseer. The sentence never holds a token, a credential or a body;
/// ids in it were checked for shape first.
#[derive(Debug)]
pub struct Failure {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong and what to do.
    pub message: String,
}

impl Failure {
    /// A failure with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 404 for an id of the wrong shape, without repeating it.
    pub fn bad_id(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no such {what}"))
    }
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Self {
        let status = match &e {
            AdminError::NotFound { .. } | AdminError::NoSuchSession { .. } => StatusCode::NOT_FOUND,
            AdminError::AgentSeat { .. } | AdminError::Ended { .. } => StatusCode::CONFLICT,
            AdminError::InvalidSearch { .. } | AdminError::Refused(_) => StatusCode::BAD_REQUEST,
            AdminError::Store(crate::store::Error::Busy) => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::Store(_) => {
                tracing::error!(error = %e, "a dashboard request failed");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the operation failed; the server's log says why",
                );
            }
            _ => StatusCode::CONFLICT,
        };
        Self::new(status, e.to_string())
    }
}

impl From<crate::bridge::Error> for Failure {
    fn from(e: crate::bridge::Error) -> Self {
        match e {
            crate::bridge::Error::Internal(_) => {
                tracing::error!(error = %e, "a dashboard request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the operation failed; the server's log says why",
                )
            }
            e => Self::new(StatusCode::CONFLICT, e.to_string()),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = layout::bare(
            "Error",
            maud::html! {
                h1 { "Refused" }
                p.error { (self.message) }
                p { a href=(format!("{}/", super::PREFIX)) { "Back to the conversations" } }
            },
        );
        (self.status, body).into_response()
    }
}

/// What page handlers return.
pub type PageResult = Result<Response, Failure>;
