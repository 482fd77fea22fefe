//! `portcullis serve`: loads the snapshot, starts recording, and serves
//! decisions over HTTP until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use portcullis_audit::chain::ReplicaId;
use portcullis_audit::{FieldMode, FieldModes, Recorder, RecordsConfig, SyncMode};
use portcullis_core::snapshot::{Snapshot, Sources};

use super::args::{EnrichArgs, Geo, HumanDuration, Percent, geo_files, human, positive};
use super::{diagnostics, exit};
use crate::server::bundle::{Acquired, BundleSource, BundleState};
use crate::server::connections::{self, Settings};
use crate::server::metrics::Metrics;
use crate::server::run::{self as service, Options};
use crate::server::shadow::Shadow;
use crate::server::state::{AppState, DEFAULT_MAX_LIST_SHRINK, DEFAULT_UPCOMING, Limits};

/// Wait for file changes to settle this long before a reload.
const DEFAULT_WATCH_DEBOUNCE: Duration = Duration::from_millis(250);
/// On shutdown, how long requests in progress may take to finish.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Policy directory: `*.cedar` and `designations/*.jsonl`.
    #[arg(long, default_value = "policies", env = "PORTCULLIS_POLICIES")]
    policies: PathBuf,
    /// A geo database (MMDB); repeat for several. Default: every `*.mmdb` in `./geo-data`.
    #[arg(long = "geo", value_name = "FILE")]
    geo: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8700", env = "PORTCULLIS_LISTEN")]
    listen: SocketAddr,
    /// Also serve gRPC (`portcullis.v1.Decisions`, server reflection and
    /// `grpc.health.v1`) on this address; off by default.
    #[arg(long, value_name = "ADDR", env = "PORTCULLIS_GRPC_LISTEN")]
    grpc_listen: Option<SocketAddr>,
    /// Largest accepted request body, in bytes (over gRPC: the largest message).
    #[arg(long, default_value_t = Limits::default().max_body)]
    max_body: usize,
    /// Most requests in one batch.
    #[arg(long, default_value_t = Limits::default().max_batch)]
    max_batch: usize,
    /// Time limit for one HTTP request (e.g. `10s`, `500ms`); a decision not
    /// made by then stops and is answered 408.
    #[arg(long, default_value_t = human(Limits::default().request_timeout))]
    request_timeout: HumanDuration,
    /// Most names per party (its name and aliases); beyond them, 400.
    #[arg(long, default_value_t = Limits::default().max_names, value_parser = positive)]
    max_names: usize,
    /// Most parties per request (the customer and its beneficial owners); beyond them, 400.
    #[arg(long, default_value_t = Limits::default().max_parties, value_parser = positive)]
    max_parties: usize,
    /// Most characters in one name or alias; beyond them, 400.
    #[arg(long, default_value_t = Limits::default().max_name_chars, value_parser = positive)]
    max_name_length: usize,
    /// Most screening matches listed in one answer, best first; more are cut
    /// and the answer says `matches_truncated` (the decision sees them all).
    #[arg(long, default_value_t = Limits::default().max_matches)]
    max_matches: usize,
    /// On shutdown, how long in-flight requests may take to finish.
    #[arg(long, default_value_t = human(DEFAULT_DRAIN))]
    drain_timeout: HumanDuration,
    /// How long a request head may take to arrive (from the connection, or from
    /// its first byte on a kept-alive connection); then the connection is closed.
    #[arg(long, default_value_t = human(Settings::default().header_read_timeout),
          env = "PORTCULLIS_HEADER_READ_TIMEOUT")]
    header_read_timeout: HumanDuration,
    /// How long a kept-alive connection may wait for its next request.
    #[arg(long, default_value_t = human(Settings::default().idle_timeout),
          env = "PORTCULLIS_IDLE_TIMEOUT")]
    idle_timeout: HumanDuration,
    /// Most connections open at once, kept below the open files limit less a
    /// reserve. At the limit, a new connection closes the oldest one that has
    /// no request in progress.
    #[arg(long, default_value_t = Settings::default().max_connections as u64,
          env = "PORTCULLIS_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// Do not reload on file changes (SIGHUP and the admin endpoint still reload).
    #[arg(long)]
    no_watch: bool,
    /// How long file changes must settle before a reload.
    #[arg(long, default_value_t = human(DEFAULT_WATCH_DEBOUNCE))]
    watch_debounce: HumanDuration,
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
    #[arg(long, default_value_t = Percent::from_share(DEFAULT_MAX_LIST_SHRINK))]
    max_list_shrink: Percent,
    /// Prove the invariants of the policy directory (`invariants/*.cedar`)
    /// with the cvc5 solver before any snapshot goes live: at start (exit 9
    /// if one does not hold) and at every reload (refused like an invalid
    /// snapshot).
    #[arg(long)]
    prove: bool,
    /// Accept `at` in decision requests (decide as of another instant). Off by
    /// default: a control plane must not step around a measure by choosing the time.
    #[arg(long)]
    allow_as_of: bool,
    /// `/v1/status` lists the measures that start or end within this long.
    #[arg(long, default_value_t = human(DEFAULT_UPCOMING))]
    upcoming: HumanDuration,
    /// Shadow evaluation: decide every live request on this candidate policy
    /// directory too, after answering, and compare (`GET /v1/shadow`). Built,
    /// watched and reloaded like the live one; never serves.
    #[arg(long, value_name = "DIR")]
    shadow: Option<PathBuf>,
    /// Live requests waiting for the shadow candidate, at most; beyond, shadow
    /// work is dropped (and counted), never live work delayed.
    #[arg(long, default_value_t = crate::server::shadow::DEFAULT_QUEUE, value_parser = positive)]
    shadow_queue: usize,
    /// Serve from a signed bundle in an OCI registry
    /// (`oci://HOST[:PORT]/REPOSITORY:TAG`) instead of `--policies` and
    /// `--geo`: pulled, checked and polled for new versions.
    #[arg(
        long,
        value_name = "REFERENCE",
        env = "PORTCULLIS_BUNDLE",
        requires = "trust_key"
    )]
    bundle: Option<String>,
    /// A public key trusted to sign bundles; repeat for several (rotation).
    #[arg(long = "trust-key", value_name = "PUB")]
    trust_key: Vec<PathBuf>,
    /// How often the bundle's tag is read for a new version.
    #[arg(long, default_value_t = human(Duration::from_secs(10)))]
    bundle_poll: HumanDuration,
    /// Where the last good bundle is kept, so that a restart serves while the
    /// registry is down. Default: `portcullis-bundle-cache` in the working
    /// directory.
    #[arg(long, value_name = "DIR", default_value = "portcullis-bundle-cache")]
    bundle_cache: PathBuf,
    #[command(flatten)]
    registry: super::bundle::CredentialArgs,
    #[command(flatten)]
    records: RecordsArgs,
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

/// `--records-sync`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SyncArg {
    /// fsync before a decision is answered.
    Always,
    /// fsync every 100 ms.
    Interval,
}

impl From<SyncArg> for SyncMode {
    fn from(s: SyncArg) -> Self {
        match s {
            SyncArg::Always => SyncMode::Always,
            SyncArg::Interval => SyncMode::Interval,
        }
    }
}

/// `--records-identity`, `--records-contact`, `--records-identifiers`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum FieldModeArg {
    /// A keyed hash (HMAC-SHA-256) of the normalised value.
    Hash,
    /// The value as received.
    Clear,
    /// Nothing.
    Drop,
}

impl From<FieldModeArg> for FieldMode {
    fn from(m: FieldModeArg) -> Self {
        match m {
            FieldModeArg::Hash => FieldMode::Hash,
            FieldModeArg::Clear => FieldMode::Clear,
            FieldModeArg::Drop => FieldMode::Drop,
        }
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
    #[arg(long = "records-sync", value_enum, default_value_t = SyncArg::Interval)]
    sync: SyncArg,
    /// Start a new file once one holds this many bytes.
    #[arg(long = "records-max-file-bytes", default_value_t = portcullis_audit::DEFAULT_MAX_FILE_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_file_bytes: u64,
    /// Compress each closed file with zstd (`records-….jsonl.zst`, about 9×
    /// smaller), in the background; every `records` command reads both.
    #[arg(long = "records-compress", value_enum, default_value_t = CompressArg::Zstd)]
    compress: CompressArg,
    /// Start a new file once one is this old.
    #[arg(long = "records-rotate-every", default_value_t = human(portcullis_audit::DEFAULT_ROTATE_EVERY))]
    rotate_every: HumanDuration,
    /// Delete whole files whose newest record is older than this many days (0 keeps everything).
    #[arg(long = "records-retain-days", default_value_t = portcullis_audit::DEFAULT_RETAIN_DAYS)]
    retain_days: u32,
    /// What an action's record keeps of the customer: `full` (default) or
    /// `compact` (id, kind and countries; names, dates of birth, contact
    /// details, identifiers and owners left out, and the record says
    /// `"profile":"compact"`), e.g. `provision=compact`. Repeat per action.
    #[arg(long = "records-profile", value_name = "ACTION=PROFILE", value_parser = parse_profile)]
    profiles: Vec<(
        portcullis_core::request::Action,
        portcullis_audit::record::Profile,
    )>,
    /// Retention by account instead of by file age: a JSON file
    /// (`{"keep_days_after_last_activity": 730, "keep_days_without_account": 730}`).
    /// A file goes only when every record in it is past its account's keep
    /// date (the last decision about the account, or its closure, plus the
    /// period) and no legal hold (`records hold`) covers one of them.
    #[arg(
        long = "records-retention",
        value_name = "FILE",
        conflicts_with = "retain_days"
    )]
    retention: Option<PathBuf>,
    /// Requests whose records may wait for the writer before decisions wait too.
    #[arg(long = "records-queue", default_value_t = portcullis_audit::DEFAULT_QUEUE as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    queue: u64,
    /// Customer id, names, aliases, owners' names, dates of birth.
    #[arg(long = "records-identity", value_enum, default_value_t = FieldModeArg::Hash)]
    identity: FieldModeArg,
    /// Email, phone and address lines.
    #[arg(long = "records-contact", value_enum, default_value_t = FieldModeArg::Hash)]
    contact: FieldModeArg,
    /// Identifier values (passport, tax id, ...).
    #[arg(long = "records-identifiers", value_enum, default_value_t = FieldModeArg::Hash)]
    identifiers: FieldModeArg,
    /// The name of this process's chain of records: in its file names and in
    /// every record. Each replica of a fleet needs its own. Default: the host
    /// name.
    #[arg(long = "replica-id", value_name = "ID", env = "PORTCULLIS_REPLICA_ID")]
    replica_id: Option<ReplicaId>,
    /// Sign checkpoints of the chain with this Ed25519 key (`portcullis
    /// records keygen`, mode 0600): `records verify --trust-key` then detects
    /// a chain rewritten before its last checkpoint (or without any), and
    /// with a copy (`--records-checkpoint-out`) records cut from the end.
    #[arg(
        long = "records-signing-key",
        value_name = "KEY",
        env = "PORTCULLIS_RECORDS_SIGNING_KEY"
    )]
    signing_key: Option<PathBuf>,
    /// A checkpoint after this many records or this long (when records were
    /// written since), and at every rotation and shutdown.
    #[arg(long = "records-checkpoint", value_name = "N,DURATION",
          default_value = "10000,60s", value_parser = parse_checkpoint_every)]
    checkpoint_every: CheckpointEvery,
    /// Also append every checkpoint to this file (another disk, a mounted
    /// bucket), for `records verify --checkpoints`.
    #[arg(
        long = "records-checkpoint-out",
        value_name = "FILE",
        requires = "signing_key"
    )]
    checkpoint_out: Option<PathBuf>,
}

/// A private key readable by group or others is refused, as ssh refuses one.
fn refuse_open_key(path: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read the records signing key `{}`", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "permissions {:04o} for the records signing key `{}` are too open; the key must be readable by its owner only (chmod 600)",
                mode & 0o777,
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `--records-profile ACTION=full|compact`.
fn parse_profile(
    s: &str,
) -> Result<
    (
        portcullis_core::request::Action,
        portcullis_audit::record::Profile,
    ),
    String,
> {
    let (action, profile) = s
        .split_once('=')
        .ok_or("expected ACTION=PROFILE, e.g. provision=compact")?;
    let action = serde_json::from_value(serde_json::Value::from(action.trim())).map_err(|_| {
        format!("`{action}` is not an action: open_account, maintain_account or provision")
    })?;
    let profile = serde_json::from_value(serde_json::Value::from(profile.trim()))
        .map_err(|_| format!("`{profile}` is not a record profile: full or compact"))?;
    Ok((action, profile))
}

/// `--records-compress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CompressArg {
    Zstd,
    Off,
}

/// `--records-checkpoint N,DURATION`.
#[derive(Debug, Clone, Copy)]
struct CheckpointEvery {
    records: u64,
    every: Duration,
}

fn parse_checkpoint_every(s: &str) -> Result<CheckpointEvery, String> {
    let (n, d) = s
        .split_once(',')
        .ok_or("expected N,DURATION, e.g. 10000,60s")?;
    let records: u64 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{n}` is not a number of records above 0"))?;
    let every =
        humantime::parse_duration(d.trim()).map_err(|e| format!("`{d}` is not a duration: {e}"))?;
    if every.is_zero() {
        return Err("the duration must be above 0".into());
    }
    Ok(CheckpointEvery { records, every })
}

/// The host name, as a replica id.
fn host_replica_id() -> anyhow::Result<ReplicaId> {
    #[cfg(unix)]
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    #[cfg(not(unix))]
    let host = std::env::var("COMPUTERNAME").unwrap_or_default();
    host.parse().with_context(|| {
        format!("the host name `{host}` cannot name this replica's records: pass --replica-id")
    })
}

impl RecordsArgs {
    /// The records configuration; `None` with `--records off`.
    fn config(self) -> anyhow::Result<Option<RecordsConfig>> {
        let RecordsDir::Dir(dir) = self.dir else {
            return Ok(None);
        };
        let mut c = RecordsConfig::new(dir);
        c.writer.replica = Some(match self.replica_id {
            Some(id) => id,
            None => host_replica_id()?,
        });
        if let Some(path) = &self.signing_key {
            let pseudonymisation = self
                .key_file
                .clone()
                .unwrap_or_else(|| portcullis_audit::default_key_path(&c.writer.dir));
            if *path == pseudonymisation || super::impact::same_file(path, &pseudonymisation) {
                anyhow::bail!(
                    "the records signing key `{}` is the pseudonymisation key file: give the signing key a file of its own",
                    path.display()
                );
            }
            refuse_open_key(path)?;
            if let Some(out) = &self.checkpoint_out {
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(out)
                    .with_context(|| {
                        format!(
                            "cannot write checkpoints to `{}` (--records-checkpoint-out)",
                            out.display()
                        )
                    })?;
            }
            let key = portcullis_keys::SigningKey::read(path)
                .with_context(|| "cannot read the records signing key (--records-signing-key)")?;
            c.writer.checkpoint = Some(portcullis_audit::writer::CheckpointConfig {
                key: Arc::new(key),
                every_records: self.checkpoint_every.records,
                every: self.checkpoint_every.every,
                out: self.checkpoint_out.clone(),
            });
        }
        c.writer.sync = self.sync.into();
        c.writer.max_file_bytes = self.max_file_bytes;
        c.writer.compress = self.compress == CompressArg::Zstd;
        c.writer.rotate_every = self.rotate_every.into();
        c.writer.retain_days = (self.retain_days > 0).then_some(self.retain_days);
        for (action, profile) in &self.profiles {
            c.profiles.set(*action, *profile);
        }
        if let Some(path) = &self.retention {
            c.writer.account_retention = Some(portcullis_audit::retention::Policy::load(path)?);
            c.writer.retain_days = None;
        }
        c.key_file = self.key_file;
        c.queue = usize::try_from(self.queue).unwrap_or(usize::MAX);
        c.modes = FieldModes {
            identity: self.identity.into(),
            contact: self.contact.into(),
            identifiers: self.identifiers.into(),
        };
        Ok(Some(c))
    }
}

impl ServeArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_body: self.max_body,
            max_batch: self.max_batch,
            request_timeout: self.request_timeout.into(),
            max_names: self.max_names,
            max_parties: self.max_parties,
            max_name_chars: self.max_name_length,
            max_matches: self.max_matches,
            allow_as_of: self.allow_as_of,
        }
    }

    /// Connection limits, the cap kept below the open files limit (raised first).
    fn connections(&self) -> Settings {
        let nofile = connections::raise_nofile_limit();
        let requested = usize::try_from(self.max_connections).unwrap_or(usize::MAX);
        let (max_connections, lowered) = connections::connection_cap(requested, nofile);
        if lowered {
            tracing::warn!(
                requested,
                max_connections,
                open_files_limit = nofile,
                "--max-connections lowered to stay below the open files limit"
            );
        }
        Settings {
            header_read_timeout: self.header_read_timeout.into(),
            idle_timeout: self.idle_timeout.into(),
            max_connections,
            // Lingering close: enough for a client that writes a body of several
            // times the limit before it reads the 413.
            linger_bytes: u64::try_from(self.max_body)
                .unwrap_or(u64::MAX)
                .saturating_mul(8),
            ..Settings::default()
        }
    }
}

/// Starts the records writer, unless `--records off`.
fn start_recorder(records: RecordsArgs, metrics: &Metrics) -> anyhow::Result<Option<Recorder>> {
    let Some(config) = records.config()? else {
        tracing::warn!("decision records are off (--records off)");
        return Ok(None);
    };
    let dir = config.writer.dir.clone();
    let recorder =
        Recorder::start(config, Arc::new(metrics.records.clone())).with_context(|| {
            format!(
                "cannot record decisions in `{}` (`--records off` disables recording)",
                dir.display()
            )
        })?;
    Ok(Some(recorder))
}

pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let metrics = Metrics::new()?;
    let (snapshot, bundle) = if let Some(reference) = &args.bundle {
        match from_bundle(&args, reference, &metrics)? {
            Ok(both) => both,
            Err(code) => return Ok(code),
        }
    } else {
        let sources = Sources {
            policies: args.policies.clone(),
            geo: geo_files(&args.geo, Geo::Required)?,
            settings: args.enrich.settings(),
            allow_empty: args.allow_empty,
            settle: args.watch_debounce.into(),
            label: None,
        };
        match Snapshot::build(sources) {
            Ok(s) => (s, None),
            Err(e) => {
                diagnostics::report(&e.diagnostics);
                eprintln!("refusing to start: the snapshot is invalid");
                return Ok(exit::INVALID);
            }
        }
    };
    if args.prove {
        match portcullis_prove::gate(&snapshot) {
            Ok(n) => tracing::info!(invariants = n, "invariants proved"),
            Err(portcullis_prove::GateError::Refused(found)) => {
                diagnostics::report(&found);
                eprintln!("refusing to start: the invariants do not hold (--prove)");
                return Ok(exit::INVARIANT_VIOLATED);
            }
            Err(portcullis_prove::GateError::Prove(
                e @ portcullis_prove::ProveError::NoSolver { .. },
            )) => {
                eprintln!("refusing to start: {e}");
                return Ok(exit::NO_SOLVER);
            }
            Err(portcullis_prove::GateError::Prove(e)) => {
                eprintln!("refusing to start: the invariants could not be proved (--prove): {e}");
                return Ok(exit::INVARIANT_VIOLATED);
            }
        }
    }
    for w in snapshot.policies.warnings() {
        tracing::warn!(warning = %w, "policy warning");
    }
    tracing::info!(
        revision = %snapshot.revision,
        policies = snapshot.policies.len(),
        designations = snapshot.designations.len(),
        geo = snapshot.geo.databases().len(),
        "snapshot loaded"
    );
    let options = Options {
        listen: args.listen,
        grpc_listen: args.grpc_listen,
        connections: args.connections(),
        drain: args.drain_timeout.into(),
        // A bundle's files change only by a new bundle.
        watch: (!args.no_watch && bundle.is_none()).then_some(args.watch_debounce.into()),
    };
    if args.admin_token.is_none() {
        tracing::info!("no admin token configured: admin endpoints are disabled");
    }
    let limits = args.limits();
    let shadow = match &args.shadow {
        Some(dir) => {
            let sources = Sources {
                policies: dir.clone(),
                ..snapshot.sources.clone()
            };
            let shadow = Shadow::start(
                sources,
                &snapshot,
                args.shadow_queue,
                metrics.shadow.clone(),
            )
            .context("cannot start shadow evaluation")?;
            Some(shadow)
        }
        None => None,
    };
    let recorder = start_recorder(args.records, &metrics)?;
    let mut state = AppState::new(snapshot, metrics, limits, args.admin_token)
        .with_max_list_shrink(args.max_list_shrink.share())
        .with_prove(args.prove)
        .with_upcoming(args.upcoming.into());
    if let Some(shadow) = shadow {
        state = state.with_shadow(shadow);
    }
    if let Some(bundle) = bundle {
        state = state.with_bundle(bundle);
    }
    if let Some(recorder) = recorder {
        state = state.with_recorder(recorder);
    }
    let runtime = service::runtime()?;
    runtime.block_on(service::run(Arc::new(state), options))?;
    // Work still running on the blocking pool stops at its own deadline; the
    // process does not wait for it after the drain.
    runtime.shutdown_background();
    Ok(exit::OK)
}

/// A bundle failure at start: reason, message, artifact.
type Failure = (&'static str, String, Option<String>);

/// The first snapshot of `serve --bundle`: the tag's bundle, else the last
/// good one in the cache; `Err(exit code)` when neither builds.
fn from_bundle(
    args: &ServeArgs,
    reference: &str,
    metrics: &Metrics,
) -> anyhow::Result<Result<(Snapshot, Option<BundleState>), u8>> {
    let source = BundleSource {
        reference: reference.parse()?,
        credentials: args.registry.credentials(),
        trusted: super::bundle::read_keys(&args.trust_key)?,
        poll: args.bundle_poll.into(),
        cache: args.bundle_cache.clone(),
    };
    let base = Sources {
        settings: args.enrich.settings(),
        allow_empty: args.allow_empty,
        ..Sources::new(PathBuf::new(), Vec::new())
    };
    let mut failures: Vec<Failure> = Vec::new();
    let pulled = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let digest = source.digest().await.map_err(|e| (e, None))?;
            source.pull(&digest).await.map_err(|e| (e, Some(digest)))
        });
    let try_build = |acquired: &Acquired, failures: &mut Vec<Failure>| match Snapshot::build(
        acquired.sources(&base),
    ) {
        Ok(snapshot) => Some(snapshot),
        Err(e) => {
            diagnostics::report(&e.diagnostics);
            failures.push((
                "invalid",
                format!("bundle {} failed validation", acquired.bundle_digest),
                Some(acquired.artifact_digest.clone()),
            ));
            None
        }
    };
    let mut chosen = None;
    match pulled {
        Ok(acquired) => {
            chosen = try_build(&acquired, &mut failures).map(|s| (s, acquired));
        }
        Err((e, artifact)) => {
            failures.push((e.reason(), e.to_string(), artifact));
            tracing::warn!(reference, error = %e, "cannot take the bundle from the registry");
        }
    }
    // The registry could not give a good bundle: the last good one.
    let mut cache_error = None;
    if chosen.is_none() {
        match source.from_cache() {
            Ok(cached) => chosen = try_build(&cached, &mut failures).map(|s| (s, cached)),
            Err(e) => cache_error = Some(e),
        }
    }
    if let Some((snapshot, acquired)) = chosen {
        tracing::info!(
            reference,
            bundle = %acquired.bundle_digest,
            artifact = %acquired.artifact_digest,
            signed_by = %acquired.key_id,
            from = acquired.from,
            "bundle in force"
        );
        source.went_live(&acquired);
        let state = BundleState::new(source.clone(), &acquired, metrics.bundle.clone());
        for (reason, message, artifact) in failures {
            state.failed(reason, message, artifact);
        }
        return Ok(Ok((snapshot, Some(state))));
    }
    for (reason, message, _) in &failures {
        eprintln!("bundle refused ({reason}): {message}");
    }
    if let Some(e) = cache_error {
        eprintln!("no usable bundle in the cache: {e}");
    }
    eprintln!("refusing to start: no bundle that verifies and builds");
    Ok(Err(exit::INVALID))
}
