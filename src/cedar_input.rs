//! The built-in Cedar schema and the one place that builds Cedar input
//! (principal, action, resource, context, entities) from an enriched request.
//!
//! Values are built directly as Cedar expressions, without schema-based
//! validation per request: the shape is fixed by this module and policies are
//! validated against [`SCHEMA`] in strict mode when they are loaded.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
    Schema,
};

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

#[derive(Debug, thiserror::Error)]
pub enum CedarInputError {
    #[error("built-in schema is invalid: {0}")]
    Schema(String),
    #[error("cannot build Cedar input: {0}")]
    Build(String),
}

fn build_err(e: impl std::fmt::Display) -> CedarInputError {
    CedarInputError::Build(e.to_string())
}

/// Entity type names and action uids, parsed once per snapshot.
#[derive(Debug, Clone)]
pub struct CedarNames {
    customer: EntityTypeName,
    resource: EntityTypeName,
    actions: [EntityUid; 3],
}

impl CedarNames {
    pub fn new() -> Result<Self, CedarInputError> {
        let action_type = EntityTypeName::from_str("Action").map_err(build_err)?;
        let action = |a: Action| {
            EntityUid::from_type_name_and_id(action_type.clone(), EntityId::new(a.as_str()))
        };
        Ok(Self {
            customer: EntityTypeName::from_str("Customer").map_err(build_err)?,
            resource: EntityTypeName::from_str("Resource").map_err(build_err)?,
            actions: Action::ALL.map(action),
        })
    }

    fn action(&self, a: Action) -> EntityUid {
        let [open, maintain, provision] = &self.actions;
        match a {
            Action::OpenAccount => open.clone(),
            Action::MaintainAccount => maintain.clone(),
            Action::Provision => provision.clone(),
        }
    }
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn countries(cs: &[Country]) -> RestrictedExpression {
    RestrictedExpression::new_set(cs.iter().map(|c| string(c.as_str())))
}

fn strings<'a>(items: impl IntoIterator<Item = &'a String>) -> RestrictedExpression {
    RestrictedExpression::new_set(items.into_iter().map(|s| string(s)))
}

fn opt_country(c: Option<Country>) -> RestrictedExpression {
    string(c.as_ref().map_or("", Country::as_str))
}

/// Builds the Cedar request and entities for one enriched request.
pub fn build(
    names: &CedarNames,
    req: &DecideRequest,
    facts: &Facts,
) -> Result<(Request, Entities), CedarInputError> {
    let c = &req.customer;
    let principal =
        EntityUid::from_type_name_and_id(names.customer.clone(), EntityId::new(c.id.as_str()));
    let (resource_id, resource_kind, region, gpu_count) = match &req.resource {
        Some(r) => (
            r.kind.as_str(),
            r.kind.as_str(),
            r.region.as_deref().unwrap_or(""),
            r.gpu_count.unwrap_or(0),
        ),
        None => ("account", "account", "", 0),
    };
    let resource =
        EntityUid::from_type_name_and_id(names.resource.clone(), EntityId::new(resource_id));

    let customer_attrs: HashMap<String, RestrictedExpression> = [
        ("kind", string(c.kind.map_or("", |k| k.as_str()))),
        ("name", string(c.name.as_str())),
        ("nationalities", countries(&c.nationalities)),
        (
            "country",
            opt_country(c.address.as_ref().and_then(|a| a.country)),
        ),
        (
            "payment_country",
            opt_country(c.payment.as_ref().and_then(|p| p.country)),
        ),
        ("owner_countries", countries(&facts.owner_countries)),
        (
            "reseller_country",
            opt_country(req.reseller.as_ref().map(|r| r.country)),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let resource_attrs: HashMap<String, RestrictedExpression> = [
        ("kind", string(resource_kind)),
        ("region", string(region)),
        (
            "gpu_count",
            RestrictedExpression::new_long(i64::from(gpu_count)),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let entities = Entities::from_entities(
        [
            Entity::new(principal.clone(), customer_attrs, HashSet::new()).map_err(build_err)?,
            Entity::new(resource.clone(), resource_attrs, HashSet::new()).map_err(build_err)?,
        ],
        None,
    )
    .map_err(build_err)?;

    let context = Context::from_pairs([
        ("jurisdictions".to_owned(), countries(&facts.jurisdictions)),
        (
            "declared_countries".to_owned(),
            countries(&facts.declared_countries),
        ),
        ("ip_countries".to_owned(), countries(&facts.ip_countries)),
        (
            "source_ips".to_owned(),
            RestrictedExpression::new_set(
                req.source_ips
                    .iter()
                    .map(|ip| RestrictedExpression::new_ip(ip.0.to_string())),
            ),
        ),
        (
            "ip_country_mismatch".to_owned(),
            RestrictedExpression::new_bool(facts.ip_country_mismatch),
        ),
        (
            "anonymous_ip".to_owned(),
            RestrictedExpression::new_bool(facts.anonymous_ip),
        ),
        (
            "screening_score".to_owned(),
            RestrictedExpression::new_long(i64::from(facts.screening.score)),
        ),
        (
            "screening_matches".to_owned(),
            strings(&facts.screening_matches),
        ),
        (
            "satisfied_conditions".to_owned(),
            strings(&req.satisfied_conditions),
        ),
    ])
    .map_err(build_err)?;

    let request = Request::new(principal, names.action(req.action), resource, context, None)
        .map_err(build_err)?;
    Ok((request, entities))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parses() {
        schema().unwrap();
    }
}
