//! Shadow evaluation through the real binary: `serve --shadow DIR` decides
//! live requests on a candidate too, after answering, and `GET /v1/shadow`,
//! `/metrics` say what would change; a broken candidate never touches the live
//! snapshot; shadow decisions are not recorded.

use serde_json::{Value, json};

use crate::binary::{get, metrics_text, post, start, wait_log};
use crate::support::{BASELINE, default_geo, eventually, policy_dir, root};

const LIVE: &str = r#"@id("sm-kp") @measure("SM-1")
forbid(principal, action, resource) when { context.jurisdictions.contains("KP") };
@id("sm-person") @measure("SM-5")
forbid(principal, action, resource) when { !context.screening_matches.isEmpty() };
"#;

/// The live measures, and a new one: IR needs documentary verification.
const CANDIDATE: &str = r#"@id("sm-kp") @measure("SM-1")
forbid(principal, action, resource) when { context.jurisdictions.contains("KP") };
@id("sm-person") @measure("SM-5")
forbid(principal, action, resource) when { !context.screening_matches.isEmpty() };
@id("sm-ir") @measure("SM-9") @condition("documentary_verification")
forbid(principal, action, resource) when { context.jurisdictions.contains("IR") };
"#;

fn customer(id: &str, name: &str, country: &str) -> Value {
    json!({"request_id": id, "action": "open_account",
           "customer": {"id": id, "name": name, "address": {"country": country}}})
}

const TOKEN: &str = "shadow-test-token";

/// `GET /v1/shadow` with the admin token: status and body.
fn shadow_call(base: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = crate::binary::agent().get(format!("{base}/v1/shadow"));
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let mut res = req.call().unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_json().unwrap_or(Value::Null))
}

/// `GET /v1/shadow` with the admin token: 200, and a body that fits the API
/// document's `ShadowStatus`.
fn shadow(base: &str) -> Value {
    let (status, body) = shadow_call(base, Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let misfits = crate::openapi::misfits("ShadowStatus", &body);
    assert!(misfits.is_empty(), "{misfits:#?}\n{body:#}");
    body
}

#[test]
fn live_requests_are_decided_on_the_candidate_and_the_changes_shown() {
    let live = policy_dir(&[
        ("base.cedar", BASELINE),
        ("m.cedar", LIVE),
        (
            "designations/d.jsonl",
            r#"{"id":"SMP-1","names":["Ivan Petrov"]}"#,
        ),
    ]);
    let candidate = policy_dir(&[
        ("base.cedar", BASELINE),
        ("m.cedar", CANDIDATE),
        (
            "designations/d.jsonl",
            "{\"id\":\"SMP-1\",\"names\":[\"Ivan Petrov\"]}\n{\"id\":\"SMP-2\",\"names\":[\"Carla Newname\"]}",
        ),
    ]);
    let records = tempfile::tempdir().unwrap();
    let records_dir = records.path().join("records");
    let geo = default_geo();
    let server = start(
        &[
            "--policies",
            live.path().to_str().unwrap(),
            "--geo",
            geo.to_str().unwrap(),
            "--shadow",
            candidate.path().to_str().unwrap(),
            "--watch-debounce",
            "50ms",
            "--records",
            records_dir.to_str().unwrap(),
            "--admin-token",
            TOKEN,
        ],
        root(),
        &[],
    );
    let base = &server.base;
    // The last changes tie request ids to designations: admin only.
    assert_eq!(shadow_call(base, None).0, 401);
    let requests = [
        customer("r-fr", "Ann Lee", "FR"),
        customer("r-ir", "Ann Lee", "IR"),
        customer("r-carla", "Carla Newname", "FR"),
        customer("r-kp", "Ann Lee", "KP"),
    ];
    for r in &requests {
        let (status, answer) = post(base, "/v1/decide", r, None);
        assert_eq!(status, 200, "{answer}");
        // The live answer is the live snapshot's.
        let expected = if r["request_id"] == "r-kp" {
            "deny"
        } else {
            "allow"
        };
        assert_eq!(answer["decision"], expected, "{answer}");
    }
    let (status, batch) = post(
        base,
        "/v1/decide/batch",
        &json!({"requests": [customer("b-ir", "Bo Chen", "IR"), customer("b-fr", "Bo Chen", "FR")]}),
        None,
    );
    assert_eq!(status, 200, "{batch}");

    let s = eventually("six requests compared", || {
        let s = shadow(base);
        (s["compared"] == 6).then_some(s)
    });
    let (_, status_body) = get(base, "/v1/status");
    let live_revision = status_body["policy_revision"].as_str().unwrap().to_owned();
    assert_ne!(s["candidate"]["revision"], json!(live_revision));
    assert_eq!(s["unchanged"], 3, "{s:#}");
    assert_eq!(s["flips"], 3);
    assert_eq!(
        s["transitions"],
        json!({"allow->deny": 1, "allow->conditional": 2})
    );
    assert_eq!(s["by_measure"]["SM-9"], json!({"gained": 2, "lost": 0}));
    assert_eq!(s["queue"]["dropped"], 0);
    let changed: Vec<&str> = s["last_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["r-ir", "r-carla", "b-ir"]);
    let carla = &s["last_changes"][1];
    assert_eq!(carla["before"]["decision"], "allow");
    assert_eq!(carla["after"]["screening_matches"], json!(["SMP-2"]));
    assert_eq!(carla["live_revision"], json!(live_revision));
    let ir = &s["last_changes"][0];
    assert_eq!(
        ir["after"]["conditions"][0]["id"],
        "documentary_verification"
    );

    let metrics = metrics_text(base);
    for line in [
        "portcullis_shadow_decisions_total 6",
        "portcullis_shadow_dropped_total 0",
        "portcullis_shadow_flips_total{from=\"allow\",to=\"conditional\"} 2",
        "portcullis_shadow_flips_total{from=\"allow\",to=\"deny\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // A broken candidate is refused and shown; the live snapshot and the
    // candidate in force go on.
    let candidate_revision = s["candidate"]["revision"].clone();
    std::fs::write(
        candidate.path().join("bad.cedar"),
        "permit(principal, action, resource) when { 1 + };",
    )
    .unwrap();
    let s = eventually("the broken candidate refused", || {
        let s = shadow(base);
        (!s["last_failure"].is_null()).then_some(s)
    });
    assert!(
        s["last_failure"]["errors"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("bad.cedar"),
        "{s:#}"
    );
    assert_eq!(s["candidate"]["revision"], candidate_revision);
    let (_, status_body) = get(base, "/v1/status");
    assert_eq!(status_body["policy_revision"], json!(live_revision));
    assert!(
        status_body["last_reload_error"].is_null(),
        "{status_body:#}"
    );
    let (_, answer) = post(
        base,
        "/v1/decide",
        &customer("r-after", "Ann Lee", "IR"),
        None,
    );
    assert_eq!(answer["decision"], "allow");

    // Fixed: a new candidate, counted afresh.
    std::fs::remove_file(candidate.path().join("bad.cedar")).unwrap();
    std::fs::write(candidate.path().join("m.cedar"), LIVE).unwrap();
    let s = eventually("the candidate reloaded", || {
        let s = shadow(base);
        (s["last_failure"].is_null() && s["candidate"]["revision"] != candidate_revision)
            .then_some(s)
    });
    assert!(s["compared"].as_u64().unwrap() <= 1, "{s:#}");
    wait_log(&server.logs, "shadow candidate loaded");

    // Shadow decisions are not recorded: one record per live decision.
    crate::binary::signal(&server.child, "TERM");
    let mut server = server;
    assert!(crate::binary::wait_exit(&mut server.child).success());
    assert_eq!(crate::support::record_lines(&records_dir), 7);
}

#[test]
fn without_shadow_the_endpoint_says_it_is_off() {
    let server = start(&["--admin-token", TOKEN], root(), &[]);
    let (status, body) = shadow_call(&server.base, Some(TOKEN));
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "shadow_off");
}

#[test]
fn a_broken_candidate_at_start_does_not_stop_the_service() {
    let candidate = policy_dir(&[(
        "bad.cedar",
        "permit(principal, action, resource) when { 1 + };",
    )]);
    let geo = default_geo();
    let geo = geo.to_str().unwrap();
    // A candidate directory that does not exist (not even watchable) does not
    // stop the service either.
    let missing = candidate.path().join("no-such-dir");
    let server = start(
        &[
            "--geo",
            geo,
            "--shadow",
            missing.to_str().unwrap(),
            "--admin-token",
            TOKEN,
        ],
        root(),
        &[],
    );
    let (status, _) = post(
        &server.base,
        "/v1/decide",
        &customer("r", "Ann Lee", "FR"),
        None,
    );
    assert_eq!(status, 200);
    drop(server);
    let candidate_dir = candidate.path().to_str().unwrap();
    let server = start(
        &[
            "--geo",
            geo,
            "--shadow",
            candidate_dir,
            "--admin-token",
            TOKEN,
        ],
        root(),
        &[],
    );
    let (status, answer) = post(
        &server.base,
        "/v1/decide",
        &customer("r", "Ann Lee", "FR"),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(answer["decision"], "allow");
    let s = eventually("the request counted as skipped", || {
        let s = shadow(&server.base);
        (s["skipped"] == 1).then_some(s)
    });
    assert!(s["candidate"].is_null());
    assert!(
        s["last_failure"]["errors"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("bad.cedar")
    );
    assert_eq!(s["compared"], 0);
}
