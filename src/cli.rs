//! The command line (contract §5): `serve`, `check`, `test`, `schema`, `bench`,
//! `synth`, `designations import`.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::diagnostic::Diagnostic;
use crate::enrich::EnrichSettings;
use crate::metrics::Metrics;
use crate::reload::{AppState, Limits};
use crate::snapshot::{BuildError, Snapshot, Sources};

/// Exit codes, distinct per kind of failure (clap itself exits 2 on bad usage).
pub mod exit {
    pub const OK: u8 = 0;
    /// An operational error: I/O, a port in use, a runtime failure.
    pub const ERROR: u8 = 1;
    /// Policies, designations or geo databases are invalid.
    pub const INVALID: u8 = 3;
    /// Policy test cases failed.
    pub const TESTS_FAILED: u8 = 4;
    /// `records verify`: a record or file was edited, reordered, removed or inserted.
    pub const RECORDS_BROKEN: u8 = 5;
    /// `records verify`: intact but for a torn final record (a crash mid-write).
    pub const RECORDS_TORN: u8 = 6;
}

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Special-measures policy decision service"
)]
pub struct Cli {
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
    Serve(ServeArgs),
    /// Parse and validate a policy directory (policies and designations).
    Check(CheckArgs),
    /// Run the policy test cases of a policy directory (`tests/*.json`).
    Test(CheckArgs),
    /// Print the built-in Cedar schema.
    Schema,
    /// Open-loop load test of a running service.
    Bench(BenchArgs),
    /// Write a synthetic policy directory for benchmarks and capacity tests.
    Synth(SynthArgs),
    /// Work with designations files.
    #[command(subcommand)]
    Designations(DesignationsCommand),
    /// Check or search decision records.
    #[command(subcommand)]
    Records(RecordsCommand),
}

#[derive(Debug, Subcommand)]
enum RecordsCommand {
    /// Check the hash chain of every record file; exit 5 if anything was edited,
    /// reordered, removed or inserted, 6 if only the final record is torn.
    Verify {
        /// Records directory.
        dir: PathBuf,
    },
    /// Print the decision records that match, as JSON Lines.
    Query(QueryArgs),
}

#[derive(Debug, Args)]
struct QueryArgs {
    /// Records directory.
    dir: PathBuf,
    /// Records of this customer (hashed with the key, or in clear).
    #[arg(long)]
    customer_id: Option<String>,
    /// The key that hashed the records. Default: the key file beside DIR (`DIR.key`).
    #[arg(long, env = "PORTCULLIS_RECORDS_KEY_FILE")]
    key_file: Option<PathBuf>,
    /// Records at or after this time (RFC 3339, e.g. `2026-01-31T00:00:00Z`).
    #[arg(long, value_parser = parse_rfc3339)]
    from: Option<std::time::SystemTime>,
    /// Records at or before this time (RFC 3339).
    #[arg(long, value_parser = parse_rfc3339)]
    to: Option<std::time::SystemTime>,
    /// Only this outcome.
    #[arg(long, value_enum)]
    decision: Option<OutcomeArg>,
    /// Only decisions with this measure among their reasons, conditions or obligations.
    #[arg(long)]
    measure: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutcomeArg {
    Allow,
    Deny,
    Conditional,
}

fn parse_rfc3339(s: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("`{s}`: {e}; expected RFC 3339 such as 2026-01-31T00:00:00Z"))
}

/// `--records DIR` or `--records off`.
#[derive(Debug, Clone)]
enum RecordsDir {
    Off,
    Dir(PathBuf),
}

fn parse_records_dir(s: &str) -> Result<RecordsDir, String> {
    match s {
        "" => Err("expected a directory or `off`".into()),
        "off" => Ok(RecordsDir::Off),
        dir => Ok(RecordsDir::Dir(PathBuf::from(dir))),
    }
}

#[derive(Debug, Args)]
struct RecordsArgs {
    /// Directory of decision records (JSON Lines), or `off` to record nothing.
    #[arg(long = "records", value_name = "DIR|off", default_value = "records",
          value_parser = parse_records_dir, env = "PORTCULLIS_RECORDS")]
    dir: RecordsDir,
    /// Key for pseudonymising identity fields (hex, at least 32 bytes). Default:
    /// `DIR.key` beside the records directory, created once if missing.
    #[arg(
        long = "records-key-file",
        value_name = "FILE",
        env = "PORTCULLIS_RECORDS_KEY_FILE"
    )]
    key_file: Option<PathBuf>,
    /// `always`: fsync before a decision is answered; `interval`: fsync every 100 ms.
    #[arg(long = "records-sync", value_enum, default_value_t = crate::audit::SyncMode::Interval)]
    sync: crate::audit::SyncMode,
    /// Start a new file once one holds this many bytes.
    #[arg(long = "records-max-file-bytes", default_value_t = 64 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_file_bytes: u64,
    /// Start a new file once one is this old.
    #[arg(long = "records-rotate-every", default_value = "1h", value_parser = humantime::parse_duration)]
    rotate_every: Duration,
    /// Delete whole files whose newest record is older than this many days (0 keeps everything).
    #[arg(long = "records-retain-days", default_value_t = 1095)]
    retain_days: u32,
    /// Requests whose records may wait for the writer before decisions wait too.
    #[arg(long = "records-queue", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    queue: u64,
    /// Customer id, names, aliases, owners' names, dates of birth.
    #[arg(long = "records-identity", value_enum, default_value_t = crate::audit::FieldMode::Hash)]
    identity: crate::audit::FieldMode,
    /// Email, phone and address lines.
    #[arg(long = "records-contact", value_enum, default_value_t = crate::audit::FieldMode::Hash)]
    contact: crate::audit::FieldMode,
    /// Identifier values (passport, tax id, ...).
    #[arg(long = "records-identifiers", value_enum, default_value_t = crate::audit::FieldMode::Hash)]
    identifiers: crate::audit::FieldMode,
}

impl RecordsArgs {
    fn config(self) -> Option<crate::audit::RecordsConfig> {
        let RecordsDir::Dir(dir) = self.dir else {
            return None;
        };
        let mut c = crate::audit::RecordsConfig::new(dir);
        c.writer.sync = self.sync;
        c.writer.max_file_bytes = self.max_file_bytes;
        c.writer.rotate_every = self.rotate_every;
        c.writer.retain_days = (self.retain_days > 0).then_some(self.retain_days);
        c.key_file = self.key_file;
        c.queue = usize::try_from(self.queue).unwrap_or(usize::MAX);
        c.modes = crate::audit::FieldModes {
            identity: self.identity,
            contact: self.contact,
            identifiers: self.identifiers,
        };
        Some(c)
    }
}

#[derive(Debug, Subcommand)]
enum DesignationsCommand {
    /// Turn the OFAC SDN (legacy CSV) and UN consolidated (XML) lists into a designations file.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("lists").required(true).multiple(true).args(["ofac_sdn", "un"]))]
struct ImportArgs {
    /// OFAC `sdn.csv` (legacy CSV layout).
    #[arg(long, value_name = "FILE")]
    ofac_sdn: Option<PathBuf>,
    /// OFAC `alt.csv`: aliases.
    #[arg(long, value_name = "FILE", requires = "ofac_sdn")]
    ofac_alt: Option<PathBuf>,
    /// OFAC `add.csv`: addresses.
    #[arg(long, value_name = "FILE", requires = "ofac_sdn")]
    ofac_add: Option<PathBuf>,
    /// UN Security Council consolidated list (XML).
    #[arg(long, value_name = "FILE")]
    un: Option<PathBuf>,
    /// Special measure to set on every record (none by default).
    #[arg(long, value_name = "ID")]
    measure: Option<String>,
    /// Also import weak aliases (OFAC `a.k.a.` in remarks, UN `Low` quality).
    #[arg(long)]
    weak_aliases: bool,
    /// The designations file to write (JSON Lines), replaced whole.
    #[arg(long, value_name = "FILE.jsonl")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct SynthArgs {
    /// Directory to write (`generated.cedar`, `designations/generated.jsonl`).
    dir: PathBuf,
    #[arg(long, default_value_t = 1000)]
    policies: usize,
    #[arg(long, default_value_t = 20000)]
    designations: usize,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Endpoint to load: `http://host:port[/path]` (path default `/v1/decide`).
    #[arg(long, default_value = "http://127.0.0.1:8700")]
    url: String,
    /// Offered requests per second (open loop: sent on schedule, whatever the answers).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Length of each phase (e.g. `30s`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// HTTP/1.1 connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// JSON Lines file of request bodies, sent in turn. Default: a built-in mix.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Add a second phase that calls `POST /v1/admin/reload` at this interval.
    #[arg(long, value_parser = humantime::parse_duration)]
    reload_every: Option<Duration>,
    /// Bearer token for the reload calls.
    #[arg(long, env = "PORTCULLIS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Policy directory: `*.cedar` and `designations/*.jsonl`.
    #[arg(long, default_value = "policies", env = "PORTCULLIS_POLICIES")]
    policies: PathBuf,
    /// A geo database (MMDB); repeat for several. Default: every `*.mmdb` in `./geo-data`.
    #[arg(long = "geo", value_name = "FILE")]
    geo: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8700", env = "PORTCULLIS_LISTEN")]
    listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body: usize,
    /// Most requests in one batch.
    #[arg(long, default_value_t = 1000)]
    max_batch: usize,
    /// Time limit for one HTTP request (e.g. `10s`, `500ms`); a decision not
    /// made by then stops and is answered 408.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// Most names per party (its name and aliases); beyond them, 400.
    #[arg(long, default_value_t = Limits::default().max_names,
          value_parser = positive)]
    max_names: usize,
    /// Most parties per request (the customer and its beneficial owners); beyond them, 400.
    #[arg(long, default_value_t = Limits::default().max_parties,
          value_parser = positive)]
    max_parties: usize,
    /// Most characters in one name or alias; beyond them, 400.
    #[arg(long, default_value_t = Limits::default().max_name_chars,
          value_parser = positive)]
    max_name_length: usize,
    /// Most screening matches listed in one answer, best first; more are cut
    /// and the answer says `matches_truncated` (the decision sees them all).
    #[arg(long, default_value_t = Limits::default().max_matches)]
    max_matches: usize,
    /// On shutdown, how long in-flight requests may take to finish.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// How long a request head may take to arrive (from the connection, or from
    /// its first byte on a kept-alive connection); then the connection is closed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration,
          env = "PORTCULLIS_HEADER_READ_TIMEOUT")]
    header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration,
          env = "PORTCULLIS_IDLE_TIMEOUT")]
    idle_timeout: Duration,
    /// Most connections open at once, kept below the open files limit less a
    /// reserve. At the limit, a new connection closes the oldest one that has
    /// no request in progress.
    #[arg(long, default_value_t = 10_000, env = "PORTCULLIS_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// Do not reload on file changes (SIGHUP and the admin endpoint still reload).
    #[arg(long)]
    no_watch: bool,
    /// How long file changes must settle before a reload.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    watch_debounce: Duration,
    /// Bearer token for admin endpoints; without it they are disabled.
    #[arg(long, env = "PORTCULLIS_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[command(flatten)]
    enrich: EnrichArgs,
    /// Serve a policy directory with no policy at all (every request is then
    /// denied). Without it, such a directory is refused at start and at reload.
    #[arg(long)]
    allow_empty: bool,
    /// Refuse a reload that removes more than this share of the designations in
    /// force (`10%`; `100%` turns the guard off). A refused reload is shown in
    /// `/v1/status` until `POST /v1/admin/reload?force=true` accepts it.
    #[arg(long, default_value = "10%", value_parser = parse_percent)]
    max_list_shrink: f64,
    #[command(flatten)]
    records: RecordsArgs,
}

/// `10%`, `10` or `2.5%`: a share from 0 to 100 percent.
fn parse_percent(s: &str) -> Result<f64, String> {
    let number = s.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("`{s}`: expected a percentage from 0% to 100%")),
    }
}

#[derive(Debug, Args)]
struct EnrichArgs {
    /// Minimum screening score (0-100) for a designated person to count as matched.
    #[arg(long, default_value_t = EnrichSettings::default().screening_threshold,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    screening_threshold: u8,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Policy directory to check.
    dir: PathBuf,
    /// Geo databases. Default: every `*.mmdb` in `./geo-data`, if there are any.
    #[arg(long = "geo", value_name = "FILE")]
    geo: Vec<PathBuf>,
    #[command(flatten)]
    enrich: EnrichArgs,
    /// Accept a policy directory with no policy at all (every request is then denied).
    #[arg(long)]
    allow_empty: bool,
}

/// A count of at least one (a limit of zero would refuse everything).
fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses the command line and runs it, on a thread whose stack is the one
/// every decision gets (`policies::limits::DECISION_STACK`), so that `check`
/// and `test` evaluate exactly as `serve` does.
pub fn main() -> ExitCode {
    let spawned = std::thread::Builder::new()
        .name("main".into())
        .stack_size(crate::policies::limits::DECISION_STACK)
        .spawn(run_cli);
    match spawned.map(std::thread::JoinHandle::join) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => ExitCode::from(exit::ERROR),
        Err(e) => {
            eprintln!("error: cannot start the main thread: {e}");
            ExitCode::from(exit::ERROR)
        }
    }
}

fn run_cli() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let code = match cli.command {
        Command::Schema => {
            print!("{}", crate::cedar_input::SCHEMA);
            exit::OK
        }
        Command::Check(args) => check(args),
        Command::Test(args) => test(args),
        Command::Synth(args) => {
            match crate::synth::write_dir(&args.dir, args.policies, args.designations) {
                Ok(()) => {
                    println!(
                        "wrote {} policies and {} designations to {}",
                        args.policies,
                        args.designations,
                        args.dir.display()
                    );
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: cannot write `{}`: {e}", args.dir.display());
                    exit::ERROR
                }
            }
        }
        Command::Designations(DesignationsCommand::Import(args)) => match import(args) {
            Ok(()) => exit::OK,
            Err(e @ crate::import::ImportError::Invalid(_)) => {
                eprintln!("error: {e}");
                exit::INVALID
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::ERROR
            }
        },
        Command::Records(RecordsCommand::Verify { dir }) => verify_records(&dir),
        Command::Records(RecordsCommand::Query(args)) => match query_records(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                exit::ERROR
            }
        },
        Command::Bench(args) => match bench(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                exit::ERROR
            }
        },
        Command::Serve(args) => match serve(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                exit::ERROR
            }
        },
    };
    ExitCode::from(code)
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

impl CheckArgs {
    fn sources(self) -> Sources {
        let geo = if self.geo.is_empty() {
            default_geo().unwrap_or_default()
        } else {
            self.geo
        };
        Sources {
            policies: self.dir,
            geo,
            settings: EnrichSettings {
                screening_threshold: self.enrich.screening_threshold,
            },
            allow_empty: self.allow_empty,
            settle: Duration::ZERO,
        }
    }
}

fn check(args: CheckArgs) -> u8 {
    match Snapshot::build(args.sources()) {
        Ok(s) => {
            println!(
                "ok: {} policies, {} designations, {} geo databases, {} test cases passed; revision {}",
                s.policies.len(),
                s.designations.len(),
                s.geo.databases().len(),
                s.test_cases,
                s.revision
            );
            println!(
                "{} of {} policies are decided by their guards alone; Cedar evaluates the others",
                s.policies.decided_by_guards(),
                s.policies.len()
            );
            exit::OK
        }
        Err(e) => {
            report(&e);
            exit::INVALID
        }
    }
}

fn test(args: CheckArgs) -> u8 {
    let snapshot = match Snapshot::load(args.sources()) {
        Ok(s) => s,
        Err(e) => {
            report(&e);
            return exit::INVALID;
        }
    };
    let cases = &snapshot.cases;
    let mut failed = 0;
    for c in cases {
        match crate::cases::run_one(&snapshot, &c.case) {
            Ok(_) => println!("ok    {}", c.case.name),
            Err(problems) => {
                failed += 1;
                println!("FAIL  {} ({})", c.case.name, c.file.display());
                for p in problems {
                    println!("        {p}");
                }
            }
        }
    }
    println!("{} passed, {failed} failed", cases.len() - failed);
    if failed == 0 {
        exit::OK
    } else {
        exit::TESTS_FAILED
    }
}

fn bench(args: BenchArgs) -> anyhow::Result<u8> {
    let rest = args
        .url
        .strip_prefix("http://")
        .with_context(|| format!("`{}`: only http:// URLs are supported", args.url))?;
    let (address, path) = match rest.split_once('/') {
        Some((a, p)) if !p.is_empty() => (a, format!("/{p}")),
        Some((a, _)) => (a, "/v1/decide".to_owned()),
        None => (rest, "/v1/decide".to_owned()),
    };
    let address = address.to_owned();
    let corpus = match &args.corpus {
        None => crate::loadgen::builtin_corpus(),
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read corpus `{}`", file.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| bytes::Bytes::from(l.to_owned()))
            .collect(),
    };
    let plan = crate::loadgen::Plan {
        address,
        rate: args.rate,
        duration: args.duration,
        connections: args.connections,
        corpus,
        path,
        reload_every: args.reload_every,
        admin_token: args.admin_token,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let reports = runtime.block_on(crate::loadgen::run(plan))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!("{}", crate::loadgen::render(&reports));
    }
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    Ok(if errors == 0 { exit::OK } else { exit::ERROR })
}

/// `designations import`: reads each list given, writes one file, and prints
/// a summary per list to stderr.
fn import(args: ImportArgs) -> Result<(), crate::import::ImportError> {
    use crate::import::{Options, ofac, un};
    let options = Options {
        measure: args.measure,
        weak_aliases: args.weak_aliases,
    };
    let started = std::time::Instant::now();
    let mut records = Vec::new();
    let mut summaries = Vec::new();
    if let Some(sdn) = &args.ofac_sdn {
        let files = ofac::Files {
            sdn,
            alt: args.ofac_alt.as_deref(),
            add: args.ofac_add.as_deref(),
        };
        let (list, stats) = ofac::import(files, &options)?;
        records.extend(list);
        summaries.push(stats.summary(ofac::SOURCE));
    }
    if let Some(file) = &args.un {
        let (list, stats) = un::import(file, &options)?;
        records.extend(list);
        summaries.push(stats.summary(un::SOURCE));
    }
    crate::import::write_jsonl(&args.out, &records)?;
    for summary in summaries {
        eprint!("{summary}");
    }
    eprintln!(
        "wrote {} designations to {} in {:.0?}",
        records.len(),
        args.out.display(),
        started.elapsed()
    );
    Ok(())
}

fn verify_records(dir: &Path) -> u8 {
    let report = match crate::audit::verify::verify_dir(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    for note in &report.notes {
        println!("note: {note}");
    }
    for p in &report.problems {
        println!("error: {p}");
    }
    let last = report.last_hash.as_deref().unwrap_or("none");
    if report.is_ok() {
        println!(
            "ok: {} file(s), {} record(s), chain intact; last hash {last}",
            report.files, report.records
        );
        exit::OK
    } else if report.only_torn() {
        println!(
            "torn final record: {} file(s), {} complete record(s) intact; the last record was cut short by a crash",
            report.files, report.records
        );
        exit::RECORDS_TORN
    } else {
        println!(
            "broken: {} problem(s) in {} file(s), {} record(s)",
            report.problems.len(),
            report.files,
            report.records
        );
        exit::RECORDS_BROKEN
    }
}

fn query_records(args: QueryArgs) -> anyhow::Result<u8> {
    use crate::audit::query::{Filter, query};
    let mut filter = Filter {
        from: args.from,
        to: args.to,
        decision: args.decision.map(|d| match d {
            OutcomeArg::Allow => crate::decision::Outcome::Allow,
            OutcomeArg::Deny => crate::decision::Outcome::Deny,
            OutcomeArg::Conditional => crate::decision::Outcome::Conditional,
        }),
        measure: args.measure,
        ..Filter::default()
    };
    if let Some(id) = args.customer_id {
        let default = crate::audit::default_key_path(&args.dir);
        let key_file = match args.key_file {
            Some(f) => Some(f),
            None if default.exists() => Some(default.clone()),
            None => None,
        };
        match key_file {
            Some(f) => {
                let key = crate::audit::Key::load(&f)?;
                let p = crate::audit::Pseudonymiser::new(
                    Some(key),
                    crate::audit::FieldModes::default(),
                );
                filter
                    .customer_ids
                    .extend(p.hash(crate::audit::pseudo::FieldKind::CustomerId, &id));
            }
            None => eprintln!(
                "warning: no key file (--key-file, or `{}`): only records with customer ids in clear can match",
                default.display()
            ),
        }
        filter.customer_ids.push(id);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let stats = query(&args.dir, &filter, &mut out)?;
    if stats.unreadable > 0 {
        eprintln!(
            "warning: {} line(s) could not be read (run `portcullis records verify`)",
            stats.unreadable
        );
    }
    Ok(exit::OK)
}

/// Prints every diagnostic as `file:line:col: message`, with the line and a caret.
fn report(e: &BuildError) {
    for d in &e.diagnostics {
        eprintln!("error: {d}");
        if let Some(snippet) = snippet(d) {
            eprintln!("{snippet}");
        }
    }
    eprintln!("{} problem(s) found", e.diagnostics.len());
}

fn snippet(d: &Diagnostic) -> Option<String> {
    if d.line == 0 || d.file.extension().is_none_or(|e| e == "mmdb") {
        return None;
    }
    let text = std::fs::read_to_string(&d.file).ok()?;
    let line = text.lines().nth(d.line - 1)?;
    let caret = " ".repeat(d.column.saturating_sub(1));
    Some(format!("  {:>4} | {line}\n       | {caret}^", d.line))
}

/// Every `*.mmdb` in `./geo-data`, the default when no `--geo` is given.
fn default_geo() -> anyhow::Result<Vec<PathBuf>> {
    let dir = Path::new("geo-data");
    let files = crate::snapshot::list_files(dir, "mmdb").map_err(|d| {
        anyhow::anyhow!(
            "no geo database given and cannot read `{}`: {d}",
            dir.display()
        )
    })?;
    anyhow::ensure!(
        !files.is_empty(),
        "no geo database given and none in `{}`: pass --geo FILE",
        dir.display()
    );
    Ok(files)
}

/// The runtime `serve` decides on: every worker and blocking thread has the
/// stack that policies within the limits are proven to evaluate on.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::policies::limits::DECISION_STACK)
        .build()
        .context("cannot start the async runtime")
}

fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    let geo = if args.geo.is_empty() {
        default_geo()?
    } else {
        args.geo
    };
    let sources = Sources {
        policies: args.policies,
        geo,
        settings: EnrichSettings {
            screening_threshold: args.enrich.screening_threshold,
        },
        allow_empty: args.allow_empty,
        settle: args.watch_debounce,
    };
    let snapshot = match Snapshot::build(sources) {
        Ok(s) => s,
        Err(e) => {
            report(&e);
            eprintln!("refusing to start: the snapshot is invalid");
            return Ok(exit::INVALID);
        }
    };
    tracing::info!(
        revision = %snapshot.revision,
        policies = snapshot.policies.len(),
        designations = snapshot.designations.len(),
        geo = snapshot.geo.databases().len(),
        "snapshot loaded"
    );
    let nofile = crate::server::raise_nofile_limit();
    let requested = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    let (max_connections, lowered) = crate::server::connection_cap(requested, nofile);
    if lowered {
        tracing::warn!(
            requested,
            max_connections,
            open_files_limit = nofile,
            "--max-connections lowered to stay below the open files limit"
        );
    }
    let server = crate::server::Settings {
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        max_connections,
        // Lingering close: enough for a client that writes a body of several
        // times the limit before it reads the 413.
        linger_bytes: u64::try_from(args.max_body)
            .unwrap_or(u64::MAX)
            .saturating_mul(8),
        ..crate::server::Settings::default()
    };
    let limits = Limits {
        max_body: args.max_body,
        max_batch: args.max_batch,
        request_timeout: args.request_timeout,
        max_names: args.max_names,
        max_parties: args.max_parties,
        max_name_chars: args.max_name_length,
        max_matches: args.max_matches,
    };
    if args.admin_token.is_none() {
        tracing::info!("no admin token configured: admin endpoints are disabled");
    }
    let metrics = Metrics::new()?;
    let recorder = match args.records.config() {
        Some(config) => {
            let dir = config.writer.dir.clone();
            Some(
                crate::audit::Recorder::start(config, &metrics).with_context(|| {
                    format!(
                        "cannot record decisions in `{}` (`--records off` disables recording)",
                        dir.display()
                    )
                })?,
            )
        }
        None => {
            tracing::warn!("decision records are off (--records off)");
            None
        }
    };
    let mut state = AppState::new(snapshot, metrics, limits, args.admin_token)
        .with_max_list_shrink(args.max_list_shrink / 100.0);
    if let Some(recorder) = recorder {
        state = state.with_recorder(recorder);
    }
    let state = Arc::new(state);
    let runtime = runtime()?;
    let watch = (!args.no_watch).then_some(args.watch_debounce);
    runtime.block_on(run(state, args.listen, server, args.drain_timeout, watch))?;
    // Work still running on the blocking pool stops at its own deadline; the
    // process does not wait for it after the drain.
    runtime.shutdown_background();
    Ok(exit::OK)
}

async fn run(
    state: Arc<AppState>,
    listen: SocketAddr,
    settings: crate::server::Settings,
    drain: Duration,
    watch: Option<Duration>,
) -> anyhow::Result<()> {
    // Signal handlers are installed before the service announces itself, so a
    // signal sent as soon as it listens is never met by the default action.
    let signals = Signals::install().context("cannot install signal handlers")?;
    let _watcher = match watch {
        Some(debounce) => Some(
            crate::reload::watch(state.clone(), debounce)
                .context("cannot watch the policy directory and geo databases")?,
        ),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr().context("no local address")?;

    tracing::info!(
        max_connections = settings.max_connections,
        header_read_timeout = ?settings.header_read_timeout,
        idle_timeout = ?settings.idle_timeout,
        "connection limits"
    );
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let server = crate::server::Server::new(settings);
    let closer = server.closer();
    let server =
        tokio::spawn(
            server.serve(listener, crate::http::router(state.clone()), async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }),
        );
    tracing::info!(address = %local, "listening");
    signals.run(state.clone()).await;
    tracing::info!(drain = ?drain, "shutting down: draining in-flight requests");
    let _ = tx.send(true);
    match tokio::time::timeout(drain, server).await {
        Ok(joined) => joined.context("server task failed")?,
        Err(_) => {
            let open = closer.close_all();
            tracing::warn!(open, "drain timeout reached; closing remaining connections");
        }
    }
    if let Some(recorder) = &state.recorder {
        recorder.close(drain).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT stop the service; SIGHUP reloads the snapshot.
#[cfg(unix)]
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Serves reloads on SIGHUP; returns on the first SIGTERM or SIGINT.
    async fn run(mut self, state: Arc<AppState>) {
        loop {
            tokio::select! {
                _ = self.terminate.recv() => return,
                _ = self.interrupt.recv() => return,
                _ = self.hangup.recv() => {
                    // Never forced: a shrinking list needs the admin endpoint.
                    state.request_reload(crate::reload::ReloadRequest {
                        trigger: "sighup",
                        force: false,
                    });
                }
            }
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn run(self, _state: Arc<AppState>) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
