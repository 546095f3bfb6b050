//! The one place the proxy writes a response of its own: a request refused or an IAM that did
//! not answer, as a status and a short JSON body.
//!
//! The client learns what went wrong on the proxy's side as a stable code and a fixed
//! sentence, never internals (addresses, causes, paths); the log line carries the detail,
//! with the path redacted. Never: forward an error's text to the client, or decide anything
//! by an error's text.

use std::time::Duration;

use http::{header, HeaderValue, Response, StatusCode};

use super::body::ClientBody;
use super::edge::{log_client_fault, Refusal};
use crate::exchange::Unconfirmed;
use crate::metrics::{ClientFault, UpstreamFailure};
use crate::upstream::UpstreamError;

/// Why userhook answered a request itself instead of passing on the IAM's response.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The client's request target cannot be joined to the upstream's base path: a 400. The
    /// client's doing, so it is neither counted as an upstream failure nor logged.
    #[error("the request target cannot be forwarded")]
    BadTarget(#[source] http::Error),
    /// The request head breaks a rule at the edge (`Host`, `CONNECT`): a 400 before
    /// anything is sent, counted as the client's.
    #[error("request refused at the edge: {0}")]
    Refused(Refusal),
    /// The IAM could not be reached, or the exchange with it failed: a 502.
    #[error(transparent)]
    Upstream(UpstreamError),
    /// The client's request body stalled (408) or broke its framing or length (400): the
    /// client's fault, counted in `client_errors_total`, never as the IAM's.
    #[error("the client's request body")]
    ClientBody {
        /// Which of the client's faults.
        fault: ClientFault,
        /// What the exchange reported.
        source: UpstreamError,
    },
    /// The request's `Content-Length` is over `client.max_body_bytes`: a 413 before anything
    /// is sent, counted as the client's.
    #[error("a request body of {0} bytes is over client.max_body_bytes")]
    TooLarge(u64),
    /// No response head within `timeouts.upstream`: a 504.
    #[error("no response headers within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// `strict` mode: the IAM answered a matched call without a body (204, HEAD, 304, empty),
    /// but its event was not confirmed durable, so the answer is not passed on as if it were:
    /// a 503. The change may have been applied by the IAM.
    #[error("strict mode: the event of an IAM answer {status} is not durable ({})", .reason.as_str())]
    NotDurable {
        /// Why the event was not confirmed.
        reason: Unconfirmed,
        /// What the IAM answered (withheld).
        status: StatusCode,
    },
}

impl From<UpstreamError> for ProxyError {
    /// Sorts an exchange's failure by whose it is: the client's body, or the IAM.
    fn from(e: UpstreamError) -> Self {
        match (e.client_fault(), e) {
            (Some(fault), source) => ProxyError::ClientBody { fault, source },
            (None, UpstreamError::Timeout(limit)) => ProxyError::Timeout(limit),
            (None, e) => ProxyError::Upstream(e),
        }
    }
}

impl ProxyError {
    /// 400 for a refused request or a broken body, 408 for a stalled body, 502 for an
    /// unreachable or broken IAM, 504 for a slow one.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadTarget(_) | ProxyError::Refused(_) => StatusCode::BAD_REQUEST,
            ProxyError::ClientBody {
                fault: ClientFault::BodyTimeout,
                ..
            } => StatusCode::REQUEST_TIMEOUT,
            ProxyError::ClientBody {
                fault: ClientFault::BodyTooLarge,
                ..
            }
            | ProxyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::ClientBody { .. } => StatusCode::BAD_REQUEST,
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::NotDurable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `kind` an IAM failure counts under; `None` for the client's own mistakes.
    pub fn metric_kind(&self) -> Option<UpstreamFailure> {
        match self {
            ProxyError::BadTarget(_)
            | ProxyError::Refused(_)
            | ProxyError::ClientBody { .. }
            | ProxyError::TooLarge(_)
            | ProxyError::NotDurable { .. } => None,
            ProxyError::Upstream(e) if e.is_connect() => Some(UpstreamFailure::Unreachable),
            ProxyError::Upstream(_) => Some(UpstreamFailure::Broken),
            ProxyError::Timeout(_) => Some(UpstreamFailure::Timeout),
        }
    }

    /// A stable, machine-readable code for the JSON body and the log line.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::BadTarget(_) | ProxyError::Refused(_) => "bad_request",
            ProxyError::ClientBody {
                fault: ClientFault::BodyTimeout,
                ..
            } => "request_timeout",
            ProxyError::ClientBody {
                fault: ClientFault::BodyTooLarge,
                ..
            }
            | ProxyError::TooLarge(_) => "request_too_large",
            ProxyError::ClientBody { .. } => "bad_request_body",
            ProxyError::Upstream(e) if e.is_connect() => "upstream_unreachable",
            ProxyError::Upstream(_) => "upstream_error",
            ProxyError::Timeout(_) => "upstream_timeout",
            ProxyError::NotDurable { .. } => "event_not_durable",
        }
    }

    /// What the client is told: fixed text, whatever the cause.
    fn message(&self) -> &'static str {
        match self {
            ProxyError::BadTarget(_) => "the request target cannot be forwarded",
            ProxyError::Refused(Refusal::Connect) => "CONNECT is not supported",
            ProxyError::Refused(Refusal::EncodedSlash) => {
                "the path's encoded slash (%2F) makes it ambiguous"
            }
            ProxyError::Refused(_) => {
                "the request has a missing, empty, repeated or conflicting Host"
            }
            ProxyError::ClientBody {
                fault: ClientFault::BodyTimeout,
                ..
            } => "the request body did not arrive in time",
            ProxyError::ClientBody {
                fault: ClientFault::BodyTooLarge,
                ..
            }
            | ProxyError::TooLarge(_) => "the request body is larger than this proxy accepts",
            ProxyError::ClientBody { .. } => "the request body is malformed or incomplete",
            ProxyError::Upstream(e) if e.is_connect() => {
                "the identity service could not be reached"
            }
            ProxyError::Upstream(_) => {
                "the identity service closed the connection or sent an invalid response"
            }
            ProxyError::Timeout(_) => "the identity service did not answer in time",
            ProxyError::NotDurable { .. } => {
                "the identity service answered, but userhook could not record the change durably (delivery.guarantee: strict); the change may have been applied"
            }
        }
    }

    /// What the log line says: this error and each of its causes, outermost first ("outer:
    /// inner: innermost"), since hyper keeps the useful part (e.g. "Connection refused") deep
    /// down.
    pub fn detail(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            source = cause.source();
        }
        out
    }

    /// Counts and logs an IAM failure for the request to `client_path` (redacted: reset and
    /// invite links can carry a token in the path), then gives the response the client
    /// receives. A client's broken or stalled body is counted as the client's and logged at
    /// most once a second; a refused request is only answered.
    pub fn respond(self, client_path: &str) -> Response<ClientBody> {
        match &self {
            ProxyError::ClientBody { fault, .. } => {
                crate::metrics::client_error(*fault);
                log_client_fault(*fault, &self.detail());
            }
            ProxyError::Refused(_) => {
                crate::metrics::client_error(ClientFault::BadRequest);
                log_client_fault(ClientFault::BadRequest, &self.detail());
            }
            ProxyError::TooLarge(_) => {
                crate::metrics::client_error(ClientFault::BodyTooLarge);
                log_client_fault(ClientFault::BodyTooLarge, &self.detail());
            }
            _ => {}
        }
        if let Some(kind) = self.metric_kind() {
            crate::metrics::upstream_error(kind);
            let path = crate::redact::redact_url(client_path);
            tracing::warn!(error = self.code(), detail = %self.detail(), %path, "upstream request failed");
        }
        self.into_response()
    }

    /// The response the client receives: the status and `{"error":code,"message":...}`.
    fn into_response(self) -> Response<ClientBody> {
        let body = format!(
            r#"{{"error":"{}","message":"{}"}}"#,
            self.code(),
            self.message()
        );
        let mut resp = Response::new(ClientBody::full(body));
        *resp.status_mut() = self.status();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let ProxyError::NotDurable { status, .. } = &self {
            // What the IAM said, so a client (or an operator) can tell what was withheld.
            resp.headers_mut().insert(
                "x-userhook-upstream-status",
                HeaderValue::from(status.as_u16()),
            );
        }
        if matches!(
            self,
            ProxyError::ClientBody { .. } | ProxyError::TooLarge(_)
        ) {
            // The rest of a broken or stalled body cannot be told from the next request.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn answer(err: ProxyError) -> (StatusCode, String) {
        let resp = err.respond("/users/reset/secret-token");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn each_refusal_and_failure_has_its_status_and_fixed_text() {
        let bad = http::Uri::builder()
            .path_and_query("\n")
            .build()
            .expect_err("not a path");
        assert_eq!(
            answer(ProxyError::BadTarget(bad)).await,
            (
                StatusCode::BAD_REQUEST,
                r#"{"error":"bad_request","message":"the request target cannot be forwarded"}"#
                    .to_owned()
            )
        );
        let timeout = ProxyError::Timeout(Duration::from_millis(300));
        assert_eq!(timeout.detail(), "no response headers within 300ms");
        assert_eq!(
            answer(timeout).await,
            (
                StatusCode::GATEWAY_TIMEOUT,
                r#"{"error":"upstream_timeout","message":"the identity service did not answer in time"}"#
                    .to_owned()
            )
        );
        let closed = ProxyError::from(UpstreamError::Closed { stale: false });
        assert_eq!(closed.metric_kind(), Some(UpstreamFailure::Broken));
        let (status, body) = answer(closed).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(body.contains(r#""error":"upstream_error""#), "{body}");

        let held = ProxyError::NotDurable {
            reason: Unconfirmed::Refused,
            status: StatusCode::NO_CONTENT,
        };
        assert_eq!(held.metric_kind(), None);
        let resp = held.respond("/users/1");
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["x-userhook-upstream-status"], "204");
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(
            &body[..],
            br#"{"error":"event_not_durable","message":"the identity service answered, but userhook could not record the change durably (delivery.guarantee: strict); the change may have been applied"}"#
        );
    }

    #[test]
    fn the_log_detail_walks_the_causes_once_and_the_body_names_none() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = ProxyError::from(UpstreamError::Read {
            source: refused,
            stale: false,
        });
        assert_eq!(err.detail(), "reading the IAM's response: refused");
        assert_eq!(err.code(), "upstream_error");
        assert!(!err.message().contains("refused"));
    }
}
