//! Decision records: one durable, tamper-evident, pseudonymised record per
//! decision, written as JSON Lines under the records directory.
//!
//! The HTTP handlers decide first (the engine stays pure), then build the record
//! from the request and the decision ([`record`]), with identity fields
//! pseudonymised ([`pseudo`]), and hand it to the [`Recorder`]. A dedicated
//! writer thread ([`writer`]) chains ([`chain`]), writes and syncs records; a
//! decision is answered only once its record is accepted (queued, or written
//! and fsynced with `--records-sync always`), and decisions are refused with a
//! 503 while records cannot be written. [`verify`] and [`query`] read the files.

pub mod chain; // the hash chain, line format and file names
pub mod checkpoint; // signed checkpoints
pub mod compress; // zstd compression of closed record files
pub mod export; // `records export` and `records check-export`
pub mod merkle; // Merkle roots of checkpoint intervals, inclusion proofs
pub mod pseudo; // keyed hashes of identity fields
pub mod query; // `records query`
pub mod record; // the record of one decision
pub mod report; // `records report`
pub mod retention; // retention by account, legal holds
pub mod shipped; // `records verify --shipped`
pub mod verify; // `records verify`
pub mod writer; // the writer thread: groups, sync, rotation, recovery, retention

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use portcullis_core::decision::Decision;
use portcullis_core::request::DecideRequest;
pub use pseudo::{FieldMode, FieldModes, Key, KeyError, Pseudonymiser, default_key_path};
pub use writer::{SyncMode, WriterConfig, WriterError};

/// What the recorder reports as it works, for metrics: the service feeds its
/// Prometheus registry from it; this crate knows no registry. Every method
/// defaults to doing nothing.
pub trait Observer: Send + Sync + 'static {
    /// Records written (not yet necessarily synced).
    fn written(&self, _records: u64) {}
    /// Messages waiting in the queue after one was added.
    fn queue_depth(&self, _messages: usize) {}
    /// How long a decision waited for room in the full queue.
    fn backpressure(&self, _waited: Duration) {}
    /// A write or sync failed (decisions are refused until one succeeds).
    fn write_error(&self) {}
    /// Whether records can be written.
    fn healthy(&self, _healthy: bool) {}
    /// How long one fsync took.
    fn fsync(&self, _took: Duration) {}
    /// A checkpoint was written into the chain (or not), and appended to the
    /// copy (`true` too when there is no copy).
    fn checkpoint(&self, _written: bool, _copied: bool) {}
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// Start a new file once one holds this many bytes (`--records-max-file-bytes`).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Start a new file once one is this old (`--records-rotate-every`).
pub const DEFAULT_ROTATE_EVERY: Duration = Duration::from_secs(3600);
/// Delete whole files whose newest record is older than this (`--records-retain-days`).
pub const DEFAULT_RETAIN_DAYS: u32 = 1095;
/// Messages the queue holds before decisions wait (`--records-queue`).
pub const DEFAULT_QUEUE: usize = 4096;

/// Everything `serve` needs to record decisions.
#[derive(Debug, Clone)]
pub struct RecordsConfig {
    pub writer: WriterConfig,
    /// The pseudonymisation key; `None` uses (or creates) the default key file.
    pub key_file: Option<PathBuf>,
    pub modes: FieldModes,
    /// What each action's record keeps of the customer (`--records-profile`).
    pub profiles: record::Profiles,
    /// Messages (one per request, a batch is one) the queue holds before
    /// decisions wait for the writer.
    pub queue: usize,
}

impl RecordsConfig {
    /// The defaults for a directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            writer: WriterConfig {
                dir: dir.into(),
                replica: None,
                sync: SyncMode::Interval,
                max_file_bytes: DEFAULT_MAX_FILE_BYTES,
                rotate_every: DEFAULT_ROTATE_EVERY,
                retain_days: Some(DEFAULT_RETAIN_DAYS),
                checkpoint: None,
                compress: true,
                account_retention: None,
            },
            key_file: None,
            modes: FieldModes::default(),
            profiles: record::Profiles::default(),
            queue: DEFAULT_QUEUE,
        }
    }
}

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Writer(#[from] WriterError),
}

/// Why an account closure was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ClosureError {
    #[error(
        "records drop customer ids (`--records-identity drop`): a closure could not name the account"
    )]
    Dropped,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// Why a record was not accepted: the decision must not be answered.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("decision records cannot be written")]
    NotWritable,
    #[error("the records writer has stopped")]
    Stopped,
    #[error("the decision record cannot be built: {0}")]
    Build(#[from] serde_json::Error),
}

/// What `/v1/status` shows about records.
#[derive(Debug, Serialize)]
pub struct RecordsStatus {
    pub dir: PathBuf,
    /// The chain this process writes (`--replica-id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<chain::ReplicaId>,
    pub sync: SyncMode,
    pub healthy: bool,
    /// Why records cannot be written, while they cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub current_file: String,
    /// The hash of the last record written: anchor it elsewhere to detect a
    /// truncated tail.
    pub last_hash: String,
    pub pseudonymisation: FieldModes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// How long a refusal waits for a writer thread that is ending to publish
/// that it has (it takes microseconds; the bound only guards a wedged thread).
const WRITER_GONE_WAIT: Duration = Duration::from_secs(2);

/// The handle decisions are recorded through.
pub struct Recorder {
    tx: mpsc::Sender<writer::Msg>,
    shared: Arc<writer::Shared>,
    pseudo: Pseudonymiser,
    profiles: record::Profiles,
    sync: SyncMode,
    dir: PathBuf,
    replica: Option<chain::ReplicaId>,
    observer: Arc<dyn Observer>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.dir)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Loads (or creates) the key, opens the directory and starts the writer
    /// thread. Needs no async runtime.
    pub fn start(config: RecordsConfig, observer: Arc<dyn Observer>) -> Result<Self, RecordsError> {
        let dir = config.writer.dir.clone();
        let key = match &config.key_file {
            Some(path) => Some(Key::load(path)?),
            None if config.modes.any_hashed() => {
                let path = default_key_path(&dir);
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|cause| KeyError::Create {
                        path: path.clone(),
                        cause,
                    })?;
                }
                let (key, created) = Key::load_or_create(&path)?;
                if created {
                    tracing::warn!(key_file = %path.display(), "generated a records pseudonymisation key (mode 0600); in production keep the key in a secret store and pass --records-key-file: records hashed with a lost key cannot be looked up by customer");
                } else {
                    tracing::warn!(key_file = %path.display(), "records pseudonymisation key read from beside the records directory; in production keep it in a secret store and pass --records-key-file");
                }
                Some(key)
            }
            None => None,
        };
        let pseudo = Pseudonymiser::new(key, config.modes);
        let profiles = config.profiles;
        let shared = Arc::new(writer::Shared::new());
        let sync = config.writer.sync;
        let replica = config.writer.replica.clone();
        let w = writer::Writer::open(config.writer, observer.clone(), shared.clone())?;
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        w.spawn(rx)?;
        tracing::info!(dir = %dir.display(), replica = %replica.as_ref().map_or("", chain::ReplicaId::as_str), ?sync, key_id = ?pseudo.key_id(), "recording decisions");
        Ok(Self {
            tx,
            shared,
            pseudo,
            profiles,
            sync,
            dir,
            replica,
            observer,
        })
    }

    /// Whether records can be written; decisions are refused while not.
    /// False for good once the writer thread has ended, however it ended.
    pub fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::SeqCst) && !self.shared.stopped.load(Ordering::SeqCst)
    }

    /// Makes the writer thread panic when it next drains its queue, before
    /// writing what was queued with the request. For tests of what a writer
    /// failure does: no command or endpoint leads here.
    #[doc(hidden)]
    pub async fn inject_writer_panic(&self) {
        let _ = self.tx.send(writer::Msg::Panic).await;
    }

    /// Runs retention now, as its daily turn does (with retention by
    /// account: planned on its own thread, applied when ready). For tests:
    /// no command or endpoint leads here.
    #[doc(hidden)]
    pub async fn run_retention_now(&self) {
        let _ = self.tx.send(writer::Msg::Retention).await;
    }

    pub fn pseudonymiser(&self) -> &Pseudonymiser {
        &self.pseudo
    }

    /// The record of one decision, as a JSON object ready to be chained.
    pub fn build(&self, req: &DecideRequest, decision: &Decision) -> Result<Vec<u8>, Unavailable> {
        let record = record::DecisionRecord::new(
            req,
            decision,
            &self.pseudo,
            SystemTime::now(),
            self.profiles.of(req.action),
        );
        Ok(record::to_line(&record)?)
    }

    /// Records that an account was closed (`POST /v1/accounts/{id}/closed`):
    /// an `account_closed` record naming the customer as decisions name it,
    /// from which retention by account counts its keep period. Returns the
    /// stored form of the id and the time.
    pub async fn account_closed(
        &self,
        customer_id: &str,
        reason: Option<&str>,
    ) -> Result<(String, String), ClosureError> {
        let stored = self
            .pseudo
            .apply(
                self.pseudo.modes.identity,
                pseudo::FieldKind::CustomerId,
                customer_id,
            )
            .ok_or(ClosureError::Dropped)?;
        let time = chain::record_time(SystemTime::now());
        let mut record = serde_json::json!({
            "kind": "account_closed",
            "time": time,
            "customer": {"id": stored},
        });
        if let (Some(r), Some(object)) = (reason, record.as_object_mut()) {
            object.insert("reason".into(), serde_json::Value::from(r));
        }
        let line = serde_json::to_vec(&record).map_err(Unavailable::from)?;
        self.submit(vec![line]).await?;
        Ok((stored, time))
    }

    /// Hands records to the writer. Waits while the queue is full
    /// (back-pressure, timed in a metric) and, with `always`, until they are
    /// written and fsynced. An error means the decisions must not be answered.
    pub async fn submit(&self, lines: Vec<Vec<u8>>) -> Result<(), Unavailable> {
        if !self.healthy() {
            return Err(Unavailable::NotWritable);
        }
        let (ack, done) = match self.sync {
            SyncMode::Always => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            SyncMode::Interval => (None, None),
        };
        let msg = writer::Msg::Records { lines, ack };
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                let waited = Instant::now();
                if self.tx.send(msg).await.is_err() {
                    return Err(self.writer_gone().await);
                }
                self.observer.backpressure(waited.elapsed());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(self.writer_gone().await),
        }
        let depth = self.tx.max_capacity() - self.tx.capacity();
        self.observer.queue_depth(depth);
        match done {
            None => Ok(()),
            Some(rx) => match rx.await {
                Ok(true) => Ok(()),
                Ok(false) => Err(Unavailable::NotWritable),
                Err(_) => Err(self.writer_gone().await),
            },
        }
    }

    /// The writer is gone (its queue closed, or an acknowledgement dropped
    /// while its thread unwinds): waits, briefly, until the thread has said so
    /// and why, so that no decision is refused while readiness and status
    /// still call records writable.
    async fn writer_gone(&self) -> Unavailable {
        let deadline = Instant::now() + WRITER_GONE_WAIT;
        while !self.shared.stopped.load(Ordering::SeqCst) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.shared.healthy.store(false, Ordering::SeqCst);
        Unavailable::Stopped
    }

    /// Writes everything queued, fsyncs and stops the writer; later records are
    /// refused. Returns once the writer has synced (or at the timeout).
    pub async fn close(&self, timeout: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(writer::Msg::Close(tx)).await.is_err() {
            return;
        }
        if tokio::time::timeout(timeout, rx).await.is_err() {
            tracing::error!(?timeout, "records writer did not finish in time");
        }
        self.shared.healthy.store(false, Ordering::SeqCst);
        self.shared.stopped.store(true, Ordering::SeqCst);
    }

    pub fn status(&self) -> RecordsStatus {
        let read = |m: &Mutex<String>| m.lock().map(|s| s.clone()).unwrap_or_default();
        RecordsStatus {
            dir: self.dir.clone(),
            replica: self.replica.clone(),
            sync: self.sync,
            healthy: self.healthy(),
            reason: self.shared.reason(),
            current_file: read(&self.shared.current_file),
            last_hash: read(&self.shared.last_hash),
            pseudonymisation: self.pseudo.modes,
            key_id: self.pseudo.key_id().map(str::to_owned),
        }
    }
}

/// Appends the lower-case hex of `bytes` (`hex::encode` builds its `String`
/// one `char` at a time, which showed in the profile: three pseudonyms and two
/// chain hashes per record).
pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.extend_from_slice(&[digit(b >> 4), digit(b & 0xf)]);
    }
}

/// The lower-case hex of `bytes`.
pub(crate) fn hex_string(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    // Only ASCII hex digits were pushed.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_the_lower_case_hex_of_every_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(super::hex_string(&bytes), hex::encode(&bytes));
        assert_eq!(super::hex_string(&[]), "");
    }
}
