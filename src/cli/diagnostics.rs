//! The one renderer of diagnostics: `check`, `test` and `serve` show problems
//! in policy, designation and geo files through it. People get miette's
//! graphical report (the source line, a label under the column, the help);
//! pipelines get JSON (`--format json`).

use std::io::IsTerminal as _;

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};
use serde::Serialize;

use portcullis_core::diagnostic::Diagnostic;

/// Width of the drawing: fixed, so that output does not depend on the terminal
/// it is read in. Messages are never wrapped (a `file:line:column: message`
/// line stays one line, for editors and `grep`).
const WIDTH: usize = 100;

/// A [`Diagnostic`] as miette renders it: the file's text as the source and the
/// line and column as a span, when both are known.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
struct Located {
    message: String,
    #[source_code]
    source_code: Option<NamedSource<String>>,
    #[label("here")]
    span: Option<SourceSpan>,
    #[help]
    help: Option<String>,
}

impl Located {
    fn new(d: &Diagnostic) -> Self {
        let source = located_source(d);
        // The position leads the message (`file:line:column: message`), as
        // compilers print it: editors and CI logs link it.
        let message = located_message(d);
        let (source_code, span) = match source {
            Some((text, span)) => (
                Some(NamedSource::new(d.file.display().to_string(), text)),
                Some(span),
            ),
            None => (None, None),
        };
        Self {
            message,
            source_code,
            span,
            help: d.help.clone(),
        }
    }
}

/// `file:line:column: message`, with as much of the position as is known.
fn located_message(d: &Diagnostic) -> String {
    let mut at = d.file.display().to_string();
    if d.line > 0 {
        at.push_str(&format!(":{}", d.line));
        if d.column > 0 {
            at.push_str(&format!(":{}", d.column));
        }
    }
    format!("{at}: {}", d.message)
}

/// The text of the file a diagnostic points into and the span of its
/// line and column; `None` for binary files, whole-file problems and
/// positions that are not in the file (as it is now).
fn located_source(d: &Diagnostic) -> Option<(String, SourceSpan)> {
    if d.line == 0 || d.file.extension().is_none_or(|e| e == "mmdb") {
        return None;
    }
    let text = std::fs::read_to_string(&d.file).ok()?;
    let line_start: usize = text
        .split_inclusive('\n')
        .take(d.line - 1)
        .map(str::len)
        .sum();
    let line = text.get(line_start..)?.lines().next()?;
    let column = d.column.max(1) - 1;
    let (offset, len) = match line.char_indices().nth(column) {
        Some((at, _)) => (line_start + at, token_len(line.get(at..).unwrap_or(""))),
        None => (line_start + line.len(), 0),
    };
    Some((text, SourceSpan::new(offset.into(), len)))
}

/// The length in bytes of the token `rest` starts with: a name or path
/// (`principal.nationality`), a string literal, or one other character.
fn token_len(rest: &str) -> usize {
    let mut chars = rest.char_indices();
    let Some((_, first)) = chars.next() else {
        return 0;
    };
    let end = if first == '"' {
        rest.get(1..)
            .and_then(|r| r.find('"'))
            .map_or(rest.len(), |close| close + 2)
    } else if first.is_alphanumeric() || first == '_' {
        chars
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '.' | ':')))
            .map_or(rest.len(), |(at, _)| at)
    } else {
        first.len_utf8()
    };
    end.min(rest.len())
}

/// A [`Located`] problem that does not stop anything: shown as a warning.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Warning(Located);

impl miette::Diagnostic for Warning {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Warning)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.0.help()
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.0.labels()
    }
}

/// Renders one diagnostic for people: Unicode and colour on a terminal (never
/// with `NO_COLOR` set), plain ASCII (a `^` under the column) anywhere else.
pub fn render(d: &Diagnostic) -> String {
    render_as(d, Severity::Error)
}

/// Whether a diagnostic stops what it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// It does: the input is refused.
    Error,
    /// It does not, unless warnings are denied.
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

fn render_as(d: &Diagnostic, severity: Severity) -> String {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if colour {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::none()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(WIDTH)
        .with_wrap_lines(false);
    let mut out = String::new();
    let rendered = match severity {
        Severity::Error => handler.render_report(&mut out, &Located::new(d)),
        Severity::Warning => handler.render_report(&mut out, &Warning(Located::new(d))),
    };
    if rendered.is_err() {
        // Rendering into a String does not fail; if it ever did, the plain
        // form still says everything.
        out = format!("{}: {d}\n", severity.as_str());
    }
    out
}

/// Prints every warning to stderr, and how many there were (nothing when none).
pub fn report_warnings(warnings: &[Diagnostic]) {
    for d in warnings {
        eprint!("{}", render_as(d, Severity::Warning));
    }
    if !warnings.is_empty() {
        eprintln!("{} warning(s)", warnings.len());
    }
}

/// Prints every diagnostic to stderr, and how many there were.
pub fn report(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprint!("{}", render(d));
    }
    eprintln!("{} problem(s) found", diagnostics.len());
}

/// A diagnostic in `--format json`: 1-based line and column, 0 when unknown.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub severity: &'static str,
    #[serde(flatten)]
    pub diagnostic: &'a Diagnostic,
}

/// Every diagnostic, for `--format json`.
pub fn json(diagnostics: &[Diagnostic]) -> Vec<JsonDiagnostic<'_>> {
    json_as(diagnostics, Severity::Error)
}

/// Every diagnostic with its severity, for `--format json`.
pub fn json_as(diagnostics: &[Diagnostic], severity: Severity) -> Vec<JsonDiagnostic<'_>> {
    diagnostics
        .iter()
        .map(|diagnostic| JsonDiagnostic {
            severity: severity.as_str(),
            diagnostic,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_located_diagnostic_shows_its_line_and_a_label_at_its_column() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.cedar");
        std::fs::write(
            &file,
            "permit(principal, action, resource)\nwhen { ccontext };\n",
        )
        .unwrap();
        let d =
            Diagnostic::new(&file, 2, 8, "unknown variable").with_help("did you mean `context`?");
        let out = render(&d);
        assert!(out.contains("unknown variable"), "{out}");
        assert!(out.contains("p.cedar:2:8"), "{out}");
        assert!(out.contains("when { ccontext };"), "{out}");
        assert!(out.contains("did you mean `context`?"), "{out}");
    }

    #[test]
    fn a_token_is_underlined_whole() {
        assert_eq!(
            token_len("principal.nationality == \"RU\""),
            "principal.nationality".len()
        );
        assert_eq!(token_len("\"RU\" };"), 4);
        assert_eq!(token_len(";\n"), 1);
        assert_eq!(token_len(""), 0);
        assert_eq!(token_len("\"open"), 5);
    }

    #[test]
    fn a_whole_file_problem_names_the_file_without_a_source() {
        let d = Diagnostic::file(std::path::Path::new("geo-data/x.mmdb"), "not an MMDB file");
        let out = render(&d);
        assert!(out.contains("geo-data/x.mmdb: not an MMDB file"), "{out}");
    }

    #[test]
    fn a_position_past_the_end_of_the_file_is_shown_without_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.cedar");
        std::fs::write(&file, "permit(principal, action, resource);\n").unwrap();
        let out = render(&Diagnostic::new(&file, 9, 1, "gone"));
        assert!(out.contains("p.cedar:9:1: gone"), "{out}");
    }
}
