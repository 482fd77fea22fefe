//! Wire types of `POST /v1/decide` and their validation.
//!
//! Decoding and validation are one step: country codes, IP addresses, dates and
//! enumerations are checked while the JSON is read, so a [`DecideRequest`] that
//! exists is valid. Every rejection is a [`RequestError`] naming the field.
//!
//! Every structure of the wire format is a JSON object: serde's derived
//! visitors also take an array (fields by position), which [`objects_only!`]
//! refuses, so that a shifted element can never move a value into another
//! field. A key given twice is refused too, naming the field.
//! [`DecideRequest::check_bounds`] bounds the work a request asks for.

use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;

use serde::de::{self, Deserializer, MapAccess};
use serde::{Deserialize, Serialize};

use crate::country::Country;
use crate::lifecycle::Instant;

/// What the control plane is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `open_account`: open a customer account.
    OpenAccount,
    /// `maintain_account`: keep an existing account open.
    MaintainAccount,
    /// `provision`: provision a resource for the customer.
    Provision,
}

impl Action {
    /// Every action, in the order above.
    pub(crate) const ALL: [Action; 3] = [Self::OpenAccount, Self::MaintainAccount, Self::Provision];

    /// The Cedar action id (`Action::"<name>"`), as the wire names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAccount => "open_account",
            Self::MaintainAccount => "maintain_account",
            Self::Provision => "provision",
        }
    }
}

/// Individual or organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    /// `individual`: a natural person.
    Individual,
    /// `organization`: a company or other legal entity.
    Organization,
}

impl PartyKind {
    /// The wire name: `individual` or `organization`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Individual => "individual",
            Self::Organization => "organization",
        }
    }
}

/// One decision request, validated.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct DecideRequest {
    /// `request_id`: the caller's id, echoed in the answer.
    #[serde(default)]
    pub request_id: Option<String>,
    /// `action`: what is about to be done; required.
    pub action: Action,
    /// `customer`: who it is done for; required.
    pub customer: Customer,
    /// `reseller`: the reseller the customer came through, if any.
    #[serde(default)]
    pub reseller: Option<Reseller>,
    /// `source_ips`: addresses the customer connects from; geolocated and screened.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub source_ips: Vec<SourceIp>,
    /// `resource`: the resource acted on; when `None`, Cedar sees `Resource::"account"`.
    #[serde(default)]
    pub resource: Option<Resource>,
    /// `satisfied_conditions`: ids of conditions the caller has met.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub satisfied_conditions: Vec<String>,
    /// `explain`: each name match in `facts.screening` says how the tokens
    /// were paired and what adjusted the score. Off by default.
    #[serde(default, deserialize_with = "null_as_false")]
    pub explain: bool,
    /// `at`: decide as of this instant (`YYYY-MM-DD` or RFC 3339) instead of
    /// now: which measures are in force depends on it. Policy test cases and
    /// impact analysis use it; the live endpoints refuse it unless the service
    /// allows it (`serve --allow-as-of`).
    #[serde(default)]
    pub at: Option<Instant>,
}

/// The `customer` of a request: the Cedar principal.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Customer {
    /// `id`: required, not blank; the principal `Customer::"<id>"`.
    pub id: NonEmpty,
    /// `kind`: individual or organization.
    #[serde(default)]
    pub kind: Option<PartyKind>,
    /// `name`: required, not blank; screened.
    pub name: NonEmpty,
    /// `aliases`: other names; screened.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub aliases: Vec<String>,
    /// `date_of_birth`: weighs in screening.
    #[serde(default)]
    pub date_of_birth: Option<PartialDate>,
    /// `nationalities`: declared countries of nationality.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub nationalities: Vec<Country>,
    /// `address`: the customer's address.
    #[serde(default)]
    pub address: Option<Address>,
    /// `email`: screened (address and domain).
    #[serde(default)]
    pub email: Option<String>,
    /// `phone`: recorded, not screened.
    #[serde(default)]
    pub phone: Option<String>,
    /// `payment`: the payment method and its country.
    #[serde(default)]
    pub payment: Option<Payment>,
    /// `beneficial_owners`: the parties behind the customer; names screened.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub beneficial_owners: Vec<BeneficialOwner>,
    /// `identifiers`: documents and registrations; values screened.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub identifiers: Vec<Identifier>,
}

/// `customer.address`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Address {
    /// `country`: a declared country (the principal's `country`).
    #[serde(default)]
    pub country: Option<Country>,
    /// `region`: state, province or the like.
    #[serde(default)]
    pub region: Option<String>,
    /// `city`.
    #[serde(default)]
    pub city: Option<String>,
    /// `line`: street address.
    #[serde(default)]
    pub line: Option<String>,
    /// `postal_code`.
    #[serde(default)]
    pub postal_code: Option<String>,
}

/// `customer.payment`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Payment {
    /// `country`: a declared country (the principal's `payment_country`).
    #[serde(default)]
    pub country: Option<Country>,
    /// `method`: how the customer pays (free text).
    #[serde(default)]
    pub method: Option<String>,
}

/// One of `customer.beneficial_owners`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct BeneficialOwner {
    /// `name`: required, not blank; screened.
    pub name: NonEmpty,
    /// `aliases`: other names; screened.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub aliases: Vec<String>,
    /// `nationalities`: part of the principal's `owner_countries`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub nationalities: Vec<Country>,
    /// `country`: part of the principal's `owner_countries`.
    #[serde(default)]
    pub country: Option<Country>,
    /// `date_of_birth`: weighs in screening.
    #[serde(default)]
    pub date_of_birth: Option<PartialDate>,
    /// `ownership_percent`: share owned, in percent.
    #[serde(default)]
    pub ownership_percent: Option<f64>,
}

/// One of `customer.identifiers`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Identifier {
    /// `kind`: required, not blank; the kind of document, e.g. `passport`
    /// (free text).
    pub kind: NonEmpty,
    /// `value`: required, not blank; screened exactly.
    pub value: NonEmpty,
    /// `country`: the issuing country.
    #[serde(default)]
    pub country: Option<Country>,
}

/// `reseller`: the reseller the customer came through.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Reseller {
    /// `id`: the reseller's id.
    #[serde(default)]
    pub id: Option<String>,
    /// `country`: required; the principal's `reseller_country`.
    pub country: Country,
}

/// `resource`: the resource acted on (the Cedar resource).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Resource {
    /// `kind`: required, not blank; the resource `Resource::"<kind>"`.
    pub kind: NonEmpty,
    /// `region`: where it is provisioned.
    #[serde(default)]
    pub region: Option<String>,
    /// `gpu_count`: GPUs asked for; `0` in Cedar when absent.
    #[serde(default)]
    pub gpu_count: Option<u32>,
}

/// A type whose derived field-by-field decoding reads a JSON object's entries
/// (implemented by [`objects_only!`](crate::objects_only)).
#[doc(hidden)]
pub trait FromObject<'de>: Sized {
    /// Decodes `Self` from the entries of one JSON object.
    fn from_object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// Accepts a JSON object only and hands its entries to [`FromObject`].
#[doc(hidden)]
pub struct ObjectVisitor<T>(pub PhantomData<T>);

impl<'de, T: FromObject<'de>> de::Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_object(map)
    }
}

/// Implements `Deserialize` for structs whose derive is `remote = "Self"`
/// (an inherent `deserialize`): through `deserialize_map`, so only a JSON
/// object is accepted, never an array of fields by position. For wire types
/// of other crates too (the service's batch request).
#[macro_export]
macro_rules! objects_only {
    ($($t:ty),+ $(,)?) => {$(
        impl<'de> $crate::request::FromObject<'de> for $t {
            fn from_object<A: serde::de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
                <$t>::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map($crate::request::ObjectVisitor::<$t>(std::marker::PhantomData))
            }
        }
    )+};
}

objects_only!(
    DecideRequest,
    Customer,
    Address,
    Payment,
    BeneficialOwner,
    Identifier,
    Reseller,
    Resource
);

/// A string that is not empty after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonEmpty(pub String);

impl NonEmpty {
    /// The string as given (not trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A source IP; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is stored as the IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceIp(pub IpAddr);

/// A date of birth, possibly partial: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartialDate {
    /// 1800–2200.
    pub year: u16,
    /// 1–12, when given.
    pub month: Option<u8>,
    /// 1–31, when given (only with a month).
    pub day: Option<u8>,
}

impl PartialDate {
    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (surrounding spaces ignored); `None` if invalid.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.trim().split('-');
        let year = parts.next().filter(|y| y.len() == 4)?.parse::<u16>().ok()?;
        let month = match parts.next() {
            None => None,
            Some(m) => Some(m.parse::<u8>().ok().filter(|m| (1..=12).contains(m))?),
        };
        let day = match parts.next() {
            None => None,
            Some(d) => Some(d.parse::<u8>().ok().filter(|d| (1..=31).contains(d))?),
        };
        if parts.next().is_some() || !(1800..=2200).contains(&year) {
            return None;
        }
        Some(Self { year, month, day })
    }
}

// Messages raised while decoding. `classify` maps them back to error codes, so
// the prefixes are the single source of truth for both.
const BAD_COUNTRY: &str = "invalid country code";
const BAD_IP: &str = "invalid IP address";
const BAD_VALUE: &str = "invalid value";

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Country::parse(&s).ok_or_else(|| {
            de::Error::custom(format_args!(
                "{BAD_COUNTRY} `{}`: expected an ISO 3166-1 alpha-2 code such as `US`",
                Truncated(&s)
            ))
        })
    }
}

impl<'de> Deserialize<'de> for SourceIp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let ip: IpAddr = s.trim().parse().map_err(|_| {
            de::Error::custom(format_args!(
                "{BAD_IP} `{}`: expected IPv4 or IPv6 text",
                Truncated(&s)
            ))
        })?;
        Ok(Self(canonical_ip(ip)))
    }
}

/// IPv4-mapped IPv6 addresses become the IPv4 address they carry.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl<'de> Deserialize<'de> for PartialDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        PartialDate::parse(&s).ok_or_else(|| {
            de::Error::custom(format_args!(
                "{BAD_VALUE} `{}`: expected a date as YYYY-MM-DD, YYYY-MM or YYYY",
                Truncated(&s)
            ))
        })
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Instant::parse(&s).map_err(|_| {
            de::Error::custom(format_args!(
                "{BAD_VALUE} `{}`: expected a date (YYYY-MM-DD, meaning 00:00 UTC) or an RFC 3339 instant with its offset",
                Truncated(&s)
            ))
        })
    }
}

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(de::Error::custom(format_args!(
                "{BAD_VALUE}: must not be empty"
            )));
        }
        Ok(Self(s))
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                de::Error::custom(format_args!(
                    "{BAD_VALUE} `{}`: expected one of `open_account`, `maintain_account`, `provision`",
                    Truncated(&s)
                ))
            })
    }
}

impl<'de> Deserialize<'de> for PartyKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        match s.as_ref() {
            "individual" => Ok(Self::Individual),
            "organization" => Ok(Self::Organization),
            other => Err(de::Error::custom(format_args!(
                "{BAD_VALUE} `{}`: expected `individual` or `organization`",
                Truncated(other)
            ))),
        }
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `null` for a flag is the flag unset.
fn null_as_false<'de, D>(d: D) -> Result<bool, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<bool>::deserialize(d)?.unwrap_or_default())
}

/// Echoes user input into error messages without letting it grow unbounded.
struct Truncated<'a>(&'a str);

impl fmt::Display for Truncated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 64;
        match self.0.char_indices().nth(MAX) {
            Some((cut, _)) => write!(f, "{}…", self.0.get(..cut).unwrap_or_default()),
            None => f.write_str(self.0),
        }
    }
}

/// Why a request body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// Stable machine-readable code, e.g. `invalid_country`.
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
    /// Dotted path of the offending field, e.g. `customer.address.country`.
    pub field: Option<String>,
}

impl RequestError {
    pub(crate) fn new(
        code: &'static str,
        message: impl Into<String>,
        field: Option<String>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            field,
        }
    }
}

/// Decodes and validates one JSON value of type `T`, naming the field on failure.
///
/// Valid bodies are decoded once, without tracking where the decoder is (which
/// allocates for every key); a body that fails is decoded again with the path
/// tracked, to name the field.
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, RequestError> {
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(classify)?;
    de.end()
        .map_err(|e| RequestError::new("malformed_json", format!("malformed JSON: {e}"), None))?;
    Ok(value)
}

/// Decodes a request already held as a JSON value (the gRPC service's, built
/// from its proto3 message): the same validation and error codes as [`decode`].
pub fn decode_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(value).map_err(classify)
}

/// Decodes one `POST /v1/decide` body.
pub fn parse_decide(body: &[u8]) -> Result<DecideRequest, RequestError> {
    decode(body)
}

fn classify(err: serde_path_to_error::Error<serde_json::Error>) -> RequestError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let message = strip_position(&inner.to_string());
    let path = (path != ".").then_some(path);
    if inner.is_syntax() || inner.is_eof() {
        return RequestError::new("malformed_json", format!("malformed JSON: {message}"), None);
    }
    if let Some(name) = backticked_after(&message, "missing field ") {
        return RequestError::new("missing_field", message.clone(), Some(join(path, name)));
    }
    if let Some(name) = backticked_after(&message, "duplicate field ") {
        return RequestError::new("duplicate_field", message.clone(), Some(join(path, name)));
    }
    if let Some(name) = backticked_after(&message, "unknown field ") {
        let field = match path {
            Some(p) if p == name || p.ends_with(&format!(".{name}")) => p,
            other => join(other, name),
        };
        let short = message.split(", expected").next().unwrap_or(&message);
        return RequestError::new("unknown_field", short.to_owned(), Some(field));
    }
    let code = if message.starts_with(BAD_COUNTRY) {
        "invalid_country"
    } else if message.starts_with(BAD_IP) {
        "invalid_ip"
    } else if message.starts_with(BAD_VALUE) {
        "invalid_value"
    } else {
        "invalid_type"
    };
    RequestError::new(code, message, path)
}

/// serde_json appends " at line L column C"; the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg.get(..i).unwrap_or(msg).to_owned(),
        None => msg.to_owned(),
    }
}

fn backticked_after<'m>(msg: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = msg.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split('`').next()
}

fn join(path: Option<String>, name: &str) -> String {
    match path {
        Some(p) => format!("{p}.{name}"),
        None => name.to_owned(),
    }
}

/// Bounds on the work one request may ask for: every name is screened, so
/// their number and length are what a request costs. Set by `serve`'s
/// `--max-names`, `--max-parties` and `--max-name-length` (`reload::Limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Names per party: its name and its aliases.
    pub max_names: usize,
    /// Parties per request: the customer and its beneficial owners.
    pub max_parties: usize,
    /// Characters in one name or alias.
    pub max_name_chars: usize,
    /// Whether a request may set `at` (decide as of another instant): off for
    /// the live endpoints unless `serve --allow-as-of`, so that a control
    /// plane cannot step around a measure by choosing the time.
    pub allow_as_of: bool,
}

impl DecideRequest {
    /// Checks the request against `bounds`, in document order; the error names
    /// the first element beyond a bound (`customer.aliases[49]`).
    pub fn check_bounds(&self, bounds: &Bounds) -> Result<(), RequestError> {
        if self.at.is_some() && !bounds.allow_as_of {
            return Err(RequestError::new(
                "invalid_value",
                "`at` (decide as of another instant) is refused by this service: a live \
                 decision is made as of now (`serve --allow-as-of` allows it)",
                Some("at".to_owned()),
            ));
        }
        let c = &self.customer;
        check_party("customer", &c.name, &c.aliases, bounds)?;
        if let Some(beyond) = bounds.max_parties.checked_sub(1)
            && c.beneficial_owners.len() > beyond
        {
            return Err(beyond_bound(
                format!("customer.beneficial_owners[{beyond}]"),
                format!(
                    "a request names at most {} parties (the customer and its beneficial \
                         owners), this one {} (--max-parties)",
                    bounds.max_parties,
                    c.beneficial_owners.len() + 1
                ),
            ));
        }
        for (i, owner) in c.beneficial_owners.iter().enumerate() {
            let at = format!("customer.beneficial_owners[{i}]");
            check_party(&at, &owner.name, &owner.aliases, bounds)?;
        }
        Ok(())
    }

    /// How many names screening compares: every party's name and aliases.
    pub fn names_to_screen(&self) -> usize {
        let c = &self.customer;
        1 + c.aliases.len()
            + c.beneficial_owners
                .iter()
                .map(|o| 1 + o.aliases.len())
                .sum::<usize>()
    }
}

fn check_party(
    at: &str,
    name: &NonEmpty,
    aliases: &[String],
    bounds: &Bounds,
) -> Result<(), RequestError> {
    check_length(|| format!("{at}.name"), name.as_str(), bounds)?;
    // The name is the first of the party's names.
    let most_aliases = bounds.max_names.saturating_sub(1);
    if aliases.len() > most_aliases {
        return Err(beyond_bound(
            format!("{at}.aliases[{most_aliases}]"),
            format!(
                "a party has at most {} names (its name and aliases), `{at}` has {} (--max-names)",
                bounds.max_names,
                aliases.len() + 1
            ),
        ));
    }
    for (i, alias) in aliases.iter().enumerate() {
        check_length(|| format!("{at}.aliases[{i}]"), alias, bounds)?;
    }
    Ok(())
}

fn check_length(
    field: impl FnOnce() -> String,
    name: &str,
    bounds: &Bounds,
) -> Result<(), RequestError> {
    // A UTF-8 string has at least as many bytes as characters.
    if name.len() <= bounds.max_name_chars || name.chars().count() <= bounds.max_name_chars {
        return Ok(());
    }
    Err(beyond_bound(
        field(),
        format!(
            "a name has at most {} characters, this one {} (--max-name-length)",
            bounds.max_name_chars,
            name.chars().count()
        ),
    ))
}

fn beyond_bound(field: String, message: String) -> RequestError {
    RequestError::new(
        "invalid_value",
        format!("{BAD_VALUE}: {message}"),
        Some(field),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> RequestError {
        parse_decide(body.as_bytes()).unwrap_err()
    }

    const MIN: &str = r#"{"action":"open_account","customer":{"id":"c1","name":"Ann Lee"}}"#;

    #[test]
    fn minimal_request_parses() {
        let r = parse_decide(MIN.as_bytes()).unwrap();
        assert_eq!(r.action, Action::OpenAccount);
        assert_eq!(r.customer.name.as_str(), "Ann Lee");
    }

    #[test]
    fn countries_are_upper_cased() {
        let r = parse_decide(
            br#"{"action":"provision","customer":{"id":"c","name":"n","nationalities":["ru","Cn"]}}"#,
        )
        .unwrap();
        let codes: Vec<_> = r
            .customer
            .nationalities
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(codes, ["RU", "CN"]);
    }

    #[test]
    fn mapped_ipv4_becomes_ipv4() {
        let r = parse_decide(
            br#"{"action":"provision","customer":{"id":"c","name":"n"},"source_ips":["::ffff:81.2.69.160"]}"#,
        )
        .unwrap();
        assert_eq!(r.source_ips[0].0, "81.2.69.160".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn each_error_class_names_its_field() {
        let e = err(r#"{"action":"open_account","customer":{"id":"c"}}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("customer.name"))
        );

        let e = err(r#"{"customer":{"id":"c","name":"n"}}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("action"))
        );

        let e = err(r#"{"action":"open_account","customer":{"id":"c","name":"n","nam":"x"}}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("customer.nam"))
        );

        let e = err(r#"{"action":"open_account","customer":{"id":"c","name":"n"},"extra":1}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("extra"))
        );

        let e = err(
            r#"{"action":"open_account","customer":{"id":"c","name":"n","address":{"country":"Iran"}}}"#,
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_country", Some("customer.address.country"))
        );

        let e = err(
            r#"{"action":"open_account","customer":{"id":"c","name":"n","nationalities":["RU","ZZ"]}}"#,
        );
        assert_eq!(e.code, "invalid_country");
        assert_eq!(e.field.as_deref(), Some("customer.nationalities[1]"));

        let e = err(
            r#"{"action":"open_account","customer":{"id":"c","name":"n"},"source_ips":["300.1.1.1"]}"#,
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_ip", Some("source_ips[0]"))
        );

        let e = err(r#"{"action":"close_account","customer":{"id":"c","name":"n"}}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_value", Some("action"))
        );

        let e = err(r#"{"action":"open_account","customer":{"id":"c","name":"  "}}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_value", Some("customer.name"))
        );

        let e = err(r#"{"action":"open_account","customer":{"id":7,"name":"n"}}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_type", Some("customer.id"))
        );

        let e = err(r#"{"action":"open_account","#);
        assert_eq!(e.code, "malformed_json");
        let e = err("");
        assert_eq!(e.code, "malformed_json");
        let e = err(&format!("{MIN} {{}}"));
        assert_eq!(e.code, "malformed_json");
    }

    #[test]
    fn only_objects_are_structures() {
        // Fields by position would let a shifted element land in another field.
        let e = err(r#"[null,"open_account",["c1",null,"Ann Lee"]]"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_type", None),
            "{e:?}"
        );
        let e = err(r#"{"action":"open_account","customer":["c1",null,"Ann Lee"]}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_type", Some("customer"))
        );
        let e =
            err(r#"{"action":"open_account","customer":{"id":"c","name":"n","address":["RU"]}}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_type", Some("customer.address"))
        );
        let e = err(
            r#"{"action":"open_account","customer":{"id":"c","name":"n","beneficial_owners":[{"name":"a"},["b"]]}}"#,
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_type", Some("customer.beneficial_owners[1]"))
        );
        for (body, field) in [
            (
                r#"{"action":"open_account","customer":{"id":"c","name":"n","payment":["RU","card"]}}"#,
                "customer.payment",
            ),
            (
                r#"{"action":"open_account","customer":{"id":"c","name":"n","identifiers":[["passport","X1"]]}}"#,
                "customer.identifiers[0]",
            ),
            (
                r#"{"action":"open_account","customer":{"id":"c","name":"n"},"reseller":["r","AE"]}"#,
                "reseller",
            ),
            (
                r#"{"action":"open_account","customer":{"id":"c","name":"n"},"resource":["gpu"]}"#,
                "resource",
            ),
        ] {
            let e = err(body);
            assert_eq!((e.code, e.field.as_deref()), ("invalid_type", Some(field)));
        }
        // Objects decode as before, `null` for an optional structure included.
        let r = parse_decide(
            br#"{"action":"provision","customer":{"id":"c","name":"n","address":null,"payment":{"country":"ru"}},"reseller":null}"#,
        )
        .unwrap();
        assert!(r.customer.address.is_none() && r.reseller.is_none());
    }

    #[test]
    fn a_duplicated_key_is_refused_naming_the_field() {
        let e = err(
            r#"{"action":"open_account","action":"provision","customer":{"id":"c","name":"n"}}"#,
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("duplicate_field", Some("action"))
        );
        let e = err(r#"{"action":"open_account","customer":{"id":"c","name":"n","name":"m"}}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("duplicate_field", Some("customer.name"))
        );
        let e = err(
            r#"{"action":"open_account","customer":{"id":"c","name":"n","address":{"country":"RU","country":"US"}}}"#,
        );
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("duplicate_field", Some("customer.address.country"))
        );
    }

    fn with_parties(names: usize, owners: usize) -> DecideRequest {
        let aliases: Vec<String> = (1..names).map(|i| format!("Ann Lee {i}")).collect();
        let owner = serde_json::json!({"name": "Bo Ek", "aliases": aliases});
        let body = serde_json::json!({
            "action": "open_account",
            "customer": {"id": "c", "name": "Ann Lee", "aliases": aliases,
                         "beneficial_owners": vec![owner; owners]},
        });
        parse_decide(body.to_string().as_bytes()).unwrap()
    }

    const BOUNDS: Bounds = Bounds {
        allow_as_of: false,
        max_names: 4,
        max_parties: 3,
        max_name_chars: 20,
    };

    #[test]
    fn bounds_name_the_first_element_beyond_them() {
        // At the bounds: four names per party, three parties.
        let at = with_parties(4, 2);
        assert_eq!(at.check_bounds(&BOUNDS), Ok(()));
        assert_eq!(at.names_to_screen(), 12);

        let e = with_parties(5, 0).check_bounds(&BOUNDS).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_value", Some("customer.aliases[3]"))
        );
        assert!(e.message.contains("--max-names"), "{}", e.message);

        let e = with_parties(1, 3).check_bounds(&BOUNDS).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_value", Some("customer.beneficial_owners[2]"))
        );
        assert!(e.message.contains("--max-parties"), "{}", e.message);

        let mut long = with_parties(2, 2);
        long.customer.beneficial_owners[1].aliases[0] = "é".repeat(21);
        let e = long.check_bounds(&BOUNDS).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (
                "invalid_value",
                Some("customer.beneficial_owners[1].aliases[0]")
            )
        );
        assert!(e.message.contains("--max-name-length"), "{}", e.message);
        // Characters count, not bytes: 20 two-byte characters are within.
        long.customer.beneficial_owners[1].aliases[0] = "é".repeat(20);
        assert_eq!(long.check_bounds(&BOUNDS), Ok(()));
    }

    #[test]
    fn partial_dates() {
        assert!(PartialDate::parse("1970-03-01").is_some());
        assert!(PartialDate::parse("1970").is_some());
        assert!(PartialDate::parse("1970-13").is_none());
        assert!(PartialDate::parse("70-01-01").is_none());
    }
}
