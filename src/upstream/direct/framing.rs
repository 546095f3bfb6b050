//! How a response body ends (RFC 9112 section 6.3), and the chunked coding's line syntax.
//!
//! No body for HEAD, 1xx, 204 and 304; `Transfer-Encoding: chunked` (with trailers) before
//! `Content-Length`; otherwise the body runs to the end of the connection, which is then not
//! reused. Unreadable or conflicting lengths are refused, as in hyper. Never: guess where a
//! body ends, or touch the socket.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, StatusCode};

use super::error::{BodyError, ResponseError};

/// A chunk-size line (with extensions) or trailer line longer than this is refused.
const MAX_LINE: usize = 8 * 1024;

/// How the response body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
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

/// Where a chunked body's reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty line.
    Trailers,
}

/// The framing of a response to `method`, and whether the connection can carry another
/// exchange after it. Unreadable or conflicting lengths are an error, as in hyper: guessing
/// where such a body ends could pass the client bytes of the next response.
pub(super) fn framing_of(
    headers: &HeaderMap,
    status: StatusCode,
    method: &Method,
) -> Result<(Framing, bool), ResponseError> {
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
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err(ResponseError::ContentLength),
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
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// One CRLF-terminated line off the front of `buf` (without the CRLF).
pub(super) fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, BodyError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(at) => {
            let line = buf.split_to(at).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(BodyError::LineTooLong),
        None => Ok(None),
    }
}

/// The size of a chunk-size line (hex, extensions after `;` ignored).
pub(super) fn chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let size = line.split(|b| *b == b';').next().unwrap_or(&[]);
    // Whitespace may precede the extensions; the size itself is hex digits only.
    let size = size.trim_ascii_end();
    if size.is_empty() || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(BodyError::ChunkSize);
    }
    let significant = size
        .iter()
        .position(|b| *b != b'0')
        .map_or(&[][..], |i| &size[i..]);
    if significant.len() > 15 {
        return Err(BodyError::ChunkTooLarge);
    }
    if significant.is_empty() {
        return Ok(0);
    }
    let hex = std::str::from_utf8(significant).map_err(|_| BodyError::ChunkSize)?;
    u64::from_str_radix(hex, 16).map_err(|_| BodyError::ChunkSize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::map as headers;

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
}
