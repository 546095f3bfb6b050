//! The connection watch: one coarse clock per client connection that ends a connection whose
//! request head takes longer than `client.header_timeout`, and one left idle between requests
//! longer than `client.idle_timeout`.
//!
//! hyper's own head timeout arms a fresh timer for every request (an allocation, a clock read
//! and a timer-wheel insert and removal each time) and cannot tell an idle keep-alive
//! connection from a slow head. Here the connection's reads and its requests only bump a few
//! counters; a per-connection tick (a quarter of the shorter timeout, at most a second) reads
//! them and judges. So a timeout fires between its value and a quarter more, and a busy
//! connection pays no timer at all per request.
//!
//! On an HTTP/2 connection the reads are also split into frames (headers only, nothing is
//! copied or changed) to count the client's SETTINGS and PING frames: h2 answers each one
//! forever, so a client could keep userhook busy with them (nginx closes such a connection
//! after a few thousand). They fill a leaky bucket that drains [`CONTROL_FRAMES_PER_SEC`] a
//! second; past [`CONTROL_FRAMES_BURST`] the connection is closed and counted.
//!
//! The clock also carries shutdown to its connection: it marks the [`Activity`] draining and
//! wakes the connection, which [`Drained`] then closes gracefully. So the connection's own
//! polls read one flag instead of polling a shutdown channel each time. Never: change
//! a byte, or close a connection with a request in flight for being slow (the body timeouts
//! and `timeouts.upstream` cover those).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::body::ClientBody;
use crate::upstream::BoxError;

/// HTTP/2 SETTINGS and PING frames a client may send in a burst, and per second beyond it,
/// before its connection is closed as a flood.
pub const CONTROL_FRAMES_BURST: u64 = 1000;
/// See [`CONTROL_FRAMES_BURST`].
pub const CONTROL_FRAMES_PER_SEC: u64 = 100;

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// HTTP/2 frame types counted as control frames, and the ACK flag that exempts a frame.
const FRAME_SETTINGS: u8 = 0x4;
const FRAME_PING: u8 = 0x6;
const FLAG_ACK: u8 = 0x1;

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
    /// HTTP/2 SETTINGS and PING frames (not ACKs) seen since the last tick.
    control_frames: AtomicU64,
    /// Shutdown began: the connection finishes what is in flight and closes.
    draining: AtomicBool,
    /// The connection's task, woken when draining begins (an idle connection has nothing
    /// else to wake it).
    waker: AtomicWaker,
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

    /// Starts the connection's graceful close: called by its clock when shutdown begins.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.waker.wake();
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
    /// An HTTP/2 client sent SETTINGS and PING frames faster than the bucket drains.
    ControlFlood,
    /// No request and no byte for `client.idle_timeout`.
    Idle,
}

/// A connection's clock: how long a tick is and how many ticks each timeout allows.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    tick: Duration,
    head_ticks: u64,
    idle_ticks: u64,
    /// Control frames the bucket drains per tick.
    drain: u64,
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
        let drain = (u128::from(CONTROL_FRAMES_PER_SEC) * tick.as_nanos()).div_ceil(1_000_000_000);
        Clock {
            tick,
            head_ticks: ticks(header_timeout),
            idle_ticks: ticks(idle_timeout),
            drain: u64::try_from(drain).unwrap_or(u64::MAX).max(1),
        }
    }

    /// How often the connection's clock ticks.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// Advances `activity`'s clock by one tick and judges the connection; `bucket` is the
    /// connection's control-frame level, kept by its caller between ticks.
    pub fn judge(&self, activity: &Activity, bucket: &mut u64) -> Verdict {
        let now = activity.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let frames = activity.control_frames.swap(0, Ordering::Relaxed);
        *bucket = bucket.saturating_add(frames).saturating_sub(self.drain);
        if *bucket > CONTROL_FRAMES_BURST {
            return Verdict::ControlFlood;
        }
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

/// Where a connection's byte stream is, for counting HTTP/2 control frames.
#[derive(Debug, Clone, Copy)]
enum Frames {
    /// Before the first bytes: `n` bytes of the HTTP/2 preface matched so far.
    Sniffing(u8),
    /// HTTP/1 (or anything not HTTP/2): nothing more to look at.
    NotH2,
    /// In a frame header: `have` of its 9 bytes seen (type and flags kept).
    Header { have: u8, len: u32, kind: u8 },
    /// In a frame's payload: this many bytes still to skip.
    Payload(u32),
}

impl Frames {
    /// Walks `bytes` (the next bytes the client sent), returning the control frames that
    /// started in them.
    fn scan(&mut self, mut bytes: &[u8]) -> u64 {
        let mut control = 0;
        while !bytes.is_empty() {
            match *self {
                Frames::NotH2 => return control,
                Frames::Sniffing(n) => {
                    let want = &H2_PREFACE[usize::from(n)..];
                    let take = want.len().min(bytes.len());
                    if bytes[..take] != want[..take] {
                        *self = Frames::NotH2;
                        return control;
                    }
                    bytes = &bytes[take..];
                    let n = n + u8::try_from(take).unwrap_or(0);
                    *self = if usize::from(n) == H2_PREFACE.len() {
                        Frames::Header {
                            have: 0,
                            len: 0,
                            kind: 0,
                        }
                    } else {
                        Frames::Sniffing(n)
                    };
                }
                Frames::Header {
                    mut have,
                    mut len,
                    mut kind,
                } => {
                    while have < 9 {
                        let Some((&b, rest)) = bytes.split_first() else {
                            *self = Frames::Header { have, len, kind };
                            return control;
                        };
                        bytes = rest;
                        match have {
                            0..=2 => len = (len << 8) | u32::from(b),
                            3 => kind = b,
                            4 if (kind == FRAME_SETTINGS || kind == FRAME_PING)
                                && b & FLAG_ACK == 0 =>
                            {
                                control += 1;
                            }
                            _ => {}
                        }
                        have += 1;
                    }
                    *self = if len == 0 {
                        Frames::Header {
                            have: 0,
                            len: 0,
                            kind: 0,
                        }
                    } else {
                        Frames::Payload(len)
                    };
                }
                Frames::Payload(left) => {
                    let skip = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    bytes = &bytes[skip..];
                    let left = left - u32::try_from(skip).unwrap_or(left);
                    *self = if left == 0 {
                        Frames::Header {
                            have: 0,
                            len: 0,
                            kind: 0,
                        }
                    } else {
                        Frames::Payload(left)
                    };
                }
            }
        }
        control
    }
}

/// A client connection's socket, counting its reads (and, on HTTP/2, its control frames)
/// into the connection's [`Activity`], and replaying the bytes read before hyper took the
/// connection (the first head, `first_head`) ahead of the socket's.
pub struct WatchedIo<T> {
    inner: T,
    activity: Arc<Activity>,
    frames: Frames,
    /// Bytes already read (and counted) to give back before reading the socket again.
    prefix: Vec<u8>,
    /// How much of `prefix` has been given back.
    at: usize,
}

impl<T> WatchedIo<T> {
    /// Wraps `inner`, reporting to `activity`.
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        WatchedIo {
            inner,
            activity,
            frames: Frames::Sniffing(0),
            prefix: Vec::new(),
            at: 0,
        }
    }

    /// The next reads return `bytes` (read from this socket already) before the socket's.
    pub fn replay(&mut self, bytes: Vec<u8>) {
        self.prefix = bytes;
        self.at = 0;
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.prefix.len() {
            let rest = &this.prefix[this.at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.at += n;
            if this.at == this.prefix.len() {
                // Replayed: the buffer is not kept for the connection's life.
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
            if !matches!(this.frames, Frames::NotH2) {
                let control = this.frames.scan(&buf.filled()[before..]);
                if control > 0 {
                    this.activity
                        .control_frames
                        .fetch_add(control, Ordering::Relaxed);
                }
            }
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
    _in_flight: InFlight,
}

impl WatchedBody {
    /// `body`, ending `in_flight` when dropped.
    pub fn new(body: ClientBody, in_flight: InFlight) -> Self {
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

/// A connection that closes gracefully once its [`Activity`] drains: in-flight requests
/// finish, an idle keep-alive connection closes at once. hyper-util's graceful watcher polls a
/// channel's `changed()` (a lock) at every poll of the connection; here a poll registers the
/// task's waker and reads one flag, and only the clock, at shutdown, does more.
pub struct Drained<C> {
    conn: C,
    activity: Arc<Activity>,
    /// Starts the connection's own graceful shutdown (hyper's `graceful_shutdown`).
    start: fn(&mut C),
    started: bool,
}

impl<C> Drained<C> {
    /// Watches `conn` for `activity`'s drain; `start` begins its graceful shutdown.
    pub fn new(conn: C, activity: Arc<Activity>, start: fn(&mut C)) -> Self {
        Drained {
            conn,
            activity,
            start,
            started: false,
        }
    }
}

impl<C: Future + Unpin> Future for Drained<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = self.get_mut();
        if !this.started {
            // Registered before the flag is read, so a drain between the two still wakes us.
            this.activity.waker.register(cx.waker());
            if this.activity.draining.load(Ordering::Acquire) {
                this.started = true;
                (this.start)(&mut this.conn);
            }
        }
        Pin::new(&mut this.conn).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_replayed_bytes_come_before_the_socket_and_are_not_counted_again() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(b" world").await.expect("write");
        drop(client);
        let activity = Arc::new(Activity::default());
        let mut io = WatchedIo::new(server, activity.clone());
        io.replay(b"hello".to_vec());
        let mut out = Vec::new();
        io.read_to_end(&mut out).await.expect("read");
        assert_eq!(out, b"hello world");
        assert!(io.prefix.is_empty(), "the replayed buffer is let go");
    }

    fn clock() -> (Clock, Arc<Activity>) {
        // 1 s head, 2 s idle: a 250 ms tick, 4 and 8 ticks.
        let clock = Clock::new(Duration::from_secs(1), Duration::from_secs(2));
        assert_eq!(clock.tick(), Duration::from_millis(250));
        (clock, Arc::new(Activity::default()))
    }

    #[test]
    fn an_idle_connection_is_closed_after_the_idle_timeout() {
        let (clock, activity) = clock();
        let verdicts: Vec<Verdict> = (0..8).map(|_| clock.judge(&activity, &mut 0)).collect();
        assert_eq!(verdicts[..7], [Verdict::Fine; 7]);
        assert_eq!(verdicts[7], Verdict::Idle);
    }

    #[test]
    fn a_slow_head_is_cut_at_the_header_timeout_however_it_trickles() {
        let (clock, activity) = clock();
        clock.judge(&activity, &mut 0);
        for tick in 0..4 {
            activity.read();
            let verdict = clock.judge(&activity, &mut 0);
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
            assert_eq!(clock.judge(&activity, &mut 0), Verdict::Fine);
        }
        drop(request);
        let verdicts: Vec<Verdict> = (0..8).map(|_| clock.judge(&activity, &mut 0)).collect();
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
            assert_eq!(clock.judge(&activity, &mut 0), Verdict::Fine);
        }
    }

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).expect("small");
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[kind, flags, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn http2_control_frames_are_counted_however_the_reads_split_them() {
        let mut stream = H2_PREFACE.to_vec();
        stream.extend(frame(FRAME_SETTINGS, 0, &[0, 3, 0, 0, 0, 100]));
        stream.extend(frame(FRAME_SETTINGS, FLAG_ACK, &[]));
        stream.extend(frame(0x1, 0x4, &[0x82; 20])); // HEADERS: not counted
        for _ in 0..5 {
            stream.extend(frame(FRAME_PING, 0, &[7; 8]));
        }
        stream.extend(frame(FRAME_PING, FLAG_ACK, &[7; 8]));
        for split in [1, 2, 5, 9, 13, 1000] {
            let mut frames = Frames::Sniffing(0);
            let counted: u64 = stream.chunks(split).map(|c| frames.scan(c)).sum();
            assert_eq!(counted, 6, "split {split}");
        }
    }

    #[test]
    fn http1_is_never_parsed_as_frames() {
        let mut frames = Frames::Sniffing(0);
        assert_eq!(frames.scan(b"PRI /x HTTP/1.1\r\n"), 0);
        assert!(matches!(frames, Frames::NotH2));
        let mut frames = Frames::Sniffing(0);
        assert_eq!(frames.scan(b"GET / HTTP/1.1\r\n\r\n"), 0);
        assert!(matches!(frames, Frames::NotH2));
    }

    #[test]
    fn a_control_frame_flood_fills_the_bucket_and_steady_pings_do_not() {
        let (clock, activity) = clock();
        let mut bucket = 0;
        // 25 PINGs a 250 ms tick (100/s) drain as fast as they come.
        for _ in 0..100 {
            activity.read();
            activity.control_frames.fetch_add(25, Ordering::Relaxed);
            let _ = activity.request();
            assert_ne!(clock.judge(&activity, &mut bucket), Verdict::ControlFlood);
        }
        activity
            .control_frames
            .fetch_add(CONTROL_FRAMES_BURST + 26, Ordering::Relaxed);
        assert_eq!(clock.judge(&activity, &mut bucket), Verdict::ControlFlood);
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
