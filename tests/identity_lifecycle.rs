//! Issue 14 through the real binary: users identified by an opaque session cookie (a fake
//! better-auth) and by an opaque token in a header (a fake Keystone, `X-Subject-Token`). Every
//! logout and self-service update is attributed (ID, Name, Email) though the call carries only
//! the credential; a SIGKILL restart between login and logout loses nothing the identity file
//! was given; a rule's `details:` stay with their event; a confirmed call nobody can be named
//! for is an `attribution: none` event, counted; and the canary password, cookie and token
//! values appear in no webhook, log line, spool file or identity file.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::iam::*;
use support::receiver::WebhookReceiver;
use support::*;

/// userhook's own debug lines (the unattributed event is logged at debug).
const DEBUG: &[(&str, &str)] = &[("RUST_LOG", "info,userhook=debug")];

/// Canary values of the credentials the fake IAMs hand out: none may leave the exchange.
const COOKIE_CANARY: &str = "CANARYCOOKIE";
const TOKEN_CANARY: &str = "CANARYTOKEN";

const SIGN_UP: &str = "/api/auth/sign-up/email";
const UPDATE_USER: &str = "/api/auth/update-user";
const SIGN_OUT: &str = "/api/auth/sign-out";
const KS_USERS: &str = "/v3/users";
const KS_TOKENS: &str = "/v3/auth/tokens";
const ALICE: &str = "Xq3ZrN0aV6cB2mYk9LdE1sHf";
const BOB: &str = "9fe1d3c0a7b24e5f8d6c4b3a2e1f0d9c";

/// A fake better-auth (cookie sessions) and Keystone v3 (fernet tokens in X-Subject-Token).
async fn iam() -> FakeUpstream {
    let sessions = Arc::new(AtomicUsize::new(0));
    fake_iam(move |r| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        match (r.method.as_str(), path_of(r)) {
            ("POST", SIGN_UP) => {
                let n = sessions.fetch_add(1, Ordering::SeqCst);
                let token = format!("{COOKIE_CANARY}{n}x7Qb2L");
                Canned::status(200)
                    .header(
                        "set-cookie",
                        &format!(
                            "better-auth.session_token={token}.c2lnbmF0dXJl; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax"
                        ),
                    )
                    .json(
                        "application/json",
                        &json!({"token": token, "user": {
                            "id": ALICE, "email": body["email"], "name": body["name"],
                            "emailVerified": false, "image": null,
                            "createdAt": "2026-12-01T10:00:00.000Z",
                            "updatedAt": "2026-12-01T10:00:00.000Z"}}),
                    )
            }
            ("POST", UPDATE_USER) => {
                Canned::status(200).json("application/json", &json!({"status": true}))
            }
            ("POST", SIGN_OUT) => Canned::status(200)
                .header(
                    "set-cookie",
                    "better-auth.session_token=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
                )
                .json("application/json", &json!({"success": true})),
            ("POST", KS_USERS) => Canned::status(201).json(
                "application/json",
                &json!({"user": {"id": BOB, "name": body["user"]["name"],
                    "email": body["user"]["email"], "domain_id": "default", "enabled": true,
                    "password_expires_at": null, "options": {},
                    "links": {"self": format!("http://ks:5000/v3/users/{BOB}")}}}),
            ),
            ("DELETE", p) if p == format!("{KS_USERS}/{BOB}") => Canned::status(204),
            ("POST", KS_TOKENS) => {
                let pw = &body["auth"]["identity"]["password"]["user"]["password"];
                if pw != CANARY {
                    return Canned::status(401).json(
                        "application/json",
                        &json!({"error": {"code": 401, "title": "Unauthorized",
                            "message": "The request you have made requires authentication."}}),
                    );
                }
                let n = sessions.fetch_add(1, Ordering::SeqCst);
                Canned::status(201)
                    .header("x-subject-token", &format!("gAAAAAB{TOKEN_CANARY}{n}kX9"))
                    .json(
                        "application/json",
                        &json!({"token": {"methods": ["password"],
                            "user": {"domain": {"id": "default", "name": "Default"},
                                     "id": BOB, "name": "bob", "password_expires_at": null},
                            "audit_ids": ["3T2dc1CGQxyJsHdDu1xkcw"],
                            "expires_at": "2999-01-01T00:00:00.000000Z",
                            "issued_at": "2026-12-01T10:00:00.000000Z"}}),
                    )
            }
            ("DELETE", KS_TOKENS) => Canned::status(204),
            _ => Canned::status(404),
        }
    })
    .await
}

const ROUTES: &str = r#"
routes:
  - action: created
    method: POST
    path: /api/auth/sign-up/email
    status: [200]
    fields:
      ID: response.body.user.id
      Email: response.body.user.email
      Name: response.body.user.name
    session:
      issues: [response.cookie.better-auth.session_token]
  - action: updated
    method: POST
    path: /api/auth/update-user
    when:
      response.body.status: "true"
    fields:
      Name: request.body.name
    session:
      presents: [request.cookie.better-auth.session_token]
  - action: logout
    method: POST
    path: /api/auth/sign-out
    session:
      presents: [request.cookie.better-auth.session_token]
      ends: true
  - action: created
    method: POST
    path: /v3/users
    status: [201]
    fields:
      ID: response.body.user.id
      Name: response.body.user.name
      Email: response.body.user.email
  - action: deleted
    method: DELETE
    path: /v3/users/{id}
    status: [204]
    fields:
      ID: path.id
  - action: login
    method: POST
    path: /v3/auth/tokens
    status: [201]
    fields:
      ID: response.body.token.user.id
      Name: response.body.token.user.name
    details:
      Method: response.body.token.methods.0
    session:
      issues: [response.header.x-subject-token]
      expires: response.body.token.expires_at
  - action: login_failed
    method: POST
    path: /v3/auth/tokens
    status: [401]
    fields:
      Name: request.body.auth.identity.password.user.name
  - action: logout
    method: DELETE
    path: /v3/auth/tokens
    status: [204]
    session:
      presents: [request.header.x-subject-token]
      ends: true
"#;

fn config(upstream: &str, hook: &str) -> String {
    format!(
        r#"listen: 127.0.0.1:0
upstream: {upstream}
admin:
  listen: 127.0.0.1:0
delivery:
  spool_dir: ./spool
webhooks:
  - name: audit
    actions: ["*"]
    url: {hook}
    body: '{{"event":"{{{{$$.Event$$}}}}","id":"{{{{$$.ID$$}}}}","name":"{{{{$$.Name$$}}}}","email":"{{{{$$.Email$$}}}}","by":"{{{{$$.Attribution$$}}}}","method":"{{{{$$.Method$$}}}}"}}'
{ROUTES}"#
    )
}

/// Waits for the `n`th webhook and returns it as JSON.
async fn webhook(rx: &WebhookReceiver, n: usize) -> Value {
    let got = eventually(
        Duration::from_secs(15),
        &format!("webhook #{n}"),
        || async {
            let got = rx.received();
            (got.len() >= n).then_some(got)
        },
    )
    .await;
    assert_eq!(
        got.len(),
        n,
        "one webhook per event: {:?}",
        got.iter().map(|r| r.text()).collect::<Vec<_>>()
    );
    serde_json::from_slice(&got[n - 1].body).expect("JSON webhook body")
}

fn hook(event: &str, id: &str, name: &str, email: &str, by: &str, method: &str) -> Value {
    json!({"event": event, "id": id, "name": name, "email": email, "by": by, "method": method})
}

/// Every byte of every file under `dir`.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((
                path.display().to_string(),
                std::fs::read(&path).expect("read"),
            ));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn metric(admin: std::net::SocketAddr, line_prefix: &str) -> Option<f64> {
    let (_, _, body) = get(&format!("http://{admin}/metrics")).await;
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn cookie_and_opaque_token_users_are_named_across_a_sigkill_restart() {
    let up = iam().await;
    let rx = WebhookReceiver::fixed(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    std::fs::write(&path, config(&up.url(), &rx.url("/hook"))).expect("write config");
    let mut bin = Binary::start_with_env(&path, DEBUG).await;
    let base = format!("http://{}", bin.proxy_addr);
    let mut logs = String::new();

    // better-auth: sign-up opens a cookie session.
    let sign_up = json!({"email": "alice@example.com", "password": CANARY, "name": "Alice"});
    let reply = call(&base, "POST", SIGN_UP, JSON, sign_up.to_string()).await;
    assert_eq!(reply.status, 200);
    let set_cookie = reply.headers["set-cookie"]
        .to_str()
        .expect("text")
        .to_owned();
    let cookie = set_cookie
        .split(';')
        .next()
        .expect("cookie pair")
        .to_owned();
    assert!(cookie.contains(COOKIE_CANARY));
    assert_eq!(
        webhook(&rx, 1).await,
        hook(
            "user.created",
            ALICE,
            "Alice",
            "alice@example.com",
            "exchange",
            ""
        )
    );

    // Self-service update: only the new name and the cookie; answered `{"status":true}`.
    let with_cookie = [
        ("content-type", "application/json"),
        ("cookie", cookie.as_str()),
    ];
    call(
        &base,
        "POST",
        UPDATE_USER,
        &with_cookie,
        r#"{"name":"Alice Liddell"}"#,
    )
    .await;
    assert_eq!(
        webhook(&rx, 2).await,
        hook(
            "user.updated",
            ALICE,
            "Alice Liddell",
            "alice@example.com",
            "session",
            ""
        )
    );

    // Keystone: create, then a password login whose token is only in X-Subject-Token.
    let create = json!({"user": {"name": "bob", "email": "bob@example.com", "password": CANARY,
                                 "domain_id": "default", "enabled": true}});
    call(&base, "POST", KS_USERS, JSON, create.to_string()).await;
    assert_eq!(
        webhook(&rx, 3).await,
        hook(
            "user.created",
            BOB,
            "bob",
            "bob@example.com",
            "exchange",
            ""
        )
    );
    let login = |password: &str| {
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "bob", "domain": {"name": "Default"}, "password": password}}}}})
        .to_string()
    };
    let reply = call(&base, "POST", KS_TOKENS, JSON, login(CANARY)).await;
    assert_eq!(reply.status, 201);
    let subject = reply.headers["x-subject-token"]
        .to_str()
        .expect("text")
        .to_owned();
    assert_eq!(
        webhook(&rx, 4).await,
        hook(
            "user.login",
            BOB,
            "bob",
            "bob@example.com",
            "exchange",
            "password"
        ),
        "the email known since the create; the login method is a detail of this event"
    );

    // SIGKILL once the identity file holds what was learned (written behind, every 250 ms).
    let identity_file = dir.path().join("spool/identity.redb");
    eventually(
        Duration::from_secs(10),
        "the identity file to hold the update",
        || async {
            let bytes = std::fs::read(&identity_file).ok()?;
            (contains(&bytes, "Alice Liddell") && contains(&bytes, BOB)).then_some(())
        },
    )
    .await;
    bin.child.kill().await.expect("SIGKILL");
    logs.push_str(&bin.log_text());
    let bin = Binary::start_with_env(&path, DEBUG).await;
    let base = format!("http://{}", bin.proxy_addr);
    assert!(bin.logged("identity loaded"), "{}", bin.log_text());

    // After the restart the cookie still names alice, with the name she changed to.
    let with_cookie = [
        ("content-type", "application/json"),
        ("cookie", cookie.as_str()),
    ];
    let reply = call(&base, "POST", SIGN_OUT, &with_cookie, "{}").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        webhook(&rx, 5).await,
        hook(
            "user.logout",
            ALICE,
            "Alice Liddell",
            "alice@example.com",
            "session",
            ""
        )
    );

    // Restored from the file: both users, and bob's token (alice's cookie just ended).
    eventually(Duration::from_secs(5), "the identity gauges", || async {
        let users = metric(bin.admin_addr, "userhook_identity_users ").await;
        let sessions = metric(bin.admin_addr, "userhook_identity_sessions ").await;
        (users == Some(2.0) && sessions == Some(1.0)).then_some(())
    })
    .await;

    // Keystone logout: DELETE with the token to revoke in X-Subject-Token.
    let revoke = [
        ("x-auth-token", subject.as_str()),
        ("x-subject-token", subject.as_str()),
    ];
    let reply = call(&base, "DELETE", KS_TOKENS, &revoke, "").await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        webhook(&rx, 6).await,
        hook("user.logout", BOB, "bob", "bob@example.com", "session", ""),
        "the login's method did not stick to bob"
    );

    // The logout ended the token: a second one is confirmed by the IAM but names nobody.
    call(&base, "DELETE", KS_TOKENS, &revoke, "").await;
    assert_eq!(
        webhook(&rx, 7).await,
        hook("user.logout", "", "", "", "none", "")
    );
    assert_eq!(
        metric(
            bin.admin_addr,
            r#"userhook_events_unattributed_total{action="logout"}"#
        )
        .await,
        Some(1.0)
    );
    eventually(
        Duration::from_secs(5),
        "the unattributed event logged at debug",
        || async { bin.logged("nobody could be named").then_some(()) },
    )
    .await;

    // A failed login by name carries the ID known for the name.
    let reply = call(&base, "POST", KS_TOKENS, JSON, login("wrong-guess")).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        webhook(&rx, 8).await,
        hook(
            "user.login_failed",
            BOB,
            "bob",
            "bob@example.com",
            "exchange",
            ""
        )
    );

    // Deleting bob forgets him: a later failed login by his name names only the name.
    call(&base, "DELETE", &format!("{KS_USERS}/{BOB}"), &[], "").await;
    assert_eq!(
        webhook(&rx, 9).await,
        hook(
            "user.deleted",
            BOB,
            "bob",
            "bob@example.com",
            "exchange",
            ""
        )
    );
    call(&base, "POST", KS_TOKENS, JSON, login("wrong-again")).await;
    assert_eq!(
        webhook(&rx, 10).await,
        hook("user.login_failed", "", "bob", "", "exchange", "")
    );

    // Stop, then look for the canaries everywhere.
    bin.signal("TERM");
    let mut bin = bin;
    tokio::time::timeout(Duration::from_secs(30), bin.child.wait())
        .await
        .expect("exits within the grace")
        .expect("wait");
    logs.push_str(&bin.log_text());
    assert!(logs.contains("user event"), "debug logs were captured");
    let bodies: Vec<String> = rx.received().iter().map(|r| r.text()).collect();
    let stored = files(dir.path());
    assert!(stored.iter().any(|(p, _)| p.ends_with("identity.redb")));
    assert!(stored.iter().any(|(p, _)| p.ends_with("identity.redb.key")));
    assert!(stored.iter().any(|(p, _)| p.ends_with("spool.redb")));
    for canary in [CANARY, COOKIE_CANARY, TOKEN_CANARY, "c2lnbmF0dXJl"] {
        assert!(!logs.contains(canary), "{canary} in the log:\n{logs}");
        for b in &bodies {
            assert!(!b.contains(canary), "{canary} in a webhook: {b}");
        }
        for (p, bytes) in &stored {
            if p.ends_with("userhook.yaml") {
                continue;
            }
            assert!(!contains(bytes, canary), "{canary} in {p}");
        }
    }
}

#[tokio::test]
async fn a_sigterm_right_after_login_keeps_the_session() {
    let up = iam().await;
    let rx = WebhookReceiver::fixed(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    std::fs::write(&path, config(&up.url(), &rx.url("/hook"))).expect("write config");
    let mut bin = Binary::start(&path).await;
    let base = format!("http://{}", bin.proxy_addr);
    let sign_up = json!({"email": "alice@example.com", "password": CANARY, "name": "Alice"});
    let reply = call(&base, "POST", SIGN_UP, JSON, sign_up.to_string()).await;
    let cookie = reply.headers["set-cookie"].to_str().expect("text");
    let cookie = cookie.split(';').next().expect("pair").to_owned();
    webhook(&rx, 1).await;
    // No wait for the periodic flush: SIGTERM writes what was learned before it exits.
    bin.signal("TERM");
    let exit = tokio::time::timeout(Duration::from_secs(30), bin.child.wait())
        .await
        .expect("exits within the grace")
        .expect("wait");
    assert_eq!(exit.code(), Some(0), "{}", bin.log_text());
    let bin = Binary::start(&path).await;
    let base = format!("http://{}", bin.proxy_addr);
    let with_cookie = [
        ("content-type", "application/json"),
        ("cookie", cookie.as_str()),
    ];
    call(&base, "POST", SIGN_OUT, &with_cookie, "{}").await;
    assert_eq!(
        webhook(&rx, 2).await,
        hook(
            "user.logout",
            ALICE,
            "Alice",
            "alice@example.com",
            "session",
            ""
        )
    );
}

#[tokio::test]
async fn a_broken_identity_file_does_not_stop_the_proxy() {
    let up = iam().await;
    let rx = WebhookReceiver::fixed(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("userhook.yaml");
    std::fs::write(&path, config(&up.url(), &rx.url("/hook"))).expect("write config");
    std::fs::create_dir_all(dir.path().join("spool")).expect("mkdir");
    std::fs::write(
        dir.path().join("spool/identity.redb"),
        b"not a redb file at all",
    )
    .expect("w");
    let bin = Binary::start(&path).await;
    assert!(
        bin.logged("identity is kept in memory only"),
        "{}",
        bin.log_text()
    );
    // Serving, and naming users for as long as it runs.
    let base = format!("http://{}", bin.proxy_addr);
    let sign_up = json!({"email": "alice@example.com", "password": CANARY, "name": "Alice"});
    let reply = call(&base, "POST", SIGN_UP, JSON, sign_up.to_string()).await;
    assert_eq!(reply.status, 200);
    let cookie = reply.headers["set-cookie"].to_str().expect("text");
    let cookie = cookie.split(';').next().expect("pair").to_owned();
    webhook(&rx, 1).await;
    let with_cookie = [
        ("content-type", "application/json"),
        ("cookie", cookie.as_str()),
    ];
    call(&base, "POST", SIGN_OUT, &with_cookie, "{}").await;
    assert_eq!(
        webhook(&rx, 2).await,
        hook(
            "user.logout",
            ALICE,
            "Alice",
            "alice@example.com",
            "session",
            ""
        )
    );
    assert_eq!(
        std::fs::read(dir.path().join("spool/identity.redb")).expect("read"),
        b"not a redb file at all",
        "the broken file is left as it was, for inspection"
    );
}
