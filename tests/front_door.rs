//! The front door against the real server (`app::start`), over raw sockets: a head that
//! never finishes is cut off at `client.header_timeout`, a head past `client.max_header_bytes`
//! is answered 431, connections past `client.max_connections` are closed at once while open
//! ones are served, a request body that stalls is answered 408 (not a 504 that blames the
//! IAM) and a broken one 400, each counted in `/metrics` as the client's fault.

mod support;

use std::time::{Duration, Instant};

use support::{config_for, eventually, get, raw_exchange, FakeUpstream, Userhook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// Held by each test that compares counters before and after: the recorder is process-wide.
static COUNTERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The value of the series `name{labels}` in `/metrics` (0 when absent).
async fn metric(uh: &Userhook, series: &str) -> f64 {
    let (_, _, body) = get(&format!("{}/metrics", uh.admin_url())).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Reads until the peer closes (or resets); what it sent before.
async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
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
    out
}

fn client_config(upstream: &str, client: &str) -> String {
    config_for(upstream, &format!("client:\n{client}"))
}

#[tokio::test]
async fn a_half_sent_head_is_cut_off_at_the_header_timeout_and_counted() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(
        &client_config(&iam.url(), "  header_timeout: 300ms\n"),
        false,
    )
    .await;
    let series = r#"userhook_client_errors_total{kind="header_timeout"}"#;
    let before = metric(&uh, series).await;
    let mut s = TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    let started = Instant::now();
    s.write_all(b"GET /users HTTP/1.1\r\nHost: iam\r\nX-Slow: ")
        .await
        .expect("write");
    let answer = read_to_close(&mut s).await;
    let took = started.elapsed();
    assert!(answer.is_empty(), "no response to half a head: {answer:?}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    eventually(WAIT, "the header timeout counted", || async {
        (metric(&uh, series).await == before + 1.0).then_some(())
    })
    .await;
    assert!(iam.requests().is_empty(), "nothing reached the IAM");
}

#[tokio::test]
async fn a_head_past_max_header_bytes_is_answered_431_and_closed() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(
        &client_config(&iam.url(), "  max_header_bytes: 8KiB\n"),
        false,
    )
    .await;
    let series = r#"userhook_client_errors_total{kind="head_too_large"}"#;
    let before = metric(&uh, series).await;
    let mut head = b"GET /users HTTP/1.1\r\nHost: iam\r\n".to_vec();
    for i in 0..100 {
        head.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(100)).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let answer = raw_exchange(uh.handle.proxy_addr, &head, b"").await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{text}"
    );
    eventually(WAIT, "the large head counted", || async {
        (metric(&uh, series).await == before + 1.0).then_some(())
    })
    .await;
    // A head within the limit still passes.
    let (status, _, body) = get(&format!("{}/users", uh.url())).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"ok"[..]));
    assert_eq!(iam.requests().len(), 1);
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_and_open_ones_keep_being_served() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&client_config(&iam.url(), "  max_connections: 2\n"), false).await;
    let rejected = "userhook_client_connections_rejected_total";
    let before = metric(&uh, rejected).await;
    let addr = uh.handle.proxy_addr;
    let mut first = TcpStream::connect(addr).await.expect("first");
    let mut second = TcpStream::connect(addr).await.expect("second");
    // Both are admitted once they have been served a request.
    let request = b"GET /users HTTP/1.1\r\nHost: iam\r\n\r\n";
    for s in [&mut first, &mut second] {
        s.write_all(request).await.expect("write");
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
    }
    let mut third = TcpStream::connect(addr).await.expect("third");
    let _ = third.write_all(request).await;
    let answer = read_to_close(&mut third).await;
    assert!(answer.is_empty(), "refused without a response: {answer:?}");
    eventually(WAIT, "the rejection counted", || async {
        (metric(&uh, rejected).await == before + 1.0).then_some(())
    })
    .await;
    // The admitted connections are still served.
    first.write_all(request).await.expect("write again");
    let mut buf = [0u8; 1024];
    let n = first.read(&mut buf).await.expect("read again");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
    // A closed one frees its place.
    drop(second);
    eventually(WAIT, "a freed place admits a new connection", || async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(request).await.ok()?;
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n").then_some(())
    })
    .await;
}

/// Each head that breaks a `Host` rule, or a `CONNECT`, is a 400 that reaches no IAM.
#[tokio::test]
async fn heads_with_bad_host_or_connect_are_refused_at_the_edge() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    let series = r#"userhook_client_errors_total{kind="bad_request"}"#;
    let before = metric(&uh, series).await;
    let refused: [(&str, &[u8]); 4] = [
        ("no Host", b"GET /users HTTP/1.1\r\n\r\n"),
        ("empty Host", b"GET /users HTTP/1.1\r\nHost:\r\n\r\n"),
        (
            "two Hosts",
            b"GET /users HTTP/1.1\r\nHost: iam\r\nHost: evil\r\n\r\n",
        ),
        (
            "CONNECT",
            b"CONNECT iam:443 HTTP/1.1\r\nHost: iam:443\r\n\r\n",
        ),
    ];
    for (what, head) in refused {
        let answer = raw_exchange(uh.handle.proxy_addr, head, b"}").await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{what}: {text}"
        );
        assert!(
            text.contains(r#"{"error":"bad_request","#),
            "{what}: {text}"
        );
    }
    // HTTP/1.0 needs no Host.
    let answer = raw_exchange(uh.handle.proxy_addr, b"GET /users HTTP/1.0\r\n\r\n", b"").await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    assert_eq!(
        iam.requests().len(),
        1,
        "only the HTTP/1.0 request reached the IAM"
    );
    assert_eq!(metric(&uh, series).await, before + 4.0);
}

#[tokio::test]
async fn an_http2_host_that_differs_from_authority_is_refused() {
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    let io = TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(io),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let mut send = |host: Option<&'static str>| {
        let mut req = http::Request::get("http://iam.example/users");
        if let Some(host) = host {
            req = req.header("host", host);
        }
        sender.send_request(req.body(support::full("")).expect("request"))
    };
    let conflicting = send(Some("evil.example")).await.expect("response");
    assert_eq!(conflicting.status(), 400);
    let same = send(Some("IAM.example")).await.expect("response");
    assert_eq!(same.status(), 200);
    let authority_only = send(None).await.expect("response");
    assert_eq!(authority_only.status(), 200);
    let seen = iam.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].headers["host"], "iam.example");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout_not_the_header_timeout() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(
        &client_config(
            &iam.url(),
            "  header_timeout: 200ms\n  idle_timeout: 1200ms\n",
        ),
        false,
    )
    .await;
    let head_timeouts = r#"userhook_client_errors_total{kind="header_timeout"}"#;
    let before = metric(&uh, head_timeouts).await;
    let mut s = TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    s.write_all(b"GET /users HTTP/1.1\r\nHost: iam\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(buf[..n].ends_with(b"ok"));
    let idle_from = Instant::now();
    // Idle well past header_timeout: the connection stays open until idle_timeout.
    let rest = read_to_close(&mut s).await;
    let idle = idle_from.elapsed();
    assert!(rest.is_empty(), "closed without a response: {rest:?}");
    assert!(
        idle >= Duration::from_millis(1100) && idle < Duration::from_secs(5),
        "closed after {idle:?} idle"
    );
    assert_eq!(
        metric(&uh, head_timeouts).await,
        before,
        "an idle close is not a client error"
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed_when_idle() {
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(
        &client_config(&iam.url(), "  header_timeout: 5s\n  idle_timeout: 300ms\n"),
        false,
    )
    .await;
    let mut s = TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    let started = Instant::now();
    let rest = read_to_close(&mut s).await;
    let took = started.elapsed();
    assert!(rest.is_empty());
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn a_slow_response_is_never_cut_by_the_head_or_idle_timeout() {
    let iam = FakeUpstream::start(|_| async {
        // Longer than both client timeouts; within timeouts.upstream (30s default).
        tokio::time::sleep(Duration::from_millis(900)).await;
        support::respond(200, "late")
    })
    .await;
    let uh = Userhook::start(
        &client_config(
            &iam.url(),
            "  header_timeout: 200ms\n  idle_timeout: 300ms\n",
        ),
        false,
    )
    .await;
    let answer = raw_exchange(
        uh.handle.proxy_addr,
        b"GET /users HTTP/1.1\r\nHost: iam\r\n\r\n",
        b"late",
    )
    .await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("late"), "{text}");
}

/// An HTTP/2 frame: 9-byte header and payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small frame");
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[tokio::test]
async fn an_http2_ping_flood_is_closed_and_counted() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    let series = r#"userhook_client_errors_total{kind="h2_control_flood"}"#;
    let before = metric(&uh, series).await;
    let s = TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    let (mut rd, mut wr) = s.into_split();
    // Read (and drop) whatever the server sends until it closes: PING ACKs, then GOAWAY.
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend(h2_frame(0x4, 0, 0, &[]));
    wr.write_all(&opening).await.expect("preface");
    let ping: Vec<u8> = (0..500)
        .flat_map(|_| h2_frame(0x6, 0, 0, &[1; 8]))
        .collect();
    // At most 20,000 PINGs; the proxy closes long before (a burst of 1,000).
    for _ in 0..40 {
        if wr.write_all(&ping).await.is_err() {
            break;
        }
    }
    let received = tokio::time::timeout(WAIT, reader)
        .await
        .expect("the proxy never closed the flooding connection")
        .expect("reader");
    assert!(received > 0, "the server answered before closing");
    eventually(WAIT, "the flood counted", || async {
        (metric(&uh, series).await == before + 1.0).then_some(())
    })
    .await;
    // Other clients are served.
    let (status, _, body) = get(&format!("{}/users", uh.url())).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"ok"[..]));
}

#[tokio::test]
async fn an_http2_client_that_pings_now_and_then_keeps_its_connection() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    let series = r#"userhook_client_errors_total{kind="h2_control_flood"}"#;
    let before = metric(&uh, series).await;
    let tcp = TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    let (mut h2, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    // 50 requests on one connection (hyper's client sends SETTINGS and its ACKs; no flood).
    for _ in 0..50 {
        let resp = h2
            .send_request(
                http::Request::get(format!("{}/users", uh.url()))
                    .body(support::full(""))
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(metric(&uh, series).await, before);
}
