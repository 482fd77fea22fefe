//! The real binary: start-up on the shipped defaults, signals, refusal of bad
//! inputs, `check` and `schema`. Servers listen on loopback port 0 and report
//! their address in the JSON log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{BASELINE, maxmind, policy_dir, root};

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const DEADLINE: Duration = Duration::from_secs(30);

pub struct Server {
    pub child: Child,
    pub logs: Receiver<String>,
    pub base: String,
    /// Log lines up to and including `listening`.
    pub startup_logs: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `portcullis serve` on a loopback port. Decision records are off
/// unless `args` name a `--records` directory, so no test writes into `cwd`.
pub fn start(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Server {
    let records_off: &[&str] = if args.contains(&"--records") {
        &[]
    } else {
        &["--records", "off"]
    };
    let mut child = Command::new(BIN)
        .arg("--log-format")
        .arg("json")
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(records_off)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, logs) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut startup_logs = Vec::new();
    let end = Instant::now() + DEADLINE;
    let line = loop {
        let left = end.saturating_duration_since(Instant::now());
        match logs.recv_timeout(left) {
            Ok(line) if line.contains("listening") => break line,
            Ok(line) => startup_logs.push(line),
            Err(_) => panic!(
                "the server did not listen; saw:\n{}",
                startup_logs.join("\n")
            ),
        }
    };
    startup_logs.push(line.clone());
    let log: Value = serde_json::from_str(&line).unwrap();
    let address = log["fields"]["address"].as_str().unwrap().to_owned();
    Server {
        child,
        logs,
        base: format!("http://{address}"),
        startup_logs,
    }
}

/// Starts `serve` on a policy directory and one geo database, reloading once
/// file changes have settled for `debounce`; `extra` arguments follow.
pub fn start_watching(policies: &Path, geo: &Path, debounce: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--policies",
        policies.to_str().unwrap(),
        "--geo",
        geo.to_str().unwrap(),
        "--watch-debounce",
        debounce,
    ];
    args.extend_from_slice(extra);
    start(&args, root(), &[])
}

/// Waits for a log line containing `needle`; panics at the deadline.
pub fn wait_log(logs: &Receiver<String>, needle: &str) -> String {
    let end = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match logs.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no log line with `{needle}`; saw:\n{}", seen.join("\n"));
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

pub fn post(base: &str, path: &str, body: &Value, bearer: Option<&str>) -> (u16, Value) {
    let mut req = agent().post(format!("{base}{path}"));
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let mut res = req.send_json(body).unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_json().unwrap_or(Value::Null))
}

pub fn get(base: &str, path: &str) -> (u16, Value) {
    let mut res = agent().get(format!("{base}{path}")).call().unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_json().unwrap_or(Value::Null))
}

/// The Prometheus text of a running server.
pub fn metrics_text(base: &str) -> String {
    agent()
        .get(format!("{base}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < end, "process did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_real_decisions_on_the_shipped_defaults_and_stops_on_sigterm() {
    let mut server = start(&[], root(), &[]);
    let (status, d) = post(
        &server.base,
        "/v1/decide",
        &json!({"action": "open_account", "customer": {"id": "c", "name": "Ann", "address": {"country": "FR"}}, "source_ips": ["8.8.8.8"]}),
        None,
    );
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["facts"]["ip_countries"], json!(["US"]));
    assert_eq!(d["obligations"][0]["id"], "enhanced_monitoring");
    let (status, d) = post(
        &server.base,
        "/v1/decide",
        &json!({"action": "open_account", "customer": {"id": "c", "name": "Борис Фиктив"}}),
        None,
    );
    assert_eq!((status, d["decision"].as_str()), (200, Some("deny")));
    let (status, _) = get(&server.base, "/readyz");
    assert_eq!(status, 200);

    signal(&server.child, "TERM");
    let exit = wait_exit(&mut server.child);
    assert!(exit.success(), "{exit:?}");
    wait_log(&server.logs, "stopped");
}

#[test]
fn ctrl_c_stops_gracefully_too() {
    let mut server = start(&[], root(), &[]);
    signal(&server.child, "INT");
    assert!(wait_exit(&mut server.child).success());
}

pub fn run(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn refuses_to_start_on_a_bad_policy_directory() {
    let geo = root().join("geo-data/geo-whois-asn-country.mmdb");
    let geo = geo.to_str().unwrap();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[(
                "a.cedar",
                "@id(\"a\")\npermit(principal, action, resource) when { 1 + };",
            )],
            "a.cedar:2:",
        ),
        (
            &[
                ("a.cedar", BASELINE),
                (
                    "b.cedar",
                    "\n@id(\"baseline\")\npermit(principal, action, resource);",
                ),
            ],
            "b.cedar:2:1: duplicate policy id `baseline`",
        ),
        (
            &[("a.cedar", "permit(principal, action, resource);")],
            "a.cedar:1:1: policy has no `@id",
        ),
        (
            &[(
                "a.cedar",
                "@id(\"x\")\nforbid(principal, action, resource)\n  when { context.jurisdiction.contains(\"KP\") };",
            )],
            "a.cedar:3:",
        ),
        (
            &[
                ("a.cedar", BASELINE),
                (
                    "designations/d.jsonl",
                    "{\"id\":\"1\",\"names\":[\"a\"]}\n{\"id\":\"2\",\"names\":[\"b\"],\"cidrs\":[\"nope\"]}",
                ),
            ],
            "d.jsonl:2: ",
        ),
    ];
    for (files, expected) in cases {
        let dir = policy_dir(files);
        let (code, _, stderr) = run(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--policies",
                dir.path().to_str().unwrap(),
                "--geo",
                geo,
            ],
            root(),
        );
        assert_eq!(code, 3, "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected `{expected}` in:\n{stderr}"
        );
        assert!(!stderr.contains("listening"), "{stderr}");
    }
}

#[test]
fn refuses_to_start_on_a_corrupt_geo_database() {
    let bad = maxmind("bad-data/libmaxminddb-corrupt-search-tree.mmdb");
    let (code, _, stderr) = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--geo",
            bad.to_str().unwrap(),
        ],
        root(),
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("libmaxminddb-corrupt-search-tree.mmdb"),
        "{stderr}"
    );
}

#[test]
fn check_and_schema_commands() {
    let (code, stdout, stderr) = run(&["check", "policies"], root());
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("ok: 6 policies, 2 designations"),
        "{stdout}"
    );
    assert!(
        stdout.contains("6 of 6 policies are decided by their guards alone"),
        "{stdout}"
    );

    let dir = policy_dir(&[(
        "p.cedar",
        "@id(\"p\")\npermit(principal, action, resource)\n  when { principal.nationality == \"RU\" };",
    )]);
    let (code, _, stderr) = run(&["check", dir.path().to_str().unwrap()], root());
    assert_eq!(code, 3);
    assert!(stderr.contains("p.cedar:3:10:"), "{stderr}");
    assert!(stderr.contains("^"), "a caret under the error: {stderr}");

    let (code, schema, _) = run(&["schema"], root());
    assert_eq!(code, 0);
    for name in [
        "entity Customer",
        "entity Resource",
        "jurisdictions: Set<String>",
        "source_ips: Set<ipaddr>",
        "action open_account, maintain_account, provision",
    ] {
        assert!(schema.contains(name), "schema lacks `{name}`");
    }
    // The printed schema is the one policies are validated against.
    let _ = cedar_policy::Schema::from_cedarschema_str(&schema).unwrap();
}

#[test]
fn sighup_and_admin_reload_swap_the_snapshot() {
    let dir = policy_dir(&[("base.cedar", BASELINE)]);
    let geo = root().join("geo-data/geo-whois-asn-country.mmdb");
    let server = start(
        &[
            "--policies",
            dir.path().to_str().unwrap(),
            "--geo",
            geo.to_str().unwrap(),
            "--no-watch",
        ],
        root(),
        &[("PORTCULLIS_ADMIN_TOKEN", "tok")],
    );
    let kp = json!({"action": "open_account", "customer": {"id": "c", "name": "n", "nationalities": ["KP"]}});
    assert_eq!(
        post(&server.base, "/v1/decide", &kp, None).1["decision"],
        "allow"
    );

    std::fs::write(
        dir.path().join("kp.cedar"),
        "@id(\"sm-kp\") forbid(principal, action, resource) when { context.jurisdictions.contains(\"KP\") };",
    )
    .unwrap();
    signal(&server.child, "HUP");
    wait_log(&server.logs, "snapshot reloaded");
    assert_eq!(
        post(&server.base, "/v1/decide", &kp, None).1["decision"],
        "deny"
    );

    let (status, _) = post(&server.base, "/v1/admin/reload", &json!({}), Some("wrong"));
    assert_eq!(status, 401);
    std::fs::write(dir.path().join("kp.cedar"), "@id(\"sm-kp\") forbid(").unwrap();
    let (status, body) = post(&server.base, "/v1/admin/reload", &json!({}), Some("tok"));
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        post(&server.base, "/v1/decide", &kp, None).1["decision"],
        "deny"
    );
    let (_, st) = get(&server.base, "/v1/status");
    assert!(
        st["last_reload_error"]["errors"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("kp.cedar")
    );
}

#[test]
fn test_command_runs_each_case() {
    let (code, stdout, _) = run(&["test", "policies"], root());
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("ok    a reseller in KP is denied"),
        "{stdout}"
    );
    assert!(stdout.ends_with("7 passed, 0 failed\n"), "{stdout}");

    let dir = policy_dir(&[
        ("base.cedar", BASELINE),
        (
            "tests/t.json",
            r#"[{"name": "wrong", "request": {"action": "open_account", "customer": {"id": "c", "name": "n"}}, "expect": {"decision": "deny", "reasons": ["x"]}}]"#,
        ),
    ]);
    let (code, stdout, _) = run(&["test", dir.path().to_str().unwrap()], root());
    assert_eq!(code, 4, "{stdout}");
    assert!(stdout.contains("FAIL  wrong"), "{stdout}");
    assert!(stdout.contains("expected `deny`, got `allow`"), "{stdout}");
    assert!(
        stdout.contains(r#"expected reasons ["x"], got []"#),
        "{stdout}"
    );
}

#[test]
fn bench_command_loads_a_running_server_open_loop() {
    let server = start(
        &["--no-watch"],
        root(),
        &[("PORTCULLIS_ADMIN_TOKEN", "tok")],
    );
    let out = Command::new(BIN)
        .args([
            "bench",
            "--url",
            &server.base,
            "--rate",
            "200",
            "--duration",
            "1s",
            "--connections",
            "4",
            "--reload-every",
            "100ms",
            "--json",
        ])
        .env("PORTCULLIS_ADMIN_TOKEN", "tok")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    let phases: Vec<&str> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["steady", "reloading"]);
    for r in reports.as_array().unwrap() {
        assert_eq!(r["sent"], 200);
        assert_eq!(r["ok"], 200, "{r}");
        assert_eq!(r["errors"], 0);
        let l = &r["latency_us"];
        assert!(l["p50"].as_u64().unwrap() <= l["p99"].as_u64().unwrap());
        assert!(l["p99"].as_u64().unwrap() <= l["max"].as_u64().unwrap());
    }
    assert!(
        reports[1]["reloads"]["ok"].as_u64().unwrap() >= 1,
        "{reports}"
    );
    let metrics = metrics_text(&server.base);
    assert!(metrics.contains("portcullis_decisions_total{decision=\"allow\",transport=\"http\"}"));
}

#[test]
fn a_body_that_stalls_is_answered_408_at_the_request_timeout() {
    use std::io::{Read as _, Write as _};
    let server = start(&["--request-timeout", "300ms"], root(), &[]);
    let address = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    // Announce 100 bytes of body, send 10 and stall.
    stream
        .write_all(
            b"POST /v1/decide HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"action\":",
        )
        .unwrap();
    let sent = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"}}\r\n") && !answer.ends_with(b"}}") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(sent.elapsed() >= Duration::from_millis(300));
    // Requests that do not stall are not affected.
    let (status, d) = post(
        &server.base,
        "/v1/decide",
        &json!({"action": "open_account", "customer": {"id": "c", "name": "Ann"}}),
        None,
    );
    assert_eq!((status, d["decision"].as_str()), (200, Some("allow")));
}

/// `screen NAME`: the closest designated names of the policy directory, a
/// match and a near miss, each with its token pairing and adjustments; the
/// same as JSON; bad input named by its flag.
#[test]
fn screen_command_explains_matches_and_near_misses() {
    let list = r#"{"id":"T-1","kind":"individual","names":["FLORES SOTO, Mario"],"date_of_birth":"1961-05-02","measure":"SM-1"}
{"id":"T-2","kind":"individual","names":["HUERTA RAMOS, Manuel"]}
"#;
    let dir = policy_dir(&[("p.cedar", BASELINE), ("designations/list.jsonl", list)]);
    let policies = dir.path().to_str().unwrap();
    let (code, out, err) = run(
        &[
            "screen",
            "Mario Floees Soto",
            "--dob",
            "1961-05-02",
            "--policies",
            policies,
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("match      T-1  FLORES SOTO, Mario  measure SM-1"),
        "{out}"
    );
    assert!(out.contains("floees ~ flores"), "{out}");
    assert!(out.contains("date of birth agrees +5"), "{out}");

    // A family name left out: listed, below the threshold, with what was left out.
    let (code, out, _) = run(
        &["screen", "Manuel Ramos", "--policies", policies],
        dir.path(),
    );
    assert_eq!(code, 0);
    assert!(out.contains("near miss  T-2"), "{out}");
    assert!(
        out.contains("left out of the designated name: huerta"),
        "{out}"
    );

    let (code, out, _) = run(
        &[
            "screen",
            "Mario Flores Sotto",
            "--kind",
            "organization",
            "--format",
            "json",
            "--policies",
            policies,
        ],
        dir.path(),
    );
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let m = &v["screening"]["matches"][0];
    assert_eq!(m["designation"], "T-1");
    let name_score = m["explanation"]["name_score"].as_i64().unwrap();
    assert!((90..100).contains(&name_score), "{m}");
    assert_eq!(m["explanation"]["adjustments"][0]["reason"], "kind_differs");
    assert_eq!(m["explanation"]["adjustments"][0]["points"], -10);
    assert_eq!(m["score"].as_i64(), Some(name_score - 10), "{m}");

    let (code, _, err) = run(
        &["screen", "X", "--dob", "1961-13-01", "--policies", policies],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("--dob") && err.contains("invalid_value"),
        "{err}"
    );
    let (code, _, err) = run(
        &["screen", "X", "--policies", "/nonexistent-dir"],
        dir.path(),
    );
    assert_eq!(code, 3, "{err}");
}
