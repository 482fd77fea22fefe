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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
#[error("cannot read `{path}`: {source}")]
pub struct VerifyError {
    pub path: PathBuf,
    pub source: std::io::Error,
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

/// Verifies every record file in `dir`.
pub fn verify_dir(dir: &Path) -> Result<Report, VerifyError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| VerifyError { path, source }
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
    let mut anchors: Vec<Hash> = Vec::new();
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
        if let Some(p) = prev_seq.filter(|p| f.seq != p + 1) {
            problem(
                0,
                ProblemKind::Broken,
                format!(
                    "record file(s) with sequence number {}..{} are missing before this one",
                    p + 1,
                    f.seq.saturating_sub(1)
                ),
            );
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
            if rec.kind() == "retention" {
                if let Some(a) = rec.str_field("anchor").and_then(chain::from_hex) {
                    anchors.push(a);
                }
            }
            expected = Some((rec.hash, format!("{}:{line_no}", f.name)));
        }
    }
    report.problems.extend(problems);
    if let Some((prev, at)) = first_prev {
        if prev == GENESIS {
        } else if anchors.contains(&prev) {
            report
                .notes
                .push(format!("{at}: older records were deleted by retention (a retention record accounts for them)"));
        } else {
            let (file, line) = at.rsplit_once(':').unwrap_or((&at, "1"));
            report.problems.push(Problem {
                file: file.to_owned(),
                line: line.parse().unwrap_or(1),
                kind: ProblemKind::Broken,
                message: "the chain does not start at the genesis hash and no retention record accounts for it: earlier record files are missing".into(),
            });
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
