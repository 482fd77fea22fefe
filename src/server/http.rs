//! The HTTP API (contract §2): routes, handlers and the one error type.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::server::body::{BodyError, RequestBody};
use crate::server::deadline::DeadlineLayer;
use crate::server::{reload::rfc3339, state::AppState};
use portcullis_core::budget::{Budget as _, CancelOnDrop, OverBudget, Timebox};
use portcullis_core::decision::Decision;
use portcullis_core::engine::decide_within;
use portcullis_core::request::{DecideRequest, RequestError, decode};

/// Builds the router over shared state.
pub fn router(state: Arc<AppState>) -> Router {
    let limits = state.limits.clone();
    Router::new()
        .route("/v1/decide", post(decide_one))
        .route("/v1/decide/batch", post(decide_batch))
        .route("/v1/status", get(status))
        .route("/v1/admin/reload", post(admin_reload))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(DeadlineLayer::new(limits.request_timeout, timed_out))
        .with_state(state)
}

/// Every error answer: `{"error": {"code", "message", "field"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Decisions are refused while their records cannot be written (fail closed).
    fn records_unavailable(e: &portcullis_audit::Unavailable) -> Self {
        tracing::warn!(error = %e, "decision refused: its record cannot be written");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "records_unavailable",
            "decision records cannot be written; no decision is given until they can",
        )
    }

    fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the service log",
        )
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

fn timed_out() -> Response {
    ApiError::from(OverBudget).into_response()
}

/// Requests (or batches) that screen more names than this are decided on the
/// blocking pool, so that they never hold an async worker; smaller ones are
/// decided inline, the fast path.
const INLINE_NAMES: usize = 64;

/// Runs `work` within `budget`: inline when it is light, else on the blocking
/// pool. There, once this future is dropped (the request was answered 408 by
/// the deadline layer, or abandoned), the work stops at its next check.
async fn within_budget<T: Send + 'static>(
    heavy: bool,
    budget: Timebox,
    work: impl FnOnce(&Timebox) -> T + Send + 'static,
) -> Result<T, ApiError> {
    if !heavy {
        return Ok(work(&budget));
    }
    let answered = CancelOnDrop::default();
    let budget = budget.cancelled_by(answered.flag());
    let done = tokio::task::spawn_blocking(move || work(&budget))
        .await
        .map_err(|e| ApiError::internal("decision task failed", e));
    drop(answered);
    done
}

async fn decide_one(
    State(state): State<Arc<AppState>>,
    body: Result<RequestBody, BodyError>,
) -> Result<Answer<Decision>, ApiError> {
    let budget = Timebox::until(Instant::now() + state.limits.request_timeout);
    let body = body.map_err(|e| reject(&state, e.into()))?;
    let request: DecideRequest = decode(&body).map_err(|e| reject(&state, e.into()))?;
    request
        .check_bounds(&state.limits.bounds())
        .map_err(|e| reject(&state, e.into()))?;
    records_ready(&state)?;
    let snapshot = state.snapshot();
    let heavy = request.names_to_screen() > INLINE_NAMES;
    let (request, decided, took) = within_budget(heavy, budget, move |budget| {
        let started = Instant::now();
        let decided = decide_within(&snapshot, &request, budget);
        (request, decided, started.elapsed())
    })
    .await?;
    let mut decision = decided?;
    decision.facts.screening.truncate(state.limits.max_matches);
    // Counted once it is certain to be answered: a stopped decision is not one.
    state
        .metrics
        .record_decision(decision.decision, took.as_secs_f64());
    if let Some(recorder) = &state.recorder {
        let line = recorder
            .build(&request, &decision)
            .map_err(|e| ApiError::records_unavailable(&e))?;
        recorder
            .submit(vec![line])
            .await
            .map_err(|e| ApiError::records_unavailable(&e))?;
    }
    Ok(Answer(decision))
}

/// `axum::Json` for answers: one buffer sized for a decision (axum's starts at
/// 128 bytes and grows several times for one).
struct Answer<T>(T);

impl<T: Serialize> IntoResponse for Answer<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => ApiError::internal("cannot serialise the answer", e).into_response(),
        }
    }
}

/// Refuses before deciding while records cannot be written.
fn records_ready(state: &AppState) -> Result<(), ApiError> {
    match &state.recorder {
        Some(r) if !r.healthy() => Err(ApiError::records_unavailable(
            &portcullis_audit::Unavailable::NotWritable,
        )),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
struct BatchRequest {
    requests: Vec<DecideRequest>,
}

portcullis_core::objects_only!(BatchRequest);

#[derive(Serialize)]
struct BatchResponse {
    decisions: Vec<Decision>,
}

/// Batches above this size are decided on the blocking pool.
const INLINE_BATCH: usize = 16;

/// Why a batch gives no decisions.
enum BatchFailure {
    OverBudget,
    Records(portcullis_audit::Unavailable),
}

async fn decide_batch(
    State(state): State<Arc<AppState>>,
    body: Result<RequestBody, BodyError>,
) -> Result<Json<BatchResponse>, ApiError> {
    let budget = Timebox::until(Instant::now() + state.limits.request_timeout);
    let body = body.map_err(|e| reject(&state, e.into()))?;
    let batch: BatchRequest = decode(&body).map_err(|e| reject(&state, e.into()))?;
    let max = state.limits.max_batch;
    if batch.requests.len() > max {
        let mut e = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "a batch holds at most {max} requests, this one has {}",
                batch.requests.len()
            ),
        );
        e.field = Some("requests".into());
        return Err(reject(&state, e));
    }
    let bounds = state.limits.bounds();
    for (i, r) in batch.requests.iter().enumerate() {
        r.check_bounds(&bounds).map_err(|mut e| {
            e.field = Some(match e.field.take() {
                Some(f) => format!("requests[{i}].{f}"),
                None => format!("requests[{i}]"),
            });
            reject(&state, e.into())
        })?;
    }
    records_ready(&state)?;
    let names: usize = batch
        .requests
        .iter()
        .map(DecideRequest::names_to_screen)
        .sum();
    let heavy = batch.requests.len() > INLINE_BATCH || names > INLINE_NAMES;
    let snapshot = state.snapshot();
    let max_matches = state.limits.max_matches;
    let recorder_state = state.clone();
    let built = within_budget(heavy, budget, move |budget| {
        let mut decided = Vec::with_capacity(batch.requests.len());
        for r in &batch.requests {
            budget.check().map_err(|_| BatchFailure::OverBudget)?;
            let started = Instant::now();
            let mut d =
                decide_within(&snapshot, r, budget).map_err(|_| BatchFailure::OverBudget)?;
            d.facts.screening.truncate(max_matches);
            decided.push((d, started.elapsed()));
        }
        let records = match &recorder_state.recorder {
            Some(recorder) => batch
                .requests
                .iter()
                .zip(&decided)
                .map(|(r, (d, _))| recorder.build(r, d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(BatchFailure::Records)?,
            None => Vec::new(),
        };
        Ok((decided, records))
    })
    .await?;
    let (decided, records) = built.map_err(|e| match e {
        BatchFailure::OverBudget => ApiError::from(OverBudget),
        BatchFailure::Records(e) => ApiError::records_unavailable(&e),
    })?;
    // Counted once they are certain to be answered: a stopped batch gives none.
    let decisions = decided
        .into_iter()
        .map(|(d, took)| {
            state
                .metrics
                .record_decision(d.decision, took.as_secs_f64());
            d
        })
        .collect();
    if let Some(recorder) = &state.recorder {
        recorder
            .submit(records)
            .await
            .map_err(|e| ApiError::records_unavailable(&e))?;
    }
    Ok(Json(BatchResponse { decisions }))
}

fn reject(state: &AppState, e: ApiError) -> ApiError {
    state.metrics.record_rejection(e.code);
    e
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
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

async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
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
struct Status {
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
    last_reload_error: Option<crate::server::reload::ReloadFailure>,
    /// The last build, whatever its result and whoever asked for it.
    last_reload: Option<Arc<crate::server::reload::ReloadOutcome>>,
    records: Option<portcullis_audit::RecordsStatus>,
    version: &'static str,
}

async fn status(State(state): State<Arc<AppState>>) -> Json<Status> {
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
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `POST /v1/admin/reload[?force=true]`: asks for a reload and waits for it
/// for up to half the request time limit: 200 with the new revision, 422 with
/// the errors (the snapshot in force is unchanged), or, for a long build, 202
/// with the reload's id (its outcome then shows in `/v1/status`). Requests
/// that arrive during a build share the next one.
async fn admin_reload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let force = force_param(uri.query())?;
    let id = state.request_reload(crate::server::reload::ReloadRequest {
        trigger: "admin",
        force,
    });
    let wait = state.limits.request_timeout / 2;
    let Ok(outcome) = tokio::time::timeout(wait, state.wait_reload(id)).await else {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "accepted": true,
                "reload_id": id,
                "policy_revision": &*state.snapshot().revision,
                "message": "the reload is still building; its outcome will show in /v1/status (last_reload)",
            })),
        )
            .into_response());
    };
    let status = if outcome.succeeded() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((
        status,
        Json(json!({
            "reloaded": outcome.succeeded(),
            "result": outcome.result,
            "reload_id": outcome.id,
            "policy_revision": &*outcome.policy_revision,
            "errors": &outcome.errors,
        })),
    )
        .into_response())
}

/// The `force` query parameter of the admin reload.
fn force_param(query: Option<&str>) -> Result<bool, ApiError> {
    let mut force = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
        if key != "force" {
            let mut e = ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_field",
                format!("unknown query parameter `{key}`: expected `force`"),
            );
            e.field = Some(key.to_owned());
            return Err(e);
        }
        force = match value {
            "true" | "1" => true,
            "false" | "0" => false,
            other => {
                let mut e = ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_value",
                    format!("`force={other}`: expected `true` or `false`"),
                );
                e.field = Some("force".into());
                return Err(e);
            }
        };
    }
    Ok(force)
}

/// Checks `Authorization: Bearer <token>` in constant time.
fn authorize_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.admin_token.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "admin endpoints are disabled: start the service with --admin-token",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // blake3::Hash compares in constant time; hashing first hides the length too.
    if blake3::hash(given.as_bytes()) == blake3::hash(expected.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        ))
    }
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
