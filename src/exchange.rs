//! The hand-off from the proxy to detection: one matched request/response pair, captured.
//!
//! The proxy builds an [`Exchange`] only for requests whose method and path matched a rule,
//! when the response body has been passed on (or abandoned). It travels, with the config
//! snapshot that served it, over the bounded hand-off queue (`events::handoff`) to the
//! extractor task. Plain data: it imports nothing of the layers above, and nothing in here is
//! ever awaited on the request path.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

/// A body as far as it was kept.
#[derive(Debug, Clone, Default)]
pub struct CapturedBody {
    /// The first `capture_limit` bytes, as sent on the wire (maybe compressed).
    pub bytes: Bytes,
    /// More bytes passed through than were kept, or the body ended early (client or
    /// upstream went away): extraction works from a prefix.
    pub truncated: bool,
}

/// One matched request and its response.
#[derive(Debug)]
pub struct Exchange {
    /// Which rules' method and path matched, with the path parameters; `None` for an
    /// unmatched call copied only for learn mode (it is learned from, never detected).
    pub route: Option<RouteMatch>,
    /// The request method.
    pub method: Method,
    /// The URI the client sent (path and query, as received).
    pub uri: Uri,
    /// The headers the client sent, before hop-by-hop removal.
    pub request_headers: HeaderMap,
    /// The request body as far as it was copied.
    pub request_body: CapturedBody,
    /// The IAM's response status.
    pub status: StatusCode,
    /// The headers the IAM answered with.
    pub response_headers: HeaderMap,
    /// The response body as far as it was copied.
    pub response_body: CapturedBody,
    /// The client's IP as text, formatted once per client connection.
    pub remote_ip: Option<HeaderValue>,
    /// `X-Request-Id`, as received or generated (kept as the header value: sharing it costs
    /// nothing on the request path; the event makes text of it).
    pub request_id: HeaderValue,
    /// `delivery.guarantee: strict`: the proxy holds the end of the response until this is
    /// answered. [`Durability::Committed`] releases it; anything else, and a sender dropped
    /// unanswered (the exchange never reached detection), fails it.
    pub durable: Option<tokio::sync::oneshot::Sender<Durability>>,
}

/// What the event path answers a `strict` response held for its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every delivery of the event is committed to disk, or the exchange meant no event (or
    /// no webhook wanted it): the response may be released as it is.
    Committed,
    /// The event's deliveries are not on disk: the response must not be released as if they
    /// were.
    Unconfirmed(Unconfirmed),
}

/// Why a `strict` response's event was not confirmed durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unconfirmed {
    /// No answer within the strict wait limit.
    Timeout,
    /// The spool refused a delivery of the event (full, overloaded, faulted, stopping).
    Refused,
    /// The commit holding the event's deliveries failed (a full or failing disk).
    CommitFailed,
    /// The exchange never reached detection (the hand-off queue was full or closed).
    NotExamined,
}

impl Unconfirmed {
    /// Every reason, so each metric series exists (at 0) from the start.
    pub const ALL: [Unconfirmed; 4] = [
        Unconfirmed::Timeout,
        Unconfirmed::Refused,
        Unconfirmed::CommitFailed,
        Unconfirmed::NotExamined,
    ];

    /// The metric label and the word in the client's error body.
    pub fn as_str(self) -> &'static str {
        match self {
            Unconfirmed::Timeout => "timeout",
            Unconfirmed::Refused => "refused",
            Unconfirmed::CommitFailed => "commit_failed",
            Unconfirmed::NotExamined => "not_examined",
        }
    }
}

/// Method and path matched some rules; the outcome is decided when the response is known.
/// Produced by `detect::RouteTable::classify` on the request path, read by its `resolve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// Index of the matched path entry in the table.
    pub entry: usize,
    /// Path parameters in path order, as sent (percent-encoded), e.g. `("id", "42")`.
    pub params: Vec<(String, String)>,
}
