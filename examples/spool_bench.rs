//! Spool benchmark: how fast deliveries go into the durable spool, how many fsyncs that costs,
//! and how much memory a backlog of a million pending deliveries takes (the target is down).
//!
//! ```sh
//! cargo run --release --example spool_bench            # 1,000,000 deliveries
//! cargo run --release --example spool_bench -- 200000  # fewer
//! ```
//!
//! It drives the real engine (`Dispatcher` → engine → group-committing writer → redb) with a
//! webhook whose target refuses connections and whose retries wait an hour, so every delivery
//! stays pending. Prints figures; it is not a test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use userhook::event::{Action, RequestInfo, UserEvent, UserFields};
use userhook::events::dispatch::Dispatcher;
use userhook::events::{DeliveryEngine, Spool};
use userhook::snapshot::Snapshot;

fn config(spool_dir: &str, guarantee: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\nupstream: http://127.0.0.1:1\nwebhooks:\n  - {{name: down, actions: ['*'], url: 'http://127.0.0.1:1/hook', retry: {{attempts: 10, initial: 1h, max: 1h}}}}\ndelivery: {{spool_dir: '{spool_dir}', guarantee: {guarantee}, max_spool_bytes: 8GiB}}\n"
    )
}

fn event(i: usize) -> UserEvent {
    let mut f = UserFields::new();
    let user = i % 10_000;
    f.insert("ID".into(), format!("user-{user}"));
    f.insert("Name".into(), format!("user{user}"));
    f.insert("Email".into(), format!("user{user}@example.com"));
    let request = RequestInfo {
        method: "POST".into(),
        path: "/api/v1/users".into(),
        status: 201,
        remote_addr: "10.0.0.7:51234".into(),
        request_id: uuid_like(i),
        user_agent: "bench/1".into(),
    };
    UserEvent::new(i as u64, Action::Updated, f, request, false)
}

fn uuid_like(i: usize) -> String {
    format!("{i:032x}")
}

/// Resident memory of this process, from /proc (Linux).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn engine(dir: &std::path::Path, guarantee: &str) -> Result<DeliveryEngine, String> {
    let rt = Snapshot::from_text(&config(&dir.display().to_string(), guarantee), None)
        .map_err(|e| e.to_string())?;
    let spool = Spool::open(dir).map_err(|e| e.to_string())?;
    DeliveryEngine::start_with(Arc::new(ArcSwap::from_pointee(rt)), spool)
        .map_err(|e| e.to_string())
}

/// Dispatches `n` events as fast as the writer takes them; returns (seconds, commits).
async fn burst(engine: &DeliveryEngine, from: usize, n: usize) -> (f64, u64) {
    let dispatcher = Dispatcher::new(engine.clone());
    let commits = engine.stats().commits;
    let start = Instant::now();
    for i in from..from + n {
        // Stay below the writer's refusal bound: this measures what the disk sustains.
        while engine.uncommitted() > 40_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        dispatcher.dispatch(&engine.runtime().load(), &event(i));
    }
    engine.flush().await;
    (
        start.elapsed().as_secs_f64(),
        engine.stats().commits - commits,
    )
}

/// Dispatches `n` events at `rate` per second; returns commits. `strict` asks for a durability
/// answer after each event, as the extractor does for a held strict-mode response.
async fn steady(engine: &DeliveryEngine, from: usize, n: usize, rate: u64, strict: bool) -> u64 {
    let dispatcher = Dispatcher::new(engine.clone());
    let waits = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
    let commits = engine.stats().commits;
    let tick = Duration::from_millis(1);
    let per_tick = (rate / 1000).max(1) as usize;
    let mut next = tokio::time::Instant::now();
    let mut i = from;
    while i < from + n {
        for _ in 0..per_tick.min(from + n - i) {
            dispatcher.dispatch(&engine.runtime().load(), &event(i));
            if strict {
                let (ack, answer) = tokio::sync::oneshot::channel();
                dispatcher.notify_when_durable(ack);
                let (waits, asked) = (waits.clone(), Instant::now());
                tokio::spawn(async move {
                    if answer.await.is_ok() {
                        if let Ok(mut w) = waits.lock() {
                            w.push(asked.elapsed());
                        }
                    }
                });
            }
            i += 1;
        }
        next += tick;
        tokio::time::sleep_until(next).await;
    }
    engine.flush().await;
    let commits = engine.stats().commits - commits;
    if let Ok(mut w) = waits.lock() {
        if !w.is_empty() {
            w.sort();
            let at = |q: f64| w[((w.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
            println!(
                "strict durability wait (dispatch to ack): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                at(0.5),
                at(0.99),
                at(1.0)
            );
        }
    }
    commits
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let total: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().map_err(|e| format!("count: {e}")))
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    println!(
        "spool benchmark: {total} deliveries to a target that is down; spool in {}",
        dir.path().display()
    );
    println!("rss at start: {:.1} MiB", rss_mib());

    for (guarantee, rate) in [("fast", 1_000u64), ("fast", 10_000), ("strict", 1_000)] {
        let d = tempfile::tempdir().map_err(|e| e.to_string())?;
        let e = engine(d.path(), guarantee)?;
        let n = (rate as usize) * 3;
        let commits = steady(&e, 0, n, rate, guarantee == "strict").await;
        println!(
            "steady {rate:>6}/s {guarantee:<6}: {n} events, {commits} fsyncs = {:.1} fsyncs per 1,000 events",
            commits as f64 * 1000.0 / n as f64
        );
        e.stop(Duration::from_secs(1)).await;
    }

    let e = engine(dir.path(), "fast")?;
    let (secs, commits) = burst(&e, 0, total).await;
    let stats = e.stats();
    println!(
        "burst: {total} events in {secs:.1} s = {:.0} events/s sustained into the spool; {commits} fsyncs = {:.2} per 1,000 events",
        total as f64 / secs,
        commits as f64 * 1000.0 / total as f64
    );
    let file = std::fs::metadata(dir.path().join("spool.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "backlog: {} pending on disk, {} in memory; payload {:.0} MiB, file {:.0} MiB; rss {:.1} MiB",
        stats.pending,
        stats.resident,
        stats.payload_bytes as f64 / 1048576.0,
        file as f64 / 1048576.0,
        rss_mib()
    );
    e.stop(Duration::from_secs(1)).await;
    drop(e);

    let start = Instant::now();
    let e = engine(dir.path(), "fast")?;
    let stats = e.stats();
    println!(
        "restart on the backlog: resumed in {:.2} s with {} pending, {} in memory; rss {:.1} MiB",
        start.elapsed().as_secs_f64(),
        stats.pending,
        stats.resident,
        rss_mib()
    );
    e.stop(Duration::from_secs(1)).await;
    Ok(())
}
