//! Static analysis of Portcullis policy sets: for *every* request, not only
//! the ones at hand.
//!
//! Built on Cedar's symbolic compiler (`cedar-policy-symcc`), which turns a
//! policy set into SMT terms and asks the cvc5 solver (run as a process:
//! `CVC5=/path/to/cvc5`, else `cvc5` on `PATH`). Three questions:
//!
//! - [`Prover::compare`]: can the candidate set allow (or make conditional)
//!   a request the base set does not, and the reverse? Per action, with a
//!   counterexample.
//! - [`Prover::check_invariants`]: does every request an invariant selects get
//!   what it expects ([`invariants`])?
//! - [`Prover::never_errors`]: can a policy err for some well-typed request?
//!   A `forbid` that errs denies everyone it errs on.
//!
//! Every counterexample is reported as a [`witness::Witness`]: the facts, the
//! answers, and a `/v1/decide` request that reproduces them on the real engine
//! when one can be built.

pub mod invariants;
pub mod model;
pub mod witness;

use cedar_policy::{PolicySet, RequestEnv, Schema};
use cedar_policy_symcc::solver::LocalSolver;
use cedar_policy_symcc::{CedarSymCompiler, CompiledPolicy, CompiledPolicySet, Env};
use portcullis_core::snapshot::Snapshot;
use serde::Serialize;

use crate::invariants::{Expect, Invariant};
use crate::model::Model;
use crate::witness::Witness;

/// How long the solver may take on one question (cvc5's `--tlimit`, ms).
pub const SOLVER_TIME_LIMIT_MS: u32 = 60_000;

/// Why a proof could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error(
        "cannot start the solver `{program}`: {cause}; install cvc5 (Debian and Ubuntu: `apt-get install cvc5`; others: https://cvc5.github.io/downloads.html) or name it with CVC5=/path/to/cvc5"
    )]
    NoSolver { program: String, cause: String },
    #[error("the solver failed on action `{action}`: {cause}")]
    Solver { action: String, cause: String },
    #[error("`{what}` cannot be analysed for action `{action}`: {cause}")]
    Compile {
        what: String,
        action: String,
        cause: String,
    },
    #[error(transparent)]
    Model(#[from] model::ModelError),
}

/// The solver program that will be run.
pub fn solver_program() -> String {
    std::env::var("CVC5").unwrap_or_else(|_| "cvc5".to_owned())
}

/// One difference between two sets on one action.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub action: String,
    /// `widening`: the candidate lets through what the base does not;
    /// `narrowing`: the reverse.
    pub direction: Direction,
    /// The answers differ on outright allows (`allow`), or on allows and
    /// conditionals together (`allow_or_conditional`).
    pub on: &'static str,
    /// `answers`: base, then candidate.
    pub witness: Witness,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Widening,
    Narrowing,
}

/// An invariant's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct InvariantResult {
    pub id: String,
    pub expect: Expect,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub file: String,
    pub holds: bool,
    /// Where it does not: one counterexample per action it fails on.
    pub counterexamples: Vec<(String, Witness)>,
}

/// A policy that can err.
#[derive(Debug, Clone, Serialize)]
pub struct Erring {
    pub policy: String,
    pub action: String,
    pub witness: Witness,
}

/// The solver and the request environments of the built-in schema.
pub struct Prover {
    compiler: CedarSymCompiler<LocalSolver>,
    schema: Schema,
    envs: Vec<RequestEnv>,
}

fn action_of(env: &RequestEnv) -> String {
    env.action().id().unescaped().to_owned()
}

impl Prover {
    /// Starts the solver. Needs a Tokio runtime with I/O (the solver is a
    /// child process spoken to through pipes).
    pub fn start(schema: Schema) -> Result<Self, ProveError> {
        let program = solver_program();
        let no_solver = |cause: String| ProveError::NoSolver {
            program: program.clone(),
            cause,
        };
        // Checked first: the crate's own error for a missing program says less.
        std::process::Command::new(&program)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| no_solver(e.to_string()))?;
        let solver = LocalSolver::cvc5_with_args([format!("--tlimit={SOLVER_TIME_LIMIT_MS}")])
            .map_err(|e| no_solver(e.to_string()))?;
        let compiler = CedarSymCompiler::new(solver).map_err(|e| no_solver(e.to_string()))?;
        // In a fixed order (the schema's is not), so that reports are stable.
        let mut envs: Vec<RequestEnv> = schema.request_envs().collect();
        envs.sort_by_key(action_of);
        Ok(Self {
            compiler,
            schema,
            envs,
        })
    }

    fn compile(
        &self,
        what: &str,
        set: &PolicySet,
        env: &RequestEnv,
    ) -> Result<CompiledPolicySet, ProveError> {
        CompiledPolicySet::compile(set, env, &self.schema).map_err(|e| ProveError::Compile {
            what: what.to_owned(),
            action: action_of(env),
            cause: e.to_string(),
        })
    }

    fn solver_error(env: &RequestEnv, e: impl std::fmt::Display) -> ProveError {
        ProveError::Solver {
            action: action_of(env),
            cause: e.to_string(),
        }
    }

    /// Per action: a request `a` allows and `b` does not, if there is one.
    async fn implies(
        &mut self,
        a: (&str, &PolicySet),
        b: (&str, &PolicySet),
    ) -> Result<Vec<(String, Env)>, ProveError> {
        let mut out = Vec::new();
        for env in self.envs.clone() {
            let ca = self.compile(a.0, a.1, &env)?;
            let cb = self.compile(b.0, b.1, &env)?;
            if let Some(cex) = self
                .compiler
                .check_implies_with_counterexample_opt(&ca, &cb)
                .await
                .map_err(|e| Self::solver_error(&env, e))?
            {
                out.push((action_of(&env), cex));
            }
        }
        Ok(out)
    }

    /// Per action: a request both `a` and `b` allow, if there is one.
    async fn overlap(
        &mut self,
        a: (&str, &PolicySet),
        b: (&str, &PolicySet),
    ) -> Result<Vec<(String, Env)>, ProveError> {
        let mut out = Vec::new();
        for env in self.envs.clone() {
            let ca = self.compile(a.0, a.1, &env)?;
            let cb = self.compile(b.0, b.1, &env)?;
            if let Some(cex) = self
                .compiler
                .check_disjoint_with_counterexample_opt(&ca, &cb)
                .await
                .map_err(|e| Self::solver_error(&env, e))?
            {
                out.push((action_of(&env), cex));
            }
        }
        Ok(out)
    }

    /// Every way `candidate` answers differently from `base`, one
    /// counterexample per action and kind: widenings first.
    pub async fn compare(
        &mut self,
        base: (&Model, &Snapshot),
        candidate: (&Model, &Snapshot),
    ) -> Result<Vec<Difference>, ProveError> {
        let (b, bs) = base;
        let (c, cs) = candidate;
        let mut out = Vec::new();
        let questions: [(Direction, &'static str, &PolicySet, &PolicySet); 4] = [
            (Direction::Widening, "allow", &c.allow, &b.allow),
            (
                Direction::Widening,
                "allow_or_conditional",
                &c.allow_or_conditional,
                &b.allow_or_conditional,
            ),
            (Direction::Narrowing, "allow", &b.allow, &c.allow),
            (
                Direction::Narrowing,
                "allow_or_conditional",
                &b.allow_or_conditional,
                &c.allow_or_conditional,
            ),
        ];
        for (direction, on, more, less) in questions {
            for (action, cex) in self.implies(("policies", more), ("policies", less)).await? {
                let witness = Witness::new(&cex.request, &cex.entities, &[b, c], &[bs, cs]);
                // The same request can answer both questions; keep it once.
                if out.iter().any(|d: &Difference| {
                    d.action == action && d.witness.answers == witness.answers
                }) {
                    continue;
                }
                out.push(Difference {
                    action,
                    direction,
                    on,
                    witness,
                });
            }
        }
        Ok(out)
    }

    /// Checks each invariant against `model` (of `snapshot`'s policies).
    pub async fn check_invariants(
        &mut self,
        invariants: &[Invariant],
        model: &Model,
        snapshot: &Snapshot,
        threshold: u8,
    ) -> Result<Vec<InvariantResult>, ProveError> {
        let mut out = Vec::new();
        for inv in invariants {
            let selects = model::set(vec![model::facts_policy(threshold)?, inv.policy.clone()])?;
            let what = format!("invariant {}", inv.id);
            let found = match inv.expect {
                Expect::Deny => {
                    self.overlap((&what, &selects), ("policies", &model.allow_or_conditional))
                        .await?
                }
                Expect::DenyOrConditional => {
                    self.overlap((&what, &selects), ("policies", &model.allow))
                        .await?
                }
                Expect::Allow => {
                    self.implies((&what, &selects), ("policies", &model.allow))
                        .await?
                }
                Expect::AllowOrConditional => {
                    self.implies((&what, &selects), ("policies", &model.allow_or_conditional))
                        .await?
                }
            };
            let counterexamples: Vec<(String, Witness)> = found
                .into_iter()
                .map(|(action, cex)| {
                    let w = Witness::new(&cex.request, &cex.entities, &[model], &[snapshot]);
                    (action, w)
                })
                .collect();
            out.push(InvariantResult {
                id: inv.id.clone(),
                expect: inv.expect,
                message: inv.message.clone(),
                file: inv.file.display().to_string(),
                holds: counterexamples.is_empty(),
                counterexamples,
            });
        }
        Ok(out)
    }

    /// Every policy of `model` in force that can err for some well-typed
    /// request, with one such request per action.
    pub async fn never_errors(
        &mut self,
        model: &Model,
        snapshot: &Snapshot,
    ) -> Result<Vec<Erring>, ProveError> {
        let mut out = Vec::new();
        for policy in &model.in_force {
            let id = policy.id().to_string();
            for env in self.envs.clone() {
                let compiled =
                    CompiledPolicy::compile(policy, &env, &self.schema).map_err(|e| {
                        ProveError::Compile {
                            what: format!("policy {id}"),
                            action: action_of(&env),
                            cause: e.to_string(),
                        }
                    })?;
                if let Some(cex) = self
                    .compiler
                    .check_never_errors_with_counterexample_opt(&compiled)
                    .await
                    .map_err(|e| Self::solver_error(&env, e))?
                {
                    out.push(Erring {
                        policy: id.clone(),
                        action: action_of(&env),
                        witness: Witness::new(&cex.request, &cex.entities, &[model], &[snapshot]),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Why a snapshot is refused by [`gate`].
#[derive(Debug)]
pub enum GateError {
    /// The invariants could not be read, or one does not hold: one diagnostic each.
    Refused(Vec<portcullis_core::diagnostic::Diagnostic>),
    /// The proof could not be made (no solver, a solver failure).
    Prove(ProveError),
}

/// Proves the invariants of `snapshot`'s policy directory
/// (`invariants/*.cedar`) against its policies as in force now: the gate of
/// `check --prove` and `serve --prove`. Returns how many hold (all of them).
/// Blocking: the solver runs on a thread and runtime of its own.
pub fn gate(snapshot: &Snapshot) -> Result<usize, GateError> {
    use portcullis_core::diagnostic::Diagnostic;
    let dir = invariants::dir_of(&snapshot.sources.policies);
    let found = invariants::load(&dir, &snapshot.schema).map_err(|problems| {
        GateError::Refused(
            problems
                .iter()
                .map(|p| match p {
                    invariants::InvariantError::Read { path, .. }
                    | invariants::InvariantError::Invalid { path, .. } => {
                        Diagnostic::file(path, p.to_string())
                    }
                })
                .collect(),
        )
    })?;
    if found.is_empty() {
        return Ok(0);
    }
    let threshold = snapshot.sources.settings.screening_threshold;
    let model = Model::of(
        &snapshot.policies,
        portcullis_core::lifecycle::Instant::now(),
        threshold,
    )
    .map_err(|e| GateError::Prove(e.into()))?;
    let results = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| ProveError::NoSolver {
                        program: solver_program(),
                        cause: format!("cannot start a runtime for it: {e}"),
                    })?;
                runtime.block_on(async {
                    let mut prover = Prover::start(snapshot.schema.clone())?;
                    prover
                        .check_invariants(&found, &model, snapshot, threshold)
                        .await
                })
            })
            .join()
    })
    .map_err(|_| {
        GateError::Prove(ProveError::Solver {
            action: "(all)".into(),
            cause: "the proof thread panicked".into(),
        })
    })?
    .map_err(GateError::Prove)?;
    let failed: Vec<Diagnostic> = results
        .iter()
        .filter(|r| !r.holds)
        .map(|r| {
            let example = r
                .counterexamples
                .first()
                .map(|(action, w)| match &w.request {
                    Some(req) => format!("; on {action}, for example {req}"),
                    None => format!(
                        "; on {action}, for example the facts {}",
                        serde_json::to_string(&w.facts).unwrap_or_default()
                    ),
                })
                .unwrap_or_default();
            Diagnostic::file(
                std::path::Path::new(&r.file),
                format!(
                    "invariant `{}` does not hold: not every request it selects gets {}{example}",
                    r.id,
                    r.expect.as_str()
                ),
            )
        })
        .collect();
    if failed.is_empty() {
        Ok(results.len())
    } else {
        Err(GateError::Refused(failed))
    }
}
