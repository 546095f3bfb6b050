//! Reading a response head off the front of a connection's buffer, sharing its bytes.
//!
//! httparse finds the head; the header values are slices of the head's own bytes, so a value
//! costs no copy. Never: consume a byte past the head (the body's bytes stay in the buffer),
//! or decide how the body is framed (that is `framing`'s).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Version};

use super::error::MalformedHead;

/// Response heads larger than this are refused (hyper's own default is larger, but no IAM
/// sends 64 KiB of headers).
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// Headers per response head, as hyper allows.
const MAX_HEADERS: usize = 100;

/// Headers a response map has room for (see `parse_head`): a browser's dozen or so plus
/// `X-Forwarded-*` and `X-Request-Id`.
const REUSED_MAP_CAPACITY: usize = 16;

/// A parsed response head.
pub(super) struct Head {
    /// The final or informational status.
    pub(super) status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1 (which decides reuse and chunked coding).
    pub(super) version: Version,
    /// The reason phrase, when it is not the status code's canonical one.
    pub(super) reason: Option<Bytes>,
    /// The fields, values sharing the head's bytes.
    pub(super) headers: HeaderMap,
}

/// Parses a response head off the front of `buf`; `None` when more bytes are needed.
pub(super) fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, MalformedHead> {
    // Uninitialised slots: filling 100 empty headers first would cost more than parsing a
    // usual head.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut slots)? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let code = parsed.code.ok_or(MalformedHead::NoStatus)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
