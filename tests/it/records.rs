//! Decision records: one per decision, pseudonymised, hash-chained, verified,
//! queried, durable through SIGKILL, and fail-closed when they cannot be written.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use portcullis::server::metrics::Metrics;
use portcullis::server::state::{AppState, Limits};
use portcullis_audit::chain::{self, FileName, GENESIS};
use portcullis_audit::pseudo::FieldKind;
use portcullis_audit::verify::{ProblemKind, verify_dir};
use portcullis_audit::{FieldMode, Recorder, RecordsConfig, SyncMode};
use serde_json::{Value, json};

use crate::binary::{get, metrics_text, post, run, signal, start, wait_exit};
use crate::support::{call, decide, default_geo, root, shipped_policies, snapshot};

const DEADLINE: Duration = Duration::from_secs(30);

/// A request full of identity data that must never be stored in clear.
fn person(n: usize) -> Value {
    json!({
        "request_id": format!("req-{n}"),
        "action": "open_account",
        "customer": {
            "id": format!("cust-zebulon-{}", n % 3),
            "kind": "individual",
            "name": "Zebulon Quixotic",
            "aliases": ["Zeb Quixo"],
            "date_of_birth": "1971-02-03",
            "nationalities": ["FR"],
            "address": {"country": "FR", "city": "Lyonnaisville", "line": "12 Rue Imaginaire", "postal_code": "69999"},
            "email": "zebulon.q@mailbox.example",
            "phone": "+33 1 23 45 67 89",
            "identifiers": [{"kind": "passport", "value": "ZQ9876543", "country": "FR"}],
            "beneficial_owners": [{"name": "Wilhelmina Ownerova", "aliases": ["Willa Ownerova"], "nationalities": ["DE"]}]
        },
        "source_ips": ["8.8.8.8"]
    })
}

/// A designated person (shipped example): denied, screening match recorded by id only.
fn designated() -> Value {
    json!({"action": "open_account", "customer": {"id": "cust-boris", "name": "Борис Фиктив",
           "identifiers": [{"kind": "passport", "value": "EX0000001"}]}})
}

const CLEAR_TEXT: [&str; 12] = [
    "zebulon",
    "quixo",
    "1971-02-03",
    "lyonnaisville",
    "imaginaire",
    "69999",
    "mailbox.example",
    "45 67 89",
    "zq9876543",
    "wilhelmina",
    "ownerova",
    "EX0000001",
];

struct Recording {
    router: Router,
    state: Arc<AppState>,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Recording {
    fn recorder(&self) -> &Recorder {
        self.state.recorder.as_ref().unwrap()
    }

    async fn close(&self) {
        self.recorder().close(Duration::from_secs(10)).await;
    }
}

/// Starts a recorder on a chain a recorder of this test has just closed.
/// Its lock was released before the close was acknowledged, but a child
/// process another test spawns at that moment holds a copy of the lock's
/// descriptor until it execs: a start that finds the chain locked is tried
/// again for a few seconds.
fn start_recorder(c: RecordsConfig, observer: Arc<dyn portcullis_audit::Observer>) -> Recorder {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Recorder::start(c.clone(), observer.clone()) {
            Err(portcullis_audit::RecordsError::Writer(
                portcullis_audit::WriterError::Locked { .. },
            )) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
}

fn config(dir: &Path) -> RecordsConfig {
    let mut c = RecordsConfig::new(dir);
    c.writer.retain_days = None;
    // Files stay plain, for the tests that edit them; compression has its own.
    c.writer.compress = false;
    c
}

fn recording(configure: impl FnOnce(&mut RecordsConfig)) -> Recording {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    let mut c = config(&dir);
    configure(&mut c);
    let metrics = Metrics::new().unwrap();
    let recorder = start_recorder(c, std::sync::Arc::new(metrics.records.clone()));
    let snap = snapshot(&shipped_policies(), &[default_geo()]);
    let state =
        Arc::new(AppState::new(snap, metrics, Limits::default(), None).with_recorder(recorder));
    Recording {
        router: portcullis::server::http::router(state.clone()),
        state,
        dir,
        _tmp: tmp,
    }
}

/// Every line of every record file, in order.
fn records(dir: &Path) -> Vec<Value> {
    chain::list(dir)
        .unwrap()
        .iter()
        .flat_map(|f| {
            // Complete lines only: a torn tail is not a record.
            String::from_utf8(chain::read_file(&dir.join(&f.name)).unwrap())
                .unwrap()
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn decisions(dir: &Path) -> Vec<Value> {
    records(dir)
        .into_iter()
        .filter(|r| r["kind"] == "decision")
        .collect()
}

fn all_text(dir: &Path) -> String {
    chain::list(dir)
        .unwrap()
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(&f.name)).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_single_or_batch_has_exactly_one_record_with_its_id() {
    for sync in [SyncMode::Interval, SyncMode::Always] {
        let r = recording(|c| c.writer.sync = sync);
        let mut answered = Vec::new();
        for n in 0..20 {
            let (status, d) = decide(&r.router, &person(n)).await;
            assert_eq!(status, StatusCode::OK, "{d}");
            answered.push(d["decision_id"].as_str().unwrap().to_owned());
        }
        let batch =
            json!({"requests": (20..45).map(person).chain([designated()]).collect::<Vec<_>>()});
        let (status, b) = call(&r.router, "POST", "/v1/decide/batch", batch.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{b}");
        for d in b["decisions"].as_array().unwrap() {
            answered.push(d["decision_id"].as_str().unwrap().to_owned());
        }
        r.close().await;

        let recorded: Vec<String> = decisions(&r.dir)
            .iter()
            .map(|d| d["decision_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(recorded.len(), 46, "{sync:?}");
        assert_eq!(recorded, answered, "{sync:?}: same ids, same order");
        assert!(verify_dir(&r.dir).unwrap().is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_holds_the_decision_facts_and_ips_with_identities_hashed() {
    let r = recording(|_| {});
    let (_, d) = decide(&r.router, &person(1)).await;
    let (_, boris) = decide(&r.router, &designated()).await;
    assert_eq!(boris["decision"], "deny");
    r.close().await;

    let text = all_text(&r.dir).to_lowercase();
    for clear in CLEAR_TEXT {
        assert!(
            !text.contains(&clear.to_lowercase()),
            "`{clear}` is in the records in clear"
        );
    }
    assert!(
        !text.contains("фиктив") && !text.contains("boris"),
        "{text}"
    );

    let recs = decisions(&r.dir);
    let rec = &recs[0];
    let p = r.recorder().pseudonymiser();
    assert_eq!(rec["decision_id"], d["decision_id"]);
    assert_eq!(rec["request_id"], "req-1");
    assert_eq!(rec["action"], "open_account");
    assert_eq!(rec["decision"], d["decision"]);
    assert_eq!(rec["policy_revision"], d["policy_revision"]);
    assert_eq!(rec["reasons"], d["reasons"]);
    assert_eq!(rec["obligations"], d["obligations"]);
    assert_eq!(rec["source_ips"], json!(["8.8.8.8"]));
    assert_eq!(rec["facts"]["ip_countries"], json!(["US"]));
    assert_eq!(rec["facts"]["ips"][0]["anonymizer"]["vpn"], false);
    assert_eq!(rec["facts"]["owner_countries"], json!(["DE"]));
    let c = &rec["customer"];
    assert_eq!(
        c["id"],
        p.hash(FieldKind::CustomerId, "cust-zebulon-1").unwrap()
    );
    assert_eq!(
        c["name"],
        p.hash(FieldKind::Name, "QUIXOTIC, Zebulon").unwrap()
    );
    assert_eq!(
        c["email"],
        p.hash(FieldKind::Email, "Zebulon.Q@mailbox.example")
            .unwrap()
    );
    assert_eq!(c["identifiers"][0]["kind"], "passport");
    assert_eq!(c["identifiers"][0]["country"], "FR");
    assert_eq!(c["address"]["country"], "FR");
    assert_eq!(c["nationalities"], json!(["FR"]));
    assert_eq!(rec["pseudonymisation"]["identity"], "hash");
    assert_eq!(
        rec["pseudonymisation"]["key_id"].as_str().unwrap().len(),
        16
    );

    // The designated person: the match is kept by designation id, score and
    // measure; the matched text is not.
    let m = &recs[1]["facts"]["screening"]["matches"][0];
    assert_eq!(m["designation"], "SMP-EXAMPLE-0001");
    assert_eq!(m["score"], 100);
    assert_eq!(m["measure"], "SM-EXAMPLE-002");
    assert!(
        m.get("screened").is_none() && m.get("name").is_none(),
        "{m}"
    );
    assert_eq!(
        recs[1]["facts"]["screening_matches"],
        json!(["SMP-EXAMPLE-0001"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_groups_can_be_kept_in_clear_or_dropped() {
    let r = recording(|c| {
        c.modes.identity = FieldMode::Clear;
        c.modes.contact = FieldMode::Drop;
        c.modes.identifiers = FieldMode::Drop;
    });
    decide(&r.router, &person(1)).await;
    r.close().await;
    let rec = &decisions(&r.dir)[0];
    let c = &rec["customer"];
    assert_eq!(c["id"], "cust-zebulon-1");
    assert_eq!(c["name"], "Zebulon Quixotic");
    assert_eq!(c["beneficial_owners"][0]["name"], "Wilhelmina Ownerova");
    assert!(c.get("email").is_none() && c.get("phone").is_none(), "{c}");
    assert!(c["address"].get("city").is_none() && c["address"].get("line").is_none());
    assert_eq!(
        c["identifiers"][0],
        json!({"kind": "passport", "country": "FR"})
    );
    assert!(!all_text(&r.dir).contains("ZQ9876543"));
    // Nothing hashed, so no key was needed or created.
    assert!(rec["pseudonymisation"].get("key_id").is_none());
    assert!(!r.dir.with_file_name("records.key").exists());
}

/// Writes records over several files (tiny rotation size; `always`, so each
/// request is its own group) and returns the dir.
async fn several_files() -> Recording {
    let r = recording(|c| {
        c.writer.max_file_bytes = 6_000;
        c.writer.sync = SyncMode::Always;
    });
    for n in 0..24 {
        let (status, _) = decide(&r.router, &person(n)).await;
        assert_eq!(status, StatusCode::OK);
    }
    r.close().await;
    r
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for f in chain::list(from).unwrap() {
        std::fs::copy(from.join(&f.name), to.path().join(&f.name)).unwrap();
    }
    to
}

fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

/// The (file, line, kind) of every problem verify finds after `tamper`.
fn tampered(
    base: &Path,
    tamper: impl FnOnce(&Path, &[FileName]),
) -> Vec<(String, usize, ProblemKind)> {
    let copy = copy_dir(base);
    let files = chain::list(copy.path()).unwrap();
    tamper(copy.path(), &files);
    verify_dir(copy.path())
        .unwrap()
        .problems
        .into_iter()
        .map(|p| (p.file, p.line, p.kind))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_untouched_files_and_names_every_kind_of_tampering() {
    let r = several_files().await;
    let files = chain::list(&r.dir).unwrap();
    assert!(
        files.len() >= 3,
        "rotation by size gives several files: {files:?}"
    );
    let report = verify_dir(&r.dir).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.records, 24);
    assert_eq!(report.files, files.len());
    // The chain crosses files: each file starts from the last hash of the one before.
    let first_of_second =
        chain::open(file_lines(&r.dir.join(&files[1].name))[0].as_bytes()).unwrap();
    let last_of_first = file_lines(&r.dir.join(&files[0].name))
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        first_of_second.prev,
        chain::open(last_of_first.as_bytes()).unwrap().hash
    );
    let very_first = chain::open(file_lines(&r.dir.join(&files[0].name))[0].as_bytes()).unwrap();
    assert_eq!(very_first.prev, GENESIS);

    let broken =
        |file: &FileName, line: usize| vec![(file.name.clone(), line, ProblemKind::Broken)];
    let middle = &files[1];
    let n = file_lines(&r.dir.join(&middle.name)).len();
    assert!(n >= 3, "{n} lines in the middle file");

    // A flipped byte: the edited line is named.
    let p = tampered(&r.dir, |d, _| {
        let path = d.join(&middle.name);
        let mut bytes = std::fs::read(&path).unwrap();
        let second_line = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
        let at = second_line + 200;
        bytes[at] ^= 0x04;
        std::fs::write(&path, bytes).unwrap();
    });
    assert_eq!(p, broken(middle, 2));

    // A deleted line: the chain breaks at the line that followed it.
    let p = tampered(&r.dir, |d, _| {
        let path = d.join(&middle.name);
        let mut lines = file_lines(&path);
        lines.remove(1);
        write_lines(&path, &lines);
    });
    assert_eq!(p, broken(middle, 2));

    // Two swapped lines.
    let p = tampered(&r.dir, |d, _| {
        let path = d.join(&middle.name);
        let mut lines = file_lines(&path);
        lines.swap(0, 1);
        write_lines(&path, &lines);
    });
    assert_eq!(p[0], (middle.name.clone(), 1, ProblemKind::Broken));
    assert!(p.len() >= 2, "{p:?}");

    // A file truncated at a line boundary breaks the link to the next file.
    let p = tampered(&r.dir, |d, _| {
        let path = d.join(&middle.name);
        let mut lines = file_lines(&path);
        lines.pop();
        write_lines(&path, &lines);
    });
    assert_eq!(p, broken(&files[2], 1));

    // A file truncated mid-line that is not the last one.
    let p = tampered(&r.dir, |d, _| {
        let path = d.join(&middle.name);
        cut_tail(&path, 30);
    });
    assert_eq!(p[0], (middle.name.clone(), n, ProblemKind::Broken));

    // The last file truncated mid-line: a torn final record, told apart.
    let last = files.last().unwrap();
    let p = tampered(&r.dir, |d, _| {
        let path = d.join(&last.name);
        cut_tail(&path, 30);
    });
    let torn_line = file_lines(&r.dir.join(&last.name)).len();
    assert_eq!(
        p,
        vec![(last.name.clone(), torn_line, ProblemKind::TornFinal)]
    );

    // A missing file in the middle, and a missing first file.
    let p = tampered(&r.dir, |d, _| {
        std::fs::remove_file(d.join(&middle.name)).unwrap()
    });
    assert!(
        p.contains(&(files[2].name.clone(), 0, ProblemKind::Broken)),
        "{p:?}"
    );
    assert!(
        p.contains(&(files[2].name.clone(), 1, ProblemKind::Broken)),
        "{p:?}"
    );
    let p = tampered(&r.dir, |d, _| {
        std::fs::remove_file(d.join(&files[0].name)).unwrap()
    });
    assert_eq!(p, broken(&files[1], 1));

    // The command: exit 0, 5 (broken, naming file and line) and 6 (torn).
    let (code, out, _) = run(&["records", "verify", r.dir.to_str().unwrap()], root());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "ok: {} file(s), 24 record(s), chain intact",
            files.len()
        )),
        "{out}"
    );
    let copy = copy_dir(&r.dir);
    let path = copy.path().join(&middle.name);
    let mut lines = file_lines(&path);
    lines.swap(1, 2);
    write_lines(&path, &lines);
    let (code, out, _) = run(
        &["records", "verify", copy.path().to_str().unwrap()],
        root(),
    );
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains(&format!("error: {}:2: chain broken", middle.name)),
        "{out}"
    );
    let path = copy.path().join(&last.name);
    write_lines(&path, &file_lines(&r.dir.join(&last.name)));
    write_lines(
        &path.with_file_name(&middle.name),
        &file_lines(&r.dir.join(&middle.name)),
    );
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let (code, out, _) = run(
        &["records", "verify", copy.path().to_str().unwrap()],
        root(),
    );
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("torn final record"), "{out}");

    // Several directories (a fleet's replicas): each is reported, and the
    // worst result is the exit code, in either order.
    let dirs = [r.dir.to_str().unwrap(), copy.path().to_str().unwrap()];
    let (code, out, _) = run(&["records", "verify", dirs[0], dirs[1]], root());
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains("chain intact") && out.contains("torn final record"),
        "{out}"
    );
    let (code, _, _) = run(&["records", "verify", dirs[1], dirs[0]], root());
    assert_eq!(code, 6);
    let (_, one, _) = run(&["records", "query", dirs[0]], root());
    let (code, out, _) = run(&["records", "query", dirs[0], dirs[0]], root());
    assert_eq!(code, 0);
    assert!(one.lines().count() > 0);
    assert_eq!(
        out.lines().count(),
        2 * one.lines().count(),
        "each directory's records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_sealed_by_a_recovery_record_at_the_next_start() {
    let r = several_files().await;
    let last = chain::list(&r.dir).unwrap().pop().unwrap();
    let path = r.dir.join(&last.name);
    let mut text = std::fs::read(&path).unwrap();
    let valid = text.len();
    text.extend_from_slice(br#"{"prev":"00ab","kind":"deci"#);
    std::fs::write(&path, &text).unwrap();
    assert!(verify_dir(&r.dir).unwrap().only_torn());

    let metrics = Metrics::new().unwrap();
    let again = start_recorder(config(&r.dir), std::sync::Arc::new(metrics.records.clone()));
    again.close(Duration::from_secs(10)).await;
    let report = verify_dir(&r.dir).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(
        report.notes.iter().any(|n| n.contains("discarded")),
        "{:?}",
        report.notes
    );
    let recovery = records(&r.dir)
        .into_iter()
        .find(|r| r["kind"] == "recovery")
        .unwrap();
    assert_eq!(
        recovery["discarded"],
        json!([{"file": last.name, "valid_bytes": valid}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_finds_a_customers_records_by_id_time_decision_and_measure() {
    let r = recording(|_| {});
    for n in 0..9 {
        decide(&r.router, &person(n)).await;
    }
    decide(&r.router, &designated()).await;
    r.close().await;
    let key = r.dir.with_file_name("records.key");
    assert!(key.exists());
    let dir = r.dir.to_str().unwrap();
    let lines = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["records", "query", dir];
        all.extend_from_slice(args);
        let (code, out, err) = run(&all, root());
        assert_eq!(code, 0, "{err}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let found = lines(&[
        "--customer-id",
        "cust-zebulon-1",
        "--key-file",
        key.to_str().unwrap(),
    ]);
    let ids: Vec<&str> = found
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["req-1", "req-4", "req-7"]);
    // The default key file beside the directory is used when none is given.
    assert_eq!(lines(&["--customer-id", "cust-zebulon-1"]).len(), 3);
    assert!(lines(&["--customer-id", "nobody"]).is_empty());
    let denied = lines(&["--decision", "deny"]);
    assert_eq!(denied.len(), 1);
    assert_eq!(lines(&["--measure", "SM-EXAMPLE-002"]).len(), 1);
    assert_eq!(
        lines(&[
            "--from",
            "2000-01-01T00:00:00Z",
            "--to",
            "2999-01-01T00:00:00Z"
        ])
        .len(),
        10
    );
    assert!(lines(&["--from", "2999-01-01T00:00:00Z"]).is_empty());
    assert!(lines(&["--to", "2000-01-01T00:00:00Z"]).is_empty());
}

fn old_file(dir: &Path, name: &FileName, prev: chain::Hash, time: &str) -> chain::Hash {
    let mut hash = prev;
    let mut text = Vec::new();
    for n in 0..2 {
        let rec = json!({"kind": "decision", "decision_id": format!("old-{}-{n}", name.seq), "time": time});
        let (line, h) = chain::seal(&hash, rec.to_string().as_bytes()).unwrap();
        text.extend(line);
        hash = h;
    }
    std::fs::write(dir.join(&name.name), text).unwrap();
    hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_whole_expired_files_and_verify_accounts_for_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    std::fs::create_dir(&dir).unwrap();
    let f1 = FileName::new("20200101T000000Z", 1);
    let f2 = FileName::new("20200102T000000Z", 2);
    let f3 = FileName::new("20200103T000000Z", 3);
    let h1 = old_file(&dir, &f1, GENESIS, "2020-01-01T10:00:00.000Z");
    let h2 = old_file(&dir, &f2, h1, "2020-01-02T10:00:00.000Z");
    // Newest record of the third file is recent: it is kept, and so is everything after.
    old_file(
        &dir,
        &f3,
        h2,
        &chain::record_time(std::time::SystemTime::now()),
    );
    assert!(verify_dir(&dir).unwrap().is_ok());

    let metrics = Metrics::new().unwrap();
    let mut c = config(&dir);
    c.writer.retain_days = Some(30);
    let recorder = start_recorder(c, std::sync::Arc::new(metrics.records.clone()));
    recorder.close(Duration::from_secs(10)).await;
    let names: Vec<String> = chain::list(&dir)
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names[0], f3.name, "{names:?}");
    let report = verify_dir(&dir).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(
        report.notes.iter().any(|n| n.contains("retention")),
        "{:?}",
        report.notes
    );
    let retention = records(&dir)
        .into_iter()
        .find(|r| r["kind"] == "retention")
        .unwrap();
    assert_eq!(retention["deleted"], json!([f1.name, f2.name]));
    assert_eq!(retention["anchor"], chain::to_hex(&h2));
    assert_eq!(retention["retain_days"], 30);
    assert_eq!(retention["deleted_newest"], "2020-01-02T10:00:00.000Z");
    assert!(
        !report
            .notes
            .iter()
            .any(|n| n.contains("cannot be verified")),
        "{:?}",
        report.notes
    );
    let (code, out, _) = run(&["records", "verify", dir.to_str().unwrap()], root());
    assert_eq!(code, 0, "{out}");

    // The same deletion by hand, with no retention record, is reported.
    let tmp = tempfile::tempdir().unwrap();
    let h1 = old_file(tmp.path(), &f1, GENESIS, "2020-01-01T10:00:00.000Z");
    old_file(tmp.path(), &f2, h1, "2020-01-02T10:00:00.000Z");
    std::fs::remove_file(tmp.path().join(&f1.name)).unwrap();
    let report = verify_dir(tmp.path()).unwrap();
    assert_eq!(report.problems.len(), 1);
    assert!(
        report.problems[0]
            .message
            .contains("earlier record files are missing")
    );
}

/// Puts the records directory back (a file stood in its place) and waits until
/// the service is ready again.
async fn restore_records_dir(r: &Recording, aside: &Path) {
    std::fs::remove_file(&r.dir).unwrap();
    std::fs::rename(aside, &r.dir).unwrap();
    poll("records writable again", async || {
        let (status, _) = call(&r.router, "GET", "/readyz", "").await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
}

async fn poll<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_fail_closed_while_records_cannot_be_written_and_resume_after() {
    // Every group goes to a new file, so breaking the directory breaks the next write.
    let r = recording(|c| {
        c.writer.sync = SyncMode::Always;
        c.writer.max_file_bytes = 1;
    });
    let (status, _) = decide(&r.router, &person(1)).await;
    assert_eq!(status, StatusCode::OK);
    let aside = r.dir.with_file_name("aside");
    std::fs::rename(&r.dir, &aside).unwrap();
    std::fs::write(&r.dir, "not a directory").unwrap();

    let (status, body) = decide(&r.router, &person(2)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "records_unavailable");
    let (status, body) = call(&r.router, "GET", "/readyz", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let batch = json!({"requests": [person(3)]}).to_string();
    let (status, body) = call(&r.router, "POST", "/v1/decide/batch", batch).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            &json!("records_unavailable")
        )
    );
    let (_, status_body) = call(&r.router, "GET", "/v1/status", "").await;
    assert_eq!(status_body["records"]["healthy"], false);

    restore_records_dir(&r, &aside).await;
    let (status, d) = decide(&r.router, &person(4)).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    r.close().await;

    let recorded: Vec<Value> = decisions(&r.dir);
    let req_ids: Vec<&str> = recorded
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        req_ids,
        ["req-1", "req-4"],
        "refused decisions leave no record"
    );
    assert!(verify_dir(&r.dir).unwrap().is_ok());
    let (_, metrics) = crate::support::call_raw(&r.router, "GET", "/metrics", "", None).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("portcullis_records_written_total 2"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("portcullis_records_write_errors_total 0"),
        "{metrics}"
    );
    for name in [
        "portcullis_records_queue_depth",
        "portcullis_records_backpressure_wait_seconds_count",
        "portcullis_records_healthy 1",
    ] {
        assert!(metrics.contains(name), "no `{name}` in {metrics}");
    }
}

#[test]
fn a_named_key_file_that_cannot_be_read_stops_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    let records = tmp.path().join("records");
    let missing = tmp.path().join("missing.key");
    let (code, _, stderr) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--records",
            records.to_str().unwrap(),
            "--records-key-file",
            missing.to_str().unwrap(),
        ],
        root(),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot read the records key file"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
}

#[test]
fn serve_creates_a_private_key_beside_the_records_directory_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (policies, geo) = (shipped_policies(), default_geo());
    let args = [
        "--records",
        "records",
        "--policies",
        policies.to_str().unwrap(),
        "--geo",
        geo.to_str().unwrap(),
        "--no-watch",
    ];
    let mut server = start(&args, tmp.path(), &[]);
    let warning = server
        .startup_logs
        .iter()
        .find(|l| l.contains("generated a records pseudonymisation key"))
        .unwrap_or_else(|| panic!("no key warning in {:#?}", server.startup_logs));
    assert!(
        warning.contains("secret store") && warning.contains("records.key"),
        "{warning}"
    );
    let key = tmp.path().join("records.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let first = std::fs::read(&key).unwrap();
    let (status, _) = post(&server.base, "/v1/decide", &person(1), None);
    assert_eq!(status, 200);
    signal(&server.child, "TERM");
    assert!(wait_exit(&mut server.child).success());

    let mut server = start(&args, tmp.path(), &[]);
    signal(&server.child, "TERM");
    assert!(wait_exit(&mut server.child).success());
    assert_eq!(
        std::fs::read(&key).unwrap(),
        first,
        "the key is created once"
    );
    assert_eq!(decisions(&tmp.path().join("records")).len(), 1);
    assert!(verify_dir(&tmp.path().join("records")).unwrap().is_ok());
}

#[test]
fn sigkill_under_load_loses_no_answered_decision_with_sync_always() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    let args = [
        "--records",
        dir.to_str().unwrap(),
        "--records-sync",
        "always",
        "--no-watch",
    ];
    let mut server = start(&args, root(), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..4)
        .map(|t| {
            let (base, stop, answered) = (server.base.clone(), stop.clone(), answered.clone());
            std::thread::spawn(move || {
                let agent = crate::binary::agent();
                let mut n = t * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // After the kill the connection fails: that answer never came.
                    let Ok(mut res) = agent.post(format!("{base}/v1/decide")).send_json(person(n))
                    else {
                        continue;
                    };
                    if res.status().as_u16() != 200 {
                        continue;
                    }
                    if let Ok(d) = res.body_mut().read_json::<Value>() {
                        answered
                            .lock()
                            .unwrap()
                            .push(d["decision_id"].as_str().unwrap().to_owned());
                    }
                }
            })
        })
        .collect();
    let end = Instant::now() + DEADLINE;
    while answered.lock().unwrap().len() < 400 {
        assert!(Instant::now() < end, "the load did not get going");
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&server.child, "KILL");
    let _ = wait_exit(&mut server.child);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let answered: Vec<String> = answered.lock().unwrap().clone();

    // Straight after the kill: every complete record checks out; at most the
    // final record is torn (it was never acknowledged, so never answered).
    let report = verify_dir(&dir).unwrap();
    assert!(
        report.is_ok() || report.only_torn(),
        "{:?}",
        report.problems
    );
    let recorded: HashSet<String> = decisions_complete(&dir);
    let missing: Vec<&String> = answered
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered decisions have no record",
        missing.len(),
        answered.len()
    );

    // The next start seals any torn tail; then verify passes outright.
    let mut server = start(&args, root(), &[]);
    let (status, _) = post(&server.base, "/v1/decide", &person(7), None);
    assert_eq!(status, 200);
    signal(&server.child, "TERM");
    assert!(wait_exit(&mut server.child).success());
    let report = verify_dir(&dir).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(decisions_complete(&dir).len(), recorded.len() + 1);
}

/// Decision ids of every complete line (a torn final line is skipped).
fn decisions_complete(dir: &Path) -> HashSet<String> {
    chain::list(dir)
        .unwrap()
        .iter()
        .flat_map(|f| {
            let text = String::from_utf8(chain::read_file(&dir.join(&f.name)).unwrap()).unwrap();
            text.split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|r| r["kind"] == "decision")
                .map(|r| r["decision_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn readyz_reports_ready_with_records_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    let server = start(
        &["--records", dir.to_str().unwrap(), "--no-watch"],
        root(),
        &[],
    );
    let (status, body) = get(&server.base, "/readyz");
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    let (_, st) = get(&server.base, "/v1/status");
    assert_eq!(st["records"]["sync"], "interval");
    assert_eq!(st["records"]["healthy"], true);
    assert!(
        st["records"]["current_file"]
            .as_str()
            .unwrap()
            .starts_with("records-")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sync_interval_a_record_queued_before_a_failure_is_written_after_it() {
    let r = recording(|c| c.writer.max_file_bytes = 1);
    let (status, _) = decide(&r.router, &person(1)).await;
    assert_eq!(status, StatusCode::OK);
    // Once req-1 is in a file, the next group needs a new file.
    poll("req-1 written", async || {
        (decisions(&r.dir).len() == 1).then_some(())
    })
    .await;
    let aside = r.dir.with_file_name("aside");
    std::fs::rename(&r.dir, &aside).unwrap();
    std::fs::write(&r.dir, "not a directory").unwrap();
    // Accepted while the writer still looked healthy: answered, and kept for retry.
    let (status, _) = decide(&r.router, &person(2)).await;
    assert_eq!(status, StatusCode::OK);
    poll("the failure is noticed", async || {
        let (status, _) = call(&r.router, "GET", "/readyz", "").await;
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    let (status, _) = decide(&r.router, &person(3)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    restore_records_dir(&r, &aside).await;
    let (status, _) = decide(&r.router, &person(4)).await;
    assert_eq!(status, StatusCode::OK);
    r.close().await;
    let ids: Vec<String> = decisions(&r.dir)
        .iter()
        .map(|d| d["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["req-1", "req-2", "req-4"]);
    assert!(verify_dir(&r.dir).unwrap().is_ok());
}

/// Truncates the last `bytes` bytes of a file, cutting a record in half.
fn cut_tail(path: &std::path::Path, bytes: u64) {
    let len = std::fs::metadata(path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len - bytes)
        .unwrap();
}

/// A recording over a records directory the test has filled first.
fn recording_in(tmp: tempfile::TempDir, configure: impl FnOnce(&mut RecordsConfig)) -> Recording {
    let dir = tmp.path().join("records");
    let mut c = config(&dir);
    configure(&mut c);
    let metrics = Metrics::new().unwrap();
    let recorder = start_recorder(c, std::sync::Arc::new(metrics.records.clone()));
    let snap = snapshot(&shipped_policies(), &[default_geo()]);
    let state =
        Arc::new(AppState::new(snap, metrics, Limits::default(), None).with_recorder(recorder));
    Recording {
        router: portcullis::server::http::router(state.clone()),
        state,
        dir,
        _tmp: tmp,
    }
}

/// Readiness, status and decisions all say records are unavailable.
async fn assert_records_unavailable(r: &Recording, reason: &str) {
    let (status, body) = call(&r.router, "GET", "/readyz", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (_, st) = call(&r.router, "GET", "/v1/status", "").await;
    assert_eq!(st["records"]["healthy"], false, "{st}");
    assert!(
        st["records"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(reason)),
        "{st}"
    );
    for n in 0..3 {
        let (status, d) = decide(&r.router, &person(1000 + n)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{d}");
        assert_eq!(d["error"]["code"], "records_unavailable");
    }
    let (_, metrics) = crate::support::call_raw(&r.router, "GET", "/metrics", "", None).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("portcullis_records_healthy 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sequence_number_that_cannot_advance_refuses_records_without_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    std::fs::create_dir(&dir).unwrap();
    let last = FileName::new("20200101T000000Z", u64::MAX - 1);
    std::fs::write(dir.join(&last.name), "").unwrap();
    // Every group goes to a new file: the second needs sequence number u64::MAX + 1.
    let r = recording_in(tmp, |c| {
        c.writer.sync = SyncMode::Always;
        c.writer.max_file_bytes = 1;
    });
    let (status, d) = decide(&r.router, &person(1)).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let (status, d) = decide(&r.router, &person(2)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{d}");
    assert_records_unavailable(&r, "sequence number cannot advance").await;
    r.close().await;
    let recorded: Vec<Value> = decisions(&r.dir);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["request_id"], "req-1");

    // A directory whose last file already has the last sequence number is refused at start.
    let metrics = Metrics::new().unwrap();
    let err =
        Recorder::start(config(&r.dir), std::sync::Arc::new(metrics.records.clone())).unwrap_err();
    assert!(
        err.to_string().contains("sequence number cannot advance"),
        "{err}"
    );
}

/// Decisions sent from several tasks until each has been refused a few times.
async fn decide_until_refused(router: &Router, tasks: usize) -> (Vec<String>, usize) {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let router = router.clone();
        handles.push(tokio::spawn(async move {
            let (mut answered, mut refused) = (Vec::new(), 0);
            let mut n = t * 100_000;
            while refused < 5 {
                n += 1;
                let (status, d) = decide(&router, &person(n)).await;
                match status {
                    StatusCode::OK => answered.push(d["decision_id"].as_str().unwrap().to_owned()),
                    StatusCode::SERVICE_UNAVAILABLE => {
                        assert_eq!(d["error"]["code"], "records_unavailable", "{d}");
                        refused += 1;
                    }
                    other => panic!("{other}: {d}"),
                }
                tokio::task::yield_now().await;
            }
            (answered, refused)
        }));
    }
    let mut answered = Vec::new();
    let mut refused = 0;
    for h in handles {
        let (a, r) = h.await.unwrap();
        answered.extend(a);
        refused += r;
    }
    (answered, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_panic_flips_readiness_and_no_decision_is_answered_without_its_record() {
    let r = recording(|c| c.writer.sync = SyncMode::Always);
    for n in 0..5 {
        let (status, d) = decide(&r.router, &person(n)).await;
        assert_eq!(status, StatusCode::OK, "{d}");
    }
    // Decisions flow from several tasks while the writer dies under them.
    let flowing = {
        let router = r.router.clone();
        tokio::spawn(async move { decide_until_refused(&router, 4).await })
    };
    r.recorder().inject_writer_panic().await;
    let (answered, refused) = flowing.await.unwrap();
    assert!(refused >= 20);
    assert_records_unavailable(&r, "injected records writer panic").await;
    r.close().await;

    let recorded: HashSet<String> = decisions(&r.dir)
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap().to_owned())
        .collect();
    let unrecorded: Vec<&String> = answered
        .iter()
        .filter(|id| !recorded.contains(*id))
        .collect();
    assert!(
        unrecorded.is_empty(),
        "{} decision(s) answered 200 without a record: {unrecorded:?}",
        unrecorded.len()
    );
    assert!(verify_dir(&r.dir).unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sync_interval_a_writer_panic_also_refuses_every_later_decision() {
    let r = recording(|c| c.writer.sync = SyncMode::Interval);
    let (status, d) = decide(&r.router, &person(1)).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    r.recorder().inject_writer_panic().await;
    poll("readiness flips", async || {
        let (status, _) = call(&r.router, "GET", "/readyz", "").await;
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    assert_records_unavailable(&r, "injected records writer panic").await;
    r.close().await;
}

fn serve_with_key(key: &Path) -> (i32, String) {
    let records = key.with_file_name("records");
    let (code, _, stderr) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--records",
            records.to_str().unwrap(),
            "--records-key-file",
            key.to_str().unwrap(),
        ],
        root(),
    );
    assert!(!stderr.contains("listening"), "{stderr}");
    (code, stderr)
}

#[cfg(unix)]
#[test]
fn key_files_open_to_others_all_zero_or_unreadable_stop_start_up_with_one_clear_message() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("k");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, stderr) = serve_with_key(&key);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "permissions 0644 for the records key file `{}` are too open; the key file must be readable by its owner only (chmod 600)",
            key.display()
        )),
        "{stderr}"
    );

    std::fs::write(&key, "00".repeat(32)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, stderr) = serve_with_key(&key);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("zero bytes only"), "{stderr}");

    // A directory where the key file should be: the system's reason, once.
    let (code, stderr) = serve_with_key(tmp.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot read the records key file"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
}

/// Appends a sealed record to a file; returns its hash.
fn append_record(path: &Path, prev: chain::Hash, record: &Value) -> chain::Hash {
    let (line, hash) = chain::seal(&prev, record.to_string().as_bytes()).unwrap();
    let mut text = std::fs::read(path).unwrap();
    text.extend(line);
    std::fs::write(path, text).unwrap();
    hash
}

/// Three files (2020, yesterday, now); the test deletes some of them and
/// forges a retention record accounting for the deletion.
struct Forgery {
    tmp: tempfile::TempDir,
    names: [FileName; 3],
    hashes: [chain::Hash; 3],
}

impl Forgery {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let now = std::time::SystemTime::now();
        let yesterday = now - Duration::from_secs(86_400);
        let names = [
            FileName::new("20200101T000000Z", 1),
            FileName::new(&chain::stamp(yesterday), 2),
            FileName::new(&chain::stamp(now), 3),
        ];
        let h1 = old_file(tmp.path(), &names[0], GENESIS, "2020-01-01T10:00:00.000Z");
        let h2 = old_file(tmp.path(), &names[1], h1, &chain::record_time(yesterday));
        let h3 = old_file(tmp.path(), &names[2], h2, &chain::record_time(now));
        Self {
            tmp,
            names,
            hashes: [h1, h2, h3],
        }
    }

    /// Deletes the first `n` files and appends `retention` (with the anchor the
    /// kept chain starts from) to the last file; returns the verify report.
    fn forge(&self, n: usize, mut retention: Value) -> portcullis_audit::verify::Report {
        for f in &self.names[..n] {
            std::fs::remove_file(self.tmp.path().join(&f.name)).unwrap();
        }
        retention["kind"] = json!("retention");
        retention["anchor"] = json!(chain::to_hex(&self.hashes[n - 1]));
        append_record(
            &self.tmp.path().join(&self.names[2].name),
            self.hashes[2],
            &retention,
        );
        verify_dir(self.tmp.path()).unwrap()
    }
}

fn broken_with(report: &portcullis_audit::verify::Report, needle: &str) {
    assert!(!report.is_ok(), "accepted; notes {:?}", report.notes);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Broken && p.message.contains(needle)),
        "no problem with `{needle}` in {:?}",
        report.problems
    );
}

#[test]
fn verify_refuses_a_forged_retention_record_that_deleted_recent_files() {
    let now = std::time::SystemTime::now();
    let yesterday = chain::record_time(now - Duration::from_secs(86_400));
    // After every record a `Forgery` writes.
    let at_now = || chain::record_time(std::time::SystemTime::now());
    let names = |f: &Forgery, n: usize| -> Vec<String> {
        f.names[..n].iter().map(|f| f.name.clone()).collect()
    };

    // Honest about what it deleted: yesterday's records, within 1095 days.
    let f = Forgery::new();
    let report = f.forge(
        2,
        json!({"time": at_now(), "retain_days": 1095,
        "deleted": names(&f, 2), "deleted_newest": yesterday}),
    );
    broken_with(&report, "within its retention period");
    let (code, out, _) = run(
        &["records", "verify", f.tmp.path().to_str().unwrap()],
        root(),
    );
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("within its retention period"), "{out}");

    // A period of 0 days, which no writer writes (0 keeps everything).
    let f = Forgery::new();
    let report = f.forge(
        2,
        json!({"time": at_now(), "retain_days": 0,
        "deleted": names(&f, 2), "deleted_newest": yesterday}),
    );
    broken_with(&report, "`retain_days` 0");

    // Lying about the newest deleted record: the file names say otherwise.
    let f = Forgery::new();
    let report = f.forge(
        2,
        json!({"time": at_now(), "retain_days": 1095,
        "deleted": names(&f, 2), "deleted_newest": "2020-01-01T10:00:00.000Z"}),
    );
    broken_with(
        &report,
        "started after the newest record it says it deleted",
    );

    // Naming only the old file: the recent one right before the kept chain is unaccounted for.
    let f = Forgery::new();
    let report = f.forge(
        2,
        json!({"time": at_now(), "retain_days": 30,
        "deleted": names(&f, 1), "deleted_newest": "2020-01-01T10:00:00.000Z"}),
    );
    broken_with(
        &report,
        "does not name the record file right before this one",
    );

    // Dated in the future, so that yesterday is past its retention period.
    let f = Forgery::new();
    let future = chain::record_time(now + Duration::from_secs(5 * 365 * 86_400));
    let report = f.forge(
        2,
        json!({"time": future, "retain_days": 1095,
        "deleted": names(&f, 2), "deleted_newest": yesterday}),
    );
    broken_with(&report, "in the future");

    // Dated before the record preceding it.
    let f = Forgery::new();
    let report = f.forge(
        1,
        json!({"time": "2021-01-01T00:00:00.000Z", "retain_days": 30,
        "deleted": names(&f, 1), "deleted_newest": "2020-01-01T10:00:00.000Z"}),
    );
    broken_with(&report, "earlier than the record before it");

    // The same deletion stated truthfully is accepted.
    let f = Forgery::new();
    let report = f.forge(
        1,
        json!({"time": at_now(), "retain_days": 30,
        "deleted": names(&f, 1), "deleted_newest": "2020-01-01T10:00:00.000Z"}),
    );
    assert!(report.is_ok(), "{:?}", report.problems);

    // A retention record without `deleted_newest` (an older writer) is a note, not silently fine.
    let f = Forgery::new();
    let report = f.forge(
        1,
        json!({"time": at_now(), "retain_days": 30,
        "deleted": names(&f, 1)}),
    );
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("cannot be verified")),
        "{:?}",
        report.notes
    );
}

/// Replicas that share one records directory each write, lock and verify their
/// own chain; files from before replica ids stay a chain of their own.
#[test]
fn replicas_sharing_a_directory_write_and_verify_their_own_chains() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    std::fs::create_dir(&dir).unwrap();
    old_file(
        &dir,
        &FileName::new("20200101T000000Z", 1),
        GENESIS,
        "2020-01-01T00:00:00.000Z",
    );
    let (policies, geo) = (shipped_policies(), default_geo());
    let args = |replica: &'static str| -> Vec<String> {
        let mut a: Vec<String> = [
            "--records",
            "records",
            "--records-retain-days",
            "0",
            "--policies",
            policies.to_str().unwrap(),
            "--geo",
            geo.to_str().unwrap(),
            "--no-watch",
        ]
        .map(str::to_owned)
        .to_vec();
        if !replica.is_empty() {
            a.extend(["--replica-id".to_owned(), replica.to_owned()]);
        }
        a
    };
    fn as_strs(a: &[String]) -> Vec<&str> {
        a.iter().map(String::as_str).collect()
    }
    let (r1, r2) = (args("r1"), args("r2"));
    let mut one = start(&as_strs(&r1), tmp.path(), &[]);
    let mut two = start(&as_strs(&r2), tmp.path(), &[]);
    for n in 0..3 {
        assert_eq!(post(&one.base, "/v1/decide", &person(n), None).0, 200);
    }
    for n in 3..5 {
        assert_eq!(post(&two.base, "/v1/decide", &person(n), None).0, 200);
    }
    let (_, status) = get(&two.base, "/v1/status");
    assert_eq!(status["records"]["replica"], "r2", "{status}");

    // A second process for a chain that is being written is refused at start.
    let mut again: Vec<&str> = vec!["serve", "--listen", "127.0.0.1:0"];
    again.extend(as_strs(&r1));
    let (code, _, stderr) = run(&again, tmp.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("another process writes the records of replica `r1`"),
        "{stderr}"
    );
    for server in [&mut one, &mut two] {
        signal(&server.child, "TERM");
        assert!(wait_exit(&mut server.child).success());
    }

    let files = chain::list(&dir).unwrap();
    for (replica, decided) in [("r1", 3), ("r2", 2)] {
        let prefix = format!("records-{replica}-");
        let mine: Vec<_> = files
            .iter()
            .filter(|f| f.name.starts_with(&prefix))
            .collect();
        assert!(!mine.is_empty(), "no file of {replica}: {files:?}");
        let lines: Vec<Value> = mine
            .iter()
            .flat_map(|f| file_lines(&dir.join(&f.name)))
            .map(|l| serde_json::from_str(&l).unwrap())
            .collect();
        assert!(lines.iter().all(|r| r["replica"] == replica), "{lines:?}");
        let decisions = lines.iter().filter(|r| r["kind"] == "decision").count();
        assert_eq!(decisions, decided, "{replica}");
    }

    let (code, out, _) = run(&["records", "verify", "records"], tmp.path());
    assert_eq!(code, 0, "{out}");
    for chain in [
        "records without a replica id: ok",
        "replica r1: ok",
        "replica r2: ok",
    ] {
        assert!(out.contains(chain), "{chain} in {out}");
    }
    // Shipped off by a log shipper: out of order, batched into its own files,
    // some lines twice. Each chain is put back together by its links.
    let mut lines: Vec<String> = files
        .iter()
        .flat_map(|f| file_lines(&dir.join(&f.name)))
        .collect();
    lines.reverse();
    let (first, second) = lines.split_at(lines.len() / 2);
    let shipped = tmp.path().join("shipped");
    std::fs::create_dir(&shipped).unwrap();
    std::fs::write(shipped.join("b.log"), first.join("\n")).unwrap();
    std::fs::write(
        shipped.join("a.log"),
        [second, &first[..2]].concat().join("\n"),
    )
    .unwrap();
    let (code, out, _) = run(
        &[
            "records",
            "verify",
            "--shipped",
            "shipped/a.log",
            "shipped/b.log",
        ],
        tmp.path(),
    );
    assert_eq!(code, 0, "{out}");
    for chain in [
        "records without a replica id: ok",
        "replica r1: ok",
        "replica r2: ok",
    ] {
        assert!(out.contains(chain), "{chain} in {out}");
    }
    assert!(out.contains("2 duplicate(s) ignored"), "{out}");
    // One record of r1 that never arrived (the second of its three) is a gap.
    let lost = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(r#""replica":"r1""#) && l.contains(r#""kind":"decision""#))
        .nth(1)
        .unwrap()
        .0;
    let mut cut = lines.clone();
    cut.remove(lost);
    std::fs::write(shipped.join("cut.log"), cut.join("\n")).unwrap();
    let (code, out, _) = run(&["records", "verify", "--shipped", "-"], tmp.path());
    assert_eq!(code, 5, "nothing read is not a whole chain: {out}");
    assert!(out.contains("no record lines were read"), "{out}");
    let (code, out, _) = run(
        &["records", "verify", "--shipped", "shipped/cut.log"],
        tmp.path(),
    );
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("replica r1: error:") && out.contains("records are missing before this one"),
        "{out}"
    );
    assert!(out.contains("replica r2: ok"), "{out}");

    let query = |extra: &[&str]| -> Vec<Value> {
        let mut a = vec!["records", "query", "records"];
        a.extend_from_slice(extra);
        let (code, out, err) = run(&a, tmp.path());
        assert_eq!(code, 0, "{err}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(query(&[]).len(), 2 + 3 + 2);
    let of_r2 = query(&["--replica", "r2"]);
    assert_eq!(of_r2.len(), 2);
    assert!(of_r2.iter().all(|r| r["replica"] == "r2"));
    let (code, _, err) = run(
        &["records", "query", "records", "--replica", "a/b"],
        tmp.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a replica id"), "{err}");

    // The default replica id is the host name.
    let mut host = start(&as_strs(&args("")), tmp.path(), &[]);
    let (_, status) = get(&host.base, "/v1/status");
    signal(&host.child, "TERM");
    assert!(wait_exit(&mut host.child).success());
    let replica = status["records"]["replica"].as_str().unwrap().to_owned();
    #[cfg(target_os = "linux")]
    assert_eq!(
        replica,
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
    );
    assert!(
        chain::list(&dir)
            .unwrap()
            .iter()
            .any(|f| f.replica.as_ref().map(|r| r.as_str()) == Some(replica.as_str())),
        "no file named after {replica}"
    );

    // A record that states another replica than its chain's is found out.
    let r1: chain::ReplicaId = "r1".parse().unwrap();
    let r2: chain::ReplicaId = "r2".parse().unwrap();
    let stray = tempfile::tempdir().unwrap();
    let mut line = Vec::new();
    chain::seal_as(
        &GENESIS,
        Some(&r2),
        br#"{"kind":"decision","time":"2026-01-01T00:00:00.000Z"}"#,
        &mut line,
    )
    .unwrap();
    let name = FileName::of(Some(&r1), "20260101T000000Z", 1);
    std::fs::write(stray.path().join(&name.name), line).unwrap();
    let report = verify_dir(stray.path()).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .message
            .contains("record of replica `r2` in the chain of replica `r1`"),
        "{:?}",
        report.problems
    );
}

/// A record file of `replica`'s chain holding two records of `time`.
fn replica_file(dir: &Path, replica: &str, stamp: &str, time: &str) {
    let r: chain::ReplicaId = replica.parse().unwrap();
    let mut text = Vec::new();
    let mut prev = GENESIS;
    for n in 0..2 {
        let rec =
            json!({"kind": "decision", "decision_id": format!("{replica}-{n}"), "time": time});
        prev = chain::seal_as(&prev, Some(&r), rec.to_string().as_bytes(), &mut text).unwrap();
    }
    std::fs::write(dir.join(FileName::of(Some(&r), stamp, 1).name), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_whole_chains_no_process_writes_once_all_of_them_is_past_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    std::fs::create_dir(&dir).unwrap();
    // Files from before replica ids, and a replica gone since 2020.
    old_file(
        &dir,
        &FileName::new("20200101T000000Z", 1),
        GENESIS,
        "2020-01-01T00:00:00.000Z",
    );
    replica_file(&dir, "gone", "20200101T000000Z", "2020-01-01T00:00:00.000Z");
    // A replica that stopped yesterday: within retention, kept whole.
    let yesterday = std::time::SystemTime::now() - Duration::from_secs(86_400);
    replica_file(
        &dir,
        "quiet",
        &chain::stamp(yesterday),
        &chain::record_time(yesterday),
    );
    let r = recording_in(tmp, |c| {
        c.writer.replica = Some("live".parse().unwrap());
        c.writer.retain_days = Some(30);
    });
    r.close().await;

    let names: Vec<String> = std::fs::read_dir(&r.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("records-gone") || n.starts_with("records-2020")),
        "{names:?}"
    );
    assert!(!names.contains(&"records.lock".to_owned()), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("records-quiet-")),
        "{names:?}"
    );
    let retained: Vec<Value> = records(&r.dir)
        .into_iter()
        .filter(|rec| rec["kind"] == "chain_retention")
        .collect();
    let chains: HashSet<&str> = retained
        .iter()
        .map(|rec| rec["chain"].as_str().unwrap())
        .collect();
    assert_eq!(chains, HashSet::from(["", "gone"]), "{retained:?}");
    assert!(retained.iter().all(|rec| rec["replica"] == "live"));
    let report = verify_dir(&r.dir).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(
        report
            .notes
            .iter()
            .filter(|n| n.contains("was deleted whole by retention"))
            .count(),
        2,
        "{:?}",
        report.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_counts_a_periods_decisions_as_a_certification_asks() {
    let r = recording(|_| {});
    for n in 0..5 {
        decide(&r.router, &person(n)).await;
    }
    decide(&r.router, &designated()).await;
    let kp = json!({"action": "open_account", "customer": {"id": "kp", "name": "Quillon Marrowbeck", "nationalities": ["KP"]}});
    decide(&r.router, &kp).await;
    let mut gpu = json!({"action": "provision",
        "customer": {"id": "gpu", "kind": "organization", "name": "Example Trading LLC", "address": {"country": "AE"},
                     "beneficial_owners": [{"name": "Ivan Petrov", "nationalities": ["RU"]}]},
        "source_ips": ["8.8.8.8"], "resource": {"kind": "gpu_cluster", "gpu_count": 512}});
    assert_eq!(decide(&r.router, &gpu).await.1["decision"], "conditional");
    gpu["satisfied_conditions"] = json!(["end_use_attestation"]);
    assert_eq!(decide(&r.router, &gpu).await.1["decision"], "allow");
    r.close().await;

    let dir = r.dir.to_str().unwrap();
    let (code, out, err) = run(&["records", "report", dir, "--format", "json"], root());
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["decisions"], 9, "{report}");
    assert_eq!(
        report["by_outcome"],
        json!({"allow": 6, "conditional": 1, "deny": 2})
    );
    assert_eq!(report["account_openings_refused"], 2);
    assert_eq!(
        report["by_action"]["provision"],
        json!({"allow": 1, "conditional": 1})
    );
    assert_eq!(report["by_measure"]["SM-EXAMPLE-001"]["denied"], 1);
    assert_eq!(report["by_measure"]["SM-EXAMPLE-002"]["denied"], 1);
    assert_eq!(report["by_measure"]["SM-EXAMPLE-004"]["conditional"], 1);
    assert!(
        report["by_measure"]["SM-EXAMPLE-005"]["obligations"]
            .as_u64()
            .unwrap()
            >= 5
    );
    assert_eq!(report["by_jurisdiction"]["KP"], json!({"deny": 1}));
    assert_eq!(
        report["conditions_lifted"],
        json!({"end_use_attestation": 1})
    );
    assert_eq!(report["screening"]["decisions_matched"], 1);
    assert_eq!(
        report["customers"], 6,
        "three zebulons, boris, kp, gpu: {report}"
    );

    let (code, out, _) = run(&["records", "report", dir], root());
    assert_eq!(code, 0);
    assert!(
        out.contains("decisions from the first record to the last: 9"),
        "{out}"
    );
    assert!(out.contains("account openings refused: 2"), "{out}");
    let (_, out, _) = run(
        &[
            "records",
            "report",
            dir,
            "--from",
            "2999-01-01T00:00:00Z",
            "--format",
            "json",
        ],
        root(),
    );
    let later: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(later["decisions"], 0);
}

/// `records verify DIR ARGS…`: exit code and standard output.
fn verify_records(dir: &str, args: &[&str]) -> (i32, String) {
    let mut all = vec!["records", "verify", dir];
    all.extend_from_slice(args);
    let (code, out, _) = run(&all, root());
    (code, out)
}

/// `records keygen` into `dir`: the key and its public key.
fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(name);
    let (code, out, err) = run(
        &["records", "keygen", "--out", key.to_str().unwrap()],
        root(),
    );
    assert_eq!(code, 0, "{out}{err}");
    (key.clone(), dir.join(format!("{name}.pub")))
}

fn checkpointing(key: &Path, out: &Path) -> impl FnOnce(&mut RecordsConfig) {
    let key = portcullis_keys::SigningKey::read(key).unwrap();
    let out = out.to_owned();
    move |c: &mut RecordsConfig| {
        // One record per write group, so that checkpoints fall every 5.
        c.writer.sync = SyncMode::Always;
        c.writer.replica = Some("r1".parse().unwrap());
        c.writer.checkpoint = Some(portcullis_audit::writer::CheckpointConfig {
            key: Arc::new(key),
            every_records: 5,
            every: Duration::from_secs(60),
            out: Some(out),
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_checkpoints_anchor_the_chain_and_their_copy_finds_records_cut_from_the_end() {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "records.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let copy = keys.path().join("checkpoints.jsonl");
    let r = recording(checkpointing(&key, &copy));
    for n in 0..12 {
        decide(&r.router, &person(n)).await;
    }
    r.close().await;
    // After 5 and 10 records, and at shutdown.
    let checkpoints: Vec<Value> = records(&r.dir)
        .into_iter()
        .filter(|rec| rec["kind"] == "checkpoint")
        .collect();
    assert_eq!(checkpoints.len(), 3, "{checkpoints:?}");
    assert_eq!(checkpoints[0]["records"], 5);
    assert_eq!(file_lines(&copy).len(), 3);

    let dir = r.dir.to_str().unwrap();
    let (pubkey, copy_path) = (public.to_str().unwrap(), copy.to_str().unwrap());
    let (code, out) = verify_records(dir, &["--trust-key", pubkey]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("last signed checkpoint") && out.contains("0 record(s) after it unanchored"),
        "{out}"
    );
    let (code, out) = verify_records(dir, &["--trust-key", pubkey, "--checkpoints", copy_path]);
    assert_eq!(code, 0, "{out}");

    // Signed by a key that is not trusted: refused.
    let (_, other) = keygen(keys.path(), "other.key");
    let (code, out) = verify_records(dir, &["--trust-key", other.to_str().unwrap()]);
    assert_eq!(code, 11, "{out}");
    assert!(out.contains("which is not trusted"), "{out}");

    // The last two records and the checkpoint after them cut, at a line
    // boundary: the chain alone cannot tell, the copy can.
    let last = chain::list(&r.dir).unwrap().pop().unwrap();
    let path = r.dir.join(&last.name);
    let mut lines = file_lines(&path);
    assert!(lines.last().unwrap().contains(r#""kind":"checkpoint""#));
    lines.truncate(lines.len() - 3);
    write_lines(&path, &lines);
    let (code, out) = verify_records(dir, &["--trust-key", pubkey]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = verify_records(dir, &["--trust-key", pubkey, "--checkpoints", copy_path]);
    assert_eq!(code, 11, "{out}");
    assert!(
        out.contains("is not in the directory: records it covers were cut"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_torn_by_a_crash_leaves_a_directory_that_verifies_after_restart() {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "records.key");
    let copy = keys.path().join("checkpoints.jsonl");
    let r = recording(checkpointing(&key, &copy));
    for n in 0..3 {
        decide(&r.router, &person(n)).await;
    }
    r.close().await;
    // What a kill in the middle of writing the shutdown checkpoint leaves.
    let tmp = copy_dir(&r.dir);
    let moved = tempfile::tempdir().unwrap();
    std::fs::rename(tmp.path(), moved.path().join("records")).unwrap();
    let last = chain::list(&moved.path().join("records"))
        .unwrap()
        .pop()
        .unwrap();
    let path = moved.path().join("records").join(&last.name);
    assert!(
        file_lines(&path)
            .last()
            .unwrap()
            .contains(r#""kind":"checkpoint""#)
    );
    cut_tail(&path, 40);
    let restarted = recording_in(moved, checkpointing(&key, &copy));
    decide(&restarted.router, &person(9)).await;
    restarted.close().await;
    let trusted = [portcullis_keys::PublicKey::read(&public).unwrap()];
    let found = portcullis_audit::verify::verify_chains_with(&restarted.dir, &trusted).unwrap();
    let report = &found.chains[0].report;
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.unanchored, 0);
    assert!(
        records(&restarted.dir)
            .iter()
            .any(|rec| rec["kind"] == "recovery")
    );
}

#[test]
fn serve_signs_checkpoints_and_keeps_a_copy_that_verify_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "signing.key");
    let copy = tmp.path().join("copy/checkpoints.jsonl");
    std::fs::create_dir(tmp.path().join("copy")).unwrap();
    let (policies, geo) = (shipped_policies(), default_geo());
    let args = [
        "--records",
        "records",
        "--replica-id",
        "r1",
        "--records-sync",
        "always",
        "--records-signing-key",
        key.to_str().unwrap(),
        "--records-checkpoint",
        "2,1h",
        "--records-checkpoint-out",
        copy.to_str().unwrap(),
        "--policies",
        policies.to_str().unwrap(),
        "--geo",
        geo.to_str().unwrap(),
        "--no-watch",
    ];
    let mut server = start(&args, tmp.path(), &[]);
    for n in 0..4 {
        assert_eq!(post(&server.base, "/v1/decide", &person(n), None).0, 200);
    }
    // After 2 and 4 records.
    let metrics = metrics_text(&server.base);
    assert!(
        metrics.contains("portcullis_records_checkpoints_total 2"),
        "{metrics}"
    );
    // The copy's place becomes unwritable: counted, logged, decisions go on.
    let kept = tmp.path().join("copy/kept.jsonl");
    std::fs::rename(&copy, &kept).unwrap();
    std::fs::create_dir(&copy).unwrap();
    for n in 4..6 {
        assert_eq!(post(&server.base, "/v1/decide", &person(n), None).0, 200);
    }
    let metrics = metrics_text(&server.base);
    assert!(
        metrics.contains("portcullis_records_checkpoints_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"portcullis_records_checkpoint_failures_total{where="copy"} 1"#),
        "{metrics}"
    );
    signal(&server.child, "TERM");
    assert!(wait_exit(&mut server.child).success());
    assert_eq!(file_lines(&kept).len(), 2);
    let (code, out, _) = run(
        &[
            "records",
            "verify",
            "records",
            "--trust-key",
            public.to_str().unwrap(),
            "--checkpoints",
            kept.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 record(s) after it unanchored"), "{out}");
    // The pseudonymisation key's place is not the signing key's.
    std::fs::copy(&key, tmp.path().join("records.key")).unwrap();
    let bad = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--records-signing-key",
            "records.key",
            "--policies",
            policies.to_str().unwrap(),
            "--geo",
            geo.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(bad.0, 1, "{}", bad.2);
    assert!(bad.2.contains("the pseudonymisation key"), "{}", bad.2);
    let bad = run(&["serve", "--records-checkpoint", "0,1s"], tmp.path());
    assert_eq!(bad.0, 2, "{}", bad.2);
    let bad = run(&["serve", "--records-checkpoint-out", "x"], tmp.path());
    assert_eq!(bad.0, 2, "needs a signing key: {}", bad.2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_refuse_a_replaced_history_an_unsigned_chain_and_check_a_fleet_across_directories()
 {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "signing.key");
    let pubkey = public.to_str().unwrap();
    let copy = keys.path().join("r1.jsonl");
    let r = recording(checkpointing(&key, &copy));
    for n in 0..6 {
        decide(&r.router, &person(n)).await;
    }
    r.close().await;
    let dir = r.dir.to_str().unwrap();

    // The whole history removed and a new one started: the copy knows.
    for f in chain::list(&r.dir).unwrap() {
        std::fs::remove_file(r.dir.join(f.name)).unwrap();
    }
    let restarted = recording_in(
        {
            let moved = tempfile::tempdir().unwrap();
            std::fs::rename(&r.dir, moved.path().join("records")).unwrap();
            moved
        },
        checkpointing(&key, &copy),
    );
    decide(&restarted.router, &person(7)).await;
    restarted.close().await;
    let replaced = restarted.dir.to_str().unwrap();
    let (code, out) = verify_records(replaced, &["--trust-key", pubkey]);
    assert_eq!(code, 0, "the new chain alone is sound: {out}");
    let (code, out) = verify_records(
        replaced,
        &[
            "--trust-key",
            pubkey,
            "--checkpoints",
            copy.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 11, "{out}");
    assert!(out.contains("records it covers were cut"), "{out}");
    // Nothing at all left, and the copy still knows.
    let empty = tempfile::tempdir().unwrap();
    let (code, out) = verify_records(
        empty.path().to_str().unwrap(),
        &["--checkpoints", copy.to_str().unwrap()],
    );
    assert_eq!(code, 11, "{out}");
    assert!(out.contains("in none of the directories"), "{out}");
    let _ = dir;

    // A chain no key signed, checked with a key, proves nothing.
    let unsigned = recording(|_| {});
    decide(&unsigned.router, &person(1)).await;
    unsigned.close().await;
    let (code, out) = verify_records(unsigned.dir.to_str().unwrap(), &["--trust-key", pubkey]);
    assert_eq!(code, 11, "{out}");
    assert!(
        out.contains("no checkpoint signed by a trusted key"),
        "{out}"
    );

    // A fleet, one directory and one copy per replica: checked across them.
    let copy2 = keys.path().join("r2.jsonl");
    let second = recording({
        let key = portcullis_keys::SigningKey::read(&key).unwrap();
        let copy2 = copy2.clone();
        move |c: &mut RecordsConfig| {
            c.writer.sync = SyncMode::Always;
            c.writer.replica = Some("r2".parse().unwrap());
            c.writer.checkpoint = Some(portcullis_audit::writer::CheckpointConfig {
                key: Arc::new(key),
                every_records: 5,
                every: Duration::from_secs(60),
                out: Some(copy2),
            });
        }
    });
    decide(&second.router, &person(2)).await;
    second.close().await;
    let mut all = vec![
        "records",
        "verify",
        replaced,
        second.dir.to_str().unwrap(),
        "--trust-key",
        pubkey,
    ];
    for c in [&copy, &copy2] {
        all.extend(["--checkpoints", c.to_str().unwrap()]);
    }
    let (code, out, _) = run(&all, root());
    assert_eq!(code, 11, "r1's replaced history is still found: {out}");
    assert!(
        !out.contains("r2.jsonl"),
        "r2's checkpoints are all found: {out}"
    );
}

/// `records export DIR ARGS…`: exit code, standard output and error.
fn export_records(dir: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["records", "export", dir];
    all.extend_from_slice(args);
    run(&all, root())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_proves_one_customers_records_offline_and_holds_no_one_elses() {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "records.key");
    let copy = keys.path().join("checkpoints.jsonl");
    let r = recording(checkpointing(&key, &copy));
    for n in 0..14 {
        decide(&r.router, &person(n)).await;
    }
    r.close().await;
    // A kill before the shutdown checkpoint, then a restart: the next
    // checkpoint covers the records on both sides of it.
    let moved = tempfile::tempdir().unwrap();
    let tmp = copy_dir(&r.dir);
    std::fs::rename(tmp.path(), moved.path().join("records")).unwrap();
    let last = chain::list(&moved.path().join("records"))
        .unwrap()
        .pop()
        .unwrap();
    let path = moved.path().join("records").join(&last.name);
    let mut lines = file_lines(&path);
    assert!(lines.pop().unwrap().contains(r#""kind":"checkpoint""#));
    write_lines(&path, &lines);
    std::fs::copy(
        r.dir.with_file_name("records.key"),
        moved.path().join("records.key"),
    )
    .unwrap();
    // Idle restarts (each leaves an empty file): the first one's shutdown
    // checkpoint covers the records the kill left unsigned.
    let mut tmp = moved;
    for _ in 0..5 {
        let idle = recording_in(tmp, checkpointing(&key, &copy));
        idle.close().await;
        tmp = idle._tmp;
    }
    let r = recording_in(tmp, checkpointing(&key, &copy));
    for n in 14..23 {
        decide(&r.router, &person(n)).await;
    }
    decide(&r.router, &designated()).await;
    r.close().await;
    let dir = r.dir.to_str().unwrap();
    let pubkey = public.to_str().unwrap();
    let (code, out) = verify_records(dir, &["--trust-key", pubkey]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("cannot be exported"), "{out}");

    let out = keys.path().join("export.jsonl");
    let (code, stdout, err) = export_records(
        dir,
        &[
            "--customer-id",
            "cust-zebulon-1",
            "--trust-key",
            pubkey,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("8 record(s)"), "{stdout}");
    let check = |path: &Path, key: &str| {
        run(
            &[
                "records",
                "check-export",
                path.to_str().unwrap(),
                "--trust-key",
                key,
            ],
            root(),
        )
    };
    let (code, stdout, err) = check(&out, pubkey);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(
        stdout.starts_with("ok: 8 record(s) of replica(s) r1"),
        "{stdout}"
    );

    // Exactly that customer's decisions, verbatim, each with a path.
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["format"], "portcullis.records.export.v1");
    assert_eq!(lines[0]["records"], 8);
    let mut ids = Vec::new();
    for entry in &lines[1..] {
        if let Some(rec) = entry["record"].as_str() {
            let rec: Value = serde_json::from_str(rec).unwrap();
            ids.push(rec["request_id"].as_str().unwrap().to_owned());
            assert!(!entry["path"].as_array().unwrap().is_empty());
        }
    }
    let expected: Vec<String> = (0..23)
        .filter(|n| n % 3 == 1)
        .map(|n| format!("req-{n}"))
        .collect();
    assert_eq!(ids, expected);
    let all = decisions(&r.dir);
    let mine = &all.iter().find(|d| d["request_id"] == "req-1").unwrap()["customer"]["id"];
    for other in &all {
        let id = &other["customer"]["id"];
        if id != mine {
            assert!(
                !text.contains(id.as_str().unwrap()),
                "another customer's record is in the export: {id}"
            );
        }
    }

    // Any byte changed, anywhere: refused.
    let trusted = [portcullis_keys::PublicKey::read(&public).unwrap()];
    let bytes = text.as_bytes();
    assert!(portcullis_audit::export::check_reader(bytes, &trusted).is_ok());
    for i in 0..bytes.len() {
        let mut bad = bytes.to_vec();
        bad[i] ^= 0x01;
        assert!(
            portcullis_audit::export::check_reader(bad.as_slice(), &trusted).is_err(),
            "byte {i} ({:?}) changed and the export still checks",
            char::from(bytes[i])
        );
    }
    // Lines dropped or swapped, the file cut: refused.
    let text_lines: Vec<&str> = text.lines().collect();
    let mut dropped = text_lines.clone();
    dropped.remove(3);
    let mut swapped = text_lines.clone();
    swapped.swap(2, 3);
    for bad in [
        dropped.join("\n") + "\n",
        swapped.join("\n") + "\n",
        text[..text.len() - 1].to_owned(),
    ] {
        assert!(portcullis_audit::export::check_reader(bad.as_bytes(), &trusted).is_err());
    }
    let tampered = keys.path().join("tampered.jsonl");
    std::fs::write(&tampered, text.replacen("req-4", "req-5", 1)).unwrap();
    let (code, stdout, _) = check(&tampered, pubkey);
    assert_eq!(code, 12, "{stdout}");
    assert!(stdout.starts_with("refused:"), "{stdout}");

    // Another key: refused, both to export and to check.
    let (_, other) = keygen(keys.path(), "other.key");
    let (code, stdout, _) = check(&out, other.to_str().unwrap());
    assert_eq!(code, 12, "{stdout}");
    assert!(stdout.contains("not one of the trusted keys"), "{stdout}");
    let (code, _, err) = export_records(
        dir,
        &[
            "--customer-id",
            "cust-zebulon-1",
            "--trust-key",
            other.to_str().unwrap(),
            "--out",
            keys.path().join("x.jsonl").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("not signed by a trusted key"), "{err}");

    // By measure: the designated person's denial alone.
    let by_measure = keys.path().join("measure.jsonl");
    let (code, stdout, err) = export_records(
        dir,
        &[
            "--measure",
            "SM-EXAMPLE-002",
            "--trust-key",
            pubkey,
            "--out",
            by_measure.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("1 record(s)"), "{stdout}");
    assert_eq!(check(&by_measure, pubkey).0, 0);
    // Nothing selected: a usage error.
    let (code, _, _) = export_records(dir, &["--trust-key", pubkey, "--out", "x.jsonl"]);
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_files_are_compressed_and_every_records_command_reads_them() {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "records.key");
    let copy = keys.path().join("checkpoints.jsonl");
    let configure = checkpointing(&key, &copy);
    let r = recording(|c| {
        configure(c);
        c.writer.compress = true;
        c.writer.max_file_bytes = 6_000;
    });
    for n in 0..30 {
        decide(&r.router, &person(n)).await;
    }
    let plain: Vec<String> = decisions(&r.dir)
        .iter()
        .map(|d| d["hash"].as_str().unwrap().to_owned())
        .collect();
    r.close().await;
    // Every closed file, compressed; the one open at shutdown is compressed
    // at the next start.
    let files = chain::list(&r.dir).unwrap();
    assert!(files.len() > 3, "{files:?}");
    let (last, closed) = files.split_last().unwrap();
    assert!(!last.compressed, "{last:?}");
    for f in closed {
        assert!(f.name.ends_with(".jsonl.zst"), "{f:?}");
        assert!(!r.dir.join(f.base()).exists());
    }
    // The chain is over the lines: the same hashes, and it verifies.
    let after: Vec<String> = decisions(&r.dir)
        .iter()
        .map(|d| d["hash"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after, plain);
    let dir = r.dir.to_str().unwrap();
    let pubkey = public.to_str().unwrap();
    let (code, out) = verify_records(
        dir,
        &[
            "--trust-key",
            pubkey,
            "--checkpoints",
            copy.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out, err) = run(
        &["records", "query", dir, "--customer-id", "cust-zebulon-2"],
        root(),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 10);
    let (code, out, _) = run(&["records", "report", dir, "--format", "json"], root());
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["decisions"],
        30
    );
    let export = keys.path().join("export.jsonl");
    let (code, out, err) = export_records(
        dir,
        &[
            "--customer-id",
            "cust-zebulon-2",
            "--trust-key",
            pubkey,
            "--out",
            export.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("10 record(s)"), "{out}");
    let (code, out, _) = run(
        &[
            "records",
            "check-export",
            export.to_str().unwrap(),
            "--trust-key",
            pubkey,
        ],
        root(),
    );
    assert_eq!(code, 0, "{out}");

    // A stop between compressing and removing the original leaves both, and
    // a half-written copy: readers read the original once; the next start
    // removes the half copy and compresses what is left.
    let first = &closed[0];
    let restored = String::from_utf8(chain::read_file(&r.dir.join(&first.name)).unwrap()).unwrap();
    std::fs::write(r.dir.join(first.base()), &restored).unwrap();
    std::fs::write(r.dir.join(format!("{}.zst.tmp", closed[1].base())), b"half").unwrap();
    assert_eq!(chain::list(&r.dir).unwrap().len(), files.len());
    assert_eq!(verify_records(dir, &["--trust-key", pubkey]).0, 0);
    let moved = tempfile::tempdir().unwrap();
    std::fs::rename(&r.dir, moved.path().join("records")).unwrap();
    std::fs::copy(
        r.dir.with_file_name("records.key"),
        moved.path().join("records.key"),
    )
    .unwrap();
    let again = recording_in(moved, |c| {
        c.writer.compress = true;
        c.writer.replica = Some("r1".parse().unwrap());
    });
    decide(&again.router, &person(99)).await;
    let dir = again.dir.clone();
    poll("the earlier files compressed", async || {
        let files = chain::list(&dir).unwrap();
        let plain = files.iter().filter(|f| !f.compressed).count();
        let leftovers = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.ends_with(".tmp")
                    || (name.ends_with(".jsonl") && *name != files.last().unwrap().name)
            })
            .count();
        (plain == 1 && leftovers == 0).then_some(())
    })
    .await;
    again.close().await;
    assert_eq!(decisions(&again.dir).len(), 31);
    assert_eq!(verify_records(again.dir.to_str().unwrap(), &[]).0, 0);
}

/// A record file of `records` (customer id, time, kind) continuing from
/// `prev`, each id hashed as the service stores it (with the key beside
/// `dir`, created if missing); the hash of its last record.
fn account_file(
    dir: &Path,
    name: &FileName,
    prev: chain::Hash,
    records: &[(&str, std::time::SystemTime, &str)],
) -> chain::Hash {
    let (key, _) =
        portcullis_audit::Key::load_or_create(&portcullis_audit::default_key_path(dir)).unwrap();
    let p =
        portcullis_audit::Pseudonymiser::new(Some(key), portcullis_audit::FieldModes::default());
    let mut hash = prev;
    let mut text = Vec::new();
    for (i, (customer, time, kind)) in records.iter().enumerate() {
        let customer = p.hash(FieldKind::CustomerId, customer).unwrap();
        let rec = json!({"kind": kind, "decision_id": format!("d-{}-{i}", name.seq),
                         "time": chain::record_time(*time), "action": "maintain_account",
                         "customer": {"id": customer}});
        let (line, h) = chain::seal(&hash, rec.to_string().as_bytes()).unwrap();
        text.extend(line);
        hash = h;
    }
    std::fs::write(dir.join(&name.name), text).unwrap();
    hash
}

/// Starts and closes a writer on `dir` with retention by account (keep 30
/// days); the base names of the record files left.
async fn retain_by_account(dir: &Path) -> Vec<String> {
    let policy = dir.with_file_name("retention.json");
    std::fs::write(
        &policy,
        r#"{"keep_days_after_last_activity": 30, "keep_days_without_account": 30}"#,
    )
    .unwrap();
    let mut c = config(dir);
    c.writer.account_retention = Some(portcullis_audit::retention::Policy::load(&policy).unwrap());
    let recorder = start_recorder(c, Arc::new(Metrics::new().unwrap().records.clone()));
    recorder.close(Duration::from_secs(10)).await;
    chain::list(dir)
        .unwrap()
        .iter()
        .map(|f| f.base().to_owned())
        .collect()
}

/// `records hold|release DIR --customer-id ID --reason REASON`, which must succeed.
fn holding(dir: &Path, action: &str, id: &str, reason: &str) {
    let d = dir.to_str().unwrap();
    let args = [
        "records",
        action,
        d,
        "--customer-id",
        id,
        "--reason",
        reason,
    ];
    let (code, out, err) = run(&args, root());
    assert_eq!(code, 0, "{out}{err}");
}

/// Four files in `dir`: A's decision (2020), C's (2020), D's (2020), then
/// A's closure `closed` ago.
fn four_accounts(dir: &Path, closed: Duration) -> [FileName; 4] {
    let day = Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    let old = humantime::parse_rfc3339("2020-01-01T10:00:00Z").unwrap();
    let files = [
        FileName::new("20200101T000000Z", 1),
        FileName::new("20200201T000000Z", 2),
        FileName::new("20200301T000000Z", 3),
        FileName::new(&chain::stamp(now - 50 * day), 4),
    ];
    let h = account_file(dir, &files[0], GENESIS, &[("cust-A", old, "decision")]);
    let h = account_file(dir, &files[1], h, &[("cust-C", old + day, "decision")]);
    let h = account_file(dir, &files[2], h, &[("cust-D", old + 2 * day, "decision")]);
    account_file(
        dir,
        &files[3],
        h,
        &[("cust-A", now - closed, "account_closed")],
    );
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_account_keeps_what_an_active_account_or_a_hold_needs_and_deletes_the_rest() {
    let day = Duration::from_secs(86_400);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    std::fs::create_dir(&dir).unwrap();
    // A: decisions in 2020, closed 10 days ago. C: 2020 only. D: 2020 only.
    let [f1, f2, f3, f4] = four_accounts(&dir, 10 * day);
    holding(&dir, "hold", "cust-C", "case 2026-17");

    // A closed 10 days ago: within its keep period, so its oldest file stays,
    // and every file after it.
    let left = retain_by_account(&dir).await;
    assert_eq!(
        &left[..4],
        [
            f1.name.clone(),
            f2.name.clone(),
            f3.name.clone(),
            f4.name.clone()
        ],
        "{left:?}"
    );
    assert!(!records(&dir).iter().any(|r| r["kind"] == "retention"));

    // 40 days on (the closure rewritten 40 days back): A's file goes; C's
    // stays while the hold lasts, and so does everything after it.
    let moved = tempfile::tempdir().unwrap();
    let dir = moved.path().join("records");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        tmp.path().join("records.key"),
        moved.path().join("records.key"),
    )
    .unwrap();
    four_accounts(&dir, 40 * day);
    std::fs::copy(
        tmp.path()
            .join("records")
            .join(portcullis_audit::retention::HOLDS_FILE),
        dir.join(portcullis_audit::retention::HOLDS_FILE),
    )
    .unwrap();
    let left = retain_by_account(&dir).await;
    assert_eq!(
        &left[..3],
        [f2.name.clone(), f3.name.clone(), f4.name.clone()],
        "{left:?}"
    );
    let retention = records(&dir)
        .into_iter()
        .find(|r| r["kind"] == "retention")
        .unwrap();
    assert_eq!(retention["deleted"], json!([f1.name]));
    assert_eq!(retention["policy"], "account");
    assert_eq!(retention["retain_days"], 30);
    assert_eq!(verify_records(dir.to_str().unwrap(), &[]).0, 0);

    // The hold released: C's file, D's and A's closure all go.
    let d = dir.to_str().unwrap();
    holding(&dir, "release", "cust-C", "case closed");
    let left = retain_by_account(&dir).await;
    assert!(
        !left
            .iter()
            .any(|n| [&f2.name, &f3.name, &f4.name].contains(&n)),
        "{left:?}"
    );
    let (code, out) = verify_records(d, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("records-holds.jsonl"), "{out}");

    // A holds file that cannot be read deletes nothing.
    std::fs::write(
        dir.join(portcullis_audit::retention::HOLDS_FILE),
        "{not json\n",
    )
    .unwrap();
    let before = chain::list(&dir).unwrap().len();
    let left = retain_by_account(&dir).await;
    assert_eq!(left.len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_an_account_is_recorded_under_the_id_its_decisions_have() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    let metrics = Metrics::new().unwrap();
    let recorder = start_recorder(config(&dir), Arc::new(metrics.records.clone()));
    let snap = snapshot(&shipped_policies(), &[default_geo()]);
    let state = Arc::new(
        AppState::new(snap, metrics, Limits::default(), Some("t0k".into())).with_recorder(recorder),
    );
    let router = portcullis::server::http::router(state.clone());
    decide(&router, &person(1)).await;
    let closed = |uri: &str, body: &str, bearer: Option<&str>| {
        let router = router.clone();
        let (uri, body, bearer) = (uri.to_owned(), body.to_owned(), bearer.map(str::to_owned));
        async move {
            let (status, bytes) =
                crate::support::call_raw(&router, "POST", &uri, body, bearer.as_deref()).await;
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let (status, answer) = closed(
        "/v1/accounts/cust-zebulon-1/closed",
        r#"{"reason":"customer request"}"#,
        Some("t0k"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = closed("/v1/accounts/cust-zebulon-1/closed", "", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = closed("/v1/accounts/x/closed", r#"{"why":"?"}"#, Some("t0k")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "unknown_field");
    let (status, body) = closed("/v1/accounts/%20/closed", "", Some("t0k")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "id");
    let (status, body) = closed("/v1/accounts/a%FFb/closed", "", Some("t0k")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "id");
    let (status, _) = closed("/v1/accounts/x/closed", r#"["an array"]"#, Some("t0k")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = closed("/v1/accounts/x/closed?force=true", "", Some("t0k")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "unknown_field");
    state
        .recorder
        .as_ref()
        .unwrap()
        .close(Duration::from_secs(10))
        .await;
    let all = records(&dir);
    let decision = all.iter().find(|r| r["kind"] == "decision").unwrap();
    let closure: Vec<&Value> = all
        .iter()
        .filter(|r| r["kind"] == "account_closed")
        .collect();
    assert_eq!(closure.len(), 1);
    assert_eq!(closure[0]["customer"]["id"], decision["customer"]["id"]);
    assert_eq!(answer["customer_id"], decision["customer"]["id"]);
    assert_eq!(closure[0]["reason"], "customer request");
    assert!(!all_text(&dir).contains("cust-zebulon-1"));
    // The closure is one of the customer's records, for query and export.
    let d = dir.to_str().unwrap();
    let (code, out, err) = run(
        &["records", "query", d, "--customer-id", "cust-zebulon-1"],
        root(),
    );
    assert_eq!(code, 0, "{err}");
    let kinds: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["decision", "account_closed"]);
    // Nothing under a signed root (no checkpoints here): no file, a reason.
    let keys = tempfile::tempdir().unwrap();
    let (_, public) = keygen(keys.path(), "k");
    let out_file = keys.path().join("x.jsonl");
    let (code, _, err) = export_records(
        d,
        &[
            "--customer-id",
            "cust-zebulon-1",
            "--trust-key",
            public.to_str().unwrap(),
            "--out",
            out_file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no record to export") && err.contains("2 after the last checkpoint"),
        "{err}"
    );
    assert!(!out_file.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_account_runs_beside_a_live_writer_and_deletes_once_a_hold_is_lifted() {
    let day = Duration::from_secs(86_400);
    let old = humantime::parse_rfc3339("2020-01-01T10:00:00Z").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("records");
    std::fs::create_dir(&dir).unwrap();
    let f1 = FileName::new("20200101T000000Z", 1);
    let f2 = FileName::new("20200201T000000Z", 2);
    let h = account_file(&dir, &f1, GENESIS, &[("cust-B", old, "decision")]);
    account_file(&dir, &f2, h, &[("cust-E", old + day, "decision")]);
    let d = dir.to_str().unwrap();
    holding(&dir, "hold", "cust-B", "case 9");
    let policy = tmp.path().join("retention.json");
    std::fs::write(&policy, r#"{"keep_days_after_last_activity": 30}"#).unwrap();
    let mut c = config(&dir);
    c.writer.account_retention = Some(portcullis_audit::retention::Policy::load(&policy).unwrap());
    let metrics = Metrics::new().unwrap();
    let recorder = start_recorder(c, Arc::new(metrics.records.clone()));
    let snap = snapshot(&shipped_policies(), &[default_geo()]);
    let state =
        Arc::new(AppState::new(snap, metrics, Limits::default(), None).with_recorder(recorder));
    let router = portcullis::server::http::router(state.clone());
    let recorder = state.recorder.as_ref().unwrap();
    decide(&router, &person(1)).await;
    assert!(dir.join(&f1.name).exists(), "deleted while on hold");

    holding(&dir, "release", "cust-B", "case 9");
    recorder.run_retention_now().await;
    decide(&router, &person(2)).await;
    poll("the released files deleted", async || {
        (!dir.join(&f1.name).exists() && !dir.join(&f2.name).exists()).then_some(())
    })
    .await;
    decide(&router, &person(3)).await;
    recorder.close(Duration::from_secs(10)).await;
    let (code, out) = verify_records(d, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(decisions(&dir).len(), 3);

    // A policy file that is not one stops start-up with a clear message.
    std::fs::write(&policy, r#"{"keep_days": 30}"#).unwrap();
    let err = portcullis_audit::retention::Policy::load(&policy).unwrap_err();
    assert!(
        err.to_string().contains("unknown field `keep_days`"),
        "{err}"
    );
    std::fs::write(&policy, r#"{"keep_days_after_last_activity": 0}"#).unwrap();
    let err = portcullis_audit::retention::Policy::load(&policy).unwrap_err();
    assert!(err.to_string().contains("must be 1 to 36500 days"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_profile_trims_the_customer_of_one_action_and_says_so() {
    let r = recording(|c| {
        c.profiles.set(
            portcullis_core::request::Action::Provision,
            portcullis_audit::record::Profile::Compact,
        );
    });
    decide(&r.router, &person(1)).await;
    let mut provision = person(1);
    provision["request_id"] = json!("prov-1");
    provision["action"] = json!("provision");
    provision["resource"] = json!({"kind": "compute", "region": "us-east-1"});
    let (status, body) = decide(&r.router, &provision).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    r.close().await;
    let all = decisions(&r.dir);
    let full = all.iter().find(|d| d["action"] == "open_account").unwrap();
    let compact = all.iter().find(|d| d["action"] == "provision").unwrap();
    assert!(full.get("profile").is_none());
    assert!(full["customer"]["name"].is_string());
    assert_eq!(compact["profile"], "compact");
    let customer = compact["customer"].as_object().unwrap();
    let mut kept: Vec<&str> = customer.keys().map(String::as_str).collect();
    kept.sort_unstable();
    assert_eq!(
        kept,
        ["address", "id", "kind", "nationalities"],
        "{customer:?}"
    );
    assert_eq!(compact["customer"]["address"], json!({"country": "FR"}));
    // The id is the one the account's other records have: they still join.
    assert_eq!(full["customer"]["id"], compact["customer"]["id"]);
    assert!(compact["resource"].is_object() && compact["facts"].is_object());

    let (code, _, err) = run(&["serve", "--records-profile", "provision=tiny"], root());
    assert_eq!(code, 2);
    assert!(err.contains("not a record profile"), "{err}");
}

#[test]
fn verify_checks_each_checkpoints_merkle_root_against_the_records_it_covers() {
    let tmp = tempfile::tempdir().unwrap();
    let name = FileName::new("20260101T000000Z", 1);
    let path = tmp.path().join(&name.name);
    std::fs::write(&path, b"").unwrap();
    let mut hashes = Vec::new();
    let mut prev = GENESIS;
    for n in 0..3 {
        prev = append_record(
            &path,
            prev,
            &json!({"kind": "decision", "n": n, "time": "2026-01-01T00:00:00.000Z"}),
        );
        hashes.push(prev);
    }
    let checkpoint = |root: &chain::Hash| {
        json!({"kind": "checkpoint", "time": "2026-01-01T00:00:01.000Z", "records": 3,
               "since": chain::to_hex(&GENESIS), "root": chain::to_hex(root),
               "key_id": "k", "signature": "s"})
    };
    let mut frontier = portcullis_audit::merkle::Frontier::new();
    hashes.iter().for_each(|h| frontier.push(h));
    let good = tmp.path().join("good");
    std::fs::create_dir(&good).unwrap();
    std::fs::copy(&path, good.join(&name.name)).unwrap();
    append_record(&good.join(&name.name), prev, &checkpoint(&frontier.root()));
    assert!(verify_dir(&good).unwrap().is_ok());
    // The same records under a root that is not theirs.
    append_record(&path, prev, &checkpoint(&[7; 32]));
    broken_with(&verify_dir(tmp.path()).unwrap(), "Merkle root");
}
