//! Bounded copies of bodies while they stream: what extraction later reads.
//!
//! A [`Capture`] keeps at most `capture_limit` bytes and notes whether the body was whole.
//! [`RequestTap`] wraps a client's request body on its way to the IAM and leaves its copy in
//! a [`RequestCaptureSlot`] for the response side (`proxy::tap`) to pick up. A tapped body
//! yields exactly the frames it wraps: it must never change, delay or reorder a byte.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::exchange::CapturedBody;

/// Largest buffer reserved before any body byte has arrived.
const PRESIZE_MAX: u64 = 64 * 1024;

/// Keeps up to `limit` bytes of a body, copied: keeping a frame by reference would keep
/// the whole read buffer it was cut from alive until the extractor is done, so the memory
/// held would no longer be bounded by `capture_limit`.
#[derive(Debug)]
pub struct Capture {
    buf: BytesMut,
    limit: usize,
    overflowed: bool,
    ended: bool,
}

impl Capture {
    /// An empty copy that keeps at most `limit` bytes.
    pub fn new(limit: usize, size_hint: &SizeHint) -> Self {
        // A client's declared length must not reserve memory before it sends anything: at
        // most 64 KiB up front, grown as data comes.
        let expect = size_hint
            .exact()
            .unwrap_or(size_hint.lower())
            .min(limit as u64)
            .min(PRESIZE_MAX) as usize;
        Capture {
            buf: BytesMut::with_capacity(expect),
            limit,
            overflowed: false,
            ended: false,
        }
    }

    /// Copies what still fits of `data`; notes the overflow otherwise.
    pub fn keep(&mut self, data: &[u8]) {
        let room = self.limit.saturating_sub(self.buf.len());
        if data.len() > room {
            self.overflowed = true;
        }
        let take = data.len().min(room);
        if take > 0 {
            self.buf.extend_from_slice(&data[..take]);
        }
    }

    /// The body was seen to its end (not cut short by either side).
    pub fn mark_ended(&mut self) {
        self.ended = true;
    }

    /// Hands over what was kept, marked truncated unless it is the whole body.
    pub fn finish(&mut self) -> CapturedBody {
        CapturedBody {
            bytes: std::mem::take(&mut self.buf).freeze(),
            truncated: self.overflowed || !self.ended,
        }
    }
}

/// Where the request tap leaves its copy for the response tap to pick up: the two bodies may
/// be finished with on different tasks (hyper's client sends a request body from its
/// connection task), hence the lock, taken once per side.
#[derive(Debug, Default)]
pub struct RequestCaptureSlot(Mutex<Option<CapturedBody>>);

impl RequestCaptureSlot {
    /// Leaves the request copy for the response side.
    pub fn put(&self, body: CapturedBody) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(body);
        }
    }

    /// Takes the request copy, once.
    pub fn take(&self) -> Option<CapturedBody> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// A request body on its way upstream, copied as it goes, so extraction can read fields the
/// client sent.
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
            Poll::Ready(None) => this.capture.mark_ended(),
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
            self.capture.mark_ended();
        }
        self.slot.put(self.capture.finish());
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
        c.mark_ended();
        let body = c.finish();
        assert_eq!(&body.bytes[..], b"abcde");
        assert!(body.truncated);
    }

    #[test]
    fn capture_joins_frames_in_order_up_to_the_limit() {
        let mut c = Capture::new(7, &SizeHint::default());
        for part in ["", "ab", "", "cde", "fghij", "k"] {
            c.keep(part.as_bytes());
        }
        c.mark_ended();
        let body = c.finish();
        assert_eq!(&body.bytes[..], b"abcdefg");
        assert!(body.truncated);

        let mut c = Capture::new(3, &SizeHint::default());
        c.keep(b"abcdef");
        c.keep(b"gh");
        c.mark_ended();
        let body = c.finish();
        assert_eq!(&body.bytes[..], b"abc");
        assert!(body.truncated);
    }

    #[test]
    fn capture_within_limit_is_whole() {
        let mut c = Capture::new(16, &SizeHint::default());
        c.keep(b"hello");
        c.mark_ended();
        let body = c.finish();
        assert_eq!(&body.bytes[..], b"hello");
        assert!(!body.truncated);
    }

    #[test]
    fn capture_not_ended_is_truncated() {
        let mut c = Capture::new(16, &SizeHint::default());
        c.keep(b"hel");
        let body = c.finish();
        assert_eq!(&body.bytes[..], b"hel");
        assert!(body.truncated);
    }
}
