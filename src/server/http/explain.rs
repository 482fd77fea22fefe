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
use super::error::ApiError;
use super::extract::Decoded;
use crate::server::state::AppState;

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
