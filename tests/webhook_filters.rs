//! Webhook `when:` filters through the real binary: a fake Keycloak admin API, one receiver,
//! three filtered webhooks. A filter on the caller drops the sync client's own writes, one on
//! the email domain keeps other domains out, one on `Changed` passes only what changed the
//! field it names; every turned-away event is counted per webhook and never spooled, and the
//! caller's basic password reaches no delivery, log line or file.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::{json, Value};
use support::receiver::WebhookReceiver;
use support::{config_for, eventually, full, get, respond, send, Binary, FakeUpstream};

const WAIT: Duration = Duration::from_secs(20);
const CANARY: &str = "CANARY-PW-123";

/// A JWS with `claims` and a signature nobody can verify (the fake IAM publishes no keys).
fn token(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

/// Keycloak's admin API as far as the test needs it: create answers 201 with the id only in
/// `Location`, update 204; the realm's key set is not published (404).
async fn keycloak() -> FakeUpstream {
    FakeUpstream::start(|r| async move {
        let path = r.uri.split('?').next().unwrap_or("").to_owned();
        match (r.method.as_str(), path.as_str()) {
            ("POST", "/admin/realms/acme/users") => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                let name = body["username"].as_str().unwrap_or("nobody");
                let mut resp = respond(201, "");
                resp.headers_mut().insert(
                    "location",
                    format!("http://kc/admin/realms/acme/users/id-{name}")
                        .parse()
                        .expect("location"),
                );
                resp
            }
            ("PUT" | "DELETE", p) if p.starts_with("/admin/realms/acme/users/") => respond(204, ""),
            _ => respond(404, r#"{"error":"not found"}"#),
        }
    })
    .await
}

/// Who calls: a bearer token or a basic credential, and a user agent.
enum Caller {
    Sync,
    Admin,
    Basic,
}

async fn call(proxy: &str, caller: &Caller, method: &str, path: &str, body: Value) -> StatusCode {
    let (authorization, agent) = match caller {
        Caller::Sync => (
            format!(
                "Bearer {}",
                token(
                    &json!({"sub": "svc-sync", "azp": "sync-service", "client_id": "sync-service"})
                )
            ),
            "sync/2.1",
        ),
        Caller::Admin => (
            format!(
                "Bearer {}",
                token(&json!({"sub": "alice-admin", "azp": "admin-cli"}))
            ),
            "admin-console/1",
        ),
        Caller::Basic => (
            format!("Basic {}", STANDARD.encode(format!("ops:{CANARY}"))),
            "curl/8",
        ),
    };
    let req = Request::builder()
        .method(method)
        .uri(format!("{proxy}{path}"))
        .header("authorization", authorization)
        .header("user-agent", agent)
        .header("content-type", "application/json")
        .body(full(Bytes::from(body.to_string())))
        .expect("request");
    send(req).await.0
}

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

const BODY: &str = r#"{"event":"{{$$.Event$$}}","email":"{{$$.Email$$}}","changed":"{{$$.Changed$$}}","sub":"{{$$.ActorSub$$}}","client":"{{$$.ActorClientId$$}}","basic":"{{$$.ActorBasicUser$$}}","verified":"{{$$.ActorVerified$$}}","ip":"{{$$.ActorIp$$}}","agent":"{{$$.ActorUserAgent$$}}"}"#;

#[tokio::test]
async fn filters_on_the_caller_the_email_domain_and_what_changed() {
    let iam = keycloak().await;
    let recv = WebhookReceiver::fixed(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = |name: &str, actions: &str, when: &str| {
        format!(
            "  - name: {name}\n    actions: {actions}\n    url: '{}'\n    body: '{BODY}'\n    when: {when}\n",
            recv.url(&format!("/{name}"))
        )
    };
    let yaml = config_for(
        &iam.url(),
        &format!(
            "profiles: [keycloak]\nidentity: {{client_tokens: unverified}}\n\
             delivery: {{spool_dir: '{}'}}\nwebhooks:\n{}{}{}",
            dir.path().join("spool").display(),
            hook("humans", "['*']", "{Actor.ClientId: {not: sync-service}}"),
            hook("corp", "[created]", "{Email: {suffix: '@corp.example'}}"),
            hook("disabled", "[updated]", "{Changed: {contains: Enabled}}"),
        ),
    );
    let config = dir.path().join("userhook.yaml");
    std::fs::write(&config, yaml).expect("write config");
    let bin = Binary::start(&config).await;
    let proxy = format!("http://{}", bin.proxy_addr);

    let users = "/admin/realms/acme/users";
    let calls = [
        (
            Caller::Sync,
            "POST",
            users.to_owned(),
            json!({"username": "ann", "email": "ann@corp.example", "enabled": true}),
        ),
        (
            Caller::Admin,
            "POST",
            users.to_owned(),
            json!({"username": "bob", "email": "bob@corp.example", "enabled": true}),
        ),
        (
            Caller::Admin,
            "POST",
            users.to_owned(),
            json!({"username": "carol", "email": "carol@other.example", "enabled": true}),
        ),
        (
            Caller::Admin,
            "PUT",
            format!("{users}/id-bob"),
            json!({"firstName": "Bobby"}),
        ),
        (
            Caller::Sync,
            "PUT",
            format!("{users}/id-bob"),
            json!({"enabled": false}),
        ),
        (
            Caller::Admin,
            "PUT",
            format!("{users}/id-carol"),
            json!({"enabled": false}),
        ),
        (
            Caller::Basic,
            "DELETE",
            format!("{users}/id-carol"),
            json!({}),
        ),
    ];
    for (caller, method, path, body) in &calls {
        let status = call(&proxy, caller, method, path, body.clone()).await;
        assert!(status.is_success(), "{method} {path}: {status}");
    }

    // Seven events; nine deliveries; four turned away. Once the counters say so, nothing
    // else can arrive.
    let admin = format!("http://{}/metrics", bin.admin_addr);
    let text = eventually(WAIT, "7 events, 9 deliveries, 4 filtered", || {
        let admin = admin.clone();
        let recv = &recv;
        async move {
            let (_, _, body) = get(&admin).await;
            let text = String::from_utf8_lossy(&body).into_owned();
            let events: f64 = ["created", "updated", "deleted"]
                .iter()
                .map(|a| sample(&text, "userhook_events_total", &[("action", a)]))
                .sum();
            let delivered: f64 = ["humans", "corp", "disabled"]
                .iter()
                .map(|w| {
                    sample(
                        &text,
                        "userhook_deliveries_total",
                        &[("webhook", w), ("result", "success")],
                    )
                })
                .sum();
            // Nothing left in the spool either: the turned-away events were never in it.
            let depth = sample(&text, "userhook_spool_depth", &[]);
            (events == 7.0 && delivered == 9.0 && recv.received().len() == 9 && depth == 0.0)
                .then_some(text)
        }
    })
    .await;
    let filtered = |w: &str| sample(&text, "userhook_webhook_filtered_total", &[("webhook", w)]);
    assert_eq!(
        filtered("humans"),
        2.0,
        "the sync client's create and update"
    );
    assert_eq!(filtered("corp"), 1.0, "carol@other.example");
    assert_eq!(filtered("disabled"), 1.0, "bob's first-name change");

    let mut by_hook: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in recv.received() {
        let body: Value = serde_json::from_slice(&r.body).expect("json body");
        by_hook
            .entry(r.uri.trim_start_matches('/').to_owned())
            .or_default()
            .push(body);
    }
    for list in by_hook.values_mut() {
        list.sort_by_key(|v| {
            (
                v["event"].to_string(),
                v["email"].to_string(),
                v["changed"].to_string(),
            )
        });
    }
    let admin_actor = |event: &str, email: &str, changed: &str| {
        json!({"event": event, "email": email, "changed": changed, "sub": "alice-admin",
               "client": "admin-cli", "basic": "", "verified": "false", "ip": "127.0.0.1",
               "agent": "admin-console/1"})
    };
    let sync_actor = |event: &str, email: &str, changed: &str| {
        json!({"event": event, "email": email, "changed": changed, "sub": "svc-sync",
               "client": "sync-service", "basic": "", "verified": "false", "ip": "127.0.0.1",
               "agent": "sync/2.1"})
    };
    assert_eq!(
        by_hook["humans"],
        vec![
            admin_actor("user.created", "bob@corp.example", ""),
            admin_actor("user.created", "carol@other.example", ""),
            json!({"event": "user.deleted", "email": "carol@other.example", "changed": "",
                   "sub": "", "client": "", "basic": "ops", "verified": "", "ip": "127.0.0.1",
                   "agent": "curl/8"}),
            admin_actor("user.updated", "bob@corp.example", "FirstName"),
            admin_actor("user.updated", "carol@other.example", "Enabled"),
        ]
    );
    assert_eq!(
        by_hook["corp"],
        vec![
            sync_actor("user.created", "ann@corp.example", ""),
            admin_actor("user.created", "bob@corp.example", ""),
        ]
    );
    assert_eq!(
        by_hook["disabled"],
        vec![
            sync_actor("user.updated", "bob@corp.example", "Enabled"),
            admin_actor("user.updated", "carol@other.example", "Enabled"),
        ]
    );

    // The basic password is nowhere: not in a delivery, a log line or a file userhook wrote.
    for r in recv.received() {
        assert!(!r.text().contains(CANARY), "{}", r.text());
    }
    assert!(!bin.log_text().contains(CANARY));
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).expect("read");
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "{} holds the password",
            entry.display()
        );
    }
}

#[tokio::test]
async fn check_names_a_filter_that_can_never_hold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("userhook.yaml");
    std::fs::write(
        &config,
        "upstream: http://127.0.0.1:1\nprofiles: [keycloak]\nwebhooks:\n  - name: w\n    actions: [created]\n    url: http://127.0.0.1:1/\n    when:\n      Email: {contains: x}\n      Actor.Password: secret\n      Action: deleted\n      Attribution: {not: bogus}\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("run check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    for want in [
        "webhooks[0].when.Email: can never hold as meant: `contains` looks into a list",
        "webhooks[0].when.Actor.Password: unknown path `Actor.Password`",
        "webhooks[0].when.Action: can never hold: `Action` is one of created for this webhook",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
