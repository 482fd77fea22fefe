//! `portcullis designations import`: the OFAC SDN and UN consolidated lists to
//! one designations file.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use portcullis_import::{ImportError, Options, ofac, un};

use super::exit;

#[derive(Debug, Subcommand)]
pub enum DesignationsCommand {
    /// Turn the OFAC SDN (legacy CSV) and UN consolidated (XML) lists into a designations file.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("lists").required(true).multiple(true).args(["ofac_sdn", "un"]))]
pub struct ImportArgs {
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

pub fn run(command: DesignationsCommand) -> anyhow::Result<u8> {
    let DesignationsCommand::Import(args) = command;
    match import(args) {
        Ok(()) => Ok(exit::OK),
        Err(e @ ImportError::Invalid(_)) => {
            eprintln!("error: {e}");
            Ok(exit::INVALID)
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads each list given, writes one file, and prints a summary per list to stderr.
fn import(args: ImportArgs) -> Result<(), ImportError> {
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
    portcullis_import::write_jsonl(&args.out, &records)?;
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
