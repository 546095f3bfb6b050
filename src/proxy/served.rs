//! A client connection as hyper serves it: HTTP/1 (with protocol upgrades) or HTTP/2, chosen
//! by what the connection already said (its first bytes, or ALPN on TLS).
//!
//! The first head is read before hyper takes a connection (`first_head`), so userhook knows
//! the protocol already; handing the connection to hyper's own builder for it skips the
//! version sniffing, the replay layer and the per-poll protocol dispatch of hyper-util's
//! `auto` builder, which every request would pay. Never: look at or change a byte itself.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};

use super::edge::Builders;
use super::service::ProxyService;
use super::watch::WatchedIo;

type Service = TowerToHyperService<ProxyService>;
type Io<S> = TokioIo<WatchedIo<S>>;

/// One client connection being served.
pub enum Served<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> {
    /// HTTP/1.x, upgrades (WebSocket) allowed.
    Http1(Pin<Box<http1::UpgradeableConnection<Io<S>, Service>>>),
    /// HTTP/2 (prior knowledge, or `h2` by ALPN).
    Http2(Pin<Box<http2::Connection<Io<S>, Service, TokioExecutor>>>),
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Served<S> {
    /// Serves `io` with `service`: as HTTP/2 when `h2`, else as HTTP/1.
    pub fn new(builders: &Builders, io: WatchedIo<S>, service: ProxyService, h2: bool) -> Self {
        let (io, service) = (TokioIo::new(io), TowerToHyperService::new(service));
        if h2 {
            Served::Http2(Box::pin(builders.http2.serve_connection(io, service)))
        } else {
            Served::Http1(Box::pin(
                builders.http1.serve_connection(io, service).with_upgrades(),
            ))
        }
    }

    /// Starts hyper's graceful close: finish what is in flight, take no more.
    pub fn graceful_shutdown(&mut self) {
        match self {
            Served::Http1(conn) => conn.as_mut().graceful_shutdown(),
            Served::Http2(conn) => conn.as_mut().graceful_shutdown(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Future for Served<S> {
    type Output = Result<(), hyper::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Served::Http1(conn) => conn.as_mut().poll(cx),
            Served::Http2(conn) => conn.as_mut().poll(cx),
        }
    }
}
