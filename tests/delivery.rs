//! Webhook delivery end to end against real HTTP receivers on 127.0.0.1: exact bodies,
//! escaping, retries, Retry-After, final failures, timeouts, robot verdicts, signatures,
//! per-user ordering, reloads, the admin `/deliveries` view and `userhook send-test`.
//!
//! The engine is driven directly with `UserEvent`s (detection lands separately).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use support::receiver::{Answer, Received, WebhookReceiver};
use support::{eventually, get};
use userhook::event::{Action, RequestInfo, UserEvent};
use userhook::events::dispatch::Dispatcher;
use userhook::events::{DeliveryEngine, DeliveryRecord, DeliveryStatus};
use userhook::snapshot::Snapshot;

const WAIT: Duration = Duration::from_secs(10);
const FAST_RETRY: &str = "retry: {attempts: 5, initial: 10ms, max: 50ms}";

fn config(webhooks: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\nupstream: http://127.0.0.1:1\nadmin: {{listen: 127.0.0.1:0}}\nroutes:\n  - {{action: created, method: POST, path: /users, fields: {{Department: request.body.dept}}}}\nwebhooks:\n{webhooks}"
    )
}

struct Engine {
    cell: Arc<ArcSwap<Snapshot>>,
    engine: DeliveryEngine,
    dispatcher: Dispatcher,
}

impl Engine {
    fn start(webhooks: &str) -> Engine {
        let rt = Snapshot::from_text(&config(webhooks), None).unwrap_or_else(|e| panic!("{e}"));
        let cell = Arc::new(ArcSwap::from_pointee(rt));
        let engine = DeliveryEngine::start(cell.clone()).expect("engine");
        let dispatcher = Dispatcher::new(engine.clone());
        Engine {
            cell,
            engine,
            dispatcher,
        }
    }

    fn send(&self, event: &UserEvent) -> usize {
        self.dispatcher.dispatch(&self.cell.load(), event)
    }

    /// Waits until `n` deliveries have a final status (successful or failed).
    async fn finals(&self, n: usize) -> Vec<DeliveryRecord> {
        let engine = self.engine.clone();
        eventually(WAIT, &format!("{n} final delivery outcomes"), || {
            let engine = engine.clone();
            async move {
                let done: Vec<_> = engine
                    .records(None)
                    .into_iter()
                    .filter(|r| r.status != DeliveryStatus::Retrying)
                    .collect();
                (done.len() >= n).then_some(done)
            }
        })
        .await
    }
}

fn event(action: Action, fields: &[(&str, &str)]) -> UserEvent {
    let user: BTreeMap<String, String> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let request = RequestInfo {
        method: "POST".into(),
        path: "/users".into(),
        status: 201,
        remote_addr: "192.0.2.7:5555".into(),
        request_id: "req-1".into(),
        user_agent: "curl/8".into(),
    };
    let mut ev = UserEvent::new(1, action, user, request, false);
    ev.occurred_at = "2026-11-30T03:36:46.123Z".into();
    ev
}

fn alice() -> UserEvent {
    event(
        Action::Created,
        &[
            ("ID", "42"),
            ("Name", "alice"),
            ("Email", "alice@example.com"),
            ("FirstName", "Alice"),
            ("LastName", "Liddell"),
            ("CreatedAt", "2026-11-30T03:36:46Z"),
            ("Enabled", "true"),
        ],
    )
}

async fn received(r: &WebhookReceiver, n: usize) -> Vec<Received> {
    eventually(WAIT, &format!("{n} requests at the receiver"), || async {
        let got = r.received();
        (got.len() >= n).then_some(got)
    })
    .await
}

#[tokio::test]
async fn dce_default_body_and_standard_headers() {
    let recv = WebhookReceiver::fixed(200, "ok").await;
    let e = Engine::start(&format!(
        "  - {{name: dce, actions: [created], url: '{}', headers: {{X-Source: iam}}}}\n",
        recv.url("/hook")
    ));
    assert_eq!(e.send(&alice()), 1);
    let records = e.finals(1).await;
    let got = received(&recv, 1).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.uri, "/hook");
    assert_eq!(
        r.text(),
        r#"{"id":"42","email":"alice@example.com","username":"alice","last_name":"Liddell","first_name":"Alice","created_at":"2026-11-30T03:36:46Z","enabled":"true"}"#
    );
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("x-source"), "iam");
    assert_eq!(
        r.header("user-agent"),
        format!("userhook/{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(r.headers.get("webhook-signature").is_none());
    let ts: i64 = r.header("webhook-timestamp").parse().expect("unix seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!((now - ts).abs() <= 5, "timestamp {ts} vs now {now}");
    let rec = &records[0];
    assert_eq!(r.header("webhook-id"), rec.delivery_id);
    assert_eq!(rec.status, DeliveryStatus::Successful);
    assert_eq!(rec.attempts, 1);
    assert_eq!(rec.webhook, "dce");
    assert_eq!(rec.user_id, "42");
    assert_eq!(rec.event_type, "user.created");
    assert_eq!(rec.last_http_status, Some(200));
    assert_eq!(rec.last_error, None);
    assert!(e.engine.pending().is_empty());
}

#[tokio::test]
async fn every_preset_sends_its_exact_body() {
    let recv = WebhookReceiver::fixed(200, r#"{"errcode":0,"code":0,"ok":true}"#).await;
    let presets = [
        "wecom-text",
        "wecom-markdown",
        "dingtalk",
        "feishu",
        "slack",
        "default",
    ];
    let hooks: String = presets
        .iter()
        .map(|p| {
            format!(
                "  - {{name: {p}, actions: ['*'], preset: {p}, url: '{}'}}\n",
                recv.url(&format!("/{p}"))
            )
        })
        .collect();
    let e = Engine::start(&hooks);
    assert_eq!(e.send(&alice()), presets.len());
    let records = e.finals(presets.len()).await;
    assert!(
        records
            .iter()
            .all(|r| r.status == DeliveryStatus::Successful),
        "{records:?}"
    );
    let got = received(&recv, presets.len()).await;
    let body = |p: &str| {
        got.iter()
            .find(|r| r.uri == format!("/{p}"))
            .map(Received::text)
            .unwrap_or_else(|| panic!("no request for {p}"))
    };
    let line = "[userhook] user.created: alice (alice@example.com) id=42";
    assert_eq!(
        body("wecom-text"),
        format!(r#"{{"msgtype":"text","text":{{"content":"{line}"}}}}"#)
    );
    assert_eq!(
        body("dingtalk"),
        format!(r#"{{"msgtype":"text","text":{{"content":"{line}"}}}}"#)
    );
    assert_eq!(
        body("feishu"),
        format!(r#"{{"msg_type":"text","content":{{"text":"{line}"}}}}"#)
    );
    assert_eq!(body("slack"), format!(r#"{{"text":"{line}"}}"#));
    assert_eq!(
        body("wecom-markdown"),
        concat!(
            r#"{"msgtype":"markdown","markdown":{"content":"**[userhook] user.created**\n"#,
            r#"> user: alice\n> email: alice@example.com\n> id: 42\n"#,
            r#"> from: 192.0.2.7 at 2026-11-30T03:36:46.123Z"}}"#
        )
    );
    assert!(body("default").starts_with(r#"{"id":"42","email":"alice@example.com""#));
}

#[tokio::test]
async fn hostile_values_are_escaped_and_url_variables_encoded() {
    let recv = WebhookReceiver::fixed(200, "ok").await;
    let hostile = "a\"b\\c\n</x>{{$$.ID$$}}\", \"admin\": true, 🎉";
    let e = Engine::start(&format!(
        "  - name: h\n    actions: ['*']\n    url: '{}/u/{{{{$$.Name$$}}}}?id={{{{$$.ID$$}}}}&d={{{{$$.Department$$}}}}'\n    body: '{{\"n\":\"{{{{$$.Name$$}}}}\",\"d\":{{{{$$.Department$$}}}}}}'\n",
        recv.url("")
    ));
    e.send(&event(
        Action::Updated,
        &[("ID", "4/2&x=1"), ("Name", hostile), ("Department", "R&D")],
    ));
    let got = received(&recv, 1).await;
    let r = &got[0];
    assert_eq!(
        r.uri,
        "/u/a%22b%5Cc%0A%3C%2Fx%3E%7B%7B%24%24.ID%24%24%7D%7D%22%2C%20%22admin%22%3A%20true%2C%20%F0%9F%8E%89?id=4%2F2%26x%3D1&d=R%26D"
    );
    assert_eq!(
        r.text(),
        r#"{"n":"a\"b\\c\n</x>{{$$.ID$$}}\", \"admin\": true, 🎉","d":"R&D"}"#
    );
    let doc: serde_json::Value = serde_json::from_slice(&r.body).expect("valid JSON");
    assert_eq!(doc.as_object().map(|o| o.len()), Some(2));
    assert_eq!(doc["n"], hostile);
}

#[tokio::test]
async fn failing_receiver_is_retried_with_one_webhook_id() {
    let recv = WebhookReceiver::scripted(
        vec![
            Answer::status(503, "busy"),
            Answer::status(503, "busy"),
            Answer::status(500, "oops"),
        ],
        Answer::ok(),
    )
    .await;
    let e = Engine::start(&format!(
        "  - {{name: r, actions: ['*'], url: '{}', {FAST_RETRY}}}\n",
        recv.url("/r")
    ));
    e.send(&alice());
    let records = e.finals(1).await;
    let rec = &records[0];
    assert_eq!(rec.status, DeliveryStatus::Successful, "{rec:?}");
    assert_eq!(rec.attempts, 4);
    let got = recv.received();
    assert_eq!(got.len(), 4, "delivered once, after N+1 attempts");
    assert!(got
        .iter()
        .all(|r| r.header("webhook-id") == rec.delivery_id));
    assert!(got.windows(2).all(|w| w[0].body == w[1].body));
    assert!(e.engine.dead_letters().is_empty());
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let recv = WebhookReceiver::scripted(
        vec![Answer::status(429, "slow down").header("retry-after", "1")],
        Answer::ok(),
    )
    .await;
    let e = Engine::start(&format!(
        "  - {{name: r, actions: ['*'], url: '{}', {FAST_RETRY}}}\n",
        recv.url("/r")
    ));
    e.send(&alice());
    let records = e.finals(1).await;
    assert_eq!(records[0].status, DeliveryStatus::Successful);
    let got = recv.received();
    assert_eq!(got.len(), 2);
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "second attempt {gap:?} after the first"
    );
}

#[tokio::test]
async fn client_errors_are_final_and_dead_lettered() {
    let recv = WebhookReceiver::fixed(400, "bad field").await;
    let e = Engine::start(&format!(
        "  - {{name: r, actions: ['*'], url: '{}', {FAST_RETRY}}}\n",
        recv.url("/r")
    ));
    e.send(&alice());
    let records = e.finals(1).await;
    let rec = &records[0];
    assert_eq!(rec.status, DeliveryStatus::Failed);
    assert_eq!(rec.attempts, 1);
    assert_eq!(rec.last_http_status, Some(400));
    assert_eq!(rec.last_error.as_deref(), Some("HTTP 400: bad field"));
    let dead = e.engine.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].delivery.id, rec.delivery_id);
    assert_eq!(dead[0].reason, "HTTP 400: bad field");
    assert_eq!(dead[0].delivery.event.user["ID"], "42");
    assert_eq!(recv.received().len(), 1);
    assert_eq!(e.engine.records(Some(DeliveryStatus::Successful)).len(), 0);
    assert_eq!(e.engine.records(Some(DeliveryStatus::Failed)).len(), 1);
}

#[tokio::test]
async fn out_of_attempts_is_a_dead_letter() {
    let recv = WebhookReceiver::fixed(502, "").await;
    let e = Engine::start(&format!(
        "  - {{name: r, actions: ['*'], url: '{}', retry: {{attempts: 3, initial: 10ms, max: 20ms}}}}\n",
        recv.url("/r")
    ));
    e.send(&alice());
    let records = e.finals(1).await;
    assert_eq!(records[0].status, DeliveryStatus::Failed);
    assert_eq!(records[0].attempts, 3);
    assert_eq!(
        records[0].last_error.as_deref(),
        Some("gave up after 3 attempts: HTTP 502")
    );
    assert_eq!(recv.received().len(), 3);
}

#[tokio::test]
async fn timeouts_are_retried() {
    let recv = WebhookReceiver::scripted(
        vec![Answer::ok().after(Duration::from_secs(3))],
        Answer::ok(),
    )
    .await;
    let e = Engine::start(&format!(
        "  - {{name: r, actions: ['*'], url: '{}', timeout: 200ms, {FAST_RETRY}}}\n",
        recv.url("/r")
    ));
    e.send(&alice());
    let records = e.finals(1).await;
    assert_eq!(records[0].status, DeliveryStatus::Successful, "{records:?}");
    assert_eq!(records[0].attempts, 2);
    assert_eq!(recv.received().len(), 2);
}

#[tokio::test]
async fn connection_errors_are_retried_and_a_fixed_url_applies_to_pending_retries() {
    // Nothing listens on the first URL; the fix is a reload pointing at the receiver.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = closed.local_addr().expect("addr");
    drop(closed);
    let e = Engine::start(&format!(
        "  - {{name: r, actions: ['*'], url: 'http://{dead_addr}/r', retry: {{attempts: 50, initial: 50ms, max: 100ms}}}}\n"
    ));
    e.send(&alice());
    let engine = e.engine.clone();
    let retrying = eventually(WAIT, "a retrying record", || {
        let engine = engine.clone();
        async move {
            engine
                .records(Some(DeliveryStatus::Retrying))
                .into_iter()
                .next()
        }
    })
    .await;
    assert!(retrying.last_http_status.is_none());
    assert!(
        retrying
            .last_error
            .as_deref()
            .is_some_and(|e| !e.contains("http://")),
        "errors never carry the URL: {retrying:?}"
    );
    let recv = WebhookReceiver::fixed(200, "ok").await;
    let fixed = Snapshot::from_text(
        &config(&format!(
            "  - {{name: r, actions: ['*'], url: '{}', retry: {{attempts: 50, initial: 50ms, max: 100ms}}}}\n",
            recv.url("/fixed")
        )),
        None,
    )
    .expect("valid");
    e.cell.store(Arc::new(fixed));
    let records = e.finals(1).await;
    assert_eq!(records[0].status, DeliveryStatus::Successful);
    let got = recv.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].uri, "/fixed");
    assert_eq!(got[0].header("webhook-id"), retrying.delivery_id);
}

#[tokio::test]
async fn a_webhook_removed_from_config_dead_letters_its_pending_deliveries() {
    let recv = WebhookReceiver::scripted(
        vec![Answer::status(503, "").header("retry-after", "1")],
        Answer::ok(),
    )
    .await;
    let e = Engine::start(&format!(
        "  - {{name: gone, actions: ['*'], url: '{}', {FAST_RETRY}}}\n",
        recv.url("/r")
    ));
    e.send(&alice());
    received(&recv, 1).await;
    let without = Snapshot::from_text(&config("  []\n"), None).expect("valid");
    e.cell.store(Arc::new(without));
    let records = e.finals(1).await;
    assert_eq!(records[0].status, DeliveryStatus::Failed);
    assert_eq!(
        records[0].last_error.as_deref(),
        Some("webhook `gone` is no longer in the config")
    );
    assert_eq!(recv.received().len(), 1);
}

#[tokio::test]
async fn robot_errcode_failure_is_recorded_with_its_message() {
    let recv =
        WebhookReceiver::fixed(200, r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#).await;
    let e = Engine::start(&format!(
        "  - {{name: wecom, actions: ['*'], preset: wecom-text, url: '{}', {FAST_RETRY}}}\n",
        recv.url("/cgi-bin/webhook/send?key=abc")
    ));
    e.send(&alice());
    let records = e.finals(1).await;
    let rec = &records[0];
    assert_eq!(rec.status, DeliveryStatus::Failed);
    assert_eq!(rec.attempts, 1, "a rejected message is not retried");
    assert_eq!(rec.last_http_status, Some(200));
    assert_eq!(
        rec.last_error.as_deref(),
        Some("errcode 93000: invalid webhook url")
    );
    assert_eq!(recv.received()[0].uri, "/cgi-bin/webhook/send?key=abc");
}

#[tokio::test]
async fn signature_verifies_with_an_independent_hmac() {
    let recv = WebhookReceiver::fixed(204, "").await;
    let secret_b64 = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let e = Engine::start(&format!(
        "  - {{name: s, actions: ['*'], url: '{}', secret: whsec_{secret_b64}}}\n",
        recv.url("/s")
    ));
    e.send(&alice());
    e.finals(1).await;
    let r = &received(&recv, 1).await[0];
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret_b64)
        .expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(r.header("webhook-signature"), want);
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "webhook-id is a UUID: {id}"
    );
}

#[tokio::test]
async fn one_users_events_stay_in_order_while_others_flow() {
    // A1 fails twice (first time asking for a 1s pause); everything else succeeds.
    let recv = WebhookReceiver::start(|req, all| {
        let name = |r: &Received| {
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json")["n"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        if name(req) != "A1" {
            return Answer::ok();
        }
        match all.iter().filter(|r| name(r) == "A1").count() {
            1 => Answer::status(503, "").header("retry-after", "1"),
            2 => Answer::status(503, ""),
            _ => Answer::ok(),
        }
    })
    .await;
    let e = Engine::start(&format!(
        "  - {{name: o, actions: ['*'], url: '{}', body: '{{\"id\":\"{{{{$$.ID$$}}}}\",\"n\":\"{{{{$$.Name$$}}}}\"}}', {FAST_RETRY}}}\n",
        recv.url("/o")
    ));
    for (id, name) in [
        ("A", "A1"),
        ("B", "B1"),
        ("A", "A2"),
        ("B", "B2"),
        ("A", "A3"),
    ] {
        e.send(&event(Action::Updated, &[("ID", id), ("Name", name)]));
    }
    let records = e.finals(5).await;
    assert!(
        records
            .iter()
            .all(|r| r.status == DeliveryStatus::Successful),
        "{records:?}"
    );
    let order: Vec<String> = recv
        .received()
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json")["n"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let a: Vec<&str> = order
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with('A'))
        .collect();
    assert_eq!(a, ["A1", "A1", "A1", "A2", "A3"], "{order:?}");
    let pos = |n: &str, k: usize| {
        order
            .iter()
            .enumerate()
            .filter(|(_, x)| *x == n)
            .nth(k)
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("{n} #{k} missing from {order:?}"))
    };
    assert!(pos("B1", 0) < pos("B2", 0), "{order:?}");
    assert!(
        pos("B2", 0) < pos("A1", 1),
        "user B was not held up by user A: {order:?}"
    );
}

#[tokio::test]
async fn concurrency_limits_hold_per_webhook_and_globally() {
    // Each answer takes 150ms; with a limit of 1 the next request cannot arrive sooner.
    let slow = Duration::from_millis(150);
    let recv = WebhookReceiver::start(move |_, _| Answer::ok().after(slow)).await;
    let e = Engine::start(&format!(
        "  - {{name: one, actions: ['*'], url: '{}', concurrency: 1}}\n  - {{name: many, actions: ['*'], url: '{}'}}\n",
        recv.url("/one"),
        recv.url("/many")
    ));
    for user in ["a", "b", "c"] {
        e.send(&event(Action::Created, &[("ID", user)]));
    }
    e.finals(6).await;
    let got = recv.received();
    let at = |path: &str| -> Vec<std::time::Instant> {
        got.iter().filter(|r| r.uri == path).map(|r| r.at).collect()
    };
    let one = at("/one");
    assert_eq!(one.len(), 3);
    assert!(
        one.windows(2)
            .all(|w| w[1].duration_since(w[0]) >= slow - Duration::from_millis(10)),
        "concurrency 1 overlapped: {one:?}"
    );
    let many = at("/many");
    assert!(
        many[2].duration_since(many[0]) < slow,
        "the other webhook ran its three users in parallel: {many:?}"
    );

    // A global limit of 1 serialises everything.
    let recv = WebhookReceiver::start(move |_, _| Answer::ok().after(slow)).await;
    let text = config(&format!(
        "  - {{name: x, actions: ['*'], url: '{}'}}\n  - {{name: y, actions: ['*'], url: '{}'}}\n",
        recv.url("/x"),
        recv.url("/y")
    )) + "delivery: {concurrency: 1}\n";
    let rt = Snapshot::from_text(&text, None).unwrap_or_else(|e| panic!("{e}"));
    let engine = DeliveryEngine::start(Arc::new(ArcSwap::from_pointee(rt))).expect("engine");
    Dispatcher::new(engine.clone()).dispatch(
        &engine.runtime().load(),
        &event(Action::Created, &[("ID", "a")]),
    );
    let got = received(&recv, 2).await;
    assert!(got[1].at.duration_since(got[0].at) >= slow - Duration::from_millis(10));
}

#[tokio::test]
async fn disabled_and_unsubscribed_webhooks_get_nothing() {
    let recv = WebhookReceiver::fixed(200, "ok").await;
    let e = Engine::start(&format!(
        "  - {{name: off, actions: ['*'], url: '{0}', enabled: false}}\n  - {{name: logins, actions: [login], url: '{0}'}}\n  - {{name: on, actions: [created], url: '{0}'}}\n",
        recv.url("/x")
    ));
    assert_eq!(e.send(&alice()), 1);
    let records = e.finals(1).await;
    assert_eq!(records[0].webhook, "on");
    assert_eq!(recv.received().len(), 1);
}

#[tokio::test]
async fn admin_lists_deliveries_by_status() {
    let ok = WebhookReceiver::fixed(200, "ok").await;
    let bad = WebhookReceiver::fixed(404, "").await;
    let yaml = support::config_for(
        "http://127.0.0.1:1",
        &format!(
            "webhooks:\n  - {{name: good, actions: ['*'], url: '{}'}}\n  - {{name: bad, actions: ['*'], url: '{}'}}\n",
            ok.url("/ok"),
            bad.url("/bad")
        ),
    );
    let uh = support::Userhook::start(&yaml, false).await;
    let dispatcher = Dispatcher::new(uh.handle.deliveries.clone());
    assert_eq!(dispatcher.dispatch(&uh.handle.runtime.load(), &alice()), 2);
    let admin = uh.admin_url();
    let failed = eventually(WAIT, "a failed record over the admin API", || {
        let admin = admin.clone();
        async move {
            let (status, _, body) = get(&format!("{admin}/deliveries?status=failed")).await;
            assert_eq!(status, 200);
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let list = v["deliveries"].as_array().cloned().unwrap_or_default();
            (!list.is_empty()).then_some(list)
        }
    })
    .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["webhook"], "bad");
    assert_eq!(failed[0]["status"], "failed");
    assert_eq!(failed[0]["last_http_status"], 404);
    assert_eq!(failed[0]["user_id"], "42");
    let admin2 = admin.clone();
    let good = eventually(WAIT, "a successful record", || {
        let admin = admin2.clone();
        async move {
            let (_, _, body) = get(&format!("{admin}/deliveries?status=successful")).await;
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let list = v["deliveries"].as_array().cloned().unwrap_or_default();
            (!list.is_empty()).then_some(list)
        }
    })
    .await;
    assert_eq!(good[0]["webhook"], "good");
    let (status, _, body) = get(&format!("{admin}/deliveries")).await;
    assert_eq!(status, 200);
    let all: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(all["deliveries"].as_array().map(Vec::len), Some(2));
    let (status, _, _) = get(&format!("{admin}/deliveries?status=weird")).await;
    assert_eq!(status, 400);
    uh.handle.stop().await;
}

#[tokio::test]
async fn stop_lets_an_attempt_in_flight_finish() {
    let recv = WebhookReceiver::scripted(
        vec![Answer::ok().after(Duration::from_millis(300))],
        Answer::ok(),
    )
    .await;
    let e = Engine::start(&format!(
        "  - {{name: slow, actions: ['*'], url: '{}'}}\n",
        recv.url("/slow")
    ));
    e.send(&alice());
    received(&recv, 1).await;
    e.engine.stop(Duration::from_secs(5)).await;
    let records = e.engine.records(None);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, DeliveryStatus::Successful);
    assert!(e.engine.pending().is_empty());
}

mod send_test {
    use super::*;

    fn write_config(dir: &tempfile::TempDir, webhooks: &str) -> std::path::PathBuf {
        let path = dir.path().join("userhook.yaml");
        std::fs::write(&path, config(webhooks)).expect("write");
        path
    }

    async fn run(args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
            .args(args)
            .output()
            .await
            .expect("run userhook")
    }

    #[tokio::test]
    async fn sends_once_and_prints_request_and_reply_without_secrets() {
        let recv = WebhookReceiver::fixed(200, r#"{"errcode":0,"errmsg":"ok"}"#).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_config(
            &dir,
            &format!(
                "  - {{name: ops, actions: [created], preset: wecom-text, url: '{}', headers: {{Authorization: Bearer T0PSECRET}}, secret: r4w-s1gning-secret}}\n",
                recv.url("/send?key=K3YVALUE")
            ),
        );
        let path = path.to_str().expect("utf-8");
        let out = run(&["send-test", "--config", path, "--webhook", "ops"]).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = recv.received();
        assert_eq!(got.len(), 1);
        assert!(got[0]
            .text()
            .contains("user.created: alice (alice@example.com) id=42"));
        assert!(
            stdout.contains(&format!("POST http://{}/send?key=<redacted>", recv.addr)),
            "{stdout}"
        );
        assert!(stdout.contains("authorization: <redacted>"), "{stdout}");
        assert!(
            stdout.contains(&format!(
                "webhook-signature: {}",
                got[0].header("webhook-signature")
            )),
            "{stdout}"
        );
        assert!(stdout.contains(&format!("webhook-id: {}", got[0].header("webhook-id"))));
        assert!(
            stdout.contains(&got[0].text()),
            "the body is shown: {stdout}"
        );
        assert!(stdout.contains("HTTP 200"), "{stdout}");
        assert!(
            stdout.contains(r#"{"errcode":0,"errmsg":"ok"}"#),
            "{stdout}"
        );
        assert!(stdout.trim_end().ends_with("delivered"), "{stdout}");
        for secret in ["K3YVALUE", "T0PSECRET", "r4w-s1gning-secret"] {
            assert!(!stdout.contains(secret), "{secret} leaked: {stdout}");
        }
    }

    #[tokio::test]
    async fn a_failure_is_sent_once_and_exits_1() {
        let recv = WebhookReceiver::fixed(503, "down for maintenance").await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_config(
            &dir,
            &format!(
                "  - {{name: a, actions: ['*'], url: '{}', {FAST_RETRY}}}\n",
                recv.url("/a")
            ),
        );
        let path = path.to_str().expect("utf-8");
        let out = run(&[
            "send-test",
            "--config",
            path,
            "--webhook",
            "a",
            "--action",
            "deleted",
        ])
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert_eq!(recv.received().len(), 1, "no retries");
        assert!(stdout.contains("HTTP 503"), "{stdout}");
        assert!(
            stdout.contains("failed: HTTP 503: down for maintenance (a real delivery would retry)"),
            "{stdout}"
        );
    }

    #[tokio::test]
    async fn unknown_webhook_and_bad_config_exit_2() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_config(
            &dir,
            "  - {name: first, actions: ['*'], url: 'http://127.0.0.1:1/'}\n  - {name: second, actions: ['*'], url: 'http://127.0.0.1:1/'}\n",
        );
        let path = path.to_str().expect("utf-8");
        let out = run(&["send-test", "--config", path, "--webhook", "third"]).await;
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no webhook named `third`; known: first, second"),
            "{stderr}"
        );
        let bad = write_config(
            &dir,
            "  - {name: x, actions: ['*'], url: 'http://127.0.0.1:1/', body: '{\"e\":\"{{$$.Emial$$}}\"}'}\n",
        );
        let out = run(&[
            "send-test",
            "--config",
            bad.to_str().expect("utf-8"),
            "--webhook",
            "x",
        ])
        .await;
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("webhooks[0].body: unknown variable {{$$.Emial$$}}; known: ID"),
            "{stderr}"
        );
    }
}
