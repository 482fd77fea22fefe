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
use portcullis_core::lifecycle::Instant;
use portcullis_core::snapshot::Snapshot;
use serde::Serialize;

use crate::invariants::{Expect, Invariant};
use crate::model::Model;
use crate::witness::{Answer, Focus, Witness};

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
    /// `widening`: the candidate lets through what the base does not (or
    /// drops an obligation the base attaches); `narrowing`: the reverse.
    pub direction: Direction,
    /// The answers differ on outright allows (`allow`), on allows and
    /// conditionals together (`allow_or_conditional`), or on the obligation
    /// an allow carries (`obligation`).
    pub on: &'static str,
    /// The obligation compared, for `on: obligation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub obligation: Option<String>,
    /// The instant the policies were taken at, when later than the one asked
    /// (a policy starts or stops applying then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// `answers`: base, then candidate.
    pub witness: Witness,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Widening,
    Narrowing,
}

/// What `compare` found.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub differences: Vec<Difference>,
    /// Policies of the candidate that can err.
    pub can_err: Vec<Erring>,
    /// Policies of the base that can err.
    pub base_can_err: Vec<Erring>,
    /// What the comparison cannot tell, and why.
    pub notes: Vec<String>,
    /// How many instants were compared (the one asked and each later change).
    pub instants: usize,
    /// No widening can be missed: no `forbid` of the base can err.
    pub widening_proved: bool,
    /// No narrowing can be missed: no `forbid` of the candidate can err.
    pub narrowing_proved: bool,
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
    /// Why it could not be proved, when it was not disproved either.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unproved: Option<String>,
    /// Where it does not hold: one counterexample per action (and instant).
    pub counterexamples: Vec<Counterexample>,
}

/// A request an invariant fails on.
#[derive(Debug, Clone, Serialize)]
pub struct Counterexample {
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    pub witness: Witness,
}

/// What `check_invariants` found.
#[derive(Debug, Clone, Serialize)]
pub struct InvariantsReport {
    pub results: Vec<InvariantResult>,
    /// Policies that can err.
    pub can_err: Vec<Erring>,
    /// How many instants were checked.
    pub instants: usize,
}

/// A policy that can err.
#[derive(Debug, Clone, Serialize)]
pub struct Erring {
    pub policy: String,
    pub forbid: bool,
    pub action: String,
    pub witness: Witness,
}

/// What is asked of two compiled sets.
#[derive(Debug, Clone, Copy)]
enum Question {
    /// Everything the first allows, the second allows.
    Implies,
    /// Nothing is allowed by both.
    Disjoint,
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

fn threshold_of(snapshot: &Snapshot) -> u8 {
    snapshot.sources.settings.screening_threshold
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
        // `--strings-exp`: string constraints (`like`) need cvc5's extended
        // string solver.
        let solver = LocalSolver::cvc5_with_args([
            format!("--tlimit={SOLVER_TIME_LIMIT_MS}"),
            "--strings-exp".to_owned(),
        ])
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
        self.ask(Question::Implies, a, b).await
    }

    /// Per action: a request both `a` and `b` allow, if there is one.
    async fn overlap(
        &mut self,
        a: (&str, &PolicySet),
        b: (&str, &PolicySet),
    ) -> Result<Vec<(String, Env)>, ProveError> {
        self.ask(Question::Disjoint, a, b).await
    }

    /// Per action, the counterexample to `question` about `a` and `b`, if any.
    async fn ask(
        &mut self,
        question: Question,
        a: (&str, &PolicySet),
        b: (&str, &PolicySet),
    ) -> Result<Vec<(String, Env)>, ProveError> {
        let mut out = Vec::new();
        for env in self.envs.clone() {
            let ca = self.compile(a.0, a.1, &env)?;
            let cb = self.compile(b.0, b.1, &env)?;
            let found = match question {
                Question::Implies => {
                    self.compiler
                        .check_implies_with_counterexample_opt(&ca, &cb)
                        .await
                }
                Question::Disjoint => {
                    self.compiler
                        .check_disjoint_with_counterexample_opt(&ca, &cb)
                        .await
                }
            };
            if let Some(cex) = found.map_err(|e| Self::solver_error(&env, e))? {
                out.push((action_of(&env), cex));
            }
        }
        Ok(out)
    }

    /// Every way `candidate` answers differently from `base`, at `at` and at
    /// every later instant a policy of either starts or stops applying: one
    /// counterexample per action and kind.
    pub async fn compare(
        &mut self,
        base: &Snapshot,
        candidate: &Snapshot,
        at: Instant,
    ) -> Result<Comparison, ProveError> {
        let instants = model::instants(&[&base.policies, &candidate.policies], at);
        let mut differences: Vec<Difference> = Vec::new();
        let mut models = Vec::new();
        for (i, instant) in instants.iter().enumerate() {
            let b = Model::of(&base.policies, *instant, threshold_of(base))?;
            let c = Model::of(&candidate.policies, *instant, threshold_of(candidate))?;
            let when = (i > 0).then_some(*instant);
            let mut questions: Vec<(
                Direction,
                &'static str,
                Option<String>,
                PolicySet,
                PolicySet,
            )> = vec![
                (
                    Direction::Widening,
                    "allow",
                    None,
                    c.allow.clone(),
                    b.allow.clone(),
                ),
                (
                    Direction::Widening,
                    "allow_or_conditional",
                    None,
                    c.allow_or_conditional.clone(),
                    b.allow_or_conditional.clone(),
                ),
                (
                    Direction::Narrowing,
                    "allow",
                    None,
                    b.allow.clone(),
                    c.allow.clone(),
                ),
                (
                    Direction::Narrowing,
                    "allow_or_conditional",
                    None,
                    b.allow_or_conditional.clone(),
                    c.allow_or_conditional.clone(),
                ),
            ];
            // An obligation one side attaches where the other allows without
            // it: dropped is a widening (less control), added a narrowing. Asked
            // as "allowed with it on one side, and no forbid of the other side
            // applies, but not allowed with it there"; a counterexample where
            // the other side does not allow at all is a plain difference,
            // reported by the questions above, and skipped.
            let names: std::collections::BTreeSet<&String> =
                b.obligations.keys().chain(c.obligations.keys()).collect();
            for name in names {
                let none = || model::set(vec![model::facts_policy(threshold_of(base))?]);
                let with_b = match b.obligations.get(name) {
                    Some(set) => set.clone(),
                    None => none()?,
                };
                let with_c = match c.obligations.get(name) {
                    Some(set) => set.clone(),
                    None => none()?,
                };
                questions.push((
                    Direction::Widening,
                    "obligation",
                    Some(name.clone()),
                    plus_forbids(&with_b, &c.forbids_in_force)?,
                    with_c.clone(),
                ));
                questions.push((
                    Direction::Narrowing,
                    "obligation",
                    Some(name.clone()),
                    plus_forbids(&with_c, &b.forbids_in_force)?,
                    with_b,
                ));
            }
            for (direction, on, obligation, more, less) in questions {
                for (action, cex) in self
                    .implies(("policies", &more), ("policies", &less))
                    .await?
                {
                    let focus = Focus {
                        at: when,
                        obligation: obligation.as_deref(),
                        errs: None,
                    };
                    let witness = Witness::new(
                        &cex.request,
                        &cex.entities,
                        &[&b, &c],
                        &[base, candidate],
                        focus,
                    );
                    let allowed_both = witness.answers == [Answer::Allow, Answer::Allow];
                    if obligation.is_some() && !allowed_both {
                        continue;
                    }
                    // The same difference met again (another question, a later
                    // instant) is kept once.
                    let seen = differences.iter().any(|d| {
                        d.action == action
                            && d.obligation == obligation
                            && d.witness.answers == witness.answers
                            && d.witness.with_obligation == witness.with_obligation
                    });
                    if seen {
                        continue;
                    }
                    differences.push(Difference {
                        action,
                        direction,
                        on,
                        obligation: obligation.clone(),
                        at: when.map(|t| t.to_string()),
                        witness,
                    });
                }
            }
            models.push((b, c));
        }
        let Some((b, c)) = models.into_iter().next() else {
            return Err(ProveError::Solver {
                action: "(all)".into(),
                cause: "no instant to compare".into(),
            });
        };
        let base_can_err = self.never_errors(&b, base).await?;
        let can_err = self.never_errors(&c, candidate).await?;
        let mut notes = Vec::new();
        let widening_proved = !base_can_err.iter().any(|e| e.forbid);
        let narrowing_proved = !can_err.iter().any(|e| e.forbid);
        for (side, erring, missed) in [
            ("base", &base_can_err, "widening"),
            ("candidate", &can_err, "narrowing"),
        ] {
            for e in erring.iter().filter(|e| e.forbid) {
                notes.push(format!(
                    "not proved: a {missed} on the requests where `{}` of the {side} errs (on {}) would not be seen; the engine denies them and the model cannot tell",
                    e.policy, e.action
                ));
            }
        }
        if base.designations_digest() != candidate.designations_digest() {
            notes.push(format!(
                "the designation lists differ ({} in the base, {} in the candidate): prove ranges over every screening result and compares policies only; `portcullis impact` shows which customers a list change catches",
                base.designations.len(),
                candidate.designations.len()
            ));
        }
        Ok(Comparison {
            differences,
            can_err,
            base_can_err,
            notes,
            instants: instants.len(),
            widening_proved,
            narrowing_proved,
        })
    }

    /// Checks each invariant against the policies of `snapshot` at `at` and
    /// at every later instant one starts or stops applying.
    pub async fn check_invariants(
        &mut self,
        invariants: &[Invariant],
        snapshot: &Snapshot,
        at: Instant,
    ) -> Result<InvariantsReport, ProveError> {
        let threshold = threshold_of(snapshot);
        let instants = model::instants(&[&snapshot.policies], at);
        let first = Model::of(&snapshot.policies, at, threshold)?;
        let can_err = self.never_errors(&first, snapshot).await?;
        let mut results: Vec<InvariantResult> = invariants
            .iter()
            .map(|inv| InvariantResult {
                id: inv.id.clone(),
                expect: inv.expect,
                message: inv.message.clone(),
                file: inv.file.display().to_string(),
                holds: true,
                unproved: None,
                counterexamples: Vec::new(),
            })
            .collect();
        for (i, instant) in instants.iter().enumerate() {
            let model = Model::of(&snapshot.policies, *instant, threshold)?;
            let when = (i > 0).then_some(*instant);
            for (inv, result) in invariants.iter().zip(results.iter_mut()) {
                let selects =
                    model::set(vec![model::facts_policy(threshold)?, inv.policy.clone()])?;
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
                for (action, cex) in found {
                    if result.counterexamples.iter().any(|c| c.action == action) {
                        continue;
                    }
                    let focus = Focus {
                        at: when,
                        obligation: None,
                        errs: None,
                    };
                    let witness =
                        Witness::new(&cex.request, &cex.entities, &[&model], &[snapshot], focus);
                    result.holds = false;
                    result.counterexamples.push(Counterexample {
                        action,
                        at: when.map(|t| t.to_string()),
                        witness,
                    });
                }
            }
        }
        // A forbid that errs denies, which the model does not see: an
        // invariant that something is not denied is then not proved.
        let erring: Vec<&Erring> = can_err.iter().filter(|e| e.forbid).collect();
        for result in &mut results {
            let expects_no_denial =
                matches!(result.expect, Expect::Allow | Expect::AllowOrConditional);
            if result.holds && expects_no_denial && !erring.is_empty() {
                let names: Vec<String> = erring
                    .iter()
                    .map(|e| format!("`{}` on {}", e.policy, e.action))
                    .collect();
                result.holds = false;
                result.unproved = Some(format!(
                    "not proved: forbid {} can err, and a request it errs on is denied, which the proof cannot rule out",
                    names.join(", ")
                ));
                result
                    .counterexamples
                    .extend(erring.iter().map(|e| Counterexample {
                        action: e.action.clone(),
                        at: None,
                        witness: e.witness.clone(),
                    }));
            }
        }
        Ok(InvariantsReport {
            results,
            can_err,
            instants: instants.len(),
        })
    }

    /// Every policy of the set (in force now or not) that can err for some
    /// request enrichment can produce, with one such request per action.
    pub async fn never_errors(
        &mut self,
        model: &Model,
        snapshot: &Snapshot,
    ) -> Result<Vec<Erring>, ProveError> {
        let mut out = Vec::new();
        for policy in &model.all {
            let id = policy.id().to_string();
            let guarded = model.under_facts(policy)?;
            for env in self.envs.clone() {
                let compiled =
                    CompiledPolicy::compile(&guarded, &env, &self.schema).map_err(|e| {
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
                        forbid: policy.effect() == cedar_policy::Effect::Forbid,
                        action: action_of(&env),
                        witness: Witness::new(
                            &cex.request,
                            &cex.entities,
                            &[model],
                            &[snapshot],
                            Focus {
                                errs: Some(&id),
                                ..Focus::default()
                            },
                        ),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// `set` with `forbids` (of the other side) added under ids of their own.
fn plus_forbids(
    set: &PolicySet,
    forbids: &[cedar_policy::Policy],
) -> Result<PolicySet, ProveError> {
    let mut all: Vec<cedar_policy::Policy> = set.policies().cloned().collect();
    all.extend(forbids.iter().map(|p| {
        p.clone()
            .new_id(cedar_policy::PolicyId::new(format!("other::{}", p.id())))
    }));
    Ok(model::set(all)?)
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
    let report = std::thread::scope(|scope| {
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
                        .check_invariants(&found, snapshot, Instant::now())
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
    let results = report.results;
    let failed: Vec<Diagnostic> = results
        .iter()
        .filter(|r| !r.holds)
        .map(|r| {
            let example = r
                .counterexamples
                .first()
                .map(|c| {
                    let when = c.at.as_ref().map(|t| format!(" from {t}")).unwrap_or_default();
                    match &c.witness.request {
                        Some(req) => format!("; on {}{when}, for example {req}", c.action),
                        None => format!(
                            "; on {}{when}, for example the facts {}",
                            c.action,
                            serde_json::to_string(&c.witness.facts).unwrap_or_default()
                        ),
                    }
                })
                .unwrap_or_default();
            let why = r.unproved.as_ref().map(|u| format!(" ({u})")).unwrap_or_default();
            Diagnostic::file(
                std::path::Path::new(&r.file),
                format!(
                    "invariant `{}` does not hold: not every request it selects gets {}{why}{example}",
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
