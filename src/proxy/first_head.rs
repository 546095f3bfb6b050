//! A fresh connection's first request head, read into a small buffer before hyper takes the
//! connection.
//!
//! hyper gives every connection an 8 KiB read buffer and an 8 KiB write buffer the moment it
//! takes it; a thousand slowloris clients that never finish a head would hold 16 MiB that way
//! (nginx starts with 1 KiB, `client_header_buffer_size`). Here the first head is read into a
//! buffer that starts at 1 KiB and doubles up to `client.max_header_bytes`; only once it is
//! complete (or too large, or the client speaks HTTP/2) is the connection handed to hyper, with
//! the bytes read so far replayed in front of the socket (`watch::WatchedIo::replay`). Later heads on a
//! kept-alive connection are hyper's. The head timeout is the connection clock's (`watch`), as
//! for any head. Never: change, drop or reorder a byte.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The first read's buffer: nginx's `client_header_buffer_size`.
const FIRST_BUFFER: usize = 1024;

/// The start of the HTTP/2 client preface: such a connection is hyper's at once.
const H2_START: &[u8] = b"PRI ";

/// Reads from `io` until the bytes read hold a whole request head, `max` bytes arrived without
/// one, or the client speaks HTTP/2; returns what was read (to replay to hyper). `None` when
/// the client closed, or the socket failed, before a head was complete: there is nothing to
/// answer.
pub async fn read<T: AsyncRead + Unpin>(io: &mut T, max: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(FIRST_BUFFER.min(max.max(1)));
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= max {
                // Too large: hyper answers 431 with its own limit.
                return Some(buf);
            }
            buf.reserve((buf.capacity()).min(max - buf.len()).max(1));
        }
        let searched_from = buf.len().saturating_sub(3);
        match io.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if is_h2_start(&buf) || head_complete(&buf[searched_from..]) {
            return Some(buf);
        }
    }
}

/// True when `buf` starts as the HTTP/2 preface does: the connection is HTTP/2's.
pub fn is_h2_start(buf: &[u8]) -> bool {
    buf.starts_with(H2_START)
}

/// True when `bytes` hold the blank line that ends a head (`\n\r\n`, or a bare `\n\n`, which
/// hyper's parser also accepts).
fn head_complete(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(3).any(|w| w == b"\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// What `read` returns when the client sends `parts`, each its own write.
    async fn first(parts: &[&[u8]], max: usize, close: bool) -> Option<Vec<u8>> {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let parts: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        let writer = tokio::spawn(async move {
            for p in parts {
                client.write_all(&p).await.expect("write");
                client.flush().await.expect("flush");
            }
            if close {
                drop(client);
            } else {
                // Keep the client open until the reader is done.
                std::future::pending::<()>().await;
            }
        });
        let got = read(&mut server, max).await;
        writer.abort();
        got
    }

    #[tokio::test]
    async fn a_head_in_pieces_is_read_whole_with_what_came_after_it() {
        let got = first(
            &[b"GET / HT", b"TP/1.1\r\nHost: a\r", b"\n\r\nnext"],
            16 * 1024,
            false,
        )
        .await;
        assert_eq!(
            got.as_deref(),
            Some(&b"GET / HTTP/1.1\r\nHost: a\r\n\r\nnext"[..])
        );
    }

    #[tokio::test]
    async fn a_bare_lf_head_ends_too() {
        let got = first(&[b"GET / HTTP/1.1\nHost: a\n\n"], 16 * 1024, false).await;
        assert_eq!(got.as_deref(), Some(&b"GET / HTTP/1.1\nHost: a\n\n"[..]));
    }

    #[tokio::test]
    async fn http2_is_handed_over_at_once() {
        let got = first(&[b"PRI * HTTP/2.0\r\n"], 16 * 1024, false).await;
        assert_eq!(got.as_deref(), Some(&b"PRI * HTTP/2.0\r\n"[..]));
    }

    #[tokio::test]
    async fn a_head_that_outgrows_the_limit_is_handed_over_at_the_limit() {
        let big = vec![b'a'; 20_000];
        let got = first(&[b"GET / HTTP/1.1\r\nX: ", &big], 8 * 1024, false)
            .await
            .expect("handed over");
        assert!(got.len() >= 8 * 1024 && got.len() <= 8 * 1024 + 64 * 1024);
        assert!(got.starts_with(b"GET / HTTP/1.1\r\nX: aaa"));
    }

    #[tokio::test]
    async fn a_client_that_leaves_mid_head_has_nothing_to_answer() {
        assert_eq!(first(&[b"GET / HTTP/1.1\r\n"], 16 * 1024, true).await, None);
        assert_eq!(first(&[], 16 * 1024, true).await, None);
    }
}
