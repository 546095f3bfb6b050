//! Spool errors: what was being done, what redb or the OS said, and what kind of failure it
//! is, so callers act on the kind (a held lock, a failing disk, a file that is no spool) and
//! never on the text. Nothing here does I/O.

use std::fmt::Display;

/// What kind of failure a [`SpoolError`] is, for the callers that act on it, and whether
/// trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolErrorKind {
    /// Another process (a running userhook) holds the file's lock. Trying again cannot help
    /// while it runs: its admin API is the way in.
    Locked,
    /// The file system failed (permissions, a full disk, an I/O error). It may pass: the
    /// committer keeps retrying its commits.
    Io,
    /// The file is not a spool this build can use (damaged, another kind of file, or a redb
    /// format that needs a manual upgrade). Trying again cannot help.
    Corrupt,
    /// redb refused for another reason (a transaction or table in an unexpected state): a bug
    /// more than an outage.
    Storage,
}

/// A spool problem: what was being done, the underlying error's text, and its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spool: {context}: {message}")]
pub struct SpoolError {
    kind: SpoolErrorKind,
    /// What was being done (`commit failed`, `cannot open /var/lib/userhook/spool.redb`).
    context: String,
    /// The underlying error, as redb or the OS worded it.
    message: String,
}

impl SpoolError {
    /// A redb error met while doing `context`.
    pub(super) fn redb<E>(context: impl Into<String>, e: E) -> Self
    where
        E: Into<redb::Error> + Display,
    {
        let message = e.to_string();
        SpoolError {
            kind: kind_of(&e.into()),
            context: context.into(),
            message,
        }
    }

    /// An OS error met while doing `context`.
    pub(super) fn io(context: impl Into<String>, e: &std::io::Error) -> Self {
        SpoolError {
            kind: io_kind(e),
            context: context.into(),
            message: e.to_string(),
        }
    }

    /// The spool file is not open; `why` is its last open's error. An I/O failure, retried
    /// by the writer.
    pub(super) fn unavailable(why: impl Into<String>) -> Self {
        SpoolError {
            kind: SpoolErrorKind::Io,
            context: "the spool file is not open".into(),
            message: why.into(),
        }
    }

    /// What kind of failure this is: act on this, never on the text.
    pub fn kind(&self) -> SpoolErrorKind {
        self.kind
    }

    /// Another process (a running userhook) holds the spool file: its admin API is the way in.
    pub fn is_locked(&self) -> bool {
        self.kind == SpoolErrorKind::Locked
    }
}

/// A `map_err` adapter for redb calls: the error, while doing `context`.
pub(super) fn at<E>(context: &'static str) -> impl Fn(E) -> SpoolError
where
    E: Into<redb::Error> + Display,
{
    move |e| SpoolError::redb(context, e)
}

fn kind_of(e: &redb::Error) -> SpoolErrorKind {
    use redb::Error as E;
    match e {
        E::DatabaseAlreadyOpen | E::LockProtocolMismatch => SpoolErrorKind::Locked,
        E::Io(io) => io_kind(io),
        E::PreviousIo => SpoolErrorKind::Io,
        E::Corrupted(_)
        | E::UpgradeRequired(_)
        | E::RepairAborted
        | E::TableTypeMismatch { .. }
        | E::TypeDefinitionChanged { .. }
        | E::TableIsMultimap(_)
        | E::TableIsNotMultimap(_) => SpoolErrorKind::Corrupt,
        _ => SpoolErrorKind::Storage,
    }
}

/// redb reports a file that holds no redb database as an I/O error of kind `InvalidData`.
fn io_kind(e: &std::io::Error) -> SpoolErrorKind {
    if e.kind() == std::io::ErrorKind::InvalidData {
        SpoolErrorKind::Corrupt
    } else {
        SpoolErrorKind::Io
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_error_and_the_text_from_its_own_words() {
        let locked = SpoolError::redb("cannot open x", redb::DatabaseError::DatabaseAlreadyOpen);
        assert!(locked.is_locked());
        assert_eq!(
            locked.to_string(),
            "spool: cannot open x: Database already open. Cannot acquire lock."
        );
        let mismatch = SpoolError::redb("cannot open x", redb::DatabaseError::LockProtocolMismatch);
        assert_eq!(mismatch.kind(), SpoolErrorKind::Locked);

        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = SpoolError::io("cannot create /x", &denied);
        assert_eq!(e.kind(), SpoolErrorKind::Io);
        assert_eq!(e.to_string(), format!("spool: cannot create /x: {denied}"));
        let disk = redb::StorageError::Io(std::io::Error::other("disk full"));
        assert_eq!(at("commit failed")(disk).kind(), SpoolErrorKind::Io);

        let not_a_db = std::io::Error::new(std::io::ErrorKind::InvalidData, "not a redb file");
        let e = SpoolError::redb("cannot open x", redb::StorageError::Io(not_a_db));
        assert_eq!(e.kind(), SpoolErrorKind::Corrupt);
        let e = SpoolError::redb("x", redb::StorageError::Corrupted("bad page".into()));
        assert_eq!(e.kind(), SpoolErrorKind::Corrupt);
        let e = SpoolError::redb("x", redb::CommitError::TransactionPoisoned);
        assert_eq!(e.kind(), SpoolErrorKind::Storage);
        assert!(!e.is_locked());
    }
}
