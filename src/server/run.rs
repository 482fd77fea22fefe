//! Running the service: the runtime, listening, reload triggers (file watch,
//! SIGHUP), and a graceful stop on SIGTERM or Ctrl-C that drains requests in
//! progress and then the records queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::policies::limits::DECISION_STACK;

use crate::server::connections::{Server, Settings};
use crate::server::reload::ReloadRequest;
use crate::server::state::AppState;

/// How the service listens and stops.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Address to serve gRPC on, if any.
    pub grpc_listen: Option<SocketAddr>,
    /// Connection limits and time limits.
    pub connections: Settings,
    /// On shutdown, how long requests in progress may take to finish.
    pub drain: Duration,
    /// Reload on file changes once they settle for this long; `None`: no watch.
    pub watch: Option<Duration>,
}

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot watch the policy directory and geo databases: {0}")]
    Watch(notify::Error),
    #[error("cannot listen on {address}: {cause}")]
    Listen {
        address: SocketAddr,
        // In the message, not a `source`: errors print chained (`{:#}`).
        cause: std::io::Error,
    },
    #[error(transparent)]
    Grpc(#[from] crate::server::grpc::GrpcError),
    #[error("the server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The runtime `serve` decides on: every worker and blocking thread has the
/// stack that policies within the limits are proven to evaluate on.
pub fn runtime() -> Result<tokio::runtime::Runtime, ServeError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(DECISION_STACK)
        .build()
        .map_err(ServeError::Runtime)
}

/// Serves `state` until SIGTERM or SIGINT, then drains: requests in progress
/// get `options.drain` to finish (then their connections are closed), and the
/// records queue is written out within the same time.
pub async fn run(state: Arc<AppState>, options: Options) -> Result<(), ServeError> {
    // Signal handlers are installed before the service announces itself, so a
    // signal sent as soon as it listens is never met by the default action.
    let signals = Signals::install().map_err(ServeError::Signals)?;
    let _watcher = match options.watch {
        Some(debounce) => {
            Some(crate::server::watch::watch(state.clone(), debounce).map_err(ServeError::Watch)?)
        }
        None => None,
    };
    let _shadow_watcher = match (options.watch, &state.shadow) {
        (Some(debounce), Some(shadow)) => {
            let dir = shadow.sources().policies.clone();
            let state = state.clone();
            let watcher =
                crate::server::watch::watch_sources(shadow.sources(), debounce, move || {
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Some(shadow) = &state.shadow {
                            shadow.reload("watch").await;
                        }
                    });
                });
            // The shadow never stops the live service: without a watcher it
            // is reloaded by SIGHUP only.
            watcher
                .inspect_err(|e| {
                    tracing::error!(error = %e, dir = %dir.display(), "cannot watch the shadow candidate; SIGHUP reloads it");
                })
                .ok()
        }
        _ => None,
    };
    let listen_error = |cause| ServeError::Listen {
        address: options.listen,
        cause,
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    let grpc_listener = match options.grpc_listen {
        Some(address) => Some(crate::server::grpc::bind(address).await?),
        None => None,
    };
    let settings = options.connections;
    tracing::info!(
        max_connections = settings.max_connections,
        header_read_timeout = ?settings.header_read_timeout,
        idle_timeout = ?settings.idle_timeout,
        "connection limits"
    );
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let grpc_limits = crate::server::grpc::incoming::ConnectionLimits {
        max_connections: settings.max_connections,
        preface_timeout: settings.header_read_timeout,
        tcp_keepalive: crate::server::grpc::KEEPALIVE,
    };
    let server = Server::new(settings);
    let closer = server.closer();
    let router = crate::server::http::router(state.clone());
    let server = tokio::spawn(server.serve(listener, router, async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }));
    let grpc_address = grpc_listener
        .as_ref()
        .map_or_else(|| "off".to_owned(), |l| l.local.to_string());
    tracing::info!(address = %local, grpc = %grpc_address, "listening");
    let grpc = grpc_listener.map(|listener| {
        let mut rx = tx.subscribe();
        tokio::spawn(crate::server::grpc::serve(
            state.clone(),
            listener,
            grpc_limits,
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            },
        ))
    });
    let measures = tokio::spawn(crate::server::measures::log_transitions(state.clone()));
    let bundle = tokio::spawn(crate::server::bundle::supervise(state.clone()));
    signals.run(state.clone()).await;
    measures.abort();
    bundle.abort();
    let drain = options.drain;
    tracing::info!(drain = ?drain, "shutting down: draining in-flight requests");
    let _ = tx.send(true);
    // gRPC calls in progress finish within the request time limit; what is
    // still open after it is a stream that never ends (a health `Watch`), and
    // is cut rather than allowed to hold the drain.
    let grpc_grace = state.limits.request_timeout.min(drain);
    let drained = async {
        let http = server.await;
        if let Some(mut grpc) = grpc {
            // A gRPC failure was logged where it happened; the drain goes on.
            if tokio::time::timeout(grpc_grace, &mut grpc).await.is_err() {
                tracing::info!("closing gRPC streams still open (health watches)");
                grpc.abort();
            }
        }
        http
    };
    match tokio::time::timeout(drain, drained).await {
        Ok(joined) => joined?,
        Err(_) => {
            let open = closer.close_all();
            tracing::warn!(open, "drain timeout reached; closing remaining connections");
        }
    }
    if let Some(recorder) = &state.recorder {
        recorder.close(drain).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT stop the service; SIGHUP reloads the snapshot (and the
/// shadow candidate).
#[cfg(unix)]
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Serves reloads on SIGHUP; returns on the first SIGTERM or SIGINT.
    async fn run(mut self, state: Arc<AppState>) {
        loop {
            tokio::select! {
                _ = self.terminate.recv() => return,
                _ = self.interrupt.recv() => return,
                _ = self.hangup.recv() => {
                    // Never forced: a shrinking list needs the admin endpoint.
                    state.request_reload(ReloadRequest {
                        trigger: "sighup",
                        force: false,
                    });
                    if state.shadow.is_some() {
                        let state = state.clone();
                        tokio::spawn(async move {
                            if let Some(shadow) = &state.shadow {
                                shadow.reload("sighup").await;
                            }
                        });
                    }
                }
            }
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn run(self, _state: Arc<AppState>) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
