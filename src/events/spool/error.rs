//! Spool errors: what failed and what was being done.

/// A spool problem, with what was being done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpoolError(pub String);

impl SpoolError {
    pub(super) fn at(what: &str, e: impl std::fmt::Display) -> Self {
        SpoolError(format!("spool: {what}: {e}"))
    }
}

/// Another process (a running userhook) holds the spool file: its admin API is the way in.
pub fn is_locked(e: &SpoolError) -> bool {
    e.0.contains("already open")
}
