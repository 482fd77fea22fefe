//! The records writer: one dedicated thread owns the record files. Decisions
//! reach it through a bounded queue; it chains, writes and syncs them in groups
//! (one `write` and at most one `fsync` for everything drained at once).
//!
//! - `always`: every group is fsynced before its senders are acknowledged, so an
//!   answered decision is on disk.
//! - `interval`: senders are not waited for; queued records are written every
//!   10 ms (so queueing one never wakes the writer) and fsynced every 100 ms.
//!
//! A failed write or sync marks the writer unhealthy (decisions are refused) and
//! is retried every 250 ms. The failed group is cut off the file (`set_len`) and
//! the writer moves to a new file whose first record is a *recovery* record
//! naming how many bytes of the old file are valid; the chain continues from the
//! last valid record. The same recovery record seals a torn tail found at
//! start-up (a crash in the middle of a write): every start begins a new file.

use std::fs::File;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::chain::{self, FileName, GENESIS, Hash, ReplicaId};
use super::merkle;
use crate::Observer;

/// When the writer fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Before the decision is answered (group commit).
    Always,
    /// Every 100 ms.
    Interval,
}

/// How often `interval` syncs.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);
/// How often a failed write is retried.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// How often retention runs after start-up.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(86_400);
/// Most queued messages written as one group.
const MAX_GROUP: usize = 1024;
/// With `interval`, how long records gather in the queue before a write.
const GATHER: Duration = Duration::from_millis(10);

/// Where and how records are written.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub dir: PathBuf,
    /// The chain this process writes (`--replica-id`); `None` writes the
    /// chain without a replica id.
    pub replica: Option<chain::ReplicaId>,
    pub sync: SyncMode,
    /// A file is closed once it holds this many bytes (checked between groups).
    pub max_file_bytes: u64,
    /// A file is closed once it is this old (checked when writing).
    pub rotate_every: Duration,
    /// Whole files whose newest record is older than this many days are deleted.
    pub retain_days: Option<u32>,
    /// Signed checkpoints (`--records-signing-key`); `None`: none.
    pub checkpoint: Option<CheckpointConfig>,
    /// Closed files are compressed with zstd (`--records-compress`).
    pub compress: bool,
    /// Retention by account (`--records-retention`), instead of by file age.
    pub account_retention: Option<crate::retention::Policy>,
}

/// When and how the writer signs checkpoints (`--records-checkpoint N,DURATION`).
#[derive(Clone)]
pub struct CheckpointConfig {
    pub key: Arc<portcullis_keys::SigningKey>,
    /// After this many records…
    pub every_records: u64,
    /// …or this long after the last one (when records were written since).
    pub every: Duration,
    /// Each checkpoint is also appended (and synced) here (`--records-checkpoint-out`).
    pub out: Option<PathBuf>,
}

impl std::fmt::Debug for CheckpointConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointConfig")
            .field("key_id", &self.key.public().id())
            .field("every_records", &self.every_records)
            .field("every", &self.every)
            .field("out", &self.out)
            .finish()
    }
}

/// The defaults of `--records-checkpoint`.
pub const DEFAULT_CHECKPOINT_RECORDS: u64 = 10_000;
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// What handlers send.
pub(super) enum Msg {
    /// Record objects (JSON, without `prev` / `hash`); the ack says whether they
    /// are written (and synced, with `always`).
    Records {
        lines: Vec<Vec<u8>>,
        ack: Option<oneshot::Sender<bool>>,
    },
    /// Write what is queued, sync, acknowledge and stop.
    Close(oneshot::Sender<()>),
    /// Panic in the writer thread before writing what is drained with it
    /// (tests of what a writer failure does; see `Recorder::inject_writer_panic`).
    Panic,
    /// Run retention now, as its daily turn does (tests; see
    /// `Recorder::run_retention_now`).
    Retention,
}

/// State the writer shares with the service.
#[derive(Debug)]
pub(super) struct Shared {
    pub healthy: AtomicBool,
    pub last_hash: Mutex<String>,
    pub current_file: Mutex<String>,
    /// Why records cannot be written, while they cannot; set for good when the
    /// writer thread has stopped.
    pub reason: Mutex<Option<String>>,
    /// The writer thread has ended (it stopped or failed): records are never
    /// writable again in this process.
    pub stopped: AtomicBool,
}

impl Shared {
    pub fn new() -> Self {
        Self {
            healthy: AtomicBool::new(false),
            last_hash: Mutex::new(String::new()),
            current_file: Mutex::new(String::new()),
            reason: Mutex::new(None),
            stopped: AtomicBool::new(false),
        }
    }

    pub fn reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }

    fn set_reason(&self, reason: Option<String>) {
        if let Ok(mut r) = self.reason.lock() {
            *r = reason;
        }
    }

    /// Marks records unwritable for the rest of the process. The reason is
    /// set first: whoever sees `stopped` can read why.
    fn stop(&self, reason: String) {
        self.set_reason(Some(reason));
        self.healthy.store(false, Ordering::SeqCst);
        self.stopped.store(true, Ordering::SeqCst);
    }
}

/// Why the writer could not start.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("cannot create the records directory `{path}`: {cause}")]
    CreateDir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot read `{path}`: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "cannot continue the record chain: line {line} of `{path}` is not a record; run `portcullis records verify` and move damaged files aside"
    )]
    Unreadable { path: PathBuf, line: usize },
    #[error("cannot write records in `{path}`: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot start the records writer: {0}")]
    Thread(std::io::Error),
    #[error(
        "another process writes the records of {chain} in `{dir}` (it holds `{lock}`): give each process its own --replica-id or its own --records directory"
    )]
    Locked {
        dir: PathBuf,
        chain: String,
        lock: PathBuf,
    },
    #[error("cannot lock `{path}`: {cause}")]
    Lock {
        path: PathBuf,
        cause: std::io::Error,
    },
}

struct Segment {
    name: FileName,
    file: File,
    len: u64,
    records: u64,
    opened: Instant,
}

#[derive(Debug, Clone, Serialize)]
struct Discarded {
    file: String,
    valid_bytes: u64,
}

pub(super) struct Writer {
    cfg: WriterConfig,
    /// Held open (and locked) until the writer closes: one writer per chain.
    lock: Option<File>,
    /// Records written since the last checkpoint, and when it was.
    since_checkpoint: u64,
    last_checkpoint: Instant,
    /// With checkpoints on: the hash of the record before those the next
    /// checkpoint covers, and their Merkle tree so far (every record since
    /// the last checkpoint, whatever its kind).
    interval_since: Hash,
    interval: merkle::Frontier,
    file: Option<Segment>,
    last_name: Option<FileName>,
    last_hash: Hash,
    /// Files whose tail is to be declared discarded by the next new file.
    recovery: Vec<Discarded>,
    recovery_reason: String,
    dirty: bool,
    last_sync: Instant,
    last_failure: Option<Instant>,
    /// Compresses closed files in the background (`--records-compress`).
    compressor: Option<crate::compress::Compressor>,
    /// Held by the compressor while it replaces a file by its copy, and by
    /// retention while it deletes.
    files_guard: Arc<Mutex<()>>,
    /// Retention by account being planned on a thread of its own.
    account_plan: Option<PendingPlan>,
    observer: Arc<dyn Observer>,
    shared: Arc<Shared>,
}

fn io_other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Syncs a directory, so that files created, renamed or removed in it stay so.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

// Opening and recovery: the chain continues from the last complete record of
// the directory; what a crash or a failed write left behind is declared by a
// recovery record at the head of the next file.
impl Writer {
    /// Opens the directory, continues the chain from its last complete record,
    /// seals a torn tail with a recovery record, opens a new file and applies
    /// retention. Everything here is checked before the service listens.
    pub(super) fn open(
        cfg: WriterConfig,
        observer: Arc<dyn Observer>,
        shared: Arc<Shared>,
    ) -> Result<Self, WriterError> {
        let dir = &cfg.dir;
        create_dir(dir)?;
        let lock = lock_chain(dir, cfg.replica.as_ref())?;
        let files =
            chain::list_chain(dir, cfg.replica.as_ref()).map_err(|cause| WriterError::Read {
                path: dir.clone(),
                cause,
            })?;
        let (last_hash, recovery) = continue_chain(dir, &files)?;
        let (interval_since, interval) = if cfg.checkpoint.is_some() {
            resume_interval(dir, &files, last_hash)?
        } else {
            (last_hash, merkle::Frontier::new())
        };
        if let Some(d) = recovery.last() {
            tracing::warn!(file = %d.file, valid_bytes = d.valid_bytes, "records: torn final record found (the service stopped mid-write); it is discarded and acknowledged by a recovery record");
        }
        let mut writer = Self {
            last_name: files.last().cloned(),
            cfg,
            lock: Some(lock),
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            interval_since,
            interval,
            file: None,
            last_hash,
            recovery,
            recovery_reason: "torn final record found at start-up".into(),
            dirty: false,
            last_sync: Instant::now(),
            last_failure: None,
            compressor: None,
            files_guard: Arc::new(Mutex::new(())),
            account_plan: None,
            observer,
            shared,
        };
        writer
            .write(&[], true)
            .map_err(|cause| WriterError::Write {
                path: writer.cfg.dir.clone(),
                cause,
            })?;
        // Records of an earlier run no checkpoint covers yet are signed by
        // this run's first one, even if it writes nothing else.
        writer.since_checkpoint = writer.interval.len();
        writer.publish();
        writer.set_healthy(true);
        writer.retention();
        if writer.cfg.compress {
            writer
                .start_compressor(&files)
                .map_err(|cause| WriterError::Write {
                    path: writer.cfg.dir.clone(),
                    cause,
                })?;
        }
        Ok(writer)
    }

    /// Starts compressing closed files: those of the chain left plain by an
    /// earlier run (all but the one open now), after removing what a stop
    /// in the middle of compressing left.
    fn start_compressor(&mut self, files: &[FileName]) -> std::io::Result<()> {
        let compressor = crate::compress::Compressor::start(self.files_guard.clone())?;
        for f in files {
            let path = self.cfg.dir.join(&f.name);
            let tmp = self.cfg.dir.join(format!("{}.zst.tmp", f.base()));
            if tmp.exists() {
                std::fs::remove_file(&tmp)?;
            }
            if !f.compressed {
                compressor.send(path);
            }
        }
        self.compressor = Some(compressor);
        Ok(())
    }

    fn recovery_record(&self) -> std::io::Result<Vec<u8>> {
        serde_json::to_vec(&json!({
            "kind": "recovery",
            "time": chain::record_time(SystemTime::now()),
            "reason": self.recovery_reason,
            "discarded": self.recovery,
        }))
        .map_err(io_other)
    }

    /// Cuts a failed group off the current file and leaves it: the next write
    /// opens a new file that declares the valid length of this one. An empty
    /// file that could be cut back to empty is kept for the retry.
    fn discard(&mut self, valid: u64) {
        let Some(seg) = self.file.take() else { return };
        let cut = seg.file.set_len(valid).is_ok();
        if cut && valid == 0 {
            self.file = Some(Segment {
                len: 0,
                records: 0,
                ..seg
            });
            return;
        }
        self.recovery.push(Discarded {
            file: seg.name.name.clone(),
            valid_bytes: valid,
        });
    }
}

/// Takes the lock of `replica`'s chain in `dir` (`records-<replica>.lock`), so
/// that two processes never write one chain. The lock goes with the process.
fn lock_chain(dir: &Path, replica: Option<&ReplicaId>) -> Result<File, WriterError> {
    let path = dir.join(chain::lock_name(replica));
    let lock_error = |cause| WriterError::Lock {
        path: path.clone(),
        cause,
    };
    match try_lock(&path).map_err(lock_error)? {
        Some(file) => Ok(file),
        None => Err(WriterError::Locked {
            dir: dir.to_owned(),
            chain: match replica {
                Some(r) => format!("replica `{r}`"),
                None => "the chain without a replica id".to_owned(),
            },
            lock: path.clone(),
        }),
    }
}

/// The lock file at `path`, locked; `None` if another process holds it.
fn try_lock(path: &Path) -> std::io::Result<Option<File>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    let file = options.open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(cause)) => Err(cause),
    }
}

/// Creates the records directory (and its parents) if it does not exist.
fn create_dir(dir: &Path) -> Result<(), WriterError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o750);
    builder.create(dir).map_err(|cause| WriterError::CreateDir {
        path: dir.to_owned(),
        cause,
    })
}

/// Where the chain of the record `files` of `dir` continues: the hash of the
/// newest complete record (genesis if there is none), and the torn tails
/// (partial last lines) that a recovery record must declare discarded, oldest
/// file first.
fn continue_chain(dir: &Path, files: &[FileName]) -> Result<(Hash, Vec<Discarded>), WriterError> {
    let mut last_hash = GENESIS;
    let mut recovery = Vec::new();
    for f in files.iter().rev() {
        let path = dir.join(&f.name);
        let bytes = chain::read_file(&path).map_err(|cause| WriterError::Read {
            path: path.clone(),
            cause,
        })?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            recovery.push(Discarded {
                file: f.name.clone(),
                valid_bytes: complete as u64,
            });
        }
        let Some(body) = bytes
            .get(..complete.saturating_sub(1))
            .filter(|b| !b.is_empty())
        else {
            continue;
        };
        let last = body.rsplit(|b| *b == b'\n').next().unwrap_or_default();
        let line = bytecount_lines(body);
        last_hash = chain::stated_hash(last).ok_or(WriterError::Unreadable { path, line })?;
        break;
    }
    recovery.reverse();
    Ok((last_hash, recovery))
}

/// How many files holding records the writer looks back for the last
/// checkpoint at start-up (empty files, which idle restarts leave, do not
/// count). With checkpoints on, every file ends with one unless the process
/// died; a chain without any nearby (checkpoints just turned on) starts its
/// first interval at its head.
const RESUME_FILES: usize = 8;

/// Where the next checkpoint's interval starts when the writer opens a chain
/// whose head is `head`: after the chain's last checkpoint, with the hashes of
/// every complete record since, or, if none is in the last few files, at the
/// head.
fn resume_interval(
    dir: &Path,
    files: &[FileName],
    head: Hash,
) -> Result<(Hash, merkle::Frontier), WriterError> {
    if head == GENESIS {
        return Ok((GENESIS, merkle::Frontier::new()));
    }
    // Hashes since the last checkpoint, newest file first.
    let mut after: Vec<Vec<Hash>> = Vec::new();
    let mut read = 0;
    // Recovery records name the file just before theirs: the chain's last
    // files are enough.
    let recent = files
        .get(files.len().saturating_sub(64)..)
        .unwrap_or_default();
    let valid = crate::verify::valid_lengths(dir, recent).map_err(|e| WriterError::Read {
        path: e.path,
        cause: e.cause,
    })?;
    for f in files.iter().rev() {
        if read == RESUME_FILES {
            break;
        }
        let path = dir.join(&f.name);
        let mut bytes = chain::read_file(&path).map_err(|cause| WriterError::Read {
            path: path.clone(),
            cause,
        })?;
        // What a recovery record declares discarded is not in the chain.
        if let Some(len) = valid.get(f.base()) {
            bytes.truncate(*len);
        }
        if bytes.is_empty() {
            continue;
        }
        read += 1;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut hashes = Vec::new();
        let mut since = None;
        for line in bytes
            .get(..complete)
            .unwrap_or_default()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let Some(h) = chain::stated_hash(line) else {
                continue;
            };
            if chain::is_checkpoint(line) {
                since = Some(h);
                hashes.clear();
            } else {
                hashes.push(h);
            }
        }
        after.push(hashes);
        if let Some(since) = since {
            let mut frontier = merkle::Frontier::new();
            for h in after.iter().rev().flatten() {
                frontier.push(h);
            }
            return Ok((since, frontier));
        }
    }
    Ok((head, merkle::Frontier::new()))
}

// The writer thread: its loop drains the queue into groups and writes them,
// retries after a failure, syncs on time and runs retention.
impl Writer {
    pub(super) fn spawn(
        self,
        rx: mpsc::Receiver<Msg>,
    ) -> Result<std::thread::JoinHandle<()>, WriterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(WriterError::Thread)?;
        let shared = self.shared.clone();
        let observer = self.observer.clone();
        std::thread::Builder::new()
            .name("records-writer".into())
            .spawn(move || {
                // Whatever ends the writer (a close, or a panic anywhere in it),
                // records are unwritable from then on: the health flag says so,
                // and queued senders see their acknowledgement dropped.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    runtime.block_on(self.run(rx));
                }));
                observer.healthy(false);
                match outcome {
                    Ok(()) => shared.stop("the records writer has stopped".into()),
                    Err(payload) => {
                        let what = payload
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "unknown cause".into());
                        tracing::error!(panic = %what, "the records writer failed: refusing decisions (503) until the service is restarted");
                        shared.stop(format!("the records writer failed: {what}"));
                    }
                }
            })
            .map_err(WriterError::Thread)
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut next_retention = Instant::now() + RETENTION_INTERVAL;
        let mut retained: Vec<Vec<u8>> = Vec::new();
        let mut busy = false;
        loop {
            let deadline = self.deadline(next_retention);
            let Drained {
                group,
                close,
                disconnected,
            } = self
                .drain(&mut rx, deadline, busy, std::mem::take(&mut retained))
                .await;
            busy = group.messages >= MAX_GROUP;
            if group.panic {
                inject_panic();
            }
            if group.retention {
                next_retention = Instant::now();
            }
            if disconnected {
                retained = self.process(group);
                break;
            }
            if let Some(done) = close {
                self.close(&mut rx, group, done);
                return;
            }
            retained = self.write_or_refuse(group);
            self.upkeep(&mut next_retention);
        }
        self.finish(&retained);
    }

    /// When the loop wakes without a message: at the next retention, the next
    /// sync if writes are unsynced, the next retry after a failure.
    fn deadline(&self, next_retention: Instant) -> Instant {
        let mut deadline = next_retention;
        if self.dirty {
            deadline = deadline.min(self.last_sync + SYNC_INTERVAL);
        }
        if let Some(failed) = self.last_failure {
            deadline = deadline.min(failed + RETRY_INTERVAL);
        }
        if self.account_plan.is_some() {
            deadline = deadline.min(Instant::now() + PLAN_POLL);
        }
        deadline
    }

    /// Waits for a message (`always`: until `deadline`) or for the gathering
    /// tick (`interval`, unless the last group was full), then takes what is
    /// queued, up to [`MAX_GROUP`] messages or a close. `retained` (lines to
    /// retry) head the group.
    async fn drain(
        &self,
        rx: &mut mpsc::Receiver<Msg>,
        deadline: Instant,
        busy: bool,
        retained: Vec<Vec<u8>>,
    ) -> Drained {
        let mut group = Group::new(retained);
        let mut close = None;
        let mut disconnected = false;
        match self.cfg.sync {
            // Nobody waits for the write: gather on a tick, so that queueing a
            // record never has to wake this thread.
            SyncMode::Interval if !busy => {
                tokio::time::sleep_until(deadline.min(Instant::now() + GATHER)).await;
            }
            SyncMode::Interval => {}
            SyncMode::Always => match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => close = group.push(m),
                Ok(None) => disconnected = true,
                Err(_elapsed) => {}
            },
        }
        while close.is_none() && group.messages < MAX_GROUP {
            match rx.try_recv() {
                Ok(m) => close = group.push(m),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
        }
        Drained {
            group,
            close,
            disconnected,
        }
    }

    /// A close: stops the queue, takes what is still in it (acknowledging any
    /// other close), writes and syncs everything, then acknowledges `done`.
    fn close(&mut self, rx: &mut mpsc::Receiver<Msg>, mut group: Group, done: oneshot::Sender<()>) {
        rx.close();
        while let Ok(m) = rx.try_recv() {
            if let Some(other) = group.push(m) {
                let _ = other.send(());
            }
        }
        let retained = self.process(group);
        self.finish(&retained);
        if self.since_checkpoint > 0 {
            self.checkpoint();
        }
        if let Some(mut c) = self.compressor.take() {
            c.stop();
        }
        // Released before anyone hears the writer is closed, so that a new
        // writer can take the chain at once.
        self.file = None;
        self.lock = None;
        let _ = done.send(());
    }

    /// Writes a drained group; between retries after a failure, refuses it
    /// instead; with nothing to write when a retry is due, probes whether
    /// records are writable again. Returns the lines to retry.
    fn write_or_refuse(&mut self, group: Group) -> Vec<Vec<u8>> {
        let retry_due = self
            .last_failure
            .is_some_and(|f| f.elapsed() >= RETRY_INTERVAL);
        if self.last_failure.is_some() && !retry_due {
            // Between retries: nothing is attempted; waiting senders are refused.
            return group.refuse();
        }
        if !group.is_empty() {
            return self.process(group);
        }
        if retry_due {
            // Nothing to write: probe (recovery record if any, then fsync).
            match self.write(&[], true) {
                Ok(()) => self.set_healthy(true),
                Err(e) => self.failed(&e),
            }
        }
        Vec::new()
    }

    /// Between groups: syncs unsynced writes once the sync interval has
    /// passed, and runs retention when it is due.
    fn upkeep(&mut self, next_retention: &mut Instant) {
        if self.dirty
            && self.last_sync.elapsed() >= SYNC_INTERVAL
            && let Err(e) = self.sync()
        {
            self.failed(&e);
        }
        if self.since_checkpoint > 0
            && self
                .cfg
                .checkpoint
                .as_ref()
                .is_some_and(|c| self.last_checkpoint.elapsed() >= c.every)
        {
            self.checkpoint();
        }
        if Instant::now() >= *next_retention {
            if self.cfg.account_retention.is_some() {
                self.start_account_plan();
            } else {
                self.retention();
            }
            *next_retention = Instant::now() + RETENTION_INTERVAL;
        }
        self.poll_account_plan();
    }
}

// Writing a group: chaining, writing and syncing, and the health that follows
// from success or failure.
impl Writer {
    /// Writes a group; returns the lines to retry (those nobody waits for).
    fn process(&mut self, group: Group) -> Vec<Vec<u8>> {
        if group.is_empty() {
            return Vec::new();
        }
        let lines: Vec<&[u8]> = group.lines.iter().map(Vec::as_slice).collect();
        match self.write(&lines, false) {
            Ok(()) => {
                self.set_healthy(true);
                self.observer.written(lines.len() as u64);
                self.since_checkpoint += lines.len() as u64;
                if self
                    .cfg
                    .checkpoint
                    .as_ref()
                    .is_some_and(|c| self.since_checkpoint >= c.every_records)
                {
                    self.checkpoint();
                }
                for ack in group.acks {
                    let _ = ack.send(true);
                }
                Vec::new()
            }
            Err(e) => {
                self.failed(&e);
                group.refuse()
            }
        }
    }

    /// Last writes before stopping; records that still cannot be written are
    /// reported (they were answered under `interval`).
    fn finish(&mut self, retained: &[Vec<u8>]) {
        if !retained.is_empty() {
            let lines: Vec<&[u8]> = retained.iter().map(Vec::as_slice).collect();
            match self.write(&lines, true) {
                Ok(()) => self.observer.written(lines.len() as u64),
                Err(e) => {
                    tracing::error!(error = %e, lost = retained.len(), "records: stopping with records that could not be written")
                }
            }
        }
        match self.sync() {
            Ok(()) => {
                tracing::info!(last_hash = %chain::to_hex(&self.last_hash), file = ?self.file.as_ref().map(|s| &s.name.name), "records flushed and synced")
            }
            Err(e) => tracing::error!(error = %e, "records: final sync failed"),
        }
    }

    fn set_healthy(&mut self, healthy: bool) {
        if healthy {
            self.last_failure = None;
            self.shared.set_reason(None);
        }
        let was = self.shared.healthy.swap(healthy, Ordering::SeqCst);
        self.observer.healthy(healthy);
        if healthy && !was {
            tracing::info!("records are writable again: decisions resume");
        }
    }

    fn failed(&mut self, e: &std::io::Error) {
        self.observer.write_error();
        self.last_failure = Some(Instant::now());
        if self.shared.healthy.load(Ordering::SeqCst) {
            tracing::error!(error = %e, dir = %self.cfg.dir.display(), "records cannot be written: refusing decisions (503) until they can");
        } else {
            tracing::debug!(error = %e, "records still cannot be written");
        }
        self.set_healthy(false);
        self.shared
            .set_reason(Some(format!("records cannot be written: {e}")));
        self.recovery_reason = format!("write error: {e}");
    }

    fn publish(&self) {
        if let Ok(mut h) = self.shared.last_hash.lock() {
            *h = chain::to_hex(&self.last_hash);
        }
        if let (Some(seg), Ok(mut f)) = (&self.file, self.shared.current_file.lock()) {
            f.clone_from(&seg.name.name);
        }
    }

    /// Chains and writes `lines` to the current file (rotating first if due),
    /// preceded by a recovery record at the head of a new file if one is owed.
    /// Syncs with `always` or `force_sync`. On failure nothing of the group stays
    /// valid and the next write goes to a new file.
    fn write(&mut self, lines: &[&[u8]], force_sync: bool) -> std::io::Result<()> {
        self.rotate_if_due()?;
        self.write_here(lines, force_sync)
    }

    /// [`Self::write`] into the file open now (no rotation).
    fn write_here(&mut self, lines: &[&[u8]], force_sync: bool) -> std::io::Result<()> {
        if self.file.is_none() {
            self.open_new()?;
        }
        let recovery = (!self.recovery.is_empty())
            .then(|| self.recovery_record())
            .transpose()?;
        let Some(seg) = self.file.as_mut() else {
            return Err(io_other("no records file is open"));
        };
        let start = seg.len;
        let mut hash = self.last_hash;
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 150).sum::<usize>() + 300);
        let mut records = 0;
        // The hashes the next checkpoint's tree takes, once written.
        let mut sealed = Vec::new();
        let keep = self.cfg.checkpoint.is_some();
        if let Some(r) = recovery.as_ref().filter(|_| start == 0) {
            hash =
                chain::seal_as(&hash, self.cfg.replica.as_ref(), r, &mut buf).map_err(io_other)?;
            records += 1;
            if keep {
                sealed.push(hash);
            }
        }
        for l in lines {
            hash =
                chain::seal_as(&hash, self.cfg.replica.as_ref(), l, &mut buf).map_err(io_other)?;
            records += 1;
            if keep {
                sealed.push(hash);
            }
        }
        let sync = force_sync || self.cfg.sync == SyncMode::Always;
        let timer = std::time::Instant::now();
        let result = seg.file.write_all(&buf).and_then(|()| {
            if sync {
                seg.file.sync_data()?;
                self.observer.fsync(timer.elapsed());
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                seg.len += buf.len() as u64;
                seg.records += records;
                self.last_hash = hash;
                for h in &sealed {
                    self.interval.push(h);
                }
                if start == 0 {
                    self.recovery.clear();
                }
                if sync {
                    self.dirty = false;
                    self.last_sync = Instant::now();
                } else if !buf.is_empty() {
                    self.dirty = true;
                }
                self.publish();
                Ok(())
            }
            Err(e) => {
                self.discard(start);
                Err(e)
            }
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        if let Some(seg) = self.file.as_mut() {
            let timer = std::time::Instant::now();
            if let Err(e) = seg.file.sync_data() {
                let len = seg.len;
                self.discard(len);
                return Err(e);
            }
            self.observer.fsync(timer.elapsed());
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }
}

// Checkpoints: a signed statement of the chain's head, in the chain and, if
// asked, in a second file.
impl Writer {
    /// Writes (and syncs) a checkpoint now, if checkpoints are on; a failure
    /// is logged and retried at the next occasion (decisions go on).
    fn checkpoint(&mut self) {
        let Some(cfg) = self.cfg.checkpoint.clone() else {
            return;
        };
        match self.write_checkpoint(&cfg) {
            Ok(copied) => {
                self.since_checkpoint = 0;
                self.last_checkpoint = Instant::now();
                self.observer.checkpoint(true, copied);
            }
            Err(e) => {
                tracing::error!(error = %e, "records: the checkpoint could not be written");
                self.observer.checkpoint(false, true);
            }
        }
    }

    /// Writes a checkpoint; whether it was also appended to the copy.
    fn write_checkpoint(&mut self, cfg: &CheckpointConfig) -> std::io::Result<bool> {
        if self.file.is_none() {
            self.open_new()?;
        }
        // A pending recovery record goes first, so that the head signed is
        // the one the checkpoint follows.
        if !self.recovery.is_empty() && self.file.as_ref().is_some_and(|s| s.len == 0) {
            self.write_here(&[], false)?;
        }
        let head = self.last_hash;
        let time = chain::record_time(SystemTime::now());
        let covered = self.interval.len();
        let interval = crate::checkpoint::Interval {
            since: self.interval_since,
            root: self.interval.root(),
        };
        let statement = crate::checkpoint::statement(
            self.cfg.replica.as_ref(),
            &head,
            covered,
            &time,
            Some(&interval),
        );
        let record = serde_json::to_vec(&json!({
            "kind": "checkpoint",
            "time": time,
            "records": covered,
            "since": chain::to_hex(&interval.since),
            "root": chain::to_hex(&interval.root),
            "key_id": cfg.key.public().id(),
            "signature": cfg.key.sign_message(crate::checkpoint::CONTEXT, statement.as_bytes()),
        }))
        .map_err(io_other)?;
        self.write_here(&[&record], true)?;
        // The next checkpoint covers what follows this one.
        self.interval_since = self.last_hash;
        self.interval = merkle::Frontier::new();
        if let Some(out) = &cfg.out {
            let mut line = Vec::new();
            chain::seal_as(&head, self.cfg.replica.as_ref(), &record, &mut line)
                .map_err(io_other)?;
            if let Err(e) = append_synced(out, &line) {
                tracing::error!(file = %out.display(), error = %e, "records: the checkpoint could not be appended to --records-checkpoint-out");
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Appends `line` to `path` (created 0640 if missing) and syncs it.
fn append_synced(path: &Path, line: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    let mut file = options.open(path)?;
    // A line torn by a crash is ended first, so that this one stays whole.
    let len = file.metadata()?.len();
    if len > 0 {
        use std::io::{Read as _, Seek as _};
        let mut reader = File::open(path)?;
        reader.seek(std::io::SeekFrom::Start(len - 1))?;
        let mut last = [0u8; 1];
        reader.read_exact(&mut last)?;
        if last != [b'\n'] {
            file.write_all(b"\n")?;
        }
    }
    file.write_all(line)?;
    file.sync_data()
}

// Rotation: a file is closed once it is full or old, and the next one opened.
impl Writer {
    fn rotate_if_due(&mut self) -> std::io::Result<()> {
        let due = self.file.as_ref().is_some_and(|s| {
            s.len > 0
                && (s.len >= self.cfg.max_file_bytes || s.opened.elapsed() >= self.cfg.rotate_every)
        });
        if !due {
            return Ok(());
        }
        // A file ends with a checkpoint of everything in it.
        if self.since_checkpoint > 0 && self.cfg.checkpoint.is_some() {
            self.checkpoint();
        }
        let Some(seg) = self.file.take() else {
            return Ok(());
        };
        if let Err(e) = seg.file.sync_data() {
            self.recovery.push(Discarded {
                file: seg.name.name.clone(),
                valid_bytes: seg.len,
            });
            return Err(e);
        }
        self.dirty = false;
        tracing::info!(file = %seg.name.name, records = seg.records, bytes = seg.len, last_hash = %chain::to_hex(&self.last_hash), "records file closed");
        if let Some(c) = &self.compressor {
            c.send(self.cfg.dir.join(&seg.name.name));
        }
        Ok(())
    }

    fn open_new(&mut self) -> std::io::Result<()> {
        let now = chain::stamp(SystemTime::now());
        let (stamp, seq) = match &self.last_name {
            // Never sort before the previous file, even if the clock went back.
            Some(last) => {
                let seq = last.seq.checked_add(1).ok_or_else(|| {
                    io_other(format!(
                        "the records file sequence number cannot advance past `{}`: move the record files aside (after `portcullis records verify`) to start a new chain",
                        last.name
                    ))
                })?;
                (now.max(last.stamp.clone()), seq)
            }
            None => (now, 1),
        };
        let name = FileName::of(self.cfg.replica.as_ref(), &stamp, seq);
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
        let file = options.open(self.cfg.dir.join(&name.name))?;
        self.last_name = Some(name.clone());
        sync_dir(&self.cfg.dir)?;
        self.file = Some(Segment {
            name,
            file,
            len: 0,
            records: 0,
            opened: Instant::now(),
        });
        self.publish();
        Ok(())
    }
}

// Retention: whole expired files are deleted, declared first by a retention
// record.
impl Writer {
    /// Deletes the oldest whole files whose newest record is past retention.
    /// A `retention` record naming them, the time of the newest record among
    /// them (`deleted_newest`) and the hash the oldest kept record continues
    /// from is written (and synced) first, so `verify` can tell retention from
    /// a missing file, and retention from a deletion of recent records.
    fn retention(&mut self) {
        if let Some(policy) = self.cfg.account_retention {
            // At start-up, before the service listens: planned right here.
            let current = self.file.as_ref().map(|s| s.name.base().to_owned());
            let planned = plan_accounts(
                &self.cfg.dir,
                self.cfg.replica.as_ref(),
                current.as_deref(),
                &policy,
            );
            self.apply_account_plan(planned, None);
            return;
        }
        let Some(days) = self.cfg.retain_days else {
            return;
        };
        match self.expire(days) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                files = n,
                retain_days = days,
                "records: expired files deleted"
            ),
            Err(e) => tracing::error!(error = %e, "records: retention failed; nothing deleted"),
        }
        match self.expire_orphans(days) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                chains = n,
                retain_days = days,
                "records: expired chains of replicas no longer writing deleted"
            ),
            Err(e) => tracing::error!(error = %e, "records: retention of other chains failed"),
        }
    }

    /// Deletes the other chains of the directory that no process writes (its
    /// lock is free: a replica gone, files from before replica ids) and whose
    /// every record is past retention, whole. A `chain_retention` record in
    /// this writer's chain, written (and synced) first, names the files, the
    /// newest record deleted and the chain's last hash. A chain with any
    /// record still within retention is left whole.
    fn expire_orphans(&mut self, days: u32) -> std::io::Result<usize> {
        let Some(horizon) = SystemTime::now().checked_sub(chain::days(days)) else {
            return Ok(0);
        };
        let dir = self.cfg.dir.clone();
        let mut expired = 0;
        for c in chain::chains(&dir)? {
            if c.replica == self.cfg.replica {
                continue;
            }
            let lock_path = dir.join(chain::lock_name(c.replica.as_ref()));
            let Some(lock) = try_lock(&lock_path)? else {
                continue;
            };
            let mut newest = None;
            let mut all_expired = true;
            for f in &c.files {
                let path = dir.join(&f.name);
                match newest_time(&path)? {
                    Some(t) if t < horizon => newest = newest.max(Some(t)),
                    None if is_empty(&path)? && f.started().is_some_and(|s| s < horizon) => {
                        newest = newest.max(f.started());
                    }
                    _ => {
                        all_expired = false;
                        break;
                    }
                }
            }
            let Some(newest) = newest.filter(|_| all_expired) else {
                continue;
            };
            self.delete_chain(&c, lock, &lock_path, newest, json!({"retain_days": days}))?;
            expired += 1;
        }
        Ok(expired)
    }

    /// Deletes another chain `c` whole (its lock held: `lock`, at
    /// `lock_path`), after a synced `chain_retention` record naming its
    /// files, the newest record deleted and its last hash, with `policy`'s
    /// members.
    fn delete_chain(
        &mut self,
        c: &chain::Chain,
        lock: File,
        lock_path: &Path,
        newest: SystemTime,
        policy: serde_json::Value,
    ) -> std::io::Result<()> {
        let dir = self.cfg.dir.clone();
        let last_hash = match c.files.iter().rev().find_map(|f| {
            last_line(&dir.join(&f.name))
                .ok()
                .flatten()
                .and_then(|l| chain::stated_hash(&l))
        }) {
            Some(h) => chain::to_hex(&h),
            None => String::new(),
        };
        let names: Vec<&str> = c.files.iter().map(FileName::base).collect();
        let mut record = serde_json::Map::new();
        record.insert("kind".into(), "chain_retention".into());
        record.insert("time".into(), chain::record_time(SystemTime::now()).into());
        if let serde_json::Value::Object(members) = policy {
            record.extend(members);
        }
        record.insert(
            "chain".into(),
            c.replica.as_ref().map_or("", ReplicaId::as_str).into(),
        );
        record.insert("deleted".into(), json!(names));
        record.insert("deleted_newest".into(), chain::record_time(newest).into());
        record.insert("last_hash".into(), last_hash.into());
        let record = serde_json::to_vec(&record).map_err(io_other)?;
        self.write(&[&record], true)?;
        for name in &names {
            self.remove_file(name)?;
        }
        std::fs::remove_file(lock_path)?;
        drop(lock);
        sync_dir(&dir)
    }

    fn expire(&mut self, days: u32) -> std::io::Result<usize> {
        let Some(horizon) = SystemTime::now().checked_sub(chain::days(days)) else {
            return Ok(0);
        };
        let dir = self.cfg.dir.clone();
        let files = chain::list_chain(&dir, self.cfg.replica.as_ref())?;
        let current = self.file.as_ref().map(|s| s.name.base().to_owned());
        let mut expired = Vec::new();
        // The newest record (or, for an empty file, start) of what is deleted.
        let mut newest = None;
        for f in &files {
            let Some(started) = f.started() else { break };
            if Some(f.base()) == current.as_deref() || started >= horizon {
                break;
            }
            let last = match newest_time(&dir.join(&f.name))? {
                Some(t) if t < horizon => t,
                None if is_empty(&dir.join(&f.name))? => started,
                _ => break,
            };
            expired.push(f.base().to_owned());
            newest = newest.max(Some(last));
        }
        let Some(newest) = newest else {
            return Ok(0);
        };
        let names: Vec<&str> = expired.iter().map(String::as_str).collect();
        self.delete_oldest(&files, &names, newest, json!({"retain_days": days}))
    }

    /// Deletes `names`, the oldest of this chain's `files`, after a synced
    /// `retention` record naming them, the newest record among them and the
    /// hash the oldest kept record continues from, with `policy`'s members
    /// (`retain_days`, …).
    fn delete_oldest(
        &mut self,
        files: &[FileName],
        names: &[&str],
        newest: SystemTime,
        policy: serde_json::Value,
    ) -> std::io::Result<usize> {
        let dir = self.cfg.dir.clone();
        let mut anchor = None;
        for f in files.iter().skip(names.len()) {
            if let Some(prev) = first_prev(&dir.join(&f.name))? {
                anchor = Some(prev);
                break;
            }
        }
        let anchor = anchor.unwrap_or(self.last_hash);
        let mut record = serde_json::Map::new();
        record.insert("kind".into(), "retention".into());
        record.insert("time".into(), chain::record_time(SystemTime::now()).into());
        if let serde_json::Value::Object(members) = policy {
            record.extend(members);
        }
        record.insert("deleted".into(), json!(names));
        record.insert("deleted_newest".into(), chain::record_time(newest).into());
        record.insert("anchor".into(), chain::to_hex(&anchor).into());
        let record = serde_json::to_vec(&record).map_err(io_other)?;
        self.write(&[&record], true)?;
        for name in names {
            self.remove_file(name)?;
        }
        sync_dir(&dir)?;
        Ok(names.len())
    }

    /// Removes a record file by its base name: plain, compressed, or both
    /// (never while the compressor is between writing a copy and removing
    /// the original, so that a deleted file never comes back compressed).
    fn remove_file(&self, base: &str) -> std::io::Result<()> {
        let _guard = self
            .files_guard
            .lock()
            .map_err(|_| io_other("a records thread failed"))?;
        for name in [base.to_owned(), format!("{base}.zst")] {
            match std::fs::remove_file(self.cfg.dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// How often the writer looks whether a retention plan is ready.
const PLAN_POLL: Duration = Duration::from_secs(1);

/// Retention by account planned on another thread, and where the chain was
/// when planning started (records written since are checked before applying).
struct PendingPlan {
    rx: std::sync::mpsc::Receiver<std::io::Result<AccountPlans>>,
    from: Positions,
}

/// Where each chain of the directory ended when planning started: its last
/// file (base name) and how many of its bytes were written (`u64::MAX` for a
/// compressed, closed file).
type Positions = Vec<(Option<ReplicaId>, Option<(String, u64)>)>;

/// The end of every chain of `dir` now; this writer's own file as it knows it.
fn positions(
    dir: &Path,
    own: Option<&ReplicaId>,
    own_file: Option<(String, u64)>,
) -> std::io::Result<Positions> {
    let mut out = Vec::new();
    for c in chain::chains(dir)? {
        let end = if c.replica.as_ref() == own {
            own_file.clone()
        } else {
            match c.files.last() {
                None => None,
                Some(f) if f.compressed => Some((f.base().to_owned(), u64::MAX)),
                Some(f) => Some((
                    f.base().to_owned(),
                    std::fs::metadata(dir.join(&f.name))?.len(),
                )),
            }
        };
        out.push((c.replica, end));
    }
    if !out.iter().any(|(r, _)| r.as_ref() == own) {
        out.push((own.cloned(), own_file));
    }
    Ok(out)
}

/// What records written while a plan was made say about it.
enum Since {
    Quiet,
    /// An account the plan would delete records of.
    Active(String),
    /// What was written cannot be told apart: wait for the next run.
    Unsure(String),
}

/// What retention by account would delete: this chain's oldest files, and
/// other chains (no process writes them) whole.
#[derive(Default)]
struct AccountPlans {
    own: crate::retention::Plan,
    others: Vec<(chain::Chain, crate::retention::Plan)>,
}

/// Plans retention by account for `replica`'s chain of `dir` and the chains
/// beside it.
fn plan_accounts(
    dir: &Path,
    replica: Option<&ReplicaId>,
    current: Option<&str>,
    policy: &crate::retention::Policy,
) -> std::io::Result<AccountPlans> {
    let now = SystemTime::now();
    let mut plans = AccountPlans::default();
    for c in chain::chains(dir)? {
        if c.replica.as_ref() == replica {
            plans.own = crate::retention::plan(dir, &c.files, current, policy, now)?;
        } else {
            let p = crate::retention::plan(dir, &c.files, None, policy, now)?;
            if p.delete.len() == c.files.len() {
                plans.others.push((c, p));
            }
        }
    }
    Ok(plans)
}

// Retention by account (`--records-retention`): planned on a thread of its
// own (it reads every record of the keep period), applied by the writer.
impl Writer {
    fn start_account_plan(&mut self) {
        let Some(policy) = self.cfg.account_retention else {
            return;
        };
        if self.account_plan.is_some() {
            return;
        }
        let dir = self.cfg.dir.clone();
        let replica = self.cfg.replica.clone();
        let own_file = self
            .file
            .as_ref()
            .map(|s| (s.name.base().to_owned(), s.len));
        let current = own_file.as_ref().map(|(f, _)| f.clone());
        let from = match positions(&dir, replica.as_ref(), own_file) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "records: retention could not start; retried tomorrow");
                return;
            }
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("records-retention".into())
            .spawn(move || {
                let _ = tx.send(plan_accounts(
                    &dir,
                    replica.as_ref(),
                    current.as_deref(),
                    &policy,
                ));
            });
        match spawned {
            Ok(_) => self.account_plan = Some(PendingPlan { rx, from }),
            Err(e) => {
                tracing::error!(error = %e, "records: retention could not start; retried tomorrow")
            }
        }
    }

    fn poll_account_plan(&mut self) {
        let Some(pending) = &self.account_plan else {
            return;
        };
        match pending.rx.try_recv() {
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                tracing::error!("records: the retention thread failed; retried tomorrow");
                self.account_plan = None;
            }
            Ok(planned) => {
                let from = self.account_plan.take().map(|p| p.from);
                self.apply_account_plan(planned, from);
            }
        }
    }

    /// Deletes what a plan says can go, unless an account in it had records
    /// written since planning started (at `from`: then it waits for the next
    /// run).
    fn apply_account_plan(
        &mut self,
        planned: std::io::Result<AccountPlans>,
        from: Option<Positions>,
    ) {
        let Some(policy) = self.cfg.account_retention else {
            return;
        };
        let plans = match planned {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "records: retention by account failed; nothing deleted");
                return;
            }
        };
        if let Some(why) = &plans.own.kept_because {
            tracing::debug!(kept = %why, "records: retention by account keeps the oldest file");
        }
        if let Some(from) = from {
            match self.active_since(&from, &plans) {
                Ok(Since::Quiet) => {}
                Ok(Since::Active(account)) => {
                    tracing::info!(%account, "records: retention postponed: an account it would delete records of was active while it was planned");
                    return;
                }
                Ok(Since::Unsure(why)) => {
                    tracing::info!(%why, "records: retention postponed: what was written while it was planned cannot be read");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "records: retention by account failed; nothing deleted");
                    return;
                }
            }
        }
        // A hold placed while the plan was made is honoured.
        match crate::retention::holds(&self.cfg.dir) {
            Ok(held) => {
                let planned = plans
                    .own
                    .accounts
                    .iter()
                    .chain(plans.others.iter().flat_map(|(_, p)| &p.accounts));
                if let Some(a) = planned.into_iter().find(|a| held.contains(*a)) {
                    tracing::info!(account = %a, "records: retention postponed: an account it would delete records of was put on hold meanwhile");
                    return;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "records: the legal holds cannot be read; nothing deleted");
                return;
            }
        }
        if !plans.own.delete.is_empty() {
            match self.delete_planned(&plans.own, &policy) {
                Ok(n) => tracing::info!(
                    files = n,
                    "records: files past their accounts' keep dates deleted"
                ),
                Err(e) => tracing::error!(error = %e, "records: retention by account failed"),
            }
        }
        for (c, p) in &plans.others {
            match self.delete_chain_planned(c, p, &policy) {
                Ok(true) => {
                    tracing::info!(chain = %c.label(), "records: a chain no process writes, past its accounts' keep dates, deleted")
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "records: retention of another chain failed"),
            }
        }
    }

    /// An account of the plans with a record written in this chain since
    /// `from` (file, length then).
    fn active_since(&self, from: &Positions, plans: &AccountPlans) -> std::io::Result<Since> {
        let accounts: std::collections::HashSet<&String> = plans
            .own
            .accounts
            .iter()
            .chain(plans.others.iter().flat_map(|(_, p)| &p.accounts))
            .collect();
        if accounts.is_empty() {
            return Ok(Since::Quiet);
        }
        let reader = crate::retention::Reader::default();
        for c in chain::chains(&self.cfg.dir)? {
            // Where this chain ended when planning started (a chain new
            // since then is read whole).
            let (start, offset) = match from.iter().find(|(r, _)| *r == c.replica) {
                None | Some((_, None)) => (0, 0),
                Some((_, Some((base, len)))) => {
                    match c.files.iter().position(|f| f.base() == base) {
                        Some(i) => (i, *len),
                        None => {
                            return Ok(Since::Unsure(format!(
                                "`{base}` of {} is no longer listed",
                                c.label()
                            )));
                        }
                    }
                }
            };
            for (i, f) in c.files.iter().enumerate().skip(start) {
                if i == start && offset == u64::MAX {
                    continue;
                }
                let bytes = chain::read_file(&self.cfg.dir.join(&f.name))?;
                let mut skip = if i == start {
                    usize::try_from(offset)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len())
                } else {
                    0
                };
                // From the start of the line the offset falls in.
                while skip > 0 && bytes.get(skip - 1) != Some(&b'\n') {
                    skip -= 1;
                }
                for line in bytes
                    .get(skip..)
                    .unwrap_or_default()
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                {
                    if let (Some(a), _) = reader.read(line)
                        && accounts.contains(&a)
                    {
                        return Ok(Since::Active(a));
                    }
                }
            }
        }
        Ok(Since::Quiet)
    }

    /// Deletes this chain's oldest files a plan names, after a `retention`
    /// record (as retention by age writes it, with the policy).
    fn delete_planned(
        &mut self,
        plan: &crate::retention::Plan,
        policy: &crate::retention::Policy,
    ) -> std::io::Result<usize> {
        let dir = self.cfg.dir.clone();
        let Some(newest) = plan.newest else {
            return Ok(0);
        };
        let files = chain::list_chain(&dir, self.cfg.replica.as_ref())?;
        // Still the oldest files of the chain, in order.
        let names: Vec<&str> = plan.delete.iter().map(FileName::base).collect();
        let listed: Vec<&str> = files.iter().take(names.len()).map(FileName::base).collect();
        if names != listed {
            return Ok(0);
        }
        self.delete_oldest(
            &files,
            &names,
            newest,
            json!({
                "retain_days": policy.shortest(),
                "policy": "account",
                "keep_days_after_last_activity": policy.keep_days_after_last_activity,
                "keep_days_without_account": policy.without_account(),
            }),
        )
    }

    /// Deletes another chain whole (its lock free, its files as planned),
    /// after a `chain_retention` record in this chain.
    fn delete_chain_planned(
        &mut self,
        c: &chain::Chain,
        plan: &crate::retention::Plan,
        policy: &crate::retention::Policy,
    ) -> std::io::Result<bool> {
        let dir = self.cfg.dir.clone();
        let Some(newest) = plan.newest else {
            return Ok(false);
        };
        let lock_path = dir.join(chain::lock_name(c.replica.as_ref()));
        let Some(lock) = try_lock(&lock_path)? else {
            return Ok(false);
        };
        let now_files = chain::list_chain(&dir, c.replica.as_ref())?;
        if now_files != c.files {
            return Ok(false);
        }
        self.delete_chain(
            c,
            lock,
            &lock_path,
            newest,
            json!({"retain_days": policy.shortest(), "policy": "account"}),
        )?;
        Ok(true)
    }
}

fn bytecount_lines(body: &[u8]) -> usize {
    body.iter().filter(|b| **b == b'\n').count() + 1
}

/// Whether a record file holds no bytes (compressed: none once decompressed).
fn is_empty(path: &Path) -> std::io::Result<bool> {
    Ok(chain::read_file(path)?.is_empty())
}

/// The `time` of the last complete record of a file; `None` if it has none or
/// it cannot be read (then the file is kept).
/// The last complete line of a file (without its newline), if any.
fn last_line(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let bytes = chain::read_file(path)?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    Ok(bytes
        .get(..complete)
        .and_then(|b| b.rsplit(|c| *c == b'\n').next())
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec))
}

fn newest_time(path: &Path) -> std::io::Result<Option<SystemTime>> {
    let bytes = chain::read_file(path)?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let Some(last) = bytes
        .get(..complete)
        .and_then(|b| b.rsplit(|c| *c == b'\n').next())
        .filter(|l| !l.is_empty())
    else {
        return Ok(None);
    };
    Ok(chain::open(last)
        .ok()
        .and_then(|o| o.str_field("time").and_then(chain::parse_time)))
}

/// The `prev` of the first record of a file, if it has one.
fn first_prev(path: &Path) -> std::io::Result<Option<Hash>> {
    let mut reader = chain::open_file(path)?;
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    match line.strip_suffix(b"\n") {
        None => Ok(None),
        Some(l) => chain::open(l)
            .map(|o| Some(o.prev))
            .map_err(|e| io_other(format!("`{}` line 1: {e}", path.display()))),
    }
}

/// Messages drained at once.
struct Group {
    lines: Vec<Vec<u8>>,
    /// Whether each line is retried after a failure (nobody waits for it).
    retry: Vec<bool>,
    acks: Vec<oneshot::Sender<bool>>,
    messages: usize,
    /// A `Msg::Panic` was drained.
    panic: bool,
    /// A `Msg::Retention` was drained.
    retention: bool,
}

/// What one turn of the writer's loop took from the queue.
struct Drained {
    group: Group,
    /// A close was drained (it ends the group): its acknowledgement.
    close: Option<oneshot::Sender<()>>,
    /// Every sender is gone.
    disconnected: bool,
}

impl Group {
    fn new(retained: Vec<Vec<u8>>) -> Self {
        let retry = vec![true; retained.len()];
        Self {
            lines: retained,
            retry,
            acks: Vec::new(),
            messages: 0,
            panic: false,
            retention: false,
        }
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.acks.is_empty()
    }

    /// Answers every waiting sender `false`; returns the lines to retry.
    fn refuse(self) -> Vec<Vec<u8>> {
        for ack in self.acks {
            let _ = ack.send(false);
        }
        self.lines
            .into_iter()
            .zip(self.retry)
            .filter_map(|(l, retry)| retry.then_some(l))
            .collect()
    }

    /// Adds a message; returns the close acknowledgement if it is a close.
    fn push(&mut self, m: Msg) -> Option<oneshot::Sender<()>> {
        match m {
            Msg::Records { lines, ack } => {
                self.messages += 1;
                self.retry
                    .extend(std::iter::repeat_n(ack.is_none(), lines.len()));
                self.lines.extend(lines);
                self.acks.extend(ack);
                None
            }
            Msg::Close(done) => Some(done),
            Msg::Panic => {
                self.panic = true;
                None
            }
            Msg::Retention => {
                self.retention = true;
                None
            }
        }
    }
}

/// The failure `Msg::Panic` asks for.
#[allow(clippy::panic)]
fn inject_panic() {
    panic!("injected records writer panic");
}
