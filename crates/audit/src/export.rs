//! `portcullis records export` and `records check-export`: the records a
//! regulator asks for (one customer's, one measure's, a period's), each with
//! the proof that it is in the signed chain, and nothing of anyone else.
//!
//! An export is one JSON Lines file:
//!
//! 1. a header: the format, a plain-language summary (`readme`), what was
//!    selected, the public keys that signed the checkpoints, the counts;
//! 2. for each signed checkpoint that covers selected records, the checkpoint
//!    line as the service wrote it (`{"checkpoint":"<line>"}`), followed by
//!    each selected record it covers: the line verbatim, its position among
//!    the records the checkpoint covers, and the Merkle path from its hash to
//!    the root the checkpoint signs (`{"record":"<line>","index":N,"path":[…]}`).
//!
//! A record's hash is computed from its own line; the path holds only hashes,
//! so the records beside it (other customers') are proven without being shown.
//! `check-export` checks every line and re-renders the file from what it
//! checked: a changed byte anywhere (the summary included) fails.
//!
//! Selected records after a chain's last checkpoint (or covered by one
//! written before checkpoints stated roots) cannot be proven yet: they are
//! counted and left out, never written unproven.

use std::collections::BTreeSet;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use memchr::memmem;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use portcullis_keys::PublicKey;

use super::chain::{self, Hash};
use super::query::Filter;
use super::{checkpoint, merkle};

/// The format of an export.
pub const FORMAT: &str = "portcullis.records.export.v1";

/// What an export selects (every given part must match). Times are RFC 3339.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// `customer.id` as the records hold it: its keyed hash, and the id in
    /// clear (for records written with identities in clear).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customer_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.customer_ids.is_empty()
            && self.measure.is_none()
            && self.from.is_none()
            && self.to.is_none()
    }

    fn filter(&self) -> Result<Filter, String> {
        let time = |t: &Option<String>| {
            t.as_deref()
                .map(|text| {
                    chain::parse_time(text).ok_or(format!("`{text}` is not an RFC 3339 time"))
                })
                .transpose()
        };
        Ok(Filter {
            customer_ids: self.customer_ids.clone(),
            measure: self.measure.clone(),
            from: time(&self.from)?,
            to: time(&self.to)?,
            ..Filter::default()
        })
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.customer_ids.is_empty() {
            parts.push(format!("customer id {}", self.customer_ids.join(" or ")));
        }
        if let Some(m) = &self.measure {
            parts.push(format!("measure {m}"));
        }
        match (&self.from, &self.to) {
            (Some(f), Some(t)) => parts.push(format!("from {f} to {t}")),
            (Some(f), None) => parts.push(format!("from {f}")),
            (None, Some(t)) => parts.push(format!("up to {t}")),
            (None, None) => {}
        }
        parts.join("; ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    key_id: String,
    pem: String,
}

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    readme: Vec<String>,
    selection: Selection,
    public_keys: Vec<KeyEntry>,
    records: u64,
    checkpoints: u64,
    replicas: Vec<String>,
    first: Option<String>,
    last: Option<String>,
}

impl Header {
    /// The header of an export of `records` records under `checkpoints`
    /// checkpoints: everything but the selection and the keys follows from
    /// the records.
    fn new(selection: Selection, keys: Vec<KeyEntry>, c: &Contents) -> Self {
        let replicas: Vec<String> = c.replicas.iter().cloned().collect();
        let key_ids: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
        let mut readme = vec![
            "Decision records exported by Portcullis, each with the proof that it is in the signed record chain.".to_owned(),
            format!("Selected: {}.", selection.describe()),
            format!(
                "{} record(s) of replica(s) {}, written from {} to {}, under {} signed checkpoint(s).",
                c.records,
                if replicas.is_empty() { "(none)".to_owned() } else { replicas.join(", ") },
                c.first.as_deref().unwrap_or("-"),
                c.last.as_deref().unwrap_or("-"),
                c.checkpoints
            ),
            "Each `record` is a line the service wrote, verbatim. Its hash is SHA-256 over the line without its `hash` member.".to_owned(),
            "`path` holds the hashes (RFC 6962, leaf to root) from that hash to the Merkle root stated by the `checkpoint` above it, which covers `index` and the other records written since the checkpoint before it.".to_owned(),
            format!(
                "Each checkpoint is signed with Ed25519 (context `{}`) by key {} below.",
                checkpoint::CONTEXT.trim_end(),
                key_ids.join(", ")
            ),
            "Records of other customers are not here: only their hashes appear, in paths.".to_owned(),
            "Check it with: portcullis records check-export FILE --trust-key PUBLIC_KEY".to_owned(),
        ];
        readme.retain(|l| !l.is_empty());
        Self {
            format: FORMAT.to_owned(),
            readme,
            selection,
            public_keys: keys,
            records: c.records,
            checkpoints: c.checkpoints,
            replicas,
            first: c.first.clone(),
            last: c.last.clone(),
        }
    }
}

/// One line after the header.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum Entry {
    Checkpoint {
        checkpoint: String,
    },
    Record {
        record: String,
        index: u64,
        path: Vec<String>,
    },
}

/// What the records of an export add up to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Contents {
    records: u64,
    checkpoints: u64,
    replicas: BTreeSet<String>,
    first: Option<String>,
    last: Option<String>,
}

impl Contents {
    fn add(&mut self, rec: &chain::Opened) {
        self.records += 1;
        if let Some(r) = rec.str_field("replica") {
            self.replicas.insert(r.to_owned());
        }
        if let Some(t) = rec.str_field("time") {
            if self.first.as_deref().is_none_or(|f| t < f) {
                self.first = Some(t.to_owned());
            }
            if self.last.as_deref().is_none_or(|l| t > l) {
                self.last = Some(t.to_owned());
            }
        }
    }
}

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot read `{path}`: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot write `{path}`: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{0}")]
    Selection(String),
    #[error(
        "no record to export: {} selected under a signed root of {} line(s) read ({} after the last checkpoint, {} unprovable); no file written",
        .0.records, .0.lines, .0.unanchored, .0.unprovable
    )]
    Nothing(ExportStats),
    #[error(
        "{at}: {message}: the records cannot be proven as they are (run `portcullis records verify`)"
    )]
    Broken { at: String, message: String },
    #[error(
        "{at}: the checkpoint is not signed by a trusted key ({cause}): pass its public key with --trust-key"
    )]
    Untrusted { at: String, cause: String },
}

/// What an export found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportStats {
    /// Records written, each with its proof.
    pub records: u64,
    pub checkpoints: u64,
    /// Selected records after their chain's last checkpoint: left out.
    pub unanchored: u64,
    /// Selected records under a checkpoint without a Merkle root (written
    /// before checkpoints stated one), or whose first covered records are
    /// gone: left out.
    pub unprovable: u64,
    /// Lines read.
    pub lines: u64,
}

/// Writes the export of the records of `dirs` that `selection` selects to
/// `out` (atomically: a temporary file beside it, renamed). Every checkpoint
/// used must be signed by one of `keys`.
pub fn export(
    dirs: &[PathBuf],
    selection: &Selection,
    keys: &[PublicKey],
    out: &Path,
) -> Result<ExportStats, ExportError> {
    if selection.is_empty() {
        return Err(ExportError::Selection(
            "select by customer id, measure or period".into(),
        ));
    }
    let filter = selection.filter().map_err(ExportError::Selection)?;
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(ExportError::Selection(
            "--from is after --to: the period selects nothing".into(),
        ));
    }
    let write_error = |cause| ExportError::Write {
        path: out.to_owned(),
        cause,
    };
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut body = tempfile::tempfile_in(parent).map_err(write_error)?;
    let mut stats = ExportStats::default();
    let mut contents = Contents::default();
    let mut used_keys = BTreeSet::new();
    {
        let mut w = BufWriter::new(&mut body);
        let mut walk = Walk {
            filter: &filter,
            // An id JSON escapes in a line is not looked for as it is: then
            // every line is parsed.
            finders: if selection
                .customer_ids
                .iter()
                .all(|id| !id.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20))
            {
                selection
                    .customer_ids
                    .iter()
                    .map(|id| memmem::Finder::new(id.as_bytes()).into_owned())
                    .collect()
            } else {
                Vec::new()
            },
            keys,
            out: &mut w,
            stats: &mut stats,
            contents: &mut contents,
            used_keys: &mut used_keys,
        };
        let mut seen = std::collections::HashSet::new();
        for dir in dirs {
            if !seen.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone())) {
                continue;
            }
            let chains = chain::chains(dir).map_err(|cause| ExportError::Read {
                path: dir.clone(),
                cause,
            })?;
            for c in chains {
                walk.chain(dir, &c.files)?;
            }
        }
        w.flush().map_err(write_error)?;
    }
    let key_entries = keys
        .iter()
        .filter(|k| used_keys.contains(&k.id()))
        .map(|k| {
            Ok(KeyEntry {
                key_id: k.id(),
                pem: k
                    .to_pem()
                    .map_err(|e| ExportError::Selection(e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, ExportError>>()?;
    if contents.records == 0 {
        return Err(ExportError::Nothing(stats));
    }
    let header = Header::new(selection.clone(), key_entries, &contents);
    let mut file = tempfile::NamedTempFile::new_in(parent).map_err(write_error)?;
    {
        use std::io::Seek as _;
        let mut w = BufWriter::new(file.as_file_mut());
        serde_json::to_writer(&mut w, &header).map_err(|e| write_error(e.into()))?;
        w.write_all(b"\n").map_err(write_error)?;
        body.rewind().map_err(write_error)?;
        std::io::copy(&mut body, &mut w).map_err(write_error)?;
        w.flush().map_err(write_error)?;
    }
    file.as_file().sync_all().map_err(write_error)?;
    file.persist(out).map_err(|e| write_error(e.error))?;
    Ok(stats)
}

/// Walks chains, writing what is selected with its proofs.
struct Walk<'a, W: Write> {
    filter: &'a Filter,
    /// One per customer id: a line without any of them is not parsed.
    finders: Vec<memmem::Finder<'static>>,
    keys: &'a [PublicKey],
    out: &'a mut W,
    stats: &'a mut ExportStats,
    contents: &'a mut Contents,
    used_keys: &'a mut BTreeSet<String>,
}

/// A selected record waiting for the checkpoint that covers it.
struct Pending {
    index: usize,
    line: Vec<u8>,
}

impl<W: Write> Walk<'_, W> {
    fn chain(&mut self, dir: &Path, files: &[chain::FileName]) -> Result<(), ExportError> {
        // The hashes of the records since the last checkpoint, and the hash
        // before the first of them.
        let mut hashes: Vec<Hash> = Vec::new();
        let mut since: Option<Hash> = None;
        let mut pending: Vec<Pending> = Vec::new();
        let mut first = true;
        let valid = crate::verify::valid_lengths(dir, files).map_err(|e| ExportError::Read {
            path: e.path,
            cause: e.cause,
        })?;
        for f in files {
            let path = dir.join(&f.name);
            let mut bytes = chain::read_file(&path).map_err(|cause| ExportError::Read {
                path: path.clone(),
                cause,
            })?;
            // What a recovery record declares discarded is no record.
            if let Some(len) = valid.get(f.base()) {
                bytes.truncate(*len);
            }
            // Complete lines only: a torn final record is no record.
            let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            for (i, line) in bytes
                .get(..complete)
                .unwrap_or_default()
                .split(|b| *b == b'\n')
                .enumerate()
            {
                if line.is_empty() {
                    continue;
                }
                self.stats.lines += 1;
                let at = || format!("{}:{}", f.name, i + 1);
                let Some(hash) = chain::stated_hash(line) else {
                    return Err(ExportError::Broken {
                        at: at(),
                        message: "not a record".into(),
                    });
                };
                if first {
                    first = false;
                    since = chain::open(line).ok().map(|r| r.prev);
                }
                if chain::is_checkpoint(line) {
                    if !pending.is_empty() {
                        self.prove(&at(), line, since, &hashes, &pending)?;
                    }
                    hashes.clear();
                    pending.clear();
                    since = Some(hash);
                    continue;
                }
                if self.candidate(line) {
                    let rec = chain::open(line).map_err(|e| ExportError::Broken {
                        at: at(),
                        message: e.to_string(),
                    })?;
                    if self.filter.matches(&Value::Object(rec.body)) {
                        pending.push(Pending {
                            index: hashes.len(),
                            line: line.to_vec(),
                        });
                    }
                }
                hashes.push(hash);
            }
        }
        self.stats.unanchored += pending.len() as u64;
        Ok(())
    }

    /// Whether a line may be selected (a cheap look for the customer ids
    /// before the line is parsed).
    fn candidate(&self, line: &[u8]) -> bool {
        self.finders.is_empty() || self.finders.iter().any(|f| f.find(line).is_some())
    }

    /// Writes the checkpoint `line` and the `pending` records it covers, each
    /// with its path, once the root of `hashes` is the one it signs.
    fn prove(
        &mut self,
        at: &str,
        line: &[u8],
        since: Option<Hash>,
        hashes: &[Hash],
        pending: &[Pending],
    ) -> Result<(), ExportError> {
        let broken = |message: String| ExportError::Broken {
            at: at.to_owned(),
            message,
        };
        let rec = chain::open(line).map_err(|e| broken(e.to_string()))?;
        let key_id =
            checkpoint::check(&rec, self.keys).map_err(|cause| ExportError::Untrusted {
                at: at.to_owned(),
                cause,
            })?;
        let interval = match checkpoint::interval(&rec).map_err(broken)? {
            Some(i) if Some(i.since) == since => i,
            // Written before roots, or its first records are not here.
            _ => {
                self.stats.unprovable += pending.len() as u64;
                return Ok(());
            }
        };
        let targets: Vec<usize> = pending.iter().map(|p| p.index).collect();
        let (root, paths) = merkle::root_and_paths(hashes, &targets);
        if root != interval.root || checkpoint::records(&rec) != Some(hashes.len() as u64) {
            return Err(broken(format!(
                "the records since the checkpoint before this one ({}) do not make the Merkle root it signs",
                hashes.len()
            )));
        }
        self.used_keys.insert(key_id);
        self.stats.checkpoints += 1;
        self.contents.checkpoints += 1;
        let text = |bytes: &[u8]| {
            String::from_utf8(bytes.to_vec()).map_err(|_| broken("a record is not UTF-8".into()))
        };
        self.emit(&Entry::Checkpoint {
            checkpoint: text(line)?,
        })?;
        for (p, path) in pending.iter().zip(paths) {
            let opened = chain::open(&p.line).map_err(|e| broken(e.to_string()))?;
            self.contents.add(&opened);
            self.stats.records += 1;
            self.emit(&Entry::Record {
                record: text(&p.line)?,
                index: p.index as u64,
                path: path.iter().map(chain::to_hex).collect(),
            })?;
        }
        Ok(())
    }

    fn emit(&mut self, entry: &Entry) -> Result<(), ExportError> {
        let write = |e: std::io::Error| ExportError::Write {
            path: PathBuf::from("(export)"),
            cause: e,
        };
        serde_json::to_writer(&mut *self.out, entry).map_err(|e| write(e.into()))?;
        self.out.write_all(b"\n").map_err(write)
    }
}

/// What a checked export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub records: u64,
    pub checkpoints: u64,
    pub replicas: Vec<String>,
    pub key_ids: Vec<String>,
    pub first: Option<String>,
    pub last: Option<String>,
    pub selection: String,
}

/// Why an export does not check out.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read `{path}`: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("line {line}: {message}")]
    Invalid { line: u64, message: String },
}

/// Checks an export offline against `trusted` keys: every checkpoint signed
/// by one of them, every record hashed, selected and proven under the
/// checkpoint before it, and the file exactly as `export` writes what it
/// holds.
pub fn check_export(path: &Path, trusted: &[PublicKey]) -> Result<Checked, CheckError> {
    let file = std::fs::File::open(path).map_err(|cause| CheckError::Read {
        path: path.to_owned(),
        cause,
    })?;
    check_reader(std::io::BufReader::new(file), trusted).map_err(|e| match e {
        CheckError::Read { cause, .. } => CheckError::Read {
            path: path.to_owned(),
            cause,
        },
        other => other,
    })
}

/// [`check_export`] over any reader.
pub fn check_reader(mut input: impl BufRead, trusted: &[PublicKey]) -> Result<Checked, CheckError> {
    let invalid = |line: u64, message: String| CheckError::Invalid { line, message };
    let mut raw = Vec::new();
    let mut lines = 0u64;
    let mut read_line = |raw: &mut Vec<u8>| -> Result<bool, CheckError> {
        raw.clear();
        lines += 1;
        let n = std::io::Read::take(&mut input, MAX_LINE + 1)
            .read_until(b'\n', raw)
            .map_err(|cause| CheckError::Read {
                path: PathBuf::new(),
                cause,
            })?;
        if n as u64 > MAX_LINE {
            return Err(CheckError::Invalid {
                line: lines,
                message: format!("a line over {MAX_LINE} bytes: not an export"),
            });
        }
        Ok(n > 0)
    };
    if !read_line(&mut raw)? {
        return Err(invalid(1, "empty file: not an export".into()));
    }
    let header_line = raw.clone();
    let header: Header = serde_json::from_slice(strip_newline(&header_line, 1)?)
        .map_err(|e| invalid(1, format!("not an export header: {e}")))?;
    if header.selection.is_empty() {
        return Err(invalid(1, "an export selects nothing".into()));
    }
    if header.format != FORMAT {
        return Err(invalid(
            1,
            format!("format `{}`, expected `{FORMAT}`", header.format),
        ));
    }
    let mut keys = Vec::new();
    for k in &header.public_keys {
        let key = PublicKey::from_pem(&k.pem, "the export's key")
            .map_err(|e| invalid(1, e.to_string()))?;
        if key.id() != k.key_id {
            return Err(invalid(
                1,
                format!("key {} is listed as {}", key.id(), k.key_id),
            ));
        }
        if !trusted.contains(&key) {
            return Err(invalid(
                1,
                format!(
                    "the export's key {} is not one of the trusted keys",
                    k.key_id
                ),
            ));
        }
        keys.push(key);
    }
    let filter = header.selection.filter().map_err(|e| invalid(1, e))?;
    let mut contents = Contents::default();
    let mut used_keys = BTreeSet::new();
    // The checkpoint the records that follow are proven under.
    struct Current {
        root: Hash,
        size: u64,
        replica: Option<String>,
        last_index: Option<u64>,
    }
    let mut current: Option<Current> = None;
    let mut seen: std::collections::HashSet<Hash> = std::collections::HashSet::new();
    let mut line_no = 1u64;
    while read_line(&mut raw)? {
        line_no += 1;
        let text = strip_newline(&raw, line_no)?;
        let entry: Entry = serde_json::from_slice(text)
            .map_err(|e| invalid(line_no, format!("not an export entry: {e}")))?;
        let rendered = serde_json::to_vec(&entry).map_err(|e| invalid(line_no, e.to_string()))?;
        if rendered != text {
            return Err(invalid(
                line_no,
                "not written as an export writes it: altered".into(),
            ));
        }
        match entry {
            Entry::Checkpoint { checkpoint } => {
                if current.as_ref().is_some_and(|c| c.last_index.is_none()) {
                    return Err(invalid(line_no - 1, "a checkpoint without records".into()));
                }
                let rec = chain::open(checkpoint.as_bytes())
                    .map_err(|e| invalid(line_no, format!("checkpoint: {e}")))?;
                if rec.kind() != "checkpoint" {
                    return Err(invalid(line_no, "not a checkpoint".into()));
                }
                let key_id = checkpoint::check(&rec, &keys)
                    .map_err(|e| invalid(line_no, format!("checkpoint refused: {e}")))?;
                let interval = checkpoint::interval(&rec)
                    .map_err(|e| invalid(line_no, e))?
                    .ok_or_else(|| invalid(line_no, "a checkpoint without a Merkle root".into()))?;
                let replica = rec.str_field("replica").map(str::to_owned);
                if !seen.insert(rec.hash) {
                    return Err(invalid(line_no, "a checkpoint listed twice".into()));
                }
                used_keys.insert(key_id);
                contents.checkpoints += 1;
                current = Some(Current {
                    root: interval.root,
                    size: checkpoint::records(&rec).unwrap_or(0),
                    replica,
                    last_index: None,
                });
            }
            Entry::Record {
                record,
                index,
                path,
            } => {
                let Some(c) = current.as_mut() else {
                    return Err(invalid(line_no, "a record before any checkpoint".into()));
                };
                let rec = chain::open(record.as_bytes())
                    .map_err(|e| invalid(line_no, format!("record: {e}")))?;
                if rec.str_field("replica").map(str::to_owned) != c.replica {
                    return Err(invalid(
                        line_no,
                        "a record of another replica than its checkpoint".into(),
                    ));
                }
                if c.last_index.is_some_and(|l| index <= l) {
                    return Err(invalid(line_no, "records out of chain order".into()));
                }
                c.last_index = Some(index);
                let hashes = path
                    .iter()
                    .map(|h| chain::from_hex(h))
                    .collect::<Option<Vec<Hash>>>()
                    .ok_or_else(|| {
                        invalid(line_no, "a path hash that is not 64 hex digits".into())
                    })?;
                if !merkle::verify(&c.root, c.size, index, &rec.hash, &hashes) {
                    return Err(invalid(
                        line_no,
                        "the record's path does not lead to its checkpoint's root: the record or its proof was altered".into(),
                    ));
                }
                contents.add(&rec);
                if !filter.matches(&Value::Object(rec.body)) {
                    return Err(invalid(
                        line_no,
                        "a record the selection does not select".into(),
                    ));
                }
            }
        }
    }
    if current.as_ref().is_some_and(|c| c.last_index.is_none()) {
        return Err(invalid(line_no, "a checkpoint without records".into()));
    }
    if contents.records == 0 {
        return Err(invalid(
            line_no,
            "an export without records proves nothing".into(),
        ));
    }
    let unused: Vec<&str> = header
        .public_keys
        .iter()
        .map(|k| k.key_id.as_str())
        .filter(|id| !used_keys.contains(*id))
        .collect();
    if !unused.is_empty() {
        return Err(invalid(
            1,
            format!("key(s) {} sign nothing here", unused.join(", ")),
        ));
    }
    let expected = Header::new(
        header.selection.clone(),
        header.public_keys.clone(),
        &contents,
    );
    let rendered = serde_json::to_vec(&expected).map_err(|e| invalid(1, e.to_string()))?;
    if rendered != strip_newline(&header_line, 1)? {
        return Err(invalid(
            1,
            "the header does not state what the file holds (its counts, times or summary were altered)".into(),
        ));
    }
    Ok(Checked {
        records: contents.records,
        checkpoints: contents.checkpoints,
        replicas: contents.replicas.into_iter().collect(),
        key_ids: header.public_keys.into_iter().map(|k| k.key_id).collect(),
        first: contents.first,
        last: contents.last,
        selection: header.selection.describe(),
    })
}

/// The longest line an export may hold (a record line is a few kB).
const MAX_LINE: u64 = 16 * 1024 * 1024;

/// A line without its newline; a line without one is not as written.
fn strip_newline(raw: &[u8], line: u64) -> Result<&[u8], CheckError> {
    raw.strip_suffix(b"\n").ok_or(CheckError::Invalid {
        line,
        message: "the last line has no newline: the file was cut".into(),
    })
}
