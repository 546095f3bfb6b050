//! What can go wrong on the inline client, by step: dialing, the client's request body,
//! writing, the IAM's response head and its body.
//!
//! Each error names its step and keeps its cause as `source()`; its own text never repeats
//! the cause (the proxy's log line walks the chain). None may carry a body byte or a header
//! value: only names of what was wrong.

use std::io;

use http::header::{InvalidHeaderName, InvalidHeaderValue, MaxSizeReached};
use http::status::InvalidStatusCode;

use crate::upstream::body::ClientBodyError;

/// Why no TCP connection to a plain-HTTP IAM could be opened.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}")]
    Resolve {
        /// The configured host.
        host: String,
        /// The resolver's answer.
        source: io::Error,
    },
    /// The host resolved, but to no address at all.
    #[error("{host} resolved to no address")]
    NoAddress {
        /// The configured host.
        host: String,
    },
    /// Every address refused, failed or timed out; `source` is the last attempt's.
    #[error("cannot connect to {host}:{port}")]
    Connect {
        /// The configured host.
        host: String,
        /// The configured port.
        port: u16,
        /// What the last address answered.
        source: io::Error,
    },
    /// Connected, but the socket refused `TCP_NODELAY`.
    #[error(transparent)]
    NoDelay(io::Error),
}

/// Why the client's request body could not be sent as its head announced it.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    /// More bytes came than `Content-Length` said.
    #[error("the request body is longer than its Content-Length")]
    TooLong,
    /// The body ended before the announced length.
    #[error("the request body ended {missing} bytes short of the {declared} announced")]
    Short {
        /// Bytes the head announced.
        declared: u64,
        /// Bytes that never came.
        missing: u64,
    },
    /// Reading the body from the client failed, or the client stopped sending it.
    #[error(transparent)]
    Client(#[from] ClientBodyError),
}

/// Why writing a request to the IAM stopped part-way.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The socket write failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The rest of the client's body did not come as announced.
    #[error(transparent)]
    Body(#[from] RequestBodyError),
}

/// Why the IAM's response cannot be forwarded: guessing where such a response ends could
/// hand the client bytes of the next one.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// The head is not valid HTTP/1.x.
    #[error("the IAM's response head is malformed")]
    Malformed(#[source] MalformedHead),
    /// The head grew past the inline client's limit without ending.
    #[error("response head too large")]
    HeadTooLarge,
    /// `101 Switching Protocols` to a request that asked for no upgrade.
    #[error("the IAM switched protocols without being asked")]
    UnaskedSwitch,
    /// HTTP/1.0 has no chunked coding: such a body cannot be framed safely.
    #[error("HTTP/1.0 response with Transfer-Encoding")]
    Http10TransferEncoding,
    /// `Content-Length` unreadable, or two that disagree.
    #[error("invalid or conflicting Content-Length in the response")]
    ContentLength,
}

/// What exactly is wrong with a response head.
#[derive(Debug, thiserror::Error)]
pub enum MalformedHead {
    /// httparse refused it.
    #[error(transparent)]
    Syntax(#[from] httparse::Error),
    /// A status line without a code.
    #[error("response without a status")]
    NoStatus,
    /// A code outside 100..=999.
    #[error(transparent)]
    Status(#[from] InvalidStatusCode),
    /// A header name http does not accept.
    #[error(transparent)]
    Name(#[from] InvalidHeaderName),
    /// A header value http does not accept.
    #[error(transparent)]
    Value(#[from] InvalidHeaderValue),
}

/// Why the IAM's response body broke off; the connection is then never reused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// A chunk's data was not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    ChunkDataEnd,
    /// A chunk-size or trailer line without its CRLF past the line limit.
    #[error("chunk line too long")]
    LineTooLong,
    /// A chunk size that is not hex digits.
    #[error("bad chunk size")]
    ChunkSize,
    /// A chunk size past 15 hex digits.
    #[error("chunk size too large")]
    ChunkTooLarge,
    /// More trailer fields than the limit.
    #[error("too many trailer fields")]
    TooManyTrailers,
    /// More trailer bytes than the limit.
    #[error("trailer section too large")]
    TrailersTooLarge,
    /// A trailer line that is not UTF-8.
    #[error("trailer is not text")]
    TrailerNotText,
    /// A trailer line without a colon.
    #[error("malformed trailer")]
    MalformedTrailer,
    /// A trailer name http does not accept.
    #[error(transparent)]
    TrailerName(#[from] InvalidHeaderName),
    /// A trailer value http does not accept.
    #[error(transparent)]
    TrailerValue(#[from] InvalidHeaderValue),
    /// The trailer map is full.
    #[error(transparent)]
    TrailerMap(#[from] MaxSizeReached),
    /// The IAM closed the connection before the framing said the body ended.
    #[error("the IAM closed the connection before the body ended")]
    CutShort,
    /// Reading the socket failed.
    #[error("reading the IAM's response body")]
    Read(#[source] io::Error),
}
