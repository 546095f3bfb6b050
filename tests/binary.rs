//! The real binary: `check`, SIGHUP reloads, restart-needing changes, graceful SIGTERM.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use support::*;

#[tokio::test]
async fn check_reports_every_problem_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "listen: nowhere\nupstream: ftp://iam\nwebhooks:\n  - name: x\n    actions: [creatd]\n    url: http://127.0.0.1:1/hook\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .args(["check"])
        .arg(&bad)
        .output()
        .expect("run check");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen:"), "{err}");
    assert!(err.contains("upstream:"), "{err}");
    assert!(err.contains("webhooks[0].actions"), "{err}");

    let good = dir.path().join("good.yaml");
    std::fs::write(&good, config_for("http://127.0.0.1:8081", "")).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .args(["check"])
        .arg(&good)
        .output()
        .expect("run check");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("is valid"), "{text}");
    assert!(text.contains("http://127.0.0.1:8081"), "{text}");
}

#[tokio::test]
async fn shipped_reference_config_passes_check() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .args([
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/userhook.yaml"),
        ])
        .output()
        .expect("run check");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn sighup_reloads_and_listen_change_needs_restart() {
    let a = FakeUpstream::fixed("from A").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    std::fs::write(&path, config_for(&a.url(), "")).expect("write");
    let bin = Binary::start(&path).await;

    bin.signal("HUP");
    eventually(Duration::from_secs(10), "SIGHUP handled", || async {
        bin.logged("SIGHUP").then_some(())
    })
    .await;
    assert!(bin.logged("config unchanged"), "{}", bin.log_text());

    // Moving the listener cannot happen live: it is said, and the rest applies.
    let b = FakeUpstream::fixed("from B").await;
    let text = config_for(&b.url(), "").replace(
        "listen: 127.0.0.1:0\nupstream",
        "listen: 127.0.0.1:1\nupstream",
    );
    std::fs::write(&path, text).expect("write");
    eventually(
        Duration::from_secs(10),
        "reload with listen change",
        || async {
            bin.logged("restart userhook to move the proxy port")
                .then_some(())
        },
    )
    .await;
    let (status, _, body) = get(&format!("http://{}/x", bin.proxy_addr)).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Bytes::from_static(b"from B"))
    );
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let slow = FakeUpstream::start(|_| async move {
        tokio::time::sleep(Duration::from_millis(800)).await; // a slow IAM call in flight
        respond(200, "finished")
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    std::fs::write(&path, config_for(&slow.url(), "")).expect("write");
    let mut bin = Binary::start(&path).await;
    let url = format!("http://{}/slow", bin.proxy_addr);
    let in_flight = tokio::spawn(async move { get(&url).await });
    eventually(
        Duration::from_secs(5),
        "request reached the upstream",
        || async { (!slow.requests().is_empty()).then_some(()) },
    )
    .await;
    bin.signal("TERM");
    let (status, _, body) = in_flight.await.expect("client");
    assert_eq!(
        (status, body),
        (StatusCode::OK, Bytes::from_static(b"finished"))
    );
    let exit = tokio::time::timeout(Duration::from_secs(10), bin.child.wait())
        .await
        .expect("exits within the grace period")
        .expect("wait");
    assert_eq!(exit.code(), Some(0), "{}", bin.log_text());
    // New connections are refused once draining started.
    assert!(tokio::net::TcpStream::connect(bin.proxy_addr)
        .await
        .is_err());
}

#[tokio::test]
async fn sigterm_closes_idle_keep_alive_connections_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = FakeUpstream::start(|_| async move { respond(200, "ok") }).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    // A grace far longer than the test may take: only a prompt close of the idle connection
    // lets the process exit in time.
    let yaml = format!(
        "listen: 127.0.0.1:0\nupstream: {}\nadmin:\n  listen: 127.0.0.1:0\ntimeouts:\n  upstream: 2s\n  shutdown_grace: 120s\n",
        up.url()
    );
    std::fs::write(&path, yaml).expect("write");
    let mut bin = Binary::start(&path).await;
    let mut idle = tokio::net::TcpStream::connect(bin.proxy_addr)
        .await
        .expect("connect");
    idle.write_all(b"GET /x HTTP/1.1\r\nHost: iam\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"ok") {
        let n = idle.read(&mut buf).await.expect("read response");
        assert!(n > 0, "closed before answering: {head:?}");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"), "{head:?}");
    // Kept alive and idle: now shut down.
    bin.signal("TERM");
    let eof = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf))
        .await
        .expect("the idle connection is closed within 10 s, not at the end of the grace");
    assert_eq!(eof.expect("read"), 0, "closed cleanly, nothing more sent");
    let exit = tokio::time::timeout(Duration::from_secs(10), bin.child.wait())
        .await
        .expect("exits without waiting out the grace period")
        .expect("wait");
    assert_eq!(exit.code(), Some(0), "{}", bin.log_text());
}
