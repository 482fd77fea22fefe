//! Policy test coverage: which policies, conditions and obligations the test
//! cases exercise.
//!
//! For each policy: whether some case saw it satisfied and some case saw it not
//! satisfied (a guard false, Cedar's false, or out of its window), each among
//! the cases whose action its scope admits; a policy that holds for every
//! request of its actions (no condition at all) cannot be seen not satisfied,
//! and that item is not counted. For each `@condition`, whether some case
//! produced it (the answer listed it) and some case lifted it (named it in
//! `satisfied_conditions` while its forbid held); for each `@obligation`,
//! whether some case produced it. The cases are explained
//! ([`crate::explain`]), so what is measured is what `decide` does.
//!
//! What the loaded data cannot produce is not counted either, and is said: a
//! policy guarded by `context.anonymous_ip` cannot be satisfied when no geo
//! database loaded has anonymizer flags (its condition then cannot be produced
//! or lifted).

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::cases::LocatedCase;
use crate::explain::{Explanation, PolicyResult, Role, explain};
use crate::policies::CompiledPolicy;
use crate::slicing::{FlagFact, Guard, SetFact};
use crate::snapshot::Snapshot;

/// Coverage of one policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyCoverage {
    /// `policy`: its `@id`.
    pub policy: Arc<str>,
    /// `file`, `line`: where it is written.
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// `satisfied`: some case saw it satisfied; `null` when the loaded data
    /// cannot satisfy it (`unreachable` says why; not counted).
    pub satisfied: Option<bool>,
    /// `unreachable`: why the loaded data cannot satisfy it, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<&'static str>,
    /// `not_satisfied`: some case saw it not satisfied; `null` when it holds for
    /// every request of its actions (not counted).
    pub not_satisfied: Option<bool>,
    /// `condition`: its `@condition`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionCoverage>,
    /// `obligation`: its `@obligation`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub obligation: Option<ObligationCoverage>,
    /// `covered`, `total`: items covered of those counted.
    pub covered: usize,
    /// Items counted.
    pub total: usize,
}

/// Coverage of one `@condition`.
#[derive(Debug, Clone, Serialize)]
pub struct ConditionCoverage {
    /// `id`: the condition.
    pub id: Arc<str>,
    /// `produced`: some case's answer was conditional on it (`null`: unreachable).
    pub produced: Option<bool>,
    /// `lifted`: some case met it while its forbid held (`null`: unreachable).
    pub lifted: Option<bool>,
}

/// Coverage of one `@obligation`.
#[derive(Debug, Clone, Serialize)]
pub struct ObligationCoverage {
    /// `id`: the obligation.
    pub id: Arc<str>,
    /// `produced`: some case's allow carried it (`null`: unreachable).
    pub produced: Option<bool>,
}

/// Coverage of one policy file.
#[derive(Debug, Clone, Serialize)]
pub struct FileCoverage {
    /// `file`: the policy file.
    pub file: PathBuf,
    /// `covered`: items covered.
    pub covered: usize,
    /// `total`: items counted.
    pub total: usize,
    /// `percent`: covered of total (100 when there is nothing to cover).
    pub percent: f64,
}

/// Coverage of a policy set by its test cases.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// `cases`: how many cases were run.
    pub cases: usize,
    /// `covered`: items covered, all files.
    pub covered: usize,
    /// `total`: items counted, all files.
    pub total: usize,
    /// `percent`: covered of total.
    pub percent: f64,
    /// `files`: per policy file, in load order.
    pub files: Vec<FileCoverage>,
    /// `policies`: per policy, in load order.
    pub policies: Vec<PolicyCoverage>,
}

impl PolicyCoverage {
    /// The items not covered, for people (`not satisfied`, `condition kyc lifted`).
    pub fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        if self.satisfied == Some(false) {
            missing.push("satisfied".to_owned());
        }
        if self.not_satisfied == Some(false) {
            missing.push("not satisfied".to_owned());
        }
        if let Some(c) = &self.condition {
            if c.produced == Some(false) {
                missing.push(format!("condition `{}` produced", c.id));
            }
            if c.lifted == Some(false) {
                missing.push(format!("condition `{}` lifted", c.id));
            }
        }
        if let Some(o) = &self.obligation
            && o.produced == Some(false)
        {
            missing.push(format!("obligation `{}` produced", o.id));
        }
        missing
    }
}

/// Why the loaded data can never satisfy `p`, if it cannot: a guard on a
/// fact that only a kind of geo database not loaded could make true.
fn unreachable(snapshot: &Snapshot, p: &CompiledPolicy) -> Option<&'static str> {
    let layouts = || snapshot.geo.databases().iter().map(|db| db.layout());
    let anonymizer = layouts().any(|l| l.anonymizer);
    let country = layouts().any(|l| l.country);
    p.guards.iter().find_map(|g| match g {
        Guard::Flag(FlagFact::AnonymousIp) if !anonymizer => Some(
            "no geo database loaded has anonymizer flags: `context.anonymous_ip` is always false",
        ),
        Guard::Flag(FlagFact::IpCountryMismatch) if !country => Some(
            "no geo database loaded has countries: `context.ip_country_mismatch` is always false",
        ),
        Guard::Contains(SetFact::IpCountries, _)
        | Guard::ContainsAny(SetFact::IpCountries, _)
        | Guard::NotEmpty(SetFact::IpCountries)
            if !country =>
        {
            Some("no geo database loaded has countries: `context.ip_countries` is always empty")
        }
        _ => None,
    })
}

fn percent(covered: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        // Counts of policies are far below f64's exact integer range.
        #[allow(clippy::cast_precision_loss)]
        let p = covered as f64 * 100.0 / total as f64;
        p
    }
}

/// Explains every case on `snapshot` and measures what they cover; each
/// explanation is handed back with its case, so that the caller can also
/// compare it with what the case expects.
pub fn coverage<'c>(
    snapshot: &Snapshot,
    cases: &'c [LocatedCase],
) -> (Coverage, Vec<(&'c LocatedCase, Explanation)>) {
    let explained: Vec<(&LocatedCase, Explanation)> = cases
        .iter()
        .map(|c| (c, explain(snapshot, &c.case.request)))
        .collect();
    let mut policies = Vec::new();
    for p in snapshot.policies.compiled() {
        let m = &p.meta;
        let traces = explained
            .iter()
            .flat_map(|(_, e)| e.policies.iter())
            .filter(|t| Arc::ptr_eq(&t.policy, &m.id));
        let (mut satisfied, mut not_satisfied, mut lifted) = (false, false, false);
        for t in traces {
            satisfied |= t.result.is_satisfied();
            not_satisfied |=
                t.result.is_not_satisfied() || matches!(t.result, PolicyResult::OutOfWindow { .. });
            // Met while the forbid held (not while it erred).
            lifted |= t.result.is_satisfied() && matches!(t.role, Some(Role::Lifted { .. }));
        }
        let unreachable = unreachable(snapshot, p);
        let reachable = |hit: bool| unreachable.is_none().then_some(hit);
        let decisions = || explained.iter().map(|(_, e)| &e.decision);
        let condition = m.condition.as_ref().map(|id| ConditionCoverage {
            id: id.clone(),
            produced: reachable(
                decisions().any(|d| d.conditions.iter().any(|c| Arc::ptr_eq(&c.policy, &m.id))),
            ),
            lifted: reachable(lifted),
        });
        let obligation = m.obligation.as_ref().map(|id| ObligationCoverage {
            id: id.clone(),
            produced: reachable(
                decisions().any(|d| d.obligations.iter().any(|o| Arc::ptr_eq(&o.policy, &m.id))),
            ),
        });
        // No condition and no guard: it holds for every request of its actions.
        let unconditional = p.decided_by_guards && p.guards.is_empty() && !m.window.is_dated();
        let not_satisfied = (!unconditional).then_some(not_satisfied);
        let satisfied = reachable(satisfied);
        let items = [satisfied, not_satisfied]
            .into_iter()
            .chain(condition.iter().flat_map(|c| [c.produced, c.lifted]))
            .chain(obligation.iter().map(|o| o.produced))
            .flatten();
        let (covered, total) = items.fold((0, 0), |(c, t), hit| (c + usize::from(hit), t + 1));
        policies.push(PolicyCoverage {
            policy: m.id.clone(),
            file: m.file.clone(),
            line: m.line,
            satisfied,
            unreachable,
            not_satisfied,
            condition,
            obligation,
            covered,
            total,
        });
    }
    let mut files: Vec<FileCoverage> = Vec::new();
    for p in &policies {
        match files.iter_mut().find(|f| f.file == p.file) {
            Some(f) => {
                f.covered += p.covered;
                f.total += p.total;
            }
            None => files.push(FileCoverage {
                file: p.file.clone(),
                covered: p.covered,
                total: p.total,
                percent: 0.0,
            }),
        }
    }
    for f in &mut files {
        f.percent = percent(f.covered, f.total);
    }
    let covered = policies.iter().map(|p| p.covered).sum();
    let total = policies.iter().map(|p| p.total).sum();
    let coverage = Coverage {
        cases: cases.len(),
        covered,
        total,
        percent: percent(covered, total),
        files,
        policies,
    };
    (coverage, explained)
}
