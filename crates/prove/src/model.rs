//! Portcullis's answers as Cedar policy sets the symbolic compiler can reason
//! about.
//!
//! Portcullis answers allow, conditional or deny (see `portcullis_core::decision`):
//! a satisfied `forbid` without `@condition` denies, no satisfied `permit`
//! denies, a satisfied `forbid` whose `@condition` is not in
//! `context.satisfied_conditions` makes the answer conditional, and an allow
//! carries the `@obligation` of every satisfied `permit`. Cedar answers allow
//! or deny, so each policy set becomes several Cedar sets:
//!
//! - [`Model::allow`]: Cedar allows exactly what Portcullis allows. Each
//!   conditional `forbid` gets `unless { context.satisfied_conditions.contains("c") }`.
//! - [`Model::allow_or_conditional`]: Cedar allows exactly what Portcullis allows
//!   or makes conditional. Conditional `forbid`s are left out.
//! - [`Model::obligations`]: per obligation, Cedar allows exactly what Portcullis
//!   allows *with* that obligation: [`Model::allow`] with only the `permit`s
//!   that carry it.
//!
//! All hold the facts axioms ([`facts_condition`]): what enrichment guarantees
//! about the facts (every declared country is a jurisdiction, a match means a
//! score at the threshold, …), as a `forbid` of every request that breaks
//! them, so that no counterexample is a request enrichment can never produce.
//! The axioms are necessary conditions only: a counterexample may still be
//! one no request produces (a jurisdiction no source accounts for), which the
//! witness then says.
//!
//! One difference is left: Cedar ignores a policy that errs, Portcullis denies
//! on a `forbid` that errs. The models are exact where no `forbid` can err;
//! `Prover` finds those that can and says what it cannot then prove.
//!
//! A model is of the policies in force at one instant (`@effective`,
//! `@expires`); [`instants`] lists the instants at which that changes.

use std::collections::{BTreeMap, HashMap};

use cedar_policy::{Policy, PolicyId, PolicySet};
use portcullis_core::lifecycle::Instant;
use portcullis_core::policies::LoadedPolicies;
use serde_json::{Value, json};

/// The id of the axioms policy in every model (reserved).
pub const FACTS_ID: &str = "portcullis::facts";

/// The most instants a proof looks at (the one asked and the changes after it).
pub const MAX_INSTANTS: usize = 64;

/// What enrichment guarantees, as a Cedar condition, with the snapshot's
/// screening `threshold`. Each clause is a necessary consequence of
/// `portcullis_core::enrich`; none may exclude a request the engine can see.
pub fn facts_condition(threshold: u8) -> String {
    let mut clauses = vec![
        // Countries are ISO codes, never blank.
        r#"!context.jurisdictions.contains("")"#.to_owned(),
        "context.jurisdictions.containsAll(context.declared_countries)".to_owned(),
        "context.jurisdictions.containsAll(context.ip_countries)".to_owned(),
        "context.jurisdictions.containsAll(principal.owner_countries)".to_owned(),
        "context.declared_countries.containsAll(principal.nationalities)".to_owned(),
        r#"(principal.country == "" || context.declared_countries.contains(principal.country))"#
            .to_owned(),
        r#"(principal.payment_country == "" || context.declared_countries.contains(principal.payment_country))"#
            .to_owned(),
        r#"(principal.reseller_country == "" || context.jurisdictions.contains(principal.reseller_country))"#
            .to_owned(),
        "context.ip_country_mismatch == !context.declared_countries.containsAll(context.ip_countries)"
            .to_owned(),
        "0 <= context.screening_score && context.screening_score <= 100".to_owned(),
        // A match is a designation scored at the threshold or above, and the
        // score is the best one.
        format!("(context.screening_matches.isEmpty() || context.screening_score >= {threshold})"),
        "0 <= resource.gpu_count && resource.gpu_count <= 4294967295".to_owned(),
    ];
    if threshold > 0 {
        // A best score at a threshold above 0 is a match.
        clauses.push(format!(
            "(context.screening_score < {threshold} || !context.screening_matches.isEmpty())"
        ));
    }
    clauses.join(" &&\n  ")
}

/// Why a model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("policy `{id}` cannot be modelled: {reason}")]
    Policy { id: String, reason: String },
    #[error("the facts axioms do not parse: {0}")]
    Facts(String),
}

/// One policy set at one instant, as the Cedar sets that tell its answers apart.
#[derive(Debug, Clone)]
pub struct Model {
    /// The instant the policies are taken in force at.
    pub at: Instant,
    pub allow: PolicySet,
    pub allow_or_conditional: PolicySet,
    /// Per `@obligation`: what is allowed with it.
    pub obligations: BTreeMap<String, PolicySet>,
    /// The `forbid`s in force as [`Model::allow`] has them.
    pub forbids_in_force: Vec<Policy>,
    /// Every policy of the set, in force now or not, as written.
    pub all: Vec<Policy>,
    /// The `@condition`s of the policies in force.
    pub conditions: Vec<String>,
    /// The axioms, as the first condition to put in front of a policy's own
    /// (an EST condition object).
    pub facts_when: Value,
}

/// The axioms as a `forbid` of every request that breaks them.
pub fn facts_policy(threshold: u8) -> Result<Policy, ModelError> {
    let text = format!(
        "@id(\"{FACTS_ID}\")\nforbid (principal, action, resource) unless {{\n  {}\n}};",
        facts_condition(threshold)
    );
    Policy::parse(Some(PolicyId::new(FACTS_ID)), text).map_err(|e| ModelError::Facts(e.to_string()))
}

/// `when { axioms }` as an EST condition.
fn facts_when(threshold: u8) -> Result<Value, ModelError> {
    let text = format!(
        "permit (principal, action, resource) when {{\n  {}\n}};",
        facts_condition(threshold)
    );
    let policy = Policy::parse(None, text).map_err(|e| ModelError::Facts(e.to_string()))?;
    let est = policy
        .to_json()
        .map_err(|e| ModelError::Facts(e.to_string()))?;
    est.pointer("/conditions/0")
        .cloned()
        .ok_or_else(|| ModelError::Facts("its JSON form has no condition".into()))
}

/// `at`, then every later instant at which a policy of `sets` starts or stops
/// applying, up to [`MAX_INSTANTS`] in all.
pub fn instants(sets: &[&LoadedPolicies], at: Instant) -> Vec<Instant> {
    let mut out = vec![at];
    let mut now = at;
    while out.len() < MAX_INSTANTS {
        let Some(next) = sets.iter().filter_map(|s| s.next_change(now)).min() else {
            break;
        };
        out.push(next);
        now = next;
    }
    out
}

impl Model {
    /// The model of `policies` as in force at `at`, with the screening `threshold`.
    pub fn of(policies: &LoadedPolicies, at: Instant, threshold: u8) -> Result<Self, ModelError> {
        let metas: HashMap<&str, _> = policies.metas().map(|m| (m.id().as_ref(), m)).collect();
        let facts = facts_policy(threshold)?;
        let mut allow = vec![facts.clone()];
        let mut allow_or_conditional = vec![facts.clone()];
        // (obligation, permit) pairs, and the forbids as `allow` has them.
        let mut obliging: Vec<(String, Policy)> = Vec::new();
        let mut forbids = Vec::new();
        let mut all = Vec::new();
        let mut conditions = Vec::new();
        for p in policies.source.policies() {
            let id = p.id().to_string();
            if id == FACTS_ID {
                return Err(ModelError::Policy {
                    id,
                    reason: "this id is reserved for the facts axioms of `prove`".into(),
                });
            }
            let Some(meta) = metas.get(id.as_str()) else {
                return Err(ModelError::Policy {
                    id,
                    reason: "no annotations were read for it".into(),
                });
            };
            all.push(p.clone());
            if !meta.window().applies(at) {
                continue;
            }
            match (meta.is_forbid(), meta.condition()) {
                (true, Some(condition)) => {
                    let p = unless_satisfied(p, condition)?;
                    allow.push(p.clone());
                    forbids.push(p);
                    conditions.push(condition.to_string());
                }
                (true, None) => {
                    allow.push(p.clone());
                    allow_or_conditional.push(p.clone());
                    forbids.push(p.clone());
                }
                (false, _) => {
                    allow.push(p.clone());
                    allow_or_conditional.push(p.clone());
                    if let Some(o) = meta.obligation() {
                        obliging.push((o.to_string(), p.clone()));
                    }
                }
            }
        }
        let mut obligations = BTreeMap::new();
        let names: std::collections::BTreeSet<&String> = obliging.iter().map(|(o, _)| o).collect();
        for name in names {
            let mut set = vec![facts.clone()];
            set.extend(forbids.iter().cloned());
            set.extend(
                obliging
                    .iter()
                    .filter(|(o, _)| o == name)
                    .map(|(_, p)| p.clone()),
            );
            obligations.insert(name.clone(), self::set(set)?);
        }
        Ok(Self {
            at,
            allow: set(allow)?,
            allow_or_conditional: set(allow_or_conditional)?,
            obligations,
            forbids_in_force: forbids,
            all,
            conditions,
            facts_when: facts_when(threshold)?,
        })
    }

    /// `p` with the axioms as its first condition: it can then err only on
    /// requests enrichment can produce (for `never_errors`).
    pub fn under_facts(&self, p: &Policy) -> Result<Policy, ModelError> {
        with_condition(p, Some(0), self.facts_when.clone())
    }
}

/// A policy set of `policies` (their ids are unique: they were loaded so).
pub fn set(policies: Vec<Policy>) -> Result<PolicySet, ModelError> {
    PolicySet::from_policies(policies).map_err(|e| ModelError::Policy {
        id: "(set)".into(),
        reason: e.to_string(),
    })
}

/// `p` with `unless { context.satisfied_conditions.contains(condition) }`.
fn unless_satisfied(p: &Policy, condition: &str) -> Result<Policy, ModelError> {
    let clause = json!({
        "kind": "unless",
        "body": {"contains": {
            "left": {".": {"left": {"Var": "context"}, "attr": "satisfied_conditions"}},
            "right": {"Value": condition}
        }}
    });
    with_condition(p, None, clause)
}

/// `p` with one more condition (an EST condition object), at `position` among
/// its own or after them.
fn with_condition(
    p: &Policy,
    position: Option<usize>,
    clause: Value,
) -> Result<Policy, ModelError> {
    let fail = |reason: String| ModelError::Policy {
        id: p.id().to_string(),
        reason,
    };
    let mut est = p.to_json().map_err(|e| fail(e.to_string()))?;
    let conditions = est
        .get_mut("conditions")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| fail("its JSON form has no conditions".into()))?;
    match position {
        Some(at) => conditions.insert(at.min(conditions.len()), clause),
        None => conditions.push(clause),
    }
    Policy::from_json(Some(p.id().clone()), est).map_err(|e| fail(e.to_string()))
}
