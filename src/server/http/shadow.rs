//! `GET /v1/shadow`: the shadow candidate, the live requests compared on it,
//! the changes by transition, measure and jurisdiction, and the last changes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use crate::server::shadow::ShadowStatus;
use crate::server::state::AppState;

pub(super) async fn shadow(
    State(state): State<Arc<AppState>>,
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
