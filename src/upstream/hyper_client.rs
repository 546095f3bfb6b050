//! The exchanges hyper's client carries: TLS upstreams, protocol upgrades, and request
//! bodies of unknown or large size.
//!
//! Each connection is an HTTP/1.1 `SendRequest` whose connection task runs on this thread;
//! idle ones wait in this thread's pool, and [`PooledIncoming`] gives one back when its
//! response has been read to the end. Never: reuse a connection whose body broke off, or
//! retry a request hyper did not hand back unsent.

use std::cell::RefCell;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::Service;

use super::body::UpstreamBody;
use super::error::UpstreamError;
use super::pool::{LocalPool, Reusable};

/// The sending half of one hyper-driven upstream HTTP/1.1 connection.
type Sender = SendRequest<UpstreamBody>;

impl Reusable for Sender {
    fn is_dead(&mut self) -> bool {
        self.is_closed()
    }

    fn is_busy(&self) -> bool {
        !self.is_ready()
    }
}

thread_local! {
    static IDLE: RefCell<LocalPool<Sender>> = const { RefCell::new(LocalPool::new()) };
}

/// A ready hyper connection of `connector` from this thread's pool.
fn checkout(connector: u64) -> Option<Sender> {
    IDLE.with(|p| p.borrow_mut().checkout(connector))
}

/// Returns a hyper connection whose response has been read in full.
fn release(connector: u64, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    IDLE.with(|p| p.borrow_mut().release(connector, sender))
}

/// Sends `req` through hyper's client on one of this thread's connections of `connector`,
/// or a new one to `target`. A request that a reused connection closed before taking is sent
/// again on another: the IAM may drop an idle connection just as we pick it.
pub(super) async fn send(
    connector: &HttpsConnector<HttpConnector>,
    target: &Uri,
    id: u64,
    mut req: Request<UpstreamBody>,
) -> Result<Response<PooledIncoming>, UpstreamError> {
    loop {
        let (mut sender, reused) = match checkout(id) {
            Some(sender) => (sender, true),
            // Boxed: dialing is rare, and its state would make every request's future larger.
            None => (Box::pin(connect(connector, target)).await?, false),
        };
        match sender.try_send_request(req).await {
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                let body = PooledIncoming::new(body, id, sender);
                return Ok(Response::from_parts(parts, body));
            }
            Err(mut e) => match e.take_message() {
                Some(unsent) if reused => req = unsent,
                _ => return Err(UpstreamError::Exchange(e.into_error())),
            },
        }
    }
}

/// Dials the IAM and starts the connection's task on this thread's runtime.
async fn connect(
    connector: &HttpsConnector<HttpConnector>,
    target: &Uri,
) -> Result<Sender, UpstreamError> {
    let mut connector = connector.clone();
    poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(UpstreamError::Connect)?;
    let io = connector
        .call(target.clone())
        .await
        .map_err(UpstreamError::Connect)?;
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(io)
        .await
        .map_err(UpstreamError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// A response body read by hyper's connection task. When its end has been read the
/// connection goes back to this thread's pool; dropped early, the connection is closed by
/// hyper instead (HTTP/1.1 cannot skip the rest of a body).
pub struct PooledIncoming {
    inner: Incoming,
    home: Option<(u64, Sender)>,
}

impl PooledIncoming {
    /// Wraps a response body read from `sender`'s connection, which belongs to `connector`.
    fn new(inner: Incoming, connector: u64, sender: Sender) -> Self {
        let mut body = PooledIncoming {
            inner,
            home: Some((connector, sender)),
        };
        if body.inner.is_end_stream() {
            body.give_back();
        }
        body
    }

    fn give_back(&mut self) {
        if let Some((connector, sender)) = self.home.take() {
            release(connector, sender);
        }
    }
}

impl Body for PooledIncoming {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match polled {
            Poll::Ready(None) => {
                this.give_back();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.give_back();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            // A broken body means a broken connection: never reuse it.
            Poll::Ready(Some(Err(e))) => {
                this.home = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
