//! Golden answers: what people read (the command line's diagnostics and
//! reports) and a few full HTTP answers, compared with the snapshots under
//! `tests/it/snapshots/`. A change of output fails here until it is reviewed
//! (`cargo insta review`, or `INSTA_UPDATE=always` and a look at the diff).

use std::path::Path;

use serde_json::json;

use crate::binary::run;
use crate::support::{BASELINE, call, decide, shared_router};

/// A policy directory under `root/policies` with these files.
fn write_policies(root: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = root.join("policies").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A syntax error (policies that do not parse are not validated).
const SYNTAX: &[(&str, &str)] = &[
    ("baseline.cedar", BASELINE),
    (
        "syntax.cedar",
        "@id(\"kp\")\nforbid(principal, action, resource)\n  when { context.jurisdictions.contains(\"KP\") ;\n",
    ),
];

/// An `@id` used twice.
const DUPLICATE: &[(&str, &str)] = &[
    ("baseline.cedar", BASELINE),
    (
        "twice.cedar",
        "@id(\"baseline\")\npermit(principal, action == Action::\"open_account\", resource);\n",
    ),
];

/// Policies that parse but do not validate: an attribute the schema does not
/// have, and a comparison of a number with a string.
const BROKEN: &[(&str, &str)] = &[
    ("baseline.cedar", BASELINE),
    (
        "unknown.cedar",
        "@id(\"ru\")\nforbid(principal, action, resource)\n  when { principal.nationality == \"RU\" };\n",
    ),
    (
        "types.cedar",
        "@id(\"gpu\")\nforbid(principal, action, resource)\n  when { resource.gpu_count > \"256\" };\n",
    ),
];

#[test]
fn check_diagnostics_for_people() {
    let mut shown = String::new();
    for files in [SYNTAX, DUPLICATE, BROKEN] {
        let dir = tempfile::tempdir().unwrap();
        write_policies(dir.path(), files);
        let (code, stdout, stderr) = run(&["check", "policies"], dir.path());
        assert_eq!(code, 3, "{stderr}");
        assert_eq!(stdout, "");
        shown.push_str(&stderr);
    }
    insta::assert_snapshot!(shown);
}

#[test]
fn check_diagnostics_as_json() {
    let dir = tempfile::tempdir().unwrap();
    write_policies(dir.path(), BROKEN);
    let (code, stdout, _) = run(&["check", "policies", "--format", "json"], dir.path());
    assert_eq!(code, 3);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    insta::assert_json_snapshot!(report);
}

#[test]
fn check_summary_as_json() {
    let dir = tempfile::tempdir().unwrap();
    write_policies(dir.path(), &[("baseline.cedar", BASELINE)]);
    let (code, stdout, stderr) = run(&["check", "policies", "--format", "json"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    insta::assert_json_snapshot!(report, {".revision" => "[revision]"});
}

#[test]
fn test_report_with_a_failing_case() {
    let dir = tempfile::tempdir().unwrap();
    write_policies(
        dir.path(),
        &[
            ("baseline.cedar", BASELINE),
            (
                "kp.cedar",
                "@id(\"sm-kp\")\n@measure(\"SM-1\")\nforbid(principal, action, resource)\n  when { context.jurisdictions.contains(\"KP\") };\n",
            ),
            (
                "tests/cases.json",
                r#"[
  {"name": "KP is denied",
   "request": {"action": "open_account", "customer": {"id": "c1", "name": "A B", "nationalities": ["KP"]}},
   "expect": {"decision": "deny", "reasons": ["sm-kp"]}},
  {"name": "a wrong expectation",
   "request": {"action": "open_account", "customer": {"id": "c2", "name": "C D", "nationalities": ["FR"]}},
   "expect": {"decision": "deny", "reasons": ["sm-kp"]}}
]"#,
            ),
        ],
    );
    let (code, stdout, stderr) = run(&["test", "policies"], dir.path());
    assert_eq!(code, 4, "{stderr}");
    insta::assert_snapshot!(stdout);
}

#[tokio::test]
async fn answer_deny_for_a_kp_reseller() {
    let (status, body) = decide(
        &shared_router(),
        &json!({"request_id": "r-1", "action": "open_account",
                "customer": {"id": "c2", "name": "Bo Chen"},
                "reseller": {"id": "r1", "country": "KP"}}),
    )
    .await;
    assert_eq!(status, 200);
    insta::assert_json_snapshot!(body, {".decision_id" => "[decision_id]", ".policy_revision" => "[revision]", ".decided_at" => "[decided_at]"});
}

#[tokio::test]
async fn answer_conditional_with_screening_and_geolocation() {
    let (status, body) = decide(
        &shared_router(),
        &json!({"request_id": "r-2", "action": "provision",
                "customer": {"id": "c4", "kind": "organization", "name": "Example Trading LLC",
                             "address": {"country": "AE"},
                             "beneficial_owners": [{"name": "Ivan Petrov", "nationalities": ["RU"]}]},
                "source_ips": ["8.8.8.8"],
                "resource": {"kind": "gpu_cluster", "region": "us-east-1", "gpu_count": 512}}),
    )
    .await;
    assert_eq!(status, 200);
    insta::assert_json_snapshot!(body, {".decision_id" => "[decision_id]", ".policy_revision" => "[revision]", ".decided_at" => "[decided_at]"});
}

#[tokio::test]
async fn answer_to_an_unknown_field() {
    let (status, body) = call(
        &shared_router(),
        "POST",
        "/v1/decide",
        r#"{"action": "open_account", "customer": {"id": "c", "name": "N", "nationality": ["RU"]}}"#,
    )
    .await;
    assert_eq!(status, 400);
    insta::assert_json_snapshot!(body);
}

#[tokio::test]
async fn answer_to_a_batch() {
    let (status, body) = call(
        &shared_router(),
        "POST",
        "/v1/decide/batch",
        json!({"requests": [
            {"request_id": "b-1", "action": "open_account",
             "customer": {"id": "c1", "name": "Ann Lee", "nationalities": ["FR"]}},
            {"request_id": "b-2", "action": "maintain_account",
             "customer": {"id": "c3", "name": "Фиктив Борис"}}
        ]})
        .to_string(),
    )
    .await;
    assert_eq!(status, 200);
    insta::assert_json_snapshot!(body, {
        ".decisions[].decision_id" => "[decision_id]",
        ".decisions[].policy_revision" => "[revision]",
        ".decisions[].decided_at" => "[decided_at]",
    });
}
