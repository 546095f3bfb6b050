//! The spool: every pending delivery, every dead letter and the last delivery records, in one
//! crash-safe redb file (`<delivery.spool_dir>/spool.redb`).
//!
//! ```text
//! pending    (webhook, seq) -> Delivery (JSON)   lanes and retry state; seq orders a webhook's
//!                                                deliveries in event order, across restarts
//! dead       dead_seq -> DeadLetter (JSON)       newest last; dead_ids: delivery id -> dead_seq
//! records    record_seq -> DeliveryRecord (JSON) the last N outcomes; record_ids: id -> seq
//! meta       name -> u64                         next_seq, payload_bytes, next_dead, next_record
//! ```
//!
//! This module is the storage only: [`Spool::apply`] writes a batch of [`Write`]s in ONE durable
//! transaction (one fsync), and the read functions page through what is committed. Batching and
//! the writer thread live in `committer.rs`; scheduling in `engine/`. Everything here is
//! blocking I/O and must never run on the request path. It stores events, never a rendered
//! request, so no secret or keyed URL reaches the disk.
//!
//! - `schema`: the tables above and their creation;
//! - `open`: opening the file (and taking its lock), or a spool in memory;
//! - `write`: [`Write`] and [`Spool::apply`], the one way anything changes;
//! - `read`: paging through what is committed;
//! - `error`: [`SpoolError`] and its [`SpoolErrorKind`].

mod error;
mod open;
mod read;
mod schema;
mod write;

pub use error::{SpoolError, SpoolErrorKind};
pub use open::{resolve_dir, Spool, SPOOL_FILE};
pub use write::{Applied, Write};

#[cfg(test)]
pub(in crate::events) mod tests;
