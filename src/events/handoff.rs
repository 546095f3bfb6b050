//! The hand-off from the request path to the event path: a bounded queue of finished
//! matched exchanges, each with the config snapshot that served it.
//!
//! The proxy only ever `try_send`s: when the extractor falls behind, the exchange is dropped
//! and counted (`events_dropped_total{reason="extractor_queue_full"}`, a rate-limited WARN)
//! rather than slowing a client. This module must never await on the sending side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::exchange::Exchange;
use crate::snapshot::Snapshot;

/// Matched exchanges waiting for extraction. Past this the proxy drops (and counts) rather
/// than wait: the client must never be slowed by detection.
pub const QUEUE: usize = 8192;

/// Exchanges dropped because the queue was full (should stay 0); paces the WARN line.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Unmatched exchanges copied for learn mode that were not queued because the queue was
/// half full: learning never takes the room matched exchanges need.
static LEARN_SKIPPED: AtomicU64 = AtomicU64::new(0);

/// How many unmatched exchanges learn mode skipped because the queue was busy.
pub fn learn_skipped() -> u64 {
    LEARN_SKIPPED.load(Ordering::Relaxed)
}

/// One finished exchange and the rules it is to be judged by.
#[derive(Debug)]
pub struct Handoff {
    /// The snapshot that served the request: rules and webhooks as they were then.
    pub snapshot: Arc<Snapshot>,
    /// What was captured.
    pub exchange: Exchange,
}

/// The request path's end of the queue; cheap to clone into every request.
#[derive(Debug, Clone)]
pub struct HandoffSender(mpsc::Sender<Handoff>);

/// The extractor's end of the queue.
#[derive(Debug)]
pub struct HandoffReceiver(mpsc::Receiver<Handoff>);

/// A new, empty queue of [`QUEUE`] places.
pub fn channel() -> (HandoffSender, HandoffReceiver) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (HandoffSender(tx), HandoffReceiver(rx))
}

impl HandoffSender {
    /// Queues the exchange without waiting; a full (or closed) queue drops it and counts. An
    /// unmatched exchange copied for learn mode is queued only while the queue is less than
    /// half full.
    pub fn send(&self, snapshot: Arc<Snapshot>, exchange: Exchange) {
        if exchange.route.is_none() && self.0.capacity() < QUEUE / 2 {
            LEARN_SKIPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.0.try_send(Handoff { snapshot, exchange }).is_err() {
            count_dropped();
        }
    }
}

impl HandoffReceiver {
    /// The next exchange; `None` once every sender is gone (the proxy has drained).
    pub async fn recv(&mut self) -> Option<Handoff> {
        self.0.recv().await
    }

    /// The next exchange if one is queued now (tests and drains; never waits).
    pub fn try_recv(&mut self) -> Result<Handoff, mpsc::error::TryRecvError> {
        self.0.try_recv()
    }
}

fn count_dropped() {
    crate::metrics::event_dropped(crate::metrics::DropReason::ExtractorQueueFull);
    let n = DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
    // A full queue under a burst would otherwise log once per request.
    if n == 1 || n.is_multiple_of(1000) {
        tracing::warn!(
            dropped_total = n,
            "extractor queue full: a matched exchange was not examined"
        );
    }
}
