//! Responses framed every way HTTP/1.1 allows reach the client as the IAM meant them, on the
//! proxy's inline client (plain HTTP, small bodies): chunked with extensions and trailers,
//! informational heads before the answer, bodies that end with the connection, odd reason
//! phrases, and broken framing as a clean 502 rather than a guess.

mod support;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::scripted::{Answer, Scripted};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends `request` to the proxy and reads until it closes the connection.
async fn exchange(addr: std::net::SocketAddr, request: &str) -> String {
    String::from_utf8_lossy(&raw_exchange(addr, request.as_bytes(), b"").await).into_owned()
}

fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

#[tokio::test]
async fn chunked_answers_with_extensions_and_trailers_keep_the_connection() {
    let iam = Scripted::start(vec![
        Answer {
            bytes: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n4;name=value\r\nabcd\r\n3\r\nefg\r\n0\r\nx-sum: 7\r\n\r\n",
            close: false,
        },
        Answer {
            bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain",
            close: false,
        },
    ])
    .await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    let first = exchange(
        uh.handle.proxy_addr,
        "GET /a HTTP/1.1\r\nHost: iam\r\nTE: trailers\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(first.contains("transfer-encoding: chunked\r\n"), "{first}");
    assert_eq!(
        body_of(&first),
        "4\r\nabcd\r\n3\r\nefg\r\n0\r\nx-sum: 7\r\n\r\n"
    );
    let second = exchange(
        uh.handle.proxy_addr,
        "GET /b HTTP/1.1\r\nHost: iam\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(second.starts_with("HTTP/1.1 200 OK\r\n"), "{second}");
    assert_eq!(body_of(&second), "again");
    assert_eq!(iam.connections.load(Ordering::SeqCst), 1);
    uh.handle.stop().await;
}

#[tokio::test]
async fn informational_heads_are_skipped_and_reason_phrases_kept() {
    let iam = Scripted::start(vec![
        Answer {
            bytes: b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            close: false,
        },
        Answer {
            bytes: b"HTTP/1.1 200 Fine Thanks\r\nContent-Length: 0\r\n\r\n",
            close: false,
        },
    ])
    .await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    let created = exchange(
        uh.handle.proxy_addr,
        "POST /users HTTP/1.1\r\nHost: iam\r\nContent-Length: 4\r\nConnection: close\r\n\r\n{ }\n",
    )
    .await;
    assert!(created.starts_with("HTTP/1.1 201 Created\r\n"), "{created}");
    assert!(
        !created.to_ascii_lowercase().contains("\r\nlink:"),
        "{created}"
    );
    assert_eq!(body_of(&created), "ok");
    let fine = exchange(
        uh.handle.proxy_addr,
        "GET /x HTTP/1.1\r\nHost: iam\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(fine.starts_with("HTTP/1.1 200 Fine Thanks\r\n"), "{fine}");
    // The 103 was consumed exactly: the connection carried the next exchange too.
    assert_eq!(iam.connections.load(Ordering::SeqCst), 1);
    // The request reached the IAM in origin form, with its body length.
    let heads = iam.heads.lock().expect("lock").clone();
    assert!(
        heads[0].starts_with("POST /users HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    assert!(heads[0].contains("content-length: 4\r\n"), "{}", heads[0]);
    uh.handle.stop().await;
}

#[tokio::test]
async fn bodies_ending_with_the_connection_are_whole_and_not_reused() {
    let iam = Scripted::start(vec![
        Answer {
            bytes: b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
            close: true,
        },
        // These two leave the connection open: only the proxy's own rules keep it from
        // being reused (HTTP/1.0, `Connection: close`).
        Answer {
            bytes: b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nold style",
            close: false,
        },
        Answer {
            bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nlast",
            close: false,
        },
        Answer {
            bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh",
            close: false,
        },
    ])
    .await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    for want in ["until the end", "old style", "last", "fresh"] {
        let got = exchange(
            uh.handle.proxy_addr,
            "GET /x HTTP/1.1\r\nHost: iam\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        // An unknown length is re-chunked for the client, whole and properly ended.
        let expected = if want == "until the end" {
            assert!(got.contains("transfer-encoding: chunked\r\n"), "{got}");
            format!("{:X}\r\n{want}\r\n0\r\n\r\n", want.len())
        } else {
            want.to_owned()
        };
        assert_eq!(body_of(&got), expected, "{got}");
    }
    assert_eq!(iam.connections.load(Ordering::SeqCst), 4);
    uh.handle.stop().await;
}

#[tokio::test]
async fn broken_framing_is_a_502_or_a_cut_response_never_a_guess() {
    let iam = Scripted::start(vec![
        Answer {
            bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
            close: true,
        },
        Answer {
            bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            close: true,
        },
        Answer {
            bytes: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
            close: true,
        },
        Answer {
            bytes: b"this is not http\r\n\r\n",
            close: true,
        },
    ])
    .await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    let request = "GET /x HTTP/1.1\r\nHost: iam\r\nConnection: close\r\n\r\n";

    let conflicting = exchange(uh.handle.proxy_addr, request).await;
    assert!(
        conflicting.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{conflicting}"
    );
    assert!(body_of(&conflicting).contains(r#""error":"upstream_error""#));

    // A body cut short: the connection is closed before the response is complete (the
    // client may or may not have seen the head), never padded or passed off as whole.
    let cut = exchange(uh.handle.proxy_addr, request).await;
    assert!(cut.is_empty() || body_of(&cut).len() < 10, "{cut}");
    assert!(
        !cut.contains("502"),
        "the head was already on its way: {cut}"
    );

    let bad_chunk = exchange(uh.handle.proxy_addr, request).await;
    assert!(
        !bad_chunk.ends_with("0\r\n\r\n"),
        "a broken body must not look complete: {bad_chunk}"
    );

    // Each broken answer came from a real exchange with the IAM.
    assert_eq!(iam.heads.lock().expect("lock").len(), 3);
    let garbage = exchange(uh.handle.proxy_addr, request).await;
    assert!(
        garbage.starts_with("HTTP/1.1 502 Bad Gateway\r\n"),
        "{garbage}"
    );
    uh.handle.stop().await;
}

#[tokio::test]
async fn a_slow_large_request_body_streams_instead_of_waiting_to_be_whole() {
    // Past the 64 KiB that are read whole first (`client_body.rs` covers those), a body
    // streams. The IAM records every byte as it arrives and answers once the body is complete.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received = Arc::new(Mutex::new(Vec::<u8>::new()));
    let seen = received.clone();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            let n = match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let done = {
                let mut all = seen.lock().expect("lock");
                all.extend_from_slice(&buf[..n]);
                all.ends_with(b"0123456789")
            };
            if done {
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
            }
        }
    });
    let uh = Userhook::start(&config_for(&format!("http://{addr}"), ""), false).await;
    let mut client = TcpStream::connect(uh.handle.proxy_addr)
        .await
        .expect("connect");
    client
        .write_all(b"POST /upload HTTP/1.1\r\nHost: iam\r\nContent-Length: 70010\r\nConnection: close\r\n\r\n")
        .await
        .expect("write head");
    client.write_all(&[b'a'; 70_000]).await.expect("write most");
    // Most of it reaches the IAM while the client still holds the end.
    eventually(Duration::from_secs(5), "the first part at the IAM", || {
        let received = received.clone();
        async move {
            received
                .lock()
                .expect("lock")
                .ends_with(&[b'a'; 1000])
                .then_some(())
        }
    })
    .await;
    client.write_all(b"0123456789").await.expect("write rest");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut out))
        .await
        .expect("response in time")
        .expect("read");
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nok"), "{out}");
    let received = String::from_utf8_lossy(&received.lock().expect("lock")).into_owned();
    assert!(
        received.starts_with("POST /upload HTTP/1.1\r\n"),
        "{received}"
    );
    assert!(received.ends_with("aaaa0123456789"), "{received}");
    uh.handle.stop().await;
}

#[tokio::test]
async fn endless_trailers_are_refused_and_the_proxy_keeps_serving() {
    // 30,000 distinct trailer fields would overflow a header map; they must be cut off.
    let mut flood =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-t0\r\n\r\n2\r\nok\r\n0\r\n"
            .to_vec();
    for i in 0..30_000 {
        flood.extend_from_slice(format!("x-t{i}: v\r\n").as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let iam = Scripted::start(vec![
        Answer {
            bytes: Box::leak(flood.into_boxed_slice()),
            close: true,
        },
        Answer {
            bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstill",
            close: false,
        },
    ])
    .await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    let request = "GET /x HTTP/1.1\r\nHost: iam\r\nTE: trailers\r\nConnection: close\r\n\r\n";
    let flooded = exchange(uh.handle.proxy_addr, request).await;
    // Refused, the response breaks off: the client never sees its end (the announced
    // `x-t0` trailer and the blank line that would close it).
    assert!(
        !body_of(&flooded).contains("x-t0") && !flooded.ends_with("\r\n\r\n") || flooded.is_empty(),
        "{}",
        &flooded[..flooded.len().min(200)]
    );
    assert_eq!(iam.heads.lock().expect("lock").len(), 1);
    let after = exchange(uh.handle.proxy_addr, request).await;
    assert!(after.starts_with("HTTP/1.1 200 OK\r\n"), "{after}");
    assert_eq!(body_of(&after), "still");
    uh.handle.stop().await;
}
