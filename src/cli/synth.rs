//! `portcullis synth DIR`: writes a synthetic policy directory for benchmarks
//! and capacity tests.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::exit;

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Directory to write (`generated.cedar`, `designations/generated.jsonl`).
    dir: PathBuf,
    /// Policies to generate.
    #[arg(long, default_value_t = 1000)]
    policies: usize,
    /// Designated persons to generate.
    #[arg(long, default_value_t = 20000)]
    designations: usize,
}

pub fn run(args: SynthArgs) -> anyhow::Result<u8> {
    crate::synth::write_dir(&args.dir, args.policies, args.designations)
        .with_context(|| format!("cannot write `{}`", args.dir.display()))?;
    println!(
        "wrote {} policies and {} designations to {}",
        args.policies,
        args.designations,
        args.dir.display()
    );
    Ok(exit::OK)
}
