//! Starting and stopping the engine, and waiting for what it took to be durable. Starting
//! resumes the spool's pending deliveries (their windows and records); stopping lets attempts
//! in flight finish within a grace period, commits the last writes and releases the file.
//! Stopping never drops a pending delivery silently: attempts the grace period cuts off stay
//! pending in the spool (and are logged) for the next start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{oneshot, watch, Notify};

use super::admit::{admit_committed, admit_lost};
use super::error::EngineError;
use super::limits::COMMIT_LINGER;
use super::outcome::announce_orphans;
use super::schedule::schedule;
use super::state::{lock, DeliveryEngine, Memory, Orphans, Refusals, Shared, State, Window};
use crate::events::attempt;
use crate::events::committer::{Committer, Hooks, OnCommit, OnLost, OnRecovered, FINAL_WINDOW};
use crate::events::live::LiveFeed;
use crate::events::outbox::{Delivery, Outbox};
use crate::events::publish::Publishers;
use crate::events::records::Records;
use crate::events::spool::Spool;
use crate::exchange::Durability;
use crate::sink::Sink;
use crate::snapshot::Snapshot;

impl DeliveryEngine {
    /// Starts with a spool in memory: nothing survives the process. For tests and embedding;
    /// `serve` uses [`DeliveryEngine::start_with`] and a spool on disk. Must be called inside a
    /// tokio runtime.
    pub fn start(runtime: Arc<ArcSwap<Snapshot>>) -> Result<DeliveryEngine, EngineError> {
        let spool = Spool::in_memory()?;
        DeliveryEngine::start_with(runtime, spool)
    }

    /// Starts over `spool`: pending deliveries resume with their ids, attempt counts and retry
    /// times; delivery records are read back. Must be called inside a tokio runtime.
    pub fn start_with(
        runtime: Arc<ArcSwap<Snapshot>>,
        spool: Spool,
    ) -> Result<DeliveryEngine, EngineError> {
        let client = attempt::build_client()?;
        let rt = runtime.load_full();
        let keep = rt.file.delivery.records;
        let spool = Arc::new(spool);
        // A spool that could not be opened (fast mode keeps serving) starts empty and faulted;
        // the writer keeps trying to open it.
        let (next_seq, payload_bytes) = if spool.is_open() {
            spool.meta()?
        } else {
            (1, 0)
        };
        let mut windows = HashMap::new();
        let mut next_seq = next_seq;
        let mut backlog = 0u64;
        let on_disk = if spool.is_open() {
            spool.webhooks()?
        } else {
            Vec::new()
        };
        for (webhook, lo, hi) in &on_disk {
            next_seq = next_seq.max(hi.saturating_add(1));
            backlog += 1;
            windows.insert(
                webhook.clone(),
                Window {
                    resident: 0,
                    loaded_upto: lo.saturating_sub(1),
                    backlog_upto: Some(*hi),
                },
            );
        }
        let mut records = Records::new(keep);
        if spool.is_open() {
            for r in spool.records(keep)? {
                records.upsert(r);
            }
        }
        let (stop, stop_rx) = watch::channel(None);
        let memory = Arc::new(Memory {
            state: Mutex::new(State {
                outbox: Outbox::new(usize::MAX),
                running: HashMap::new(),
                total: 0,
                windows,
                resident: 0,
                next_seq,
                stopping: false,
                pace: HashMap::new(),
            }),
            wake: Notify::new(),
        });
        // The writer hands committed deliveries back through this closure, on its thread,
        // before it answers the commit's flush waiters: a delivery is in memory (attemptable)
        // by the time anyone is told it is durable. It reaches only `Memory`, and only while
        // the engine lives.
        let on_commit: OnCommit = {
            let memory = Arc::downgrade(&memory);
            Box::new(move |committed: Vec<Delivery>| {
                if let Some(memory) = memory.upgrade() {
                    admit_committed(&memory, committed);
                }
            })
        };
        // New deliveries a failed commit did not make durable are refused like any other: the
        // hook reaches the engine through a slot filled once it exists (and only while it
        // lives: the writer must not keep it alive).
        let engine_slot: Arc<OnceLock<Weak<Shared>>> = Arc::new(OnceLock::new());
        let on_lost: OnLost = {
            let slot = engine_slot.clone();
            Box::new(move |lost, _error: &str| {
                if let Some(shared) = slot.get().and_then(Weak::upgrade) {
                    admit_lost(&shared, lost);
                }
            })
        };
        // After a fault the file may hold more than memory knows (opened for the first time,
        // or another process wrote it meanwhile): seqs and backlogs are taken from it before
        // new deliveries are accepted again.
        let on_recovered: OnRecovered = {
            let memory = Arc::downgrade(&memory);
            Box::new(move |spool: &Spool| {
                if let Some(memory) = memory.upgrade() {
                    learn_from_disk(&memory, spool);
                }
            })
        };
        let hooks = Hooks {
            on_commit,
            on_lost,
            on_recovered,
        };
        let (committer, done) = match Committer::start(spool.clone(), payload_bytes, hooks) {
            Ok((committer, done)) => (committer, Some(done)),
            // Without a writer thread nothing can be made durable: every delivery is
            // refused (and said so) rather than pretend.
            Err(e) => {
                tracing::error!("{e}");
                (Committer::closed(), None)
            }
        };
        let shared = Arc::new(Shared {
            runtime: runtime.clone(),
            client,
            publishers: Arc::new(Publishers::new()),
            memory,
            records: Mutex::new(records),
            stop,
            scheduler: Mutex::new(None),
            spool: RwLock::new(Some(spool.clone())),
            committer,
            writer_done: Mutex::new(done),
            refused: Refusals::default(),
            replaying: tokio::sync::Mutex::new(()),
            orphans: Mutex::new(Orphans::default()),
            last_counts: Mutex::new((0, 0, 0)),
            live: LiveFeed::new(),
        });
        let _ = engine_slot.set(Arc::downgrade(&shared));
        shared.committer.set_linger(COMMIT_LINGER);
        if backlog > 0 {
            let pending = spool.pending_count().unwrap_or(0);
            tracing::info!(
                pending,
                webhooks = backlog,
                "resuming pending deliveries from the spool"
            );
            announce_orphans(&shared, &rt, &spool, &on_disk);
        }
        for sink in rt.sinks.iter().filter(|s| s.enabled) {
            tokio::spawn(prepare_sink(
                shared.publishers.clone(),
                sink.clone(),
                stop_rx.clone(),
            ));
        }
        let handle = tokio::spawn(schedule(shared.clone(), stop_rx));
        *lock(&shared.scheduler) = Some(handle);
        Ok(DeliveryEngine { shared })
    }

    /// Answers `ack` once every delivery enqueued before this call is committed to disk
    /// (`strict` mode holds a response on it): `Committed`, or `Unconfirmed` when that commit
    /// failed or the spool is closed.
    pub fn notify_when_durable(&self, ack: oneshot::Sender<Durability>) {
        self.shared.committer.flush_strict(ack);
    }

    /// Waits until everything written so far is committed. False once closed.
    pub async fn flush(&self) -> bool {
        self.shared.committer.flush().await
    }

    /// Stops starting attempts, waits up to `grace` for those in flight (the rest stay pending
    /// on disk), commits the last writes and releases the spool file.
    pub async fn stop(&self, grace: Duration) {
        let _ = self.shared.stop.send(Some(grace));
        let handle = lock(&self.shared.scheduler).take();
        if let Some(h) = handle {
            let _ = h.await;
        }
        self.shared.memory.lock().stopping = true;
        // Whatever a sink's client still buffers goes out before the process does.
        self.shared
            .publishers
            .flush_all(grace.min(Duration::from_secs(2)))
            .await;
        self.shared.committer.close();
        let done = lock(&self.shared.writer_done).take();
        if let Some(done) = done {
            // The writer gives up a failing final commit within FINAL_WINDOW; a disk that
            // hangs inside a system call must not hold the process past its grace either.
            let limit = grace.max(FINAL_WINDOW) + FINAL_WINDOW;
            if tokio::time::timeout(limit, done).await.is_err() {
                tracing::error!(
                    waited_ms = limit.as_millis() as u64,
                    "the spool writer did not finish (a hung disk?); stopping without its last commit"
                );
            }
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
}

/// Takes the file's next seq and per-webhook backlogs into memory (idempotent: a backlog only
/// grows to cover rows memory has not loaded), so seqs are never reused and a backlog the
/// engine did not know about is paged in.
fn learn_from_disk(memory: &Memory, spool: &Spool) {
    let (next_seq, on_disk) = match (spool.meta(), spool.webhooks()) {
        (Ok((next, _)), Ok(on_disk)) => (next, on_disk),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot read the spool after it recovered");
            return;
        }
    };
    let mut st = memory.lock();
    st.next_seq = st.next_seq.max(next_seq);
    for (webhook, lo, hi) in on_disk {
        st.next_seq = st.next_seq.max(hi.saturating_add(1));
        let w = st.windows.entry(webhook).or_insert_with(|| Window {
            resident: 0,
            loaded_upto: lo.saturating_sub(1),
            backlog_upto: None,
        });
        if hi > w.loaded_upto {
            w.backlog_upto = Some(w.backlog_upto.map_or(hi, |b| b.max(hi)));
        }
    }
    drop(st);
    memory.wake.notify_one();
}

/// Connects a sink at start and checks its stream, so a missing stream is a clear error in the
/// log before any event needs it; retries (1 s doubling to 30 s) until it works or the engine
/// stops. Deliveries do not wait for it: each attempt checks for itself.
async fn prepare_sink(
    publishers: Arc<Publishers>,
    sink: Arc<Sink>,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let mut wait = Duration::from_secs(1);
    loop {
        match publishers.prepare(&sink).await {
            Ok(()) => {
                tracing::info!(sink = %sink.name, stream = sink.stream.as_deref().unwrap_or(""), "sink ready");
                return;
            }
            Err(e) => tracing::error!(retry_in_s = wait.as_secs(), "{e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if stop.borrow().is_some() {
            return;
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}
