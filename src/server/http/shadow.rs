//! `GET /v1/shadow`: the shadow candidate, the live requests compared on it,
//! the changes by transition, measure and jurisdiction, and the last changes
//! (admin token, as `POST /v1/explain`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::admin::Admin;
use super::error::ApiError;
use crate::server::shadow::ShadowStatus;
use crate::server::state::AppState;

/// Needs the admin token: the last changes tie request ids to designations matched.
pub(super) async fn shadow(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
) -> Result<Json<ShadowStatus>, ApiError> {
    match &state.shadow {
        Some(shadow) => Ok(Json(shadow.status())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "shadow_off",
            "shadow evaluation is off (serve --shadow DIR)",
        )),
    }
}
