//! `portcullis records verify|query`: check the hash chain of a records
//! directory, or print the records that match a filter.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use portcullis_audit::chain::ReplicaId;
use portcullis_audit::pseudo::FieldKind;
use portcullis_audit::query::{Filter, query};
use portcullis_audit::verify::{ProblemKind, Report};
use portcullis_audit::{FieldModes, Key, Pseudonymiser, default_key_path};
use portcullis_core::decision::Outcome;

use super::args::rfc3339;
use super::exit;

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// Check the hash chain of every record file, each replica's chain on its
    /// own; exit 5 if anything was edited, reordered, removed or inserted, 6 if
    /// only the final record is torn.
    Verify {
        /// Records directories (a fleet: one per replica, or one shared); with
        /// `--shipped`, files of shipped lines (`-`: standard input).
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// The inputs are record lines as a log shipper delivered them (in any
        /// order, batched into files of its own naming, some twice): each
        /// replica's chain is put back in order by its hash links.
        #[arg(long, conflicts_with_all = ["trust_key", "checkpoints"])]
        shipped: bool,
        /// Public keys trusted to sign checkpoints (`records keygen` writes
        /// one as `KEY.pub`); repeat for several. A checkpoint signed by no
        /// trusted key is exit 11; records after the last checkpoint are
        /// reported as unanchored.
        #[arg(long = "trust-key", value_name = "PUB")]
        trust_key: Vec<PathBuf>,
        /// A copy of checkpoints (`serve --records-checkpoint-out`); repeat
        /// for several (a fleet's). Each checkpoint must be in its replica's
        /// chain in one of the directories, unless retention accounts for
        /// it; one missing means records were cut (exit 11).
        #[arg(long, value_name = "FILE")]
        checkpoints: Vec<PathBuf>,
    },
    /// Put a customer's records on legal hold: retention by account
    /// (`serve --records-retention`) deletes no file holding one of them
    /// until `records release`.
    Hold(HoldArgs),
    /// Lift a legal hold (`records hold`).
    Release(HoldArgs),
    /// Make an Ed25519 key to sign checkpoints: `KEY` (mode 0600) and `KEY.pub`.
    Keygen {
        #[arg(long, value_name = "KEY")]
        out: PathBuf,
    },
    /// Print the decision records that match, as JSON Lines.
    Query(QueryArgs),
    /// Write the records a regulator asks for (one customer's, one
    /// measure's, a period's) into one evidence file: each record verbatim
    /// with the hashes that prove it is in the signed chain, the public
    /// keys, and a summary. No other customer's record is in it.
    Export(ExportArgs),
    /// Check an export offline: every record proven under a checkpoint
    /// signed by a trusted key, and not a byte altered (exit 12 if not).
    CheckExport {
        /// The export (`records export --out`).
        file: PathBuf,
        /// Public keys trusted to sign checkpoints (the operator's `KEY.pub`).
        #[arg(long = "trust-key", value_name = "PUB", required = true)]
        trust_key: Vec<PathBuf>,
    },
    /// The counts a certification asks for over a period: decisions by
    /// outcome, action, measure and jurisdiction, conditions lifted,
    /// screening matches and near misses, account openings refused.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Records directories (a fleet: one per replica, or one shared).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Decisions at or after this time (RFC 3339, e.g. `2026-01-01T00:00:00Z`).
    #[arg(long, value_parser = rfc3339)]
    from: Option<SystemTime>,
    /// Decisions at or before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    to: Option<SystemTime>,
    /// For people (`text`) or one JSON object (`json`).
    #[arg(long, value_enum, default_value_t = super::args::Format::Human)]
    format: super::args::Format,
}

/// `--key-file`: the key that hashed the records' customer ids.
#[derive(Debug, Args)]
pub struct KeyFileArg {
    /// The key that hashed the records. Default: the key file beside each
    /// directory (`DIR.key`).
    #[arg(long, env = "PORTCULLIS_RECORDS_KEY_FILE")]
    key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("select").required(true).multiple(true).args(["customer_id", "measure", "from", "to"])))]
pub struct ExportArgs {
    /// Records directories (a fleet: one per replica, or one shared).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// The records of this customer (hashed with the key, or in clear).
    #[arg(long)]
    customer_id: Option<String>,
    #[command(flatten)]
    key: KeyFileArg,
    /// Decisions with this measure among their reasons, conditions or obligations.
    #[arg(long)]
    measure: Option<String>,
    /// Decisions at or after this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    from: Option<SystemTime>,
    /// Decisions at or before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    to: Option<SystemTime>,
    /// Public keys that signed the checkpoints (`KEY.pub`): each one used is
    /// written into the export; a checkpoint signed by another is refused.
    #[arg(long = "trust-key", value_name = "PUB", required = true)]
    trust_key: Vec<PathBuf>,
    /// The evidence file to write (replaced atomically).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    /// Records directories (a fleet: every one, or the one they share).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// The customer whose records are held (hashed with the key, or in clear).
    #[arg(long, required = true)]
    customer_id: String,
    /// Why (a case, an order): kept with the hold.
    #[arg(long, required = true)]
    reason: String,
    #[command(flatten)]
    key: KeyFileArg,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Records directories (a fleet: one per replica, or one shared).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Records of this customer (hashed with the key, or in clear).
    #[arg(long)]
    customer_id: Option<String>,
    #[command(flatten)]
    key: KeyFileArg,
    /// Records at or after this time (RFC 3339, e.g. `2026-01-31T00:00:00Z`).
    #[arg(long, value_parser = rfc3339)]
    from: Option<SystemTime>,
    /// Records at or before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    to: Option<SystemTime>,
    /// Only this outcome.
    #[arg(long, value_enum)]
    decision: Option<OutcomeArg>,
    /// Only decisions with this measure among their reasons, conditions or obligations.
    #[arg(long)]
    measure: Option<String>,
    /// Only the records of this replica (`serve --replica-id`).
    #[arg(long)]
    replica: Option<ReplicaId>,
}

/// An outcome on the command line (the engine's type knows no CLI).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutcomeArg {
    Allow,
    Deny,
    Conditional,
}

impl From<OutcomeArg> for Outcome {
    fn from(o: OutcomeArg) -> Self {
        match o {
            OutcomeArg::Allow => Outcome::Allow,
            OutcomeArg::Deny => Outcome::Deny,
            OutcomeArg::Conditional => Outcome::Conditional,
        }
    }
}

pub fn run(command: RecordsCommand) -> anyhow::Result<u8> {
    match command {
        RecordsCommand::Verify {
            dirs,
            shipped: true,
            ..
        } => verify_shipped(&dirs),
        RecordsCommand::Verify {
            dirs,
            trust_key,
            checkpoints,
            ..
        } => {
            let trusted = trust_key
                .iter()
                .map(|p| portcullis_keys::PublicKey::read(p))
                .collect::<Result<Vec<_>, _>>()?;
            let mut copies = Vec::new();
            for path in &checkpoints {
                copies.extend(portcullis_audit::checkpoint::read_copy(path, &trusted)?);
            }
            let mut found = Vec::new();
            for dir in &dirs {
                found.push(portcullis_audit::verify::verify_chains_with(dir, &trusted)?);
            }
            let orphans = portcullis_audit::verify::check_copies(&mut found, &copies);
            // The worst result decides the exit code.
            let mut worst = exit::OK;
            for (dir, report) in dirs.iter().zip(&found) {
                if dirs.len() > 1 {
                    println!("{}:", dir.display());
                }
                worst = worse(worst, print_verified(report, !trusted.is_empty()));
            }
            for p in &orphans {
                println!("error: {p}");
                worst = worse(worst, exit::CHECKPOINT_FAILED);
            }
            Ok(worst)
        }
        RecordsCommand::Keygen { out } => {
            let public = portcullis_keys::SigningKey::generate()?.write(&out)?;
            println!(
                "wrote {} (keep it secret: `serve --records-signing-key`) and {} (give it to whoever verifies: `records verify --trust-key`)",
                out.display(),
                public.display()
            );
            Ok(exit::OK)
        }
        RecordsCommand::Query(args) => query_records(args),
        RecordsCommand::Hold(args) => hold(args, "hold"),
        RecordsCommand::Release(args) => hold(args, "release"),
        RecordsCommand::Export(args) => export(args),
        RecordsCommand::CheckExport { file, trust_key } => check_export(&file, &trust_key),
        RecordsCommand::Report(args) => report(args),
    }
}

/// Verifies each chain of `dir`; the worst result is the exit code. A
/// directory of one chain without a replica id reads as before replica ids.
/// The worse of two exit codes of `verify`: broken, then checkpoint, then torn.
fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        exit::RECORDS_BROKEN => 3,
        exit::CHECKPOINT_FAILED => 2,
        exit::RECORDS_TORN => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Prints a directory's verification, chain by chain; its exit code.
fn print_verified(found: &portcullis_audit::verify::DirReport, keyed: bool) -> u8 {
    for note in &found.notes {
        println!("note: {note}");
    }
    if found.chains.is_empty() {
        return verify_outcome(&Report::default(), "");
    }
    let named = found.chains.len() > 1 || found.chains.iter().any(|c| c.chain.replica.is_some());
    let mut worst = exit::OK;
    for c in &found.chains {
        let prefix = if named {
            format!("{}: ", c.chain.label())
        } else {
            String::new()
        };
        if keyed || c.report.checkpoints > 0 {
            match &c.report.last_checkpoint {
                Some(last) => println!(
                    "{prefix}last {}checkpoint: {last}; {} record(s) after it unanchored",
                    if keyed { "signed " } else { "(unchecked) " },
                    c.report.unanchored
                ),
                None => println!(
                    "{prefix}no signed checkpoint: all {} record(s) unanchored",
                    c.report.records
                ),
            }
        }
        let code = verify_outcome(&c.report, &prefix);
        worst = worse(worst, code);
    }
    worst
}

/// `records verify --shipped`: every input read, then each chain checked.
fn verify_shipped(inputs: &[PathBuf]) -> anyhow::Result<u8> {
    let mut shipped = portcullis_audit::shipped::Shipped::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            shipped.read("-", std::io::stdin().lock())?;
        } else {
            let file = std::fs::File::open(input)
                .with_context(|| format!("cannot read `{}`", input.display()))?;
            shipped
                .read(&input.display().to_string(), std::io::BufReader::new(file))
                .with_context(|| format!("cannot read `{}`", input.display()))?;
        }
    }
    let report = shipped.finish();
    for p in &report.problems {
        println!("error: {p}");
    }
    for c in &report.chains {
        let label = c.label();
        for p in &c.problems {
            println!("{label}: error: {p}");
        }
        if c.problems.is_empty() {
            println!(
                "{label}: ok: {} record(s), whole from the genesis hash; last hash {}, last record {}",
                c.records,
                c.last_hash.as_deref().unwrap_or("none"),
                c.last_time.as_deref().unwrap_or("undated")
            );
        } else {
            println!(
                "{label}: broken: {} problem(s), {} record(s)",
                c.problems.len(),
                c.records
            );
        }
    }
    println!(
        "{} line(s) read, {} duplicate(s) ignored",
        report.lines, report.duplicates
    );
    Ok(if report.is_ok() {
        exit::OK
    } else {
        exit::RECORDS_BROKEN
    })
}

/// Prints one chain's report (each line after `prefix`); its exit code.
fn verify_outcome(report: &Report, prefix: &str) -> u8 {
    for note in &report.notes {
        println!("{prefix}note: {note}");
    }
    for p in &report.problems {
        println!("{prefix}error: {p}");
    }
    let last = report.last_hash.as_deref().unwrap_or("none");
    let broken = report
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::Broken);
    let checkpoint = report
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::Checkpoint);
    if checkpoint && !broken {
        println!(
            "{prefix}checkpoints refused: {} problem(s), {} file(s), {} record(s)",
            report.problems.len(),
            report.files,
            report.records
        );
        return exit::CHECKPOINT_FAILED;
    }
    if report.is_ok() {
        println!(
            "{prefix}ok: {} file(s), {} record(s), chain intact; last hash {last}",
            report.files, report.records
        );
        exit::OK
    } else if report.only_torn() {
        println!(
            "{prefix}torn final record: {} file(s), {} complete record(s) intact; the last record was cut short by a crash",
            report.files, report.records
        );
        exit::RECORDS_TORN
    } else {
        println!(
            "{prefix}broken: {} problem(s) in {} file(s), {} record(s)",
            report.problems.len(),
            report.files,
            report.records
        );
        exit::RECORDS_BROKEN
    }
}

/// The customer id as the records may hold it: hashed with the key (the given
/// key file, else the one beside the directory), and in clear.
fn customer_ids(id: String, dir: &Path, key_file: Option<PathBuf>) -> anyhow::Result<Vec<String>> {
    let default = default_key_path(dir);
    let key_file = key_file.or_else(|| default.exists().then(|| default.clone()));
    let mut ids = Vec::new();
    match key_file {
        Some(f) => {
            let p = Pseudonymiser::new(Some(Key::load(&f)?), FieldModes::default());
            ids.extend(p.hash(FieldKind::CustomerId, &id));
        }
        None => eprintln!(
            "warning: no key file (--key-file, or `{}`): only records with customer ids in clear can match",
            default.display()
        ),
    }
    ids.push(id);
    Ok(ids)
}

fn query_records(args: QueryArgs) -> anyhow::Result<u8> {
    let mut filter = Filter {
        from: args.from,
        to: args.to,
        decision: args.decision.map(Outcome::from),
        measure: args.measure,
        replica: args.replica,
        ..Filter::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for dir in &args.dirs {
        if let Some(id) = &args.customer_id {
            filter.customer_ids = customer_ids(id.clone(), dir, args.key.key_file.clone())?;
        }
        let stats = query(dir, &filter, &mut out)?;
        if stats.unreadable > 0 {
            eprintln!(
                "warning: {}: {} line(s) could not be read (run `portcullis records verify`)",
                dir.display(),
                stats.unreadable
            );
        }
    }
    Ok(exit::OK)
}

fn hold(args: HoldArgs, action: &str) -> anyhow::Result<u8> {
    if args.reason.trim().is_empty() {
        anyhow::bail!("--reason must say why");
    }
    if args.customer_id.trim().is_empty() || args.customer_id.chars().any(char::is_control) {
        anyhow::bail!("--customer-id must be a customer id, as decision requests give it");
    }
    for dir in &args.dirs {
        anyhow::ensure!(
            dir.is_dir(),
            "`{}` is not a records directory",
            dir.display()
        );
        let event = portcullis_audit::retention::HoldEvent {
            time: portcullis_audit::chain::record_time(SystemTime::now()),
            action: action.to_owned(),
            customer_ids: hold_ids(&args.customer_id, dir, args.key.key_file.clone())?,
            reason: args.reason.clone(),
        };
        portcullis_audit::retention::append_hold(dir, &event).with_context(|| {
            format!(
                "cannot write `{}`",
                dir.join(portcullis_audit::retention::HOLDS_FILE).display()
            )
        })?;
        // Read back, so that a holds file that cannot be read fails here,
        // not at the next retention.
        portcullis_audit::retention::holds(dir)?;
        println!(
            "{}: {} the records of {} ({})",
            dir.display(),
            if action == "hold" { "held" } else { "released" },
            args.customer_id,
            args.reason
        );
    }
    Ok(exit::OK)
}

/// The customer id as a hold names it: its keyed hash when there is a key
/// (never the id in clear beside it, which would undo pseudonymisation in the
/// records directory), the id itself only when there is none (records with
/// ids in clear).
fn hold_ids(id: &str, dir: &Path, key_file: Option<PathBuf>) -> anyhow::Result<Vec<String>> {
    let mut ids = customer_ids(id.to_owned(), dir, key_file)?;
    if ids.len() > 1 {
        ids.retain(|i| i != id);
    }
    Ok(ids)
}

fn export(args: ExportArgs) -> anyhow::Result<u8> {
    let trusted = read_keys(&args.trust_key)?;
    let mut ids = Vec::new();
    if let Some(id) = &args.customer_id {
        for dir in &args.dirs {
            for h in customer_ids(id.clone(), dir, args.key.key_file.clone())? {
                if !ids.contains(&h) {
                    ids.push(h);
                }
            }
        }
    }
    let selection = portcullis_audit::export::Selection {
        customer_ids: ids,
        measure: args.measure,
        from: args.from.map(portcullis_audit::chain::record_time),
        to: args.to.map(portcullis_audit::chain::record_time),
    };
    let stats = portcullis_audit::export::export(&args.dirs, &selection, &trusted, &args.out)?;
    println!(
        "wrote {}: {} record(s) under {} signed checkpoint(s), from {} line(s) read",
        args.out.display(),
        stats.records,
        stats.checkpoints,
        stats.lines
    );
    if stats.unanchored > 0 {
        eprintln!(
            "warning: {} selected record(s) were written after the last checkpoint of their chain and are not in the export: export again after the next checkpoint (`--records-checkpoint`)",
            stats.unanchored
        );
    }
    if stats.unprovable > 0 {
        eprintln!(
            "warning: {} selected record(s) are under checkpoints that state no Merkle root (written by an older version) or whose first records are gone: they cannot be proven one by one and are not in the export (`records query` prints them)",
            stats.unprovable
        );
    }
    Ok(exit::OK)
}

fn read_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<portcullis_keys::PublicKey>> {
    Ok(paths
        .iter()
        .map(|p| portcullis_keys::PublicKey::read(p))
        .collect::<Result<Vec<_>, _>>()?)
}

fn check_export(file: &Path, trust_key: &[PathBuf]) -> anyhow::Result<u8> {
    let trusted = read_keys(trust_key)?;
    match portcullis_audit::export::check_export(file, &trusted) {
        Ok(c) => {
            print_out(&format!(
                "ok: {} record(s) of {} under {} checkpoint(s) signed by {}; written from {} to {}\nselected: {}\n",
                c.records,
                if c.replicas.is_empty() {
                    "no replica".to_owned()
                } else {
                    format!("replica(s) {}", c.replicas.join(", "))
                },
                c.checkpoints,
                c.key_ids.join(", "),
                c.first.as_deref().unwrap_or("-"),
                c.last.as_deref().unwrap_or("-"),
                c.selection
            ))?;
            Ok(exit::OK)
        }
        Err(e @ portcullis_audit::export::CheckError::Invalid { .. }) => {
            print_out(&format!("refused: {}: {e}\n", file.display()))?;
            Ok(exit::EXPORT_REFUSED)
        }
        Err(e) => Err(e.into()),
    }
}

/// Prints `text` to standard output; a reader that went away (`| head`) is
/// not an error.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn report(args: ReportArgs) -> anyhow::Result<u8> {
    let mut tally = portcullis_audit::report::Tally::new(args.from, args.to);
    // A directory named twice is read once.
    let mut read = std::collections::HashSet::new();
    for dir in &args.dirs {
        if read.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone())) {
            tally.read_dir(dir)?;
        }
    }
    let r = tally.finish();
    if args.format == super::args::Format::Json {
        super::check::print_json(&r)?;
        return Ok(exit::OK);
    }
    use std::fmt::Write as _;
    let mut out = String::new();
    let period = format!(
        "{} to {}",
        r.from.as_deref().unwrap_or("the first record"),
        r.to.as_deref().unwrap_or("the last")
    );
    writeln!(out, "decisions from {period}: {}", r.decisions)?;
    writeln!(
        out,
        "customers: {}; replicas: {}",
        r.customers,
        r.replicas.join(", ")
    )?;
    let outcomes = |m: &std::collections::BTreeMap<String, u64>| {
        ["allow", "conditional", "deny"]
            .map(|o| format!("{o} {}", m.get(o).copied().unwrap_or(0)))
            .join(", ")
    };
    writeln!(out, "by outcome: {}", outcomes(&r.by_outcome))?;
    writeln!(
        out,
        "account openings refused: {}",
        r.account_openings_refused
    )?;
    writeln!(out, "\nby action")?;
    for (action, m) in &r.by_action {
        writeln!(out, "  {action:<18} {}", outcomes(m))?;
    }
    writeln!(
        out,
        "\nby measure                denied  conditional  obligations"
    )?;
    for (measure, c) in &r.by_measure {
        writeln!(
            out,
            "  {measure:<22} {:>8} {:>12} {:>12}",
            c.denied, c.conditional, c.obligations
        )?;
    }
    writeln!(out, "\nby jurisdiction")?;
    for (country, m) in &r.by_jurisdiction {
        writeln!(out, "  {country:<4} {}", outcomes(m))?;
    }
    writeln!(
        out,
        "\nconditions stated satisfied on allowed decisions (at most the conditions lifted)"
    )?;
    for (condition, n) in &r.conditions_lifted {
        writeln!(out, "  {condition:<28} {n}")?;
    }
    writeln!(
        out,
        "\nscreening: {} decision(s) matched, {} with near misses only",
        r.screening.decisions_matched, r.screening.decisions_near_miss_only
    )?;
    for (designation, n) in &r.screening.matches {
        writeln!(out, "  match      {designation:<24} {n}")?;
    }
    for (designation, n) in &r.screening.near_misses {
        writeln!(out, "  near miss  {designation:<24} {n}")?;
    }
    print_out(&out)?;
    if r.unreadable > 0 {
        eprintln!(
            "warning: {} line(s) could not be read (run `portcullis records verify`)",
            r.unreadable
        );
    }
    Ok(exit::OK)
}
