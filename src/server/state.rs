//! The state of a running service: the snapshot in force (one `ArcSwap`), the
//! metrics, the request limits, the admin token and the records handle.

use std::sync::Arc;

use arc_swap::ArcSwap;

use portcullis_core::snapshot::Snapshot;

use crate::server::metrics::{InForce, Metrics};
use crate::server::reload::{Pending, ReloadOutcome};

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
    /// Requests may set `at` (decide as of another instant), `--allow-as-of`.
    pub allow_as_of: bool,
}

impl Limits {
    /// What each request is checked against.
    pub fn bounds(&self) -> portcullis_core::request::Bounds {
        portcullis_core::request::Bounds {
            max_names: self.max_names,
            max_parties: self.max_parties,
            max_name_chars: self.max_name_chars,
            allow_as_of: self.allow_as_of,
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
            allow_as_of: false,
        }
    }
}
/// Shared state of a running service.
pub struct AppState {
    pub(super) snapshot: ArcSwap<Snapshot>,
    pub(super) pending: std::sync::Mutex<Pending>,
    pub(super) outcomes: tokio::sync::watch::Sender<Option<Arc<ReloadOutcome>>>,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Bearer token for admin endpoints; `None` disables them.
    pub admin_token: Option<String>,
    /// Decision records; `None` when recording is off.
    pub recorder: Option<portcullis_audit::Recorder>,
    /// A reload may remove at most this share (0.0–1.0) of the designations
    /// in force unless forced.
    pub max_list_shrink: f64,
    /// `/v1/status` lists the measures starting or ending within this long.
    pub upcoming: std::time::Duration,
    /// Shadow evaluation on a candidate (`serve --shadow`); `None` when off.
    pub shadow: Option<crate::server::shadow::Shadow>,
    /// Serving from a bundle (`serve --bundle`); `None` when off.
    pub bundle: Option<Arc<crate::server::bundle::BundleState>>,
    /// A snapshot goes live only if its invariants hold (`serve --prove`).
    pub prove: bool,
}

/// The default `--upcoming`: thirty days.
pub const DEFAULT_UPCOMING: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// The default `--max-list-shrink`: a tenth of the designations in force.
pub const DEFAULT_MAX_LIST_SHRINK: f64 = 0.10;

impl AppState {
    /// Ready to decide (`/readyz`, gRPC health): a snapshot is always in
    /// force, so ready unless decision records cannot be written.
    pub fn ready(&self) -> bool {
        self.recorder.as_ref().is_none_or(|r| r.healthy())
    }

    pub fn new(
        snapshot: Snapshot,
        metrics: Metrics,
        limits: Limits,
        admin_token: Option<String>,
    ) -> Self {
        metrics.set_in_force(&in_force(&snapshot));
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            pending: std::sync::Mutex::new(Pending::default()),
            outcomes: tokio::sync::watch::Sender::new(None),
            metrics,
            limits,
            admin_token: admin_token.filter(|t| !t.is_empty()),
            recorder: None,
            max_list_shrink: DEFAULT_MAX_LIST_SHRINK,
            upcoming: DEFAULT_UPCOMING,
            shadow: None,
            bundle: None,
            prove: false,
        }
    }

    /// Proves the invariants of every snapshot before it goes live.
    pub fn with_prove(mut self, prove: bool) -> Self {
        self.prove = prove;
        self
    }

    /// Serves from a bundle, polled for new ones.
    pub fn with_bundle(mut self, bundle: crate::server::bundle::BundleState) -> Self {
        self.bundle = Some(Arc::new(bundle));
        self
    }

    /// Records every decision through `recorder`.
    pub fn with_recorder(mut self, recorder: portcullis_audit::Recorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Sets the list shrink guard (a share from 0.0 to 1.0; 1.0 turns it off).
    pub fn with_max_list_shrink(mut self, share: f64) -> Self {
        self.max_list_shrink = share.clamp(0.0, 1.0);
        self
    }

    /// Decides every live request on a shadow candidate too.
    pub fn with_shadow(mut self, shadow: crate::server::shadow::Shadow) -> Self {
        self.shadow = Some(shadow);
        self
    }

    /// Sets how far ahead `/v1/status` lists measures starting or ending.
    pub fn with_upcoming(mut self, upcoming: std::time::Duration) -> Self {
        self.upcoming = upcoming;
        self
    }

    /// The snapshot in force. Load it once per request and use it throughout.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
}

/// What the metrics show of a snapshot.
pub(super) fn in_force(snapshot: &Snapshot) -> InForce<'_> {
    InForce {
        revision: &snapshot.revision,
        loaded_at: snapshot.loaded_at,
        policies: snapshot.policies.len(),
        designations: snapshot.designations.len(),
    }
}
