//! The tap: forward a body frame by frame while keeping a bounded copy for extraction.
//!
//! Used only on matched routes. A tapped body yields exactly the frames of the body it wraps,
//! in order and unchanged (data and trailers), so the peer cannot tell it is there. The copy is
//! capped at `capture_limit`; past that, bytes still flow but are not kept. When the response
//! body is finished with (fully sent, or abandoned by either side) the tap hands the captured
//! [`Exchange`] to the extractor with a non-blocking `try_send`: the hand-off never waits for
//! detection or delivery work. Only strict mode then holds the body's last frame (or its end)
//! until the event is durable, and at most [`STRICT_MAX_WAIT`]. When the event is *not*
//! confirmed durable (a refused delivery, a failed commit, an exchange the hand-off queue
//! dropped, the wait limit), the held end is never released: the body ends in an error, so the
//! client sees a broken response (HTTP/1: the connection closes before the body is complete;
//! HTTP/2: the stream is reset), never a completed one. Counted in
//! `userhook_strict_unconfirmed_total{reason}`. Never: change a frame, or hand an exchange off
//! twice.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

use crate::capture::{Capture, RequestCaptureSlot};
use crate::events::handoff::HandoffSender;
use crate::exchange::{CapturedBody, Durability, Exchange, Unconfirmed};
use crate::snapshot::Snapshot;
use crate::upstream::{BoxError, UpstreamResponseBody};

/// Longest a strict-mode response waits for its event to become durable. Past it the
/// response is failed (and counted): a stuck spool must not hang every client, nor may it be
/// taken for a commit.
pub const STRICT_MAX_WAIT: Duration = Duration::from_secs(5);

/// Strict-mode responses failed because their event was not confirmed durable.
static STRICT_UNCONFIRMED: AtomicU64 = AtomicU64::new(0);

/// When a strict-mode failure was last logged (ms since the first), to pace the WARN line.
static LAST_LOG_MS: AtomicU64 = AtomicU64::new(0);

/// At most one "strict: not durable" line per this interval (the count says how many).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// How many strict-mode responses were failed since start because their event was not
/// confirmed durable (any reason; `/metrics` has them by reason).
pub fn strict_unconfirmed() -> u64 {
    STRICT_UNCONFIRMED.load(Ordering::Relaxed)
}

/// The body error a strict response ends with when its event is not durable: hyper closes the
/// connection (HTTP/1) or resets the stream (HTTP/2), so the client cannot take the response
/// for a completed one.
#[derive(Debug, thiserror::Error)]
#[error("strict mode: the event of this response is not durable ({}); response cut off", .0.as_str())]
pub struct NotDurable(pub Unconfirmed);

/// Counts and logs (at most once per [`LOG_EVERY`]) a strict response that is failed.
fn count_unconfirmed(reason: Unconfirmed) {
    crate::metrics::strict_unconfirmed(reason);
    let n = STRICT_UNCONFIRMED.fetch_add(1, Ordering::Relaxed) + 1;
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let now = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
        + 1;
    let last = LAST_LOG_MS.load(Ordering::Relaxed);
    let due = last == 0 || now.saturating_sub(last) >= LOG_EVERY.as_millis() as u64;
    if due
        && LAST_LOG_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            reason = reason.as_str(),
            strict_unconfirmed_total = n,
            "strict mode: an event was not confirmed durable; its response was failed instead of released (at most one such line per 10 s)"
        );
    }
}

/// What the response tap needs to build the [`Exchange`] when it is done.
pub struct PendingExchange {
    /// The exchange with everything known at response-header time; bodies filled at the end.
    pub exchange: Exchange,
    /// The request tap's copy, if the request had a body.
    pub request_slot: Option<Arc<RequestCaptureSlot>>,
    /// Where finished exchanges go.
    pub sink: HandoffSender,
    /// The config that served the request, which the exchange is judged by.
    pub snapshot: Arc<Snapshot>,
}

impl PendingExchange {
    /// Completes the exchange with the response body and hands it to the extractor without
    /// waiting. With `durable`, the extractor answers it once the event is on disk (a full
    /// queue drops the exchange, and with it the sender: the wait then fails).
    pub fn hand_off(
        mut self,
        response_body: CapturedBody,
        durable: Option<oneshot::Sender<Durability>>,
    ) {
        self.exchange.response_body = response_body;
        if let Some(slot) = &self.request_slot {
            // The request body may still be in flight if the IAM answered before reading it
            // all; then what we have is a prefix.
            self.exchange.request_body = slot.take().unwrap_or(CapturedBody {
                bytes: Bytes::new(),
                truncated: true,
            });
        }
        self.exchange.durable = durable;
        self.sink.send(self.snapshot, self.exchange);
    }

    /// Hands off and returns what resolves when the event is durable (strict mode).
    pub fn hand_off_durable(self, response_body: CapturedBody) -> DurableWait {
        let (tx, rx) = oneshot::channel();
        self.hand_off(response_body, Some(tx));
        DurableWait {
            ack: rx,
            deadline: Box::pin(tokio::time::sleep(STRICT_MAX_WAIT)),
        }
    }
}

/// Resolves `Ok` when the extractor says the event is durable (or there was no event), and
/// `Err` with the reason when it says it is not, when the exchange was dropped unexamined (the
/// sender went away), or at [`STRICT_MAX_WAIT`]. Every `Err` is counted.
pub struct DurableWait {
    ack: oneshot::Receiver<Durability>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Future for DurableWait {
    type Output = Result<(), Unconfirmed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Unconfirmed>> {
        if let Poll::Ready(answer) = Pin::new(&mut self.ack).poll(cx) {
            let verdict = match answer {
                Ok(Durability::Committed) => return Poll::Ready(Ok(())),
                Ok(Durability::Unconfirmed(reason)) => reason,
                Err(_) => Unconfirmed::NotExamined,
            };
            count_unconfirmed(verdict);
            return Poll::Ready(Err(verdict));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            count_unconfirmed(Unconfirmed::Timeout);
            return Poll::Ready(Err(Unconfirmed::Timeout));
        }
        Poll::Pending
    }
}

/// A response body on its way to the client, copied as it goes.
///
/// Fast mode hands the exchange off when the body is dropped. Strict mode holds the last
/// frame (or the end of the stream) until the event is durable, so a client never sees a
/// completed response for a change that could still go un-notified; when it is not durable
/// the body ends in a [`NotDurable`] error instead.
pub struct ResponseTap<B: Body = UpstreamResponseBody> {
    inner: B,
    capture: Capture,
    pending: Option<PendingExchange>,
    strict: bool,
    /// Strict mode, end seen: the frame to release (None: the end itself) and the wait.
    held: Option<(Option<Frame<Bytes>>, DurableWait)>,
    /// Strict mode, not durable: the body ended in an error; nothing more is yielded.
    failed: bool,
}

impl<B> ResponseTap<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// Wraps `inner`; `pending` is handed off at the end (strict) or on drop (fast).
    pub fn new(inner: B, limit: usize, pending: PendingExchange, strict: bool) -> Self {
        let capture = Capture::new(limit, &inner.size_hint());
        ResponseTap {
            inner,
            capture,
            pending: Some(pending),
            strict,
            held: None,
            failed: false,
        }
    }

    /// Strict mode reached the end: hand off and start holding `last`.
    fn hold(
        &mut self,
        last: Option<Frame<Bytes>>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.capture.mark_ended();
        if let Some(pending) = self.pending.take() {
            let wait = pending.hand_off_durable(self.capture.finish());
            self.held = Some((last, wait));
            self.poll_held(cx)
        } else {
            Poll::Ready(last.map(Ok))
        }
    }

    fn poll_held(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some((_, wait)) = &mut self.held else {
            return Poll::Ready(None);
        };
        match Pin::new(wait).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => {
                let last = self.held.take().and_then(|(frame, _)| frame);
                Poll::Ready(last.map(Ok))
            }
            Poll::Ready(Err(reason)) => {
                // The held end is never released: the body ends in an error.
                self.held = None;
                self.failed = true;
                Poll::Ready(Some(Err(Box::new(NotDurable(reason)))))
            }
        }
    }
}

impl<B> Body for ResponseTap<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.held.is_some() {
            return this.poll_held(cx);
        }
        if this.failed {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.capture.keep(data);
                }
                if this.strict && this.pending.is_some() && this.inner.is_end_stream() {
                    return this.hold(Some(frame), cx);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.capture.mark_ended();
                if this.strict && this.pending.is_some() {
                    return this.hold(None, cx);
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        // In strict mode the end is ours to announce, after the event is durable.
        if self.held.is_some() || (self.strict && self.pending.is_some()) {
            return false;
        }
        if self.failed {
            return true;
        }
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for ResponseTap<B> {
    fn drop(&mut self) {
        // Fast mode, or the client went away before the end: hand off what we have.
        if let Some(pending) = self.pending.take() {
            if self.inner.is_end_stream() {
                self.capture.mark_ended();
            }
            pending.hand_off(self.capture.finish(), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::convert::Infallible;

    /// A body with a known end, like one with `Content-Length`: `is_end_stream` turns true
    /// as soon as the last frame has been taken.
    struct Frames(VecDeque<Frame<Bytes>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }

        fn is_end_stream(&self) -> bool {
            self.0.is_empty()
        }
    }

    fn frames(parts: &[&'static str]) -> Frames {
        Frames(
            parts
                .iter()
                .map(|p| Frame::data(Bytes::from_static(p.as_bytes())))
                .collect(),
        )
    }

    fn pending(sink: HandoffSender) -> PendingExchange {
        static SNAPSHOT: std::sync::OnceLock<Arc<Snapshot>> = std::sync::OnceLock::new();
        let snapshot = SNAPSHOT
            .get_or_init(|| {
                Arc::new(
                    Snapshot::from_text("upstream: http://127.0.0.1:1\n", None).expect("config"),
                )
            })
            .clone();
        PendingExchange {
            exchange: Exchange {
                route: Some(crate::detect::RouteMatch {
                    entry: 0,
                    params: Vec::new(),
                }),
                method: http::Method::POST,
                uri: http::Uri::from_static("/users"),
                request_headers: http::HeaderMap::new(),
                request_body: CapturedBody::default(),
                status: http::StatusCode::CREATED,
                response_headers: http::HeaderMap::new(),
                response_body: CapturedBody::default(),
                remote_ip: None,
                request_id: http::HeaderValue::from_static(""),
                durable: None,
            },
            request_slot: None,
            sink,
            snapshot,
        }
    }

    fn poll_result<B>(tap: &mut ResponseTap<B>) -> Poll<Option<Result<Bytes, String>>>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(tap).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(Ok(f.into_data().unwrap_or_default()))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.to_string()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_once<B>(tap: &mut ResponseTap<B>) -> Poll<Option<Bytes>>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        match poll_result(tap) {
            Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(b)),
            Poll::Ready(Some(Err(e))) => panic!("body error: {e}"),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    #[tokio::test]
    async fn strict_holds_the_last_frame_until_durable() {
        let (tx, mut rx) = crate::events::handoff::channel();
        let mut tap = ResponseTap::new(frames(&["ab", "cd"]), 1024, pending(tx), true);
        assert_eq!(
            poll_once(&mut tap),
            Poll::Ready(Some(Bytes::from_static(b"ab")))
        );
        assert!(!tap.is_end_stream());
        // The last frame is read from upstream but held back.
        assert_eq!(poll_once(&mut tap), Poll::Pending);
        assert_eq!(poll_once(&mut tap), Poll::Pending);
        assert!(!tap.is_end_stream());
        let mut exchange = rx
            .try_recv()
            .map(|h| h.exchange)
            .expect("handed off at the end");
        assert_eq!(&exchange.response_body.bytes[..], b"abcd");
        assert!(!exchange.response_body.truncated);
        exchange
            .durable
            .take()
            .expect("strict asks for an ack")
            .send(Durability::Committed)
            .expect("ack");
        assert_eq!(
            poll_once(&mut tap),
            Poll::Ready(Some(Bytes::from_static(b"cd")))
        );
        assert!(tap.is_end_stream());
        assert_eq!(poll_once(&mut tap), Poll::Ready(None));
        drop(tap);
        assert!(
            rx.try_recv().map(|h| h.exchange).is_err(),
            "handed off exactly once"
        );
    }

    #[tokio::test]
    async fn strict_releases_when_the_extractor_says_there_was_no_event() {
        let (tx, mut rx) = crate::events::handoff::channel();
        let mut tap = ResponseTap::new(frames(&["only"]), 1024, pending(tx), true);
        assert_eq!(poll_once(&mut tap), Poll::Pending);
        // No event came of it: the extractor answers Committed (nothing to make durable).
        let mut exchange = rx.try_recv().map(|h| h.exchange).expect("handed off");
        let ack = exchange.durable.take().expect("ack");
        ack.send(Durability::Committed).expect("send");
        assert_eq!(
            poll_once(&mut tap),
            Poll::Ready(Some(Bytes::from_static(b"only")))
        );
        assert!(tap.is_end_stream());
        assert_eq!(poll_once(&mut tap), Poll::Ready(None));
    }

    /// The held end is never released when the event is not durable: the body ends in an
    /// error (the client's connection is cut), and the reason is counted.
    #[tokio::test]
    async fn strict_never_releases_an_unconfirmed_response() {
        let cases: [(&str, Option<Durability>); 3] = [
            (
                "refused",
                Some(Durability::Unconfirmed(Unconfirmed::Refused)),
            ),
            (
                "commit_failed",
                Some(Durability::Unconfirmed(Unconfirmed::CommitFailed)),
            ),
            // The exchange was dropped unexamined (a full hand-off queue drops it, and the
            // sender with it).
            ("not_examined", None),
        ];
        for (word, answer) in cases {
            let (tx, mut rx) = crate::events::handoff::channel();
            let mut tap = ResponseTap::new(frames(&["ab", "cd"]), 1024, pending(tx), true);
            assert_eq!(
                poll_once(&mut tap),
                Poll::Ready(Some(Bytes::from_static(b"ab")))
            );
            assert_eq!(poll_once(&mut tap), Poll::Pending);
            let before = strict_unconfirmed();
            let mut exchange = rx.try_recv().map(|h| h.exchange).expect("handed off");
            let ack = exchange.durable.take().expect("ack");
            match answer {
                Some(a) => ack.send(a).expect("send"),
                None => drop(ack),
            }
            assert_eq!(
                poll_result(&mut tap),
                Poll::Ready(Some(Err(format!(
                    "strict mode: the event of this response is not durable ({word}); response cut off"
                )))),
                "{word}"
            );
            assert!(strict_unconfirmed() > before, "{word} counted");
            // Nothing after the error, and the held frame never comes.
            assert_eq!(poll_once(&mut tap), Poll::Ready(None));
            assert!(tap.is_end_stream());
        }
    }

    #[tokio::test]
    async fn a_full_handoff_queue_fails_a_strict_response() {
        let (tx, _rx) = crate::events::handoff::channel();
        // Fill the queue.
        for _ in 0..crate::events::handoff::QUEUE {
            pending(tx.clone()).hand_off(CapturedBody::default(), None);
        }
        let mut tap = ResponseTap::new(frames(&["x"]), 1024, pending(tx), true);
        assert_eq!(
            poll_result(&mut tap),
            Poll::Ready(Some(Err(
                "strict mode: the event of this response is not durable (not_examined); response cut off".into()
            )))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn strict_gives_up_waiting_after_the_limit_and_fails_the_response() {
        let (tx, mut rx) = crate::events::handoff::channel();
        let mut tap = ResponseTap::new(frames(&["x"]), 1024, pending(tx), true);
        assert_eq!(poll_once(&mut tap), Poll::Pending);
        let _kept = rx.try_recv().map(|h| h.exchange).expect("handed off"); // never acknowledged
        let before = strict_unconfirmed();
        tokio::time::advance(STRICT_MAX_WAIT + Duration::from_millis(1)).await;
        assert_eq!(
            poll_result(&mut tap),
            Poll::Ready(Some(Err(
                "strict mode: the event of this response is not durable (timeout); response cut off".into()
            )))
        );
        assert!(strict_unconfirmed() > before);
    }

    #[tokio::test]
    async fn fast_mode_streams_and_hands_off_on_drop() {
        let (tx, mut rx) = crate::events::handoff::channel();
        let mut tap = ResponseTap::new(frames(&["ab", "cd"]), 3, pending(tx), false);
        assert_eq!(
            poll_once(&mut tap),
            Poll::Ready(Some(Bytes::from_static(b"ab")))
        );
        assert_eq!(
            poll_once(&mut tap),
            Poll::Ready(Some(Bytes::from_static(b"cd")))
        );
        assert!(tap.is_end_stream());
        assert!(
            rx.try_recv().map(|h| h.exchange).is_err(),
            "nothing before the body is done with"
        );
        drop(tap);
        let exchange = rx
            .try_recv()
            .map(|h| h.exchange)
            .expect("handed off on drop");
        assert_eq!(&exchange.response_body.bytes[..], b"abc");
        assert!(exchange.response_body.truncated, "over the capture limit");
        assert!(exchange.durable.is_none());
    }
}
