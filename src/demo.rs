//! `userhook demo`: see userhook work in one command, with nothing else installed.
//!
//! Starts three things on 127.0.0.1: a small sample IAM (a conventional JSON users API, the
//! `generic` profile), userhook in front of it with the bundled `config/demo.yaml`, and a
//! console webhook receiver. It then walks one user through create, update, a failed and a
//! successful login, logout and delete, printing each proxied call beside the webhooks it
//! caused. Exits non-zero if any expected webhook does not arrive.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::event::Action;

/// The bundled config; `${USERHOOK_DEMO_*}` are filled in by [`run`].
const DEMO_CONFIG: &str = include_str!("../config/demo.yaml");

/// How long each step waits for its webhooks before calling the demo failed.
const STEP_DEADLINE: Duration = Duration::from_secs(10);

/// One webhook request as the console receiver saw it.
#[derive(Debug)]
struct Received {
    method: Method,
    target: String,
    signature_headers: Vec<(String, String)>,
    body: Bytes,
}

/// Why the demo could not run, or did not see what it expected.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The bundled config did not load (a bug in this build).
    #[error("the demo config is invalid: {0}")]
    Config(#[from] crate::config::ConfigErrors),
    /// userhook itself did not start.
    #[error(transparent)]
    Start(#[from] crate::app::StartError),
    /// A local port, directory or request could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What the demo was doing.
        what: String,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The sample IAM answered something the demo cannot go on from.
    #[error("the sample IAM did not return {0}")]
    Missing(&'static str),
    /// Some steps did not produce the webhooks the config asks for.
    #[error("demo failed: {0} step(s) did not produce the expected webhooks")]
    Failed(usize),
}

/// `map_err` for a failed set-up step: what the demo was doing, and why it failed.
fn io<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> DemoError {
    let what = what.into();
    move |e| DemoError::Io {
        what,
        source: e.into(),
    }
}

/// Runs the demo; returns the process exit code.
pub async fn run() -> Result<(), DemoError> {
    let iam = start_sample_iam().await?;
    let (receiver, mut webhooks) = start_console_receiver().await?;
    let spool = tempfile_dir()?;

    let lookup = |name: &str| match name {
        "USERHOOK_DEMO_IAM" => Some(format!("http://{iam}")),
        "USERHOOK_DEMO_RECEIVER" => Some(format!("http://{receiver}")),
        "USERHOOK_DEMO_SPOOL" => Some(spool.display().to_string()),
        _ => std::env::var(name).ok(),
    };
    let file = crate::config::parse_str_with_env(DEMO_CONFIG, &lookup)?;
    crate::telemetry::init(&file.log);
    let runtime =
        crate::snapshot::Snapshot::compile(file, crate::snapshot::content_hash(DEMO_CONFIG), None)?;
    let subscriptions: Vec<(String, Vec<String>)> = runtime
        .file
        .webhooks
        .iter()
        .map(|w| (w.name.clone(), w.actions.clone()))
        .collect();
    let handle = crate::app::start(
        crate::app::Options {
            config_path: spool.join("unused.yaml"),
            watch: false,
        },
        runtime,
    )
    .await?;
    let proxy = handle.proxy_addr;

    println!("userhook demo");
    println!("  sample IAM        http://{iam}   (a JSON users API: the `generic` profile)");
    println!("  userhook proxy    http://{proxy}   (clients talk to this, it forwards to the IAM)");
    println!("  webhook console   http://{receiver}   (prints what userhook delivers)");
    println!("  config            config/demo.yaml: webhook `dce-default` (DCE's default body, all actions),");
    println!("                    `wecom-robot` (DCE's WeCom robot example, created and deleted)");
    println!();

    let client = DemoClient {
        proxy,
        events: tokio::sync::Mutex::new(handle.subscribe()),
    };
    let mut failures = 0;
    let step = |n: usize, title: &str| println!("{n}. {title}");

    step(1, "create a user");
    let (status, body) = client
        .call(Method::POST, "/users", None, r#"{"username":"alice","email":"alice@example.com","first_name":"Alice","last_name":"Liddell","password":"wonderland"}"#)
        .await?;
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .ok_or(DemoError::Missing("a user id"))?;
    failures += expect(&mut webhooks, Action::Created, &subscriptions, status).await;

    step(2, "update the user's email");
    let (status, _) = client
        .call(
            Method::PUT,
            &format!("/users/{id}"),
            None,
            r#"{"email":"alice@wonderland.example"}"#,
        )
        .await?;
    failures += expect(&mut webhooks, Action::Updated, &subscriptions, status).await;

    step(3, "log in with a wrong password");
    let (status, _) = client
        .call(
            Method::POST,
            "/login",
            None,
            r#"{"username":"alice","password":"rabbit-hole"}"#,
        )
        .await?;
    failures += expect(&mut webhooks, Action::LoginFailed, &subscriptions, status).await;

    step(4, "log in");
    let (status, body) = client
        .call(
            Method::POST,
            "/login",
            None,
            r#"{"username":"alice","password":"wonderland"}"#,
        )
        .await?;
    let token = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["access_token"].as_str().map(str::to_owned))
        .ok_or(DemoError::Missing("a token"))?;
    failures += expect(&mut webhooks, Action::Login, &subscriptions, status).await;

    step(5, "log out (the user is known only from the bearer token)");
    let (status, _) = client
        .call(Method::POST, "/logout", Some(&token), "")
        .await?;
    failures += expect(&mut webhooks, Action::Logout, &subscriptions, status).await;

    step(
        6,
        "delete the user (the request carries only the id; the user cache names them)",
    );
    let (status, _) = client
        .call(Method::DELETE, &format!("/users/{id}"), None, "")
        .await?;
    failures += expect(&mut webhooks, Action::Deleted, &subscriptions, status).await;

    step(7, "a call userhook does not care about");
    let (status, _) = client.call(Method::GET, "/healthz", None, "").await?;
    failures += expect_none(&mut webhooks, status).await;

    handle.stop().await;
    let _ = std::fs::remove_dir_all(&spool);
    println!();
    if failures == 0 {
        println!("demo finished: every call produced exactly the webhooks the config asks for.");
        println!("The password never left the proxy: look for it above, you will only find it masked in the calls.");
        Ok(())
    } else {
        Err(DemoError::Failed(failures))
    }
}

/// Waits for the webhooks one step should cause and prints them; returns 1 on a miss.
async fn expect(
    webhooks: &mut mpsc::Receiver<Received>,
    action: Action,
    subscriptions: &[(String, Vec<String>)],
    status: StatusCode,
) -> usize {
    let expected = subscriptions
        .iter()
        .filter(|(_, actions)| actions.iter().any(|a| a == "*" || a == action.as_str()))
        .count();
    let mut got = 0;
    while got < expected {
        match tokio::time::timeout(STEP_DEADLINE, webhooks.recv()).await {
            Ok(Some(w)) => {
                print_webhook(&w);
                got += 1;
            }
            _ => break,
        }
    }
    if got == expected {
        println!(
            "   -> {} caused {expected} webhook(s), as configured\n",
            action.event_type()
        );
        0
    } else {
        println!(
            "   !! expected {expected} webhook(s) for {} (IAM answered {status}), got {got}\n",
            action.event_type()
        );
        1
    }
}

/// Shows that an unmatched call is only forwarded: nothing is waiting in the console.
async fn expect_none(webhooks: &mut mpsc::Receiver<Received>, _status: StatusCode) -> usize {
    match webhooks.try_recv() {
        Ok(w) => {
            print_webhook(&w);
            println!("   !! an unmatched call caused a webhook\n");
            1
        }
        Err(_) => {
            println!(
                "   -> no webhook: not a user lifecycle call, so userhook only forwarded it\n"
            );
            0
        }
    }
}

fn print_webhook(w: &Received) {
    let body = String::from_utf8_lossy(&w.body);
    println!("   webhook {} {}", w.method, w.target);
    for (k, v) in &w.signature_headers {
        println!("           {k}: {v}");
    }
    println!("           {body}");
}

/// Calls the proxy and prints the call with any password masked.
struct DemoClient {
    proxy: SocketAddr,
    events: tokio::sync::Mutex<tokio::sync::broadcast::Receiver<crate::event::UserEvent>>,
}

impl DemoClient {
    async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: &'static str,
    ) -> Result<(StatusCode, Bytes), DemoError> {
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build_http::<Full<Bytes>>();
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("http://{}{path}", self.proxy))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .map_err(io("building a request"))?;
        let resp = client
            .request(req)
            .await
            .map_err(io("the proxy did not answer"))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(io("reading the proxy's answer"))?
            .to_bytes();
        let shown_body = mask_password(body);
        let auth = if bearer.is_some() {
            " (Authorization: Bearer …)"
        } else {
            ""
        };
        println!("   client  {method} {path}{auth} {shown_body}");
        let shown = String::from_utf8_lossy(&bytes);
        let shown = if shown.len() > 160 {
            format!("{}…", &shown[..shown.floor_char_boundary(160)])
        } else {
            shown.into_owned()
        };
        println!("   IAM     {} {}", status.as_u16(), shown);
        if path != "/healthz" {
            self.print_detected_event().await;
        }
        Ok((status, bytes))
    }

    /// Prints the event userhook detected for the last call. The event is produced when the
    /// response completes, which the client has just seen, so it is due at once.
    async fn print_detected_event(&self) {
        let mut events = self.events.lock().await;
        match tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
            Ok(Ok(ev)) => {
                let fields: Vec<String> = ev.user.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("   event   {} {}", ev.event_type, fields.join(" "));
            }
            _ => println!("   event   (none)"),
        }
    }
}

fn mask_password(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut m)) => {
            if m.contains_key("password") {
                m.insert("password".into(), "•••".into());
            }
            serde_json::Value::Object(m).to_string()
        }
        _ => body.to_string(),
    }
}

fn tempfile_dir() -> Result<std::path::PathBuf, DemoError> {
    let dir = std::env::temp_dir().join(format!("userhook-demo-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    Ok(dir)
}

// ----- the console webhook receiver -------------------------------------------------------

async fn start_console_receiver() -> Result<(SocketAddr, mpsc::Receiver<Received>), DemoError> {
    let (tx, rx) = mpsc::channel(64);
    let addr = serve_local(move |parts, body| {
        let tx = tx.clone();
        async move {
            let signature_headers = parts
                .headers
                .iter()
                .filter(|(k, _)| k.as_str().starts_with("webhook-"))
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let target = parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let is_robot = target.starts_with("/cgi-bin/webhook/send");
            let _ = tx
                .send(Received {
                    method: parts.method,
                    target,
                    signature_headers,
                    body,
                })
                .await;
            // Answer like the robot it stands in for.
            let reply = if is_robot {
                r#"{"errcode":0,"errmsg":"ok"}"#
            } else {
                ""
            };
            Response::new(Full::new(Bytes::from_static(reply.as_bytes())))
        }
    })
    .await?;
    Ok((addr, rx))
}

/// Serves `handler` (given the request head and whole body) on a fresh 127.0.0.1 port for
/// the rest of the demo.
async fn serve_local<F, Fut>(handler: F) -> Result<SocketAddr, DemoError>
where
    F: Fn(http::request::Parts, Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io("binding a local port"))?;
    let addr = listener.local_addr().map_err(io("binding a local port"))?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        Ok::<_, Infallible>(handler(parts, body).await)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

// ----- the sample IAM ---------------------------------------------------------------------

#[derive(Default)]
struct SampleIam {
    users: HashMap<String, serde_json::Value>,
    passwords: HashMap<String, String>,
    next_id: u32,
}

async fn start_sample_iam() -> Result<SocketAddr, DemoError> {
    let state = Arc::new(Mutex::new(SampleIam {
        next_id: 1001,
        ..SampleIam::default()
    }));
    serve_local(move |parts, body| {
        let state = state.clone();
        async move {
            let (status, json) = match state.lock() {
                Ok(mut iam) => iam.handle(&parts.method, parts.uri.path(), &parts.headers, &body),
                Err(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"error": "state"}),
                ),
            };
            let body = if status == StatusCode::NO_CONTENT {
                Bytes::new()
            } else {
                Bytes::from(json.to_string())
            };
            let mut resp = Response::new(Full::new(body));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
    })
    .await
}

impl SampleIam {
    fn handle(
        &mut self,
        method: &Method,
        path: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> (StatusCode, serde_json::Value) {
        use serde_json::{json, Value};
        let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (&Method::POST, ["users"]) => {
                let id = format!("u-{}", self.next_id);
                self.next_id += 1;
                let user = json!({
                    "id": id,
                    "username": input["username"],
                    "email": input["email"],
                    "first_name": input["first_name"],
                    "last_name": input["last_name"],
                    "enabled": true,
                    "created_at": crate::event::rfc3339_millis(std::time::SystemTime::now()),
                });
                if let (Some(name), Some(pw)) =
                    (input["username"].as_str(), input["password"].as_str())
                {
                    self.passwords.insert(name.to_owned(), pw.to_owned());
                }
                self.users.insert(id, user.clone());
                (StatusCode::CREATED, user)
            }
            (&Method::PUT, ["users", id]) => match self.users.get_mut(*id) {
                Some(user) => {
                    if let (Value::Object(u), Value::Object(changes)) = (&mut *user, &input) {
                        for (k, v) in changes {
                            if k != "password" && k != "id" {
                                u.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    (StatusCode::OK, user.clone())
                }
                None => (StatusCode::NOT_FOUND, json!({"error": "no such user"})),
            },
            (&Method::DELETE, ["users", id]) => match self.users.remove(*id) {
                Some(_) => (StatusCode::NO_CONTENT, Value::Null),
                None => (StatusCode::NOT_FOUND, json!({"error": "no such user"})),
            },
            (&Method::POST, ["login"]) => {
                let name = input["username"].as_str().unwrap_or_default();
                let ok = self.passwords.get(name).map(String::as_str) == input["password"].as_str();
                let user = self.users.values().find(|u| u["username"] == name).cloned();
                match (ok, user) {
                    (true, Some(user)) => {
                        let token = demo_token(&user);
                        (
                            StatusCode::OK,
                            json!({"access_token": token, "token_type": "Bearer", "expires_in": 300}),
                        )
                    }
                    _ => (
                        StatusCode::UNAUTHORIZED,
                        json!({"error": "invalid_credentials"}),
                    ),
                }
            }
            (&Method::POST, ["logout"]) => {
                let authorized = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("Bearer "));
                if authorized {
                    (StatusCode::NO_CONTENT, Value::Null)
                } else {
                    (StatusCode::UNAUTHORIZED, json!({"error": "no token"}))
                }
            }
            (&Method::GET, ["healthz"]) => (StatusCode::OK, json!({"status": "ok"})),
            _ => (StatusCode::NOT_FOUND, json!({"error": "not found"})),
        }
    }
}

/// A JWT-shaped token with the user's claims (unsigned: the demo IAM is not a real issuer).
fn demo_token(user: &serde_json::Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "sub": user["id"],
        "preferred_username": user["username"],
        "email": user["email"],
    });
    let payload = b64.encode(claims.to_string());
    format!("{header}.{payload}.demo")
}
