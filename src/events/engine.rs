//! The delivery engine: a scheduler task that starts attempts from the [`Outbox`] within the
//! global and per-webhook concurrency limits, records every outcome, and keeps the durable
//! [`Spool`] in step through the group-committing writer ([`Committer`]).
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
//! Limits and webhooks are read from the current config snapshot at each decision, so a reload
//! applies to pending deliveries too. Enqueueing takes short locks and never waits for I/O:
//! the extractor can call it freely. This module never logs a body, header, secret or URL query.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::attempt::{self, RenderedRequest};
use super::committer::Committer;
use super::outbox::{Delivery, Outbox};
use super::records::{rfc3339, DeadLetter, DeliveryRecord, DeliveryStatus, Records};
use super::retry::{decide, AttemptResult, RetryDecision};
use super::spool::{Spool, Write};
use crate::metrics::AttemptOutcome;
use crate::snapshot::Snapshot;

/// Deliveries of one webhook held in memory at most (waiting, in flight or being written);
/// the rest of its backlog stays on disk. Bounds memory during a long outage.
pub const WINDOW_PER_WEBHOOK: usize = 4096;

/// Deliveries held in memory over all webhooks at most.
pub const WINDOW_TOTAL: usize = 32_768;

/// Rows read from disk per page-in.
const PAGE: usize = 1024;

/// New deliveries waiting for their first commit at most; beyond this the disk cannot keep up
/// and new deliveries are refused (recorded as failed) rather than grow memory without bound.
pub const MAX_UNCOMMITTED: u64 = 50_000;

/// How long the writer gathers writes before a commit: in `fast` mode an event is durable
/// within this plus one commit after dispatch. A waiting `strict`-mode response (a flush)
/// ends the wait at once, so strict mode pays one commit, not the linger.
pub const COMMIT_LINGER: Duration = Duration::from_millis(5);

/// Dead letters returned by one listing at most.
pub const LIST_LIMIT: usize = 10_000;

/// Longest the scheduler sleeps without looking again (a safety net; wakeups are explicit).
const IDLE_TICK: Duration = Duration::from_secs(1);

/// At most one "refused" error line per this interval (the count says how many).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Handle to the running engine; cheap to clone.
#[derive(Clone)]
pub struct DeliveryEngine {
    shared: Arc<Shared>,
}

struct Shared {
    runtime: Arc<ArcSwap<Snapshot>>,
    client: reqwest::Client,
    state: Mutex<State>,
    records: Mutex<Records>,
    wake: Notify,
    /// `Some(grace)` once stopping.
    stop: watch::Sender<Option<Duration>>,
    scheduler: Mutex<Option<JoinHandle<()>>>,
    /// `None` once stopped: the file (and its lock) is released.
    spool: RwLock<Option<Arc<Spool>>>,
    committer: Committer,
    writer_done: Mutex<Option<oneshot::Receiver<()>>>,
    refused: Refusals,
}

#[derive(Default)]
struct Refusals {
    full: AtomicU64,
    overloaded: AtomicU64,
    stopping: AtomicU64,
    last_log: Mutex<Option<Instant>>,
}

struct State {
    outbox: Outbox,
    /// Attempts in flight per webhook name.
    running: HashMap<String, usize>,
    total: usize,
    windows: HashMap<String, Window>,
    /// Deliveries in memory (waiting for their commit, waiting, or in flight).
    resident: usize,
    next_seq: u64,
    stopping: bool,
}

/// One webhook's memory window over its pending deliveries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Window {
    /// In memory: staged for the first commit, waiting, or in flight.
    resident: usize,
    /// Every pending delivery with a seq up to this is (or was) in memory.
    loaded_upto: u64,
    /// The highest seq only on disk, while there is one.
    backlog_upto: Option<u64>,
}

/// Why a new delivery was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Full,
    Overloaded,
    Stopping,
}

/// Which dead letters to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The one with this delivery id.
    One(String),
    /// Every dead letter.
    All,
}

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
    /// New deliveries refused because the writer fell [`MAX_UNCOMMITTED`] behind.
    pub refused_overloaded: u64,
    /// New deliveries refused because userhook was stopping.
    pub refused_stopping: u64,
}

/// Locks a mutex, recovering from a panicked holder (the data stays consistent enough to list
/// and deliver; a poisoned engine must not stop delivering).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl DeliveryEngine {
    /// Starts with a spool in memory: nothing survives the process. For tests and embedding;
    /// `serve` uses [`DeliveryEngine::start_with`] and a spool on disk. Must be called inside a
    /// tokio runtime.
    pub fn start(runtime: Arc<ArcSwap<Snapshot>>) -> Result<DeliveryEngine, String> {
        let spool = Spool::in_memory().map_err(|e| e.to_string())?;
        DeliveryEngine::start_with(runtime, spool)
    }

    /// Starts over `spool`: pending deliveries resume with their ids, attempt counts and retry
    /// times; delivery records are read back. Must be called inside a tokio runtime.
    pub fn start_with(
        runtime: Arc<ArcSwap<Snapshot>>,
        spool: Spool,
    ) -> Result<DeliveryEngine, String> {
        let client = attempt::build_client()?;
        let rt = runtime.load_full();
        let keep = rt.file.delivery.records;
        let spool = Arc::new(spool);
        let (next_seq, payload_bytes) = spool.meta().map_err(|e| e.to_string())?;
        let mut windows = HashMap::new();
        let mut next_seq = next_seq;
        let mut backlog = 0u64;
        for (webhook, lo, hi) in spool.webhooks().map_err(|e| e.to_string())? {
            next_seq = next_seq.max(hi.saturating_add(1));
            backlog += 1;
            windows.insert(
                webhook,
                Window {
                    resident: 0,
                    loaded_upto: lo.saturating_sub(1),
                    backlog_upto: Some(hi),
                },
            );
        }
        let mut records = Records::new(keep);
        for r in spool.records(keep).map_err(|e| e.to_string())? {
            records.upsert(r);
        }
        let (stop, stop_rx) = watch::channel(None);
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| {
            let weak = weak.clone();
            let on_commit = Box::new(move |committed: Vec<Delivery>| {
                if let Some(shared) = weak.upgrade() {
                    admit_committed(&shared, committed);
                }
            });
            let started = Committer::start(spool.clone(), payload_bytes, on_commit);
            let (committer, done) = match started {
                Ok(pair) => (pair.0, Some(pair.1)),
                // Without a writer thread nothing can be made durable: every delivery is
                // refused (and said so) rather than pretend.
                Err(e) => {
                    tracing::error!("{e}");
                    let c = Committer::closed();
                    (c, None)
                }
            };
            Shared {
                runtime: runtime.clone(),
                client,
                state: Mutex::new(State {
                    outbox: Outbox::new(usize::MAX),
                    running: HashMap::new(),
                    total: 0,
                    windows,
                    resident: 0,
                    next_seq,
                    stopping: false,
                }),
                records: Mutex::new(records),
                wake: Notify::new(),
                stop,
                scheduler: Mutex::new(None),
                spool: RwLock::new(Some(spool.clone())),
                committer,
                writer_done: Mutex::new(done),
                refused: Refusals::default(),
            }
        });
        shared.committer.set_linger(COMMIT_LINGER);
        if backlog > 0 {
            let pending = spool.pending_count().unwrap_or(0);
            tracing::info!(
                pending,
                webhooks = backlog,
                "resuming pending deliveries from the spool"
            );
        }
        let handle = tokio::spawn(schedule(shared.clone(), stop_rx));
        *lock(&shared.scheduler) = Some(handle);
        Ok(DeliveryEngine { shared })
    }

    /// Takes a delivery: written to the spool, attempted once that write is committed. Never
    /// waits: a full spool, an overloaded writer or a stopping engine refuses it, and the
    /// refusal is recorded as a failed delivery, counted and logged.
    pub fn enqueue(&self, delivery: Delivery) {
        admit(&self.shared, delivery, None);
    }

    /// Answers `ack` once every delivery enqueued before this call is committed to disk
    /// (`strict` mode holds a response on it). Dropped unanswered when the spool is closed.
    pub fn notify_when_durable(&self, ack: oneshot::Sender<()>) {
        self.shared.committer.flush_then(ack);
    }

    /// Waits until everything written so far is committed. False once closed.
    pub async fn flush(&self) -> bool {
        self.shared.committer.flush().await
    }

    /// The last outcomes, newest first, optionally of one status.
    pub fn records(&self, status: Option<DeliveryStatus>) -> Vec<DeliveryRecord> {
        lock(&self.shared.records).list(status)
    }

    /// Dead letters, newest first (at most [`LIST_LIMIT`]), as committed. Waits for the
    /// writer's current batch (about one commit): not for the request path.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.shared.committer.flush_blocking(Duration::from_secs(5));
        self.with_spool(|s| s.dead_letters(LIST_LIMIT).map_err(|e| e.to_string()))
            .unwrap_or_default()
    }

    /// Dead letters, newest first, at most `limit`, after the writer's current batch.
    pub async fn dead_letter_list(&self, limit: usize) -> Result<Vec<DeadLetter>, String> {
        self.flush().await;
        self.with_spool(|s| s.dead_letters(limit).map_err(|e| e.to_string()))
    }

    /// One dead letter by delivery id.
    pub async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, String> {
        self.flush().await;
        self.with_spool(|s| s.dead_letter(id).map_err(|e| e.to_string()))
    }

    /// Takes dead letters back into pending (attempts reset, due now, same ids, at the end of
    /// their lanes); returns how many. Stops early, with an error, if the spool refuses.
    pub async fn replay(&self, which: Replay) -> Result<u64, String> {
        self.flush().await;
        let letters: Vec<DeadLetter> = match &which {
            Replay::One(id) => {
                match self.with_spool(|s| s.dead_letter(id).map_err(|e| e.to_string()))? {
                    Some(d) => vec![d],
                    None => return Err(format!("no dead letter with id `{id}`")),
                }
            }
            Replay::All => Vec::new(),
        };
        let mut count = 0u64;
        let mut revive = |letter: DeadLetter| -> Result<(), String> {
            let mut d = letter.delivery;
            d.attempt = 0;
            d.last_error = None;
            d.next_attempt_at = now_ms();
            let id = d.id.clone();
            match admit(&self.shared, d, Some(id)) {
                None => {
                    count += 1;
                    Ok(())
                }
                Some(r) => Err(format!(
                    "replay stopped after {count}: {}",
                    refusal_text(r, &self.shared)
                )),
            }
        };
        match which {
            Replay::One(_) => {
                for l in letters {
                    revive(l)?;
                }
            }
            Replay::All => {
                let mut after = None;
                loop {
                    let page =
                        self.with_spool(|s| s.dead_page(after, PAGE).map_err(|e| e.to_string()))?;
                    let Some(last) = page.last().map(|(k, _)| *k) else {
                        break;
                    };
                    after = Some(last);
                    for (_, l) in page {
                        revive(l)?;
                    }
                }
            }
        }
        self.flush().await;
        if count > 0 {
            tracing::info!(replayed = count, "dead letters replayed");
        }
        Ok(count)
    }

    /// Drops every dead letter; returns how many.
    pub async fn purge_dead_letters(&self) -> Result<u64, String> {
        let n = self
            .shared
            .committer
            .purge()
            .await
            .ok_or_else(|| String::from("the spool is closed"))?;
        tracing::info!(purged = n, "dead letters purged");
        Ok(n)
    }

    /// Deliveries in memory (waiting or in flight), in enqueue order; a backlog beyond the
    /// memory window is on disk only and counted in [`DeliveryEngine::stats`].
    pub fn pending(&self) -> Vec<Delivery> {
        lock(&self.shared.state).outbox.pending()
    }

    /// New deliveries accepted but not yet committed (the writer's backlog; at
    /// [`MAX_UNCOMMITTED`] new ones are refused).
    pub fn uncommitted(&self) -> u64 {
        self.shared.committer.buffered_new().0
    }

    /// Counters of the engine and its spool.
    pub fn stats(&self) -> SpoolStats {
        let s = self.shared.committer.stats();
        let r = &self.shared.refused;
        let (pending, dead, path) = self
            .with_spool(|sp| {
                Ok((
                    sp.pending_count().unwrap_or(0),
                    sp.dead_count().unwrap_or(0),
                    sp.path().map(|p| p.display().to_string()),
                ))
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
            resident: lock(&self.shared.state).resident as u64,
            dead_letters: dead,
            refused_full: r.full.load(Ordering::Relaxed),
            refused_overloaded: r.overloaded.load(Ordering::Relaxed),
            refused_stopping: r.stopping.load(Ordering::Relaxed),
        }
    }

    /// The config cell the engine reads webhooks and limits from.
    pub fn runtime(&self) -> &Arc<ArcSwap<Snapshot>> {
        &self.shared.runtime
    }

    /// Stops starting attempts, waits up to `grace` for those in flight (the rest stay pending
    /// on disk), commits the last writes and releases the spool file.
    pub async fn stop(&self, grace: Duration) {
        let _ = self.shared.stop.send(Some(grace));
        let handle = lock(&self.shared.scheduler).take();
        if let Some(h) = handle {
            let _ = h.await;
        }
        lock(&self.shared.state).stopping = true;
        self.shared.committer.close();
        let done = lock(&self.shared.writer_done).take();
        if let Some(done) = done {
            let _ = done.await;
        }
        let spool = self
            .shared
            .spool
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(spool) = spool {
            let pending = spool.pending_count().unwrap_or(0);
            if pending > 0 {
                tracing::info!(
                    pending,
                    "spool flushed; pending deliveries resume on the next start"
                );
            }
        }
    }

    fn with_spool<T>(&self, f: impl FnOnce(&Spool) -> Result<T, String>) -> Result<T, String> {
        let spool = self
            .shared
            .spool
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match spool {
            Some(s) => f(&s),
            None => Err(String::from("the spool is closed")),
        }
    }
}

/// Admits a new (or, with `revive`, a replayed) delivery: assigns its seq and hands its first
/// write to the committer, in memory when its webhook's window has room, else disk only.
/// Returns the refusal, if it was refused (already recorded and counted).
fn admit(shared: &Arc<Shared>, mut delivery: Delivery, revive: Option<String>) -> Option<Refusal> {
    let max_bytes = shared.runtime.load().file.delivery.max_spool_bytes.0;
    let mut st = lock(&shared.state);
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
        } else if revive.is_none() && stored.saturating_add(waiting_bytes) >= max_bytes {
            Some(Refusal::Full)
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
fn admit_committed(shared: &Shared, committed: Vec<Delivery>) {
    if !committed.is_empty() {
        let mut st = lock(&shared.state);
        for d in committed {
            let (webhook, id) = (d.webhook.clone(), d.id.clone());
            if st.outbox.enqueue(d).is_err() {
                tracing::warn!(delivery_id = %id, "a delivery with this id is already pending; the copy waits on disk until restart");
                forget_resident(&mut st, &webhook);
            }
        }
    }
    shared.wake.notify_one();
}

fn forget_resident(st: &mut State, webhook: &str) {
    if let Some(w) = st.windows.get_mut(webhook) {
        w.resident = w.resident.saturating_sub(1);
    }
    st.resident = st.resident.saturating_sub(1);
}

fn refusal_text(r: Refusal, shared: &Shared) -> String {
    match r {
        Refusal::Full => format!(
            "spool full: delivery.max_spool_bytes ({}) reached",
            shared.runtime.load().file.delivery.max_spool_bytes
        ),
        Refusal::Overloaded => format!(
            "spool writer overloaded: {MAX_UNCOMMITTED} new deliveries are waiting for the disk"
        ),
        Refusal::Stopping => String::from("userhook is stopping; the spool is closed"),
    }
}

/// Records a refused delivery as failed, counts it and logs (at most once per interval).
fn refuse(shared: &Shared, mut delivery: Delivery, r: Refusal) {
    let (counter, metric) = match r {
        Refusal::Full => (&shared.refused.full, crate::metrics::DropReason::SpoolFull),
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
    let reason = refusal_text(r, shared);
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

/// The scheduler loop: page in backlog, start every attempt the limits allow, then sleep until
/// the next due time, a commit, a finished attempt or shutdown.
async fn schedule(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Duration>>) {
    let mut attempts = JoinSet::new();
    let grace = loop {
        if let Some(grace) = *stop.borrow() {
            break grace;
        }
        refill(&shared);
        start_ready(&shared, &mut attempts);
        let wait = {
            let now = now_ms();
            match lock(&shared.state).outbox.next_due() {
                Some(due) if due > now => Duration::from_millis(due - now).min(IDLE_TICK),
                // Nothing waiting, or due but held back by a limit: a commit or a finished
                // attempt wakes us.
                _ => IDLE_TICK,
            }
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
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
        let mut st = lock(&shared.state);
        st.outbox.release_all();
        st.running.clear();
        st.total = 0;
    }
}

/// Pages disk-only deliveries into memory, in seq order, for every webhook whose window has
/// room. Reads committed rows only; rows still being written come with a later commit.
fn refill(shared: &Shared) {
    let wanted: Vec<(String, u64, u64, usize)> = {
        let st = lock(&shared.state);
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
        let (page, last) = match spool.page(&webhook, after, upto, room) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, webhook = %webhook, "cannot page in pending deliveries");
                continue;
            }
        };
        let mut st = lock(&shared.state);
        let mut added = 0usize;
        for d in page {
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

/// Starts attempts for due deliveries while the global and per-webhook limits allow.
fn start_ready(shared: &Arc<Shared>, attempts: &mut JoinSet<()>) {
    let rt = shared.runtime.load();
    let global = rt.file.delivery.concurrency.max(1);
    let now = now_ms();
    let mut st = lock(&shared.state);
    let State {
        outbox,
        running,
        total,
        ..
    } = &mut *st;
    while *total < global {
        let next = outbox.next_ready(now, |name| {
            let limit = rt
                .webhooks
                .get(name)
                .and_then(|w| w.concurrency)
                .unwrap_or(global)
                .max(1);
            running.get(name).copied().unwrap_or(0) < limit
        });
        let Some(delivery) = next else { break };
        *running.entry(delivery.webhook.clone()).or_default() += 1;
        *total += 1;
        attempts.spawn(run_attempt(shared.clone(), delivery));
    }
}

/// One attempt of one delivery, from rendering to recording its outcome.
async fn run_attempt(shared: Arc<Shared>, mut delivery: Delivery) {
    let rt = shared.runtime.load_full();
    let webhook = rt.webhooks.get(&delivery.webhook).cloned();
    delivery.attempt += 1;
    let (decision, http_status, url) = match &webhook {
        None => (
            RetryDecision::Final {
                reason: format!("webhook `{}` is no longer in the config", delivery.webhook),
            },
            None,
            String::new(),
        ),
        Some(w) if !w.enabled => (
            RetryDecision::Final {
                reason: format!("webhook `{}` is disabled in the config", delivery.webhook),
            },
            None,
            String::new(),
        ),
        Some(w) => {
            let request: RenderedRequest =
                attempt::render(w, &delivery.id, &delivery.event, attempt::unix_now());
            let url = loggable_url(&request.url);
            let result = match attempt::send(&shared.client, &request, w.timeout).await {
                Ok(reply) => attempt::result_of(reply),
                Err(e) => e,
            };
            let status = match &result {
                AttemptResult::Reply { status, .. } => Some(*status),
                _ => None,
            };
            (decide(w.success, &result), status, url)
        }
    };
    drop(rt);
    {
        let mut st = lock(&shared.state);
        if let Some(n) = st.running.get_mut(&delivery.webhook) {
            *n = n.saturating_sub(1);
        }
        st.total = st.total.saturating_sub(1);
    }
    let max_attempts = webhook.as_ref().map_or(1, |w| w.attempts);
    match decision {
        RetryDecision::Delivered => {
            delivery.last_error = None;
            {
                let mut st = lock(&shared.state);
                st.outbox.ack(&delivery.id);
                forget_resident(&mut st, &delivery.webhook);
            }
            shared.committer.push(Write::Remove {
                webhook: delivery.webhook.clone(),
                seq: delivery.seq,
            });
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Success);
            crate::metrics::delivery_succeeded(&delivery.webhook, delivery.created_at, now_ms());
            tracing::info!(
                webhook = %delivery.webhook,
                delivery_id = %delivery.id,
                event = delivery.event.event_type,
                event_id = %delivery.event.id,
                request_id = %delivery.event.request.request_id,
                attempts = delivery.attempt,
                http_status = http_status.unwrap_or(0),
                url = %url,
                status = "successful",
                "webhook delivered"
            );
            record(&shared, &delivery, DeliveryStatus::Successful, http_status);
        }
        RetryDecision::Retry {
            reason,
            retry_after,
        } if delivery.attempt < max_attempts => {
            let backoff = webhook.as_ref().map(|w| w.backoff);
            let wait = backoff.map_or(Duration::ZERO, |b| b.delay(delivery.attempt, retry_after));
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Retry);
            delivery.next_attempt_at =
                now_ms().saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
            tracing::debug!(
                webhook = %delivery.webhook,
                delivery_id = %delivery.id,
                request_id = %delivery.event.request.request_id,
                attempts = delivery.attempt,
                wait_ms = wait.as_millis() as u64,
                error = %reason,
                "webhook attempt failed; will retry"
            );
            delivery.last_error = Some(reason);
            record(&shared, &delivery, DeliveryStatus::Retrying, http_status);
            if let Ok(bytes) = serde_json::to_vec(&delivery) {
                shared.committer.push(Write::Put {
                    webhook: delivery.webhook.clone(),
                    seq: delivery.seq,
                    bytes,
                });
            }
            lock(&shared.state).outbox.retry_later(delivery);
        }
        RetryDecision::Retry { reason, .. } => {
            delivery.last_error = Some(format!(
                "gave up after {} attempts: {reason}",
                delivery.attempt
            ));
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Final);
            dead_letter(&shared, delivery, http_status, &url);
        }
        RetryDecision::Final { reason } => {
            delivery.last_error = Some(reason);
            crate::metrics::attempt_finished(&delivery.webhook, AttemptOutcome::Final);
            dead_letter(&shared, delivery, http_status, &url);
        }
    }
    shared.wake.notify_one();
}

/// Moves a delivery that will not be attempted again to the dead letters, and records it.
fn dead_letter(shared: &Shared, delivery: Delivery, http_status: Option<u16>, url: &str) {
    {
        let mut st = lock(&shared.state);
        st.outbox.dead_letter(&delivery.id);
        forget_resident(&mut st, &delivery.webhook);
    }
    let reason = delivery.last_error.clone().unwrap_or_default();
    tracing::warn!(
        webhook = %delivery.webhook,
        delivery_id = %delivery.id,
        event = delivery.event.event_type,
        event_id = %delivery.event.id,
        request_id = %delivery.event.request.request_id,
        attempts = delivery.attempt,
        http_status = http_status.unwrap_or(0),
        url = %url,
        status = "failed",
        error = %reason,
        "webhook delivery failed; kept as a dead letter"
    );
    record(shared, &delivery, DeliveryStatus::Failed, http_status);
    crate::metrics::delivery_dead_lettered(&delivery.webhook);
    let (webhook, seq, id) = (delivery.webhook.clone(), delivery.seq, delivery.id.clone());
    let letter = DeadLetter {
        delivery,
        reason,
        at: rfc3339(now_ms()),
    };
    if let Ok(bytes) = serde_json::to_vec(&letter) {
        shared.committer.push(Write::Dead {
            webhook,
            seq,
            id,
            bytes,
        });
    }
}

/// Keeps the delivery's latest outcome, in memory for listing and in the spool for listing a
/// stopped instance.
fn record(shared: &Shared, delivery: &Delivery, status: DeliveryStatus, http: Option<u16>) {
    let capacity = shared.runtime.load().file.delivery.records;
    let rec = DeliveryRecord::of(delivery, status, http, now_ms());
    if let Ok(bytes) = serde_json::to_vec(&rec) {
        shared.committer.push(Write::Record {
            id: rec.delivery_id.clone(),
            bytes,
            keep: capacity,
        });
    }
    let mut records = lock(&shared.records);
    records.set_capacity(capacity);
    records.upsert(rec);
}

/// The URL as logs may show it: scheme, host, port and path only (no userinfo, query or
/// fragment, where keys live), with key-like path segments masked.
pub fn loggable_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            u.set_query(None);
            u.set_fragment(None);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            // Robot URLs (Feishu, Slack) carry their key in the path: mask it as /config does.
            crate::redact::redact_url(u.as_str())
        }
        Err(_) => String::from("<invalid URL>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loggable_urls_lose_keys() {
        assert_eq!(
            loggable_url("https://u:p@qyapi.example/cgi-bin/send?key=SECRET#frag"),
            "https://qyapi.example/cgi-bin/send"
        );
        assert_eq!(
            loggable_url(
                "https://open.feishu.cn/open-apis/bot/v2/hook/2f1a9c7e-55b1-4d0e-9a3c-7e1f0b2d4c6a"
            ),
            "https://open.feishu.cn/open-apis/bot/v2/hook/<redacted>"
        );
        assert_eq!(loggable_url("not a url"), "<invalid URL>");
    }
}
