//! Limits on the nesting and size of one policy.
//!
//! Cedar parses, validates and evaluates an expression by recursion, one stack
//! frame (or several) per level: without a bound, a policy nested deep enough
//! (130 parentheses, a 2,000-term `||` chain) overflows a thread's stack and
//! aborts the process, and one a little less deep evaluates on a large stack
//! but not on a small one. So every policy is held to two limits, checked when
//! it is loaded (`check`, `test`, every reload), each with a located diagnostic:
//!
//! - **nesting**: at most [`MAX_NESTING`] levels of brackets in the text, and
//!   at most [`MAX_NESTING`] levels in the expression Cedar evaluates. A chain
//!   `a || b || c` nests one level per operator (Cedar groups it as
//!   `(a || b) || c`): write long alternatives as a set (`containsAny`, `in`).
//! - **size**: at most `MAX_POLICY_BYTES` (64 KiB) of text per policy.
//!
//! Text is scanned before Cedar parses it (brackets and size), so that the
//! parser never meets more than the limits allow; the expression depth is
//! measured on the parsed policy, on the snapshot build's stack. A policy
//! within the limits is evaluated on any thread with [`DECISION_STACK`]
//! (tests at the limits prove it), so `check` and `serve` decide alike.

use cedar_policy_core::ast::{Expr, ExprKind};

/// Most levels of nesting in one policy's text or expression.
pub const MAX_NESTING: usize = 128;

/// Most bytes of text in one policy (annotations, scope and conditions).
pub(crate) const MAX_POLICY_BYTES: usize = 64 * 1024;

/// The stack every thread that decides has (async workers, blocking pool,
/// the command line): enough to evaluate any policy within the limits.
pub const DECISION_STACK: usize = 8 * 1024 * 1024;

/// One top-level statement of a policy file, as the scanner found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Statement {
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset just past its end (its `;`, or the end of the text).
    pub end: usize,
    /// Deepest bracket nesting.
    pub depth: usize,
    /// Byte offset of the first bracket that went beyond [`MAX_NESTING`], if one did.
    pub too_deep_at: Option<usize>,
}

/// Splits a Cedar text into its top-level statements, skipping whitespace,
/// comments and string contents, and measures each one's bracket nesting.
pub(crate) fn scan(text: &str) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut current: Option<Statement> = None;
    let mut depth = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '/' if chars.peek().map(|&(_, n)| n) == Some('/') => {
                for (_, n) in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                continue;
            }
            c if c.is_whitespace() => continue,
            _ => {}
        }
        let statement = current.get_or_insert(Statement {
            start: i,
            end: text.len(),
            depth: 0,
            too_deep_at: None,
        });
        match c {
            '"' => {
                let mut escaped = false;
                for (_, n) in chars.by_ref() {
                    match (escaped, n) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => {}
                    }
                }
            }
            '(' | '[' | '{' => {
                depth += 1;
                statement.depth = statement.depth.max(depth);
                if depth > MAX_NESTING && statement.too_deep_at.is_none() {
                    statement.too_deep_at = Some(i);
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => {
                statement.end = i + 1;
                statements.extend(current.take());
            }
            _ => {}
        }
    }
    statements.extend(current);
    statements
}

/// What is wrong with a policy file's text as to size and nesting, each
/// problem with the byte offset to point at: what must hold before any Cedar
/// parser (the loader's, the formatter's) recurses on it.
pub fn check_source(text: &str) -> Vec<(usize, String)> {
    scan(text).iter().filter_map(check_text).collect()
}

/// What is wrong with one statement's text, with the byte offset to point at.
pub(crate) fn check_text(statement: &Statement) -> Option<(usize, String)> {
    if let Some(at) = statement.too_deep_at {
        return Some((
            at,
            format!(
                "this policy nests brackets {} levels deep; the limit is {MAX_NESTING}",
                statement.depth
            ),
        ));
    }
    let size = statement.end.saturating_sub(statement.start);
    (size > MAX_POLICY_BYTES).then(|| {
        (
            statement.start,
            format!(
                "this policy is {size} bytes long; the limit is {MAX_POLICY_BYTES} bytes per policy"
            ),
        )
    })
}

/// The nesting of an expression (a leaf is 1), and the byte offset of its
/// deepest point when the source location is known. Walks with an explicit
/// stack, so it is safe on any expression Cedar could build.
pub(crate) fn depth(expr: &Expr) -> (usize, Option<usize>) {
    let mut deepest = (0, None);
    let mut stack: Vec<(&Expr, usize)> = vec![(expr, 1)];
    while let Some((e, level)) = stack.pop() {
        if level > deepest.0 {
            deepest = (level, e.source_loc().map(|l| l.start()));
        }
        let next = level + 1;
        match e.expr_kind() {
            ExprKind::If {
                test_expr,
                then_expr,
                else_expr,
            } => {
                stack.extend([
                    (&**test_expr, next),
                    (&**then_expr, next),
                    (&**else_expr, next),
                ]);
            }
            ExprKind::And { left, right } | ExprKind::Or { left, right } => {
                stack.extend([(&**left, next), (&**right, next)]);
            }
            ExprKind::UnaryApp { arg, .. } => stack.push((arg, next)),
            ExprKind::BinaryApp { arg1, arg2, .. } => {
                stack.extend([(&**arg1, next), (&**arg2, next)]);
            }
            ExprKind::GetAttr { expr, .. }
            | ExprKind::HasAttr { expr, .. }
            | ExprKind::ExtHasAttr { expr, .. }
            | ExprKind::Like { expr, .. }
            | ExprKind::Is { expr, .. } => stack.push((expr, next)),
            ExprKind::ExtensionFunctionApp { args, .. } | ExprKind::Set(args) => {
                stack.extend(args.iter().map(|a| (a, next)));
            }
            ExprKind::Record(map) => stack.extend(map.values().map(|v| (v, next))),
            _ => {}
        }
    }
    deepest
}

/// The diagnostic message for an expression nested beyond the limit.
pub(crate) fn too_deep(levels: usize) -> String {
    format!(
        "this policy's condition nests {levels} levels deep; the limit is {MAX_NESTING} \
         (each `||`, `&&`, `+` or `-` of a chain counts one level)"
    )
}

/// Help shown with nesting diagnostics.
pub(crate) const NESTING_HELP: &str = "write long alternatives as a set: \
     `context.jurisdictions.containsAny([\"KP\", \"IR\"])` instead of a chain of `||`";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_statements_and_their_bracket_depth() {
        let text = "// c; (\n@id(\"a;(\") permit(principal, action, resource);\n  forbid(principal, action, resource) when { ((1 == 1)) };";
        let s = scan(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].depth, 1);
        assert_eq!(s[1].depth, 3);
        assert!(text[s[1].start..s[1].end].starts_with("forbid"));
        assert!(text[s[1].start..s[1].end].ends_with("};"));
        assert!(s.iter().all(|s| check_text(s).is_none()));
    }

    #[test]
    fn too_deep_or_too_big_is_located() {
        let deep = format!(
            "permit(principal, action, resource) when {{ {}true{} }};",
            "(".repeat(MAX_NESTING + 5),
            ")".repeat(MAX_NESTING + 5)
        );
        let s = scan(&deep);
        let (at, message) = check_text(&s[0]).unwrap();
        // The first bracket beyond the limit: `when {` is level 1.
        assert_eq!(at, deep.find("{ (").unwrap() + 2 + MAX_NESTING - 1);
        assert!(
            message.contains(&format!("{} levels deep", MAX_NESTING + 6)),
            "{message}"
        );

        let big = format!(
            "permit(principal, action, resource) when {{ [{}] == [] }};",
            vec!["1"; MAX_POLICY_BYTES / 2].join(",")
        );
        let (at, message) = check_text(&scan(&big)[0]).unwrap();
        assert_eq!(at, 0);
        assert!(message.contains("bytes long"), "{message}");
    }
}
