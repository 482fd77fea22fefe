//! Retention by account (`serve --records-retention FILE`): a record file is
//! deleted only when every record in it is past its account's keep date and
//! no legal hold covers any of them.
//!
//! - An account's activity is every record about it: each decision (an
//!   account opened, reviewed with `maintain_account`, provisioning), and its
//!   closure (`POST /v1/accounts/{id}/closed` writes an `account_closed`
//!   record). Its records are kept until `keep_days_after_last_activity`
//!   after the last of them, in any chain of the directory.
//! - Records about no account (checkpoints, recoveries, retention records)
//!   are kept `keep_days_without_account` after their own time.
//! - Legal holds (`records hold|release`) are lines of `records-holds.jsonl`
//!   in the records directory: a customer on hold keeps every file holding a
//!   record about them, whatever its age.
//!
//! Files go oldest first, whole, and only while each one passes: the chain's
//! start moves forward as with retention by file age, and the same
//! `retention` record (with `retain_days` the shorter of the two periods)
//! declares what went, so `verify` checks it as before.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use memchr::memmem;
use serde::{Deserialize, Serialize};

use super::chain::{self, FileName};

/// The retention policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Keep an account's records this long after its last activity (two
    /// years after closure or last access: 730).
    pub keep_days_after_last_activity: u32,
    /// Keep records about no account this long. Default: the same.
    #[serde(default)]
    pub keep_days_without_account: Option<u32>,
}

/// Why a retention policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the retention policy `{path}`: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the retention policy `{path}` is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// At most 100 years.
const MAX_DAYS: u32 = 36_500;

impl Policy {
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|cause| PolicyError::Read {
            path: path.to_owned(),
            cause,
        })?;
        let invalid = |message: String| PolicyError::Invalid {
            path: path.to_owned(),
            message,
        };
        if !text.trim_start().starts_with('{') {
            return Err(invalid(
                "not a JSON object (expected {\"keep_days_after_last_activity\": 730, \"keep_days_without_account\": 730})".into(),
            ));
        }
        let policy: Self = serde_json::from_str(&text).map_err(|e| {
            invalid(format!(
                "{e} (expected {{\"keep_days_after_last_activity\": 730, \"keep_days_without_account\": 730}})"
            ))
        })?;
        for (name, days) in [
            (
                "keep_days_after_last_activity",
                Some(policy.keep_days_after_last_activity),
            ),
            (
                "keep_days_without_account",
                policy.keep_days_without_account,
            ),
        ] {
            if let Some(d) = days
                && !(1..=MAX_DAYS).contains(&d)
            {
                return Err(invalid(format!(
                    "`{name}` must be 1 to {MAX_DAYS} days, not {d}"
                )));
            }
        }
        Ok(policy)
    }

    pub fn without_account(&self) -> u32 {
        self.keep_days_without_account
            .unwrap_or(self.keep_days_after_last_activity)
    }

    /// What a file deleted under this policy is certainly older than.
    pub fn shortest(&self) -> u32 {
        self.keep_days_after_last_activity
            .min(self.without_account())
    }
}

/// The file of legal holds in a records directory.
pub const HOLDS_FILE: &str = "records-holds.jsonl";

/// One line of the holds file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoldEvent {
    pub time: String,
    /// `hold` or `release`.
    pub action: String,
    /// The customer as records hold them: the keyed hash, and the id in clear.
    pub customer_ids: Vec<String>,
    pub reason: String,
}

/// Appends a hold or release to `dir`'s holds file (synced), under a lock.
/// A holds file that cannot be read is left as it is and is an error: a
/// line added to it would count for nothing.
pub fn append_hold(dir: &Path, event: &HoldEvent) -> std::io::Result<()> {
    let path = dir.join(HOLDS_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    let mut file = options.open(&path)?;
    file.lock()?;
    holds(dir)?;
    let mut line = Vec::new();
    // A line torn by a crash is ended first, so that this one stays whole.
    let text = std::fs::read(&path)?;
    if text.last().is_some_and(|b| *b != b'\n') {
        line.push(b'\n');
    }
    serde_json::to_writer(&mut line, event).map_err(std::io::Error::other)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data()
}

/// The customer ids on hold in `dir` (the last event of each decides). A
/// line that cannot be read is an error: a hold is never silently ignored.
pub fn holds(dir: &Path) -> std::io::Result<HashSet<String>> {
    let path = dir.join(HOLDS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(e),
    };
    let mut held = HashSet::new();
    // A last line without its newline was torn by a crash while appending:
    // it was never written.
    let complete = text
        .rfind('\n')
        .map_or("", |end| text.get(..end).unwrap_or_default());
    for (i, line) in complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let event: HoldEvent = serde_json::from_str(line).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}:{}: not a hold: {e}", path.display(), i + 1),
            )
        })?;
        for id in event.customer_ids {
            match event.action.as_str() {
                "hold" => {
                    held.insert(id);
                }
                "release" => {
                    held.remove(&id);
                }
                other => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}:{}: unknown action `{other}`", path.display(), i + 1),
                    ));
                }
            }
        }
    }
    Ok(held)
}

/// The text of a top-level string member of a record line, read without
/// parsing the line (`None` if absent or escaped: then parse it).
fn string_after<'a>(line: &'a [u8], finder: &memmem::Finder<'_>) -> Option<&'a str> {
    let start = finder.find(line)? + finder.needle().len();
    let rest = line.get(start..)?;
    let end = memchr::memchr(b'"', rest)?;
    let value = rest.get(..end)?;
    if value.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(value).ok()
}

/// Reads the account and time of record lines.
pub struct Reader {
    customer: memmem::Finder<'static>,
    time: memmem::Finder<'static>,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            customer: memmem::Finder::new(br#""customer":{"id":""#).into_owned(),
            time: memmem::Finder::new(br#""time":""#).into_owned(),
        }
    }
}

impl Reader {
    /// The account a record is about (`customer.id`), and its time.
    pub fn read(&self, line: &[u8]) -> (Option<String>, Option<SystemTime>) {
        let fast_time = string_after(line, &self.time).and_then(chain::parse_time);
        let has_customer = self.customer.find(line).is_some();
        match (has_customer, string_after(line, &self.customer)) {
            (true, Some(id)) if fast_time.is_some() => (Some(id.to_owned()), fast_time),
            (false, _) if fast_time.is_some() => (None, fast_time),
            // Escaped text, or an odd line: parse it.
            _ => match serde_json::from_slice::<serde_json::Value>(line) {
                Ok(v) => (
                    v.pointer("/customer/id")
                        .and_then(|i| i.as_str())
                        .map(str::to_owned),
                    v.get("time")
                        .and_then(|t| t.as_str())
                        .and_then(chain::parse_time),
                ),
                Err(_) => (None, None),
            },
        }
    }
}

/// What retention by account decided about a chain's oldest files.
#[derive(Debug, Default)]
pub struct Plan {
    /// The files to delete, oldest first (a prefix of the chain).
    pub delete: Vec<FileName>,
    /// The newest record among them.
    pub newest: Option<SystemTime>,
    /// The accounts in them (to check against what was written since).
    pub accounts: HashSet<String>,
    /// Why the oldest file kept was kept, if one was considered.
    pub kept_because: Option<String>,
}

/// Decides which of `files` (one chain of `dir`, oldest first; `current`,
/// the one being written, never) can go at `now`.
pub fn plan(
    dir: &Path,
    files: &[FileName],
    current: Option<&str>,
    policy: &Policy,
    now: SystemTime,
) -> std::io::Result<Plan> {
    let days = |d: u32| chain::days(d);
    let (Some(activity_horizon), Some(plain_horizon)) = (
        now.checked_sub(days(policy.keep_days_after_last_activity)),
        now.checked_sub(days(policy.without_account())),
    ) else {
        return Ok(Plan::default());
    };
    let reader = Reader::default();
    // The oldest files whose every record is older than both horizons:
    // none of them is recent activity, nor a recent record about no account.
    let mut candidates: Vec<(FileName, HashSet<String>, SystemTime)> = Vec::new();
    let mut kept_because = None;
    for f in files {
        if Some(f.base()) == current
            || f.started()
                .is_none_or(|s| s >= activity_horizon.min(plain_horizon))
        {
            break;
        }
        let bytes = chain::read_file(&dir.join(&f.name))?;
        let mut accounts = HashSet::new();
        let mut newest = f.started().unwrap_or(SystemTime::UNIX_EPOCH);
        let mut recent = None;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let (account, time) = reader.read(line);
            let Some(time) = time else {
                recent = Some("a record without a readable time".to_owned());
                break;
            };
            newest = newest.max(time);
            let horizon = if account.is_some() {
                activity_horizon
            } else {
                plain_horizon
            };
            if time >= horizon {
                recent = Some(format!(
                    "a record of {} is within its keep period",
                    chain::record_time(time)
                ));
                break;
            }
            accounts.extend(account);
        }
        if let Some(why) = recent {
            kept_because = Some(format!("{}: {why}", f.base()));
            break;
        }
        candidates.push((f.clone(), accounts, newest));
    }
    if candidates.is_empty() {
        return Ok(Plan {
            kept_because,
            ..Plan::default()
        });
    }
    // Accounts of the candidates with activity since the horizon, anywhere
    // in the directory, or on hold.
    let wanted: HashSet<&String> = candidates.iter().flat_map(|(_, a, _)| a).collect();
    let mut kept: HashSet<String> = holds(dir)?
        .into_iter()
        .filter(|id| wanted.contains(id))
        .collect();
    let held = kept.clone();
    for c in chain::chains(dir)? {
        for (i, f) in c.files.iter().enumerate() {
            let ends = c.files.get(i + 1).and_then(FileName::started);
            if ends.is_some_and(|e| e < activity_horizon) {
                continue;
            }
            let bytes = chain::read_file(&dir.join(&f.name))?;
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if let (Some(account), Some(time)) = reader.read(line)
                    && time >= activity_horizon
                    && wanted.contains(&account)
                {
                    kept.insert(account);
                }
            }
        }
    }
    let mut out = Plan {
        kept_because,
        ..Plan::default()
    };
    for (f, accounts, newest) in candidates {
        if let Some(a) = accounts.iter().find(|a| kept.contains(*a)) {
            out.kept_because = Some(format!(
                "{}: account {a} {}",
                f.base(),
                if held.contains(a) {
                    "is on legal hold"
                } else {
                    "was active within its keep period"
                }
            ));
            break;
        }
        out.newest = out.newest.max(Some(newest));
        out.accounts.extend(accounts);
        out.delete.push(f);
    }
    Ok(out)
}
