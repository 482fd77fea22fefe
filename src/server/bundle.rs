//! Serving from a signed bundle in an OCI registry (`serve --bundle`).
//!
//! At start, the tag's bundle is pulled, its signature checked against the
//! trusted keys and every file against its manifest, then unpacked and built
//! exactly as a policy directory is (same validation, same test-case gate).
//! If the registry cannot be reached, or what it holds is refused, the last
//! good bundle kept in the cache (`--bundle-cache`) is checked the same way
//! and served, and `/v1/status` says so.
//!
//! Then the tag is polled: a new artifact digest is pulled, checked, unpacked
//! and swapped in whole through the reload path, like any reload. A bundle
//! that is unsigned, signed by a key not trusted, does not match its manifest
//! or fails validation is refused, logged, counted by reason and shown in
//! `/v1/status`, and the snapshot in force keeps serving; the same digest is
//! not pulled again until the tag moves.
//!
//! Cache layout: `bundles/<artifact hex>.tar.zst` (and `.sig`), the bundle
//! files as pulled; `unpacked/<bundle hex>/`, what a snapshot is built from
//! (always unpacked afresh from a checked bundle, never reused: a file edited
//! by hand in the cache is never served); `current.json`, the last bundle
//! that went live.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry as Prometheus};
use serde::{Deserialize, Serialize};

use portcullis_bundle::archive;
use portcullis_bundle::keys::{self, PublicKey, Signature};
use portcullis_bundle::registry::{BundleRef, Credentials, Registry, RegistryError};
use portcullis_core::snapshot::Sources;

use crate::server::reload::{ReloadRequest, rfc3339};
use crate::server::state::AppState;

/// Where a bundle comes from and who may sign it.
#[derive(Debug, Clone)]
pub struct BundleSource {
    pub reference: BundleRef,
    pub credentials: Credentials,
    pub trusted: Vec<PublicKey>,
    pub poll: Duration,
    pub cache: PathBuf,
}

/// A bundle checked and unpacked, ready to build.
#[derive(Debug, Clone)]
pub struct Acquired {
    pub artifact_digest: String,
    pub bundle_digest: String,
    pub key_id: String,
    pub policies: PathBuf,
    pub geo: Vec<PathBuf>,
    /// `registry` or `cache`.
    pub from: &'static str,
}

impl Acquired {
    /// The sources to build: the unpacked files, the serve settings of
    /// `base`, and the bundle's digest as the revision.
    pub fn sources(&self, base: &Sources) -> Sources {
        Sources {
            policies: self.policies.clone(),
            geo: self.geo.clone(),
            settle: Duration::ZERO,
            label: Some(Arc::from(revision_of(&self.bundle_digest))),
            ..base.clone()
        }
    }
}

/// The revision a bundle is served as: the first 16 hex digits of its digest.
pub fn revision_of(bundle_digest: &str) -> String {
    let hex = bundle_digest
        .strip_prefix("sha256:")
        .unwrap_or(bundle_digest);
    hex.get(..16).unwrap_or(hex).to_owned()
}

/// What `/v1/status` says of the bundle.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BundleStatus {
    /// The reference polled (`oci://…:TAG`).
    pub reference: String,
    /// The bundle digest in force (`sha256:…`, the SHA-256 of its manifest).
    pub digest: String,
    /// Its artifact's manifest digest in the registry.
    pub artifact_digest: String,
    /// The id of the trusted key that signed it.
    pub signed_by: String,
    /// `registry` (pulled since start) or `cache` (the registry could not
    /// give a good bundle at start: served from the last good one).
    pub source: &'static str,
    /// When the tag was last read successfully (RFC 3339).
    #[schema(value_type = Option<String>)]
    #[serde(serialize_with = "opt_rfc3339")]
    pub last_poll: Option<SystemTime>,
    /// Whether the last poll reached the registry.
    pub registry_reachable: bool,
    /// The last bundle refused or pull failed, until a later one goes live.
    pub last_error: Option<BundleFailure>,
}

/// A pull or a bundle refused.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BundleFailure {
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String)]
    pub at: SystemTime,
    /// `registry`, `unsigned`, `untrusted_key`, `bad_signature`,
    /// `digest_mismatch`, `bad_bundle`, `invalid` (it failed validation), `io`.
    pub reason: &'static str,
    pub message: String,
    /// The artifact refused, when one was pulled.
    pub artifact_digest: Option<String>,
}

fn opt_rfc3339<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// `portcullis_bundle_info{digest}` and `portcullis_bundle_pull_failures_total{reason}`.
#[derive(Clone)]
pub struct BundleMetrics {
    info: IntGaugeVec,
    failures: IntCounterVec,
}

impl BundleMetrics {
    pub fn new(registry: &Prometheus) -> Result<Self, prometheus::Error> {
        let info = IntGaugeVec::new(
            Opts::new("bundle_info", "The bundle in force (1), by bundle digest"),
            &["digest"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "bundle_pull_failures_total",
                "Bundle pulls that failed or were refused, by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(info.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        Ok(Self { info, failures })
    }

    fn in_force(&self, digest: &str) {
        self.info.reset();
        self.info.with_label_values(&[digest]).set(1);
    }

    fn failed(&self, reason: &str) {
        self.failures.with_label_values(&[reason]).inc();
    }
}

/// The bundle's state while serving.
pub struct BundleState {
    source: BundleSource,
    status: Mutex<BundleStatus>,
    metrics: BundleMetrics,
}

impl BundleState {
    pub fn new(source: BundleSource, acquired: &Acquired, metrics: BundleMetrics) -> Self {
        metrics.in_force(&acquired.bundle_digest);
        let status = BundleStatus {
            reference: source.reference.to_string(),
            digest: acquired.bundle_digest.clone(),
            artifact_digest: acquired.artifact_digest.clone(),
            signed_by: acquired.key_id.clone(),
            source: acquired.from,
            last_poll: (acquired.from == "registry").then(SystemTime::now),
            registry_reachable: acquired.from == "registry",
            last_error: None,
        };
        Self {
            source,
            status: Mutex::new(status),
            metrics,
        }
    }

    /// The bundle in force, checked and unpacked afresh from the cache: the
    /// sources of a rebuild (`SIGHUP`, admin reload).
    pub fn unpack_in_force(&self, base: &Sources) -> Result<Sources, String> {
        self.source
            .from_cache()
            .map(|acquired| acquired.sources(base))
    }

    pub fn status(&self) -> BundleStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BundleStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a failure: logged, counted, shown.
    pub fn failed(&self, reason: &'static str, message: String, artifact: Option<String>) {
        tracing::error!(
            reason,
            error = %message,
            artifact = artifact.as_deref().unwrap_or(""),
            "bundle refused or not pulled; the snapshot in force keeps serving"
        );
        self.metrics.failed(reason);
        let mut status = self.lock();
        if reason == "registry" {
            status.registry_reachable = false;
        }
        status.last_error = Some(BundleFailure {
            at: SystemTime::now(),
            reason,
            message,
            artifact_digest: artifact,
        });
    }
}

/// The cache's record of the last bundle that went live.
#[derive(Debug, Serialize, Deserialize)]
struct Current {
    reference: String,
    artifact_digest: String,
    bundle_digest: String,
}

impl BundleSource {
    fn bundle_file(&self, artifact: &str) -> PathBuf {
        let hex = artifact.rsplit(':').next().unwrap_or(artifact);
        self.cache.join("bundles").join(format!("{hex}.tar.zst"))
    }

    fn registry(&self) -> Registry {
        Registry::new(&self.reference, &self.credentials)
    }

    /// Pulls and checks the artifact at `digest`, and unpacks it.
    pub async fn pull(&self, digest: &str) -> Result<Acquired, RegistryError> {
        let file = self.bundle_file(digest);
        create_dir(file.parent().unwrap_or(&self.cache))?;
        let pulled = self
            .registry()
            .pull(&self.reference, digest, &self.trusted, &file)
            .await?;
        let sig = keys::signature_path(&file);
        std::fs::write(&sig, pulled.signature.to_bytes())
            .map_err(|e| RegistryError::Io(sig.clone(), e))?;
        let source = self.clone();
        let digest = digest.to_owned();
        let key = pulled.key_id.clone();
        run_blocking(move || source.unpack(&file, &digest, key, "registry")).await
    }

    /// The tag's artifact digest now.
    pub async fn digest(&self) -> Result<String, RegistryError> {
        bounded(self.registry().digest(&self.reference)).await
    }

    /// The digest of the signature artifact of `artifact`, if any.
    async fn signature_digest(&self, artifact: &str) -> Result<Option<String>, RegistryError> {
        bounded(self.registry().signature_digest(&self.reference, artifact)).await
    }

    /// The last good bundle, checked again (signature and files) and
    /// unpacked afresh.
    pub fn from_cache(&self) -> Result<Acquired, String> {
        let path = self.cache.join("current.json");
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let current: Current =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        // A cache is only good for the reference it was filled from.
        if current.reference != self.reference.to_string() {
            return Err(format!(
                "{} holds a bundle of {}, not of {}",
                path.display(),
                current.reference,
                self.reference
            ));
        }
        let file = self.bundle_file(&current.artifact_digest);
        let sig_path = keys::signature_path(&file);
        let sig = std::fs::read(&sig_path).map_err(|e| format!("{}: {e}", sig_path.display()))?;
        let (_, digest, _) = archive::read_manifest(&file).map_err(|e| e.to_string())?;
        let key = Signature::parse(&sig)
            .and_then(|s| s.verify(&digest, &self.trusted))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        self.unpack(&file, &current.artifact_digest, key, "cache")
            .map_err(|e| e.to_string())
    }

    fn unpack(
        &self,
        file: &Path,
        artifact: &str,
        key_id: String,
        from: &'static str,
    ) -> Result<Acquired, RegistryError> {
        let (_, digest, _) = archive::read_manifest(file)?;
        let unpacked = self.cache.join("unpacked");
        create_dir(&unpacked)?;
        let dest = unpacked.join(digest.hex());
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(|e| RegistryError::Io(dest.clone(), e))?;
        }
        let bundle = archive::unpack(file, &dest)?;
        Ok(Acquired {
            artifact_digest: artifact.to_owned(),
            bundle_digest: bundle.digest.to_string(),
            key_id,
            policies: bundle.policies.unwrap_or_else(|| dest.join("policies")),
            geo: bundle.geo,
            from,
        })
    }

    /// Records `acquired` as the last good bundle, and removes what no
    /// longer serves (other unpacked trees and bundle files).
    pub fn went_live(&self, acquired: &Acquired) {
        let current = Current {
            reference: self.reference.to_string(),
            artifact_digest: acquired.artifact_digest.clone(),
            bundle_digest: acquired.bundle_digest.clone(),
        };
        let path = self.cache.join("current.json");
        let tmp = self.cache.join("current.json.tmp");
        let written = serde_json::to_vec_pretty(&current)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!(error = %e, path = %path.display(), "cannot record the bundle in force in the cache");
        }
        let keep_tree = acquired
            .bundle_digest
            .strip_prefix("sha256:")
            .unwrap_or(&acquired.bundle_digest)
            .to_owned();
        let keep_file = self.bundle_file(&acquired.artifact_digest);
        prune(&self.cache.join("unpacked"), |p| {
            p.file_name().is_some_and(|n| n == keep_tree.as_str())
        });
        prune(&self.cache.join("bundles"), |p| {
            p == keep_file || p == keys::signature_path(&keep_file)
        });
    }
}

/// A registry request that answers nothing within [`REQUEST_LIMIT`] fails.
async fn bounded<T>(
    request: impl std::future::Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    tokio::time::timeout(REQUEST_LIMIT, request)
        .await
        .unwrap_or_else(|_| {
            Err(RegistryError::Registry(format!(
                "no answer within {REQUEST_LIMIT:?}"
            )))
        })
}

/// The longest a tag or signature lookup may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(30);

fn prune(dir: &Path, keep: impl Fn(&Path) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if keep(&path) {
            continue;
        }
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(e) = removed {
            tracing::warn!(error = %e, path = %path.display(), "cannot prune the bundle cache");
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), RegistryError> {
    std::fs::create_dir_all(dir).map_err(|e| RegistryError::Io(dir.to_owned(), e))
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(RegistryError::Io(
            PathBuf::new(),
            std::io::Error::other(format!("the unpacking task failed: {e}")),
        ))
    })
}

/// Polls the tag until aborted. Should a poll panic, the panic is logged and
/// polling starts again after one interval: a bad bundle must never stop a
/// replica from taking the next good one.
pub async fn supervise(state: Arc<AppState>) {
    let Some(bundle) = state.bundle.clone() else {
        return;
    };
    loop {
        let task = tokio::spawn(poll(state.clone()));
        // Aborting the supervisor aborts the poll too.
        let _abort = AbortOnDrop(task.abort_handle());
        match task.await {
            Ok(()) => return,
            Err(e) => {
                bundle.failed("internal", format!("the bundle poll failed: {e}"), None);
                tokio::time::sleep(bundle.source.poll).await;
            }
        }
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls the tag; swaps in each new good bundle.
async fn poll(state: Arc<AppState>) {
    let Some(bundle) = state.bundle.clone() else {
        return;
    };
    let source = &bundle.source;
    let mut refused: Option<(String, Option<String>)> = None;
    let mut tick = tokio::time::interval(source.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let digest = match source.digest().await {
            Ok(d) => d,
            Err(e) => {
                bundle.failed(e.reason(), e.to_string(), None);
                continue;
            }
        };
        {
            let mut status = bundle.lock();
            status.last_poll = Some(SystemTime::now());
            status.registry_reachable = true;
            if status.artifact_digest == digest {
                continue;
            }
        }
        // A refused artifact is tried again only once its signature
        // artifact changes (a signature pushed after its bundle, a new
        // signature by a trusted key), not on every poll.
        let signature = match source.signature_digest(&digest).await {
            Ok(s) => s,
            Err(e) => {
                bundle.failed(e.reason(), e.to_string(), Some(digest.clone()));
                continue;
            }
        };
        let attempt = (digest.clone(), signature);
        if refused.as_ref() == Some(&attempt) {
            continue;
        }
        let started = std::time::Instant::now();
        let acquired = match source.pull(&digest).await {
            Ok(a) => a,
            Err(e) => {
                bundle.failed(e.reason(), e.to_string(), Some(digest.clone()));
                // A registry that failed mid-pull is tried again next poll.
                if e.reason() != "registry" && e.reason() != "io" {
                    refused = Some(attempt);
                }
                continue;
            }
        };
        let pulled_in = started.elapsed();
        let base = state.snapshot().sources.clone();
        let outcome = state
            .reload_from(
                acquired.sources(&base),
                ReloadRequest {
                    trigger: "bundle",
                    force: false,
                },
            )
            .await;
        if outcome.succeeded() {
            tracing::info!(
                reference = %source.reference,
                artifact = %digest,
                bundle = %acquired.bundle_digest,
                signed_by = %acquired.key_id,
                revision = %outcome.policy_revision,
                pulled_and_checked = ?pulled_in,
                built_ms = outcome.took_ms,
                "bundle in force"
            );
            source.went_live(&acquired);
            bundle.metrics.in_force(&acquired.bundle_digest);
            let mut status = bundle.lock();
            status.digest = acquired.bundle_digest.clone();
            status.artifact_digest = digest;
            status.signed_by = acquired.key_id.clone();
            status.source = "registry";
            status.last_error = None;
            refused = None;
        } else {
            let message = outcome
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            let reason = if outcome.result == "refused" {
                "list_shrink"
            } else {
                "invalid"
            };
            bundle.failed(reason, message, Some(digest.clone()));
            if let Some(dir) = acquired.policies.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
            refused = Some(attempt);
        }
    }
}
