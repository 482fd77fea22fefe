//! The policy author's tools, through the real binary (and the router for
//! `POST /v1/explain`): `fmt`, `explain`, `test --coverage`.

use serde_json::{Value, json};

use crate::binary::run;
use crate::support::{
    BASELINE, call_raw, default_geo, maxmind, policy_dir, root, shipped_policies, snapshot,
    state_with,
};
use portcullis::server::state::Limits;
use portcullis_core::request::parse_decide;

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

// fmt

const UNFORMATTED: &str = r#"// The header comment stays.
@id("kp")   @measure("SM-1")
@message("KP is prohibited") // trailing comment stays
forbid(principal,action,resource) when {context.jurisdictions.contains("KP")};
"#;

#[test]
fn fmt_check_lists_what_would_change_and_fmt_rewrites_it_keeping_comments() {
    let dir = policy_dir(&[
        ("base.cedar", BASELINE),
        ("kp.cedar", UNFORMATTED),
        (
            "invariants/deeper.cedar",
            "permit(principal,action,resource);\n",
        ),
        ("notes.txt", "not a policy"),
    ]);
    let kp = dir.path().join("kp.cedar");
    let (code, out, err) = run(&["fmt", "--check", path(dir.path())], root());
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("would reformat {}", kp.display())),
        "{out}"
    );
    let deeper = dir.path().join("invariants/deeper.cedar");
    assert!(
        out.contains(&format!("would reformat {}", deeper.display())),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&kp).unwrap(),
        UNFORMATTED,
        "--check changes nothing"
    );

    let (code, out, err) = run(&["fmt", path(dir.path())], root());
    assert_eq!(code, 0, "{out}{err}");
    let formatted = std::fs::read_to_string(&kp).unwrap();
    assert_ne!(formatted, UNFORMATTED);
    for kept in [
        "// The header comment stays.",
        "// trailing comment stays",
        "@id(\"kp\")",
        "@measure(\"SM-1\")",
        "@message(\"KP is prohibited\")",
        "forbid (principal, action, resource)",
    ] {
        assert!(formatted.contains(kept), "`{kept}` lost:\n{formatted}");
    }
    let (code, out, _) = run(&["fmt", "--check", path(dir.path())], root());
    assert_eq!((code, out.as_str()), (0, ""), "formatting is stable");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "not a policy"
    );

    // The formatted policies decide as before.
    let s = snapshot(dir.path(), &[]);
    let r = parse_decide(
        br#"{"action":"open_account","customer":{"id":"c","name":"N","nationalities":["KP"]}}"#,
    )
    .unwrap();
    let d = portcullis_core::engine::decide(&s, &r);
    assert_eq!(d.reasons[0].policy.as_ref(), "kp");
}

#[test]
fn fmt_refuses_a_file_it_cannot_parse_and_says_which() {
    let dir = policy_dir(&[(
        "bad.cedar",
        "permit(principal, action, resource) when { 1 + };",
    )]);
    let (code, _, err) = run(&["fmt", path(dir.path())], root());
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("bad.cedar: cannot format"), "{err}");
    let (code, _, err) = run(&["fmt", "no/such/dir"], root());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`no/such/dir` does not exist"), "{err}");
}

#[test]
fn fmt_formats_the_file_a_link_points_to_and_refuses_what_the_loader_refuses() {
    let shared = policy_dir(&[("kp.cedar", UNFORMATTED)]);
    let dir = policy_dir(&[("base.cedar", BASELINE)]);
    let link = dir.path().join("kp.cedar");
    std::os::unix::fs::symlink(shared.path().join("kp.cedar"), &link).unwrap();
    let (code, out, err) = run(&["fmt", path(dir.path())], root());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    let target = std::fs::read_to_string(shared.path().join("kp.cedar")).unwrap();
    assert!(
        target.contains("forbid (principal, action, resource)"),
        "{target}"
    );

    // Nesting beyond the loader's limit is refused before any parser recurses.
    let deep = format!(
        "permit(principal, action, resource) when {{ {}true{} }};",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let dir = policy_dir(&[("deep.cedar", &deep)]);
    let (code, _, err) = run(&["fmt", path(dir.path())], root());
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("deep.cedar: cannot format: 1:") && err.contains("levels deep"),
        "{err}"
    );
}

#[test]
fn the_shipped_policies_are_formatted() {
    let (code, out, err) = run(&["fmt", "--check", "policies"], root());
    assert_eq!(code, 0, "{out}{err}");
}

// explain

/// Policies where every kind of trace shows: guards, Cedar, a window, an
/// error (an overflow: the forbid fails closed), a condition, an obligation,
/// another action's policy.
const TRACED: &str = r#"@id("kp") @measure("SM-KP") forbid(principal, action, resource)
  when { context.jurisdictions.contains("KP") };
@id("named") forbid(principal, action, resource) when { principal.name like "*Petrov*" };
@id("later") @effective("2099-01-01") forbid(principal, action, resource);
@id("overflow") forbid(principal, action == Action::"provision", resource)
  when { resource.gpu_count * 9223372036854775807 > 1 };
@id("gpu") @condition("kyc") forbid(principal, action == Action::"provision", resource)
  when { resource.gpu_count >= 256 };
@id("watch") @obligation("monitor") permit(principal, action, resource)
  when { context.ip_country_mismatch };
@id("signup-only") forbid(principal, action == Action::"open_account", resource)
  when { context.anonymous_ip };
"#;

fn explain_json(dir: &std::path::Path, request: &Value) -> Value {
    let file = dir.join("request.json");
    std::fs::write(&file, request.to_string()).unwrap();
    let (code, out, err) = run(
        &[
            "explain",
            "--policies",
            path(dir),
            "--geo",
            path(&default_geo()),
            "--format",
            "json",
            path(&file),
        ],
        root(),
    );
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn results(e: &Value) -> Vec<(String, String, Value)> {
    e["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["policy"].as_str().unwrap().to_owned(),
                p["result"].as_str().unwrap().to_owned(),
                p["role"].clone(),
            )
        })
        .collect()
}

#[test]
fn explain_traces_every_policy_of_the_action() {
    let dir = policy_dir(&[("base.cedar", BASELINE), ("p.cedar", TRACED)]);
    let e = explain_json(
        dir.path(),
        &json!({"action": "provision",
                "customer": {"id": "c", "name": "Ann Lee", "nationalities": ["FR"],
                             "beneficial_owners": [{"name": "O", "country": "KP"}]},
                "source_ips": ["8.8.8.8"],
                "resource": {"kind": "gpu_cluster", "gpu_count": 300}}),
    );
    assert_eq!(e["decision"]["decision"], "deny");
    let got = results(&e);
    let expected = [
        ("baseline", "decided_by_guards", json!({"role": "permits"})),
        ("kp", "decided_by_guards", json!({"role": "denies"})),
        ("named", "not_satisfied", Value::Null),
        ("later", "out_of_window", Value::Null),
        ("overflow", "error", json!({"role": "denies_fail_closed"})),
        (
            "gpu",
            "decided_by_guards",
            json!({"role": "conditional_on", "condition": "kyc"}),
        ),
        ("watch", "decided_by_guards", json!({"role": "permits"})),
    ];
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for ((id, result, role), (want_id, want_result, want_role)) in got.iter().zip(expected) {
        assert_eq!((id.as_str(), result.as_str()), (want_id, want_result));
        assert_eq!(role, &want_role, "{id}");
    }
    assert_eq!(e["other_actions"], json!(["signup-only"]));
    assert_eq!(e["policies"][3]["state"], "scheduled");
    assert!(
        e["policies"][4]["error"]
            .as_str()
            .unwrap()
            .contains("overflow"),
        "{e}"
    );
    assert_eq!(e["summary"], "deny: `kp` [SM-KP], `overflow`");
    let kp = e["countries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["country"] == "KP")
        .unwrap();
    assert_eq!(
        kp["sources"],
        json!(["customer.beneficial_owners[0].country"])
    );
    let us = e["countries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["country"] == "US")
        .unwrap();
    assert_eq!(us["sources"], json!(["source_ips[0]: 8.8.8.8, geolocated"]));

    // A guard that is false is named; a met condition is lifted.
    let e = explain_json(
        dir.path(),
        &json!({"action": "provision", "customer": {"id": "c", "name": "Ann Lee"},
                "resource": {"kind": "gpu_cluster", "gpu_count": 0}, "satisfied_conditions": ["kyc"],
                "at": "2099-06-01"}),
    );
    let got = results(&e);
    assert_eq!(got[1].1, "guard_false");
    assert_eq!(
        e["policies"][1]["guard"],
        r#"context.jurisdictions.contains("KP")"#
    );
    assert_eq!(
        got[3],
        (
            "later".into(),
            "decided_by_guards".into(),
            json!({"role": "denies"})
        )
    );
    assert_eq!(e["policies"][5]["guard"], "resource.gpu_count >= 256");
    assert_eq!(e["decision"]["decided_at"], "2099-06-01T00:00:00.000Z");
}

#[test]
fn explain_gives_the_decision_decide_gives_for_every_shipped_case() {
    let s = snapshot(&shipped_policies(), &[default_geo()]);
    assert!(!s.cases.is_empty());
    for c in &s.cases {
        let decided = portcullis_core::engine::decide(&s, &c.case.request);
        let explained = portcullis_core::explain::explain(&s, &c.case.request).decision;
        assert_eq!(
            (
                &explained.decision,
                &explained.reasons,
                &explained.conditions,
                &explained.obligations
            ),
            (
                &decided.decision,
                &decided.reasons,
                &decided.conditions,
                &decided.obligations
            ),
            "{}",
            c.case.name
        );
        assert_eq!(explained.facts.jurisdictions, decided.facts.jurisdictions);
    }
}

#[test]
fn explain_text_reads_as_a_trace() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        r#"{"action": "open_account", "customer": {"id": "c", "name": "Bo Chen"}, "reseller": {"country": "KP"}}"#,
    )
    .unwrap();
    let (code, out, err) = run(&["explain", path(file.path())], root());
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("deny: `sm-kp` [SM-EXAMPLE-001]\n"), "{out}");
    assert!(out.contains("KP  reseller.country"), "{out}");
    assert!(out.contains("satisfied (by its guards) -> denies"), "{out}");
    assert!(
        out.contains("skipped: `!context.screening_matches.isEmpty()` is false"),
        "{out}"
    );
    // A request that is not valid says which field.
    std::fs::write(file.path(), r#"{"action": "open_account", "customer": {"id": "c", "name": "N", "nationalities": ["XX"]}}"#).unwrap();
    let (code, _, err) = run(&["explain", path(file.path())], root());
    assert_eq!(code, 1);
    assert!(
        err.contains("invalid_country") && err.contains("customer.nationalities[0]"),
        "{err}"
    );
}

#[tokio::test]
async fn explain_over_http_needs_the_admin_token() {
    let router = portcullis::server::http::router(state_with(
        snapshot(&shipped_policies(), &[default_geo()]),
        Limits::default(),
        Some("s3cret"),
    ));
    let body = r#"{"action": "open_account", "customer": {"id": "c", "name": "Bo Chen"}, "reseller": {"country": "KP"}, "at": "2030-01-01"}"#;
    let (status, _) = call_raw(&router, "POST", "/v1/explain", body, None).await;
    assert_eq!(status, 401);
    // Without the token, a bad body is not even read.
    let (status, _) = call_raw(&router, "POST", "/v1/explain", "{", Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, bytes) = call_raw(&router, "POST", "/v1/explain", body, Some("s3cret")).await;
    assert_eq!(status, 200);
    let e: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(e["decision"]["decision"], "deny");
    assert_eq!(
        e["decision"]["decided_at"], "2030-01-01T00:00:00.000Z",
        "`at` is an author's question here"
    );
    assert_eq!(e["policies"][1]["policy"], "sm-kp");
    assert_eq!(e["policies"][1]["role"]["role"], "denies");
    let (status, bytes) = call_raw(&router, "POST", "/v1/explain", "{", Some("s3cret")).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&bytes));
}

// test --coverage

#[test]
fn the_shipped_policies_are_fully_covered_by_their_cases() {
    let (code, out, err) = run(
        &["test", "policies", "--coverage", "--min-coverage", "100"],
        root(),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("100.0%  ") && out.contains("total"), "{out}");
    assert!(
        out.contains(
            "n/a      sm-anonymous-signup: not counted: no geo database loaded has anonymizer flags"
        ),
        "{out}"
    );
}

const COVERED: &str = r#"@id("kp") forbid(principal, action, resource) when { context.jurisdictions.contains("KP") };
@id("anon") @condition("docs") forbid(principal, action == Action::"open_account", resource)
  when { context.anonymous_ip };
@id("watch") @obligation("monitor") permit(principal, action, resource)
  when { context.ip_country_mismatch };
"#;

fn case(name: &str, request: Value, decision: &str) -> Value {
    json!({"name": name, "request": request, "expect": {"decision": decision}})
}

#[test]
fn coverage_counts_policies_conditions_and_obligations_and_enforces_a_minimum() {
    let open = |extra: Value| {
        let mut r = json!({"action": "open_account", "customer": {"id": "c", "name": "Ann Lee", "nationalities": ["GB"]}});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    let some_cases = json!([
        case("plain", open(json!({})), "allow"),
        case("kp", open(json!({"reseller": {"country": "KP"}})), "deny"),
        case(
            "anonymous",
            open(json!({"source_ips": ["81.2.69.160"]})),
            "conditional"
        ),
    ]);
    let dir = policy_dir(&[
        ("base.cedar", BASELINE),
        ("p.cedar", COVERED),
        ("tests/cases.json", &some_cases.to_string()),
    ]);
    let geo = [
        maxmind("test-data/GeoIP2-Country-Test.mmdb"),
        maxmind("test-data/GeoIP2-Anonymous-IP-Test.mmdb"),
    ];
    let args = |extra: &[&str]| {
        let mut a = vec![
            "test".to_owned(),
            path(dir.path()).to_owned(),
            "--geo".into(),
            path(&geo[0]).to_owned(),
            "--geo".into(),
            path(&geo[1]).to_owned(),
            "--coverage".into(),
        ];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let run_with = |extra: &[&str]| {
        let a = args(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run(&a, root())
    };
    let (code, out, err) = run_with(&["--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let c = &report["coverage"];
    let policy = |id: &str| {
        c["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["policy"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        policy("baseline")["not_satisfied"],
        Value::Null,
        "it always holds"
    );
    assert_eq!(
        (
            policy("kp")["satisfied"].clone(),
            policy("kp")["not_satisfied"].clone()
        ),
        (json!(true), json!(true))
    );
    let anon = policy("anon");
    assert_eq!(
        anon["condition"],
        json!({"id": "docs", "produced": true, "lifted": false})
    );
    let watch = policy("watch");
    // 81.2.69.160 is in GB, which the customer declared: no mismatch yet.
    assert_eq!(
        (
            watch["satisfied"].clone(),
            watch["obligation"]["produced"].clone()
        ),
        (json!(false), json!(false))
    );
    // baseline 1 + kp 2 + anon 4 + watch 3 = 10 items; covered 1 + 2 + 3 + 1 = 7.
    assert_eq!(
        (c["covered"].clone(), c["total"].clone()),
        (json!(7), json!(10))
    );

    let (code, out, _) = run_with(&["--min-coverage", "80"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("coverage 70.0% is below the minimum of 80%"),
        "{out}"
    );
    assert!(
        out.contains("missing  anon: never condition `docs` lifted"),
        "{out}"
    );
    assert!(
        out.contains("missing  watch: never satisfied, never obligation `monitor` produced"),
        "{out}"
    );

    // The missing cases bring it to 100 %.
    let all_cases = json!([
        some_cases[0],
        some_cases[1],
        some_cases[2],
        case(
            "anonymous with documents",
            open(json!({"source_ips": ["81.2.69.160"], "satisfied_conditions": ["docs"]})),
            "allow"
        ),
        case(
            "undeclared country",
            open(
                json!({"source_ips": ["2.125.160.217"], "customer": {"id": "c", "name": "Ann Lee", "nationalities": ["FR"]}})
            ),
            "allow"
        ),
    ]);
    std::fs::write(dir.path().join("tests/cases.json"), all_cases.to_string()).unwrap();
    let (code, out, err) = run_with(&["--min-coverage", "100"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("100.0%  10/10  total"), "{out}");
}
