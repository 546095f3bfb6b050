//! A real HTTP webhook receiver on 127.0.0.1: records every request (method, path and query,
//! headers, body, arrival time) and answers from a script, optionally after a delay.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub method: Method,
    /// Path and query, as sent.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text ("" when absent).
    pub(crate) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Wait this long before answering (to provoke timeouts).
    pub delay: Option<Duration>,
}

impl Answer {
    /// `status` with `body`.
    pub(crate) fn status(status: u16, body: &str) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            delay: None,
        }
    }

    /// 200 `ok`.
    pub(crate) fn ok() -> Answer {
        Answer::status(200, "ok")
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Answer {
        self.headers.push((name, value.to_string()));
        self
    }

    /// Answers after `delay`.
    pub(crate) fn after(mut self, delay: Duration) -> Answer {
        self.delay = Some(delay);
        self
    }
}

/// Decides the answer from the request and everything received before it (itself included).
type Script = Arc<dyn Fn(&Received, &[Received]) -> Answer + Send + Sync>;

/// The receiver; its task lives until the test's runtime ends.
pub(crate) struct WebhookReceiver {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl WebhookReceiver {
    /// Answers with `script(request, all requests so far)`.
    pub(crate) async fn start(
        script: impl Fn(&Received, &[Received]) -> Answer + Send + Sync + 'static,
    ) -> WebhookReceiver {
        let script: Script = Arc::new(script);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<Received>>> = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let script = script.clone();
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let script = script.clone();
                        let seen = seen.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let rec = Received {
                                method: parts.method,
                                uri: parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.to_string())
                                    .unwrap_or_default(),
                                headers: parts.headers,
                                body,
                                at: Instant::now(),
                            };
                            let answer = {
                                let mut all = seen.lock().expect("lock");
                                all.push(rec.clone());
                                script(&rec, &all)
                            };
                            if let Some(d) = answer.delay {
                                tokio::time::sleep(d).await;
                            }
                            let mut resp = Response::new(Full::new(Bytes::from(answer.body)));
                            *resp.status_mut() =
                                StatusCode::from_u16(answer.status).expect("status");
                            for (k, v) in answer.headers {
                                resp.headers_mut().insert(k, v.parse().expect("header"));
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        WebhookReceiver { addr, seen }
    }

    /// Answers the requests in order from `answers`, then `then` forever.
    pub(crate) async fn scripted(answers: Vec<Answer>, then: Answer) -> WebhookReceiver {
        WebhookReceiver::start(move |_, all| {
            answers
                .get(all.len() - 1)
                .cloned()
                .unwrap_or_else(|| then.clone())
        })
        .await
    }

    /// Always `status` with `body`.
    pub(crate) async fn fixed(status: u16, body: &str) -> WebhookReceiver {
        let body = body.to_string();
        WebhookReceiver::start(move |_, _| Answer::status(status, &body)).await
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.seen.lock().expect("lock").clone()
    }
}
