//! The published API document (`GET /v1/openapi.json`, `docs/openapi.json`):
//! current, and true of the real router: every answer below, good or bad,
//! is validated against the schema the document gives for its path, method
//! and status, and the README's requests against the request schema.

use std::collections::BTreeSet;

use axum::Router;
use axum::http::StatusCode;
use portcullis::server::state::Limits;
use serde_json::{Value, json};

use crate::support::{call, call_raw, default_geo, root, shipped_policies, snapshot, state_with};

const TOKEN: &str = "openapi-test-token";

fn router(token: Option<&str>) -> Router {
    let limits = Limits {
        allow_as_of: true,
        ..Limits::default()
    };
    portcullis::server::http::router(state_with(
        snapshot(&shipped_policies(), &[default_geo()]),
        limits,
        token,
    ))
}

fn served_document() -> Value {
    serde_json::from_str(portcullis::server::http::openapi_document()).unwrap()
}

/// A validator of one component schema, resolving `$ref`s inside the document.
fn validator(doc: &Value, reference: &str) -> jsonschema::Validator {
    let mut schema = doc.clone();
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    schema["$ref"] = json!(reference);
    jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("the document's schema {reference} does not compile: {e}"))
}

fn errors_of(doc: &Value, reference: &str, instance: &Value) -> Vec<String> {
    validator(doc, reference)
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// How `instance` fails the document's component schema `name` (none: it fits).
pub fn misfits(name: &str, instance: &Value) -> Vec<String> {
    errors_of(
        &served_document(),
        &format!("#/components/schemas/{name}"),
        instance,
    )
}

/// The schema reference the document gives for an answer.
fn answer_schema(doc: &Value, method: &str, path: &str, status: StatusCode) -> String {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not in the document");
    let response = &op["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which the document does not list"
    );
    response["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {path} {status}: no JSON schema"))
        .to_owned()
}

/// Calls the router and validates the answer against the document.
async fn checked(
    doc: &Value,
    r: &Router,
    method: &str,
    path: &str,
    body: impl Into<axum::body::Body>,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let uri = path.to_owned();
    let path = path.split('?').next().unwrap();
    let (status, bytes) = call_raw(r, &method.to_uppercase(), &uri, body, bearer).await;
    let answer: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e})"));
    let reference = answer_schema(doc, method, path, status);
    let errors = errors_of(doc, &reference, &answer);
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not fit {reference}: {errors:#?}\n{answer:#}"
    );
    (status, answer)
}

#[test]
fn the_committed_document_is_the_served_one() {
    let path = root().join("docs/openapi.json");
    let served = portcullis::server::http::openapi_document();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != served {
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, served).unwrap();
            return;
        }
        panic!(
            "docs/openapi.json is out of date: run `cargo run -- openapi > docs/openapi.json` \
             (or this test with UPDATE_OPENAPI=1) and commit it"
        );
    }
}

#[test]
fn the_document_covers_every_route_and_code() {
    let doc = served_document();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for route in [
        "/v1/decide",
        "/v1/decide/batch",
        "/v1/explain",
        "/v1/status",
        "/v1/shadow",
        "/v1/admin/reload",
        "/v1/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains(route), "{route} missing from {paths:?}");
    }
    let codes: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    // The codes the README documents, every one in the schema.
    for code in [
        "malformed_json",
        "missing_field",
        "unknown_field",
        "duplicate_field",
        "invalid_type",
        "invalid_value",
        "invalid_country",
        "invalid_ip",
        "not_found",
        "method_not_allowed",
        "request_timeout",
        "payload_too_large",
        "batch_too_large",
        "records_unavailable",
        "unauthorized",
        "admin_disabled",
        "shadow_off",
    ] {
        assert!(codes.contains(code), "{code} missing from {codes:?}");
    }
    // Admin endpoints declare the bearer scheme.
    for (method, path) in [
        ("post", "/v1/explain"),
        ("get", "/v1/shadow"),
        ("post", "/v1/admin/reload"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["security"],
            json!([{"admin_token": []}]),
            "{method} {path}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn the_router_serves_the_document() {
    let r = router(None);
    let (status, doc) = call(&r, "GET", "/v1/openapi.json", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc, served_document());
}

#[tokio::test]
async fn every_policy_test_case_is_answered_as_documented() {
    let doc = served_document();
    let r = router(Some(TOKEN));
    let mut decided = 0;
    for entry in std::fs::read_dir(shipped_policies().join("tests")).unwrap() {
        let cases: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for case in cases.as_array().unwrap() {
            let mut request = case["request"].clone();
            assert!(
                errors_of(&doc, "#/components/schemas/DecideRequest", &request).is_empty(),
                "{}: {:#?}",
                case["name"],
                errors_of(&doc, "#/components/schemas/DecideRequest", &request)
            );
            let (status, d) =
                checked(&doc, &r, "post", "/v1/decide", request.to_string(), None).await;
            assert_eq!(status, StatusCode::OK, "{}: {d}", case["name"]);
            // With every match explained, and through the author's endpoint.
            request["explain"] = json!(true);
            checked(&doc, &r, "post", "/v1/decide", request.to_string(), None).await;
            checked(
                &doc,
                &r,
                "post",
                "/v1/explain",
                request.to_string(),
                Some(TOKEN),
            )
            .await;
            decided += 1;
        }
    }
    assert!(decided >= 5, "only {decided} test cases");
}

#[tokio::test]
async fn decisions_with_every_fact_fit_the_schema() {
    let doc = served_document();
    let r = router(Some(TOKEN));
    let request = json!({
        "request_id": "full",
        "action": "provision",
        "customer": {
            "id": "c-1", "kind": "individual", "name": "Ivan Petrov",
            "aliases": ["I. Petrov"], "date_of_birth": "1970-03-01",
            "nationalities": ["ru"], "address": {"country": "RU", "city": "Moscow"},
            "email": "ivan@example.ru", "phone": "+7 495 000 0000",
            "payment": {"country": "RU", "method": "card"},
            "beneficial_owners": [{"name": "Li Wei", "nationalities": ["CN"], "ownership_percent": 30.5}],
            "identifiers": [{"kind": "passport", "value": "AB1234567", "country": "RU"}]
        },
        "reseller": {"id": "r-1", "country": "AE"},
        "source_ips": ["8.8.8.8", "2001:db8::1", "::ffff:1.1.1.1"],
        "resource": {"kind": "gpu_cluster", "region": "us-east-1", "gpu_count": 512},
        "satisfied_conditions": ["documentary_verification"],
        "explain": true,
        "at": "2026-12-01T00:00:00Z"
    });
    let (status, d) = checked(&doc, &r, "post", "/v1/decide", request.to_string(), None).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let batch = json!({"requests": [request, {"action": "open_account", "customer": {"id": "x", "name": "Ana Lima"}}]});
    let (status, b) = checked(
        &doc,
        &r,
        "post",
        "/v1/decide/batch",
        batch.to_string(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(b["decisions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn error_answers_fit_the_schema_and_their_listed_status() {
    let doc = served_document();
    let r = router(Some(TOKEN));
    let bad: &[(&str, String, &str)] = &[
        ("/v1/decide", "{".into(), "malformed_json"),
        ("/v1/decide", r#"{"action":"open_account"}"#.into(), "missing_field"),
        ("/v1/decide", r#"{"action":"open_account","customer":{"id":"c","name":"n","shoe":1}}"#.into(), "unknown_field"),
        ("/v1/decide", r#"{"action":"open_account","action":"provision","customer":{"id":"c","name":"n"}}"#.into(), "duplicate_field"),
        ("/v1/decide", r#"{"action":"open_account","customer":[]}"#.into(), "invalid_type"),
        ("/v1/decide", r#"{"action":"close","customer":{"id":"c","name":"n"}}"#.into(), "invalid_value"),
        ("/v1/decide", r#"{"action":"open_account","customer":{"id":"c","name":"n","nationalities":["Iran"]}}"#.into(), "invalid_country"),
        ("/v1/decide", r#"{"action":"open_account","customer":{"id":"c","name":"n"},"source_ips":["1.2.3"]}"#.into(), "invalid_ip"),
        ("/v1/decide", format!(r#"{{"action":"open_account","customer":{{"id":"c","name":"{}"}}}}"#, "x".repeat(2 << 20)), "payload_too_large"),
        ("/v1/decide/batch", r#"{"requests":[{"action":"open_account","customer":{"id":"c"}}]}"#.into(), "missing_field"),
        ("/v1/decide/batch", json!({"requests": vec![json!({"action": "open_account", "customer": {"id": "c", "name": "n"}}); 1001]}).to_string(), "batch_too_large"),
        ("/v1/explain", "[]".into(), "invalid_type"),
    ];
    for (path, body, code) in bad {
        let bearer = (*path == "/v1/explain").then_some(TOKEN);
        let (status, e) = checked(&doc, &r, "post", path, body.clone(), bearer).await;
        assert_eq!(e["error"]["code"], *code, "{path}: {e}");
        assert!(status.is_client_error(), "{path}: {status}");
    }
    let (status, e) = checked(&doc, &r, "post", "/v1/explain", "{}", None).await;
    assert_eq!(
        (status, &e["error"]["code"]),
        (StatusCode::UNAUTHORIZED, &json!("unauthorized"))
    );
    let (status, e) = checked(&doc, &r, "get", "/v1/shadow", "", Some(TOKEN)).await;
    assert_eq!(
        (status, &e["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("shadow_off"))
    );
    let (status, e) = checked(
        &doc,
        &r,
        "post",
        "/v1/admin/reload?force=maybe",
        "",
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        (status, &e["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_value"))
    );
    let (status, e) = checked(
        &doc,
        &router(None),
        "post",
        "/v1/admin/reload",
        "",
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        (status, &e["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("admin_disabled"))
    );
    // Outside every documented path, the same error body.
    for (method, path, code) in [
        ("GET", "/v1/nothing", "not_found"),
        ("GET", "/v1/decide", "method_not_allowed"),
    ] {
        let (_, e) = call(&r, method, path, "").await;
        assert!(
            errors_of(&doc, "#/components/schemas/ErrorBody", &e).is_empty(),
            "{e}"
        );
        assert_eq!(e["error"]["code"], code);
    }
}

#[tokio::test]
async fn operations_answers_fit_the_schema() {
    let doc = served_document();
    let r = router(Some(TOKEN));
    checked(&doc, &r, "get", "/healthz", "", None).await;
    let (_, ready) = checked(&doc, &r, "get", "/readyz", "", None).await;
    assert_eq!(ready["status"], "ready");
    let (_, status) = checked(&doc, &r, "get", "/v1/status", "", None).await;
    assert!(status["policies"].as_u64().unwrap() > 0);
    let (status, reloaded) = checked(&doc, &r, "post", "/v1/admin/reload", "", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{reloaded}");
    // The status after a reload has `last_reload` filled in.
    let (_, after) = checked(&doc, &r, "get", "/v1/status", "", None).await;
    assert!(after["last_reload"].is_object(), "{after}");
}

/// The JSON bodies the README posts to `/v1/decide` with curl.
pub fn readme_requests() -> Vec<Value> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut out = Vec::new();
    for (i, _) in readme.match_indices("/v1/decide") {
        let rest = &readme[i..];
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let Some(start) = rest[..line_end].find("-d '") else {
            continue;
        };
        let body = &rest[start + 4..];
        let end = body.find('\'').unwrap();
        out.push(serde_json::from_str(&body[..end]).unwrap());
    }
    out
}

#[test]
fn the_readme_requests_are_judged_by_the_schema_as_by_the_service() {
    let doc = served_document();
    let requests = readme_requests();
    assert!(requests.len() >= 2, "{requests:?}");
    for request in requests {
        let errors = errors_of(&doc, "#/components/schemas/DecideRequest", &request);
        let served = portcullis_core::request::parse_decide(request.to_string().as_bytes());
        assert_eq!(
            errors.is_empty(),
            served.is_ok(),
            "schema and service disagree on {request}: {errors:?} / {served:?}"
        );
    }
}

#[test]
fn the_documents_own_examples_are_valid() {
    let doc = served_document();
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let content = &op["requestBody"]["content"]["application/json"];
            if let (Some(reference), Some(example)) =
                (content["schema"]["$ref"].as_str(), content.get("example"))
            {
                let errors = errors_of(&doc, reference, example);
                assert!(errors.is_empty(), "{method} {path}: {errors:?}");
                seen += 1;
            }
        }
    }
    assert!(seen >= 2);
}
