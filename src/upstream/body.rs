//! The request body the upstream client sends: hyper's own `Incoming` (copied by the request
//! tap on a matched route), with the client's pace watched so a client that stops sending
//! ends its request instead of holding it open.
//!
//! The unmatched path stays a zero-cost pass-through: no boxing, no copying, and no timer
//! unless the body is actually waited for. Never: look at, hold back or change a byte.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::future::Future;
use tokio::time::{Instant, Sleep};

use crate::capture::RequestTap;

/// Why the client's request body could not be read: the client's fault, never the IAM's.
#[derive(Debug, thiserror::Error)]
pub enum ClientBodyError {
    /// hyper could not read it: broken chunked framing, a body shorter than its
    /// `Content-Length`, or a client that went away.
    #[error("reading the client's request body")]
    Read(#[source] hyper::Error),
    /// No byte of it arrived for `client.body_timeout`.
    #[error("the client sent nothing of its request body for {}", humantime::format_duration(*.0))]
    Stalled(Duration),
    /// It grew past `client.max_body_bytes` (a chunked body has no length to refuse up front;
    /// an absurd chunk size is cut here).
    #[error("the request body is larger than client.max_body_bytes ({0} bytes)")]
    TooLarge(u64),
}

/// Where the body's bytes come from.
enum Source {
    /// Unmatched route: streamed as received.
    Plain(Incoming),
    /// Matched route: streamed and copied.
    Tapped(RequestTap),
}

/// A request body sent to the upstream IAM: one type for both routes, so the client is not
/// generic and the unmatched route pays for no copy.
pub struct UpstreamBody {
    source: Source,
    /// Longest pause allowed between two frames (`client.body_timeout`).
    stall_limit: Duration,
    /// Largest body allowed (`client.max_body_bytes`), and how much of it has passed.
    max_bytes: u64,
    sent: u64,
    /// Armed the first time the body has to be waited for (a body already received never
    /// costs a timer); reset when a frame arrived since.
    stall: Option<Pin<Box<Sleep>>>,
    progressed: bool,
    /// Set when the upload is streamed to the IAM: when it last moved, and whether it ended,
    /// so the IAM's time starts when the client is done (see [`UploadProgress`]).
    progress: Option<Arc<UploadProgress>>,
}

/// How far a streamed upload has got, shared by the body and the IAM's deadline: the IAM is
/// timed from the upload's end, or from the last byte it took while it still takes them, never
/// for the time the client spends sending.
#[derive(Debug)]
pub struct UploadProgress {
    start: Instant,
    /// Nanoseconds after `start` of the last frame (or the end) the IAM's connection took.
    moved: AtomicU64,
}

impl UploadProgress {
    fn new() -> Self {
        UploadProgress {
            start: Instant::now(),
            moved: AtomicU64::new(0),
        }
    }

    fn moved_now(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.moved.store(nanos, Ordering::Relaxed);
    }

    /// When the IAM's time, `timeout` long, runs out if nothing moves before then.
    fn deadline(&self, timeout: Duration) -> Instant {
        self.start + Duration::from_nanos(self.moved.load(Ordering::Relaxed)) + timeout
    }

    /// Resolves once the IAM has had `timeout` since the upload's last progress or its end
    /// without answering; while the client still sends (slowly, within its own
    /// `client.body_timeout`) and the IAM keeps taking the bytes, the deadline moves on.
    pub async fn expired(&self, timeout: Duration) {
        loop {
            let deadline = self.deadline(timeout);
            tokio::time::sleep_until(deadline).await;
            if self.deadline(timeout) <= deadline {
                return;
            }
        }
    }
}

impl UpstreamBody {
    /// An unmatched request's body, ended with [`ClientBodyError::Stalled`] after a pause of
    /// `stall_limit`, and with [`ClientBodyError::TooLarge`] past `max_bytes`.
    pub fn plain(body: Incoming, stall_limit: Duration, max_bytes: u64) -> Self {
        Self::new(Source::Plain(body), stall_limit, max_bytes)
    }

    /// A matched request's body, copied as it streams; paced and bounded as
    /// [`UpstreamBody::plain`].
    pub fn tapped(body: RequestTap, stall_limit: Duration, max_bytes: u64) -> Self {
        Self::new(Source::Tapped(body), stall_limit, max_bytes)
    }

    fn new(source: Source, stall_limit: Duration, max_bytes: u64) -> Self {
        UpstreamBody {
            source,
            stall_limit,
            max_bytes,
            sent: 0,
            stall: None,
            progressed: false,
            progress: None,
        }
    }

    /// Starts recording the upload's progress for the IAM's deadline; called only for a body
    /// that streams to the IAM (large or of unknown length), so small bodies pay nothing.
    pub fn track_progress(&mut self) -> Arc<UploadProgress> {
        let progress = Arc::new(UploadProgress::new());
        self.progress = Some(progress.clone());
        progress
    }

    /// `Pending` from the source: arms or re-arms the stall timer and polls it.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<ClientBodyError> {
        let limit = self.stall_limit;
        let stall = match &mut self.stall {
            Some(stall) => {
                if std::mem::take(&mut self.progressed) {
                    stall.as_mut().reset(Instant::now() + limit);
                }
                stall
            }
            None => {
                self.progressed = false;
                self.stall.insert(Box::pin(tokio::time::sleep(limit)))
            }
        };
        stall
            .as_mut()
            .poll(cx)
            .map(|()| ClientBodyError::Stalled(limit))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = self.get_mut();
        let polled = match &mut this.source {
            Source::Plain(b) => Pin::new(b).poll_frame(cx),
            Source::Tapped(b) => Pin::new(b).poll_frame(cx),
        };
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    this.sent = this.sent.saturating_add(len);
                    if this.sent > this.max_bytes {
                        return Poll::Ready(Some(Err(ClientBodyError::TooLarge(this.max_bytes))));
                    }
                }
                this.progressed = true;
                if let Some(progress) = &this.progress {
                    progress.moved_now();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(ClientBodyError::Read(e)))),
            Poll::Ready(None) => {
                if let Some(progress) = &this.progress {
                    progress.moved_now();
                }
                Poll::Ready(None)
            }
            Poll::Pending => this.poll_stall(cx).map(|e| Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Plain(b) => b.is_end_stream(),
            Source::Tapped(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Plain(b) => b.size_hint(),
            Source::Tapped(b) => b.size_hint(),
        }
    }
}
