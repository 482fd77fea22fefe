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
//!
//! Guards are read from the policy's Cedar AST (`cedar_policy_core::ast`, the
//! version pinned with `cedar-policy`): the expression Cedar evaluates, in which
//! the parser has joined the clauses into one `&&` chain (`clauses` tells them
//! apart again) and written `!=`, `>` and `>=` as negations.

use cedar_policy_core::ast::{
    self, BinaryOp, Expr, ExprKind, Literal, PrincipalOrResourceConstraint, UnaryOp, Var,
};

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

impl SetFact {
    /// The attribute as a policy names it.
    fn path(self) -> &'static str {
        match self {
            SetFact::Jurisdictions => "context.jurisdictions",
            SetFact::DeclaredCountries => "context.declared_countries",
            SetFact::IpCountries => "context.ip_countries",
            SetFact::ScreeningMatches => "context.screening_matches",
            SetFact::SatisfiedConditions => "context.satisfied_conditions",
            SetFact::Nationalities => "principal.nationalities",
            SetFact::OwnerCountries => "principal.owner_countries",
        }
    }
}

impl Cmp {
    fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

impl std::fmt::Display for Guard {
    /// The guard as Cedar text (`context.jurisdictions.contains("KP")`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = |v: &str| format!("{v:?}");
        match self {
            Guard::Contains(set, v) => write!(f, "{}.contains({})", set.path(), quoted(v)),
            Guard::ContainsAny(set, vs) => {
                let vs: Vec<String> = vs.iter().map(|v| quoted(v)).collect();
                write!(f, "{}.containsAny([{}])", set.path(), vs.join(", "))
            }
            Guard::NotEmpty(set) => write!(f, "!{}.isEmpty()", set.path()),
            Guard::Flag(FlagFact::AnonymousIp) => f.write_str("context.anonymous_ip"),
            Guard::Flag(FlagFact::IpCountryMismatch) => f.write_str("context.ip_country_mismatch"),
            Guard::Long(fact, op, n) => {
                let path = match fact {
                    LongFact::GpuCount => "resource.gpu_count",
                    LongFact::ScreeningScore => "context.screening_score",
                };
                write!(f, "{path} {} {n}", op.symbol())
            }
            Guard::Str(fact, op, v) => {
                let path = match fact {
                    StrFact::CustomerKind => "principal.kind",
                    StrFact::CustomerCountry => "principal.country",
                    StrFact::PaymentCountry => "principal.payment_country",
                    StrFact::ResellerCountry => "principal.reseller_country",
                    StrFact::ResourceKind => "resource.kind",
                    StrFact::ResourceRegion => "resource.region",
                };
                write!(f, "{path} {} {}", op.symbol(), quoted(v))
            }
        }
    }
}

/// The leading guards of a policy: the leading operands of its first clause,
/// if that clause is a `when`, up to the first operand that is not a guard.
pub fn guards(policy: &ast::Policy) -> Vec<Guard> {
    match clauses(policy) {
        Clauses::One(Clause::When(body)) | Clauses::Several(Clause::When(body)) => {
            conjuncts(body).into_iter().map_while(guard).collect()
        }
        Clauses::None
        | Clauses::One(Clause::Unless)
        | Clauses::Several(Clause::Unless)
        | Clauses::Unknown => Vec::new(),
    }
}

/// Whether a policy is satisfied exactly when its guards hold (for a request
/// its action scope admits): principal and resource unconstrained (or only
/// constrained to their one type: `principal is Customer`), no `unless`, and no
/// condition or one `when` every operand of which is a guard.
pub fn decided_by_guards(policy: &ast::Policy) -> bool {
    // Every request's principal is a `Customer` and resource a `Resource`.
    if !unconstrained(policy.principal_constraint().as_inner(), "Customer")
        || !unconstrained(policy.resource_constraint().as_inner(), "Resource")
    {
        return false;
    }
    match clauses(policy) {
        Clauses::None => true,
        Clauses::One(Clause::When(body)) => conjuncts(body)
            .into_iter()
            .all(|leaf| guard(leaf).is_some()),
        Clauses::One(Clause::Unless) | Clauses::Several(_) | Clauses::Unknown => false,
    }
}

/// A principal or resource scope that admits every request: none, or `is`
/// the one type every request's principal (resource) has, without `in`.
fn unconstrained(scope: &PrincipalOrResourceConstraint, only_type: &str) -> bool {
    match scope {
        PrincipalOrResourceConstraint::Any => true,
        PrincipalOrResourceConstraint::Is(ty) => ty.to_string() == only_type,
        PrincipalOrResourceConstraint::In(_)
        | PrincipalOrResourceConstraint::Eq(_)
        | PrincipalOrResourceConstraint::IsIn(..) => false,
    }
}

/// The `when` / `unless` clauses of a policy, as far as guards need them.
enum Clauses<'a> {
    /// No clause: the policy's condition is its scope.
    None,
    /// Exactly one clause.
    One(Clause<'a>),
    /// Two or more; the first is given.
    Several(Clause<'a>),
    /// The AST has no source locations, so clauses cannot be told apart from
    /// the `&&`s inside them: nothing is assumed.
    Unknown,
}

enum Clause<'a> {
    When(&'a Expr),
    Unless,
}

/// Recovers the clauses from the AST, where Cedar's parser (4.14, `cst_to_ast`)
/// conjoins them into one expression, the scope kept apart:
///
/// - clauses `c1 c2 … cn` become `c1 && (c2 && (… && cn))`, each joining `&&`
///   located at the *whole policy* (no `&&` written inside a clause can be);
/// - `unless { e }` becomes `!e` located at the clause, from the keyword to its
///   `}`: its span ends after `e`'s. A `!` written in a `when` ends where its
///   operand ends, unless the operand is in parentheses (`when { !(e) }`),
///   which is taken for an `unless` too: its guard is not used (conservative).
fn clauses(policy: &ast::Policy) -> Clauses<'_> {
    let Some(condition) = policy.non_scope_constraints() else {
        return Clauses::None;
    };
    let Some(whole) = policy.loc() else {
        return Clauses::Unknown;
    };
    let (first, several) = match condition.expr_kind() {
        ExprKind::And { left, .. } if span(condition) == Some((whole.start(), whole.end())) => {
            (left.as_ref(), true)
        }
        _ => (condition, false),
    };
    let first = match first.expr_kind() {
        ExprKind::UnaryApp {
            op: UnaryOp::Not,
            arg,
        } => match (span(first), span(arg)) {
            (Some((_, not)), Some((_, operand))) if not <= operand => Clause::When(first),
            // Wider than its operand (or not located): an `unless`.
            _ => Clause::Unless,
        },
        _ => Clause::When(first),
    };
    if several {
        Clauses::Several(first)
    } else {
        Clauses::One(first)
    }
}

/// Where an expression is in its policy's text: start and end offsets.
fn span(e: &Expr) -> Option<(usize, usize)> {
    e.source_loc().map(|l| (l.start(), l.end()))
}

/// The operands of a chain of `&&`, left to right (evaluation order).
fn conjuncts(e: &Expr) -> Vec<&Expr> {
    let mut out = Vec::new();
    let mut pending = vec![e];
    while let Some(e) = pending.pop() {
        match e.expr_kind() {
            ExprKind::And { left, right } => {
                pending.push(right);
                pending.push(left);
            }
            _ => out.push(e),
        }
    }
    out
}

fn guard(e: &Expr) -> Option<Guard> {
    match e.expr_kind() {
        ExprKind::BinaryApp {
            op: BinaryOp::Contains,
            arg1,
            arg2,
        } => Some(Guard::Contains(set_fact(arg1)?, string(arg2)?.to_owned())),
        ExprKind::BinaryApp {
            op: BinaryOp::ContainsAny,
            arg1,
            arg2,
        } => {
            let set = set_fact(arg1)?;
            let ExprKind::Set(items) = arg2.expr_kind() else {
                return None;
            };
            let values = items
                .iter()
                .map(|v| string(v).map(str::to_owned))
                .collect::<Option<Vec<_>>>()?;
            Some(Guard::ContainsAny(set, values))
        }
        ExprKind::BinaryApp { op, arg1, arg2 } => {
            let op = match op {
                BinaryOp::Eq => Cmp::Eq,
                BinaryOp::Less => Cmp::Lt,
                BinaryOp::LessEq => Cmp::Le,
                _ => return None,
            };
            comparison(op, arg1, arg2)
        }
        ExprKind::UnaryApp {
            op: UnaryOp::Not,
            arg,
        } => negation(e, arg),
        _ => match attribute(e)? {
            (Var::Context, "anonymous_ip") => Some(Guard::Flag(FlagFact::AnonymousIp)),
            (Var::Context, "ip_country_mismatch") => Some(Guard::Flag(FlagFact::IpCountryMismatch)),
            _ => None,
        },
    }
}

/// `!set.isEmpty()`, or one of `!=`, `>`, `>=`: Cedar's parser writes `a != b`
/// as `!(a == b)`, `a > b` as `!(a <= b)` and `a >= b` as `!(a < b)`, the `!`
/// located where its comparison is. A `!` written before a parenthesised
/// comparison is located at the `!` and is not taken for a guard.
fn negation(not: &Expr, arg: &Expr) -> Option<Guard> {
    match arg.expr_kind() {
        ExprKind::UnaryApp {
            op: UnaryOp::IsEmpty,
            arg: set,
        } => Some(Guard::NotEmpty(set_fact(set)?)),
        ExprKind::BinaryApp { op, arg1, arg2 } if span(not) == span(arg) => {
            let op = match op {
                BinaryOp::Eq => Cmp::Ne,
                BinaryOp::Less => Cmp::Ge,
                BinaryOp::LessEq => Cmp::Gt,
                _ => return None,
            };
            comparison(op, arg1, arg2)
        }
        _ => None,
    }
}

/// `attr OP literal` on a long fact, or `attr ==/!= literal` on a string fact.
fn comparison(op: Cmp, left: &Expr, right: &Expr) -> Option<Guard> {
    let fact = attribute(left)?;
    let ExprKind::Lit(literal) = right.expr_kind() else {
        return None;
    };
    match literal {
        Literal::Long(n) => {
            let fact = match fact {
                (Var::Resource, "gpu_count") => LongFact::GpuCount,
                (Var::Context, "screening_score") => LongFact::ScreeningScore,
                _ => return None,
            };
            Some(Guard::Long(fact, op, *n))
        }
        Literal::String(text) if matches!(op, Cmp::Eq | Cmp::Ne) => {
            let fact = match fact {
                (Var::Principal, "kind") => StrFact::CustomerKind,
                (Var::Principal, "country") => StrFact::CustomerCountry,
                (Var::Principal, "payment_country") => StrFact::PaymentCountry,
                (Var::Principal, "reseller_country") => StrFact::ResellerCountry,
                (Var::Resource, "kind") => StrFact::ResourceKind,
                (Var::Resource, "region") => StrFact::ResourceRegion,
                _ => return None,
            };
            Some(Guard::Str(fact, op, text.to_string()))
        }
        _ => None,
    }
}

fn set_fact(e: &Expr) -> Option<SetFact> {
    Some(match attribute(e)? {
        (Var::Context, "jurisdictions") => SetFact::Jurisdictions,
        (Var::Context, "declared_countries") => SetFact::DeclaredCountries,
        (Var::Context, "ip_countries") => SetFact::IpCountries,
        (Var::Context, "screening_matches") => SetFact::ScreeningMatches,
        (Var::Context, "satisfied_conditions") => SetFact::SatisfiedConditions,
        (Var::Principal, "nationalities") => SetFact::Nationalities,
        (Var::Principal, "owner_countries") => SetFact::OwnerCountries,
        _ => return None,
    })
}

/// A string literal.
fn string(e: &Expr) -> Option<&str> {
    match e.expr_kind() {
        ExprKind::Lit(Literal::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// `context.attr`, `principal.attr`, `resource.attr`.
fn attribute(e: &Expr) -> Option<(Var, &str)> {
    let ExprKind::GetAttr { expr, attr } = e.expr_kind() else {
        return None;
    };
    match expr.expr_kind() {
        ExprKind::Var(var) => Some((*var, attr.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(src: &str) -> ast::Policy {
        let set: cedar_policy::PolicySet = src.parse().unwrap();
        let policy: &ast::Policy = set.policies().next().unwrap().as_ref();
        policy.clone()
    }

    #[test]
    fn leading_guards_are_found_in_order() {
        let g = guards(&policy(
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
        let g = guards(&policy(
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
            guards(&policy(
                r#"permit(principal, action, resource) when { principal.name == "X" };"#
            ))
            .is_empty()
        );
        assert!(guards(&policy(r#"permit(principal, action, resource) when { resource.gpu_count > resource.gpu_count };"#)).is_empty());
    }

    #[test]
    fn only_policies_made_of_guards_are_decided_by_them() {
        let decided = |src: &str| decided_by_guards(&policy(src));
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
        let g = guards(&policy(
            r#"forbid(principal, action, resource) when { resource.gpu_count * 2 > 1 && context.jurisdictions.contains("KP") };"#,
        ));
        assert!(g.is_empty());
        let g = guards(&policy(
            r#"forbid(principal, action, resource) when { context.jurisdictions.contains("KP") || context.anonymous_ip };"#,
        ));
        assert!(g.is_empty());
        let g = guards(&policy(
            r#"forbid(principal, action, resource) unless { context.anonymous_ip };"#,
        ));
        assert!(g.is_empty());
    }

    #[test]
    fn guards_come_from_the_first_clause_only_and_never_from_an_unless() {
        // Clauses are one `&&` chain in the AST: the second `when` is not read.
        let p = policy(
            r#"forbid(principal, action, resource) when { context.anonymous_ip } when { context.ip_country_mismatch };"#,
        );
        assert_eq!(guards(&p), [Guard::Flag(FlagFact::AnonymousIp)]);
        assert!(!decided_by_guards(&p));
        let p = policy(
            r#"forbid(principal, action, resource) when { context.anonymous_ip && resource.gpu_count > 8 } unless { context.ip_country_mismatch } when { context.jurisdictions.contains("KP") };"#,
        );
        assert_eq!(
            guards(&p),
            [
                Guard::Flag(FlagFact::AnonymousIp),
                Guard::Long(LongFact::GpuCount, Cmp::Gt, 8)
            ]
        );
        assert!(!decided_by_guards(&p));
        // `unless { e }` is `!e` in the AST, which for these `e` reads like a
        // guard (`!isEmpty`, `>`, `!=`): an `unless` still gives none.
        for unless in [
            "context.screening_matches.isEmpty()",
            "resource.gpu_count <= 255",
            "principal.country == \"IR\"",
        ] {
            for rest in ["", " when { context.anonymous_ip }"] {
                let p = policy(&format!(
                    "forbid(principal, action, resource) unless {{ {unless} }}{rest};"
                ));
                assert!(guards(&p).is_empty(), "{unless}{rest}");
                assert!(!decided_by_guards(&p), "{unless}{rest}");
            }
        }
    }

    #[test]
    fn negations_are_guards_only_as_written_comparisons() {
        let decided = |src: &str| {
            let p = policy(&format!(
                "forbid(principal, action, resource) when {{ {src} }};"
            ));
            (guards(&p), decided_by_guards(&p))
        };
        // `!=`, `>`, `>=` are `!` over `==`, `<=`, `<` in the AST, alone or in parentheses.
        let gt = Guard::Long(LongFact::GpuCount, Cmp::Gt, 255);
        assert_eq!(
            decided("resource.gpu_count > 255"),
            (vec![gt.clone()], true)
        );
        assert_eq!(decided("(resource.gpu_count > 255)"), (vec![gt], true));
        assert_eq!(
            decided("principal.country != \"IR\""),
            (
                vec![Guard::Str(StrFact::CustomerCountry, Cmp::Ne, "IR".into())],
                true
            )
        );
        assert_eq!(
            decided("!context.screening_matches.isEmpty()"),
            (vec![Guard::NotEmpty(SetFact::ScreeningMatches)], true)
        );
        assert_eq!(
            decided("!!context.screening_matches.isEmpty()"),
            (Vec::new(), false)
        );
        // A written `!` over a comparison is not read as one (as before).
        assert_eq!(
            decided("!(resource.gpu_count <= 255) && context.anonymous_ip"),
            (Vec::new(), false)
        );
        assert_eq!(
            decided("context.anonymous_ip && !(principal.country == \"IR\")"),
            (vec![Guard::Flag(FlagFact::AnonymousIp)], false)
        );
        // In a conjunction a parenthesised `!isEmpty` is a guard; as the whole
        // first clause it cannot be told from an `unless` and is not used.
        assert_eq!(
            decided("context.anonymous_ip && !(context.screening_matches.isEmpty())"),
            (
                vec![
                    Guard::Flag(FlagFact::AnonymousIp),
                    Guard::NotEmpty(SetFact::ScreeningMatches)
                ],
                true
            )
        );
        assert_eq!(
            decided("!(context.screening_matches.isEmpty())"),
            (Vec::new(), false)
        );
    }

    #[test]
    fn without_source_locations_clauses_are_not_guessed() {
        // A policy built in code has no locations: its `&&`s could join clauses.
        let anonymous = Expr::get_attr(Expr::var(Var::Context), "anonymous_ip".into());
        let p = ast::Policy::from_when_clause(
            ast::Effect::Forbid,
            Expr::and(anonymous.clone(), anonymous),
            ast::PolicyID::from_string("p"),
            None,
        );
        assert!(guards(&p).is_empty());
        assert!(!decided_by_guards(&p));
    }
}
