//! Config problems, each tied to the key path that caused it.
//!
//! Loading collects every problem before reporting, so an operator fixes a file in one pass.
//! A message must never carry a value from the environment or a secret: callers scrub them
//! (`EnvValues::scrub_error`) and show URLs through `redact`.

use std::fmt;

/// One problem: `webhooks[1].body: unknown variable {{$$.Emial$$}}; known: ID, Email, ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path in the file, e.g. `routes[0].path`; empty for whole-file problems.
    pub path: String,
    /// What is wrong and what is expected. Never contains a secret's value.
    pub message: String,
}

impl ConfigError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "{n} problem{} in config:", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}
