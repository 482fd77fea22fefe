//! The request time limit, armed only when a request has to wait.
//!
//! A decision is CPU work on a body that has usually arrived whole: its handler
//! finishes on the first poll. `tower_http::timeout` arms a timer for every
//! request all the same, which cost about 2 µs of CPU per decision under load
//! (registering and cancelling a timer-wheel entry). [`DeadlineLayer`] polls the
//! request once without a timer and arms one only if it is not ready: a slow
//! body, a full records queue or a records `always` sync. The limit then
//! counts from that first wait.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use tokio::time::Sleep;

/// Wraps a service so that requests not answered within `limit` of their first
/// wait are answered with what `on_timeout` makes.
#[derive(Clone, Copy)]
pub struct DeadlineLayer {
    limit: Duration,
    on_timeout: fn() -> Response,
}

impl DeadlineLayer {
    pub fn new(limit: Duration, on_timeout: fn() -> Response) -> Self {
        Self { limit, on_timeout }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            layer: *self,
        }
    }
}

/// The service [`DeadlineLayer`] makes.
#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S, R> tower::Service<R> for Deadline<S>
where
    S: tower::Service<R>,
    S::Response: IntoResponse,
{
    type Response = Response;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        DeadlineFuture {
            inner: self.inner.call(request),
            sleep: None,
            layer: self.layer,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request in progress; the timer exists once it has had to wait.
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        sleep: Option<Pin<Box<Sleep>>>,
        layer: DeadlineLayer,
    }
}

impl<F, T, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<T, E>>,
    T: IntoResponse,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.inner.poll(cx) {
            return Poll::Ready(out.map(IntoResponse::into_response));
        }
        let limit = this.layer.limit;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Ok((this.layer.on_timeout)())),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::{Layer as _, ServiceExt as _};

    fn timed_out() -> Response {
        (axum::http::StatusCode::REQUEST_TIMEOUT, "late").into_response()
    }

    async fn status_of<S>(svc: S) -> u16
    where
        S: tower::Service<(), Response = Response, Error = Infallible>,
    {
        match svc.oneshot(()).await {
            Ok(r) => r.status().as_u16(),
            Err(never) => match never {},
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_request_is_answered_and_a_stalled_one_times_out() {
        let layer = DeadlineLayer::new(Duration::from_secs(1), timed_out);
        let quick = layer.layer(tower::service_fn(|()| async { Ok::<_, Infallible>("ok") }));
        assert_eq!(status_of(quick).await, 200);

        let slow = layer.layer(tower::service_fn(|()| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok::<_, Infallible>("ok")
        }));
        assert_eq!(
            status_of(slow).await,
            200,
            "waits within the limit are fine"
        );

        let stalled = layer.layer(tower::service_fn(|()| async {
            std::future::pending::<()>().await;
            Ok::<_, Infallible>("never")
        }));
        assert_eq!(status_of(stalled).await, 408);
    }
}
