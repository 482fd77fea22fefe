//! `portcullis records verify`: checks every record file of a directory.
//!
//! A directory may hold several chains (one per replica, see [`chain`]); each
//! is checked on its own, and every record of a replica's chain must state
//! that replica.
//!
//! Each line must hash to its stated `hash`; each record's `prev` must be the
//! hash of the record before it, across files; file sequence numbers must not
//! skip; the first record must start from the genesis hash or from the anchor
//! of a `retention` record (files deleted by retention). Bytes that a
//! `recovery` record declares discarded (a torn tail after a crash, or a group
//! whose write failed) are reported as notes. A partial line at the very end of
//! the last file is a *torn final record*: the writer stopped mid-write and has
//! not restarted since; it is reported apart from every other problem.
//!
//! A `retention` record must be believable: what it says it deleted (up to
//! `deleted_newest`) is older than its retention period at its own time, that
//! time is not before the record preceding it (nor in the future), the files
//! it names started no later than `deleted_newest`, and the record the chain
//! starts from continues right after the last of them. Retention records
//! written before `deleted_newest` existed are reported as unverifiable notes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::chain::{self, FileName, GENESIS, Hash, LineError, ReplicaId};

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// An edited, reordered, inserted or missing record or file.
    Broken,
    /// A partial last line in the last file (a crash mid-write, not yet recovered).
    TornFinal,
    /// A checkpoint not signed by a trusted key, or one of the copy missing
    /// from the directory (records cut from the end).
    Checkpoint,
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based; 0 for the file as a whole.
    pub line: usize,
    pub kind: ProblemKind,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Default)]
pub struct Report {
    pub files: usize,
    pub records: u64,
    pub problems: Vec<Problem>,
    pub notes: Vec<String>,
    /// The hash of the last record (to compare with an external anchor).
    pub last_hash: Option<String>,
    /// Checkpoints seen (signed by a trusted key, when keys were given).
    pub checkpoints: u64,
    /// The last of them: `file:line (time)`.
    pub last_checkpoint: Option<String>,
    /// Records after the last checkpoint: no signature covers them yet.
    pub unanchored: u64,
    /// The hashes of the checkpoints seen (for a copy to be checked against).
    pub checkpoint_hashes: Vec<Hash>,
    /// The time of the chain's first record.
    pub first_time: Option<SystemTime>,
    /// The newest record retention says it deleted from this chain.
    pub retained_until: Option<SystemTime>,
    /// Chains deleted whole by retention, as this chain's `chain_retention`
    /// records say: the replica (empty: none) and the newest record deleted.
    pub chains_retained: Vec<(String, SystemTime)>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Only a torn final record: the files are intact up to a crash.
    pub fn only_torn(&self) -> bool {
        !self.problems.is_empty()
            && self
                .problems
                .iter()
                .all(|p| p.kind == ProblemKind::TornFinal)
    }
}

/// Why a directory could not be verified at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read `{path}`: {cause}")]
pub struct VerifyError {
    pub path: PathBuf,
    pub cause: std::io::Error,
}

#[derive(Deserialize)]
struct DiscardedEntry {
    file: String,
    valid_bytes: u64,
}

struct Acknowledged {
    valid_bytes: u64,
    by: String,
}

/// How far a record may be dated after the clock of the verifying machine,
/// and a file's start after its newest record (names are stamped to the second).
const CLOCK_SLACK: Duration = Duration::from_secs(3600);

/// What a retention record accounts for.
struct Retention {
    anchor: Hash,
    /// The newest deleted record, if the record states it.
    deleted_newest: Option<SystemTime>,
    /// Sequence numbers of the files it names.
    deleted_seqs: Vec<u64>,
    at: String,
}

/// Checks a retention record against its own time and the record before it;
/// returns what it accounts for and the problems found.
fn check_retention(
    rec: &chain::Opened,
    preceding: Option<SystemTime>,
    now: SystemTime,
    at: String,
    notes: &mut Vec<String>,
) -> (Option<Retention>, Vec<String>) {
    let mut problems = Vec::new();
    let Some(anchor) = rec.str_field("anchor").and_then(chain::from_hex) else {
        problems.push("retention record without a valid `anchor` hash".to_owned());
        return (None, problems);
    };
    let time = rec.str_field("time").and_then(chain::parse_time);
    let days = rec
        .body
        .get("retain_days")
        .and_then(serde_json::Value::as_u64);
    let names = deleted_names(rec);
    let (deleted_seqs, starts) = deleted_files(&names, &mut problems);
    let Some(time) = time else {
        problems.push("retention record without a valid `time`".to_owned());
        return (None, problems);
    };
    check_retention_time(time, preceding, now, &mut problems);
    let newest = match rec.str_field("deleted_newest") {
        None => {
            notes.push(format!(
                "{at}: retention record without `deleted_newest` (written by an older version): that what it deleted was past retention cannot be verified"
            ));
            None
        }
        Some(text) => check_deleted_newest(text, days, time, &starts, &mut problems),
    };
    let retention = Retention {
        anchor,
        deleted_newest: newest,
        deleted_seqs,
        at,
    };
    (Some(retention), problems)
}

/// Checks a `chain_retention` record (another chain, no longer written,
/// deleted whole): what it deleted was past its retention period at its own
/// time, and it is not dated before the record preceding it. Notes what went.
fn check_chain_retention(
    rec: &chain::Opened,
    preceding: Option<SystemTime>,
    now: SystemTime,
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let names = deleted_names(rec);
    let (_, starts) = deleted_files(&names, &mut problems);
    let Some(time) = rec.str_field("time").and_then(chain::parse_time) else {
        problems.push("chain retention record without a valid `time`".to_owned());
        return problems;
    };
    check_retention_time(time, preceding, now, &mut problems);
    let days = rec
        .body
        .get("retain_days")
        .and_then(serde_json::Value::as_u64);
    let newest = rec.str_field("deleted_newest").unwrap_or_default();
    check_deleted_newest(newest, days, time, &starts, &mut problems);
    let chain_name = match rec.str_field("chain") {
        Some("") | None => "records without a replica id".to_owned(),
        Some(r) => format!("replica {r}"),
    };
    notes.push(format!(
        "{at}: the chain of {chain_name} ({} file(s), newest record {newest}, last hash {}) was deleted whole by retention",
        names.len(),
        rec.str_field("last_hash").unwrap_or("unknown")
    ));
    problems
}

/// The file names a retention record's `deleted` lists.
fn deleted_names(rec: &chain::Opened) -> Vec<String> {
    rec.body
        .get("deleted")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// The files a retention record names: their sequence numbers, and when each
/// started (for those whose name says). A name that is not a record file name
/// is a problem.
fn deleted_files<'a>(
    names: &'a [String],
    problems: &mut Vec<String>,
) -> (Vec<u64>, Vec<(&'a String, SystemTime)>) {
    let mut deleted_seqs = Vec::with_capacity(names.len());
    let mut starts = Vec::with_capacity(names.len());
    for n in names {
        match FileName::parse(n) {
            Some(f) => {
                deleted_seqs.push(f.seq);
                starts.extend(f.started().map(|s| (n, s)));
            }
            None => problems.push(format!(
                "retention record names `{n}`, which is not a record file name"
            )),
        }
    }
    (deleted_seqs, starts)
}

/// A retention record is not dated before the record preceding it, nor in the
/// future.
fn check_retention_time(
    time: SystemTime,
    preceding: Option<SystemTime>,
    now: SystemTime,
    problems: &mut Vec<String>,
) {
    if let Some(p) = preceding.filter(|p| time < *p) {
        problems.push(format!(
            "retention record dated {} is earlier than the record before it ({})",
            chain::record_time(time),
            chain::record_time(p)
        ));
    }
    if now
        .checked_add(CLOCK_SLACK)
        .is_some_and(|latest| time > latest)
    {
        problems.push(format!(
            "retention record is dated {}, in the future",
            chain::record_time(time)
        ));
    }
}

/// Checks the `deleted_newest` a retention record dated `time` states (as
/// `text`): it was past the retention period of `days` at that time, and no
/// file it names started after it. Returns it, if it can be read.
fn check_deleted_newest(
    text: &str,
    days: Option<u64>,
    time: SystemTime,
    starts: &[(&String, SystemTime)],
    problems: &mut Vec<String>,
) -> Option<SystemTime> {
    let (Some(newest), Some(days)) = (chain::parse_time(text), days) else {
        problems.push(
            "retention record with an unreadable `deleted_newest` or `retain_days`".to_owned(),
        );
        return None;
    };
    if days == 0 {
        // The writer never deletes with 0 (it means: keep everything).
        problems.push("retention record with `retain_days` 0, which no writer writes".to_owned());
        return None;
    }
    let period = days
        .checked_mul(86_400)
        .map(Duration::from_secs)
        .and_then(|d| newest.checked_add(d));
    if period.is_none_or(|expired_at| expired_at > time) {
        problems.push(format!(
            "retention record claims to have deleted records as recent as {text}, which at its time ({}) were within its retention period of {days} day(s)",
            chain::record_time(time)
        ));
    }
    for (name, started) in starts {
        if newest
            .checked_add(CLOCK_SLACK)
            .is_some_and(|latest| *started > latest)
        {
            problems.push(format!(
                "retention record names `{name}`, started after the newest record it says it deleted ({text})"
            ));
        }
    }
    Some(newest)
}

/// The error for a file or directory that cannot be read.
fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> VerifyError + use<> {
    let path = path.to_owned();
    move |cause| VerifyError { path, cause }
}

/// The outcome of verifying a directory: one report per chain.
#[derive(Debug, Default)]
pub struct DirReport {
    pub chains: Vec<ChainReport>,
    /// About the directory as a whole (files not named like record files).
    pub notes: Vec<String>,
}

/// Checks directories (a fleet's, one per replica or shared) against copies
/// of their checkpoints (`--records-checkpoint-out`): each checkpoint of a
/// copy must be in its replica's chain, in one of the directories, unless a
/// retention record of that chain (or a `chain_retention` record) accounts
/// for it. A missing one means records were cut. Problems that belong to no
/// chain are returned.
pub fn check_copies(dirs: &mut [DirReport], copies: &[crate::checkpoint::Copied]) -> Vec<Problem> {
    let mut orphans = Vec::new();
    for copy in copies {
        let problem = |message: String| Problem {
            file: copy.at.clone(),
            line: 0,
            kind: ProblemKind::Checkpoint,
            message,
        };
        let name = copy
            .replica
            .as_ref()
            .map_or("", ReplicaId::as_str)
            .to_owned();
        let time = chain::parse_time(&copy.time);
        let chain_retained = dirs.iter().flat_map(|d| &d.chains).any(|c| {
            c.report
                .chains_retained
                .iter()
                .any(|(r, until)| *r == name && time.is_some_and(|t| t <= *until))
        });
        let found = dirs
            .iter_mut()
            .flat_map(|d| d.chains.iter_mut())
            .find(|c| c.chain.replica == copy.replica);
        let Some(c) = found else {
            if !chain_retained {
                orphans.push(problem(format!(
                    "a checkpoint of {} ({}), whose chain is in none of the directories: its records were removed",
                    if name.is_empty() { "records without a replica id".to_owned() } else { format!("replica {name}") },
                    copy.time
                )));
            }
            continue;
        };
        if c.report.checkpoint_hashes.contains(&copy.hash) {
            continue;
        }
        let retained = match (time, c.report.retained_until) {
            (Some(t), Some(until)) => t <= until,
            _ => false,
        };
        if !retained {
            c.report.problems.push(problem(format!(
                "the checkpoint of {} is not in the directory: records it covers were cut (the files were truncated or removed)",
                copy.time
            )));
        }
    }
    orphans
}

/// One chain's outcome.
#[derive(Debug)]
pub struct ChainReport {
    pub chain: chain::Chain,
    pub report: Report,
}

/// Verifies every chain of `dir`, each on its own.
pub fn verify_chains(dir: &Path) -> Result<DirReport, VerifyError> {
    verify_chains_with(dir, &[])
}

/// [`verify_chains`], checking each checkpoint's signature against
/// `trusted` (none given: checkpoints are counted, not checked).
pub fn verify_chains_with(
    dir: &Path,
    trusted: &[portcullis_keys::PublicKey],
) -> Result<DirReport, VerifyError> {
    let mut out = DirReport::default();
    for name in chain::strangers(dir).map_err(read_error(dir))? {
        out.notes
            .push(format!("{name}: ignored (not named like a record file)"));
    }
    let now = SystemTime::now();
    let chains = chain::chains(dir).map_err(read_error(dir))?;
    for replica in chain::locks(dir).map_err(read_error(dir))? {
        if !chains.iter().any(|c| c.replica == replica) {
            let name = replica
                .as_ref()
                .map_or("(no replica id)", ReplicaId::as_str);
            out.notes.push(format!(
                "the lock of replica {name} is here but none of its record files: its chain was removed whole (a `chain_retention` record elsewhere says so if retention did it)"
            ));
        }
    }
    for c in chains {
        let report = verify_files(dir, c.replica.as_ref(), &c.files, now, trusted)?;
        out.chains.push(ChainReport { chain: c, report });
    }
    Ok(out)
}

/// Verifies every record file in `dir`, as one report: the problems and notes
/// of every chain (file names say which), the files and records of all of
/// them, and the last hash when there is one chain.
pub fn verify_dir(dir: &Path) -> Result<Report, VerifyError> {
    let dir_report = verify_chains(dir)?;
    let mut report = Report {
        notes: dir_report.notes,
        ..Report::default()
    };
    let single = dir_report.chains.len() == 1;
    for c in dir_report.chains {
        report.files += c.report.files;
        report.records += c.report.records;
        report.problems.extend(c.report.problems);
        report.notes.extend(c.report.notes);
        if single {
            report.last_hash = c.report.last_hash;
        }
    }
    Ok(report)
}

/// Verifies one chain: `files` of `dir`, all of `replica`.
fn verify_files(
    dir: &Path,
    replica: Option<&ReplicaId>,
    files: &[FileName],
    now: SystemTime,
    trusted: &[portcullis_keys::PublicKey],
) -> Result<Report, VerifyError> {
    let mut report = Report {
        files: files.len(),
        ..Report::default()
    };
    let acknowledged = acknowledged_discards(dir, files, &mut report.problems)?;

    // Pass 2: the chain.
    let mut walk = ChainWalk::new(report, now, replica.cloned());
    walk.trusted = trusted.to_vec();
    for (i, f) in files.iter().enumerate() {
        walk.check_sequence(f);
        let path = dir.join(&f.name);
        let bytes = match chain::read_file(&path) {
            Ok(bytes) => bytes,
            // A compressed file that does not decompress: its records are
            // lost, which the chain then says where.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                walk.problem(f, 0, ProblemKind::Broken, e.to_string());
                Vec::new()
            }
            Err(e) => return Err(read_error(&path)(e)),
        };
        let limit = walk.checked_length(f, &bytes, acknowledged.get(f.base()));
        let content = bytes.get(..limit).unwrap_or_default();
        walk.check_lines(f, content, i + 1 == files.len());
    }
    Ok(walk.finish())
}

/// How many bytes of each of a chain's `files` hold records, by base name,
/// for those whose tail a recovery record declares discarded (readers that
/// prove records, `export` and the writer resuming an interval, read no
/// further, as `verify` does).
pub(crate) fn valid_lengths(
    dir: &Path,
    files: &[FileName],
) -> Result<HashMap<String, usize>, VerifyError> {
    let mut ignored = Vec::new();
    Ok(acknowledged_discards(dir, files, &mut ignored)?
        .into_iter()
        .map(|(name, a)| (name, usize::try_from(a.valid_bytes).unwrap_or(usize::MAX)))
        .collect())
}

/// Pass 1: recovery records (always the first record of a file) say which
/// tails of earlier files were discarded. One that names a file that is not an
/// earlier one is a problem.
fn acknowledged_discards(
    dir: &Path,
    files: &[FileName],
    problems: &mut Vec<Problem>,
) -> Result<HashMap<String, Acknowledged>, VerifyError> {
    let mut acknowledged: HashMap<String, Acknowledged> = HashMap::new();
    for f in files {
        let path = dir.join(&f.name);
        let first = match first_line(&path) {
            Ok(first) => first,
            // Reported when the whole file is read.
            Err(_) if f.compressed => None,
            Err(e) => return Err(read_error(&path)(e)),
        };
        let Some(Ok(rec)) = first.as_deref().map(chain::open) else {
            continue;
        };
        if rec.kind() != "recovery" {
            continue;
        }
        let entries: Vec<DiscardedEntry> = rec
            .body
            .get("discarded")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        for e in entries {
            let earlier = FileName::parse(&e.file).is_some_and(|d| d.seq < f.seq);
            if earlier {
                acknowledged.insert(
                    e.file,
                    Acknowledged {
                        valid_bytes: e.valid_bytes,
                        by: f.name.clone(),
                    },
                );
            } else {
                problems.push(Problem {
                    file: f.name.clone(),
                    line: 1,
                    kind: ProblemKind::Broken,
                    message: format!(
                        "recovery record names `{}`, which is not an earlier record file",
                        e.file
                    ),
                });
            }
        }
    }
    Ok(acknowledged)
}

/// Pass 2: walks the chain record by record, across files in order, and
/// fills the report.
struct ChainWalk {
    report: Report,
    now: SystemTime,
    /// The replica whose chain this is: every record states it.
    replica: Option<ReplicaId>,
    /// Keys that may sign checkpoints (none: not checked).
    trusted: Vec<portcullis_keys::PublicKey>,
    /// Records up to and including the last checkpoint.
    anchored: u64,
    /// The hash before the records since the last checkpoint (the first
    /// record's `prev` until one is seen), and their Merkle tree, to check
    /// the root the next checkpoint states.
    interval_since: Option<Hash>,
    interval: crate::merkle::Frontier,
    /// The interval started at a checkpoint seen in this walk (not at the
    /// first record here): every record it covers is here.
    interval_whole: bool,
    /// The hash the next record must continue from, and where it came from.
    expected: Option<(Hash, String)>,
    /// The `prev` of the first record of the directory, and where it is.
    first_prev: Option<(Hash, String)>,
    retentions: Vec<Retention>,
    /// The time of the record before the current one, and of the first record.
    preceding_time: Option<SystemTime>,
    first_time: Option<SystemTime>,
    /// The sequence number of the file of the first record.
    first_seq: Option<u64>,
    /// The sequence number of the file before the current one.
    prev_seq: Option<u64>,
    /// Whether a line was seen (the next one is not the first of the directory).
    started: bool,
}

impl ChainWalk {
    fn new(report: Report, now: SystemTime, replica: Option<ReplicaId>) -> Self {
        Self {
            report,
            now,
            replica,
            trusted: Vec::new(),
            anchored: 0,
            interval_since: None,
            interval: crate::merkle::Frontier::new(),
            interval_whole: false,
            expected: None,
            first_prev: None,
            retentions: Vec::new(),
            preceding_time: None,
            first_time: None,
            first_seq: None,
            prev_seq: None,
            started: false,
        }
    }

    fn problem(&mut self, f: &FileName, line: usize, kind: ProblemKind, message: String) {
        self.report.problems.push(Problem {
            file: f.name.clone(),
            line,
            kind,
            message,
        });
    }

    /// File sequence numbers do not skip.
    fn check_sequence(&mut self, f: &FileName) {
        match self.prev_seq.map(|p| (p, p.checked_add(1))) {
            Some((_, Some(next))) if f.seq != next => self.problem(
                f,
                0,
                ProblemKind::Broken,
                format!(
                    "record file(s) with sequence number {next}..{} are missing before this one",
                    f.seq.saturating_sub(1)
                ),
            ),
            Some((p, None)) => self.problem(
                f,
                0,
                ProblemKind::Broken,
                format!("a record file follows the one with the last sequence number ({p})"),
            ),
            _ => {}
        }
        self.prev_seq = Some(f.seq);
    }

    /// How many of a file's `bytes` hold records: all of them, or the valid
    /// bytes a recovery record declares (what follows is noted as discarded).
    fn checked_length(&mut self, f: &FileName, bytes: &[u8], ack: Option<&Acknowledged>) -> usize {
        let Some(ack) = ack else {
            return bytes.len();
        };
        let valid = usize::try_from(ack.valid_bytes).unwrap_or(usize::MAX);
        let at_boundary = valid == 0 || bytes.get(valid.wrapping_sub(1)) == Some(&b'\n');
        if valid > bytes.len() || !at_boundary {
            self.problem(
                f,
                0,
                ProblemKind::Broken,
                format!(
                    "the recovery record in `{}` declares {valid} valid bytes, which is not the end of a line of this file ({} bytes)",
                    ack.by,
                    bytes.len()
                ),
            );
            return bytes.len();
        }
        if valid < bytes.len() {
            let line = bytes.get(..valid).map_or(0, count_lines) + 1;
            self.report.notes.push(format!(
                "{}:{line}: {} byte(s) from here on were discarded after a crash or a write error (acknowledged by the recovery record in {})",
                f.name,
                bytes.len() - valid,
                ack.by
            ));
        }
        valid
    }

    /// Checks the lines of one file (`content`, its bytes that hold records).
    fn check_lines(&mut self, f: &FileName, content: &[u8], last_file: bool) {
        let mut line_no = 0;
        let mut rest = content;
        while !rest.is_empty() {
            line_no += 1;
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                self.partial_line(f, line_no, rest.len(), last_file);
                break;
            };
            let line = rest.get(..end).unwrap_or_default();
            rest = rest.get(end + 1..).unwrap_or_default();
            self.check_line(f, line_no, line);
        }
    }

    /// A last line without a newline: a torn final record in the last file,
    /// else a broken file. The chain cannot continue from it.
    fn partial_line(&mut self, f: &FileName, line_no: usize, len: usize, last_file: bool) {
        if last_file {
            self.problem(
                f,
                line_no,
                ProblemKind::TornFinal,
                format!(
                    "torn final record: the last line ({len} bytes) has no newline; the writer stopped mid-record (crash or power loss) and the service has not restarted since (a restart seals it with a recovery record)"
                ),
            );
        } else {
            self.problem(
                f,
                line_no,
                ProblemKind::Broken,
                format!(
                    "partial record ({len} bytes, no newline) in a file that is not the last, and no recovery record accounts for it"
                ),
            );
        }
        self.expected = None;
    }

    /// Checks one complete line (without its newline).
    fn check_line(&mut self, f: &FileName, line_no: usize, line: &[u8]) {
        let first_in_dir = !self.started;
        self.started = true;
        if line.is_empty() {
            self.problem(f, line_no, ProblemKind::Broken, "empty line".into());
            return;
        }
        match chain::open(line) {
            Ok(rec) => self.check_record(f, line_no, &rec, first_in_dir),
            Err(e) => {
                self.problem(f, line_no, ProblemKind::Broken, e.to_string());
                // Keep checking from what the line says it was.
                self.expected = match e {
                    LineError::HashMismatch { stated } => {
                        Some((stated, format!("{}:{line_no}", f.name)))
                    }
                    _ => None,
                };
            }
        }
    }

    /// Checks a record whose hash is right: its link to the record before it,
    /// and, for a retention record, what it claims.
    fn check_record(
        &mut self,
        f: &FileName,
        line_no: usize,
        rec: &chain::Opened,
        first_in_dir: bool,
    ) {
        self.report.records += 1;
        self.check_link(f, line_no, rec, first_in_dir);
        let stated = rec
            .body
            .get("replica")
            .map(|r| r.as_str().unwrap_or("(not a string)"));
        if stated != self.replica.as_ref().map(ReplicaId::as_str) {
            let message = match (stated, &self.replica) {
                (Some(s), Some(r)) => {
                    format!("record of replica `{s}` in the chain of replica `{r}`")
                }
                (Some(s), None) => {
                    format!("record of replica `{s}` in a file named without a replica id")
                }
                (None, Some(r)) => {
                    format!("record without a replica id in the chain of replica `{r}`")
                }
                (None, None) => String::new(),
            };
            self.problem(f, line_no, ProblemKind::Broken, message);
        }
        let time = rec.str_field("time").and_then(chain::parse_time);
        if first_in_dir {
            self.first_time = time;
            self.first_seq = Some(f.seq);
        }
        if first_in_dir {
            self.interval_since = Some(rec.prev);
        }
        if rec.kind() == "checkpoint" {
            self.check_checkpoint(f, line_no, rec, time);
            self.check_interval(f, line_no, rec);
        } else {
            self.interval.push(&rec.hash);
        }
        if rec.kind() == "chain_retention" {
            if let (Some(replica), Some(newest)) = (
                rec.str_field("chain"),
                rec.str_field("deleted_newest").and_then(chain::parse_time),
            ) {
                self.report
                    .chains_retained
                    .push((replica.to_owned(), newest));
            }
            let at = format!("{}:{line_no}", f.name);
            for message in check_chain_retention(
                rec,
                self.preceding_time,
                self.now,
                &at,
                &mut self.report.notes,
            ) {
                self.problem(f, line_no, ProblemKind::Broken, message);
            }
        }
        if rec.kind() == "retention" {
            let at = format!("{}:{line_no}", f.name);
            let (retention, found) = check_retention(
                rec,
                self.preceding_time,
                self.now,
                at,
                &mut self.report.notes,
            );
            for message in found {
                self.problem(f, line_no, ProblemKind::Broken, message);
            }
            if let Some(newest) = retention.as_ref().and_then(|r| r.deleted_newest) {
                self.report.retained_until = self.report.retained_until.max(Some(newest));
            }
            self.retentions.extend(retention);
        }
        self.preceding_time = time.or(self.preceding_time);
        self.expected = Some((rec.hash, format!("{}:{line_no}", f.name)));
    }

    /// A record's `prev` is the hash of the record before it; that of the first
    /// record of the directory is kept for [`Self::check_start`].
    fn check_link(
        &mut self,
        f: &FileName,
        line_no: usize,
        rec: &chain::Opened,
        first_in_dir: bool,
    ) {
        let message = match &self.expected {
            Some((h, from)) if *h != rec.prev => Some(if line_no == 1 {
                format!(
                    "chain broken: this file does not continue from the last record before it ({from}): a record file or records are missing, or files were reordered"
                )
            } else {
                format!(
                    "chain broken: `prev` is not the hash of the record before it ({from}): a record was deleted, inserted or moved"
                )
            }),
            Some(_) => None,
            None => {
                if first_in_dir {
                    self.first_prev = Some((rec.prev, format!("{}:{line_no}", f.name)));
                }
                None
            }
        };
        if let Some(message) = message {
            self.problem(f, line_no, ProblemKind::Broken, message);
        }
    }

    /// The report, once every file is walked.
    /// A checkpoint: signed by a trusted key (when keys are given); it anchors
    /// every record up to it.
    fn check_checkpoint(
        &mut self,
        f: &FileName,
        line_no: usize,
        rec: &chain::Opened,
        time: Option<SystemTime>,
    ) {
        if !self.trusted.is_empty()
            && let Err(e) = crate::checkpoint::check(rec, &self.trusted)
        {
            self.problem(
                f,
                line_no,
                ProblemKind::Checkpoint,
                format!("checkpoint refused: {e}"),
            );
            return;
        }
        self.report.checkpoints += 1;
        self.report.checkpoint_hashes.push(rec.hash);
        self.anchored = self.report.records;
        self.report.last_checkpoint = Some(format!(
            "{}:{line_no} ({})",
            f.name,
            time.map(chain::record_time).unwrap_or_default()
        ));
    }

    /// A checkpoint's Merkle root is that of the records since the one
    /// before it (when they are all here: not when retention deleted the
    /// first of them). The next interval starts after it.
    fn check_interval(&mut self, f: &FileName, line_no: usize, rec: &chain::Opened) {
        let covered = crate::checkpoint::records(rec);
        match crate::checkpoint::interval(rec) {
            Err(e) => self.problem(f, line_no, ProblemKind::Broken, e),
            Ok(None) => {}
            Ok(Some(i)) if Some(i.since) == self.interval_since => {
                if covered != Some(self.interval.len()) || i.root != self.interval.root() {
                    self.problem(
                        f,
                        line_no,
                        ProblemKind::Broken,
                        format!(
                            "the checkpoint's Merkle root is not that of the {} record(s) since the one before it: records between them were altered, removed or added",
                            self.interval.len()
                        ),
                    );
                }
            }
            Ok(Some(_)) if self.interval_whole => self.report.notes.push(format!(
                "{}:{line_no}: this checkpoint's root does not cover the {} record(s) since the checkpoint before it (a writer started without finding that one, or checkpoints were off): the chain links them, but they cannot be exported with proofs",
                f.name,
                self.interval.len()
            )),
            Ok(Some(_)) => self.report.notes.push(format!(
                "{}:{line_no}: the first records this checkpoint covers are not here (deleted by retention, or written before the files here): its Merkle root is not checked",
                f.name
            )),
        }
        self.interval_since = Some(rec.hash);
        self.interval_whole = true;
        self.interval = crate::merkle::Frontier::new();
    }

    fn finish(mut self) -> Report {
        self.report.unanchored = self.report.records.saturating_sub(self.anchored);
        if !self.trusted.is_empty() && self.report.records > 0 && self.report.checkpoints == 0 {
            // Checked with keys, a chain no key signed proves nothing: it may
            // have been written, or rewritten, by anyone.
            self.report.problems.push(Problem {
                file: self.replica.as_ref().map_or_else(|| "records".to_owned(), |r| format!("replica {r}")),
                line: 0,
                kind: ProblemKind::Checkpoint,
                message: format!(
                    "no checkpoint signed by a trusted key in {} record(s): the chain may have been rewritten",
                    self.report.records
                ),
            });
        }
        self.report.first_time = self.first_time;
        if let Some((prev, at)) = self.first_prev.take() {
            self.check_start(prev, &at);
        }
        self.report.last_hash = self.expected.map(|(h, _)| chain::to_hex(&h));
        self.report
    }

    /// The chain starts from the genesis hash, or from the anchor of a
    /// retention record that accounts for the files before it (`prev` of the
    /// first record, at `at`).
    fn check_start(&mut self, prev: Hash, at: &str) {
        if prev == GENESIS {
            return;
        }
        let Some(r) = self.retentions.iter().find(|r| r.anchor == prev) else {
            self.report.problems.push(broken_at(at, "the chain does not start at the genesis hash and no retention record accounts for it: earlier record files are missing".into()));
            return;
        };
        // The deleted files are the ones right before the first kept one,
        // and nothing kept is older than what was deleted.
        let last_deleted = self.first_seq.and_then(|s| s.checked_sub(1));
        if last_deleted.is_none_or(|s| !r.deleted_seqs.contains(&s)) {
            self.report.problems.push(broken_at(at, format!(
                "the retention record at {} does not name the record file right before this one, which is missing",
                r.at
            )));
        }
        if let (Some(newest), Some(first)) = (r.deleted_newest, self.first_time)
            && first.checked_add(CLOCK_SLACK).is_some_and(|f| f < newest)
        {
            self.report.problems.push(broken_at(at, format!(
                    "the retention record at {} says it deleted records up to {}, later than this record, the first kept",
                    r.at,
                    chain::record_time(newest)
                )));
        }
        self.report
            .notes
            .push(format!("{at}: older records were deleted by retention (the retention record at {} accounts for them)", r.at));
    }
}

/// A broken chain at `at` (`file:line`).
fn broken_at(at: &str, message: String) -> Problem {
    let (file, line) = at.rsplit_once(':').unwrap_or((at, "1"));
    Problem {
        file: file.to_owned(),
        line: line.parse().unwrap_or(1),
        kind: ProblemKind::Broken,
        message,
    }
}

fn count_lines(b: &[u8]) -> usize {
    b.iter().filter(|c| **c == b'\n').count()
}

fn first_line(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut reader = chain::open_file(path)?;
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    Ok(line.strip_suffix(b"\n").map(<[u8]>::to_vec))
}
