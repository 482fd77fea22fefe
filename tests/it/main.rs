//! Integration tests: one binary, a module per topic.

mod support;

mod api;
mod binary;
mod geo;
mod semantics;
