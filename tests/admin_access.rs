//! The admin API's access rules against the real binary (README "Admin API security"):
//! the bearer token (`admin.token` from the environment) with and without it, a wrong one;
//! cross-site and simple-request POSTs; DNS-rebinding `Host`s; probes that stay open; a
//! non-loopback listener without a token refused by `check` and `serve`; and the CLI, which
//! sends the token itself.

mod support;

use std::path::Path;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use support::{full, send, Binary, FakeUpstream};

const TOKEN: &str = "CANARY-admin-token-7f3a9c0e5b1d";

fn write_config(dir: &Path, upstream: &str, admin: &str) -> std::path::PathBuf {
    let path = dir.join("userhook.yaml");
    let text = format!(
        "listen: 127.0.0.1:0\nupstream: {upstream}\n{admin}\ndelivery:\n  spool_dir: {}\ntimeouts:\n  shutdown_grace: 2s\n",
        dir.join("spool").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// One request to the admin API with exactly these headers; status, one header, body.
async fn call(
    bin: &Binary,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", bin.admin_addr));
    let mut has_host = false;
    for (k, v) in headers {
        has_host |= k.eq_ignore_ascii_case("host");
        req = req.header(*k, *v);
    }
    if !has_host {
        req = req.header("host", bin.admin_addr.to_string());
    }
    let (status, h, body) = send(req.body(full(Bytes::new())).expect("request")).await;
    (
        status,
        h.get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn error_body(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

const MISSING: &str =
    "this endpoint needs the admin token: send `Authorization: Bearer <admin.token>`";
const WRONG: &str =
    "the bearer token does not match admin.token: send `Authorization: Bearer <admin.token>`";
const NOT_JSON: &str = "requests that change something must send `Content-Type: application/json` (a plain form POST is refused: cross-site protection)";
const BAD_HOST: &str = "the Host header must be localhost or an IP address (DNS-rebinding protection); connect to http://127.0.0.1:PORT or send the admin token";
const CROSS_SITE: &str = "cross-site requests may not change anything here (Sec-Fetch-Site); send the request from a command-line client such as curl or `userhook deadletter`";
const FOREIGN_ORIGIN: &str = "the Origin header names another site; requests that change something must come from the admin listener's own origin or carry no Origin (curl, `userhook deadletter`)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_token_from_the_environment() {
    let iam = FakeUpstream::fixed("{}").await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A fixed port: the CLI below finds the running instance through admin.listen.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let path = write_config(
        dir.path(),
        &iam.url(),
        &format!("admin:\n  listen: 127.0.0.1:{port}\n  token: ${{USERHOOK_ADMIN_TOKEN}}"),
    );
    let bin = Binary::start_with_env(
        &path,
        &[("RUST_LOG", "debug"), ("USERHOOK_ADMIN_TOKEN", TOKEN)],
    )
    .await;
    let bearer = format!("Bearer {TOKEN}");
    let auth = ("authorization", bearer.as_str());

    // Probes stay open, whatever the Host.
    for probe in ["/healthz", "/readyz"] {
        let (s, _, _) = call(&bin, Method::GET, probe, &[]).await;
        assert_eq!(s, StatusCode::OK, "{probe}");
        let (s, _, _) = call(&bin, Method::GET, probe, &[("host", "evil.example")]).await;
        assert_eq!(s, StatusCode::OK, "{probe} with a foreign Host");
    }

    // Every data endpoint, /metrics included, needs the token.
    for path in [
        "/deliveries",
        "/deadletters",
        "/deadletters/x",
        "/spool",
        "/config",
        "/reloads",
        "/metrics",
    ] {
        let (s, www, body) = call(&bin, Method::GET, path, &[]).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(www.as_deref(), Some("Bearer realm=\"userhook admin\""));
        assert_eq!(body, error_body(MISSING), "{path}");
        let (s, _, body) = call(
            &bin,
            Method::GET,
            path,
            &[("authorization", "Bearer wrong-token-0123456789")],
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body, error_body(WRONG), "{path}");
        let (s, _, _) = call(&bin, Method::GET, path, &[auth]).await;
        let want = if path == "/deadletters/x" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(s, want, "{path} with the token");
    }
    // A prefix or an extension of the token is wrong too.
    for wrong in [&TOKEN[..TOKEN.len() - 1], &format!("{TOKEN}0")] {
        let (s, _, _) = call(
            &bin,
            Method::GET,
            "/deliveries",
            &[("authorization", &format!("Bearer {wrong}"))],
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{wrong}");
    }

    // Mutations: the token, JSON, and no foreign origin.
    let json = ("content-type", "application/json");
    let (s, _, body) = call(&bin, Method::POST, "/deadletters/purge", &[json]).await;
    assert_eq!((s, body), (StatusCode::UNAUTHORIZED, error_body(MISSING)));
    let (s, _, body) = call(&bin, Method::POST, "/deadletters/purge", &[auth]).await;
    assert_eq!(
        (s, body),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, error_body(NOT_JSON))
    );
    let form = ("content-type", "application/x-www-form-urlencoded");
    let (s, _, _) = call(&bin, Method::POST, "/deadletters/replay", &[auth, form]).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _, body) = call(
        &bin,
        Method::POST,
        "/deadletters/purge",
        &[auth, json, ("origin", "http://evil.example")],
    )
    .await;
    assert_eq!(
        (s, body),
        (StatusCode::FORBIDDEN, error_body(FOREIGN_ORIGIN))
    );
    let (s, _, body) = call(
        &bin,
        Method::POST,
        "/deadletters/purge",
        &[auth, json, ("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!((s, body), (StatusCode::FORBIDDEN, error_body(CROSS_SITE)));
    let (s, _, body) = call(&bin, Method::POST, "/deadletters/purge", &[auth, json]).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, r#"{"purged":0}"#));
    let (s, _, body) = call(&bin, Method::POST, "/deadletters/replay", &[auth, json]).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, r#"{"replayed":0}"#));
    // With the token, a name in Host is fine (a rebinding page cannot know the token).
    let (s, _, _) = call(
        &bin,
        Method::GET,
        "/deliveries",
        &[auth, ("host", "userhook-admin.iam.svc:9090")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // The token is never shown: not in /config, not in the log (at debug).
    let (_, _, config) = call(&bin, Method::GET, "/config", &[auth]).await;
    let config: serde_json::Value = serde_json::from_str(&config).expect("JSON");
    assert_eq!(config["config"]["admin"]["token"], "<redacted>");
    assert!(!config.to_string().contains(TOKEN));

    // The CLI reads the token from the same config (and environment) and sends it.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .args(["deadletter", "purge", "--config"])
        .arg(&path)
        .env("USERHOOK_ADMIN_TOKEN", TOKEN)
        .output()
        .await
        .expect("run the CLI");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 dead letter(s) purged by the running instance.\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With another token it is told what to send.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .args(["deadletter", "list", "--config"])
        .arg(&path)
        .env("USERHOOK_ADMIN_TOKEN", "another-token-0123456789")
        .output()
        .await
        .expect("run the CLI");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("401 Unauthorized: the bearer token does not match admin.token"),
        "{err}"
    );
    assert!(!bin.log_text().contains(TOKEN), "the token was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_without_a_token_still_refuses_cross_site_and_rebinding() {
    let iam = FakeUpstream::fixed("{}").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &iam.url(), "admin:\n  listen: 127.0.0.1:0");
    let bin = Binary::start(&path).await;

    // Open to this host's own clients ...
    for host in [
        bin.admin_addr.to_string(),
        format!("localhost:{}", bin.admin_addr.port()),
    ] {
        let (s, _, body) = call(&bin, Method::GET, "/deliveries", &[("host", &host)]).await;
        assert_eq!(
            (s, body.as_str()),
            (StatusCode::OK, r#"{"deliveries":[]}"#),
            "{host}"
        );
    }
    // ... not to a page that rebound its own name to 127.0.0.1.
    for host in ["evil.example", "evil.example:9090", "127.0.0.1.nip.io"] {
        for path in ["/deliveries", "/deadletters", "/config", "/metrics"] {
            let (s, _, body) = call(&bin, Method::GET, path, &[("host", host)]).await;
            assert_eq!(
                (s, body),
                (StatusCode::FORBIDDEN, error_body(BAD_HOST)),
                "{host}{path}"
            );
        }
    }
    // No Host at all (HTTP/1.0) is refused too; the probes are not.
    let raw =
        support::raw_exchange(bin.admin_addr, b"GET /deliveries HTTP/1.0\r\n\r\n", b"}").await;
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.0 403 Forbidden\r\n"), "{raw}");
    let raw = support::raw_exchange(bin.admin_addr, b"GET /healthz HTTP/1.0\r\n\r\n", b"}").await;
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.0 200 OK\r\n"));
    for probe in ["/healthz", "/readyz"] {
        let (s, _, _) = call(&bin, Method::GET, probe, &[("host", "evil.example")]).await;
        assert_eq!(s, StatusCode::OK, "{probe}");
    }

    // A simple-request POST (what a cross-site form can send) is refused, and changes nothing.
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let headers: Vec<(&str, &str)> = ct.map(|c| ("content-type", c)).into_iter().collect();
        let (s, _, body) = call(&bin, Method::POST, "/deadletters/purge", &headers).await;
        assert_eq!(
            (s, body),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, error_body(NOT_JSON)),
            "{ct:?}"
        );
    }
    let json = ("content-type", "application/json");
    for (name, value, message) in [
        ("origin", "http://evil.example", FOREIGN_ORIGIN),
        ("origin", "null", FOREIGN_ORIGIN),
        ("sec-fetch-site", "cross-site", CROSS_SITE),
        ("sec-fetch-site", "same-site", CROSS_SITE),
    ] {
        let (s, _, body) = call(
            &bin,
            Method::POST,
            "/deadletters/replay",
            &[json, (name, value)],
        )
        .await;
        assert_eq!(
            (s, body),
            (StatusCode::FORBIDDEN, error_body(message)),
            "{name}: {value}"
        );
    }
    let (s, _, body) = call(
        &bin,
        Method::POST,
        "/deadletters/purge",
        &[json, ("host", "evil.example")],
    )
    .await;
    assert_eq!((s, body), (StatusCode::FORBIDDEN, error_body(BAD_HOST)));
    // The same-origin JSON request is served.
    let own = format!("http://{}", bin.admin_addr);
    let (s, _, body) = call(
        &bin,
        Method::POST,
        "/deadletters/purge",
        &[json, ("origin", &own), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, r#"{"purged":0}"#));
    // A preflight gets no CORS grant.
    let (s, _, _) = call(
        &bin,
        Method::OPTIONS,
        "/deadletters/purge",
        &[
            ("origin", "http://evil.example"),
            ("access-control-request-method", "POST"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_listener_needs_a_token() {
    let iam = FakeUpstream::fixed("{}").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &iam.url(), "admin:\n  listen: 0.0.0.0:0");
    for command in ["check", "serve"] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
            .arg(command)
            .args(if command == "serve" {
                vec!["--config"]
            } else {
                vec![]
            })
            .arg(&path)
            .output()
            .await
            .expect("run userhook");
        assert_eq!(out.status.code(), Some(2), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("admin.token: is required because admin.listen (0.0.0.0:0) accepts connections from other hosts"),
            "{command}: {err}"
        );
    }

    // With the token it starts, and the token is what guards it.
    let path = write_config(
        dir.path(),
        &iam.url(),
        "admin:\n  listen: 0.0.0.0:0\n  token: ${USERHOOK_ADMIN_TOKEN}",
    );
    let bin = Binary::start_with_env(
        &path,
        &[("RUST_LOG", "info"), ("USERHOOK_ADMIN_TOKEN", TOKEN)],
    )
    .await;
    let bearer = format!("Bearer {TOKEN}");
    let (s, _, _) = call(&bin, Method::GET, "/deliveries", &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = call(
        &bin,
        Method::GET,
        "/deliveries",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = call(&bin, Method::GET, "/readyz", &[]).await;
    assert_eq!(s, StatusCode::OK);

    // A token set but empty (the variable exported empty) is a config error, not "no token".
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .arg("check")
        .arg(&path)
        .env("USERHOOK_ADMIN_TOKEN", "")
        .output()
        .await
        .expect("run userhook");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin.token: is empty"));
}
