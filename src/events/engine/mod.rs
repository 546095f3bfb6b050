//! The delivery engine: a scheduler task that starts attempts from the [`Outbox`] within the
//! global and per-webhook concurrency limits, records every outcome, and keeps the durable
//! [`Spool`] in step through the group-committing writer ([`Committer`]).
//!
//! [`Outbox`]: crate::events::outbox::Outbox
//! [`Spool`]: crate::events::spool::Spool
//! [`Committer`]: crate::events::committer::Committer
//!
//! ```text
//! Dispatcher ─enqueue─▶ committer ─commit─▶ Outbox (memory window) ─next_ready─▶ attempt
//!                          │ beyond the window: disk only ──page in──▲                │
//!                          ▲──── put (retry state) / remove / dead letter / record ◀──┘
//! ```
//!
//! A delivery is attempted only after its first write is committed (fsync'd). Memory is
//! bounded: each webhook keeps at most [`WINDOW_PER_WEBHOOK`] deliveries in memory, a seq
//! prefix of its pending ones, so lane heads are always the true heads; the rest wait on disk
//! and are paged in, in seq order, as the window drains. A full spool or an overloaded writer
//! refuses new deliveries (recorded as failed, counted, logged) instead of blocking anyone.
//!
//! Which webhooks get a delivery is decided by the dispatcher, with the snapshot that saw the
//! event. From then on the engine reads its own config cell, current at each decision: the
//! limits (concurrency, `max_spool_bytes`, the records bound) and, in one place that must,
//! the webhook itself: `outcome::run_attempt` looks it up by name at every attempt, so a reload
//! (a fixed URL, a new secret, a webhook disabled or removed) applies to pending deliveries.
//! Nothing in `events` reaches back through [`DeliveryEngine::runtime`]; it is there for
//! callers that dispatch by hand (tests, the benchmark).
//!
//! The committer hands committed deliveries back through a closure the engine supplies
//! (`committer::OnCommit`), which reaches only `state::Memory` (the outbox, the windows, the
//! scheduler's wakeup), never the spool, the writer or the records.
//!
//! Enqueueing takes short locks and never waits for I/O: the extractor can call it freely.
//! This module never logs a body, header, secret or URL query.
//!
//! The files, by job:
//! - `state`: the handle and the state its task and the committer share (data and locks only);
//! - `lifecycle`: start (resume from the spool), stop, and waiting for durability;
//! - `admit`: enqueueing new and replayed deliveries, and refusing them;
//! - `schedule`: the scheduler loop: page in from disk, start attempts within the limits;
//! - `outcome`: one attempt and what its outcome does to the delivery and the spool;
//! - `dead_letters`: listing, replaying and purging dead letters on a running engine;
//! - `stats`: counters and listings for the admin API;
//! - `bucket`, `health`, `pace`: a webhook's send budget, its health state machine, and the
//!   two together with a robot's "too fast" pause, as the scheduler and the outcome use them;
//! - `alert`: telling another webhook that one paused or resumed;
//! - `webhooks`: each webhook's pace and health for the admin API, and resuming one;
//! - `error`: [`Refusal`] (one delivery not taken) and [`EngineError`] (an operation failed);
//! - `limits`: the bounds above.

mod admit;
mod alert;
mod bucket;
mod dead_letters;
mod error;
mod health;
mod lifecycle;
mod limits;
mod outcome;
mod pace;
mod record;
mod schedule;
mod state;
mod stats;
mod webhooks;

pub use error::{EngineError, Refusal};
pub use limits::{COMMIT_LINGER, LIST_LIMIT, MAX_UNCOMMITTED, WINDOW_PER_WEBHOOK, WINDOW_TOTAL};
pub use state::DeliveryEngine;
pub use stats::SpoolStats;
pub use webhooks::{WebhookState, WebhooksError};
