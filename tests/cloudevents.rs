//! The CloudEvents preset through the real binary, checked against the schemas `userhook
//! schema` prints: a created user reaches a receiver as one structured-mode CloudEvent
//! (`application/cloudevents+json`), whose envelope validates against `schema cloudevent`
//! and whose `data` validates against `schema event` (with the `jsonschema` crate), and
//! whose attributes agree with the event they carry.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::{json, Value};
use support::receiver::WebhookReceiver;
use support::{eventually, full, respond, send, Binary, FakeUpstream};

const WAIT: Duration = Duration::from_secs(20);

fn userhook(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
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

fn schema(name: &str) -> Value {
    let (code, out) = userhook(&["schema", name]);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("schema {name} is not JSON: {e}\n{out}"))
}

fn assert_valid(schema: &Value, instance: &Value, what: &str) {
    let validator = jsonschema::validator_for(schema).expect("a valid JSON Schema");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} fails its schema: {errors:?}\n{instance}"
    );
}

#[tokio::test]
async fn a_created_user_is_one_cloudevent_that_validates_against_the_printed_schemas() {
    let iam = FakeUpstream::start(|_| async move {
        respond(
            201,
            r#"{"id":"u-7","username":"gina","email":"gina@corp.example"}"#,
        )
    })
    .await;
    let recv = WebhookReceiver::fixed(202, "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "listen: 127.0.0.1:0\nupstream: {}\nadmin:\n  listen: 127.0.0.1:0\n\
         delivery: {{spool_dir: '{}'}}\n\
         routes:\n  - action: created\n    method: POST\n    path: /users\n    status: [201]\n\
         \x20   fields: {{ID: response.body.id, Name: response.body.username, Email: response.body.email}}\n\
         webhooks:\n\
         \x20 - {{name: ce, actions: ['*'], url: '{}', preset: cloudevents, source: 'urn:acme:iam'}}\n\
         \x20 - {{name: ce-default, actions: ['*'], url: '{}', preset: cloudevents}}\n",
        iam.url(),
        dir.path().join("spool").display(),
        recv.url("/ce"),
        recv.url("/default"),
    );
    let config = dir.path().join("userhook.yaml");
    std::fs::write(&config, &yaml).expect("write config");
    let bin = Binary::start(&config).await;
    let req = Request::post(format!("http://{}/users", bin.proxy_addr))
        .header("content-type", "application/json")
        .header("user-agent", "admin-console/1")
        .body(full(Bytes::from_static(br#"{"username":"gina"}"#)))
        .expect("request");
    assert_eq!(send(req).await.0, StatusCode::CREATED);
    let got = eventually(WAIT, "two CloudEvents", || async {
        let all = recv.received();
        (all.len() == 2).then_some(all)
    })
    .await;
    let ce = got.iter().find(|r| r.uri == "/ce").expect("/ce");
    let by_default = got.iter().find(|r| r.uri == "/default").expect("/default");

    assert_eq!(
        ce.header("content-type"),
        "application/cloudevents+json; charset=utf-8"
    );
    let body: Value = serde_json::from_slice(&ce.body).expect("JSON body");
    let data = &body["data"];
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(body["type"], "io.userhook.user.created");
    assert_eq!(body["source"], "urn:acme:iam");
    assert_eq!(body["id"], data["id"]);
    assert_eq!(body["time"], data["occurred_at"]);
    assert_eq!(body["datacontenttype"], "application/json");
    assert_eq!(body["subject"], "u-7");
    assert_eq!(data["type"], "user.created");
    assert_eq!(
        data["user"],
        json!({"ID": "u-7", "Name": "gina", "Email": "gina@corp.example"})
    );
    assert_eq!(data["request"]["user_agent"], "admin-console/1");
    // The event id is the event's, not the delivery's: both webhooks carry the same one.
    let other: Value = serde_json::from_slice(&by_default.body).expect("JSON body");
    assert_eq!(other["id"], body["id"]);
    assert_ne!(ce.header("webhook-id"), by_default.header("webhook-id"));
    // No `source:`: the IAM's URL.
    assert_eq!(other["source"], iam.url());

    assert_valid(&schema("event"), data, "data");
    assert_valid(&schema("cloudevent"), &body, "the CloudEvent");
    // The schemas are not vacuous: a wrong type or a missing field fails them.
    let mut broken = data.clone();
    broken["seq"] = json!("seven");
    assert!(!jsonschema::is_valid(&schema("event"), &broken));
    let mut broken = body.clone();
    broken["type"] = json!("user.created");
    assert!(!jsonschema::is_valid(&schema("cloudevent"), &broken));
    let mut broken = data.clone();
    broken.as_object_mut().expect("object").remove("request");
    assert!(!jsonschema::is_valid(&schema("event"), &broken));

    // The variables schema names the actor variables, and an unknown schema is refused.
    let vars = schema("variables");
    assert!(vars["properties"]["ActorClientId"]["description"].is_string());
    let (code, out) = userhook(&["schema", "nope"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("expected one of event, cloudevent, variables"),
        "{out}"
    );
}

#[tokio::test]
async fn check_refuses_cloudevents_misuse_by_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("userhook.yaml");
    std::fs::write(
        &config,
        "upstream: http://127.0.0.1:1\nprofiles: [keycloak]\nwebhooks:\n\
         \x20 - {name: a, actions: ['*'], url: 'http://127.0.0.1:1/', preset: cloudevents, body: '{}'}\n\
         \x20 - {name: b, actions: ['*'], url: 'http://127.0.0.1:1/', source: 'urn:x'}\n\
         \x20 - {name: c, actions: ['*'], url: 'http://127.0.0.1:1/', preset: cloudevents, source: 'has space'}\n",
    )
    .expect("write");
    let (code, out) = userhook(&["check", "--config", &config.display().to_string()]);
    assert_eq!(code, 2, "{out}");
    for want in [
        "webhooks[0].body: is not used by `preset: cloudevents`",
        "webhooks[1].source: is only used by `preset: cloudevents`",
        "webhooks[2].source: `has space` holds whitespace",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
}
