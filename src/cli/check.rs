//! `portcullis check DIR`: loads a policy directory as `serve` would (policies,
//! designations, geo databases, test cases) and says what it holds or every
//! problem found.

use serde::Serialize;

use portcullis_core::snapshot::Snapshot;

use clap::Args;

use super::args::{Format, PolicyDirArgs};
use super::diagnostics::{self, JsonDiagnostic, Severity};
use super::exit;

/// `portcullis check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    dir: PolicyDirArgs,
    /// Treat warnings (a measure lasting more than 365 days without
    /// `@extended`, …) as errors: exit 3 when there is any.
    #[arg(long)]
    deny_warnings: bool,
    /// Also prove the invariants of `DIR/invariants/*.cedar` with the cvc5
    /// solver: exit 9 if one does not hold, 10 if the solver cannot run.
    #[arg(long)]
    prove: bool,
}

/// `--format json`: one document, whether the directory is valid or not.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policies: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_by_guards: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    designations: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    geo_databases: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_cases: Option<usize>,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let CheckArgs {
        dir: args,
        deny_warnings,
        prove,
    } = args;
    let format = args.format;
    let built = Snapshot::build(args.sources()?);
    if prove && let Ok(s) = &built {
        match portcullis_prove::gate(s) {
            Ok(n) => {
                if format == Format::Human {
                    println!("{n} invariant(s) hold");
                }
            }
            Err(portcullis_prove::GateError::Refused(found)) => {
                diagnostics::report(&found);
                eprintln!(
                    "refused: the invariants do not hold (`portcullis prove DIR` shows each counterexample)"
                );
                return Ok(exit::INVARIANT_VIOLATED);
            }
            Err(portcullis_prove::GateError::Prove(
                e @ portcullis_prove::ProveError::NoSolver { .. },
            )) => {
                eprintln!("error: {e}");
                return Ok(exit::NO_SOLVER);
            }
            Err(portcullis_prove::GateError::Prove(e)) => return Err(e.into()),
        }
    }
    let warnings = built.as_ref().map_or(&[][..], |s| s.policies.warnings());
    let refused = built.is_err() || (deny_warnings && !warnings.is_empty());
    match (&built, format) {
        (Ok(_), Format::Human) if refused => {
            diagnostics::report_warnings(warnings);
            eprintln!("refused: warnings are denied (--deny-warnings)");
        }
        (Ok(s), Format::Human) => {
            diagnostics::report_warnings(warnings);
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
        }
        (Err(e), Format::Human) => diagnostics::report(&e.diagnostics),
        (Ok(s), Format::Json) => print_json(&Summary {
            ok: !refused,
            revision: Some(&s.revision),
            policies: Some(s.policies.len()),
            decided_by_guards: Some(s.policies.decided_by_guards()),
            designations: Some(s.designations.len()),
            geo_databases: Some(s.geo.databases().len()),
            test_cases: Some(s.test_cases),
            diagnostics: diagnostics::json_as(warnings, Severity::Warning),
        })?,
        (Err(e), Format::Json) => print_json(&Summary {
            ok: false,
            revision: None,
            policies: None,
            decided_by_guards: None,
            designations: None,
            geo_databases: None,
            test_cases: None,
            diagnostics: diagnostics::json(&e.diagnostics),
        })?,
    }
    Ok(if refused { exit::INVALID } else { exit::OK })
}

/// Prints one JSON document on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
