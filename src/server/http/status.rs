//! What the service says about itself: `/healthz`, `/readyz`, `/v1/status`, `/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use portcullis_core::lifecycle::Instant;
use portcullis_core::policies::Measures;

use super::error::{ApiError, ErrorBody};
use super::openapi::{Health, Readiness};
use crate::server::reload::{ReloadFailure, ReloadOutcome, rfc3339};
use crate::server::state::AppState;

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process answers", body = Health)),
)]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// A valid snapshot is in force and decision records can be written.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: `status` is `ready`, with the revision in force", body = Readiness),
        (status = 503, description = "Not ready: decision records cannot be written (`reason`)", body = Readiness),
    ),
)]
pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    // A snapshot is always in force: the service does not start without one,
    // and a failed reload keeps the previous one. Records may not be writable.
    if !state.ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "not_ready",
                policy_revision: None,
                reason: Some("records_unavailable"),
            }),
        )
            .into_response();
    }
    Json(Readiness {
        status: "ready",
        policy_revision: Some(state.snapshot().revision.to_string()),
        reason: None,
    })
    .into_response()
}

/// Prometheus text: decisions by outcome (and transport), latency, rejected
/// requests by code, reloads, the revision in force, measures, records.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 500, description = "`internal`: the metrics could not be rendered", body = ErrorBody),
    ),
)]
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

/// `GET /v1/status`: what is in force and how it got there.
#[derive(Serialize, ToSchema)]
pub(super) struct Status {
    /// The revision in force: content hash of its policies, designations and geo data.
    #[schema(value_type = String)]
    policy_revision: Arc<str>,
    /// When the snapshot in force was built (RFC 3339).
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String)]
    loaded_at: std::time::SystemTime,
    /// Policies in the set.
    policies: usize,
    /// Policies decided by their guards alone, without Cedar (see `slicing`).
    policies_decided_by_guards: usize,
    /// Designated persons loaded.
    designations: usize,
    /// Policy test cases that passed before it went live.
    test_cases: usize,
    /// The geo databases in force.
    geo_databases: Vec<portcullis_core::snapshot::GeoInfo>,
    /// The policy directory it was built from.
    #[schema(value_type = String)]
    policy_dir: std::path::PathBuf,
    /// The last reload that did not go live, if any.
    last_reload_error: Option<ReloadFailure>,
    /// The last build, whatever its result and whoever asked for it.
    #[schema(value_type = Option<ReloadOutcome>)]
    last_reload: Option<Arc<ReloadOutcome>>,
    /// Decision records: directory, files, records written, queue, health;
    /// `null` when records are off.
    #[schema(value_type = Option<Object>)]
    records: Option<portcullis_audit::RecordsStatus>,
    /// The measures in force, scheduled and expired now, and those starting
    /// or ending within `serve --upcoming`.
    #[schema(value_type = Object)]
    measures: Measures,
    /// The bundle in force and the registry's state (`serve --bundle`);
    /// absent when serving a directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<crate::server::bundle::BundleStatus>,
    /// The service's version.
    #[schema(value_type = String)]
    version: &'static str,
}

/// Revision, load time, counts, geo databases, the last reload and its
/// errors, records, measures in force, scheduled, expired and upcoming.
#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "operations",
    responses((status = 200, description = "What is in force", body = Status)),
)]
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
        bundle: state.bundle.as_ref().map(|b| b.status()),
        version: env!("CARGO_PKG_VERSION"),
    })
}
