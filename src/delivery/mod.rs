//! Webhook delivery: compiled webhooks, the outbox, attempts, retries, records, signing.
//!
//! ```text
//! Dispatcher ─▶ Outbox (per webhook+user FIFO lanes) ─▶ engine (limits) ─▶ attempt
//!    attempt: render (webhook's current config) ─▶ sign ─▶ send (reqwest) ─▶ decide
//!    decide:  delivered ─▶ ack │ retry ─▶ Backoff ─▶ retry_later │ final ─▶ dead letter
//! ```
//!
//! Nothing here runs on the request path, and nothing here logs or stores a secret, a header
//! value, a body or a URL query.

pub mod attempt;
pub mod committer;
pub mod engine;
pub mod outbox;
pub mod records;
pub mod retry;
pub mod send_test;
pub mod sign;
pub mod spool;
pub mod webhook;

pub use engine::{now_ms, DeliveryEngine, Replay, SpoolStats};
pub use outbox::{Delivery, Outbox};
pub use records::{DeadLetter, DeliveryRecord, DeliveryStatus};
pub use retry::{AttemptResult, Backoff, RetryDecision};
pub use spool::Spool;
pub use webhook::{Webhook, Webhooks};
