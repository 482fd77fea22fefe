//! OpenAPI schemas of the wire types whose encoding is written by hand
//! (the derived ones carry `#[derive(utoipa::ToSchema)]` beside their serde
//! derives). Each says what the hand-written decoder accepts, so that the
//! published document and the decoder cannot disagree unnoticed: the service's
//! tests validate real requests and answers against the document.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::country::Country;
use crate::lifecycle::Instant;
use crate::request::{NonEmpty, PartialDate, SourceIp};

fn string(description: &str, pattern: Option<&str>, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(pattern)
        .examples([example])
        .into()
}

impl PartialSchema for Country {
    fn schema() -> RefOr<Schema> {
        string(
            "An ISO 3166-1 alpha-2 country code; case-insensitive on input, upper-case in answers.",
            Some("^[A-Za-z]{2}$"),
            "RU",
        )
    }
}

impl ToSchema for Country {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CountryCode")
    }
}

impl PartialSchema for SourceIp {
    fn schema() -> RefOr<Schema> {
        string(
            "An IPv4 or IPv6 address as text; an IPv4-mapped IPv6 address counts as the IPv4 address it carries.",
            None,
            "203.0.113.7",
        )
    }
}

impl ToSchema for SourceIp {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("IpAddress")
    }
}

impl PartialSchema for PartialDate {
    fn schema() -> RefOr<Schema> {
        string(
            "A date, possibly partial: YYYY-MM-DD, YYYY-MM or YYYY (years 1800–2200).",
            Some(r"^\s*[0-9]{4}(-[0-9]{1,2}(-[0-9]{1,2})?)?\s*$"),
            "1970-03-01",
        )
    }
}

impl ToSchema for PartialDate {}

impl PartialSchema for Instant {
    fn schema() -> RefOr<Schema> {
        string(
            "An instant: RFC 3339 with its offset (answers give UTC with milliseconds); requests also accept a date, YYYY-MM-DD, meaning 00:00 UTC.",
            None,
            "2026-12-01T09:30:00.000Z",
        )
    }
}

impl ToSchema for Instant {}

impl PartialSchema for NonEmpty {
    fn schema() -> RefOr<Schema> {
        string(
            "Text that is not blank once spaces are trimmed.",
            Some(r"\S"),
            "Ivan Petrov",
        )
    }
}

impl ToSchema for NonEmpty {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NonBlankText")
    }
}
