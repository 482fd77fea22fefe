//! The service state and all-or-nothing snapshot reloads.
//!
//! A reload builds a complete new snapshot off the async runtime and publishes
//! it with one atomic swap. If the build fails, the snapshot in force and its
//! revision do not change, and the failure is kept for `/v1/status` until a
//! later reload succeeds. Reloads are serialized; decisions never wait for them.
//! Triggers: file changes ([`watch`]), `SIGHUP` and `POST /v1/admin/reload`.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::server::state::{AppState, in_force};
use portcullis_core::diagnostic::Diagnostic;
use portcullis_core::snapshot::{BuildError, Snapshot, Sources};

/// A reload that did not go live.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadFailure {
    /// When it failed (RFC 3339).
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String)]
    pub at: SystemTime,
    /// What asked for it: `watch`, `sighup`, `admin`, `bundle`, … .
    pub trigger: String,
    /// The problems, each located (file, line, column).
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<Diagnostic>,
}

pub(crate) fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

/// What a reload request asks for.
#[derive(Debug, Clone, Copy)]
pub struct ReloadRequest {
    /// `watch`, `sighup`, `admin`.
    pub trigger: &'static str,
    /// Accept a list that shrinks beyond `--max-list-shrink` (admin only).
    pub force: bool,
}

/// What became of one build, whoever asked for it and whether they waited.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadOutcome {
    /// Requests are numbered from 1; a build answers every request up to its id.
    pub id: u64,
    /// Every trigger the build answers (`watch`, `sighup+admin`, …).
    pub trigger: String,
    /// Whether a list that shrinks beyond `--max-list-shrink` was accepted.
    pub forced: bool,
    /// `success`, `failure` (invalid inputs) or `refused` (the designations
    /// would shrink beyond `--max-list-shrink`).
    #[schema(value_type = String)]
    pub result: &'static str,
    /// When the build was done with (RFC 3339).
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String)]
    pub finished_at: SystemTime,
    /// How long the build took.
    pub took_ms: u64,
    /// The revision in force once the build was done with.
    #[schema(value_type = String)]
    pub policy_revision: Arc<str>,
    /// The revision in force before it.
    #[schema(value_type = String)]
    pub previous_revision: Arc<str>,
    /// The problems found, each located; absent on success.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<Diagnostic>,
}

impl ReloadOutcome {
    pub fn succeeded(&self) -> bool {
        self.result == "success"
    }
}

/// Reload requests not yet built. At most one build runs; requests that arrive
/// meanwhile are merged into the one pending build.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Id of the newest request.
    requested: u64,
    /// Triggers and force of the requests not yet taken by a build.
    triggers: Vec<&'static str>,
    force: bool,
    /// A task is building (or about to).
    building: bool,
    /// New sources for the next build (a bundle swapped in); `None` builds
    /// from the sources in force.
    sources: Option<Sources>,
}

impl AppState {
    /// The last build's errors while it did not go live (kept until a later
    /// build succeeds): the last outcome, when it is not a success.
    pub fn last_failure(&self) -> Option<ReloadFailure> {
        self.last_reload()
            .filter(|o| !o.succeeded())
            .map(|o| ReloadFailure {
                at: o.finished_at,
                trigger: o.trigger.clone(),
                errors: o.errors.clone(),
            })
    }

    /// The last build's outcome, if any build has finished.
    pub fn last_reload(&self) -> Option<Arc<ReloadOutcome>> {
        self.outcomes.borrow().clone()
    }

    /// Asks for a reload and returns its id at once. If no build is running,
    /// one starts; if one is, the request joins the single pending build that
    /// follows it. Every build's outcome is logged, counted and kept for
    /// `/v1/status`, whether or not anyone waits for it.
    pub fn request_reload(self: &Arc<Self>, request: ReloadRequest) -> u64 {
        self.request_reload_of(request, None)
    }

    /// Builds from `sources` instead of the sources in force (a new bundle),
    /// through the same serialized path as every reload, and waits for the
    /// outcome.
    pub async fn reload_from(
        self: &Arc<Self>,
        sources: Sources,
        request: ReloadRequest,
    ) -> Arc<ReloadOutcome> {
        let id = self.request_reload_of(request, Some(sources));
        self.wait_reload(id).await
    }

    fn request_reload_of(
        self: &Arc<Self>,
        request: ReloadRequest,
        sources: Option<Sources>,
    ) -> u64 {
        self.metrics.record_reload_request(request.trigger);
        let (id, start) = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if sources.is_some() {
                pending.sources = sources;
            }
            pending.requested += 1;
            if !pending.triggers.contains(&request.trigger) {
                pending.triggers.push(request.trigger);
            }
            pending.force |= request.force;
            let start = !pending.building;
            pending.building = true;
            (pending.requested, start)
        };
        if start {
            let state = self.clone();
            tokio::spawn(async move { state.build_pending().await });
        }
        id
    }

    /// Waits for the build that answers request `id`.
    pub async fn wait_reload(&self, id: u64) -> Arc<ReloadOutcome> {
        let mut outcomes = self.outcomes.subscribe();
        let done = outcomes
            .wait_for(|o| o.as_ref().is_some_and(|o| o.id >= id))
            .await;
        if let Some(outcome) = done.ok().and_then(|o| o.clone()) {
            return outcome;
        }
        // Unreachable: the sender lives in `self`, and the predicate held.
        std::future::pending().await
    }

    /// Asks for a reload and waits for its outcome.
    pub async fn reload(self: &Arc<Self>, request: ReloadRequest) -> Arc<ReloadOutcome> {
        let id = self.request_reload(request);
        self.wait_reload(id).await
    }

    /// Builds until no request is pending.
    async fn build_pending(self: Arc<Self>) {
        loop {
            let (id, triggers, force, sources) = {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                let done = self.outcomes.borrow().as_ref().map_or(0, |o| o.id);
                if pending.requested <= done {
                    pending.building = false;
                    return;
                }
                let triggers = std::mem::take(&mut pending.triggers).join("+");
                let force = std::mem::take(&mut pending.force);
                (pending.requested, triggers, force, pending.sources.take())
            };
            let outcome = self.build_once(id, triggers, force, sources).await;
            self.outcomes.send_replace(Some(Arc::new(outcome)));
        }
    }

    /// One build: rebuild from the same sources, check the list shrink guard,
    /// publish or keep the snapshot in force.
    async fn build_once(
        &self,
        id: u64,
        trigger: String,
        force: bool,
        sources: Option<Sources>,
    ) -> ReloadOutcome {
        let started = std::time::Instant::now();
        let current = self.snapshot.load_full();
        let previous = current.revision.clone();
        let built = {
            let current = current.clone();
            // Serving a bundle, a rebuild (SIGHUP, admin) reads the bundle in
            // force again from the checked file, never the unpacked tree as
            // it may have been edited since.
            let bundle = match (&sources, &self.bundle) {
                (None, Some(bundle)) => Some(bundle.clone()),
                _ => None,
            };
            let explicit = sources;
            let prove = self.prove;
            build_in_background(move || {
                let sources = match (explicit, bundle) {
                    (Some(s), _) => s,
                    (None, Some(bundle)) => bundle
                        .unpack_in_force(&current.sources)
                        .map_err(|e| BuildError::from(vec![Diagnostic::file(Path::new(""), e)]))?,
                    (None, None) => current.sources.clone(),
                };
                let snapshot = Snapshot::rebuild(sources, Some(&current))?;
                if prove {
                    proved(&snapshot)?;
                }
                Ok(snapshot)
            })
            .await
        };
        let built = built.and_then(|snapshot| {
            match shrink_guard(&current, &snapshot, self.max_list_shrink) {
                Some(refusal) if !force => Err((REFUSED, refusal)),
                _ => Ok(snapshot),
            }
        });
        let took = started.elapsed();
        let mut outcome = ReloadOutcome {
            id,
            trigger,
            forced: force,
            result: "success",
            finished_at: SystemTime::now(),
            took_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            policy_revision: previous.clone(),
            previous_revision: previous.clone(),
            errors: Vec::new(),
        };
        let trigger = outcome.trigger.as_str();
        match built {
            Ok(snapshot) => {
                self.metrics.set_in_force(&in_force(&snapshot));
                self.metrics.record_reload("success", took.as_secs_f64());
                let snapshot = Arc::new(snapshot);
                self.snapshot.store(snapshot.clone());
                outcome.policy_revision = snapshot.revision.clone();
                for w in snapshot.policies.warnings() {
                    tracing::warn!(id, trigger, warning = %w, "policy warning");
                }
                if previous == snapshot.revision {
                    tracing::info!(id, trigger, revision = %snapshot.revision, ?took, "snapshot reloaded, revision unchanged");
                } else {
                    tracing::info!(id, trigger, %previous, revision = %snapshot.revision, ?took, "snapshot reloaded");
                }
            }
            Err((result, diagnostics)) => {
                self.metrics.record_reload(result, took.as_secs_f64());
                for d in &diagnostics {
                    tracing::error!(id, trigger, result, diagnostic = %d, "reload not published; previous snapshot keeps serving");
                }
                outcome.result = result;
                outcome.errors = diagnostics;
            }
        }
        outcome
    }
}

const REFUSED: &str = "refused";

/// `Some(diagnostic)` if `next` drops more than `max_share` of the designations
/// `current` has in force (by id).
fn shrink_guard(current: &Snapshot, next: &Snapshot, max_share: f64) -> Option<Vec<Diagnostic>> {
    if Arc::ptr_eq(&current.designations, &next.designations) || max_share >= 1.0 {
        return None;
    }
    let in_force = current.designations.len();
    if in_force == 0 {
        return None;
    }
    let kept: std::collections::HashSet<&str> = next
        .designations
        .entries()
        .iter()
        .map(|d| d.record.id.as_str())
        .collect();
    let removed = current
        .designations
        .entries()
        .iter()
        .filter(|d| !kept.contains(d.record.id.as_str()))
        .count();
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let share = removed as f64 / in_force as f64;
    (share > max_share).then(|| {
        let dir = current
            .sources
            .policies
            .join(portcullis_core::snapshot::DESIGNATIONS_DIR);
        vec![Diagnostic::file(
            &dir,
            format!(
                "refused: this reload would remove {removed} of the {in_force} designations in force ({:.1} %), more than --max-list-shrink ({:.1} %)",
                share * 100.0,
                max_share * 100.0
            ),
        )
        .with_help(
            "if the shorter list is intended, accept it with `POST /v1/admin/reload?force=true`",
        )]
    })
}

/// Runs a snapshot build off the async workers (the build itself runs on its
/// own thread, see `snapshot::on_build_stack`).
/// The invariants of `snapshot` hold (`serve --prove`), or why it is refused.
pub(crate) fn proved(snapshot: &Snapshot) -> Result<usize, BuildError> {
    match portcullis_prove::gate(snapshot) {
        Ok(n) => Ok(n),
        Err(portcullis_prove::GateError::Refused(found)) => Err(found.into()),
        Err(portcullis_prove::GateError::Prove(e)) => Err(vec![Diagnostic::file(
            &snapshot.sources.policies,
            format!("the invariants could not be proved: {e}"),
        )]
        .into()),
    }
}

async fn build_in_background(
    build: impl FnOnce() -> Result<Snapshot, BuildError> + Send + 'static,
) -> Result<Snapshot, (&'static str, Vec<Diagnostic>)> {
    match tokio::task::spawn_blocking(build).await {
        Ok(result) => result.map_err(|e| ("failure", e.diagnostics)),
        Err(e) => Err((
            "failure",
            vec![Diagnostic::file(
                Path::new(""),
                format!("the snapshot build failed: {e}"),
            )],
        )),
    }
}
