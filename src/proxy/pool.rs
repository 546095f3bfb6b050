//! Each thread's idle upstream connections, and the response body that hands its connection
//! back when it ends.
//!
//! One proxy worker is one current-thread runtime, so its pool needs no lock and no hashing:
//! a thread-local stack of ready HTTP/1.1 senders for the one upstream the config names. A
//! connection is returned by the response body the moment its last byte has been read (no
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

use super::body::UpstreamBody;

/// Idle pooled connections are not reused after this long: kept below the keep-alive timeout
/// of common IAM servers (Node's is 5 s) so we never send on a connection the server is
/// closing.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Idle connections kept per thread; more than the busiest burst of concurrent requests a
/// sidecar sees, and a bound on file descriptors if the upstream never closes them.
const MAX_IDLE_PER_THREAD: usize = 1024;

/// The sending half of one upstream HTTP/1.1 connection.
pub type Sender = SendRequest<UpstreamBody>;

struct Idle {
    sender: Sender,
    since: Instant,
}

/// The pool of one connector (identified by its id): a reload that changes where or how we
/// connect starts a new pool, and the old connections close once their requests finish.
struct Pool {
    connector: u64,
    idle: VecDeque<Idle>,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { connector: 0, idle: VecDeque::new() })
    };
}

/// A ready idle connection of `connector`, most recently used first; stale and closed ones
/// are dropped on the way.
pub fn checkout(connector: u64) -> Option<Sender> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.connector != connector {
            pool.connector = connector;
            pool.idle.clear();
            return None;
        }
        let now = Instant::now();
        expire(&mut pool.idle, now);
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(idle) = pool.idle.pop_back() {
            if idle.sender.is_closed() {
                continue;
            }
            if idle.sender.is_ready() {
                found = Some(idle.sender);
                break;
            }
            // Still finishing its last exchange: keep it for a later request.
            busy.push(idle);
        }
        pool.idle.extend(busy.into_iter().rev());
        found
    })
}

/// Puts a connection whose response has been read in full back in the pool.
pub fn release(connector: u64, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.connector != connector {
            // The config moved on to another upstream or TLS setting: let it close.
            return;
        }
        let now = Instant::now();
        expire(&mut pool.idle, now);
        if pool.idle.len() < MAX_IDLE_PER_THREAD {
            pool.idle.push_back(Idle { sender, since: now });
        }
    })
}

/// Drops connections idle for longer than [`POOL_IDLE_TIMEOUT`] (the oldest are in front).
fn expire(idle: &mut VecDeque<Idle>, now: Instant) {
    while idle
        .front()
        .is_some_and(|i| now.saturating_duration_since(i.since) > POOL_IDLE_TIMEOUT)
    {
        idle.pop_front();
    }
}

/// The upstream's response body. When its end has been read the connection goes back to
/// this thread's pool; dropped early, the connection is closed by hyper instead (HTTP/1.1
/// cannot skip the rest of a body).
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
            release(connector, sender);
        }
    }
}

impl Body for PooledIncoming {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.give_back(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.give_back(),
            // A broken body means a broken connection: never reuse it.
            Poll::Ready(Some(Err(_))) => this.home = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
