//! The HTTP API (`docs/api.md`): routes, handlers and the one error type.
//!
//! Every error answer is an [`ApiError`]; request bodies are read and decoded by
//! one extractor ([`Decoded`]) that rejects into it; single and batch decisions
//! share one decide-and-record path ([`decide`]).

mod admin; // POST /v1/admin/reload
pub(crate) mod decide; // POST /v1/decide, /v1/decide/batch: one decide-and-record path
mod error; // ApiError: the only error body on the wire
mod explain; // POST /v1/explain (admin): a decision and its trace
mod extract; // the body extractor: size limit, early 413, decoding into ApiError
mod openapi; // GET /v1/openapi.json: the API as OpenAPI 3.1, from the wire types
mod shadow; // GET /v1/shadow: what the shadow candidate would change
mod status; // /healthz, /readyz, /v1/status, /metrics

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use portcullis_core::budget::OverBudget;

use crate::server::deadline::DeadlineLayer;
use crate::server::state::AppState;
pub use error::ApiError;
pub use extract::{BodyError, Decoded, RequestBody};
pub use openapi::document_json as openapi_document;

/// Builds the router over shared state.
pub fn router(state: Arc<AppState>) -> Router {
    let limits = state.limits.clone();
    Router::new()
        .route("/v1/decide", post(decide::one))
        .route("/v1/decide/batch", post(decide::batch))
        .route("/v1/explain", post(explain::explain))
        .route("/v1/status", get(status::status))
        .route("/v1/shadow", get(shadow::shadow))
        .route("/v1/admin/reload", post(admin::reload))
        .route("/v1/accounts/{id}/closed", post(admin::account_closed))
        .route("/healthz", get(status::healthz))
        .route("/readyz", get(status::readyz))
        .route("/metrics", get(status::metrics))
        .route("/v1/openapi.json", get(openapi::document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(DeadlineLayer::new(limits.request_timeout, timed_out))
        .with_state(state)
}

fn timed_out() -> Response {
    ApiError::from(OverBudget).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take this method (see the `Allow` header)",
    )
}
