//! `GET /v1/shadow`: the shadow candidate, the live requests compared on it,
//! the changes by transition, measure and jurisdiction, and the last changes
//! (admin token, as `POST /v1/explain`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::admin::Admin;
use super::error::{ApiError, ErrorBody};
use crate::server::shadow::ShadowStatus;
use crate::server::state::AppState;

/// The shadow candidate, the live requests compared on it, the changes by
/// transition, measure and jurisdiction, and the last changes.
///
/// Needs the admin token: the last changes tie request ids to designations matched.
#[utoipa::path(
    get,
    path = "/v1/shadow",
    tag = "authors",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "What the candidate would change", body = ShadowStatus),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`admin_disabled`", body = ErrorBody),
        (status = 404, description = "`shadow_off`: no `serve --shadow DIR`", body = ErrorBody),
    ),
)]
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
