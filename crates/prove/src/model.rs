//! Portcullis's answers as Cedar policy sets the symbolic compiler can reason
//! about.
//!
//! Portcullis answers allow, conditional or deny (see `portcullis_core::decision`):
//! a satisfied `forbid` without `@condition` denies, no satisfied `permit`
//! denies, a satisfied `forbid` whose `@condition` is not in
//! `context.satisfied_conditions` makes the answer conditional. Cedar answers
//! allow or deny, so each policy set becomes two Cedar sets:
//!
//! - [`Model::allow`]: Cedar allows exactly what Portcullis allows. Each
//!   conditional `forbid` gets `unless { context.satisfied_conditions.contains("c") }`.
//! - [`Model::allow_or_conditional`]: Cedar allows exactly what Portcullis allows
//!   or makes conditional. Conditional `forbid`s are left out.
//!
//! Both hold the [`FACTS`] axioms: what enrichment guarantees about the facts
//! (every declared country is a jurisdiction, a match means a score at the
//! threshold, …), as a `forbid` of every request that breaks them, so that no
//! counterexample is a request enrichment can never produce.
//!
//! One difference is left: Cedar ignores a policy that errs, Portcullis denies
//! on a `forbid` that errs. The models are exact when no `forbid` can err,
//! which `never_errors` checks.
//!
//! Policies are taken as in force at one instant (`@effective`, `@expires`).

use std::collections::HashMap;

use cedar_policy::{Policy, PolicyId, PolicySet};
use portcullis_core::lifecycle::Instant;
use portcullis_core::policies::LoadedPolicies;
use serde_json::{Value, json};

/// The id of the axioms policy in every model.
pub const FACTS_ID: &str = "portcullis::facts";

/// What enrichment guarantees, as a condition on the request; `{threshold}` is
/// the snapshot's screening threshold.
pub const FACTS: &str = r#"
  !context.jurisdictions.contains("") &&
  context.jurisdictions.containsAll(context.declared_countries) &&
  context.jurisdictions.containsAll(context.ip_countries) &&
  context.jurisdictions.containsAll(principal.owner_countries) &&
  context.declared_countries.containsAll(principal.nationalities) &&
  (principal.country == "" || context.declared_countries.contains(principal.country)) &&
  (principal.payment_country == "" || context.declared_countries.contains(principal.payment_country)) &&
  (principal.reseller_country == "" || context.jurisdictions.contains(principal.reseller_country)) &&
  context.ip_country_mismatch == !context.declared_countries.containsAll(context.ip_countries) &&
  0 <= context.screening_score && context.screening_score <= 100 &&
  context.screening_matches.isEmpty() == (context.screening_score < {threshold}) &&
  0 <= resource.gpu_count && resource.gpu_count <= 4294967295
"#;

/// Why a model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("policy `{id}` cannot be modelled: {reason}")]
    Policy { id: String, reason: String },
    #[error("the facts axioms do not parse: {0}")]
    Facts(String),
}

/// One policy set, as the two Cedar sets that tell its answers apart.
#[derive(Debug, Clone)]
pub struct Model {
    pub allow: PolicySet,
    pub allow_or_conditional: PolicySet,
    /// The policies in force, as written (for `never_errors`).
    pub in_force: Vec<Policy>,
    /// The `@condition`s of the policies in force.
    pub conditions: Vec<String>,
}

/// The axioms as a `forbid` of every request that breaks them.
pub fn facts_policy(threshold: u8) -> Result<Policy, ModelError> {
    let text = format!(
        "@id(\"{FACTS_ID}\")\nforbid (principal, action, resource) unless {{{}}};",
        FACTS.replace("{threshold}", &threshold.to_string())
    );
    Policy::parse(Some(PolicyId::new(FACTS_ID)), text).map_err(|e| ModelError::Facts(e.to_string()))
}

impl Model {
    /// The model of `policies` as in force at `at`, with the screening `threshold`.
    pub fn of(policies: &LoadedPolicies, at: Instant, threshold: u8) -> Result<Self, ModelError> {
        let metas: HashMap<&str, _> = policies.metas().map(|m| (m.id().as_ref(), m)).collect();
        let facts = facts_policy(threshold)?;
        let mut allow = vec![facts.clone()];
        let mut allow_or_conditional = vec![facts];
        let mut in_force = Vec::new();
        let mut conditions = Vec::new();
        for p in policies.source.policies() {
            let id = p.id().to_string();
            let Some(meta) = metas.get(id.as_str()) else {
                return Err(ModelError::Policy {
                    id,
                    reason: "no annotations were read for it".into(),
                });
            };
            if !meta.window().applies(at) {
                continue;
            }
            in_force.push(p.clone());
            match (meta.is_forbid(), meta.condition()) {
                (true, Some(condition)) => {
                    allow.push(unless_satisfied(p, condition)?);
                    conditions.push(condition.to_string());
                }
                _ => {
                    allow.push(p.clone());
                    allow_or_conditional.push(p.clone());
                }
            }
        }
        Ok(Self {
            allow: set(allow)?,
            allow_or_conditional: set(allow_or_conditional)?,
            in_force,
            conditions,
        })
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
    let fail = |reason: String| ModelError::Policy {
        id: p.id().to_string(),
        reason,
    };
    let mut est = p.to_json().map_err(|e| fail(e.to_string()))?;
    let conditions = est
        .get_mut("conditions")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| fail("its JSON form has no conditions".into()))?;
    conditions.push(json!({
        "kind": "unless",
        "body": {"contains": {
            "left": {".": {"left": {"Var": "context"}, "attr": "satisfied_conditions"}},
            "right": {"Value": condition}
        }}
    }));
    Policy::from_json(Some(p.id().clone()), est).map_err(|e| fail(e.to_string()))
}
