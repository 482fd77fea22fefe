//! A second floor for the HTTP benchmarks: [`bare_axum`](bare_axum.rs) plus
//! Cedar's `Authorizer::is_authorized` on a request built once at start-up,
//! with the shipped policies. No enrichment, no screening, no record: what any
//! Cedar-based decision point costs over HTTP at the least.
//!
//! `cargo run --release --example bare_cedar_axum -- 127.0.0.1:8792`

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use portcullis_core::cedar_input::{self, CedarNames};
use portcullis_core::enrich::enrich;
use portcullis_core::snapshot::{Snapshot, Sources};

const REQUEST: &str = r#"{"request_id":"req-1","action":"provision","customer":{"id":"cust-123","kind":"organization","name":"Example Trading LLC","address":{"country":"AE"},"beneficial_owners":[{"name":"Ivan Petrov","nationalities":["RU"]}]},"source_ips":["8.8.8.8"],"resource":{"kind":"gpu_cluster","region":"us-east-1","gpu_count":512}}"#;

struct Floor {
    authorizer: cedar_policy::Authorizer,
    request: cedar_policy::Request,
    entities: cedar_policy::Entities,
    policies: cedar_policy::PolicySet,
}

async fn decide(State(floor): State<Arc<Floor>>, body: Bytes) -> (StatusCode, &'static str) {
    match portcullis_core::request::parse_decide(&body) {
        Ok(_) => {
            let answer =
                floor
                    .authorizer
                    .is_authorized(&floor.request, &floor.policies, &floor.entities);
            if answer.decision() == cedar_policy::Decision::Allow {
                (
                    StatusCode::OK,
                    r#"{"decision":"allow","reasons":[],"conditions":[],"obligations":[],"errors":[]}"#,
                )
            } else {
                (
                    StatusCode::OK,
                    r#"{"decision":"deny","reasons":[],"conditions":[],"obligations":[],"errors":[]}"#,
                )
            }
        }
        Err(_) => (StatusCode::BAD_REQUEST, r#"{"error":{}}"#),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8792".into());
    let snapshot = Snapshot::build(Sources::new(
        PathBuf::from("policies"),
        vec![PathBuf::from("geo-data/geo-whois-asn-country.mmdb")],
    ))
    .map_err(|e| format!("cannot load policies/ and geo-data/: {:?}", e.diagnostics))?;
    let req = portcullis_core::request::parse_decide(REQUEST.as_bytes())?;
    let facts = enrich(
        &req,
        &snapshot.geo,
        &snapshot.designations,
        snapshot.sources.settings,
    );
    let (request, entities) = cedar_input::build(&CedarNames::new()?, &req, &facts, true)?;
    let floor = Arc::new(Floor {
        authorizer: cedar_policy::Authorizer::new(),
        request: request.into(),
        entities: entities.into(),
        policies: snapshot.policies.source.clone(),
    });
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare axum handler with Cedar on {addr}");
    let app = Router::new()
        .route("/v1/decide", post(decide))
        .with_state(floor);
    axum::serve(listener, app).await?;
    Ok(())
}
