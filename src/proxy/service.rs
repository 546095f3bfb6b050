//! The proxy service: one client request in, one upstream request out, the response back.
//!
//! Every request takes one [`Snapshot`] and uses it from start to end, and goes through the
//! same phases in order, each a function below whose doc says when it runs and what it may
//! change:
//!
//! 0. `edge::refusal`: a head with a missing, empty, repeated or conflicting `Host`, or a
//!    `CONNECT`, is answered 400 and goes no further; so is an unmatched path that only an
//!    encoded slash keeps from matching a rule (`RouteTable::dodges_by_encoded_slash`).
//! 1. `request_filter`: a matched request gets its `X-Request-Id` and its copy for the
//!    exchange (classification itself is in `forward`, which counts by route).
//! 2. `upstream_request_head` and `upstream_request_body`: the request as the IAM gets it,
//!    and the request tap on a matched body.
//! 3. `send_upstream`: the exchange with the IAM, within `timeouts.upstream`.
//! 4. `response_filter` and `response_body`: hop-by-hop headers, a protocol switch, and the
//!    response tap or strict mode's hold.
//!
//! A phase that fails ends the request with userhook's own response (`error`), and the
//! later phases do not run. Unmatched traffic is a plain streaming pass-through; matched
//! traffic is forwarded the same way with a bounded copy kept by the taps.
//!
//! The service awaits exactly two things: the IAM (connecting, writing the request, and its
//! response head, all within `timeouts.upstream`), and, in strict mode only, for a matched
//! response with no body to hold back (HEAD, 204, 304, or empty), the acknowledgement that
//! its event is durable (at most `tap::STRICT_MAX_WAIT`). Detection and delivery run
//! elsewhere, after the hand-off; response bodies, and strict mode's hold of their last
//! frame, stream after the service has returned (`tap`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::header::{self, HeaderMap, HeaderValue};
use http::{request, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::ClientBody;
use super::edge::{self, ConnectionCount};
use super::error::ProxyError;
use super::tap::{PendingExchange, ResponseTap};
use super::watch::{Activity, InFlight, WatchedBody};
use crate::capture::{RequestCaptureSlot, RequestTap};
use crate::detect::RouteMatch;
use crate::events::handoff::HandoffSender;
use crate::exchange::{CapturedBody, Exchange};
use crate::headers;
use crate::snapshot::Snapshot;
use crate::upstream::{UpstreamBody, UpstreamResponseBody};

/// `X-Request-Id`: kept when the client sent one, generated for matched requests otherwise,
/// so an event and the IAM's logs can be matched up.
pub static X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// Bytes of each body kept of an unmatched call copied for learn mode (at most
/// `capture_limit`): enough for the shapes of an API's JSON, little for a download.
pub const LEARN_CAPTURE_LIMIT: usize = 64 * 1024;

/// What every connection's service shares.
pub struct ProxyShared {
    /// The current config snapshot; swapped whole by reloads.
    pub runtime: Arc<ArcSwap<Snapshot>>,
    /// Where finished matched exchanges go (bounded; never awaited).
    pub exchanges: HandoffSender,
    /// Client connections open over all workers, against `client.max_connections`.
    pub connections: Arc<ConnectionCount>,
    /// Learn mode (fixed at start): every exchange is copied and handed off, matched or not,
    /// for the learner on the event path. Off, unmatched traffic is a plain pass-through.
    pub learn: bool,
}

/// The per-connection service: shared state plus who the client is.
#[derive(Clone)]
pub struct ProxyService {
    shared: Arc<ProxyShared>,
    /// The client's IP as text (for `X-Forwarded-For` and events), formatted once per
    /// connection.
    client_ip: Option<HeaderValue>,
    /// `X-Forwarded-Proto`: `http`, or `https` on the TLS listener.
    proto: &'static HeaderValue,
    /// The connection's activity, for its head and idle timeouts (`watch`).
    activity: Arc<Activity>,
}

impl ProxyService {
    /// A service for one connection from `remote` that arrived over `proto` (`http`, or
    /// `https` on the TLS listener), reporting its requests to the connection's `activity`.
    pub fn new(
        shared: Arc<ProxyShared>,
        remote: SocketAddr,
        proto: &'static HeaderValue,
        activity: Arc<Activity>,
    ) -> Self {
        ProxyService {
            shared,
            client_ip: headers::ip_value(remote.ip()),
            proto,
            activity,
        }
    }
}

impl tower::Service<Request<Incoming>> for ProxyService {
    type Response = Response<WatchedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<WatchedBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let runtime = self.shared.runtime.load_full();
        let sink = self.shared.exchanges.clone();
        let in_flight = self.activity.request();
        let learn = self.shared.learn;
        Box::pin(forward(
            runtime,
            sink,
            learn,
            self.client_ip.clone(),
            self.proto,
            req,
            in_flight,
        ))
    }
}

/// Classifies one request, runs it through the phases, and counts its response by route and
/// status class (pre-registered counters: an index and an atomic add).
async fn forward(
    rt: Arc<Snapshot>,
    sink: HandoffSender,
    learn: bool,
    client_ip: Option<HeaderValue>,
    proto: &'static HeaderValue,
    req: Request<Incoming>,
    in_flight: InFlight,
) -> Result<Response<WatchedBody>, Infallible> {
    let route = rt.routes.classify(req.method(), req.uri().path());
    let counters = rt
        .proxy_counters
        .select(route.as_ref().map(|r| r.entry), req.method());
    let resp = phases(&rt, route, sink, learn, client_ip, proto, req).await;
    counters.record(resp.status().as_u16());
    Ok(resp.map(|body| WatchedBody::new(body, in_flight)))
}

/// The phases in order, for a request `route` says is matched or not; returns the IAM's
/// response, or userhook's own when a phase fails.
async fn phases(
    rt: &Arc<Snapshot>,
    route: Option<RouteMatch>,
    sink: HandoffSender,
    learn: bool,
    client_ip: Option<HeaderValue>,
    proto: &'static HeaderValue,
    mut req: Request<Incoming>,
) -> Response<ClientBody> {
    let upgrade = headers::wants_upgrade(req.headers());
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();

    // 0. Heads refused at the edge (Host rules, CONNECT, a path that dodges detection by an
    //    encoded slash): nothing is sent.
    if let Some(refusal) = edge::refusal(&parts) {
        return ProxyError::Refused(refusal).respond(parts.uri.path());
    }
    if route.is_none()
        && rt
            .routes
            .dodges_by_encoded_slash(&parts.method, parts.uri.path())
    {
        return ProxyError::Refused(edge::Refusal::EncodedSlash).respond(parts.uri.path());
    }
    if let Some(length) = body.size_hint().exact().filter(|n| *n > rt.max_body_bytes) {
        return ProxyError::TooLarge(length).respond(parts.uri.path());
    }

    // 1. Request id and the exchange's copy (matched only; in learn mode every request is
    //    copied, an unmatched one without a generated id).
    let matched = match route {
        Some(route) => Some(request_filter(route, &mut parts)),
        None if learn => Some(learn_copy(&parts)),
        None => None,
    };

    // 2. The upstream request.
    let client_uri = match upstream_request_head(rt, &mut parts, upgrade, client_ip.as_ref(), proto)
    {
        Ok(client_uri) => client_uri,
        Err(e) => return e.respond(parts.uri.path()),
    };
    let limit = match &matched {
        Some(m) if m.route.is_none() => rt.capture_limit.min(LEARN_CAPTURE_LIMIT),
        _ => rt.capture_limit,
    };
    let (body, request_slot) =
        upstream_request_body(rt, body, matched.is_some() && !upgrade, limit);

    // 3. The exchange with the IAM.
    let mut resp = match send_upstream(rt, Request::from_parts(parts, body)).await {
        Ok(resp) => resp,
        Err(e) => return e.respond(client_uri.path()),
    };

    // 4. The response, head then body.
    response_filter(&mut resp, downstream_upgrade);
    let (parts, body) = resp.into_parts();
    let pending = matched.map(|matched| PendingExchange {
        exchange: matched.into_exchange(client_uri, &parts, client_ip),
        request_slot,
        sink,
        snapshot: rt.clone(),
    });
    match response_body(rt, body, parts.status, pending, limit).await {
        Ok(body) => Response::from_parts(parts, body),
        // Counted and logged (rate-limited) where the wait ended; no path is logged.
        Err(e) => e.respond(""),
    }
}

/// What phase 1 keeps of a matched request for its exchange.
struct Matched {
    /// `None`: an unmatched request copied for learn mode only.
    route: Option<RouteMatch>,
    method: Method,
    /// The client's headers as received, plus `X-Request-Id` if userhook generated it.
    headers: HeaderMap,
    /// As received or generated.
    request_id: HeaderValue,
}

impl Matched {
    /// The exchange as known once the response head is in; the taps fill in the bodies.
    fn into_exchange(
        self,
        uri: Uri,
        response: &http::response::Parts,
        remote_ip: Option<HeaderValue>,
    ) -> Exchange {
        Exchange {
            route: self.route,
            method: self.method,
            uri,
            request_headers: self.headers,
            request_body: CapturedBody::default(),
            status: response.status,
            response_headers: response.headers.clone(),
            response_body: CapturedBody::default(),
            remote_ip,
            request_id: self.request_id,
            durable: None,
        }
    }
}

/// Phase 1, request id: runs for a matched request only, right after classification and
/// before anything is sent. May add `X-Request-Id` to the request when the client sent
/// none; copies the method and the headers (with that id) for the exchange. An unmatched
/// request skips it: nothing is copied or generated.
fn request_filter(route: RouteMatch, parts: &mut request::Parts) -> Matched {
    let request_id = match parts.headers.get(&X_REQUEST_ID) {
        Some(v) => v.clone(),
        None => {
            let id = generated_request_id();
            parts.headers.insert(X_REQUEST_ID.clone(), id.clone());
            id
        }
    };
    Matched {
        route: Some(route),
        method: parts.method.clone(),
        headers: parts.headers.clone(),
        request_id,
    }
}

/// Phase 1 in learn mode, for an unmatched request: the copy for the learner, and nothing
/// changed on the request (no `X-Request-Id` is generated, so the IAM sees exactly what it
/// saw without userhook).
fn learn_copy(parts: &request::Parts) -> Matched {
    Matched {
        route: None,
        method: parts.method.clone(),
        headers: parts.headers.clone(),
        request_id: parts
            .headers
            .get(&X_REQUEST_ID)
            .cloned()
            .unwrap_or(HeaderValue::from_static("")),
    }
}

/// Phase 2, the upstream request's head: runs for every request, after phase 1's copy, so
/// the exchange keeps the headers as the client sent them. Rewrites the target for the IAM
/// (returning the client's own URI), the version (HTTP/1.1), and the headers: HTTP/2
/// cookies joined, hop-by-hop headers removed (`Upgrade` kept for a protocol switch),
/// `X-Forwarded-*` appended, `Host` set. Fails only when the target cannot be joined to the
/// upstream's base path (400), before anything is sent.
fn upstream_request_head(
    rt: &Snapshot,
    parts: &mut request::Parts,
    upgrade: bool,
    client_ip: Option<&HeaderValue>,
    proto: &'static HeaderValue,
) -> Result<Uri, ProxyError> {
    let uri = rt
        .upstream
        .uri_for(parts.uri.path_and_query())
        .map_err(ProxyError::BadTarget)?;
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
    headers::append_forwarded(&mut parts.headers, client_ip, proto, client_host.as_ref());
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
    parts.version = Version::HTTP_11;
    Ok(std::mem::replace(&mut parts.uri, uri))
}

/// Phase 2, the upstream request's body: runs after the head, never fails, never reads a
/// byte. With `tap` (a matched request that is not a protocol switch) the body is wrapped so
/// a bounded copy lands in the returned slot as it streams; otherwise it passes as it is.
fn upstream_request_body(
    rt: &Snapshot,
    body: Incoming,
    tap: bool,
    limit: usize,
) -> (UpstreamBody, Option<Arc<RequestCaptureSlot>>) {
    if !tap {
        return (
            UpstreamBody::plain(body, rt.body_timeout, rt.max_body_bytes),
            None,
        );
    }
    let slot = Arc::new(RequestCaptureSlot::default());
    let tapped = RequestTap::new(body, limit, slot.clone());
    (
        UpstreamBody::tapped(tapped, rt.body_timeout, rt.max_body_bytes),
        Some(slot),
    )
}

/// Phase 3, the exchange: runs once the request is built, and is the only phase that waits
/// on the IAM. Connecting, writing the request and reading the response head must all end
/// within `timeouts.upstream` (a 504 otherwise); a failure is a 502. A small body is read
/// whole first, outside that time and before an IAM connection is taken; a request body the
/// client stalls (`client.body_timeout`) or breaks is the client's 408 or 400. Changes
/// nothing: the request goes as phase 2 left it (the client may retry it on a fresh
/// connection when a pooled one turns out stale) and the response comes back as the IAM
/// sent it.
async fn send_upstream(
    rt: &Snapshot,
    request: Request<UpstreamBody>,
) -> Result<Response<UpstreamResponseBody>, ProxyError> {
    Ok(rt.client.send(request, rt.upstream_timeout).await?)
}

/// Phase 4, the response head: runs once the IAM's final head is in, for every response.
/// Removes hop-by-hop headers and answers in HTTP/1.1 (RFC 9110 6.2; hyper downgrades for
/// 1.0 clients itself). On `101 Switching Protocols` to a client that asked for it, starts
/// the tunnel that joins the two upgraded connections and keeps `Upgrade`. Status and the
/// other headers pass unchanged.
fn response_filter(
    resp: &mut Response<UpstreamResponseBody>,
    downstream_upgrade: Option<OnUpgrade>,
) {
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        if let Some(downstream) = downstream_upgrade {
            let upstream = hyper::upgrade::on(&mut *resp);
            tokio::spawn(tunnel(downstream, upstream));
        }
    }
    headers::strip_hop_by_hop(resp.headers_mut(), headers::Hop::Response, switching);
    *resp.version_mut() = Version::HTTP_11;
}

/// Phase 4, the response body: runs last, after the head is final. Unmatched (`pending` is
/// `None`): the body passes as it is. Matched: the body is wrapped in the response tap,
/// which copies it and hands the exchange off when it is done with (in strict mode holding
/// its end until the event is durable). A matched strict response that has no body to hold
/// (HEAD, 204, 304, or empty) is handed off here and waited for: its head is what is held
/// back, and when the event is not confirmed durable the client gets a 503
/// (`ProxyError::NotDurable`) instead of a success it could not rely on. Never changes a byte
/// of the body.
async fn response_body(
    rt: &Snapshot,
    body: UpstreamResponseBody,
    status: StatusCode,
    pending: Option<PendingExchange>,
    limit: usize,
) -> Result<ClientBody, ProxyError> {
    let Some(pending) = pending else {
        return Ok(ClientBody::Plain(body));
    };
    // No body will be polled for HEAD, 204, 304 or an empty body.
    // Strict mode holds only what can be an event: never an unmatched call copied for learn.
    let strict = rt.strict && pending.exchange.route.is_some();
    let bodiless = pending.exchange.method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || body.is_end_stream();
    if strict && bodiless {
        let ended = CapturedBody {
            bytes: bytes::Bytes::new(),
            truncated: false,
        };
        if let Err(reason) = pending.hand_off_durable(ended).await {
            return Err(ProxyError::NotDurable { reason, status });
        }
        return Ok(ClientBody::Plain(body));
    }
    Ok(ClientBody::Tapped(Box::new(ResponseTap::new(
        body, limit, pending, strict,
    ))))
}

/// A fresh UUIDv7 as a header value. One allocation, shared by the forwarded header, the
/// exchange's copy of the headers and the exchange's id.
fn generated_request_id() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    crate::ids::now_v7().hyphenated().encode_lower(&mut text);
    match HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(text)) {
        Ok(v) => v,
        // Unreachable: hex digits and hyphens are valid header text.
        Err(_) => HeaderValue::from_static(""),
    }
}

/// Joins the client's and the IAM's upgraded connections (WebSocket) until either closes.
async fn tunnel(downstream: OnUpgrade, upstream: OnUpgrade) {
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
