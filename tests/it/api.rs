//! The HTTP API of contract §2, driven in-process through the real router.

use std::collections::HashSet;

use axum::http::StatusCode;
use portcullis::server::state::Limits;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{
    BASELINE, call, call_raw, decide, default_geo, policy_dir, shared_router, shipped_policies,
    shipped_router, snapshot, state_with,
};

fn contract_example() -> Value {
    json!({
        "request_id": "req-42",
        "action": "open_account",
        "customer": {
            "id": "cust-123",
            "kind": "individual",
            "name": "Ivan Petrov",
            "aliases": ["I. Petrov"],
            "date_of_birth": "1970-03-01",
            "nationalities": ["ru"],
            "address": {"country": "RU", "region": "Moscow", "city": "Moscow", "line": "1 Tverskaya"},
            "email": "ivan@example.ru",
            "phone": "+7 495 000 0000",
            "payment": {"country": "RU", "method": "card"},
            "beneficial_owners": [{"name": "Li Wei", "nationalities": ["CN"], "country": "CN", "date_of_birth": "1980-01-01"}],
            "identifiers": [{"kind": "passport", "value": "123456789", "country": "RU"}]
        },
        "reseller": {"id": "res-9", "country": "AE"},
        "source_ips": ["203.0.113.7", "2001:db8::1"],
        "resource": {"kind": "gpu_cluster", "region": "us-east-1", "gpu_count": 512},
        "satisfied_conditions": ["documentary_verification"]
    })
}

#[tokio::test]
async fn contract_example_gets_every_field() {
    let r = shipped_router();
    let (status, d) = decide(&r, &contract_example()).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let mut provision = contract_example();
    provision["action"] = json!("provision");
    let (_, p) = decide(&r, &provision).await;
    assert_eq!(p["decision"], "conditional", "{p}");
    assert_eq!(p["conditions"][0]["id"], "end_use_attestation");
    assert_eq!(p["conditions"][0]["policy"], "sm-gpu-end-use");
    assert_eq!(d["request_id"], "req-42");
    // Tied to RU, but the GPU condition of the shipped examples is on `provision`.
    assert_eq!(d["decision"], "allow", "{d}");
    assert_eq!(d["decision_id"].as_str().unwrap().len(), 26, "a ULID");
    assert_eq!(d["policy_revision"].as_str().unwrap().len(), 16);
    for key in ["reasons", "conditions", "obligations", "errors"] {
        assert!(d[key].is_array(), "{key}");
    }
    let facts = &d["facts"];
    assert_eq!(facts["jurisdictions"], json!(["AE", "CN", "RU"]));
    assert_eq!(
        facts["ip_countries"],
        json!([]),
        "documentation ranges have no country"
    );
    assert_eq!(facts["anonymous_ip"], false);
    assert_eq!(facts["screening"]["score"], 0);
    assert!(facts["screening"]["matches"].is_array());
}

/// `"explain": true` adds to each name match how it was scored; without it
/// (the default) no match carries an explanation, and `explain` must be a
/// boolean.
#[tokio::test]
async fn explain_is_given_only_when_asked() {
    let r = shipped_router();
    let mut body = contract_example();
    body["customer"]["name"] = json!("Boris Fictv");
    let (status, plain) = decide(&r, &body).await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    let m = &plain["facts"]["screening"]["matches"][0];
    assert_eq!(m["designation"], "SMP-EXAMPLE-0001", "{plain}");
    assert!(m.get("explanation").is_none(), "{m}");

    body["explain"] = json!(true);
    let (status, explained) = decide(&r, &body).await;
    assert_eq!(status, StatusCode::OK, "{explained}");
    assert_eq!(explained["decision"], plain["decision"]);
    let m = &explained["facts"]["screening"]["matches"][0];
    let e = &m["explanation"];
    assert!(e["name_score"].as_u64().unwrap() >= 90, "{m}");
    assert_eq!(e["pairs"][1]["screened"], "fictv", "{m}");
    assert_eq!(e["pairs"][1]["designated"], "fiktiv", "{m}");
    let reasons: Vec<&str> = e["adjustments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["date_of_birth_agrees", "country_agrees"], "{m}");

    body["explain"] = json!(null);
    let (status, unset) = decide(&r, &body).await;
    assert_eq!(status, StatusCode::OK, "{unset}");
    assert!(
        unset["facts"]["screening"]["matches"][0]
            .get("explanation")
            .is_none()
    );

    body["explain"] = json!("yes");
    let (status, err) = decide(&r, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["error"]["field"], "explain", "{err}");
}

#[tokio::test]
async fn decision_ids_are_unique_and_revision_is_stable() {
    let r = shipped_router();
    let mut ids = HashSet::new();
    let mut revisions = HashSet::new();
    for _ in 0..50 {
        let (_, d) = decide(&r, &contract_example()).await;
        ids.insert(d["decision_id"].as_str().unwrap().to_owned());
        revisions.insert(d["policy_revision"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 50);
    assert_eq!(revisions.len(), 1);
}

async fn expect_400(body: &str, code: &str, field: Option<&str>) {
    let r = shared_router();
    let (status, e) = call(&r, "POST", "/v1/decide", body.to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {e}");
    assert_eq!(e["error"]["code"], code, "{body} -> {e}");
    assert_eq!(e["error"]["field"].as_str(), field, "{body} -> {e}");
    assert!(!e["error"]["message"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn each_bad_input_class_is_a_400_naming_the_field() {
    let ok_customer = r#""customer":{"id":"c","name":"n"}"#;
    expect_400("{not json", "malformed_json", None).await;
    expect_400("", "malformed_json", None).await;
    expect_400("[]", "invalid_type", None).await;
    expect_400(
        &format!(r#"{{{ok_customer}}}"#),
        "missing_field",
        Some("action"),
    )
    .await;
    expect_400(
        r#"{"action":"open_account"}"#,
        "missing_field",
        Some("customer"),
    )
    .await;
    expect_400(
        r#"{"action":"open_account","customer":{"name":"n"}}"#,
        "missing_field",
        Some("customer.id"),
    )
    .await;
    expect_400(
        r#"{"action":"open_account","customer":{"id":"c"}}"#,
        "missing_field",
        Some("customer.name"),
    )
    .await;
    expect_400(
        &format!(r#"{{"action":"open_account",{ok_customer},"soruce_ips":[]}}"#),
        "unknown_field",
        Some("soruce_ips"),
    )
    .await;
    expect_400(
        r#"{"action":"open_account","customer":{"id":"c","name":"n","adress":{}}}"#,
        "unknown_field",
        Some("customer.adress"),
    )
    .await;
    expect_400(r#"{"action":"open_account","customer":{"id":"c","name":"n","address":{"country":"RU","zip":"1"}}}"#, "unknown_field", Some("customer.address.zip")).await;
    expect_400(r#"{"action":"open_account","customer":{"id":"c","name":"n","address":{"country":"Iran"}}}"#, "invalid_country", Some("customer.address.country")).await;
    expect_400(
        r#"{"action":"open_account","customer":{"id":"c","name":"n","nationalities":["ZZ"]}}"#,
        "invalid_country",
        Some("customer.nationalities[0]"),
    )
    .await;
    expect_400(r#"{"action":"open_account","customer":{"id":"c","name":"n","beneficial_owners":[{"name":"o","country":"SU"}]}}"#, "invalid_country", Some("customer.beneficial_owners[0].country")).await;
    expect_400(
        &format!(r#"{{"action":"open_account",{ok_customer},"reseller":{{"country":"UK"}}}}"#),
        "invalid_country",
        Some("reseller.country"),
    )
    .await;
    expect_400(
        &format!(r#"{{"action":"open_account",{ok_customer},"source_ips":["1.2.3.4","1.2.3"]}}"#),
        "invalid_ip",
        Some("source_ips[1]"),
    )
    .await;
    expect_400(
        &format!(r#"{{"action":"open_account",{ok_customer},"source_ips":["2001:db8::zz"]}}"#),
        "invalid_ip",
        Some("source_ips[0]"),
    )
    .await;
    expect_400(
        &format!(r#"{{"action":"delete_everything",{ok_customer}}}"#),
        "invalid_value",
        Some("action"),
    )
    .await;
    expect_400(
        r#"{"action":"open_account","customer":{"id":"c","name":"n","kind":"robot"}}"#,
        "invalid_value",
        Some("customer.kind"),
    )
    .await;
    expect_400(
        &format!(
            r#"{{"action":"provision",{ok_customer},"resource":{{"kind":"vm","gpu_count":-1}}}}"#
        ),
        "invalid_value",
        Some("resource.gpu_count"),
    )
    .await;
    expect_400(
        r#"{"action":"open_account","customer":{"id":"c","name":"n","date_of_birth":"yesterday"}}"#,
        "invalid_value",
        Some("customer.date_of_birth"),
    )
    .await;
    expect_400(
        r#"{"action":"open_account","customer":{"id":"","name":"n"}}"#,
        "invalid_value",
        Some("customer.id"),
    )
    .await;
}

#[tokio::test]
async fn body_over_the_limit_is_413_with_the_error_body() {
    let limits = Limits {
        max_body: 2048,
        ..Limits::default()
    };
    let r = portcullis::server::http::router(state_with(
        snapshot(&shipped_policies(), &[default_geo()]),
        limits,
        None,
    ));
    let mut body = contract_example();
    body["customer"]["aliases"] = json!(vec!["x".repeat(100); 30]);
    let (status, e) = call(&r, "POST", "/v1/decide", body.to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(e["error"]["code"], "payload_too_large");
    // The default limit (1 MiB) accepts the same body.
    let (status, _) = decide(&shared_router(), &body).await;
    assert_eq!(status, StatusCode::OK);
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024 + 1));
    let (status, e) = call(&shared_router(), "POST", "/v1/decide", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(e["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn batch_answers_in_order() {
    let r = shipped_router();
    let mut kp = contract_example();
    kp["reseller"]["country"] = json!("KP");
    kp["request_id"] = json!("second");
    let body = json!({"requests": [contract_example(), kp, {"action": "maintain_account", "customer": {"id": "x", "name": "Y"}}]});
    let (status, out) = call(&r, "POST", "/v1/decide/batch", body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let decisions = out["decisions"].as_array().unwrap();
    let got: Vec<&str> = decisions
        .iter()
        .map(|d| d["decision"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["allow", "deny", "allow"]);
    assert_eq!(decisions[1]["request_id"], "second");

    // A large batch runs on the blocking pool with the same answers.
    let many: Vec<Value> = (0..200).map(|_| kp.clone()).collect();
    let (status, out) = call(
        &r,
        "POST",
        "/v1/decide/batch",
        json!({"requests": many}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        out["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["decision"] == "deny")
    );
}

#[tokio::test]
async fn batch_limits_and_bad_items() {
    let r = shared_router();
    let small = json!({"action": "open_account", "customer": {"id": "c", "name": "n"}});
    let too_many: Vec<Value> = (0..1001).map(|_| small.clone()).collect();
    let (status, e) = call(
        &r,
        "POST",
        "/v1/decide/batch",
        json!({"requests": too_many}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert_eq!(e["error"]["code"], "batch_too_large");
    let exactly: Vec<Value> = (0..1000).map(|_| small.clone()).collect();
    let (status, out) = call(
        &r,
        "POST",
        "/v1/decide/batch",
        json!({"requests": exactly}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["decisions"].as_array().unwrap().len(), 1000);

    let bad = json!({"requests": [small, {"action": "open_account", "customer": {"id": "c", "name": "n", "nationalities": ["XX"]}}]});
    let (status, e) = call(&r, "POST", "/v1/decide/batch", bad.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["field"], "requests[1].customer.nationalities[0]");
    let (status, e) = call(&r, "POST", "/v1/decide/batch", r#"{"reqs":[]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "unknown_field");
}

#[tokio::test]
async fn operations_endpoints() {
    let r = shipped_router();
    let (status, h) = call(&r, "GET", "/healthz", "").await;
    assert_eq!((status, h["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, ready) = call(&r, "GET", "/readyz", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["policy_revision"].as_str().unwrap().len(), 16);

    let (_, st) = call(&r, "GET", "/v1/status", "").await;
    assert_eq!(st["policy_revision"], ready["policy_revision"]);
    assert_eq!(st["policies"], 6);
    assert_eq!(st["policies_decided_by_guards"], 6);
    assert_eq!(st["designations"], 2);
    assert!(st["loaded_at"].as_str().unwrap().starts_with("20"));
    assert_eq!(st["last_reload_error"], Value::Null);
    assert_eq!(st["geo_databases"][0]["layout"], "country");

    decide(&r, &contract_example()).await;
    call(&r, "POST", "/v1/decide", "{").await;
    let (status, text) = call_raw(&r, "GET", "/metrics", "", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("portcullis_decisions_total{decision=\"allow\",transport=\"http\"} 1"),
        "{text}"
    );
    assert!(text.contains("portcullis_decision_duration_seconds_count 1"));
    assert!(text.contains(
        "portcullis_rejected_requests_total{code=\"malformed_json\",transport=\"http\"} 1"
    ));
    assert!(text.contains(&format!(
        "portcullis_snapshot_info{{revision={}}} 1",
        st["policy_revision"]
    )));

    let (status, e) = call(&r, "GET", "/v2/nothing", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(e["error"]["code"], "not_found");
}

#[tokio::test]
async fn admin_reload_requires_the_token_and_is_all_or_nothing() {
    let dir = policy_dir(&[("base.cedar", BASELINE)]);
    let token = "s3cret-token";
    let r = portcullis::server::http::router(state_with(
        snapshot(dir.path(), &[]),
        Limits::default(),
        Some(token),
    ));
    let (status, _) = call_raw(&r, "POST", "/v1/admin/reload", "", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call_raw(&r, "POST", "/v1/admin/reload", "", Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, before) = call(&r, "GET", "/v1/status", "").await;
    std::fs::write(
        dir.path().join("kp.cedar"),
        "@id(\"sm-kp\") forbid(principal, action, resource) when { context.jurisdictions.contains(\"KP\") };",
    )
    .unwrap();
    let (status, body) = call_raw(&r, "POST", "/v1/admin/reload", "", Some(token)).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reloaded"], true);
    assert_ne!(body["policy_revision"], before["policy_revision"]);
    let kp = json!({"action": "open_account", "customer": {"id": "c", "name": "n", "nationalities": ["KP"]}});
    let (_, d) = decide(&r, &kp).await;
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["policy_revision"], body["policy_revision"]);

    // A broken file: the reload fails, the old revision keeps serving, status says why.
    std::fs::write(
        dir.path().join("broken.cedar"),
        "@id(\"b\")\npermit(principal, action, resource) when { context.nope };",
    )
    .unwrap();
    let (status, failed) = call_raw(&r, "POST", "/v1/admin/reload", "", Some(token)).await;
    let failed: Value = serde_json::from_slice(&failed).unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{failed}");
    assert_eq!(failed["reloaded"], false);
    assert_eq!(failed["policy_revision"], body["policy_revision"]);
    assert!(
        failed["errors"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("broken.cedar")
    );
    assert_eq!(failed["errors"][0]["line"], 2);
    let (_, d) = decide(&r, &kp).await;
    assert_eq!(d["policy_revision"], body["policy_revision"]);
    let (_, st) = call(&r, "GET", "/v1/status", "").await;
    assert_eq!(st["last_reload_error"]["errors"][0]["line"], 2);
    let (status, _) = call(&r, "GET", "/readyz", "").await;
    assert_eq!(status, StatusCode::OK);

    std::fs::remove_file(dir.path().join("broken.cedar")).unwrap();
    let (status, _) = call_raw(&r, "POST", "/v1/admin/reload", "", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, st) = call(&r, "GET", "/v1/status", "").await;
    assert_eq!(st["last_reload_error"], Value::Null);
}

#[tokio::test]
async fn admin_is_disabled_without_a_token() {
    let r = shared_router();
    let (status, body) = call_raw(&r, "POST", "/v1/admin/reload", "", Some("anything")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&body)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No byte string panics the decoder; every rejection has a code.
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = portcullis_core::request::parse_decide(&bytes) {
            prop_assert!(!e.code.is_empty());
        }
    }

    /// Mutated valid requests are either decided or rejected with a 4xx, never a 5xx.
    #[test]
    fn mutated_requests_never_500(cut in 0usize..600, byte in any::<u8>()) {
        let mut body = contract_example().to_string().into_bytes();
        if let Some(b) = body.get_mut(cut) {
            *b = byte;
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (status, _) = runtime.block_on(call_raw(&shared_router(), "POST", "/v1/decide", body, None));
        prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{status}");
    }
}

#[tokio::test]
async fn failing_policy_test_cases_keep_the_old_snapshot() {
    let case = |expect: &str| {
        format!(
            r#"{{"name": "KP is denied", "request": {{"action": "open_account", "customer": {{"id": "c", "name": "n"}}, "reseller": {{"country": "KP"}}}}, "expect": {{"decision": "{expect}"}}}}"#
        )
    };
    let kp = "@id(\"sm-kp\") forbid(principal, action, resource) when { context.jurisdictions.contains(\"KP\") };";
    let dir = policy_dir(&[
        ("base.cedar", BASELINE),
        ("kp.cedar", kp),
        ("tests/kp.json", &case("deny")),
    ]);
    let snap = snapshot(dir.path(), &[]);
    assert_eq!(snap.test_cases, 1);
    let r = portcullis::server::http::router(state_with(snap, Limits::default(), Some("t")));
    let (_, before) = call(&r, "GET", "/v1/status", "").await;
    assert_eq!(before["test_cases"], 1);

    // Removing the measure breaks the case: the reload is refused.
    std::fs::remove_file(dir.path().join("kp.cedar")).unwrap();
    let (status, body) = call_raw(&r, "POST", "/v1/admin/reload", "", Some("t")).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("test case `KP is denied` failed: expected `deny`, got `allow`"),
        "{message}"
    );
    assert!(
        body["errors"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("kp.json")
    );
    let kp_req = json!({"action": "open_account", "customer": {"id": "c", "name": "n"}, "reseller": {"country": "KP"}});
    let (_, d) = decide(&r, &kp_req).await;
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["policy_revision"], before["policy_revision"]);

    // Updating the case with the policy change goes live.
    std::fs::write(dir.path().join("tests/kp.json"), case("allow")).unwrap();
    let (status, _) = call_raw(&r, "POST", "/v1/admin/reload", "", Some("t")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decide(&r, &kp_req).await.1["decision"], "allow");

    // A malformed case file is located by line.
    std::fs::write(
        dir.path().join("tests/bad.json"),
        "{\n  \"name\": \"x\",\n  \"expect\": 3\n}",
    )
    .unwrap();
    let (status, body) = call_raw(&r, "POST", "/v1/admin/reload", "", Some("t")).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["line"], 3, "{body}");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_with_the_error_envelope() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let r = shared_router();
    let (status, e) = call(&r, "GET", "/v2/nothing", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        e,
        json!({"error": {"code": "not_found", "message": "no such endpoint", "field": null}})
    );
    for (method, uri) in [
        ("GET", "/v1/decide"),
        ("PUT", "/v1/decide/batch"),
        ("POST", "/healthz"),
    ] {
        let response = r
            .clone()
            .oneshot(
                axum::http::Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        assert!(response.headers().contains_key("allow"), "{method} {uri}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let e: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            e["error"]["code"], "method_not_allowed",
            "{method} {uri}: {e}"
        );
        assert!(e["error"]["message"].is_string());
        assert_eq!(e["error"]["field"], Value::Null);
    }
}
