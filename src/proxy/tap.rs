//! The tap: forward a body frame by frame while keeping a bounded copy for extraction.
//!
//! Used only on matched routes. A tapped body yields exactly the frames of the body it wraps,
//! in order and unchanged (data and trailers), so the peer cannot tell it is there. The copy is
//! capped at `capture_limit`; past that, bytes still flow but are not kept. When the response
//! body is finished with (fully sent, or abandoned by either side) the tap hands the captured
//! [`Exchange`] to the extractor with a non-blocking `try_send`: the request path never waits
//! for detection or delivery work.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::exchange::{CapturedBody, Exchange};

/// Keeps up to `limit` bytes of a body.
#[derive(Debug)]
struct Capture {
    buf: BytesMut,
    limit: usize,
    overflowed: bool,
    ended: bool,
}

impl Capture {
    fn new(limit: usize, size_hint: &SizeHint) -> Self {
        // Pre-size from Content-Length when known, never above the limit.
        let expect = size_hint
            .exact()
            .unwrap_or(size_hint.lower())
            .min(limit as u64) as usize;
        Capture {
            buf: BytesMut::with_capacity(expect),
            limit,
            overflowed: false,
            ended: false,
        }
    }

    fn keep(&mut self, data: &[u8]) {
        let room = self.limit.saturating_sub(self.buf.len());
        if data.len() > room {
            self.overflowed = true;
        }
        let take = data.len().min(room);
        if take > 0 {
            self.buf.extend_from_slice(&data[..take]);
        }
    }

    fn finish(&mut self) -> CapturedBody {
        CapturedBody {
            bytes: std::mem::take(&mut self.buf).freeze(),
            truncated: self.overflowed || !self.ended,
        }
    }
}

/// Where the request tap leaves its copy for the response tap to pick up.
#[derive(Debug, Default)]
pub struct RequestCaptureSlot(Mutex<Option<CapturedBody>>);

impl RequestCaptureSlot {
    fn put(&self, body: CapturedBody) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(body);
        }
    }

    fn take(&self) -> Option<CapturedBody> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// A request body on its way upstream, copied as it goes.
#[derive(Debug)]
pub struct RequestTap {
    inner: Incoming,
    capture: Capture,
    slot: Arc<RequestCaptureSlot>,
}

impl RequestTap {
    /// Wraps `inner`; the copy lands in `slot` when the body is finished with.
    pub fn new(inner: Incoming, limit: usize, slot: Arc<RequestCaptureSlot>) -> Self {
        let capture = Capture::new(limit, &inner.size_hint());
        RequestTap {
            inner,
            capture,
            slot,
        }
    }
}

impl Body for RequestTap {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.capture.keep(data);
                }
            }
            Poll::Ready(None) => this.capture.ended = true,
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

impl Drop for RequestTap {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.capture.ended = true;
        }
        self.slot.put(self.capture.finish());
    }
}

/// What the response tap needs to build the [`Exchange`] when it is done.
pub struct PendingExchange {
    /// The exchange with everything known at response-header time; bodies filled at the end.
    pub exchange: Exchange,
    /// The request tap's copy, if the request had a body.
    pub request_slot: Option<Arc<RequestCaptureSlot>>,
    /// Where finished exchanges go.
    pub sink: tokio::sync::mpsc::Sender<Exchange>,
    /// Counts exchanges lost because the extractor fell behind.
    pub on_full: fn(),
}

/// A response body on its way to the client, copied as it goes; hands the exchange off on drop.
pub struct ResponseTap {
    inner: Incoming,
    capture: Capture,
    pending: Option<PendingExchange>,
}

impl ResponseTap {
    /// Wraps `inner`; `pending` is handed off when this body is dropped.
    pub fn new(inner: Incoming, limit: usize, pending: PendingExchange) -> Self {
        let capture = Capture::new(limit, &inner.size_hint());
        ResponseTap {
            inner,
            capture,
            pending: Some(pending),
        }
    }
}

impl Body for ResponseTap {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.capture.keep(data);
                }
            }
            Poll::Ready(None) => this.capture.ended = true,
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

impl Drop for ResponseTap {
    fn drop(&mut self) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        if self.inner.is_end_stream() {
            self.capture.ended = true;
        }
        pending.exchange.response_body = self.capture.finish();
        if let Some(slot) = &pending.request_slot {
            // The request body may still be in flight if the IAM answered before reading it
            // all; then what we have is a prefix.
            pending.exchange.request_body = slot.take().unwrap_or(CapturedBody {
                bytes: Bytes::new(),
                truncated: true,
            });
        }
        if pending.sink.try_send(pending.exchange).is_err() {
            (pending.on_full)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_prefix_and_flags_overflow() {
        let mut c = Capture::new(5, &SizeHint::with_exact(8));
        c.keep(b"abc");
        c.keep(b"defgh");
        c.ended = true;
        let body = c.finish();
        assert_eq!(&body.bytes[..], b"abcde");
        assert!(body.truncated);
    }

    #[test]
    fn capture_within_limit_is_whole() {
        let mut c = Capture::new(16, &SizeHint::default());
        c.keep(b"hello");
        c.ended = true;
        let body = c.finish();
        assert_eq!(&body.bytes[..], b"hello");
        assert!(!body.truncated);
    }

    #[test]
    fn capture_not_ended_is_truncated() {
        let mut c = Capture::new(16, &SizeHint::default());
        c.keep(b"hel");
        assert!(c.finish().truncated);
    }
}
