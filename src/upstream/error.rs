//! Why a request got no response from the IAM, by where it failed, and whether sending it
//! again on another connection can help.
//!
//! The proxy turns these into 502s (`proxy::error`); this module only names them. Each error
//! keeps its cause as `source()` and never repeats it in its own text, so the log line that
//! walks the chain says everything once. Never: carry a body byte or a header value.

use std::io;
use std::time::Duration;

use super::body::ClientBodyError;
use super::direct::error::{DialError, RequestBodyError, ResponseError, SendError};
use crate::metrics::ClientFault;

/// The error of an upstream response body (`Either` boxes either client's) and of hyper's
/// connector: boxed because only an error pays for the box.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request did not get a response from the IAM.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The inline client could not open a TCP connection (DNS, refused, connect timeout).
    #[error(transparent)]
    Dial(#[from] DialError),
    /// hyper's connector could not connect (TCP, the TLS handshake, connect timeout).
    #[error(transparent)]
    Connect(BoxError),
    /// hyper's HTTP/1.1 handshake on a new connection failed.
    #[error(transparent)]
    Handshake(hyper::Error),
    /// hyper's client failed the exchange (reset, malformed response).
    #[error(transparent)]
    Exchange(hyper::Error),
    /// The client's request body broke its own framing before anything was sent.
    #[error(transparent)]
    RequestBody(#[from] RequestBodyError),
    /// Writing the request to the IAM stopped part-way.
    #[error("sending the request to the IAM")]
    Send {
        /// The write's or the body's failure.
        source: SendError,
        /// The connection came from the pool and the whole request is still in hand.
        stale: bool,
    },
    /// The IAM closed the connection before a byte of the response head.
    #[error("connection closed before the response")]
    Closed {
        /// As for `Send`, and nothing of a response had arrived and the method is
        /// idempotent.
        stale: bool,
    },
    /// Reading the response head failed.
    #[error("reading the IAM's response")]
    Read {
        /// The socket's error.
        source: io::Error,
        /// As for `Closed`.
        stale: bool,
    },
    /// The IAM's response head cannot be forwarded safely.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// No response head within `timeouts.upstream`.
    #[error("no response headers within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
}

impl UpstreamError {
    /// True when the failure is explained by a pooled connection the IAM closed while it sat
    /// idle, and the request can be sent again unchanged: the inline client then tries a
    /// fresh connection instead of failing the request. (hyper's client retries on its own
    /// signal, a request it hands back unsent.)
    pub fn retryable(&self) -> bool {
        match self {
            UpstreamError::Send { stale, .. }
            | UpstreamError::Closed { stale }
            | UpstreamError::Read { stale, .. } => *stale,
            _ => false,
        }
    }

    /// The client's part in the failure, when its request body is what broke: it stopped
    /// sending ([`ClientFault::BodyTimeout`]) or broke its framing or length
    /// ([`ClientFault::BadBody`]). `None` means the IAM's side failed.
    pub fn client_fault(&self) -> Option<ClientFault> {
        let body = match self {
            UpstreamError::RequestBody(RequestBodyError::Client(e))
            | UpstreamError::Send {
                source: SendError::Body(RequestBodyError::Client(e)),
                ..
            } => e,
            UpstreamError::RequestBody(_)
            | UpstreamError::Send {
                source: SendError::Body(_),
                ..
            } => return Some(ClientFault::BadBody),
            // hyper's client reports the body it could not read as a "user" error.
            UpstreamError::Exchange(e) if e.is_user() => find_client_body(e)?,
            _ => return None,
        };
        Some(match body {
            ClientBodyError::Stalled(_) => ClientFault::BodyTimeout,
            ClientBodyError::Read(_) => ClientFault::BadBody,
            ClientBodyError::TooLarge(_) => ClientFault::BodyTooLarge,
        })
    }

    /// True when no connection was made at all: the IAM is unreachable, not broken.
    pub fn is_connect(&self) -> bool {
        matches!(self, UpstreamError::Dial(_) | UpstreamError::Connect(_))
    }
}

/// The client body error somewhere in `error`'s causes.
fn find_client_body(error: &hyper::Error) -> Option<&ClientBodyError> {
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        if let Some(body) = e.downcast_ref::<ClientBodyError>() {
            return Some(body);
        }
        cause = e.source();
    }
    None
}
