//! Policy nesting and size limits: what the hostile test used to crash the
//! process with is refused at load with a located diagnostic, and anything
//! within the limits evaluates the same on the stack every decision gets as on
//! the build's (so `check` and `serve` agree).

use std::path::Path;
use std::time::{Duration, Instant};

use portcullis_core::decision::Outcome;
use portcullis_core::policies::limits::{DECISION_STACK, MAX_NESTING};
use portcullis_core::snapshot::{Snapshot, Sources};
use serde_json::json;

use crate::binary::{get, post, run, signal, start_watching};
use crate::support::{BASELINE, default_geo, policy_dir, root};

/// The condition of a forbid, `n` units deep, in each shape Cedar recurses on.
fn shape(kind: &str, n: usize) -> String {
    match kind {
        "or" => vec!["context.jurisdictions.contains(\"KP\")"; n].join(" || "),
        "and" => vec!["context.jurisdictions.contains(\"FR\")"; n].join(" && "),
        "plus" => format!("resource.gpu_count{} > 0", " + 1".repeat(n)),
        "sets" => format!("{}1{} == {0}1{1}", "[".repeat(n), "]".repeat(n)),
        "parens" => format!("{}context.anonymous_ip{}", "(".repeat(n), ")".repeat(n)),
        "ifs" => format!(
            "{}true{}",
            "if context.jurisdictions.contains(\"FR\") then ".repeat(n),
            " else false".repeat(n)
        ),
        other => panic!("no shape {other}"),
    }
}

fn forbid(condition: &str) -> String {
    format!("@id(\"deep\")\nforbid(principal, action, resource)\n  when {{ {condition} }};\n")
}

/// Builds a snapshot the way every command does, from a thread with a small
/// (2 MiB) stack: the build must not depend on its caller's stack.
fn build(dir: &Path) -> Result<Snapshot, portcullis_core::snapshot::BuildError> {
    let sources = Sources::new(dir.to_owned(), Vec::new());
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || Snapshot::build(sources))
        .unwrap()
        .join()
        .unwrap()
}

fn decide_on(stack: usize, snapshot: &Snapshot) -> portcullis_core::decision::Decision {
    let req = portcullis_core::request::parse_decide(
        json!({"action": "provision",
               "customer": {"id": "c", "name": "Ann Lee", "nationalities": ["FR"]},
               "resource": {"kind": "gpu_cluster", "gpu_count": 8}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn_scoped(s, || portcullis_core::engine::decide(snapshot, &req))
            .unwrap()
            .join()
            .unwrap()
    })
}

#[test]
fn the_deepest_policy_accepted_evaluates_alike_on_the_decision_stack() {
    for (kind, expected) in [
        ("or", Outcome::Allow),
        ("and", Outcome::Deny),
        ("plus", Outcome::Deny),
        ("sets", Outcome::Deny),
        ("parens", Outcome::Allow),
        ("ifs", Outcome::Deny),
    ] {
        // The largest `n` the limits accept, found from above.
        let mut n = MAX_NESTING + 2;
        let (dir, snapshot) = loop {
            let dir = policy_dir(&[
                ("base.cedar", BASELINE),
                ("deep.cedar", &forbid(&shape(kind, n))),
            ]);
            match build(dir.path()) {
                Ok(s) => break (dir, s),
                Err(e) => {
                    let d = &e.diagnostics[0];
                    assert!(
                        d.file.ends_with("deep.cedar") && d.line >= 2 && d.column >= 1,
                        "{kind}: {d}"
                    );
                    assert!(
                        d.message.contains(&format!("the limit is {MAX_NESTING}")),
                        "{kind}: {d}"
                    );
                    n -= 1;
                }
            }
        };
        assert!(n + 10 >= MAX_NESTING, "{kind}: only {n} accepted");
        let on_decision_stack = decide_on(DECISION_STACK, &snapshot);
        assert_eq!(on_decision_stack.errors, [], "{kind} at {n}");
        assert_eq!(on_decision_stack.decision, expected, "{kind} at {n}");
        let on_build_stack = decide_on(portcullis_core::snapshot::BUILD_STACK, &snapshot);
        assert_eq!(
            on_build_stack.decision, on_decision_stack.decision,
            "{kind}"
        );
        assert_eq!(on_build_stack.errors, on_decision_stack.errors, "{kind}");
        drop(dir);
    }
}

#[test]
fn the_hostile_shapes_are_refused_with_a_located_diagnostic() {
    for (kind, n) in [
        ("parens", 130),
        ("parens", 700),
        ("or", 2000),
        ("or", 500),
        ("plus", 2000),
        ("sets", 150),
        ("plus", 32_000),
    ] {
        let dir = policy_dir(&[
            ("base.cedar", BASELINE),
            ("deep.cedar", &forbid(&shape(kind, n))),
        ]);
        let e = build(dir.path())
            .err()
            .unwrap_or_else(|| panic!("{kind} {n} accepted"));
        let d = &e.diagnostics[0];
        assert!(d.file.ends_with("deep.cedar"), "{d}");
        assert!(d.line >= 1 && d.column >= 1, "{kind} {n}: {d}");
        assert!(
            d.message.contains("levels deep") || d.message.contains("bytes long"),
            "{kind} {n}: {d}"
        );
    }
}

#[test]
fn check_test_and_a_watching_server_refuse_a_deep_policy_and_stay_up() {
    let dir = policy_dir(&[("base.cedar", BASELINE)]);
    let deep = forbid(&shape("parens", 700));
    let staged = tempfile::tempdir().unwrap();
    std::fs::write(staged.path().join("deep.cedar"), &deep).unwrap();
    for command in ["check", "test"] {
        let (code, _, stderr) = run(&[command, staged.path().to_str().unwrap()], root());
        assert_eq!(code, 3, "{command}: {stderr}");
        assert!(stderr.contains("deep.cedar:3:"), "{command}: {stderr}");
    }

    let mut server = start_watching(dir.path(), &default_geo(), "50ms", &[]);
    std::fs::write(dir.path().join("deep.cedar"), &deep).unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let (_, st) = get(&server.base, "/v1/status");
        if !st["last_reload_error"].is_null() {
            break st;
        }
        assert!(Instant::now() < end, "no reload error reported: {st}");
        std::thread::sleep(Duration::from_millis(25));
    };
    let message = status["last_reload_error"]["errors"][0]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("levels deep"), "{message}");
    // SIGHUP rebuilds the same files: refused again, still up.
    signal(&server.child, "HUP");
    let (code, d) = post(
        &server.base,
        "/v1/decide",
        &json!({"action": "open_account", "customer": {"id": "c", "name": "N"}}),
        None,
    );
    assert_eq!((code, d["decision"].as_str()), (200, Some("allow")), "{d}");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
}
