//! The spool: every pending delivery, every dead letter and the last delivery records, in one
//! crash-safe redb file (`<delivery.spool_dir>/spool.redb`).
//!
//! ```text
//! pending    (webhook, seq) -> Delivery (JSON)   lanes and retry state; seq orders a webhook's
//!                                                deliveries in event order, across restarts
//! dead       dead_seq -> DeadLetter (JSON)       newest last; dead_ids: delivery id -> dead_seq
//! records    record_seq -> DeliveryRecord (JSON) the last N outcomes; record_ids: id -> seq
//! meta       name -> u64                         next_seq, payload_bytes, next_dead, next_record
//! quarantine (webhook, seq) -> row as stored     rows that failed their checksum: never sent
//! ```
//!
//! Every row is stored with a checksum (`frame`: version byte, CRC-32, JSON) and checked when
//! read, so a row changed on disk is quarantined instead of delivered altered.
//!
//! This module is the storage only: [`Spool::apply`] writes a batch of [`Write`]s in ONE durable
//! transaction (one fsync), and the read functions page through what is committed. Batching and
//! the writer thread live in `committer.rs`; scheduling in `engine/`. Everything here is
//! blocking I/O and must never run on the request path. It stores events, never a rendered
//! request, so no secret or keyed URL reaches the disk.
//!
//! - `schema`: the tables above and their creation;
//! - `open`: opening the file (and taking its lock), or a spool in memory; reopening after an
//!   I/O error; moving a file that is no spool aside;
//! - `faults`: a fault-injecting file layer (ENOSPC on demand) for drills and tests;
//! - `frame`: the checksummed row format;
//! - `write`: [`Write`] and [`Spool::apply`], the one way anything changes;
//! - `read`: paging through what is committed;
//! - `error`: [`SpoolError`] and its [`SpoolErrorKind`].

mod error;
mod faults;
mod frame;
mod open;
mod read;
mod schema;
mod write;

pub use error::{SpoolError, SpoolErrorKind};
pub use faults::{FaultSwitch, FaultyFile};
pub use frame::OVERHEAD as ROW_OVERHEAD;
pub use open::{move_aside, resolve_dir, Spool, SpoolSource, SPOOL_FILE};
pub use read::{KeptKey, Page};
pub use write::{Applied, Retain, Write};

#[cfg(test)]
pub(in crate::events) mod tests;
