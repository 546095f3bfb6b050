//! The body types that cross the proxy, as plain enums so the unmatched path stays a
//! zero-cost pass-through of hyper's own `Incoming` (no boxing, no copying).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Either;
use hyper::body::Incoming;

use super::direct::DirectBody;
use super::pool::PooledIncoming;
use super::tap::{RequestTap, ResponseTap};

/// A body error from either client: hyper's, or the inline one's (I/O, framing).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body sent to the upstream IAM.
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

/// The IAM's response body, from whichever client carried the exchange: `Left` was read by
/// hyper's connection task (TLS, upgrades, large or unsized request bodies), `Right` is read
/// inline by the request's own task. `Either` already delegates every `Body` method.
pub type UpstreamResponseBody = Either<PooledIncoming, DirectBody>;

/// A response body sent to the client.
pub enum ClientBody {
    /// Unmatched route: streamed as received from the upstream.
    Plain(UpstreamResponseBody),
    /// Matched route: streamed, copied, and handed to detection when done.
    Tapped(Box<ResponseTap>),
    /// A response userhook wrote itself (errors, admin).
    Full(Option<Bytes>),
}

impl ClientBody {
    /// A complete in-memory body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
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
