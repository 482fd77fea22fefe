//! `portcullis schema`: prints the built-in Cedar schema policies are validated against.

use super::exit;

pub fn run() -> anyhow::Result<u8> {
    print!("{}", portcullis_core::cedar_input::SCHEMA);
    Ok(exit::OK)
}

/// `portcullis openapi`: prints the OpenAPI 3.1 document of the HTTP API (what
/// `GET /v1/openapi.json` serves, and `docs/openapi.json` holds).
pub fn openapi() -> anyhow::Result<u8> {
    print!("{}", crate::server::http::openapi_document());
    Ok(exit::OK)
}
