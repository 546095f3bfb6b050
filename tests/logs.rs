//! Logs of the real binary at `debug` level, as JSON: every line is a JSON object with
//! `timestamp`, `level`, `target`, `message` and its structured fields; the exchange's request
//! id is on the `user event` and delivery lines; and no line ever contains a password, a
//! webhook secret, a header credential or a key from a webhook URL's query (canaries).

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::Value;
use support::receiver::WebhookReceiver;
use support::*;

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "CANARY-PASSWORD-7f3a";
const SECRET: &str = "CANARY-SECRET-91bd";
const URL_KEY: &str = "CANARY-URLKEY-c0de";
const HEADER_TOKEN: &str = "CANARY-HEADER-5e11";

async fn post(url: String, content_type: &str, body: String, request_id: &str) -> StatusCode {
    let req = Request::post(url)
        .header("content-type", content_type)
        .header("x-request-id", request_id)
        .body(full(Bytes::from(body)))
        .expect("request");
    send(req).await.0
}

#[tokio::test]
async fn debug_json_logs_carry_request_ids_and_never_a_secret() {
    let iam = FakeUpstream::start(|r| async move {
        match (r.method.as_str(), r.uri.as_str()) {
            ("POST", "/users") => respond(201, r#"{"id":"u-77","username":"carol"}"#),
            ("POST", "/login") if String::from_utf8_lossy(&r.body).contains("wrong") => {
                respond(401, r#"{"error":"invalid credentials"}"#)
            }
            ("POST", "/login") => respond(200, r#"{"id":"u-77","username":"carol"}"#),
            _ => respond(200, "{}"),
        }
    })
    .await;
    let ok = WebhookReceiver::fixed(200, "ok").await;
    let rejecting = WebhookReceiver::fixed(400, "no").await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    let yaml = config_for(
        &iam.url(),
        &format!(
            "log: {{format: json, level: debug}}\n\
             profiles: [generic]\n\
             webhooks:\n\
             \x20 - name: signed\n\
             \x20   actions: ['*']\n\
             \x20   url: '{}?key=${{HOOK_KEY}}'\n\
             \x20   secret: ${{SIGNING_SECRET}}\n\
             \x20   headers: {{Authorization: 'Bearer {HEADER_TOKEN}'}}\n\
             \x20 - {{name: rejected, actions: [created], url: '{}?key={URL_KEY}'}}\n\
             \x20 - {{name: unreachable, actions: [created], url: 'http://{closed}/hook?key={URL_KEY}', retry: {{attempts: 2, initial: 10ms, max: 10ms}}}}\n",
            ok.url("/hook"),
            rejecting.url("/hook"),
        ),
    );
    std::fs::write(&path, &yaml).expect("write");
    let bin = Binary::start_with_env(
        &path,
        &[
            ("RUST_LOG", "debug"),
            ("HOOK_KEY", URL_KEY),
            ("SIGNING_SECRET", SECRET),
        ],
    )
    .await;
    let base = format!("http://{}", bin.proxy_addr);

    let create = format!(
        r#"{{"username":"carol","email":"carol@example.com","password":"{PASSWORD}","credentials":[{{"type":"password","value":"{PASSWORD}"}}]}}"#
    );
    assert_eq!(
        post(
            format!("{base}/users"),
            "application/json",
            create,
            "req-create-1"
        )
        .await,
        StatusCode::CREATED
    );
    let login = format!(r#"{{"username":"carol","password":"{PASSWORD}"}}"#);
    assert_eq!(
        post(
            format!("{base}/login"),
            "application/json",
            login,
            "req-login-2"
        )
        .await,
        StatusCode::OK
    );
    let failed = format!("username=carol&password=wrong-{PASSWORD}");
    assert_eq!(
        post(
            format!("{base}/login"),
            "application/x-www-form-urlencoded",
            failed,
            "req-fail-3"
        )
        .await,
        StatusCode::UNAUTHORIZED
    );

    // created -> signed, rejected, unreachable; login and login_failed -> signed.
    eventually(WAIT, "every delivery finished", || async {
        let log = bin.log_text();
        (log.matches("webhook delivered").count() == 3
            && log.matches("kept as a dead letter").count() == 2)
            .then_some(())
    })
    .await;
    assert_eq!(ok.received().len(), 3);
    let (status, _, _) = get(&format!("http://{}/config", bin.admin_addr)).await;
    assert_eq!(status, StatusCode::OK);

    let lines: Vec<String> = bin.log.lock().expect("lock").clone();
    for line in &lines {
        for canary in [PASSWORD, SECRET, URL_KEY, HEADER_TOKEN] {
            assert!(!line.contains(canary), "a log line leaks {canary}: {line}");
        }
    }
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for v in &parsed {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(v.get(key).is_some(), "no `{key}` in {v}");
        }
    }
    // Debug level is really on (so the canary check covered debug lines too).
    assert!(parsed.iter().any(|v| v["level"] == "DEBUG"));

    let with_message =
        |m: &str| -> Vec<&Value> { parsed.iter().filter(|v| v["message"] == m).collect() };
    let events = with_message("user event");
    let ids: Vec<(&str, &str)> = events
        .iter()
        .map(|v| {
            (
                v["event"].as_str().unwrap_or(""),
                v["request_id"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("user.created", "req-create-1"),
            ("user.login", "req-login-2"),
            ("user.login_failed", "req-fail-3")
        ]
    );
    let mut delivered: Vec<&str> = with_message("webhook delivered")
        .iter()
        .map(|v| v["request_id"].as_str().unwrap_or(""))
        .collect();
    delivered.sort_unstable();
    assert_eq!(delivered, ["req-create-1", "req-fail-3", "req-login-2"]);
    for v in with_message("webhook delivery failed; kept as a dead letter") {
        assert_eq!(v["request_id"], "req-create-1");
        assert_eq!(v["level"], "WARN");
        let url = v["url"].as_str().unwrap_or("");
        assert!(url.ends_with("/hook"), "{url}");
    }
    // The retry line (debug) carries it too.
    let retries = with_message("webhook attempt failed; will retry");
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0]["request_id"], "req-create-1");
}

#[tokio::test]
async fn text_logs_are_plain_lines() {
    let iam = FakeUpstream::fixed("{}").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    std::fs::write(&path, config_for(&iam.url(), "log: {format: text}\n")).expect("write");
    let bin = Binary::start_with_env(&path, &[("RUST_LOG", "info")]).await;
    let lines: Vec<String> = bin.log.lock().expect("lock").clone();
    let listening = lines
        .iter()
        .find(|l| l.contains("userhook is listening"))
        .expect("listening line");
    assert!(!listening.starts_with('{'), "{listening}");
    assert!(listening.contains(" INFO "), "{listening}");
    // Not a terminal: no colour codes.
    assert!(!listening.contains('\u{1b}'), "{listening}");
}
