//! Portcullis: a special-measures policy decision service for IaaS providers.
//!
//! The decision engine is the `portcullis-core` crate; decision records are
//! `portcullis-audit`, the list importers `portcullis-import`. This package is
//! the service around them: the HTTP server ([`server`]) and the command line
//! ([`cli`]), plus the load generator and synthetic policy sets that the
//! benchmarks use.

pub mod cli; // the command line: one module per command
pub mod impact; // `portcullis impact`: two snapshots over a file of requests
pub mod loadgen; // `portcullis bench`: open-loop load generator
pub mod server; // the HTTP service: state, reload, watch, router, connections, metrics
pub mod synth; // synthetic policy directories for benchmarks
