//! `explain`: a decision and how it was reached, for policy authors.
//!
//! The decision is made by the one decision path ([`crate::engine`]) with a
//! trace attached, so what is explained is what `decide` answers: the facts
//! (each country tied to the request with the fields it came from), then every
//! policy of the action's slice with what happened to it — out of its window,
//! a guard false (which one), decided by its guards, evaluated by Cedar
//! (satisfied, not satisfied, or the error) — and the part each satisfied one
//! played in the answer.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::budget::{Budget, Unbounded};
use crate::country::Country;
use crate::decision::{Decision, Outcome, PolicyMeta};
use crate::engine::{Slicing, Trace, decide_traced};
use crate::enrich::Facts;
use crate::lifecycle::{Instant, MeasureState};
use crate::policies::CompiledPolicy;
use crate::request::{Action, DecideRequest};
use crate::slicing::Guard;
use crate::snapshot::Snapshot;

/// A decision with its trace (the body of `POST /v1/explain`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ExplainAnswer)]
pub struct Explanation {
    /// `decision`: exactly what `POST /v1/decide` answers (screening matches
    /// explained, as with `"explain": true`).
    pub decision: Decision,
    /// `action`: the action whose policies were evaluated.
    pub action: Action,
    /// `countries`: each country tied to the request and the fields it came from.
    pub countries: Vec<CountrySource>,
    /// `policies`: every policy whose action scope admits the action, in load
    /// order, with what happened to it.
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<PolicyTrace>,
    /// `other_actions`: the policies whose action scope excludes the action.
    #[schema(value_type = Vec<String>)]
    pub other_actions: Vec<Arc<str>>,
    /// `summary`: the answer in one sentence.
    pub summary: String,
}

/// A country tied to the request and where it came from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CountrySource {
    /// `country`: ISO 3166-1 alpha-2.
    pub country: Country,
    /// `sources`: the request fields (`customer.nationalities[0]`,
    /// `source_ips[1]`, …) that tie it, each with what it said.
    pub sources: Vec<String>,
}

/// One policy of the action's slice and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyTrace {
    /// `policy`: its `@id`.
    pub policy: Arc<str>,
    /// `effect`: `permit` or `forbid`.
    pub effect: &'static str,
    /// `measure`: its `@measure`, if any.
    pub measure: Option<Arc<str>>,
    /// `file`, `line`: where it is written.
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// `result` and what goes with it.
    #[serde(flatten)]
    pub result: PolicyResult,
    /// `role`: the part it played in the answer, when it was satisfied or erred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// What happened to one policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum PolicyResult {
    /// `out_of_window`: skipped: its `@effective` / `@expires` window does not hold the instant.
    OutOfWindow {
        /// `state`: `scheduled` or `expired`.
        state: MeasureState,
        /// `effective`: when it starts, if set.
        #[serde(skip_serializing_if = "Option::is_none")]
        effective: Option<Instant>,
        /// `expires`: when it ends, if set.
        #[serde(skip_serializing_if = "Option::is_none")]
        expires: Option<Instant>,
    },
    /// `guard_false`: skipped: a leading test of its `when` is false, so it cannot be satisfied.
    GuardFalse {
        /// `guard`: the test, as Cedar text.
        guard: String,
    },
    /// `decided_by_guards`: satisfied: its whole condition is guards, and all hold (Cedar not run).
    DecidedByGuards,
    /// `satisfied`: Cedar evaluated it to true.
    Satisfied,
    /// `not_satisfied`: Cedar evaluated it to false.
    NotSatisfied,
    /// `error`: evaluating it erred.
    Error {
        /// `error`: what went wrong.
        error: String,
    },
    /// `not_reached`: evaluation stopped before it (a fact could not be
    /// established; the request was denied, fail closed).
    NotReached,
}

impl PolicyResult {
    /// Whether the policy was satisfied (by its guards or by Cedar).
    pub fn is_satisfied(&self) -> bool {
        matches!(self, Self::DecidedByGuards | Self::Satisfied)
    }

    /// Whether the policy was found not satisfied (a guard false, or Cedar said false).
    pub fn is_not_satisfied(&self) -> bool {
        matches!(self, Self::GuardFalse { .. } | Self::NotSatisfied)
    }
}

/// The part a satisfied (or erring) policy played, by the decision semantics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// `denies`: a satisfied `forbid` without `@condition`.
    Denies,
    /// `denies_fail_closed`: a `forbid` that erred denies.
    DeniesFailClosed,
    /// `conditional_on`: a satisfied `forbid` whose `@condition` is not met.
    ConditionalOn {
        /// `condition`: the `@condition` to meet.
        condition: Arc<str>,
    },
    /// `lifted`: a `forbid` whose `@condition` is in `satisfied_conditions`: it does not apply.
    Lifted {
        /// `condition`: the `@condition` met.
        condition: Arc<str>,
    },
    /// `permits`: a satisfied `permit`; with the obligation it attaches when the answer is allow.
    Permits {
        /// `obligation`: attached to the allow.
        #[serde(skip_serializing_if = "Option::is_none")]
        obligation: Option<Arc<str>>,
    },
    /// `does_not_apply`: a `permit` that erred is not counted.
    DoesNotApply,
}

/// Explains the decision on `req` (as `decide` makes it).
pub fn explain(snapshot: &Snapshot, req: &DecideRequest) -> Explanation {
    let Ok(explanation) = explain_within(snapshot, req, &Unbounded);
    explanation
}

/// [`explain`] within a time budget.
pub fn explain_within<B: Budget>(
    snapshot: &Snapshot,
    req: &DecideRequest,
    budget: &B,
) -> Result<Explanation, B::Over> {
    let mut req = req.clone();
    req.explain = true;
    let mut trace = Collector::default();
    let decision = decide_traced(snapshot, &req, Slicing::Guards, budget, &mut trace)?;
    let lifted = |m: &PolicyMeta| {
        m.condition
            .as_deref()
            .is_some_and(|c| req.satisfied_conditions.iter().any(|s| s == c))
    };
    let seen: HashMap<&str, &PolicyResult> = trace.seen.iter().map(|(id, r)| (&**id, r)).collect();
    let policies = snapshot
        .policies
        .for_action(req.action)
        .map(|p| {
            let m = &p.meta;
            let result = seen
                .get(&*m.id)
                .map_or(PolicyResult::NotReached, |r| (*r).clone());
            let role = role(m, &result, lifted(m), decision.decision);
            PolicyTrace {
                policy: m.id.clone(),
                effect: if m.is_forbid() { "forbid" } else { "permit" },
                measure: m.measure.clone(),
                file: m.file.clone(),
                line: m.line,
                result,
                role,
            }
        })
        .collect::<Vec<_>>();
    let in_slice: HashSet<&str> = policies.iter().map(|p| &*p.policy).collect();
    let other_actions = snapshot
        .policies
        .metas()
        .filter(|m| !in_slice.contains(&*m.id))
        .map(|m| m.id.clone())
        .collect();
    let summary = summary(&decision, &policies);
    Ok(Explanation {
        countries: country_sources(&req, &decision.facts),
        action: req.action,
        decision,
        policies,
        other_actions,
        summary,
    })
}

/// What the engine reported of each policy, in order.
#[derive(Default)]
struct Collector {
    seen: Vec<(Arc<str>, PolicyResult)>,
}

impl Trace for Collector {
    fn out_of_window(&mut self, policy: &CompiledPolicy, now: Instant) {
        let w = &policy.meta.window;
        let state = w.state(now);
        self.seen.push((
            policy.meta.id.clone(),
            PolicyResult::OutOfWindow {
                state,
                effective: w.effective,
                expires: w.expires,
            },
        ));
    }

    fn guard_false(&mut self, policy: &CompiledPolicy, guard: &Guard) {
        self.seen.push((
            policy.meta.id.clone(),
            PolicyResult::GuardFalse {
                guard: guard.to_string(),
            },
        ));
    }

    fn satisfied(&mut self, policy: &CompiledPolicy, by_guards: bool) {
        let result = if by_guards {
            PolicyResult::DecidedByGuards
        } else {
            PolicyResult::Satisfied
        };
        self.seen.push((policy.meta.id.clone(), result));
    }

    fn not_satisfied(&mut self, policy: &CompiledPolicy) {
        self.seen
            .push((policy.meta.id.clone(), PolicyResult::NotSatisfied));
    }

    fn erred(&mut self, policy: &CompiledPolicy, message: &str) {
        self.seen.push((
            policy.meta.id.clone(),
            PolicyResult::Error {
                error: message.to_owned(),
            },
        ));
    }
}

/// The part a policy played (see [`crate::decision`] for the semantics).
fn role(m: &PolicyMeta, result: &PolicyResult, lifted: bool, outcome: Outcome) -> Option<Role> {
    let erred = matches!(result, PolicyResult::Error { .. });
    if !result.is_satisfied() && !erred {
        return None;
    }
    Some(match (m.is_forbid(), &m.condition) {
        (false, _) if erred => Role::DoesNotApply,
        (false, _) => Role::Permits {
            obligation: m.obligation.clone().filter(|_| outcome == Outcome::Allow),
        },
        (true, Some(c)) if lifted => Role::Lifted {
            condition: c.clone(),
        },
        (true, _) if erred => Role::DeniesFailClosed,
        (true, None) => Role::Denies,
        (true, Some(c)) => Role::ConditionalOn {
            condition: c.clone(),
        },
    })
}

/// The answer in one sentence.
fn summary(d: &Decision, policies: &[PolicyTrace]) -> String {
    let named = |policy: &str, measure: &Option<Arc<str>>| match measure {
        Some(m) => format!("`{policy}` [{m}]"),
        None => format!("`{policy}`"),
    };
    let list = |items: Vec<String>| items.join(", ");
    match d.decision {
        Outcome::Deny => {
            let by = list(
                d.reasons
                    .iter()
                    .map(|r| match &*r.policy {
                        crate::decision::NO_PERMIT => "no permit applies (default deny)".to_owned(),
                        "evaluation_error" => {
                            "the request could not be fully evaluated (fail closed)".to_owned()
                        }
                        p => named(p, &r.measure),
                    })
                    .collect(),
            );
            format!("deny: {by}")
        }
        Outcome::Conditional => format!(
            "conditional: allowed once {} {} met",
            list(
                d.conditions
                    .iter()
                    .map(|c| format!("`{}` (from {})", c.id, named(&c.policy, &c.measure)))
                    .collect()
            ),
            if d.conditions.len() == 1 { "is" } else { "are" }
        ),
        Outcome::Allow => {
            let permits = list(
                policies
                    .iter()
                    .filter(|p| matches!(p.role, Some(Role::Permits { .. })))
                    .map(|p| named(&p.policy, &p.measure))
                    .collect(),
            );
            let mut s = format!("allow: permitted by {permits}");
            if !d.obligations.is_empty() {
                s.push_str(&format!(
                    "; obligations: {}",
                    list(
                        d.obligations
                            .iter()
                            .map(|o| format!("`{}`", o.id))
                            .collect()
                    )
                ));
            }
            s
        }
    }
}

/// Each jurisdiction with the request fields that tie it.
fn country_sources(req: &DecideRequest, facts: &Facts) -> Vec<CountrySource> {
    let c = &req.customer;
    let mut tied: Vec<(Country, String)> = Vec::new();
    for (i, n) in c.nationalities.iter().enumerate() {
        tied.push((*n, format!("customer.nationalities[{i}]")));
    }
    if let Some(country) = c.address.as_ref().and_then(|a| a.country) {
        tied.push((country, "customer.address.country".into()));
    }
    if let Some(country) = c.payment.as_ref().and_then(|p| p.country) {
        tied.push((country, "customer.payment.country".into()));
    }
    for (i, o) in c.beneficial_owners.iter().enumerate() {
        for (j, n) in o.nationalities.iter().enumerate() {
            tied.push((
                *n,
                format!("customer.beneficial_owners[{i}].nationalities[{j}]"),
            ));
        }
        if let Some(country) = o.country {
            tied.push((country, format!("customer.beneficial_owners[{i}].country")));
        }
    }
    if let Some(r) = &req.reseller {
        tied.push((r.country, "reseller.country".into()));
    }
    for ip in &facts.ips {
        let Some(country) = ip.country else { continue };
        let given = ip.embedded_in.unwrap_or(ip.ip);
        let index = req.source_ips.iter().position(|s| s.0 == given);
        let field = index.map_or_else(|| "source_ips".to_owned(), |i| format!("source_ips[{i}]"));
        let what = match ip.embedded_in {
            Some(outer) => format!("{field}: {} carried by {outer}, geolocated", ip.ip),
            None => format!("{field}: {}, geolocated", ip.ip),
        };
        tied.push((country, what));
    }
    facts
        .jurisdictions
        .iter()
        .map(|country| CountrySource {
            country: *country,
            sources: tied
                .iter()
                .filter(|(c, _)| c == country)
                .map(|(_, s)| s.clone())
                .collect(),
        })
        .collect()
}
