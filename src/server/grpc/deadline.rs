//! Each call's deadline: `--request-timeout`, or the client's shorter
//! `grpc-timeout`, counted from the call's arrival.
//!
//! tonic arms its own timer for `grpc-timeout`, around every service, and
//! answers a bare `CANCELLED` ("Timeout expired") when it fires — possibly
//! while the request body is still arriving, before the service runs. This
//! layer sits inside tonic's timer, so its deadline is taken first and is never
//! the later one, and tonic polls it before its own timer: a call past its
//! deadline is answered `DEADLINE_EXCEEDED` with the API's `request_timeout`,
//! as HTTP answers 408, wherever the call was.
//!
//! As on HTTP, the timer is armed only when the call has to wait (most
//! decisions finish on their first poll). The deadline is also put in the
//! request's extensions ([`CallDeadline`]) for the service's work budget.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response};
use tokio::time::{Instant, Sleep};
use tonic::body::Body;

use crate::server::http::ApiError;

/// The deadline of the call that carries it.
#[derive(Debug, Clone, Copy)]
pub struct CallDeadline(pub Instant);

/// Bounds every call by `--request-timeout` or the client's `grpc-timeout`.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

/// The service [`DeadlineLayer`] makes.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S> tower::Service<Request<Body>> for Deadline<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let limit = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(grpc_timeout)
            .map_or(self.limit, |asked| asked.min(self.limit));
        let deadline = Instant::now() + limit;
        request.extensions_mut().insert(CallDeadline(deadline));
        DeadlineFuture {
            inner: self.inner.call(request),
            deadline,
            sleep: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// A call in progress; its timer exists once it has had to wait.
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        deadline: Instant,
        sleep: Option<Pin<Box<Sleep>>>,
    }
}

impl<F, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.inner.poll(cx) {
            return Poll::Ready(out);
        }
        let deadline = *this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                let timeout = ApiError::from(portcullis_core::budget::OverBudget);
                Poll::Ready(Ok(super::status(&timeout).into_http()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A `grpc-timeout` header: an integer of at most 8 digits and a unit
/// (`H`, `M`, `S`, `m`, `u`, `n`).
pub(super) fn grpc_timeout(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = (value.get(..split)?, value.get(split..)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}
