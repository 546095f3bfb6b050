//! One plain TCP connection to the IAM, how it is dialed, read, and kept idle per thread.
//!
//! The connection is only a socket and the bytes read from it but not used yet; what those
//! bytes mean is for `head` and `body`. Never: write on the socket (that is `encode`'s), or
//! hold a connection in the pool that has bytes of an unfinished exchange.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::error::DialError;
use crate::upstream::pool::{LocalPool, Reusable};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// A plain TCP connection to the IAM with what has been read but not used yet.
#[derive(Debug)]
pub(super) struct DirectConn {
    /// The socket.
    pub(super) io: TcpStream,
    /// Read, not yet parsed or handed out.
    pub(super) buf: BytesMut,
}

impl DirectConn {
    /// A connection over `io` with `buf` already read from it.
    pub(super) fn new(io: TcpStream, buf: BytesMut) -> Self {
        DirectConn { io, buf }
    }
}

impl Reusable for DirectConn {
    fn is_dead(&mut self) -> bool {
        // An idle connection has nothing to say: readable means closed (or garbage sent).
        // This reads the readiness the event loop already recorded; no system call.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(self.io.poll_read_ready(&mut cx), Poll::Ready(_))
    }

    fn is_busy(&self) -> bool {
        false
    }
}

thread_local! {
    static IDLE: RefCell<LocalPool<DirectConn>> = const { RefCell::new(LocalPool::new()) };
}

/// An idle plain connection of `connector` from this thread's pool.
pub(super) fn checkout(connector: u64) -> Option<DirectConn> {
    IDLE.with(|p| p.borrow_mut().checkout(connector))
}

/// Returns a plain connection whose exchange is complete.
pub(super) fn release(connector: u64, conn: DirectConn) {
    IDLE.with(|p| p.borrow_mut().release(connector, conn))
}

/// Dials the IAM at `host:port`: every resolved address in turn, each within `timeout`.
pub(super) async fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<DirectConn, DialError> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| DialError::Resolve {
            host: host.to_owned(),
            source,
        })?;
    let mut last: Option<io::Error> = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(io)) => {
                io.set_nodelay(true).map_err(DialError::NoDelay)?;
                return Ok(DirectConn::new(io, BytesMut::with_capacity(READ_CHUNK)));
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {addr} timed out"),
                ))
            }
        }
    }
    Err(match last {
        Some(source) => DialError::Connect {
            host: host.to_owned(),
            port,
            source,
        },
        None => DialError::NoAddress {
            host: host.to_owned(),
        },
    })
}

/// Reads what the socket has into the connection's buffer; `0` means the IAM closed it.
pub(super) async fn read_more(conn: &mut DirectConn) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_read_more(conn, cx)).await
}

/// [`read_more`] for a body's `poll_frame`.
pub(super) fn poll_read_more(
    conn: &mut DirectConn,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    conn.buf.reserve(READ_CHUNK);
    // tokio's own read: a short read marks the socket drained, so an idle pooled connection
    // is not mistaken for a readable (closed) one.
    tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn an_idle_connection_the_iam_closed_reads_as_dead() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let io = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (peer, _) = listener.accept().await.expect("accept");
        let mut conn = DirectConn::new(io, BytesMut::new());
        // Wait for the event loop to see the idle connection as it is (nothing to read).
        tokio::task::yield_now().await;
        assert!(!conn.is_dead(), "open and silent: reusable");
        drop(peer);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !conn.is_dead() {
            assert!(
                Instant::now() < deadline,
                "a closed connection never read as dead"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
