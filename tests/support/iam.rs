//! Fake IAM helpers: canned answers shaped like the real APIs (Keycloak, SCIM 2.0, DCE 5.0),
//! JWT builders, response compression, and event assertions.
//!
//! Every event read through [`next_event`] is also checked for the canary password, so no
//! test can see a credential leak into an event and pass.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::broadcast;
use userhook::event::UserEvent;

use super::{full, send, FakeUpstream, Recorded, TestBody};

/// The password every test sends; it must never appear in an event.
pub(crate) const CANARY: &str = "CANARY-PW-123";

/// One answer of a fake IAM, kept so the test can compare it with what the client received.
#[derive(Debug, Clone)]
pub(crate) struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Canned {
    /// An answer with `status`, no headers and an empty body.
    pub(crate) fn status(status: u16) -> Canned {
        Canned {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body as given (maybe compressed).
    pub(crate) fn body(mut self, body: impl Into<Bytes>) -> Canned {
        self.body = body.into();
        self
    }

    /// A JSON body with its content type.
    pub(crate) fn json(self, content_type: &str, v: &Value) -> Canned {
        self.header("content-type", content_type)
            .body(serde_json::to_vec(v).expect("json"))
    }

    /// The HTTP response.
    pub(crate) fn response(&self) -> Response<TestBody> {
        let mut r = Response::new(full(self.body.clone()));
        *r.status_mut() = StatusCode::from_u16(self.status).expect("status");
        for (k, v) in &self.headers {
            r.headers_mut().append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                v.parse().expect("header value"),
            );
        }
        r
    }
}

/// A fake IAM answering each recorded request with `answer`.
pub(crate) async fn fake_iam<F>(answer: F) -> FakeUpstream
where
    F: Fn(&Recorded) -> Canned + Send + Sync + 'static,
{
    let answer = Arc::new(answer);
    FakeUpstream::start(move |rec| {
        let answer = answer.clone();
        async move { answer(&rec).response() }
    })
    .await
}

/// The path of a recorded request, without its query.
pub(crate) fn path_of(r: &Recorded) -> &str {
    r.uri.split('?').next().unwrap_or_default()
}

/// The request body as text (forms and JSON).
pub(crate) fn body_text(r: &Recorded) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// What the client received.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The client got exactly the IAM's status, headers and body bytes.
    pub(crate) fn assert_is(&self, canned: &Canned) {
        assert_eq!(self.status.as_u16(), canned.status, "status");
        assert_eq!(self.body, canned.body, "body bytes differ from the IAM's");
        for (k, v) in &canned.headers {
            let got: Vec<_> = self
                .headers
                .get_all(k.as_str())
                .iter()
                .map(|h| h.to_str().expect("text header"))
                .collect();
            assert!(got.contains(&v.as_str()), "header {k}: {got:?}, want {v}");
        }
    }
}

/// Sends one request to `base` + `path` and collects the reply.
pub(crate) async fn call(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (status, headers, body) = send(b.body(full(body.into())).expect("request")).await;
    Reply {
        status,
        headers,
        body,
    }
}

/// JSON request headers.
pub(crate) const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

/// Form request headers (OIDC endpoints).
pub(crate) const FORM: &[(&str, &str)] = &[("content-type", "application/x-www-form-urlencoded")];

/// The next event, within a deadline; panics if it carries the canary password.
pub(crate) async fn next_event(rx: &mut broadcast::Receiver<UserEvent>) -> UserEvent {
    let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10s")
        .expect("event channel open and not lagging");
    assert_no_canary(&ev);
    ev
}

/// The serialised event does not contain the canary password.
pub(crate) fn assert_no_canary(ev: &UserEvent) {
    let text = serde_json::to_string(ev).expect("serialise event");
    assert!(!text.contains(CANARY), "canary password leaked: {text}");
}

/// A user field map from pairs.
pub(crate) fn user(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Asserts an event's type, action, request summary, user fields (exactly) and truncation.
pub(crate) fn assert_event(
    ev: &UserEvent,
    event_type: &str,
    (method, path, status): (&str, &str, u16),
    fields: &[(&str, &str)],
    truncated: bool,
) {
    assert_eq!(ev.event_type, event_type, "type of {ev:?}");
    assert_eq!(
        format!("user.{}", ev.action.as_str()),
        event_type,
        "action of {ev:?}"
    );
    assert_eq!(ev.object, "user");
    assert_eq!(ev.request.method, method, "request.method of {ev:?}");
    assert_eq!(ev.request.path, path, "request.path of {ev:?}");
    assert_eq!(ev.request.status, status, "request.status of {ev:?}");
    assert_eq!(ev.request.remote_addr, "127.0.0.1");
    assert_eq!(ev.user, user(fields), "user fields of {event_type}");
    assert_eq!(ev.truncated, truncated, "truncated flag of {ev:?}");
    assert_eq!(ev.id.len(), 36, "UUID id");
    assert!(ev.occurred_at.ends_with('Z'), "RFC 3339 UTC");
}

/// A compact JWS with a realistic header and an (unverified) RS256-sized signature.
pub(crate) fn jwt(claims: &Value) -> String {
    let header =
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"Xr3lCj0nYj3kPZb3u3jY"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims"));
    let signature: Vec<u8> = (0..256u32).map(|i| (i * 37 % 251) as u8).collect();
    format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// gzip-compressed bytes.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// brotli-compressed bytes.
pub(crate) fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(data).expect("brotli");
    }
    out
}

/// The last request the IAM saw with this method and path.
pub(crate) fn last_seen(up: &FakeUpstream, method: &str, path: &str) -> Recorded {
    up.requests()
        .into_iter()
        .rev()
        .find(|r| r.method.as_str() == method && path_of(r) == path)
        .unwrap_or_else(|| panic!("the IAM never saw {method} {path}"))
}

/// The `X-Request-Id` the IAM saw on a request.
pub(crate) fn request_id_seen(r: &Recorded) -> Option<String> {
    r.headers
        .get("x-request-id")
        .map(|v| v.to_str().expect("text").to_owned())
}
