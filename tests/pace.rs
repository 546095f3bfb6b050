//! Rate limits, digests and endpoint health, through the real binary with real receivers on
//! 127.0.0.1: a DingTalk robot that refuses past its limit, a receiver that fails and comes
//! back, one that answers 410 Gone. Deterministic: polls with deadlines, no sleeps as
//! synchronisation; the robot's window is scaled from a minute to seconds so it runs quickly.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::durable::{name, Load};
use support::receiver::{Answer, Received, WebhookReceiver};
use support::{eventually, get, respond, Binary, FakeUpstream};

/// How long a test may wait for deliveries.
const DEADLINE: Duration = Duration::from_secs(90);

/// The robot's window in the test (a real robot's is a minute).
const WINDOW: Duration = Duration::from_secs(2);

/// Messages per window the robot takes.
const LIMIT: usize = 20;

async fn iam() -> FakeUpstream {
    FakeUpstream::start(|_| async { respond(201, r#"{"ok":true}"#) }).await
}

/// A config with the durability tests' route (`POST /users` -> an event with ID and Name) and
/// `webhooks` as given (YAML list items, indented two spaces).
fn config(iam: &str, admin_port: u16, webhooks: &str) -> String {
    format!(
        r#"listen: 127.0.0.1:0
upstream: {iam}
admin: {{listen: 127.0.0.1:{admin_port}}}
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
{webhooks}
delivery:
  spool_dir: ./spool
"#
    )
}

/// A port that was free a moment ago (the admin API needs a fixed one for the CLI).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn admin_json(bin: &Binary, path: &str) -> serde_json::Value {
    let (status, _, body) = get(&format!("http://{}{path}", bin.admin_addr)).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("admin JSON")
}

/// `(pending, dead letters)` from `GET /spool`.
async fn spool(bin: &Binary) -> (u64, u64) {
    let s = admin_json(bin, "/spool").await;
    (
        s["pending"].as_u64().expect("pending"),
        s["dead_letters"].as_u64().expect("dead_letters"),
    )
}

/// The state of webhook `name` in `GET /webhooks`.
async fn webhook_state(bin: &Binary, name: &str) -> serde_json::Value {
    let all = admin_json(bin, "/webhooks").await;
    all["webhooks"]
        .as_array()
        .and_then(|l| l.iter().find(|w| w["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no webhook {name} in {all}"))
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

/// Whether the robot takes a request: at most [`LIMIT`] requests in any [`WINDOW`], counting
/// every request it received in the window, this one included (as a strict robot would).
fn robot_takes(req: &Received, all: &[Received]) -> bool {
    let recent = all
        .iter()
        .filter(|r| r.at <= req.at && req.at.duration_since(r.at) < WINDOW)
        .count();
    recent <= LIMIT
}

/// The message text of a DingTalk request: a text message's content or a markdown's text.
fn dingtalk_text(r: &Received) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("robot JSON");
    match v["msgtype"].as_str() {
        Some("text") => v["text"]["content"].as_str().unwrap_or("").to_string(),
        Some("markdown") => v["markdown"]["text"].as_str().unwrap_or("").to_string(),
        other => panic!("unexpected msgtype {other:?} in {v}"),
    }
}

/// A receiver that answers 503 while `down` and 200 while up; the second list holds the
/// requests it answered 200, in arrival order.
async fn flaky(down: Arc<AtomicBool>) -> (WebhookReceiver, Arc<Mutex<Vec<Received>>>) {
    let taken = Arc::new(Mutex::new(Vec::new()));
    let t = taken.clone();
    let r = WebhookReceiver::start(move |req, _| {
        if down.load(Ordering::SeqCst) {
            Answer::status(503, "down for maintenance")
        } else {
            t.lock().expect("lock").push(req.clone());
            Answer::ok()
        }
    })
    .await;
    (r, taken)
}

/// `user -> [n, ...]` of the events in `got` (bodies `{"user":..,"name":"uX-n"}`), in order.
fn per_user(got: &[Received]) -> BTreeMap<String, Vec<usize>> {
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in got {
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
        let n = v["name"]
            .as_str()
            .and_then(|s| s.rsplit('-').next())
            .and_then(|n| n.parse().ok())
            .expect("n");
        out.entry(v["user"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(n);
    }
    out
}

/// A plain JSON webhook `name` to `url` with extra keys (YAML, indented four spaces).
fn plain(name: &str, url: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    actions: [\"*\"]\n    url: {url}\n{extra}    body: |\n      {{\"user\":\"{{{{$$.ID$$}}}}\",\"name\":\"{{{{$$.Name$$}}}}\"}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_to_a_dingtalk_robot_stays_within_its_limit_and_names_everyone() {
    let iam = iam().await;
    let robot = WebhookReceiver::start(|req, all| {
        if robot_takes(req, all) {
            Answer::status(200, r#"{"errcode":0,"errmsg":"ok"}"#)
        } else {
            Answer::status(200, r#"{"errcode":130101,"errmsg":"send too fast"}"#)
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    let hooks = format!(
        "  - name: robot\n    actions: [\"*\"]\n    preset: dingtalk\n    url: {}\n    rate: {LIMIT}/{}s\n",
        robot.url("/robot/send?access_token=t"),
        WINDOW.as_secs()
    );
    std::fs::write(&path, config(&iam.url(), 0, &hooks)).expect("config");
    let bin = Binary::start(&path).await;
    let started = Instant::now();
    let acked = Load::start(format!("http://{}", bin.proxy_addr), 8, 500, 1)
        .join()
        .await;
    assert_eq!(acked.len(), 500);

    // Every user named exactly once across the messages the robot took.
    let names: Vec<String> = (0..500).map(|u| name(u, 0)).collect();
    let taken = eventually(DEADLINE, "all 500 users announced", || async {
        let got = robot.received();
        let text = got.iter().map(dingtalk_text).collect::<Vec<_>>().join("\n");
        names
            .iter()
            .all(|n| text.contains(&format!(": {n} (")))
            .then_some(got)
    })
    .await;
    let elapsed = started.elapsed();
    let texts: Vec<String> = taken.iter().map(dingtalk_text).collect();
    for n in &names {
        let times: usize = texts
            .iter()
            .map(|t| t.matches(&format!(": {n} (")).count())
            .sum();
        assert_eq!(times, 1, "{n} named {times} times");
    }
    // The robot never had to refuse: never more than LIMIT in any window.
    for (i, r) in taken.iter().enumerate() {
        assert!(
            robot_takes(r, &taken),
            "request {i} was past the robot's limit"
        );
    }
    let digests = texts.iter().filter(|t| t.contains(" events**")).count();
    assert!(
        taken.len() <= 60 && digests >= 5,
        "{} messages ({digests} digests) for 500 users",
        taken.len()
    );
    // A digest that could not hold everyone says how many follow.
    assert!(
        texts.iter().any(|t| t.contains("more in the next message")),
        "no \"and N more\" in {texts:?}"
    );
    // Nothing lost or left behind; every delivery recorded as delivered, most by a digest.
    let left = eventually(DEADLINE, "the spool to drain", || async {
        let s = spool(&bin).await;
        (s.0 == 0).then_some(s)
    })
    .await;
    assert_eq!(left, (0, 0));
    let records = admin_json(&bin, "/deliveries?status=successful").await;
    let records = records["deliveries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(records.len(), 500);
    let by_digest = records
        .iter()
        .filter(|r| r["digest_id"].is_string())
        .count();
    assert!(by_digest >= 400, "{by_digest} of 500 delivered by digests");
    let ids: BTreeSet<&str> = records
        .iter()
        .filter_map(|r| r["digest_id"].as_str())
        .collect();
    assert_eq!(ids.len(), digests, "one id per digest message");
    let digest_ids: BTreeSet<String> = taken
        .iter()
        .filter(|r| !r.header("webhook-digest-count").is_empty())
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(
        digest_ids,
        ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
        "records name the digest messages' webhook-id"
    );
    println!(
        "500 users: {} messages ({digests} digests) in {elapsed:?}, none refused",
        taken.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_that_says_too_fast_pauses_the_webhook_without_spending_attempts() {
    let iam = iam().await;
    // Refuses the first three requests as too fast, then takes everything.
    let robot = WebhookReceiver::start(|_, all| {
        if all.len() <= 3 {
            Answer::status(200, r#"{"errcode":130101,"errmsg":"send too fast"}"#)
        } else {
            Answer::status(200, r#"{"errcode":0,"errmsg":"ok"}"#)
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    // One attempt only: had a "too fast" counted, the event would be a dead letter.
    let hooks = format!(
        "  - name: robot\n    actions: [\"*\"]\n    preset: dingtalk\n    url: {}\n    rate: 5/200ms\n    retry: {{attempts: 1}}\n",
        robot.url("/robot/send")
    );
    std::fs::write(&path, config(&iam.url(), 0, &hooks)).expect("config");
    let bin = Binary::start(&path).await;
    let acked = Load::start(format!("http://{}", bin.proxy_addr), 1, 1, 1)
        .join()
        .await;
    assert_eq!(acked.len(), 1);
    eventually(DEADLINE, "delivered after three refusals", || async {
        (robot.received().len() >= 4 && spool(&bin).await.0 == 0).then_some(())
    })
    .await;
    let got = robot.received();
    assert_eq!(got.len(), 4);
    // Paused for the window, then twice as long, then four times: 200, 400, 800 ms.
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, want) in gaps.iter().zip([200u64, 400, 800]) {
        assert!(
            *gap >= Duration::from_millis(want),
            "gaps {gaps:?} shorter than the pause"
        );
    }
    assert_eq!(spool(&bin).await, (0, 0));
    let (_, _, metrics) = get(&format!("http://{}/metrics", bin.admin_addr)).await;
    let metrics = String::from_utf8_lossy(&metrics).into_owned();
    assert!(
        metrics.contains("userhook_webhook_rate_limited_total{webhook=\"robot\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_fails_10_times_pauses_and_resumes_with_every_event_in_order() {
    let iam = iam().await;
    let down = Arc::new(AtomicBool::new(true));
    let (receiver, taken) = flaky(down.clone()).await;
    let alerts = WebhookReceiver::fixed(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    let hooks = plain(
        "flaky",
        &receiver.url("/hook"),
        "    concurrency: 1\n    retry: {initial: 10ms, max: 20ms}\n    health: {pause_after: 10, probe: {initial: 300ms, max: 600ms}, alert_webhook: ops}\n",
    ) + &format!("  - name: ops\n    actions: [deleted]\n    url: {}\n", alerts.url("/alerts"));
    std::fs::write(&path, config(&iam.url(), 0, &hooks)).expect("config");
    let bin = Binary::start(&path).await;
    let acked = Load::start(format!("http://{}", bin.proxy_addr), 3, 3, 4)
        .join()
        .await;
    assert_eq!(acked.len(), 12);

    let state = eventually(DEADLINE, "the webhook to pause", || async {
        let s = webhook_state(&bin, "flaky").await;
        (s["state"] == "paused").then_some(s)
    })
    .await;
    assert_eq!(state["reason"], "10 consecutive failures", "{state}");
    assert_eq!(state["last_status"], 503, "{state}");
    assert!(state["paused_since"].is_string() && state["next_probe"].is_string());
    assert_eq!(state["pending"], 12, "{state}");
    // Paused: probed with backoff, one at a time, and not one delivery becomes a dead letter.
    eventually(DEADLINE, "two failed probes", || async {
        (receiver.received().len() >= 12).then_some(())
    })
    .await;
    assert_eq!(spool(&bin).await, (12, 0));
    assert_eq!(webhook_state(&bin, "flaky").await["state"], "paused");
    let (_, _, metrics) = get(&format!("http://{}/metrics", bin.admin_addr)).await;
    let metrics = String::from_utf8_lossy(&metrics).into_owned();
    assert!(
        metrics.contains("userhook_webhook_paused{webhook=\"flaky\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("userhook_webhook_paused{webhook=\"ops\"} 0"));
    // The alert webhook heard what failed.
    let text = eventually(DEADLINE, "the pause alert", || async {
        alerts.received().first().map(|r| r.text())
    })
    .await;
    let alert: serde_json::Value = serde_json::from_str(&text).expect("alert JSON");
    assert_eq!(alert["type"], "webhook.paused");
    assert_eq!(alert["webhook"], "flaky");
    assert_eq!(alert["reason"], "10 consecutive failures");
    assert_eq!(alert["last_status"], 503);
    assert_eq!(alert["pending"], 12);
    assert!(alert["since"].is_string());

    // The receiver comes back: a probe succeeds, the webhook resumes, everything arrives.
    down.store(false, Ordering::SeqCst);
    eventually(DEADLINE, "all 12 events delivered", || async {
        (spool(&bin).await.0 == 0).then_some(())
    })
    .await;
    let delivered = taken.lock().expect("lock").clone();
    assert_eq!(delivered.len(), 12, "each event taken once");
    let order = per_user(&delivered);
    assert_eq!(order.len(), 3, "{order:?}");
    for (u, ns) in &order {
        assert_eq!(ns, &[0, 1, 2, 3], "user {u} out of order or incomplete");
    }
    let s = webhook_state(&bin, "flaky").await;
    assert_eq!(
        (s["state"].as_str(), s["consecutive_failures"].as_u64()),
        (Some("active"), Some(0)),
        "{s}"
    );
    assert_eq!(spool(&bin).await, (0, 0));
    let text = eventually(DEADLINE, "the resume alert", || async {
        alerts.received().get(1).map(|r| r.text())
    })
    .await;
    let alert: serde_json::Value = serde_json::from_str(&text).expect("alert JSON");
    assert_eq!(alert["type"], "webhook.resumed");
    assert_eq!(alert["reason"], "10 consecutive failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_while_paused_do_not_count_toward_max_attempts() {
    let iam = iam().await;
    let down = Arc::new(AtomicBool::new(true));
    let (receiver, taken) = flaky(down.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    // Three attempts at most, paused after two failures: the user's first event is tried far
    // more than three times while paused, and is still delivered in the end.
    let hooks = plain(
        "flaky",
        &receiver.url("/hook"),
        "    retry: {attempts: 3, initial: 10ms, max: 20ms}\n    health: {pause_after: 2, probe: {initial: 50ms, max: 100ms}}\n",
    );
    std::fs::write(&path, config(&iam.url(), 0, &hooks)).expect("config");
    let bin = Binary::start(&path).await;
    let acked = Load::start(format!("http://{}", bin.proxy_addr), 1, 1, 2)
        .join()
        .await;
    assert_eq!(acked.len(), 2);
    eventually(DEADLINE, "eight tries of the first event", || async {
        (receiver.received().len() >= 8).then_some(())
    })
    .await;
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.text().contains("u0-0")),
        "only the lane head is tried while it fails"
    );
    assert_eq!(spool(&bin).await, (2, 0));
    down.store(false, Ordering::SeqCst);
    eventually(DEADLINE, "both delivered", || async {
        (spool(&bin).await.0 == 0).then_some(())
    })
    .await;
    let delivered = taken.lock().expect("lock").clone();
    assert_eq!(per_user(&delivered).get("u0"), Some(&vec![0, 1]));
    assert_eq!(spool(&bin).await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_pauses_at_once_and_the_cli_lists_and_resumes_it() {
    let iam = iam().await;
    let gone = Arc::new(AtomicBool::new(true));
    let g = gone.clone();
    let receiver = WebhookReceiver::start(move |_, _| {
        if g.load(Ordering::SeqCst) {
            Answer::status(410, "this endpoint is gone")
        } else {
            Answer::ok()
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    let admin = free_port();
    // The first probe is ten minutes away: only the operator's resume brings it back here.
    let hooks = plain(
        "gone",
        &receiver.url("/hook"),
        "    concurrency: 1\n    health: {probe: {initial: 10m}}\n",
    );
    std::fs::write(&path, config(&iam.url(), admin, &hooks)).expect("config");
    let bin = Binary::start(&path).await;
    let acked = Load::start(format!("http://{}", bin.proxy_addr), 3, 3, 1)
        .join()
        .await;
    assert_eq!(acked.len(), 3);
    let state = eventually(DEADLINE, "a 410 to pause the webhook", || async {
        let s = webhook_state(&bin, "gone").await;
        (s["state"] == "paused").then_some(s)
    })
    .await;
    assert_eq!(state["reason"], "410 Gone", "{state}");
    assert_eq!(receiver.received().len(), 1, "one 410 is enough");
    assert_eq!(spool(&bin).await, (3, 0));

    let (ok, out, err) = cli(&path, &["webhooks"]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("1 webhook(s):\ngone  paused  pending=3"),
        "{out}"
    );
    assert!(out.contains("reason=\"410 Gone\""), "{out}");
    let (ok, _, err) = cli(&path, &["webhooks", "resume", "nope"]).await;
    assert!(
        !ok && err.contains("no webhook named `nope`; known: gone"),
        "{err}"
    );

    gone.store(false, Ordering::SeqCst);
    let (ok, out, err) = cli(&path, &["webhooks", "resume", "gone"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "webhook `gone` resumed.\n");
    eventually(DEADLINE, "all three delivered after the resume", || async {
        (spool(&bin).await.0 == 0).then_some(())
    })
    .await;
    assert_eq!(receiver.received().len(), 4);
    let (ok, out, _) = cli(&path, &["webhooks", "list"]).await;
    assert!(ok && out.contains("gone  active  pending=0"), "{out}");
    assert_eq!(spool(&bin).await, (0, 0));
}
