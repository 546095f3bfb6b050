//! The engine's shared state: what its handle, its scheduler task, its attempts and the
//! committer's hand-back all reach. Data and short locks only; the decisions live in the files
//! beside this one. Nothing here waits for I/O.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinHandle;

use super::error::EngineError;
use super::pace::Pace;
use crate::events::committer::Committer;
use crate::events::live::LiveFeed;
use crate::events::outbox::Outbox;
use crate::events::publish::Publishers;
use crate::events::records::Records;
use crate::events::spool::Spool;
use crate::snapshot::Snapshot;

/// Handle to the running engine; cheap to clone.
#[derive(Clone)]
pub struct DeliveryEngine {
    pub(super) shared: Arc<Shared>,
}

/// Everything the engine's parts share; one per engine, behind the handle's `Arc`.
pub(super) struct Shared {
    /// The config cell: limits, webhooks and the records bound are read from its current
    /// snapshot at each decision.
    pub(super) runtime: Arc<ArcSwap<Snapshot>>,
    pub(super) client: reqwest::Client,
    /// One NATS client per sink, shared by its attempts.
    pub(super) publishers: Arc<Publishers>,
    /// What is in memory, and the scheduler's wakeup.
    pub(super) memory: Arc<Memory>,
    pub(super) records: Mutex<Records>,
    /// `Some(grace)` once stopping.
    pub(super) stop: watch::Sender<Option<Duration>>,
    pub(super) scheduler: Mutex<Option<JoinHandle<()>>>,
    /// `None` once stopped: the file (and its lock) is released.
    pub(super) spool: RwLock<Option<Arc<Spool>>>,
    pub(super) committer: Committer,
    pub(super) writer_done: Mutex<Option<oneshot::Receiver<()>>>,
    pub(super) refused: Refusals,
    /// One replay at a time: two concurrent replays of one dead letter must revive it once.
    pub(super) replaying: tokio::sync::Mutex<()>,
    /// Deliveries of webhooks no longer in the config, moved to the dead letters: summed per
    /// webhook and logged as one line, not one per delivery.
    pub(super) orphans: Mutex<Orphans>,
    /// The last counts read from the spool (pending, dead, quarantined), shown while the file
    /// is busy (compacting) instead of waiting for it on the admin's thread.
    pub(super) last_counts: Mutex<(u64, u64, u64)>,
    /// Every outcome is published here too, for `GET /events` (never waits for a reader).
    pub(super) live: LiveFeed,
}

/// Dead-lettered deliveries of webhooks no longer in (or disabled in) the config, counted per
/// webhook since the last summary line.
#[derive(Default)]
pub(super) struct Orphans {
    pub(super) counts: HashMap<String, u64>,
    pub(super) last_log: Option<Instant>,
    /// Webhooks already summarised at start (their backlog was announced there).
    pub(super) announced: std::collections::HashSet<String>,
}

/// The deliveries in memory and the scheduler's wakeup: the one part of the engine the
/// committer's hand-back reaches (it holds a `Weak` of this, see `lifecycle.rs`), so a commit
/// can make deliveries attemptable without touching the spool, the writer or the records.
pub(super) struct Memory {
    pub(super) state: Mutex<State>,
    /// Wakes the scheduler: a commit, a finished attempt, a stop.
    pub(super) wake: Notify,
}

impl Memory {
    /// The in-memory state, under its (short) lock.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// Refused new deliveries, by reason, and when a refusal was last logged.
#[derive(Default)]
pub(super) struct Refusals {
    pub(super) full: AtomicU64,
    pub(super) overloaded: AtomicU64,
    pub(super) stopping: AtomicU64,
    pub(super) fault: AtomicU64,
    pub(super) unencodable: AtomicU64,
    pub(super) last_log: Mutex<Option<Instant>>,
}

/// The deliveries in memory and the attempts running, under one lock.
pub(super) struct State {
    pub(super) outbox: Outbox,
    /// Attempts in flight per webhook name.
    pub(super) running: HashMap<String, usize>,
    pub(super) total: usize,
    pub(super) windows: HashMap<String, Window>,
    /// Deliveries in memory (waiting for their commit, waiting, or in flight).
    pub(super) resident: usize,
    pub(super) next_seq: u64,
    pub(super) stopping: bool,
    /// Per webhook: its send budget, a robot's pause and its health.
    pub(super) pace: HashMap<String, Pace>,
}

/// One webhook's memory window over its pending deliveries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Window {
    /// In memory: staged for the first commit, waiting, or in flight.
    pub(super) resident: usize,
    /// Every pending delivery with a seq up to this is (or was) in memory.
    pub(super) loaded_upto: u64,
    /// The highest seq only on disk, while there is one.
    pub(super) backlog_upto: Option<u64>,
}

/// Locks a mutex, recovering from a panicked holder (the data stays consistent enough to list
/// and deliver; a poisoned engine must not stop delivering).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One delivery of `webhook` left memory (delivered, dead-lettered, or a duplicate).
pub(super) fn forget_resident(st: &mut State, webhook: &str) {
    if let Some(w) = st.windows.get_mut(webhook) {
        w.resident = w.resident.saturating_sub(1);
    }
    st.resident = st.resident.saturating_sub(1);
}

impl DeliveryEngine {
    /// The live feed of detected events and delivery outcomes (`GET /events`): the
    /// dispatcher publishes events to it, every outcome the engine records goes there too.
    pub fn live(&self) -> &LiveFeed {
        &self.shared.live
    }

    /// Runs `f` over the spool while the engine holds it (until stopped).
    pub(super) fn with_spool<T>(
        &self,
        f: impl FnOnce(&Spool) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let spool = self
            .shared
            .spool
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match spool {
            Some(s) => f(&s),
            None => Err(EngineError::Closed),
        }
    }
}
