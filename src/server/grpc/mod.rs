//! gRPC beside HTTP (`serve --grpc-listen ADDR`): the service
//! `portcullis.v1.Decisions` (`proto/portcullis/v1/decisions.proto`), server
//! reflection and the standard `grpc.health.v1` health service.
//!
//! A gRPC call takes the HTTP API's path: its message becomes the JSON API's
//! request and is validated by the same decoder ([`convert`]), bounded by the
//! same limits, decided and recorded by `http::decide::decide_and_record` on
//! the same snapshot within the same time limit. Bad input is
//! `INVALID_ARGUMENT`, with the API's error code (`google.rpc.ErrorInfo`,
//! `reason`) and field (`google.rpc.BadRequest`) in the status details.

pub mod codec;
pub mod convert;
pub mod deadline;
pub mod incoming;
pub mod raw;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tonic::{Code, Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_types::{ErrorDetails, StatusExt as _};

use portcullis_core::budget::Timebox;

use crate::server::grpc::incoming::{ConnectionLimits, Incoming};
use crate::server::http::ApiError;
use crate::server::http::decide::{check_batch, decide_and_record};
use crate::server::metrics::Transport;
use crate::server::state::AppState;

/// The code generated from `proto/portcullis/v1/decisions.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("portcullis.v1");
}

/// The encoded descriptors of `portcullis.v1` (a `FileDescriptorSet`): what
/// reflection serves, and how `bench --grpc` turns JSON requests into messages.
pub const DESCRIPTORS: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/portcullis_descriptors.bin"));

/// The full name of the decision service.
pub const SERVICE: &str = "portcullis.v1.Decisions";

/// The error details' `domain`.
pub(crate) const DOMAIN: &str = "portcullis.v1";

/// `portcullis.v1.Decisions` over the service's state.
pub struct Decisions {
    state: Arc<AppState>,
}

impl Decisions {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    /// The call's deadline, set by [`deadline::DeadlineLayer`]; without it
    /// (a service used outside `serve`), `--request-timeout` from now.
    fn deadline<T>(&self, request: &Request<T>) -> tokio::time::Instant {
        request
            .extensions()
            .get::<deadline::CallDeadline>()
            .map_or_else(
                || tokio::time::Instant::now() + self.state.limits.request_timeout,
                |d| d.0,
            )
    }

    /// A request refused before a decision: counted, as over HTTP.
    fn refuse(&self, e: ApiError) -> Status {
        status(&e.counted_on(&self.state, Transport::Grpc))
    }
}

#[tonic::async_trait]
impl pb::decisions_server::Decisions for Decisions {
    async fn decide(
        &self,
        request: Request<pb::DecideRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let deadline = self.deadline(&request);
        within(deadline, self.decide_one(request.into_inner(), deadline)).await
    }

    async fn decide_batch(
        &self,
        request: Request<pb::DecideBatchRequest>,
    ) -> Result<Response<pb::DecideBatchResponse>, Status> {
        let deadline = self.deadline(&request);
        within(deadline, self.decide_many(request.into_inner(), deadline)).await
    }
}

/// Runs a call within its time limit: past it, the call is dropped (its work
/// stops at its next check) and answered `DEADLINE_EXCEEDED` with the API's
/// `request_timeout`, as HTTP answers 408.
async fn within<T>(
    deadline: tokio::time::Instant,
    call: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout_at(deadline, call).await {
        Ok(answered) => answered,
        Err(_) => Err(status(&ApiError::from(portcullis_core::budget::OverBudget))),
    }
}

impl Decisions {
    async fn decide_one(
        &self,
        message: pb::DecideRequest,
        deadline: tokio::time::Instant,
    ) -> Result<Response<pb::Decision>, Status> {
        let budget = Timebox::until(deadline.into_std());
        let request = convert::request(message).map_err(|e| self.refuse(e.into()))?;
        request
            .check_bounds(&self.state.limits.bounds())
            .map_err(|e| self.refuse(e.into()))?;
        let mut decisions = decide_and_record(&self.state, vec![request], budget, Transport::Grpc)
            .await
            .map_err(|e| status(&e))?;
        match decisions.pop() {
            Some(d) => Ok(Response::new(convert::decision(d))),
            None => Err(Status::internal("no decision for one request")),
        }
    }

    async fn decide_many(
        &self,
        batch: pb::DecideBatchRequest,
        deadline: tokio::time::Instant,
    ) -> Result<Response<pb::DecideBatchResponse>, Status> {
        let budget = Timebox::until(deadline.into_std());
        let mut requests = Vec::new();
        for (i, message) in batch.requests.into_iter().enumerate() {
            let request = convert::request(message).map_err(|mut e| {
                e.field = Some(match e.field.take() {
                    Some(f) => format!("requests[{i}].{f}"),
                    None => format!("requests[{i}]"),
                });
                self.refuse(e.into())
            })?;
            requests.push(request);
        }
        check_batch(&self.state, &requests).map_err(|e| self.refuse(e))?;
        let decisions = decide_and_record(&self.state, requests, budget, Transport::Grpc)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::DecideBatchResponse {
            decisions: decisions.into_iter().map(convert::decision).collect(),
        }))
    }
}

/// The gRPC status of an API error: its code and field in the details.
pub fn status(e: &ApiError) -> Status {
    let code = match e.status() {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => Code::InvalidArgument,
        StatusCode::REQUEST_TIMEOUT => Code::DeadlineExceeded,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        _ => Code::Internal,
    };
    let mut metadata = HashMap::new();
    if let Some(field) = e.field() {
        metadata.insert("field".to_owned(), field.to_owned());
    }
    let mut details = ErrorDetails::with_error_info(e.code(), DOMAIN, metadata);
    if let Some(field) = e.field() {
        details.add_bad_request_violation(field, e.message());
    }
    Status::with_error_details(code, e.message(), details)
}

/// Why gRPC could not be served.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("cannot listen for gRPC on {address}: {cause}")]
    Listen {
        address: SocketAddr,
        // In the message, not a `source`: errors print chained (`{:#}`).
        cause: std::io::Error,
    },
    #[error("cannot build the gRPC reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A bound gRPC listener, ready to serve.
pub struct Listener {
    listener: tokio::net::TcpListener,
    /// The address it listens on (the port chosen when `:0` was asked).
    pub local: SocketAddr,
}

/// Binds `address` (before the service announces itself, so that a port in
/// use stops the start).
pub async fn bind(address: SocketAddr) -> Result<Listener, GrpcError> {
    let listen_error = |cause| GrpcError::Listen { address, cause };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    Ok(Listener { listener, local })
}

/// Serves `portcullis.v1.Decisions`, reflection and health on `listener`
/// until `stop` resolves; in-flight calls then finish (HTTP/2 graceful
/// shutdown).
pub async fn serve(
    state: Arc<AppState>,
    listener: Listener,
    limits: ConnectionLimits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), GrpcError> {
    let max_message = state.limits.max_body;
    let decisions = pb::decisions_server::DecisionsServer::new(Decisions::new(state.clone()))
        .max_decoding_message_size(max_message);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTORS)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTORS)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    // Known from the first call on, not from the readiness task's first tick.
    let initial = if state.ready() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    reporter.set_service_status(SERVICE, initial).await;
    reporter.set_service_status("", initial).await;
    let readiness = tokio::spawn(report_readiness(state.clone(), reporter.clone()));
    let stop_readiness = readiness.abort_handle();
    // On stop, health says NOT_SERVING before the server drains, so that
    // balancers stop sending calls here.
    let stop = async move {
        stop.await;
        stop_readiness.abort();
        reporter
            .set_service_status(SERVICE, ServingStatus::NotServing)
            .await;
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
    };
    // Each call's time limit is the service's own (`deadline`, and `within`
    // around the decision), so that it is answered DEADLINE_EXCEEDED with the
    // API's code rather than tonic's CANCELLED.
    let counted = state.clone();
    let served = tonic::transport::Server::builder()
        .layer(deadline::DeadlineLayer::new(state.limits.request_timeout))
        .layer(tower::util::MapResponseLayer::new(
            move |response: axum::http::Response<tonic::body::Body>| {
                count_refusals(&counted, response)
            },
        ))
        .max_concurrent_streams(Some(MAX_STREAMS))
        .concurrency_limit_per_connection(MAX_STREAMS as usize)
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(decisions)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(health)
        .serve_with_incoming_shutdown(Incoming::new(listener.listener, limits), stop)
        .await;
    readiness.abort();
    if let Err(e) = served {
        tracing::error!(error = %e, "the gRPC server stopped");
    }
    Ok(())
}

/// Counts a call the codec refused (its answer carries
/// [`codec::REFUSED_HEADER`], which is removed here), as the service counts
/// the calls it refuses.
fn count_refusals(
    state: &AppState,
    mut response: axum::http::Response<tonic::body::Body>,
) -> axum::http::Response<tonic::body::Body> {
    let Some(code) = response.headers_mut().remove(codec::REFUSED_HEADER) else {
        return response;
    };
    // Only the codec's own codes become labels, whatever the header holds.
    if let Some(code) = codec::REFUSAL_CODES
        .iter()
        .find(|known| known.as_bytes() == code.as_bytes())
    {
        state.metrics.record_rejection(Transport::Grpc, code);
    }
    response
}

/// Calls in flight on one connection, at most (HTTP/2 `MAX_CONCURRENT_STREAMS`).
const MAX_STREAMS: u32 = 256;

/// An idle connection is pinged this often; a peer that does not answer
/// within [`KEEPALIVE_TIMEOUT`] is dropped.
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the health service re-reads readiness.
const READINESS_EVERY: Duration = Duration::from_millis(250);

/// Keeps `grpc.health.v1` in step with `/readyz`: `SERVING` for the service
/// and the server as a whole while a snapshot is in force and decision
/// records can be written, `NOT_SERVING` otherwise.
async fn report_readiness(state: Arc<AppState>, reporter: tonic_health::server::HealthReporter) {
    let mut last = None;
    let mut tick = tokio::time::interval(READINESS_EVERY);
    loop {
        tick.tick().await;
        let now = if state.ready() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(now) {
            reporter.set_service_status(SERVICE, now).await;
            reporter.set_service_status("", now).await;
            last = Some(now);
        }
    }
}
