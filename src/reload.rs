//! The service state and all-or-nothing snapshot reloads.
//!
//! A reload builds a complete new snapshot off the async runtime and publishes
//! it with one atomic swap. If the build fails, the snapshot in force and its
//! revision do not change, and the failure is kept for `/v1/status` until a
//! later reload succeeds. Reloads are serialized; decisions never wait for them.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::metrics::Metrics;
use crate::snapshot::{BuildError, Snapshot, Sources};

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
    pub request_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            max_batch: 1000,
            request_timeout: std::time::Duration::from_secs(10),
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
        }
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
        let sources: Sources = self.snapshot.load().sources.clone();
        let built = tokio::task::spawn_blocking(move || Snapshot::build(sources))
            .await
            .unwrap_or_else(|e| {
                Err(BuildError::from(vec![Diagnostic::file(
                    std::path::Path::new(""),
                    format!("snapshot build task failed: {e}"),
                )]))
            });
        match built {
            Ok(snapshot) => {
                let previous = self.snapshot.load().revision.clone();
                self.metrics.set_snapshot(&snapshot);
                self.metrics.record_reload(true);
                let snapshot = Arc::new(snapshot);
                self.snapshot.store(snapshot.clone());
                self.last_failure.store(None);
                tracing::info!(trigger, %previous, revision = %snapshot.revision, "snapshot reloaded");
                Ok(snapshot)
            }
            Err(e) => {
                self.metrics.record_reload(false);
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
