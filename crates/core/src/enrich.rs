//! Enrichment: from a validated request to the facts policies decide on.

use std::net::IpAddr;

use serde::Serialize;

use crate::budget::{Budget, Unbounded};
use crate::country::Country;
use crate::geo::{self, Anonymizer, GeoSet};
use crate::names::NameKind;
use crate::request::{DecideRequest, PartyKind};
use crate::screening::{Person, Role, Screening, ScreeningIndex, Subject};

/// What one source IP, or the IPv4 address it carries, resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IpFact {
    /// `ip`: the address looked up.
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// The IPv6 transition address (6to4, NAT64, Teredo) this IPv4 address was
    /// taken from; `None` for a source IP as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub embedded_in: Option<IpAddr>,
    /// `country`: where the geo databases place it; `None` when none does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Country>,
    /// `asn`: its autonomous system number, when an ASN database knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// `anonymizer`: its anonymizer flags; present in answers only when some flag is set.
    #[serde(skip_serializing_if = "no_flag")]
    pub anonymizer: Anonymizer,
}

fn no_flag(a: &Anonymizer) -> bool {
    !a.any()
}

/// Everything derived from a request before policies are evaluated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Facts {
    /// Every country tied to the request, sorted, without duplicates.
    pub jurisdictions: Vec<Country>,
    /// Address, nationalities and payment country, as declared.
    pub declared_countries: Vec<Country>,
    /// Countries of the source IPs, sorted, without duplicates.
    pub ip_countries: Vec<Country>,
    /// Some IP country is not among the declared countries.
    pub ip_country_mismatch: bool,
    /// Some source IP has an anonymizer flag.
    pub anonymous_ip: bool,
    /// Beneficial owners' nationalities and countries.
    #[serde(skip)]
    pub owner_countries: Vec<Country>,
    /// One entry per address looked up: each source IP and, after a transition
    /// address, the IPv4 address it carries.
    pub ips: Vec<IpFact>,
    /// The screening against designated persons: best score and matches.
    pub screening: Screening,
    /// Designation ids matched at or above the screening threshold.
    pub screening_matches: Vec<String>,
    /// Lookups that failed; a decision with any of these fails closed.
    #[serde(skip)]
    pub errors: Vec<String>,
}

/// Settings of enrichment that belong to the snapshot, not to the code.
#[derive(Debug, Clone, Copy)]
pub struct EnrichSettings {
    /// Minimum screening score (0–100) for a designation to count as matched.
    pub screening_threshold: u8,
}

impl Default for EnrichSettings {
    fn default() -> Self {
        Self {
            screening_threshold: 90,
        }
    }
}

/// Computes the facts of a request from the geo databases and designations.
pub fn enrich(
    req: &DecideRequest,
    geo: &GeoSet,
    designations: &ScreeningIndex,
    settings: EnrichSettings,
) -> Facts {
    let Ok(facts) = enrich_within(req, geo, designations, settings, &Unbounded);
    facts
}

/// [`enrich`] within `budget`: screening checks it before each name and stops
/// once it is spent.
pub(crate) fn enrich_within<B: Budget>(
    req: &DecideRequest,
    geo: &GeoSet,
    designations: &ScreeningIndex,
    settings: EnrichSettings,
    budget: &B,
) -> Result<Facts, B::Over> {
    let c = &req.customer;
    let mut declared: Vec<Country> = c.nationalities.clone();
    declared.extend(c.address.as_ref().and_then(|a| a.country));
    declared.extend(c.payment.as_ref().and_then(|p| p.country));
    sort_dedup(&mut declared);

    let mut owner_countries: Vec<Country> = c
        .beneficial_owners
        .iter()
        .flat_map(|o| o.nationalities.iter().copied().chain(o.country))
        .collect();
    sort_dedup(&mut owner_countries);

    let mut errors = Vec::new();
    let mut ips = Vec::with_capacity(req.source_ips.len());
    // A transition address and the public IPv4 address it carries are both
    // looked up, and what either says counts (more facts, never fewer).
    let embedded = |ip: IpAddr| {
        geo::embedded_ipv4(ip)
            .map(IpAddr::V4)
            .filter(|v4| geo::is_public(*v4))
            .map(|v4| (v4, Some(ip)))
    };
    let addresses = req
        .source_ips
        .iter()
        .flat_map(|ip| std::iter::once((ip.0, None)).chain(embedded(ip.0)));
    for (ip, embedded_in) in addresses {
        match geo.lookup(ip) {
            Ok(found) => ips.push(IpFact {
                ip,
                embedded_in,
                country: found.country,
                asn: found.asn,
                anonymizer: found.anonymizer,
            }),
            Err(e) => errors.push(format!("geo lookup of `{ip}` failed: {e}")),
        }
    }
    let mut ip_countries: Vec<Country> = ips.iter().filter_map(|f| f.country).collect();
    sort_dedup(&mut ip_countries);
    let ip_country_mismatch = ip_countries.iter().any(|c| !declared.contains(c));
    let anonymous_ip = ips.iter().any(|f| f.anonymizer.any());

    let mut jurisdictions = declared.clone();
    jurisdictions.extend_from_slice(&owner_countries);
    jurisdictions.extend(req.reseller.as_ref().map(|r| r.country));
    jurisdictions.extend_from_slice(&ip_countries);
    sort_dedup(&mut jurisdictions);

    let screening = designations.screen_within(req, settings.screening_threshold, budget)?;
    let mut screening_matches: Vec<String> = screening
        .matches
        .iter()
        .filter(|m| m.score >= settings.screening_threshold)
        .map(|m| m.designation.clone())
        .collect();
    screening_matches.sort_unstable();
    screening_matches.dedup();

    Ok(Facts {
        jurisdictions,
        declared_countries: declared,
        ip_countries,
        ip_country_mismatch,
        anonymous_ip,
        owner_countries,
        ips,
        screening,
        screening_matches,
        errors,
    })
}

fn sort_dedup(v: &mut Vec<Country>) {
    v.sort_unstable();
    v.dedup();
}

/// What screening reads of a decision request: the customer (name, aliases,
/// date of birth, nationalities and address country), each beneficial owner
/// (name, aliases, date of birth, nationalities and country), the customer's
/// identifiers and e-mail address, and the source IPs.
impl Subject for DecideRequest {
    fn people(&self) -> impl Iterator<Item = Person<'_>> {
        let c = &self.customer;
        let customer = Person {
            role: Role::Customer,
            kind: match c.kind {
                Some(PartyKind::Individual) => NameKind::Person,
                Some(PartyKind::Organization) => NameKind::Organization,
                None => NameKind::Unknown,
            },
            name: c.name.as_str(),
            aliases: &c.aliases,
            date_of_birth: c.date_of_birth,
            countries: c
                .nationalities
                .iter()
                .copied()
                .chain(c.address.as_ref().and_then(|a| a.country))
                .collect(),
        };
        let owners = c.beneficial_owners.iter().map(|o| Person {
            role: Role::BeneficialOwner,
            kind: NameKind::Unknown,
            name: o.name.as_str(),
            aliases: &o.aliases,
            date_of_birth: o.date_of_birth,
            countries: o.nationalities.iter().copied().chain(o.country).collect(),
        });
        std::iter::once(customer).chain(owners)
    }

    fn identifiers(&self) -> impl Iterator<Item = &str> {
        self.customer.identifiers.iter().map(|i| i.value.as_str())
    }

    fn email(&self) -> Option<&str> {
        self.customer
            .email
            .as_deref()
            .filter(|e| !e.trim().is_empty())
    }

    fn source_ips(&self) -> impl Iterator<Item = IpAddr> {
        self.source_ips.iter().map(|ip| ip.0)
    }

    fn explain(&self) -> bool {
        self.explain
    }
}
