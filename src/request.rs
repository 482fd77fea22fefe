//! Wire types of `POST /v1/decide` and their validation.
//!
//! Decoding and validation are one step: country codes, IP addresses, dates and
//! enumerations are checked while the JSON is read, so a [`DecideRequest`] that
//! exists is valid. Every rejection is a [`RequestError`] naming the field.

use std::fmt;
use std::net::IpAddr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::country::Country;

/// What the control plane is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    OpenAccount,
    MaintainAccount,
    Provision,
}

impl Action {
    pub const ALL: [Action; 3] = [Self::OpenAccount, Self::MaintainAccount, Self::Provision];

    /// The Cedar action id (`Action::"<name>"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAccount => "open_account",
            Self::MaintainAccount => "maintain_account",
            Self::Provision => "provision",
        }
    }
}

/// Individual or organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    Individual,
    Organization,
}

impl PartyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Individual => "individual",
            Self::Organization => "organization",
        }
    }
}

/// One decision request, validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    #[serde(default)]
    pub request_id: Option<String>,
    pub action: Action,
    pub customer: Customer,
    #[serde(default)]
    pub reseller: Option<Reseller>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub source_ips: Vec<SourceIp>,
    #[serde(default)]
    pub resource: Option<Resource>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub satisfied_conditions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    pub id: NonEmpty,
    #[serde(default)]
    pub kind: Option<PartyKind>,
    pub name: NonEmpty,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub date_of_birth: Option<PartialDate>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub nationalities: Vec<Country>,
    #[serde(default)]
    pub address: Option<Address>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub payment: Option<Payment>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub beneficial_owners: Vec<BeneficialOwner>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub identifiers: Vec<Identifier>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default)]
    pub country: Option<Country>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub line: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    #[serde(default)]
    pub country: Option<Country>,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeneficialOwner {
    pub name: NonEmpty,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub aliases: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub nationalities: Vec<Country>,
    #[serde(default)]
    pub country: Option<Country>,
    #[serde(default)]
    pub date_of_birth: Option<PartialDate>,
    #[serde(default)]
    pub ownership_percent: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    pub kind: String,
    pub value: NonEmpty,
    #[serde(default)]
    pub country: Option<Country>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reseller {
    #[serde(default)]
    pub id: Option<String>,
    pub country: Country,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub kind: NonEmpty,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub gpu_count: Option<u32>,
}

/// A string that is not empty after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonEmpty(pub String);

impl NonEmpty {
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
    pub year: u16,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

impl PartialDate {
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
    pub message: String,
    /// Dotted path of the offending field, e.g. `customer.address.country`.
    pub field: Option<String>,
}

impl RequestError {
    pub fn new(code: &'static str, message: impl Into<String>, field: Option<String>) -> Self {
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
    fn partial_dates() {
        assert!(PartialDate::parse("1970-03-01").is_some());
        assert!(PartialDate::parse("1970").is_some());
        assert!(PartialDate::parse("1970-13").is_none());
        assert!(PartialDate::parse("70-01-01").is_none());
    }
}
