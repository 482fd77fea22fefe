//! The decision record: what is kept about one decision, built from the request
//! and the decision after deciding, with identity fields pseudonymised.
//!
//! Kept in clear: ids of the decision and request, time, action, outcome, the
//! policies, measures, conditions and obligations that decided, the policy
//! revision, the facts (countries, anonymizer flags, screening designation ids
//! and scores), the source IPs, resource and reseller. Identity, contact and
//! identifier fields follow their [`FieldMode`]. Screening matches keep the
//! designation, party, basis, score and measure, never the matched text.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;

use super::pseudo::{FieldKind, FieldMode, FieldModes, Pseudonymiser};
use portcullis_core::country::Country;
use portcullis_core::decision::{Decision, Outcome, Reason, Requirement};
use portcullis_core::enrich::IpFact;
use portcullis_core::request::{Action, DecideRequest, PartyKind};
use portcullis_core::screening::Basis;

/// One decision record (the chain adds `prev` and `hash` when it is written).
#[derive(Debug, Serialize)]
pub struct DecisionRecord<'a> {
    pub kind: &'static str,
    pub decision_id: &'a str,
    pub time: String,
    /// The instant the policies were applied as of, when the request set `at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    pub action: Action,
    pub decision: Outcome,
    pub policy_revision: &'a str,
    pub reasons: &'a [Reason],
    pub conditions: &'a [Requirement],
    pub obligations: &'a [Requirement],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RecordedError>,
    pub facts: RecordedFacts<'a>,
    pub source_ips: Vec<IpAddr>,
    pub customer: RecordedCustomer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reseller: Option<RecordedReseller<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<RecordedResource<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub satisfied_conditions: &'a [String],
    pub pseudonymisation: Pseudonymisation<'a>,
    /// `compact` when the action's record profile trims the customer
    /// (`--records-profile`); absent for a full record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<&'static str>,
}

/// What a decision record keeps of the customer, per action
/// (`--records-profile ACTION=full|compact`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Every customer field, as its group's mode says.
    #[default]
    Full,
    /// The customer's id (as its mode says), kind, nationalities, address
    /// country and payment country; names, aliases, dates of birth, contact
    /// details, identifiers and beneficial owners are left out (their
    /// countries stay in the facts). The record says `"profile":"compact"`.
    Compact,
}

/// The record profile of each action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Profiles {
    pub open_account: Profile,
    pub maintain_account: Profile,
    pub provision: Profile,
}

impl Profiles {
    pub fn of(&self, action: Action) -> Profile {
        match action {
            Action::OpenAccount => self.open_account,
            Action::MaintainAccount => self.maintain_account,
            Action::Provision => self.provision,
        }
    }

    pub fn set(&mut self, action: Action, profile: Profile) {
        match action {
            Action::OpenAccount => self.open_account = profile,
            Action::MaintainAccount => self.maintain_account = profile,
            Action::Provision => self.provision = profile,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Pseudonymisation<'a> {
    #[serde(flatten)]
    pub modes: FieldModes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct RecordedError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct RecordedFacts<'a> {
    pub jurisdictions: &'a [Country],
    pub declared_countries: &'a [Country],
    pub owner_countries: &'a [Country],
    pub ip_countries: &'a [Country],
    pub ip_country_mismatch: bool,
    pub anonymous_ip: bool,
    /// Every IP with all its anonymizer flags, set or not (answers omit clean ones).
    #[serde(serialize_with = "ips_with_flags")]
    pub ips: &'a [IpFact],
    pub screening: RecordedScreening<'a>,
    pub screening_matches: &'a [String],
}

fn ips_with_flags<S: serde::Serializer>(ips: &&[IpFact], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Explicit<'a> {
        ip: std::net::IpAddr,
        #[serde(skip_serializing_if = "Option::is_none")]
        embedded_in: Option<std::net::IpAddr>,
        country: Option<Country>,
        asn: Option<u32>,
        anonymizer: &'a portcullis_core::geo::Anonymizer,
    }
    s.collect_seq(ips.iter().map(|f| Explicit {
        ip: f.ip,
        embedded_in: f.embedded_in,
        country: f.country,
        asn: f.asn,
        anonymizer: &f.anonymizer,
    }))
}

#[derive(Debug, Serialize)]
pub struct RecordedScreening<'a> {
    pub score: u8,
    pub matches: Vec<RecordedMatch<'a>>,
}

#[derive(Debug, Serialize)]
pub struct RecordedMatch<'a> {
    pub designation: &'a str,
    pub party: &'static str,
    pub basis: Basis,
    pub score: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure: Option<&'a str>,
}

#[derive(Debug, Default, Serialize)]
pub struct RecordedCustomer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<PartyKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nationalities: Vec<Country>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<RecordedAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<RecordedPayment>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub beneficial_owners: Vec<RecordedOwner>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<RecordedIdentifier>,
}

#[derive(Debug, Serialize)]
pub struct RecordedAddress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RecordedPayment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RecordedOwner {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nationalities: Vec<Country>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ownership_percent: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct RecordedIdentifier {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
}

#[derive(Debug, Serialize)]
pub struct RecordedReseller<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    pub country: Country,
}

#[derive(Debug, Serialize)]
pub struct RecordedResource<'a> {
    pub kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_count: Option<u32>,
}

fn date(d: &portcullis_core::request::PartialDate) -> String {
    match (d.month, d.day) {
        (Some(m), Some(day)) => format!("{:04}-{m:02}-{day:02}", d.year),
        (Some(m), None) => format!("{:04}-{m:02}", d.year),
        _ => format!("{:04}", d.year),
    }
}

impl<'a> DecisionRecord<'a> {
    /// The record of `decision`, decided on `req` at `time`.
    pub fn new(
        req: &'a DecideRequest,
        decision: &'a Decision,
        p: &'a Pseudonymiser,
        time: SystemTime,
        profile: Profile,
    ) -> Self {
        let m = p.modes;
        let customer = match profile {
            Profile::Full => RecordedCustomer::new(&req.customer, Fields { p, m }),
            Profile::Compact => RecordedCustomer::compact(&req.customer, Fields { p, m }),
        };
        Self {
            kind: "decision",
            decision_id: &decision.decision_id,
            time: super::chain::record_time(time),
            as_of: req.at.map(|_| decision.decided_at.to_string()),
            request_id: decision.request_id.as_deref(),
            action: req.action,
            decision: decision.decision,
            policy_revision: &decision.policy_revision,
            reasons: &decision.reasons,
            conditions: &decision.conditions,
            obligations: &decision.obligations,
            errors: decision
                .errors
                .iter()
                .map(|e| RecordedError {
                    policy: e.policy.as_deref().map(str::to_owned),
                    message: redact(&e.message, req, m),
                })
                .collect(),
            facts: RecordedFacts::new(&decision.facts),
            source_ips: req.source_ips.iter().map(|ip| ip.0).collect(),
            customer,
            reseller: req.reseller.as_ref().map(|r| RecordedReseller {
                id: r.id.as_deref(),
                country: r.country,
            }),
            resource: req.resource.as_ref().map(|r| RecordedResource {
                kind: r.kind.as_str(),
                region: r.region.as_deref(),
                gpu_count: r.gpu_count,
            }),
            satisfied_conditions: &req.satisfied_conditions,
            pseudonymisation: Pseudonymisation {
                modes: m,
                key_id: p.key_id(),
            },
            profile: (profile == Profile::Compact).then_some("compact"),
        }
    }
}

/// How identity, contact and identifier values are recorded: the
/// pseudonymiser and the mode of each group of fields.
#[derive(Clone, Copy)]
struct Fields<'a> {
    p: &'a Pseudonymiser,
    m: FieldModes,
}

impl Fields<'_> {
    /// An identity value (customer id, name, date of birth), as its mode says.
    fn identity(self, kind: FieldKind<'_>, v: &str) -> Option<String> {
        self.p.apply(self.m.identity, kind, v)
    }

    /// A contact value (email, phone, address line), as its mode says.
    fn contact(self, kind: FieldKind<'_>, v: &str) -> Option<String> {
        self.p.apply(self.m.contact, kind, v)
    }

    /// Several identity values (aliases); those dropped are left out.
    fn identities(self, kind: FieldKind<'_>, vs: &[String]) -> Vec<String> {
        vs.iter().filter_map(|v| self.identity(kind, v)).collect()
    }

    /// A date of birth, as an identity value.
    fn date_of_birth(self, d: Option<&portcullis_core::request::PartialDate>) -> Option<String> {
        d.and_then(|d| self.identity(FieldKind::DateOfBirth, &date(d)))
    }

    /// An optional address line, as a contact value.
    fn address_line(self, v: Option<&str>) -> Option<String> {
        v.and_then(|v| self.contact(FieldKind::Address, v))
    }
}

impl RecordedCustomer {
    /// The customer as a compact profile records it (see [`Profile::Compact`]).
    fn compact(c: &portcullis_core::request::Customer, f: Fields<'_>) -> Self {
        Self {
            id: f.identity(FieldKind::CustomerId, c.id.as_str()),
            kind: c.kind,
            name: None,
            aliases: Vec::new(),
            date_of_birth: None,
            nationalities: c.nationalities.clone(),
            address: c.address.as_ref().map(|a| RecordedAddress {
                country: a.country,
                region: None,
                city: None,
                line: None,
                postal_code: None,
            }),
            email: None,
            phone: None,
            payment: c.payment.as_ref().map(|pay| RecordedPayment {
                country: pay.country,
                method: None,
            }),
            beneficial_owners: Vec::new(),
            identifiers: Vec::new(),
        }
    }

    /// The customer as recorded: identity, contact and identifier fields as
    /// their modes say, countries and kinds in clear.
    fn new(c: &portcullis_core::request::Customer, f: Fields<'_>) -> Self {
        Self {
            id: f.identity(FieldKind::CustomerId, c.id.as_str()),
            kind: c.kind,
            name: f.identity(FieldKind::Name, c.name.as_str()),
            aliases: f.identities(FieldKind::Name, &c.aliases),
            date_of_birth: f.date_of_birth(c.date_of_birth.as_ref()),
            nationalities: c.nationalities.clone(),
            address: c.address.as_ref().map(|a| RecordedAddress {
                country: a.country,
                region: f.address_line(a.region.as_deref()),
                city: f.address_line(a.city.as_deref()),
                line: f.address_line(a.line.as_deref()),
                postal_code: f.address_line(a.postal_code.as_deref()),
            }),
            email: c
                .email
                .as_deref()
                .and_then(|v| f.contact(FieldKind::Email, v)),
            phone: c
                .phone
                .as_deref()
                .and_then(|v| f.contact(FieldKind::Phone, v)),
            payment: c.payment.as_ref().map(|pay| RecordedPayment {
                country: pay.country,
                method: pay.method.clone(),
            }),
            beneficial_owners: c
                .beneficial_owners
                .iter()
                .map(|o| RecordedOwner {
                    name: f.identity(FieldKind::Name, o.name.as_str()),
                    aliases: f.identities(FieldKind::Name, &o.aliases),
                    nationalities: o.nationalities.clone(),
                    country: o.country,
                    date_of_birth: f.date_of_birth(o.date_of_birth.as_ref()),
                    ownership_percent: o.ownership_percent,
                })
                .collect(),
            identifiers: c
                .identifiers
                .iter()
                .map(|i| RecordedIdentifier {
                    kind: i.kind.as_str().to_owned(),
                    value: f.p.apply(
                        f.m.identifiers,
                        FieldKind::Identifier(i.kind.as_str()),
                        i.value.as_str(),
                    ),
                    country: i.country,
                })
                .collect(),
        }
    }
}

impl<'a> RecordedFacts<'a> {
    /// The facts as recorded; screening matches without the matched text.
    fn new(facts: &'a portcullis_core::enrich::Facts) -> Self {
        Self {
            jurisdictions: &facts.jurisdictions,
            declared_countries: &facts.declared_countries,
            owner_countries: &facts.owner_countries,
            ip_countries: &facts.ip_countries,
            ip_country_mismatch: facts.ip_country_mismatch,
            anonymous_ip: facts.anonymous_ip,
            ips: &facts.ips,
            screening: RecordedScreening {
                score: facts.screening.score,
                matches: facts
                    .screening
                    .matches
                    .iter()
                    .map(|x| RecordedMatch {
                        designation: &x.designation,
                        party: x.party,
                        basis: x.basis,
                        score: x.score,
                        measure: x.measure.as_deref(),
                    })
                    .collect(),
            },
            screening_matches: &facts.screening_matches,
        }
    }
}

/// Error messages can quote request values (Cedar names the principal by the
/// customer id): every identity, contact or identifier value whose group is not
/// kept in clear is replaced by `[redacted]`.
fn redact(message: &str, req: &DecideRequest, m: FieldModes) -> String {
    let c = &req.customer;
    let mut secrets: Vec<&str> = Vec::new();
    if m.identity != FieldMode::Clear {
        secrets.extend([c.id.as_str(), c.name.as_str()]);
        secrets.extend(c.aliases.iter().map(String::as_str));
        for o in &c.beneficial_owners {
            secrets.push(o.name.as_str());
            secrets.extend(o.aliases.iter().map(String::as_str));
        }
    }
    if m.contact != FieldMode::Clear {
        secrets.extend(c.email.as_deref());
        secrets.extend(c.phone.as_deref());
        if let Some(a) = &c.address {
            secrets.extend(
                [&a.line, &a.city, &a.region, &a.postal_code]
                    .into_iter()
                    .flatten()
                    .map(String::as_str),
            );
        }
    }
    if m.identifiers != FieldMode::Clear {
        secrets.extend(c.identifiers.iter().map(|i| i.value.as_str()));
    }
    secrets.retain(|s| !s.trim().is_empty());
    // Longest first, so a name is not half-replaced by one of its parts.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_owned();
    for s in secrets {
        if out.contains(s) {
            out = out.replace(s, "[redacted]");
        }
    }
    out
}

/// A record's JSON object, ready to be chained.
pub fn to_line(record: &DecisionRecord<'_>) -> Result<Vec<u8>, serde_json::Error> {
    // A record is about 1.5 kB: one allocation rather than growing from 128 bytes.
    let mut line = Vec::with_capacity(2048);
    serde_json::to_writer(&mut line, record)?;
    Ok(line)
}
