//! Each thread's idle upstream connections, for any kind of connection.
//!
//! One proxy worker is one current-thread runtime, so its pools need no lock and no hashing:
//! thread-local stacks of ready connections to the one upstream the config names, one per
//! kind of connection (each kind keeps its own `thread_local!` beside its type). A
//! connection is returned by its response body the moment the last byte has been read (no
//! task is spawned per request to wait for that), and taken most-recently-used first so a
//! quiet period lets the oldest ones age out. This module knows no connection type: it must
//! never open, read or write one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Idle pooled connections are not reused after this long: kept below the keep-alive timeout
/// of common IAM servers (Node's is 5 s) so we never send on a connection the server is
/// closing.
pub(super) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Idle connections kept per thread and kind; more than the busiest burst of concurrent
/// requests a sidecar sees, and a bound on file descriptors if the upstream never closes them.
const MAX_IDLE_PER_THREAD: usize = 1024;

/// What a pool needs to know about an idle connection.
pub(super) trait Reusable {
    /// Closed (or otherwise unusable): drop it.
    fn is_dead(&mut self) -> bool;
    /// Still finishing its last exchange: keep it, but do not use it yet.
    fn is_busy(&self) -> bool;
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

/// The idle connections of one connector (identified by its id): a reload that changes where
/// or how we connect starts a new pool, and the old connections close once their requests
/// finish.
pub(super) struct LocalPool<C> {
    connector: u64,
    idle: VecDeque<Idle<C>>,
}

impl<C: Reusable> LocalPool<C> {
    /// An empty pool, for a `thread_local!`.
    pub(super) const fn new() -> Self {
        LocalPool {
            connector: 0,
            idle: VecDeque::new(),
        }
    }

    /// A usable idle connection of `connector`, most recently used first; stale and dead
    /// ones are dropped on the way.
    pub(super) fn checkout(&mut self, connector: u64) -> Option<C> {
        if self.connector != connector {
            self.connector = connector;
            self.idle.clear();
            return None;
        }
        expire(&mut self.idle, Instant::now());
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(mut idle) = self.idle.pop_back() {
            if idle.conn.is_dead() {
                continue;
            }
            if idle.conn.is_busy() {
                busy.push(idle);
                continue;
            }
            found = Some(idle.conn);
            break;
        }
        self.idle.extend(busy.into_iter().rev());
        found
    }

    /// Keeps a connection whose exchange is complete.
    pub(super) fn release(&mut self, connector: u64, conn: C) {
        if self.connector != connector {
            // The config moved on to another upstream or TLS setting: let it close.
            return;
        }
        let now = Instant::now();
        expire(&mut self.idle, now);
        if self.idle.len() < MAX_IDLE_PER_THREAD {
            self.idle.push_back(Idle { conn, since: now });
        }
    }
}

/// Drops connections idle for longer than [`POOL_IDLE_TIMEOUT`] (the oldest are in front).
fn expire<C>(idle: &mut VecDeque<Idle<C>>, now: Instant) {
    while idle
        .front()
        .is_some_and(|i| now.saturating_duration_since(i.since) > POOL_IDLE_TIMEOUT)
    {
        idle.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection whose state the test sets.
    #[derive(Debug, PartialEq)]
    struct Fake {
        id: u32,
        dead: bool,
        busy: bool,
    }

    impl Reusable for Fake {
        fn is_dead(&mut self) -> bool {
            self.dead
        }

        fn is_busy(&self) -> bool {
            self.busy
        }
    }

    fn fake(id: u32) -> Fake {
        Fake {
            id,
            dead: false,
            busy: false,
        }
    }

    fn ids(pool: &LocalPool<Fake>) -> Vec<u32> {
        pool.idle.iter().map(|i| i.conn.id).collect()
    }

    #[test]
    fn most_recently_released_goes_out_first() {
        let mut pool = LocalPool::new();
        assert_eq!(pool.checkout(7), None, "a new connector starts empty");
        for id in 1..=3 {
            pool.release(7, fake(id));
        }
        assert_eq!(pool.checkout(7).map(|c| c.id), Some(3));
        assert_eq!(pool.checkout(7).map(|c| c.id), Some(2));
        assert_eq!(ids(&pool), vec![1]);
    }

    #[test]
    fn another_connector_starts_a_new_pool_and_old_returns_are_let_go() {
        let mut pool = LocalPool::new();
        pool.checkout(1);
        pool.release(1, fake(1));
        assert_eq!(pool.checkout(2), None, "a reload to another upstream");
        assert!(
            ids(&pool).is_empty(),
            "the old upstream's idle connections are closed"
        );
        pool.release(1, fake(9));
        assert!(
            ids(&pool).is_empty(),
            "a late return from the old upstream is dropped"
        );
        pool.release(2, fake(2));
        assert_eq!(pool.checkout(2).map(|c| c.id), Some(2));
    }

    #[test]
    fn dead_are_dropped_and_busy_kept_in_order() {
        let mut pool = LocalPool::new();
        pool.checkout(1);
        pool.release(1, fake(1));
        pool.release(
            1,
            Fake {
                busy: true,
                ..fake(2)
            },
        );
        pool.release(
            1,
            Fake {
                busy: true,
                ..fake(3)
            },
        );
        pool.release(
            1,
            Fake {
                dead: true,
                ..fake(4)
            },
        );
        assert_eq!(pool.checkout(1).map(|c| c.id), Some(1));
        assert_eq!(ids(&pool), vec![2, 3], "busy ones wait, in their order");
        assert_eq!(pool.checkout(1), None);
        assert_eq!(ids(&pool), vec![2, 3]);
    }

    #[test]
    fn idle_too_long_expires_and_the_pool_is_bounded() {
        let mut pool = LocalPool::new();
        pool.checkout(1);
        let long_ago = Instant::now() - POOL_IDLE_TIMEOUT - Duration::from_millis(1);
        pool.idle.push_back(Idle {
            conn: fake(1),
            since: long_ago,
        });
        pool.release(1, fake(2));
        assert_eq!(ids(&pool), vec![2], "expired on the next release");
        pool.idle.push_front(Idle {
            conn: fake(3),
            since: long_ago,
        });
        assert_eq!(pool.checkout(1).map(|c| c.id), Some(2));
        assert!(ids(&pool).is_empty(), "expired on checkout");

        for id in 0..MAX_IDLE_PER_THREAD as u32 + 5 {
            pool.release(1, fake(id));
        }
        assert_eq!(pool.idle.len(), MAX_IDLE_PER_THREAD);
    }
}
