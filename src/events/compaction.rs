//! When the spool file is compacted: the writer notes the payload bytes each commit frees and
//! compacts once the spool has been quiet, or has waited too long under constant traffic, so
//! delivered personal data does not stay readable in free pages; not while the backlog is
//! large, since compaction holds the file alone. The committer runs it between commits.

use std::time::{Duration, Instant};

use super::spool::Spool;

/// Quiet time after writes that freed payload bytes before the file is compacted.
pub const COMPACT_WHEN_IDLE: Duration = Duration::from_secs(1);

/// Longest freed payload bytes may stay in the file's free pages under constant traffic.
pub const COMPACT_AT_LEAST_EVERY: Duration = Duration::from_secs(300);

/// Compaction runs only while the spool stores at most this many payload bytes: it rewrites
/// the live pages and holds the file alone meanwhile, which on a large backlog (a receiver
/// down for long) would hold commits for seconds. Past it, it waits until the backlog drains.
pub const COMPACT_MAX_PAYLOAD: u64 = 8 * 1024 * 1024;

/// When the file was last compacted and what was freed since.
#[derive(Default)]
pub(super) struct Compaction {
    /// Payload bytes freed since the last compaction.
    freed: u64,
    /// When the first of them was freed.
    since: Option<Instant>,
}

impl Compaction {
    /// True when freed bytes wait for a compaction.
    pub(super) fn pending(&self) -> bool {
        self.freed > 0
    }

    /// Notes `bytes` of payload freed by a commit.
    pub(super) fn freed(&mut self, bytes: u64) {
        if bytes > 0 {
            self.freed += bytes;
            self.since.get_or_insert_with(Instant::now);
        }
    }

    /// True when freed bytes have waited [`COMPACT_AT_LEAST_EVERY`] (constant traffic).
    pub(super) fn overdue(&self) -> bool {
        self.since
            .is_some_and(|t| t.elapsed() >= COMPACT_AT_LEAST_EVERY)
    }

    /// Compacts `spool` when bytes were freed and its live payload is at most
    /// [`COMPACT_MAX_PAYLOAD`]; true when a compaction ran.
    pub(super) fn run(&mut self, spool: &Spool, live_payload: u64) -> bool {
        if self.freed == 0 {
            return false;
        }
        if live_payload > COMPACT_MAX_PAYLOAD {
            // Tried again after the next commit that frees bytes, once the backlog is smaller.
            self.since = Some(Instant::now());
            return false;
        }
        let started = Instant::now();
        match spool.compact() {
            Ok(_) => {
                crate::metrics::spool_compacted();
                tracing::debug!(
                    freed_bytes = self.freed,
                    took_ms = started.elapsed().as_millis() as u64,
                    "spool compacted: freed pages dropped from the file"
                );
                *self = Compaction::default();
                true
            }
            Err(e) => {
                // Tried again at the next idle moment; a failing disk shows in the commits.
                tracing::warn!(error = %e, "spool compaction failed; will try again");
                self.since = Some(Instant::now());
                false
            }
        }
    }
}
