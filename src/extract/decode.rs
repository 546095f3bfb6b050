//! Undoing `Content-Encoding` (gzip, deflate, br) on a captured body, for extraction only.
//!
//! What the client receives is never touched: this works on the bounded copy. Output is capped
//! (a few times `capture_limit`) so a zip bomb costs bounded memory and time, and a truncated or
//! corrupt stream yields what could be decoded, never a panic.

use std::borrow::Cow;

/// Most `Content-Encoding` layers undone for extraction.
const MAX_CODINGS: usize = 2;
use std::io::Read;

use http::HeaderMap;

/// Decoded output is capped at this many times the capture limit (zip-bomb guard).
pub const EXPANSION_FACTOR: usize = 8;

/// A body ready for parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBody<'a> {
    /// The decoded bytes (borrowed when there was nothing to undo).
    pub bytes: Cow<'a, [u8]>,
    /// Decoding stopped early: the stream was cut, corrupt, or hit the output cap.
    pub cut: bool,
}

/// Decodes `raw` per the `Content-Encoding` headers in `headers`, producing at most `limit`
/// bytes. `None` when an encoding is unknown (e.g. `zstd`): the body is then unreadable.
pub fn decode<'a>(raw: &'a [u8], headers: &HeaderMap, limit: usize) -> Option<DecodedBody<'a>> {
    let mut codings: Vec<String> = Vec::new();
    for value in headers.get_all(http::header::CONTENT_ENCODING) {
        let text = value.to_str().ok()?;
        for coding in text.split(',') {
            let coding = coding.trim().to_ascii_lowercase();
            if !coding.is_empty() && coding != "identity" {
                codings.push(coding);
            }
        }
    }
    // Real servers apply one coding, rarely two; a longer stack is a way to make the
    // extractor decode the same bomb over and over.
    if codings.len() > MAX_CODINGS {
        return None;
    }
    let mut body = DecodedBody {
        bytes: Cow::Borrowed(raw),
        cut: false,
    };
    // Codings are listed in the order they were applied: undo them last to first.
    for coding in codings.iter().rev() {
        let input: &[u8] = &body.bytes;
        let (bytes, cut) = match coding.as_str() {
            "gzip" | "x-gzip" => read_bounded(flate2::read::MultiGzDecoder::new(input), limit),
            "deflate" if looks_like_zlib(input) => {
                read_bounded(flate2::read::ZlibDecoder::new(input), limit)
            }
            // Some servers send raw deflate despite RFC 9110 asking for the zlib wrapper.
            "deflate" => read_bounded(flate2::read::DeflateDecoder::new(input), limit),
            "br" => read_bounded(brotli::Decompressor::new(input, 4096), limit),
            _ => return None,
        };
        body = DecodedBody {
            bytes: Cow::Owned(bytes),
            cut: body.cut || cut,
        };
    }
    Some(body)
}

/// A zlib stream starts with a CMF/FLG pair whose 16-bit value is a multiple of 31.
fn looks_like_zlib(input: &[u8]) -> bool {
    match input {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

/// Reads until the end, an error or `limit` bytes; the flag says the output is incomplete.
fn read_bounded<R: Read>(mut reader: R, limit: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (out, false),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > limit {
                    out.truncate(limit);
                    return (out, true);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return (out, true),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    pub(crate) fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("write");
        e.finish().expect("finish")
    }

    pub(crate) fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).expect("write");
        }
        out
    }

    fn headers(encoding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-encoding", encoding.parse().expect("hv"));
        h
    }

    const TEXT: &[u8] = br#"{"id":"42","email":"a@example.com"}"#;

    #[test]
    fn identity_borrows() {
        let d = decode(TEXT, &HeaderMap::new(), 1000).expect("decoded");
        assert!(matches!(d.bytes, Cow::Borrowed(_)));
        assert_eq!(&*d.bytes, TEXT);
        assert!(!d.cut);
        let d = decode(TEXT, &headers("identity"), 1000).expect("decoded");
        assert_eq!(&*d.bytes, TEXT);
    }

    #[test]
    fn each_coding_decodes() {
        for (name, data) in [
            ("gzip", gzip(TEXT)),
            ("x-gzip", gzip(TEXT)),
            ("deflate", zlib(TEXT)),
            ("deflate", raw_deflate(TEXT)),
            ("BR", brotli(TEXT)),
        ] {
            let d = decode(&data, &headers(name), 1000).expect("decoded");
            assert_eq!(&*d.bytes, TEXT, "{name}");
            assert!(!d.cut, "{name}");
        }
    }

    #[test]
    fn stacked_codings_undo_in_reverse() {
        let data = brotli(&gzip(TEXT));
        let d = decode(&data, &headers("gzip, br"), 1000).expect("decoded");
        assert_eq!(&*d.bytes, TEXT);
    }

    #[test]
    fn more_than_two_codings_are_not_undone() {
        let data = gzip(&gzip(&gzip(TEXT)));
        assert_eq!(decode(&data, &headers("gzip, gzip, gzip"), 1000), None);
    }

    #[test]
    fn unknown_coding_is_unreadable() {
        assert_eq!(decode(TEXT, &headers("zstd"), 1000), None);
    }

    #[test]
    fn truncated_stream_yields_prefix() {
        let big: Vec<u8> = (0..20_000u32)
            .flat_map(|i| i.to_string().into_bytes())
            .collect();
        for (name, data) in [
            ("gzip", gzip(&big)),
            ("br", brotli(&big)),
            ("deflate", zlib(&big)),
        ] {
            let half = &data[..data.len() / 2];
            let d = decode(half, &headers(name), 1 << 20).expect("decoded");
            assert!(d.cut, "{name}");
            assert!(big.starts_with(&d.bytes), "{name}");
        }
    }

    #[test]
    fn garbage_does_not_panic() {
        for name in ["gzip", "deflate", "br"] {
            let d = decode(b"\x1f\x8b not really gzip \xff\x00", &headers(name), 1000)
                .expect("decoded");
            assert!(
                d.cut || d.bytes.is_empty() || d.bytes.len() <= 1000,
                "{name}"
            );
        }
    }

    #[test]
    fn zip_bomb_is_capped() {
        let zeros = vec![0u8; 10 << 20];
        let data = gzip(&zeros);
        assert!(data.len() < 64 << 10);
        let d = decode(&data, &headers("gzip"), 100_000).expect("decoded");
        assert_eq!(d.bytes.len(), 100_000);
        assert!(d.cut);
    }
}
