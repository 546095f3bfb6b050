//! The engine's bounds: memory windows, the writer's backlog, the commit linger, listings and
//! the scheduler's and the refusal log's pacing. Constants only: no code, nothing to configure.

use std::time::Duration;

/// Deliveries of one webhook held in memory at most (waiting, in flight or being written);
/// the rest of its backlog stays on disk. Bounds memory during a long outage.
pub const WINDOW_PER_WEBHOOK: usize = 4096;

/// Deliveries held in memory over all webhooks at most.
pub const WINDOW_TOTAL: usize = 32_768;

/// Rows read from disk per page-in.
pub(super) const PAGE: usize = 1024;

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
pub(super) const IDLE_TICK: Duration = Duration::from_secs(1);

/// At most one "refused" error line per this interval (the count says how many).
pub(super) const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
