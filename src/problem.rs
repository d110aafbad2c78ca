//! A validation problem: which file, which field, and why. Every rule of the task contract reports
//! through this one type so that the CLI, the pre-push hook and `--json` all say the same thing.

use crate::text::clean;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Repository-relative path (or the path the user gave).
    pub file: String,
    /// The JSON field the problem is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            file: file.into(),
            field: None,
            message: message.into(),
        }
    }

    pub fn field(
        file: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            file: file.into(),
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// As printed: one line, its parts cleaned of control characters (a file name or field name
/// comes from whoever pushed the file).
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(
                f,
                "{}: \"{}\": {}",
                clean(&self.file),
                clean(field),
                clean(&self.message)
            ),
            None => write!(f, "{}: {}", clean(&self.file), clean(&self.message)),
        }
    }
}

/// A list of problems as one error, for callers that want `anyhow`.
#[derive(Debug)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}
