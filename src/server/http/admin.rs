//! `POST /v1/admin/reload[?force=true]`, behind a bearer token.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorBody};
use super::openapi::{ReloadAccepted, Reloaded};
use crate::server::reload::ReloadRequest;
use crate::server::state::AppState;

/// `POST /v1/admin/reload[?force=true]`: asks for a reload and waits for it
/// for up to half the request time limit: 200 with the new revision, 422 with
/// the errors (the snapshot in force is unchanged), or, for a long build, 202
/// with the reload's id (its outcome then shows in `/v1/status`). Requests
/// that arrive during a build share the next one.
#[utoipa::path(
    post,
    path = "/v1/admin/reload",
    tag = "operations",
    params(("force" = Option<bool>, Query, description = "Accept a designation list that shrinks beyond `--max-list-shrink`")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Rebuilt: the new snapshot is in force", body = Reloaded),
        (status = 202, description = "Still building; its outcome will show in `/v1/status` (`last_reload`)", body = ReloadAccepted),
        (status = 400, description = "`unknown_field` or `invalid_value` in the query", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "`admin_disabled`: no `--admin-token`", body = ErrorBody),
        (status = 422, description = "Refused: the inputs are invalid (`errors`) or the list would shrink too far; the snapshot in force is unchanged", body = Reloaded),
    ),
)]
pub(super) async fn reload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    authorize_admin(&state, &headers)?;
    let force = force_param(uri.query())?;
    let id = state.request_reload(ReloadRequest {
        trigger: "admin",
        force,
    });
    let wait = state.limits.request_timeout / 2;
    let Ok(outcome) = tokio::time::timeout(wait, state.wait_reload(id)).await else {
        return Ok((
            StatusCode::ACCEPTED,
            Json(ReloadAccepted {
                accepted: true,
                reload_id: id,
                policy_revision: state.snapshot().revision.to_string(),
                message: "the reload is still building; its outcome will show in /v1/status (last_reload)".into(),
            }),
        )
            .into_response());
    };
    let status = if outcome.succeeded() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let errors = outcome
        .errors
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal("cannot serialise the reload's errors", e))?;
    Ok((
        status,
        Json(Reloaded {
            reloaded: outcome.succeeded(),
            result: outcome.result.to_owned(),
            reload_id: outcome.id,
            policy_revision: outcome.policy_revision.to_string(),
            errors,
        }),
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

/// An admin caller: the request carries the admin bearer token. As an
/// extractor it runs before the body is read, so a caller without the token
/// learns nothing from how a body would be validated.
pub(super) struct Admin;

impl axum::extract::FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        authorize_admin(state, &parts.headers).map(|()| Admin)
    }
}

/// Checks `Authorization: Bearer <token>` in constant time.
/// The body of `POST /v1/accounts/{id}/closed` (optional).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ClosureBody {
    /// Why the account was closed (at most 1,024 characters), kept in the record.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The answer to `POST /v1/accounts/{id}/closed`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct AccountClosed {
    /// The customer id as records hold it (its keyed hash, unless records keep ids in clear).
    pub customer_id: String,
    /// When the closure was recorded (RFC 3339).
    pub closed_at: String,
}

/// Longest customer id (in bytes) and reason (in characters) accepted.
const MAX_ID: usize = 8192;
const MAX_REASON: usize = 1024;

/// `POST /v1/accounts/{id}/closed`: records that an account was closed (an
/// `account_closed` record in the decision records, written like a
/// decision's). Retention by account keeps the account's records for the
/// keep period after it. The id is any the decision requests accept
/// (non-empty once trimmed).
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/closed",
    tag = "operations",
    params(("id" = String, Path, description = "The customer id, as decision requests give it")),
    request_body(content = Option<ClosureBody>, description = "Optional: why the account was closed"),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Recorded", body = AccountClosed),
        (status = 400, description = "`invalid_value` (`field`: `id`, `reason`), or a body that is not a JSON object as `POST /v1/decide` refuses one (`malformed_json`, `invalid_type`, `unknown_field`…)", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "`admin_disabled`: no `--admin-token`", body = ErrorBody),
        (status = 409, description = "`records_off` (`--records off`) or `customer_id_dropped` (`--records-identity drop`): nothing could record the closure", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 503, description = "`records_unavailable`: the record cannot be written now", body = ErrorBody),
    ),
)]
pub(super) async fn account_closed(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    uri: axum::http::Uri,
    path: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    body: super::extract::RequestBody,
) -> Result<Response, ApiError> {
    let bad = |field: &str, message: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_value", message).with_field(field)
    };
    if uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_field",
            "this endpoint takes no query parameters",
        ));
    }
    let axum::extract::Path(id) = path.map_err(|e| bad("id", format!("not a customer id: {e}")))?;
    if id.trim().is_empty() || id.len() > MAX_ID {
        return Err(bad(
            "id",
            format!("a customer id is not empty and at most {MAX_ID} bytes"),
        ));
    }
    let body: ClosureBody = if body.iter().all(u8::is_ascii_whitespace) {
        ClosureBody::default()
    } else if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_type",
            "the body must be a JSON object: {\"reason\": \"…\"}",
        ));
    } else {
        portcullis_core::request::decode(&body).map_err(ApiError::from)?
    };
    if let Some(r) = &body.reason
        && r.chars().count() > MAX_REASON
    {
        return Err(bad(
            "reason",
            format!("a reason is at most {MAX_REASON} characters"),
        ));
    }
    let Some(recorder) = state.recorder.as_ref() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "records_off",
            "decision records are off (--records off): nothing can record the closure",
        ));
    };
    match recorder.account_closed(&id, body.reason.as_deref()).await {
        Ok((customer_id, closed_at)) => Ok(Json(AccountClosed {
            customer_id,
            closed_at,
        })
        .into_response()),
        Err(portcullis_audit::ClosureError::Dropped) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "customer_id_dropped",
            "records drop customer ids (--records-identity drop): a closure could not name the account",
        )),
        Err(portcullis_audit::ClosureError::Unavailable(e)) => {
            Err(ApiError::records_unavailable(&e))
        }
    }
}

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
