//! Lose nothing: every event is counted end to end by a unique name, through outages,
//! restarts, SIGTERM and SIGKILL. All on 127.0.0.1, bounded by deadlines, no sleeps.
//!
//! Each test states its numbers in its output (`cargo test --test durability -- --nocapture`).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use support::durable::{config, name, tally, Load, Sink};
use support::{eventually, respond, Binary, FakeUpstream, Userhook};
use userhook::event::{Action, RequestInfo, UserEvent, UserFields};
use userhook::events::dispatch::Dispatcher;
use userhook::events::{DeliveryEngine, DeliveryStatus};
use userhook::snapshot::Snapshot;

/// How long the webhooks of a test may take to arrive once the sink is up.
const DRAIN: Duration = Duration::from_secs(60);

/// How long the webhook receiver is down while the load goes on.
const OUTAGE: Duration = Duration::from_secs(20);

async fn iam() -> FakeUpstream {
    FakeUpstream::start(|_| async { respond(201, r#"{"ok":true}"#) }).await
}

fn event(user: usize, n: usize) -> UserEvent {
    let mut f = UserFields::new();
    f.insert("ID".into(), format!("u{user}"));
    f.insert("Name".into(), name(user, n));
    UserEvent::new(0, Action::Updated, f, RequestInfo::default(), false)
}

/// Waits until the sink holds every acknowledged event; returns the tally.
async fn all_delivered(sink: &Sink, acked: &BTreeSet<String>) -> support::durable::Tally {
    let end = Instant::now() + DRAIN;
    let t = loop {
        let t = tally(&sink.got(), acked);
        if t.missing.is_empty() {
            break t;
        }
        assert!(
            Instant::now() < end,
            "{} of {} acknowledged events never arrived (first: {:?}); {} delivered",
            t.missing.len(),
            acked.len(),
            &t.missing[..t.missing.len().min(5)],
            t.delivered
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // polling, not synchronisation
    };
    assert!(
        t.out_of_order.is_empty(),
        "per-user order: {:?}",
        t.out_of_order
    );
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_under_load_then_up_delivers_everything_in_user_order() {
    let iam = iam().await;
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    let yaml = config(
        &iam.url(),
        &sink.url(),
        &spool.display().to_string(),
        "fast",
    );
    let uh = Userhook::start(&yaml, false).await;
    // Steady load: 8 clients, each pausing 20 ms after every answer (a few hundred events/s),
    // over 40 users; at most 40,000 events, stopped once the outage is over.
    let load = Load::paced(uh.url(), 8, 40, 1000, Duration::from_millis(20));

    eventually(DRAIN, "500 events while the sink is up", || async {
        (load.acked_count() >= 500).then_some(())
    })
    .await;
    sink.down().await;
    let down_at = load.acked_count();
    let outage = Instant::now();
    // The outage lasts OUTAGE of steady load (and at least 1,000 events).
    eventually(OUTAGE * 3, "the outage under load", || async {
        (load.acked_count() >= down_at + 1000 && outage.elapsed() >= OUTAGE).then_some(())
    })
    .await;
    let during = load.acked_count() - down_at;
    let retrying = uh.handle.deliveries.stats();
    sink.up().await;
    let outage = outage.elapsed();
    // The load goes on after the receiver is back, then stops.
    let up_at = load.acked_count();
    eventually(DRAIN, "500 more events after the outage", || async {
        (load.acked_count() >= up_at + 500).then_some(())
    })
    .await;
    let failed = load.failed.load(std::sync::atomic::Ordering::Relaxed);
    let acked = load.stop().await;
    assert_eq!(failed, 0, "every request answered 201");

    let t = all_delivered(&sink, &acked).await;
    eprintln!(
        "outage: {} events acked ({during} during a {outage:?} outage, {} pending then); {} delivered, {} duplicates, 0 out of order",
        acked.len(),
        retrying.pending,
        t.delivered,
        t.duplicates
    );
    assert_eq!(t.delivered, acked.len());
    let deliveries = uh.handle.deliveries.clone();
    eventually(DRAIN, "the spool to empty", || async {
        (deliveries.stats().pending == 0).then_some(())
    })
    .await;
    let stats = deliveries.stats();
    assert_eq!(stats.spooled, acked.len() as u64);
    assert_eq!(stats.refused_full + stats.refused_overloaded, 0);
    assert!(
        stats.commits < stats.writes,
        "group commit: {} commits for {} writes",
        stats.commits,
        stats.writes
    );
    uh.handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_a_large_backlog_resumes_with_ids_and_attempts_and_drains() {
    const USERS: usize = 100;
    const EVENTS: usize = 20_000;
    let sink = Sink::start_down().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");
    let yaml = config(
        "http://127.0.0.1:1",
        &sink.url(),
        &spool.display().to_string(),
        "fast",
    );

    // Phase 1: the target is down; 20,000 deliveries pile up.
    let uh = Userhook::start(&yaml, false).await;
    let dispatcher = Dispatcher::new(uh.handle.deliveries.clone());
    for i in 0..EVENTS {
        assert_eq!(
            dispatcher.dispatch(&uh.handle.runtime.load(), &event(i % USERS, i / USERS)),
            1
        );
    }
    let deliveries = uh.handle.deliveries.clone();
    assert!(deliveries.flush().await);
    let before = deliveries.stats();
    assert_eq!(before.spooled, EVENTS as u64);
    assert_eq!(before.pending, EVENTS as u64);
    assert!(
        before.resident <= userhook::events::engine::WINDOW_PER_WEBHOOK as u64,
        "memory holds a window, not the backlog: {}",
        before.resident
    );
    // Some deliveries have failed at least once: their ids and attempts must survive.
    let tried = eventually(DRAIN, "failed attempts", || async {
        let r = deliveries.records(Some(DeliveryStatus::Retrying));
        (r.len() >= 10).then_some(r)
    })
    .await;
    uh.handle.stop().await;

    // Phase 2: restart on the same spool with the target up.
    sink.up().await;
    let uh = Userhook::start(&yaml, false).await;
    let resumed = uh.handle.deliveries.stats();
    let all: BTreeSet<String> = (0..EVENTS).map(|i| name(i % USERS, i / USERS)).collect();
    let start = Instant::now();
    let t = all_delivered(&sink, &all).await;
    eprintln!(
        "backlog: {} pending at restart ({} in memory), {} delivered in {:?}, {} duplicates",
        resumed.pending,
        resumed.resident,
        t.delivered,
        start.elapsed(),
        t.duplicates
    );
    assert!(resumed.pending >= (EVENTS - 100) as u64, "{resumed:?}");
    let ids: BTreeSet<String> = sink.got().into_iter().map(|g| g.delivery_id).collect();
    assert_eq!(ids.len(), EVENTS, "one delivery id per event");
    let records = uh.handle.deliveries.records(None);
    for r in &tried {
        assert!(ids.contains(&r.delivery_id), "id {} kept", r.delivery_id);
        if let Some(after) = records.iter().find(|x| x.delivery_id == r.delivery_id) {
            assert!(
                after.attempts > r.attempts,
                "attempts continue: {} then {}",
                r.attempts,
                after.attempts
            );
        }
    }
    let deliveries = uh.handle.deliveries.clone();
    eventually(DRAIN, "the spool to empty", || async {
        (deliveries.stats().pending == 0).then_some(())
    })
    .await;
    uh.handle.stop().await;
}

#[tokio::test]
async fn notify_when_durable_answers_after_the_commit_of_everything_before_it() {
    let sink = Sink::start_down().await;
    let text = config("http://127.0.0.1:1", &sink.url(), "./unused", "strict");
    let rt = Snapshot::from_text(&text, None).unwrap_or_else(|e| panic!("{e}"));
    let engine = DeliveryEngine::start(Arc::new(ArcSwap::from_pointee(rt))).expect("engine");
    let dispatcher = Dispatcher::new(engine.clone());
    for round in 1..=3u64 {
        for i in 0..500 {
            dispatcher.dispatch(&engine.runtime().load(), &event(i % 10, i));
        }
        let (ack, durable) = tokio::sync::oneshot::channel();
        dispatcher.notify_when_durable(ack);
        assert_eq!(
            durable.await.expect("answered, not dropped"),
            userhook::exchange::Durability::Committed
        );
        let stats = engine.stats();
        assert_eq!(stats.spooled, 500 * round, "{stats:?}");
        assert!(stats.pending >= 500 * round - 20, "{stats:?}");
    }
    engine.stop(Duration::from_secs(1)).await;
    // A closed spool answers "not durable" at once: the proxy fails the response rather than
    // hang or claim a commit.
    let (ack, durable) = tokio::sync::oneshot::channel();
    dispatcher.notify_when_durable(ack);
    assert_eq!(
        durable.await.expect("answered"),
        userhook::exchange::Durability::Unconfirmed(userhook::exchange::Unconfirmed::Refused)
    );
}

#[tokio::test]
async fn a_full_spool_refuses_new_deliveries_counts_and_records_them() {
    let sink = Sink::start_down().await;
    let text = config("http://127.0.0.1:1", &sink.url(), "./unused", "fast").replace(
        "  guarantee: fast\n",
        "  guarantee: fast\n  max_spool_bytes: 1MiB\n",
    );
    let rt = Snapshot::from_text(&text, None).unwrap_or_else(|e| panic!("{e}"));
    let engine = DeliveryEngine::start(Arc::new(ArcSwap::from_pointee(rt))).expect("engine");
    let dispatcher = Dispatcher::new(engine.clone());
    let mut i = 0;
    while engine.stats().refused_full == 0 {
        dispatcher.dispatch(&engine.runtime().load(), &event(i % 10, i / 10));
        i += 1;
        if i % 100 == 0 {
            assert!(engine.flush().await);
        }
        assert!(i < 10_000, "the 1MiB budget never filled");
    }
    assert!(engine.flush().await);
    let stats = engine.stats();
    assert!(stats.payload_bytes >= 1024 * 1024 - 100 * 1024, "{stats:?}");
    assert!(stats.payload_bytes < 1024 * 1024 + 100 * 1024, "{stats:?}");
    let refused = engine
        .records(Some(DeliveryStatus::Failed))
        .into_iter()
        .find(|r| {
            r.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("spool full"))
        })
        .expect("a failed record says why");
    assert_eq!(refused.attempts, 0);
    assert_eq!(stats.refused_full, 1);
    assert_eq!(stats.spooled + 1, i as u64);
    engine.stop(Duration::from_secs(1)).await;
    assert_eq!(engine.stats().path, None);
}

/// Runs the binary under load, ends it with `kill` (SIGKILL or SIGTERM) mid-load, restarts it
/// on the same spool and checks every acknowledged event arrives.
async fn crash_and_restart(guarantee: &str, sigkill: bool, sink_up_before: bool) {
    let iam = iam().await;
    let sink = if sink_up_before {
        Sink::start().await
    } else {
        Sink::start_down().await
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    std::fs::write(&path, config(&iam.url(), &sink.url(), "./spool", guarantee)).expect("write");
    let mut bin = Binary::start(&path).await;
    let load = Load::start(format!("http://{}", bin.proxy_addr), 8, 40, 1_000_000);
    eventually(DRAIN, "1,000 acknowledged events", || async {
        (load.acked_count() >= 1000).then_some(())
    })
    .await;
    if sigkill {
        bin.child.kill().await.expect("SIGKILL");
    } else {
        bin.signal("TERM");
        let exit = tokio::time::timeout(Duration::from_secs(30), bin.child.wait())
            .await
            .expect("exits within the grace period")
            .expect("wait");
        assert_eq!(exit.code(), Some(0), "{}", bin.log_text());
        eventually(Duration::from_secs(5), "the flush logged", || async {
            bin.logged("spool flushed").then_some(())
        })
        .await;
    }
    let acked = load.stop().await;
    let before = sink.got().len();
    if !sink_up_before {
        assert_eq!(before, 0);
        sink.up().await;
    }
    let bin2 = Binary::start(&path).await;
    assert!(
        bin2.logged("resuming pending deliveries") || before > 0,
        "{}",
        bin2.log_text()
    );
    let t = all_delivered(&sink, &acked).await;
    eprintln!(
        "{} {guarantee}: {} events acked before the signal, {} at the sink before restart; {} delivered, {} duplicates, 0 missing, 0 out of order",
        if sigkill { "SIGKILL" } else { "SIGTERM" },
        acked.len(),
        before,
        t.delivered,
        t.duplicates
    );
}

/// Needs the proxy's strict-mode hold (the end of a matched response waits for
/// `Exchange.durable`); without it the last ~50 acknowledged events before the kill are lost,
/// which is exactly what strict mode exists to prevent. Un-ignore once that is merged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_in_strict_mode_loses_no_acknowledged_event() {
    crash_and_restart("strict", true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_load_in_fast_mode_loses_no_acknowledged_event() {
    crash_and_restart("fast", false, false).await;
}

async fn cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("run userhook");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A port that was free a moment ago (the admin API needs a fixed one for the CLI to find).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_replayed_and_purged_running_and_stopped() {
    let iam = iam().await;
    let refusing = support::receiver::WebhookReceiver::fixed(404, "no such hook").await;
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    let admin = free_port();
    let write = |url: &str| {
        let text = config(&iam.url(), url, "./spool", "fast").replace(
            "admin: {listen: 127.0.0.1:0}",
            &format!("admin: {{listen: 127.0.0.1:{admin}}}"),
        );
        std::fs::write(&path, text).expect("write config");
    };
    write(&refusing.url("/hook"));
    let mut bin = Binary::start(&path).await;
    let load = Load::start(format!("http://{}", bin.proxy_addr), 2, 3, 2);
    let acked = load.join().await;
    assert_eq!(acked.len(), 6);

    // Running: through the admin API.
    let listed = eventually(DRAIN, "six dead letters over the admin API", || async {
        let (ok, out, err) = cli(&path, &["deadletter", "list"]).await;
        assert!(ok, "{err}");
        out.starts_with("6 dead letter(s)").then_some(out)
    })
    .await;
    assert!(listed.contains("running instance"), "{listed}");
    assert!(listed.contains("HTTP 404: no such hook"), "{listed}");
    let id = listed
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("an id");
    let (ok, shown, err) = cli(&path, &["deadletter", "show", id]).await;
    assert!(ok, "{err}");
    assert!(shown.contains(&format!("\"id\": \"{id}\"")), "{shown}");
    let (ok, _, err) = cli(&path, &["deadletter", "show", "nope"]).await;
    assert!(
        !ok && err.contains("no dead letter with id `nope`"),
        "{err}"
    );

    bin.signal("TERM");
    bin.child.wait().await.expect("exit");

    // Stopped: through the file.
    let (ok, out, err) = cli(&path, &["deadletter", "list"]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("6 dead letter(s)") && out.contains("spool file"),
        "{out}"
    );
    let (ok, out, err) = cli(&path, &["deliveries", "--status", "failed"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("6 delivery record(s)"), "{out}");
    let (ok, out, err) = cli(&path, &["deadletter", "replay", "--all"]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("6 dead letter(s) moved back to pending"),
        "{out}"
    );
    let (ok, out, _) = cli(&path, &["deadletter", "list"]).await;
    assert!(ok && out.starts_with("0 dead letter(s)"), "{out}");

    // Started again with the webhook fixed: the replayed deliveries go out, same ids.
    write(&sink.url());
    let bin = Binary::start(&path).await;
    let t = all_delivered(&sink, &acked).await;
    assert_eq!(t.delivered, 6);
    let ids: BTreeSet<String> = sink.got().into_iter().map(|g| g.delivery_id).collect();
    assert!(ids.contains(id), "replay keeps the delivery id");

    // Purge on the running instance.
    let (ok, out, err) = cli(&path, &["deadletter", "purge"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "0 dead letter(s) purged by the running instance.\n");
    let (ok, out, err) = cli(&path, &["deliveries", "--status", "successful"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("6 delivery record(s)"), "{out}");
    drop(bin);
}
