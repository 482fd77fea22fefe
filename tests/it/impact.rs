//! `portcullis impact` and `synth --accounts`, through the real binary, and
//! impact's answers against the router's on generated policies and requests.

use std::io::Write as _;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::binary::run;
use crate::slicing::{policy_set, request};
use crate::support::{BASELINE, decide, default_geo, maxmind, policy_dir, root, snapshot, state};
use portcullis::impact::Pair;
use portcullis::server::state::Limits;
use portcullis_core::lifecycle::Instant;
use portcullis_core::request::parse_decide;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

const BASE: &str = r#"
@id("sm-kp") @measure("SM-1") forbid(principal, action, resource) when { context.jurisdictions.contains("KP") };
@id("sm-ir") @measure("SM-2") @condition("documentary_verification")
forbid(principal, action == Action::"open_account", resource) when { principal.nationalities.contains("IR") };
@id("sm-ru") @measure("SM-3") forbid(principal, action, resource) when { principal.nationalities.contains("RU") };
@id("sm-person") @measure("SM-5") forbid(principal, action, resource) when { !context.screening_matches.isEmpty() };
"#;

/// Tightens IR to a prohibition, lifts RU, adds an obligation on AE payments.
const CANDIDATE: &str = r#"
@id("sm-kp") @measure("SM-1") forbid(principal, action, resource) when { context.jurisdictions.contains("KP") };
@id("sm-ir") @measure("SM-2")
forbid(principal, action == Action::"open_account", resource) when { principal.nationalities.contains("IR") };
@id("obl-ae") @measure("SM-4") @obligation("enhanced_monitoring")
permit(principal, action, resource) when { principal.payment_country == "AE" };
@id("sm-person") @measure("SM-5") forbid(principal, action, resource) when { !context.screening_matches.isEmpty() };
"#;

const LIST: &str = r#"{"id":"SMP-1","kind":"individual","names":["Ivan Petrov"]}"#;
const NEW_LIST: &str = r#"{"id":"SMP-1","kind":"individual","names":["Ivan Petrov"]}
{"id":"SMP-2","kind":"individual","names":["Carla Newname"]}"#;

fn dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    (
        policy_dir(&[
            ("base.cedar", BASELINE),
            ("m.cedar", BASE),
            ("designations/list.jsonl", LIST),
        ]),
        policy_dir(&[
            ("base.cedar", BASELINE),
            ("m.cedar", CANDIDATE),
            ("designations/list.jsonl", NEW_LIST),
        ]),
    )
}

fn customer(name: &str, extra: Value) -> Value {
    let mut c = json!({"id": "c", "name": name, "address": {"country": "FR"}});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// Eleven lines: two not requests, one blank, eight decided.
fn requests() -> String {
    let open = |id: Option<&str>, c: Value| {
        let mut r = json!({"action": "open_account", "customer": c});
        if let Some(id) = id {
            r["request_id"] = json!(id);
        }
        r.to_string()
    };
    let lines = [
        open(Some("r-fr"), customer("Ann Lee", json!({}))),
        open(
            Some("r-kp"),
            customer("Ann Lee", json!({"nationalities": ["KP"]})),
        ),
        open(
            Some("r-ir"),
            customer("Ann Lee", json!({"nationalities": ["IR"]})),
        ),
        open(
            Some("r-ae"),
            customer("Ann Lee", json!({"payment": {"country": "AE"}})),
        ),
        open(Some("r-carla"), customer("Carla Newname", json!({}))),
        open(
            Some("r-ru"),
            customer("Ann Lee", json!({"nationalities": ["RU"]})),
        ),
        "{\"action\": \"open_account\", \"customer\": ".to_owned(),
        open(Some("r-bad"), customer("Ann Lee", json!({"shoe_size": 44}))),
        open(None, customer("Carla Newname", json!({}))),
        "   ".to_owned(),
        r#"{"request_id": "r-at", "at": "2027-01-01", "action": "maintain_account",
            "customer": {"id": "c", "name": "Ann Lee", "nationalities": ["KP"]}}"#
            .replace('\n', " "),
    ];
    lines.join("\n") + "\n"
}

fn impact(
    base: &std::path::Path,
    candidate: &std::path::Path,
    requests: &str,
    extra: &[&str],
) -> (i32, String, String) {
    let geo = default_geo();
    let mut args = vec![
        "impact",
        "--base",
        path(base),
        "--candidate",
        path(candidate),
        "--requests",
        requests,
        "--geo",
        path(&geo),
    ];
    args.extend_from_slice(extra);
    run(&args, root())
}

fn without_timing(mut summary: Value) -> Value {
    for key in ["elapsed_ms", "requests_per_second", "as_of"] {
        summary.as_object_mut().unwrap().remove(key);
    }
    summary
}

#[test]
fn impact_counts_every_change_by_transition_measure_and_jurisdiction() {
    let (base, candidate) = dirs();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("requests.jsonl");
    std::fs::write(&file, requests()).unwrap();
    let flips = work.path().join("flips.jsonl");
    let (code, out, err) = impact(
        base.path(),
        candidate.path(),
        path(&file),
        &[
            "--format",
            "json",
            "--out",
            path(&flips),
            "--fail-on",
            "deny->allow,allow->conditional",
        ],
    );
    assert_eq!(code, 1, "deny->allow occurred: {out}{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["read"], 10, "{s:#}");
    assert_eq!(s["rejected"]["count"], 2);
    assert_eq!(
        s["rejected"]["by_code"],
        json!({"malformed_json": 1, "unknown_field": 1})
    );
    assert_eq!(s["rejected"]["lines"][1]["line"], 8);
    assert_eq!(s["rejected"]["lines"][1]["field"], "customer.shoe_size");
    assert_eq!(s["compared"], 8);
    assert_eq!(s["unchanged"], 3);
    assert_eq!(s["changed"], 5);
    assert_eq!(s["flips"], 4);
    assert_eq!(
        s["transitions"],
        json!({"allow->allow": 1, "allow->deny": 2, "deny->allow": 1, "conditional->deny": 1})
    );
    assert_eq!(
        s["by_measure"],
        json!({"SM-3": {"gained": 0, "lost": 1}, "SM-4": {"gained": 1, "lost": 0},
               "SM-5": {"gained": 2, "lost": 0}})
    );
    assert_eq!(s["by_jurisdiction"]["RU"], 1);
    assert_eq!(s["by_jurisdiction"]["IR"], 1);
    assert_eq!(s["failed"], json!(["deny->allow"]));
    assert!(err.contains("line 7: malformed_json"), "{err}");
    assert!(
        err.contains("line 8: unknown_field at customer.shoe_size"),
        "{err}"
    );

    let lines: Vec<Value> = std::fs::read_to_string(&flips)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&Value> = lines.iter().map(|l| &l["request_id"]).collect();
    assert_eq!(
        ids,
        [
            &json!("r-ir"),
            &json!("r-ae"),
            &json!("r-carla"),
            &json!("r-ru"),
            &json!(9)
        ]
    );
    let carla = &lines[2];
    assert_eq!(carla["transition"], "allow->deny");
    assert_eq!(carla["before"]["decision"], "allow");
    assert_eq!(carla["after"]["reasons"][0]["policy"], "sm-person");
    assert_eq!(carla["screening"]["added"][0]["designation"], "SMP-2");
    assert_eq!(carla["screening"]["added"][0]["screened"], "Carla Newname");
    assert_eq!(carla["measures"]["gained"], json!(["SM-5"]));
    let ae = &lines[1];
    assert_eq!(ae["transition"], "allow->allow");
    assert_eq!(ae["after"]["obligations"][0]["id"], "enhanced_monitoring");
    let ir = &lines[0];
    assert_eq!(
        ir["before"]["conditions"][0]["id"],
        "documentary_verification"
    );
    assert_eq!(ir["after"]["decision"], "deny");
    assert_eq!(lines[4]["line"], 9);

    // Only transitions that did not occur: success. The text summary has the table.
    let (code, out, err) = impact(
        base.path(),
        candidate.path(),
        path(&file),
        &["--fail-on", "allow->conditional"],
    );
    assert_eq!(code, 0, "{out}{err}");
    for row in [
        "requests read",
        "conditional->deny",
        "deny->allow",
        "SM-5",
        "jurisdiction",
    ] {
        assert!(out.contains(row), "{row} in {out}");
    }
}

#[test]
fn compressed_input_and_standard_input_give_the_same_summary() {
    let (base, candidate) = dirs();
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("requests.jsonl");
    std::fs::write(&plain, requests()).unwrap();
    // Compressed, under a name that does not say so: the magic number does.
    let zst = work.path().join("requests.data");
    std::fs::write(&zst, zstd::encode_all(requests().as_bytes(), 3).unwrap()).unwrap();
    let summary = |file: &str| {
        let (code, out, err) = impact(base.path(), candidate.path(), file, &["--format", "json"]);
        assert_eq!(code, 0, "{err}");
        without_timing(serde_json::from_str(&out).unwrap())
    };
    let expected = summary(path(&plain));
    assert_eq!(summary(path(&zst)), expected);

    let from_stdin = impact_from_stdin(base.path(), candidate.path(), |stdin| {
        stdin.write_all(requests().as_bytes()).unwrap();
    });
    assert_eq!(from_stdin["transitions"], expected["transitions"]);

    // Compressed through a pipe that gives its first bytes one read at a time.
    let compressed = std::fs::read(&zst).unwrap();
    let trickled = impact_from_stdin(base.path(), candidate.path(), |stdin| {
        stdin.write_all(&compressed[..2]).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        stdin.write_all(&compressed[2..]).unwrap();
    });
    assert_eq!(trickled["transitions"], expected["transitions"]);
}

/// `synth --accounts … --out FILE` with the default geo database.
fn synth_accounts(out: &str, args: &[&str]) {
    let geo = default_geo();
    let mut all = vec!["synth"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out, "--geo", path(&geo)]);
    let (code, _, err) = run(&all, root());
    assert_eq!(code, 0, "{err}");
}

/// `impact --requests - --format json`, standard input written by `feed`:
/// the summary without its timing.
fn impact_from_stdin(
    base: &std::path::Path,
    candidate: &std::path::Path,
    feed: impl FnOnce(&mut std::process::ChildStdin),
) -> Value {
    let geo = default_geo();
    let mut child = Command::new(BIN)
        .args([
            "impact",
            "--base",
            path(base),
            "--candidate",
            path(candidate),
        ])
        .args(["--requests", "-", "--format", "json", "--geo", path(&geo)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    feed(&mut stdin);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    without_timing(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn the_changes_never_overwrite_the_requests() {
    let (base, candidate) = dirs();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("requests.jsonl");
    std::fs::write(&file, requests()).unwrap();
    let (code, _, err) = impact(
        base.path(),
        candidate.path(),
        path(&file),
        &["--out", path(&file)],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("would destroy it"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), requests());
    let (code, _, err) = impact(
        base.path(),
        candidate.path(),
        path(&file),
        &["--threads", "5000"],
    );
    assert_eq!(code, 2, "{err}");
}

#[test]
fn strict_stops_at_the_first_line_that_is_not_a_request() {
    let (base, candidate) = dirs();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("requests.jsonl");
    std::fs::write(&file, requests()).unwrap();
    let (code, out, err) = impact(
        base.path(),
        candidate.path(),
        path(&file),
        &["--strict", "--format", "json"],
    );
    assert_eq!(code, 7, "{out}{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["stopped_at_line"], 7);
    assert_eq!(s["read"], 7);
    assert_eq!(s["compared"], 6);
    assert_eq!(s["rejected"]["count"], 1);
}

#[test]
fn a_line_over_the_body_limit_is_rejected_and_the_rest_decided() {
    let (base, candidate) = dirs();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("requests.jsonl");
    let long = json!({"action": "open_account", "customer": {"id": "c", "name": "x".repeat(5000)}});
    std::fs::write(&file, format!("{long}\n{}", requests())).unwrap();
    let (code, out, err) = impact(
        base.path(),
        candidate.path(),
        path(&file),
        &["--format", "json", "--max-body", "4096"],
    );
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["rejected"]["by_code"]["payload_too_large"], 1);
    assert_eq!(s["rejected"]["lines"][0]["line"], 1);
    assert_eq!(s["compared"], 8);
}

#[test]
fn an_invalid_directory_is_refused_with_located_problems() {
    let (base, _) = dirs();
    let bad = policy_dir(&[
        ("base.cedar", BASELINE),
        (
            "bad.cedar",
            "\n@id(\"x\") permit(principal, action, resource) when { 1 + };",
        ),
    ]);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("requests.jsonl");
    std::fs::write(&file, requests()).unwrap();
    let (code, _, err) = impact(base.path(), bad.path(), path(&file), &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("bad.cedar:2:"), "{err}");
    assert!(
        err.contains("candidate policy directory is invalid"),
        "{err}"
    );
    let (code, _, err) = impact(
        base.path(),
        base.path(),
        path(&work.path().join("missing.jsonl")),
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("missing.jsonl"), "{err}");
}

#[test]
fn ctrl_c_prints_the_summary_so_far() {
    let (base, candidate) = dirs();
    let work = tempfile::tempdir().unwrap();
    let accounts = work.path().join("accounts.jsonl.zst");
    let geo = default_geo();
    synth_accounts(path(&accounts), &["--accounts", "200000", "--seed", "3"]);
    let mut child = Command::new(BIN)
        .args([
            "impact",
            "--base",
            path(base.path()),
            "--candidate",
            path(candidate.path()),
        ])
        .args([
            "--requests",
            path(&accounts),
            "--format",
            "json",
            "--threads",
            "1",
            "--geo",
            path(&geo),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("deciding the requests") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0,
            "no start line"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["interrupted"], true);
    let read = s["read"].as_u64().unwrap();
    assert!(read > 0 && read < 200_000, "{read}");
    assert_eq!(
        s["compared"].as_u64().unwrap() + s["rejected"]["count"].as_u64().unwrap(),
        read
    );
}

/// A designation added to the list: impact names exactly the accounts that
/// match it (by customer name, alias, owner, e-mail, identifier or network)
/// among 100,000 synthetic ones, and nothing else.
#[test]
fn a_new_designation_flags_exactly_the_accounts_it_matches() {
    let work = tempfile::tempdir().unwrap();
    let accounts = work.path().join("accounts.jsonl");
    synth_accounts(path(&accounts), &["--accounts", "100000", "--seed", "11"]);
    let mut lines: Vec<String> = std::fs::read_to_string(&accounts)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 100_000);
    let planted = [
        json!({"request_id": "planted-name", "action": "maintain_account",
               "customer": {"id": "p1", "name": "Zbigniew Quorthaxel", "address": {"country": "PL"}}}),
        json!({"request_id": "planted-alias", "action": "maintain_account",
               "customer": {"id": "p2", "name": "Jan Kowal", "aliases": ["QUORTHAXEL, Zbigniew"]}}),
        json!({"request_id": "planted-owner", "action": "maintain_account",
               "customer": {"id": "p3", "kind": "organization", "name": "Vistula Trading Sp. z o.o.",
                            "beneficial_owners": [{"name": "Zbigniew Quorthaxel", "nationalities": ["PL"]}]}}),
        json!({"request_id": "planted-email", "action": "maintain_account",
               "customer": {"id": "p4", "name": "Anna Nowak", "email": "ZQ@planted.example"}}),
        json!({"request_id": "planted-passport", "action": "maintain_account",
               "customer": {"id": "p5", "name": "Piotr Lis",
                            "identifiers": [{"kind": "passport", "value": "zq-0042-pl"}]}}),
        json!({"request_id": "planted-network", "action": "maintain_account",
               "customer": {"id": "p6", "name": "Ewa Zielinska"}, "source_ips": ["45.90.12.77"]}),
    ];
    for (i, p) in planted.iter().enumerate() {
        lines.insert(1 + i * 16_000, p.to_string());
    }
    std::fs::write(&accounts, lines.join("\n")).unwrap();
    let shipped = |extra: Option<&str>| {
        let mut files: Vec<(String, String)> = [
            "baseline.cedar",
            "measures.cedar",
            "designations/example.jsonl",
            "tests/examples.json",
        ]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read_to_string(root().join("policies").join(f)).unwrap(),
            )
        })
        .collect();
        if let Some(line) = extra {
            files.push(("designations/new.jsonl".into(), line.to_owned()));
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        policy_dir(&refs)
    };
    let base = shipped(None);
    let candidate = shipped(Some(
        r#"{"id":"SMP-PLANTED","kind":"individual","names":["Zbigniew Quorthaxel"],"emails":["zq@planted.example"],"identifiers":[{"kind":"passport","value":"ZQ-0042-PL"}],"cidrs":["45.90.12.0/24"],"measure":"SM-EXAMPLE-002"}"#,
    ));
    let flips = work.path().join("flips.jsonl");
    let (code, out, err) = impact(
        base.path(),
        candidate.path(),
        path(&accounts),
        &[
            "--format",
            "json",
            "--out",
            path(&flips),
            "--fail-on",
            "deny->allow",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["read"], 100_006);
    assert_eq!(s["rejected"]["count"], 0);
    let mut named: Vec<String> = std::fs::read_to_string(&flips)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(
                v["after"]["screening_matches"],
                json!(["SMP-PLANTED"]),
                "{v}"
            );
            assert_eq!(v["screening"]["added"][0]["designation"], "SMP-PLANTED");
            v["request_id"].as_str().unwrap().to_owned()
        })
        .collect();
    named.sort();
    let mut expected: Vec<String> = planted
        .iter()
        .map(|p| p["request_id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert_eq!(named, expected);
    assert_eq!(s["changed"], 6);
}

/// A synthetic account file: realistic requests, valid for the API.
#[test]
fn synthetic_accounts_are_valid_requests_and_repeat_names_when_asked() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("a.jsonl");
    synth_accounts(
        path(&file),
        &["--accounts", "2000", "--distinct-names", "50"],
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let mut names = std::collections::BTreeSet::new();
    let mut organizations = 0;
    let mut with_ip = 0;
    for line in text.lines() {
        let r = parse_decide(line.as_bytes()).unwrap_or_else(|e| panic!("{e}: {line}"));
        names.insert(r.customer.name.as_str().to_owned());
        organizations += usize::from(!r.customer.beneficial_owners.is_empty());
        with_ip += usize::from(!r.source_ips.is_empty());
    }
    assert_eq!(text.lines().count(), 2000);
    assert!(names.len() <= 50, "{}", names.len());
    assert!((300..900).contains(&organizations), "{organizations}");
    assert!(with_ip > 1500, "{with_ip}");
}

fn routers_and_pair(
    base: &str,
    candidate: &str,
) -> (Vec<tempfile::TempDir>, axum::Router, axum::Router, Pair) {
    let base_dir = policy_dir(&[("p.cedar", base), ("designations/d.jsonl", LIST)]);
    let cand_dir = policy_dir(&[("p.cedar", candidate), ("designations/d.jsonl", NEW_LIST)]);
    let geo = [
        maxmind("test-data/GeoIP2-Country-Test.mmdb"),
        maxmind("test-data/GeoIP2-Anonymous-IP-Test.mmdb"),
    ];
    let router = |dir: &tempfile::TempDir| {
        portcullis::server::http::router(state(snapshot(dir.path(), &geo)))
    };
    let (rb, rc) = (router(&base_dir), router(&cand_dir));
    let pair = Pair {
        base: snapshot(base_dir.path(), &geo),
        candidate: snapshot(cand_dir.path(), &geo),
        bounds: Limits {
            allow_as_of: true,
            ..Limits::default()
        }
        .bounds(),
        max_line: Limits::default().max_body,
        as_of: Instant::now(),
    };
    (vec![base_dir, cand_dir], rb, rc, pair)
}

/// The parts of an answer impact compares, lists sorted.
fn outcome(answer: &Value) -> Value {
    let sorted = |v: &Value| {
        let mut items: Vec<String> = v.as_array().unwrap().iter().map(Value::to_string).collect();
        items.sort();
        json!(items)
    };
    json!({
        "decision": answer["decision"],
        "reasons": sorted(&answer["reasons"]),
        "conditions": sorted(&answer["conditions"]),
        "obligations": sorted(&answer["obligations"]),
        "matches": sorted(&answer["facts"]["screening_matches"]),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Same answers as `serve`: each generated request decided by impact on
    /// two generated policy sets and by the router over each.
    #[test]
    fn impact_decides_as_the_router_does(base in policy_set(), candidate in policy_set(),
                                         requests in prop::collection::vec(request(), 1..8)) {
        let (_dirs, rb, rc, pair) = routers_and_pair(&base, &candidate);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for body in requests {
            let (_, on_base) = rt.block_on(decide(&rb, &body));
            let (_, on_candidate) = rt.block_on(decide(&rc, &body));
            let (before, after) = pair.decide_both(parse_decide(body.to_string().as_bytes()).unwrap());
            let before = serde_json::to_value(&before).unwrap();
            let after = serde_json::to_value(&after).unwrap();
            prop_assert_eq!(outcome(&before), outcome(&on_base), "{}", body);
            prop_assert_eq!(outcome(&after), outcome(&on_candidate), "{}", body);
            let judged = pair.judge(body.to_string().as_bytes());
            let portcullis::impact::Judged::Compared { change, .. } = judged else {
                panic!("not decided: {judged:?}");
            };
            prop_assert_eq!(change.is_none(), outcome(&on_base) == outcome(&on_candidate), "{}", body);
            if let Some(c) = change {
                prop_assert_eq!(c.transition.to_string(),
                    format!("{}->{}", on_base["decision"].as_str().unwrap(), on_candidate["decision"].as_str().unwrap()));
            }
        }
    }
}
