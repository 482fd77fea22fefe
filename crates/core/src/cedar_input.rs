//! The built-in Cedar schema and the one place that builds Cedar input
//! (principal, action, resource, context, entities) from an enriched request.
//!
//! Values are built directly as Cedar *values* with `cedar-policy-core` (pinned to
//! the exact version of `cedar-policy`), not as expressions to evaluate: the public
//! constructors evaluate every attribute, parse the `ip` extension name again for
//! every address and recompute the entity hierarchy, which costs several times the
//! policy evaluation itself. Nothing is validated against the schema per request:
//! the shape is fixed here, and policies are validated against [`SCHEMA`] in strict
//! mode when they are loaded (a test checks the built input against the schema).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use cedar_policy::Schema;
use cedar_policy_core::ast::{
    self, Eid, EntityType, EntityUID, Literal, Name, PartialValue, RestrictedExpr, Value,
};
use cedar_policy_core::entities::{self as core_entities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::evaluator::RestrictedEvaluator;
use cedar_policy_core::extensions::Extensions;
use smol_str::SmolStr;

use crate::country::Country;
use crate::enrich::Facts;
use crate::request::{Action, DecideRequest};

/// The built-in schema (Cedar schema syntax, no namespace).
pub const SCHEMA: &str = r#"// Portcullis built-in schema: the facts every policy can use.

// The customer asking to open or keep an account, or to provision.
entity Customer = {
  // "individual", "organization", or "" when not given.
  kind: String,
  name: String,
  nationalities: Set<String>,
  // Country of the customer's address ("" when not given).
  country: String,
  // Country of the means of payment ("" when not given).
  payment_country: String,
  // Beneficial owners' nationalities and countries.
  owner_countries: Set<String>,
  // Country of the foreign reseller ("" when none).
  reseller_country: String,
};

// What is provisioned; `Resource::"account"` for account actions without one.
entity Resource = {
  kind: String,
  region: String,
  gpu_count: Long,
};

type RequestContext = {
  // Every country tied to the request: address, nationalities, payment,
  // beneficial owners, reseller and IP geolocation.
  jurisdictions: Set<String>,
  // What the customer declared: address, nationalities, payment.
  declared_countries: Set<String>,
  ip_countries: Set<String>,
  source_ips: Set<ipaddr>,
  // Some IP country is not among the declared countries.
  ip_country_mismatch: Bool,
  // Some source IP is a VPN, Tor exit, public proxy or hosting provider.
  anonymous_ip: Bool,
  // Best designated-person match, 0-100.
  screening_score: Long,
  // Ids of designated persons matched at or above the threshold.
  screening_matches: Set<String>,
  satisfied_conditions: Set<String>,
};

action open_account, maintain_account, provision appliesTo {
  principal: [Customer],
  resource: [Resource],
  context: RequestContext,
};
"#;

/// Parses the built-in schema.
pub fn schema() -> Result<Schema, CedarInputError> {
    Schema::from_cedarschema_str(SCHEMA)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| CedarInputError::Schema(e.to_string()))
}

/// Why Cedar input could not be built (a request decided on it is denied).
#[derive(Debug, thiserror::Error)]
pub enum CedarInputError {
    /// The built-in schema does not parse (a defect of this build).
    #[error("built-in schema is invalid: {0}")]
    Schema(String),
    /// An entity, value or context could not be built.
    #[error("cannot build Cedar input: {0}")]
    Build(String),
}

fn build_err(e: impl std::fmt::Display) -> CedarInputError {
    CedarInputError::Build(e.to_string())
}

/// Entity types, action uids and the `ip` extension name, parsed once per snapshot.
#[derive(Debug, Clone)]
pub struct CedarNames {
    customer: EntityType,
    resource: EntityType,
    actions: [EntityUID; 3],
    ip: Name,
    /// Shared by every empty set (most of them): cloning it is one atomic add.
    empty_set: Value,
}

impl CedarNames {
    /// Parses the built-in names once (per snapshot).
    pub fn new() -> Result<Self, CedarInputError> {
        let ty = |name: &str| name.parse::<EntityType>().map_err(build_err);
        let action_type = ty("Action")?;
        let action =
            |a: Action| EntityUID::from_components(action_type.clone(), Eid::new(a.as_str()), None);
        Ok(Self {
            customer: ty("Customer")?,
            resource: ty("Resource")?,
            actions: Action::ALL.map(action),
            ip: Name::parse_unqualified_name("ip").map_err(build_err)?,
            empty_set: Value::empty_set(None),
        })
    }

    fn action(&self, a: Action) -> EntityUID {
        let [open, maintain, provision] = &self.actions;
        match a {
            Action::OpenAccount => open.clone(),
            Action::MaintainAccount => maintain.clone(),
            Action::Provision => provision.clone(),
        }
    }

    /// A Cedar `ipaddr` value, through the `ip` extension function.
    fn ip(&self, ip: std::net::IpAddr) -> Result<Value, CedarInputError> {
        let expr = RestrictedExpr::call_extension_fn(
            self.ip.clone(),
            [RestrictedExpr::val(ip.to_string())],
        );
        RestrictedEvaluator::new(Extensions::all_available())
            .interpret(expr.as_borrowed())
            .map_err(build_err)
    }
}

fn string(s: &str) -> Value {
    Value::from(s)
}

impl CedarNames {
    fn country_set(&self, cs: &[Country]) -> Value {
        if cs.is_empty() {
            return self.empty_set.clone();
        }
        Value::set_of_lits(cs.iter().map(|c| Literal::from(c.as_str())), None)
    }

    fn string_set(&self, items: &[String]) -> Value {
        if items.is_empty() {
            return self.empty_set.clone();
        }
        Value::set_of_lits(items.iter().map(|s| Literal::from(s.as_str())), None)
    }
}

/// The scalar attributes of the principal and the resource as Cedar sees them:
/// what is absent is `""` (or 0 GPUs, or the resource `"account"`). Guards
/// (`slicing`) read these same values.
#[derive(Debug, Clone, Copy)]
pub struct Scalars<'a> {
    /// `principal.kind`: `individual`, `organization` or `""`.
    pub kind: &'a str,
    /// `principal.country`: the address country.
    pub country: &'a str,
    /// `principal.payment_country`.
    pub payment_country: &'a str,
    /// `principal.reseller_country`.
    pub reseller_country: &'a str,
    /// `resource.kind` (`account` when the request names no resource).
    pub resource_kind: &'a str,
    /// `resource.region`.
    pub region: &'a str,
    /// `resource.gpu_count`.
    pub gpu_count: i64,
}

fn country(c: Option<&Country>) -> &str {
    c.map_or("", Country::as_str)
}

/// The [`Scalars`] of a request.
pub fn scalars(req: &DecideRequest) -> Scalars<'_> {
    let c = &req.customer;
    let (resource_kind, region, gpu_count) = match &req.resource {
        Some(r) => (
            r.kind.as_str(),
            r.region.as_deref().unwrap_or(""),
            r.gpu_count.unwrap_or(0),
        ),
        None => ("account", "", 0),
    };
    Scalars {
        kind: c.kind.map_or("", |k| k.as_str()),
        country: country(c.address.as_ref().and_then(|a| a.country.as_ref())),
        payment_country: country(c.payment.as_ref().and_then(|p| p.country.as_ref())),
        reseller_country: country(req.reseller.as_ref().map(|r| &r.country)),
        resource_kind,
        region,
        gpu_count: gpu_count.into(),
    }
}

fn long(n: impl Into<i64>) -> Value {
    Value::from(n.into())
}

fn entity(uid: EntityUID, attrs: impl IntoIterator<Item = (&'static str, Value)>) -> ast::Entity {
    ast::Entity::new_with_attr_partial_value(
        uid,
        attrs
            .into_iter()
            .map(|(k, v)| (SmolStr::new_static(k), PartialValue::from(v))),
        HashSet::new(),
        HashSet::new(),
        [],
    )
}

/// Builds the Cedar request and entities for one enriched request.
///
/// With `with_source_ips` false, `context.source_ips` is the empty set: pass false
/// only when no policy reads it.
pub fn build(
    names: &CedarNames,
    req: &DecideRequest,
    facts: &Facts,
    with_source_ips: bool,
) -> Result<(ast::Request, core_entities::Entities), CedarInputError> {
    let c = &req.customer;
    let s = scalars(req);
    let principal =
        EntityUID::from_components(names.customer.clone(), Eid::new(c.id.as_str()), None);
    let resource =
        EntityUID::from_components(names.resource.clone(), Eid::new(s.resource_kind), None);

    let customer = names.customer_entity(principal.clone(), req, facts, &s);
    let resource_entity = resource_entity(resource.clone(), &s);
    // No entity has parents, so the hierarchy is trivially transitively closed.
    let entities = core_entities::Entities::from_entities(
        [customer, resource_entity],
        None::<&NoEntitiesSchema>,
        TCComputation::AssumeAlreadyComputed,
        Extensions::none(),
    )
    .map_err(build_err)?;

    let context = names.context(req, facts, with_source_ips)?;
    let request = ast::Request::new(
        (principal, None),
        (names.action(req.action), None),
        (resource, None),
        ast::Context::Value(Arc::new(context)),
        None::<&ast::RequestSchemaAllPass>,
        Extensions::none(),
    )
    .map_err(build_err)?;
    Ok((request, entities))
}

/// The resource entity `uid`: what is provisioned (`"account"` for account
/// actions without a resource).
#[inline]
fn resource_entity(uid: EntityUID, s: &Scalars<'_>) -> ast::Entity {
    entity(
        uid,
        [
            ("kind", string(s.resource_kind)),
            ("region", string(s.region)),
            ("gpu_count", long(s.gpu_count)),
        ],
    )
}

impl CedarNames {
    /// The principal entity `uid`: the customer and its countries.
    #[inline]
    fn customer_entity(
        &self,
        uid: EntityUID,
        req: &DecideRequest,
        facts: &Facts,
        s: &Scalars<'_>,
    ) -> ast::Entity {
        let c = &req.customer;
        entity(
            uid,
            [
                ("kind", string(s.kind)),
                ("name", string(c.name.as_str())),
                ("nationalities", self.country_set(&c.nationalities)),
                ("country", string(s.country)),
                ("payment_country", string(s.payment_country)),
                ("owner_countries", self.country_set(&facts.owner_countries)),
                ("reseller_country", string(s.reseller_country)),
            ],
        )
    }

    /// The request context: the facts, the source IPs (the empty set unless
    /// `with_source_ips`) and the satisfied conditions.
    #[inline]
    fn context(
        &self,
        req: &DecideRequest,
        facts: &Facts,
        with_source_ips: bool,
    ) -> Result<BTreeMap<SmolStr, Value>, CedarInputError> {
        let source_ips = if with_source_ips && !req.source_ips.is_empty() {
            let ips = req.source_ips.iter().map(|ip| self.ip(ip.0));
            Value::set(ips.collect::<Result<Vec<_>, _>>()?, None)
        } else {
            self.empty_set.clone()
        };
        Ok([
            ("jurisdictions", self.country_set(&facts.jurisdictions)),
            (
                "declared_countries",
                self.country_set(&facts.declared_countries),
            ),
            ("ip_countries", self.country_set(&facts.ip_countries)),
            ("source_ips", source_ips),
            (
                "ip_country_mismatch",
                Value::from(facts.ip_country_mismatch),
            ),
            ("anonymous_ip", Value::from(facts.anonymous_ip)),
            ("screening_score", long(facts.screening.score)),
            (
                "screening_matches",
                self.string_set(&facts.screening_matches),
            ),
            (
                "satisfied_conditions",
                self.string_set(&req.satisfied_conditions),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (SmolStr::new_static(k), v))
        .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parses() {
        schema().unwrap();
    }

    /// The values built directly conform to the schema policies are validated against.
    #[test]
    fn built_input_conforms_to_the_schema() {
        let schema = schema().unwrap();
        let body = br#"{"action":"provision","customer":{"id":"c","kind":"organization","name":"N",
            "nationalities":["RU"],"address":{"country":"FR"},"payment":{"country":"AE"},
            "beneficial_owners":[{"name":"O","nationalities":["CN"],"country":"CN"}]},
            "reseller":{"country":"AE"},"source_ips":["1.2.3.4","2001:db8::1"],
            "resource":{"kind":"gpu_cluster","region":"us-east-1","gpu_count":8},
            "satisfied_conditions":["x"]}"#;
        let req = crate::request::parse_decide(body).unwrap();
        let facts = crate::enrich::enrich(
            &req,
            &crate::geo::GeoSet::default(),
            &crate::screening::ScreeningIndex::default(),
            crate::enrich::EnrichSettings::default(),
        );
        let names = CedarNames::new().unwrap();
        let (request, entities) = build(&names, &req, &facts, true).unwrap();
        let request = cedar_policy::Request::from(request);
        let entities = cedar_policy::Entities::from(entities);
        let context = request.context().unwrap().clone();
        cedar_policy::Request::new(
            request.principal().unwrap().clone(),
            request.action().unwrap().clone(),
            request.resource().unwrap().clone(),
            context,
            Some(&schema),
        )
        .unwrap();
        cedar_policy::Entities::from_entities(entities.iter().cloned(), Some(&schema)).unwrap();
    }
}
