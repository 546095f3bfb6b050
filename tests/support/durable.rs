//! Fixtures for the durability tests: a webhook sink that can go down (its port closed, every
//! connection cut) and come back on the same port, a load generator whose every request names
//! a unique event, and the checks "every acknowledged event delivered, in per-user order".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// One webhook request the sink took: the event's name (`u<user>-<n>`), user and delivery id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Got {
    pub name: String,
    pub user: String,
    pub delivery_id: String,
}

/// A webhook receiver on a fixed 127.0.0.1 port that answers 200 and records while up, and
/// refuses connections while down.
pub(crate) struct Sink {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Sink {
    /// Binds a free port and starts up.
    pub(crate) async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("addr");
        let sink = Sink {
            addr,
            got: Arc::new(Mutex::new(Vec::new())),
            server: Mutex::new(None),
        };
        sink.serve(listener);
        sink
    }

    /// Binds a free port and stays down until [`Sink::up`].
    pub(crate) async fn start_down() -> Sink {
        let sink = Sink::start().await;
        sink.down().await;
        sink
    }

    fn serve(&self, listener: TcpListener) {
        let got = self.got.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let got = got.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let got = got.clone();
                        async move {
                            let id = req
                                .headers()
                                .get("webhook-id")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            let body = req.into_body().collect().await.map(|c| c.to_bytes());
                            let v: serde_json::Value = body
                                .ok()
                                .and_then(|b| serde_json::from_slice(&b).ok())
                                .unwrap_or_default();
                            got.lock().expect("lock").push(Got {
                                name: v["name"].as_str().unwrap_or("").to_string(),
                                user: v["user"].as_str().unwrap_or("").to_string(),
                                delivery_id: id,
                            });
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                // Reap finished connections so the set stays small.
                while conns.try_join_next().is_some() {}
            }
        });
        *self.server.lock().expect("lock") = Some(task);
    }

    /// Closes the port and cuts every open connection (dropping the task drops both).
    pub(crate) async fn down(&self) {
        let task = self.server.lock().expect("lock").take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens on the same port again.
    pub(crate) async fn up(&self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind sink");
        self.serve(listener);
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Everything taken so far, in arrival order.
    pub(crate) fn got(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }
}

/// The config of a durability test: one route turning `POST /users` (201) into an event with
/// `ID` and `Name` from the request body, and one webhook to `sink` with fast retries.
pub(crate) fn config(upstream: &str, sink: &str, spool_dir: &str, guarantee: &str) -> String {
    format!(
        r#"listen: 127.0.0.1:0
upstream: {upstream}
admin: {{listen: 127.0.0.1:0}}
timeouts: {{upstream: 5s, shutdown_grace: 5s}}
routes:
  - action: updated
    method: POST
    path: /users
    status: [201]
    fields:
      ID: request.body.id
      Name: request.body.name
webhooks:
  - name: sink
    actions: ["*"]
    url: {sink}
    timeout: 2s
    retry: {{attempts: 100000, initial: 20ms, max: 250ms}}
    body: |
      {{"user":"{{{{$$.ID$$}}}}","name":"{{{{$$.Name$$}}}}"}}
delivery:
  spool_dir: {spool_dir}
  guarantee: {guarantee}
"#
    )
}

/// The event name of a user's n-th event.
pub(crate) fn name(user: usize, n: usize) -> String {
    format!("u{user}-{n}")
}

/// Clients sending `POST /users` through a proxy: `workers` tasks, each owning the users
/// `w, w + workers, …` and sending their events one after another (so each user's events
/// have a known order). Names of events whose 201 response arrived complete are `acked`.
pub(crate) struct Load {
    pub acked: Arc<Mutex<BTreeSet<String>>>,
    pub sent: Arc<AtomicUsize>,
    pub failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `workers` workers over `users` users against `proxy` (`http://…`), each
    /// stopping after `per_user` events per user or at [`Load::stop`].
    pub(crate) fn start(proxy: String, workers: usize, users: usize, per_user: usize) -> Load {
        Load::paced(proxy, workers, users, per_user, Duration::ZERO)
    }

    /// [`Load::start`] with each worker pausing `pause` after every request: a steady load
    /// that can run for as long as an outage lasts (rate limiting, not synchronisation).
    pub(crate) fn paced(
        proxy: String,
        workers: usize,
        users: usize,
        per_user: usize,
        pause: Duration,
    ) -> Load {
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let sent = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (proxy, acked, sent, failed, stop) = (
                proxy.clone(),
                acked.clone(),
                sent.clone(),
                failed.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let client = super::client();
                let mine: Vec<usize> = (w..users).step_by(workers).collect();
                'outer: for n in 0..per_user {
                    for &u in &mine {
                        if stop.load(Ordering::Relaxed) {
                            break 'outer;
                        }
                        let event = name(u, n);
                        let body = format!(r#"{{"id":"u{u}","name":"{event}"}}"#);
                        let req = Request::post(format!("{proxy}/users"))
                            .header("content-type", "application/json")
                            .body(super::full(body))
                            .expect("request");
                        sent.fetch_add(1, Ordering::Relaxed);
                        let ok = match client.request(req).await {
                            Ok(resp) if resp.status() == 201 => {
                                resp.into_body().collect().await.is_ok()
                            }
                            _ => false,
                        };
                        if ok {
                            acked.lock().expect("lock").insert(event);
                            if !pause.is_zero() {
                                tokio::time::sleep(pause).await;
                            }
                        } else {
                            failed.fetch_add(1, Ordering::Relaxed);
                            // The proxy is gone (killed or stopping): this worker is done.
                            break 'outer;
                        }
                    }
                }
            }));
        }
        Load {
            acked,
            sent,
            failed,
            stop,
            tasks,
        }
    }

    /// Events acknowledged so far.
    pub(crate) fn acked_count(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    /// Waits until every worker has sent all its events (or hit a failure).
    pub(crate) async fn join(self) -> BTreeSet<String> {
        for t in self.tasks {
            let _ = t.await;
        }
        let acked = self.acked.lock().expect("lock").clone();
        acked
    }

    /// Asks the workers to stop after their current request and waits for them.
    pub(crate) async fn stop(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let acked = self.acked.lock().expect("lock").clone();
        acked
    }
}

/// What a sink's log says about a set of acknowledged events.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Acknowledged events the sink never got.
    pub missing: Vec<String>,
    /// Requests beyond the first per event (at-least-once duplicates).
    pub duplicates: usize,
    /// Users whose events arrived (first copies) out of order, with the order seen.
    pub out_of_order: BTreeMap<String, Vec<usize>>,
    /// Distinct events the sink got.
    pub delivered: usize,
}

/// Compares the sink's log with the acknowledged events.
pub(crate) fn tally(got: &[Got], acked: &BTreeSet<String>) -> Tally {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut per_user: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for g in got {
        let count = seen.entry(g.name.as_str()).or_default();
        *count += 1;
        if *count == 1 {
            let n = g
                .name
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            per_user.entry(g.user.clone()).or_default().push(n);
        }
    }
    let missing = acked
        .iter()
        .filter(|a| !seen.contains_key(a.as_str()))
        .cloned()
        .collect();
    let duplicates = seen.values().map(|c| c - 1).sum();
    let out_of_order = per_user
        .into_iter()
        .filter(|(_, ns)| ns.windows(2).any(|w| w[0] >= w[1]))
        .collect();
    Tally {
        missing,
        duplicates,
        out_of_order,
        delivered: seen.len(),
    }
}
