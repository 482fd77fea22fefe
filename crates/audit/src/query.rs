//! `portcullis records query`: decision records matching filters, as JSON Lines.
//!
//! A customer is found by the keyed hash of their id (the same key that wrote the
//! records), or by the id itself in records written with identities in clear.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use super::chain;
use portcullis_core::decision::Outcome;

/// What to select; every given filter must match.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Accepted values of `customer.id` (its hash, and the id in clear).
    pub customer_ids: Vec<String>,
    pub from: Option<SystemTime>,
    pub to: Option<SystemTime>,
    pub decision: Option<Outcome>,
    /// A measure among the reasons, conditions or obligations.
    pub measure: Option<String>,
    /// Only the chain of this replica.
    pub replica: Option<chain::ReplicaId>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("cannot read `{path}`: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot write the output: {0}")]
    Write(std::io::Error),
}

/// What a query went through.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub files: usize,
    pub matched: u64,
    /// Lines that are not JSON (torn or damaged; `verify` says more).
    pub unreadable: u64,
}

impl Filter {
    fn time_ok(&self, t: Option<SystemTime>) -> bool {
        match t {
            None => self.from.is_none() && self.to.is_none(),
            Some(t) => self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|to| t <= to),
        }
    }

    pub fn matches(&self, rec: &Value) -> bool {
        match rec.get("kind").and_then(Value::as_str) {
            Some("decision") => {}
            // A customer's closure is part of their records (not of a
            // measure's or an outcome's).
            Some("account_closed")
                if !self.customer_ids.is_empty()
                    && self.measure.is_none()
                    && self.decision.is_none() => {}
            _ => return false,
        }
        if !self.customer_ids.is_empty() {
            let id = rec.pointer("/customer/id").and_then(Value::as_str);
            if !id.is_some_and(|id| self.customer_ids.iter().any(|c| c == id)) {
                return false;
            }
        }
        if let Some(d) = self.decision
            && rec.get("decision").and_then(Value::as_str) != Some(d.as_str())
        {
            return false;
        }
        if let Some(m) = &self.measure {
            let has = ["reasons", "conditions", "obligations"].iter().any(|list| {
                rec.get(*list).and_then(Value::as_array).is_some_and(|a| {
                    a.iter()
                        .any(|r| r.get("measure").and_then(Value::as_str) == Some(m))
                })
            });
            if !has {
                return false;
            }
        }
        let time = rec
            .get("time")
            .and_then(Value::as_str)
            .and_then(chain::parse_time);
        self.time_ok(time)
    }
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> QueryError + use<> {
    let path = path.to_owned();
    move |cause| QueryError::Read { path, cause }
}

/// Writes every matching decision record of `dir`, one per line: chain by
/// chain (replica by replica), each in order.
pub fn query(dir: &Path, filter: &Filter, out: &mut impl Write) -> Result<Stats, QueryError> {
    let mut stats = Stats::default();
    for c in chain::chains(dir).map_err(read_error(dir))? {
        if filter.replica.is_some() && filter.replica != c.replica {
            continue;
        }
        query_chain(dir, &c.files, filter, out, &mut stats)?;
    }
    out.flush().map_err(QueryError::Write)?;
    Ok(stats)
}

/// [`query`] over one chain's `files`.
fn query_chain(
    dir: &Path,
    files: &[chain::FileName],
    filter: &Filter,
    out: &mut impl Write,
    stats: &mut Stats,
) -> Result<(), QueryError> {
    for (i, f) in files.iter().enumerate() {
        // A file holds records from its start until the next file starts.
        if let (Some(to), Some(start)) = (filter.to, f.started())
            && start > to
        {
            break;
        }
        let next_start = files.get(i + 1).and_then(chain::FileName::started);
        if let (Some(from), Some(next)) = (filter.from, next_start)
            && next < from
        {
            continue;
        }
        stats.files += 1;
        let path = dir.join(&f.name);
        let bytes = chain::read_file(&path).map_err(read_error(&path))?;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(rec) = serde_json::from_slice::<Value>(line) else {
                stats.unreadable += 1;
                continue;
            };
            if filter.matches(&rec) {
                stats.matched += 1;
                out.write_all(line)
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(QueryError::Write)?;
            }
        }
    }
    Ok(())
}
