//! The rig the live-feed tests share (`GET /events`, `userhook tail`, the web console): a fake
//! users API, two webhook receivers (one that takes everything, one that refuses with 400 so
//! its deliveries are dead-lettered at once), a config with an admin token, the real binary,
//! and calls that carry long canary credentials (a password, a bearer token, a session cookie,
//! a reset code the API answers with) which must never show up in any live output.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};

use super::receiver::WebhookReceiver;
use super::{full, respond, send, Binary, FakeUpstream};

/// The admin token (from the environment, as README recommends).
pub(crate) const TOKEN: &str = "CANARY-ADMIN-TOKEN-5d1e9a7c3b2f4e6a8c0d1f3b5a7c9e2d";
/// Sent as every user's password.
pub(crate) const PASSWORD: &str = "CANARY-PASSWORD-7e3f1a9b5c2d4e6f8a0b1c3d5e7f9a2b";
/// The access token the login answers with, and that clients present.
pub(crate) const BEARER: &str = "CANARY-BEARER-eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2ln";
/// The session cookie the login sets, and that clients present.
pub(crate) const SESSION: &str = "CANARY-SESSION-COOKIE-4b6d8f0a2c4e6a8b0d2f4a6c8e0b2d4f";
/// A secret the users API answers a creation with; a rule maps it into a field whose name
/// marks a credential (`ResetToken`), so the event carries it and the feed must mask it.
pub(crate) const RESET: &str = "CANARY-RESET-CODE-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";

/// Every canary.
pub(crate) const CANARIES: [&str; 5] = [TOKEN, PASSWORD, BEARER, SESSION, RESET];

/// Panics when `text` (what `what` printed or showed) contains a canary.
pub(crate) fn assert_no_canary(what: &str, text: &str) {
    for c in CANARIES {
        assert!(!text.contains(c), "{what} shows the canary {c}:\n{text}");
    }
    // Not a prefix of one either (a value cut short would still leak most of it).
    assert!(
        !text.contains("CANARY-"),
        "{what} shows part of a canary:\n{text}"
    );
}

/// The fake users API, the receivers and the config file.
pub(crate) struct LiveRig {
    pub iam: FakeUpstream,
    /// Takes every event (`ok-hook`).
    pub ok: WebhookReceiver,
    /// Refuses created events with 400 (`dead-hook`): dead letters at once.
    pub dead: WebhookReceiver,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The admin port written into the config (fixed, so `tail` can find it from the config).
    pub admin_port: u16,
}

/// A port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl LiveRig {
    /// The API, the receivers and a config naming them.
    pub(crate) async fn new() -> LiveRig {
        let next_id = Arc::new(AtomicUsize::new(1));
        let iam = FakeUpstream::start(move |r| {
            let next_id = next_id.clone();
            async move {
                let path = r.uri.split('?').next().unwrap_or("").to_owned();
                let body: serde_json::Value =
                    serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
                match (r.method.as_str(), path.as_str()) {
                    ("POST", "/users") => {
                        let id = format!("u-{}", next_id.fetch_add(1, Ordering::SeqCst));
                        let answer = serde_json::json!({
                            "id": id,
                            "username": body["username"],
                            "email": body["email"],
                            "reset_code": RESET,
                        });
                        respond(201, answer.to_string())
                    }
                    ("POST", "/login") => {
                        let mut resp = respond(
                            200,
                            serde_json::json!({"access_token": BEARER, "token_type": "Bearer"})
                                .to_string(),
                        );
                        resp.headers_mut().insert(
                            "set-cookie",
                            format!("sid={SESSION}; HttpOnly; Path=/")
                                .parse()
                                .expect("cookie"),
                        );
                        resp
                    }
                    ("DELETE", p) if p.starts_with("/users/") => respond(204, ""),
                    _ => respond(404, r#"{"error":"not found"}"#),
                }
            }
        })
        .await;
        let ok = WebhookReceiver::fixed(200, "ok").await;
        let dead = WebhookReceiver::fixed(400, "no thanks").await;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("userhook.yaml");
        let admin_port = free_port();
        let text = format!(
            "listen: 127.0.0.1:0\n\
             upstream: {iam}\n\
             admin:\n  listen: 127.0.0.1:{admin_port}\n  token: ${{USERHOOK_ADMIN_TOKEN}}\n\
             delivery:\n  spool_dir: {spool}\n\
             timeouts:\n  shutdown_grace: 2s\n\
             routes:\n\
             \x20 - action: created\n    method: POST\n    path: /users\n    fields:\n\
             \x20     ID: response.body.id\n      Name: request.body.username\n\
             \x20     Email: request.body.email\n      ResetToken: response.body.reset_code\n\
             \x20 - action: login\n    method: POST\n    path: /login\n    fields:\n\
             \x20     Name: request.body.username\n\
             \x20 - action: deleted\n    method: DELETE\n    path: /users/{{id}}\n    fields:\n\
             \x20     ID: path.id\n\
             webhooks:\n\
             \x20 - {{name: ok-hook, actions: ['*'], url: '{ok}', body: '{{\"id\":\"{{{{$$.ID$$}}}}\",\"reset\":\"{{{{$$.ResetToken$$}}}}\"}}'}}\n\
             \x20 - {{name: dead-hook, actions: [created], url: '{dead}'}}\n",
            iam = iam.url(),
            spool = dir.path().join("spool").display(),
            ok = ok.url("/hook"),
            dead = dead.url("/hook"),
        );
        std::fs::write(&config, text).expect("write config");
        LiveRig {
            iam,
            ok,
            dead,
            dir,
            config,
            admin_port,
        }
    }

    /// The real binary on this config, with the admin token in its environment.
    pub(crate) async fn start(&self) -> Binary {
        Binary::start_with_env(
            &self.config,
            &[("RUST_LOG", "info"), ("USERHOOK_ADMIN_TOKEN", TOKEN)],
        )
        .await
    }

    /// Creates a user through the proxy (with the canary password); its id.
    pub(crate) async fn create(&self, bin: &Binary, name: &str) -> String {
        let body = serde_json::json!({
            "username": name,
            "email": format!("{name}@example.com"),
            "password": PASSWORD,
        });
        let (status, _, answer) = post(bin, "/users", &body, &[]).await;
        assert_eq!(status, StatusCode::CREATED);
        let v: serde_json::Value = serde_json::from_slice(&answer).expect("json");
        v["id"].as_str().expect("id").to_owned()
    }

    /// Logs a user in through the proxy (password in, token and cookie out).
    pub(crate) async fn login(&self, bin: &Binary, name: &str) {
        let body = serde_json::json!({"username": name, "password": PASSWORD});
        let (status, _, _) = post(bin, "/login", &body, &[]).await;
        assert_eq!(status, StatusCode::OK);
    }

    /// Deletes a user through the proxy, presenting the canary token and cookie.
    pub(crate) async fn delete(&self, bin: &Binary, id: &str) {
        let req = Request::delete(format!("http://{}/users/{id}", bin.proxy_addr))
            .header("authorization", format!("Bearer {BEARER}"))
            .header("cookie", format!("sid={SESSION}"))
            .body(full(Bytes::new()))
            .expect("request");
        let (status, _, _) = send(req).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    /// `http://127.0.0.1:PORT` of the admin API.
    pub(crate) fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }
}

async fn post(
    bin: &Binary,
    path: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut req = Request::post(format!("http://{}{path}", bin.proxy_addr))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(full(body.to_string())).expect("request")).await
}
