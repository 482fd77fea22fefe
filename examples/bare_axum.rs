//! The floor for the HTTP benchmarks: an axum handler that parses the same
//! request JSON as `POST /v1/decide` (into the same types) and answers a fixed
//! decision without deciding anything.
//!
//! `cargo run --release --example bare_axum -- 127.0.0.1:8790`

#![allow(clippy::print_stdout)]

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

async fn decide(body: Bytes) -> (StatusCode, &'static str) {
    match portcullis_core::request::parse_decide(&body) {
        Ok(_) => (
            StatusCode::OK,
            r#"{"decision":"allow","reasons":[],"conditions":[],"obligations":[],"errors":[]}"#,
        ),
        Err(_) => (StatusCode::BAD_REQUEST, r#"{"error":{}}"#),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8790".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("bare axum handler on {addr}");
    axum::serve(listener, Router::new().route("/v1/decide", post(decide))).await
}
