//! The scheduler: one task that pages disk-only deliveries into memory, starts every attempt
//! the global and per-webhook limits allow, and sleeps until something changes. It reads the
//! limits from the current snapshot at each pass (a reload applies at once) and never does
//! network I/O itself: attempts run as their own tasks. While the spool is faulted (a full or
//! failing disk) it starts nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::alert::health_changed;
use super::limits::{IDLE_TICK, PAGE, WINDOW_PER_WEBHOOK, WINDOW_TOTAL};
use super::outcome::{run_attempt, Batch};
use super::pace::{Pace, Start};
use super::state::{Shared, State};
use crate::config::model::DigestMode;
use crate::events::clock::now_ms;
use crate::events::spool::Write;

/// The scheduler loop: page in backlog, start every attempt the limits allow, then sleep until
/// the next due time, a commit, a finished attempt or shutdown.
pub(super) async fn schedule(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Duration>>) {
    let mut attempts = JoinSet::new();
    let grace = loop {
        if let Some(grace) = *stop.borrow() {
            break grace;
        }
        // While the spool cannot be written nothing new is attempted (an outcome that cannot
        // be recorded would be repeated after a restart, and retry state would pile up in
        // memory); attempts in flight finish. The writer wakes us when it commits again.
        let mut paced = None;
        if !shared.committer.is_faulted() {
            refill(&shared);
            resume_reloaded(&shared);
            paced = start_ready(&shared, &mut attempts);
        }
        let wait = {
            let now = now_ms();
            let due = match shared.memory.lock().outbox.next_due() {
                Some(due) if due > now => Duration::from_millis(due - now).min(IDLE_TICK),
                // Nothing waiting, or due but held back by a limit: a commit or a finished
                // attempt wakes us.
                _ => IDLE_TICK,
            };
            // A webhook held back by its pace (budget, pause, probe, digest window) is due
            // again at a time of its own.
            match paced {
                Some(at) => due.min(Duration::from_millis(at.saturating_sub(now))),
                None => due,
            }
        };
        tokio::select! {
            _ = shared.memory.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            Some(_) = attempts.join_next(), if !attempts.is_empty() => {}
            _ = stop.changed() => {}
        }
    };
    let drained = tokio::time::timeout(grace, async {
        while attempts.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            in_flight = attempts.len(),
            "delivery grace period over; abandoning attempts in flight (they stay pending in the spool)"
        );
        attempts.abort_all();
        while attempts.join_next().await.is_some() {}
        let mut st = shared.memory.lock();
        st.outbox.release_all();
        st.running.clear();
        st.total = 0;
    }
}

/// Pages disk-only deliveries into memory, in seq order, for every webhook whose window has
/// room. Reads committed rows only; rows still being written come with a later commit.
fn refill(shared: &Shared) {
    let wanted: Vec<(String, u64, u64, usize)> = {
        let st = shared.memory.lock();
        let global = WINDOW_TOTAL.saturating_sub(st.resident);
        st.windows
            .iter()
            .filter_map(|(name, w)| {
                let upto = w.backlog_upto?;
                let room = WINDOW_PER_WEBHOOK
                    .saturating_sub(w.resident)
                    .min(global)
                    .min(PAGE);
                // Wait for a worthwhile amount of room: fewer, larger reads.
                (room >= PAGE.min(WINDOW_PER_WEBHOOK / 4) || w.resident == 0)
                    .then(|| (name.clone(), w.loaded_upto, upto, room))
            })
            .filter(|(_, _, _, room)| *room > 0)
            .collect()
    };
    for (webhook, after, upto, room) in wanted {
        let spool = shared
            .spool
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(spool) = spool else { return };
        if spool.is_busy() {
            // Compacting: page in on a later pass rather than stall this thread.
            return;
        }
        let page = match spool.page(&webhook, after, upto, room) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, webhook = %webhook, "cannot page in pending deliveries");
                continue;
            }
        };
        // A damaged row (checksum mismatch) is never delivered: it is set aside as stored.
        for seq in page.damaged {
            crate::metrics::spool_row_damaged();
            shared.committer.push(Write::Quarantine {
                webhook: webhook.clone(),
                seq,
            });
        }
        let last = page.last;
        let mut st = shared.memory.lock();
        let mut added = 0usize;
        for d in page.deliveries {
            if st.outbox.enqueue(d).is_ok() {
                added += 1;
            }
        }
        st.resident += added;
        if let Some(w) = st.windows.get_mut(&webhook) {
            w.resident += added;
            if let Some(last) = last {
                w.loaded_upto = w.loaded_upto.max(last);
            }
            if w.backlog_upto.is_some_and(|b| w.loaded_upto >= b) {
                w.backlog_upto = None;
            }
        }
    }
}

/// Resumes every paused webhook whose config was reloaded since it paused (the operator may
/// have fixed its URL or key): its waiting deliveries are due at once. If it still fails, it
/// pauses again after `pause_after` failures.
fn resume_reloaded(shared: &Arc<Shared>) {
    let rt = shared.runtime.load_full();
    let now = now_ms();
    let mut resumed = Vec::new();
    {
        let mut st = shared.memory.lock();
        let State { outbox, pace, .. } = &mut *st;
        for (name, p) in pace.iter_mut() {
            let Some(w) = rt.webhooks.get(name) else {
                continue;
            };
            if p.health.paused.is_some() && p.paused_under != Arc::as_ptr(w) as usize {
                let t = p.health.resume();
                outbox.due_now(name, now);
                resumed.push((w.clone(), p.health.clone(), t));
            }
        }
    }
    for (w, health, t) in resumed {
        tracing::info!(webhook = %w.name, "paused webhook resumed: its config was reloaded");
        health_changed(shared, &w, &health, t, now);
    }
}

/// Starts attempts for due deliveries while the global and per-webhook limits and each
/// webhook's pace allow; several due deliveries of a webhook over its rate (or in `always`
/// mode) go as one digest. Returns the earliest time a webhook held back by its pace may
/// start again.
fn start_ready(shared: &Arc<Shared>, attempts: &mut JoinSet<()>) -> Option<u64> {
    let rt = shared.runtime.load();
    let global = rt.file.delivery.concurrency.max(1);
    let now = now_ms();
    let mut wake: Option<u64> = None;
    let mut st = shared.memory.lock();
    let State {
        outbox,
        running,
        total,
        pace,
        ..
    } = &mut *st;
    while *total < global {
        let mut start = Start::Normal;
        let next = outbox.next_ready_by(now, |name, first_due| {
            let hook = rt.webhooks.get(name);
            let limit = hook
                .and_then(|w| w.concurrency)
                .or_else(|| rt.sinks.get(name).and_then(|s| s.concurrency))
                .unwrap_or(global)
                .max(1);
            let busy = running.get(name).copied().unwrap_or(0);
            if busy >= limit {
                return false;
            }
            // Sinks, and webhooks a reload removed (their deliveries are dead-lettered at
            // once), have no pace.
            let Some(w) = hook.filter(|w| w.enabled) else {
                return true;
            };
            // The entry is made once per webhook, not allocated on every look.
            if !pace.contains_key(name) {
                pace.insert(name.to_string(), Pace::default());
            }
            let Some(p) = pace.get_mut(name) else {
                return true;
            };
            match p.may_start(w, busy, first_due, now) {
                Ok(s) => {
                    start = s;
                    true
                }
                Err(at) => {
                    if at != u64::MAX {
                        wake = Some(wake.map_or(at, |x: u64| x.min(at)));
                    }
                    false
                }
            }
        });
        let Some(first) = next else { break };
        let name = first.webhook.clone();
        let mut batch = Batch {
            deliveries: vec![first],
            probe: start == Start::Probe,
            digest: false,
        };
        if let Some(w) = rt.webhooks.get(&name).filter(|w| w.enabled) {
            let p = pace.entry(name.clone()).or_default();
            if let Some(d) = &w.digest {
                let max = d.template.max_items();
                let more = outbox.ready_count(&name, now, max);
                let avail = p.bucket.available(w.rate.as_ref(), now) as usize;
                batch.digest = match d.mode {
                    DigestMode::Always => true,
                    // Over its rate: more due now than it may send.
                    DigestMode::Auto => 1 + more > avail,
                    DigestMode::Off => false,
                };
                if batch.digest && !batch.probe {
                    while batch.deliveries.len() < max {
                        let Some(d) = outbox.next_ready_of(&name, now) else {
                            break;
                        };
                        batch.deliveries.push(d);
                    }
                }
            }
            p.bucket.take(w.rate.as_ref(), now);
            if batch.probe {
                p.health.probe_started();
            }
        }
        *running.entry(name).or_default() += 1;
        *total += 1;
        // Boxed: the task then holds a pointer, not the attempt's state (about 2 KiB), which
        // tokio would otherwise copy as the task is spawned and again as it finishes.
        attempts.spawn(Box::pin(run_attempt(shared.clone(), batch)));
    }
    wake
}
