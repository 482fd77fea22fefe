//! The HTTP/1.1 connection layer: the accept loop, per-connection time limits,
//! the connection cap and graceful shutdown.
//!
//! Every connection has a [`Slot`] with its state and the time it entered it:
//!
//! | state | meaning | closed when |
//! | --- | --- | --- |
//! | fresh | accepted, nothing received yet | `header_read_timeout` after the accept |
//! | head | part of a request head received | `header_read_timeout` after the accept (first request) or the first byte (later ones) |
//! | busy | a request is in progress (head parsed, answer not yet written) | never by this layer (`--request-timeout` bounds the handler) |
//! | idle | keep-alive, between requests | `idle_timeout` after the last answer |
//! | closing | answered, discarding the rest of an unread request body | its own bound (below) |
//!
//! hyper's own `header_read_timeout` is not used: since hyper 1.6 its timer
//! starts as soon as a connection waits for a request, so on a keep-alive
//! connection it counts the idle time between requests too and would close idle
//! connections at the header timeout, not the idle one; and it arms a timer for
//! every request. One sweeper task checks every slot a few times per timeout
//! instead, and a request costs a few atomic stores.
//!
//! At the cap (`max_connections`), a new connection makes room by closing the
//! oldest connection that has no request in progress (fresh, head, idle or
//! closing), as nginx reuses connections when it runs out: connections that
//! never finish their headers cannot keep everyone else out. Only when every
//! connection has a request in progress does accepting wait for one to end.
//! Accept errors (`EMFILE`) are logged once per burst and backed off.
//!
//! Lingering close: when an answer goes out before the request body was read to
//! its end (a body over `--max-body`, a stalled body), the answer says
//! `Connection: close`, the write side is shut, and what the client still sends
//! is read and discarded (at most `linger_bytes`, for at most `linger_time`)
//! before the socket is closed. Closing with unread data would reset the
//! connection, and a client that writes its whole body before reading (Python's
//! `http.client`) would see a broken pipe instead of its answer.
//!
//! Shutdown: accepting stops; fresh and idle connections are closed at once;
//! connections in the middle of a request head or a request finish it and are
//! then closed (`Connection: close`); [`Closer::close_all`] closes whatever is
//! left at the drain timeout.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderValue, Request, Response, header};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Connection limits and time limits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a request head may take to arrive (from the accept, or from
    /// its first byte on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Lingering close: most bytes of an unread request body discarded.
    pub linger_bytes: u64,
    /// Lingering close: longest time spent discarding them.
    pub linger_time: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            linger_bytes: 8 * 1024 * 1024,
            linger_time: Duration::from_secs(5),
        }
    }
}

/// Descriptors kept back from connections: records, policy and geo files,
/// watchers, the runtime's own.
pub const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft limit on open files to the hard limit where allowed.
/// Returns the soft limit in force afterwards, `None` where there is none.
pub fn raise_nofile_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => {
            tracing::info!(limit = soft, "open files limit");
            Some(soft)
        }
        Err(e) => {
            let soft = rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft);
            tracing::warn!(error = %e, limit = ?soft, "cannot raise the open files limit");
            soft
        }
    }
}

/// The connection cap: `requested`, kept below the descriptor limit less a
/// reserve (a quarter of the limit when that is smaller than
/// [`RESERVED_DESCRIPTORS`]). Returns the cap and whether it was lowered.
pub fn connection_cap(requested: usize, nofile: Option<u64>) -> (usize, bool) {
    let Some(limit) = nofile else {
        return (requested.max(1), false);
    };
    let reserve = RESERVED_DESCRIPTORS.min(limit / 4);
    let most = usize::try_from(limit.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(1);
    if requested > most {
        (most, true)
    } else {
        (requested.max(1), false)
    }
}

const FRESH: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
const IDLE: u8 = 3;
const CLOSING: u8 = 4;

/// One open connection, as the accept loop, the sweeper and the connection's
/// own task see it.
struct Slot {
    id: u64,
    epoch: Instant,
    state: AtomicU8,
    /// Milliseconds since `epoch` at which the state's clock started.
    since: AtomicU64,
    /// A request body was dropped before its end (set by [`TrackedRequest`]).
    unread_body: AtomicBool,
    /// Discard what the client still sends before closing.
    linger: AtomicBool,
    /// Close now.
    close: Notify,
    /// Finish the request in progress, then close.
    drain: Notify,
}

impl Slot {
    fn now(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    fn enter(&self, state: u8) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.state.store(state, Ordering::Release);
    }

    /// Bytes of a request head arrived.
    fn on_read(&self) {
        match self.state.load(Ordering::Acquire) {
            // The first request's clock runs from the accept.
            FRESH => self.state.store(HEAD, Ordering::Release),
            IDLE => self.enter(HEAD),
            _ => {}
        }
    }

    fn in_request(&self) -> bool {
        self.state.load(Ordering::Acquire) == BUSY
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The open connections, oldest first.
struct Connections {
    slots: Mutex<BTreeMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    epoch: Instant,
    /// A connection ended or was closed.
    freed: Notify,
    /// The cap was reached and has not been left since (logs once per burst).
    at_cap: AtomicBool,
}

enum Admit {
    Slot(Arc<Slot>),
    Full,
}

impl Connections {
    fn new() -> Self {
        Self {
            slots: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
            freed: Notify::new(),
            at_cap: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Registers a new connection, closing the oldest one without a request
    /// in progress if the cap is reached; `Full` if every one has a request.
    fn admit(&self, cap: usize) -> Admit {
        let mut slots = self.lock();
        if slots.len() >= cap {
            let Some(victim) = Self::oldest_evictable(&slots) else {
                return Admit::Full;
            };
            if let Some(slot) = slots.remove(&victim) {
                slot.close.notify_one();
            }
            if !self.at_cap.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    max_connections = cap,
                    "connection limit reached: closing the oldest connections that have no request in progress"
                );
            }
        } else if slots.len() + 1 < cap {
            self.at_cap.store(false, Ordering::Relaxed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            id,
            epoch: self.epoch,
            state: AtomicU8::new(FRESH),
            since: AtomicU64::new(millis(self.epoch.elapsed())),
            unread_body: AtomicBool::new(false),
            linger: AtomicBool::new(false),
            close: Notify::new(),
            drain: Notify::new(),
        });
        slots.insert(id, slot.clone());
        Admit::Slot(slot)
    }

    fn oldest_evictable(slots: &BTreeMap<u64, Arc<Slot>>) -> Option<u64> {
        slots.values().find(|s| !s.in_request()).map(|slot| slot.id)
    }

    /// Closes the oldest connection without a request in progress, if any.
    fn evict_one(&self) -> bool {
        let mut slots = self.lock();
        let Some(victim) = Self::oldest_evictable(&slots) else {
            return false;
        };
        if let Some(slot) = slots.remove(&victim) {
            slot.close.notify_one();
        }
        drop(slots);
        self.freed.notify_one();
        true
    }

    fn remove(&self, id: u64) {
        if self.lock().remove(&id).is_some() {
            self.freed.notify_one();
        }
    }

    /// Closes connections past their time limit; returns how many.
    fn expire(&self, header: Duration, idle: Duration) -> usize {
        let (header, idle) = (millis(header), millis(idle));
        let now = millis(self.epoch.elapsed());
        let mut slots = self.lock();
        let before = slots.len();
        slots.retain(|_, slot| {
            let limit = match slot.state.load(Ordering::Acquire) {
                FRESH | HEAD => header,
                IDLE => idle,
                _ => return true,
            };
            let expired = now.saturating_sub(slot.since.load(Ordering::Relaxed)) >= limit;
            if expired {
                slot.close.notify_one();
            }
            !expired
        });
        let closed = before - slots.len();
        drop(slots);
        if closed > 0 {
            self.freed.notify_one();
        }
        closed
    }

    /// Shutdown: closes connections that wait for a request, and asks those in
    /// the middle of one to close once it is answered.
    fn drain(&self) {
        let mut slots = self.lock();
        slots.retain(|_, slot| match slot.state.load(Ordering::Acquire) {
            FRESH | IDLE => {
                slot.close.notify_one();
                false
            }
            _ => {
                slot.drain.notify_one();
                true
            }
        });
        drop(slots);
        self.freed.notify_one();
    }

    fn close_all(&self) -> usize {
        let mut slots = self.lock();
        let n = slots.len();
        for slot in slots.values() {
            slot.close.notify_one();
        }
        slots.clear();
        drop(slots);
        self.freed.notify_one();
        n
    }
}

/// Closes the connections still open when the drain timeout is reached.
#[derive(Clone)]
pub struct Closer(Arc<Connections>);

impl Closer {
    /// Closes every open connection; returns how many there were.
    pub fn close_all(&self) -> usize {
        self.0.close_all()
    }
}

/// The HTTP server: see the module documentation.
pub struct Server {
    settings: Settings,
    connections: Arc<Connections>,
}

impl Server {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            connections: Arc::new(Connections::new()),
        }
    }

    pub fn closer(&self) -> Closer {
        Closer(self.connections.clone())
    }

    /// Serves `router` on `listener` until `shutdown` completes, then stops
    /// accepting and returns once every connection has ended (see the module
    /// documentation for which are closed at once).
    pub async fn serve<F>(self, listener: TcpListener, router: Router, shutdown: F)
    where
        F: Future<Output = ()> + Send,
    {
        let Self {
            settings,
            connections,
        } = self;
        let sweeper = tokio::spawn(sweep(connections.clone(), settings.clone()));
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.keep_alive(true).header_read_timeout(None);
        let linger = Linger {
            bytes: settings.linger_bytes,
            time: settings.linger_time,
        };
        tokio::pin!(shutdown);
        let mut accepting = Accepting {
            listener: &listener,
            connections: &connections,
            backoff: ACCEPT_BACKOFF_MIN,
            failing: false,
        };
        while let Some(stream) = accepting.next(shutdown.as_mut()).await {
            let room = wait_for_room(&connections, settings.max_connections, shutdown.as_mut());
            let Some(slot) = room.await else {
                break;
            };
            tokio::spawn(connection(
                stream,
                slot,
                connections.clone(),
                router.clone(),
                builder.clone(),
                linger,
            ));
        }
        drop(listener);
        connections.drain();
        all_ended(&connections).await;
        sweeper.abort();
    }
}

pub(crate) const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
pub(crate) const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The accept loop: accept errors (`EMFILE`) are logged once per burst and
/// backed off, and make room by closing a connection without a request.
struct Accepting<'a> {
    listener: &'a TcpListener,
    connections: &'a Connections,
    /// How long to wait after the next accept error.
    backoff: Duration,
    /// Accepting fails (logged once until it succeeds again).
    failing: bool,
}

impl Accepting<'_> {
    /// The next accepted connection; `None` once `shutdown` completes.
    async fn next<F: Future<Output = ()>>(
        &mut self,
        mut shutdown: Pin<&mut F>,
    ) -> Option<TcpStream> {
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return None,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _)) => {
                    if self.failing {
                        tracing::info!("accepting connections again");
                        self.failing = false;
                    }
                    self.backoff = ACCEPT_BACKOFF_MIN;
                    return Some(stream);
                }
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    if !self.failing {
                        tracing::warn!(
                            error = %e,
                            open = self.connections.len(),
                            "cannot accept connections; backing off"
                        );
                        self.failing = true;
                    }
                    // Out of descriptors: an idle connection makes room.
                    self.connections.evict_one();
                    tokio::select! {
                        () = &mut shutdown => return None,
                        () = tokio::time::sleep(self.backoff) => {}
                    }
                    self.backoff = (self.backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }
}

/// A slot for a new connection under the cap; while every connection has a
/// request in progress, waits for one to end. `None` once `shutdown` completes.
async fn wait_for_room<F: Future<Output = ()>>(
    connections: &Connections,
    cap: usize,
    mut shutdown: Pin<&mut F>,
) -> Option<Arc<Slot>> {
    loop {
        match connections.admit(cap) {
            Admit::Slot(slot) => return Some(slot),
            Admit::Full => {
                tracing::debug!("every connection has a request in progress: waiting");
                tokio::select! {
                    () = &mut shutdown => return None,
                    () = connections.freed.notified() => {}
                }
            }
        }
    }
}

/// Waits until every connection has ended.
async fn all_ended(connections: &Connections) {
    loop {
        let freed = connections.freed.notified();
        if connections.len() == 0 {
            break;
        }
        freed.await;
    }
}

/// Errors of one connection, not of the listener: accept the next.
pub(crate) fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Closes connections past their time limit, a few times per limit.
async fn sweep(connections: Arc<Connections>, settings: Settings) {
    let period = (settings.header_read_timeout.min(settings.idle_timeout) / 4)
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let closed = connections.expire(settings.header_read_timeout, settings.idle_timeout);
        if closed > 0 {
            tracing::debug!(
                closed,
                "closed connections past their header or idle timeout"
            );
        }
    }
}

async fn connection(
    stream: TcpStream,
    slot: Arc<Slot>,
    connections: Arc<Connections>,
    router: Router,
    builder: hyper::server::conn::http1::Builder,
    linger: Linger,
) {
    let io = TokioIo::new(Io {
        stream,
        slot: slot.clone(),
        linger,
        lingering: None,
    });
    let service = Service {
        router,
        slot: slot.clone(),
    };
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let close = slot.close.notified();
    let drain = slot.drain.notified();
    tokio::pin!(close, drain);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = &mut close => break,
            () = &mut drain, if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    connections.remove(slot.id);
}

/// Wraps the router: marks the connection busy while a request is in
/// progress, and asks for a lingering close when the request body was not
/// read to its end.
#[derive(Clone)]
struct Service {
    router: Router,
    slot: Arc<Slot>,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<TrackedResponse>;
    type Error = Infallible;
    type Future = Respond;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.slot.enter(BUSY);
        let slot = self.slot.clone();
        let request = request.map(|body| TrackedRequest {
            inner: body,
            slot: slot.clone(),
            ended: false,
        });
        let mut router = self.router.clone();
        Respond {
            inner: tower::Service::call(&mut router, request),
            slot: Some(slot),
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's answer, marked for a lingering close when needed.
    struct Respond {
        #[pin]
        inner: axum::routing::future::RouteFuture<Infallible>,
        slot: Option<Arc<Slot>>,
    }
}

impl Future for Respond {
    type Output = Result<Response<TrackedResponse>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        let Some(slot) = this.slot.take() else {
            return Poll::Pending;
        };
        if slot.unread_body.swap(false, Ordering::AcqRel) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            slot.linger.store(true, Ordering::Release);
        }
        Poll::Ready(Ok(
            response.map(|body| TrackedResponse { inner: body, slot })
        ))
    }
}

/// A request body that tells its connection when it is dropped unread.
struct TrackedRequest {
    inner: Incoming,
    slot: Arc<Slot>,
    ended: bool,
}

impl HttpBody for TrackedRequest {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() {
            self.ended = true;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedRequest {
    fn drop(&mut self) {
        if !self.ended && !self.inner.is_end_stream() {
            self.slot.unread_body.store(true, Ordering::Release);
        }
    }
}

/// An answer whose end makes its connection idle.
struct TrackedResponse {
    inner: axum::body::Body,
    slot: Arc<Slot>,
}

impl HttpBody for TrackedResponse {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedResponse {
    fn drop(&mut self) {
        self.slot.enter(IDLE);
    }
}

#[derive(Debug, Clone, Copy)]
struct Linger {
    bytes: u64,
    time: Duration,
}

/// The socket of one connection: reads mark the start of a request head, and
/// shutting down lingers when asked to.
struct Io {
    stream: TcpStream,
    slot: Arc<Slot>,
    linger: Linger,
    lingering: Option<Lingering>,
}

struct Lingering {
    left: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl AsyncRead for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.slot.on_read();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// Shuts the write side; when the request body was left unread, reads and
    /// discards what the client still sends first (bounded in bytes and time),
    /// so that closing does not reset the connection under the answer.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if !this.slot.linger.load(Ordering::Acquire) {
            return Pin::new(&mut this.stream).poll_shutdown(cx);
        }
        if this.lingering.is_none() {
            ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
            this.slot.enter(CLOSING);
            this.lingering = Some(Lingering {
                left: this.linger.bytes,
                deadline: Box::pin(tokio::time::sleep(this.linger.time)),
            });
        }
        let Some(lingering) = this.lingering.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let mut scratch = [0u8; 16 * 1024];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    let n = u64::try_from(buf.filled().len()).unwrap_or(u64::MAX);
                    lingering.left = lingering.left.saturating_sub(n);
                    if lingering.left == 0 {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    return match lingering.deadline.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(Ok(())),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(connection_cap(10_000, None), (10_000, false));
        assert_eq!(connection_cap(10_000, Some(1_048_576)), (10_000, false));
        assert_eq!(connection_cap(10_000, Some(1024)), (768, true));
        assert_eq!(connection_cap(10_000, Some(20_000)), (10_000, false));
        assert_eq!(connection_cap(20_000, Some(20_000)), (19_744, true));
        assert_eq!(connection_cap(10, Some(8)), (6, true));
        assert_eq!(connection_cap(0, Some(8)), (1, false));
    }

    #[test]
    fn at_the_cap_the_oldest_connection_without_a_request_makes_room() {
        let c = Connections::new();
        let Admit::Slot(first) = c.admit(2) else {
            panic!("room for the first")
        };
        let Admit::Slot(second) = c.admit(2) else {
            panic!("room for the second")
        };
        first.enter(BUSY);
        let Admit::Slot(_third) = c.admit(2) else {
            panic!("the idle second makes room")
        };
        let ids: Vec<u64> = c.lock().keys().copied().collect();
        assert_eq!(ids, [first.id, 2], "the second was closed");
        assert!(!c.lock().contains_key(&second.id));
        c.lock()
            .values()
            .for_each(|s| s.state.store(BUSY, Ordering::Release));
        assert!(matches!(c.admit(2), Admit::Full), "every one is busy");
    }
}
