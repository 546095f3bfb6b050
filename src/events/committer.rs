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
//! Nothing here runs on the request path, and pushing never blocks on the disk: bounds on
//! what may wait are the engine's to enforce (see `buffered_new`). This file never names the
//! engine: what becomes of committed deliveries is the [`OnCommit`] its starter supplies.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use super::outbox::Delivery;
use super::spool::{Spool, Write};

/// Writes committed in one transaction at most: bounds the transaction's size and memory.
const MAX_BATCH: usize = 16_384;

/// Longest wait between attempts to commit after a failed commit (disk full, I/O error).
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);

/// Failed commits of the final batch before shutdown gives up on it (logged with a count).
const FINAL_ATTEMPTS: u32 = 5;

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

/// Whom a flush answers.
enum Ack {
    Async(oneshot::Sender<()>),
    Sync(std::sync::mpsc::Sender<()>),
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
}

struct Inner {
    buffer: Mutex<Buffer>,
    wake: Condvar,
    stats: CommitStats,
    /// Microseconds to gather writes before committing (0: commit at once).
    linger_us: AtomicU64,
    closed: AtomicBool,
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Committer {
    /// Starts the writer thread over `spool`. `payload_bytes` seeds the size counter.
    /// The returned receiver resolves when the thread has committed its last batch and let go
    /// of the spool (after [`Committer::close`]).
    pub fn start(
        spool: Arc<Spool>,
        payload_bytes: u64,
        on_commit: OnCommit,
    ) -> Result<(Committer, oneshot::Receiver<()>), WriterError> {
        let inner = Arc::new(Inner {
            buffer: Mutex::new(Buffer {
                ops: Vec::new(),
                new_bytes: 0,
                new_count: 0,
                urgent: false,
                closing: false,
            }),
            wake: Condvar::new(),
            stats: CommitStats::default(),
            linger_us: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        inner
            .stats
            .payload_bytes
            .store(payload_bytes, Ordering::Relaxed);
        let (done_tx, done_rx) = oneshot::channel();
        let thread_inner = inner.clone();
        std::thread::Builder::new()
            .name("userhook-spool".into())
            .spawn(move || {
                run(&thread_inner, &spool, &on_commit);
                drop(spool);
                let _ = done_tx.send(());
            })
            .map_err(WriterError)?;
        Ok((Committer { inner }, done_rx))
    }

    /// A committer with no writer that refuses everything (when the thread cannot start).
    pub fn closed() -> Committer {
        Committer {
            inner: Arc::new(Inner {
                buffer: Mutex::new(Buffer {
                    ops: Vec::new(),
                    new_bytes: 0,
                    new_count: 0,
                    urgent: false,
                    closing: true,
                }),
                wake: Condvar::new(),
                stats: CommitStats::default(),
                linger_us: AtomicU64::new(0),
                closed: AtomicBool::new(true),
            }),
        }
    }

    /// Sets how long the writer gathers writes before a commit (fast mode) or not (zero).
    pub fn set_linger(&self, linger: Duration) {
        let us = u64::try_from(linger.as_micros()).unwrap_or(u64::MAX);
        self.inner.linger_us.store(us, Ordering::Relaxed);
    }

    /// Buffers a write. False when the writer is closed (the write is not made).
    pub fn push(&self, write: Write) -> bool {
        self.push_op(Op::Write(write), 0)
    }

    /// Buffers a new delivery's first write; `on_commit` receives `delivery` once durable
    /// (`None`: it waits on disk only, beyond the engine's memory window).
    pub fn stage(&self, write: Write, delivery: Option<Delivery>) -> bool {
        let bytes = staged_bytes(&write);
        self.push_op(Op::Stage(write, delivery.map(Box::new)), bytes)
    }

    /// Answers `ack` once everything buffered before it is committed; dropped when closed.
    pub fn flush_then(&self, ack: oneshot::Sender<()>) {
        self.push_op(Op::Flush(Ack::Async(ack)), 0);
    }

    /// Waits until everything buffered so far is committed. False when closed first.
    pub async fn flush(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        self.flush_then(tx);
        rx.await.is_ok()
    }

    /// [`Committer::flush`] for synchronous callers, waiting at most `limit`. Blocks the
    /// calling thread for about one commit: never call it on the request path.
    pub fn flush_blocking(&self, limit: Duration) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        self.push_op(Op::Flush(Ack::Sync(tx)), 0) && rx.recv_timeout(limit).is_ok()
    }

    /// Drops every dead letter; how many went. `None` when closed.
    pub async fn purge(&self) -> Option<u64> {
        let (tx, rx) = oneshot::channel();
        self.push_op(Op::Purge(tx), 0);
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

    /// Commits what is buffered, then stops the writer. Later pushes are refused.
    pub fn close(&self) {
        let mut b = lock(&self.inner.buffer);
        b.closing = true;
        self.inner.closed.store(true, Ordering::Release);
        drop(b);
        self.inner.wake.notify_one();
    }

    fn push_op(&self, op: Op, new_bytes: u64) -> bool {
        let mut b = lock(&self.inner.buffer);
        if b.closing {
            return false;
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
            self.inner.wake.notify_one();
        }
        true
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

/// The writer loop: wait for writes, gather, commit, tell; until closed and drained.
fn run(inner: &Inner, spool: &Spool, on_commit: &OnCommit) {
    loop {
        let mut b = lock(&inner.buffer);
        while b.ops.is_empty() && !b.closing {
            b = inner.wake.wait(b).unwrap_or_else(|p| p.into_inner());
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
        let (staged, staged_bytes) = batch.iter().fold((0u64, 0u64), |(n, bytes), op| match op {
            Op::Stage(w, _) => (n + 1, bytes + staged_bytes(w)),
            _ => (n, bytes),
        });
        let closing = b.closing;
        drop(b);
        commit(
            inner,
            spool,
            on_commit,
            batch,
            closing,
            (staged, staged_bytes),
        );
    }
}

/// Commits one batch (retrying on failure) and tells everyone waiting on it.
/// `staged` (count, bytes) leaves the "buffered, not yet committed" tally before anyone
/// waiting on this commit is told, so a waiter never sees it still counted.
fn commit(
    inner: &Inner,
    spool: &Spool,
    on_commit: &OnCommit,
    batch: Vec<Op>,
    closing: bool,
    staged_tally: (u64, u64),
) {
    let mut writes = Vec::with_capacity(batch.len());
    let mut staged = Vec::new();
    let mut flushes = Vec::new();
    let mut purges = Vec::new();
    let mut new = 0u64;
    for op in batch {
        match op {
            Op::Write(w) => writes.push(w),
            Op::Stage(w, d) => {
                writes.push(w);
                new += 1;
                if let Some(d) = d {
                    staged.push(*d);
                }
            }
            Op::Flush(ack) => flushes.push(ack),
            Op::Purge(reply) => {
                writes.push(Write::PurgeDead);
                purges.push(reply);
            }
        }
    }
    let mut wait = Duration::from_millis(50);
    let mut failures = 0u32;
    let applied = loop {
        if writes.is_empty() {
            break None;
        }
        match spool.apply(&writes) {
            Ok(applied) => break Some(applied),
            Err(e) => {
                failures += 1;
                inner.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    error = %e,
                    writes = writes.len(),
                    failures,
                    "spool commit failed; retrying (deliveries wait, nothing is attempted before it is on disk)"
                );
                if closing && failures >= FINAL_ATTEMPTS {
                    tracing::error!(
                        writes = writes.len(),
                        "giving up on the final spool commit: these changes are lost"
                    );
                    let mut b = lock(&inner.buffer);
                    b.new_count = b.new_count.saturating_sub(staged_tally.0);
                    b.new_bytes = b.new_bytes.saturating_sub(staged_tally.1);
                    return;
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(MAX_RETRY_WAIT);
            }
        }
    };
    let purged = applied.map_or(0, |a| a.purged);
    if let Some(a) = applied {
        let s = &inner.stats;
        s.commits.fetch_add(1, Ordering::Relaxed);
        s.writes.fetch_add(writes.len() as u64, Ordering::Relaxed);
        s.deliveries.fetch_add(new, Ordering::Relaxed);
        s.payload_bytes.store(a.payload_bytes, Ordering::Relaxed);
    }
    {
        let mut b = lock(&inner.buffer);
        b.new_count = b.new_count.saturating_sub(staged_tally.0);
        b.new_bytes = b.new_bytes.saturating_sub(staged_tally.1);
    }
    // Called after every commit, also without new deliveries: deliveries written straight to
    // disk (beyond the memory window) can now be paged in.
    on_commit(staged);
    for ack in flushes {
        match ack {
            Ack::Async(tx) => {
                let _ = tx.send(());
            }
            Ack::Sync(tx) => {
                let _ = tx.send(());
            }
        }
    }
    for reply in purges {
        let _ = reply.send(purged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::spool::tests::put;

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
        let (c, done) = Committer::start(spool.clone(), 0, on_commit).expect("start");
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
        let (c, done) = Committer::start(spool.clone(), 0, Box::new(|_| {})).expect("start");
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
        let (c, _done) = Committer::start(spool, 0, Box::new(|_| {})).expect("start");
        assert_eq!(c.purge().await, Some(0));
        assert!(Committer::closed().is_closed());
        assert_eq!(Committer::closed().purge().await, None);
    }
}
