//! Policy slicing by guards: a request evaluates only the policies that can apply.
//!
//! A *guard* is a test at the head of a policy's first `when` clause that cannot
//! err and is cheap to check on the facts directly: `context.jurisdictions
//! .contains("KP")`, `.containsAny([...])` on a set of the context or the
//! principal, `!context.screening_matches.isEmpty()`, or a boolean fact such as
//! `context.anonymous_ip`. Cedar evaluates `&&` left to right and stops at the
//! first false operand, so when a leading guard is false the policy is not
//! satisfied *and* nothing after it is evaluated (no error can arise): skipping
//! the policy gives exactly the answer of evaluating it. Only the leading run of
//! guards is used; a guard after a test that might err is not.
//!
//! Comparisons of a long attribute with a literal (`resource.gpu_count >= 256`,
//! `context.screening_score > 80`) and of a string attribute with a literal
//! (`principal.country == "IR"`, `resource.kind != "vm"`) are guards too: under
//! strict validation they cannot err either.
//!
//! A policy whose guards are its *whole* condition (principal and resource
//! unconstrained or only `is` their one type, no `unless`, at most one `when`,
//! every operand of it a guard; the action scope is the action slice) is
//! [decided by its guards](decided_by_guards): it is satisfied exactly when they
//! hold, and Cedar need not evaluate it. A request whose applicable policies are
//! all of this kind builds no Cedar input at all.

use serde_json::Value;

use crate::country::Country;

/// A set-valued fact a guard can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetFact {
    Jurisdictions,
    DeclaredCountries,
    IpCountries,
    ScreeningMatches,
    SatisfiedConditions,
    Nationalities,
    OwnerCountries,
}

/// A boolean fact a guard can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagFact {
    AnonymousIp,
    IpCountryMismatch,
}

/// A long fact a guard can compare with a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongFact {
    GpuCount,
    ScreeningScore,
}

/// A string fact a guard can compare with a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrFact {
    CustomerKind,
    CustomerCountry,
    PaymentCountry,
    ResellerCountry,
    ResourceKind,
    ResourceRegion,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn parse(op: &str) -> Option<Self> {
        Some(match op {
            "==" => Cmp::Eq,
            "!=" => Cmp::Ne,
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            _ => return None,
        })
    }

    fn holds<T: Ord + ?Sized>(self, left: &T, right: &T) -> bool {
        match self {
            Cmp::Eq => left == right,
            Cmp::Ne => left != right,
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
        }
    }
}

/// A necessary condition for a policy to be satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    Contains(SetFact, String),
    ContainsAny(SetFact, Vec<String>),
    NotEmpty(SetFact),
    Flag(FlagFact),
    /// `attr OP literal` on a long.
    Long(LongFact, Cmp, i64),
    /// `attr == literal` or `attr != literal` on a string (`Cmp::Eq` or `Cmp::Ne`).
    Str(StrFact, Cmp, String),
}

/// The facts guards are checked against, borrowed from the request and its enrichment.
#[derive(Debug, Clone, Copy)]
pub struct GuardFacts<'a> {
    pub jurisdictions: &'a [Country],
    pub declared_countries: &'a [Country],
    pub ip_countries: &'a [Country],
    pub nationalities: &'a [Country],
    pub owner_countries: &'a [Country],
    pub screening_matches: &'a [String],
    pub satisfied_conditions: &'a [String],
    pub anonymous_ip: bool,
    pub ip_country_mismatch: bool,
    pub screening_score: i64,
    /// The principal's and resource's scalar attributes, as given to Cedar.
    pub scalars: crate::cedar_input::Scalars<'a>,
}

impl GuardFacts<'_> {
    fn contains(&self, set: SetFact, value: &str) -> bool {
        let countries = |cs: &[Country]| cs.iter().any(|c| c.is(value));
        let strings = |ss: &[String]| ss.iter().any(|s| s == value);
        match set {
            SetFact::Jurisdictions => countries(self.jurisdictions),
            SetFact::DeclaredCountries => countries(self.declared_countries),
            SetFact::IpCountries => countries(self.ip_countries),
            SetFact::Nationalities => countries(self.nationalities),
            SetFact::OwnerCountries => countries(self.owner_countries),
            SetFact::ScreeningMatches => strings(self.screening_matches),
            SetFact::SatisfiedConditions => strings(self.satisfied_conditions),
        }
    }

    fn is_empty(&self, set: SetFact) -> bool {
        match set {
            SetFact::Jurisdictions => self.jurisdictions.is_empty(),
            SetFact::DeclaredCountries => self.declared_countries.is_empty(),
            SetFact::IpCountries => self.ip_countries.is_empty(),
            SetFact::Nationalities => self.nationalities.is_empty(),
            SetFact::OwnerCountries => self.owner_countries.is_empty(),
            SetFact::ScreeningMatches => self.screening_matches.is_empty(),
            SetFact::SatisfiedConditions => self.satisfied_conditions.is_empty(),
        }
    }

    fn long(&self, fact: LongFact) -> i64 {
        match fact {
            LongFact::GpuCount => self.scalars.gpu_count,
            LongFact::ScreeningScore => self.screening_score,
        }
    }

    fn string(&self, fact: StrFact) -> &str {
        let s = &self.scalars;
        match fact {
            StrFact::CustomerKind => s.kind,
            StrFact::CustomerCountry => s.country,
            StrFact::PaymentCountry => s.payment_country,
            StrFact::ResellerCountry => s.reseller_country,
            StrFact::ResourceKind => s.resource_kind,
            StrFact::ResourceRegion => s.region,
        }
    }
}

impl Guard {
    /// Whether the guard holds; if not, the policy cannot be satisfied.
    pub fn holds(&self, f: &GuardFacts<'_>) -> bool {
        match self {
            Guard::Contains(set, v) => f.contains(*set, v),
            Guard::ContainsAny(set, vs) => vs.iter().any(|v| f.contains(*set, v)),
            Guard::NotEmpty(set) => !f.is_empty(*set),
            Guard::Flag(FlagFact::AnonymousIp) => f.anonymous_ip,
            Guard::Flag(FlagFact::IpCountryMismatch) => f.ip_country_mismatch,
            Guard::Long(fact, op, n) => op.holds(&f.long(*fact), n),
            Guard::Str(fact, op, v) => op.holds(f.string(*fact), v.as_str()),
        }
    }
}

/// The leading guards of a policy, from its Cedar JSON (EST) form.
pub fn guards(policy: &Value) -> Vec<Guard> {
    let Some(first_when) = first_when(policy) else {
        return Vec::new();
    };
    let mut leaves = Vec::new();
    flatten_and(first_when, &mut leaves);
    leaves.into_iter().map_while(guard).collect()
}

/// Whether a policy is satisfied exactly when its guards hold (for a request
/// its action scope admits): principal and resource unconstrained (or only
/// constrained to their one type: `principal is Customer`), no `unless`, and no
/// condition or one `when` every operand of which is a guard.
pub fn decided_by_guards(policy: &Value) -> bool {
    let unconstrained = |scope: &str, only_type: &str| {
        let Some(scope) = policy.get(scope) else {
            return false;
        };
        match scope.get("op").and_then(Value::as_str) {
            Some("All") => true,
            // Every request's principal is a `Customer` and resource a `Resource`.
            Some("is") => {
                scope.get("entity_type").and_then(Value::as_str) == Some(only_type)
                    && scope.get("in").is_none()
            }
            _ => false,
        }
    };
    if !unconstrained("principal", "Customer") || !unconstrained("resource", "Resource") {
        return false;
    }
    match policy.get("conditions").and_then(Value::as_array) {
        Some(conditions) if conditions.is_empty() => true,
        Some(conditions) if conditions.len() == 1 => first_when(policy).is_some_and(|body| {
            let mut leaves = Vec::new();
            flatten_and(body, &mut leaves);
            leaves.into_iter().all(|leaf| guard(leaf).is_some())
        }),
        _ => false,
    }
}

fn first_when(policy: &Value) -> Option<&Value> {
    policy
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.first())
        .filter(|c| c.get("kind").and_then(Value::as_str) == Some("when"))
        .and_then(|c| c.get("body"))
}

/// The operands of a chain of `&&`, left to right (evaluation order).
fn flatten_and<'a>(e: &'a Value, out: &mut Vec<&'a Value>) {
    match e.get("&&") {
        Some(and) => {
            if let (Some(l), Some(r)) = (and.get("left"), and.get("right")) {
                flatten_and(l, out);
                flatten_and(r, out);
            } else {
                out.push(e);
            }
        }
        None => out.push(e),
    }
}

fn guard(e: &Value) -> Option<Guard> {
    if let Some(c) = e.get("contains") {
        let set = set_fact(c.get("left")?)?;
        let v = c.get("right")?.get("Value")?.as_str()?;
        return Some(Guard::Contains(set, v.to_owned()));
    }
    if let Some(c) = e.get("containsAny") {
        let set = set_fact(c.get("left")?)?;
        let values = c
            .get("right")?
            .get("Set")?
            .as_array()?
            .iter()
            .map(|v| v.get("Value").and_then(Value::as_str).map(str::to_owned))
            .collect::<Option<Vec<_>>>()?;
        return Some(Guard::ContainsAny(set, values));
    }
    if let Some(arg) = e.get("!").and_then(|n| n.get("arg")) {
        let set = set_fact(arg.get("isEmpty")?.get("arg")?)?;
        return Some(Guard::NotEmpty(set));
    }
    if let Some((op, operands)) = e.as_object().filter(|o| o.len() == 1).and_then(|o| {
        let (op, operands) = o.iter().next()?;
        Some((Cmp::parse(op)?, operands))
    }) {
        return comparison(op, operands.get("left")?, operands.get("right")?);
    }
    match attribute(e)? {
        ("context", "anonymous_ip") => Some(Guard::Flag(FlagFact::AnonymousIp)),
        ("context", "ip_country_mismatch") => Some(Guard::Flag(FlagFact::IpCountryMismatch)),
        _ => None,
    }
}

/// `attr OP literal` on a long fact, or `attr ==/!= literal` on a string fact.
fn comparison(op: Cmp, left: &Value, right: &Value) -> Option<Guard> {
    let fact = attribute(left)?;
    let literal = right.get("Value")?;
    if let Some(n) = literal.as_i64() {
        let fact = match fact {
            ("resource", "gpu_count") => LongFact::GpuCount,
            ("context", "screening_score") => LongFact::ScreeningScore,
            _ => return None,
        };
        return Some(Guard::Long(fact, op, n));
    }
    let text = literal.as_str()?;
    if !matches!(op, Cmp::Eq | Cmp::Ne) {
        return None;
    }
    let fact = match fact {
        ("principal", "kind") => StrFact::CustomerKind,
        ("principal", "country") => StrFact::CustomerCountry,
        ("principal", "payment_country") => StrFact::PaymentCountry,
        ("principal", "reseller_country") => StrFact::ResellerCountry,
        ("resource", "kind") => StrFact::ResourceKind,
        ("resource", "region") => StrFact::ResourceRegion,
        _ => return None,
    };
    Some(Guard::Str(fact, op, text.to_owned()))
}

fn set_fact(e: &Value) -> Option<SetFact> {
    Some(match attribute(e)? {
        ("context", "jurisdictions") => SetFact::Jurisdictions,
        ("context", "declared_countries") => SetFact::DeclaredCountries,
        ("context", "ip_countries") => SetFact::IpCountries,
        ("context", "screening_matches") => SetFact::ScreeningMatches,
        ("context", "satisfied_conditions") => SetFact::SatisfiedConditions,
        ("principal", "nationalities") => SetFact::Nationalities,
        ("principal", "owner_countries") => SetFact::OwnerCountries,
        _ => return None,
    })
}

/// `context.attr` / `principal.attr`.
fn attribute(e: &Value) -> Option<(&str, &str)> {
    let dot = e.get(".")?;
    let var = dot.get("left")?.get("Var")?.as_str()?;
    let attr = dot.get("attr")?.as_str()?;
    Some((var, attr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(src: &str) -> Value {
        let set: cedar_policy::PolicySet = src.parse().unwrap();
        set.policies().next().unwrap().to_json().unwrap()
    }

    #[test]
    fn leading_guards_are_found_in_order() {
        let g = guards(&json(
            r#"forbid(principal, action, resource) when { context.jurisdictions.contains("KP") && principal.owner_countries.containsAny(["IR", "RU"]) && !context.screening_matches.isEmpty() && context.anonymous_ip && resource.gpu_count > 1 && context.ip_country_mismatch };"#,
        ));
        assert_eq!(
            g,
            [
                Guard::Contains(SetFact::Jurisdictions, "KP".into()),
                Guard::ContainsAny(SetFact::OwnerCountries, vec!["IR".into(), "RU".into()]),
                Guard::NotEmpty(SetFact::ScreeningMatches),
                Guard::Flag(FlagFact::AnonymousIp),
                Guard::Long(LongFact::GpuCount, Cmp::Gt, 1),
                Guard::Flag(FlagFact::IpCountryMismatch),
            ]
        );
    }

    #[test]
    fn comparisons_with_literals_are_guards() {
        let g = guards(&json(
            r#"forbid(principal, action, resource) when { context.screening_score >= 85 && resource.gpu_count != -3 && principal.country == "IR" && resource.region != "" && principal.payment_country < "IR" };"#,
        ));
        assert_eq!(
            g,
            [
                Guard::Long(LongFact::ScreeningScore, Cmp::Ge, 85),
                Guard::Long(LongFact::GpuCount, Cmp::Ne, -3),
                Guard::Str(StrFact::CustomerCountry, Cmp::Eq, "IR".into()),
                Guard::Str(StrFact::ResourceRegion, Cmp::Ne, String::new()),
            ],
            "strings are only compared for (in)equality"
        );
        // Not a fact guards know, or not a literal.
        assert!(
            guards(&json(
                r#"permit(principal, action, resource) when { principal.name == "X" };"#
            ))
            .is_empty()
        );
        assert!(guards(&json(r#"permit(principal, action, resource) when { resource.gpu_count > resource.gpu_count };"#)).is_empty());
    }

    #[test]
    fn only_policies_made_of_guards_are_decided_by_them() {
        let decided = |src: &str| decided_by_guards(&json(src));
        assert!(decided(r#"permit(principal, action, resource);"#));
        assert!(decided(
            r#"forbid(principal, action == Action::"provision", resource) when { resource.gpu_count >= 256 && context.jurisdictions.containsAny(["IR", "RU"]) };"#
        ));
        assert!(decided(
            r#"forbid(principal, action, resource) when { !context.screening_matches.isEmpty() };"#
        ));
        // Something Cedar must evaluate, or a scope guards do not check.
        assert!(!decided(
            r#"forbid(principal, action, resource) when { context.jurisdictions.contains("KP") && principal.name like "*x" };"#
        ));
        assert!(!decided(
            r#"forbid(principal, action, resource) when { context.anonymous_ip } unless { context.satisfied_conditions.contains("kyc") };"#
        ));
        assert!(!decided(
            r#"forbid(principal, action, resource) when { context.anonymous_ip } when { context.ip_country_mismatch };"#
        ));
        assert!(!decided(
            r#"forbid(principal, action, resource) when { context.anonymous_ip || context.ip_country_mismatch };"#
        ));
        assert!(!decided(
            r#"permit(principal == Customer::"c", action, resource);"#
        ));
        assert!(!decided(
            r#"permit(principal is Customer in Customer::"c", action, resource);"#
        ));
        assert!(!decided(
            r#"permit(principal, action, resource == Resource::"vm");"#
        ));
        // Every principal is a Customer and every resource a Resource.
        assert!(decided(
            r#"permit(principal is Customer, action, resource is Resource) when { context.anonymous_ip };"#
        ));
    }

    #[test]
    fn a_guard_after_an_unguarded_test_is_not_used() {
        let g = guards(&json(
            r#"forbid(principal, action, resource) when { resource.gpu_count * 2 > 1 && context.jurisdictions.contains("KP") };"#,
        ));
        assert!(g.is_empty());
        let g = guards(&json(
            r#"forbid(principal, action, resource) when { context.jurisdictions.contains("KP") || context.anonymous_ip };"#,
        ));
        assert!(g.is_empty());
        let g = guards(&json(
            r#"forbid(principal, action, resource) unless { context.anonymous_ip };"#,
        ));
        assert!(g.is_empty());
    }
}
