//! The inline client's reading of one response, over bytes already in memory: the same head
//! parser, framing rules and body decoder as a live connection, with no socket. For fuzz
//! targets and property tests, which must exercise exactly what reads an IAM's answer.
//!
//! The input arrives in pieces (as reads from a socket would), so a test can check that where
//! the reads happen to split the bytes never changes the outcome. Never: allocate without
//! bound (the head is capped as on a connection), or panic on any input.

use bytes::{BufMut, BytesMut};
use http::{HeaderMap, Method, StatusCode, Version};

use super::body::Decoder;
use super::error::{BodyError, ResponseError};
use super::framing::{framing_of, Framing};
use super::head::{parse_head, MAX_HEAD};

/// How reading one response from bytes ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The body ended as its framing says (a length, the last chunk, or the end of input for
    /// a body that runs to the close); `leftover` bytes followed it.
    Complete {
        /// Bytes after the response: a connection with any is not reused.
        leftover: usize,
    },
    /// The input ended before the head or body did.
    CutShort,
    /// The head or the body broke the syntax; the text names what was wrong.
    Refused(String),
}

/// What the inline client made of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResponse {
    /// The final status, once a head was read.
    pub status: Option<StatusCode>,
    /// Its fields.
    pub headers: HeaderMap,
    /// The body's bytes, in order, as they would reach the client.
    pub body: Vec<u8>,
    /// The trailer fields of a chunked body.
    pub trailers: Option<HeaderMap>,
    /// How it ended.
    pub ending: Ending,
}

/// Reads one response to `method` from `input`, delivered in pieces that end at the offsets
/// `splits` names (out-of-range and unsorted offsets are ignored), as the inline client reads
/// it from a connection: informational heads skipped, a `101` refused, the head bounded.
pub fn read_response(input: &[u8], splits: &[usize], method: &Method) -> ReadResponse {
    let mut cuts: Vec<usize> = splits
        .iter()
        .copied()
        .filter(|&c| c < input.len())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.push(input.len());
    let mut pieces = Vec::with_capacity(cuts.len());
    let mut from = 0;
    for cut in cuts {
        if let Some(piece) = input.get(from..cut) {
            pieces.push(piece);
        }
        from = cut;
    }
    let mut pieces = pieces.into_iter().filter(|p| !p.is_empty());
    let mut out = ReadResponse {
        status: None,
        headers: HeaderMap::new(),
        body: Vec::new(),
        trailers: None,
        ending: Ending::CutShort,
    };
    let mut buf = BytesMut::new();
    let refused = |out: &mut ReadResponse, e: &dyn std::fmt::Display| {
        out.ending = Ending::Refused(e.to_string());
    };

    // The head (after any informational ones), as `exchange` reads it.
    let head = loop {
        match parse_head(&mut buf) {
            Ok(Some(head)) if head.status == StatusCode::SWITCHING_PROTOCOLS => {
                refused(&mut out, &ResponseError::UnaskedSwitch);
                return out;
            }
            Ok(Some(head)) if head.status.is_informational() => continue,
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(e) => {
                refused(&mut out, &ResponseError::Malformed(e));
                return out;
            }
        }
        if buf.len() >= MAX_HEAD {
            refused(&mut out, &ResponseError::HeadTooLarge);
            return out;
        }
        match pieces.next() {
            Some(piece) => buf.put_slice(piece),
            None => return out,
        }
    };
    out.status = Some(head.status);
    if head.version == Version::HTTP_10
        && head.headers.contains_key(http::header::TRANSFER_ENCODING)
    {
        refused(&mut out, &ResponseError::Http10TransferEncoding);
        return out;
    }
    let framing = match framing_of(&head.headers, head.status, method) {
        Ok((framing, _reusable)) => framing,
        Err(e) => {
            refused(&mut out, &e);
            return out;
        }
    };
    out.headers = head.headers;

    // The body, as `DirectBody::poll_frame` reads it.
    let mut decoder = Decoder::new(framing);
    loop {
        match decoder.next(&mut buf) {
            Ok(Some(frame)) => match frame.into_data() {
                Ok(data) => out.body.extend_from_slice(&data),
                Err(frame) => out.trailers = frame.into_trailers().ok(),
            },
            Ok(None) if decoder.framing == Framing::Done => {
                out.ending = Ending::Complete {
                    leftover: buf.len() + pieces.map(<[u8]>::len).sum::<usize>(),
                };
                return out;
            }
            Ok(None) => match pieces.next() {
                Some(piece) => buf.put_slice(piece),
                None if decoder.framing == Framing::Close => {
                    out.ending = Ending::Complete { leftover: 0 };
                    return out;
                }
                None => {
                    out.ending = Ending::CutShort;
                    return out;
                }
            },
            Err(e) => {
                refused(&mut out, &e as &BodyError);
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> ReadResponse {
        read_response(input, &[], &Method::GET)
    }

    #[test]
    fn lengths_chunks_and_the_close_end_a_body() {
        let r = read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloXY");
        assert_eq!(r.status, Some(StatusCode::OK));
        assert_eq!(r.body, b"hello");
        assert_eq!(r.ending, Ending::Complete { leftover: 2 });

        let r = read(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n");
        assert_eq!(r.body, b"abc");
        assert_eq!(
            r.trailers.as_ref().map(|t| t["x-t"].as_bytes()),
            Some(&b"1"[..])
        );
        assert_eq!(r.ending, Ending::Complete { leftover: 0 });

        let r = read(b"HTTP/1.1 200 OK\r\n\r\nuntil the end");
        assert_eq!(r.body, b"until the end");
        assert_eq!(r.ending, Ending::Complete { leftover: 0 });

        let r = read(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(r.status, Some(StatusCode::NO_CONTENT));
        assert_eq!(r.ending, Ending::Complete { leftover: 0 });
    }

    #[test]
    fn broken_and_short_responses() {
        assert_eq!(
            read(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").ending,
            Ending::CutShort
        );
        assert_eq!(read(b"HTTP/1.1 200 OK\r\n").ending, Ending::CutShort);
        assert!(matches!(
            read(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n").ending,
            Ending::Refused(_)
        ));
        assert!(matches!(
            read(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").ending,
            Ending::Refused(_)
        ));
        assert!(matches!(
            read(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").ending,
            Ending::Refused(_)
        ));
        assert!(matches!(
            read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").ending,
            Ending::Refused(_)
        ));
        assert!(matches!(
            read(b"nonsense\r\n\r\n").ending,
            Ending::Refused(_)
        ));
    }

    #[test]
    fn where_the_reads_split_changes_nothing() {
        let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        let whole = read(input);
        assert_eq!(whole.body, b"abc0123456789abcdef");
        for cut in 0..input.len() {
            assert_eq!(
                read_response(input, &[cut], &Method::GET),
                whole,
                "split at {cut}"
            );
        }
        let every: Vec<usize> = (0..input.len()).collect();
        assert_eq!(read_response(input, &every, &Method::GET), whole);
    }
}
