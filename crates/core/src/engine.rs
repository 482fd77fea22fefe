//! `decide`: one request in, one decision out, on one snapshot.
//!
//! Synchronous and free of I/O: it reads only the snapshot it is given. Each
//! policy that can apply is evaluated by Cedar's evaluator directly, so every
//! satisfied policy and every error is seen, whatever the policy's effect (Cedar's
//! authorizer would skip a forbid that errs; Portcullis denies). A policy made
//! only of guards (`slicing`) is satisfied exactly when they hold and is not
//! evaluated; when every applicable policy is of that kind, no Cedar input is
//! built at all.

use std::cell::OnceCell;
use std::sync::LazyLock;

use cedar_policy_core::ast::{Literal, SlotEnv, ValueKind};
use cedar_policy_core::evaluator::Evaluator;
use cedar_policy_core::extensions::Extensions;

use crate::budget::{Budget, OverBudget, Timebox, Unbounded};
use crate::cedar_input::{self, CedarInputError};
use crate::decision::{Decision, Evaluation, Verdict, resolve};
use crate::enrich::{Facts, enrich_within};
use crate::lifecycle::Instant;
use crate::policies::CompiledPolicy;
use crate::request::DecideRequest;
use crate::slicing::{Guard, GuardFacts};
use crate::snapshot::Snapshot;

/// Policies are static (templates are refused at load), so no slot is bound.
static NO_SLOTS: LazyLock<SlotEnv> = LazyLock::new(SlotEnv::new);

/// Whether to skip policies whose guards fail (see `slicing`). Both give the
/// same answers; `Full` exists to prove it and to measure the difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slicing {
    /// Skip policies whose guards fail, and do not evaluate those decided by their guards.
    Guards,
    /// Evaluate every policy of the action with Cedar.
    Full,
}

/// Decides one request on `snapshot`.
pub fn decide(snapshot: &Snapshot, req: &DecideRequest) -> Decision {
    decide_with(snapshot, req, Slicing::Guards)
}

/// [`decide`] within a time budget: the work stops at the first check past
/// its deadline (screening checks before each name) and gives no decision.
pub fn decide_within(
    snapshot: &Snapshot,
    req: &DecideRequest,
    budget: &Timebox,
) -> Result<Decision, OverBudget> {
    decide_budgeted(snapshot, req, Slicing::Guards, budget)
}

/// [`decide`], choosing whether guards slice the policy set.
pub fn decide_with(snapshot: &Snapshot, req: &DecideRequest, slicing: Slicing) -> Decision {
    let Ok(decision) = decide_budgeted(snapshot, req, slicing, &Unbounded);
    decision
}

fn decide_budgeted<B: Budget>(
    snapshot: &Snapshot,
    req: &DecideRequest,
    slicing: Slicing,
    budget: &B,
) -> Result<Decision, B::Over> {
    decide_traced(snapshot, req, slicing, budget, &mut ())
}

/// The one decision path: [`decide`] and `explain` alike, the latter with a
/// trace that sees what happened to each policy.
pub(crate) fn decide_traced<B: Budget, T: Trace>(
    snapshot: &Snapshot,
    req: &DecideRequest,
    slicing: Slicing,
    budget: &B,
    trace: &mut T,
) -> Result<Decision, B::Over> {
    // The clock is read once: every policy's window is judged at one instant,
    // and the decision id carries the same time.
    let clock = std::time::SystemTime::now();
    let now = req.at.unwrap_or_else(|| Instant::from_system(clock));
    let facts = enrich_within(
        req,
        &snapshot.geo,
        &snapshot.designations,
        snapshot.sources.settings,
        budget,
    )?;
    let verdict = match facts.errors.first() {
        Some(first) => Verdict::fail_closed(first.clone()),
        // A set without any window (the usual case) is evaluated by a loop
        // that does not look at windows at all.
        None if snapshot.policies.dated => {
            evaluate::<T, true>(snapshot, req, &facts, slicing, now, trace)
                .unwrap_or_else(|e| Verdict::fail_closed(e.to_string()))
        }
        None => evaluate::<T, false>(snapshot, req, &facts, slicing, now, trace)
            .unwrap_or_else(|e| Verdict::fail_closed(e.to_string())),
    };
    Ok(Decision {
        request_id: req.request_id.clone(),
        decision: verdict.outcome,
        decision_id: ulid::Ulid::from_datetime(clock).to_string(),
        policy_revision: snapshot.revision.clone(),
        decided_at: now,
        reasons: verdict.reasons,
        conditions: verdict.conditions,
        obligations: verdict.obligations,
        facts,
        errors: verdict.errors,
    })
}

/// Evaluates the policies that can apply, in one pass. Cedar input is built
/// only if one of them is not decided by its guards (with `Slicing::Full`,
/// always).
fn evaluate<T: Trace, const WINDOWS: bool>(
    snapshot: &Snapshot,
    req: &DecideRequest,
    facts: &Facts,
    slicing: Slicing,
    now: Instant,
    trace: &mut T,
) -> Result<Verdict, CedarInputError> {
    let policies = &snapshot.policies;
    let guard_facts = GuardFacts {
        jurisdictions: &facts.jurisdictions,
        declared_countries: &facts.declared_countries,
        ip_countries: &facts.ip_countries,
        nationalities: &req.customer.nationalities,
        owner_countries: &facts.owner_countries,
        screening_matches: &facts.screening_matches,
        satisfied_conditions: &req.satisfied_conditions,
        anonymous_ip: facts.anonymous_ip,
        ip_country_mismatch: facts.ip_country_mismatch,
        screening_score: facts.screening.score.into(),
        scalars: cedar_input::scalars(req),
    };
    let sliced = slicing == Slicing::Guards;
    // Cedar input is built when the first policy that needs Cedar is met.
    let entities = OnceCell::new();
    let mut evaluator = None;
    let mut evaluation = Evaluation::default();
    for policy in policies.for_action(req.action) {
        // Out of its window, a policy does not exist (whatever the slicing).
        if WINDOWS && !policy.meta.window.applies(now) {
            trace.out_of_window(policy, now);
            continue;
        }
        if sliced && let Some(failed) = policy.guards.iter().find(|g| !g.holds(&guard_facts)) {
            trace.guard_false(policy, failed);
            continue;
        }
        if sliced && policy.decided_by_guards {
            trace.satisfied(policy, true);
            evaluation.satisfied.push(&policy.meta);
            continue;
        }
        let evaluator = match &mut evaluator {
            Some(evaluator) => evaluator,
            None => {
                let (request, built) =
                    cedar_input::build(&snapshot.names, req, facts, policies.reads_source_ips)?;
                let entities = entities.get_or_init(|| built);
                evaluator.insert(Evaluator::new(
                    request,
                    entities,
                    Extensions::all_available(),
                ))
            }
        };
        match evaluator.interpret(&policy.condition, &NO_SLOTS) {
            Ok(v) if matches!(v.value_kind(), ValueKind::Lit(Literal::Bool(true))) => {
                trace.satisfied(policy, false);
                evaluation.satisfied.push(&policy.meta);
            }
            Ok(v) if matches!(v.value_kind(), ValueKind::Lit(Literal::Bool(false))) => {
                trace.not_satisfied(policy);
            }
            // Strict validation rules this out; if it happens, it is an error.
            Ok(v) => {
                let message = format!(
                    "policy `{}` evaluated to `{v}`, not a boolean",
                    policy.meta.id
                );
                trace.erred(policy, &message);
                evaluation.errors.push((&policy.meta, message));
            }
            Err(e) => {
                let message = format!("error while evaluating policy `{}`: {e}", policy.meta.id);
                trace.erred(policy, &message);
                evaluation.errors.push((&policy.meta, message));
            }
        }
    }
    Ok(resolve(evaluation, &req.satisfied_conditions))
}

/// What happens to each policy of the action's slice, for `explain`. The
/// decision path calls it with `()`, which does nothing and costs nothing.
pub(crate) trait Trace {
    /// The policy is out of its `@effective` / `@expires` window.
    fn out_of_window(&mut self, _policy: &CompiledPolicy, _now: Instant) {}
    /// A guard of the policy is false: it cannot be satisfied.
    fn guard_false(&mut self, _policy: &CompiledPolicy, _guard: &Guard) {}
    /// The policy is satisfied: by its guards alone, or evaluated by Cedar.
    fn satisfied(&mut self, _policy: &CompiledPolicy, _by_guards: bool) {}
    /// Cedar evaluated the policy and it is not satisfied.
    fn not_satisfied(&mut self, _policy: &CompiledPolicy) {}
    /// Evaluating the policy erred.
    fn erred(&mut self, _policy: &CompiledPolicy, _message: &str) {}
}

impl Trace for () {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{DecisionError, Outcome, Reason, Requirement};
    use crate::request::parse_decide;
    use crate::slicing::{Cmp, FlagFact, Guard};
    use crate::snapshot::Sources;

    /// What the property test (`tests/it/slicing.rs`) holds equal between
    /// sliced and full evaluation.
    type Answer = (
        Outcome,
        Vec<Reason>,
        Vec<Requirement>,
        Vec<Requirement>,
        Vec<DecisionError>,
    );

    fn answer(d: Decision) -> Answer {
        (d.decision, d.reasons, d.conditions, d.obligations, d.errors)
    }

    const POLICIES: &str = r#"@id("baseline") permit(principal, action, resource);
@id("kp") forbid(principal, action, resource) when { context.jurisdictions.contains("KP") };
@id("owners") forbid(principal, action, resource)
  when { principal.owner_countries.containsAny(["IR", "RU"]) && principal.name like "*Petrov*" };
@id("gpu") @condition("kyc") forbid(principal, action == Action::"provision", resource)
  when { resource.gpu_count >= 256 };
@id("iran") forbid(principal, action, resource) when { principal.country == "IR" };
@id("vm") @obligation("monitor") permit(principal, action, resource)
  when { resource.kind != "vm" && !context.declared_countries.isEmpty() && context.screening_score < 50 };
"#;

    const REQUESTS: [&str; 5] = [
        r#"{"action":"provision","customer":{"id":"c","name":"Ann Lee","address":{"country":"KP"}},"resource":{"kind":"gpu_cluster","gpu_count":300}}"#,
        r#"{"action":"open_account","customer":{"id":"c","name":"Ivan Petrov","beneficial_owners":[{"name":"O","country":"RU"}]}}"#,
        r#"{"action":"open_account","customer":{"id":"c","name":"Ann Lee","address":{"country":"IR"}}}"#,
        r#"{"action":"provision","customer":{"id":"c","name":"Ann Lee","address":{"country":"FR"}},"resource":{"kind":"gpu_cluster","gpu_count":8}}"#,
        r#"{"action":"maintain_account","customer":{"id":"c","name":"Ann Lee"}}"#,
    ];

    /// A guard that is wrong for the policy it is put on: another country,
    /// the opposite comparison, another fact.
    fn wrong(guard: &Guard) -> Guard {
        let other = |v: &str| if v == "CN" { "FR" } else { "CN" }.to_owned();
        let opposite = |op: Cmp| match op {
            Cmp::Eq => Cmp::Ne,
            Cmp::Ne => Cmp::Eq,
            Cmp::Lt => Cmp::Ge,
            Cmp::Ge => Cmp::Lt,
            Cmp::Le => Cmp::Gt,
            Cmp::Gt => Cmp::Le,
        };
        match guard {
            Guard::Contains(set, v) => Guard::Contains(*set, other(v)),
            Guard::ContainsAny(set, _) => Guard::ContainsAny(*set, vec![other("")]),
            Guard::NotEmpty(set) => Guard::Contains(*set, other("")),
            Guard::Flag(FlagFact::AnonymousIp) => Guard::Flag(FlagFact::IpCountryMismatch),
            Guard::Flag(FlagFact::IpCountryMismatch) => Guard::Flag(FlagFact::AnonymousIp),
            Guard::Long(fact, op, n) => Guard::Long(*fact, opposite(*op), *n),
            Guard::Str(fact, op, v) => Guard::Str(*fact, opposite(*op), v.clone()),
        }
    }

    #[test]
    fn a_wrong_guard_makes_sliced_and_full_evaluation_disagree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.cedar"), POLICIES).unwrap();
        let mut snapshot = Snapshot::build(Sources::new(dir.path(), Vec::new())).unwrap();
        let requests: Vec<DecideRequest> = REQUESTS
            .iter()
            .map(|r| parse_decide(r.as_bytes()).unwrap())
            .collect();
        // The requests on which the two disagree.
        let disagreeing = |snapshot: &Snapshot| -> Vec<usize> {
            (0..requests.len())
                .filter(|&i| {
                    let sliced = decide_with(snapshot, &requests[i], Slicing::Guards);
                    let full = decide_with(snapshot, &requests[i], Slicing::Full);
                    answer(sliced) != answer(full)
                })
                .collect()
        };
        assert_eq!(disagreeing(&snapshot), Vec::<usize>::new());
        // Each request is decided differently, so that guards are exercised.
        let outcomes: Vec<Outcome> = requests
            .iter()
            .map(|r| decide_with(&snapshot, r, Slicing::Full).decision)
            .collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Deny,
                Outcome::Deny,
                Outcome::Deny,
                Outcome::Allow,
                Outcome::Allow
            ]
        );

        let sites: Vec<(usize, usize)> = snapshot
            .policies
            .compiled()
            .enumerate()
            .flat_map(|(p, policy)| (0..policy.guards.len()).map(move |g| (p, g)))
            .collect();
        assert_eq!(sites.len(), 7, "every guard of POLICIES is read");
        for (p, g) in sites {
            let right = snapshot.policies.compiled_mut()[p].guards[g].clone();
            let bad = wrong(&right);
            snapshot.policies.compiled_mut()[p].guards[g] = bad.clone();
            let caught = disagreeing(&snapshot);
            assert!(
                !caught.is_empty(),
                "{bad:?} in place of {right:?} (policy {p}) is not caught"
            );
            snapshot.policies.compiled_mut()[p].guards[g] = right;
        }
        assert_eq!(disagreeing(&snapshot), Vec::<usize>::new());
    }
}
