//! `POST /v1/decide` and `POST /v1/decide/batch`. Both validate their requests'
//! sizes, then go through one path ([`decide_and_record`]): decide on one
//! snapshot within the request's time budget, count, record, answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use portcullis_audit::Unavailable;
use portcullis_core::budget::{Budget as _, CancelOnDrop, OverBudget, Timebox};
use portcullis_core::decision::Decision;
use portcullis_core::engine::decide_within;
use portcullis_core::request::DecideRequest;

use super::error::{ApiError, ErrorBody};
use super::extract::Decoded;
use crate::server::metrics::Transport;
use crate::server::state::AppState;

/// Requests (or batches) that screen more names than this are decided on the
/// blocking pool, so that they never hold an async worker; smaller ones are
/// decided inline, the fast path.
const INLINE_NAMES: usize = 64;

/// Batches above this size are decided on the blocking pool.
const INLINE_BATCH: usize = 16;

/// One decision: allow, deny or conditional, with the reasons, conditions,
/// obligations and the facts decided on; recorded before it is answered.
#[utoipa::path(
    post,
    path = "/v1/decide",
    tag = "decisions",
    request_body(content = DecideRequest, description = "One provisioning request", example = json!({
        "request_id": "req-1",
        "action": "provision",
        "customer": {"id": "cust-123", "kind": "organization", "name": "Example Trading LLC",
                     "address": {"country": "AE"},
                     "beneficial_owners": [{"name": "Ivan Petrov", "nationalities": ["RU"]}]},
        "source_ips": ["8.8.8.8"],
        "resource": {"kind": "gpu_cluster", "region": "us-east-1", "gpu_count": 512}
    })),
    responses(
        (status = 200, description = "The decision", body = Decision),
        (status = 400, description = "Bad input, the field named: `malformed_json`, `missing_field`, `unknown_field`, `duplicate_field`, `invalid_type`, `invalid_value` (also a request beyond `--max-names`, `--max-parties`, `--max-name-length`, or `at` without `--allow-as-of`), `invalid_country`, `invalid_ip`, `bad_body`", body = ErrorBody,
            example = json!({"error": {"code": "invalid_country", "message": "invalid country code `Iran`: expected an ISO 3166-1 alpha-2 code such as `US`", "field": "customer.nationalities[0]"}})),
        (status = 408, description = "`request_timeout`: not decided within `--request-timeout`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is over `--max-body`", body = ErrorBody),
        (status = 500, description = "`internal`: a fault of the service, never bad input", body = ErrorBody),
        (status = 503, description = "`records_unavailable`: decision records cannot be written, so no decision is given", body = ErrorBody),
    ),
)]
pub(super) async fn one(
    State(state): State<Arc<AppState>>,
    Decoded(request): Decoded<DecideRequest>,
) -> Result<Answer<Decision>, ApiError> {
    let budget = Timebox::until(Instant::now() + state.limits.request_timeout);
    request
        .check_bounds(&state.limits.bounds())
        .map_err(|e| ApiError::from(e).counted(&state))?;
    let mut decisions = decide_and_record(&state, vec![request], budget, Transport::Http).await?;
    match decisions.pop() {
        Some(decision) => Ok(Answer(decision)),
        None => Err(ApiError::internal(
            "decision missing",
            "no decision for one request",
        )),
    }
}

/// Up to `--max-batch` requests, decided on one snapshot.
#[derive(Deserialize, ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub(super) struct BatchRequest {
    /// The requests, each as `POST /v1/decide` takes it.
    requests: Vec<DecideRequest>,
}

portcullis_core::objects_only!(BatchRequest);

/// The decisions, in the order of the requests.
#[derive(Serialize, ToSchema)]
pub(super) struct BatchResponse {
    /// One decision per request, in the same order.
    decisions: Vec<Decision>,
}

/// All the decisions, in order, or one error for the batch (the field
/// prefixed `requests[i].`).
#[utoipa::path(
    post,
    path = "/v1/decide/batch",
    tag = "decisions",
    request_body(content = BatchRequest, description = "Up to `--max-batch` (1,000) requests", example = json!({
        "requests": [
            {"request_id": "a", "action": "open_account", "customer": {"id": "c1", "name": "Ana Lima", "address": {"country": "BR"}}},
            {"request_id": "b", "action": "open_account", "customer": {"id": "c2", "name": "Bo Chen"}, "reseller": {"id": "r1", "country": "KP"}}
        ]
    })),
    responses(
        (status = 200, description = "Every decision, in order", body = BatchResponse),
        (status = 400, description = "Bad input in the batch or one of its requests (as `POST /v1/decide`; the field prefixed `requests[i].`)", body = ErrorBody),
        (status = 408, description = "`request_timeout`", body = ErrorBody),
        (status = 413, description = "`payload_too_large` or `batch_too_large` (over `--max-batch`)", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`records_unavailable`", body = ErrorBody),
    ),
)]
pub(super) async fn batch(
    State(state): State<Arc<AppState>>,
    Decoded(batch): Decoded<BatchRequest>,
) -> Result<Answer<BatchResponse>, ApiError> {
    let budget = Timebox::until(Instant::now() + state.limits.request_timeout);
    check_batch(&state, &batch.requests).map_err(|e| e.counted(&state))?;
    let decisions = decide_and_record(&state, batch.requests, budget, Transport::Http).await?;
    Ok(Answer(BatchResponse { decisions }))
}

/// The batch's size, then each request's bounds (the field named by index).
pub(crate) fn check_batch(state: &AppState, requests: &[DecideRequest]) -> Result<(), ApiError> {
    let max = state.limits.max_batch;
    if requests.len() > max {
        let mut e = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "a batch holds at most {max} requests, this one has {}",
                requests.len()
            ),
        );
        e.field = Some("requests".into());
        return Err(e);
    }
    let bounds = state.limits.bounds();
    for (i, r) in requests.iter().enumerate() {
        r.check_bounds(&bounds).map_err(|mut e| {
            e.field = Some(match e.field.take() {
                Some(f) => format!("requests[{i}].{f}"),
                None => format!("requests[{i}]"),
            });
            ApiError::from(e)
        })?;
    }
    Ok(())
}

/// Why requests give no decisions.
enum Failure {
    OverBudget,
    Records(Unavailable),
}

impl From<Failure> for ApiError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::OverBudget => ApiError::from(OverBudget),
            Failure::Records(e) => ApiError::records_unavailable(&e),
        }
    }
}

/// What the worker hands back: each decision with its time, and its record.
struct Decided {
    decisions: Vec<(Decision, Duration)>,
    records: Vec<Vec<u8>>,
}

/// The one path of every decision: refused while records cannot be written;
/// decided on one snapshot within `budget` (inline when light, else on the
/// blocking pool), each record built beside its decision; counted once all
/// are certain to be answered (a stopped request gives none); recorded
/// (queued, or written and synced with `--records-sync always`) before any
/// is answered.
pub(crate) async fn decide_and_record(
    state: &Arc<AppState>,
    requests: Vec<DecideRequest>,
    budget: Timebox,
    transport: Transport,
) -> Result<Vec<Decision>, ApiError> {
    records_ready(state)?;
    // Shadow work waits while this is decided.
    let _live = state.shadow.as_ref().map(|s| s.live());
    let names: usize = requests.iter().map(DecideRequest::names_to_screen).sum();
    let heavy = requests.len() > INLINE_BATCH || names > INLINE_NAMES;
    let worker_state = state.clone();
    let (decided, requests) = within_budget(heavy, budget, move |budget| {
        (decide_all(&worker_state, &requests, budget), requests)
    })
    .await?;
    let decided = decided?;
    let decisions: Vec<Decision> = decided
        .decisions
        .into_iter()
        .map(|(d, took)| {
            state
                .metrics
                .record_decision(transport, d.decision, took.as_secs_f64());
            d
        })
        .collect();
    if let Some(recorder) = &state.recorder {
        recorder
            .submit(decided.records)
            .await
            .map_err(|e| ApiError::records_unavailable(&e))?;
    }
    if let Some(shadow) = &state.shadow {
        for (request, decision) in requests.into_iter().zip(&decisions) {
            shadow.offer(request, decision.clone());
        }
    }
    Ok(decisions)
}

/// Decides every request on the snapshot in force and builds its record.
fn decide_all(
    state: &AppState,
    requests: &[DecideRequest],
    budget: &Timebox,
) -> Result<Decided, Failure> {
    let snapshot = state.snapshot();
    let max_matches = state.limits.max_matches;
    let mut decisions = Vec::with_capacity(requests.len());
    for r in requests {
        budget.check().map_err(|_| Failure::OverBudget)?;
        let started = Instant::now();
        let mut d = decide_within(&snapshot, r, budget).map_err(|_| Failure::OverBudget)?;
        d.facts.screening.truncate(max_matches);
        decisions.push((d, started.elapsed()));
    }
    let records = match &state.recorder {
        Some(recorder) => requests
            .iter()
            .zip(&decisions)
            .map(|(r, (d, _))| recorder.build(r, d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::Records)?,
        None => Vec::new(),
    };
    Ok(Decided { decisions, records })
}

/// Runs `work` within `budget`: inline when it is light, else on the blocking
/// pool. There, once this future is dropped (the request was answered 408 by
/// the deadline layer, or abandoned), the work stops at its next check.
pub(super) async fn within_budget<T: Send + 'static>(
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

/// Refuses before deciding while records cannot be written.
fn records_ready(state: &AppState) -> Result<(), ApiError> {
    match &state.recorder {
        Some(r) if !r.healthy() => Err(ApiError::records_unavailable(&Unavailable::NotWritable)),
        _ => Ok(()),
    }
}

/// `axum::Json` for answers: one buffer sized for a decision (axum's starts at
/// 128 bytes and grows several times for one).
pub(super) struct Answer<T>(T);

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
