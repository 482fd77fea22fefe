//! `portcullis records report`: the counts a certification asks for, from the
//! decision records of a period.
//!
//! Every decision record of the period (by its `time`) counts once: by
//! outcome and action, by measure (each measure among its reasons,
//! conditions and obligations, by the part it played), by jurisdiction (each
//! country tied to the request), the conditions the caller stated satisfied
//! on an allowed decision (conditions lifted), screening matches (by
//! designation) and near misses (scored below the threshold), and account
//! openings refused. Records are read as written, chain by chain; a line that
//! is not JSON is counted as unreadable (`records verify` says more).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use super::chain;
use super::query::QueryError;

/// How one measure figured in the period's decisions.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct MeasureCounts {
    /// Decisions it denied.
    pub denied: u64,
    /// Decisions it made conditional.
    pub conditional: u64,
    /// Allowed decisions it attached an obligation to.
    pub obligations: u64,
}

/// Screening over the period.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct ScreeningCounts {
    /// Decisions with at least one match at or above the threshold.
    pub decisions_matched: u64,
    /// Decisions with a designation scored below the threshold and no match.
    pub decisions_near_miss_only: u64,
    /// Matches by designation id.
    pub matches: BTreeMap<String, u64>,
    /// Near misses by designation id.
    pub near_misses: BTreeMap<String, u64>,
}

/// The report of a period.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub decisions: u64,
    /// `allow`, `conditional`, `deny`.
    pub by_outcome: BTreeMap<String, u64>,
    /// Action, then outcome.
    pub by_action: BTreeMap<String, BTreeMap<String, u64>>,
    pub by_measure: BTreeMap<String, MeasureCounts>,
    /// Each jurisdiction of a request, then outcome.
    pub by_jurisdiction: BTreeMap<String, BTreeMap<String, u64>>,
    /// Allowed decisions whose request stated the condition satisfied (the
    /// records do not say whether a policy would have imposed it: an upper
    /// bound of the conditions lifted).
    pub conditions_lifted: BTreeMap<String, u64>,
    pub screening: ScreeningCounts,
    /// `open_account` decisions denied.
    pub account_openings_refused: u64,
    /// Distinct customers (by the recorded, usually hashed, id).
    pub customers: u64,
    /// The replicas whose chains were read.
    pub replicas: Vec<String>,
    /// Lines that are not records whose hash checks out (not counted).
    pub unreadable: u64,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn each<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// Accumulates records.
#[derive(Debug, Default)]
pub struct Tally {
    report: Report,
    customers: BTreeSet<String>,
    replicas: BTreeSet<String>,
    from: Option<SystemTime>,
    to: Option<SystemTime>,
}

impl Tally {
    pub fn new(from: Option<SystemTime>, to: Option<SystemTime>) -> Self {
        Self {
            report: Report {
                from: from.map(chain::record_time),
                to: to.map(chain::record_time),
                ..Report::default()
            },
            from,
            to,
            ..Self::default()
        }
    }

    /// Counts every decision record of the period in `dir`.
    pub fn read_dir(&mut self, dir: &Path) -> Result<(), QueryError> {
        let read = |path: &Path| {
            let path = path.to_owned();
            move |cause| QueryError::Read { path, cause }
        };
        for c in chain::chains(dir).map_err(read(dir))? {
            for f in &c.files {
                let path = dir.join(&f.name);
                let bytes = chain::read_file(&path).map_err(read(&path))?;
                for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    // Only a line whose hash checks out is counted.
                    match chain::open(line) {
                        Ok(rec) => self.add(&Value::Object(rec.body)),
                        Err(_) => self.report.unreadable += 1,
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts one record, if it is a decision of the period.
    pub fn add(&mut self, rec: &Value) {
        if str_at(rec, "/kind") != Some("decision") {
            return;
        }
        let Some(time) = str_at(rec, "/time").and_then(chain::parse_time) else {
            return;
        };
        if self.from.is_some_and(|f| time < f) || self.to.is_some_and(|t| time > t) {
            return;
        }
        let r = &mut self.report;
        let outcome = str_at(rec, "/decision").unwrap_or("unknown").to_owned();
        let action = str_at(rec, "/action").unwrap_or("unknown").to_owned();
        r.decisions += 1;
        *r.by_outcome.entry(outcome.clone()).or_default() += 1;
        *r.by_action
            .entry(action.clone())
            .or_default()
            .entry(outcome.clone())
            .or_default() += 1;
        if action == "open_account" && outcome == "deny" {
            r.account_openings_refused += 1;
        }
        // Each measure once per decision and part.
        let mut seen: BTreeSet<(String, &str)> = BTreeSet::new();
        for (list, part) in [
            ("reasons", outcome.as_str()),
            ("conditions", "conditional"),
            ("obligations", "obligation"),
        ] {
            for item in each(rec, list) {
                if let Some(m) = str_at(item, "/measure") {
                    seen.insert((m.to_owned(), part));
                }
            }
        }
        for (measure, part) in seen {
            let counts = r.by_measure.entry(measure).or_default();
            match part {
                "deny" => counts.denied += 1,
                "conditional" => counts.conditional += 1,
                "obligation" => counts.obligations += 1,
                _ => {}
            }
        }
        if let Some(js) = rec
            .pointer("/facts/jurisdictions")
            .and_then(Value::as_array)
        {
            for j in js.iter().filter_map(Value::as_str) {
                *r.by_jurisdiction
                    .entry(j.to_owned())
                    .or_default()
                    .entry(outcome.clone())
                    .or_default() += 1;
            }
        }
        if outcome == "allow" {
            for c in each(rec, "satisfied_conditions").filter_map(Value::as_str) {
                *r.conditions_lifted.entry(c.to_owned()).or_default() += 1;
            }
        }
        let matched: BTreeSet<&str> = rec
            .pointer("/facts/screening_matches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for m in &matched {
            *r.screening.matches.entry((*m).to_owned()).or_default() += 1;
        }
        let near: BTreeSet<&str> = rec
            .pointer("/facts/screening/matches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| str_at(m, "/designation"))
            .filter(|d| !matched.contains(d))
            .collect();
        for d in &near {
            *r.screening.near_misses.entry((*d).to_owned()).or_default() += 1;
        }
        if !matched.is_empty() {
            r.screening.decisions_matched += 1;
        } else if !near.is_empty() {
            r.screening.decisions_near_miss_only += 1;
        }
        if let Some(id) = str_at(rec, "/customer/id") {
            self.customers.insert(id.to_owned());
        }
        if let Some(replica) = str_at(rec, "/replica") {
            self.replicas.insert(replica.to_owned());
        }
    }

    pub fn finish(mut self) -> Report {
        self.report.customers = self.customers.len() as u64;
        self.report.replicas = self.replicas.into_iter().collect();
        self.report
    }
}
