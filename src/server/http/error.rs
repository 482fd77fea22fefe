//! [`ApiError`]: every error answer, `{"error": {"code", "message", "field"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use portcullis_core::budget::OverBudget;
use portcullis_core::request::RequestError;

use super::extract::BodyError;
use crate::server::state::AppState;

/// Every error answer: `{"error": {"code", "message", "field"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    pub(super) code: &'static str,
    message: String,
    pub(super) field: Option<String>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Decisions are refused while their records cannot be written (fail closed).
    pub(super) fn records_unavailable(e: &portcullis_audit::Unavailable) -> Self {
        tracing::warn!(error = %e, "decision refused: its record cannot be written");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "records_unavailable",
            "decision records cannot be written; no decision is given until they can",
        )
    }

    pub(super) fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the service log",
        )
    }
}

impl ApiError {
    /// This error, counted as a request rejected before a decision.
    pub(super) fn counted(self, state: &AppState) -> Self {
        state.metrics.record_rejection(self.code);
        self
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: e.code,
            message: e.message,
            field: e.field,
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.to_string(),
            ),
            BodyError::Unreadable(_) => {
                Self::new(StatusCode::BAD_REQUEST, "bad_body", e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {"code": self.code, "message": self.message, "field": self.field}
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<OverBudget> for ApiError {
    fn from(_: OverBudget) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request was not complete within the time limit (--request-timeout)",
        )
    }
}
