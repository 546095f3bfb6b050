//! The `keystone` profile through the real binary, in front of a fake Keystone (Identity API
//! v3) that answers like the real one (tests/support/keystone.rs): a whole user lifecycle,
//! every event asserted exactly at a webhook receiver.
//!
//! Keystone tokens are opaque: the logout (`DELETE /v3/auth/tokens` with only
//! `X-Subject-Token`) is attributed through the session index, across a restart of userhook,
//! and a token userhook only saw validated is attributed too. Re-scoping and validation are
//! no logins. No password or token reaches an event, a log line or a file.

mod support;

use serde_json::{json, Value};
use support::iam::{call, CANARY};
use support::keystone::{keystone, token, user_id, ADMIN_TOKEN};
use support::lifecycle::Lifecycle;

const NEW_PASSWORD: &str = "CANARY-NEW-PW-456";

fn admin() -> Vec<(&'static str, &'static str)> {
    vec![
        ("content-type", "application/json"),
        ("x-auth-token", ADMIN_TOKEN),
    ]
}

fn password_auth(user: Value, password: &str) -> String {
    let mut user = user;
    user["password"] = json!(password);
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}).to_string()
}

fn subject(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-auth-token", ADMIN_TOKEN.to_owned()),
        ("x-subject-token", token.to_owned()),
    ]
}

async fn call_with(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&'static str, String)],
    body: &str,
) -> support::iam::Reply {
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    call(base, method, path, &h, body.to_owned()).await
}

#[tokio::test]
async fn keystone_lifecycle_through_the_binary() {
    let iam = keystone().await;
    let mut uh = Lifecycle::start(&iam.url(), "keystone", "").await;
    let base = uh.url();
    let alice = user_id(1);
    let alice_path = format!("/v3/users/{alice}");

    // Create: 201 with the user ref.
    let create = json!({"user": {"name": "alice", "domain_id": "default", "enabled": true,
        "email": "alice@example.com", "description": "Alice", "password": CANARY}})
    .to_string();
    let reply = call(&base, "POST", "/v3/users", &admin(), create.clone()).await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.headers["vary"], "X-Auth-Token");
    let created: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(created["user"]["id"], alice.as_str());
    uh.expect(
        json!({"event": "user.created", "action": "created", "status": "201",
        "id": alice, "name": "alice", "email": "alice@example.com", "enabled": "true",
        "attribution": "exchange"}),
    )
    .await;

    // A duplicate is 409 Conflict: no event (the next one seen is the update).
    let reply = call(&base, "POST", "/v3/users", &admin(), create).await;
    assert_eq!(reply.status, 409);

    // Admin update: 200 with the whole ref; only the email changed.
    let patch = r#"{"user":{"email":"alice@example.org","description":"Alice L."}}"#;
    let reply = call(&base, "PATCH", &alice_path, &admin(), patch).await;
    assert_eq!(reply.status, 200);
    uh.expect(
        json!({"event": "user.updated", "action": "updated", "status": "200",
        "id": alice, "name": "alice", "email": "alice@example.org", "enabled": "true",
        "attribution": "exchange", "changed": "Email"}),
    )
    .await;

    // Password login by name and domain: 201, the token only in X-Subject-Token.
    let login = password_auth(
        json!({"name": "alice", "domain": {"name": "Default"}}),
        CANARY,
    );
    let reply = call(
        &base,
        "POST",
        "/v3/auth/tokens",
        &[("content-type", "application/json")],
        login,
    )
    .await;
    assert_eq!(reply.status, 201);
    let alice_token = token(1);
    assert_eq!(reply.headers["x-subject-token"], alice_token.as_str());
    let body: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(body["token"]["user"]["id"], alice.as_str());
    assert_eq!(body["token"]["expires_at"], "2026-12-02T21:01:00.000000Z");
    uh.expect(
        json!({"event": "user.login", "action": "login", "status": "201",
        "id": alice, "name": "alice", "email": "alice@example.org", "enabled": "true",
        "attribution": "exchange"}),
    )
    .await;

    // Re-scoping (method `token`), validation (GET, HEAD): no logins.
    let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": alice_token}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}})
    .to_string();
    let reply = call(
        &base,
        "POST",
        "/v3/auth/tokens",
        &[("content-type", "application/json")],
        rescope,
    )
    .await;
    assert_eq!(reply.status, 201);
    let rescoped = token(2);
    assert_eq!(reply.headers["x-subject-token"], rescoped.as_str());
    let reply = call_with(&base, "GET", "/v3/auth/tokens", &subject(&alice_token), "").await;
    assert_eq!(reply.status, 200);
    let reply = call_with(&base, "HEAD", "/v3/auth/tokens", &subject(&alice_token), "").await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());

    // A failed login by name: 401; the cache knows the id and email of `alice`.
    let bad = password_auth(
        json!({"name": "alice", "domain": {"id": "default"}}),
        "CANARY-WRONG-PW-789",
    );
    let reply = call(
        &base,
        "POST",
        "/v3/auth/tokens",
        &[("content-type", "application/json")],
        bad,
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.headers["www-authenticate"],
        "Keystone uri=\"http://keystone.test:5000\""
    );
    uh.expect(
        json!({"event": "user.login_failed", "action": "login_failed", "status": "401",
        "id": alice, "name": "alice", "email": "alice@example.org", "enabled": "true",
        "attribution": "exchange"}),
    )
    .await;

    // The self-service password change: a wrong original password is 401 and no event; the
    // right one is 204, reported as `password_changed`.
    let change = |original: &str| {
        json!({"user": {"password": NEW_PASSWORD, "original_password": original}}).to_string()
    };
    let own: Vec<(&str, &str)> = vec![
        ("content-type", "application/json"),
        ("x-auth-token", alice_token.as_str()),
    ];
    let pw_path = format!("{alice_path}/password");
    let reply = call(&base, "POST", &pw_path, &own, change("not-it")).await;
    assert_eq!(reply.status, 401);
    let reply = call(&base, "POST", &pw_path, &own, change(CANARY)).await;
    assert_eq!(reply.status, 204);
    uh.expect(
        json!({"event": "user.password_changed", "action": "password_changed",
        "status": "204", "id": alice, "name": "alice", "email": "alice@example.org",
        "enabled": "true", "attribution": "exchange"}),
    )
    .await;

    // A restart between login and logout: the session index was persisted.
    uh.restart().await;
    let base = uh.url();

    // Logout: only the opaque X-Subject-Token; its owner from the session index.
    let reply = call_with(
        &base,
        "DELETE",
        "/v3/auth/tokens",
        &subject(&alice_token),
        "",
    )
    .await;
    assert_eq!(reply.status, 204);
    uh.expect(
        json!({"event": "user.logout", "action": "logout", "status": "204",
        "id": alice, "name": "alice", "email": "alice@example.org", "enabled": "true",
        "attribution": "session"}),
    )
    .await;
    // The re-scoped token was learned too: revoking it is her logout as well.
    let reply = call_with(&base, "DELETE", "/v3/auth/tokens", &subject(&rescoped), "").await;
    assert_eq!(reply.status, 204);
    uh.expect(
        json!({"event": "user.logout", "action": "logout", "status": "204",
        "id": alice, "name": "alice", "email": "alice@example.org", "enabled": "true",
        "attribution": "session"}),
    )
    .await;
    // Revoking it again: 404, no event.
    let reply = call_with(
        &base,
        "DELETE",
        "/v3/auth/tokens",
        &subject(&alice_token),
        "",
    )
    .await;
    assert_eq!(reply.status, 404);

    // Bob logs in behind userhook's back (straight to Keystone); a service validates his
    // token through userhook, which teaches the session index; his logout is attributed.
    let create = json!({"user": {"name": "bob", "email": "bob@example.com", "password": CANARY}})
        .to_string();
    let reply = call(&base, "POST", "/v3/users", &admin(), create).await;
    assert_eq!(reply.status, 201);
    let bob = user_id(2);
    uh.expect(
        json!({"event": "user.created", "action": "created", "status": "201",
        "id": bob, "name": "bob", "email": "bob@example.com", "enabled": "true",
        "attribution": "exchange"}),
    )
    .await;
    let direct = call(
        &iam.url(),
        "POST",
        "/v3/auth/tokens",
        &[("content-type", "application/json")],
        password_auth(json!({"id": bob}), CANARY),
    )
    .await;
    assert_eq!(direct.status, 201);
    let bob_token = token(3);
    assert_eq!(direct.headers["x-subject-token"], bob_token.as_str());
    let reply = call_with(&base, "GET", "/v3/auth/tokens", &subject(&bob_token), "").await;
    assert_eq!(reply.status, 200);
    let reply = call_with(&base, "DELETE", "/v3/auth/tokens", &subject(&bob_token), "").await;
    assert_eq!(reply.status, 204);
    uh.expect(
        json!({"event": "user.logout", "action": "logout", "status": "204",
        "id": bob, "name": "bob", "email": "bob@example.com", "enabled": "true",
        "attribution": "session"}),
    )
    .await;

    // Delete: 204; the rest from the cache.
    let reply = call(&base, "DELETE", &alice_path, &admin(), "").await;
    assert_eq!(reply.status, 204);
    uh.expect(
        json!({"event": "user.deleted", "action": "deleted", "status": "204",
        "id": alice, "name": "alice", "email": "alice@example.org", "enabled": "true",
        "attribution": "exchange"}),
    )
    .await;
    uh.assert_all_checked();

    let tokens: Vec<String> = (1..=3).map(token).collect();
    let mut canaries = vec![CANARY, NEW_PASSWORD, "CANARY-WRONG-PW-789"];
    canaries.extend(tokens.iter().map(String::as_str));
    uh.assert_no_canary(&canaries);
}

/// The event itself (the JSON event form, as a NATS sink or `subscribe` sees it): the login's
/// `Method` is a detail of the call, never a user field; `DomainID` is a user field.
#[tokio::test]
async fn keystone_login_details_are_event_only() {
    use support::iam::{next_event, user};
    use support::{config_for, Userhook};
    let iam = keystone().await;
    let uh = Userhook::start(&config_for(&iam.url(), "profiles: [keystone]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    let create = json!({"user": {"name": "carol", "password": CANARY}}).to_string();
    call(&uh.url(), "POST", "/v3/users", &admin(), create).await;
    let ev = next_event(&mut rx).await;
    assert!(ev.details.is_empty());
    let carol = user_id(1);
    let login = password_auth(json!({"id": carol}), CANARY);
    let h = [("content-type", "application/json")];
    let reply = call(&uh.url(), "POST", "/v3/auth/tokens", &h, login).await;
    assert_eq!(reply.status, 201);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.event_type, "user.login");
    assert_eq!(ev.details, user(&[("Method", "password")]));
    let want = user(&[
        ("ID", &carol),
        ("Name", "carol"),
        ("DomainID", "default"),
        ("Enabled", "true"),
    ]);
    assert_eq!(ev.user, want);
    // The detail never reaches the cache: the revocation's event has none.
    let reply = call_with(
        &uh.url(),
        "DELETE",
        "/v3/auth/tokens",
        &subject(&token(1)),
        "",
    )
    .await;
    assert_eq!(reply.status, 204);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.event_type, "user.logout");
    assert!(ev.details.is_empty(), "{:?}", ev.details);
    assert_eq!(ev.user, want);
    uh.handle.stop().await;
}
