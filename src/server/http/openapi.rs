//! `GET /v1/openapi.json`: the API described as OpenAPI 3.1, generated from
//! the wire types themselves (their `utoipa::ToSchema` derives) and the
//! `#[utoipa::path]` attribute on each handler. The same document is committed
//! as `docs/openapi.json` (`portcullis openapi` prints it); a test fails when
//! the two differ, and validates real answers of the router against it.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::error::ErrorBody;
use super::{admin, decide, explain, shadow, status};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "Special-measures decisions for IaaS providers (EO 13984): each provisioning request is enriched (IP geolocation, screening of names against designated persons), evaluated against the Cedar policies in force, and answered allow, deny or conditional, with the reasons, and recorded. The same decisions are served over gRPC (`portcullis.v1.Decisions`, `proto/portcullis/v1/decisions.proto`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        decide::one,
        decide::batch,
        explain::explain,
        status::status,
        shadow::shadow,
        admin::reload,
        admin::account_closed,
        status::healthz,
        status::readyz,
        status::metrics,
        document,
    ),
    components(schemas(ErrorBody)),
    modifiers(&AdminToken),
    tags(
        (name = "decisions", description = "What control planes call: one decision, or a batch"),
        (name = "authors", description = "For policy authors: a decision with its trace, the shadow candidate (admin token)"),
        (name = "operations", description = "Health, readiness, status, metrics, reload"),
    ),
)]
pub(super) struct ApiDoc;

/// The `admin_token` security scheme: `Authorization: Bearer <--admin-token>`.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The service's `--admin-token` (or `PORTCULLIS_ADMIN_TOKEN`); admin endpoints answer 403 `admin_disabled` when none is configured",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, pretty-printed, built once.
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut text = ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot render the API document: {e}\"}}"));
        text.push('\n');
        text
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json")),
)]
pub(super) async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`: the process answers.
    #[schema(pattern = "^ok$")]
    pub status: &'static str,
}

/// `GET /readyz`.
#[derive(Serialize, ToSchema)]
pub(super) struct Readiness {
    /// `ready` (200) or `not_ready` (503).
    pub status: &'static str,
    /// The revision in force, when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_revision: Option<String>,
    /// Why not, when not ready: `records_unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// `POST /v1/admin/reload`, once the build is done (200 or 422).
#[derive(Serialize, ToSchema)]
pub(super) struct Reloaded {
    /// Whether the new snapshot is in force.
    pub reloaded: bool,
    /// `success`, `failure` (invalid inputs) or `refused` (the designations
    /// would shrink beyond `--max-list-shrink`).
    pub result: String,
    /// Reloads are numbered from 1; one build answers every request up to its id.
    pub reload_id: u64,
    /// The revision in force once the build was done with.
    pub policy_revision: String,
    /// The problems found, each located (file, line, column); empty on success.
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<serde_json::Value>,
}

/// `POST /v1/admin/reload` while the build is still running (202).
#[derive(Serialize, ToSchema)]
pub(super) struct ReloadAccepted {
    /// Always `true`.
    pub accepted: bool,
    /// Its outcome shows in `/v1/status` (`last_reload`) under this id.
    pub reload_id: u64,
    /// The revision still in force.
    pub policy_revision: String,
    /// What to do next.
    pub message: String,
}
