//! `portcullis prove`: static analysis with Cedar's symbolic compiler and the
//! cvc5 solver, for every request rather than the ones at hand.
//!
//! - `prove --base DIR --candidate DIR`: per action, whether the candidate
//!   allows (or makes conditional) anything the base does not, and the
//!   reverse, each with a counterexample request.
//! - `prove DIR`: whether every invariant of `DIR/invariants/*.cedar` holds.
//!
//! Both report every policy (of the candidate, or of `DIR`) that can err.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use portcullis_core::lifecycle::Instant;
use portcullis_core::snapshot::{Snapshot, Sources};
use portcullis_prove::invariants::{self, InvariantError};
use portcullis_prove::witness::Witness;
use portcullis_prove::{Difference, Direction, Erring, InvariantResult, ProveError, Prover};
use serde::Serialize;

use super::args::{EnrichArgs, Format, Geo, geo_files};
use super::check::print_json;
use super::exit;
use super::impact::build;

#[derive(Debug, Args)]
pub struct ProveArgs {
    /// A policy directory whose invariants (`DIR/invariants/*.cedar`) to prove.
    #[arg(value_name = "DIR", conflicts_with_all = ["base", "candidate"],
          required_unless_present_all = ["base", "candidate"])]
    dir: Option<PathBuf>,
    /// The policy directory in force.
    #[arg(long, value_name = "DIR", requires = "candidate")]
    base: Option<PathBuf>,
    /// The policy directory to compare with it.
    #[arg(long, value_name = "DIR", requires = "base")]
    candidate: Option<PathBuf>,
    /// A geo database (MMDB); repeat for several. Default: every `*.mmdb` in
    /// `./geo-data`. Used to build counterexample requests with source IPs.
    #[arg(long = "geo", value_name = "FILE")]
    geo: Vec<PathBuf>,
    #[command(flatten)]
    enrich: EnrichArgs,
    /// Accept a policy directory with no policy at all.
    #[arg(long)]
    allow_empty: bool,
    /// For people (`text`) or one JSON object (`json`).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Exit 1 if the candidate lets through anything the base does not
    /// (`widening`), the reverse (`narrowing`), or a policy can err
    /// (`errors`); comma-separated.
    #[arg(long, value_enum, value_delimiter = ',')]
    fail_on: Vec<FailOn>,
    /// Take the policies in force at this instant (a date, or RFC 3339);
    /// default: now.
    #[arg(long, value_name = "TIME", value_parser = Instant::parse)]
    at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Widening,
    Narrowing,
    Errors,
}

#[derive(Debug, Serialize)]
struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    differences: Option<Vec<Difference>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invariants: Option<Vec<InvariantResult>>,
    /// Policies (of the candidate, or of DIR) that can err.
    can_err: Vec<Erring>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_can_err: Option<Vec<Erring>>,
    /// What could not be told, and why.
    notes: Vec<String>,
    /// No widening can have been missed (a comparison).
    #[serde(skip_serializing_if = "Option::is_none")]
    widening_proved: Option<bool>,
    /// No narrowing can have been missed (a comparison).
    #[serde(skip_serializing_if = "Option::is_none")]
    narrowing_proved: Option<bool>,
    /// The instants looked at: the one asked, then each at which a policy
    /// starts or stops applying.
    instants: usize,
    /// Seconds the solver work took.
    seconds: f64,
}

pub fn run(args: ProveArgs) -> anyhow::Result<u8> {
    let geo = geo_files(&args.geo, Geo::Optional)?;
    let sources = |dir: &Path| Sources {
        policies: dir.to_owned(),
        geo: geo.clone(),
        settings: args.enrich.settings(),
        allow_empty: args.allow_empty,
        settle: std::time::Duration::ZERO,
        label: None,
    };
    let at = args.at.unwrap_or_else(Instant::now);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    let outcome = match (&args.dir, &args.base, &args.candidate) {
        (Some(dir), _, _) => {
            let Some(snap) = build("given", Snapshot::build(sources(dir))) else {
                return Ok(exit::INVALID);
            };
            let invariants = match invariants::load(&invariants::dir_of(dir), &snap.schema) {
                Ok(i) => i,
                Err(problems) => {
                    report_invariant_errors(&problems);
                    return Ok(exit::INVALID);
                }
            };
            runtime.block_on(async {
                let mut prover = Prover::start(snap.schema.clone())?;
                let found = prover.check_invariants(&invariants, &snap, at).await?;
                Ok::<_, ProveError>(Report {
                    differences: None,
                    invariants: Some(found.results),
                    can_err: found.can_err,
                    base_can_err: None,
                    notes: Vec::new(),
                    widening_proved: None,
                    narrowing_proved: None,
                    instants: found.instants,
                    seconds: 0.0,
                })
            })
        }
        (None, Some(base), Some(candidate)) => {
            let Some(b) = build("base", Snapshot::build(sources(base))) else {
                return Ok(exit::INVALID);
            };
            let Some(c) = build("candidate", Snapshot::rebuild(sources(candidate), Some(&b)))
            else {
                return Ok(exit::INVALID);
            };
            runtime.block_on(async {
                let mut prover = Prover::start(c.schema.clone())?;
                let found = prover.compare(&b, &c, at).await?;
                Ok::<_, ProveError>(Report {
                    differences: Some(found.differences),
                    invariants: None,
                    can_err: found.can_err,
                    base_can_err: Some(found.base_can_err),
                    notes: found.notes,
                    widening_proved: Some(found.widening_proved),
                    narrowing_proved: Some(found.narrowing_proved),
                    instants: found.instants,
                    seconds: 0.0,
                })
            })
        }
        _ => anyhow::bail!("give a policy directory, or --base and --candidate"),
    };
    let mut report = match outcome {
        Ok(r) => r,
        Err(e @ ProveError::NoSolver { .. }) => {
            eprintln!("error: {e}");
            return Ok(exit::NO_SOLVER);
        }
        Err(e) => return Err(e.into()),
    };
    report.seconds = started.elapsed().as_secs_f64();
    match args.format {
        Format::Json => print_json(&report)?,
        Format::Human => print_text(&report),
    }
    let violated = report
        .invariants
        .as_ref()
        .is_some_and(|i| i.iter().any(|r| !r.holds));
    let found = |d: Direction| {
        report
            .differences
            .as_ref()
            .is_some_and(|ds| ds.iter().any(|x| x.direction == d))
    };
    // A kind of difference fails when found, or when it cannot be ruled out.
    let failed = args.fail_on.iter().any(|f| match f {
        FailOn::Widening => found(Direction::Widening) || report.widening_proved == Some(false),
        FailOn::Narrowing => found(Direction::Narrowing) || report.narrowing_proved == Some(false),
        FailOn::Errors => !report.can_err.is_empty(),
    });
    Ok(if violated {
        exit::INVARIANT_VIOLATED
    } else if failed {
        exit::PROOF_FAILED
    } else {
        exit::OK
    })
}

fn report_invariant_errors(problems: &[InvariantError]) {
    for p in problems {
        eprintln!("error: {p}");
    }
    eprintln!("refused: the invariants are invalid");
}

/// The counterexample, indented under its heading.
fn print_witness(w: &Witness, labels: &[&str]) {
    let answers: Vec<String> = labels
        .iter()
        .zip(&w.answers)
        .map(|(l, a)| format!("{l} {a}"))
        .collect();
    println!("    answers: {}", answers.join(", "));
    match &w.request {
        Some(r) => println!("    request: {r}"),
        None => {
            println!(
                "    facts (no request reproducing them was found): {}",
                serde_json::to_string(&w.facts).unwrap_or_default()
            );
            if w.facts.anonymous_ip {
                println!(
                    "    (a request from an anonymizing network needs a geo database that flags them: --geo)"
                );
            }
        }
    }
}

fn print_text(report: &Report) {
    if let Some(differences) = &report.differences {
        if differences.is_empty() && report.notes.is_empty() {
            println!("equivalent: the candidate answers every request as the base does");
        } else if differences.is_empty() {
            println!("no difference found");
        }
        for d in differences {
            let (before, after) = (
                d.witness.answers.first().map_or("?", |a| a.as_str()),
                d.witness.answers.get(1).map_or("?", |a| a.as_str()),
            );
            let direction = match d.direction {
                Direction::Widening => "widening",
                Direction::Narrowing => "narrowing",
            };
            let when =
                d.at.as_ref()
                    .map(|t| format!(" from {t}"))
                    .unwrap_or_default();
            match (&d.obligation, &d.witness.with_obligation) {
                (Some(o), Some(w)) => {
                    let with = |carries: Option<&bool>| {
                        if carries == Some(&true) {
                            format!("with {o}")
                        } else {
                            format!("without {o}")
                        }
                    };
                    println!(
                        "{direction}: {}{when} {before} {} -> {after} {}",
                        d.action,
                        with(w.first()),
                        with(w.get(1))
                    );
                }
                _ => println!("{direction}: {}{when} {before} -> {after}", d.action),
            }
            print_witness(&d.witness, &["base", "candidate"]);
        }
    }
    if let Some(results) = &report.invariants {
        if results.is_empty() {
            println!("no invariants (invariants/*.cedar)");
        }
        for r in results {
            let about = r.message.as_deref().unwrap_or("");
            if r.holds {
                println!("holds: {} ({}) {about}", r.id, r.expect.as_str());
            } else {
                println!(
                    "FAILS: {} ({}) {about} [{}]",
                    r.id,
                    r.expect.as_str(),
                    r.file
                );
                if let Some(why) = &r.unproved {
                    println!("  {why}");
                }
                for c in &r.counterexamples {
                    let when =
                        c.at.as_ref()
                            .map(|t| format!(" from {t}"))
                            .unwrap_or_default();
                    println!("  on {}{when}:", c.action);
                    print_witness(&c.witness, &["policies"]);
                }
            }
        }
    }
    for (side, erring) in [
        ("", Some(&report.can_err)),
        ("base ", report.base_can_err.as_ref()),
    ] {
        for e in erring.into_iter().flatten() {
            println!(
                "can err: {side}policy `{}` on {} (a forbid that errs denies; a permit that errs does not apply)",
                e.policy, e.action
            );
            print_witness(&e.witness, &["policies"]);
        }
    }
    if report.can_err.is_empty() && report.base_can_err.as_ref().is_none_or(Vec::is_empty) {
        println!("no policy can err");
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    if report.instants > 1 {
        println!(
            "compared at {} instants: now and each later one at which a policy starts or stops applying",
            report.instants
        );
    }
    println!("solver time: {:.2} s", report.seconds);
}
