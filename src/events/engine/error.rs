//! What the engine says when it cannot do what was asked: a refusal of one delivery
//! ([`Refusal`], recorded as that delivery's failure) or an operation that failed
//! ([`EngineError`], for the admin API and the callers that start the engine). Callers match
//! on these, never on their text.

use crate::config::units::ByteSize;
use crate::events::attempt::ClientError;
use crate::events::replay::ReplayError;
use crate::events::spool::SpoolError;

use super::limits::MAX_UNCOMMITTED;

/// Why the engine would not take a delivery, new or replayed. The delivery is recorded as
/// failed with this as its error, counted and logged; nothing waits instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The spool holds `delivery.max_spool_bytes` (new deliveries only: a replay moves bytes
    /// that are already stored).
    #[error("spool full: delivery.max_spool_bytes ({limit}) reached")]
    Full {
        /// The limit that was reached.
        limit: ByteSize,
    },
    /// [`MAX_UNCOMMITTED`] new deliveries wait for the disk: it cannot keep up.
    #[error(
        "spool writer overloaded: {} new deliveries are waiting for the disk",
        MAX_UNCOMMITTED
    )]
    Overloaded,
    /// The engine is stopping (or its writer never started): nothing more is written.
    #[error("userhook is stopping; the spool is closed")]
    Stopping,
    /// The spool cannot be written (a full or failing disk, a file that could not be opened):
    /// nothing is taken that could not be made durable. Lifts by itself once a commit works.
    #[error("spool not writable (full or failing disk); see /readyz and the log")]
    Fault,
    /// The delivery could not be encoded for the spool (a guard: plain strings and numbers
    /// always encode).
    #[error("delivery could not be encoded for the spool")]
    Unencodable,
}

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The spool could not be read or written; its kind says whether trying again can help.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The engine was stopped and let go of its spool: nothing more can be read or changed
    /// through it.
    #[error("the spool is closed")]
    Closed,
    /// The webhook HTTP client could not be built, so the engine did not start.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A replay did not finish: no such dead letter, a failed read, or a refusal part-way.
    #[error(transparent)]
    Replay(#[from] ReplayError<Refusal>),
}

impl EngineError {
    /// A replay of one id that names no dead letter: the admin API answers 404 to it.
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::Replay(ReplayError::NotFound(_)))
    }
}
