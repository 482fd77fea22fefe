//! Portcullis: a special-measures policy decision service for IaaS providers.
//!
//! A request is validated (`request`), enriched with geolocation and screening
//! (`enrich`), evaluated against Cedar policies (`cedar_input`, `decision`) on one
//! immutable `snapshot`, and answered allow, deny or conditional.

pub mod audit; // decision records: pseudonymised, hash-chained JSON Lines; verify, query
pub mod body; // the request body of the decision endpoints: size limit, early 413
pub mod budget; // how much work one request may cost: deadlines checked between names
pub mod cases; // policy test cases (policies/tests/*.json)
pub mod cedar_input; // the built-in schema; builds Cedar input from an enriched request
pub mod cli; // command line: serve, check, schema
pub mod country; // ISO 3166-1 alpha-2 codes
pub mod country_names; // country names (as lists write them) to codes
pub mod deadline; // the request time limit, armed only when a request waits
pub mod decision; // Cedar's answer -> allow / deny / conditional
pub mod designation; // designated persons: file format and loader
pub mod diagnostic; // located problems in input files
pub mod engine; // decide(snapshot, request) -> decision
pub mod enrich; // request -> facts (countries, anonymizers, screening)
pub mod files; // reading input files: symbolic links followed, only once stable
pub mod geo; // MMDB geolocation
pub mod http; // axum router, handlers, errors
pub mod import; // OFAC and UN lists to the designations format
pub mod loadgen; // `portcullis bench`: open-loop load generator
pub mod metrics; // Prometheus metrics
pub mod names; // name normalisation and similarity for screening
pub mod policies; // Cedar policy loading and validation
pub mod reload; // service state and all-or-nothing reloads
pub mod request; // wire types and validation
pub mod screening; // designated-person screening index
pub mod server; // HTTP/1.1 connections: accept loop, time limits, connection cap, lingering close
pub mod slicing; // guards: skip policies that cannot apply
pub mod snapshot; // the immutable unit of policies, designations and geo data
pub mod synth; // synthetic policy directories for benchmarks
