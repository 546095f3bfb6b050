//! Taking deliveries in: new ones from the dispatcher, replayed ones from the dead letters.
//! Admission assigns the spool seq and stages the first write with the committer; it never
//! waits for I/O (the extractor calls it), and it refuses (recorded as failed, counted,
//! logged at a bounded rate) rather than block or grow memory without bound.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::error::Refusal;
use super::limits::{MAX_UNCOMMITTED, REFUSAL_LOG_EVERY, WINDOW_PER_WEBHOOK, WINDOW_TOTAL};
use super::record::record_as;
use super::state::{forget_resident, lock, DeliveryEngine, Memory, Shared};
use crate::events::live::Outcome;
use crate::events::outbox::Delivery;
use crate::events::records::DeliveryStatus;
use crate::events::spool::Write;

impl DeliveryEngine {
    /// Takes a delivery: written to the spool, attempted once that write is committed. Never
    /// waits: a full, faulted or overloaded spool or a stopping engine refuses it, and the
    /// refusal is recorded as a failed delivery, counted and logged; it is returned too, so a
    /// `strict` response knows its event is not durable.
    pub fn enqueue(&self, delivery: Delivery) -> Option<Refusal> {
        admit(&self.shared, delivery, None)
    }
}

/// Encodes a delivery for the spool. A seam for the tests of the (unreachable with plain
/// strings and numbers) failure path.
fn encode(delivery: &Delivery) -> Result<Vec<u8>, serde_json::Error> {
    #[cfg(test)]
    if tests::FAIL_ENCODE.with(|f| f.get()) {
        use serde::ser::Error as _;
        return Err(serde_json::Error::custom("injected encode failure"));
    }
    serde_json::to_vec(delivery)
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
    } else if shared.committer.is_faulted() {
        Some(Refusal::Fault)
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
    // Encoded before it takes a seq: a delivery that cannot be stored is recorded as failed,
    // never silently dropped with a seq used up.
    delivery.seq = st.next_seq;
    let bytes = match encode(&delivery) {
        Ok(b) => b,
        Err(e) => {
            drop(st);
            tracing::error!(error = %e, webhook = %delivery.webhook, delivery_id = %delivery.id, "cannot encode a delivery for the spool; recorded as failed");
            delivery.seq = 0;
            refuse(shared, delivery, Refusal::Unencodable);
            return Some(Refusal::Unencodable);
        }
    };
    st.next_seq += 1;
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
pub(super) fn refuse(shared: &Shared, mut delivery: Delivery, r: Refusal) {
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
        Refusal::Fault => (
            &shared.refused.fault,
            crate::metrics::DropReason::SpoolFault,
        ),
        Refusal::Unencodable => (
            &shared.refused.unencodable,
            crate::metrics::DropReason::Unencodable,
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
    record_as(
        shared,
        &delivery,
        DeliveryStatus::Failed,
        None,
        Outcome::Refused,
    );
}

/// The writer could not make these new deliveries durable (a failed commit): each leaves its
/// window and is refused like any other (recorded as failed, counted, logged at a bounded
/// rate). A replayed one stays a dead letter (its revive was not written).
pub(super) fn admit_lost(shared: &Shared, lost: Vec<crate::events::committer::Lost>) {
    {
        let mut st = shared.memory.lock();
        for l in lost.iter().filter(|l| l.resident) {
            forget_resident(&mut st, &l.delivery.webhook);
        }
    }
    for l in lost {
        refuse(shared, l.delivery, Refusal::Fault);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;
    use std::sync::Arc;

    use arc_swap::ArcSwap;

    use super::*;
    use crate::snapshot::Snapshot;

    thread_local! {
        /// Makes [`encode`] fail on this thread.
        pub(in crate::events::engine) static FAIL_ENCODE: Cell<bool> = const { Cell::new(false) };
    }

    #[tokio::test]
    async fn a_delivery_that_cannot_be_encoded_is_recorded_as_failed_and_takes_no_seq() {
        let text = "listen: 127.0.0.1:0\nupstream: http://127.0.0.1:1\nadmin: {listen: 127.0.0.1:0}\nwebhooks:\n  - {name: w, actions: ['*'], url: 'http://127.0.0.1:1/'}\n";
        let rt = Snapshot::from_text(text, None).unwrap_or_else(|e| panic!("{e}"));
        let engine = DeliveryEngine::start(Arc::new(ArcSwap::from_pointee(rt))).expect("engine");
        let next_before = engine.shared.memory.lock().next_seq;
        let d = crate::events::spool::tests::delivery("w", "u1", 0);
        let id = d.id.clone();
        FAIL_ENCODE.with(|f| f.set(true));
        let refused = engine.enqueue(d);
        FAIL_ENCODE.with(|f| f.set(false));
        assert_eq!(refused, Some(Refusal::Unencodable));
        assert_eq!(
            engine.shared.memory.lock().next_seq,
            next_before,
            "no seq used up"
        );
        let records = engine.records(Some(DeliveryStatus::Failed));
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].delivery_id, id);
        assert_eq!(
            records[0].last_error.as_deref(),
            Some("delivery could not be encoded for the spool")
        );
        assert_eq!(engine.stats().refused_unencodable, 1);
        assert!(engine.pending().is_empty());
        // The next one is taken as usual, with the seq the failed one did not use.
        let d = crate::events::spool::tests::delivery("w", "u2", 0);
        assert_eq!(engine.enqueue(d), None);
        assert!(engine.flush().await);
        assert_eq!(engine.stats().spooled, 1);
        engine.stop(std::time::Duration::from_millis(100)).await;
    }
}
