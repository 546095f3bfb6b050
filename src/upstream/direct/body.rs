//! The IAM's response on the inline client: the head made a `Response`, and its body read
//! from the socket as the client takes it.
//!
//! Frames are cut from the connection's buffer without copying. The connection goes back to
//! this thread's pool the moment the body's last byte has been read, and only then. Never:
//! reuse a connection whose body failed or left bytes over, or call a broken body complete.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, Version};
use http_body::{Body, Frame, SizeHint};

use super::conn::{self, DirectConn};
use super::error::{BodyError, ResponseError};
use super::framing::{chunk_size, framing_of, take_line, Chunk, Framing};
use super::head::Head;

/// Trailer fields and bytes accepted after a chunked body, as hyper's client allows.
const MAX_TRAILER_FIELDS: usize = 100;
const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// The IAM's response body, read from the socket as the client takes it. The connection
/// goes back to this thread's pool when the body has been read to its end.
#[derive(Debug)]
pub struct DirectBody {
    conn: Option<DirectConn>,
    decoder: Decoder,
    reusable: bool,
    connector: u64,
}

/// Cuts a body's frames off the front of a buffer by its framing: the body's syntax without
/// the socket, so the same code reads a live connection and bytes in memory (fuzzing).
#[derive(Debug)]
pub(super) struct Decoder {
    /// Where the body is.
    pub(super) framing: Framing,
    trailers: Option<HeaderMap>,
    /// Trailer bytes read so far (bounded like the fields' count).
    trailer_bytes: usize,
}

/// The response for `head`, read on `conn` for a request of `method`; its body reads on.
pub(super) fn respond(
    conn: DirectConn,
    head: Head,
    method: &Method,
    connector: u64,
) -> Result<Response<DirectBody>, ResponseError> {
    let Head {
        status,
        version,
        reason,
        headers,
    } = head;
    if version == Version::HTTP_10 && headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(ResponseError::Http10TransferEncoding);
    }
    let (framing, mut reusable) = framing_of(&headers, status, method)?;
    reusable &=
        version == Version::HTTP_11 && !crate::headers::connection_has_token(&headers, "close");
    let mut resp = Response::new(DirectBody::new(Some(conn), framing, reusable, connector));
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

impl DirectBody {
    fn new(conn: Option<DirectConn>, framing: Framing, reusable: bool, connector: u64) -> Self {
        DirectBody {
            conn,
            decoder: Decoder::new(framing),
            reusable,
            connector,
        }
    }

    /// At the end: the connection is pooled when it can carry another exchange.
    fn finish_if_done(&mut self) {
        if self.decoder.framing != Framing::Done {
            return;
        }
        if let Some(conn) = self.conn.take() {
            // Bytes beyond the response mean the stream is out of step: do not reuse.
            if self.reusable && conn.buf.is_empty() {
                conn::release(self.connector, conn);
            }
        }
    }

    /// The body broke off: the connection cannot be reused and the end never came.
    fn fail(&mut self) {
        self.conn = None;
        self.decoder.framing = Framing::Failed;
    }

    /// The next frame that can be made from buffered bytes, or `None` when more must be read.
    fn next_buffered(&mut self) -> Result<Option<Frame<Bytes>>, BodyError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        self.decoder.next(&mut conn.buf)
    }
}

impl Decoder {
    /// A decoder at the start of a body framed as `framing`.
    pub(super) fn new(framing: Framing) -> Self {
        Decoder {
            framing,
            trailers: None,
            trailer_bytes: 0,
        }
    }

    /// The next frame that can be cut from `buf`, or `None` when more bytes are needed (or the
    /// body is over: see `framing`).
    pub(super) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Frame<Bytes>>, BodyError> {
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
                        return Err(BodyError::ChunkDataEnd);
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
                        return Err(BodyError::TooManyTrailers);
                    }
                    if self.trailer_bytes > MAX_TRAILER_BYTES {
                        return Err(BodyError::TrailersTooLarge);
                    }
                    let text = std::str::from_utf8(&line).map_err(|_| BodyError::TrailerNotText)?;
                    let (name, value) = text.split_once(':').ok_or(BodyError::MalformedTrailer)?;
                    let name = HeaderName::from_bytes(name.as_bytes())?;
                    let value = HeaderValue::from_str(value.trim())?;
                    trailers.try_append(name, value)?;
                }
            }
        }
    }
}

impl Body for DirectBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            match this.next_buffered() {
                Ok(Some(frame)) => {
                    this.finish_if_done();
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(None) if this.decoder.framing == Framing::Done => {
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
            match conn::poll_read_more(conn, cx) {
                Poll::Ready(Ok(0)) if this.decoder.framing == Framing::Close => {
                    this.conn = None;
                    this.decoder.framing = Framing::Done;
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => {
                    this.fail();
                    return Poll::Ready(Some(Err(BodyError::CutShort)));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.fail();
                    return Poll::Ready(Some(Err(BodyError::Read(e))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Trailers are handed out in the step that reaches `Done`.
        self.decoder.framing == Framing::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.framing {
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
    use bytes::BytesMut;
    use tokio::net::TcpStream;

    /// A body in `framing` over a real loopback socket, with `buffered` already read.
    async fn body_with(framing: Framing, buffered: &[u8]) -> (DirectBody, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let io = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (peer, _) = listener.accept().await.expect("accept");
        let conn = DirectConn::new(io, BytesMut::from(buffered));
        (DirectBody::new(Some(conn), framing, false, 0), peer)
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
        assert_eq!(body.decoder.framing, Framing::Done);

        let mut flood = b"0\r\n".to_vec();
        for i in 0..=MAX_TRAILER_FIELDS {
            flood.extend_from_slice(format!("x-t{i}: v\r\n").as_bytes());
        }
        flood.extend_from_slice(b"\r\n");
        let (mut body, _peer) = body_with(Framing::Chunked(Chunk::Size), &flood).await;
        let err = body.next_buffered().expect_err("a flood is an error");
        assert!(matches!(err, BodyError::TooManyTrailers), "{err}");
        assert_eq!(err.to_string(), "too many trailer fields");

        let mut big = b"0\r\n".to_vec();
        let value = "v".repeat(MAX_TRAILER_BYTES);
        big.extend_from_slice(format!("x-big: {value}\r\n\r\n").as_bytes());
        let (mut body, _peer) = body_with(Framing::Chunked(Chunk::Size), &big).await;
        let err = body.next_buffered().expect_err("too large is an error");
        assert!(matches!(err, BodyError::TrailersTooLarge), "{err}");
        assert_eq!(err.to_string(), "trailer section too large");
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
        assert!(matches!(err, BodyError::CutShort), "{err}");
        assert_eq!(
            err.to_string(),
            "the IAM closed the connection before the body ended"
        );
        assert_eq!(body.decoder.framing, Framing::Failed);
        assert!(!body.is_end_stream(), "a failed body is not a complete one");
        assert_eq!(body.size_hint().exact(), None);
        let after = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(after.is_none());
    }
}
