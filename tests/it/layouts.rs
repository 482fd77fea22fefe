//! Deployment layouts of the policy directory: files as symbolic links
//! (Kubernetes ConfigMap and Secret volumes), broken links, a directory with no
//! policy at all.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::binary::{get, post, run, start_watching};
use crate::support::{BASELINE, default_geo, root, shipped_policies};

/// A KP national named as the shipped example's designated person.
fn designated_kp_national() -> Value {
    json!({"action": "open_account",
           "customer": {"id": "c", "name": "Boris Exampleovich Fictiv", "nationalities": ["KP"]}})
}

fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Lays out `files` as a ConfigMap volume does: the real files in a
/// timestamped directory, `..data` a link to it, each file a link into `..data`.
fn configmap(dir: &Path, version: &str, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    let real = dir.join(format!("..{version}"));
    std::fs::create_dir(&real).unwrap();
    for (name, text) in files {
        std::fs::write(real.join(name), text).unwrap();
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    // The atomic swap: a new link renamed over `..data`.
    let staged = dir.join("..data_tmp");
    symlink(format!("..{version}"), &staged).unwrap();
    std::fs::rename(&staged, dir.join("..data")).unwrap();
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(shipped_policies().join(name)).unwrap()
}

#[test]
fn symlinked_policy_and_designation_files_are_loaded() {
    // The layout the hostile test used: `measures.cedar` and the designations
    // file are links to files kept elsewhere.
    let store = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("baseline.cedar"), shipped("baseline.cedar")).unwrap();
    std::fs::write(
        store.path().join("measures.cedar"),
        shipped("measures.cedar"),
    )
    .unwrap();
    std::fs::write(
        store.path().join("example.jsonl"),
        shipped("designations/example.jsonl"),
    )
    .unwrap();
    symlink(
        store.path().join("measures.cedar"),
        p.join("measures.cedar"),
    )
    .unwrap();
    std::fs::create_dir(p.join("designations")).unwrap();
    symlink(
        store.path().join("example.jsonl"),
        p.join("designations/example.jsonl"),
    )
    .unwrap();

    let (code, stdout, stderr) = run(&["check", p.to_str().unwrap()], root());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("ok: 6 policies, 2 designations"),
        "{stdout}"
    );

    let snapshot = crate::support::snapshot(p, &[default_geo()]);
    let router = portcullis::server::http::router(crate::support::state(snapshot));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, d) = rt.block_on(crate::support::decide(&router, &designated_kp_national()));
    assert_eq!(status, 200);
    assert_eq!(d["decision"], "deny", "{d}");
    let mut reasons = crate::support::ids(&d, "reasons", "policy");
    reasons.sort();
    assert_eq!(reasons, ["sm-designated-person", "sm-kp"]);
}

#[test]
fn a_dangling_link_or_a_link_loop_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("baseline.cedar"), BASELINE).unwrap();
    symlink(p.join("gone/measures.cedar"), p.join("measures.cedar")).unwrap();
    let (code, _, stderr) = run(&["check", p.to_str().unwrap()], root());
    assert_eq!(code, 3, "{stderr}");
    let expected = format!(
        "{}: symbolic link to `{}`, which does not exist",
        p.join("measures.cedar").display(),
        p.join("gone/measures.cedar").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    std::fs::remove_file(p.join("measures.cedar")).unwrap();
    std::fs::create_dir(p.join("designations")).unwrap();
    symlink("b.jsonl", p.join("designations/a.jsonl")).unwrap();
    symlink("a.jsonl", p.join("designations/b.jsonl")).unwrap();
    let (code, _, stderr) = run(&["check", p.to_str().unwrap()], root());
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains(".jsonl: symbolic link loop"), "{stderr}");
}

#[test]
fn a_configmap_volume_is_served_and_reloaded_when_data_is_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    let measures = shipped("measures.cedar");
    configmap(
        &policies,
        "2026_12_01_00_00_00.1",
        &[
            ("baseline.cedar", &shipped("baseline.cedar")),
            ("measures.cedar", &measures),
        ],
    );
    // The designations are a second volume mounted inside the first.
    configmap(
        &policies.join("designations"),
        "2026_12_01_00_00_00.2",
        &[("example.jsonl", &shipped("designations/example.jsonl"))],
    );
    let geo = default_geo();
    let server = start_watching(&policies, &geo, "100ms", &[]);
    let (_, status) = get(&server.base, "/v1/status");
    assert_eq!(status["policies"], 6, "{status}");
    assert_eq!(status["designations"], 2, "{status}");
    let (_, d) = post(&server.base, "/v1/decide", &designated_kp_national(), None);
    assert_eq!(d["decision"], "deny", "{d}");
    let first = status["policy_revision"].clone();

    // The kubelet's update: new files in a new directory, `..data` swapped.
    let updated = measures.replace(
        "accounts tied to the designated jurisdiction KP are prohibited",
        "updated through the volume",
    );
    configmap(
        &policies,
        "2026_12_01_00_05_00.3",
        &[
            ("baseline.cedar", &shipped("baseline.cedar")),
            ("measures.cedar", &updated),
        ],
    );
    let kp = json!({"action": "open_account", "customer": {"id": "c", "name": "N", "nationalities": ["KP"]}});
    eventually("the swapped volume is served", || {
        let (_, d) = post(&server.base, "/v1/decide", &kp, None);
        (d["reasons"][0]["message"] == "updated through the volume").then_some(())
    });
    let (_, status) = get(&server.base, "/v1/status");
    assert_ne!(status["policy_revision"], first);
    assert_eq!(status["last_reload"]["result"], "success", "{status}");
}

#[test]
fn a_directory_without_policies_is_refused_unless_allowed() {
    let dir = crate::support::policy_dir(&[("comments.cedar", "// nothing here yet\n")]);
    let p = dir.path().to_str().unwrap();
    let (code, _, stderr) = run(&["check", p], root());
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("the policy files hold no policy: every request would be denied"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-empty"), "{stderr}");
    let (code, stdout, stderr) = run(&["check", p, "--allow-empty"], root());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("ok: 0 policies"), "{stdout}");

    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(&["check", empty.path().to_str().unwrap()], root());
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no `*.cedar` policy files"), "{stderr}");
}

#[tokio::test]
async fn a_reload_to_an_empty_directory_keeps_the_last_good_snapshot() {
    let dir = crate::support::policy_dir(&[("base.cedar", BASELINE)]);
    let state = crate::support::state(crate::support::snapshot(dir.path(), &[]));
    let before = state.snapshot().revision.clone();
    std::fs::write(dir.path().join("base.cedar"), "// emptied by mistake\n").unwrap();
    let outcome = state
        .reload(portcullis::server::reload::ReloadRequest {
            trigger: "admin",
            force: true,
        })
        .await;
    assert_eq!(outcome.result, "failure");
    assert!(
        outcome.errors[0].message.contains("hold no policy"),
        "{:?}",
        outcome.errors
    );
    assert_eq!(state.snapshot().revision, before);
    assert_eq!(state.snapshot().policies.len(), 1);
}
