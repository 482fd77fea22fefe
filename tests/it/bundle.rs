//! Bundles and a fleet: build, sign, verify, push and pull through a real OCI
//! registry (the CNCF Distribution server, `docker-registry`, started here on
//! a free loopback port), and replicas that serve, converge and refuse.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::binary::{BIN, Server, get, post, run, start};
use crate::support::root;

/// A registry of its own, on a free port, with a temporary storage directory.
struct TestRegistry {
    child: Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the OCI registry `docker-registry` ({e}): run the suite with \
                     scripts/test, which installs it, or `apt-get install docker-registry`"
                )
            });
        let end = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < end,
                "the registry did not listen on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            host,
            _dir: dir,
        }
    }

    fn reference(&self, tag: &str) -> String {
        format!("oci://{}/portcullis/policies:{tag}", self.host)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn portcullis(args: &[&str]) -> (i32, String, String) {
    run(args, root())
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = portcullis(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of the shipped policy directory with `marker` appended to one
/// policy file (a comment: the same decisions, another bundle).
fn policies_variant(dir: &Path, marker: &str) -> PathBuf {
    let out = dir.join(format!("policies-{marker}"));
    copy_dir(&root().join("policies"), &out);
    let cedar = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .min()
        .unwrap();
    let mut text = std::fs::read_to_string(&cedar).unwrap();
    text.push_str(&format!("\n// {marker}\n"));
    std::fs::write(&cedar, text).unwrap();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Builds (and signs with `key`, if given) the bundle of `policies`.
fn bundle(policies: &Path, out: &Path, key: Option<&Path>) -> String {
    ok(&["bundle", "build", s(policies), "--out", s(out)]);
    if let Some(key) = key {
        ok(&["bundle", "sign", s(out), "--key", s(key)]);
    }
    let inspected: Value = serde_json::from_str(&ok(&["bundle", "inspect", s(out)])).unwrap();
    inspected["digest"].as_str().unwrap().to_owned()
}

fn status(server: &Server) -> Value {
    let (code, status) = get(&server.base, "/v1/status");
    assert_eq!(code, 200);
    status
}

/// One decision by `server` on a plain request.
fn decide(server: &Server) -> Value {
    let body = json!({"action": "open_account", "customer": {"id": "c", "name": "Ana Lima"}});
    let (code, answer) = post(&server.base, "/v1/decide", &body, None);
    assert_eq!(code, 200, "{answer}");
    answer
}

fn replica(reference: &str, trust: &[&Path], cache: &Path) -> Server {
    let mut args = vec![
        "--bundle",
        reference,
        "--bundle-poll",
        "300ms",
        "--bundle-cache",
        s(cache),
    ];
    for k in trust {
        args.extend(["--trust-key", s(k)]);
    }
    start(&args, root(), &[])
}

/// Waits until `check` holds for every replica; how long it took.
fn converge(replicas: &[Server], what: &str, check: impl Fn(&Value) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if replicas.iter().all(|r| check(&status(r))) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: not every replica got there: {:?}",
            replicas
                .iter()
                .map(status)
                .map(|s| s["bundle"].clone())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn keys_build_sign_verify_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("release.key");
    ok(&["bundle", "keygen", "--out", s(&key)]);
    let public = dir.path().join("release.key.pub");
    assert!(
        std::fs::read_to_string(&public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    // A key is never overwritten.
    let (code, _, err) = portcullis(&["bundle", "keygen", "--out", s(&key)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("never overwritten"), "{err}");

    // The same inputs give the same bytes.
    let (a, b) = (dir.path().join("a.bundle"), dir.path().join("b.bundle"));
    let policies = root().join("policies");
    let digest = bundle(&policies, &a, Some(&key));
    bundle(&policies, &b, None);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let inspected: Value = serde_json::from_str(&ok(&["bundle", "inspect", s(&a)])).unwrap();
    assert_eq!(inspected["format"], "portcullis.bundle.v1");
    assert_eq!(inspected["tool_version"], env!("CARGO_PKG_VERSION"));
    let files = inspected["files"].as_array().unwrap();
    assert!(files.iter().any(|f| {
        f["path"]
            .as_str()
            .unwrap()
            .starts_with("policies/designations/")
    }));
    assert!(
        files
            .iter()
            .all(|f| f["sha256"].as_str().unwrap().len() == 64)
    );
    assert_eq!(inspected["geo"].as_array().unwrap().len(), 1);
    assert!(digest.starts_with("sha256:"));

    // Verified by the signing key; refused (8) by another, or unsigned.
    let out = ok(&["bundle", "verify", s(&a), "--trust-key", s(&public)]);
    assert!(out.contains("signed by trusted key"), "{out}");
    let other = dir.path().join("other.key");
    ok(&["bundle", "keygen", "--out", s(&other)]);
    let other_pub = dir.path().join("other.key.pub");
    let (code, _, err) = portcullis(&["bundle", "verify", s(&a), "--trust-key", s(&other_pub)]);
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("not trusted"), "{err}");
    // Several trusted keys: rotation.
    ok(&[
        "bundle",
        "verify",
        s(&a),
        "--trust-key",
        s(&other_pub),
        "--trust-key",
        s(&public),
    ]);
    let (code, _, err) = portcullis(&["bundle", "verify", s(&b), "--trust-key", s(&public)]);
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("not signed"), "{err}");

    // An invalid policy directory is never bundled.
    let broken = dir.path().join("broken");
    copy_dir(&policies, &broken);
    std::fs::write(
        broken.join("zz.cedar"),
        "permit(principal, action, resource) when {",
    )
    .unwrap();
    let (code, _, err) = portcullis(&[
        "bundle",
        "build",
        s(&broken),
        "--out",
        s(&dir.path().join("c.bundle")),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(!dir.path().join("c.bundle").exists());

    // A changed byte in the bundle file is refused.
    let mut bytes = std::fs::read(&a).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&b, &bytes).unwrap();
    std::fs::copy(keys_sig(&a), keys_sig(&b)).unwrap();
    let (code, _, err) = portcullis(&["bundle", "verify", s(&b), "--trust-key", s(&public)]);
    assert_ne!(code, 0, "{err}");
}

fn keys_sig(bundle: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", bundle.display()))
}

/// Pushes `data` as a bundle artifact as it is (no check), with `signature`
/// as its signature artifact: what a tampering or careless publisher could
/// put in a registry.
fn push_raw(host: &str, tag: &str, data: Vec<u8>, config: Vec<u8>, signature: Option<Vec<u8>>) {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let auth = oci_client::secrets::RegistryAuth::Anonymous;
    let reference: oci_client::Reference =
        format!("{host}/portcullis/policies:{tag}").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let layers = [ImageLayer::new(
            data,
            portcullis_bundle::registry::BUNDLE_MEDIA_TYPE.to_owned(),
            None,
        )];
        let config = Config::new(
            config,
            portcullis_bundle::registry::CONFIG_MEDIA_TYPE.to_owned(),
            None,
        );
        client
            .push(&reference, &layers, config, &auth, None)
            .await
            .unwrap();
        let digest = client
            .fetch_manifest_digest(&reference, &auth)
            .await
            .unwrap();
        if let Some(sig) = signature {
            let tag = portcullis_bundle::registry::signature_tag(&digest);
            let sig_ref: oci_client::Reference =
                format!("{host}/portcullis/policies:{tag}").parse().unwrap();
            let layers = [ImageLayer::new(
                sig,
                portcullis_bundle::registry::SIGNATURE_MEDIA_TYPE.to_owned(),
                None,
            )];
            let config = Config::new(
                b"{}".to_vec(),
                "application/vnd.oci.empty.v1+json".to_owned(),
                None,
            );
            client
                .push(&sig_ref, &layers, config, &auth, None)
                .await
                .unwrap();
        }
    });
}

/// The bundle at `path` with one policy file's bytes changed and its
/// manifest (so its digest and signature) kept.
fn tampered(path: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut archive =
        tar::Archive::new(zstd::Decoder::new(std::fs::File::open(path).unwrap()).unwrap());
    let mut builder = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let mut changed = false;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_str().unwrap().to_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if name == "manifest.json" {
            manifest = data.clone();
        } else if !changed && name.ends_with(".cedar") {
            // Same size, other bytes: `permit` where a `forbid` was, say.
            let last = data.len() - 2;
            data[last] = if data[last] == b'x' { b'y' } else { b'x' };
            changed = true;
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, &name, &data[..]).unwrap();
    }
    assert!(changed);
    let tar = builder.into_inner().unwrap();
    (zstd::encode_all(&tar[..], 3).unwrap(), manifest)
}

#[test]
fn a_fleet_converges_on_a_signed_bundle_refuses_bad_ones_and_restarts_from_its_cache() {
    let mut registry = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, other) = (dir.path().join("k1"), dir.path().join("k2"));
    ok(&["bundle", "keygen", "--out", s(&key)]);
    ok(&["bundle", "keygen", "--out", s(&other)]);
    let trusted = dir.path().join("k1.pub");
    let prod = registry.reference("prod");

    // v1, signed, pushed and pulled back as it was.
    let v1 = dir.path().join("v1.bundle");
    let v1_digest = bundle(&policies_variant(dir.path(), "v1"), &v1, Some(&key));
    let out = ok(&["bundle", "push", s(&v1), &prod]);
    assert!(out.contains("signed"), "{out}");
    let pulled = dir.path().join("pulled.bundle");
    ok(&[
        "bundle",
        "pull",
        &prod,
        "--trust-key",
        s(&trusted),
        "--out",
        s(&pulled),
    ]);
    assert_eq!(std::fs::read(&pulled).unwrap(), std::fs::read(&v1).unwrap());
    let (code, _, err) = portcullis(&[
        "bundle",
        "pull",
        &prod,
        "--trust-key",
        s(&dir.path().join("k2.pub")),
        "--out",
        s(&dir.path().join("x.bundle")),
    ]);
    assert_eq!(code, 8, "{err}");

    // Three replicas on the tag.
    let caches: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("cache-{i}")))
        .collect();
    let mut replicas: Vec<Server> = caches
        .iter()
        .map(|c| replica(&prod, &[&trusted], c))
        .collect();
    let revision = |digest: &str| digest.trim_start_matches("sha256:")[..16].to_owned();
    for r in &replicas {
        let st = status(r);
        assert_eq!(st["bundle"]["digest"], v1_digest);
        assert_eq!(st["bundle"]["source"], "registry");
        assert_eq!(st["policy_revision"], revision(&v1_digest));
    }

    // Load on all three while v2 is pushed: every replica converges, no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = replicas
        .iter()
        .map(|r| {
            let (base, stop, failed, sent) = (r.base.clone(), stop.clone(), failed.clone(), sent.clone());
            std::thread::spawn(move || {
                let body = json!({"action": "open_account", "customer": {"id": "c-1", "name": "Ana Lima"},
                                  "source_ips": ["81.2.69.160"]});
                while !stop.load(Ordering::Relaxed) {
                    let (code, answer) = post(&base, "/v1/decide", &body, None);
                    sent.fetch_add(1, Ordering::Relaxed);
                    if code != 200 || answer["decision"].as_str().is_none() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let v2 = dir.path().join("v2.bundle");
    let v2_digest = bundle(&policies_variant(dir.path(), "v2"), &v2, Some(&key));
    ok(&["bundle", "push", s(&v2), &prod]);
    let took = converge(&replicas, "v2", |st| st["bundle"]["digest"] == v2_digest);
    eprintln!("three replicas on v2 {took:?} after the push (poll 300 ms)");
    for r in &replicas {
        let answer = decide(r);
        assert_eq!(answer["policy_revision"], revision(&v2_digest));
        let metrics = crate::binary::metrics_text(&r.base);
        assert!(
            metrics.contains(&format!(
                "portcullis_bundle_info{{digest=\"{v2_digest}\"}} 1"
            )),
            "{metrics}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    assert!(sent.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the swap"
    );

    // Refused by all three, which keep serving v2: unsigned, signed by a key
    // not trusted, a tampered layer.
    let v3 = dir.path().join("v3.bundle");
    let v3_digest = bundle(&policies_variant(dir.path(), "v3"), &v3, None);
    let (code, _, err) = portcullis(&["bundle", "push", s(&v3), &prod]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("unsigned"), "{err}");
    let refused = |reason: &'static str| {
        let v2 = v2_digest.clone();
        move |st: &Value| {
            st["bundle"]["last_error"]["reason"] == reason && st["bundle"]["digest"] == v2
        }
    };
    converge(&replicas, "unsigned", refused("unsigned"));

    ok(&["bundle", "sign", s(&v3), "--key", s(&other)]);
    ok(&["bundle", "push", s(&v3), &prod]);
    converge(&replicas, "another key", refused("untrusted_key"));

    let (data, manifest) = tampered(&v2);
    push_raw(
        &registry.host,
        "prod",
        data,
        manifest,
        Some(std::fs::read(keys_sig(&v2)).unwrap()),
    );
    converge(&replicas, "tampered", refused("digest_mismatch"));
    for r in &replicas {
        let answer = decide(r);
        assert_eq!(
            answer["policy_revision"],
            revision(&v2_digest),
            "v3 was {v3_digest}"
        );
        let metrics = crate::binary::metrics_text(&r.base);
        for reason in ["unsigned", "untrusted_key", "digest_mismatch"] {
            assert!(
                metrics.contains(&format!(
                    "portcullis_bundle_pull_failures_total{{reason=\"{reason}\"}}"
                )),
                "{reason}: {metrics}"
            );
        }
    }

    // The registry stops; a restarted replica serves v2 from its cache, and
    // says so; it stays ready.
    registry.stop();
    let first = replicas.remove(0);
    drop(first);
    let restarted = replica(&prod, &[&trusted], &caches[0]);
    let st = status(&restarted);
    assert_eq!(st["bundle"]["digest"], v2_digest);
    assert_eq!(st["bundle"]["source"], "cache");
    assert_eq!(st["bundle"]["registry_reachable"], false);
    assert_eq!(st["bundle"]["last_error"]["reason"], "registry");
    assert_eq!(get(&restarted.base, "/readyz").0, 200);

    // A file edited by hand in the cache is never served: the bundle is
    // checked and unpacked afresh at every start.
    drop(restarted);
    let unpacked = caches[0].join("unpacked");
    for tree in std::fs::read_dir(&unpacked).unwrap() {
        let cedar = tree.unwrap().path().join("policies");
        for f in std::fs::read_dir(&cedar).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "cedar") {
                std::fs::write(&f, "permit(principal, action, resource);").unwrap();
            }
        }
    }
    let restarted = replica(&prod, &[&trusted], &caches[0]);
    assert_eq!(status(&restarted)["bundle"]["digest"], v2_digest);
    let kp = json!({"action": "open_account", "customer": {"id": "c", "name": "Ana Lima"}, "reseller": {"country": "KP"}});
    let (_, answer) = post(&restarted.base, "/v1/decide", &kp, None);
    assert_eq!(answer["decision"], "deny", "{answer}");
    // Nor after a rebuild (SIGHUP): the bundle in force is read again from
    // the checked file, not from the tree as edited.
    let policies = status(&restarted)["policies"].clone();
    let tree = PathBuf::from(status(&restarted)["policy_dir"].as_str().unwrap());
    std::fs::write(
        tree.join("injected.cedar"),
        "permit(principal, action, resource);",
    )
    .unwrap();
    crate::binary::signal(&restarted.child, "HUP");
    let started = Instant::now();
    while status(&restarted)["last_reload"].is_null() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no reload after SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = status(&restarted);
    assert_eq!(st["last_reload"]["result"], "success", "{st}");
    assert_eq!(st["policies"], policies);
    assert!(!tree.join("injected.cedar").exists());
    let (_, answer) = post(&restarted.base, "/v1/decide", &kp, None);
    assert_eq!(answer["decision"], "deny", "{answer}");
    drop(restarted);

    // A cache is only used for the reference it was filled from.
    let staging = registry.reference("staging");
    let (code, err) = start_refused(&staging, &trusted, &caches[0]);
    assert_eq!(code, Some(3));
    assert!(err.contains("holds a bundle of"), "{err}");

    // No cache and no registry: the start is refused, with the reason.
    let (code, err) = start_refused(&prod, &trusted, &dir.path().join("empty-cache"));
    assert_eq!(code, Some(3));
    assert!(err.contains("no bundle that verifies"), "{err}");
}

/// `serve --bundle` that is expected not to start: its exit code and stderr.
fn start_refused(reference: &str, trusted: &Path, cache: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--records", "off"])
        .args(["--bundle", reference, "--trust-key", s(trusted)])
        .args(["--bundle-cache", s(cache)])
        .current_dir(root())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
