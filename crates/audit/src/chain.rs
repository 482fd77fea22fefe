//! The hash chain and the file layout of decision records.
//!
//! A record file is JSON Lines. Each line is one JSON object whose first member is
//! `prev` (the hash of the record before it) and whose last member is `hash`:
//!
//! ```text
//! {"prev":"<64 hex>","kind":"decision",...,"hash":"<64 hex>"}
//! ```
//!
//! `hash` is SHA-256 over the exact bytes of the line with its `,"hash":"…"` member
//! removed (so the hashed text is itself a JSON object). Nothing is re-serialised to
//! check a line: the bytes on disk are what is hashed. The first record of a file
//! carries the last hash of the file before it, and the first record ever carries
//! [`GENESIS`]. Files are named `records-<replica>-<UTC yyyymmddThhmmssZ>-<seq>.jsonl`;
//! the sequence number grows by one per file, so a missing file is a gap.
//!
//! Each replica of a fleet writes its own chain, named by its replica id, and
//! every record it writes states that id as its second member (`"replica"`).
//! Several chains can share a directory (a shared volume, or files gathered
//! from many replicas): each is read and checked on its own. Files named
//! `records-<stamp>-<seq>.jsonl` (written before replica ids) form one more
//! chain, without a replica.
//!
//! A file the writer has closed is compressed with zstd
//! (`records-….jsonl.zst`). The chain is over the lines, never the bytes on
//! disk: every reader decompresses ([`read_file`]), and records name files by
//! their base name (`….jsonl`), which compression does not change.

use std::path::Path;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// A SHA-256 chain hash.
pub type Hash = [u8; 32];

/// The `prev` of the very first record.
pub const GENESIS: Hash = [0; 32];

const HASH_MEMBER: &[u8] = b",\"hash\":\"";
/// `,"hash":"` + 64 hex digits + `"}`.
const SUFFIX_LEN: usize = HASH_MEMBER.len() + 64 + 2;

pub fn to_hex(hash: &Hash) -> String {
    super::hex_string(hash)
}

pub fn from_hex(text: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Why a record could not be sealed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a record must be a JSON object")]
pub struct NotAnObject;

/// Chains `record` (a serialised JSON object without `prev` and `hash`) after
/// `prev`: returns the full line, newline included, and its hash.
pub fn seal(prev: &Hash, record: &[u8]) -> Result<(Vec<u8>, Hash), NotAnObject> {
    let mut line = Vec::with_capacity(record.len() + 160);
    let hash = seal_into(prev, record, &mut line)?;
    Ok((line, hash))
}

/// [`seal`], appending the line to `out` (the writer builds a group in one
/// buffer). On error nothing is appended.
pub fn seal_into(prev: &Hash, record: &[u8], out: &mut Vec<u8>) -> Result<Hash, NotAnObject> {
    seal_as(prev, None, record, out)
}

/// [`seal_into`] for the chain of `replica`: the line states it right after
/// `prev`.
pub fn seal_as(
    prev: &Hash,
    replica: Option<&ReplicaId>,
    record: &[u8],
    out: &mut Vec<u8>,
) -> Result<Hash, NotAnObject> {
    let inner = record
        .strip_prefix(b"{")
        .and_then(|r| r.strip_suffix(b"}"))
        .ok_or(NotAnObject)?;
    let start = out.len();
    out.reserve(record.len() + 160);
    out.extend_from_slice(b"{\"prev\":\"");
    super::push_hex(out, prev);
    out.push(b'"');
    if let Some(r) = replica {
        // A replica id needs no JSON escaping (see `ReplicaId`).
        out.extend_from_slice(b",\"replica\":\"");
        out.extend_from_slice(r.as_str().as_bytes());
        out.push(b'"');
    }
    if !inner.iter().all(u8::is_ascii_whitespace) {
        out.push(b',');
        out.extend_from_slice(inner);
    }
    out.push(b'}');
    let hash: Hash = Sha256::digest(out.get(start..).unwrap_or_default()).into();
    out.pop();
    out.extend_from_slice(HASH_MEMBER);
    super::push_hex(out, &hash);
    out.extend_from_slice(b"\"}\n");
    Ok(hash)
}

/// Why a line is not a valid record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    #[error("not a record: no `hash` member at the end of the line")]
    NoHash,
    #[error("record altered: its hash does not match its content")]
    HashMismatch { stated: Hash },
    #[error("not a record: {0}")]
    Invalid(String),
}

/// A line that checked out: its own hash, its `prev`, and the parsed object
/// (without `hash`).
#[derive(Debug)]
pub struct Opened {
    pub hash: Hash,
    pub prev: Hash,
    pub body: serde_json::Map<String, serde_json::Value>,
}

impl Opened {
    pub fn kind(&self) -> &str {
        self.body
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(|v| v.as_str())
    }
}

/// The hash a line states, without checking it (the line has no newline).
pub fn stated_hash(line: &[u8]) -> Option<Hash> {
    let start = line.len().checked_sub(SUFFIX_LEN)?;
    let suffix = line.get(start..)?;
    let hex = suffix.get(HASH_MEMBER.len()..HASH_MEMBER.len() + 64)?;
    if !suffix.starts_with(HASH_MEMBER) || !suffix.ends_with(b"\"}") {
        return None;
    }
    from_hex(std::str::from_utf8(hex).ok()?)
}

/// Checks one line (without its newline): the hash matches the content and the
/// content is a JSON object with a `prev` hash.
pub fn open(line: &[u8]) -> Result<Opened, LineError> {
    let stated = stated_hash(line).ok_or(LineError::NoHash)?;
    let body_len = line.len() - SUFFIX_LEN;
    let mut body = Vec::with_capacity(body_len + 1);
    body.extend_from_slice(line.get(..body_len).unwrap_or_default());
    body.push(b'}');
    let computed: Hash = Sha256::digest(&body).into();
    if computed != stated {
        return Err(LineError::HashMismatch { stated });
    }
    let parsed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&body).map_err(|e| LineError::Invalid(e.to_string()))?;
    let prev = parsed
        .get("prev")
        .and_then(|p| p.as_str())
        .and_then(from_hex)
        .ok_or_else(|| LineError::Invalid("no `prev` hash".into()))?;
    Ok(Opened {
        hash: stated,
        prev,
        body: parsed,
    })
}

/// The name of one replica's chain (`serve --replica-id`, by default the host
/// name): 1 to 64 ASCII letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit. It appears in file names and, unescaped, in records.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ReplicaId(String);

/// Why a text is not a replica id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "`{0}` is not a replica id: use 1 to 64 ASCII letters, digits, `.`, `_` or `-`, starting with a letter or digit"
)]
pub struct BadReplicaId(pub String);

impl ReplicaId {
    pub const MAX_LEN: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ReplicaId {
    type Err = BadReplicaId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(BadReplicaId(s.to_owned()))
        }
    }
}

impl std::fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record file's name, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    /// The name on disk.
    pub name: String,
    /// The chain the file belongs to; `None` for files named before replica ids.
    pub replica: Option<ReplicaId>,
    /// `yyyymmddThhmmssZ`, UTC.
    pub stamp: String,
    pub seq: u64,
    /// Compressed with zstd (`.jsonl.zst`).
    pub compressed: bool,
}

/// `yyyymmddThhmmssZ`
const STAMP_LEN: usize = 16;

impl FileName {
    /// A file of the chain without a replica id.
    pub fn new(stamp: &str, seq: u64) -> Self {
        Self::of(None, stamp, seq)
    }

    /// A file of `replica`'s chain.
    pub fn of(replica: Option<&ReplicaId>, stamp: &str, seq: u64) -> Self {
        let name = match replica {
            Some(r) => format!("records-{r}-{stamp}-{seq:08}.jsonl"),
            None => format!("records-{stamp}-{seq:08}.jsonl"),
        };
        Self {
            name,
            replica: replica.cloned(),
            stamp: stamp.to_owned(),
            seq,
            compressed: false,
        }
    }

    /// The name without `.zst`: how records name the file, compressed or not.
    pub fn base(&self) -> &str {
        self.name.strip_suffix(".zst").unwrap_or(&self.name)
    }

    pub fn parse(name: &str) -> Option<Self> {
        let (plain, compressed) = match name.strip_suffix(".zst") {
            Some(plain) => (plain, true),
            None => (name, false),
        };
        let rest = plain.strip_prefix("records-")?.strip_suffix(".jsonl")?;
        let (rest, seq) = rest.rsplit_once('-')?;
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq = seq.parse().ok()?;
        let split = rest.len().checked_sub(STAMP_LEN)?;
        let stamp = rest.get(split..)?;
        stamp_time(stamp)?;
        let replica = match rest.get(..split)? {
            "" => None,
            prefix => Some(prefix.strip_suffix('-')?.parse().ok()?),
        };
        Some(Self {
            name: name.to_owned(),
            replica,
            stamp: stamp.to_owned(),
            seq,
            compressed,
        })
    }

    /// When the file was started.
    pub fn started(&self) -> Option<SystemTime> {
        stamp_time(&self.stamp)
    }
}

/// `yyyymmddThhmmssZ` of a time (UTC).
pub fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

fn stamp_time(stamp: &str) -> Option<SystemTime> {
    let b = stamp.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let p = |r: std::ops::Range<usize>| stamp.get(r);
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        p(0..4)?,
        p(4..6)?,
        p(6..8)?,
        p(9..11)?,
        p(11..13)?,
        p(13..15)?
    );
    humantime::parse_rfc3339(&text).ok()
}

/// One chain of a directory: a replica's files, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub replica: Option<ReplicaId>,
    pub files: Vec<FileName>,
}

impl Chain {
    /// How reports name the chain.
    pub fn label(&self) -> String {
        match &self.replica {
            Some(r) => format!("replica {r}"),
            None => "records without a replica id".to_owned(),
        }
    }
}

/// The chains of `dir`: the files of each replica in chain order, the chain
/// without a replica id (if any) first, then by replica id.
pub fn chains(dir: &Path) -> std::io::Result<Vec<Chain>> {
    let mut chains: Vec<Chain> = Vec::new();
    for f in list(dir)? {
        match chains.iter_mut().find(|c| c.replica == f.replica) {
            Some(c) => c.files.push(f),
            None => chains.push(Chain {
                replica: f.replica.clone(),
                files: vec![f],
            }),
        }
    }
    chains.sort_by(|a, b| a.replica.cmp(&b.replica));
    Ok(chains)
}

/// The name of the lock file of `replica`'s chain.
pub fn lock_name(replica: Option<&ReplicaId>) -> String {
    match replica {
        Some(r) => format!("records-{r}.lock"),
        None => "records.lock".to_owned(),
    }
}

/// The chains whose lock file is in `dir`.
pub fn locks(dir: &Path) -> std::io::Result<Vec<Option<ReplicaId>>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == "records.lock" {
            out.push(None);
        } else if let Some(r) = name
            .strip_prefix("records-")
            .and_then(|n| n.strip_suffix(".lock"))
            .and_then(|r| r.parse().ok())
        {
            out.push(Some(r));
        }
    }
    out.sort();
    Ok(out)
}

/// The files of one chain of `dir`, in chain order.
pub fn list_chain(dir: &Path, replica: Option<&ReplicaId>) -> std::io::Result<Vec<FileName>> {
    let mut files = list(dir)?;
    files.retain(|f| f.replica.as_ref() == replica);
    Ok(files)
}

/// The record files of `dir` (of every chain), each chain in order (by
/// sequence number). A listing with a gap in a chain's sequence numbers is
/// taken again (twice at most): a file being compressed meanwhile (its copy
/// renamed in, the original removed) may be missed by a listing in progress.
pub fn list(dir: &Path) -> std::io::Result<Vec<FileName>> {
    let mut files = list_once(dir)?;
    for _ in 0..2 {
        if !has_gap(&files) {
            break;
        }
        files = list_once(dir)?;
    }
    Ok(files)
}

/// Whether a chain of `files` (sorted as [`list`] sorts) skips a sequence
/// number.
fn has_gap(files: &[FileName]) -> bool {
    files
        .windows(2)
        .filter_map(|w| w.first().zip(w.get(1)))
        .any(|(a, b)| a.replica == b.replica && a.seq.checked_add(1) != Some(b.seq))
}

fn list_once(dir: &Path) -> std::io::Result<Vec<FileName>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Some(f) = entry.file_name().to_str().and_then(FileName::parse) {
            files.push(f);
        }
    }
    files.sort_by(|a, b| {
        (&a.replica, a.seq, &a.stamp, a.compressed).cmp(&(
            &b.replica,
            b.seq,
            &b.stamp,
            b.compressed,
        ))
    });
    // A file and its compressed copy (a stop between compressing and
    // removing the original): the same lines, read once, from the original.
    files.dedup_by(|later, first| later.base() == first.base());
    Ok(files)
}

/// `*.jsonl` files in `dir` that are not record files.
pub fn strangers(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if (name.ends_with(".jsonl") || name.ends_with(".jsonl.zst"))
            && FileName::parse(&name).is_none()
            && name != crate::retention::HOLDS_FILE
        {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a sealed line is a checkpoint (a cheap look for its kind first,
/// then its hash checked).
pub fn is_checkpoint(line: &[u8]) -> bool {
    memchr::memmem::find(line, br#""kind":"checkpoint""#).is_some()
        && open(line).is_ok_and(|r| r.kind() == "checkpoint")
}

/// Opens a record file, or its compressed copy if it was compressed (and
/// removed) since it was listed; whether what was opened is compressed.
fn open_either(path: &Path) -> std::io::Result<(std::fs::File, bool)> {
    let compressed = path.extension().is_some_and(|e| e == "zst");
    match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !compressed => {
            let mut zst = path.as_os_str().to_owned();
            zst.push(".zst");
            Ok((std::fs::File::open(Path::new(&zst)).map_err(|_| e)?, true))
        }
        other => Ok((other?, compressed)),
    }
}

/// The lines of a record file, decompressed if it is compressed. A file
/// compressed (and removed) since it was listed is read from its copy.
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let (mut file, compressed) = open_either(path)?;
    if compressed {
        return zstd::stream::decode_all(std::io::BufReader::new(file)).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("cannot decompress: {e}"),
            )
        });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A reader of a record file's lines (decompressing), for reading its start.
pub fn open_file(path: &Path) -> std::io::Result<Box<dyn std::io::BufRead>> {
    let (file, compressed) = open_either(path)?;
    if compressed {
        Ok(Box::new(std::io::BufReader::new(
            zstd::stream::read::Decoder::new(file)?,
        )))
    } else {
        Ok(Box::new(std::io::BufReader::new(file)))
    }
}

/// RFC 3339 UTC with milliseconds: the `time` of a record.
pub fn record_time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// Days as a duration.
pub fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_opens_and_names_its_predecessor() {
        let (line, hash) = seal(&GENESIS, br#"{"kind":"decision","n":1}"#).unwrap();
        assert!(line.starts_with(br#"{"prev":"0000"#));
        assert!(line.ends_with(b"\"}\n"));
        let opened = open(line.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(opened.hash, hash);
        assert_eq!(opened.prev, GENESIS);
        assert_eq!(opened.kind(), "decision");
        assert!(!opened.body.contains_key("hash"));

        let (next, _) = seal(&hash, br#"{"kind":"decision","n":2}"#).unwrap();
        assert_eq!(open(next.strip_suffix(b"\n").unwrap()).unwrap().prev, hash);
    }

    #[test]
    fn the_hash_covers_the_line_without_its_hash_member() {
        let (line, hash) = seal(&GENESIS, br#"{"a":1}"#).unwrap();
        let text = String::from_utf8(line).unwrap();
        let body = format!(r#"{{"prev":"{}","a":1}}"#, to_hex(&GENESIS));
        assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(body.as_bytes())));
        assert_eq!(
            text,
            format!(
                "{},\"hash\":\"{}\"}}\n",
                &body[..body.len() - 1],
                to_hex(&hash)
            )
        );
    }

    #[test]
    fn any_changed_byte_is_detected() {
        let (line, _) = seal(&GENESIS, br#"{"kind":"decision","who":"abc"}"#).unwrap();
        let line = line.strip_suffix(b"\n").unwrap();
        for i in 0..line.len() {
            let mut bad = line.to_vec();
            bad[i] ^= 0x01;
            assert!(open(&bad).is_err(), "flipping byte {i} went unnoticed");
        }
    }

    #[test]
    fn only_objects_are_sealed() {
        assert_eq!(seal(&GENESIS, b"[1]"), Err(NotAnObject));
        let (line, _) = seal(&GENESIS, b"{}").unwrap();
        assert!(open(line.strip_suffix(b"\n").unwrap()).is_ok());
    }

    #[test]
    fn file_names_sort_and_parse_back() {
        let t = humantime::parse_rfc3339("2026-03-04T05:06:07Z").unwrap();
        let f = FileName::new(&stamp(t), 12);
        assert_eq!(f.name, "records-20260304T050607Z-00000012.jsonl");
        assert_eq!(FileName::parse(&f.name), Some(f.clone()));
        assert_eq!(f.started(), Some(t));
        assert_eq!(FileName::parse("records-2026-1.jsonl"), None);
        assert_eq!(FileName::parse("other.jsonl"), None);
    }

    #[test]
    fn replica_file_names_parse_back() {
        let r: ReplicaId = "node-7.eu_west".parse().unwrap();
        let f = FileName::of(Some(&r), "20260304T050607Z", 3);
        assert_eq!(
            f.name,
            "records-node-7.eu_west-20260304T050607Z-00000003.jsonl"
        );
        assert_eq!(FileName::parse(&f.name), Some(f.clone()));
        // A replica id that looks like a stamp is still a replica id.
        let odd: ReplicaId = "20260304T050607Z".parse().unwrap();
        let g = FileName::of(Some(&odd), "20260304T050607Z", 1);
        assert_eq!(FileName::parse(&g.name).unwrap().replica, Some(odd));
        for bad in [
            "records--20260304T050607Z-00000001.jsonl",
            "records-a b-20260304T050607Z-00000001.jsonl",
            "records-x20260304T050607Z-00000001.jsonl",
            "records-r-20260304T050607Z-+1.jsonl",
        ] {
            assert_eq!(FileName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn replica_ids_are_checked() {
        for ok in ["a", "node-1", "ip-10-0-0-1.ec2.internal", &"x".repeat(64)] {
            assert!(ok.parse::<ReplicaId>().is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "a/b", "a\"b", "ä", &"x".repeat(65)] {
            assert!(bad.parse::<ReplicaId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_replica_is_stated_in_its_records() {
        let r: ReplicaId = "r1".parse().unwrap();
        let mut out = Vec::new();
        let h = seal_as(&GENESIS, Some(&r), br#"{"kind":"decision"}"#, &mut out).unwrap();
        let line = out.strip_suffix(b"\n").unwrap();
        let opened = open(line).unwrap();
        assert_eq!(opened.hash, h);
        assert_eq!(opened.str_field("replica"), Some("r1"));
        assert!(line.starts_with(br#"{"prev":""#));
    }
}
