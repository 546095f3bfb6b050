//! The operator's port: `/healthz`, `/readyz`, `/metrics` (Prometheus text), `/config` (the
//! running config, secrets redacted, with its load time and hash), `/reloads`, `/deliveries`,
//! the spool's `/spool` and `/deadletters…` (see `spool`), webhook health `/webhooks` (see
//! `webhooks`), learn mode's proposed rules (`/learn`), `/events`, the live feed as
//! Server-Sent Events (see `events`), and the web console at `/` (see `console`). Bound to
//! localhost by default because it shows internals; every request but the probes and the
//! console's files passes the checks of `access` first (bearer token, Host, cross-site). Never
//! proxies anything, never blocks the proxy, and never shows a secret (the config view goes
//! through [`crate::config::summary::redacted`]).

mod access;
mod console;
mod events;
mod respond;
mod spool;
mod state;
mod webhooks;

pub use state::AdminState;

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::shutdown::ShutdownSignal;
use respond::{error, json};

/// Longest a readiness probe waits for the upstream's TCP handshake.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves the admin API until shutdown.
pub async fn serve(listener: TcpListener, state: AdminState, mut signal: ShutdownSignal) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = signal.recv() => return,
        };
        let state = state.clone();
        let conn = builder
            .serve_connection(
                TokioIo::new(stream),
                service_fn({
                    let signal = signal.clone();
                    move |req| {
                        let state = state.clone();
                        let signal = signal.clone();
                        async move { Ok::<_, Infallible>(respond(&state, req, signal).await) }
                    }
                }),
            )
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

/// The streams first (their body is not a whole one), then [`route`] for everything else.
async fn respond(
    state: &AdminState,
    req: Request<Incoming>,
    signal: ShutdownSignal,
) -> Response<events::AdminBody> {
    use http_body_util::Either;
    let read = req.method() == Method::GET || req.method() == Method::HEAD;
    if read && req.uri().path() == "/events" {
        if let Err(refusal) = guard(state, &req) {
            return refusal.response().map(Either::Left);
        }
        let head = req.method() == Method::HEAD;
        let feed = state.deliveries.live();
        return events::stream(feed, req.uri().query(), req.headers(), head, signal);
    }
    if read && console::is_console(req.uri().path()) {
        // No data in these files: `access` lets them through without the token.
        if let Err(refusal) = guard(state, &req) {
            return refusal.response().map(Either::Left);
        }
        return console::asset(req.uri().path()).map(Either::Left);
    }
    route(state, req).await.map(Either::Left)
}

async fn route(state: &AdminState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Err(refusal) = guard(state, &req) {
        return refusal.response();
    }
    if req.method() == Method::POST {
        if let Some(rest) = req.uri().path().strip_prefix("/webhooks/") {
            return webhooks::post(state, rest);
        }
        return match req.uri().path() {
            "/deadletters/replay" => spool::replay(state, req.uri().query()).await,
            "/deadletters/purge" => spool::purge(state).await,
            "/deliveries/resend" => spool::resend(state, req.uri().query()).await,
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST is only for /deadletters/replay, /deadletters/purge, /deliveries/resend and /webhooks/{name}/resume",
            ),
        };
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported");
    }
    let path = req.uri().path();
    if let Some(id) = path.strip_prefix("/deadletters/") {
        return spool::show(state, id).await;
    }
    match path {
        "/deadletters" => spool::list(state, req.uri().query()).await,
        "/spool" => spool::stats(state),
        "/webhooks" => webhooks::list(state),
        "/healthz" => json(StatusCode::OK, r#"{"status":"ok"}"#.into()),
        "/readyz" => readyz(state).await,
        "/metrics" => {
            // Spool gauges are read from the store at scrape time, not on every change.
            let spool = state.deliveries.stats();
            crate::metrics::spool_usage(spool.pending as usize, spool.payload_bytes);
            crate::metrics::dead_letters_kept(spool.dead_letters as usize);
            state.deliveries.publish_webhook_gauges();
            metrics()
        }
        "/config" => config(state),
        "/reloads" => {
            let r = &state.reloads;
            json(
                StatusCode::OK,
                format!(
                    r#"{{"applied":{},"rejected":{},"unchanged":{}}}"#,
                    r.applied.load(Ordering::Relaxed),
                    r.rejected.load(Ordering::Relaxed),
                    r.unchanged.load(Ordering::Relaxed)
                ),
            )
        }
        "/deliveries" => deliveries(state, req.uri().query()),
        "/learn" => learn(state).await,
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `GET /learn`: the proposal so far, also written to `learn.out` (on the blocking pool), so
/// the file on disk is what the operator just read; a failed write is logged, the answer is
/// still the proposal.
async fn learn(state: &AdminState) -> Response<Full<Bytes>> {
    let Some(learner) = state.learner.clone() else {
        return error(StatusCode::NOT_FOUND, "learn mode is off");
    };
    let text = learner.proposal();
    let copy = text.clone();
    match tokio::task::spawn_blocking(move || learner.write_text(&copy)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "learn: GET /learn could not write the file"),
        Err(e) => tracing::warn!(error = %e, "learn: the writer task failed"),
    }
    respond::yaml(text)
}

/// The access checks of [`access`], with the running config's token and the bound address.
fn guard(state: &AdminState, req: &Request<Incoming>) -> Result<(), access::Refusal> {
    let rt = state.runtime.load();
    let policy = access::Policy {
        token: rt.file.admin.token.as_deref(),
        bound: state.bound,
    };
    let kind = access::Kind::of(req.method(), req.uri().path());
    let authority = req.uri().authority().map(|a| a.as_str());
    access::check(&policy, kind, req.headers(), authority)
}

/// `/deliveries[?status=successful|failed|retrying]`: the last outcomes, newest first.
fn deliveries(state: &AdminState, query: Option<&str>) -> Response<Full<Bytes>> {
    let mut status = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("status", value)) => match value.parse::<crate::events::DeliveryStatus>() {
                Ok(s) => status = Some(s),
                Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
            },
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "unknown parameter; expected status=successful|failed|retrying",
                )
            }
        }
    }
    let records = state.deliveries.records(status);
    respond::ok(&serde_json::json!({ "deliveries": records }))
}

/// `/metrics`: every metric in the Prometheus text format.
fn metrics() -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(crate::metrics::render())));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `/config`: the running config with secrets redacted, when it was loaded and its hash, so
/// an operator can tell which version of the file is live.
fn config(state: &AdminState) -> Response<Full<Bytes>> {
    let rt = state.runtime.load_full();
    let body = serde_json::json!({
        "hash": rt.hash,
        "loaded_at": crate::event::rfc3339_millis(rt.loaded_at),
        "config": crate::config::summary::redacted(&rt.file),
    });
    json(StatusCode::OK, body.to_string())
}

/// Ready means: a config is loaded (always, once running), the IAM accepts TCP connections and
/// the spool can be written (a full or failing disk refuses every delivery).
///
/// A rejected reload is *not* a readiness failure: the previous, valid config keeps serving,
/// and taking the pod out of its Service would turn a typo into an outage. It is reported in
/// the body (`last_reload_rejected`) and in the logs and metrics instead.
async fn readyz(state: &AdminState) -> Response<Full<Bytes>> {
    let rt = state.runtime.load_full();
    let authority = rt.upstream.authority();
    let port = authority
        .port_u16()
        .unwrap_or(if rt.upstream.is_https() { 443 } else { 80 });
    let target = (
        authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
    );
    let probe =
        tokio::time::timeout(READY_PROBE_TIMEOUT, tokio::net::TcpStream::connect(target)).await;
    let reason = match probe {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("upstream {authority} is unreachable: {e}")),
        Err(_) => Some(format!(
            "upstream {authority} did not accept a connection within 1s"
        )),
    };
    // A spool that cannot be written refuses every delivery: not ready, and why.
    let reason = reason.or_else(|| {
        state
            .deliveries
            .spool_fault()
            .map(|e| format!("spool not writable, deliveries are refused: {e}"))
    });
    let last_reload_rejected = state.reloads.last_rejected.load(Ordering::Relaxed);
    match reason {
        None => json(
            StatusCode::OK,
            serde_json::json!({"ready": true, "last_reload_rejected": last_reload_rejected})
                .to_string(),
        ),
        Some(reason) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({
                "ready": false,
                "reason": reason,
                "last_reload_rejected": last_reload_rejected,
            })
            .to_string(),
        ),
    }
}
