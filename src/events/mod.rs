//! The event path: from a finished exchange to delivered (or dead-lettered) webhooks.
//!
//! ```text
//! handoff (bounded queue, drops counted)
//!    ─▶ extractor (detect::resolve, extract fields, user cache, stamp the event)
//!    ─▶ dispatch (one Delivery per subscribed webhook)
//!    ─▶ committer (group commit into the spool; a delivery is durable before its 1st attempt)
//!    ─▶ outbox (per webhook+user FIFO lanes, memory window over the spool)
//!    ─▶ engine (limits) ─▶ attempt: render ─▶ sign ─▶ send (reqwest)
//!    ─▶ retry::decide: delivered ─▶ remove + record │ retry ─▶ backoff │ final ─▶ deadletter
//! ```
//!
//! `records` keeps recent outcomes; `deadletter` lists, replays and purges dead letters (the
//! engine and the offline CLI share one replay); `send_test` renders and sends one sample.
//!
//! Nothing here runs on the request path, and nothing here logs or stores a secret, a header
//! value, a body or a URL query.

pub mod attempt;
pub mod clock;
pub mod committer;
pub mod deadletter;
pub mod dispatch;
pub mod engine;
pub mod extractor;
pub mod handoff;
pub mod outbox;
pub mod records;
pub mod replay;
pub mod retry;
pub mod send_test;
pub mod spool;

pub use clock::now_ms;
pub use engine::{DeliveryEngine, EngineError, SpoolStats};
pub use outbox::{Delivery, Outbox};
pub use records::{DeadLetter, DeliveryRecord, DeliveryStatus};
pub use replay::Replay;
pub use retry::{AttemptResult, RetryDecision};
pub use spool::Spool;
