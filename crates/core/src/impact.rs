//! What a change does to decisions: one request decided on two snapshots
//! (the one in force and a candidate), the two answers compared, and a tally
//! of the differences by transition, measure and jurisdiction.
//!
//! `portcullis impact` runs it over a file of requests; `serve --shadow` over
//! live traffic. A request is *unchanged* when both answers agree on the
//! decision, the reasons, conditions and obligations (as sets: the order of
//! policy files does not matter) and the designations matched. Anything else
//! is a [`Change`]; a change whose decision differs is a *flip*.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::decision::{Decision, Outcome, Reason, Requirement};
use crate::screening::Match;

/// From one decision to another: `allow->deny`, or `deny->deny` when the
/// decision stayed but its reasons, conditions, obligations or matches moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Transition {
    /// The decision on the snapshot in force.
    pub from: Outcome,
    /// The decision on the candidate.
    pub to: Outcome,
}

impl Transition {
    /// Whether the decision itself changed.
    pub fn is_flip(self) -> bool {
        self.from != self.to
    }

    /// Every transition, flips first (in the order of [`Outcome::ALL`]).
    pub fn all() -> impl Iterator<Item = Transition> {
        let pairs = Outcome::ALL.into_iter().flat_map(|from| {
            Outcome::ALL
                .into_iter()
                .map(move |to| Transition { from, to })
        });
        pairs
            .clone()
            .filter(|t| t.is_flip())
            .chain(pairs.filter(|t| !t.is_flip()))
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.from.as_str(), self.to.as_str())
    }
}

impl Serialize for Transition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a transition could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}`: expected FROM->TO with FROM and TO each `allow`, `deny` or `conditional` (`deny->allow`)"
)]
pub struct BadTransition(String);

impl FromStr for Transition {
    type Err = BadTransition;

    /// `deny->allow`, also written `deny→allow`; case and spaces ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let outcome = |part: &str| {
            let part = part.trim().to_ascii_lowercase();
            Outcome::ALL.into_iter().find(|o| o.as_str() == part)
        };
        let (from, to) = s
            .split_once("->")
            .or_else(|| s.split_once('→'))
            .ok_or_else(|| BadTransition(s.to_owned()))?;
        match (outcome(from), outcome(to)) {
            (Some(from), Some(to)) => Ok(Self { from, to }),
            _ => Err(BadTransition(s.to_owned())),
        }
    }
}

/// One side of a change: what the answer said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// `decision`.
    pub decision: Outcome,
    /// `reasons`: the policies that denied or made it conditional.
    pub reasons: Vec<Reason>,
    /// `conditions`.
    pub conditions: Vec<Requirement>,
    /// `obligations`.
    pub obligations: Vec<Requirement>,
    /// `screening_matches`: the designations matched at or above the threshold.
    pub screening_matches: Vec<String>,
}

impl Side {
    fn of(d: Decision) -> Self {
        Self {
            decision: d.decision,
            reasons: d.reasons,
            conditions: d.conditions,
            obligations: d.obligations,
            screening_matches: d.facts.screening_matches,
        }
    }
}

/// The screening matches one answer has and the other has not.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MatchesDiffer {
    /// Matched on the candidate only: a new designation, or a changed one.
    pub added: Vec<Match>,
    /// Matched on the snapshot in force only.
    pub removed: Vec<Match>,
}

/// The measures one answer invokes and the other does not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MeasuresDiffer {
    /// Measures the candidate's answer invokes that the one in force does not.
    pub gained: Vec<Arc<str>>,
    /// Measures the answer in force invokes that the candidate's does not.
    pub lost: Vec<Arc<str>>,
}

/// How the answer to one request differs between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `transition`: `allow->deny`, …
    pub transition: Transition,
    /// `before`: the answer on the snapshot in force.
    pub before: Side,
    /// `after`: the answer on the candidate.
    pub after: Side,
    /// `measures`: gained and lost.
    pub measures: MeasuresDiffer,
    /// `screening`: the matches that differ, with what matched.
    pub screening: MatchesDiffer,
    /// `jurisdictions`: the countries tied to the request (both answers'),
    /// which the tally counts the change under.
    pub jurisdictions: Vec<String>,
}

/// Compares two answers to the same request: `None` when they agree.
pub fn compare(before: Decision, after: Decision) -> Option<Change> {
    if agree(&before, &after) {
        return None;
    }
    let measures_before = measures(&before);
    let measures_after = measures(&after);
    let measures = MeasuresDiffer {
        gained: measures_after
            .difference(&measures_before)
            .cloned()
            .collect(),
        lost: measures_before
            .difference(&measures_after)
            .cloned()
            .collect(),
    };
    let jurisdictions: BTreeSet<String> = before
        .facts
        .jurisdictions
        .iter()
        .chain(&after.facts.jurisdictions)
        .map(ToString::to_string)
        .collect();
    let screening = MatchesDiffer {
        added: only_in(&after, &before),
        removed: only_in(&before, &after),
    };
    Some(Change {
        transition: Transition {
            from: before.decision,
            to: after.decision,
        },
        before: Side::of(before),
        after: Side::of(after),
        measures,
        screening,
        jurisdictions: jurisdictions.into_iter().collect(),
    })
}

/// Same decision, reasons, conditions, obligations (in any order) and matches.
fn agree(a: &Decision, b: &Decision) -> bool {
    a.decision == b.decision
        && same_set(
            &a.facts.screening_matches,
            &b.facts.screening_matches,
            |m| m.clone(),
        )
        && same_set(&a.reasons, &b.reasons, |r| {
            (r.policy.clone(), r.measure.clone(), r.message.clone())
        })
        && same_set(&a.conditions, &b.conditions, requirement_key)
        && same_set(&a.obligations, &b.obligations, requirement_key)
}

type RequirementKey = (Arc<str>, Arc<str>, Option<Arc<str>>, Option<Arc<str>>);

fn requirement_key(r: &Requirement) -> RequirementKey {
    (
        r.id.clone(),
        r.policy.clone(),
        r.measure.clone(),
        r.message.clone(),
    )
}

/// Equal as lists (the usual case, no allocation), else as sets of keys.
fn same_set<T: PartialEq, K: Ord>(a: &[T], b: &[T], key: impl Fn(&T) -> K) -> bool {
    if a == b {
        return true;
    }
    let a: BTreeSet<K> = a.iter().map(&key).collect();
    let b: BTreeSet<K> = b.iter().map(&key).collect();
    a == b
}

/// The measures an answer invokes: of its reasons, conditions and obligations.
fn measures(d: &Decision) -> BTreeSet<Arc<str>> {
    let requirements = d.conditions.iter().chain(&d.obligations);
    d.reasons
        .iter()
        .filter_map(|r| r.measure.clone())
        .chain(requirements.filter_map(|r| r.measure.clone()))
        .collect()
}

/// The matches of `a` whose designation `b` did not match.
fn only_in(a: &Decision, b: &Decision) -> Vec<Match> {
    let others: BTreeSet<&str> = b
        .facts
        .screening_matches
        .iter()
        .map(String::as_str)
        .collect();
    let mine: BTreeSet<&str> = a
        .facts
        .screening_matches
        .iter()
        .map(String::as_str)
        .filter(|id| !others.contains(id))
        .collect();
    let mut seen = BTreeSet::new();
    a.facts
        .screening
        .matches
        .iter()
        .filter(|m| mine.contains(m.designation.as_str()) && seen.insert(m.designation.as_str()))
        .cloned()
        .collect()
}

/// Requests a measure was gained and lost in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MeasureCount {
    /// Requests whose candidate answer invokes it and whose answer in force does not.
    pub gained: u64,
    /// The reverse.
    pub lost: u64,
}

/// The jurisdiction key a change with no country tied to it is counted under.
pub const NO_JURISDICTION: &str = "none";

/// Counts of compared requests: mergeable, so that workers tally apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// `compared`: requests decided on both snapshots.
    pub compared: u64,
    /// `unchanged`: answers that agree.
    pub unchanged: u64,
    /// `changed`: answers that differ in anything.
    pub changed: u64,
    /// `flips`: answers whose decision differs.
    pub flips: u64,
    /// `transitions`: changes by transition (`allow->deny`), flips and the
    /// changes that kept their decision (`deny->deny`) alike.
    pub transitions: BTreeMap<Transition, u64>,
    /// `by_measure`: for each measure, requests that gained or lost it.
    pub by_measure: BTreeMap<Arc<str>, MeasureCount>,
    /// `by_jurisdiction`: changes by country tied to the request
    /// ([`NO_JURISDICTION`] when none).
    pub by_jurisdiction: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one compared request.
    pub fn add(&mut self, change: Option<&Change>) {
        self.compared += 1;
        let Some(c) = change else {
            self.unchanged += 1;
            return;
        };
        self.changed += 1;
        if c.transition.is_flip() {
            self.flips += 1;
        }
        *self.transitions.entry(c.transition).or_default() += 1;
        for m in &c.measures.gained {
            self.by_measure.entry(m.clone()).or_default().gained += 1;
        }
        for m in &c.measures.lost {
            self.by_measure.entry(m.clone()).or_default().lost += 1;
        }
        if c.jurisdictions.is_empty() {
            *self
                .by_jurisdiction
                .entry(NO_JURISDICTION.to_owned())
                .or_default() += 1;
        }
        for j in &c.jurisdictions {
            *self.by_jurisdiction.entry(j.clone()).or_default() += 1;
        }
    }

    /// Adds another tally's counts to this one.
    pub fn merge(&mut self, other: Tally) {
        self.compared += other.compared;
        self.unchanged += other.unchanged;
        self.changed += other.changed;
        self.flips += other.flips;
        for (t, n) in other.transitions {
            *self.transitions.entry(t).or_default() += n;
        }
        for (m, n) in other.by_measure {
            let mine = self.by_measure.entry(m).or_default();
            mine.gained += n.gained;
            mine.lost += n.lost;
        }
        for (j, n) in other.by_jurisdiction {
            *self.by_jurisdiction.entry(j).or_default() += n;
        }
    }

    /// Requests that went through `t`.
    pub fn count(&self, t: Transition) -> u64 {
        self.transitions.get(&t).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_read_as_written_and_show_back() {
        let t: Transition = "deny->allow".parse().unwrap();
        assert_eq!(
            t,
            Transition {
                from: Outcome::Deny,
                to: Outcome::Allow
            }
        );
        assert_eq!(t.to_string(), "deny->allow");
        assert_eq!(
            " Allow → Conditional "
                .parse::<Transition>()
                .unwrap()
                .to_string(),
            "allow->conditional"
        );
        for bad in [
            "deny",
            "deny->",
            "->allow",
            "deny->permit",
            "deny-allow",
            "",
        ] {
            assert!(bad.parse::<Transition>().is_err(), "{bad}");
        }
        let all: Vec<String> = Transition::all().map(|t| t.to_string()).collect();
        assert_eq!(all.len(), 9);
        assert_eq!(all.first().map(String::as_str), Some("allow->deny"));
        assert!(all.iter().take(6).all(|t| {
            let (a, b) = t.split_once("->").unwrap();
            a != b
        }));
    }
}
