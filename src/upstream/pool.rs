//! Each thread's idle upstream connections.
//!
//! One proxy worker is one current-thread runtime, so its pools need no lock and no hashing:
//! thread-local stacks of ready connections to the one upstream the config names. A
//! connection is returned by its response body the moment the last byte has been read (no
//! task is spawned per request to wait for that), and taken most-recently-used first so a
//! quiet period lets the oldest ones age out.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;

use super::body::{BoxError, UpstreamBody};
use super::direct::DirectConn;

/// Idle pooled connections are not reused after this long: kept below the keep-alive timeout
/// of common IAM servers (Node's is 5 s) so we never send on a connection the server is
/// closing.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Idle connections kept per thread and kind; more than the busiest burst of concurrent
/// requests a sidecar sees, and a bound on file descriptors if the upstream never closes them.
const MAX_IDLE_PER_THREAD: usize = 1024;

/// The sending half of one hyper-driven upstream HTTP/1.1 connection.
pub type Sender = SendRequest<UpstreamBody>;

/// What a pool needs to know about an idle connection.
pub trait Reusable {
    /// Closed (or otherwise unusable): drop it.
    fn is_dead(&mut self) -> bool;
    /// Still finishing its last exchange: keep it, but do not use it yet.
    fn is_busy(&self) -> bool;
}

impl Reusable for Sender {
    fn is_dead(&mut self) -> bool {
        self.is_closed()
    }

    fn is_busy(&self) -> bool {
        !self.is_ready()
    }
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

/// The idle connections of one connector (identified by its id): a reload that changes where
/// or how we connect starts a new pool, and the old connections close once their requests
/// finish.
pub struct LocalPool<C> {
    connector: u64,
    idle: VecDeque<Idle<C>>,
}

impl<C: Reusable> LocalPool<C> {
    const fn new() -> Self {
        LocalPool {
            connector: 0,
            idle: VecDeque::new(),
        }
    }

    /// A usable idle connection of `connector`, most recently used first; stale and dead
    /// ones are dropped on the way.
    fn checkout(&mut self, connector: u64) -> Option<C> {
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
    fn release(&mut self, connector: u64, conn: C) {
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

thread_local! {
    static SENDERS: RefCell<LocalPool<Sender>> = const { RefCell::new(LocalPool::new()) };
    static DIRECT: RefCell<LocalPool<DirectConn>> = const { RefCell::new(LocalPool::new()) };
}

/// A ready hyper connection of `connector` from this thread's pool.
pub fn checkout_sender(connector: u64) -> Option<Sender> {
    SENDERS.with(|p| p.borrow_mut().checkout(connector))
}

/// Returns a hyper connection whose response has been read in full.
pub fn release_sender(connector: u64, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    SENDERS.with(|p| p.borrow_mut().release(connector, sender))
}

/// An idle plain connection of `connector` from this thread's pool.
pub fn checkout_direct(connector: u64) -> Option<DirectConn> {
    DIRECT.with(|p| p.borrow_mut().checkout(connector))
}

/// Returns a plain connection whose exchange is complete.
pub fn release_direct(connector: u64, conn: DirectConn) {
    DIRECT.with(|p| p.borrow_mut().release(connector, conn))
}

/// A response body read by hyper's connection task. When its end has been read the
/// connection goes back to this thread's pool; dropped early, the connection is closed by
/// hyper instead (HTTP/1.1 cannot skip the rest of a body).
pub struct PooledIncoming {
    inner: Incoming,
    home: Option<(u64, Sender)>,
}

impl PooledIncoming {
    /// Wraps a response body read from `sender`'s connection, which belongs to `connector`.
    pub fn new(inner: Incoming, connector: u64, sender: Sender) -> Self {
        let mut body = PooledIncoming {
            inner,
            home: Some((connector, sender)),
        };
        if body.inner.is_end_stream() {
            body.give_back();
        }
        body
    }

    fn give_back(&mut self) {
        if let Some((connector, sender)) = self.home.take() {
            release_sender(connector, sender);
        }
    }
}

impl Body for PooledIncoming {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match polled {
            Poll::Ready(None) => {
                this.give_back();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.give_back();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            // A broken body means a broken connection: never reuse it.
            Poll::Ready(Some(Err(e))) => {
                this.home = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
