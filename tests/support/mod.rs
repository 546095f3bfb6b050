//! Shared test fixtures: a fake IAM upstream, an in-process userhook, the real binary, and
//! `eventually` for polling with a deadline (never sleeping as synchronisation).
#![allow(dead_code)]

pub(crate) mod receiver;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub(crate) mod better_auth;
pub(crate) mod casdoor;
pub(crate) mod conventional;
pub(crate) mod durable;
pub(crate) mod fastapi_users;
pub(crate) mod gitea;
pub(crate) mod iam;
pub(crate) mod keystone;
pub(crate) mod lifecycle;
pub(crate) mod live;
pub(crate) mod nats;
pub(crate) mod scripted;
pub(crate) mod sse;
pub(crate) mod zitadel;

/// A body type fake servers can answer with.
pub(crate) type TestBody = BoxBody<Bytes, Infallible>;

/// A complete body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into()).boxed()
}

/// One request as the fake upstream saw it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub method: Method,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

type Handler =
    Arc<dyn Fn(Recorded) -> Pin<Box<dyn Future<Output = Response<TestBody>> + Send>> + Send + Sync>;

/// A fake IAM: records every request (with its whole body) and answers through `handler`.
pub(crate) struct FakeUpstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Recorded>>>,
    /// TCP connections accepted so far (shows whether the proxy reuses its pool).
    pub accepted: Arc<AtomicUsize>,
}

impl FakeUpstream {
    /// Starts on 127.0.0.1:0 with an async handler.
    pub(crate) async fn start<F, Fut>(handler: F) -> FakeUpstream
    where
        F: Fn(Recorded) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |r| Box::pin(handler(r)));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let accepted = Arc::new(AtomicUsize::new(0));
        let accepted2 = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted2.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let seen = seen.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let rec = Recorded {
                                method: parts.method,
                                uri: parts.uri.to_string(),
                                headers: parts.headers,
                                body,
                            };
                            seen.lock().expect("lock").push(rec.clone());
                            Ok::<_, Infallible>(handler(rec).await)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeUpstream {
            addr,
            seen,
            accepted,
        }
    }

    /// Answers every request with 200 and `body`.
    pub(crate) async fn fixed(body: &'static str) -> FakeUpstream {
        FakeUpstream::start(move |_| async move { Response::new(full(body)) }).await
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// TCP connections the proxy opened to us so far.
    pub(crate) fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Requests seen so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().expect("lock").clone()
    }
}

/// A response with a status and body.
pub(crate) fn respond(status: u16, body: impl Into<Bytes>) -> Response<TestBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(status).expect("status");
    r
}

/// A minimal config for an upstream; `extra` is appended verbatim.
pub(crate) fn config_for(upstream: &str, extra: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\nupstream: {upstream}\nadmin:\n  listen: 127.0.0.1:0\ntimeouts:\n  upstream: 2s\n  shutdown_grace: 5s\n{extra}"
    )
}

/// userhook running in this process, with its config in a temp dir.
pub(crate) struct Userhook {
    pub handle: userhook::app::ServerHandle,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Userhook {
    /// Starts with `yaml`; `watch` enables file-watching reloads.
    pub(crate) async fn start(yaml: &str, watch: bool) -> Userhook {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("userhook.yaml");
        std::fs::write(&config_path, yaml).expect("write config");
        let runtime = userhook::snapshot::Snapshot::from_text(yaml, None).expect("valid config");
        let handle = userhook::app::start(
            userhook::app::Options {
                config_path: config_path.clone(),
                watch,
            },
            runtime,
        )
        .await
        .expect("start userhook");
        Userhook {
            handle,
            dir,
            config_path,
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.handle.proxy_addr)
    }

    /// `http://127.0.0.1:PORT` of the admin API.
    pub(crate) fn admin_url(&self) -> String {
        format!("http://{}", self.handle.admin_addr)
    }
}

/// A plain HTTP/1.1 client.
pub(crate) fn client(
) -> hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, TestBody>
{
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request and collects the whole response.
pub(crate) async fn send(req: Request<TestBody>) -> (StatusCode, HeaderMap, Bytes) {
    let resp = client().request(req).await.expect("request through proxy");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, body)
}

/// GET `url`.
pub(crate) async fn get(url: &str) -> (StatusCode, HeaderMap, Bytes) {
    send(Request::get(url).body(full(Bytes::new())).expect("request")).await
}

/// Polls `check` until it returns `Some` or `deadline` passes (then panics with `what`).
pub(crate) async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > end {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes raw bytes to `addr` and reads until the peer closes (a reset included: a broken
/// response may end with one) or `until` appears.
pub(crate) async fn raw_exchange(addr: SocketAddr, request: &[u8], until: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if !until.is_empty() && out.windows(until.len()).any(|w| w == until) {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("raw exchange timed out");
    out
}

/// The real `userhook` binary, started with a config file; addresses read from its log.
pub(crate) struct Binary {
    pub child: tokio::process::Child,
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    /// Starts `userhook serve --config path` and waits until it listens.
    pub(crate) async fn start(config: &Path) -> Binary {
        Binary::start_with_env(config, &[("RUST_LOG", "info")]).await
    }

    /// Starts it with extra environment variables (e.g. `RUST_LOG=debug`, `${VAR}` values);
    /// the listening line may be text or JSON.
    pub(crate) async fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Binary {
        let config = config.display().to_string();
        Binary::start_args(&["serve", "--config", &config], env).await
    }

    /// Starts `userhook <args>` (e.g. `learn --upstream …`) and waits until it listens.
    pub(crate) async fn start_args(args: &[&str], env: &[(&str, &str)]) -> Binary {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
            .args(args)
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn userhook");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log2.lock().expect("lock").push(line);
            }
        });
        let log3 = log.clone();
        let (proxy_addr, admin_addr) =
            eventually(Duration::from_secs(20), "userhook to listen", || {
                let log = log3.clone();
                async move {
                    let lines = log.lock().expect("lock");
                    lines
                        .iter()
                        .find(|l| l.contains("userhook is listening"))
                        .map(|l| {
                            (
                                field(l, "proxy_addr=").expect("proxy_addr"),
                                field(l, "admin_addr=").expect("admin_addr"),
                            )
                        })
                }
            })
            .await;
        Binary {
            child,
            proxy_addr,
            admin_addr,
            log,
        }
    }

    /// True once a log line contains `needle`.
    pub(crate) fn logged(&self, needle: &str) -> bool {
        self.log
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains(needle))
    }

    /// Lines logged so far.
    pub(crate) fn log_text(&self) -> String {
        self.log.lock().expect("lock").join("\n")
    }

    /// Sends a Unix signal.
    pub(crate) fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

fn field(line: &str, key: &str) -> Option<SocketAddr> {
    // `key=value` in text logs, `"key":"value"` in JSON logs.
    let json_key = format!("\"{}\":", key.trim_end_matches('='));
    let start = match line.find(key) {
        Some(i) => i + key.len(),
        None => line.find(&json_key)? + json_key.len(),
    };
    let rest = &line[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ',' || c == '}')
        .unwrap_or(rest.len());
    rest[..end].trim_matches('"').parse().ok()
}
