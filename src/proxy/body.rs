//! The body the client receives, as a plain enum so the unmatched path stays a zero-cost
//! pass-through of the upstream's body (no boxing, no copying). Never: change, hold back or
//! reorder a frame of the IAM's body (holding is the tap's, in strict mode).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::tap::ResponseTap;
use crate::upstream::{BoxError, UpstreamResponseBody};

/// A response body sent to the client: one type for every route, so the service is not
/// generic and the unmatched route pays for no boxing.
pub enum ClientBody {
    /// Unmatched route: streamed as received from the upstream.
    Plain(UpstreamResponseBody),
    /// Matched route: streamed, copied, and handed to detection when done.
    Tapped(Box<ResponseTap>),
    /// A response userhook wrote itself (`error` builds them, and only it).
    Full(Option<Bytes>),
}

impl ClientBody {
    /// A complete in-memory body, for the responses `error` writes.
    pub(super) fn full(bytes: impl Into<Bytes>) -> Self {
        ClientBody::Full(Some(bytes.into()))
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ClientBody::Plain(b) => Pin::new(b).poll_frame(cx),
            ClientBody::Tapped(b) => Pin::new(b.as_mut()).poll_frame(cx),
            ClientBody::Full(b) => Poll::Ready(b.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Plain(b) => b.is_end_stream(),
            ClientBody::Tapped(b) => b.is_end_stream(),
            ClientBody::Full(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Plain(b) => b.size_hint(),
            ClientBody::Tapped(b) => b.size_hint(),
            ClientBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ClientBody::Full(None) => SizeHint::with_exact(0),
        }
    }
}
