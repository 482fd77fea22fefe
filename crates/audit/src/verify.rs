//! `portcullis records verify`: checks every record file of a directory.
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

use super::chain::{self, FileName, GENESIS, Hash, LineError};

/// What kind of problem was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// An edited, reordered, inserted or missing record or file.
    Broken,
    /// A partial last line in the last file (a crash mid-write, not yet recovered).
    TornFinal,
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
    let names: Vec<String> = rec
        .body
        .get("deleted")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let mut deleted_seqs = Vec::with_capacity(names.len());
    let mut starts = Vec::with_capacity(names.len());
    for n in &names {
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
    let Some(time) = time else {
        problems.push("retention record without a valid `time`".to_owned());
        return (None, problems);
    };
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
    let newest = match rec.str_field("deleted_newest") {
        None => {
            notes.push(format!(
                "{at}: retention record without `deleted_newest` (written by an older version): that what it deleted was past retention cannot be verified"
            ));
            None
        }
        Some(text) => match (chain::parse_time(text), days) {
            (Some(newest), Some(days)) => {
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
                for (name, started) in &starts {
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
            _ => {
                problems.push(
                    "retention record with an unreadable `deleted_newest` or `retain_days`"
                        .to_owned(),
                );
                None
            }
        },
    };
    let retention = Retention {
        anchor,
        deleted_newest: newest,
        deleted_seqs,
        at,
    };
    (Some(retention), problems)
}

/// Verifies every record file in `dir`.
pub fn verify_dir(dir: &Path) -> Result<Report, VerifyError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |cause| VerifyError { path, cause }
    };
    let files = chain::list(dir).map_err(err(dir))?;
    let mut report = Report {
        files: files.len(),
        ..Report::default()
    };
    for name in chain::strangers(dir).map_err(err(dir))? {
        report
            .notes
            .push(format!("{name}: ignored (not named like a record file)"));
    }

    // Pass 1: recovery records (always the first record of a file) say which
    // tails of earlier files were discarded.
    let mut acknowledged: HashMap<String, Acknowledged> = HashMap::new();
    for f in &files {
        let path = dir.join(&f.name);
        let first = first_line(&path).map_err(err(&path))?;
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
                report.problems.push(Problem {
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

    // Pass 2: the chain.
    let mut expected: Option<(Hash, String)> = None; // hash, where it came from
    let mut first_prev: Option<(Hash, String)> = None;
    let mut retentions: Vec<Retention> = Vec::new();
    // The time of the record before the current one, and of the first record.
    let mut preceding_time: Option<SystemTime> = None;
    let mut first_time: Option<SystemTime> = None;
    let mut first_seq: Option<u64> = None;
    let now = SystemTime::now();
    let mut prev_seq: Option<u64> = None;
    let mut started = false;
    let mut problems: Vec<Problem> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let last_file = i + 1 == files.len();
        let mut problem = |line: usize, kind: ProblemKind, message: String| {
            problems.push(Problem {
                file: f.name.clone(),
                line,
                kind,
                message,
            });
        };
        match prev_seq.map(|p| (p, p.checked_add(1))) {
            Some((_, Some(next))) if f.seq != next => problem(
                0,
                ProblemKind::Broken,
                format!(
                    "record file(s) with sequence number {next}..{} are missing before this one",
                    f.seq.saturating_sub(1)
                ),
            ),
            Some((p, None)) => problem(
                0,
                ProblemKind::Broken,
                format!("a record file follows the one with the last sequence number ({p})"),
            ),
            _ => {}
        }
        prev_seq = Some(f.seq);
        let path = dir.join(&f.name);
        let bytes = std::fs::read(&path).map_err(err(&path))?;
        let mut limit = bytes.len();
        if let Some(ack) = acknowledged.get(&f.name) {
            let valid = usize::try_from(ack.valid_bytes).unwrap_or(usize::MAX);
            let at_boundary = valid == 0 || bytes.get(valid.wrapping_sub(1)) == Some(&b'\n');
            if valid > bytes.len() || !at_boundary {
                problem(
                    0,
                    ProblemKind::Broken,
                    format!(
                        "the recovery record in `{}` declares {valid} valid bytes, which is not the end of a line of this file ({} bytes)",
                        ack.by,
                        bytes.len()
                    ),
                );
            } else {
                if valid < bytes.len() {
                    let line = bytes.get(..valid).map_or(0, count_lines) + 1;
                    report.notes.push(format!(
                        "{}:{line}: {} byte(s) from here on were discarded after a crash or a write error (acknowledged by the recovery record in {})",
                        f.name,
                        bytes.len() - valid,
                        ack.by
                    ));
                }
                limit = valid;
            }
        }
        let content = bytes.get(..limit).unwrap_or_default();
        let mut line_no = 0;
        let mut rest = content;
        while !rest.is_empty() {
            line_no += 1;
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                if last_file {
                    problem(
                        line_no,
                        ProblemKind::TornFinal,
                        format!(
                            "torn final record: the last line ({} bytes) has no newline; the writer stopped mid-record (crash or power loss) and the service has not restarted since (a restart seals it with a recovery record)",
                            rest.len()
                        ),
                    );
                } else {
                    problem(
                        line_no,
                        ProblemKind::Broken,
                        format!(
                            "partial record ({} bytes, no newline) in a file that is not the last, and no recovery record accounts for it",
                            rest.len()
                        ),
                    );
                }
                expected = None;
                break;
            };
            let line = rest.get(..end).unwrap_or_default();
            rest = rest.get(end + 1..).unwrap_or_default();
            let first_in_dir = !started;
            started = true;
            if line.is_empty() {
                problem(line_no, ProblemKind::Broken, "empty line".into());
                continue;
            }
            let rec = match chain::open(line) {
                Ok(rec) => rec,
                Err(e) => {
                    problem(line_no, ProblemKind::Broken, e.to_string());
                    // Keep checking from what the line says it was.
                    expected = match e {
                        LineError::HashMismatch { stated } => {
                            Some((stated, format!("{}:{line_no}", f.name)))
                        }
                        _ => None,
                    };
                    continue;
                }
            };
            report.records += 1;
            match &expected {
                Some((h, from)) if *h != rec.prev => {
                    let message = if line_no == 1 {
                        format!(
                            "chain broken: this file does not continue from the last record before it ({from}): a record file or records are missing, or files were reordered"
                        )
                    } else {
                        format!(
                            "chain broken: `prev` is not the hash of the record before it ({from}): a record was deleted, inserted or moved"
                        )
                    };
                    problem(line_no, ProblemKind::Broken, message);
                }
                Some(_) => {}
                None if first_in_dir => {
                    first_prev = Some((rec.prev, format!("{}:{line_no}", f.name)));
                }
                None => {}
            }
            let time = rec.str_field("time").and_then(chain::parse_time);
            if first_in_dir {
                first_time = time;
                first_seq = Some(f.seq);
            }
            if rec.kind() == "retention" {
                let at = format!("{}:{line_no}", f.name);
                let (retention, found) =
                    check_retention(&rec, preceding_time, now, at, &mut report.notes);
                for message in found {
                    problem(line_no, ProblemKind::Broken, message);
                }
                retentions.extend(retention);
            }
            preceding_time = time.or(preceding_time);
            expected = Some((rec.hash, format!("{}:{line_no}", f.name)));
        }
    }
    report.problems.extend(problems);
    if let Some((prev, at)) = first_prev {
        let (file, line) = at.rsplit_once(':').unwrap_or((&at, "1"));
        let mut broken = |message: String| {
            report.problems.push(Problem {
                file: file.to_owned(),
                line: line.parse().unwrap_or(1),
                kind: ProblemKind::Broken,
                message,
            });
        };
        if prev == GENESIS {
        } else if let Some(r) = retentions.iter().find(|r| r.anchor == prev) {
            // The deleted files are the ones right before the first kept one,
            // and nothing kept is older than what was deleted.
            let last_deleted = first_seq.and_then(|s| s.checked_sub(1));
            if last_deleted.is_none_or(|s| !r.deleted_seqs.contains(&s)) {
                broken(format!(
                    "the retention record at {} does not name the record file right before this one, which is missing",
                    r.at
                ));
            }
            if let (Some(newest), Some(first)) = (r.deleted_newest, first_time) {
                if first.checked_add(CLOCK_SLACK).is_some_and(|f| f < newest) {
                    broken(format!(
                        "the retention record at {} says it deleted records up to {}, later than this record, the first kept",
                        r.at,
                        chain::record_time(newest)
                    ));
                }
            }
            report
                .notes
                .push(format!("{at}: older records were deleted by retention (the retention record at {} accounts for them)", r.at));
        } else {
            broken("the chain does not start at the genesis hash and no retention record accounts for it: earlier record files are missing".into());
        }
    }
    report.last_hash = expected.map(|(h, _)| chain::to_hex(&h));
    Ok(report)
}

fn count_lines(b: &[u8]) -> usize {
    b.iter().filter(|c| **c == b'\n').count()
}

fn first_line(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::BufRead as _;
    let mut reader = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    Ok(line.strip_suffix(b"\n").map(<[u8]>::to_vec))
}
