//! The service state and all-or-nothing snapshot reloads.
//!
//! A reload builds a complete new snapshot off the async runtime and publishes
//! it with one atomic swap. If the build fails, the snapshot in force and its
//! revision do not change, and the failure is kept for `/v1/status` until a
//! later reload succeeds. Reloads are serialized; decisions never wait for them.
//! Triggers: file changes ([`watch`]), `SIGHUP` and `POST /v1/admin/reload`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::metrics::Metrics;
use crate::snapshot::{BuildError, Snapshot};

/// A reload that did not go live.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadFailure {
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    pub trigger: String,
    pub errors: Vec<Diagnostic>,
}

pub(crate) fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

/// What a caller can ask of the service besides decisions.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body: usize,
    pub max_batch: usize,
    /// Time limit of one HTTP request; decisions stop working at it.
    pub request_timeout: std::time::Duration,
    /// Names per party (its name and aliases), `--max-names`.
    pub max_names: usize,
    /// Parties per request (the customer and its beneficial owners), `--max-parties`.
    pub max_parties: usize,
    /// Characters in one name or alias, `--max-name-length`.
    pub max_name_chars: usize,
    /// Screening matches listed per answer, best first, `--max-matches`.
    pub max_matches: usize,
}

impl Limits {
    /// What each request is checked against.
    pub fn bounds(&self) -> crate::request::Bounds {
        crate::request::Bounds {
            max_names: self.max_names,
            max_parties: self.max_parties,
            max_name_chars: self.max_name_chars,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            max_batch: 1000,
            request_timeout: std::time::Duration::from_secs(10),
            max_names: 50,
            max_parties: 100,
            max_name_chars: 1000,
            max_matches: 100,
        }
    }
}

/// Shared state of a running service.
pub struct AppState {
    snapshot: ArcSwap<Snapshot>,
    last_failure: ArcSwapOption<ReloadFailure>,
    reload_lock: tokio::sync::Mutex<()>,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Bearer token for admin endpoints; `None` disables them.
    pub admin_token: Option<String>,
    /// Decision records; `None` when recording is off.
    pub recorder: Option<crate::audit::Recorder>,
}

impl AppState {
    pub fn new(
        snapshot: Snapshot,
        metrics: Metrics,
        limits: Limits,
        admin_token: Option<String>,
    ) -> Self {
        metrics.set_snapshot(&snapshot);
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            last_failure: ArcSwapOption::empty(),
            reload_lock: tokio::sync::Mutex::new(()),
            metrics,
            limits,
            admin_token: admin_token.filter(|t| !t.is_empty()),
            recorder: None,
        }
    }

    /// Records every decision through `recorder`.
    pub fn with_recorder(mut self, recorder: crate::audit::Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// The snapshot in force. Load it once per request and use it throughout.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub fn last_failure(&self) -> Option<Arc<ReloadFailure>> {
        self.last_failure.load_full()
    }

    /// Rebuilds the snapshot from the same sources and publishes it if valid.
    pub async fn reload(&self, trigger: &str) -> Result<Arc<Snapshot>, Arc<ReloadFailure>> {
        let _serialized = self.reload_lock.lock().await;
        let started = std::time::Instant::now();
        let current = self.snapshot.load_full();
        let built =
            build_in_background(move || Snapshot::rebuild(current.sources.clone(), Some(&current)))
                .await;
        match built {
            Ok(snapshot) => {
                let previous = self.snapshot.load().revision.clone();
                self.metrics.set_snapshot(&snapshot);
                let took = started.elapsed();
                self.metrics.record_reload(true, took.as_secs_f64());
                let snapshot = Arc::new(snapshot);
                self.snapshot.store(snapshot.clone());
                self.last_failure.store(None);
                if previous == snapshot.revision {
                    tracing::debug!(trigger, revision = %snapshot.revision, ?took, "snapshot reloaded, revision unchanged");
                } else {
                    tracing::info!(trigger, %previous, revision = %snapshot.revision, ?took, "snapshot reloaded");
                }
                Ok(snapshot)
            }
            Err(e) => {
                self.metrics
                    .record_reload(false, started.elapsed().as_secs_f64());
                for d in &e.diagnostics {
                    tracing::error!(trigger, diagnostic = %d, "reload failed; previous snapshot keeps serving");
                }
                let failure = Arc::new(ReloadFailure {
                    at: SystemTime::now(),
                    trigger: trigger.to_owned(),
                    errors: e.diagnostics,
                });
                self.last_failure.store(Some(failure.clone()));
                Err(failure)
            }
        }
    }
}

/// Runs a snapshot build on its own thread at the lowest scheduling priority, so
/// that on a loaded machine decisions get the CPU first and a reload only slows
/// itself down.
async fn build_in_background(
    build: impl FnOnce() -> Result<Snapshot, BuildError> + Send + 'static,
) -> Result<Snapshot, BuildError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("snapshot-build".into())
        .spawn(move || {
            if let Err(e) =
                thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
            {
                tracing::debug!(error = ?e, "cannot lower the snapshot build thread's priority");
            }
            let _ = tx.send(build());
        });
    let failed = |message: String| {
        Err(BuildError::from(vec![Diagnostic::file(
            Path::new(""),
            message,
        )]))
    };
    match spawned {
        Ok(_) => match rx.await {
            Ok(result) => result,
            Err(_) => failed("snapshot build thread panicked".into()),
        },
        Err(e) => failed(format!("cannot start the snapshot build thread: {e}")),
    }
}

/// Watches the policy directory (recursively) and the directory of each geo
/// database, and reloads once changes have settled for `debounce`. Editors that
/// save by rename, files created, deleted or written in several chunks all end in
/// a reload after the last write; a reload that sees a half-written file fails and
/// the next change reloads again. Reading files (as a reload does) is not a change.
/// Keep the returned watcher alive.
pub fn watch(
    state: Arc<AppState>,
    debounce: std::time::Duration,
) -> Result<RecommendedWatcher, notify::Error> {
    let sources = state.snapshot().sources.clone();
    let policy_dir =
        std::fs::canonicalize(&sources.policies).unwrap_or_else(|_| sources.policies.clone());
    let geo_files: Vec<PathBuf> = sources
        .geo
        .iter()
        .map(|g| std::fs::canonicalize(g).unwrap_or_else(|_| g.clone()))
        .collect();
    let relevant = {
        let policy_dir = policy_dir.clone();
        let geo_files = geo_files.clone();
        move |p: &Path| p.starts_with(&policy_dir) || geo_files.iter().any(|g| g == p)
    };

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(e) if e.kind.is_access() || e.kind.is_other() => {}
            Ok(e) if e.paths.iter().any(|p| relevant(p)) => {
                let _ = tx.send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "file watcher error"),
        })?;
    watcher.watch(&policy_dir, RecursiveMode::Recursive)?;
    let mut geo_dirs: Vec<PathBuf> = geo_files
        .iter()
        .filter_map(|g| g.parent().map(Path::to_owned))
        .filter(|d| !d.starts_with(&policy_dir))
        .collect();
    geo_dirs.sort();
    geo_dirs.dedup();
    for dir in &geo_dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }

    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until no change has arrived for `debounce`.
            loop {
                match tokio::time::timeout(debounce, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_elapsed) => break,
                }
            }
            let _ = state.reload("watch").await;
        }
    });
    Ok(watcher)
}
