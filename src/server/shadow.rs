//! Shadow evaluation (`serve --shadow DIR`): every live request is decided
//! again on a candidate policy directory, off the live path, and the answers
//! compared (`portcullis_core::impact`), so that a change is seen on real
//! traffic before it serves.
//!
//! - The candidate is built as the live snapshot is (validation, its own test
//!   cases) and rebuilt when its files change or on SIGHUP; a build that fails
//!   is kept for `GET /v1/shadow` and the previous candidate goes on. Nothing
//!   here ever touches the live snapshot.
//! - Once a live request is decided and recorded, it is offered to a bounded
//!   queue with a non-blocking send: when the queue is full the shadow work is
//!   dropped and counted, and the live request never waits.
//! - One worker thread, below every live thread (`SCHED_IDLE` on Linux: it
//!   runs only on a core nothing else wants), decides each request on the
//!   candidate as of the live decision's instant (`decided_at`), so a dated
//!   measure is judged the same on both. Shadow decisions are not recorded.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use serde::Serialize;

use portcullis_core::decision::Decision;
use portcullis_core::engine::decide;
use portcullis_core::impact::{MeasuresDiffer, Side, Tally, Transition, compare};
use portcullis_core::lifecycle::Instant;
use portcullis_core::policies::limits::DECISION_STACK;
use portcullis_core::request::DecideRequest;
use portcullis_core::snapshot::{Snapshot, Sources};

use crate::server::metrics::ShadowMetrics;
use crate::server::reload::{ReloadFailure, rfc3339};

/// Requests waiting for the candidate, at most (`--shadow-queue`).
pub const DEFAULT_QUEUE: usize = 4096;
/// Changes kept for `GET /v1/shadow`, newest last.
pub const LAST_CHANGES: usize = 100;

/// The shadow candidate and its worker.
pub struct Shadow {
    queue: SyncSender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    sources: Sources,
    candidate: ArcSwapOption<Snapshot>,
    seen: Mutex<Seen>,
    metrics: ShadowMetrics,
    capacity: usize,
    /// Builds run one at a time.
    building: tokio::sync::Mutex<()>,
    /// Live requests being decided now: the worker waits for none.
    live: std::sync::atomic::AtomicUsize,
}

/// Held while live requests are decided (see [`Shadow::live`]).
pub struct Live<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What the worker has seen since the candidate in force was loaded.
#[derive(Default)]
struct Seen {
    tally: Tally,
    last: VecDeque<LastChange>,
    /// Live requests that found no candidate (none valid yet).
    skipped: u64,
    /// The candidate the counts are of.
    revision: Option<Arc<str>>,
    /// The last build that failed (the previous candidate goes on).
    failure: Option<ReloadFailure>,
}

/// One changed answer, as `GET /v1/shadow` lists it (no names: the request id,
/// the decisions and the designation ids only).
#[derive(Debug, Clone, Serialize)]
pub struct LastChange {
    request_id: Option<String>,
    decided_at: Instant,
    live_revision: Arc<str>,
    transition: Transition,
    before: Side,
    after: Side,
    measures: MeasuresDiffer,
}

struct Job {
    request: DecideRequest,
    live: Decision,
}

/// `GET /v1/shadow`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ShadowStatus {
    /// The candidate's policy directory (`serve --shadow DIR`).
    #[schema(value_type = String)]
    policy_dir: std::path::PathBuf,
    /// `null` until a candidate has been built.
    candidate: Option<CandidateInfo>,
    /// The candidate's last build that failed, if any.
    last_failure: Option<ReloadFailure>,
    /// The shadow queue.
    queue: QueueInfo,
    /// Live requests that found no valid candidate.
    skipped: u64,
    /// The comparison: `compared`, `unchanged`, `changed`, `flips`,
    /// `transitions`, `by_measure`, `by_jurisdiction`, as `portcullis impact`
    /// counts them.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    tally: Tally,
    /// The last changes seen, newest last.
    #[schema(value_type = Vec<Object>)]
    last_changes: Vec<LastChange>,
}

/// The candidate built.
#[derive(Serialize, utoipa::ToSchema)]
struct CandidateInfo {
    /// Its revision.
    #[schema(value_type = String)]
    revision: Arc<str>,
    /// When it was built (RFC 3339).
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String)]
    loaded_at: SystemTime,
    /// Policies in it.
    policies: usize,
    /// Designated persons in it.
    designations: usize,
}

/// The shadow queue.
#[derive(Serialize, utoipa::ToSchema)]
struct QueueInfo {
    /// Requests it holds at most (`--shadow-queue`).
    capacity: usize,
    /// Requests dropped because it was full.
    dropped: u64,
}

impl Shadow {
    /// Builds the candidate (a failure is logged and kept: the service serves
    /// and shadows nothing until a build succeeds) and starts the worker.
    pub fn start(
        sources: Sources,
        live: &Snapshot,
        capacity: usize,
        metrics: ShadowMetrics,
    ) -> std::io::Result<Self> {
        let (shadow, jobs) = Self::new(sources, Some(live), capacity, metrics);
        let worker = shadow.shared.clone();
        std::thread::Builder::new()
            .name("shadow".into())
            .stack_size(DECISION_STACK)
            .spawn(move || work(&worker, &jobs))?;
        Ok(shadow)
    }

    /// The shadow with its candidate built, and the queue its worker reads.
    /// What the candidate shares with `live` (geo databases, the same list)
    /// is not loaded twice.
    fn new(
        sources: Sources,
        live: Option<&Snapshot>,
        capacity: usize,
        metrics: ShadowMetrics,
    ) -> (Self, Receiver<Job>) {
        let (queue, jobs) = sync_channel(capacity.max(1));
        let shared = Arc::new(Shared {
            sources,
            candidate: ArcSwapOption::empty(),
            seen: Mutex::new(Seen::default()),
            metrics,
            capacity: capacity.max(1),
            building: tokio::sync::Mutex::new(()),
            live: std::sync::atomic::AtomicUsize::new(0),
        });
        shared.publish(Snapshot::rebuild(shared.sources.clone(), live), "start");
        (Self { queue, shared }, jobs)
    }

    /// What the candidate is built from.
    pub fn sources(&self) -> &Sources {
        &self.shared.sources
    }

    /// Marks live requests as being decided until the guard goes: shadow
    /// work starts only while none is.
    pub fn live(&self) -> Live<'_> {
        self.shared
            .live
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Live(&self.shared.live)
    }

    /// Offers a decided live request to the candidate; never waits.
    pub fn offer(&self, request: DecideRequest, live: Decision) {
        match self.queue.try_send(Job { request, live }) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.metrics.dropped.inc();
            }
        }
    }

    /// Rebuilds the candidate off the runtime; a failure keeps the previous one.
    pub async fn reload(&self, trigger: &'static str) {
        let _one_at_a_time = self.shared.building.lock().await;
        let shared = self.shared.clone();
        let built = tokio::task::spawn_blocking(move || {
            let previous = shared.candidate.load_full();
            let built = Snapshot::rebuild(shared.sources.clone(), previous.as_deref());
            shared.publish(built, trigger);
        })
        .await;
        if let Err(e) = built {
            tracing::error!(error = %e, "shadow candidate build failed to run");
        }
    }

    /// `GET /v1/shadow`.
    pub fn status(&self) -> ShadowStatus {
        let candidate = self.shared.candidate.load_full().map(|c| CandidateInfo {
            revision: c.revision.clone(),
            loaded_at: c.loaded_at,
            policies: c.policies.len(),
            designations: c.designations.len(),
        });
        let seen = self.shared.seen();
        ShadowStatus {
            policy_dir: self.shared.sources.policies.clone(),
            candidate,
            last_failure: seen.failure.clone(),
            queue: QueueInfo {
                capacity: self.shared.capacity,
                dropped: self.shared.metrics.dropped.get(),
            },
            skipped: seen.skipped,
            tally: seen.tally.clone(),
            last_changes: seen.last.iter().cloned().collect(),
        }
    }
}

impl Shared {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a built candidate in force, or keeps the failure. A new revision
    /// starts the counts afresh: they are those of the candidate in force.
    fn publish(
        &self,
        built: Result<Snapshot, portcullis_core::snapshot::BuildError>,
        trigger: &'static str,
    ) {
        match built {
            Ok(snapshot) => {
                let revision = snapshot.revision.clone();
                let previous = self
                    .candidate
                    .swap(Some(Arc::new(snapshot)))
                    .map(|p| p.revision.clone());
                self.metrics.reload("success");
                let mut seen = self.seen();
                seen.failure = None;
                if previous.as_deref() != Some(&*revision) {
                    let skipped = seen.skipped;
                    *seen = Seen {
                        skipped,
                        revision: Some(revision.clone()),
                        ..Seen::default()
                    };
                }
                tracing::info!(%revision, trigger, dir = %self.sources.policies.display(), "shadow candidate loaded");
            }
            Err(e) => {
                self.metrics.reload("failure");
                for d in &e.diagnostics {
                    tracing::error!(problem = %d, trigger, "shadow candidate refused");
                }
                self.seen().failure = Some(ReloadFailure {
                    at: SystemTime::now(),
                    trigger: trigger.to_owned(),
                    errors: e.diagnostics,
                });
            }
        }
    }
}

/// How often the worker looks whether live requests are still being decided.
const LIVE_POLL: std::time::Duration = std::time::Duration::from_micros(100);

/// Puts the calling thread below every live thread: on Linux, `SCHED_IDLE`
/// (it runs only when no other thread wants the core, and a waking live
/// thread preempts it at once); elsewhere, the lowest priority.
fn yield_to_live_work() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        let idle = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        if idle.is_ok() {
            return;
        }
    }
    let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
}

/// Decides each offered request on the candidate in force, until the service
/// (the queue's sender) goes.
fn work(shared: &Shared, jobs: &Receiver<Job>) {
    yield_to_live_work();
    for Job { mut request, live } in jobs.iter() {
        // Live requests first: a shadow decision starts only once none is
        // being decided (under sustained load the queue fills and shadow
        // work is dropped, never live work delayed).
        while shared.live.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            std::thread::sleep(LIVE_POLL);
        }
        let Some(candidate) = shared.candidate.load_full() else {
            shared.seen().skipped += 1;
            continue;
        };
        let decided_at = live.decided_at;
        request.at = Some(decided_at);
        let after = decide(&candidate, &request);
        let live_revision = live.policy_revision.clone();
        let change = compare(live, after);
        shared.metrics.decisions.inc();
        let mut seen = shared.seen();
        // Decided on a candidate replaced meanwhile: not counted with the new one.
        if seen.revision.as_deref() != Some(&*candidate.revision) {
            continue;
        }
        seen.tally.add(change.as_ref());
        let Some(change) = change else {
            continue;
        };
        shared.metrics.changed.inc();
        if change.transition.is_flip() {
            shared
                .metrics
                .flip(change.transition.from, change.transition.to);
        }
        if seen.last.len() >= LAST_CHANGES {
            seen.last.pop_front();
        }
        seen.last.push_back(LastChange {
            request_id: request.request_id,
            decided_at,
            live_revision,
            transition: change.transition,
            before: change.before,
            after: change.after,
            measures: change.measures,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::request::parse_decide;

    #[test]
    fn a_full_queue_drops_shadow_work_and_counts_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let sources = Sources::new(
            root.join("policies"),
            vec![root.join("geo-data/geo-whois-asn-country.mmdb")],
        );
        let metrics = crate::server::metrics::Metrics::new().unwrap();
        // No worker reads the queue: the first two fill it, the rest are dropped.
        let (shadow, jobs) = Shadow::new(sources, None, 2, metrics.shadow.clone());
        let live = Snapshot::build(shadow.sources().clone()).unwrap();
        let request = parse_decide(
            br#"{"action": "open_account", "customer": {"id": "c", "name": "Ann Lee"}}"#,
        )
        .unwrap();
        for _ in 0..5 {
            shadow.offer(request.clone(), decide(&live, &request));
        }
        assert_eq!(metrics.shadow.dropped.get(), 3);
        assert_eq!(shadow.status().queue.dropped, 3);
        // What was queued is decided once a worker runs.
        let shared = shadow.shared.clone();
        drop(shadow);
        work(&shared, &jobs);
        assert_eq!(metrics.shadow.decisions.get(), 2);
        assert_eq!(shared.seen().tally.unchanged, 2);
    }
}
