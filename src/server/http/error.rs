//! [`ApiError`]: every error answer, `{"error": {"code", "message", "field"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use portcullis_core::budget::OverBudget;
use portcullis_core::request::RequestError;

use super::extract::BodyError;
use crate::server::metrics::Transport;
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

    /// The same error, naming the field it is about.
    pub(super) fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
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
        self.counted_on(state, Transport::Http)
    }

    /// This error, counted as a request that came by `transport` and was
    /// rejected before a decision.
    pub(crate) fn counted_on(self, state: &AppState, transport: Transport) -> Self {
        state.metrics.record_rejection(transport, self.code);
        self
    }

    /// The HTTP status it answers with.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code (`invalid_country`, …).
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    /// What went wrong, for a person.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The field at fault, as a path.
    pub(crate) fn field(&self) -> Option<&str> {
        self.field.as_deref()
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
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong, and where.
#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// A stable code; see the list below.
    #[schema(value_type = ErrorCode)]
    code: &'static str,
    /// What went wrong, for a person.
    message: String,
    /// The field at fault as a path (`customer.nationalities[0]`,
    /// `requests[3].customer.name`); `null` when no one field is.
    field: Option<String>,
}

/// Every error code, its HTTP status and what it means: the schema of `code`
/// in the published API document.
pub(crate) const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("malformed_json", 400, "the body is not JSON"),
    ("missing_field", 400, "a required field is absent"),
    (
        "unknown_field",
        400,
        "a field the API does not know (a typo must not drop a fact)",
    ),
    ("duplicate_field", 400, "a key given twice in one object"),
    (
        "invalid_type",
        400,
        "a value of the wrong JSON type (an array where an object is expected, …)",
    ),
    (
        "invalid_value",
        400,
        "a value out of its domain, or a request beyond a bound (names, parties, name length, `at` on a live endpoint)",
    ),
    (
        "invalid_country",
        400,
        "not an ISO 3166-1 alpha-2 country code",
    ),
    ("invalid_ip", 400, "not an IPv4 or IPv6 address"),
    ("bad_body", 400, "the body could not be read"),
    (
        "unauthorized",
        401,
        "an admin endpoint without the right bearer token",
    ),
    (
        "admin_disabled",
        403,
        "admin endpoints are off (no `--admin-token`)",
    ),
    ("not_found", 404, "no such endpoint"),
    (
        "shadow_off",
        404,
        "shadow evaluation is off (`serve --shadow DIR`)",
    ),
    (
        "method_not_allowed",
        405,
        "the endpoint does not take this method (see `Allow`)",
    ),
    (
        "request_timeout",
        408,
        "not complete within `--request-timeout`; no decision was made",
    ),
    ("payload_too_large", 413, "the body is over `--max-body`"),
    (
        "batch_too_large",
        413,
        "a batch of more than `--max-batch` requests",
    ),
    (
        "internal",
        500,
        "a fault of the service (never bad input); see its log",
    ),
    (
        "records_unavailable",
        503,
        "decision records cannot be written, so no decision is given",
    ),
];

/// The schema of an error `code`: one of [`ERROR_CODES`].
pub(crate) struct ErrorCode;

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use std::fmt::Write as _;
        let mut description = String::from("A stable error code:\n");
        for (code, status, meaning) in ERROR_CODES {
            let _ = writeln!(description, "- `{code}` ({status}): {meaning}");
        }
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(ERROR_CODES.iter().map(|(code, _, _)| *code)))
            .description(Some(description))
            .into()
    }
}

impl ToSchema for ErrorCode {}

impl From<OverBudget> for ApiError {
    fn from(_: OverBudget) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request was not complete within the time limit (--request-timeout)",
        )
    }
}
