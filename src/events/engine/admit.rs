//! Taking deliveries in: new ones from the dispatcher, replayed ones from the dead letters.
//! Admission assigns the spool seq and stages the first write with the committer; it never
//! waits for I/O (the extractor calls it), and it refuses (recorded as failed, counted,
//! logged at a bounded rate) rather than block or grow memory without bound.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::error::Refusal;
use super::limits::{MAX_UNCOMMITTED, REFUSAL_LOG_EVERY, WINDOW_PER_WEBHOOK, WINDOW_TOTAL};
use super::outcome::record;
use super::state::{forget_resident, lock, DeliveryEngine, Memory, Shared};
use crate::events::outbox::Delivery;
use crate::events::records::DeliveryStatus;
use crate::events::spool::Write;

impl DeliveryEngine {
    /// Takes a delivery: written to the spool, attempted once that write is committed. Never
    /// waits: a full spool, an overloaded writer or a stopping engine refuses it, and the
    /// refusal is recorded as a failed delivery, counted and logged.
    pub fn enqueue(&self, delivery: Delivery) {
        admit(&self.shared, delivery, None);
    }
}

/// Admits a new (or, with `revive`, a replayed) delivery: assigns its seq and hands its first
/// write to the committer, in memory when its webhook's window has room, else disk only.
/// Returns the refusal, if it was refused (already recorded and counted).
pub(super) fn admit(
    shared: &Arc<Shared>,
    mut delivery: Delivery,
    revive: Option<String>,
) -> Option<Refusal> {
    let max_bytes = shared.runtime.load().file.delivery.max_spool_bytes;
    let mut st = shared.memory.lock();
    let refusal = if st.stopping || shared.committer.is_closed() {
        Some(Refusal::Stopping)
    } else {
        let (waiting, waiting_bytes) = shared.committer.buffered_new();
        let stored = shared
            .committer
            .stats()
            .payload_bytes
            .load(Ordering::Relaxed);
        if waiting >= MAX_UNCOMMITTED {
            Some(Refusal::Overloaded)
        } else if revive.is_none() && stored.saturating_add(waiting_bytes) >= max_bytes.0 {
            Some(Refusal::Full { limit: max_bytes })
        } else {
            None
        }
    };
    if let Some(r) = refusal {
        drop(st);
        refuse(shared, delivery, r);
        return Some(r);
    }
    delivery.seq = st.next_seq;
    st.next_seq += 1;
    let bytes = match serde_json::to_vec(&delivery) {
        Ok(b) => b,
        Err(e) => {
            // Plain strings and numbers always serialise; this is a guard, not a path.
            tracing::error!(error = %e, "cannot serialise a delivery; dropped");
            return None;
        }
    };
    let (webhook, seq) = (delivery.webhook.clone(), delivery.seq);
    let write = match revive {
        Some(id) => Write::Revive {
            id,
            webhook: webhook.clone(),
            seq,
            bytes,
        },
        None => Write::Put {
            webhook: webhook.clone(),
            seq,
            bytes,
        },
    };
    let global_room = st.resident < WINDOW_TOTAL;
    let window = st.windows.entry(webhook).or_default();
    let in_memory =
        window.backlog_upto.is_none() && window.resident < WINDOW_PER_WEBHOOK && global_room;
    if in_memory {
        window.resident += 1;
        window.loaded_upto = seq;
        st.resident += 1;
        shared.committer.stage(write, Some(delivery));
    } else {
        window.backlog_upto = Some(seq);
        shared.committer.stage(write, None);
    }
    None
}

/// The writer committed: new deliveries become attemptable; disk-only ones may be paged in.
pub(super) fn admit_committed(memory: &Memory, committed: Vec<Delivery>) {
    if !committed.is_empty() {
        let mut st = memory.lock();
        for d in committed {
            let (webhook, id) = (d.webhook.clone(), d.id.clone());
            if st.outbox.enqueue(d).is_err() {
                tracing::warn!(delivery_id = %id, "a delivery with this id is already pending; the copy waits on disk until restart");
                forget_resident(&mut st, &webhook);
            }
        }
    }
    memory.wake.notify_one();
}

/// Records a refused delivery as failed, counts it and logs (at most once per interval).
fn refuse(shared: &Shared, mut delivery: Delivery, r: Refusal) {
    let (counter, metric) = match r {
        Refusal::Full { .. } => (&shared.refused.full, crate::metrics::DropReason::SpoolFull),
        Refusal::Overloaded => (
            &shared.refused.overloaded,
            crate::metrics::DropReason::SpoolOverloaded,
        ),
        Refusal::Stopping => (
            &shared.refused.stopping,
            crate::metrics::DropReason::Stopping,
        ),
    };
    crate::metrics::event_dropped(metric);
    let total = counter.fetch_add(1, Ordering::Relaxed) + 1;
    let reason = r.to_string();
    let log_now = {
        let mut last = lock(&shared.refused.last_log);
        let due = last.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY);
        if due {
            *last = Some(Instant::now());
        }
        due
    };
    if log_now {
        tracing::error!(
            webhook = %delivery.webhook,
            delivery_id = %delivery.id,
            event_id = %delivery.event.id,
            refused_so_far = total,
            "delivery refused and recorded as failed: {reason}"
        );
    }
    delivery.last_error = Some(reason);
    record(shared, &delivery, DeliveryStatus::Failed, None);
}
