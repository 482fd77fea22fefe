//! `portcullis records verify|query`: check the hash chain of a records
//! directory, or print the records that match a filter.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, Subcommand, ValueEnum};

use portcullis_audit::pseudo::FieldKind;
use portcullis_audit::query::{Filter, query};
use portcullis_audit::{FieldModes, Key, Pseudonymiser, default_key_path};
use portcullis_core::decision::Outcome;

use super::args::rfc3339;
use super::exit;

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// Check the hash chain of every record file; exit 5 if anything was edited,
    /// reordered, removed or inserted, 6 if only the final record is torn.
    Verify {
        /// Records directories (a fleet: one per replica).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Print the decision records that match, as JSON Lines.
    Query(QueryArgs),
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Records directories (a fleet: one per replica).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Records of this customer (hashed with the key, or in clear).
    #[arg(long)]
    customer_id: Option<String>,
    /// The key that hashed the records. Default: the key file beside each
    /// directory (`DIR.key`).
    #[arg(long, env = "PORTCULLIS_RECORDS_KEY_FILE")]
    key_file: Option<PathBuf>,
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
        RecordsCommand::Verify { dirs } => {
            // The worst result decides the exit code.
            let mut worst = exit::OK;
            for dir in &dirs {
                if dirs.len() > 1 {
                    println!("{}:", dir.display());
                }
                let code = verify(dir)?;
                if code == exit::RECORDS_BROKEN || worst == exit::OK {
                    worst = code;
                }
            }
            Ok(worst)
        }
        RecordsCommand::Query(args) => query_records(args),
    }
}

fn verify(dir: &Path) -> anyhow::Result<u8> {
    let report = portcullis_audit::verify::verify_dir(dir)?;
    for note in &report.notes {
        println!("note: {note}");
    }
    for p in &report.problems {
        println!("error: {p}");
    }
    let last = report.last_hash.as_deref().unwrap_or("none");
    Ok(if report.is_ok() {
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
    })
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
        ..Filter::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for dir in &args.dirs {
        if let Some(id) = &args.customer_id {
            filter.customer_ids = customer_ids(id.clone(), dir, args.key_file.clone())?;
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
