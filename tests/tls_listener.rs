//! The proxy's own TLS listener (`tls: {cert_file, key_file}`) with a real TLS client: HTTP/2
//! and HTTP/1.1 by ALPN, `X-Forwarded-Proto: https` to the IAM, and a rotated certificate
//! used for new connections without a restart.

mod support;

/// Held by each test that compares counters before and after: the recorder is process-wide.
static COUNTERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

use std::sync::Arc;
use std::time::Duration;

use http::Request;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};
use support::*;

/// A CA and a `localhost` leaf it signed: (CA DER, leaf PEM, key PEM).
fn issue(
    ca: &(
        rcgen::Issuer<'static, rcgen::KeyPair>,
        CertificateDer<'static>,
    ),
) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("leaf params")
        .signed_by(&key, &ca.0)
        .expect("leaf");
    (leaf.pem(), key.serialize_pem())
}

fn new_ca() -> (
    rcgen::Issuer<'static, rcgen::KeyPair>,
    CertificateDer<'static>,
) {
    let key = rcgen::KeyPair::generate().expect("ca key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "userhook listener test CA");
    let cert = params.self_signed(&key).expect("ca cert");
    (rcgen::Issuer::new(params, key), cert.der().clone())
}

/// A TLS connection to the proxy offering `alpn`; returns the stream and the leaf it got.
async fn connect(
    addr: std::net::SocketAddr,
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    let leaf = tls.get_ref().1.peer_certificates().expect("certs")[0].to_vec();
    (tls, leaf)
}

#[tokio::test]
async fn https_clients_get_h2_by_alpn_and_the_iam_hears_https() {
    let iam = FakeUpstream::fixed("ok").await;
    let ca = new_ca();
    let (cert, key) = issue(&ca);
    let dir = tempfile::tempdir().expect("dir");
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, &cert).expect("cert");
    std::fs::write(&key_path, &key).expect("key");
    let extra = format!(
        "tls:\n  cert_file: {}\n  key_file: {}\n",
        cert_path.display(),
        key_path.display()
    );
    let uh = Userhook::start(&config_for(&iam.url(), &extra), false).await;
    let addr = uh.handle.proxy_addr;

    // HTTP/2 by ALPN.
    let (tls, first_leaf) = connect(addr, &ca.1, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2");
    tokio::spawn(conn);
    let resp = h2
        .send_request(
            Request::get("https://localhost/users")
                .body(full(""))
                .expect("request"),
        )
        .await
        .expect("h2 response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"ok");

    // HTTP/1.1 by ALPN.
    let (tls, _) = connect(addr, &ca.1, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut h1, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1");
    tokio::spawn(conn);
    let resp = h1
        .send_request(
            Request::get("/users")
                .header("host", "localhost")
                .body(full(""))
                .expect("request"),
        )
        .await
        .expect("h1 response");
    assert_eq!(resp.status(), 200);

    let seen = iam.requests();
    assert_eq!(seen.len(), 2);
    for r in &seen {
        assert_eq!(r.headers["x-forwarded-proto"], "https");
        assert_eq!(r.headers["host"], "localhost");
    }

    // A rotated pair is used for new connections.
    let (cert, key) = issue(&ca);
    std::fs::write(&key_path, &key).expect("new key");
    std::fs::write(&cert_path, &cert).expect("new cert");
    eventually(
        Duration::from_secs(15),
        "the rotated certificate served",
        || {
            let (ca, first_leaf) = (&ca.1, &first_leaf);
            async move {
                let (_, leaf) = connect(addr, ca, &[b"http/1.1"]).await;
                (leaf != *first_leaf).then_some(())
            }
        },
    )
    .await;
}

#[tokio::test]
async fn failed_handshakes_are_counted_as_the_clients() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::fixed("ok").await;
    let ca = new_ca();
    let (cert, key) = issue(&ca);
    let dir = tempfile::tempdir().expect("dir");
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, &cert).expect("cert");
    std::fs::write(&key_path, &key).expect("key");
    let extra = format!(
        "tls:\n  cert_file: {}\n  key_file: {}\n",
        cert_path.display(),
        key_path.display()
    );
    let uh = Userhook::start(&config_for(&iam.url(), &extra), false).await;
    let series = r#"userhook_client_errors_total{kind="tls_handshake"}"#;
    let count = |text: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    };
    let (_, _, body) = get(&format!("{}/metrics", uh.admin_url())).await;
    let before = count(&String::from_utf8_lossy(&body));
    // Plain HTTP to the TLS port: not a ClientHello.
    let answer = raw_exchange(
        uh.handle.proxy_addr,
        b"GET /users HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\r\n\r\n",
    )
    .await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "no plain answer");
    eventually(
        Duration::from_secs(10),
        "the failed handshake counted",
        || async {
            let (_, _, body) = get(&format!("{}/metrics", uh.admin_url())).await;
            (count(&String::from_utf8_lossy(&body)) == before + 1.0).then_some(())
        },
    )
    .await;
    assert!(iam.requests().is_empty(), "nothing reached the IAM");
}
