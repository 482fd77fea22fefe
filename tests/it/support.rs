//! Shared helpers: fixture paths, policy directories written by the test,
//! and the router driven in-process.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use portcullis::server::metrics::Metrics;
use portcullis::server::state::{AppState, Limits};
use portcullis_core::snapshot::{Snapshot, Sources};
use serde_json::Value;
use tower::ServiceExt;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn maxmind(name: &str) -> PathBuf {
    root().join("tests/fixtures/maxmind").join(name)
}

/// The default database shipped in `geo-data/`.
pub fn default_geo() -> PathBuf {
    root().join("geo-data/geo-whois-asn-country.mmdb")
}

pub fn shipped_policies() -> PathBuf {
    root().join("policies")
}

/// A policy directory written by the test: `(relative path, content)` pairs.
pub fn policy_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

pub const BASELINE: &str = "@id(\"baseline\")\npermit(principal, action, resource);\n";

pub fn snapshot(policies: &Path, geo: &[PathBuf]) -> Snapshot {
    Snapshot::build(Sources::new(policies.to_owned(), geo.to_vec()))
        .unwrap_or_else(|e| panic!("snapshot: {:#?}", e.diagnostics))
}

pub fn state(snapshot: Snapshot) -> Arc<AppState> {
    state_with(snapshot, Limits::default(), None)
}

pub fn state_with(snapshot: Snapshot, limits: Limits, token: Option<&str>) -> Arc<AppState> {
    Arc::new(AppState::new(
        snapshot,
        Metrics::new().unwrap(),
        limits,
        token.map(str::to_owned),
    ))
}

/// A fresh router (own metrics) over the shipped policies and the default geo database.
pub fn shipped_router() -> Router {
    portcullis::server::http::router(state(shipped_snapshot()))
}

/// One router over the shipped defaults, shared by tests that only read.
pub fn shared_router() -> Router {
    static ROUTER: std::sync::OnceLock<Router> = std::sync::OnceLock::new();
    ROUTER.get_or_init(shipped_router).clone()
}

fn shipped_snapshot() -> Snapshot {
    snapshot(&shipped_policies(), &[default_geo()])
}

/// Sends one request through the router; returns status and JSON body
/// (`Value::Null` when the body is not JSON).
pub async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let (status, bytes) = call_raw(router, method, uri, body, None).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub async fn call_raw(
    router: &Router,
    method: &str,
    uri: &str,
    body: impl Into<Body>,
    bearer: Option<&str>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let response = router
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, bytes)
}

pub async fn decide(router: &Router, body: &Value) -> (StatusCode, Value) {
    call(router, "POST", "/v1/decide", body.to_string()).await
}

/// Policy ids in `reasons` (or `conditions` / `obligations`) of a decision.
pub fn ids(decision: &Value, list: &str, key: &str) -> Vec<String> {
    decision[list]
        .as_array()
        .unwrap_or_else(|| panic!("no `{list}` in {decision}"))
        .iter()
        .map(|r| r[key].as_str().unwrap().to_owned())
        .collect()
}

/// How long [`eventually`] waits.
pub const EVENTUALLY: std::time::Duration = std::time::Duration::from_secs(20);

/// Polls `probe` until it returns `Some`, or panics with `what` at the deadline.
pub fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = std::time::Instant::now() + EVENTUALLY;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// Decision records in the `*.jsonl` files of a records directory.
pub fn record_lines(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| l.contains("\"decision_id\""))
                .count()
        })
        .sum()
}
