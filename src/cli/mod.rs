//! The command line: one module per command, each with its arguments and a
//! `run` that returns the exit code. Defaults come from the types they
//! configure, so each is defined once. The API and the command line are
//! described in `docs/api.md`.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod args;
mod bench;
mod bundle;
mod check;
mod designations;
pub mod diagnostics;
pub mod exit;
mod explain;
mod fmt;
mod impact;
mod prove;
mod records;
mod schema;
mod screen;
mod serve;
mod synth;
mod test;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Special-measures policy decision service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "PORTCULLIS_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve decisions over HTTP.
    Serve(Box<serve::ServeArgs>),
    /// Parse and validate a policy directory (policies and designations).
    Check(check::CheckArgs),
    /// Run the policy test cases of a policy directory (`tests/*.json`).
    Test(test::TestArgs),
    /// Explain the decision on one request: the facts, what happened to each
    /// policy, and how the answer was reached.
    Explain(explain::ExplainArgs),
    /// Format Cedar policy files with Cedar's own formatter.
    Fmt(fmt::FmtArgs),
    /// Decide a file of requests on two policy directories (the one in force
    /// and a candidate) and say whose answers change.
    Impact(Box<impact::ImpactArgs>),
    /// Prove properties of policies for every request with Cedar's symbolic
    /// compiler and the cvc5 solver: what a change allows that was not, and
    /// the reverse (`--base`, `--candidate`); the invariants of a directory;
    /// which policies can err.
    Prove(Box<prove::ProveArgs>),
    /// Print the built-in Cedar schema.
    Schema,
    /// Print the HTTP API as an OpenAPI 3.1 document (as `GET /v1/openapi.json`).
    Openapi,
    /// Open-loop load test of a running service.
    Bench(bench::BenchArgs),
    /// Write a synthetic policy directory for benchmarks and capacity tests.
    Synth(synth::SynthArgs),
    /// Screen one name against the designations: the closest designated
    /// names, with how each was scored.
    Screen(screen::ScreenArgs),
    /// Work with designations files.
    #[command(subcommand)]
    Designations(designations::DesignationsCommand),
    /// Check or search decision records.
    #[command(subcommand)]
    Records(records::RecordsCommand),
    /// Build, sign, verify, push and pull snapshot bundles (a fleet's
    /// policies, designations and geo databases, through an OCI registry).
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
}

/// Parses the command line and runs it, on a thread whose stack is the one
/// every decision gets (`DECISION_STACK`), so that `check` and `test` evaluate
/// exactly as `serve` does.
pub fn main() -> ExitCode {
    let spawned = std::thread::Builder::new()
        .name("main".into())
        .stack_size(portcullis_core::policies::limits::DECISION_STACK)
        .spawn(run);
    match spawned.map(std::thread::JoinHandle::join) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => ExitCode::from(exit::ERROR),
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            ExitCode::from(exit::ERROR)
        }
    }
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Check(args) => check::run(args),
        Command::Test(args) => test::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Impact(args) => impact::run(*args),
        Command::Prove(args) => prove::run(*args),
        Command::Schema => schema::run(),
        Command::Openapi => schema::openapi(),
        Command::Bench(args) => bench::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Screen(args) => screen::run(args),
        Command::Designations(command) => designations::run(command),
        Command::Records(command) => records::run(command),
        Command::Bundle(command) => bundle::run(command),
    };
    ExitCode::from(result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        exit::ERROR
    }))
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
