//! A located problem in an input file: what policy authors and operators see.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One problem, with file, 1-based line and column (0 when not known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file or directory the problem is in.
    pub file: PathBuf,
    /// 1-based line; 0 when not known or the whole file is meant.
    pub line: usize,
    /// 1-based column; 0 when not known.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is a hint; absent from JSON when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem at `line` and `column` of `file` (0 for either when not known).
    pub fn new(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line,
            column,
            message: message.into(),
            help: None,
        }
    }

    /// A problem with a whole file or directory.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self::new(file, 0, 0, message)
    }

    /// Adds a hint on how to fix it.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}
