//! Sink throughput: events dispatched straight into the delivery engine (with its on-disk
//! spool, as `serve` runs it) and published to a real `nats-server -js` on 127.0.0.1, each
//! removed from the spool only after its PubAck. Prints events/s (acknowledged by the stream)
//! for several concurrency limits. Needs `nats-server` (`apt-get install -y nats-server`).
//!
//!     cargo bench --bench nats            # 20,000 events per row
//!     EVENTS=50000 cargo bench --bench nats

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use userhook::event::{Action, RequestInfo, UserEvent, UserFields};
use userhook::events::dispatch::Dispatcher;
use userhook::events::engine::DeliveryEngine;
use userhook::snapshot::Snapshot;

fn event(i: u64) -> UserEvent {
    let mut user = UserFields::new();
    user.insert("ID".into(), format!("u-{}", i % 1000));
    user.insert("Name".into(), format!("user{i}"));
    user.insert("Email".into(), format!("user{i}@example.com"));
    UserEvent::new(i, Action::Created, user, RequestInfo::default(), false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Messages in stream `name`.
async fn count(js: &async_nats::jetstream::Context, name: &str) -> u64 {
    match js.get_stream(name).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

async fn run(
    url: &str,
    js: &async_nats::jetstream::Context,
    row: usize,
    events: u64,
    concurrency: usize,
) -> f64 {
    let dir = std::env::temp_dir().join(format!("userhook-bench-{}", uuid::Uuid::now_v7()));
    let spool = dir.join("spool");
    let stream = format!("BENCH{row}");
    let yaml = format!(
        "upstream: http://127.0.0.1:1\nlisten: 127.0.0.1:0\nadmin: {{listen: 127.0.0.1:0}}\n\
         delivery: {{concurrency: {concurrency}, spool_dir: {}}}\n\
         sinks:\n  - name: bench\n    kind: nats\n    url: {url}\n    subject: bench{row}.{{{{$$.Action$$}}}}\n    actions: [\"*\"]\n    stream: {stream}\n    create_stream: true\n",
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
    let mut got = 0;
    while got < events {
        if started.elapsed() > Duration::from_secs(180) {
            eprintln!("gave up: {got} of {events} in the stream");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        got = count(js, &stream).await;
    }
    let rate = got as f64 / started.elapsed().as_secs_f64();
    engine.stop(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

fn main() {
    let events: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let store = std::env::temp_dir().join(format!("userhook-bench-js-{}", uuid::Uuid::now_v7()));
    let port = free_port();
    let mut server = match std::process::Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start nats-server ({e}): apt-get install -y nats-server");
            std::process::exit(1);
        }
    };
    let url = format!("nats://127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let js = rt.block_on(async {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(c) = async_nats::connect(&url).await {
                break async_nats::jetstream::new(c);
            }
            assert!(Instant::now() < end, "nats-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    println!("sink throughput into JetStream (file storage), {events} events per row, server on 127.0.0.1");
    println!("{:>12} {:>16}", "concurrency", "events/s acked");
    for (row, concurrency) in [8usize, 32, 128].into_iter().enumerate() {
        let rate = rt.block_on(run(&url, &js, row, events, concurrency));
        println!("{concurrency:>12} {rate:>16.0}");
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&store);
}
