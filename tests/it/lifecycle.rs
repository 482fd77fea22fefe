//! Measures with a lifecycle: `@effective` / `@expires` windows judged at each
//! decision's instant, `at` (refused live unless allowed), `check`'s located
//! errors and warnings, and a measure that starts and one that ends while the
//! real binary serves.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::binary::{get, post, run, start, wait_log};
use crate::support::{BASELINE, call, decide, ids, policy_dir, snapshot, state_with};
use portcullis::server::state::Limits;
use portcullis_core::engine;
use portcullis_core::request::parse_decide;

const WINDOWED: &str = r#"@id("ir-2027") @measure("SM-2027-IR")
@effective("2027-03-01") @expires("2028-02-29")
forbid(principal, action, resource) when { context.jurisdictions.contains("IR") };
@id("ru-until-2027") @measure("SM-2026-RU") @expires("2027-01-01T12:00:00+01:00")
forbid(principal, action, resource) when { context.jurisdictions.contains("RU") };
"#;

fn request(country: &str, at: Option<&str>) -> Value {
    let mut r = json!({"action": "open_account",
                       "customer": {"id": "c", "name": "Ann Lee", "address": {"country": country}}});
    if let Some(at) = at {
        r["at"] = json!(at);
    }
    r
}

#[test]
fn a_policy_applies_only_inside_its_window() {
    let dir = policy_dir(&[("base.cedar", BASELINE), ("m.cedar", WINDOWED)]);
    let snapshot = snapshot(dir.path(), &[]);
    let outcome = |country: &str, at: &str| {
        let r = parse_decide(request(country, Some(at)).to_string().as_bytes()).unwrap();
        let d = engine::decide(&snapshot, &r);
        assert_eq!(d.decided_at.to_string().get(..10), at.get(..10), "{at}");
        (
            d.decision.as_str(),
            d.reasons
                .iter()
                .map(|r| r.policy.to_string())
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(outcome("IR", "2027-02-28T23:59:59.999Z").0, "allow");
    assert_eq!(
        outcome("IR", "2027-03-01"),
        ("deny", vec!["ir-2027".into()])
    );
    assert_eq!(outcome("IR", "2028-02-28T23:59:59Z").0, "deny");
    assert_eq!(
        outcome("IR", "2028-02-29").0,
        "allow",
        "the end is excluded"
    );
    // 12:00 at +01:00 is 11:00 UTC.
    assert_eq!(outcome("RU", "2027-01-01T10:59:59Z").0, "deny");
    assert_eq!(outcome("RU", "2027-01-01T11:00:00Z").0, "allow");
    // The window is judged whatever the slicing: evaluating every policy agrees.
    for at in ["2027-02-28", "2027-03-01", "2028-02-29"] {
        let r = parse_decide(request("IR", Some(at)).to_string().as_bytes()).unwrap();
        let full = engine::decide_with(&snapshot, &r, engine::Slicing::Full);
        assert_eq!(
            full.decision,
            engine::decide(&snapshot, &r).decision,
            "{at}"
        );
    }

    let m = snapshot.policies.measures(
        portcullis_core::lifecycle::Instant::parse("2027-02-20").unwrap(),
        Duration::from_secs(30 * 86_400),
    );
    let names = |entries: &[portcullis_core::policies::MeasureEntry]| {
        entries
            .iter()
            .map(|e| e.policy.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&m.scheduled), ["ir-2027"]);
    assert_eq!(names(&m.expired), ["ru-until-2027"]);
    assert!(m.in_force.is_empty());
    let upcoming: Vec<(String, &str)> = m
        .upcoming
        .iter()
        .map(|e| (e.policy.to_string(), e.event))
        .collect();
    assert_eq!(upcoming, [("ir-2027".to_owned(), "starts")]);
}

#[test]
fn test_cases_decide_as_of_their_at() {
    let cases = json!([
        {"name": "before the IR measure", "request": request("IR", Some("2027-02-01")),
         "expect": {"decision": "allow"}},
        {"name": "under the IR measure", "request": request("IR", Some("2027-06-01")),
         "expect": {"decision": "deny", "reasons": ["ir-2027"]}}
    ]);
    let dir = policy_dir(&[
        ("base.cedar", BASELINE),
        ("m.cedar", WINDOWED),
        ("tests/cases.json", &cases.to_string()),
    ]);
    let (code, out, err) = run(&["test", dir.path().to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");
}

#[tokio::test]
async fn live_endpoints_refuse_at_unless_allowed() {
    let dir = policy_dir(&[("base.cedar", BASELINE), ("m.cedar", WINDOWED)]);
    let refusing = portcullis::server::http::router(state_with(
        snapshot(dir.path(), &[]),
        Limits::default(),
        None,
    ));
    let (status, body) = decide(&refusing, &request("IR", Some("2027-06-01"))).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_value");
    assert_eq!(body["error"]["field"], "at");
    let batch = json!({"requests": [request("IR", None), request("IR", Some("2027-06-01"))]});
    let (status, body) = call(&refusing, "POST", "/v1/decide/batch", batch.to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "requests[1].at");
    // A malformed `at` is named too, whether or not `at` is allowed.
    let (status, body) = decide(&refusing, &request("IR", Some("next tuesday"))).await;
    assert_eq!(
        (status.as_u16(), &body["error"]["field"]),
        (400, &json!("at"))
    );
    assert_eq!(body["error"]["code"], "invalid_value");

    let allowing = portcullis::server::http::router(state_with(
        snapshot(dir.path(), &[]),
        Limits {
            allow_as_of: true,
            ..Limits::default()
        },
        None,
    ));
    let (status, body) = decide(&allowing, &request("IR", Some("2027-06-01"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "deny");
    assert_eq!(ids(&body, "reasons", "policy"), ["ir-2027"]);
    assert_eq!(body["decided_at"], "2027-06-01T00:00:00.000Z");
    // Without `at`, a decision is made as of now and says when.
    let (_, body) = decide(&allowing, &request("IR", None)).await;
    let decided = humantime::parse_rfc3339(body["decided_at"].as_str().unwrap()).unwrap();
    let off = SystemTime::now()
        .duration_since(decided)
        .unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_secs(600), "{body}");
}

#[test]
fn check_locates_bad_dates_and_warns_of_long_measures() {
    let check = |policy: &str, extra: &[&str]| {
        let dir = policy_dir(&[("base.cedar", BASELINE), ("m.cedar", policy)]);
        let mut args = vec!["check", dir.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, out, err) = run(&args, dir.path());
        (code, out, err.replace(dir.path().to_str().unwrap(), "DIR"))
    };
    let forbid = "forbid(principal, action, resource);";
    let (code, _, err) = check(
        &format!("@id(\"m\")\n@effective(\"2027-02-30\")\n{forbid}"),
        &[],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("DIR/m.cedar:2:1: `@effective`: `2027-02-30`"),
        "{err}"
    );
    let (code, _, err) = check(
        &format!("@id(\"m\") @effective(\"2027-03-01\")\n  @expires(\"2027-03-01\") {forbid}"),
        &[],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("DIR/m.cedar:2:3: `@expires(\"2027-03-01T00:00:00.000Z\")` is not after"),
        "{err}"
    );

    // A misspelt date annotation would leave the measure in force forever.
    let (code, _, err) = check(
        &format!("@id(\"m\")\n@expire(\"2027-01-01\") {forbid}"),
        &[],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("DIR/m.cedar:2:1: unknown annotation `@expire`: did you mean `@expires`?"),
        "{err}"
    );
    let (code, _, err) = check(
        &format!("@id(\"m\") @Effective(\"2027-01-01\") {forbid}"),
        &[],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("did you mean `@effective`?"), "{err}");

    let long = format!("@id(\"m\") @effective(\"2027-03-01\") @expires(\"2028-06-01\") {forbid}");
    let (code, out, err) = check(&long, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok:"), "{out}");
    assert!(
        err.contains("policy `m`: the window lasts 458 days"),
        "{err}"
    );
    assert!(err.contains("1 warning(s)"), "{err}");
    let (code, _, err) = check(&long, &["--deny-warnings"]);
    assert_eq!(code, 3, "{err}");
    let (code, out, _) = check(&long, &["--deny-warnings", "--format", "json"]);
    assert_eq!(code, 3);
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["diagnostics"][0]["severity"], "warning");
    assert_eq!(summary["diagnostics"][0]["line"], 1);
    let extended = format!(
        "@id(\"m\") @effective(\"2027-03-01\") @expires(\"2028-06-01\") @extended(\"FR 2028-0412\") {forbid}"
    );
    let (code, _, err) = check(&extended, &["--deny-warnings"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
}

/// RFC 3339 (seconds) of now plus `ahead`.
fn instant_ahead(ahead: Duration) -> (SystemTime, String) {
    // Whole seconds: the instant is the one the annotation states.
    let at = SystemTime::now() + ahead;
    let text = humantime::format_rfc3339_seconds(at).to_string();
    (humantime::parse_rfc3339(&text).unwrap(), text)
}

#[test]
fn a_measure_starts_and_another_ends_while_serving_without_a_reload() {
    let (turn, at) = instant_ahead(Duration::from_secs(4));
    let policies = format!(
        r#"@id("starts") @measure("SM-T-START") @effective("{at}")
forbid(principal, action, resource) when {{ context.jurisdictions.contains("IR") }};
@id("ends") @measure("SM-T-END") @expires("{at}")
forbid(principal, action, resource) when {{ context.jurisdictions.contains("KP") }};
"#
    );
    let dir = policy_dir(&[("base.cedar", BASELINE), ("m.cedar", &policies)]);
    let server = start(
        &[
            "--policies",
            dir.path().to_str().unwrap(),
            "--geo",
            crate::support::default_geo().to_str().unwrap(),
            "--no-watch",
        ],
        dir.path(),
        &[],
    );
    let (_, status) = get(&server.base, "/v1/status");
    let before_turn = SystemTime::now() < turn;
    if before_turn {
        let upcoming: Vec<&str> = status["measures"]["upcoming"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(upcoming, ["starts", "ends"], "{status}");
    }

    // Each answer is checked against its own instant until both have turned.
    let end = Instant::now() + Duration::from_secs(30);
    let (mut seen_before, mut seen_after) = (false, false);
    while !seen_after {
        assert!(Instant::now() < end, "the measures never turned");
        for (country, policy) in [("IR", "starts"), ("KP", "ends")] {
            let (code, d) = post(&server.base, "/v1/decide", &request(country, None), None);
            assert_eq!(code, 200, "{d}");
            let decided = humantime::parse_rfc3339_weak(d["decided_at"].as_str().unwrap()).unwrap();
            let in_force = (decided >= turn) == (policy == "starts");
            let expected = if in_force { "deny" } else { "allow" };
            assert_eq!(
                d["decision"], expected,
                "{country} at {}: {d}",
                d["decided_at"]
            );
            if decided >= turn {
                seen_after = true;
            } else {
                seen_before = true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen_before || !before_turn,
        "no decision was made before the turn"
    );

    let started = wait_log(&server.logs, "measure started");
    assert!(started.contains("\"policy\":\"starts\""), "{started}");
    let ended = wait_log(&server.logs, "measure ended");
    assert!(ended.contains("\"policy\":\"ends\""), "{ended}");
    let (_, status) = get(&server.base, "/v1/status");
    let listed = |state: &str| -> Vec<String> {
        status["measures"][state]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["policy"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed("in_force"), ["starts"], "{status}");
    assert_eq!(listed("expired"), ["ends"], "{status}");
    assert_eq!(
        status["measures"]["expired"][0]["expires"],
        json!(format!("{}.000Z", at.trim_end_matches('Z')))
    );
    let metrics = crate::binary::metrics_text(&server.base);
    for line in [
        "portcullis_measures{state=\"in_force\"} 1",
        "portcullis_measures{state=\"expired\"} 1",
        "portcullis_measures{state=\"scheduled\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    // The revision never changed: no reload was needed.
    assert_eq!(status["last_reload"], Value::Null, "{status}");
}
