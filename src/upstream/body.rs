//! The request body the upstream client sends, as a plain enum so the unmatched path stays
//! a zero-cost pass-through of hyper's own `Incoming` (no boxing, no copying). Never: look
//! at, hold back or change a byte.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::capture::RequestTap;

/// A request body sent to the upstream IAM: one type for both routes, so the client is not
/// generic and the unmatched route pays for no copy.
pub enum UpstreamBody {
    /// Unmatched route: streamed as received.
    Plain(Incoming),
    /// Matched route: streamed and copied.
    Tapped(RequestTap),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Plain(b) => Pin::new(b).poll_frame(cx),
            UpstreamBody::Tapped(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Plain(b) => b.is_end_stream(),
            UpstreamBody::Tapped(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Plain(b) => b.size_hint(),
            UpstreamBody::Tapped(b) => b.size_hint(),
        }
    }
}
