//! The proxy service: one client request in, one upstream request out, the response back.
//!
//! Every request takes one [`Snapshot`] snapshot and uses it from start to end. Unmatched
//! traffic is a plain streaming pass-through; matched traffic is forwarded the same way with a
//! bounded copy kept by the tap. This code never awaits anything but the upstream: detection
//! and delivery happen elsewhere, after the hand-off.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::body::ClientBody;
use super::error::ProxyError;
use super::tap::{PendingExchange, ResponseTap};
use crate::capture::{RequestCaptureSlot, RequestTap};
use crate::detect::RouteMatch;
use crate::events::handoff::HandoffSender;
use crate::exchange::{CapturedBody, Exchange};
use crate::headers;
use crate::snapshot::Snapshot;
use crate::upstream::UpstreamBody;

/// `X-Request-Id`: kept when the client sent one, generated for matched requests otherwise.
pub static X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// What every connection's service shares.
pub struct ProxyShared {
    /// The current config snapshot; swapped whole by reloads.
    pub runtime: Arc<ArcSwap<Snapshot>>,
    /// Where finished matched exchanges go (bounded; never awaited).
    pub exchanges: HandoffSender,
}

/// The per-connection service: shared state plus who the client is.
#[derive(Clone)]
pub struct ProxyService {
    shared: Arc<ProxyShared>,
    /// The client's IP as text (for `X-Forwarded-For` and events), formatted once per
    /// connection.
    client_ip: Option<HeaderValue>,
}

impl ProxyService {
    /// A service for one accepted connection from `remote`.
    pub fn new(shared: Arc<ProxyShared>, remote: SocketAddr) -> Self {
        ProxyService {
            shared,
            client_ip: headers::ip_value(remote.ip()),
        }
    }
}

impl tower::Service<Request<Incoming>> for ProxyService {
    type Response = Response<ClientBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ClientBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let runtime = self.shared.runtime.load_full();
        let sink = self.shared.exchanges.clone();
        Box::pin(forward(runtime, sink, self.client_ip.clone(), req))
    }
}

/// Classifies and forwards one request, and counts its response by route and status class
/// (pre-registered counters: an index and an atomic add).
async fn forward(
    rt: Arc<Snapshot>,
    sink: HandoffSender,
    client_ip: Option<HeaderValue>,
    req: Request<Incoming>,
) -> Result<Response<ClientBody>, Infallible> {
    let route = rt.routes.classify(req.method(), req.uri().path());
    let counters = rt
        .proxy_counters
        .select(route.as_ref().map(|r| r.entry), req.method());
    let resp = forward_classified(&rt, route, sink, client_ip, req).await;
    if let Ok(resp) = &resp {
        counters.record(resp.status().as_u16());
    }
    resp
}

/// Forwards one request and returns the upstream's response (or a 502/504).
async fn forward_classified(
    rt: &Arc<Snapshot>,
    route: Option<RouteMatch>,
    sink: HandoffSender,
    client_ip: Option<HeaderValue>,
    mut req: Request<Incoming>,
) -> Result<Response<ClientBody>, Infallible> {
    let upgrade = headers::wants_upgrade(req.headers());
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    let uri = match rt.upstream.uri_for(parts.uri.path_and_query()) {
        Ok(uri) => uri,
        Err(e) => return Ok(ProxyError::BadTarget(e).respond(parts.uri.path())),
    };

    // What the exchange needs is copied only for matched requests.
    let mut request_id = None;
    if route.is_some() {
        request_id = Some(match parts.headers.get(&X_REQUEST_ID) {
            Some(v) => v.clone(),
            None => {
                let id = generated_request_id();
                parts.headers.insert(X_REQUEST_ID.clone(), id.clone());
                id
            }
        });
    }
    let matched = route.map(|route| (route, parts.method.clone(), parts.headers.clone()));

    // HTTP/2 clients send :authority instead of Host.
    let sent_host = parts.headers.get(header::HOST).cloned();
    let client_host = sent_host.clone().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    if parts.version == Version::HTTP_2 {
        headers::join_cookies(&mut parts.headers);
    }
    headers::strip_hop_by_hop(&mut parts.headers, headers::Hop::Request, upgrade);
    headers::append_forwarded(
        &mut parts.headers,
        client_ip.as_ref(),
        &headers::PROTO_HTTP,
        client_host.as_ref(),
    );
    match (rt.preserve_host, sent_host, client_host) {
        // The client's own `Host` is already in place.
        (true, Some(_), _) => {}
        (true, None, Some(authority)) => {
            parts.headers.insert(header::HOST, authority);
        }
        _ => {
            parts
                .headers
                .insert(header::HOST, rt.upstream.host_header().clone());
        }
    }
    let client_uri = std::mem::replace(&mut parts.uri, uri);
    parts.version = Version::HTTP_11;

    let (body, request_slot) = match &matched {
        Some(_) if !upgrade => {
            let slot = Arc::new(RequestCaptureSlot::default());
            (
                UpstreamBody::Tapped(RequestTap::new(body, rt.capture_limit, slot.clone())),
                Some(slot),
            )
        }
        _ => (UpstreamBody::Plain(body), None),
    };

    let sent = tokio::time::timeout(
        rt.upstream_timeout,
        rt.client.send(Request::from_parts(parts, body)),
    )
    .await;
    let mut resp = match sent {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => return Ok(ProxyError::Upstream(e).respond(client_uri.path())),
        Err(_) => return Ok(ProxyError::Timeout(rt.upstream_timeout).respond(client_uri.path())),
    };

    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        if let Some(downstream) = downstream_upgrade {
            let upstream = hyper::upgrade::on(&mut resp);
            tokio::spawn(tunnel(downstream, upstream));
        }
    }
    headers::strip_hop_by_hop(resp.headers_mut(), headers::Hop::Response, switching);
    // A proxy answers in its own HTTP version (RFC 9110 6.2); hyper downgrades for 1.0
    // clients itself.
    *resp.version_mut() = Version::HTTP_11;

    let (parts, body) = resp.into_parts();
    let body = match matched {
        None => ClientBody::Plain(body),
        Some((route, method, request_headers)) => {
            // No body will be polled for HEAD, 204, 304 or an empty body: in strict mode the
            // response headers are what is held back.
            let bodiless = method == http::Method::HEAD
                || parts.status == StatusCode::NO_CONTENT
                || parts.status == StatusCode::NOT_MODIFIED
                || body.is_end_stream();
            let exchange = Exchange {
                route,
                method,
                uri: client_uri,
                request_headers,
                request_body: CapturedBody::default(),
                status: parts.status,
                response_headers: parts.headers.clone(),
                response_body: CapturedBody::default(),
                remote_ip: client_ip,
                request_id: request_id.unwrap_or(HeaderValue::from_static("")),
                durable: None,
            };
            let pending = PendingExchange {
                exchange,
                request_slot,
                sink,
                snapshot: rt.clone(),
            };
            if rt.strict && bodiless {
                let ended = CapturedBody {
                    bytes: bytes::Bytes::new(),
                    truncated: false,
                };
                pending.hand_off_durable(ended).await;
                ClientBody::Plain(body)
            } else {
                ClientBody::Tapped(Box::new(ResponseTap::new(
                    body,
                    rt.capture_limit,
                    pending,
                    rt.strict,
                )))
            }
        }
    };
    Ok(Response::from_parts(parts, body))
}

/// A fresh UUIDv7 as a header value. One allocation, shared by the forwarded header, the
/// exchange's copy of the headers and the exchange's id.
fn generated_request_id() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::now_v7().hyphenated().encode_lower(&mut text);
    match HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(text)) {
        Ok(v) => v,
        // Unreachable: hex digits and hyphens are valid header text.
        Err(_) => HeaderValue::from_static(""),
    }
}

/// Joins the client's and the IAM's upgraded connections (WebSocket) until either closes.
async fn tunnel(downstream: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (down, up) = match tokio::try_join!(downstream, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "protocol upgrade did not complete");
            return;
        }
    };
    let mut down = TokioIo::new(down);
    let mut up = TokioIo::new(up);
    if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
        tracing::debug!(error = %e, "upgraded connection ended with an error");
    }
}
