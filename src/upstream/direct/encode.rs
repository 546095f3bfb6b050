//! Writing a request to a plain-HTTP IAM: head and body in one buffer, one `write`.
//!
//! The body (known length, at most [`MAX_INLINE_BODY`]) is read whole before an IAM
//! connection is taken, as nginx buffers small bodies: a slow client then holds only its
//! own connection, never one to the IAM, and its upload time is not counted as the IAM's.
//! Never: read from the socket, buffer past [`MAX_INLINE_BODY`], or send a body that
//! disagrees with its announced length.

use http::header;
use http::{Method, Request};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::error::{RequestBodyError, SendError};
use crate::upstream::body::UpstreamBody;

/// Request bodies up to this size (with a known length) are sent inline; larger ones stream
/// through hyper's client.
pub(super) const MAX_INLINE_BODY: u64 = 64 * 1024;

/// A request ready to write: its head and its whole body, which can be sent again as is on
/// another connection.
pub(super) struct Outgoing {
    /// The request method (it decides whether the response has a body, and retries).
    pub method: Method,
    /// Head and body, written with one system call.
    bytes: Vec<u8>,
}

impl Outgoing {
    /// Encodes `req` (origin-form target, headers already prepared), reading its body to the
    /// end. A body that is already in (the usual case) costs no wait; a slow one is waited
    /// for within `client.body_timeout` (the body's own timer), before any IAM connection.
    pub(super) async fn encode(req: Request<UpstreamBody>) -> Result<Outgoing, RequestBodyError> {
        let (parts, mut body) = req.into_parts();
        let declared = body.size_hint().exact().unwrap_or(0);
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        // Sized once: cookies and tokens easily outgrow a fixed guess.
        let head_len = parts.method.as_str().len()
            + target.len()
            + parts
                .headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 4)
                .sum::<usize>()
            + 64;
        let mut bytes = Vec::with_capacity(head_len + declared.min(MAX_INLINE_BODY) as usize);
        bytes.extend_from_slice(parts.method.as_str().as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(target.as_bytes());
        bytes.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &parts.headers {
            bytes.extend_from_slice(name.as_str().as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        // A body the client framed some other way (HTTP/2 data frames) needs its length said.
        if declared > 0 && !parts.headers.contains_key(header::CONTENT_LENGTH) {
            bytes.extend_from_slice(b"content-length: ");
            bytes.extend_from_slice(declared.to_string().as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        let mut remaining = declared;
        while !(remaining == 0 && body.is_end_stream()) {
            let Some(frame) = body.frame().await else {
                break;
            };
            // Trailers cannot travel with a Content-Length body; hyper drops them too.
            if let Ok(data) = frame?.into_data() {
                remaining = take(remaining, data.len())?;
                bytes.extend_from_slice(&data);
            }
        }
        if remaining != 0 {
            return Err(RequestBodyError::Short {
                declared,
                missing: remaining,
            });
        }
        Ok(Outgoing {
            method: parts.method,
            bytes,
        })
    }

    /// Writes the request.
    pub(super) async fn write_to(&mut self, io: &mut TcpStream) -> Result<(), SendError> {
        io.write_all(&self.bytes).await?;
        Ok(())
    }

    /// The whole request is in hand and can be written again on another connection: always,
    /// since the body is read whole first.
    pub(super) fn replayable(&self) -> bool {
        true
    }
}

/// `remaining` after `n` more body bytes; an error when the client sends more than it said.
fn take(remaining: u64, n: usize) -> Result<u64, RequestBodyError> {
    remaining
        .checked_sub(n as u64)
        .ok_or(RequestBodyError::TooLong)
}
