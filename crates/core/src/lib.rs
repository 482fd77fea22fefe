//! The Portcullis decision engine, as a library.
//!
//! A [`request::DecideRequest`] (validated while decoding) is enriched with facts
//! ([`enrich`]: declared and geolocated countries, anonymizer flags, screening
//! against designated persons), evaluated against Cedar policies on one
//! immutable [`snapshot::Snapshot`], and answered allow, deny or conditional
//! ([`decision::Decision`]) by [`engine::decide`]:
//!
//! ```no_run
//! use portcullis_core::{engine, request, snapshot::{Snapshot, Sources}};
//!
//! let snapshot = Snapshot::build(Sources::new("policies", vec!["geo-data/countries.mmdb".into()]))?;
//! let req = request::parse_decide(br#"{"action": "open_account",
//!     "customer": {"id": "c-1", "name": "Ada Lovelace", "nationalities": ["GB"]}}"#)?;
//! let decision = engine::decide(&snapshot, &req);
//! println!("{}", decision.decision.as_str());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The engine does no I/O: files are read only when a snapshot is built
//! ([`snapshot::Snapshot::build`]), which also runs the policy directory's own
//! test cases ([`gate`]). No async runtime, HTTP or command-line crate is a
//! dependency: the server and the CLI are built on top of this crate.
//!
//! Layers, lowest first (a module uses only those before it):
//! `country`, `diagnostic`, `files`, `lifecycle`, `names`, `keys`, `budget` → `request` → `schema`,
//! `geo`, `designation` → `screening` → `enrich` → `cedar_input` → `decision` →
//! `slicing` → `policies` → `cases` → `snapshot` → `engine` → `gate` → `explain` → `coverage` → `impact`.

#![deny(missing_docs)]

pub mod budget;
pub mod cases;
pub mod cedar_input;
pub mod country;
pub mod coverage;
pub mod decision;
pub mod designation;
pub mod diagnostic;
pub mod engine;
pub mod enrich;
pub mod explain;
mod files;
pub mod frozen;
pub mod gate;
pub mod geo;
pub mod impact;
pub mod keys;
pub mod lifecycle;
pub mod names;
pub mod packed;
pub mod policies;
pub mod request;
mod schema;
pub mod screening;
pub mod scripts;
mod slicing;
pub mod snapshot;
pub mod typos;
