//! Prometheus metrics. Handles for the decision path are created once, so
//! recording a decision is a few atomic operations, never a lock or a map lookup.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use portcullis_core::decision::Outcome;
use portcullis_core::lifecycle::MeasureState;

#[derive(Debug, thiserror::Error)]
#[error("cannot register metric: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// What the snapshot gauges show: the snapshot in force.
#[derive(Debug, Clone, Copy)]
pub struct InForce<'a> {
    pub revision: &'a str,
    pub loaded_at: std::time::SystemTime,
    pub policies: usize,
    pub designations: usize,
}

/// How a request reached the service: the `transport` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The JSON API.
    Http,
    /// `portcullis.v1.Decisions` (`serve --grpc-listen`).
    Grpc,
}

impl Transport {
    /// Both, in label order.
    pub const ALL: [Transport; 2] = [Self::Http, Self::Grpc];

    /// `http` or `grpc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Grpc => "grpc",
        }
    }
}

/// Every metric Portcullis exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// By transport, then by outcome.
    decisions: [[IntCounter; 3]; 2],
    decision_seconds: Histogram,
    rejected: IntCounterVec,
    reloads: IntCounterVec,
    reload_requests: IntCounterVec,
    reload_seconds: Histogram,
    revision: IntGaugeVec,
    loaded_at: IntGauge,
    policies: IntGauge,
    designations: IntGauge,
    measures: IntGaugeVec,
    /// Decision records (zero while recording is off).
    pub records: RecordsMetrics,
    /// Shadow evaluation (zero while it is off).
    pub shadow: ShadowMetrics,
    /// Serving from a bundle (absent while it is off).
    pub bundle: crate::server::bundle::BundleMetrics,
}

/// Metrics of shadow evaluation (`serve --shadow`), shared with its worker;
/// zero while it is off.
#[derive(Clone)]
pub struct ShadowMetrics {
    /// Live requests decided on the candidate too.
    pub decisions: IntCounter,
    /// Of those, answers that changed in anything (a flip or same decision, other reasons).
    pub changed: IntCounter,
    flips: IntCounterVec,
    /// Live requests not offered to the candidate: its queue was full.
    pub dropped: IntCounter,
    reloads: IntCounterVec,
}

impl ShadowMetrics {
    fn new(registry: &Registry) -> Result<Self, MetricsError> {
        let decisions = IntCounter::new(
            "shadow_decisions_total",
            "Live requests decided on the shadow candidate as well",
        )?;
        let changed = IntCounter::new(
            "shadow_changed_total",
            "Shadow decisions whose answer differs from the live one in anything",
        )?;
        let flips = IntCounterVec::new(
            Opts::new(
                "shadow_flips_total",
                "Shadow decisions whose decision differs from the live one, by transition",
            ),
            &["from", "to"],
        )?;
        let dropped = IntCounter::new(
            "shadow_dropped_total",
            "Live requests not decided on the candidate because its queue was full",
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "shadow_reloads_total",
                "Builds of the shadow candidate, by result",
            ),
            &["result"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(changed.clone()))?;
        registry.register(Box::new(flips.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        Ok(Self {
            decisions,
            changed,
            flips,
            dropped,
            reloads,
        })
    }

    /// One flip from `from` to `to`.
    pub fn flip(&self, from: Outcome, to: Outcome) {
        self.flips
            .with_label_values(&[from.as_str(), to.as_str()])
            .inc();
    }

    /// One build of the candidate: `success` or `failure`.
    pub fn reload(&self, result: &str) {
        self.reloads.with_label_values(&[result]).inc();
    }
}

/// Metrics of decision records, shared with the writer thread.
#[derive(Clone)]
pub struct RecordsMetrics {
    pub written: IntCounter,
    pub queue_depth: IntGauge,
    pub backpressure_seconds: Histogram,
    pub write_errors: IntCounter,
    pub healthy: IntGauge,
    pub fsync_seconds: Histogram,
    pub checkpoints: IntCounter,
    pub checkpoint_failures: IntCounterVec,
}

impl RecordsMetrics {
    fn new(registry: &Registry) -> Result<Self, MetricsError> {
        let written = IntCounter::new("records_written_total", "Decision records written")?;
        let queue_depth = IntGauge::new(
            "records_queue_depth",
            "Messages waiting for the records writer (one per request; a batch is one)",
        )?;
        let backpressure_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "records_backpressure_wait_seconds",
                "Time a decision waited for room in the full records queue, in seconds",
            )
            .buckets(vec![1e-5, 1e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0]),
        )?;
        let write_errors = IntCounter::new(
            "records_write_errors_total",
            "Failed writes or syncs of decision records (decisions are refused meanwhile)",
        )?;
        let healthy = IntGauge::new(
            "records_healthy",
            "1 while decision records can be written, else 0",
        )?;
        let fsync_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "records_fsync_duration_seconds",
                "Time of one fsync of a records file, in seconds",
            )
            .buckets(vec![
                1e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.5, 1.0,
            ]),
        )?;
        let checkpoints = IntCounter::new(
            "records_checkpoints_total",
            "Signed checkpoints written into the records chain",
        )?;
        let checkpoint_failures = IntCounterVec::new(
            Opts::new(
                "records_checkpoint_failures_total",
                "Checkpoints not written: into the chain (`where=\"chain\"`, retried at the next occasion) or to --records-checkpoint-out (`where=\"copy\"`)",
            ),
            &["where"],
        )?;
        registry.register(Box::new(checkpoints.clone()))?;
        registry.register(Box::new(checkpoint_failures.clone()))?;
        registry.register(Box::new(written.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(backpressure_seconds.clone()))?;
        registry.register(Box::new(write_errors.clone()))?;
        registry.register(Box::new(healthy.clone()))?;
        registry.register(Box::new(fsync_seconds.clone()))?;
        Ok(Self {
            written,
            queue_depth,
            backpressure_seconds,
            write_errors,
            healthy,
            fsync_seconds,
            checkpoints,
            checkpoint_failures,
        })
    }
}

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new_custom(Some("portcullis".into()), None)?;
        let decisions_vec = IntCounterVec::new(
            Opts::new(
                "decisions_total",
                "Decisions answered, by outcome and transport (http, grpc)",
            ),
            &["decision", "transport"],
        )?;
        let decisions = Transport::ALL.map(|t| {
            Outcome::ALL.map(|o| decisions_vec.with_label_values(&[o.as_str(), t.as_str()]))
        });
        let decision_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "decision_duration_seconds",
                "Time to decide one request (enrichment and evaluation), in seconds",
            )
            .buckets(vec![
                5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2,
            ]),
        )?;
        let rejected = IntCounterVec::new(
            Opts::new(
                "rejected_requests_total",
                "Requests rejected before a decision, by error code and transport",
            ),
            &["code", "transport"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new("reloads_total", "Snapshot reloads, by result"),
            &["result"],
        )?;
        let reload_requests = IntCounterVec::new(
            Opts::new(
                "reload_requests_total",
                "Reloads asked for, by trigger; requests that arrive while a build runs share the next build",
            ),
            &["trigger"],
        )?;
        let reload_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "reload_duration_seconds",
                "Time to build (read, validate, test) a snapshot on reload, in seconds",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let revision = IntGaugeVec::new(
            Opts::new(
                "snapshot_info",
                "The snapshot in force (value 1), labelled by revision",
            ),
            &["revision"],
        )?;
        let loaded_at = IntGauge::new(
            "snapshot_loaded_timestamp_seconds",
            "Unix time the snapshot in force was loaded",
        )?;
        let policies = IntGauge::new("policies", "Policies in the snapshot in force")?;
        let designations = IntGauge::new(
            "designations",
            "Designated persons in the snapshot in force",
        )?;
        let measures = IntGaugeVec::new(
            Opts::new(
                "measures",
                "Measures (policies with @measure or a window) of the snapshot in force, by state",
            ),
            &["state"],
        )?;
        registry.register(Box::new(measures.clone()))?;
        registry.register(Box::new(decisions_vec))?;
        registry.register(Box::new(decision_seconds.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(reload_seconds.clone()))?;
        registry.register(Box::new(reload_requests.clone()))?;
        registry.register(Box::new(revision.clone()))?;
        registry.register(Box::new(loaded_at.clone()))?;
        registry.register(Box::new(policies.clone()))?;
        registry.register(Box::new(designations.clone()))?;
        let records = RecordsMetrics::new(&registry)?;
        let shadow = ShadowMetrics::new(&registry)?;
        let bundle = crate::server::bundle::BundleMetrics::new(&registry)?;
        for result in ["success", "failure", "refused"] {
            reloads.with_label_values(&[result]);
        }
        Ok(Self {
            registry,
            decisions,
            decision_seconds,
            rejected,
            reloads,
            reload_requests,
            reload_seconds,
            revision,
            loaded_at,
            policies,
            designations,
            measures,
            records,
            shadow,
            bundle,
        })
    }

    pub fn record_decision(&self, transport: Transport, outcome: Outcome, seconds: f64) {
        let [http, grpc] = &self.decisions;
        let [allow, deny, conditional] = match transport {
            Transport::Http => http,
            Transport::Grpc => grpc,
        };
        match outcome {
            Outcome::Allow => allow.inc(),
            Outcome::Deny => deny.inc(),
            Outcome::Conditional => conditional.inc(),
        }
        self.decision_seconds.observe(seconds);
    }

    pub fn record_rejection(&self, transport: Transport, code: &str) {
        self.rejected
            .with_label_values(&[code, transport.as_str()])
            .inc();
    }

    /// One finished build: `result` is `success`, `failure` (invalid inputs)
    /// or `refused` (valid, but it would shrink the designations beyond the guard).
    pub fn record_reload(&self, result: &str, seconds: f64) {
        self.reloads.with_label_values(&[result]).inc();
        self.reload_seconds.observe(seconds);
    }

    /// One reload asked for (by a file change, a signal or the admin endpoint).
    pub fn record_reload_request(&self, trigger: &str) {
        self.reload_requests.with_label_values(&[trigger]).inc();
    }

    /// Points the snapshot gauges at a newly published snapshot.
    pub fn set_in_force(&self, in_force: &InForce<'_>) {
        self.revision.reset();
        self.revision.with_label_values(&[in_force.revision]).set(1);
        let loaded = in_force
            .loaded_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.loaded_at.set(loaded);
        self.policies
            .set(i64::try_from(in_force.policies).unwrap_or(i64::MAX));
        self.designations
            .set(i64::try_from(in_force.designations).unwrap_or(i64::MAX));
    }

    /// How many measures are in each state (set when metrics are read, so
    /// that they are right at the instant of the scrape).
    pub fn set_measures(&self, counts: &[(MeasureState, usize)]) {
        for (state, n) in counts {
            self.measures
                .with_label_values(&[state.as_str()])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// The records writer reports into the `records_*` metrics.
impl portcullis_audit::Observer for RecordsMetrics {
    fn written(&self, records: u64) {
        self.written.inc_by(records);
    }

    fn queue_depth(&self, messages: usize) {
        self.queue_depth
            .set(i64::try_from(messages).unwrap_or(i64::MAX));
    }

    fn backpressure(&self, waited: std::time::Duration) {
        self.backpressure_seconds.observe(waited.as_secs_f64());
    }

    fn write_error(&self) {
        self.write_errors.inc();
    }

    fn healthy(&self, healthy: bool) {
        self.healthy.set(i64::from(healthy));
    }

    fn fsync(&self, took: std::time::Duration) {
        self.fsync_seconds.observe(took.as_secs_f64());
    }

    fn checkpoint(&self, written: bool, copied: bool) {
        if written {
            self.checkpoints.inc();
        } else {
            self.checkpoint_failures.with_label_values(&["chain"]).inc();
        }
        if !copied {
            self.checkpoint_failures.with_label_values(&["copy"]).inc();
        }
    }
}
