//! The common exchange with a plain-HTTP IAM, driven inline by the request's own task.
//!
//! hyper's client runs each connection as a task of its own: a request crosses to it over a
//! channel, the response comes back over another, and every body frame costs two more task
//! wake-ups. For the requests a user-management API mostly sees — a small body of known
//! length, or none — this module writes the request in one `write` and reads the response on
//! the proxied request's own task, the way nginx does it. Anything else (TLS, upgrades,
//! bodies of unknown or large size) stays on hyper's client.
//!
//! Response framing follows RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304;
//! `Transfer-Encoding: chunked` (with trailers) before `Content-Length`; otherwise the body
//! runs to the end of the connection, which is then not reused.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::body::{BoxError, UpstreamBody};
use super::pool::{self, Reusable};

/// Request bodies up to this size (with a known length) are sent inline; larger ones stream
/// through hyper's client.
pub const MAX_INLINE_BODY: u64 = 64 * 1024;

/// Response heads larger than this are refused (hyper's own default is larger, but no IAM
/// sends 64 KiB of headers).
const MAX_HEAD: usize = 64 * 1024;

/// Headers per response head, as hyper allows.
const MAX_HEADERS: usize = 100;

/// A chunk-size line (with extensions) or trailer line longer than this is refused.
const MAX_LINE: usize = 8 * 1024;

/// Trailer fields and bytes accepted after a chunked body, as hyper's client allows.
const MAX_TRAILER_FIELDS: usize = 100;
const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 8 * 1024;

/// Headers a response map has room for (see `parse_head`): a browser's dozen or so plus
/// `X-Forwarded-*` and `X-Request-Id`.
const REUSED_MAP_CAPACITY: usize = 16;

/// A plain TCP connection to the IAM with what has been read but not used yet.
#[derive(Debug)]
pub struct DirectConn {
    io: TcpStream,
    buf: BytesMut,
}

impl Reusable for DirectConn {
    fn is_dead(&mut self) -> bool {
        // An idle connection has nothing to say: readable means closed (or garbage sent).
        // This reads the readiness the event loop already recorded; no system call.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(self.io.poll_read_ready(&mut cx), Poll::Ready(_))
    }

    fn is_busy(&self) -> bool {
        false
    }
}

/// True when `req` can take the inline path: a body of known length up to
/// [`MAX_INLINE_BODY`], and no protocol switch.
pub fn eligible(req: &Request<UpstreamBody>) -> bool {
    req.body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= MAX_INLINE_BODY)
        && !req.headers().contains_key(header::UPGRADE)
        && req.method() != Method::CONNECT
}

/// Why an inline exchange failed, and whether it may be tried again on a fresh connection.
#[derive(Debug)]
pub struct DirectError {
    /// The cause, for the log line.
    pub error: BoxError,
    /// The request cannot have been acted on (it was not written, or the reused
    /// connection closed before a byte of response and the method is idempotent).
    pub retryable: bool,
}

/// A request ready to write: its head plus every body byte the client has already sent, and
/// the rest of the body, if any, still to come.
pub struct Outgoing {
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
    pub async fn encode(req: Request<UpstreamBody>) -> Result<Outgoing, BoxError> {
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
            return Err(short_body(declared, remaining));
        }
        Ok(Outgoing {
            method: parts.method,
            bytes,
            rest,
            remaining,
        })
    }

    /// Writes the request: the encoded bytes, then whatever is left of the body as it comes.
    async fn write_to(&mut self, io: &mut TcpStream) -> Result<(), BoxError> {
        io.write_all(&self.bytes).await?;
        let Some(body) = self.rest.as_mut() else {
            return Ok(());
        };
        let declared = self.remaining;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                self.remaining = take(self.remaining, data.len())?;
                io.write_all(&data).await?;
            }
        }
        if self.remaining != 0 {
            return Err(short_body(declared, self.remaining));
        }
        Ok(())
    }

    /// The whole request is in hand and can be written again on another connection.
    fn replayable(&self) -> bool {
        self.rest.is_none()
    }
}

/// `remaining` after `n` more body bytes; an error when the client sends more than it said.
fn take(remaining: u64, n: usize) -> Result<u64, BoxError> {
    remaining
        .checked_sub(n as u64)
        .ok_or_else(|| "the request body is longer than its Content-Length".into())
}

fn short_body(declared: u64, missing: u64) -> BoxError {
    format!("the request body ended {missing} bytes short of the {declared} announced").into()
}

/// Dials the IAM at `host:port`: every resolved address in turn, each within `timeout`.
pub async fn connect(host: &str, port: u16, timeout: Duration) -> Result<DirectConn, BoxError> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last: Option<io::Error> = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(io)) => {
                io.set_nodelay(true)?;
                return Ok(DirectConn {
                    io,
                    buf: BytesMut::with_capacity(READ_CHUNK),
                });
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {addr} timed out"),
                ))
            }
        }
    }
    Err(match last {
        Some(e) => format!("cannot connect to {host}:{port}: {e}").into(),
        None => format!("{host} resolved to no address").into(),
    })
}

/// Sends the encoded request on `conn` and reads the response head; the body is read as the
/// returned response's body is polled.
pub async fn exchange(
    mut conn: DirectConn,
    reused: bool,
    request: &mut Outgoing,
    connector: u64,
) -> Result<Response<DirectBody>, DirectError> {
    let replayable = request.replayable();
    if let Err(e) = request.write_to(&mut conn.io).await {
        // A failed write means the IAM did not receive the whole request; a reused
        // connection (likely closed while idle) is worth another try if we still have it all.
        return Err(DirectError {
            error: format!("sending the request to the IAM: {e}").into(),
            retryable: reused && replayable,
        });
    }
    let method = &request.method;
    let idempotent = matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    );
    loop {
        match parse_head(&mut conn.buf) {
            Ok(Some(head)) if head.status.is_informational() => {
                if head.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(fatal("the IAM switched protocols without being asked"));
                }
                // 100 Continue, 103 Early Hints: the final answer follows.
                continue;
            }
            Ok(Some(head)) => return respond(conn, head, method, connector).map_err(fatal),
            Ok(None) => {}
            Err(e) => return Err(fatal(format!("the IAM's response head is malformed: {e}"))),
        }
        if conn.buf.len() >= MAX_HEAD {
            return Err(fatal("response head too large"));
        }
        let nothing_yet = conn.buf.is_empty();
        match read_more(&mut conn).await {
            Ok(0) => {
                return Err(DirectError {
                    error: "connection closed before the response".into(),
                    retryable: reused && replayable && nothing_yet && idempotent,
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(DirectError {
                    error: format!("reading the IAM's response: {e}").into(),
                    retryable: reused && replayable && nothing_yet && idempotent,
                })
            }
        }
    }
}

fn fatal(e: impl Into<BoxError>) -> DirectError {
    DirectError {
        error: e.into(),
        retryable: false,
    }
}

async fn read_more(conn: &mut DirectConn) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_read_more(conn, cx)).await
}

fn poll_read_more(conn: &mut DirectConn, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    conn.buf.reserve(READ_CHUNK);
    // tokio's own read: a short read marks the socket drained, so an idle pooled connection
    // is not mistaken for a readable (closed) one.
    tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf)
}

/// A parsed response head.
struct Head {
    status: StatusCode,
    version: Version,
    reason: Option<Bytes>,
    headers: HeaderMap,
}

/// Parses a response head off the front of `buf`; `None` when more bytes are needed.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, BoxError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let code = parsed.code.ok_or("response without a status")?;
    let status = StatusCode::from_u16(code)?;
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let canonical = status.canonical_reason().unwrap_or("");
    let reason_text = parsed.reason.unwrap_or("");
    let base = buf.as_ptr() as usize;
    let reason_at = (reason_text != canonical && !reason_text.is_empty())
        .then(|| (reason_text.as_ptr() as usize - base, reason_text.len()));
    let mut spans = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let value_at = h.value.as_ptr() as usize - base;
        spans.push((
            HeaderName::from_bytes(h.name.as_bytes())?,
            value_at,
            h.value.len(),
        ));
    }
    // The head's bytes are shared by the header values: no copy per value.
    let head = buf.split_to(len).freeze();
    // hyper's server reuses the map of each response it writes for the next request on the
    // connection: room for a client's usual headers plus the ones the proxy adds spares that
    // request a regrowth.
    let mut headers = HeaderMap::with_capacity(spans.len().max(REUSED_MAP_CAPACITY));
    for (name, at, n) in spans {
        let value = HeaderValue::from_maybe_shared(head.slice(at..at + n))?;
        headers.append(name, value);
    }
    Ok(Some(Head {
        status,
        version,
        reason: reason_at.map(|(at, n)| head.slice(at..at + n)),
        headers,
    }))
}

/// How the response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (or its end has been reached).
    Done,
    /// The body broke off (I/O error, bad framing, early close): over, but not complete, so
    /// nothing downstream may take what came for the whole body.
    Failed,
    /// This many bytes left.
    Length(u64),
    /// Chunked: in the given state.
    Chunked(Chunk),
    /// Until the IAM closes the connection.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line.
    Trailers,
}

fn respond(
    conn: DirectConn,
    head: Head,
    method: &Method,
    connector: u64,
) -> Result<Response<DirectBody>, BoxError> {
    let Head {
        status,
        version,
        reason,
        headers,
    } = head;
    if version == Version::HTTP_10 && headers.contains_key(header::TRANSFER_ENCODING) {
        // HTTP/1.0 has no chunked coding: such a response cannot be framed safely.
        return Err("HTTP/1.0 response with Transfer-Encoding".into());
    }
    let (framing, mut reusable) = framing_of(&headers, status, method)?;
    reusable &=
        version == Version::HTTP_11 && !crate::headers::connection_has_token(&headers, "close");
    let mut resp = Response::new(DirectBody {
        conn: Some(conn),
        framing,
        reusable,
        connector,
        trailers: None,
        trailer_bytes: 0,
    });
    *resp.status_mut() = status;
    *resp.version_mut() = version;
    *resp.headers_mut() = headers;
    if let Some(reason) = reason {
        if let Ok(r) = hyper::ext::ReasonPhrase::try_from(reason) {
            resp.extensions_mut().insert(r);
        }
    }
    resp.body_mut().finish_if_done();
    Ok(resp)
}

/// The framing of a response to `method`, and whether the connection can carry another
/// exchange after it. Unreadable or conflicting lengths are an error, as in hyper: guessing
/// where such a body ends could pass the client bytes of the next response.
fn framing_of(
    headers: &HeaderMap,
    status: StatusCode,
    method: &Method,
) -> Result<(Framing, bool), BoxError> {
    if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Framing::Done, true));
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        let last = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|t| !t.is_empty());
        return Ok(match last {
            Some(t) if t.eq_ignore_ascii_case("chunked") => (Framing::Chunked(Chunk::Size), true),
            _ => (Framing::Close, false),
        });
    }
    let mut length: Option<u64> = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        for part in v.to_str().unwrap_or("x").split(',') {
            match (digits(part.trim()), length) {
                (Ok(n), None) => length = Some(n),
                (Ok(n), Some(m)) if n == m => {}
                _ => return Err("invalid or conflicting Content-Length in the response".into()),
            }
        }
    }
    Ok(match length {
        Some(0) => (Framing::Done, true),
        Some(n) => (Framing::Length(n), true),
        None => (Framing::Close, false),
    })
}

/// A Content-Length value: ASCII digits only (no sign, as hyper reads it).
fn digits(text: &str) -> Result<u64, ()> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    text.parse().map_err(|_| ())
}

/// The IAM's response body, read from the socket as the client takes it. The connection
/// goes back to this thread's pool when the body has been read to its end.
#[derive(Debug)]
pub struct DirectBody {
    conn: Option<DirectConn>,
    framing: Framing,
    reusable: bool,
    connector: u64,
    trailers: Option<HeaderMap>,
    /// Trailer bytes read so far (bounded like the fields' count).
    trailer_bytes: usize,
}

impl DirectBody {
    /// At the end: the connection is pooled when it can carry another exchange.
    fn finish_if_done(&mut self) {
        if self.framing != Framing::Done {
            return;
        }
        if let Some(conn) = self.conn.take() {
            // Bytes beyond the response mean the stream is out of step: do not reuse.
            if self.reusable && conn.buf.is_empty() {
                pool::release_direct(self.connector, conn);
            }
        }
    }

    /// The body broke off: the connection cannot be reused and the end never came.
    fn fail(&mut self) {
        self.conn = None;
        self.framing = Framing::Failed;
    }

    /// The next frame that can be made from buffered bytes, or `None` when more must be read.
    fn next_buffered(&mut self) -> Result<Option<Frame<Bytes>>, BoxError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        let buf = &mut conn.buf;
        loop {
            match self.framing {
                Framing::Done | Framing::Failed => return Ok(None),
                Framing::Length(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.framing = if left == 0 {
                        Framing::Done
                    } else {
                        Framing::Length(left)
                    };
                    return Ok(Some(Frame::data(data)));
                }
                Framing::Close => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = buf.len();
                    return Ok(Some(Frame::data(buf.split_to(n).freeze())));
                }
                Framing::Chunked(Chunk::Size) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(None);
                    };
                    let size = chunk_size(&line)?;
                    self.framing = Framing::Chunked(if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    });
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(Some(Frame::data(data)));
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    buf.advance(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailers) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(None);
                    };
                    if line.is_empty() {
                        self.framing = Framing::Done;
                        return Ok(self.trailers.take().map(Frame::trailers));
                    }
                    self.trailer_bytes += line.len() + 2;
                    let trailers = self.trailers.get_or_insert_with(HeaderMap::new);
                    if trailers.len() >= MAX_TRAILER_FIELDS {
                        return Err("too many trailer fields".into());
                    }
                    if self.trailer_bytes > MAX_TRAILER_BYTES {
                        return Err("trailer section too large".into());
                    }
                    let text = std::str::from_utf8(&line).map_err(|_| "trailer is not text")?;
                    let (name, value) = text.split_once(':').ok_or("malformed trailer")?;
                    let name = HeaderName::from_bytes(name.as_bytes())?;
                    let value = HeaderValue::from_str(value.trim())?;
                    trailers.try_append(name, value)?;
                }
            }
        }
    }
}

/// One CRLF-terminated line off the front of `buf` (without the CRLF).
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, BoxError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(at) => {
            let line = buf.split_to(at).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err("chunk line too long".into()),
        None => Ok(None),
    }
}

/// The size of a chunk-size line (hex, extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<u64, BoxError> {
    let size = line.split(|b| *b == b';').next().unwrap_or(&[]);
    // Whitespace may precede the extensions; the size itself is hex digits only.
    let size = size.trim_ascii_end();
    if size.is_empty() || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err("bad chunk size".into());
    }
    let significant = size
        .iter()
        .position(|b| *b != b'0')
        .map_or(&[][..], |i| &size[i..]);
    if significant.len() > 15 {
        return Err("chunk size too large".into());
    }
    if significant.is_empty() {
        return Ok(0);
    }
    let hex = std::str::from_utf8(significant).map_err(|_| "bad chunk size")?;
    Ok(u64::from_str_radix(hex, 16).map_err(|_| "bad chunk size")?)
}

impl Body for DirectBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match this.next_buffered() {
                Ok(Some(frame)) => {
                    this.finish_if_done();
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(None) if this.framing == Framing::Done => {
                    this.finish_if_done();
                    return Poll::Ready(None);
                }
                Ok(None) => {}
                Err(e) => {
                    this.fail();
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match poll_read_more(conn, cx) {
                Poll::Ready(Ok(0)) if this.framing == Framing::Close => {
                    this.conn = None;
                    this.framing = Framing::Done;
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => {
                    this.fail();
                    return Poll::Ready(Some(Err(
                        "the IAM closed the connection before the body ended".into(),
                    )));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.fail();
                    return Poll::Ready(Some(Err(
                        format!("reading the IAM's response body: {e}").into()
                    )));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Trailers are handed out in the step that reaches `Done`.
        self.framing == Framing::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Done => SizeHint::with_exact(0),
            Framing::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::map as headers;
    use std::time::Instant;

    #[test]
    fn framing_follows_rfc_9112_order() {
        let ok = StatusCode::OK;
        let get = Method::GET;
        let framing = |pairs: &[(&str, &str)], status, method: &Method| {
            framing_of(&headers(pairs), status, method).ok()
        };
        assert_eq!(
            framing(&[("content-length", "5")], ok, &Method::HEAD),
            Some((Framing::Done, true))
        );
        assert_eq!(
            framing(&[], StatusCode::NO_CONTENT, &get),
            Some((Framing::Done, true))
        );
        assert_eq!(
            framing(&[("content-length", "9")], StatusCode::NOT_MODIFIED, &get),
            Some((Framing::Done, true))
        );
        // Transfer-Encoding wins over Content-Length; only a final `chunked` is chunked.
        assert_eq!(
            framing(
                &[
                    ("transfer-encoding", "gzip, Chunked"),
                    ("content-length", "3")
                ],
                ok,
                &get
            ),
            Some((Framing::Chunked(Chunk::Size), true))
        );
        assert_eq!(
            framing(&[("transfer-encoding", "gzip")], ok, &get),
            Some((Framing::Close, false))
        );
        assert_eq!(
            framing(
                &[("content-length", "7, 7"), ("content-length", "7")],
                ok,
                &get
            ),
            Some((Framing::Length(7), true))
        );
        assert_eq!(
            framing(&[("content-length", "0")], ok, &get),
            Some((Framing::Done, true))
        );
        assert_eq!(framing(&[], ok, &get), Some((Framing::Close, false)));
        for bad in ["7, 8", "-1", "x", "", "+5"] {
            assert_eq!(framing(&[("content-length", bad)], ok, &get), None, "{bad}");
        }
    }

    #[test]
    fn chunk_sizes_are_hex_with_extensions_ignored() {
        assert_eq!(chunk_size(b"1a").ok(), Some(26));
        assert_eq!(chunk_size(b"FF;name=value").ok(), Some(255));
        assert_eq!(chunk_size(b"0").ok(), Some(0));
        assert_eq!(chunk_size(b"00000000000000010").ok(), Some(16));
        assert_eq!(chunk_size(b"a \t;ext").ok(), Some(10));
        for bad in [
            &b""[..],
            b"g",
            b";x",
            b"1234567890abcdef0",
            b"-1",
            b"+5",
            b" 5",
        ] {
            assert!(chunk_size(bad).is_err(), "{bad:?}");
        }
    }

    /// A body in `framing` over a real loopback socket, with `buffered` already read.
    async fn body_with(framing: Framing, buffered: &[u8]) -> (DirectBody, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let io = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (peer, _) = listener.accept().await.expect("accept");
        let body = DirectBody {
            conn: Some(DirectConn {
                io,
                buf: BytesMut::from(buffered),
            }),
            framing,
            reusable: false,
            connector: 0,
            trailers: None,
            trailer_bytes: 0,
        };
        (body, peer)
    }

    #[tokio::test]
    async fn trailers_are_read_and_floods_refused() {
        let (mut body, _peer) = body_with(
            Framing::Chunked(Chunk::Size),
            b"2;x=1\r\nok\r\n0\r\nx-a: 1\r\nx-b: 2\r\n\r\n",
        )
        .await;
        let data = body.next_buffered().expect("valid").expect("data");
        assert_eq!(data.into_data().ok().as_deref(), Some(&b"ok"[..]));
        let trailers = body.next_buffered().expect("valid").expect("trailers");
        let trailers = trailers.into_trailers().expect("a trailers frame");
        assert_eq!(trailers, headers(&[("x-a", "1"), ("x-b", "2")]));
        assert_eq!(body.framing, Framing::Done);

        let mut flood = b"0\r\n".to_vec();
        for i in 0..=MAX_TRAILER_FIELDS {
            flood.extend_from_slice(format!("x-t{i}: v\r\n").as_bytes());
        }
        flood.extend_from_slice(b"\r\n");
        let (mut body, _peer) = body_with(Framing::Chunked(Chunk::Size), &flood).await;
        let err = body.next_buffered().expect_err("a flood is an error");
        assert_eq!(err.to_string(), "too many trailer fields");

        let mut big = b"0\r\n".to_vec();
        let value = "v".repeat(MAX_TRAILER_BYTES);
        big.extend_from_slice(format!("x-big: {value}\r\n\r\n").as_bytes());
        let (mut body, _peer) = body_with(Framing::Chunked(Chunk::Size), &big).await;
        let err = body.next_buffered().expect_err("too large is an error");
        assert_eq!(err.to_string(), "trailer section too large");
    }

    #[tokio::test]
    async fn an_idle_connection_the_iam_closed_reads_as_dead() {
        let (body, peer) = body_with(Framing::Done, b"").await;
        let mut conn = body.conn.expect("connection");
        // Wait for the event loop to see the idle connection as it is (nothing to read).
        tokio::task::yield_now().await;
        assert!(!conn.is_dead(), "open and silent: reusable");
        drop(peer);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !conn.is_dead() {
            assert!(
                Instant::now() < deadline,
                "a closed connection never read as dead"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_body_cut_short_fails_and_never_reads_as_ended() {
        let (mut body, peer) = body_with(Framing::Length(10), b"short").await;
        drop(peer);
        let first = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let data = first.expect("a frame").expect("data").into_data().ok();
        assert_eq!(data.as_deref(), Some(&b"short"[..]));
        assert!(!body.is_end_stream());
        let second = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let err = second.expect("an error frame").expect_err("cut short");
        assert_eq!(
            err.to_string(),
            "the IAM closed the connection before the body ended"
        );
        assert_eq!(body.framing, Framing::Failed);
        assert!(!body.is_end_stream(), "a failed body is not a complete one");
        assert_eq!(body.size_hint().exact(), None);
        let after = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(after.is_none());
    }

    #[test]
    fn heads_parse_once_complete_and_share_their_bytes() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 201 Made It\r\nX-A: 1\r\nx-a: 2\r\n"[..]);
        assert!(parse_head(&mut buf).expect("partial is fine").is_none());
        buf.extend_from_slice(b"Content-Length: 2\r\n\r\nokNEXT");
        let head = parse_head(&mut buf).expect("valid").expect("complete");
        assert_eq!(head.status, StatusCode::CREATED);
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.reason.as_deref(), Some(&b"Made It"[..]));
        let a: Vec<&[u8]> = head
            .headers
            .get_all("x-a")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(a, vec![&b"1"[..], &b"2"[..]]);
        // The body and whatever follows stay in the buffer.
        assert_eq!(&buf[..], b"okNEXT");

        let mut canonical = BytesMut::from(&b"HTTP/1.0 404 Not Found\r\n\r\n"[..]);
        let head = parse_head(&mut canonical)
            .expect("valid")
            .expect("complete");
        assert_eq!((head.version, head.reason), (Version::HTTP_10, None));

        let mut garbage = BytesMut::from(&b"HTTP/1.1 abc\r\n\r\n"[..]);
        assert!(parse_head(&mut garbage).is_err());
    }
}
