//! `POST /v1/explain`: the decision on one request and its trace (see
//! `portcullis_core::explain`), behind the admin token: it shows the policies'
//! internals. It may set `at` (an author asks "as of when?"); nothing is
//! recorded, since no decision is served to a control plane.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;

use portcullis_core::budget::{OverBudget, Timebox};
use portcullis_core::explain::{Explanation, explain_within};
use portcullis_core::request::{Bounds, DecideRequest};

use super::admin::Admin;
use super::decide::within_budget;
use super::error::{ApiError, ErrorBody};
use super::extract::Decoded;
use crate::server::state::AppState;

/// The decision on one request and how it was reached: the countries and
/// where each came from, every policy of the action and what it did, a
/// summary. May set `at`; nothing is recorded.
#[utoipa::path(
    post,
    path = "/v1/explain",
    tag = "authors",
    security(("admin_token" = [])),
    request_body(content = DecideRequest, description = "A request as `POST /v1/decide` takes it; `at` is allowed"),
    responses(
        (status = 200, description = "The decision and its trace", body = Explanation),
        (status = 400, description = "Bad input, as `POST /v1/decide`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`admin_disabled`", body = ErrorBody),
        (status = 408, description = "`request_timeout`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
    ),
)]
pub(super) async fn explain(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    Decoded(request): Decoded<DecideRequest>,
) -> Result<Json<Explanation>, ApiError> {
    let budget = Timebox::until(Instant::now() + state.limits.request_timeout);
    let bounds = Bounds {
        allow_as_of: true,
        ..state.limits.bounds()
    };
    request
        .check_bounds(&bounds)
        .map_err(|e| ApiError::from(e).counted(&state))?;
    let snapshot = state.snapshot();
    let explained = within_budget(true, budget, move |budget| {
        explain_within(&snapshot, &request, budget)
    })
    .await?;
    let mut explanation = explained.map_err(|_| ApiError::from(OverBudget))?;
    // Matches listed as `/v1/decide` lists them.
    explanation
        .decision
        .facts
        .screening
        .truncate(state.limits.max_matches);
    Ok(Json(explanation))
}
