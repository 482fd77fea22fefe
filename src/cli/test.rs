//! `portcullis test DIR`: runs the policy directory's test cases
//! (`tests/*.json`) and reports each one, the way the gate runs them before a
//! snapshot goes live.

use serde::Serialize;

use portcullis_core::gate;
use portcullis_core::snapshot::Snapshot;

use super::args::{Format, PolicyDirArgs};
use super::check::print_json;
use super::diagnostics::{self, JsonDiagnostic};
use super::exit;

/// One case in `--format json`.
#[derive(Debug, Serialize)]
struct CaseResult<'a> {
    name: &'a str,
    file: &'a std::path::Path,
    ok: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
}

/// `--format json`: one document.
#[derive(Debug, Serialize)]
struct Report<'a> {
    passed: usize,
    failed: usize,
    cases: Vec<CaseResult<'a>>,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

pub fn run(args: PolicyDirArgs) -> anyhow::Result<u8> {
    let format = args.format;
    let snapshot = match Snapshot::load(args.sources()?) {
        Ok(s) => s,
        Err(e) => {
            match format {
                Format::Human => diagnostics::report(&e.diagnostics),
                Format::Json => print_json(&Report {
                    passed: 0,
                    failed: 0,
                    cases: Vec::new(),
                    diagnostics: diagnostics::json(&e.diagnostics),
                })?,
            }
            return Ok(exit::INVALID);
        }
    };
    let results: Vec<CaseResult<'_>> = snapshot
        .cases
        .iter()
        .map(|c| {
            let problems = gate::run_one(&snapshot, &c.case).err().unwrap_or_default();
            CaseResult {
                name: &c.case.name,
                file: &c.file,
                ok: problems.is_empty(),
                problems,
            }
        })
        .collect();
    let failed = results.iter().filter(|r| !r.ok).count();
    let passed = results.len() - failed;
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
        }
        Format::Json => print_json(&Report {
            passed,
            failed,
            cases: results,
            diagnostics: Vec::new(),
        })?,
    }
    Ok(if failed == 0 {
        exit::OK
    } else {
        exit::TESTS_FAILED
    })
}
