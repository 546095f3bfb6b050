//! Operations through the admin port of the real server (in process): `/metrics` counters move
//! as requests are proxied and events are delivered, retried and dead-lettered; `/config`
//! shows the running config redacted, with its hash and load time; `/readyz` stays ready when
//! a reload is rejected.
//!
//! The metrics recorder is process-wide, so each test uses its own route paths and webhook
//! names and compares against values read before it acted.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::Value;
use support::receiver::{Answer, WebhookReceiver};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

async fn scrape(uh: &Userhook) -> String {
    let (status, headers, body) = get(&format!("{}/metrics", uh.admin_url())).await;
    assert_eq!(status, StatusCode::OK);
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    String::from_utf8_lossy(&body).into_owned()
}

/// The value of the sample `name` whose labels include every pair (0 when absent).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn post_json(url: &str, body: &str, request_id: &str) -> StatusCode {
    let req = Request::post(url)
        .header("content-type", "application/json")
        .header("x-request-id", request_id)
        .body(full(Bytes::from(body.to_owned())))
        .expect("request");
    send(req).await.0
}

#[tokio::test]
async fn metrics_move_as_events_are_delivered_retried_and_dead_lettered() {
    let iam = FakeUpstream::start(|r| async move {
        if r.uri.starts_with("/ops/users") {
            respond(201, r#"{"id":"u-ops-1","username":"olga"}"#)
        } else {
            respond(200, "{}")
        }
    })
    .await;
    let ok = WebhookReceiver::fixed(200, "ok").await;
    let flaky = WebhookReceiver::scripted(vec![Answer::status(503, "busy")], Answer::ok()).await;
    let dead = WebhookReceiver::fixed(400, "bad request").await;
    let yaml = config_for(
        &iam.url(),
        &format!(
            "routes:\n  - {{action: created, method: POST, path: /ops/users, fields: {{ID: response.body.id, Name: request.body.username}}}}\n\
             webhooks:\n\
             \x20 - {{name: ops-ok, actions: [created], url: '{}'}}\n\
             \x20 - {{name: ops-flaky, actions: [created], url: '{}', retry: {{attempts: 5, initial: 10ms, max: 20ms}}}}\n\
             \x20 - {{name: ops-dead, actions: [created], url: '{}'}}\n",
            ok.url("/hook"),
            flaky.url("/hook"),
            dead.url("/hook"),
        ),
    );
    let uh = Userhook::start(&yaml, false).await;
    let before = scrape(&uh).await;
    let created_before = sample(&before, "userhook_events_total", &[("action", "created")]);
    let unmatched_before = sample(
        &before,
        "userhook_proxied_requests_total",
        &[("rule", "none"), ("status", "2xx")],
    );
    // Pre-registered at load: the matched rule's series exist before any request.
    assert!(
        before.contains(r#"rule="POST /ops/users",status="2xx""#),
        "{before}"
    );

    let status = post_json(
        &format!("{}/ops/users", uh.url()),
        r#"{"username":"olga"}"#,
        "req-ops-1",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = get(&format!("{}/elsewhere", uh.url())).await;
    assert_eq!(status, StatusCode::OK);

    let text = eventually(WAIT, "three finished deliveries in /metrics", || async {
        let text = scrape(&uh).await;
        let done = |hook: &str, result: &str| {
            sample(
                &text,
                "userhook_deliveries_total",
                &[("webhook", hook), ("result", result)],
            )
        };
        // The dead-letter count is read from the spool, whose move is committed just after
        // the outcome is counted: wait for both.
        (done("ops-ok", "success") == 1.0
            && done("ops-flaky", "success") == 1.0
            && done("ops-dead", "dead_letter") == 1.0
            && sample(&text, "userhook_dead_letters", &[]) == 1.0)
            .then_some(text)
    })
    .await;

    let m = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
    assert_eq!(
        m(
            "userhook_proxied_requests_total",
            &[("rule", "POST /ops/users"), ("status", "2xx")]
        ),
        1.0
    );
    assert!(
        m(
            "userhook_proxied_requests_total",
            &[("rule", "none"), ("status", "2xx")]
        ) >= unmatched_before + 1.0
    );
    assert!(m("userhook_events_total", &[("action", "created")]) >= created_before + 1.0);
    let attempts = |hook: &str, outcome: &str| {
        m(
            "userhook_delivery_attempts_total",
            &[("webhook", hook), ("outcome", outcome)],
        )
    };
    assert_eq!(attempts("ops-ok", "success"), 1.0);
    assert_eq!(attempts("ops-ok", "retry"), 0.0);
    assert_eq!(attempts("ops-flaky", "retry"), 1.0);
    assert_eq!(attempts("ops-flaky", "success"), 1.0);
    assert_eq!(attempts("ops-dead", "final"), 1.0);
    assert_eq!(attempts("ops-dead", "success"), 0.0);
    assert_eq!(
        m("userhook_dead_letters_total", &[("webhook", "ops-dead")]),
        1.0
    );
    assert_eq!(m("userhook_dead_letters", &[]), 1.0, "{text}");
    // A histogram with buckets: one successful delivery each.
    assert!(
        text.contains("# TYPE userhook_delivery_latency_seconds histogram"),
        "{text}"
    );
    for hook in ["ops-ok", "ops-flaky"] {
        assert_eq!(
            m(
                "userhook_delivery_latency_seconds_count",
                &[("webhook", hook)]
            ),
            1.0,
            "{text}"
        );
        assert_eq!(
            m(
                "userhook_delivery_latency_seconds_bucket",
                &[("webhook", hook), ("le", "+Inf")]
            ),
            1.0
        );
    }
    // Nothing was dropped, and the series say so explicitly.
    for reason in [
        "extractor_queue_full",
        "spool_full",
        "spool_overloaded",
        "stopping",
    ] {
        assert!(
            text.contains(&format!(
                "userhook_events_dropped_total{{reason=\"{reason}\"}} 0"
            )),
            "{text}"
        );
    }
    // Everything finished: nothing is pending; the spool still holds the dead letter.
    eventually(WAIT, "spool depth back to 0", || async {
        let text = scrape(&uh).await;
        (sample(&text, "userhook_spool_depth", &[]) == 0.0
            && sample(&text, "userhook_spool_bytes", &[]) > 0.0)
            .then_some(())
    })
    .await;
    // The request id the client sent went upstream and into every delivery's event.
    assert_eq!(
        iam.requests()[0]
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("req-ops-1")
    );
    uh.handle.stop().await;
}

#[tokio::test]
async fn upstream_errors_are_counted_by_kind() {
    // A port nothing listens on: every request is a 502 "unreachable".
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let uh = Userhook::start(&config_for(&format!("http://{closed}"), ""), false).await;
    let before = scrape(&uh).await;
    let (status, _, _) = get(&format!("{}/anything", uh.url())).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let after = scrape(&uh).await;
    let unreachable = |t: &str| {
        sample(
            t,
            "userhook_upstream_errors_total",
            &[("kind", "unreachable")],
        )
    };
    assert!(unreachable(&after) >= unreachable(&before) + 1.0, "{after}");
    let none5 = |t: &str| {
        sample(
            t,
            "userhook_proxied_requests_total",
            &[("rule", "none"), ("status", "5xx")],
        )
    };
    assert!(none5(&after) >= none5(&before) + 1.0, "{after}");
    // The other kinds exist at zero from the start (alerts need the series).
    assert!(after.contains(r#"userhook_upstream_errors_total{kind="timeout"}"#));
    uh.handle.stop().await;
}

#[tokio::test]
async fn config_shows_the_running_config_redacted_with_hash_and_load_time() {
    let iam = FakeUpstream::fixed("{}").await;
    let yaml = config_for(
        &iam.url(),
        "webhooks:\n  - name: secretive\n    actions: ['*']\n    url: https://robot.example/send?key=CANARY-KEY-1\n    secret: CANARY-SECRET-2\n    headers: {Authorization: Bearer CANARY-TOKEN-3, X-Team: iam}\n",
    );
    let uh = Userhook::start(&yaml, false).await;
    let (status, _, body) = get(&format!("{}/config", uh.admin_url())).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&body);
    assert!(!text.contains("CANARY"), "{text}");
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["hash"], userhook::snapshot::content_hash(&yaml));
    let loaded_at = v["loaded_at"].as_str().expect("loaded_at");
    assert_eq!(
        loaded_at.len(),
        "2026-11-30T03:36:46.123Z".len(),
        "{loaded_at}"
    );
    assert!(loaded_at.ends_with('Z') && loaded_at.as_bytes()[10] == b'T');
    let hook = &v["config"]["webhooks"][0];
    assert_eq!(hook["secret"], "<redacted>");
    assert_eq!(hook["url"], "https://robot.example/send?key=<redacted>");
    assert_eq!(hook["headers"]["Authorization"], "<redacted>");
    assert_eq!(hook["headers"]["X-Team"], "iam");
    assert_eq!(v["config"]["upstream"], iam.url());

    // A reload changes hash and load time.
    let next = format!("{yaml}capture_limit: 2MiB\n");
    uh.handle.apply(&next).expect("valid reload");
    let (_, _, body) = get(&format!("{}/config", uh.admin_url())).await;
    let v2: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v2["hash"], userhook::snapshot::content_hash(&next));
    assert!(v2["loaded_at"].as_str() >= Some(loaded_at));
    uh.handle.stop().await;
}

#[tokio::test]
async fn rejected_reload_is_reported_but_stays_ready() {
    let iam = FakeUpstream::fixed("{}").await;
    let yaml = config_for(&iam.url(), "");
    let uh = Userhook::start(&yaml, false).await;
    let before = scrape(&uh).await;
    let reloads = |t: &str, r: &str| sample(t, "userhook_config_reloads_total", &[("result", r)]);

    assert!(uh.handle.apply("upstream: ftp://nowhere\n").is_err());
    let (status, _, body) = get(&format!("{}/readyz", uh.admin_url())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["ready"], true);
    assert_eq!(v["last_reload_rejected"], true);

    uh.handle.apply(&yaml).expect("same text");
    let (_, _, body) = get(&format!("{}/readyz", uh.admin_url())).await;
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["last_reload_rejected"], false);
    uh.handle
        .apply(&format!("{yaml}capture_limit: 2MiB\n"))
        .expect("valid change");

    let after = scrape(&uh).await;
    assert!(reloads(&after, "rejected") >= reloads(&before, "rejected") + 1.0);
    assert!(reloads(&after, "unchanged") >= reloads(&before, "unchanged") + 1.0);
    assert!(reloads(&after, "applied") >= reloads(&before, "applied") + 1.0);
    uh.handle.stop().await;
}
