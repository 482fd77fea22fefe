//! The gRPC listener's connections, under the same limits as HTTP's:
//!
//! - at most `--max-connections` open at once. A gRPC client keeps its
//!   channel open and idle between calls, so at the cap a new connection is
//!   closed at once (the client sees `UNAVAILABLE` and retries, or its
//!   balancer picks another replica) rather than an open one being cut;
//! - a connection that has not sent the HTTP/2 connection preface within
//!   `--header-read-timeout` of its accept is closed, so silent connections
//!   cannot hold the cap;
//! - accept errors (`EMFILE`) are logged once per burst and backed off, as on
//!   HTTP (tonic's own loop would retry at once, spinning);
//! - `TCP_NODELAY`, and TCP keepalive probes on idle connections.
//!
//! Liveness after the preface is HTTP/2's: a peer that does not answer a
//! keepalive ping is dropped, and each call is bounded by the request time
//! limit.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tonic::codegen::tokio_stream::Stream;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

use crate::server::connections::{ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, is_connection_error};

/// The client's HTTP/2 connection preface (RFC 9113 §3.4) is this long.
const PREFACE_LEN: usize = 24;

/// The limits on the gRPC listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once, at most.
    pub max_connections: usize,
    /// The HTTP/2 preface must arrive within this of the accept.
    pub preface_timeout: Duration,
    /// TCP keepalive: idle connections are probed after this.
    pub tcp_keepalive: Duration,
}

/// Accepted connections, admitted under [`ConnectionLimits`].
pub struct Incoming {
    accepted: TcpIncoming,
    permits: Arc<Semaphore>,
    cap: usize,
    preface_timeout: Duration,
    /// Set after an accept error: no accept until it fires.
    pause: Option<Pin<Box<Sleep>>>,
    /// How long the next pause lasts.
    backoff: Duration,
    /// Accepting fails (logged once until it succeeds again).
    failing: bool,
    /// The cap was reached and has not been left since (logged once per burst).
    at_cap: bool,
}

impl Incoming {
    pub fn new(listener: tokio::net::TcpListener, limits: ConnectionLimits) -> Self {
        let accepted = TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(limits.tcp_keepalive));
        let cap = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            accepted,
            permits: Arc::new(Semaphore::new(cap)),
            cap,
            preface_timeout: limits.preface_timeout,
            pause: None,
            backoff: ACCEPT_BACKOFF_MIN,
            failing: false,
            at_cap: false,
        }
    }

    /// Admits `stream` if there is room under the cap.
    fn admit(&mut self, stream: TcpStream) -> Option<Guarded> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            if !self.at_cap {
                tracing::warn!(
                    transport = "grpc",
                    "connection limit reached: closing new gRPC connections until one ends"
                );
                self.at_cap = true;
            }
            return None;
        };
        if self.permits.available_permits() > 0 {
            self.at_cap = false;
        }
        Some(Guarded {
            stream,
            _permit: permit,
            preface: Some(Preface {
                missing: PREFACE_LEN,
                deadline: Box::pin(tokio::time::sleep(self.preface_timeout)),
            }),
        })
    }
}

impl Stream for Incoming {
    type Item = io::Result<Guarded>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(pause) = &mut this.pause {
                ready!(pause.as_mut().poll(cx));
                this.pause = None;
            }
            match ready!(Pin::new(&mut this.accepted).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Ok(stream)) => {
                    if this.failing {
                        tracing::info!(transport = "grpc", "accepting connections again");
                        this.failing = false;
                    }
                    this.backoff = ACCEPT_BACKOFF_MIN;
                    // Over the cap, the stream is dropped here: closed.
                    if let Some(guarded) = this.admit(stream) {
                        return Poll::Ready(Some(Ok(guarded)));
                    }
                }
                Some(Err(e)) if is_connection_error(&e) => {}
                Some(Err(e)) => {
                    if !this.failing {
                        tracing::warn!(
                            transport = "grpc",
                            error = %e,
                            open = this.open(),
                            "cannot accept connections; backing off"
                        );
                        this.failing = true;
                    }
                    this.pause = Some(Box::pin(tokio::time::sleep(this.backoff)));
                    this.backoff = (this.backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }
}

impl Incoming {
    /// Connections open now: each holds one of the cap's permits.
    fn open(&self) -> usize {
        self.cap.saturating_sub(self.permits.available_permits())
    }
}

/// The HTTP/2 preface still expected, and when it is due.
struct Preface {
    missing: usize,
    deadline: Pin<Box<Sleep>>,
}

/// An admitted connection: holds its place under the cap until it is
/// dropped, and fails its reads when the preface is late.
pub struct Guarded {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    preface: Option<Preface>,
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        let Some(preface) = &mut this.preface else {
            return polled;
        };
        match polled {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len().saturating_sub(before);
                preface.missing = preface.missing.saturating_sub(read);
                if preface.missing == 0 {
                    this.preface = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if preface.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no HTTP/2 preface within the header read timeout",
                )))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
