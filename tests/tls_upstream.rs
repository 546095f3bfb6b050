//! An `https://` upstream signed by a private CA given in `upstream_tls.ca_file`.

mod support;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::*;

/// Starts an HTTPS server for `localhost` whose certificate is signed by a fresh CA; returns
/// its port and the CA's PEM.
async fn tls_upstream() -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "userhook test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");

    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(|req: Request<Incoming>| async move {
                    let host = req
                        .headers()
                        .get("host")
                        .map(|h| h.to_str().unwrap_or("").to_string())
                        .unwrap_or_default();
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    let mut out = format!("tls ok host={host} body=").into_bytes();
                    out.extend_from_slice(&body);
                    Ok::<_, Infallible>(Response::new(full(out)))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, ca_cert.pem())
}

#[tokio::test]
async fn https_upstream_with_private_ca() {
    let (port, ca_pem) = tls_upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca_pem).expect("write ca");

    let yaml = config_for(
        &format!("https://localhost:{port}"),
        &format!(
            "preserve_host: false\nupstream_tls:\n  ca_file: {}\n",
            ca_path.display()
        ),
    );
    let uh = Userhook::start(&yaml, false).await;
    let req = Request::post(format!("{}/secure", uh.url()))
        .body(full("payload"))
        .expect("request");
    let (status, _, body) = send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        Bytes::from(format!("tls ok host=localhost:{port} body=payload"))
    );
    uh.handle.stop().await;

    // Without the CA the certificate is not trusted: 502, not a silent plaintext fallback.
    let uh = Userhook::start(&config_for(&format!("https://localhost:{port}"), ""), false).await;
    let (status, _, body) = get(&format!("{}/secure", uh.url())).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(std::str::from_utf8(&body)
        .expect("utf8")
        .contains("upstream_unreachable"));
    uh.handle.stop().await;
}

#[tokio::test]
async fn missing_ca_file_is_a_config_error() {
    let errors = userhook::snapshot::Snapshot::from_text(
        &config_for(
            "https://localhost:1",
            "upstream_tls:\n  ca_file: /nonexistent/ca.pem\n",
        ),
        None,
    )
    .expect_err("must fail");
    let text = errors.to_string();
    assert!(text.contains("upstream_tls.ca_file"), "{text}");
}
