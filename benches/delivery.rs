//! Webhook delivery throughput: events dispatched straight into the delivery engine (with its
//! on-disk spool, as `serve` runs it), sent to a local receiver on 127.0.0.1 that answers 200
//! at once. Prints deliveries/s for several
//! concurrency limits, unsigned and signed, side by side.
//!
//!     cargo bench --bench delivery            # 20,000 deliveries per row
//!     EVENTS=50000 cargo bench --bench delivery

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use userhook::event::{Action, RequestInfo, UserEvent, UserFields};
use userhook::events::dispatch::Dispatcher;
use userhook::events::engine::DeliveryEngine;
use userhook::snapshot::Snapshot;

/// The allocator `serve` runs with (see `src/main.rs`): the engine allocates per delivery, and
/// glibc's malloc under several threads would make this measure the allocator instead.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn receiver() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let c = c.clone();
                    async move {
                        let _ = req.into_body().collect().await;
                        c.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/hook"), count)
}

fn event(i: u64) -> UserEvent {
    let mut user = UserFields::new();
    user.insert("ID".into(), format!("u-{i}"));
    user.insert("Name".into(), format!("user{i}"));
    user.insert("Email".into(), format!("user{i}@example.com"));
    UserEvent::new(i, Action::Created, user, RequestInfo::default(), false)
}

async fn run(events: u64, concurrency: usize, signed: bool) -> f64 {
    let (url, count) = receiver().await;
    let dir = std::env::temp_dir().join(format!("userhook-bench-{}", uuid::Uuid::now_v7()));
    let spool = dir.join("spool");
    let secret = if signed {
        "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
    } else {
        ""
    };
    let yaml = format!(
        "upstream: http://127.0.0.1:1\nlisten: 127.0.0.1:0\nadmin: {{listen: 127.0.0.1:0}}\n\
         delivery: {{concurrency: {concurrency}, spool_dir: {}}}\n\
         webhooks:\n  - name: bench\n    actions: [\"*\"]\n    url: {url}\n{secret}",
        spool.display()
    );
    let runtime = Arc::new(ArcSwap::from_pointee(
        Snapshot::from_text(&yaml, None).expect("config"),
    ));
    let spool = userhook::events::spool::Spool::open(&spool).expect("spool");
    let engine = DeliveryEngine::start_with(runtime.clone(), spool).expect("engine");
    let dispatcher = Dispatcher::new(engine.clone());
    let snapshot = runtime.load_full();
    let started = Instant::now();
    for i in 0..events {
        dispatcher.dispatch(&snapshot, &event(i));
    }
    while count.load(Ordering::Relaxed) < events {
        if started.elapsed() > Duration::from_secs(120) {
            eprintln!(
                "gave up: {} of {events} delivered",
                count.load(Ordering::Relaxed)
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    engine.stop(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

fn main() {
    let events: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("webhook delivery throughput, {events} deliveries per row, receiver on 127.0.0.1");
    println!(
        "{:>12} {:>16} {:>16}",
        "concurrency", "unsigned del/s", "signed del/s"
    );
    for concurrency in [8usize, 32, 128] {
        let unsigned = rt.block_on(run(events, concurrency, false));
        let signed = rt.block_on(run(events, concurrency, true));
        println!("{concurrency:>12} {unsigned:>16.0} {signed:>16.0}");
    }
}
