//! A full or broken disk under the spool, end to end, with the real server in process: the
//! spool sits on a fault-injecting file layer (`FaultSwitch`, redb's file backend with ENOSPC
//! on demand), so no mount privileges are needed. While the disk is full the proxy keeps
//! serving, new deliveries are refused visibly (counted, recorded as failed) instead of
//! piling up in memory, `/readyz` says why; once space returns everything recovers without a
//! restart; shutdown ends within its grace. A spool file that is no spool does not keep the
//! proxy down in `fast` mode, and stops `strict` with a clear message.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use support::receiver::WebhookReceiver;
use support::*;
use userhook::app::{Options, ServerHandle};
use userhook::events::spool::{FaultSwitch, SpoolSource, SPOOL_FILE};

async fn iam() -> FakeUpstream {
    FakeUpstream::start(|req| async move {
        match (req.method.as_str(), req.uri.as_str()) {
            ("POST", "/users") => respond(201, r#"{"id":"u-7","username":"alice"}"#),
            ("DELETE", _) => respond(204, ""),
            _ => respond(200, "ok"),
        }
    })
    .await
}

/// The server on a spool in `dir/spool` behind `switch`.
async fn start(
    dir: &tempfile::TempDir,
    yaml: &str,
    switch: &Arc<FaultSwitch>,
) -> Result<ServerHandle, userhook::app::StartError> {
    let config_path = dir.path().join("userhook.yaml");
    std::fs::write(&config_path, yaml).expect("write config");
    let runtime = userhook::snapshot::Snapshot::from_text(yaml, None).expect("valid config");
    userhook::app::start_with_spool(
        Options {
            config_path,
            watch: false,
        },
        runtime,
        userhook::proxy::ProxyThreads::Caller,
        Some(SpoolSource::Faulty(
            dir.path().join("spool"),
            switch.clone(),
        )),
    )
    .await
}

async fn create(proxy: &str, i: usize) -> (StatusCode, Bytes) {
    let req = Request::post(format!("{proxy}/users"))
        .header("content-type", "application/json")
        .body(full(format!(r#"{{"username":"user{i}"}}"#)))
        .expect("request");
    let (status, _, body) = send(req).await;
    (status, body)
}

async fn readyz(admin: &str) -> (StatusCode, serde_json::Value) {
    let (status, _, body) = get(&format!("{admin}/readyz")).await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// A sample's value in the Prometheus text, if the series exists.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn a_full_disk_refuses_visibly_reports_unready_and_recovers_without_a_restart() {
    let up = iam().await;
    let hook = WebhookReceiver::fixed(200, "ok").await;
    let yaml = config_for(
        &up.url(),
        &format!(
            "profiles: [generic]\nwebhooks:\n  - {{name: ops, actions: ['*'], url: '{}'}}\n",
            hook.url("/hook")
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let switch = FaultSwitch::new();
    let handle = start(&dir, &yaml, &switch).await.expect("start");
    let proxy = format!("http://{}", handle.proxy_addr);
    let admin = format!("http://{}", handle.admin_addr);

    // Healthy: delivered, ready.
    assert_eq!(create(&proxy, 0).await.0, StatusCode::CREATED);
    eventually(Duration::from_secs(10), "first delivery", || async {
        (hook.received().len() == 1).then_some(())
    })
    .await;
    assert_eq!(readyz(&admin).await.0, StatusCode::OK);
    let (_, _, m) = get(&format!("{admin}/metrics")).await;
    let m = String::from_utf8_lossy(&m).into_owned();
    let dropped_before =
        sample(&m, r#"userhook_events_dropped_total{reason="spool_fault"}"#).unwrap_or(0.0);

    // The disk fills up. The proxy keeps answering with the IAM's bytes.
    switch.fill_disk();
    const DURING: usize = 200;
    for i in 1..=DURING {
        let (status, body) = create(&proxy, i).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(&body[..], br#"{"id":"u-7","username":"alice"}"#);
    }
    // Every delivery of those events is refused, counted and recorded, nothing waits in memory.
    let stats = eventually(Duration::from_secs(10), "every delivery refused", || {
        let s = handle.deliveries.stats();
        async move { (s.refused_fault == DURING as u64).then_some(s) }
    })
    .await;
    assert_eq!(stats.resident, 0, "nothing piles up in memory");
    assert_eq!(
        handle.deliveries.uncommitted(),
        0,
        "nothing waits for the disk"
    );
    assert!(stats.reopens >= 1, "the poisoned handle was reopened");
    let fault = stats.fault.expect("faulted");
    assert!(fault.contains("No space left on device"), "{fault}");
    assert!(switch.injected() > 0);

    let (status, ready) = readyz(&admin).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["ready"], false);
    let reason = ready["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("spool not writable, deliveries are refused: spool: "),
        "{reason}"
    );
    assert!(reason.contains("No space left on device"), "{reason}");

    let (_, _, m) = get(&format!("{admin}/metrics")).await;
    let m = String::from_utf8_lossy(&m).into_owned();
    // (The other tests of this file count into the same process-wide series.)
    let dropped = sample(&m, r#"userhook_events_dropped_total{reason="spool_fault"}"#);
    assert!(
        dropped.is_some_and(|d| d >= dropped_before + DURING as f64),
        "{m}"
    );
    assert_eq!(sample(&m, "userhook_spool_writable"), Some(0.0));
    assert!(sample(&m, "userhook_spool_faults_total").unwrap_or(0.0) >= 1.0);

    let (status, _, failed) = get(&format!("{admin}/deliveries?status=failed")).await;
    assert_eq!(status, StatusCode::OK);
    let failed: serde_json::Value = serde_json::from_slice(&failed).expect("json");
    let failed = failed["deliveries"].as_array().expect("list");
    assert_eq!(failed.len(), DURING);
    assert!(failed
        .iter()
        .all(|r| r["last_error"]
            == "spool not writable (full or failing disk); see /readyz and the log"));
    assert_eq!(hook.received().len(), 1, "nothing refused was sent");

    // Space returns: ready again, without a restart, and new events are delivered.
    switch.heal();
    eventually(Duration::from_secs(10), "ready again", || async {
        (readyz(&admin).await.0 == StatusCode::OK).then_some(())
    })
    .await;
    let (_, _, m) = get(&format!("{admin}/metrics")).await;
    let m = String::from_utf8_lossy(&m).into_owned();
    assert_eq!(sample(&m, "userhook_spool_writable"), Some(1.0));
    assert_eq!(create(&proxy, 999).await.0, StatusCode::CREATED);
    eventually(
        Duration::from_secs(10),
        "delivery after recovery",
        || async { (hook.received().len() == 2).then_some(()) },
    )
    .await;
    let got = hook.received();
    assert!(got[1].text().contains(r#""id":"u-7""#), "{}", got[1].text());
    assert_ne!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert!(handle.deliveries.stats().fault.is_none());

    let started = Instant::now();
    handle.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn shutdown_ends_within_the_grace_while_the_disk_stays_full() {
    let up = iam().await;
    // Nothing listens there: deliveries retry, so the spool has a backlog and retry state.
    let yaml = config_for(
        &up.url(),
        "profiles: [generic]\nwebhooks:\n  - {name: down, actions: ['*'], url: 'http://127.0.0.1:9/hook', retry: {attempts: 20, initial: 10ms, max: 20ms}}\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let switch = FaultSwitch::new();
    let handle = start(&dir, &yaml, &switch).await.expect("start");
    let proxy = format!("http://{}", handle.proxy_addr);
    for i in 0..20 {
        assert_eq!(create(&proxy, i).await.0, StatusCode::CREATED);
    }
    eventually(Duration::from_secs(10), "backlog on disk", || async {
        (handle.deliveries.stats().pending == 20).then_some(())
    })
    .await;
    switch.fill_disk();
    for i in 20..40 {
        assert_eq!(create(&proxy, i).await.0, StatusCode::CREATED);
    }
    eventually(Duration::from_secs(10), "faulted", || async {
        handle.deliveries.spool_fault().map(|_| ())
    })
    .await;
    // The grace is 5 s (config_for); the disk never comes back.
    let started = Instant::now();
    handle.stop().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    drop(switch);
    // What was committed before the disk filled is all still there.
    let spool = userhook::events::Spool::open(&dir.path().join("spool")).expect("reopen");
    assert_eq!(spool.pending_count().expect("count"), 20);
}

#[tokio::test]
async fn a_corrupt_spool_file_is_moved_aside_in_fast_mode_and_stops_strict() {
    let up = iam().await;
    let hook = WebhookReceiver::fixed(200, "ok").await;
    let hooks = format!(
        "profiles: [generic]\nwebhooks:\n  - {{name: ops, actions: ['*'], url: '{}'}}\n",
        hook.url("/hook")
    );
    let garbage = b"not a spool: a truncated or overwritten file".to_vec();

    // strict: refuses to start, saying what to do.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("spool")).expect("dir");
    std::fs::write(dir.path().join("spool").join(SPOOL_FILE), &garbage).expect("write");
    let strict = config_for(
        &up.url(),
        &format!("{hooks}delivery:\n  guarantee: strict\n"),
    );
    let e = match start(&dir, &strict, &FaultSwitch::new()).await {
        Ok(_) => panic!("strict started on a corrupt spool"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains(
            "delivery.guarantee is strict, so userhook does not start without a working spool"
        ),
        "{e}"
    );
    assert!(e.contains("mv spool.redb"), "{e}");
    assert_eq!(
        std::fs::read(dir.path().join("spool").join(SPOOL_FILE)).expect("untouched"),
        garbage
    );

    // fast: starts, serves, moves the file aside and delivers with a fresh spool.
    let fast = config_for(&up.url(), &hooks);
    let handle = start(&dir, &fast, &FaultSwitch::new())
        .await
        .expect("fast starts");
    let proxy = format!("http://{}", handle.proxy_addr);
    let admin = format!("http://{}", handle.admin_addr);
    let moved: Vec<_> = std::fs::read_dir(dir.path().join("spool"))
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("spool.redb.corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(
        std::fs::read(dir.path().join("spool").join(&moved[0])).expect("kept"),
        garbage
    );
    assert_eq!(readyz(&admin).await.0, StatusCode::OK);
    assert_eq!(create(&proxy, 1).await.0, StatusCode::CREATED);
    eventually(Duration::from_secs(10), "delivered", || async {
        (hook.received().len() == 1).then_some(())
    })
    .await;
    let (_, _, m) = get(&format!("{admin}/metrics")).await;
    let m = String::from_utf8_lossy(&m).into_owned();
    assert!(sample(&m, "userhook_spool_recreated_total").unwrap_or(0.0) >= 1.0);
    handle.stop().await;
}

/// A delivery for `webhook` about `user`, with `email` in its event.
fn stored_delivery(webhook: &str, user: &str, email: &str) -> userhook::events::Delivery {
    use userhook::event::{Action, RequestInfo, UserEvent, UserFields};
    let mut f = UserFields::new();
    f.insert("ID".into(), user.into());
    f.insert("Email".into(), email.into());
    let ev = UserEvent::new(1, Action::Updated, f, RequestInfo::default(), false);
    userhook::events::Delivery::new(webhook, ev, 1_000)
}

fn put(d: &userhook::events::Delivery, seq: u64) -> userhook::events::spool::Write {
    userhook::events::spool::Write::Put {
        webhook: d.webhook.clone(),
        seq,
        bytes: serde_json::to_vec(d).expect("json"),
    }
}

#[tokio::test]
async fn a_pending_row_edited_on_disk_is_quarantined_never_delivered() {
    let hook = WebhookReceiver::fixed(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let spool_dir = dir.path().join("spool");
    {
        let spool = userhook::events::Spool::open(&spool_dir).expect("open");
        spool
            .apply(&[
                put(&stored_delivery("ops", "u1", "edited-7c1e@example.com"), 1),
                put(&stored_delivery("ops", "u2", "intact-5d2b@example.com"), 2),
            ])
            .expect("commit");
    }
    // Still valid JSON after the edit: only the checksum tells.
    let file = spool_dir.join(SPOOL_FILE);
    let mut bytes = std::fs::read(&file).expect("read");
    let at = bytes
        .windows(6)
        .position(|w| w == b"edited")
        .expect("row on disk");
    bytes[at..at + 6].copy_from_slice(b"forged");
    std::fs::write(&file, &bytes).expect("write");

    let up = iam().await;
    let yaml = config_for(
        &up.url(),
        &format!(
            "webhooks:\n  - {{name: ops, actions: ['*'], url: '{}'}}\n",
            hook.url("/hook")
        ),
    );
    let handle = start(&dir, &yaml, &FaultSwitch::new())
        .await
        .expect("start");
    eventually(
        Duration::from_secs(10),
        "the intact one delivered",
        || async { (hook.received().len() == 1).then_some(()) },
    )
    .await;
    let stats = eventually(Duration::from_secs(10), "quarantined", || {
        let s = handle.deliveries.stats();
        async move { (s.quarantined == 1 && s.pending == 0).then_some(s) }
    })
    .await;
    assert_eq!(stats.dead_letters, 0);
    let got = hook.received();
    assert!(got[0].text().contains("intact-5d2b@example.com"));
    assert!(!got.iter().any(|r| r.text().contains("forged")));
    let (_, _, m) = get(&format!("http://{}/metrics", handle.admin_addr)).await;
    let m = String::from_utf8_lossy(&m).into_owned();
    assert!(sample(&m, "userhook_spool_rows_damaged_total").unwrap_or(0.0) >= 1.0);
    handle.stop().await;
}

#[tokio::test]
async fn delivered_personal_data_leaves_the_file_after_idle_compaction() {
    let up = FakeUpstream::start(|req| async move {
        // The created user echoes the request, so the canary is in the event.
        let body = String::from_utf8_lossy(&req.body).into_owned();
        respond(201, body)
    })
    .await;
    let hook = WebhookReceiver::fixed(200, "ok").await;
    let yaml = config_for(
        &up.url(),
        &format!(
            "profiles: [generic]\nwebhooks:\n  - {{name: ops, actions: ['*'], url: '{}'}}\n",
            hook.url("/hook")
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let handle = start(&dir, &yaml, &FaultSwitch::new())
        .await
        .expect("start");
    let proxy = format!("http://{}", handle.proxy_addr);
    let file = dir.path().join("spool").join(SPOOL_FILE);
    let canary = "canary-9b3e51@example.com";
    const N: usize = 50;
    let compactions_before = handle.deliveries.stats().compactions;
    for i in 0..N {
        let req = Request::post(format!("{proxy}/users"))
            .header("content-type", "application/json")
            .body(full(format!(
                r#"{{"id":"u{i}","username":"user{i}","email":"{canary}"}}"#
            )))
            .expect("request");
        assert_eq!(send(req).await.0, StatusCode::CREATED);
    }
    eventually(Duration::from_secs(10), "all delivered", || async {
        (hook.received().len() == N && handle.deliveries.stats().pending == 0).then_some(())
    })
    .await;
    assert!(hook.received()[0].text().contains(canary));
    // The idle compaction (1 s after the last write) drops the freed pages. (Later writes may
    // reuse some of them first; the spool-level test shows bytes do linger without it.)
    let started = Instant::now();
    eventually(
        Duration::from_secs(15),
        "an idle compaction, and the canary gone from the file",
        || {
            let file = file.clone();
            let compacted = handle.deliveries.stats().compactions > compactions_before;
            async move {
                let bytes = std::fs::read(&file).expect("read spool");
                let gone = !bytes.windows(canary.len()).any(|w| w == canary.as_bytes());
                (compacted && gone).then_some(())
            }
        },
    )
    .await;
    eprintln!(
        "canary gone {:?} after the last delivery; file {} bytes",
        started.elapsed(),
        std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0)
    );
    handle.stop().await;
}

/// A webhook removed from the config while its backlog is in the spool: at start, ONE line
/// says so (not one per delivery), and the backlog goes to the dead letters, to be replayed
/// once the webhook is back, or purged.
#[tokio::test]
async fn a_removed_webhooks_backlog_is_dead_lettered_with_one_summary_line() {
    const BACKLOG: u64 = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let spool_dir = dir.path().join("spool");
    {
        let spool = userhook::events::Spool::open(&spool_dir).expect("open");
        let writes: Vec<_> = (1..=BACKLOG)
            .map(|seq| {
                put(
                    &stored_delivery("gone", &format!("u{seq}"), "x@example.com"),
                    seq,
                )
            })
            .collect();
        spool.apply(&writes).expect("commit");
    }
    let up = iam().await;
    let hook = WebhookReceiver::fixed(200, "ok").await;
    let config = dir.path().join("userhook.yaml");
    std::fs::write(
        &config,
        config_for(
            &up.url(),
            &format!(
                "delivery:\n  spool_dir: {}\nwebhooks:\n  - {{name: kept, actions: ['*'], url: '{}'}}\n",
                spool_dir.display(),
                hook.url("/hook")
            ),
        ),
    )
    .expect("config");
    let mut bin = Binary::start(&config).await;
    let admin = format!("http://{}", bin.admin_addr);
    eventually(Duration::from_secs(20), "the backlog dead-lettered", || {
        let admin = admin.clone();
        async move {
            let (_, _, body) = get(&format!("{admin}/spool")).await;
            let s: serde_json::Value = serde_json::from_slice(&body).ok()?;
            (s["dead_letters"] == BACKLOG && s["pending"] == 0).then_some(())
        }
    })
    .await;
    bin.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), bin.child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success());
    let log = bin.log_text();
    let about_gone: Vec<&str> = log.lines().filter(|l| l.contains("gone")).collect();
    assert_eq!(about_gone.len(), 1, "{log}");
    assert!(
        about_gone[0].contains(&format!(
            "webhook `gone` is not in the config: its {BACKLOG} pending deliveries in the spool are moved to the dead letters"
        )),
        "{}",
        about_gone[0]
    );
    assert!(!log.contains("kept as a dead letter"), "{log}");
    assert!(hook.received().is_empty());
}
