//! `portcullis synth`: writes a synthetic policy directory (`synth DIR`) or
//! synthetic accounts (`synth --accounts N --out FILE`) for benchmarks,
//! capacity tests and the docs.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use portcullis_core::geo::GeoSet;

use super::args::{Geo, geo_files};
use super::exit;
use crate::synth::accounts::{AccountOptions, write_accounts};

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Directory to write (`generated.cedar`, `designations/generated.jsonl`).
    #[arg(required_unless_present = "accounts", conflicts_with = "accounts")]
    dir: Option<PathBuf>,
    /// Policies to generate.
    #[arg(long, default_value_t = 1000)]
    policies: usize,
    /// Designated persons to generate.
    #[arg(long, default_value_t = 20000)]
    designations: usize,
    /// Write this many synthetic accounts instead: `maintain_account`
    /// requests, one per line, for `portcullis impact` (with `--out`).
    #[arg(long, requires = "out")]
    accounts: Option<u64>,
    /// Where the accounts go: a `.zst` name is zstd-compressed; `-` is
    /// standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Draw account names from a pool of this many, so that they repeat as a
    /// provider's customers do across reviews; default: every account afresh.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    distinct_names: Option<u64>,
    /// Seed of the draw: the same seed and geo database give the same accounts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Geo database whose addresses the accounts' source IPs are taken from.
    /// Default: every `*.mmdb` in `./geo-data`.
    #[arg(long = "geo", value_name = "FILE")]
    geo: Vec<PathBuf>,
}

pub fn run(args: SynthArgs) -> anyhow::Result<u8> {
    match (&args.dir, args.accounts, &args.out) {
        (_, Some(count), Some(out)) => accounts(&args, count, out),
        (Some(dir), _, _) => {
            crate::synth::write_dir(dir, args.policies, args.designations)
                .with_context(|| format!("cannot write `{}`", dir.display()))?;
            println!(
                "wrote {} policies and {} designations to {}",
                args.policies,
                args.designations,
                dir.display()
            );
            Ok(exit::OK)
        }
        _ => anyhow::bail!("give a directory, or --accounts N --out FILE"),
    }
}

fn accounts(args: &SynthArgs, count: u64, out: &PathBuf) -> anyhow::Result<u8> {
    let geo = GeoSet::open(&geo_files(&args.geo, Geo::Required)?)
        .map_err(|e| anyhow::anyhow!("cannot open the geo database: {e}"))?;
    let options = AccountOptions {
        count,
        seed: args.seed,
        distinct_names: args.distinct_names,
    };
    let to_stdout = out.as_os_str() == "-";
    let sink: Box<dyn std::io::Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(out)
                .with_context(|| format!("cannot write `{}`", out.display()))?,
        )
    };
    let mut sink = std::io::BufWriter::with_capacity(256 * 1024, sink);
    let written = if out.extension().is_some_and(|e| e == "zst") {
        let mut encoder = zstd::stream::write::Encoder::new(&mut sink, 3)?;
        write_accounts(&mut encoder, &geo, options).and_then(|()| encoder.finish().map(|_| ()))
    } else {
        write_accounts(&mut sink, &geo, options)
    };
    written
        .and_then(|()| sink.flush())
        .with_context(|| format!("cannot write `{}`", out.display()))?;
    if !to_stdout {
        eprintln!("wrote {count} accounts to {}", out.display());
    }
    Ok(exit::OK)
}
