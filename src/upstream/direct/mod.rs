//! The common exchange with a plain-HTTP IAM, driven inline by the request's own task.
//!
//! hyper's client runs each connection as a task of its own: a request crosses to it over a
//! channel, the response comes back over another, and every body frame costs two more task
//! wake-ups. For the requests a user-management API mostly sees — a small body of known
//! length, or none — this module writes the request in one `write` and reads the response on
//! the proxied request's own task, the way nginx does it. Anything else (TLS, upgrades,
//! bodies of unknown or large size) stays on hyper's client.
//!
//! Here the exchange is sequenced (connection, write, informational heads, final head, a
//! retry on a fresh connection when a pooled one was stale); `conn` owns the socket and the
//! pool, `encode` the request bytes, `head` and `framing` the response's syntax, `body` the
//! response body; `offline` reads a response from bytes in memory with the same parts (for
//! fuzzing and property tests). Never: retry a request that may have been acted on, or reuse a
//! connection out of step with its responses.

mod body;
mod conn;
mod encode;
pub(super) mod error;
mod framing;
mod head;
pub mod offline;

use std::time::Duration;

use http::header;
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;

use crate::upstream::body::UpstreamBody;
use crate::upstream::error::UpstreamError;
pub use body::DirectBody;
use conn::DirectConn;
use encode::{Outgoing, MAX_INLINE_BODY};
use error::ResponseError;
use head::{parse_head, MAX_HEAD};

/// True when `req` can take the inline path: a body of known length up to
/// [`MAX_INLINE_BODY`], and no protocol switch.
pub(super) fn eligible(req: &Request<UpstreamBody>) -> bool {
    req.body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= MAX_INLINE_BODY)
        && !req.headers().contains_key(header::UPGRADE)
        && req.method() != Method::CONNECT
}

/// Sends `req` to `host:port` on one of this thread's idle connections of `connector`, or a
/// new one. The body is read whole first (paced by its own timer), and only then is a
/// connection taken and `timeout` started: upload time is the client's, not the IAM's. The
/// request is kept whole, so a reused connection the IAM closed while it sat idle costs a
/// retry on a fresh one, not a failed request.
pub(super) async fn send(
    host: &str,
    port: u16,
    connect_timeout: Duration,
    connector: u64,
    req: Request<UpstreamBody>,
    timeout: Duration,
) -> Result<Response<DirectBody>, UpstreamError> {
    let mut request = Outgoing::encode(req).await?;
    let sent = tokio::time::timeout(
        timeout,
        send_encoded(host, port, connect_timeout, connector, &mut request),
    );
    sent.await.map_err(|_| UpstreamError::Timeout(timeout))?
}

/// [`send`]'s exchange once the request is encoded, with its retry on a fresh connection.
async fn send_encoded(
    host: &str,
    port: u16,
    connect_timeout: Duration,
    connector: u64,
    request: &mut Outgoing,
) -> Result<Response<DirectBody>, UpstreamError> {
    loop {
        // Unconstrained: the liveness check reads the socket's recorded readiness, which
        // tokio's cooperative budget would otherwise hide from a busy task.
        let pooled = tokio::task::unconstrained(async { conn::checkout(connector) }).await;
        let (conn, reused) = match pooled {
            Some(conn) => (conn, true),
            None => {
                let conn = Box::pin(conn::connect(host, port, connect_timeout)).await?;
                (conn, false)
            }
        };
        match exchange(conn, reused, request, connector).await {
            Ok(resp) => return Ok(resp),
            Err(e) if e.retryable() => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Sends the encoded request on `conn` and reads the response head; the body is read as the
/// returned response's body is polled. A failure says whether a fresh connection may help
/// ([`UpstreamError::retryable`]).
async fn exchange(
    mut conn: DirectConn,
    reused: bool,
    request: &mut Outgoing,
    connector: u64,
) -> Result<Response<DirectBody>, UpstreamError> {
    let replayable = request.replayable();
    if let Err(source) = request.write_to(&mut conn.io).await {
        // A failed write means the IAM did not receive the whole request; a reused
        // connection (likely closed while idle) is worth another try if we still have it all.
        return Err(UpstreamError::Send {
            source,
            stale: reused && replayable,
        });
    }
    let method = &request.method;
    let idempotent = matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    );
    loop {
        // Nothing read yet (the usual case right after the write): nothing to parse.
        let parsed = if conn.buf.is_empty() {
            Ok(None)
        } else {
            parse_head(&mut conn.buf)
        };
        match parsed {
            Ok(Some(head)) if head.status.is_informational() => {
                if head.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(ResponseError::UnaskedSwitch.into());
                }
                // 100 Continue, 103 Early Hints: the final answer follows.
                continue;
            }
            Ok(Some(head)) => return Ok(body::respond(conn, head, method, connector)?),
            Ok(None) => {}
            Err(e) => return Err(ResponseError::Malformed(e).into()),
        }
        if conn.buf.len() >= MAX_HEAD {
            return Err(ResponseError::HeadTooLarge.into());
        }
        // Nothing of a response yet: the IAM may have closed a pooled connection while idle.
        let stale = reused && replayable && conn.buf.is_empty() && idempotent;
        match conn::read_more(&mut conn).await {
            Ok(0) => return Err(UpstreamError::Closed { stale }),
            Ok(_) => {}
            Err(source) => return Err(UpstreamError::Read { source, stale }),
        }
    }
}
