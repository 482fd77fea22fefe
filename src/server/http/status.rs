//! What the service says about itself: `/healthz`, `/readyz`, `/v1/status`, `/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use portcullis_core::lifecycle::Instant;
use portcullis_core::policies::Measures;

use super::error::ApiError;
use crate::server::reload::{ReloadFailure, ReloadOutcome, rfc3339};
use crate::server::state::AppState;

pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    // A snapshot is always in force: the service does not start without one,
    // and a failed reload keeps the previous one. Records may not be writable.
    if state.recorder.as_ref().is_some_and(|r| !r.healthy()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": "records_unavailable"})),
        )
            .into_response();
    }
    Json(json!({"status": "ready", "policy_revision": &*state.snapshot().revision})).into_response()
}

pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let measures = state
        .snapshot()
        .policies
        .measures(Instant::now(), std::time::Duration::ZERO);
    state.metrics.set_measures(&measures.counts());
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::internal("cannot render metrics", e))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

#[derive(Serialize)]
pub(super) struct Status {
    policy_revision: Arc<str>,
    #[serde(serialize_with = "rfc3339")]
    loaded_at: std::time::SystemTime,
    policies: usize,
    /// Policies decided by their guards alone, without Cedar (see `slicing`).
    policies_decided_by_guards: usize,
    designations: usize,
    test_cases: usize,
    geo_databases: Vec<portcullis_core::snapshot::GeoInfo>,
    policy_dir: std::path::PathBuf,
    last_reload_error: Option<ReloadFailure>,
    /// The last build, whatever its result and whoever asked for it.
    last_reload: Option<Arc<ReloadOutcome>>,
    records: Option<portcullis_audit::RecordsStatus>,
    /// The measures in force, scheduled and expired now, and those starting
    /// or ending within `serve --upcoming`.
    measures: Measures,
    version: &'static str,
}

pub(super) async fn status(State(state): State<Arc<AppState>>) -> Json<Status> {
    let s = state.snapshot();
    Json(Status {
        policy_revision: s.revision.clone(),
        loaded_at: s.loaded_at,
        policies: s.policies.len(),
        policies_decided_by_guards: s.policies.decided_by_guards(),
        designations: s.designations.len(),
        test_cases: s.test_cases,
        geo_databases: s.geo_info(),
        policy_dir: s.sources.policies.clone(),
        last_reload_error: state.last_failure(),
        last_reload: state.last_reload(),
        records: state
            .recorder
            .as_ref()
            .map(portcullis_audit::Recorder::status),
        measures: s.policies.measures(Instant::now(), state.upcoming),
        version: env!("CARGO_PKG_VERSION"),
    })
}
