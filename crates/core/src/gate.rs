//! The policy-test gate: a snapshot goes live only if its own test cases pass.
//!
//! [`crate::snapshot`] reads and validates the inputs (and parses the cases with
//! them) without deciding anything; this module sits above the engine and runs
//! the cases on the loaded snapshot. `portcullis test` reports each case the
//! same way.

use std::path::PathBuf;

use crate::cases::{Case, LocatedCase};
use crate::decision::Decision;
use crate::diagnostic::Diagnostic;
use crate::engine::decide;
use crate::snapshot::{BuildError, Snapshot, Sources, on_build_stack};

impl Snapshot {
    /// Reads, validates and hashes every input, then runs the policy test cases
    /// (`tests/*.json` in the policy directory): a snapshot whose own cases fail is
    /// refused. Blocking: run it off the async runtime.
    pub fn build(sources: Sources) -> Result<Self, BuildError> {
        Self::rebuild(sources, None)
    }

    /// [`Snapshot::build`], reusing the geo databases of `previous` whose
    /// content has not changed (opening one verifies the whole file), and its
    /// screening index if the designation files are the same: a policy edit
    /// reads and hashes the list but neither parses nor indexes it again, and
    /// never holds two indexes at once.
    pub fn rebuild(sources: Sources, previous: Option<&Snapshot>) -> Result<Self, BuildError> {
        on_build_stack(|| {
            let snapshot = Self::load_reusing(sources, previous)?;
            let failures = run(&snapshot, &snapshot.cases);
            if !failures.is_empty() {
                return Err(failures
                    .iter()
                    .map(|f| f.diagnostic())
                    .collect::<Vec<_>>()
                    .into());
            }
            Ok(Self {
                test_cases: snapshot.cases.len(),
                ..snapshot
            })
        })
    }
}

/// Why one case failed.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// The file the case is in.
    pub file: PathBuf,
    /// The case's `name`.
    pub name: String,
    /// What differed from `expect`.
    pub problems: Vec<String>,
}

impl Failure {
    /// The failure as a diagnostic on the case's file.
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
    compare(case, &d)?;
    Ok(d)
}

/// Compares a decision made on a case's request with what the case expects;
/// `Err` lists what differed.
pub fn compare(case: &Case, d: &Decision) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let e = &case.expect;
    if d.decision != e.decision {
        problems.push(format!(
            "expected `{}`, got `{}`",
            e.decision.as_str(),
            d.decision.as_str()
        ));
    }
    let same = |what: &str, want: &Option<Vec<String>>, got: Vec<&str>, out: &mut Vec<String>| {
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
    same(
        "reasons",
        &e.reasons,
        d.reasons.iter().map(|r| &*r.policy).collect(),
        &mut problems,
    );
    same(
        "conditions",
        &e.conditions,
        d.conditions.iter().map(|c| &*c.id).collect(),
        &mut problems,
    );
    same(
        "obligations",
        &e.obligations,
        d.obligations.iter().map(|o| &*o.id).collect(),
        &mut problems,
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Runs every case; returns the failures.
pub(crate) fn run(snapshot: &Snapshot, cases: &[LocatedCase]) -> Vec<Failure> {
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
