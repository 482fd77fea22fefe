//! `portcullis check DIR`: loads a policy directory as `serve` would (policies,
//! designations, geo databases, test cases) and says what it holds or every
//! problem found.

use serde::Serialize;

use portcullis_core::snapshot::Snapshot;

use super::args::{Format, PolicyDirArgs};
use super::diagnostics::{self, JsonDiagnostic};
use super::exit;

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

pub fn run(args: PolicyDirArgs) -> anyhow::Result<u8> {
    let format = args.format;
    let built = Snapshot::build(args.sources()?);
    match (&built, format) {
        (Ok(s), Format::Human) => {
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
            ok: true,
            revision: Some(&s.revision),
            policies: Some(s.policies.len()),
            decided_by_guards: Some(s.policies.decided_by_guards()),
            designations: Some(s.designations.len()),
            geo_databases: Some(s.geo.databases().len()),
            test_cases: Some(s.test_cases),
            diagnostics: Vec::new(),
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
    Ok(if built.is_ok() {
        exit::OK
    } else {
        exit::INVALID
    })
}

/// Prints one JSON document on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
