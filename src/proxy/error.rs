//! Turning upstream failures into responses, in exactly one place.
//!
//! The client gets a short JSON body that says what went wrong on the proxy's side, never
//! internals (addresses, stack traces); the log line carries the detail.

use http::{header, HeaderValue, Response, StatusCode};

use super::body::ClientBody;
use crate::upstream::UpstreamError;

/// Why the upstream IAM could not answer.
#[derive(Debug)]
pub enum ProxyError {
    /// No connection could be made (refused, DNS, TLS handshake, connect timeout).
    Unreachable(String),
    /// Connected, but the exchange failed (reset, malformed response).
    Broken(String),
    /// No response headers within `timeouts.upstream`.
    Timeout(std::time::Duration),
}

impl ProxyError {
    /// Sorts an upstream failure into unreachable (never connected) or broken.
    pub fn from_upstream(e: UpstreamError) -> Self {
        if e.is_connect() {
            ProxyError::Unreachable(error_chain(&e))
        } else {
            ProxyError::Broken(error_chain(&e))
        }
    }

    /// 502 for unreachable or broken, 504 for too slow.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Unreachable(_) | ProxyError::Broken(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `kind` label this failure counts under.
    pub fn metric_kind(&self) -> crate::metrics::UpstreamFailure {
        use crate::metrics::UpstreamFailure;
        match self {
            ProxyError::Unreachable(_) => UpstreamFailure::Unreachable,
            ProxyError::Broken(_) => UpstreamFailure::Broken,
            ProxyError::Timeout(_) => UpstreamFailure::Timeout,
        }
    }

    /// A stable, machine-readable code for the JSON body and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::Unreachable(_) => "upstream_unreachable",
            ProxyError::Broken(_) => "upstream_error",
            ProxyError::Timeout(_) => "upstream_timeout",
        }
    }

    /// What the log line says.
    pub fn detail(&self) -> String {
        match self {
            ProxyError::Unreachable(d) | ProxyError::Broken(d) => d.clone(),
            ProxyError::Timeout(t) => format!(
                "no response headers within {}",
                humantime::format_duration(*t)
            ),
        }
    }

    /// The response the client receives.
    pub fn into_response(self) -> Response<ClientBody> {
        let message = match self {
            ProxyError::Unreachable(_) => "the identity service could not be reached",
            ProxyError::Broken(_) => {
                "the identity service closed the connection or sent an invalid response"
            }
            ProxyError::Timeout(_) => "the identity service did not answer in time",
        };
        let body = format!(r#"{{"error":"{}","message":"{}"}}"#, self.code(), message);
        let mut resp = Response::new(ClientBody::full(body));
        *resp.status_mut() = self.status();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// "outer: inner: innermost" — hyper wraps the useful part (e.g. "Connection refused") deep down.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
