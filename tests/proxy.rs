//! The proxy is transparent: bytes, headers and statuses arrive as they would directly, and
//! upstream failures become clear 502/504 answers.

mod support;

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use support::scripted::{Answer, Scripted};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upstream that answers with the request body and a few echo headers.
async fn echo_upstream() -> FakeUpstream {
    FakeUpstream::start(|req| async move {
        let mut r = Response::new(full(req.body.clone()));
        r.headers_mut().insert(
            "x-upstream-saw-method",
            req.method.as_str().parse().expect("hv"),
        );
        r.headers_mut()
            .append("set-cookie", "a=1; Path=/".parse().expect("hv"));
        r.headers_mut()
            .append("set-cookie", "b=2; Path=/".parse().expect("hv"));
        r.headers_mut().insert(
            "content-type",
            "application/octet-stream".parse().expect("hv"),
        );
        r
    })
    .await
}

fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0xff) as u8
        })
        .collect()
}

#[tokio::test]
async fn bodies_and_headers_cross_byte_identical() {
    let up = echo_upstream().await;
    let uh = Userhook::start(&config_for(&up.url(), ""), false).await;

    for size in [0usize, 1, 4096, 1024 * 1024] {
        let payload = Bytes::from(pseudo_random(size));
        let req = Request::post(format!("{}/api/blob?size={size}", uh.url()))
            .header("x-custom", "keep me")
            .header("authorization", "Bearer abc.def.ghi")
            .body(full(payload.clone()))
            .expect("request");
        let (status, headers, body) = send(req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body.len(), size);
        assert_eq!(body, payload, "response body of {size} bytes differs");
        assert_eq!(
            headers
                .get("content-length")
                .expect("length")
                .to_str()
                .expect("str"),
            size.to_string()
        );
        let cookies: Vec<_> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("str"))
            .collect();
        assert_eq!(cookies, vec!["a=1; Path=/", "b=2; Path=/"]);
        assert_eq!(headers.get("x-upstream-saw-method").expect("echo"), "POST");
    }

    let seen = up.requests();
    assert_eq!(seen.len(), 4);
    for (rec, size) in seen.iter().zip([0usize, 1, 4096, 1024 * 1024]) {
        assert_eq!(rec.uri, format!("/api/blob?size={size}"));
        assert_eq!(rec.body, Bytes::from(pseudo_random(size)));
        assert_eq!(rec.headers.get("x-custom").expect("custom"), "keep me");
        assert_eq!(
            rec.headers.get("authorization").expect("auth"),
            "Bearer abc.def.ghi"
        );
    }
    uh.handle.stop().await;
}

#[tokio::test]
async fn forwarded_headers_host_and_hop_by_hop() {
    let up = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config_for(&up.url(), ""), false).await;
    let raw = "GET /who HTTP/1.1\r\nHost: iam.example.com\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nX-Forwarded-For: 10.1.2.3\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nX-End: 1\r\n\r\n";
    let out = raw_exchange(uh.handle.proxy_addr, raw.as_bytes(), b"ok").await;
    assert!(
        out.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let seen = &up.requests()[0];
    let h = &seen.headers;
    assert_eq!(h.get("host").expect("host"), "iam.example.com");
    assert_eq!(
        h.get("x-forwarded-for").expect("xff"),
        "10.1.2.3, 127.0.0.1"
    );
    assert_eq!(h.get("x-forwarded-proto").expect("xfp"), "http");
    assert_eq!(h.get("x-forwarded-host").expect("xfh"), "iam.example.com");
    assert_eq!(h.get("x-end").expect("end"), "1");
    for gone in ["x-hop", "keep-alive", "proxy-authorization"] {
        assert!(h.get(gone).is_none(), "{gone} must not be forwarded");
    }
    // `connection` may be re-added by the client pool for its own hop, never with our tokens.
    if let Some(c) = h.get("connection") {
        assert!(!c
            .to_str()
            .expect("str")
            .to_ascii_lowercase()
            .contains("x-hop"));
    }
    uh.handle.stop().await;
}

#[tokio::test]
async fn host_is_rewritten_when_not_preserved() {
    let up = FakeUpstream::fixed("ok").await;
    let uh = Userhook::start(&config_for(&up.url(), "preserve_host: false\n"), false).await;
    let (status, _, _) = get(&format!("{}/x", uh.url())).await;
    assert_eq!(status, StatusCode::OK);
    let seen = &up.requests()[0];
    assert_eq!(
        seen.headers
            .get("host")
            .expect("host")
            .to_str()
            .expect("str"),
        up.addr.to_string()
    );
    assert_eq!(
        seen.headers
            .get("x-forwarded-host")
            .expect("xfh")
            .to_str()
            .expect("str"),
        uh.handle.proxy_addr.to_string()
    );
    uh.handle.stop().await;
}

#[tokio::test]
async fn statuses_204_304_and_head_match_direct() {
    let up = FakeUpstream::start(|req| async move {
        match req.uri.as_str() {
            "/no-content" => respond(204, ""),
            "/not-modified" => {
                let mut r = respond(304, "");
                r.headers_mut()
                    .insert("etag", "\"v1\"".parse().expect("hv"));
                r
            }
            _ => {
                // HEAD: hyper sends the length of the body it would have sent, and no body.
                let mut r = respond(200, vec![b'x'; 1234]);
                r.headers_mut()
                    .insert("etag", "\"v2\"".parse().expect("hv"));
                r
            }
        }
    })
    .await;
    let uh = Userhook::start(&config_for(&up.url(), ""), false).await;

    let direct = raw_exchange(
        up.addr,
        b"GET /no-content HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    let proxied = raw_exchange(
        uh.handle.proxy_addr,
        b"GET /no-content HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert!(proxied.starts_with(b"HTTP/1.1 204 No Content\r\n"));
    assert!(direct.starts_with(b"HTTP/1.1 204 No Content\r\n"));
    assert!(proxied.ends_with(b"\r\n\r\n"), "204 must have no body");
    assert!(!String::from_utf8_lossy(&proxied)
        .to_ascii_lowercase()
        .contains("transfer-encoding"));

    let proxied = raw_exchange(
        uh.handle.proxy_addr,
        b"GET /not-modified HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"v1\"\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    let text = String::from_utf8_lossy(&proxied).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 304 not modified\r\n"), "{text}");
    assert!(text.contains("etag: \"v1\"\r\n"));
    assert!(text.ends_with("\r\n\r\n"), "304 must have no body: {text}");

    let proxied = raw_exchange(
        uh.handle.proxy_addr,
        b"HEAD /thing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    let text = String::from_utf8_lossy(&proxied).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200 ok\r\n"), "{text}");
    assert!(text.contains("content-length: 1234\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "HEAD must have no body: {text}");
    uh.handle.stop().await;
}

#[tokio::test]
async fn chunked_bodies_of_unknown_length_and_trailers() {
    // Upstream streams three chunks and a trailer; it also reports what it received.
    let up = FakeUpstream::start(|req| async move {
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
            Ok(Frame::data(Bytes::from_static(b"first;"))),
            Ok(Frame::data(Bytes::from_static(b"second;"))),
            Ok(Frame::data(req.body.clone())),
            Ok(Frame::trailers({
                let mut t = http::HeaderMap::new();
                t.insert("x-checksum", "abc123".parse().expect("hv"));
                t
            })),
        ];
        let body = StreamBody::new(futures_stream(frames)).boxed();
        let mut r = Response::new(body);
        r.headers_mut()
            .insert("trailer", "x-checksum".parse().expect("hv"));
        r
    })
    .await;
    let uh = Userhook::start(&config_for(&up.url(), ""), false).await;
    let request = b"POST /stream HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let out = raw_exchange(uh.handle.proxy_addr, request, b"").await;
    let text = String::from_utf8_lossy(&out).to_string();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("transfer-encoding: chunked\r\n"),
        "{text}"
    );
    let body_start = text.find("\r\n\r\n").expect("headers end") + 4;
    assert_eq!(
        &text[body_start..],
        "6\r\nfirst;\r\n7\r\nsecond;\r\nB\r\nhello world\r\n0\r\nx-checksum: abc123\r\n\r\n"
    );
    assert_eq!(up.requests()[0].body, Bytes::from_static(b"hello world"));
    uh.handle.stop().await;
}

fn futures_stream(
    frames: Vec<Result<Frame<Bytes>, Infallible>>,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync + 'static {
    tokio_stream::iter(frames)
}

#[tokio::test]
async fn upstream_connections_are_reused_whatever_the_body() {
    // Sized, empty, bodiless and chunked answers each leave the connection reusable.
    let up = FakeUpstream::start(|req| async move {
        match req.uri.as_str() {
            "/empty" => respond(204, ""),
            "/chunked" => {
                let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                    Ok(Frame::data(Bytes::from_static(b"one;"))),
                    Ok(Frame::data(Bytes::from_static(b"two"))),
                ];
                Response::new(StreamBody::new(futures_stream(frames)).boxed())
            }
            _ => respond(200, format!("{} {}", req.method, req.uri)),
        }
    })
    .await;
    let uh = Userhook::start(&config_for(&up.url(), ""), false).await;
    for round in 0..5 {
        let (status, _, body) = get(&format!("{}/sized/{round}", uh.url())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("GET /sized/{round}"));
        let (status, _, body) = get(&format!("{}/empty", uh.url())).await;
        assert_eq!((status, body.len()), (StatusCode::NO_CONTENT, 0));
        let (status, _, body) = get(&format!("{}/chunked", uh.url())).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, Bytes::from_static(b"one;two"));
        let head = Request::head(format!("{}/sized/{round}", uh.url()))
            .body(full(Bytes::new()))
            .expect("request");
        let (status, headers, body) = send(head).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers["content-length"], "13",
            "the length of `HEAD /sized/N`"
        );
        assert!(body.is_empty());
        // Small bodies go on the inline client, large ones stream through hyper's.
        for size in [1_000, 70_000] {
            let post = Request::post(format!("{}/posted", uh.url()))
                .body(full(Bytes::from(pseudo_random(size))))
                .expect("request");
            let (status, _, body) = send(post).await;
            assert_eq!(
                (status, body),
                (StatusCode::OK, Bytes::from("POST /posted"))
            );
        }
    }
    assert_eq!(up.requests().len(), 30);
    let big = up
        .requests()
        .iter()
        .filter(|r| r.body.len() == 70_000)
        .count();
    assert_eq!(big, 5);
    assert_eq!(
        up.connections(),
        2,
        "one connection per client (inline and hyper), reused by every request"
    );
    uh.handle.stop().await;
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[tokio::test]
async fn an_upstream_closing_idle_connections_costs_no_request() {
    // Answers one request per connection, then closes it without saying so beforehand: the
    // pooled connection is dead by the time the next request comes.
    let script = (0..6)
        .map(|_| Answer {
            bytes: OK,
            close: true,
        })
        .collect();
    let iam = Scripted::start(script).await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    for _ in 0..6 {
        let (status, _, body) = get(&format!("{}/x", uh.url())).await;
        assert_eq!((status, body), (StatusCode::OK, Bytes::from_static(b"ok")));
    }
    assert_eq!(iam.connections.load(Ordering::SeqCst), 6);
    assert_eq!(iam.heads.lock().expect("lock").len(), 6);
    uh.handle.stop().await;
}

#[tokio::test]
async fn a_reused_connection_closed_on_the_next_request_is_retried_only_when_safe() {
    // Answers the first request on each connection; on the second it closes without a
    // word. The connection looked alive in the pool, so only the retry can save the request.
    let answer = || Answer {
        bytes: OK,
        close: false,
    };
    let hang_up = || Answer {
        bytes: b"",
        close: true,
    };
    let mut script = vec![answer()];
    for _ in 0..3 {
        script.extend([hang_up(), answer()]);
    }
    script.push(hang_up());
    let iam = Scripted::start(script).await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    for _ in 0..4 {
        let (status, _, body) = get(&format!("{}/x", uh.url())).await;
        assert_eq!((status, body), (StatusCode::OK, Bytes::from_static(b"ok")));
    }
    // Each GET after the first tried the pooled connection, lost it, and went again.
    assert_eq!(iam.connections.load(Ordering::SeqCst), 4);
    assert_eq!(iam.heads.lock().expect("lock").len(), 7);

    // A POST may have been acted on before the connection dropped: not sent twice.
    let post = Request::post(format!("{}/users", uh.url()))
        .body(full(Bytes::from_static(b"{}")))
        .expect("request");
    let (status, _, body) = send(post).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        String::from_utf8_lossy(&body).contains(r#""error":"upstream_error""#),
        "{body:?}"
    );
    assert_eq!(iam.connections.load(Ordering::SeqCst), 4);
    assert_eq!(iam.heads.lock().expect("lock").len(), 8);
    uh.handle.stop().await;
}

#[tokio::test]
async fn expect_100_continue_is_honoured() {
    let up = echo_upstream().await;
    let uh = Userhook::start(&config_for(&up.url(), ""), false).await;
    let mut s = tokio::net::TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    s.write_all(b"PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        .await
        .expect("write headers");
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("100 Continue in time")
        .expect("read");
    assert_eq!(&buf[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"12345").await.expect("write body");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&rest);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n12345"), "{text}");
    assert!(up.requests()[0].headers.get("expect").is_none());
    uh.handle.stop().await;
}

#[tokio::test]
async fn websocket_upgrade_is_tunnelled() {
    // A raw upstream that accepts the upgrade and then echoes bytes back.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).await.expect("read") == 0 {
                return;
            }
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(head.contains("upgrade: websocket"), "{head}");
        assert!(
            head.contains("sec-websocket-key: dghlihnhbxbszsbub25jzq=="),
            "{head}"
        );
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
            .await
            .expect("write 101");
        let mut buf = [0u8; 1024];
        loop {
            let n = s.read(&mut buf).await.expect("read");
            if n == 0 {
                return;
            }
            s.write_all(&buf[..n]).await.expect("echo");
        }
    });
    let uh = Userhook::start(&config_for(&format!("http://{addr}"), ""), false).await;
    let mut s = tokio::net::TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b))
            .await
            .expect("101 in time")
            .expect("read");
        assert!(n > 0, "closed before 101");
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(
        text.starts_with("http/1.1 101 switching protocols\r\n"),
        "{text}"
    );
    assert!(text.contains("upgrade: websocket\r\n"), "{text}");
    assert!(
        text.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{text}"
    );
    // A masked WebSocket text frame "hello", echoed byte for byte.
    let frame = [
        0x81u8, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    s.write_all(&frame).await.expect("write frame");
    let mut echoed = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .expect("read");
    assert_eq!(echoed, frame);
    uh.handle.stop().await;
}

#[tokio::test]
async fn unreachable_upstream_is_502_with_json() {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = dead.local_addr().expect("addr");
    drop(dead);
    let uh = Userhook::start(&config_for(&format!("http://{addr}"), ""), false).await;
    let (status, headers, body) = get(&format!("{}/users", uh.url())).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers.get("content-type").expect("ct"), "application/json");
    assert_eq!(
        body,
        Bytes::from_static(br#"{"error":"upstream_unreachable","message":"the identity service could not be reached"}"#)
    );
    // Readiness says why.
    let (status, _, body) = get(&format!("{}/readyz", uh.admin_url())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["ready"], false);
    assert!(
        v["reason"]
            .as_str()
            .expect("reason")
            .contains("unreachable"),
        "{v}"
    );
    let (status, _, body) = get(&format!("{}/healthz", uh.admin_url())).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#))
    );
    uh.handle.stop().await;
}

#[tokio::test]
async fn slow_upstream_is_504_with_json() {
    let up = FakeUpstream::start(|_| async move {
        tokio::time::sleep(Duration::from_secs(5)).await; // a stuck IAM, not synchronisation
        respond(200, "late")
    })
    .await;
    let yaml = format!(
        "listen: 127.0.0.1:0\nupstream: {}\nadmin: {{listen: 127.0.0.1:0}}\ntimeouts: {{upstream: 300ms}}\n",
        up.url()
    );
    let uh = Userhook::start(&yaml, false).await;
    let started = std::time::Instant::now();
    let (status, _, body) = get(&format!("{}/slow", uh.url())).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        body,
        Bytes::from_static(br#"{"error":"upstream_timeout","message":"the identity service did not answer in time"}"#)
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "timeout not enforced: {:?}",
        started.elapsed()
    );
    let (status, _, _) = get(&format!("{}/readyz", uh.admin_url())).await;
    assert_eq!(status, StatusCode::OK);
    uh.handle.stop().await;
}

#[tokio::test]
async fn http2_cleartext_clients_are_served() {
    let up = echo_upstream().await;
    let uh = Userhook::start(&config_for(&up.url(), ""), false).await;
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<TestBody>();
    let req = Request::post(format!("{}/h2?x=1", uh.url()))
        .body(full("over h2"))
        .expect("request");
    let resp = h2.request(req).await.expect("h2 request");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(body, Bytes::from_static(b"over h2"));
    let seen = &up.requests()[0];
    assert_eq!(seen.uri, "/h2?x=1");
    assert_eq!(
        seen.headers
            .get("host")
            .expect("host")
            .to_str()
            .expect("str"),
        uh.handle.proxy_addr.to_string()
    );
    uh.handle.stop().await;
}
