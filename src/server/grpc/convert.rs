//! Between the proto3 messages and the JSON API's types.
//!
//! A request goes through the JSON API's own decoder: its message is turned
//! into the JSON value whose proto3 JSON form it is (fields at their default
//! left out, as proto3 JSON leaves them out), and decoded and validated by
//! `portcullis_core::request::decode_value`, so that both transports accept
//! and refuse exactly the same requests, with the same codes and fields. An
//! answer is mapped field for field.

use serde_json::{Map, Value};

use portcullis_core::decision::{Decision, DecisionError, Reason, Requirement};
use portcullis_core::enrich::{Facts, IpFact};
use portcullis_core::request::{DecideRequest, RequestError, decode_value};
use portcullis_core::screening::{Match, MatchExplanation, Screening};

use super::pb;

/// The request a message stands for, validated as `POST /v1/decide` validates it.
pub fn request(message: pb::DecideRequest) -> Result<DecideRequest, RequestError> {
    decode_value(request_json(message))
}

/// A JSON object built field by field, leaving out what proto3 JSON leaves out.
#[derive(Default)]
struct Object(Map<String, Value>);

impl Object {
    /// A singular string: present unless empty (proto3's default).
    fn text(mut self, key: &str, value: String) -> Self {
        if !value.is_empty() {
            self.0.insert(key.to_owned(), Value::String(value));
        }
        self
    }

    /// An `optional` field: present when set, whatever its value.
    fn optional(mut self, key: &str, value: Option<impl Into<Value>>) -> Self {
        if let Some(v) = value {
            self.0.insert(key.to_owned(), v.into());
        }
        self
    }

    /// A repeated field: present unless empty.
    fn list(mut self, key: &str, values: Vec<impl Into<Value>>) -> Self {
        if !values.is_empty() {
            self.0.insert(
                key.to_owned(),
                Value::Array(values.into_iter().map(Into::into).collect()),
            );
        }
        self
    }

    /// A message field: present when set.
    fn message<M>(mut self, key: &str, value: Option<M>, to_json: fn(M) -> Value) -> Self {
        if let Some(m) = value {
            self.0.insert(key.to_owned(), to_json(m));
        }
        self
    }

    /// A `bool`: present when true.
    fn flag(mut self, key: &str, value: bool) -> Self {
        if value {
            self.0.insert(key.to_owned(), Value::Bool(true));
        }
        self
    }

    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn request_json(m: pb::DecideRequest) -> Value {
    Object::default()
        .optional("request_id", m.request_id)
        .text("action", m.action)
        .message("customer", m.customer, customer_json)
        .message("reseller", m.reseller, |r| {
            Object::default()
                .optional("id", r.id)
                .text("country", r.country)
                .done()
        })
        .list("source_ips", m.source_ips)
        .message("resource", m.resource, |r| {
            Object::default()
                .text("kind", r.kind)
                .optional("region", r.region)
                .optional("gpu_count", r.gpu_count)
                .done()
        })
        .list("satisfied_conditions", m.satisfied_conditions)
        .flag("explain", m.explain)
        .optional("at", m.at)
        .done()
}

fn customer_json(c: pb::Customer) -> Value {
    Object::default()
        .text("id", c.id)
        .optional("kind", c.kind)
        .text("name", c.name)
        .list("aliases", c.aliases)
        .optional("date_of_birth", c.date_of_birth)
        .list("nationalities", c.nationalities)
        .message("address", c.address, |a| {
            Object::default()
                .optional("country", a.country)
                .optional("region", a.region)
                .optional("city", a.city)
                .optional("line", a.line)
                .optional("postal_code", a.postal_code)
                .done()
        })
        .optional("email", c.email)
        .optional("phone", c.phone)
        .message("payment", c.payment, |p| {
            Object::default()
                .optional("country", p.country)
                .optional("method", p.method)
                .done()
        })
        .list(
            "beneficial_owners",
            c.beneficial_owners.into_iter().map(owner_json).collect(),
        )
        .list(
            "identifiers",
            c.identifiers
                .into_iter()
                .map(|i| {
                    Object::default()
                        .text("kind", i.kind)
                        .text("value", i.value)
                        .optional("country", i.country)
                        .done()
                })
                .collect(),
        )
        .done()
}

fn owner_json(o: pb::BeneficialOwner) -> Value {
    Object::default()
        .text("name", o.name)
        .list("aliases", o.aliases)
        .list("nationalities", o.nationalities)
        .optional("country", o.country)
        .optional("date_of_birth", o.date_of_birth)
        // A number JSON cannot hold (NaN, infinity) is left out here and
        // refused by nothing: the share only informs, as over HTTP.
        .optional(
            "ownership_percent",
            o.ownership_percent
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
        )
        .done()
}

/// The message of a decision.
pub fn decision(d: Decision) -> pb::Decision {
    pb::Decision {
        request_id: d.request_id,
        decision: d.decision.as_str().to_owned(),
        decision_id: d.decision_id,
        policy_revision: d.policy_revision.to_string(),
        decided_at: d.decided_at.to_string(),
        reasons: d.reasons.into_iter().map(reason).collect(),
        conditions: d.conditions.into_iter().map(requirement).collect(),
        obligations: d.obligations.into_iter().map(requirement).collect(),
        facts: Some(facts(d.facts)),
        errors: d.errors.into_iter().map(error).collect(),
    }
}

fn text(s: Option<std::sync::Arc<str>>) -> Option<String> {
    s.map(|s| s.to_string())
}

fn reason(r: Reason) -> pb::Reason {
    pb::Reason {
        policy: r.policy.to_string(),
        measure: text(r.measure),
        message: text(r.message),
    }
}

fn requirement(r: Requirement) -> pb::Requirement {
    pb::Requirement {
        id: r.id.to_string(),
        policy: r.policy.to_string(),
        measure: text(r.measure),
        message: text(r.message),
    }
}

fn error(e: DecisionError) -> pb::DecisionError {
    pb::DecisionError {
        policy: text(e.policy),
        message: e.message,
    }
}

fn countries(list: Vec<portcullis_core::country::Country>) -> Vec<String> {
    list.iter().map(|c| c.to_string()).collect()
}

fn facts(f: Facts) -> pb::Facts {
    pb::Facts {
        jurisdictions: countries(f.jurisdictions),
        declared_countries: countries(f.declared_countries),
        ip_countries: countries(f.ip_countries),
        ip_country_mismatch: f.ip_country_mismatch,
        anonymous_ip: f.anonymous_ip,
        ips: f.ips.into_iter().map(ip).collect(),
        screening: Some(screening(f.screening)),
        screening_matches: f.screening_matches,
    }
}

fn ip(i: IpFact) -> pb::IpFact {
    let a = i.anonymizer;
    pb::IpFact {
        ip: i.ip.to_string(),
        embedded_in: i.embedded_in.map(|ip| ip.to_string()),
        country: i.country.map(|c| c.to_string()),
        asn: i.asn,
        // As over HTTP: present only when some flag is set.
        anonymizer: a.any().then_some(pb::Anonymizer {
            anonymous: a.anonymous,
            vpn: a.vpn,
            public_proxy: a.public_proxy,
            tor_exit: a.tor_exit,
            hosting: a.hosting,
            residential_proxy: a.residential_proxy,
        }),
    }
}

fn screening(s: Screening) -> pb::Screening {
    pb::Screening {
        score: u32::from(s.score),
        matches: s.matches.into_iter().map(matched).collect(),
        matches_truncated: s.matches_truncated,
    }
}

fn matched(m: Match) -> pb::Match {
    pb::Match {
        designation: m.designation,
        name: m.name,
        screened: m.screened,
        party: m.party.to_owned(),
        basis: basis(m.basis).to_owned(),
        score: u32::from(m.score),
        measure: m.measure,
        explanation: m.explanation.map(|e| explanation(*e)),
    }
}

fn basis(b: portcullis_core::screening::Basis) -> &'static str {
    use portcullis_core::screening::Basis;
    match b {
        Basis::Name => "name",
        Basis::Identifier => "identifier",
        Basis::Email => "email",
        Basis::EmailDomain => "email_domain",
        Basis::Cidr => "cidr",
    }
}

fn explanation(e: MatchExplanation) -> pb::MatchExplanation {
    pb::MatchExplanation {
        name_score: u32::from(e.name.name_score),
        pairs: e
            .name
            .pairs
            .into_iter()
            .map(|p| pb::TokenPair {
                screened: p.screened,
                designated: p.designated,
                similarity: u32::from(p.similarity),
            })
            .collect(),
        screened_left_out: e.name.screened_left_out,
        designated_left_out: e.name.designated_left_out,
        adjustments: e
            .adjustments
            .into_iter()
            .map(|a| pb::Adjustment {
                reason: a.reason.to_owned(),
                points: a.points,
            })
            .collect(),
    }
}
