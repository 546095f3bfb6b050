//! Writing a request to a plain-HTTP IAM: head and the body bytes at hand in one buffer, one
//! `write`; the rest of a slow body streamed after it.
//!
//! The body is never waited for while encoding (only frames already delivered are taken),
//! and never buffered past [`MAX_INLINE_BODY`]. Never: read from the socket, or send a body
//! that disagrees with its announced length.

use std::pin::Pin;
use std::task::Poll;

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

/// A request ready to write: its head plus every body byte the client has already sent, and
/// the rest of the body, if any, still to come.
pub(super) struct Outgoing {
    /// The request method (it decides whether the response has a body, and retries).
    pub method: Method,
    /// Head and the body bytes at hand, written with one system call.
    bytes: Vec<u8>,
    /// The body's remainder; `None` when `bytes` is the whole request, which can then be
    /// sent again as is.
    rest: Option<UpstreamBody>,
    /// Body bytes still to come from `rest`.
    remaining: u64,
}

impl Outgoing {
    /// Encodes `req` (origin-form target, headers already prepared). The body is never
    /// waited for here: only frames the client has already delivered are taken, so a small
    /// body usually travels with its head and a slow one streams with backpressure.
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
        let mut rest = None;
        loop {
            if remaining == 0 && body.is_end_stream() {
                break;
            }
            // One poll: a frame already received, the end, or "not yet" (then stream the rest).
            let polled =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
            match polled {
                Poll::Ready(Some(frame)) => {
                    // Trailers cannot travel with a Content-Length body; hyper drops them too.
                    if let Ok(data) = frame?.into_data() {
                        remaining = take(remaining, data.len())?;
                        bytes.extend_from_slice(&data);
                    }
                }
                Poll::Ready(None) => break,
                Poll::Pending => {
                    rest = Some(body);
                    break;
                }
            }
        }
        if rest.is_none() && remaining != 0 {
            return Err(RequestBodyError::Short {
                declared,
                missing: remaining,
            });
        }
        Ok(Outgoing {
            method: parts.method,
            bytes,
            rest,
            remaining,
        })
    }

    /// Writes the request: the encoded bytes, then whatever is left of the body as it comes.
    pub(super) async fn write_to(&mut self, io: &mut TcpStream) -> Result<(), SendError> {
        io.write_all(&self.bytes).await?;
        let Some(body) = self.rest.as_mut() else {
            return Ok(());
        };
        let declared = self.remaining;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(RequestBodyError::Client)?.into_data() {
                self.remaining = take(self.remaining, data.len())?;
                io.write_all(&data).await?;
            }
        }
        if self.remaining != 0 {
            return Err(RequestBodyError::Short {
                declared,
                missing: self.remaining,
            }
            .into());
        }
        Ok(())
    }

    /// The whole request is in hand and can be written again on another connection.
    pub(super) fn replayable(&self) -> bool {
        self.rest.is_none()
    }
}

/// `remaining` after `n` more body bytes; an error when the client sends more than it said.
fn take(remaining: u64, n: usize) -> Result<u64, RequestBodyError> {
    remaining
        .checked_sub(n as u64)
        .ok_or(RequestBodyError::TooLong)
}
