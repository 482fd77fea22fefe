//! The HTTP service around the engine.

pub mod bundle; // serve --bundle: pull, check and swap signed bundles from an OCI registry
pub mod connections; // HTTP/1.1 connections: accept loop, time limits, connection cap, lingering close
pub mod deadline; // the request time limit, armed only when a request waits
pub mod grpc; // serve --grpc-listen: portcullis.v1.Decisions, reflection, health
pub mod http; // axum router, handlers, errors
pub mod measures; // logs measures starting and ending while serving
pub mod metrics; // Prometheus metrics
pub mod reload; // all-or-nothing reloads: coalesced builds, outcomes, the list shrink guard
pub mod run;
pub mod shadow; // serve --shadow: live requests decided again on a candidate, compared
pub mod state; // the state of a running service: snapshot in force, metrics, limits, records
pub mod watch; // reloads on file changes (debounced; ConfigMap `..data` swaps) // running the service: runtime, listen, signals (SIGHUP reload), drain
