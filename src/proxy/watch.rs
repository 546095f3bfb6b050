//! The connection watch: one coarse clock per client connection that ends a connection whose
//! request head takes longer than `client.header_timeout`, and one left idle between requests
//! longer than `client.idle_timeout`.
//!
//! hyper's own head timeout arms a fresh timer for every request (an allocation, a clock read
//! and a timer-wheel insert and removal each time) and cannot tell an idle keep-alive
//! connection from a slow head. Here the connection's reads and its requests only bump a few
//! counters; a per-connection tick (a quarter of the shorter timeout, at most a second) reads
//! them and judges. So a timeout fires between its value and a quarter more, and a busy
//! connection pays no timer at all per request. Never: look at a byte, or close a connection
//! with a request in flight (the body timeouts and `timeouts.upstream` cover those).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::body::ClientBody;
use crate::upstream::BoxError;

/// Shortest and longest tick of a connection's clock.
const MIN_TICK: Duration = Duration::from_millis(10);
const MAX_TICK: Duration = Duration::from_secs(1);

/// What a connection's reads, its requests and its clock share. Written by the connection's
/// own task and its requests; only the clock reads it.
#[derive(Debug, Default)]
pub struct Activity {
    /// Ticks of the connection's clock so far: the time stamps below are in ticks.
    ticks: AtomicU64,
    /// Bytes have arrived for a request head that has not reached the service yet.
    head_pending: AtomicBool,
    /// The tick at which the pending head's first bytes arrived.
    head_started: AtomicU64,
    /// Requests whose head arrived and whose response body has not been dropped yet.
    in_flight: AtomicUsize,
    /// The tick of the last read or finished response: when the connection last did anything.
    last_active: AtomicU64,
}

impl Activity {
    /// Bytes arrived: the start of a head when nothing is in flight and none is pending.
    fn read(&self) {
        let now = self.ticks.load(Ordering::Relaxed);
        self.last_active.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 && !self.head_pending.load(Ordering::Relaxed)
        {
            self.head_started.store(now, Ordering::Relaxed);
            self.head_pending.store(true, Ordering::Relaxed);
        }
    }

    /// A request head reached the service; the returned guard ends the request when its
    /// response body is dropped (sent, or abandoned).
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_pending.store(false, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// One request between its head and the end of its response.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .last_active
            .store(activity.ticks.load(Ordering::Relaxed), Ordering::Relaxed);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the clock decided at a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Fine,
    /// A head took longer than `client.header_timeout`.
    HeadTimeout,
    /// No request and no byte for `client.idle_timeout`.
    Idle,
}

/// A connection's clock: how long a tick is and how many ticks each timeout allows.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    tick: Duration,
    head_ticks: u64,
    idle_ticks: u64,
}

impl Clock {
    /// The clock for these timeouts: a tick of a quarter of the shorter one, within
    /// [10 ms, 1 s].
    pub fn new(header_timeout: Duration, idle_timeout: Duration) -> Self {
        let tick = (header_timeout.min(idle_timeout) / 4).clamp(MIN_TICK, MAX_TICK);
        let ticks = |d: Duration| {
            let n = d.as_nanos().div_ceil(tick.as_nanos().max(1));
            u64::try_from(n).unwrap_or(u64::MAX).max(1)
        };
        Clock {
            tick,
            head_ticks: ticks(header_timeout),
            idle_ticks: ticks(idle_timeout),
        }
    }

    /// How often the connection's clock ticks.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// Advances `activity`'s clock by one tick and judges the connection.
    pub fn judge(&self, activity: &Activity) -> Verdict {
        let now = activity.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        if activity.in_flight.load(Ordering::Acquire) > 0 {
            return Verdict::Fine;
        }
        if activity.head_pending.load(Ordering::Relaxed) {
            let started = activity.head_started.load(Ordering::Relaxed);
            if now.saturating_sub(started) >= self.head_ticks {
                return Verdict::HeadTimeout;
            }
            return Verdict::Fine;
        }
        let last = activity.last_active.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= self.idle_ticks {
            Verdict::Idle
        } else {
            Verdict::Fine
        }
    }
}

/// A client connection's socket, counting its reads into the connection's [`Activity`].
pub struct WatchedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> WatchedIo<T> {
    /// Wraps `inner`, reporting to `activity`.
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        WatchedIo { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A response body with its request's [`InFlight`]: the request ends when hyper drops it.
pub struct WatchedBody {
    body: ClientBody,
    _in_flight: Option<InFlight>,
}

impl WatchedBody {
    /// `body`, ending `in_flight` when dropped.
    pub fn new(body: ClientBody, in_flight: Option<InFlight>) -> Self {
        WatchedBody {
            body,
            _in_flight: in_flight,
        }
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> (Clock, Arc<Activity>) {
        // 1 s head, 2 s idle: a 250 ms tick, 4 and 8 ticks.
        let clock = Clock::new(Duration::from_secs(1), Duration::from_secs(2));
        assert_eq!(clock.tick(), Duration::from_millis(250));
        (clock, Arc::new(Activity::default()))
    }

    #[test]
    fn an_idle_connection_is_closed_after_the_idle_timeout() {
        let (clock, activity) = clock();
        let verdicts: Vec<Verdict> = (0..8).map(|_| clock.judge(&activity)).collect();
        assert_eq!(verdicts[..7], [Verdict::Fine; 7]);
        assert_eq!(verdicts[7], Verdict::Idle);
    }

    #[test]
    fn a_slow_head_is_cut_at_the_header_timeout_however_it_trickles() {
        let (clock, activity) = clock();
        clock.judge(&activity);
        for tick in 0..4 {
            activity.read();
            let verdict = clock.judge(&activity);
            let expected = if tick == 3 {
                Verdict::HeadTimeout
            } else {
                Verdict::Fine
            };
            assert_eq!(verdict, expected, "tick {tick}");
        }
    }

    #[test]
    fn a_request_in_flight_is_never_judged_and_its_end_restarts_idle() {
        let (clock, activity) = clock();
        activity.read();
        let request = activity.request();
        for _ in 0..20 {
            assert_eq!(clock.judge(&activity), Verdict::Fine);
        }
        drop(request);
        let verdicts: Vec<Verdict> = (0..8).map(|_| clock.judge(&activity)).collect();
        assert_eq!(
            verdicts[..7],
            [Verdict::Fine; 7],
            "idle counts from the response's end"
        );
        assert_eq!(verdicts[7], Verdict::Idle);
    }

    #[test]
    fn a_busy_keep_alive_connection_is_never_closed() {
        let (clock, activity) = clock();
        for _ in 0..50 {
            activity.read();
            drop(activity.request());
            assert_eq!(clock.judge(&activity), Verdict::Fine);
        }
    }

    #[test]
    fn ticks_stay_within_bounds() {
        let fast = Clock::new(Duration::from_millis(8), Duration::from_secs(60));
        assert_eq!(fast.tick(), MIN_TICK);
        let slow = Clock::new(Duration::from_secs(30), Duration::from_secs(75));
        assert_eq!(slow.tick(), MAX_TICK);
        assert_eq!((slow.head_ticks, slow.idle_ticks), (30, 75));
    }
}
