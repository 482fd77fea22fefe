//! Invariants: properties a policy set must keep, written next to it in
//! `invariants/*.cedar`.
//!
//! An invariant is a `permit` whose scope and conditions select requests, and
//! an `@expect` annotation that says what every selected request must get:
//!
//! ```cedar
//! @id("kp-denied")
//! @expect("deny")
//! @message("every request tied to KP is denied")
//! permit (principal, action, resource) when { context.jurisdictions.contains("KP") };
//! ```
//!
//! `@expect` is `deny`, `deny_or_conditional` (never allowed outright), `allow`
//! or `allow_or_conditional` (never denied). The policies are validated
//! against the built-in schema like any policy.

use std::path::{Path, PathBuf};

use cedar_policy::{Effect, Policy, PolicySet, Schema, ValidationMode, Validator};
use serde::Serialize;

/// What every request an invariant selects must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Deny,
    DenyOrConditional,
    Allow,
    AllowOrConditional,
}

impl Expect {
    pub const ALL: [(&'static str, Self); 4] = [
        ("deny", Self::Deny),
        ("deny_or_conditional", Self::DenyOrConditional),
        ("allow", Self::Allow),
        ("allow_or_conditional", Self::AllowOrConditional),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, e)| *e == self)
            .map_or("", |(name, _)| name)
    }
}

/// One invariant.
#[derive(Debug, Clone)]
pub struct Invariant {
    pub id: String,
    pub expect: Expect,
    pub message: Option<String>,
    /// The selecting `permit`.
    pub policy: Policy,
    pub file: PathBuf,
}

/// Why invariants could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InvariantError {
    #[error("cannot read `{path}`: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The directory of invariants of a policy directory.
pub fn dir_of(policies: &Path) -> PathBuf {
    policies.join("invariants")
}

/// Reads `dir/*.cedar` (none if `dir` does not exist), in name order, every
/// problem of every file reported.
pub fn load(dir: &Path, schema: &Schema) -> Result<Vec<Invariant>, Vec<InvariantError>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(cause) => {
            return Err(vec![InvariantError::Read {
                path: dir.to_owned(),
                cause,
            }]);
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for file in files {
        match load_file(&file, schema) {
            Ok(found) => {
                for inv in found {
                    if ids.insert(inv.id.clone()) {
                        out.push(inv);
                    } else {
                        problems.push(invalid(
                            &file,
                            format!("invariant id `{}` is used twice", inv.id),
                        ));
                    }
                }
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('@'))
        .unwrap_or("")
        .chars()
        .take(60)
        .collect()
}

fn invalid(path: &Path, message: String) -> InvariantError {
    InvariantError::Invalid {
        path: path.to_owned(),
        message,
    }
}

fn load_file(file: &Path, schema: &Schema) -> Result<Vec<Invariant>, Vec<InvariantError>> {
    let text = std::fs::read_to_string(file).map_err(|cause| {
        vec![InvariantError::Read {
            path: file.to_owned(),
            cause,
        }]
    })?;
    let set: PolicySet = text
        .parse()
        .map_err(|e: cedar_policy::ParseErrors| vec![invalid(file, e.to_string())])?;
    let validation = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    let errors: Vec<InvariantError> = validation
        .validation_errors()
        .map(|e| invalid(file, e.to_string()))
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for t in set.templates() {
        let id = t.annotation("id").unwrap_or("(no @id)");
        problems.push(invalid(
            file,
            format!("invariant `{id}` is a template (`?principal`, `?resource`): an invariant selects requests with conditions, not slots"),
        ));
    }
    for p in set.policies() {
        let Some(id) = p.annotation("id").map(str::to_owned) else {
            problems.push(invalid(
                file,
                format!(
                    "an invariant has no @id (it begins `{}`)",
                    first_line(&p.to_string())
                ),
            ));
            continue;
        };
        if p.effect() != Effect::Permit {
            problems.push(invalid(
                file,
                format!("invariant `{id}` must be a `permit` selecting the requests it is about"),
            ));
            continue;
        }
        let Some(expect_text) = p.annotation("expect") else {
            problems.push(invalid(
                file,
                format!("invariant `{id}` has no @expect(\"deny\" | \"deny_or_conditional\" | \"allow\" | \"allow_or_conditional\")"),
            ));
            continue;
        };
        let Some(expect) = Expect::ALL
            .iter()
            .find(|(name, _)| *name == expect_text)
            .map(|(_, e)| *e)
        else {
            problems.push(invalid(
                file,
                format!("invariant `{id}`: @expect(\"{expect_text}\") is not one of deny, deny_or_conditional, allow, allow_or_conditional"),
            ));
            continue;
        };
        out.push(Invariant {
            policy: p
                .clone()
                .new_id(cedar_policy::PolicyId::new(format!("invariant::{id}"))),
            id,
            expect,
            message: p.annotation("message").map(str::to_owned),
            file: file.to_owned(),
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
