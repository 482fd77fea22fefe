//! `portcullis bench`: open-loop load on a running service (see `loadgen`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::args::HumanDuration;
use super::exit;
use crate::loadgen;

/// The path loaded when the URL names none.
const DEFAULT_PATH: &str = "/v1/decide";

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Endpoint to load: `http://host:port[/path]` (path default `/v1/decide`).
    /// With `--grpc`, the gRPC address (`serve --grpc-listen`); the path
    /// chooses the method (`/v1/decide/batch`: `DecideBatch`).
    #[arg(long, default_value = "http://127.0.0.1:8700")]
    url: String,
    /// Offered requests per second (open loop: sent on schedule, whatever the answers).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Length of each phase (e.g. `30s`).
    #[arg(long, default_value = "10s")]
    duration: HumanDuration,
    /// HTTP/1.1 connections (with `--grpc`, HTTP/2 channels).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// JSON Lines file of request bodies, sent in turn. Default: a built-in mix.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Add a second phase that calls `POST /v1/admin/reload` at this interval.
    #[arg(long, conflicts_with = "grpc")]
    reload_every: Option<HumanDuration>,
    /// Bearer token for the reload calls.
    #[arg(long, env = "PORTCULLIS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Call `portcullis.v1.Decisions` over gRPC with the same corpus (each
    /// JSON body sent as the message whose proto3 JSON form it is).
    #[arg(long)]
    grpc: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `http://host:port[/path]` → (`host:port`, `/path`).
fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("`{url}`: only http:// URLs are supported"))?;
    let (address, path) = match rest.split_once('/') {
        Some((a, p)) if !p.is_empty() => (a, format!("/{p}")),
        Some((a, _)) => (a, DEFAULT_PATH.to_owned()),
        None => (rest, DEFAULT_PATH.to_owned()),
    };
    Ok((address.to_owned(), path))
}

/// The request bodies to send: a file's lines, or the built-in mix.
fn corpus(file: Option<&PathBuf>) -> anyhow::Result<Vec<bytes::Bytes>> {
    Ok(match file {
        None => loadgen::builtin_corpus(),
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read corpus `{}`", file.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| bytes::Bytes::from(l.to_owned()))
            .collect(),
    })
}

pub fn run(args: BenchArgs) -> anyhow::Result<u8> {
    let (address, path) = split_url(&args.url)?;
    let plan = loadgen::Plan {
        address,
        rate: args.rate,
        duration: Duration::from(args.duration),
        connections: args.connections,
        corpus: corpus(args.corpus.as_ref())?,
        path,
        reload_every: args.reload_every.map(Duration::from),
        admin_token: args.admin_token,
        grpc: args.grpc,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let reports = runtime.block_on(loadgen::run(plan))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!("{}", loadgen::render(&reports));
    }
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    Ok(if errors == 0 { exit::OK } else { exit::ERROR })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_and_path() {
        let split = |u: &str| split_url(u).unwrap();
        assert_eq!(
            split("http://127.0.0.1:8700"),
            ("127.0.0.1:8700".into(), "/v1/decide".into())
        );
        assert_eq!(split("http://h:1/"), ("h:1".into(), "/v1/decide".into()));
        assert_eq!(
            split("http://h:1/v1/decide/batch"),
            ("h:1".into(), "/v1/decide/batch".into())
        );
        assert!(split_url("https://h:1").is_err());
    }
}
