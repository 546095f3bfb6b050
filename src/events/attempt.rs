//! One attempt: render the request from the webhook's current config, send it, read the reply.
//!
//! Rendering happens per attempt (a fresh `webhook-timestamp` and signature each time, over the
//! exact bytes sent). Sending never follows redirects (a redirected POST would silently become
//! a GET) and reads at most [`MAX_REPLY_BYTES`] of a reply. Errors never carry the URL: its
//! query may hold a robot key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{header, HeaderMap, HeaderValue, Method};

use super::retry::{parse_retry_after, AttemptResult};
use crate::event::UserEvent;
use crate::template::{EventVars, RenderedUrl, UrlRenderError};
use crate::webhook::Webhook;

/// The most of a reply body read: enough for any robot's verdict and an error excerpt.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// `userhook/<version>`, unless the webhook's headers set their own.
pub const USER_AGENT: &str = concat!("userhook/", env!("CARGO_PKG_VERSION"));

/// A request ready to send: what goes on the wire, byte for byte.
#[derive(Debug, Clone)]
pub struct RenderedRequest {
    /// The webhook's method (POST unless configured otherwise).
    pub method: Method,
    /// Full URL including any key in its query: never log it (see [`RenderedUrl::loggable`]).
    pub url: RenderedUrl,
    /// Content type, user agent, the webhook's own headers, and the `webhook-*` ones.
    pub headers: HeaderMap,
    /// The rendered body, exactly the bytes the signature covers.
    pub body: Vec<u8>,
}

/// What the target answered.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status: the first thing the retry decision looks at.
    pub status: u16,
    /// For `Retry-After`, and for `send-test` to show.
    pub headers: HeaderMap,
    /// At most [`MAX_REPLY_BYTES`].
    pub body: Vec<u8>,
}

/// Renders the request for one attempt of delivery `delivery_id` at Unix time `timestamp`.
/// Fails when the URL cannot be rendered for this event (an empty or dot-segment path
/// variable): sending would reach another URL, so the delivery fails with that reason.
pub fn render(
    webhook: &Webhook,
    delivery_id: &str,
    event: &UserEvent,
    timestamp: i64,
) -> Result<RenderedRequest, UrlRenderError> {
    let vars = EventVars(event);
    let url = webhook.url.render_url(&vars)?;
    let body = webhook.body.render(event);
    Ok(request(webhook, delivery_id, url, body, timestamp, None))
}

/// Renders one digest message: `body` (already rendered and bounded) names `count` events,
/// and `rest` more wait; sent with its own `webhook-id` (`message_id`), signed, and with
/// `webhook-digest-count` / `webhook-digest-rest` so a receiver can tell it from one event.
/// The URL has no per-event variables (the config check makes sure), so `first` only fills
/// it for the rendering's sake.
pub fn render_digest(
    webhook: &Webhook,
    message_id: &str,
    first: Option<&UserEvent>,
    body: Vec<u8>,
    count: usize,
    rest: usize,
    timestamp: i64,
) -> Result<RenderedRequest, UrlRenderError> {
    let url = match first {
        Some(ev) => webhook.url.render_url(&EventVars(ev))?,
        None => webhook
            .url
            .render_url(&std::collections::BTreeMap::<String, String>::new())?,
    };
    Ok(request(
        webhook,
        message_id,
        url,
        body,
        timestamp,
        Some((count, rest)),
    ))
}

/// Renders a message userhook itself sends (an alert about another webhook's health) to
/// `webhook`'s URL, headers and signer; the URL's variables, if any, render empty.
pub fn render_notice(
    webhook: &Webhook,
    message_id: &str,
    body: Vec<u8>,
    timestamp: i64,
) -> Result<RenderedRequest, UrlRenderError> {
    let url = webhook
        .url
        .render_url(&std::collections::BTreeMap::<String, String>::new())?;
    Ok(request(webhook, message_id, url, body, timestamp, None))
}

/// The request around a rendered URL and body: content type, user agent, the webhook's
/// headers, the `webhook-*` ones and the signature over exactly `body`.
fn request(
    webhook: &Webhook,
    delivery_id: &str,
    url: RenderedUrl,
    body: Vec<u8>,
    timestamp: i64,
    digest: Option<(usize, usize)>,
) -> RenderedRequest {
    let mut headers = HeaderMap::with_capacity(webhook.headers.len() + 6);
    headers.insert(header::CONTENT_TYPE, webhook.content_type.clone());
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    for name in webhook.headers.keys() {
        headers.remove(name);
    }
    for (name, value) in &webhook.headers {
        headers.append(name, value.clone());
    }
    // Delivery ids are UUIDs and timestamps digits: both always valid header values.
    if let Ok(v) = HeaderValue::from_str(delivery_id) {
        headers.insert("webhook-id", v);
    }
    headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
    if let Some((count, rest)) = digest {
        headers.insert("webhook-digest-count", HeaderValue::from(count));
        headers.insert("webhook-digest-rest", HeaderValue::from(rest));
    }
    if let Some(signer) = &webhook.signer {
        if let Ok(v) = HeaderValue::from_str(&signer.sign(delivery_id, timestamp, &body)) {
            headers.insert("webhook-signature", v);
        }
    }
    RenderedRequest {
        method: webhook.method.clone(),
        url,
        headers,
        body,
    }
}

/// Unix seconds now, for `webhook-timestamp`.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The webhook HTTP client could not be built (its TLS setup, most likely): nothing can be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct ClientError(String);

/// The shared HTTP client for all webhooks: rustls (ring), pooled connections, no redirects.
pub fn build_client() -> Result<reqwest::Client, ClientError> {
    // Another part (or a test) may have installed it already; either way one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(50))
        .build()
        .map_err(|e| ClientError(chain(&e)))
}

/// Sends one request with a time limit covering connect to the last body byte. Takes the
/// request by value: its headers and body go to the client without a copy.
pub async fn send(
    client: &reqwest::Client,
    request: RenderedRequest,
    timeout: Duration,
) -> Result<Reply, AttemptResult> {
    let url = match request.url {
        RenderedUrl::Valid(url) => url,
        RenderedUrl::Invalid(text) => {
            let reason = reqwest::Url::parse(&text)
                .err()
                .map_or_else(String::new, |e| format!(": {e}"));
            return Err(AttemptResult::Invalid(format!(
                "the rendered URL is invalid{reason}"
            )));
        }
    };
    let builder = client
        .request(request.method, url)
        .headers(request.headers)
        .body(request.body);
    let exchange = async {
        let mut resp = builder.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            let room = MAX_REPLY_BYTES - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_REPLY_BYTES {
                break;
            }
        }
        Ok::<_, reqwest::Error>(Reply {
            status,
            headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(AttemptResult::TimedOut(timeout)),
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) if e.is_timeout() => Err(AttemptResult::TimedOut(timeout)),
        Ok(Err(e)) if e.is_builder() => Err(AttemptResult::Invalid(chain(&e))),
        Ok(Err(e)) => Err(AttemptResult::Transport(chain(&e))),
    }
}

/// The reply as the retry decision sees it.
pub fn result_of(reply: Reply) -> AttemptResult {
    let retry_after = reply
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    AttemptResult::Reply {
        status: reply.status,
        retry_after,
        body: reply.body,
    }
}

/// An error and its causes on one line, without the URL reqwest would otherwise include.
fn chain(e: &reqwest::Error) -> String {
    let mut out = String::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    let mut first = true;
    while let Some(err) = cur {
        let text = if first {
            // reqwest's own message names the URL; keep only its kind.
            let mut s = e.to_string();
            if let Some(i) = s.find(" for url (") {
                s.truncate(i);
            }
            s
        } else {
            err.to_string()
        };
        if !text.is_empty() && !out.ends_with(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        first = false;
        cur = err.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, RequestInfo, UserFields};

    fn webhook(extra: &str) -> std::sync::Arc<Webhook> {
        let text = format!(
            "upstream: http://127.0.0.1:1\nwebhooks:\n  - {{name: a, actions: ['*'], url: 'http://x/u/{{{{$$.ID$$}}}}?k=K', {extra}}}\n"
        );
        let file = crate::config::parse_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let hooks = crate::webhook::Webhooks::compile(&file).unwrap_or_else(|e| panic!("{e:?}"));
        hooks.get("a").expect("a").clone()
    }

    fn event() -> UserEvent {
        let mut f = UserFields::new();
        f.insert("ID".into(), "4 2".into());
        UserEvent::new(1, Action::Created, f, RequestInfo::default(), false)
    }

    #[test]
    fn render_sets_standard_headers_and_signs_the_body() {
        let w = webhook("secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, headers: {X-Source: iam, User-Agent: custom/1}");
        let ev = event();
        let r = render(&w, "msg_1", &ev, 1_700_000_000).expect("renders");
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.url.as_str(), "http://x/u/4%202?k=K");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["user-agent"], "custom/1");
        assert_eq!(r.headers["x-source"], "iam");
        assert_eq!(r.headers["webhook-id"], "msg_1");
        assert_eq!(r.headers["webhook-timestamp"], "1700000000");
        let want = w
            .signer
            .as_ref()
            .expect("signer")
            .sign("msg_1", 1_700_000_000, &r.body);
        assert_eq!(r.headers["webhook-signature"], want.as_str());
        assert!(r.body.starts_with(br#"{"id":"4 2","email":"""#));
    }

    #[test]
    fn unsigned_webhooks_have_no_signature_and_the_default_agent() {
        let w = webhook("method: PUT");
        let r = render(&w, "id", &event(), 5).expect("renders");
        assert_eq!(r.method, Method::PUT);
        assert!(r.headers.get("webhook-signature").is_none());
        assert_eq!(r.headers["user-agent"], USER_AGENT);
        assert!(USER_AGENT.starts_with("userhook/"));
    }

    #[test]
    fn an_event_without_the_path_value_is_not_rendered() {
        // An ID-less event (e.g. its body was not UTF-8) must not go to `http://x/u/?k=K`.
        let w = webhook("method: POST");
        let ev = UserEvent::new(
            1,
            Action::Created,
            UserFields::new(),
            RequestInfo::default(),
            false,
        );
        let e = render(&w, "id", &ev, 5).unwrap_err();
        assert_eq!(e, UrlRenderError::EmptyPathValue("ID".into()));
    }

    #[test]
    fn retry_after_is_read_from_the_reply() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("7"));
        let r = result_of(Reply {
            status: 429,
            headers,
            body: b"x".to_vec(),
        });
        assert_eq!(
            r,
            AttemptResult::Reply {
                status: 429,
                retry_after: Some(Duration::from_secs(7)),
                body: b"x".to_vec()
            }
        );
    }
}
