//! The event path: from a finished exchange to delivered (or dead-lettered) webhooks.
//!
//! ```text
//! handoff (bounded queue, drops counted)
//!    ─▶ extractor (detect::outcome by the rules that served the call, user cache, stamp)
//!    ─▶ dispatch (one Delivery per subscribed webhook and sink of the current config)
//!    ─▶ engine::admit (seq, memory window; refuses rather than wait)
//!    ─▶ committer (group commit into the spool; a delivery is durable before its 1st attempt)
//!    ─▶ outbox (per webhook+user FIFO lanes, memory window over the spool)
//!    ─▶ engine::schedule (limits) ─▶ attempt: render ─▶ sign ─▶ send (reqwest), with the
//!                                    webhook's config as it is now
//!                                  └▶ publish (a sink): event JSON ─▶ JetStream, PubAck
//!    ─▶ retry::decide: delivered ─▶ remove + record │ retry ─▶ backoff │ final ─▶ dead letter
//!
//! dead letters ─▶ replay (one for both) ─▶ engine::admit      (running: the admin API)
//!                                       └▶ the stopped spool (offline: `deadletter`)
//! ```
//!
//! `records` keeps recent outcomes; `live` is the feed of detected events and delivery
//! outcomes that the admin API streams (`GET /events`); `deadletter` is the operator's CLI over
//! the spool (through the admin API, or the file of a stopped instance); `send_test` renders
//! and sends one sample; `clock` is the event path's wall clock.
//!
//! Imports go one way, down this list: a file imports only from lines above its own (inside a
//! folder, also from siblings, one way), and never an item through a parent `mod.rs`, which
//! only re-exports:
//!
//! ```text
//! clock, outbox, handoff
//! records, retry          (outbox; retry: the webhook's backoff and success check)
//! live                    (outbox, records)
//! attempt, publish,       (retry; outbox, records; publish: the sinks' NATS clients)
//! spool/*
//! committer, replay       (spool; clock, outbox, records)
//! engine/*                (attempt, committer, replay, spool, ...)
//! dispatch, send_test     (engine; attempt, retry)
//! identity/*              (spool: the file's directory)
//! extractor/*, deadletter (dispatch, handoff, identity; replay, spool)
//! webhooks_command       (deadletter: the admin API's address; engine: its answer)
//! ```
//!
//! Nothing here runs on the request path, and nothing here logs or stores a secret, a header
//! value, a body or a URL query.

pub mod attempt;
pub mod clock;
pub mod committer;
pub mod compaction;
pub mod deadletter;
pub mod dispatch;
pub mod engine;
pub mod extractor;
pub mod handoff;
pub mod identity;
pub mod live;
pub mod outbox;
pub mod publish;
pub mod records;
pub mod replay;
pub mod retry;
pub mod send_test;
pub mod spool;
pub mod webhooks_command;

pub use clock::now_ms;
pub use engine::{DeliveryEngine, EngineError, SpoolStats, WebhookState, WebhooksError};
pub use outbox::{Delivery, Outbox};
pub use records::{DeadLetter, DeliveryRecord, DeliveryStatus};
pub use replay::Replay;
pub use retry::{AttemptResult, RetryDecision};
pub use spool::Spool;
