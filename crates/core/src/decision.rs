//! The decision: the one place that turns Cedar's answer into allow / deny /
//! conditional, with reasons, conditions and obligations.
//!
//! The engine evaluates each policy that can apply and reports which were
//! satisfied and which erred. From those, with the effect and annotations of
//! each policy:
//! - a satisfied `forbid` without `@condition` denies;
//! - a `forbid` that erred denies too, unless its `@condition` is satisfied
//!   (fail closed: Cedar alone would skip it and let a permit win);
//! - no satisfied `permit` denies with the reason `no_permit`;
//! - a satisfied `forbid` whose `@condition` is not in `satisfied_conditions`
//!   makes the decision conditional;
//! - otherwise allow, with the `@obligation` of every satisfied permit.

use std::path::PathBuf;
use std::sync::Arc;

use cedar_policy::Effect;
use serde::{Deserialize, Serialize};

use crate::enrich::Facts;
use crate::lifecycle::{Instant, Window};

/// What the annotations of one policy say.
#[derive(Debug, Clone)]
pub struct PolicyMeta {
    /// `@id`.
    pub(crate) id: Arc<str>,
    /// `permit` or `forbid`.
    pub(crate) effect: Effect,
    /// `@measure`.
    pub(crate) measure: Option<Arc<str>>,
    /// `@message`.
    pub(crate) message: Option<Arc<str>>,
    /// `@condition`: a forbid that makes the decision conditional instead of deny.
    pub(crate) condition: Option<Arc<str>>,
    /// `@obligation`: a duty attached to an allow this permit determines.
    pub(crate) obligation: Option<Arc<str>>,
    /// `@effective`, `@expires`, `@extended`: when it applies.
    pub(crate) window: Window,
    /// The policy file it is in.
    pub(crate) file: PathBuf,
    /// 1-based line of the policy in its file.
    pub(crate) line: usize,
}

impl PolicyMeta {
    /// `@id`.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// Whether it is a `forbid`.
    pub fn is_forbid(&self) -> bool {
        self.effect == Effect::Forbid
    }

    /// `@measure`.
    pub fn measure(&self) -> Option<&Arc<str>> {
        self.measure.as_ref()
    }

    /// `@condition`.
    pub fn condition(&self) -> Option<&Arc<str>> {
        self.condition.as_ref()
    }

    /// `@obligation`.
    pub fn obligation(&self) -> Option<&Arc<str>> {
        self.obligation.as_ref()
    }

    /// When it applies.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The policy file it is in.
    pub fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// 1-based line of the policy in its file.
    pub fn line(&self) -> usize {
        self.line
    }
}

/// Reserved: the reason reported when no permit applies.
pub(crate) const NO_PERMIT: &str = "no_permit";

/// The answer: `allow`, `deny` or `conditional` (the `decision` field).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Go ahead, with the obligations attached.
    Allow,
    /// Prohibited, for the reasons given.
    Deny,
    /// Allowed once every condition is met and named in `satisfied_conditions`.
    Conditional,
}

impl Outcome {
    /// Every outcome, in the order above.
    pub const ALL: [Outcome; 3] = [Self::Allow, Self::Deny, Self::Conditional];

    /// The wire name: `allow`, `deny` or `conditional`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Conditional => "conditional",
        }
    }
}

/// A policy that decided, with its measure and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reason {
    /// `policy`: the policy's `@id`; `no_permit` or `evaluation_error` when no policy decided.
    #[schema(value_type = String)]
    pub policy: Arc<str>,
    /// `measure`: the policy's `@measure`; `null` when it has none.
    #[schema(value_type = Option<String>)]
    pub measure: Option<Arc<str>>,
    /// `message`: the policy's `@message`; `null` when it has none.
    #[schema(value_type = Option<String>)]
    pub message: Option<Arc<str>>,
}

/// A condition (from `@condition`) or obligation (from `@obligation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Requirement {
    /// `id`: the `@condition` or `@obligation` id.
    #[schema(value_type = String)]
    pub id: Arc<str>,
    /// `policy`: the `@id` of the policy that carries it.
    #[schema(value_type = String)]
    pub policy: Arc<str>,
    /// `measure`: that policy's `@measure`; `null` when it has none.
    #[schema(value_type = Option<String>)]
    pub measure: Option<Arc<str>>,
    /// `message`: that policy's `@message`; `null` when it has none.
    #[schema(value_type = Option<String>)]
    pub message: Option<Arc<str>>,
}

/// An error met while deciding; any error in a forbid fails closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DecisionError {
    /// `policy`: the `@id` of the policy whose evaluation erred; omitted for an error outside any policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub policy: Option<Arc<str>>,
    /// `message`: what went wrong.
    pub message: String,
}

/// The answer to one request (the body of `POST /v1/decide`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// `request_id`: as sent; `null` when the request had none.
    pub request_id: Option<String>,
    /// `decision`: allow, deny or conditional.
    pub decision: Outcome,
    /// `decision_id`: unique per decision (a ULID); its decision record carries it.
    pub decision_id: String,
    /// `policy_revision`: content hash (16 hex digits) of the snapshot's inputs.
    #[schema(value_type = String)]
    pub policy_revision: Arc<str>,
    /// `decided_at`: the instant the policies were applied as of (RFC 3339,
    /// UTC, milliseconds): when the decision was made, or the request's `at`.
    pub decided_at: Instant,
    /// `reasons`: the policies that deny or make the request conditional; empty for allow.
    pub reasons: Vec<Reason>,
    /// `conditions`: what must be met first; only for conditional.
    pub conditions: Vec<Requirement>,
    /// `obligations`: duties attached to an allow; only for allow.
    pub obligations: Vec<Requirement>,
    /// `facts`: what was decided on.
    pub facts: Facts,
    /// `errors`: errors met while evaluating; an erring forbid denies, an erring permit does not apply.
    pub errors: Vec<DecisionError>,
}

/// The outcome part of a decision, before ids and facts are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub outcome: Outcome,
    pub reasons: Vec<Reason>,
    pub conditions: Vec<Requirement>,
    pub obligations: Vec<Requirement>,
    pub errors: Vec<DecisionError>,
}

impl Verdict {
    /// A deny that no policy decided: something failed before or during evaluation.
    pub fn fail_closed(message: String) -> Self {
        Self {
            outcome: Outcome::Deny,
            reasons: vec![Reason {
                policy: Arc::from("evaluation_error"),
                measure: None,
                message: Some(Arc::from(
                    "the request could not be fully evaluated; denied (fail closed)",
                )),
            }],
            conditions: Vec::new(),
            obligations: Vec::new(),
            errors: vec![DecisionError {
                policy: None,
                message,
            }],
        }
    }
}

fn reason(m: &PolicyMeta) -> Reason {
    Reason {
        policy: m.id.clone(),
        measure: m.measure.clone(),
        message: m.message.clone(),
    }
}

fn requirement(id: &Arc<str>, m: &PolicyMeta) -> Requirement {
    Requirement {
        id: id.clone(),
        policy: m.id.clone(),
        measure: m.measure.clone(),
        message: m.message.clone(),
    }
}

/// What evaluating the policies gave: the satisfied ones and the erring ones.
#[derive(Debug, Default)]
pub(crate) struct Evaluation<'a> {
    pub satisfied: Vec<&'a PolicyMeta>,
    pub errors: Vec<(&'a PolicyMeta, String)>,
}

/// Applies the decision semantics.
pub(crate) fn resolve(evaluation: Evaluation<'_>, satisfied_conditions: &[String]) -> Verdict {
    let lifted = |m: &PolicyMeta| {
        m.condition
            .as_deref()
            .is_some_and(|c| satisfied_conditions.iter().any(|s| s == c))
    };
    let mut hard = Vec::new();
    let mut liftable = Vec::new();
    let mut permits = Vec::new();
    let mut errors = Vec::with_capacity(evaluation.errors.len());

    for m in evaluation.satisfied {
        match (m.effect, &m.condition) {
            (Effect::Permit, _) => permits.push(m),
            (Effect::Forbid, None) => hard.push(m),
            (Effect::Forbid, Some(_)) if lifted(m) => {}
            (Effect::Forbid, Some(_)) => liftable.push(m),
        }
    }
    for (m, message) in evaluation.errors {
        if m.effect == Effect::Forbid && !lifted(m) {
            hard.push(m);
        }
        errors.push(DecisionError {
            policy: Some(m.id.clone()),
            message,
        });
    }

    let mut verdict = Verdict {
        outcome: Outcome::Allow,
        reasons: Vec::new(),
        conditions: Vec::new(),
        obligations: Vec::new(),
        errors,
    };
    if !hard.is_empty() {
        verdict.outcome = Outcome::Deny;
        verdict.reasons = hard.into_iter().map(reason).collect();
    } else if permits.is_empty() {
        verdict.outcome = Outcome::Deny;
        verdict.reasons = vec![Reason {
            policy: Arc::from(NO_PERMIT),
            measure: None,
            message: Some(Arc::from("no permit policy applies (default deny)")),
        }];
    } else if !liftable.is_empty() {
        verdict.outcome = Outcome::Conditional;
        verdict.reasons = liftable.iter().map(|m| reason(m)).collect();
        verdict.conditions = liftable
            .iter()
            .filter_map(|m| m.condition.as_ref().map(|c| requirement(c, m)))
            .collect();
    } else {
        verdict.obligations = permits
            .iter()
            .filter_map(|m| m.obligation.as_ref().map(|o| requirement(o, m)))
            .collect();
    }
    verdict
}
