//! What the engine can tell about itself: counters of the engine and its spool, the deliveries
//! in memory, the last outcomes, and the config cell it reads. Reads only, short locks: it
//! never changes a delivery.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;

use super::state::{lock, DeliveryEngine};
use crate::events::outbox::Delivery;
use crate::events::records::{DeliveryRecord, DeliveryStatus};
use crate::snapshot::Snapshot;

/// The engine's and spool's counters, for the admin API, tests and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpoolStats {
    /// Where the spool lives (`null`: in memory).
    pub path: Option<String>,
    /// Durable commits so far: one fsync each.
    pub commits: u64,
    /// Writes committed (enqueue, retry state, remove, dead letter, record).
    pub writes: u64,
    /// New deliveries committed.
    pub spooled: u64,
    /// Commits that failed and were retried.
    pub commit_errors: u64,
    /// Stored bytes (deliveries, dead letters, records), counted against `max_spool_bytes`.
    pub payload_bytes: u64,
    /// Pending deliveries on disk.
    pub pending: u64,
    /// Pending deliveries in memory.
    pub resident: u64,
    /// Dead letters on disk.
    pub dead_letters: u64,
    /// New deliveries refused because the spool reached `max_spool_bytes`.
    pub refused_full: u64,
    /// New deliveries refused because the writer fell
    /// [`MAX_UNCOMMITTED`](super::MAX_UNCOMMITTED) behind.
    pub refused_overloaded: u64,
    /// New deliveries refused because userhook was stopping.
    pub refused_stopping: u64,
    /// New deliveries refused because the spool could not be written (full or failing disk),
    /// including those of a commit that failed.
    pub refused_fault: u64,
    /// Deliveries that could not be encoded for the spool (recorded as failed).
    pub refused_unencodable: u64,
    /// Why the spool cannot be written now (`null` while it can): `/readyz` reports it.
    pub fault: Option<String>,
    /// Times the file was reopened after an I/O error.
    pub reopens: u64,
    /// Idle compactions of the file (dropping the bytes of finished deliveries).
    pub compactions: u64,
    /// Rows that failed their checksum, set aside (never delivered) until a purge.
    pub quarantined: u64,
    /// Delivery-record writes not saved while the spool was faulted (kept in memory).
    pub records_unsaved: u64,
}

impl DeliveryEngine {
    /// The last outcomes, newest first, optionally of one status.
    pub fn records(&self, status: Option<DeliveryStatus>) -> Vec<DeliveryRecord> {
        lock(&self.shared.records).list(status)
    }

    /// Deliveries in memory (waiting or in flight), in enqueue order; a backlog beyond the
    /// memory window is on disk only and counted in [`DeliveryEngine::stats`].
    pub fn pending(&self) -> Vec<Delivery> {
        self.shared.memory.lock().outbox.pending()
    }

    /// New deliveries accepted but not yet committed (the writer's backlog; at
    /// [`MAX_UNCOMMITTED`](super::MAX_UNCOMMITTED) new ones are refused).
    pub fn uncommitted(&self) -> u64 {
        self.shared.committer.buffered_new().0
    }

    /// Counters of the engine and its spool.
    pub fn stats(&self) -> SpoolStats {
        let s = self.shared.committer.stats();
        let r = &self.shared.refused;
        let (pending, dead, quarantined, path) = self
            .with_spool(|sp| {
                let path = sp.path().map(|p| p.display().to_string());
                let mut last = lock(&self.shared.last_counts);
                if !sp.is_busy() {
                    *last = (
                        sp.pending_count().unwrap_or(0),
                        sp.dead_count().unwrap_or(0),
                        sp.quarantined_count().unwrap_or(0),
                    );
                }
                Ok((last.0, last.1, last.2, path))
            })
            .unwrap_or_default();
        SpoolStats {
            path,
            commits: s.commits.load(Ordering::Relaxed),
            writes: s.writes.load(Ordering::Relaxed),
            spooled: s.deliveries.load(Ordering::Relaxed),
            commit_errors: s.errors.load(Ordering::Relaxed),
            payload_bytes: s.payload_bytes.load(Ordering::Relaxed),
            pending,
            resident: self.shared.memory.lock().resident as u64,
            dead_letters: dead,
            refused_full: r.full.load(Ordering::Relaxed),
            refused_overloaded: r.overloaded.load(Ordering::Relaxed),
            refused_stopping: r.stopping.load(Ordering::Relaxed),
            refused_fault: r.fault.load(Ordering::Relaxed),
            refused_unencodable: r.unencodable.load(Ordering::Relaxed),
            fault: self.shared.committer.fault(),
            reopens: s.reopens.load(Ordering::Relaxed),
            compactions: s.compactions.load(Ordering::Relaxed),
            quarantined,
            records_unsaved: s.records_unsaved.load(Ordering::Relaxed),
        }
    }

    /// Why the spool cannot be written now, while it cannot (a full or failing disk, a file
    /// that could not be opened): `/readyz` answers 503 with it.
    pub fn spool_fault(&self) -> Option<String> {
        self.shared.committer.fault()
    }

    /// The config cell the engine reads webhooks and limits from.
    pub fn runtime(&self) -> &Arc<ArcSwap<Snapshot>> {
        &self.shared.runtime
    }
}
