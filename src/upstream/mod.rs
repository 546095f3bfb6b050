//! The upstream client: where requests to the IAM go, and the connections that take them.
//!
//! [`UpstreamConnector`] sends one request over a per-thread pool (`pool`); the common
//! plain-HTTP exchange is driven inline by `direct`, the rest (TLS, upgrades, unsized
//! bodies) by hyper's client. It knows nothing of routes, events or webhooks, and must
//! never buffer a whole body or log one.

use std::future::poll_fn;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::Either;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::Service;

pub mod body;
pub mod direct;
pub mod pool;

pub use body::{BoxError, UpstreamBody};
use direct::DirectBody;
use pool::{PooledIncoming, Sender};

/// The IAM's response body, from whichever client carried the exchange: `Left` was read by
/// hyper's connection task (TLS, upgrades, large or unsized request bodies), `Right` is read
/// inline by the request's own task. `Either` already delegates every `Body` method.
pub type UpstreamResponseBody = Either<PooledIncoming, DirectBody>;

/// Tells connectors apart so a thread starts a new pool only when the settings changed.
static NEXT_CONNECTOR_ID: AtomicU64 = AtomicU64::new(1);

/// Why a request did not get a response from the IAM.
#[derive(Debug)]
pub enum UpstreamError {
    /// No connection could be made (refused, DNS, TLS handshake, connect timeout).
    Connect(BoxError),
    /// Connected, but the exchange failed (reset, malformed response).
    Exchange(BoxError),
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
    /// an optional CA.
    pub fn new(
        upstream: &Upstream,
        connect_timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<Self, String> {
        let target = Uri::builder()
            .scheme(upstream.scheme.clone())
            .authority(upstream.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| format!("cannot build the upstream address: {e}"))?;
        let plain = (!upstream.is_https()).then(|| {
            let host = upstream.authority.host();
            // `[::1]` in a URL is `::1` to the resolver.
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (host.to_owned(), upstream.authority.port_u16().unwrap_or(80))
        });
        Ok(UpstreamConnector {
            id: NEXT_CONNECTOR_ID.fetch_add(1, Ordering::Relaxed),
            target,
            plain,
            connect_timeout,
            connector: build_connector(connect_timeout, ca_file)?,
        })
    }

    /// Sends `req` (origin-form URI, `Host` already set) on a pooled connection, or a new
    /// one: inline for a plain-HTTP IAM and a small body of known length, through hyper's
    /// client otherwise.
    pub async fn send(
        &self,
        req: Request<UpstreamBody>,
    ) -> Result<Response<UpstreamResponseBody>, UpstreamError> {
        match &self.plain {
            Some((host, port)) if direct::eligible(&req) => {
                let resp = self.send_direct(host, *port, req).await?;
                Ok(resp.map(Either::Right))
            }
            _ => Ok(self.send_hyper(req).await?.map(Either::Left)),
        }
    }

    /// The inline exchange. A request whose body was all at hand is kept whole, so a reused
    /// connection the IAM closed while it sat idle costs a retry on a fresh one, not a
    /// failed request.
    async fn send_direct(
        &self,
        host: &str,
        port: u16,
        req: Request<UpstreamBody>,
    ) -> Result<Response<direct::DirectBody>, UpstreamError> {
        let mut request = direct::Outgoing::encode(req)
            .await
            .map_err(UpstreamError::Exchange)?;
        loop {
            // Unconstrained: the liveness check reads the socket's recorded readiness, which
            // tokio's cooperative budget would otherwise hide from a busy task.
            let pooled = tokio::task::unconstrained(async { pool::checkout_direct(self.id) }).await;
            let (conn, reused) = match pooled {
                Some(conn) => (conn, true),
                None => {
                    let conn = Box::pin(direct::connect(host, port, self.connect_timeout))
                        .await
                        .map_err(UpstreamError::Connect)?;
                    (conn, false)
                }
            };
            match direct::exchange(conn, reused, &mut request, self.id).await {
                Ok(resp) => return Ok(resp),
                Err(e) if e.retryable => continue,
                Err(e) => return Err(UpstreamError::Exchange(e.error)),
            }
        }
    }

    /// Through hyper's client. A request that a reused connection closed before taking is
    /// sent again on another: the IAM may drop an idle connection just as we pick it.
    async fn send_hyper(
        &self,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<PooledIncoming>, UpstreamError> {
        loop {
            let (mut sender, reused) = match pool::checkout_sender(self.id) {
                Some(sender) => (sender, true),
                // Boxed: dialing is rare, and its state would make every request's future larger.
                None => (Box::pin(self.connect()).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = PooledIncoming::new(body, self.id, sender);
                    return Ok(Response::from_parts(parts, body));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(UpstreamError::Exchange(e.into_error().into())),
                },
            }
        }
    }

    /// Dials the IAM and starts the connection's task on this thread's runtime.
    async fn connect(&self) -> Result<Sender, UpstreamError> {
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(UpstreamError::Connect)?;
        let io = connector
            .call(self.target.clone())
            .await
            .map_err(UpstreamError::Connect)?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| UpstreamError::Exchange(e.into()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// The IAM's base URL, split once at load so each request only swaps scheme and authority.
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// Path prefix without a trailing slash; empty when the IAM is at the root.
    base_path: String,
    /// `Host` for the upstream when the client's is not preserved.
    host_header: HeaderValue,
}

impl Upstream {
    /// Parses `http://host:port[/prefix]` or `https://...`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|e| {
            format!("`{url}` is not a URL ({e}); expected e.g. http://127.0.0.1:8081")
        })?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            _ => return Err(format!("`{url}` must start with http:// or https://")),
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("`{url}` has no host"))?;
        if uri.query().is_some() {
            return Err(format!("`{url}` must not have a query string"));
        }
        let base_path = uri.path().trim_end_matches('/').to_string();
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| format!("`{url}` has a host that is not a valid Host header"))?;
        Ok(Upstream {
            scheme,
            authority,
            base_path,
            host_header,
        })
    }

    /// `host:port` for readiness probes and messages.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The scheme, for readiness probes.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// The `Host` header naming the upstream itself.
    pub fn host_header(&self) -> &HeaderValue {
        &self.host_header
    }

    /// The origin-form request target for a client request's path and query. Without a
    /// base path this reuses the client's path bytes (no copy).
    pub fn uri_for(&self, pq: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
        let pq = match (self.base_path.is_empty(), pq) {
            (true, Some(pq)) => pq.clone(),
            (true, None) => PathAndQuery::from_static("/"),
            (false, pq) => {
                let rest = pq.map(|p| p.as_str()).unwrap_or("/");
                let mut joined = String::with_capacity(self.base_path.len() + rest.len());
                joined.push_str(&self.base_path);
                joined.push_str(rest);
                PathAndQuery::try_from(joined)?
            }
        };
        Ok(Uri::from(pq))
    }
}

fn build_connector(
    connect_timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<HttpsConnector<HttpConnector>, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));

    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(root_store(ca_file)?)
        .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    // A machine without system roots can still reach an upstream signed by `ca_file`.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("unusable certificate in {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("no PEM certificates found in {}", path.display()));
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_without_base_reuses_path() {
        let up = Upstream::parse("http://127.0.0.1:8081").expect("parse");
        let pq = PathAndQuery::from_static("/users/1?x=1");
        assert_eq!(
            up.uri_for(Some(&pq)).expect("uri").to_string(),
            "/users/1?x=1"
        );
    }

    #[test]
    fn uri_with_base_prefixes() {
        let up = Upstream::parse("https://iam.internal/base/").expect("parse");
        let pq = PathAndQuery::from_static("/users?x=1");
        assert_eq!(
            up.uri_for(Some(&pq)).expect("uri").to_string(),
            "/base/users?x=1"
        );
        assert_eq!(up.host_header().as_bytes(), b"iam.internal");
    }

    #[test]
    fn rejects_bad_upstreams() {
        assert!(Upstream::parse("ftp://x").unwrap_err().contains("http://"));
        assert!(Upstream::parse("not a url").is_err());
        assert!(Upstream::parse("http://x/?q=1")
            .unwrap_err()
            .contains("query"));
    }
}
