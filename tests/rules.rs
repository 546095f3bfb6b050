//! The rule language through the real binary, a fake IAM and a real webhook receiver: a
//! custom action (`password_changed`) delivered to the webhook subscribed to it, a sign-up
//! that is both `created` and `login` (one rule, two events, in order), and an update whose
//! template says what changed and what it was. `check` shows the warnings.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::iam::{call, fake_iam, path_of, Canned, CANARY, JSON};
use support::receiver::{Received, WebhookReceiver};
use support::{config_for, eventually, Binary};

const WAIT: Duration = Duration::from_secs(15);

/// Keystone (Identity API v3) as it answers: 201 with the user on create, 204 on a password
/// change, 200 with the user on update.
async fn keystone() -> support::FakeUpstream {
    fake_iam(|r| {
        let user = |name: &str, email: &str| {
            json!({"user": {"id": "8a1b2c", "name": name, "email": email, "domain_id": "default",
                "enabled": true, "password_expires_at": null, "options": {},
                "links": {"self": "http://keystone:5000/v3/users/8a1b2c"}}})
        };
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        match (r.method.as_str(), path_of(r)) {
            ("POST", "/v3/users") => {
                Canned::status(201).json("application/json", &user("bob", "bob@old.example"))
            }
            ("POST", "/v3/users/8a1b2c/password") => Canned::status(204),
            ("PATCH", "/v3/users/8a1b2c") => {
                let email = body["user"]["email"]
                    .as_str()
                    .unwrap_or("bob@old.example")
                    .to_owned();
                Canned::status(200).json("application/json", &user("bob", &email))
            }
            _ => Canned::status(404).json(
                "application/json",
                &json!({"error": {"code": 404, "message": "not found", "title": "Not Found"}}),
            ),
        }
    })
    .await
}

fn write_config(dir: &tempfile::TempDir, upstream: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.path().join("userhook.yaml");
    std::fs::write(&path, config_for(upstream, extra)).expect("write config");
    path
}

async fn bodies(receiver: &WebhookReceiver, path: &str, n: usize) -> Vec<String> {
    eventually(WAIT, &format!("{n} deliveries to {path}"), || async {
        let got: Vec<Received> = receiver
            .received()
            .into_iter()
            .filter(|r| r.uri == path)
            .collect();
        (got.len() >= n).then(|| got.iter().map(Received::text).collect())
    })
    .await
}

#[tokio::test]
async fn a_custom_action_reaches_the_webhook_subscribed_to_it() {
    let iam = keystone().await;
    let receiver = WebhookReceiver::fixed(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        &iam.url(),
        &format!(
            r#"routes:
  - {{action: created, method: POST, path: /v3/users, status: [201], fields: {{ID: response.body.user.id, Name: response.body.user.name, Email: response.body.user.email}}}}
  - {{action: password_changed, method: POST, path: "/v3/users/{{user_id}}/password", status: [204], fields: {{ID: path.user_id}}}}
webhooks:
  - {{name: security, actions: [password_changed], url: '{url}', body: '{{"text":"{{{{$$.Event$$}}}} {{{{$$.Action$$}}}} {{{{$$.Name$$}}}} <{{{{$$.Email$$}}}}> id={{{{$$.ID$$}}}} status={{{{$$.Status$$}}}}"}}'}}
  - {{name: onboarding, actions: [created], url: '{url2}'}}
"#,
            url = receiver.url("/security"),
            url2 = receiver.url("/onboarding"),
        ),
    );
    let bin = Binary::start(&config).await;
    let base = format!("http://{}", bin.proxy_addr);
    let created = call(
        &base,
        "POST",
        "/v3/users",
        JSON,
        json!({"user": {"name": "bob", "password": CANARY}}).to_string(),
    )
    .await;
    assert_eq!(created.status, 201);
    let changed = call(
        &base,
        "POST",
        "/v3/users/8a1b2c/password",
        JSON,
        json!({"user": {"password": format!("{CANARY}-new"), "original_password": CANARY}})
            .to_string(),
    )
    .await;
    assert_eq!(changed.status, 204);
    assert!(changed.body.is_empty());

    let security = bodies(&receiver, "/security", 1).await;
    assert_eq!(
        security,
        [
            r#"{"text":"user.password_changed password_changed bob <bob@old.example> id=8a1b2c status=204"}"#
        ]
    );
    let onboarding = bodies(&receiver, "/onboarding", 1).await;
    assert_eq!(onboarding.len(), 1);
    assert!(onboarding[0].contains(r#""id":"8a1b2c""#), "{onboarding:?}");
    // Nothing else arrives: each webhook got only the action it subscribed to.
    let all = receiver.received();
    assert_eq!(all.len(), 2, "{all:?}");
    for r in &all {
        assert!(!r.text().contains(CANARY), "canary leaked: {}", r.text());
    }
    assert!(bin.logged("user.password_changed"), "{}", bin.log_text());
    assert!(!bin.log_text().contains(CANARY));
}

/// better-auth's email sign-up: 200 with the session token and the user, and the session cookie.
async fn better_auth() -> support::FakeUpstream {
    fake_iam(|r| match (r.method.as_str(), path_of(r)) {
        ("POST", "/api/auth/sign-up/email") => {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            Canned::status(200)
                .header("set-cookie", "better-auth.session_token=ses_0123.sig; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax")
                .json(
                    "application/json",
                    &json!({"token": "ses_0123", "user": {"id": "usr_5f2", "email": body["email"], "name": body["name"],
                        "image": null, "emailVerified": false, "createdAt": "2026-12-02T09:00:00.000Z", "updatedAt": "2026-12-02T09:00:00.000Z"}}),
                )
        }
        _ => Canned::status(404).json("application/json", &json!({"message": "Not Found"})),
    })
    .await
}

#[tokio::test]
async fn one_sign_up_is_a_created_then_a_login() {
    let iam = better_auth().await;
    let receiver = WebhookReceiver::fixed(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        &iam.url(),
        &format!(
            r#"routes:
  - action: [created, login]
    method: POST
    path: /api/auth/sign-up/email
    status: [200]
    when: {{response.body.token: {{exists: true}}}}
    fields:
      ID: response.body.user.id
      Email: response.body.user.email
      Name: response.body.user.name
      CreatedAt: response.body.user.createdAt
      Enabled: [response.body.user.banned | not, const.true]
      Source: const.better-auth
webhooks:
  - {{name: all, actions: ["*"], url: '{url}', body: '{{"e":"{{{{$$.Event$$}}}}","id":"{{{{$$.ID$$}}}}","email":"{{{{$$.Email$$}}}}","enabled":"{{{{$$.Enabled$$}}}}","src":"{{{{$$.Source$$}}}}"}}'}}
"#,
            url = receiver.url("/all"),
        ),
    );
    let bin = Binary::start(&config).await;
    let base = format!("http://{}", bin.proxy_addr);
    let reply = call(
        &base,
        "POST",
        "/api/auth/sign-up/email",
        JSON,
        json!({"email": "ann@example.com", "password": CANARY, "name": "Ann"}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(reply.headers.get("set-cookie").is_some());
    let got = bodies(&receiver, "/all", 2).await;
    assert_eq!(
        got,
        [
            r#"{"e":"user.created","id":"usr_5f2","email":"ann@example.com","enabled":"true","src":"better-auth"}"#,
            r#"{"e":"user.login","id":"usr_5f2","email":"ann@example.com","enabled":"true","src":"better-auth"}"#,
        ]
    );
    // The two deliveries are two events: distinct webhook ids.
    let ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert!(!bin.log_text().contains(CANARY));
    assert!(!bin.log_text().contains("ses_0123"));
}

#[tokio::test]
async fn an_update_says_what_changed_and_what_it_was() {
    let iam = keystone().await;
    let receiver = WebhookReceiver::fixed(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        &iam.url(),
        &format!(
            r#"routes:
  - {{action: created, method: POST, path: /v3/users, status: [201], fields: {{ID: response.body.user.id, Name: response.body.user.name, Email: response.body.user.email}}}}
  - {{action: updated, method: PATCH, path: "/v3/users/{{user_id}}", status: [200], fields: {{ID: path.user_id, Name: response.body.user.name, Email: response.body.user.email}}}}
webhooks:
  - name: changes
    actions: [updated]
    url: '{url}'
    content_type: text/plain
    body: '{{{{$$.Name$$}}}} changed [{{{{$$.Changed$$}}}}]: email from {{{{$$.Previous.Email$$}}}} to {{{{$$.Email$$}}}}, name was "{{{{$$.Previous.Name$$}}}}"'
"#,
            url = receiver.url("/changes"),
        ),
    );
    let bin = Binary::start(&config).await;
    let base = format!("http://{}", bin.proxy_addr);
    assert_eq!(
        call(
            &base,
            "POST",
            "/v3/users",
            JSON,
            json!({"user": {"name": "bob", "password": CANARY}}).to_string()
        )
        .await
        .status,
        201
    );
    let patch = |email: &str| json!({"user": {"email": email}}).to_string();
    assert_eq!(
        call(
            &base,
            "PATCH",
            "/v3/users/8a1b2c",
            JSON,
            patch("bob@new.example")
        )
        .await
        .status,
        200
    );
    assert_eq!(
        call(
            &base,
            "PATCH",
            "/v3/users/8a1b2c",
            JSON,
            patch("bob@new.example")
        )
        .await
        .status,
        200
    );
    let got = bodies(&receiver, "/changes", 2).await;
    assert_eq!(
        got,
        [
            r#"bob changed [Email]: email from bob@old.example to bob@new.example, name was """#,
            r#"bob changed []: email from  to bob@new.example, name was """#,
        ]
    );
}

#[tokio::test]
async fn check_prints_warnings_and_still_accepts_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        "http://127.0.0.1:8081",
        r#"routes:
  - {action: created, method: POST, path: /api/auth/sign-up/email}
  - {action: login, method: POST, path: /api/auth/sign-up/email}
webhooks:
  - {name: sec, actions: [created, password_changed], url: 'http://127.0.0.1:1/h'}
"#,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .arg("check")
        .arg(&config)
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warnings = stdout
        .split_once("2 warnings:\n")
        .map(|(_, w)| w)
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(
        warnings,
        "  - routes[1]: never fires: routes[0] (POST /api/auth/sign-up/email -> created) comes first and matches every call this rule matches (the first matching rule wins); to emit several events for one call list the actions in one rule (`action: [created, login]`), or add a `when:` that tells the calls apart\n  \
         - webhooks[0].actions[1]: no route or profile emits `password_changed`, so this never receives one; add a rule with `action: password_changed` or a profile that detects it\n"
    );
}
