//! Policy test cases: `policies/tests/*.json`, each file one case or an array of
//! cases: their format and parser. Running them is [`crate::gate`]'s: a
//! snapshot whose own cases fail never goes live, and `portcullis test` runs
//! them and reports each one.
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

use crate::decision::Outcome;
use crate::diagnostic::Diagnostic;
use crate::request::DecideRequest;

/// The subdirectory of the policy directory holding test cases.
pub(crate) const TESTS_DIR: &str = "tests";

/// One test case: a request and the decision expected for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// `name`: what the case checks, shown when it fails.
    pub name: String,
    /// `request`: a decide request, validated as `POST /v1/decide` validates it.
    pub request: DecideRequest,
    /// `expect`: what the decision must be.
    pub(crate) expect: Expect,
}

/// The `expect` object of a case; a list left out is not compared.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Expect {
    /// `decision`: the outcome, required.
    pub decision: Outcome,
    /// `reasons`: the policy ids of the reasons, in any order.
    #[serde(default)]
    pub reasons: Option<Vec<String>>,
    /// `conditions`: the condition ids, in any order.
    #[serde(default)]
    pub conditions: Option<Vec<String>>,
    /// `obligations`: the obligation ids, in any order.
    #[serde(default)]
    pub obligations: Option<Vec<String>>,
}

/// A case and the file it came from.
#[derive(Debug, Clone)]
pub struct LocatedCase {
    /// The `tests/*.json` file holding the case.
    pub file: PathBuf,
    /// The case.
    pub case: Case,
}

/// Parses test case files given as `(file, text)` pairs (read by the snapshot
/// builder, in the same pass as the policies they test).
pub(crate) fn load_sources(
    sources: &[(PathBuf, String)],
) -> Result<Vec<LocatedCase>, Vec<Diagnostic>> {
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
