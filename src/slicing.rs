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

/// A necessary condition for a policy to be satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    Contains(SetFact, String),
    ContainsAny(SetFact, Vec<String>),
    NotEmpty(SetFact),
    Flag(FlagFact),
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
}

impl GuardFacts<'_> {
    fn contains(&self, set: SetFact, value: &str) -> bool {
        let countries = |cs: &[Country]| cs.iter().any(|c| c.as_str() == value);
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
        }
    }
}

/// The leading guards of a policy, from its Cedar JSON (EST) form.
pub fn guards(policy: &Value) -> Vec<Guard> {
    let Some(first_when) = policy
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.first())
        .filter(|c| c.get("kind").and_then(Value::as_str) == Some("when"))
        .and_then(|c| c.get("body"))
    else {
        return Vec::new();
    };
    let mut leaves = Vec::new();
    flatten_and(first_when, &mut leaves);
    leaves.into_iter().map_while(guard).collect()
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
    match attribute(e)? {
        ("context", "anonymous_ip") => Some(Guard::Flag(FlagFact::AnonymousIp)),
        ("context", "ip_country_mismatch") => Some(Guard::Flag(FlagFact::IpCountryMismatch)),
        _ => None,
    }
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
            ]
        );
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
