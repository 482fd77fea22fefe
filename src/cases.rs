//! Policy test cases: `policies/tests/*.json`, each file one case or an array of
//! cases. A snapshot whose own cases fail never goes live; `portcullis test`
//! runs them and reports each one.
//!
//! ```json
//! {"name": "KP reseller is denied",
//!  "request": {"action": "open_account", "customer": {"id": "c", "name": "N"},
//!              "reseller": {"country": "KP"}},
//!  "expect": {"decision": "deny", "reasons": ["sm-kp"]}}
//! ```
//! `reasons` (policy ids), `conditions` and `obligations` (their ids) are
//! optional; when given they must match exactly, in any order.

use std::path::PathBuf;

use serde::Deserialize;

use crate::decision::{Decision, Outcome};
use crate::diagnostic::Diagnostic;
use crate::engine::decide;
use crate::request::DecideRequest;
use crate::snapshot::Snapshot;

/// The subdirectory of the policy directory holding test cases.
pub const TESTS_DIR: &str = "tests";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub request: DecideRequest,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub decision: Outcome,
    #[serde(default)]
    pub reasons: Option<Vec<String>>,
    #[serde(default)]
    pub conditions: Option<Vec<String>>,
    #[serde(default)]
    pub obligations: Option<Vec<String>>,
}

/// A case and the file it came from.
#[derive(Debug, Clone)]
pub struct LocatedCase {
    pub file: PathBuf,
    pub case: Case,
}

/// Parses test case files given as `(file, text)` pairs (read by the snapshot
/// builder, in the same pass as the policies they test).
pub fn load_sources(sources: &[(PathBuf, String)]) -> Result<Vec<LocatedCase>, Vec<Diagnostic>> {
    let mut cases = Vec::new();
    let mut diags = Vec::new();
    for (file, text) in sources {
        match parse(text) {
            Ok(found) => cases.extend(found.into_iter().map(|case| LocatedCase {
                file: file.clone(),
                case,
            })),
            Err((line, column, message)) => {
                diags.push(Diagnostic::new(file, line, column, message));
            }
        }
    }
    if diags.is_empty() {
        Ok(cases)
    } else {
        Err(diags)
    }
}

fn parse(text: &str) -> Result<Vec<Case>, (usize, usize, String)> {
    // Parse strictly as one case first, then as an array, so that the error
    // reported is about the form the author wrote.
    let trimmed = text.trim_start();
    let result = if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<Case>>(text)
    } else {
        serde_json::from_str::<Case>(text).map(|c| vec![c])
    };
    result.map_err(|e| {
        (
            e.line(),
            e.column(),
            format!("invalid test case: {}", strip_position(&e.to_string())),
        )
    })
}

fn strip_position(msg: &str) -> &str {
    msg.rfind(" at line ")
        .and_then(|i| msg.get(..i))
        .unwrap_or(msg)
}

/// Why one case failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub file: PathBuf,
    pub name: String,
    pub problems: Vec<String>,
}

impl Failure {
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::file(
            &self.file,
            format!(
                "test case `{}` failed: {}",
                self.name,
                self.problems.join("; ")
            ),
        )
    }
}

/// Runs one case on a snapshot; `Err` lists what differed.
pub fn run_one(snapshot: &Snapshot, case: &Case) -> Result<Decision, Vec<String>> {
    let d = decide(snapshot, &case.request);
    let mut problems = Vec::new();
    let e = &case.expect;
    if d.decision != e.decision {
        problems.push(format!(
            "expected `{}`, got `{}`",
            e.decision.as_str(),
            d.decision.as_str()
        ));
    }
    let compare =
        |what: &str, want: &Option<Vec<String>>, got: Vec<&str>, out: &mut Vec<String>| {
            if let Some(want) = want {
                let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
                let mut got = got;
                want.sort_unstable();
                got.sort_unstable();
                if want != got {
                    out.push(format!("expected {what} {want:?}, got {got:?}"));
                }
            }
        };
    compare(
        "reasons",
        &e.reasons,
        d.reasons.iter().map(|r| &*r.policy).collect(),
        &mut problems,
    );
    compare(
        "conditions",
        &e.conditions,
        d.conditions.iter().map(|c| &*c.id).collect(),
        &mut problems,
    );
    compare(
        "obligations",
        &e.obligations,
        d.obligations.iter().map(|o| &*o.id).collect(),
        &mut problems,
    );
    if problems.is_empty() {
        Ok(d)
    } else {
        Err(problems)
    }
}

/// Runs every case; returns the failures.
pub fn run(snapshot: &Snapshot, cases: &[LocatedCase]) -> Vec<Failure> {
    cases
        .iter()
        .filter_map(|c| {
            run_one(snapshot, &c.case).err().map(|problems| Failure {
                file: c.file.clone(),
                name: c.case.name.clone(),
                problems,
            })
        })
        .collect()
}
