//! A client's request body is the client's business, against the real server over raw
//! sockets: a body that stalls is 408 (never a 504 blaming the IAM), one that breaks its
//! framing or length is 400, both counted in `client_errors_total` and never in
//! `upstream_errors_total`; a small body is read whole before an IAM connection is taken, so
//! a slow upload holds no IAM connection and its time is not counted against
//! `timeouts.upstream`.

mod support;

use std::time::Duration;

use support::{eventually, get, FakeUpstream, Userhook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// A config with short client and upstream limits.
fn config(upstream: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\nupstream: {upstream}\nadmin:\n  listen: 127.0.0.1:0\n\
         timeouts:\n  upstream: 500ms\n  shutdown_grace: 5s\n\
         client:\n  body_timeout: 300ms\n"
    )
}

/// The value of the series `name{labels}` in `/metrics` (0 when absent).
async fn metric(uh: &Userhook, series: &str) -> f64 {
    let (_, _, body) = get(&format!("{}/metrics", uh.admin_url())).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Sends `parts` with `pause` between them, then reads the response until the proxy closes.
async fn exchange(uh: &Userhook, parts: &[&[u8]], pause: Duration) -> String {
    let mut s = TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(pause).await;
        }
        s.write_all(part).await.expect("write");
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the proxy never closed the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// Held by each test that compares counters before and after: the recorder is process-wide.
static COUNTERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const BODY_TIMEOUT: &str = r#"userhook_client_errors_total{kind="body_timeout"}"#;
const BAD_BODY: &str = r#"userhook_client_errors_total{kind="bad_body"}"#;

/// Upstream errors of every kind, summed.
async fn upstream_errors(uh: &Userhook) -> f64 {
    let mut sum = 0.0;
    for kind in ["unreachable", "broken", "timeout"] {
        sum += metric(
            uh,
            &format!(r#"userhook_upstream_errors_total{{kind="{kind}"}}"#),
        )
        .await;
    }
    sum
}

#[tokio::test]
async fn a_small_body_that_stalls_is_408_and_never_reaches_the_iam() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config(&iam.url()), false).await;
    let (before, upstream_before) = (metric(&uh, BODY_TIMEOUT).await, upstream_errors(&uh).await);
    let answer = exchange(
        &uh,
        &[b"POST /users HTTP/1.1\r\nHost: iam\r\nContent-Length: 100\r\n\r\n{\"a\":"],
        Duration::ZERO,
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(
        answer.ends_with(
            r#"{"error":"request_timeout","message":"the request body did not arrive in time"}"#
        ),
        "{answer}"
    );
    assert_eq!(iam.connections(), 0, "no IAM connection was taken");
    eventually(WAIT, "the stall counted as the client's", || async {
        (metric(&uh, BODY_TIMEOUT).await == before + 1.0).then_some(())
    })
    .await;
    assert_eq!(upstream_errors(&uh).await, upstream_before);
}

#[tokio::test]
async fn a_slow_small_upload_is_not_timed_as_the_iams() {
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config(&iam.url()), false).await;
    // 4 pauses of 200 ms: longer than timeouts.upstream (500ms), each shorter than
    // client.body_timeout (300ms).
    let answer = exchange(
        &uh,
        &[
            b"POST /users HTTP/1.1\r\nHost: iam\r\nContent-Length: 5\r\nConnection: close\r\n\r\na",
            b"b",
            b"c",
            b"d",
            b"e",
        ],
        Duration::from_millis(200),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    let seen = iam.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(&seen[0].body[..], b"abcde");
    assert_eq!(iam.connections(), 1);
}

#[tokio::test]
async fn a_small_body_is_read_whole_before_an_iam_connection_is_taken() {
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config(&iam.url()), false).await;
    let mut slow = TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    slow.write_all(b"POST /users HTTP/1.1\r\nHost: iam\r\nContent-Length: 10\r\n\r\n01234")
        .await
        .expect("write half");
    // Another client's request goes through while the slow one holds half its body: the
    // IAM has seen that one connection only.
    let (status, _, _) = get(&format!("{}/other", uh.url())).await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(
        iam.connections(),
        1,
        "the slow upload holds no IAM connection"
    );
    slow.write_all(b"56789").await.expect("write rest");
    let mut buf = [0u8; 1024];
    let n = slow.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
    let seen = iam.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(&seen[1].body[..], b"0123456789");
}

#[tokio::test]
async fn a_large_body_that_stalls_is_408_too() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config(&iam.url()), false).await;
    let before = metric(&uh, BODY_TIMEOUT).await;
    // Past the inline limit: streamed through hyper's client.
    let answer = exchange(
        &uh,
        &[b"POST /users HTTP/1.1\r\nHost: iam\r\nContent-Length: 1000000\r\n\r\nxyz"],
        Duration::ZERO,
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    eventually(WAIT, "the stall counted", || async {
        (metric(&uh, BODY_TIMEOUT).await == before + 1.0).then_some(())
    })
    .await;
}

/// Each malformed body is answered 400 `bad_request_body` and counted as the client's.
#[tokio::test]
async fn malformed_chunked_bodies_are_the_clients_400() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config(&iam.url()), false).await;
    let cases: [(&str, &[u8]); 4] = [
        ("bad chunk size", b"zz\r\nhello\r\n0\r\n\r\n"),
        ("LF-only lines", b"5\nhello\n0\n\n"),
        (
            "huge chunk extension",
            &[b"5;", &[b'x'; 70_000][..]].concat(),
        ),
        ("chunk data not ended by CRLF", b"5\r\nhelloXX0\r\n\r\n"),
    ];
    for (what, body) in cases {
        let (before, upstream_before) = (metric(&uh, BAD_BODY).await, upstream_errors(&uh).await);
        let head = b"POST /users HTTP/1.1\r\nHost: iam\r\nTransfer-Encoding: chunked\r\n\r\n";
        let answer = exchange(&uh, &[head, body], Duration::ZERO).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{what}: {answer}"
        );
        assert!(
            answer.ends_with(
                r#"{"error":"bad_request_body","message":"the request body is malformed or incomplete"}"#
            ),
            "{what}: {answer}"
        );
        eventually(WAIT, "the bad body counted as the client's", || async {
            (metric(&uh, BAD_BODY).await == before + 1.0).then_some(())
        })
        .await;
        assert_eq!(upstream_errors(&uh).await, upstream_before, "{what}");
    }
}

#[tokio::test]
async fn a_body_longer_than_its_content_length_is_not_forwarded_past_it() {
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config(&iam.url()), false).await;
    // hyper reads exactly Content-Length bytes; the rest is the next request (garbage: 400).
    let answer = exchange(
        &uh,
        &[b"POST /users HTTP/1.1\r\nHost: iam\r\nContent-Length: 3\r\n\r\nabcdef\r\n\r\n"],
        Duration::ZERO,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    let seen = iam.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(&seen[0].body[..], b"abc");
}

#[tokio::test]
async fn a_body_cut_short_of_its_content_length_is_the_clients_400() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config(&iam.url()), false).await;
    let before = metric(&uh, BAD_BODY).await;
    let mut s = TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    s.write_all(b"POST /users HTTP/1.1\r\nHost: iam\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .expect("write");
    // The client stops writing: the body ends 7 bytes short.
    s.shutdown().await.expect("half-close");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    eventually(WAIT, "the short body counted", || async {
        (metric(&uh, BAD_BODY).await == before + 1.0).then_some(())
    })
    .await;
    assert_eq!(iam.connections(), 0, "nothing reached the IAM");
}

#[tokio::test]
async fn a_slow_streamed_upload_is_not_timed_as_the_iams() {
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config(&iam.url()), false).await;
    // Chunked (unknown length): streamed through hyper's client as it arrives. Five chunks
    // 200 ms apart take longer than timeouts.upstream (500ms); each pause is within
    // client.body_timeout (300ms), so neither side timed out.
    let answer = exchange(
        &uh,
        &[
            b"POST /users HTTP/1.1\r\nHost: iam\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\na\r\n",
            b"1\r\nb\r\n",
            b"1\r\nc\r\n",
            b"1\r\nd\r\n",
            b"1\r\ne\r\n0\r\n\r\n",
        ],
        Duration::from_millis(200),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
    let seen = iam.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(&seen[0].body[..], b"abcde");
}

#[tokio::test]
async fn an_iam_silent_after_a_streamed_upload_is_still_the_iams_504() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::start(|_| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        support::respond(200, "late")
    })
    .await;
    let uh = Userhook::start(&config(&iam.url()), false).await;
    let timeouts = r#"userhook_upstream_errors_total{kind="timeout"}"#;
    let before = metric(&uh, timeouts).await;
    let started = std::time::Instant::now();
    let answer = exchange(
        &uh,
        &[b"POST /users HTTP/1.1\r\nHost: iam\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n"],
        Duration::ZERO,
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
        "{answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "timed out at timeouts.upstream, not when the IAM answered"
    );
    eventually(WAIT, "the timeout counted as the IAM's", || async {
        (metric(&uh, timeouts).await == before + 1.0).then_some(())
    })
    .await;
}

const TOO_LARGE: &str = r#"userhook_client_errors_total{kind="body_too_large"}"#;

fn limited_config(upstream: &str) -> String {
    format!("{}  max_body_bytes: 64KiB\n", config(upstream))
}

#[tokio::test]
async fn a_content_length_over_max_body_bytes_is_413_before_the_iam_is_asked() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&limited_config(&iam.url()), false).await;
    let before = metric(&uh, TOO_LARGE).await;
    let answer = exchange(
        &uh,
        &[b"POST /users HTTP/1.1\r\nHost: iam\r\nContent-Length: 65537\r\n\r\nabc"],
        Duration::ZERO,
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{answer}"
    );
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(
        answer.ends_with(
            r#"{"error":"request_too_large","message":"the request body is larger than this proxy accepts"}"#
        ),
        "{answer}"
    );
    assert_eq!(iam.connections(), 0, "the IAM was never asked");
    eventually(WAIT, "counted as the client's", || async {
        (metric(&uh, TOO_LARGE).await == before + 1.0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_absurd_chunk_size_is_cut_at_max_body_bytes() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&limited_config(&iam.url()), false).await;
    let (before, upstream_before) = (metric(&uh, TOO_LARGE).await, upstream_errors(&uh).await);
    // A chunk of 2^64-1 bytes, then 80 KiB of it: past the 64 KiB limit.
    let head: &[u8] =
        b"POST /users HTTP/1.1\r\nHost: iam\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n";
    let data = vec![b'x'; 80 * 1024];
    let answer = exchange(&uh, &[head, &data], Duration::ZERO).await;
    assert!(
        answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{answer}"
    );
    eventually(WAIT, "counted as the client's", || async {
        (metric(&uh, TOO_LARGE).await == before + 1.0).then_some(())
    })
    .await;
    assert_eq!(upstream_errors(&uh).await, upstream_before);
    // The body streams, so the IAM may have seen its start: the upload is aborted, never
    // ended (the fake records a body that failed to arrive whole as empty).
    assert!(
        iam.requests().iter().all(|r| r.body.is_empty()),
        "the IAM got no whole request"
    );
}

#[tokio::test]
async fn a_body_at_max_body_bytes_passes() {
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&limited_config(&iam.url()), false).await;
    let body = vec![b'y'; 64 * 1024];
    let head = format!(
        "POST /users HTTP/1.1\r\nHost: iam\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let answer = exchange(&uh, &[head.as_bytes(), &body], Duration::ZERO).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert_eq!(iam.requests()[0].body.len(), 64 * 1024);
}
