//! `portcullis test DIR [--coverage [--min-coverage PCT]]`: runs the policy
//! directory's test cases (`tests/*.json`) and reports each one, the way the
//! gate runs them before a snapshot goes live; with `--coverage`, also which
//! policies, conditions and obligations the cases exercise.

use clap::Args;
use serde::Serialize;

use portcullis_core::cases::LocatedCase;
use portcullis_core::coverage::{Coverage, coverage};
use portcullis_core::gate;
use portcullis_core::snapshot::Snapshot;

use super::args::{Format, PolicyDirArgs};
use super::check::print_json;
use super::diagnostics::{self, JsonDiagnostic};
use super::exit;

/// `portcullis test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    dir: PolicyDirArgs,
    /// Also report coverage: for each policy whether the cases saw it
    /// satisfied and not satisfied, and each condition and obligation
    /// produced (and each condition lifted); per file and in total.
    #[arg(long)]
    coverage: bool,
    /// With `--coverage`: exit 1 when the total is below this percentage.
    #[arg(long, value_name = "PCT", requires = "coverage",
          value_parser = clap::value_parser!(u8).range(0..=100))]
    min_coverage: Option<u8>,
}

/// One case in `--format json`.
#[derive(Debug, Serialize)]
struct CaseResult<'a> {
    name: &'a str,
    file: &'a std::path::Path,
    ok: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
}

fn result(c: &LocatedCase, problems: Vec<String>) -> CaseResult<'_> {
    CaseResult {
        name: &c.case.name,
        file: &c.file,
        ok: problems.is_empty(),
        problems,
    }
}

/// `--format json`: one document.
#[derive(Debug, Serialize)]
struct Report<'a> {
    passed: usize,
    failed: usize,
    cases: Vec<CaseResult<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<Coverage>,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

pub fn run(args: TestArgs) -> anyhow::Result<u8> {
    let format = args.dir.format;
    let snapshot = match Snapshot::load(args.dir.sources()?) {
        Ok(s) => s,
        Err(e) => {
            match format {
                Format::Human => diagnostics::report(&e.diagnostics),
                Format::Json => print_json(&Report {
                    passed: 0,
                    failed: 0,
                    cases: Vec::new(),
                    coverage: None,
                    diagnostics: diagnostics::json(&e.diagnostics),
                })?,
            }
            return Ok(exit::INVALID);
        }
    };
    // With coverage, each case is explained once: the explanation carries the
    // decision compared with what the case expects.
    let (results, coverage): (Vec<CaseResult<'_>>, Option<Coverage>) = if args.coverage {
        let (coverage, explained) = coverage(&snapshot, &snapshot.cases);
        let results = explained
            .iter()
            .map(|(c, e)| {
                result(
                    c,
                    gate::compare(&c.case, &e.decision)
                        .err()
                        .unwrap_or_default(),
                )
            })
            .collect();
        (results, Some(coverage))
    } else {
        let results = snapshot
            .cases
            .iter()
            .map(|c| {
                result(
                    c,
                    gate::run_one(&snapshot, &c.case).err().unwrap_or_default(),
                )
            })
            .collect();
        (results, None)
    };
    let failed = results.iter().filter(|r| !r.ok).count();
    let passed = results.len() - failed;
    let below = match (&coverage, args.min_coverage) {
        (Some(c), Some(min)) => c.percent < f64::from(min),
        _ => false,
    };
    match format {
        Format::Human => {
            for r in &results {
                if r.ok {
                    println!("ok    {}", r.name);
                } else {
                    println!("FAIL  {} ({})", r.name, r.file.display());
                    for p in &r.problems {
                        println!("        {p}");
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
            if let Some(c) = &coverage {
                print!("{}", render_coverage(c));
                if let Some(min) = args.min_coverage.filter(|_| below) {
                    println!("coverage {:.1}% is below the minimum of {min}%", c.percent);
                }
            }
        }
        Format::Json => print_json(&Report {
            passed,
            failed,
            cases: results,
            coverage,
            diagnostics: Vec::new(),
        })?,
    }
    Ok(if failed > 0 {
        exit::TESTS_FAILED
    } else if below {
        exit::COVERAGE_LOW
    } else {
        exit::OK
    })
}

/// Coverage for people: per file, then what each policy lacks.
fn render_coverage(c: &Coverage) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "\ncoverage ({} cases)", c.cases);
    for f in &c.files {
        let _ = writeln!(
            out,
            "  {:>5.1}%  {}/{}  {}",
            f.percent,
            f.covered,
            f.total,
            f.file.display()
        );
        for p in c.policies.iter().filter(|p| p.file == f.file) {
            let missing = p.missing();
            if let Some(why) = p.unreachable {
                let _ = writeln!(out, "           n/a      {}: not counted: {why}", p.policy);
            }
            if missing.is_empty() && p.unreachable.is_some() {
                continue;
            }
            if missing.is_empty() {
                let _ = writeln!(out, "           ok       {}", p.policy);
            } else {
                let _ = writeln!(
                    out,
                    "           missing  {}: never {}  ({}:{})",
                    p.policy,
                    missing.join(", never "),
                    p.file.display(),
                    p.line
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "  {:>5.1}%  {}/{}  total",
        c.percent, c.covered, c.total
    );
    out
}
