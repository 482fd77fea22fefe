//! `portcullis prove`: policy changes, invariants and errors proved for every
//! request with Cedar's symbolic compiler and the real cvc5 solver; each
//! counterexample request is decided again on the real engine.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::binary::{get, post, run, start};
use crate::support::{decide, default_geo, maxmind, root, shipped_policies, snapshot, state_with};

const KP: &str = r#"when { context.jurisdictions.contains("KP") };"#;
/// Sign-ups through an anonymizing network no longer covered.
const KP_NARROWED: &str =
    r#"when { context.jurisdictions.contains("KP") && !context.anonymous_ip };"#;

/// A copy of the shipped policies (without their test cases, which a changed
/// set may fail), `measures.cedar` edited, and the invariants if asked.
fn variant(edit: impl FnOnce(String) -> String, invariants: bool) -> tempfile::TempDir {
    let from = shipped_policies();
    let tmp = tempfile::tempdir().unwrap();
    let to = tmp.path();
    std::fs::copy(from.join("baseline.cedar"), to.join("baseline.cedar")).unwrap();
    let measures = std::fs::read_to_string(from.join("measures.cedar")).unwrap();
    let edited = edit(measures.clone());
    std::fs::write(to.join("measures.cedar"), edited).unwrap();
    let mut subdirs = vec!["designations"];
    if invariants {
        subdirs.push("invariants");
    }
    for sub in subdirs {
        std::fs::create_dir(to.join(sub)).unwrap();
        for entry in std::fs::read_dir(from.join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(sub).join(entry.file_name())).unwrap();
        }
    }
    tmp
}

/// The shipped invariants copied into `dir`.
fn with_shipped_invariants(dir: &Path) {
    std::fs::create_dir(dir.join("invariants")).unwrap();
    std::fs::copy(
        shipped_policies().join("invariants/measures.cedar"),
        dir.join("invariants/measures.cedar"),
    )
    .unwrap();
}

/// `portcullis ARGS` with a solver that does not exist: exit code and stderr.
fn without_solver(args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("CVC5", "/nonexistent/cvc5")
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn replaced(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` not in the policies");
    text.replacen(from, to, 1)
}

/// The geo databases of every run: countries, and anonymizer flags (so that
/// a counterexample with `anonymous_ip` can be given a source IP).
fn geo() -> Vec<PathBuf> {
    vec![
        default_geo(),
        maxmind("test-data/GeoIP2-Anonymous-IP-Test.mmdb"),
    ]
}

fn prove(args: &[&str]) -> (i32, String, String) {
    let geo = geo();
    let mut all = vec!["prove"];
    all.extend_from_slice(args);
    for g in &geo {
        all.extend(["--geo", s(g)]);
    }
    run(&all, root())
}

fn prove_json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let (code, out, err) = prove(&all);
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, report)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The decision `POST /v1/decide` gives `request` on a service of the
/// policies of `dir` (the real router, in process).
fn decided(dir: &Path, request: &Value) -> String {
    answered(dir, request)["decision"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The whole answer (as of the request's `at`, when it has one).
fn answered(dir: &Path, request: &Value) -> Value {
    let limits = portcullis::server::state::Limits {
        allow_as_of: true,
        ..Default::default()
    };
    let router = portcullis::server::http::router(state_with(snapshot(dir, &geo()), limits, None));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, answer) = runtime.block_on(decide(&router, request));
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The differences of a comparison, as (direction, action, base, candidate).
fn differences(report: &Value) -> Vec<(String, String, String, String)> {
    report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let a = &d["witness"]["answers"];
            (
                d["direction"].as_str().unwrap().to_owned(),
                d["action"].as_str().unwrap().to_owned(),
                a[0].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_shipped_invariants_hold_and_no_shipped_policy_can_err() {
    let (code, out, err) = prove(&["policies"]);
    assert_eq!(code, 0, "{out}{err}");
    for id in [
        "kp-denied",
        "designated-denied",
        "gpu-end-use",
        "ordinary-not-denied",
    ] {
        assert!(out.contains(&format!("holds: {id}")), "{id}: {out}");
    }
    assert!(out.contains("no policy can err"), "{out}");

    let (code, report) = prove_json(&["policies"]);
    assert_eq!(code, 0, "{report}");
    let invariants = report["invariants"].as_array().unwrap();
    assert_eq!(invariants.len(), 4);
    assert!(invariants.iter().all(|i| i["holds"] == true), "{report}");
    assert_eq!(report["can_err"], json!([]));

    let (code, out, err) = run(&["check", "--prove", "policies"], root());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("4 invariant(s) hold"), "{out}");
    // The same policies compared with themselves: nothing differs.
    let (code, out, _) = prove(&[
        "--base",
        "policies",
        "--candidate",
        "policies",
        "--fail-on",
        "widening,narrowing",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("equivalent"), "{out}");
}

#[test]
fn a_narrowed_prohibition_is_a_widening_shown_by_a_request_the_engine_confirms() {
    let candidate = variant(|m| replaced(m, KP, KP_NARROWED), false);
    let cand = s(candidate.path());
    let (code, report) = prove_json(&[
        "--base",
        "policies",
        "--candidate",
        cand,
        "--fail-on",
        "widening",
    ]);
    assert_eq!(code, 1, "--fail-on widening: {report}");
    let found = differences(&report);
    assert!(!found.is_empty());
    assert!(
        found.iter().all(|(direction, ..)| direction == "widening"),
        "a narrower prohibition only lets more through: {found:?}"
    );
    // Such a sign-up is allowed, but for opening an account, where the
    // anonymous sign-up condition applies.
    for (action, after) in [
        ("open_account", "conditional"),
        ("maintain_account", "allow"),
        ("provision", "allow"),
    ] {
        assert!(
            found
                .iter()
                .any(|(_, a, before, to)| a == action && before == "deny" && to == after),
            "{action}: {found:?}"
        );
    }
    for d in report["differences"].as_array().unwrap() {
        let facts = &d["witness"]["facts"];
        assert!(
            facts["jurisdictions"]
                .as_array()
                .unwrap()
                .contains(&json!("KP")),
            "{d}"
        );
        let request = &d["witness"]["request"];
        assert!(request.is_object(), "a request reproduces it: {d}");
        let (before, after) = (
            d["witness"]["answers"][0].as_str().unwrap(),
            d["witness"]["answers"][1].as_str().unwrap(),
        );
        assert_eq!(decided(&shipped_policies(), request), before, "{request}");
        assert_eq!(decided(candidate.path(), request), after, "{request}");
    }

    // The other way round, the change only narrows.
    let (code, _, _) = prove(&[
        "--base",
        cand,
        "--candidate",
        "policies",
        "--fail-on",
        "widening",
    ]);
    assert_eq!(code, 0);
    let (code, out, _) = prove(&[
        "--base",
        cand,
        "--candidate",
        "policies",
        "--fail-on",
        "narrowing",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("narrowing: maintain_account allow -> deny"),
        "{out}"
    );
    assert!(out.contains("request: {"), "{out}");
    // Without --fail-on, findings are reported and the exit is 0.
    let (code, _, _) = prove(&["--base", "policies", "--candidate", cand]);
    assert_eq!(code, 0);
}

#[test]
fn an_equivalent_rewrite_is_reported_equivalent() {
    let rewritten = variant(
        |m| {
            replaced(
                m,
                KP,
                r#"unless { !(["KP", "KP"].containsAny(context.jurisdictions)) };"#,
            )
        },
        true,
    );
    let dir = s(rewritten.path());
    let (code, out, err) = prove(&[
        "--base",
        "policies",
        "--candidate",
        dir,
        "--fail-on",
        "widening,narrowing",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("equivalent: the candidate answers every request as the base does"),
        "{out}"
    );
    assert_eq!(prove(&[dir]).0, 0, "its invariants hold too");
}

#[test]
fn conditions_are_told_apart_from_allows_and_denies() {
    // The anonymous sign-up condition made a prohibition.
    let hard = variant(
        |m| replaced(m, "@condition(\"documentary_verification\")\n", ""),
        false,
    );
    let (_, report) = prove_json(&["--base", "policies", "--candidate", s(hard.path())]);
    // What the verification lifted is now denied, and so is what it would have lifted.
    let found = differences(&report);
    let expected = [
        ("narrowing", "open_account", "allow", "deny"),
        ("narrowing", "open_account", "conditional", "deny"),
    ];
    assert_eq!(found.len(), expected.len(), "{report}");
    for e in expected {
        assert!(
            found.contains(&(e.0.into(), e.1.into(), e.2.into(), e.3.into())),
            "{e:?}: {report}"
        );
    }
    for d in report["differences"].as_array().unwrap() {
        let request = &d["witness"]["request"];
        let answers = &d["witness"]["answers"];
        assert_eq!(
            decided(&shipped_policies(), request),
            answers[0],
            "{request}"
        );
        assert_eq!(decided(hard.path(), request), answers[1], "{request}");
    }
    let (_, report) = prove_json(&["--base", s(hard.path()), "--candidate", "policies"]);
    let found = differences(&report);
    for e in [
        ("widening", "open_account", "deny", "allow"),
        ("widening", "open_account", "deny", "conditional"),
    ] {
        assert!(
            found.contains(&(e.0.into(), e.1.into(), e.2.into(), e.3.into())),
            "{e:?}: {report}"
        );
    }

    // The GPU condition renamed: what an attestation lifted is conditional again.
    let renamed = variant(
        |m| {
            replaced(
                m,
                "@condition(\"end_use_attestation\")",
                "@condition(\"export_license\")",
            )
        },
        false,
    );
    let (_, report) = prove_json(&["--base", "policies", "--candidate", s(renamed.path())]);
    let found = differences(&report);
    assert!(
        found.contains(&(
            "narrowing".into(),
            "provision".into(),
            "allow".into(),
            "conditional".into()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            "widening".into(),
            "provision".into(),
            "conditional".into(),
            "allow".into()
        )),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(_, action, ..)| action == "provision"),
        "{found:?}"
    );
}

#[test]
fn a_broken_invariant_gets_a_counterexample_and_is_refused_by_check_and_serve() {
    let broken = variant(|m| replaced(m, KP, KP_NARROWED), true);
    let dir = s(broken.path());
    let (code, report) = prove_json(&[dir]);
    assert_eq!(code, 9, "{report}");
    let invariants = report["invariants"].as_array().unwrap();
    let kp = invariants.iter().find(|i| i["id"] == "kp-denied").unwrap();
    assert_eq!(kp["holds"], false);
    for witness in kp["counterexamples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["witness"])
    {
        let request = &witness["request"];
        assert!(request.is_object(), "{witness}");
        assert_ne!(decided(broken.path(), request), "deny", "{request}");
    }
    let others: Vec<&Value> = invariants
        .iter()
        .filter(|i| i["id"] != "kp-denied")
        .collect();
    assert!(others.iter().all(|i| i["holds"] == true), "{report}");
    let (_, out, _) = prove(&[dir]);
    assert!(out.contains("FAILS: kp-denied (deny)"), "{out}");

    let (code, _, err) = run(&["check", "--prove", dir], root());
    assert_eq!(code, 9, "{err}");
    assert!(err.contains("invariant `kp-denied` does not hold"), "{err}");
    // `check` without --prove does not run the solver.
    assert_eq!(run(&["check", dir], root()).0, 0);

    let geo = default_geo();
    let (code, _, err) = run(
        &[
            "serve",
            "--prove",
            "--records",
            "off",
            "--listen",
            "127.0.0.1:0",
            "--policies",
            dir,
            "--geo",
            s(&geo),
        ],
        root(),
    );
    assert_eq!(code, 9, "{err}");
    assert!(err.contains("refusing to start"), "{err}");

    // A reload that breaks an invariant is refused; the snapshot in force stays.
    let good = variant(|m| m, true);
    let mut server = start(
        &[
            "--prove",
            "--no-watch",
            "--policies",
            s(good.path()),
            "--geo",
            s(&geo),
        ],
        root(),
        &[("PORTCULLIS_ADMIN_TOKEN", "tok")],
    );
    let kp = json!({"action": "open_account", "customer": {"id": "c", "name": "Quillon Marrowbeck", "nationalities": ["KP"]}});
    assert_eq!(
        post(&server.base, "/v1/decide", &kp, None).1["decision"],
        "deny"
    );
    let measures = good.path().join("measures.cedar");
    let text = std::fs::read_to_string(&measures).unwrap();
    std::fs::write(&measures, replaced(text, KP, KP_NARROWED)).unwrap();
    let (status, body) = post(&server.base, "/v1/admin/reload", &json!({}), Some("tok"));
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("kp-denied"), "{body}");
    assert_eq!(
        post(&server.base, "/v1/decide", &kp, None).1["decision"],
        "deny"
    );
    let (_, st) = get(&server.base, "/v1/status");
    assert!(
        st["last_reload_error"]
            .to_string()
            .contains("does not hold"),
        "{st}"
    );
    crate::binary::signal(&server.child, "TERM");
    crate::binary::wait_exit(&mut server.child);
}

#[test]
fn a_policy_that_can_err_is_reported_with_a_request_it_errs_on() {
    let erring = variant(
        |m| {
            m + "\n@id(\"overflow\")\n@message(\"overflows for large clusters\")\nforbid (principal, action, resource)\nwhen { resource.gpu_count * 10000000000 * 10000000000 > 5 };\n"
        },
        false,
    );
    let dir = s(erring.path());
    let (code, report) = prove_json(&[dir]);
    assert_eq!(code, 0, "reported, not failed, without --fail-on: {report}");
    let can_err = report["can_err"].as_array().unwrap();
    assert!(!can_err.is_empty(), "{report}");
    assert!(
        can_err.iter().all(|e| e["policy"] == "overflow"),
        "{report}"
    );
    let (code, out, _) = prove(&[dir, "--fail-on", "errors"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("can err: policy `overflow`"), "{out}");
}

#[test]
fn invariants_that_are_not_well_formed_are_refused_with_their_file() {
    let dir = variant(|m| m, false);
    std::fs::create_dir(dir.path().join("invariants")).unwrap();
    std::fs::write(
        dir.path().join("invariants/bad.cedar"),
        "@id(\"no-expect\")\npermit (principal, action, resource);\n@id(\"forbid\")\n@expect(\"deny\")\nforbid (principal, action, resource);\n@id(\"typo\")\n@expect(\"denied\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    let (code, _, err) = prove(&[s(dir.path())]);
    assert_eq!(code, 3, "{err}");
    for needle in [
        "bad.cedar",
        "`no-expect` has no @expect",
        "`forbid` must be a `permit`",
        "@expect(\"denied\") is not one of",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    std::fs::write(
        dir.path().join("invariants/bad.cedar"),
        "@id(\"x\")\n@expect(\"deny\")\npermit (principal, action, resource) when { context.no_such_fact };\n",
    )
    .unwrap();
    let (code, _, err) = prove(&[s(dir.path())]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no_such_fact"), "{err}");
}

#[test]
fn without_a_solver_prove_says_how_to_install_one() {
    let (code, err) = without_solver(&["prove", "policies"]);
    assert_eq!(code, Some(10), "{err}");
    assert!(
        err.contains("apt-get install cvc5") && err.contains("CVC5="),
        "{err}"
    );
}

#[test]
fn a_base_forbid_that_can_err_leaves_widenings_unproved() {
    // Errs for clusters of 2^31 GPUs or more: the engine then denies them.
    let erring = variant(
        |m| {
            m + "\n@id(\"overflow\")\nforbid (principal, action == Action::\"provision\", resource)\nwhen { resource.gpu_count * 4294967296 < 0 };\n"
        },
        false,
    );
    let dir = s(erring.path());
    let (code, report) = prove_json(&[
        "--base",
        dir,
        "--candidate",
        "policies",
        "--fail-on",
        "widening",
    ]);
    assert_eq!(
        code, 1,
        "a widening where the base errs cannot be ruled out: {report}"
    );
    assert_eq!(report["widening_proved"], false, "{report}");
    assert!(
        report["notes"][0]
            .as_str()
            .unwrap()
            .contains("`overflow` of the base errs"),
        "{report}"
    );
    // Where the candidate errs, it is the narrowings that are not proved.
    let (code, report) = prove_json(&[
        "--base",
        "policies",
        "--candidate",
        dir,
        "--fail-on",
        "widening",
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["narrowing_proved"], false, "{report}");
    // An invariant that ordinary customers are never denied is not proved
    // either: the erring forbid denies some of them.
    with_shipped_invariants(erring.path());
    let (code, report) = prove_json(&[dir]);
    assert_eq!(code, 9, "{report}");
    let ordinary = report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "ordinary-not-denied")
        .unwrap();
    assert!(
        ordinary["unproved"]
            .as_str()
            .unwrap()
            .contains("`overflow`"),
        "{ordinary}"
    );
    let request = &ordinary["counterexamples"][0]["witness"]["request"];
    assert_eq!(decided(erring.path(), request), "deny", "{request}");
}

#[test]
fn a_screening_threshold_of_zero_still_finds_a_widening() {
    let candidate = variant(
        |m| {
            replaced(
                m,
                KP,
                r#"when { context.jurisdictions.contains("KP") && false };"#,
            )
        },
        false,
    );
    let (code, report) = prove_json(&[
        "--base",
        "policies",
        "--candidate",
        s(candidate.path()),
        "--screening-threshold",
        "0",
        "--fail-on",
        "widening",
    ]);
    assert_eq!(code, 1, "{report}");
    assert!(!differences(&report).is_empty(), "{report}");
}

#[test]
fn a_prohibition_that_expires_is_a_widening_from_that_day_with_a_dated_request() {
    let expiring = variant(
        |m| {
            replaced(
                m,
                "@id(\"sm-kp\")",
                "@id(\"sm-kp\")\n@expires(\"2099-01-01\")",
            )
        },
        false,
    );
    let dir = s(expiring.path());
    let (code, report) = prove_json(&[
        "--base",
        "policies",
        "--candidate",
        dir,
        "--fail-on",
        "widening",
    ]);
    assert_eq!(code, 1, "{report}");
    let later: Vec<&Value> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["at"]
                .as_str()
                .is_some_and(|t| t.starts_with("2099-01-01"))
        })
        .collect();
    assert!(!later.is_empty(), "{report}");
    for d in later {
        let request = &d["witness"]["request"];
        assert!(
            request["at"].as_str().unwrap().starts_with("2099-01-01"),
            "{d}"
        );
        assert_eq!(
            decided(&shipped_policies(), request),
            d["witness"]["answers"][0],
            "{request}"
        );
        assert_eq!(
            decided(expiring.path(), request),
            d["witness"]["answers"][1],
            "{request}"
        );
    }
    // Its invariants hold today and fail from that day: refused now.
    with_shipped_invariants(expiring.path());
    let (code, _, err) = run(&["check", "--prove", dir], root());
    assert_eq!(code, 9, "{err}");
    assert!(
        err.contains("kp-denied") && err.contains("from 2099-01-01"),
        "{err}"
    );
}

#[test]
fn a_dropped_obligation_is_a_widening_and_a_changed_list_is_said() {
    let unmonitored = variant(
        |m| replaced(m, "@obligation(\"enhanced_monitoring\")\n", ""),
        false,
    );
    let (code, report) = prove_json(&[
        "--base",
        "policies",
        "--candidate",
        s(unmonitored.path()),
        "--fail-on",
        "widening",
    ]);
    assert_eq!(code, 1, "{report}");
    let dropped: Vec<&Value> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["on"] == "obligation")
        .collect();
    assert!(!dropped.is_empty(), "{report}");
    for d in dropped {
        assert_eq!(d["direction"], "widening", "{d}");
        assert_eq!(d["obligation"], "enhanced_monitoring", "{d}");
        assert_eq!(d["witness"]["with_obligation"], json!([true, false]), "{d}");
        let request = &d["witness"]["request"];
        let has = |answer: &Value| {
            answer["obligations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["id"] == "enhanced_monitoring")
        };
        let (before, after) = (
            answered(&shipped_policies(), request),
            answered(unmonitored.path(), request),
        );
        assert_eq!(
            (before["decision"].as_str(), after["decision"].as_str()),
            (Some("allow"), Some("allow"))
        );
        assert!(has(&before) && !has(&after), "{before} {after}");
    }
    let (_, out, _) = prove(&["--base", "policies", "--candidate", s(unmonitored.path())]);
    assert!(
        out.contains("with enhanced_monitoring -> allow without enhanced_monitoring"),
        "{out}"
    );

    // A designation list emptied: policies equal, and the note says what is not compared.
    let unlisted = variant(|m| m, false);
    for entry in std::fs::read_dir(unlisted.path().join("designations")).unwrap() {
        std::fs::write(entry.unwrap().path(), "").unwrap();
    }
    let (_, out, _) = prove(&["--base", "policies", "--candidate", s(unlisted.path())]);
    assert!(
        out.contains("note: the designation lists differ") && out.contains("portcullis impact"),
        "{out}"
    );
    assert!(!out.contains("equivalent"), "{out}");
}

#[test]
fn string_patterns_templates_and_anonymous_invariants() {
    // `like` needs the solver's string theory.
    let pattern = variant(
        |m| {
            m + "\n@id(\"eu-regions\")\nforbid (principal, action == Action::\"provision\", resource)\nwhen { resource.region like \"*-gov-*\" };\n"
        },
        false,
    );
    let (code, report) = prove_json(&["--base", "policies", "--candidate", s(pattern.path())]);
    assert_eq!(code, 0, "{report}");
    let found = differences(&report);
    assert!(
        found.iter().any(|(dir, a, b, c)| dir == "narrowing"
            && a == "provision"
            && b == "allow"
            && c == "deny"),
        "{report}"
    );
    let request = &report["differences"][0]["witness"]["request"];
    assert!(
        request["resource"]["region"]
            .as_str()
            .unwrap()
            .contains("-gov-"),
        "{request}"
    );

    let dir = variant(|m| m, false);
    std::fs::create_dir(dir.path().join("invariants")).unwrap();
    std::fs::write(
        dir.path().join("invariants/bad.cedar"),
        "@id(\"t\")\n@expect(\"allow\")\npermit (principal == ?principal, action, resource);\n@expect(\"deny\")\npermit (principal, action, resource) when { context.jurisdictions.contains(\"KP\") };\n",
    )
    .unwrap();
    let (code, _, err) = prove(&[s(dir.path())]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("`t` is a template"), "{err}");
    assert!(err.contains("an invariant has no @id"), "{err}");
}

#[test]
fn serve_prove_without_a_solver_stops_with_its_own_code() {
    let geo = default_geo();
    let (code, err) = without_solver(&[
        "serve",
        "--prove",
        "--records",
        "off",
        "--listen",
        "127.0.0.1:0",
        "--policies",
        "policies",
        "--geo",
        s(&geo),
    ]);
    assert_eq!(code, Some(10), "{err}");
    assert!(err.contains("apt-get install cvc5"), "{err}");
}
