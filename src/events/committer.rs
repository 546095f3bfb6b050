//! Group commit: one writer thread owns every write to the spool. Callers append to a shared
//! buffer (a short lock, never I/O) and go on; the writer takes everything buffered and commits
//! it in ONE durable transaction, so a burst of N events costs one fsync, not N.
//!
//! ```text
//! enqueue / ack / retry / dead / record ─push─▶ buffer ─drain─▶ writer thread ─▶ Spool::apply
//!                                                                  │ after the commit:
//!                                 staged deliveries ◀──on_commit───┤ (now durable: attemptable)
//!                                 strict-mode acks  ◀──answered────┘
//! ```
//!
//! The writer waits up to `linger` after the first buffered write to gather more (in `fast`
//! mode an event is durable within linger + one commit); a flush (a `strict`-mode response
//! waiting) or a close ends the wait at once.
//!
//! **A failing disk** (ENOSPC, EIO): redb poisons its handle after an I/O error, so the writer
//! reopens the file and tries once more; if that fails too the spool is *faulted* until a
//! commit succeeds again. While faulted: the new deliveries of the failed batch, and every one
//! staged meanwhile, are handed back as [`Lost`] (the engine records them as failed and counts
//! them; nothing piles up in memory), flush waiters are told "not durable" at once, record
//! writes are dropped (the records stay in memory), and the other writes (retry state,
//! removals, dead letters) are kept and retried with the file reopened each time, 50 ms
//! doubling to 2 s, until space returns. A close stops retrying within [`FINAL_WINDOW`].
//!
//! **Idle compaction**: once commits freed payload bytes (deliveries done, dead letters
//! purged), the writer compacts the file after [`COMPACT_WHEN_IDLE`] without writes, or after
//! [`COMPACT_AT_LEAST_EVERY`](super::compaction::COMPACT_AT_LEAST_EVERY) under constant traffic, so those bytes do not stay readable in
//! free pages; not while the spool stores more than [`COMPACT_MAX_PAYLOAD`](super::compaction::COMPACT_MAX_PAYLOAD) (a long backlog),
//! where rewriting it would hold commits for seconds.
//!
//! Nothing here runs on the request path, and pushing never blocks on the disk: bounds on
//! what may wait are the engine's to enforce (see `buffered_new`). This file never names the
//! engine: what becomes of committed and lost deliveries is the [`Hooks`] its starter supplies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::compaction::{Compaction, COMPACT_WHEN_IDLE};
use super::outbox::Delivery;
use super::spool::{Spool, SpoolError, Write};
use crate::exchange::{Durability, Unconfirmed};

/// Writes committed in one transaction at most: bounds the transaction's size and memory.
const MAX_BATCH: usize = 16_384;

/// Longest wait between attempts to commit after a failed commit (disk full, I/O error).
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);

/// First wait after a failed commit.
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(50);

/// How long a close keeps trying a failing final commit before it gives up (and says what is
/// lost): shutdown must end within its grace period even on a dead disk.
pub const FINAL_WINDOW: Duration = Duration::from_secs(1);

/// At most one "spool commit failed" line per this interval while faulted (with counts).
const FAULT_LOG_EVERY: Duration = Duration::from_secs(10);

/// One buffered item.
enum Op {
    /// A write with nothing to tell anyone.
    Write(Write),
    /// A new delivery's first write; the delivery (if it is to stay in memory) goes back to
    /// the engine once committed.
    Stage(Write, Option<Box<Delivery>>),
    /// Answer once everything before it is committed.
    Flush(Ack),
    /// Drop every dead letter; answer with how many.
    Purge(oneshot::Sender<u64>),
}

/// Whom a flush answers, and with what.
enum Ack {
    Async(oneshot::Sender<bool>),
    Sync(std::sync::mpsc::Sender<bool>),
    /// A `strict` response held for its event.
    Strict(oneshot::Sender<Durability>),
}

impl Ack {
    /// Tells the waiter whether everything before its flush is committed.
    fn answer(self, committed: bool) {
        match self {
            Ack::Async(tx) => {
                let _ = tx.send(committed);
            }
            Ack::Sync(tx) => {
                let _ = tx.send(committed);
            }
            Ack::Strict(tx) => {
                let _ = tx.send(if committed {
                    Durability::Committed
                } else {
                    Durability::Unconfirmed(Unconfirmed::CommitFailed)
                });
            }
        }
    }
}

struct Buffer {
    ops: Vec<Op>,
    /// Bytes of new deliveries waiting for their first commit.
    new_bytes: u64,
    /// New deliveries waiting for their first commit.
    new_count: u64,
    /// Someone waits on the next commit (a flush or purge is buffered): no lingering.
    urgent: bool,
    closing: bool,
}

/// Counters of the writer, readable at any time (the benchmark reports fsyncs per event).
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Durable transactions committed: one fsync each.
    pub commits: AtomicU64,
    /// Writes committed.
    pub writes: AtomicU64,
    /// New deliveries committed.
    pub deliveries: AtomicU64,
    /// Commits that failed (and were retried).
    pub errors: AtomicU64,
    /// Stored payload bytes after the last commit.
    pub payload_bytes: AtomicU64,
    /// New deliveries a failed commit did not make durable (handed back as [`Lost`]).
    pub lost: AtomicU64,
    /// Delivery-record writes dropped while faulted (the records stay in memory).
    pub records_unsaved: AtomicU64,
    /// Times the file was reopened after an I/O error.
    pub reopens: AtomicU64,
    /// Compactions of the file.
    pub compactions: AtomicU64,
}

struct Inner {
    buffer: Mutex<Buffer>,
    wake: Condvar,
    stats: CommitStats,
    /// Microseconds to gather writes before committing (0: commit at once).
    linger_us: AtomicU64,
    closed: AtomicBool,
    /// True while faulted: commits fail, new deliveries are refused.
    faulted: AtomicBool,
    /// Why, while faulted (the last commit error), for `/readyz` and refusals.
    fault: Mutex<Option<String>>,
    /// When a fault's start or end was last logged: a disk that flaps between full and not
    /// gives one pair of lines per [`FAULT_LOG_EVERY`], not one per flap.
    last_fault_log: Mutex<Option<Instant>>,
    /// When a recovery was last logged (same pacing).
    last_recovery_log: Mutex<Option<Instant>>,
}

/// The writer thread could not be started: nothing can be made durable (the engine then
/// refuses every delivery rather than pretend).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the spool writer thread: {0}")]
pub struct WriterError(std::io::Error);

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    inner: Arc<Inner>,
}

/// What becomes of a commit's new deliveries, supplied by whoever starts the writer (the
/// engine; this file never names it). Called on the writer thread after each commit with the
/// staged deliveries it made durable, in order (maybe none), *before* that commit's flush
/// waiters are answered: whoever is told "durable" (a strict-mode response, a
/// [`Committer::flush`]) finds them already handed over. A closure rather than a channel for that
/// reason: a channel's consumer would run later, and the writer thread cannot wait for it. It
/// must be quick and must never wait on this committer (it runs on the writer's thread).
pub type OnCommit = Box<dyn Fn(Vec<Delivery>) + Send>;

/// A new delivery whose first write a failed commit did not make durable: refused, to be
/// recorded as failed.
#[derive(Debug)]
pub struct Lost {
    /// The delivery (decoded from its write when it was staged for disk only).
    pub delivery: Delivery,
    /// True when it was staged to stay in memory (it holds a place in its window).
    pub resident: bool,
    /// A replayed dead letter (its dead letter stays where it is).
    pub revived: bool,
}

/// New deliveries a failed commit did not make durable, with the commit error. Same rules as
/// [`OnCommit`]: on the writer thread, quick, never waiting on this committer (pushing to it
/// is fine).
pub type OnLost = Box<dyn Fn(Vec<Lost>, &str) + Send>;

/// The spool commits again after a fault (the file may have been opened for the first time):
/// called on the writer thread before new deliveries are accepted again, so the starter can
/// learn what the file holds. Same rules as [`OnCommit`].
pub type OnRecovered = Box<dyn Fn(&Spool) + Send>;

/// What the writer tells its starter.
pub struct Hooks {
    /// Deliveries made durable.
    pub on_commit: OnCommit,
    /// Deliveries a failed commit did not make durable.
    pub on_lost: OnLost,
    /// Commits work again.
    pub on_recovered: OnRecovered,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Committer {
    /// Starts the writer thread over `spool`. `payload_bytes` seeds the size counter. A spool
    /// that is not open ([`Spool::unopened`]) starts faulted: the writer keeps trying to open
    /// it. The returned receiver resolves when the thread has committed its last batch and let
    /// go of the spool (after [`Committer::close`]).
    pub fn start(
        spool: Arc<Spool>,
        payload_bytes: u64,
        hooks: Hooks,
    ) -> Result<(Committer, oneshot::Receiver<()>), WriterError> {
        let inner = Arc::new(new_inner(false));
        inner
            .stats
            .payload_bytes
            .store(payload_bytes, Ordering::Relaxed);
        if !spool.is_open() {
            inner.set_fault("the spool file could not be opened".into());
        }
        let (done_tx, done_rx) = oneshot::channel();
        let thread_inner = inner.clone();
        std::thread::Builder::new()
            .name("userhook-spool".into())
            .spawn(move || {
                run(&thread_inner, &spool, &hooks);
                drop(spool);
                let _ = done_tx.send(());
            })
            .map_err(WriterError)?;
        Ok((Committer { inner }, done_rx))
    }

    /// A committer with no writer that refuses everything (when the thread cannot start).
    pub fn closed() -> Committer {
        Committer {
            inner: Arc::new(new_inner(true)),
        }
    }

    /// Sets how long the writer gathers writes before a commit (fast mode) or not (zero).
    pub fn set_linger(&self, linger: Duration) {
        let us = u64::try_from(linger.as_micros()).unwrap_or(u64::MAX);
        self.inner.linger_us.store(us, Ordering::Relaxed);
    }

    /// Buffers a write. False when the writer is closed (the write is not made).
    pub fn push(&self, write: Write) -> bool {
        self.push_op(Op::Write(write), 0).is_ok()
    }

    /// Buffers a new delivery's first write; `on_commit` receives `delivery` once durable
    /// (`None`: it waits on disk only, beyond the engine's memory window).
    pub fn stage(&self, write: Write, delivery: Option<Delivery>) -> bool {
        let bytes = staged_bytes(&write);
        self.push_op(Op::Stage(write, delivery.map(Box::new)), bytes)
            .is_ok()
    }

    /// Answers `ack` once everything buffered before it is committed (`true`), or when that
    /// commit failed (`false`); dropped when closed.
    pub fn flush_then(&self, ack: oneshot::Sender<bool>) {
        let _ = self.push_op(Op::Flush(Ack::Async(ack)), 0);
    }

    /// Answers a held `strict` response once everything buffered before it is committed:
    /// [`Durability::Committed`], or `Unconfirmed` when that commit failed or the writer is
    /// closed.
    pub fn flush_strict(&self, ack: oneshot::Sender<Durability>) {
        if let Err(Op::Flush(Ack::Strict(ack))) = self.push_op(Op::Flush(Ack::Strict(ack)), 0) {
            let _ = ack.send(Durability::Unconfirmed(Unconfirmed::Refused));
        }
    }

    /// Waits until everything buffered so far is committed. False when closed first, or when
    /// that commit failed.
    pub async fn flush(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        self.flush_then(tx);
        rx.await.unwrap_or(false)
    }

    /// [`Committer::flush`] for synchronous callers, waiting at most `limit`. Blocks the
    /// calling thread for about one commit: never call it on the request path.
    pub fn flush_blocking(&self, limit: Duration) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        self.push_op(Op::Flush(Ack::Sync(tx)), 0).is_ok() && rx.recv_timeout(limit) == Ok(true)
    }

    /// Drops every dead letter; how many went. `None` when closed or faulted.
    pub async fn purge(&self) -> Option<u64> {
        let (tx, rx) = oneshot::channel();
        let _ = self.push_op(Op::Purge(tx), 0);
        rx.await.ok()
    }

    /// New deliveries buffered and not yet committed: (count, bytes).
    pub fn buffered_new(&self) -> (u64, u64) {
        let b = lock(&self.inner.buffer);
        (b.new_count, b.new_bytes)
    }

    /// The writer's counters.
    pub fn stats(&self) -> &CommitStats {
        &self.inner.stats
    }

    /// True once closed: nothing more is written.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// True while commits fail (a full or failing disk): new deliveries are refused.
    pub fn is_faulted(&self) -> bool {
        self.inner.faulted.load(Ordering::Acquire)
    }

    /// Why the spool is faulted (the last commit error), while it is.
    pub fn fault(&self) -> Option<String> {
        if !self.is_faulted() {
            return None;
        }
        lock(&self.inner.fault).clone()
    }

    /// Commits what is buffered, then stops the writer. Later pushes are refused.
    pub fn close(&self) {
        let mut b = lock(&self.inner.buffer);
        b.closing = true;
        self.inner.closed.store(true, Ordering::Release);
        drop(b);
        self.inner.wake.notify_all();
    }

    fn push_op(&self, op: Op, new_bytes: u64) -> Result<(), Op> {
        let mut b = lock(&self.inner.buffer);
        if b.closing {
            return Err(op);
        }
        if new_bytes > 0 {
            b.new_bytes += new_bytes;
            b.new_count += 1;
        }
        let urgent = matches!(op, Op::Flush(_) | Op::Purge(_));
        b.urgent |= urgent;
        b.ops.push(op);
        let first = b.ops.len() == 1;
        drop(b);
        if first || urgent {
            self.inner.wake.notify_all();
        }
        Ok(())
    }
}

fn new_inner(closed: bool) -> Inner {
    Inner {
        buffer: Mutex::new(Buffer {
            ops: Vec::new(),
            new_bytes: 0,
            new_count: 0,
            urgent: false,
            closing: closed,
        }),
        wake: Condvar::new(),
        stats: CommitStats::default(),
        linger_us: AtomicU64::new(0),
        closed: AtomicBool::new(closed),
        faulted: AtomicBool::new(false),
        fault: Mutex::new(None),
        last_fault_log: Mutex::new(None),
        last_recovery_log: Mutex::new(None),
    }
}

/// True (and `last` set to now) when nothing was logged through `last` in [`FAULT_LOG_EVERY`].
fn due_now(last: &Mutex<Option<Instant>>) -> bool {
    let mut last = lock(last);
    let due = last.is_none_or(|t| t.elapsed() >= FAULT_LOG_EVERY);
    if due {
        *last = Some(Instant::now());
    }
    due
}

impl Inner {
    fn set_fault(&self, reason: String) {
        *lock(&self.fault) = Some(reason);
        self.faulted.store(true, Ordering::Release);
    }

    fn clear_fault(&self) {
        self.faulted.store(false, Ordering::Release);
        *lock(&self.fault) = None;
    }

    /// Whether a fault's start may be logged now (and, if so, marks it logged).
    fn fault_log_due(&self) -> bool {
        due_now(&self.last_fault_log)
    }

    /// Whether a recovery may be logged now (and, if so, marks it logged).
    fn recovery_log_due(&self) -> bool {
        due_now(&self.last_recovery_log)
    }
}

/// What a new delivery's first write counts against the budget while it waits (at least 1, so
/// it is counted at all).
fn staged_bytes(write: &Write) -> u64 {
    match write {
        Write::Put { bytes, .. } | Write::Revive { bytes, .. } => (bytes.len() as u64).max(1),
        _ => 1,
    }
}

/// Compacts the spool if `compaction` says freed bytes wait and the live payload allows it,
/// counting a compaction that ran.
fn run_compaction(compaction: &mut Compaction, inner: &Inner, spool: &Spool) {
    if compaction.run(spool, inner.stats.payload_bytes.load(Ordering::Relaxed)) {
        inner.stats.compactions.fetch_add(1, Ordering::Relaxed);
    }
}

/// The writer loop: wait for writes, gather, commit, tell; until closed and drained. Between
/// writes: compact when idle, and while faulted keep trying to get the file back.
fn run(inner: &Inner, spool: &Spool, hooks: &Hooks) {
    let mut compaction = Compaction::default();
    if inner.faulted.load(Ordering::Acquire) {
        fault_loop(inner, spool, hooks, Vec::new(), &mut compaction);
    }
    loop {
        let mut b = lock(&inner.buffer);
        while b.ops.is_empty() && !b.closing {
            if !compaction.pending() {
                b = inner.wake.wait(b).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            let (next, waited) = inner
                .wake
                .wait_timeout(b, COMPACT_WHEN_IDLE)
                .unwrap_or_else(|p| p.into_inner());
            b = next;
            if waited.timed_out() && b.ops.is_empty() && !b.closing {
                drop(b);
                run_compaction(&mut compaction, inner, spool);
                b = lock(&inner.buffer);
            }
        }
        if b.ops.is_empty() {
            return; // closing and drained
        }
        let linger = Duration::from_micros(inner.linger_us.load(Ordering::Relaxed));
        if !linger.is_zero() {
            // Gather more writes for up to `linger`, unless someone waits on this commit.
            b = inner
                .wake
                .wait_timeout_while(b, linger, |b| {
                    !b.closing && !b.urgent && b.ops.len() < MAX_BATCH
                })
                .map(|(b, _)| b)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        let take = b.ops.len().min(MAX_BATCH);
        if take == b.ops.len() {
            b.urgent = false;
        }
        let batch: Vec<Op> = b.ops.drain(..take).collect();
        drop(b);
        commit(inner, spool, hooks, batch, &mut compaction);
        if compaction.overdue() {
            run_compaction(&mut compaction, inner, spool);
        }
    }
}

/// A batch taken apart: the writes in order, which of them are new deliveries, and who waits.
#[derive(Default)]
struct Work {
    writes: Vec<Write>,
    /// For each write: the staged delivery it carries (`Some(None)`: staged for disk only).
    staged: Vec<Option<Option<Box<Delivery>>>>,
    flushes: Vec<Ack>,
    purges: Vec<oneshot::Sender<u64>>,
    /// (count, bytes) of staged deliveries, to leave the "buffered" tally once settled.
    tally: (u64, u64),
}

impl Work {
    fn of(batch: Vec<Op>) -> Work {
        let mut w = Work::default();
        w.absorb(batch);
        w
    }

    fn absorb(&mut self, batch: Vec<Op>) {
        for op in batch {
            match op {
                Op::Write(write) => {
                    self.writes.push(write);
                    self.staged.push(None);
                }
                Op::Stage(write, d) => {
                    self.tally.0 += 1;
                    self.tally.1 += staged_bytes(&write);
                    self.writes.push(write);
                    self.staged.push(Some(d));
                }
                Op::Flush(ack) => self.flushes.push(ack),
                Op::Purge(reply) => {
                    self.writes.push(Write::PurgeDead);
                    self.staged.push(None);
                    self.purges.push(reply);
                }
            }
        }
    }

    /// Leaves the staged deliveries' share of the "buffered, not yet committed" tally.
    fn settle_tally(&mut self, inner: &Inner) {
        let (n, bytes) = std::mem::take(&mut self.tally);
        let mut b = lock(&inner.buffer);
        b.new_count = b.new_count.saturating_sub(n);
        b.new_bytes = b.new_bytes.saturating_sub(bytes);
    }

    /// The commit failed: new deliveries are handed back as lost, waiters told "not
    /// durable", purges refused, record writes dropped; the rest is kept for a retry.
    fn fail(mut self, inner: &Inner, hooks: &Hooks, error: &str, keep: &mut Vec<Write>) {
        let mut lost = Vec::new();
        let mut unsaved = 0u64;
        for (write, staged) in self.writes.drain(..).zip(self.staged.drain(..)) {
            match (staged, write) {
                (Some(d), write) => {
                    if let Some(l) = lost_delivery(write, d) {
                        lost.push(l);
                    }
                }
                (None, Write::Record { .. }) => unsaved += 1,
                (None, Write::PurgeDead) => {}
                (None, write) => keep.push(write),
            }
        }
        inner
            .stats
            .records_unsaved
            .fetch_add(unsaved, Ordering::Relaxed);
        self.settle_tally(inner);
        if !lost.is_empty() {
            inner
                .stats
                .lost
                .fetch_add(lost.len() as u64, Ordering::Relaxed);
            (hooks.on_lost)(lost, error);
        }
        for ack in self.flushes {
            ack.answer(false);
        }
        // Dropping the replies tells the purgers it did not happen.
        drop(self.purges);
    }
}

/// A staged write that was not made durable, as the delivery it carried.
fn lost_delivery(write: Write, staged: Option<Box<Delivery>>) -> Option<Lost> {
    let (bytes, revived) = match write {
        Write::Put { bytes, .. } => (bytes, false),
        Write::Revive { bytes, .. } => (bytes, true),
        _ => return None,
    };
    let resident = staged.is_some();
    let delivery = match staged {
        Some(d) => *d,
        None => match serde_json::from_slice::<Delivery>(&bytes) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "a refused delivery could not be decoded to record it");
                return None;
            }
        },
    };
    Some(Lost {
        delivery,
        resident,
        revived,
    })
}

/// Commits one batch and tells everyone waiting on it. On an I/O error the file is reopened
/// and the batch tried once more; if that fails the spool is faulted ([`fault_loop`]).
fn commit(inner: &Inner, spool: &Spool, hooks: &Hooks, batch: Vec<Op>, c: &mut Compaction) {
    let mut work = Work::of(batch);
    if work.writes.is_empty() {
        // Flushes only: everything before them is already committed.
        (hooks.on_commit)(Vec::new());
        for ack in work.flushes {
            ack.answer(true);
        }
        return;
    }
    let mut result = try_apply(inner, spool, &work.writes);
    if let Err(e) = &result {
        tracing::warn!(error = %e, "spool commit failed; reopening the file and trying once more");
        reopen(inner, spool);
        result = try_apply(inner, spool, &work.writes);
        if result.is_ok() {
            // The reopen was enough: never faulted.
            crate::metrics::spool_recovered();
        }
    }
    match result {
        Ok(applied) => {
            c.freed(applied.freed_bytes);
            count_commit(inner, &work, applied);
            work.settle_tally(inner);
            // Called after every commit, also without new deliveries: deliveries written
            // straight to disk (beyond the memory window) can now be paged in.
            let staged: Vec<Delivery> = work
                .staged
                .into_iter()
                .flatten()
                .flatten()
                .map(|d| *d)
                .collect();
            (hooks.on_commit)(staged);
            for ack in work.flushes {
                ack.answer(true);
            }
            for reply in work.purges {
                let _ = reply.send(applied.purged);
            }
        }
        Err(e) => {
            let reason = e.to_string();
            inner.set_fault(reason.clone());
            if inner.fault_log_due() {
                tracing::error!(
                    error = %reason,
                    "spool not writable: new deliveries are refused (recorded as failed) and delivery pauses until a commit succeeds again"
                );
            }
            let mut keep = Vec::new();
            work.fail(inner, hooks, &reason, &mut keep);
            fault_loop(inner, spool, hooks, keep, c);
        }
    }
}

fn count_commit(inner: &Inner, work: &Work, applied: super::spool::Applied) {
    let s = &inner.stats;
    s.commits.fetch_add(1, Ordering::Relaxed);
    s.writes
        .fetch_add(work.writes.len() as u64, Ordering::Relaxed);
    s.deliveries.fetch_add(work.tally.0, Ordering::Relaxed);
    s.payload_bytes
        .store(applied.payload_bytes, Ordering::Relaxed);
}

fn try_apply(
    inner: &Inner,
    spool: &Spool,
    writes: &[Write],
) -> Result<super::spool::Applied, SpoolError> {
    let r = spool.apply(writes);
    if r.is_err() {
        inner.stats.errors.fetch_add(1, Ordering::Relaxed);
        crate::metrics::spool_fault();
    }
    r
}

fn reopen(inner: &Inner, spool: &Spool) {
    inner.stats.reopens.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = spool.reopen() {
        tracing::debug!(error = %e, "spool reopen failed");
    }
}

/// The spool is faulted: keep `keep` (writes that must not be lost) and retry them, reopening
/// the file each time, until a commit succeeds; meanwhile answer whatever arrives without
/// waiting (new deliveries lost, flushes "not durable", records dropped, other writes kept).
/// Returns once a commit succeeded, or once a close gave up after [`FINAL_WINDOW`].
fn fault_loop(
    inner: &Inner,
    spool: &Spool,
    hooks: &Hooks,
    mut keep: Vec<Write>,
    c: &mut Compaction,
) {
    let faulted_at = Instant::now();
    let mut wait = FIRST_RETRY_WAIT;
    let mut give_up_at: Option<Instant> = None;
    let mut failures = 0u64;
    let mut last_log = Instant::now();
    loop {
        let deadline = Instant::now() + wait;
        loop {
            let mut b = lock(&inner.buffer);
            let arrived: Vec<Op> = b.ops.drain(..).collect();
            b.urgent = false;
            let closing = b.closing;
            drop(b);
            if !arrived.is_empty() {
                let reason = lock(&inner.fault).clone().unwrap_or_default();
                Work::of(arrived).fail(inner, hooks, &reason, &mut keep);
            }
            if closing && give_up_at.is_none() {
                give_up_at = Some(Instant::now() + FINAL_WINDOW);
                wait = FIRST_RETRY_WAIT;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if closing {
                // Nothing more can arrive: just wait out the (short) backoff.
                std::thread::sleep(deadline - now);
                break;
            }
            let b = lock(&inner.buffer);
            let _ = inner
                .wake
                .wait_timeout_while(b, deadline - now, |b| b.ops.is_empty() && !b.closing)
                .unwrap_or_else(|p| p.into_inner());
        }
        reopen(inner, spool);
        // With nothing kept this is a probe: an empty commit still writes the meta table.
        match try_apply(inner, spool, &keep) {
            Ok(applied) => {
                c.freed(applied.freed_bytes);
                let s = &inner.stats;
                s.commits.fetch_add(1, Ordering::Relaxed);
                s.writes.fetch_add(keep.len() as u64, Ordering::Relaxed);
                s.payload_bytes
                    .store(applied.payload_bytes, Ordering::Relaxed);
                (hooks.on_recovered)(spool);
                inner.clear_fault();
                crate::metrics::spool_recovered();
                if inner.recovery_log_due() {
                    tracing::warn!(
                        faulted_for_ms = faulted_at.elapsed().as_millis() as u64,
                        failed_commits = failures + 1,
                        "spool writable again: new deliveries are accepted and delivery resumes"
                    );
                }
                (hooks.on_commit)(Vec::new());
                return;
            }
            Err(e) => {
                failures += 1;
                let reason = e.to_string();
                *lock(&inner.fault) = Some(reason.clone());
                if last_log.elapsed() >= FAULT_LOG_EVERY {
                    last_log = Instant::now();
                    tracing::error!(
                        error = %reason,
                        failed_commits = failures,
                        kept_writes = keep.len(),
                        refused_so_far = inner.stats.lost.load(Ordering::Relaxed),
                        "spool still not writable; retrying (new deliveries are refused)"
                    );
                }
                if give_up_at.is_some_and(|t| Instant::now() >= t) {
                    tracing::error!(
                        writes = keep.len(),
                        error = %reason,
                        "giving up on the final spool commit at shutdown: these changes are lost (deliveries already on disk are sent again at the next start)"
                    );
                    return;
                }
                wait = (wait * 2).min(MAX_RETRY_WAIT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::spool::tests::put;

    fn hooks(on_commit: OnCommit) -> Hooks {
        Hooks {
            on_commit,
            on_lost: Box::new(|_, _| {}),
            on_recovered: Box::new(|_| {}),
        }
    }

    fn delivery(seq: u64) -> Delivery {
        crate::events::spool::tests::delivery("w", &format!("u{seq}"), seq)
    }

    #[tokio::test]
    async fn a_burst_is_one_commit_and_staged_deliveries_come_back_in_order() {
        let spool = Arc::new(Spool::in_memory().expect("spool"));
        let (tx, rx) = std::sync::mpsc::channel();
        let on_commit: OnCommit = Box::new(move |ds: Vec<Delivery>| {
            let _ = tx.send(ds.into_iter().map(|d| d.seq).collect::<Vec<_>>());
        });
        let (c, done) = Committer::start(spool.clone(), 0, hooks(on_commit)).expect("start");
        // Hold the buffer while 1000 deliveries arrive, as a burst does during a commit.
        {
            let mut b = lock(&c.inner.buffer);
            for seq in 1..=1000 {
                let d = delivery(seq);
                b.ops.push(Op::Stage(put(&d), Some(Box::new(d))));
                b.new_count += 1;
            }
        }
        c.inner.wake.notify_one();
        assert!(c.flush().await);
        assert_eq!(c.stats().commits.load(Ordering::Relaxed), 1);
        assert_eq!(c.stats().deliveries.load(Ordering::Relaxed), 1000);
        assert_eq!(rx.recv().expect("commit"), (1..=1000).collect::<Vec<_>>());
        assert_eq!(spool.pending_count().expect("count"), 1000);
        assert_eq!(c.buffered_new().0, 0);

        // Each write alone is a commit of its own when nothing else is waiting.
        for seq in 1001..=1003 {
            let d = delivery(seq);
            assert!(c.stage(put(&d), Some(d)));
            assert!(c.flush().await);
        }
        assert_eq!(c.stats().commits.load(Ordering::Relaxed), 4);

        c.close();
        done.await.expect("writer finished");
        assert!(!c.push(Write::PurgeDead), "closed: refused");
        assert!(!c.flush().await);
        assert!(c.is_closed());
    }

    #[tokio::test]
    async fn close_commits_what_is_buffered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Arc::new(Spool::open(dir.path()).expect("open"));
        let (c, done) = Committer::start(spool.clone(), 0, hooks(Box::new(|_| {}))).expect("start");
        c.set_linger(Duration::from_secs(3600));
        for seq in 1..=10 {
            assert!(c.push(put(&delivery(seq))));
        }
        c.close();
        done.await.expect("writer finished");
        drop(spool);
        let reopened = Spool::open(dir.path()).expect("reopen after close");
        assert_eq!(reopened.pending_count().expect("count"), 10);
    }

    #[tokio::test]
    async fn purge_answers_with_the_count() {
        let spool = Arc::new(Spool::in_memory().expect("spool"));
        let (c, _done) = Committer::start(spool, 0, hooks(Box::new(|_| {}))).expect("start");
        assert_eq!(c.purge().await, Some(0));
        assert!(Committer::closed().is_closed());
        assert_eq!(Committer::closed().purge().await, None);
    }

    /// A spool in `dir` behind a fault switch, and a committer over it whose lost deliveries
    /// land in the returned receiver.
    /// What [`faulty`] starts: the spool, its switch, the committer, its end, and the seqs
    /// of lost deliveries as they are reported.
    type Faulty = (
        Arc<Spool>,
        Arc<super::super::spool::FaultSwitch>,
        Committer,
        oneshot::Receiver<()>,
        std::sync::mpsc::Receiver<Vec<u64>>,
    );

    fn faulty(dir: &std::path::Path) -> Faulty {
        let switch = super::super::spool::FaultSwitch::new();
        let spool = Arc::new(
            Spool::open_source(super::super::spool::SpoolSource::Faulty(
                dir.to_path_buf(),
                switch.clone(),
            ))
            .expect("open"),
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = Mutex::new(tx);
        let hooks = Hooks {
            on_commit: Box::new(|_| {}),
            on_lost: Box::new(move |lost, error| {
                assert!(error.contains("No space left on device"), "{error}");
                let _ = lock(&tx).send(lost.iter().map(|l| l.delivery.seq).collect());
            }),
            on_recovered: Box::new(|_| {}),
        };
        let (c, done) = Committer::start(spool.clone(), 0, hooks).expect("start");
        (spool, switch, c, done, rx)
    }

    #[tokio::test]
    async fn a_full_disk_loses_only_new_deliveries_keeps_the_rest_and_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (spool, switch, c, done, lost) = faulty(dir.path());
        for seq in 1..=3 {
            let d = delivery(seq);
            assert!(c.stage(put(&d), Some(d)));
        }
        assert!(c.flush().await);
        assert!(!c.is_faulted());

        switch.fill_disk();
        // A new delivery and a removal of a committed one, in the same failing batch.
        let d = delivery(4);
        assert!(c.stage(put(&d), Some(d)));
        assert!(c.push(Write::Remove {
            webhook: "w".into(),
            seq: 1
        }));
        assert!(!c.flush().await, "not durable");
        assert!(c.is_faulted());
        assert!(c
            .fault()
            .expect("reason")
            .contains("No space left on device"));
        assert_eq!(lost.recv().expect("lost"), [4]);
        assert_eq!(c.buffered_new(), (0, 0), "nothing new waits in memory");
        // While faulted, new deliveries are handed back at once and flushes answered at once.
        let d = delivery(5);
        assert!(c.stage(put(&d), None));
        let (tx, rx) = oneshot::channel();
        c.flush_strict(tx);
        assert_eq!(
            rx.await.expect("answered"),
            Durability::Unconfirmed(Unconfirmed::CommitFailed)
        );
        assert_eq!(lost.recv().expect("lost"), [5], "decoded from its write");
        assert!(c.stats().reopens.load(Ordering::Relaxed) >= 1);

        switch.heal();
        let started = Instant::now();
        while c.is_faulted() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never recovered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The kept removal went in; the lost delivery did not.
        let seqs: Vec<u64> = spool
            .page("w", 0, u64::MAX, 10)
            .expect("page")
            .deliveries
            .iter()
            .map(|d| d.seq)
            .collect();
        assert_eq!(seqs, [2, 3]);
        let d = delivery(6);
        assert!(c.stage(put(&d), Some(d)));
        assert!(c.flush().await);
        assert_eq!(spool.pending_count().expect("count"), 3);
        c.close();
        done.await.expect("closed");
    }

    #[tokio::test]
    async fn close_on_a_dead_disk_gives_up_within_the_final_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_spool, switch, c, done, _lost) = faulty(dir.path());
        switch.fill_disk();
        assert!(c.push(Write::Remove {
            webhook: "w".into(),
            seq: 1
        }));
        assert!(!c.flush().await);
        let started = Instant::now();
        c.close();
        done.await.expect("closed");
        let took = started.elapsed();
        assert!(
            took < FINAL_WINDOW + MAX_RETRY_WAIT,
            "close took {took:?} on a dead disk"
        );
    }
}
