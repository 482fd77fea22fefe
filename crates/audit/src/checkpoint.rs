//! Signed checkpoints: a record, in the chain, that states the chain's head
//! (the hash of the record before it, which is its own `prev`), how many
//! records were written since the previous one, and the time, signed with an
//! Ed25519 key (`--records-signing-key`).
//!
//! Whoever rewrites the chain without the key cannot sign it again, and with a
//! copy of the checkpoints kept elsewhere (`--records-checkpoint-out`), records
//! cut from the end — even at a line boundary, with the directory's own last
//! checkpoints removed — are found: a checkpoint of the copy is missing from
//! the directory.
//!
//! Since version 2 a checkpoint also states the Merkle root ([`crate::merkle`])
//! of the records since the checkpoint before it (`since`: the hash of the
//! record before the first of them), so that one record can be proven to be in
//! the chain without the records beside it (`records export`).
//!
//! What is signed: [`CONTEXT`], then `replica\nhead\nrecords\ntime\nsince\nroot\n`
//! ([`CONTEXT_V1`] and `replica\nhead\nrecords\ntime\n` for the checkpoints
//! written before roots, which are still verified).

use std::path::{Path, PathBuf};

use portcullis_keys::PublicKey;

use super::chain::{self, Hash, ReplicaId};

/// The context line of a checkpoint signature.
pub const CONTEXT: &str = "portcullis.records.checkpoint.v2\n";
/// That of checkpoints without a Merkle root.
pub const CONTEXT_V1: &str = "portcullis.records.checkpoint.v1\n";

/// What a checkpoint states about the records since the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// The hash of the record before the first of them.
    pub since: Hash,
    /// The Merkle root of their hashes.
    pub root: Hash,
}

/// The text a checkpoint signs.
pub fn statement(
    replica: Option<&ReplicaId>,
    head: &Hash,
    records: u64,
    time: &str,
    interval: Option<&Interval>,
) -> String {
    let mut text = format!(
        "{}\n{}\n{records}\n{time}\n",
        replica.map_or("", ReplicaId::as_str),
        chain::to_hex(head)
    );
    if let Some(i) = interval {
        text.push_str(&chain::to_hex(&i.since));
        text.push('\n');
        text.push_str(&chain::to_hex(&i.root));
        text.push('\n');
    }
    text
}

/// The interval a checkpoint record states (none before version 2); an error
/// if it states one that cannot be read.
pub fn interval(rec: &chain::Opened) -> Result<Option<Interval>, String> {
    match (rec.str_field("since"), rec.str_field("root")) {
        (None, None) => Ok(None),
        (Some(since), Some(root)) => match (chain::from_hex(since), chain::from_hex(root)) {
            (Some(since), Some(root)) => Ok(Some(Interval { since, root })),
            _ => Err("checkpoint with an unreadable `since` or `root`".into()),
        },
        _ => Err("checkpoint with only one of `since` and `root`".into()),
    }
}

/// The number of records a checkpoint covers.
pub fn records(rec: &chain::Opened) -> Option<u64> {
    rec.body.get("records").and_then(serde_json::Value::as_u64)
}

/// Checks a checkpoint record's signature by one of `trusted`; the key id.
pub fn check(rec: &chain::Opened, trusted: &[PublicKey]) -> Result<String, String> {
    let field = |name: &str| {
        rec.str_field(name)
            .ok_or_else(|| format!("checkpoint without `{name}`"))
    };
    let key_id = field("key_id")?;
    let signature = field("signature")?;
    let time = field("time")?;
    let records = records(rec).ok_or("checkpoint without `records`")?;
    let replica = match rec.str_field("replica") {
        Some(r) => Some(r.parse::<ReplicaId>().map_err(|e| e.to_string())?),
        None => None,
    };
    let interval = interval(rec)?;
    let key = portcullis_keys::trusted(trusted, key_id).map_err(|e| e.to_string())?;
    let text = statement(
        replica.as_ref(),
        &rec.prev,
        records,
        time,
        interval.as_ref(),
    );
    let context = if interval.is_some() {
        CONTEXT
    } else {
        CONTEXT_V1
    };
    key.verify_message(context, text.as_bytes(), signature)
        .map_err(|e| e.to_string())?;
    Ok(key_id.to_owned())
}

/// One checkpoint of a copy (`--records-checkpoint-out`).
#[derive(Debug, Clone)]
pub struct Copied {
    pub replica: Option<ReplicaId>,
    pub hash: Hash,
    pub time: String,
    /// `FILE:line`.
    pub at: String,
    /// Its signature did not check out (or no key was given to check it).
    pub problem: Option<String>,
}

/// Why a copy could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the checkpoints `{path}`: {cause}")]
pub struct CopyError {
    pub path: PathBuf,
    pub cause: std::io::Error,
}

/// Reads a copy of checkpoints: one sealed checkpoint line each. Lines that
/// are not checkpoints (torn by a crash while appending) are skipped; a
/// checkpoint whose signature does not check out is reported through
/// `problem`.
pub fn read_copy(path: &Path, trusted: &[PublicKey]) -> Result<Vec<Copied>, CopyError> {
    let bytes = std::fs::read(path).map_err(|cause| CopyError {
        path: path.to_owned(),
        cause,
    })?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut out = Vec::new();
    for (i, line) in bytes
        .get(..complete)
        .unwrap_or_default()
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
    {
        let at = format!("{}:{}", path.display(), i + 1);
        // A line cut short by a crash while appending (then ended by the
        // next append) is skipped: it checks nothing, and proves nothing.
        let rec = match chain::open(line) {
            Ok(rec) if rec.kind() == "checkpoint" => rec,
            _ => continue,
        };
        let problem = if trusted.is_empty() {
            None
        } else {
            check(&rec, trusted).err()
        };
        out.push(Copied {
            replica: rec.str_field("replica").and_then(|r| r.parse().ok()),
            hash: rec.hash,
            time: rec.str_field("time").unwrap_or_default().to_owned(),
            at,
            problem,
        });
    }
    Ok(out)
}
