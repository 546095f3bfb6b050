//! The connector a snapshot holds: one request in, the IAM's response out, on whichever
//! client fits the request.
//!
//! A plain-HTTP IAM and a small body of known length go inline (`direct`); TLS, upgrades and
//! unsized or large bodies go through hyper's client (`hyper_client`). Never: look at routes,
//! events or webhooks, buffer a whole body, or log one.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, Response, Uri};
use http_body::Body as _;
use http_body_util::Either;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

use super::body::UpstreamBody;
use super::direct::{self, DirectBody};
use super::error::UpstreamError;
use super::hyper_client::{self, PooledIncoming};
use super::target::Upstream;
use super::tls::{build_connector, TlsError};

/// The IAM's response body, from whichever client carried the exchange: `Left` was read by
/// hyper's connection task (TLS, upgrades, large or unsized request bodies), `Right` is read
/// inline by the request's own task. `Either` already delegates every `Body` method.
pub type UpstreamResponseBody = Either<PooledIncoming, DirectBody>;

/// Tells connectors apart so a thread starts a new pool only when the settings changed.
static NEXT_CONNECTOR_ID: AtomicU64 = AtomicU64::new(1);

/// Why no connector could be built for the configured upstream; the text is the operator's.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// `scheme://authority/` would not form a URI.
    #[error("cannot build the upstream address: {0}")]
    Address(http::Error),
    /// The TLS roots could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// How to reach the IAM: its address, connect timeout and TLS roots, checked at config load.
/// Requests go over HTTP/1.1 connections kept in each thread's own pool, so a worker never
/// waits on another's lock and a connection's task runs beside the requests that use it.
#[derive(Clone)]
pub struct UpstreamConnector {
    id: u64,
    /// `scheme://authority/` of the IAM: what the connector dials.
    target: Uri,
    /// Plain HTTP: host and port for the inline client (`None` for TLS upstreams).
    plain: Option<(String, u16)>,
    connect_timeout: Duration,
    connector: HttpsConnector<HttpConnector>,
}

impl std::fmt::Debug for UpstreamConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConnector")
            .field("id", &self.id)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl UpstreamConnector {
    /// Builds the connector for `upstream`: TCP_NODELAY, connect timeout, system roots plus
    /// an optional CA. Each one starts pools of its own, so a reload that changes these
    /// settings never sends on a connection made with the old ones.
    pub fn new(
        upstream: &Upstream,
        connect_timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<Self, ConnectorError> {
        let target = upstream.origin().map_err(ConnectorError::Address)?;
        Ok(UpstreamConnector {
            id: NEXT_CONNECTOR_ID.fetch_add(1, Ordering::Relaxed),
            target,
            plain: upstream.plain_host_port(),
            connect_timeout,
            connector: build_connector(connect_timeout, ca_file)?,
        })
    }

    /// Sends `req` (origin-form URI, `Host` already set) on a pooled connection, or a new
    /// one, and waits up to `timeout` for the response head ([`UpstreamError::Timeout`]):
    /// inline for a plain-HTTP IAM and a small body of known length (read whole first, so the
    /// upload is not timed as the IAM's), through hyper's client otherwise (the body streams,
    /// and `timeout` runs from its last progress: a slow client is its own `client.body_timeout`,
    /// never the IAM's 504).
    pub async fn send(
        &self,
        req: Request<UpstreamBody>,
        timeout: Duration,
    ) -> Result<Response<UpstreamResponseBody>, UpstreamError> {
        match &self.plain {
            Some((host, port)) if direct::eligible(&req) => {
                let resp =
                    direct::send(host, *port, self.connect_timeout, self.id, req, timeout).await?;
                Ok(resp.map(Either::Right))
            }
            _ => {
                let mut req = req;
                // A streamed upload is the client's time until it ends: the IAM is timed from
                // its last byte (or from the start when there is no body).
                let progress =
                    (!req.body().is_end_stream()).then(|| req.body_mut().track_progress());
                let sent = hyper_client::send(&self.connector, &self.target, self.id, req);
                let resp = match progress {
                    None => tokio::time::timeout(timeout, sent)
                        .await
                        .map_err(|_| UpstreamError::Timeout(timeout))??,
                    Some(progress) => tokio::select! {
                        resp = sent => resp?,
                        () = progress.expired(timeout) => return Err(UpstreamError::Timeout(timeout)),
                    },
                };
                Ok(resp.map(Either::Left))
            }
        }
    }
}
