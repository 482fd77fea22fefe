//! Loading the Cedar policy set: files, `@id`s, annotations, strict validation.
//!
//! Every problem is reported as a [`Diagnostic`] with file, line and column.
//! Each validated policy is compiled once: its Cedar condition (scope and body
//! as one expression) is built at load, and the set is sliced by action, so a
//! request evaluates only the policies whose scope admits its action.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, Effect, EntityUid, Policy, PolicyId, PolicySet, Schema, ValidationMode,
    Validator,
};

use cedar_policy_core::ast::{self, ExprKind, Var};

use crate::decision::{NO_PERMIT, PolicyMeta};
use crate::diagnostic::Diagnostic;
use crate::lifecycle::{self, Instant, Window};
use crate::request::Action;

pub mod limits;

/// One policy, ready to evaluate.
#[derive(Debug)]
pub(crate) struct CompiledPolicy {
    /// Its id and annotations.
    pub(crate) meta: PolicyMeta,
    /// Scope and conditions as one expression, built once instead of per request.
    pub(crate) condition: ast::Expr,
    /// Necessary conditions checked on the facts before evaluating (see `slicing`).
    pub(crate) guards: Vec<crate::slicing::Guard>,
    /// The guards are the whole condition: when they hold (and the action scope
    /// admits the request) the policy is satisfied, without evaluating it.
    pub(crate) decided_by_guards: bool,
}

/// A validated policy set, ready to evaluate.
#[derive(Debug)]
pub struct LoadedPolicies {
    /// The policies as written (validated against the schema).
    pub source: PolicySet,
    compiled: Vec<CompiledPolicy>,
    /// Indices into `compiled` of the policies whose action scope admits each
    /// action. A policy outside its scope is never satisfied and never errs, so a
    /// slice gives exactly the answer of the whole set.
    by_action: [Vec<usize>; 3],
    /// Whether any policy reads `source_ips`; if none does, the (costly) set of
    /// `ipaddr` values need not be built per request.
    pub(crate) reads_source_ips: bool,
    /// What the author should look at; none stops the set from loading.
    warnings: Vec<Diagnostic>,
    /// Whether any policy has an `@effective` or `@expires` window; if none
    /// has, decisions do not check windows at all.
    pub(crate) dated: bool,
}

impl LoadedPolicies {
    /// The policies that can apply to `action`.
    pub(crate) fn for_action(&self, action: Action) -> impl Iterator<Item = &CompiledPolicy> {
        let [open, maintain, provision] = &self.by_action;
        let slice = match action {
            Action::OpenAccount => open,
            Action::MaintainAccount => maintain,
            Action::Provision => provision,
        };
        slice.iter().filter_map(|&i| self.compiled.get(i))
    }

    /// Every policy, compiled, in load order.
    pub(crate) fn compiled(&self) -> impl Iterator<Item = &CompiledPolicy> {
        self.compiled.iter()
    }

    /// How many policies the set holds.
    pub fn len(&self) -> usize {
        self.compiled.len()
    }

    /// How many policies are decided by their guards alone (never evaluated by Cedar).
    pub fn decided_by_guards(&self) -> usize {
        self.compiled.iter().filter(|p| p.decided_by_guards).count()
    }

    /// Whether the set holds no policy (every request is then denied).
    pub fn is_empty(&self) -> bool {
        self.compiled.is_empty()
    }

    /// Warnings found while loading (a measure that lasts too long), located.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// Every policy's annotations, in load order.
    pub fn metas(&self) -> impl Iterator<Item = &PolicyMeta> {
        self.compiled.iter().map(|p| &p.meta)
    }

    /// The first instant after `now` at which some policy starts or stops applying.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        self.compiled
            .iter()
            .filter_map(|p| p.meta.window.next_change(now))
            .min()
    }

    /// Every policy, in load order, to be changed by a test (a wrong guard).
    #[cfg(test)]
    pub(crate) fn compiled_mut(&mut self) -> &mut [CompiledPolicy] {
        &mut self.compiled
    }
}

/// A measure as `/v1/status` lists it: a policy with a `@measure` or a window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MeasureEntry {
    /// `policy`: the policy's `@id`.
    pub policy: Arc<str>,
    /// `measure`: its `@measure`, if any.
    pub measure: Option<Arc<str>>,
    /// `effective`, `expires`, `extended`: its window, each when set.
    #[serde(flatten)]
    pub window: lifecycle::Window,
}

/// A measure starting or ending soon.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MeasureEvent {
    /// `policy`: the policy's `@id`.
    pub policy: Arc<str>,
    /// `measure`: its `@measure`, if any.
    pub measure: Option<Arc<str>>,
    /// `event`: `starts` or `ends`.
    pub event: &'static str,
    /// `at`: when.
    pub at: Instant,
}

/// The measures of a policy set at one instant, by state, and what changes soon.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measures {
    /// `as_of`: the instant the states are for.
    pub as_of: Instant,
    /// `in_force`: the measures that apply now.
    pub in_force: Vec<MeasureEntry>,
    /// `scheduled`: those whose `@effective` instant is ahead.
    pub scheduled: Vec<MeasureEntry>,
    /// `expired`: those whose `@expires` instant has passed.
    pub expired: Vec<MeasureEntry>,
    /// `upcoming`: starts and ends within the horizon asked for, soonest first.
    pub upcoming: Vec<MeasureEvent>,
}

impl Measures {
    /// How many measures are in each state.
    pub fn counts(&self) -> [(lifecycle::MeasureState, usize); 3] {
        use lifecycle::MeasureState::{Expired, InForce, Scheduled};
        [
            (Scheduled, self.scheduled.len()),
            (InForce, self.in_force.len()),
            (Expired, self.expired.len()),
        ]
    }
}

impl LoadedPolicies {
    /// The measures (policies with a `@measure` or a window) at `now`, with
    /// those that start or end within `horizon`.
    pub fn measures(&self, now: Instant, horizon: std::time::Duration) -> Measures {
        let until = now.plus(horizon);
        let mut m = Measures {
            as_of: now,
            in_force: Vec::new(),
            scheduled: Vec::new(),
            expired: Vec::new(),
            upcoming: Vec::new(),
        };
        for meta in self.metas() {
            let window = &meta.window;
            if meta.measure.is_none() && !window.is_dated() {
                continue;
            }
            let event = |event, at| MeasureEvent {
                policy: meta.id.clone(),
                measure: meta.measure.clone(),
                event,
                at,
            };
            for (name, at) in [("starts", window.effective), ("ends", window.expires)] {
                if let Some(at) = at.filter(|t| now < *t && *t <= until) {
                    m.upcoming.push(event(name, at));
                }
            }
            let entry = MeasureEntry {
                policy: meta.id.clone(),
                measure: meta.measure.clone(),
                window: window.clone(),
            };
            match window.state(now) {
                lifecycle::MeasureState::InForce => m.in_force.push(entry),
                lifecycle::MeasureState::Scheduled => m.scheduled.push(entry),
                lifecycle::MeasureState::Expired => m.expired.push(entry),
            }
        }
        m.upcoming.sort_by_key(|e| e.at);
        m
    }
}

/// Parses, names and validates policies given as `(file, text)` pairs.
pub fn load_sources(
    sources: &[(PathBuf, String)],
    schema: &Schema,
) -> Result<LoadedPolicies, Vec<Diagnostic>> {
    let named = name_policies(sources)?;
    validate(&named, sources, schema)?;
    Ok(compile(named))
}

/// The policies of every file, each under its `@id`, and what its annotations say.
struct Named {
    source: PolicySet,
    meta: HashMap<PolicyId, PolicyMeta>,
    warnings: Vec<Diagnostic>,
}

/// One policy as written in its file, with where it starts.
struct Located {
    policy: Policy,
    /// Byte offsets of its first character and just past its last.
    start: usize,
    end: usize,
    line: usize,
    column: usize,
}

/// Parses every file and adds each policy under its `@id`; every problem of
/// every file is reported.
fn name_policies(sources: &[(PathBuf, String)]) -> Result<Named, Vec<Diagnostic>> {
    let mut named = Named {
        source: PolicySet::new(),
        meta: HashMap::new(),
        warnings: Vec::new(),
    };
    let mut diags = Vec::new();
    for (file, text) in sources {
        let located = match parse_file(file, text) {
            Ok(located) => located,
            Err(problems) => {
                diags.extend(problems);
                continue;
            }
        };
        for l in located {
            let added = check_depth(file, text, &l).and_then(|()| named.add(file, text, l));
            if let Err(problem) = added {
                diags.push(problem);
            }
        }
    }
    if diags.is_empty() {
        Ok(named)
    } else {
        Err(diags)
    }
}

/// Parses one file into its policies, in the order they are written, each
/// located at its first character. Brackets and size are checked first:
/// Cedar's parser recurses per level.
fn parse_file(file: &Path, text: &str) -> Result<Vec<Located>, Vec<Diagnostic>> {
    let statements = limits::scan(text);
    let over: Vec<Diagnostic> = statements
        .iter()
        .filter_map(limits::check_text)
        .map(|(offset, message)| {
            let (line, column) = line_col(text, offset);
            Diagnostic::new(file, line, column, message).with_help(limits::NESTING_HELP)
        })
        .collect();
    if !over.is_empty() {
        return Err(over);
    }
    let parsed = PolicySet::from_str(text).map_err(|errors| {
        errors
            .iter()
            .map(|e| diagnostic(file, text, e))
            .collect::<Vec<_>>()
    })?;
    if parsed.templates().next().is_some() {
        return Err(vec![Diagnostic {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: "policy templates (`?principal`, `?resource`) are not supported".into(),
            help: Some("write static policies".into()),
        }]);
    }
    // Cedar names the policies of a parsed text policy0, policy1, … in order.
    let mut ordered: Vec<&Policy> = parsed.policies().collect();
    ordered.sort_by_key(|p| {
        AsRef::<str>::as_ref(p.id())
            .strip_prefix("policy")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
    });
    Ok(ordered
        .into_iter()
        .enumerate()
        .map(|(index, policy)| {
            let start = statements.get(index).map_or(0, |s| s.start);
            let end = statements.get(index).map_or(text.len(), |s| s.end);
            let (line, column) = line_col(text, start);
            Located {
                policy: policy.clone(),
                start,
                end,
                line,
                column,
            }
        })
        .collect())
}

/// Refuses a policy whose expression nests deeper than [`limits::MAX_NESTING`].
fn check_depth(file: &Path, text: &str, l: &Located) -> Result<(), Diagnostic> {
    let core: &ast::Policy = l.policy.as_ref();
    let Some(condition) = core.non_scope_constraints() else {
        return Ok(());
    };
    let (levels, deepest) = limits::depth(condition);
    if levels <= limits::MAX_NESTING {
        return Ok(());
    }
    let (line, column) = deepest.map_or((l.line, l.column), |o| line_col(text, o));
    Err(
        Diagnostic::new(file, line, column, limits::too_deep(levels))
            .with_help(limits::NESTING_HELP),
    )
}

impl Named {
    /// Adds one policy under its `@id`, after checking its annotations and
    /// that no policy already has that id.
    fn add(&mut self, file: &Path, text: &str, l: Located) -> Result<(), Diagnostic> {
        let at = |message: String, help: Option<&str>| Diagnostic {
            file: file.to_owned(),
            line: l.line,
            column: l.column,
            message,
            help: help.map(str::to_owned),
        };
        // An annotation's problem is shown at the annotation.
        let at_annotation = |key: &str, message: String, help: Option<&str>| {
            let found = text
                .get(l.start..l.end)
                .and_then(|statement| annotation_offset(statement, key))
                .map(|o| line_col(text, l.start + o));
            let (line, column) = found.unwrap_or((l.line, l.column));
            Diagnostic {
                line,
                column,
                ..at(message, help)
            }
        };
        let annotated = annotations(&l.policy).map_err(|e| match e.key {
            Some(key) => at_annotation(&key, e.message, None),
            None => at(e.message, None),
        })?;
        if let Some(message) = annotated.window.error() {
            return Err(at_annotation("expires", message, None));
        }
        if let Some(message) = annotated.window.warning() {
            let key = if annotated.window.expires.is_some() {
                "expires"
            } else {
                "effective"
            };
            self.warnings.push(at_annotation(
                key,
                format!("policy `{}`: {message}", annotated.id),
                Some(lifecycle::EXTEND_HELP),
            ));
        }
        let id = PolicyId::new(annotated.id.as_ref());
        if let Some(first) = self.meta.get(&id) {
            return Err(at(
                format!(
                    "duplicate policy id `{}` (first defined at {}:{})",
                    annotated.id,
                    first.file.display(),
                    first.line
                ),
                Some("`@id` must be unique across all policy files"),
            ));
        }
        self.source
            .add(l.policy.new_id(id.clone()))
            .map_err(|e| at(e.to_string(), None))?;
        self.meta.insert(
            id,
            PolicyMeta {
                file: file.to_owned(),
                line: l.line,
                ..annotated
            },
        );
        Ok(())
    }
}

/// Validates the whole set strictly against the schema; each error is
/// located in the file of its policy.
fn validate(
    named: &Named,
    sources: &[(PathBuf, String)],
    schema: &Schema,
) -> Result<(), Vec<Diagnostic>> {
    let texts: HashMap<&Path, &str> = sources
        .iter()
        .map(|(file, text)| (file.as_path(), text.as_str()))
        .collect();
    let validation = Validator::new(schema.clone()).validate(&named.source, ValidationMode::Strict);
    let diags: Vec<Diagnostic> = validation
        .validation_errors()
        .map(|e| {
            let m = named.meta.get(e.policy_id());
            let file = m.map(|m| m.file.clone()).unwrap_or_default();
            let text = texts.get(file.as_path()).copied().unwrap_or_default();
            let mut d = diagnostic(&file, text, e);
            if d.line == 0 {
                d.line = m.map_or(0, |m| m.line);
            }
            d
        })
        .collect();
    if diags.is_empty() { Ok(()) } else { Err(diags) }
}

/// Compiles the validated set: load order (by file, then by line), each
/// policy's condition and guards, the slices by action.
fn compile(named: Named) -> LoadedPolicies {
    let Named {
        source,
        meta,
        warnings,
    } = named;
    let mut ordered: Vec<&Policy> = source.policies().collect();
    ordered.sort_by_key(|p| meta.get(p.id()).map(|m| (m.file.clone(), m.line)));
    let reads_source_ips = ordered.iter().any(|p| reads_source_ips((*p).as_ref()));
    let by_action = slice_by_action(&ordered);
    let compiled = ordered
        .iter()
        .filter_map(|p| meta.get(p.id()).map(|m| compile_policy(p, m)))
        .collect();
    let dated = meta.values().any(|m| m.window.is_dated());
    LoadedPolicies {
        source,
        compiled,
        by_action,
        reads_source_ips,
        warnings,
        dated,
    }
}

/// One policy, ready to evaluate: its whole condition built once, its guards read.
fn compile_policy(policy: &Policy, meta: &PolicyMeta) -> CompiledPolicy {
    let core: &ast::Policy = policy.as_ref();
    CompiledPolicy {
        meta: meta.clone(),
        condition: core.condition(),
        guards: crate::slicing::guards(core),
        decided_by_guards: crate::slicing::decided_by_guards(core),
    }
}

/// For each action, the indices of the policies whose action scope admits it.
fn slice_by_action(ordered: &[&Policy]) -> [Vec<usize>; 3] {
    Action::ALL.map(|action| {
        ordered
            .iter()
            .enumerate()
            .filter(|(_, p)| admits(p, action))
            .map(|(i, _)| i)
            .collect()
    })
}

/// Whether a policy may read `context.source_ips`: some expression in it
/// accesses or tests an attribute of that name (on any record: types are not
/// tracked here), or uses `context` other than to access or test one of its
/// attributes (`context == {...}` compares `source_ips` too). Conservative:
/// true whenever it cannot be ruled out.
fn reads_source_ips(policy: &ast::Policy) -> bool {
    const SOURCE_IPS: &str = "source_ips";
    let Some(condition) = policy.non_scope_constraints() else {
        return false;
    };
    let is_context = |e: &ast::Expr| matches!(e.expr_kind(), ExprKind::Var(Var::Context));
    // Uses of `context`, and those that only access or test one of its attributes.
    let (mut uses, mut attribute_uses) = (0usize, 0usize);
    for e in condition.subexpressions() {
        match e.expr_kind() {
            ExprKind::GetAttr { expr, attr } | ExprKind::HasAttr { expr, attr } => {
                if attr == SOURCE_IPS {
                    return true;
                }
                attribute_uses += usize::from(is_context(expr));
            }
            ExprKind::ExtHasAttr { expr, attrs } => {
                if attrs.iter().any(|a| a == SOURCE_IPS) {
                    return true;
                }
                attribute_uses += usize::from(is_context(expr));
            }
            ExprKind::Var(Var::Context) => uses += 1,
            _ => {}
        }
    }
    uses > attribute_uses
}

/// Whether the action scope of `policy` admits `action`.
fn admits(policy: &Policy, action: Action) -> bool {
    let is = |uid: &EntityUid| {
        uid.type_name().to_string() == "Action" && uid.id().unescaped() == action.as_str()
    };
    match policy.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => is(&uid),
        ActionConstraint::In(uids) => uids.iter().any(is),
    }
}

/// Where `@key(` (spaces allowed before the bracket) is in a statement's
/// text, outside strings and comments.
fn annotation_offset(statement: &str, key: &str) -> Option<usize> {
    let needle = format!("@{key}");
    let mut in_string = false;
    let mut escaped = false;
    let mut in_comment = false;
    for (i, c) in statement.char_indices() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '/' if statement.get(i..).is_some_and(|r| r.starts_with("//")) => in_comment = true,
            '@' => {
                let rest = statement.get(i..).unwrap_or("");
                let after = rest.strip_prefix(needle.as_str()).map(str::trim_start);
                if after.is_some_and(|a| a.starts_with('(')) {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Annotation keys that look like a lifecycle annotation misspelt: refused,
/// since a measure whose end is misspelt would never end.
const LIFECYCLE_LOOKALIKES: &[(&str, &str)] = &[
    ("effect", "effective"),
    ("effective_from", "effective"),
    ("effective_date", "effective"),
    ("effectivedate", "effective"),
    ("valid_from", "effective"),
    ("start", "effective"),
    ("starts", "effective"),
    ("expire", "expires"),
    ("expired", "expires"),
    ("expiry", "expires"),
    ("expiration", "expires"),
    ("expires_at", "expires"),
    ("expires_on", "expires"),
    ("expiry_date", "expires"),
    ("valid_until", "expires"),
    ("until", "expires"),
    ("end", "expires"),
    ("ends", "expires"),
    ("extend", "extended"),
    ("extension", "extended"),
    ("extended_by", "extended"),
];

/// A problem with a policy's annotations, and the annotation it is in.
struct AnnotationError {
    /// The annotation's key, when the problem is in one.
    key: Option<String>,
    message: String,
}

impl AnnotationError {
    fn at(key: &str, message: String) -> Self {
        Self {
            key: Some(key.to_owned()),
            message,
        }
    }
}

/// Reads and checks the Portcullis annotations of one policy.
fn annotations(policy: &Policy) -> Result<PolicyMeta, AnnotationError> {
    let text = |key: &'static str| -> Result<Option<Arc<str>>, AnnotationError> {
        match policy.annotation(key) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Err(AnnotationError::at(
                key,
                format!("`@{key}` must not be empty"),
            )),
            Some(v) => Ok(Some(Arc::from(v))),
        }
    };
    let instant = |key: &'static str| -> Result<Option<Instant>, AnnotationError> {
        text(key)?
            .map(|v| {
                Instant::parse(&v).map_err(|e| AnnotationError::at(key, format!("`@{key}`: {e}")))
            })
            .transpose()
    };
    let id = text("id")?.ok_or_else(|| AnnotationError {
        key: None,
        message: "policy has no `@id(\"...\")` annotation; every policy needs a unique id"
            .to_owned(),
    })?;
    if id.as_ref() == NO_PERMIT {
        return Err(AnnotationError::at(
            "id",
            format!("`@id(\"{NO_PERMIT}\")` is reserved"),
        ));
    }
    for (key, _) in policy.annotations() {
        let meant = LIFECYCLE_LOOKALIKES
            .iter()
            .find(|(wrong, _)| key.eq_ignore_ascii_case(wrong))
            .map(|(_, right)| *right)
            // `Effective`, `EXPIRES`: the right word in another case.
            .or_else(|| {
                ["effective", "expires", "extended"]
                    .into_iter()
                    .find(|right| key != *right && key.eq_ignore_ascii_case(right))
            });
        if let Some(right) = meant {
            return Err(AnnotationError::at(
                key,
                format!(
                    "unknown annotation `@{key}`: did you mean `@{right}`? (a misspelt date \
                     would leave the policy in force forever)"
                ),
            ));
        }
    }
    let effect = policy.effect();
    let condition = text("condition")?;
    let obligation = text("obligation")?;
    if condition.is_some() && effect != Effect::Forbid {
        return Err(AnnotationError::at(
            "condition",
            format!("policy `{id}`: `@condition` is only meaningful on a `forbid`"),
        ));
    }
    if obligation.is_some() && effect != Effect::Permit {
        return Err(AnnotationError::at(
            "obligation",
            format!("policy `{id}`: `@obligation` is only meaningful on a `permit`"),
        ));
    }
    Ok(PolicyMeta {
        measure: text("measure")?,
        message: text("message")?,
        window: Window {
            effective: instant("effective")?,
            expires: instant("expires")?,
            extended: text("extended")?,
        },
        id,
        effect,
        condition,
        obligation,
        file: PathBuf::new(),
        line: 0,
    })
}

fn diagnostic(file: &Path, text: &str, d: &dyn miette::Diagnostic) -> Diagnostic {
    let offset = d
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset());
    let (line, column) = offset.map_or((0, 0), |o| line_col(text, o));
    Diagnostic {
        file: file.to_owned(),
        line,
        column,
        message: d.to_string(),
        help: d.help().map(|h| h.to_string()),
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, tail)| tail)
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        crate::cedar_input::schema().unwrap()
    }

    fn load(files: &[(&str, &str)]) -> Result<LoadedPolicies, Vec<Diagnostic>> {
        let sources: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(f, t)| (PathBuf::from(f), (*t).to_owned()))
            .collect();
        load_sources(&sources, &schema())
    }

    #[test]
    fn statement_starts_skip_comments_and_strings() {
        let text = "// c; \n@id(\"a;b\")\npermit(principal, action, resource);\n  forbid(principal, action, resource) when { \"}\" == \";\" };";
        let starts: Vec<usize> = limits::scan(text).iter().map(|s| s.start).collect();
        assert_eq!(starts.len(), 2);
        assert_eq!(line_col(text, starts[0]), (2, 1));
        assert_eq!(line_col(text, starts[1]), (4, 3));
    }

    #[test]
    fn ids_come_from_annotations() {
        let set = load(&[(
            "a.cedar",
            "@id(\"base\") permit(principal, action, resource);\n@id(\"f\") @condition(\"kyc\") forbid(principal, action, resource);",
        )])
        .unwrap();
        let ids: Vec<&str> = set.compiled().map(|p| &*p.meta.id).collect();
        assert_eq!(ids, ["base", "f"]);
        let f = &set.compiled().nth(1).unwrap().meta;
        assert_eq!(f.condition.as_deref(), Some("kyc"));
        assert_eq!(f.effect, Effect::Forbid);
        assert_eq!(f.line, 2);
    }

    #[test]
    fn missing_and_duplicate_ids_name_file_and_line() {
        let errs = load(&[
            ("a.cedar", "@id(\"x\") permit(principal, action, resource);"),
            ("b.cedar", "\n\n@id(\"x\") permit(principal, action, resource);\npermit(principal, action, resource);"),
        ])
        .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            text[0].starts_with("b.cedar:3:1: duplicate policy id `x`"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("b.cedar:4:1: policy has no `@id"),
            "{text:?}"
        );
    }

    #[test]
    fn parse_and_validation_errors_are_located() {
        let errs = load(&[(
            "p.cedar",
            "@id(\"x\")\npermit(principal, action, resource)\n  when { context.nope == 1 };",
        )])
        .unwrap_err();
        assert_eq!((errs[0].line, errs[0].column), (3, 10), "{errs:?}");
        let errs = load(&[(
            "q.cedar",
            "@id(\"x\")\npermit(principal, action, resource) when { 1 + };",
        )])
        .unwrap_err();
        assert_eq!(errs[0].line, 2, "{errs:?}");
    }

    #[test]
    fn misplaced_annotations_are_rejected() {
        let errs = load(&[(
            "a.cedar",
            "@id(\"x\") @condition(\"c\") permit(principal, action, resource);",
        )])
        .unwrap_err();
        assert!(errs[0].message.contains("only meaningful on a `forbid`"));
    }

    #[test]
    fn slices_by_action_scope() {
        let set = load(&[(
            "a.cedar",
            r#"@id("all") permit(principal, action, resource);
@id("p") permit(principal, action == Action::"provision", resource);
@id("po") forbid(principal, action in [Action::"provision", Action::"open_account"], resource);"#,
        )])
        .unwrap();
        let ids = |a| {
            set.for_action(a)
                .map(|p| p.meta.id.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(Action::Provision), ["all", "p", "po"]);
        assert_eq!(ids(Action::OpenAccount), ["all", "po"]);
        assert_eq!(ids(Action::MaintainAccount), ["all"]);
        assert!(!set.reads_source_ips);
        let set = load(&[(
            "a.cedar",
            r#"@id("ip") permit(principal, action, resource) when { context.source_ips.contains(ip("1.2.3.4")) };"#,
        )])
        .unwrap();
        assert!(set.reads_source_ips);
    }

    #[test]
    fn source_ips_are_read_wherever_an_expression_names_the_attribute() {
        let reads = |condition: &str| {
            let text = format!("permit(principal, action, resource) {condition};");
            let set = PolicySet::from_str(&text).unwrap();
            reads_source_ips(set.policies().next().unwrap().as_ref())
        };
        for condition in [
            r#"when { context.source_ips.contains(ip("1.2.3.4")) }"#,
            r#"when { if context.anonymous_ip then context.source_ips.isEmpty() else true }"#,
            r#"when { context has source_ips }"#,
            r#"when { context has source_ips.x }"#,
            r#"when { context["source_ips"].isEmpty() }"#,
            r#"when { {a: {b: [context.source_ips]}}.a.b.isEmpty() }"#,
            r#"when { (if true then "a" else context.source_ips) like "a*" }"#,
            r#"when { ip("10.0.0.1").isInRange(context.source_ips) }"#,
            r#"when { principal.name == "x" } unless { !context.source_ips.isEmpty() }"#,
            r#"when { principal has source_ips }"#,
            // The whole context, and with it its `source_ips`, compared.
            r#"when { context == context }"#,
            r#"when { [context].isEmpty() }"#,
        ] {
            assert!(reads(condition), "{condition}");
        }
        for condition in [
            "",
            r#"when { context.jurisdictions.contains("KP") && context has anonymous_ip }"#,
            // Only a string, an annotation or a record key: nothing reads the attribute.
            r#"when { principal.name == "source_ips" }"#,
            r#"when { principal.name like "*source_ips*" }"#,
            r#"when { {source_ips: 1} == {source_ips: 2} }"#,
        ] {
            assert!(!reads(condition), "{condition}");
        }
        let set = PolicySet::from_str(
            r#"@note("source_ips") permit(principal, action, resource) when { context.anonymous_ip };"#,
        )
        .unwrap();
        assert!(!reads_source_ips(set.policies().next().unwrap().as_ref()));
    }
}
