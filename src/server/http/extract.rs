//! The request body of the decision endpoints, at most `--max-body` bytes, and
//! [`Decoded`], the extractor that reads it and decodes it: every rejection is
//! an [`ApiError`], counted, so handlers never map one by hand.
//!
//! A declared `Content-Length` over the limit is refused before a byte of the
//! body is read (a client that waits for `100 Continue` sends none). A body
//! without a declared length is read up to the limit and refused at the first
//! byte over it. Either way the 413 goes out at once; what the client still
//! sends is discarded by the connection layer before it closes (`server`'s
//! lingering close), so a client that writes its whole body before reading
//! still gets the answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::server::state::AppState;
use portcullis_core::request::decode;

/// The whole body of a request, within the size limit.
#[derive(Debug, Clone)]
pub struct RequestBody(pub Bytes);

impl std::ops::Deref for RequestBody {
    type Target = Bytes;

    fn deref(&self) -> &Bytes {
        &self.0
    }
}

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is over the size limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("cannot read the request body: {0}")]
    Unreadable(axum::BoxError),
}

impl FromRequest<Arc<AppState>> for RequestBody {
    type Rejection = BodyError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, BodyError> {
        let limit = state.limits.max_body;
        if declared_length(&req).is_some_and(|len| len > limit as u64) {
            return Err(BodyError::TooLarge { limit });
        }
        match Limited::new(req.into_body(), limit).collect().await {
            Ok(collected) => Ok(Self(collected.to_bytes())),
            Err(e) if e.is::<LengthLimitError>() => Err(BodyError::TooLarge { limit }),
            Err(e) => Err(BodyError::Unreadable(e)),
        }
    }
}

/// The `Content-Length` the client declared, if it is a number (hyper has
/// already refused a malformed one).
fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl axum::response::IntoResponse for BodyError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}

/// A request body decoded as `T` (objects only, unknown fields refused, every
/// field validated while decoding: see `request`). A body over the limit, one
/// that cannot be read and one that does not decode are each an [`ApiError`]
/// naming the problem, counted in `rejected_requests_total`.
#[derive(Debug)]
pub struct Decoded<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for Decoded<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let body = RequestBody::from_request(req, state)
            .await
            .map_err(|e| ApiError::from(e).counted(state))?;
        decode(&body)
            .map(Self)
            .map_err(|e| ApiError::from(e).counted(state))
    }
}
