//! The tap: forward a body frame by frame while keeping a bounded copy for extraction.
//!
//! Used only on matched routes. A tapped body yields exactly the frames of the body it wraps,
//! in order and unchanged (data and trailers), so the peer cannot tell it is there. The copy is
//! capped at `capture_limit`; past that, bytes still flow but are not kept. When the response
//! body is finished with (fully sent, or abandoned by either side) the tap hands the captured
//! [`Exchange`] to the extractor with a non-blocking `try_send`: the hand-off never waits for
//! detection or delivery work. Only strict mode then holds the body's last frame (or its end)
//! until the event is durable, and at most [`STRICT_MAX_WAIT`]. Never: change a frame, or
//! hand an exchange off twice.

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
use crate::exchange::{CapturedBody, Exchange};
use crate::snapshot::Snapshot;
use crate::upstream::UpstreamResponseBody;

/// Longest a strict-mode response waits for its event to become durable. Past it the
/// response is released anyway (and counted): a stuck spool must not hang every client.
pub const STRICT_MAX_WAIT: Duration = Duration::from_secs(5);

/// Strict-mode responses released before their event was durable.
static STRICT_TIMEOUTS: AtomicU64 = AtomicU64::new(0);

/// How many strict-mode responses were released on [`STRICT_MAX_WAIT`] since start.
pub fn strict_timeouts() -> u64 {
    STRICT_TIMEOUTS.load(Ordering::Relaxed)
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
    /// waiting. With `durable`, the extractor answers it once the event is on disk.
    pub fn hand_off(mut self, response_body: CapturedBody, durable: Option<oneshot::Sender<()>>) {
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

/// Resolves when the extractor says the event is durable, when it says there is nothing to
/// wait for (the sender was dropped: no event, or a full queue), or at [`STRICT_MAX_WAIT`].
pub struct DurableWait {
    ack: oneshot::Receiver<()>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Future for DurableWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Pin::new(&mut self.ack).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let n = STRICT_TIMEOUTS.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                strict_timeouts_total = n,
                "strict mode: event not durable within {}s; response released",
                STRICT_MAX_WAIT.as_secs()
            );
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// A response body on its way to the client, copied as it goes.
///
/// Fast mode hands the exchange off when the body is dropped. Strict mode holds the last
/// frame (or the end of the stream) until the event is durable, so a client never sees a
/// completed response for a change that could still go un-notified.
pub struct ResponseTap<B: Body = UpstreamResponseBody> {
    inner: B,
    capture: Capture,
    pending: Option<PendingExchange>,
    strict: bool,
    /// Strict mode, end seen: the frame to release (None: the end itself) and the wait.
    held: Option<(Option<Frame<Bytes>>, DurableWait)>,
}

impl<B: Body<Data = Bytes> + Unpin> ResponseTap<B> {
    /// Wraps `inner`; `pending` is handed off at the end (strict) or on drop (fast).
    pub fn new(inner: B, limit: usize, pending: PendingExchange, strict: bool) -> Self {
        let capture = Capture::new(limit, &inner.size_hint());
        ResponseTap {
            inner,
            capture,
            pending: Some(pending),
            strict,
            held: None,
        }
    }

    /// Strict mode reached the end: hand off and start holding `last`.
    fn hold(
        &mut self,
        last: Option<Frame<Bytes>>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        self.capture.mark_ended();
        if let Some(pending) = self.pending.take() {
            let wait = pending.hand_off_durable(self.capture.finish());
            self.held = Some((last, wait));
            self.poll_held(cx)
        } else {
            Poll::Ready(last.map(Ok))
        }
    }

    fn poll_held(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let Some((_, wait)) = &mut self.held else {
            return Poll::Ready(None);
        };
        match Pin::new(wait).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let last = self.held.take().and_then(|(frame, _)| frame);
                Poll::Ready(last.map(Ok))
            }
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for ResponseTap<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if this.held.is_some() {
            return this.poll_held(cx);
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
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        // In strict mode the end is ours to announce, after the event is durable.
        if self.held.is_some() || (self.strict && self.pending.is_some()) {
            return false;
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
        let snapshot = Snapshot::from_text("upstream: http://127.0.0.1:1\n", None).expect("config");
        PendingExchange {
            exchange: Exchange {
                route: crate::detect::RouteMatch {
                    entry: 0,
                    params: Vec::new(),
                },
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
            snapshot: Arc::new(snapshot),
        }
    }

    fn poll_once<B: Body<Data = Bytes> + Unpin>(tap: &mut ResponseTap<B>) -> Poll<Option<Bytes>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(tap).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(f))) => Poll::Ready(Some(f.into_data().unwrap_or_default())),
            Poll::Ready(Some(Err(_))) => panic!("body error"),
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
            .send(())
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
    async fn strict_releases_when_there_is_nothing_to_wait_for() {
        let (tx, mut rx) = crate::events::handoff::channel();
        let mut tap = ResponseTap::new(frames(&["only"]), 1024, pending(tx), true);
        assert_eq!(poll_once(&mut tap), Poll::Pending);
        // No event came of it: the extractor drops the sender.
        drop(rx.try_recv().map(|h| h.exchange).expect("handed off"));
        assert_eq!(
            poll_once(&mut tap),
            Poll::Ready(Some(Bytes::from_static(b"only")))
        );
        assert!(tap.is_end_stream());
        assert_eq!(poll_once(&mut tap), Poll::Ready(None));
    }

    #[tokio::test(start_paused = true)]
    async fn strict_gives_up_waiting_after_the_limit() {
        let (tx, mut rx) = crate::events::handoff::channel();
        let mut tap = ResponseTap::new(frames(&["x"]), 1024, pending(tx), true);
        assert_eq!(poll_once(&mut tap), Poll::Pending);
        let _kept = rx.try_recv().map(|h| h.exchange).expect("handed off"); // never acknowledged
        let before = strict_timeouts();
        tokio::time::advance(STRICT_MAX_WAIT + Duration::from_millis(1)).await;
        assert_eq!(
            poll_once(&mut tap),
            Poll::Ready(Some(Bytes::from_static(b"x")))
        );
        assert_eq!(strict_timeouts(), before + 1);
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
