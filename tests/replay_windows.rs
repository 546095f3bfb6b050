//! Replay windows through the real binary: successful deliveries kept under
//! `delivery.retain_delivered` are re-sent by webhook and time window (admin API and CLI) with
//! the `webhook-id` the receiver saw the first time, and dead letters are replayed by webhook
//! and window from the CLI.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::{json, Value};
use support::receiver::{Answer, Received, WebhookReceiver};
use support::{eventually, full, respond, send, Binary, FakeUpstream};

const WAIT: Duration = Duration::from_secs(20);

/// A port nothing listens on right now, for an admin API the CLI must reach.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn create(proxy: &str, n: u32) {
    let req = Request::post(format!("{proxy}/users"))
        .header("content-type", "application/json")
        .body(full(Bytes::from(
            json!({"email": format!("u{n}@example.com")}).to_string(),
        )))
        .expect("request");
    assert_eq!(send(req).await.0, StatusCode::CREATED);
}

async fn admin_post(admin: &str, path: &str) -> (StatusCode, Value) {
    let req = Request::post(format!("{admin}{path}"))
        .header("content-type", "application/json")
        .body(full(Bytes::from_static(b"{}")))
        .expect("request");
    let (status, _, body) = send(req).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn cli(config: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run userhook");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn of(received: &[Received], path: &str) -> Vec<Received> {
    received.iter().filter(|r| r.uri == path).cloned().collect()
}

fn ids(received: &[Received]) -> Vec<String> {
    received.iter().map(|r| r.header("webhook-id")).collect()
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[tokio::test]
async fn resend_by_window_keeps_the_webhook_id_and_dead_letters_replay_by_window() {
    let iam = FakeUpstream::start(|r| async move {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let email = body["email"].as_str().unwrap_or("");
        let id = email.split('@').next().unwrap_or("");
        respond(201, json!({"id": id}).to_string())
    })
    .await;
    // `/dead` refuses (404: dead-lettered at once) until the test heals it.
    let healed = Arc::new(AtomicBool::new(false));
    let healed2 = healed.clone();
    let recv = WebhookReceiver::start(move |r, _| {
        if r.uri == "/dead" && !healed2.load(Ordering::SeqCst) {
            Answer::status(404, "gone for now")
        } else {
            Answer::ok()
        }
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let admin_port = free_port();
    let yaml = format!(
        "listen: 127.0.0.1:0\nupstream: {}\nadmin:\n  listen: 127.0.0.1:{admin_port}\n\
         delivery:\n  spool_dir: '{}'\n  retain_delivered: {{count: 100, max_age: 1h}}\n\
         routes:\n  - action: created\n    method: POST\n    path: /users\n    status: [201]\n\
         \x20   fields: {{ID: response.body.id, Email: request.body.email}}\n\
         webhooks:\n\
         \x20 - {{name: ops, actions: [created], url: '{}', body: '{{\"id\":\"{{{{$$.ID$$}}}}\"}}'}}\n\
         \x20 - {{name: dead, actions: [created], url: '{}', body: '{{\"id\":\"{{{{$$.ID$$}}}}\"}}'}}\n",
        iam.url(),
        dir.path().join("spool").display(),
        recv.url("/ops"),
        recv.url("/dead"),
    );
    let config = dir.path().join("userhook.yaml");
    std::fs::write(&config, &yaml).expect("write config");
    let bin = Binary::start(&config).await;
    assert_eq!(bin.admin_addr.port(), admin_port);
    let proxy = format!("http://{}", bin.proxy_addr);
    let admin = format!("http://{}", bin.admin_addr);

    // u1 before `mid`, u2 and u3 after it.
    create(&proxy, 1).await;
    eventually(WAIT, "u1 delivered and dead-lettered", || async {
        (of(&recv.received(), "/ops").len() == 1 && of(&recv.received(), "/dead").len() == 1)
            .then_some(())
    })
    .await;
    let mid = SystemTime::now();
    eventually(WAIT, "the clock to move past mid", || async {
        (SystemTime::now() > mid + Duration::from_millis(2)).then_some(())
    })
    .await;
    create(&proxy, 2).await;
    create(&proxy, 3).await;
    let first = eventually(WAIT, "three deliveries to ops", || async {
        let ops = of(&recv.received(), "/ops");
        (ops.len() == 3 && of(&recv.received(), "/dead").len() == 3).then_some(ops)
    })
    .await;
    let by_id = |list: &[Received]| -> BTreeSet<(String, String)> {
        list.iter()
            .map(|r| (r.header("webhook-id"), r.text()))
            .collect()
    };
    // Wait until the three dead letters are committed.
    eventually(WAIT, "three dead letters", || async {
        let (_, _, body) = support::get(&format!("{admin}/spool")).await;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (v["dead_letters"] == 3).then_some(())
    })
    .await;

    // Admin API: since `mid` re-sends u2 and u3 with their ids, not u1.
    let (status, body) = admin_post(
        &admin,
        &format!("/deliveries/resend?webhook=ops&since={}", rfc3339(mid)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"resent": 2, "retained": true}));
    let again = eventually(WAIT, "two re-sends", || async {
        let ops = of(&recv.received(), "/ops");
        (ops.len() == 5).then(|| ops[3..].to_vec())
    })
    .await;
    let later = by_id(&first);
    for r in &again {
        assert!(
            later.contains(&(r.header("webhook-id"), r.text())),
            "a re-send is the original delivery: {} {}",
            r.header("webhook-id"),
            r.text()
        );
        assert_ne!(r.text(), r#"{"id":"u1"}"#, "u1 is before the window");
    }
    assert_eq!(
        ids(&again).into_iter().collect::<BTreeSet<_>>().len(),
        2,
        "two different deliveries"
    );

    // A window that ends before any event re-sends nothing; a bad window is a 400.
    let (status, body) = admin_post(&admin, "/deliveries/resend?until=2000-01-01T00:00:00Z").await;
    assert_eq!((status, body["resent"].clone()), (StatusCode::OK, json!(0)));
    let (status, body) = admin_post(&admin, "/deliveries/resend?since=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("`since` value `soon`")),
        "{body}"
    );

    // CLI against the running instance: every kept `ops` delivery of the last hour.
    let (code, out) = cli(
        &config,
        &["deliveries", "resend", "--webhook", "ops", "--since", "1h"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("3 delivered deliveries re-sent by the running instance"),
        "{out}"
    );
    let all = eventually(WAIT, "three more re-sends", || async {
        let ops = of(&recv.received(), "/ops");
        (ops.len() == 8).then_some(ops)
    })
    .await;
    assert_eq!(by_id(&all[5..]), by_id(&first), "the same three deliveries");

    // Dead letters of `dead` since `mid`: u2 and u3 go again with their ids, u1 stays.
    let dead_first = of(&recv.received(), "/dead");
    healed.store(true, Ordering::SeqCst);
    let (code, out) = cli(
        &config,
        &[
            "deadletter",
            "replay",
            "--webhook",
            "dead",
            "--since",
            &rfc3339(mid),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("2 dead letter(s) replayed by the running instance"),
        "{out}"
    );
    let replayed = eventually(WAIT, "two replays", || async {
        let dead = of(&recv.received(), "/dead");
        (dead.len() == 5).then(|| dead[3..].to_vec())
    })
    .await;
    let original = by_id(&dead_first);
    for r in &replayed {
        assert!(original.contains(&(r.header("webhook-id"), r.text())));
        assert_ne!(r.text(), r#"{"id":"u1"}"#);
    }
    eventually(WAIT, "one dead letter left", || async {
        let (_, _, body) = support::get(&format!("{admin}/spool")).await;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (v["dead_letters"] == 1).then_some(())
    })
    .await;

    // The CLI refuses a window that is not one before asking anyone.
    let (code, out) = cli(
        &config,
        &["deadletter", "replay", "--since", "2h", "--until", "3h"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is not before `until`"), "{out}");
    drop(bin);
}
