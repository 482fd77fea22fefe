//! Integration tests: one binary, a module per topic.

// Test helpers outside `#[test]` functions unwrap and index freely.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

mod api;
mod author;
mod binary;
mod bounds;
mod bundle;
mod connections;
mod fuzz;
mod geo;
mod golden;
mod grpc;
mod impact;
mod import;
mod layers;
mod layouts;
mod lifecycle;
mod limits;
mod openapi;
mod prove;
mod records;
mod reload;
mod screening_quality;
mod semantics;
mod shadow;
mod slicing;
