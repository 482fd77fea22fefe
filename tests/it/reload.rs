//! Hot reload with the real binary: files edited, added, deleted and renamed
//! under the policy directory and a geo database replaced, while requests flow.
//! Every change is awaited by polling with a deadline, never by sleeping.

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::binary::{get, post, start_watching};
use crate::support::{BASELINE, default_geo, eventually, maxmind, policy_dir, root};

fn kp() -> Value {
    json!({"action": "open_account", "customer": {"id": "c", "name": "N", "nationalities": ["KP"]}})
}

fn person(name: &str) -> Value {
    json!({"action": "open_account", "customer": {"id": "c", "name": name}})
}

const KP_POLICY: &str = "@id(\"sm-kp\") @message(\"v1\")\nforbid(principal, action, resource) when { context.jurisdictions.contains(\"KP\") };\n";
const PERSON_POLICY: &str = "@id(\"sm-person\")\nforbid(principal, action, resource) when { !context.screening_matches.isEmpty() };\n";

/// Requests sent, failures, revisions seen.
type Seen = (usize, Vec<String>, HashSet<String>);

/// Requests sent continuously from another thread; every answer must be a 200
/// carrying a revision the server really served.
struct Traffic {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(base: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new((0, Vec::new(), HashSet::new())));
        let (base, s, sn) = (base.to_owned(), stop.clone(), seen.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for body in [kp(), person("Petrov Ivan")] {
                    let (status, d) = post(&base, "/v1/decide", &body, None);
                    let mut seen = sn.lock().unwrap();
                    seen.0 += 1;
                    if status != 200 || d["errors"] != json!([]) {
                        seen.1.push(format!("{status}: {d}"));
                    } else {
                        seen.2
                            .insert(d["policy_revision"].as_str().unwrap().to_owned());
                    }
                }
            }
        });
        Self {
            stop,
            seen,
            handle: Some(handle),
        }
    }

    /// Stops and returns (requests sent, failures, revisions seen).
    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn revision(base: &str) -> String {
    get(base, "/v1/status").1["policy_revision"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn decision(base: &str, body: &Value) -> Value {
    let (status, d) = post(base, "/v1/decide", body, None);
    assert_eq!(status, 200, "{d}");
    d
}

#[test]
fn file_changes_reload_while_requests_flow() {
    let dir = policy_dir(&[
        ("base.cedar", BASELINE),
        ("person.cedar", PERSON_POLICY),
        (
            "designations/list.jsonl",
            "{\"id\":\"SMP-1\",\"names\":[\"Someone Else\"]}\n",
        ),
    ]);
    let p = dir.path();
    let geo = root().join("geo-data/geo-whois-asn-country.mmdb");
    let server = start_watching(p, &geo, "100ms", &["--admin-token", "t"]);
    let base = server.base.clone();
    let mut revisions = vec![revision(&base)];
    let traffic = Traffic::start(&base);

    // A new file.
    std::fs::write(p.join("kp.cedar"), KP_POLICY).unwrap();
    eventually("the new forbid applies", || {
        (decision(&base, &kp())["decision"] == "deny").then_some(())
    });
    revisions.push(revision(&base));

    // An editor's save: write a temporary file, rename it over the original.
    std::fs::write(p.join(".kp.cedar.swp"), KP_POLICY.replace("v1", "v2")).unwrap();
    std::fs::rename(p.join(".kp.cedar.swp"), p.join("kp.cedar")).unwrap();
    eventually("the edited message is served", || {
        (decision(&base, &kp())["reasons"][0]["message"] == "v2").then_some(())
    });
    revisions.push(revision(&base));

    // A broken file: the last good snapshot keeps serving, status says why.
    let before = revision(&base);
    std::fs::write(
        p.join("broken.cedar"),
        "@id(\"b\")\npermit(principal, action, resource) when { context.nope };",
    )
    .unwrap();
    let failure = eventually("the failure is reported", || {
        let st = get(&base, "/v1/status").1;
        (!st["last_reload_error"].is_null()).then_some(st)
    });
    assert_eq!(failure["policy_revision"], before.as_str());
    let err = &failure["last_reload_error"]["errors"][0];
    assert!(
        err["file"].as_str().unwrap().ends_with("broken.cedar"),
        "{err}"
    );
    assert_eq!(err["line"], 2);
    assert_eq!(decision(&base, &kp())["decision"], "deny");
    assert_eq!(get(&base, "/readyz").0, 200);

    // Fixed by deleting it.
    std::fs::remove_file(p.join("broken.cedar")).unwrap();
    eventually("the failure clears", || {
        get(&base, "/v1/status").1["last_reload_error"]
            .is_null()
            .then_some(())
    });

    // A rename out of the policy set disables the measure.
    std::fs::rename(p.join("kp.cedar"), p.join("kp.cedar.off")).unwrap();
    eventually("the renamed-away forbid no longer applies", || {
        (decision(&base, &kp())["decision"] == "allow").then_some(())
    });
    revisions.push(revision(&base));

    // A designation appended in two chunks.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(p.join("designations/list.jsonl"))
        .unwrap();
    f.write_all(b"{\"id\":\"SMP-2\",\"names\":").unwrap();
    f.flush().unwrap();
    f.write_all(b"[\"Ivan Petrov\"]}\n").unwrap();
    drop(f);
    eventually("the new designation matches", || {
        (decision(&base, &person("Petrov Ivan"))["decision"] == "deny").then_some(())
    });
    revisions.push(revision(&base));

    // A designations file deleted: every designation in force would go, so the
    // list shrink guard refuses it until the admin endpoint forces it.
    std::fs::remove_file(p.join("designations/list.jsonl")).unwrap();
    let refused = eventually("the shrinking list is refused", || {
        let st = get(&base, "/v1/status").1;
        (st["last_reload"]["result"] == "refused").then_some(st)
    });
    assert!(
        refused["last_reload_error"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("would remove 2 of the 2 designations"),
        "{refused}"
    );
    assert_eq!(decision(&base, &person("Petrov Ivan"))["decision"], "deny");
    let (status, body) = post(&base, "/v1/admin/reload?force=true", &json!({}), Some("t"));
    assert_eq!(status, 200, "{body}");
    eventually("the deleted designation no longer matches", || {
        (decision(&base, &person("Petrov Ivan"))["decision"] == "allow").then_some(())
    });
    revisions.push(revision(&base));

    let (sent, failures, seen) = traffic.finish();
    assert!(sent > 0);
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(
        revisions.windows(2).all(|w| w[0] != w[1]),
        "every change made a new revision: {revisions:?}"
    );
    // The revision is a content hash: renaming the forbid away restored the
    // original content, and with it the original revision.
    assert_eq!(revisions[0], revisions[3]);
    let known: HashSet<String> = revisions.iter().cloned().collect();
    // Every answer carried one of the revisions that were in force.
    assert!(seen.is_subset(&known), "{seen:?} not within {known:?}");
    let metrics = crate::binary::agent()
        .get(format!("{base}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let count = |result: &str| -> f64 {
        let prefix = format!("portcullis_reloads_total{{result=\"{result}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(count("failure") >= 1.0, "{metrics}");
    assert!(count("success") >= 5.0, "{metrics}");
}

#[test]
fn a_geo_database_replaced_by_rename_is_reloaded() {
    let dir = policy_dir(&[("base.cedar", BASELINE)]);
    let geo_dir = tempfile::tempdir().unwrap();
    let geo = geo_dir.path().join("country.mmdb");
    std::fs::copy(root().join("geo-data/geo-whois-asn-country.mmdb"), &geo).unwrap();
    let server = start_watching(dir.path(), &geo, "100ms", &[]);
    let (_, st) = get(&server.base, "/v1/status");
    assert_eq!(st["geo_databases"][0]["database_type"], "country ipvAll");

    let staged = geo_dir.path().join(".country.mmdb.tmp");
    std::fs::copy(maxmind("test-data/GeoIP2-Country-Test.mmdb"), &staged).unwrap();
    std::fs::rename(&staged, &geo).unwrap();
    let st = eventually("the new database is in force", || {
        let st = get(&server.base, "/v1/status").1;
        (st["geo_databases"][0]["database_type"] == "GeoIP2-Country").then_some(st)
    });
    assert_ne!(st["policy_revision"], json!(null));
    let d = decision(
        &server.base,
        &json!({"action": "open_account", "customer": {"id": "c", "name": "N"}, "source_ips": ["67.43.156.1"]}),
    );
    assert_eq!(d["facts"]["ip_countries"], json!(["BT"]));

    // A corrupt replacement is refused; the good one keeps serving.
    std::fs::write(&staged, b"not an mmdb").unwrap();
    std::fs::rename(&staged, &geo).unwrap();
    let st = eventually("the corrupt database is refused", || {
        let st = get(&server.base, "/v1/status").1;
        (!st["last_reload_error"].is_null()).then_some(st)
    });
    assert_eq!(st["geo_databases"][0]["database_type"], "GeoIP2-Country");
    let d = decision(
        &server.base,
        &json!({"action": "open_account", "customer": {"id": "c", "name": "N"}, "source_ips": ["67.43.156.1"]}),
    );
    assert_eq!(d["facts"]["ip_countries"], json!(["BT"]));
}

/// A rebuild keeps the screening index when the designation files are the same
/// (a policy edit neither re-reads the list nor holds two indexes), and builds a
/// new one, which screens the new list, as soon as they differ.
#[test]
fn a_rebuild_shares_the_screening_index_only_while_designations_are_unchanged() {
    use portcullis_core::snapshot::Snapshot;
    let list = "{\"id\":\"SMP-1\",\"names\":[\"Ivan Petrov\"]}\n";
    let dir = policy_dir(&[
        ("base.cedar", BASELINE),
        ("person.cedar", PERSON_POLICY),
        ("designations/list.jsonl", list),
    ]);
    let first = crate::support::snapshot(dir.path(), &[]);
    let same = Snapshot::rebuild(first.sources.clone(), Some(&first)).unwrap();
    assert!(Arc::ptr_eq(&first.designations, &same.designations));

    std::fs::write(dir.path().join("kp.cedar"), KP_POLICY).unwrap();
    let policy_edit = Snapshot::rebuild(same.sources.clone(), Some(&same)).unwrap();
    assert!(Arc::ptr_eq(&first.designations, &policy_edit.designations));
    assert_ne!(policy_edit.revision, same.revision);

    std::fs::write(
        dir.path().join("designations/list.jsonl"),
        format!("{list}{{\"id\":\"SMP-2\",\"names\":[\"Olga Smirnova\"]}}\n"),
    )
    .unwrap();
    let list_edit = Snapshot::rebuild(policy_edit.sources.clone(), Some(&policy_edit)).unwrap();
    assert!(!Arc::ptr_eq(&first.designations, &list_edit.designations));
    assert_eq!(list_edit.designations.len(), 2);
    let req =
        portcullis_core::request::parse_decide(person("Olga Smirnova").to_string().as_bytes())
            .unwrap();
    assert_eq!(
        portcullis_core::engine::decide(&list_edit, &req).decision,
        portcullis_core::decision::Outcome::Deny,
        "the new list screens"
    );
    assert_eq!(
        portcullis_core::engine::decide(&policy_edit, &req).decision,
        portcullis_core::decision::Outcome::Allow,
        "the previous snapshot keeps its list"
    );

    // Another directory with the same list (a candidate that changes only
    // policies, for impact analysis) shares the index; one whose list differs does not.
    let text = std::fs::read_to_string(dir.path().join("designations/list.jsonl")).unwrap();
    let elsewhere = policy_dir(&[("base.cedar", BASELINE), ("designations/list.jsonl", &text)]);
    let sources = |d: &std::path::Path| portcullis_core::snapshot::Sources {
        policies: d.to_owned(),
        ..list_edit.sources.clone()
    };
    let other = Snapshot::rebuild(sources(elsewhere.path()), Some(&list_edit)).unwrap();
    assert!(Arc::ptr_eq(&list_edit.designations, &other.designations));
    let renamed = policy_dir(&[
        ("base.cedar", BASELINE),
        ("designations/other.jsonl", &text),
    ]);
    let other = Snapshot::rebuild(sources(renamed.path()), Some(&list_edit)).unwrap();
    assert!(!Arc::ptr_eq(&list_edit.designations, &other.designations));
}

/// `n` designations, one a line, named `Designated Person <i> Exampleton`.
fn list_of(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("{{\"id\":\"SMP-{i}\",\"names\":[\"Designated Person {i} Exampleton\"]}}\n")
        })
        .collect()
}

fn metric(state: &portcullis::server::state::AppState, prefix: &str) -> f64 {
    let text = state.metrics.render().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

const WATCH: portcullis::server::reload::ReloadRequest =
    portcullis::server::reload::ReloadRequest {
        trigger: "watch",
        force: false,
    };

#[tokio::test]
async fn a_list_that_shrinks_beyond_the_guard_is_refused_until_forced() {
    let dir = policy_dir(&[
        ("base.cedar", BASELINE),
        ("person.cedar", PERSON_POLICY),
        ("designations/list.jsonl", &list_of(20)),
    ]);
    let state = crate::support::state_with(
        crate::support::snapshot(dir.path(), &[]),
        portcullis::server::state::Limits::default(),
        Some("t"),
    );
    let list = dir.path().join("designations/list.jsonl");

    // One of twenty (5 %) is within the default guard of 10 %.
    std::fs::write(&list, list_of(19)).unwrap();
    let outcome = state.reload(WATCH).await;
    assert_eq!(outcome.result, "success", "{:?}", outcome.errors);
    assert_eq!(state.snapshot().designations.len(), 19);

    // Fifteen of nineteen left: refused, the list in force stays, status says why.
    std::fs::write(&list, list_of(15)).unwrap();
    let before = state.snapshot().revision.clone();
    let outcome = state.reload(WATCH).await;
    assert_eq!(outcome.result, "refused");
    assert_eq!(state.snapshot().designations.len(), 19);
    assert_eq!(state.snapshot().revision, before);
    let message = &state.last_failure().unwrap().errors[0].message;
    assert!(
        message.contains("would remove 4 of the 19 designations in force (21.1 %)"),
        "{message}"
    );
    assert_eq!(
        metric(&state, "portcullis_reloads_total{result=\"refused\"}"),
        1.0
    );
    // A signal or another file change does not force it.
    let outcome = state
        .reload(portcullis::server::reload::ReloadRequest {
            trigger: "sighup",
            force: false,
        })
        .await;
    assert_eq!(outcome.result, "refused");

    // The admin endpoint forces it; without `force` it is refused too.
    let router = portcullis::server::http::router(state.clone());
    let (status, body) =
        crate::support::call_raw(&router, "POST", "/v1/admin/reload", "", Some("t")).await;
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    let (status, body) = crate::support::call_raw(
        &router,
        "POST",
        "/v1/admin/reload?force=true",
        "",
        Some("t"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(state.snapshot().designations.len(), 15);
    let (_, st) = crate::support::call(&router, "GET", "/v1/status", "").await;
    assert!(st["last_reload_error"].is_null(), "{st}");
    assert_eq!(st["last_reload"]["forced"], true, "{st}");
    let (status, body) = crate::support::call_raw(
        &router,
        "POST",
        "/v1/admin/reload?force=maybe",
        "",
        Some("t"),
    )
    .await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["field"], "force", "{body}");
}

#[tokio::test]
async fn reload_requests_made_during_a_build_share_one_build() {
    let dir = policy_dir(&[("base.cedar", BASELINE)]);
    let state = crate::support::state(crate::support::snapshot(dir.path(), &[]));
    // This test runs on a single-threaded runtime: no build starts until it
    // waits, so all these requests are pending together.
    let ids: Vec<u64> = (0..1000)
        .map(|_| {
            state.request_reload(portcullis::server::reload::ReloadRequest {
                trigger: "sighup",
                force: false,
            })
        })
        .collect();
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&1000));
    let outcome = state.wait_reload(1000).await;
    assert_eq!(outcome.id, 1000);
    assert_eq!(outcome.result, "success");
    assert_eq!(outcome.trigger, "sighup");
    assert_eq!(
        state.wait_reload(1).await.id,
        1000,
        "earlier ids are answered by it"
    );
    assert_eq!(
        metric(&state, "portcullis_reloads_total{result=\"success\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &state,
            "portcullis_reload_requests_total{trigger=\"sighup\"}"
        ),
        1000.0
    );
}

#[tokio::test]
async fn an_admin_reload_longer_than_its_wait_answers_202_and_its_outcome_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    // Large enough that a build takes far longer than the wait below.
    portcullis::synth::write_dir(dir.path(), 200, 20_000).unwrap();
    let limits = portcullis::server::state::Limits {
        request_timeout: Duration::from_millis(10),
        ..portcullis::server::state::Limits::default()
    };
    let state =
        crate::support::state_with(crate::support::snapshot(dir.path(), &[]), limits, Some("t"));
    std::fs::write(dir.path().join("extra.cedar"), KP_POLICY).unwrap();
    let router = portcullis::server::http::router(state.clone());
    let (status, body) =
        crate::support::call_raw(&router, "POST", "/v1/admin/reload", "", Some("t")).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).unwrap();
    let id = body["reload_id"].as_u64().unwrap();
    let outcome = state.wait_reload(id).await;
    assert_eq!(outcome.result, "success");
    assert_eq!(outcome.trigger, "admin");
    let (_, st) = crate::support::call(&router, "GET", "/v1/status", "").await;
    assert_eq!(st["last_reload"]["id"], id);
    assert_eq!(st["last_reload"]["result"], "success");
    assert_eq!(st["policies"], 201);
}

/// The hostile test's case: a designations file rewritten in place, in chunks
/// with pauses longer than the watch debounce. No partial list may serve.
#[test]
fn a_list_rewritten_in_place_never_serves_half_written() {
    let full = list_of(1000);
    let dir = policy_dir(&[
        ("base.cedar", BASELINE),
        ("person.cedar", PERSON_POLICY),
        ("designations/lists.jsonl", &full),
    ]);
    let list = dir.path().join("designations/lists.jsonl");
    let server = start_watching(dir.path(), &default_geo(), "100ms", &[]);
    let base = server.base.clone();
    let first = revision(&base);
    let stop = Arc::new(AtomicBool::new(false));
    let allowed = Arc::new(Mutex::new(Vec::new()));
    let prober = {
        let (base, stop, allowed) = (base.clone(), stop.clone(), allowed.clone());
        std::thread::spawn(move || {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                // The last designations are the ones a partial file lacks.
                for i in [999, 990, 900] {
                    let d = decision(&base, &person(&format!("Designated Person {i} Exampleton")));
                    sent += 1;
                    if d["decision"] != "deny" {
                        allowed.lock().unwrap().push(d);
                    }
                }
            }
            sent
        })
    };
    let bytes = full.as_bytes();
    for _ in 0..3 {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&list)
            .unwrap();
        for chunk in bytes.chunks(bytes.len() / 4 + 1) {
            f.write_all(chunk).unwrap();
            f.flush().unwrap();
            // Longer than the debounce: a reload runs on each partial state.
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    // The rewritten file is the original: that revision comes back.
    eventually("the full list is in force again", || {
        (revision(&base) == first).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    let sent = prober.join().unwrap();
    let allowed = allowed.lock().unwrap();
    assert!(sent > 0);
    assert!(
        allowed.is_empty(),
        "{} of {sent} answers allowed a designated person: {}",
        allowed.len(),
        allowed[0]
    );
    let (_, st) = get(&base, "/v1/status");
    assert_eq!(st["designations"], 1000, "{st}");
}

/// A database written in place (not renamed) while it is served: the process
/// stays up (a memory map would fault), the valid content is an ordinary
/// reload, garbage is refused and the last good database keeps serving.
#[test]
fn a_geo_database_overwritten_in_place_is_reloaded_or_refused_never_fatal() {
    let dir = policy_dir(&[("base.cedar", BASELINE)]);
    let geo_dir = tempfile::tempdir().unwrap();
    let geo = geo_dir.path().join("country.mmdb");
    std::fs::copy(root().join("geo-data/geo-whois-asn-country.mmdb"), &geo).unwrap();
    let mut server = start_watching(dir.path(), &geo, "100ms", &[]);
    let base = server.base.clone();
    let first = revision(&base);

    // Lookups all along, so that the database in use is read while it is written.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (base, stop) = (base.clone(), stop.clone());
        std::thread::spawn(move || {
            let body = json!({"action": "open_account", "customer": {"id": "c", "name": "N"},
                "source_ips": ["67.43.156.1", "175.45.176.1", "2a02:cf40::1", "81.2.69.142"]});
            let (mut sent, mut failed) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let (status, d) = post(&base, "/v1/decide", &body, None);
                sent += 1;
                if status != 200 || d["errors"] != json!([]) {
                    failed.push(format!("{status}: {d}"));
                }
            }
            (sent, failed)
        })
    };
    let overwrite = |bytes: &[u8]| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&geo)
            .unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
    };

    overwrite(&std::fs::read(maxmind("test-data/GeoIP2-Country-Test.mmdb")).unwrap());
    let st = eventually("the overwritten database is in force", || {
        let st = get(&base, "/v1/status").1;
        (st["geo_databases"][0]["database_type"] == "GeoIP2-Country"
            && st["last_reload_error"].is_null())
        .then_some(st)
    });
    assert_ne!(st["policy_revision"], first.as_str());
    let lookup = json!({"action": "open_account", "customer": {"id": "c", "name": "N"}, "source_ips": ["67.43.156.1"]});
    assert_eq!(
        decision(&base, &lookup)["facts"]["ip_countries"],
        json!(["BT"])
    );

    overwrite(b"not an mmdb, written over the served file");
    let st = eventually("the garbage is refused", || {
        let st = get(&base, "/v1/status").1;
        (!st["last_reload_error"].is_null()).then_some(st)
    });
    assert_eq!(st["geo_databases"][0]["database_type"], "GeoIP2-Country");
    assert_eq!(
        decision(&base, &lookup)["facts"]["ip_countries"],
        json!(["BT"])
    );

    stop.store(true, Ordering::Relaxed);
    let (sent, failed) = traffic.join().unwrap();
    assert!(sent > 0);
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
    assert_eq!(get(&base, "/readyz").0, 200);
}
