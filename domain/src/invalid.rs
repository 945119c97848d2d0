//! The one validation error of the domain: which field, and what is wrong with it.

use std::fmt;

/// A value that failed validation, with the field it came from and one clear sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field name as the outside world spells it (`login`, `to.email`, `vars.changed`).
    pub field: String,
    /// One sentence that says what is wrong, never echoing a secret.
    pub message: String,
}

impl Invalid {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error, with its field placed under `prefix` (`email` becomes `to.email`).
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for Invalid {}
