//! The `gitea` profile through the real binary, in front of a fake Gitea that answers like
//! the real one (tests/support/gitea.rs): the admin users API keyed by username (create, edit,
//! password set, rename, delete), an API token and the caller's own settings through it, the
//! web sign-in (303), a failed one (200, the form again) and the sign-out — every event
//! asserted exactly at a webhook receiver. The settings update and the sign-out present only a
//! token or a session cookie: attributed through the session index, across a restart.

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use support::gitea::{api_token, gitea, session_id, ADMIN_TOKEN};
use support::iam::{call, Reply, CANARY};
use support::lifecycle::Lifecycle;

const NEW_PASSWORD: &str = "CANARY-NEW-PW-456";
const WRONG: &str = "CANARY-WRONG-PW-789";
const ADMIN: &str = "token 0123456789abcdef0123456789abcdef01234567";

async fn admin(base: &str, method: &str, path: &str, body: Value) -> Reply {
    assert!(ADMIN.ends_with(ADMIN_TOKEN));
    call(
        base,
        method,
        path,
        &[
            ("content-type", "application/json"),
            ("authorization", ADMIN),
        ],
        if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
    )
    .await
}

async fn sign_in(base: &str, user: &str, password: &str) -> Reply {
    let form =
        format!("_csrf=Xk3Jm9Qa2Lr7Tz4Wb8Nc1Vd6Hf3&user_name={user}&password={password}&remember=");
    call(
        base,
        "POST",
        "/user/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        form,
    )
    .await
}

#[tokio::test]
async fn gitea_lifecycle_through_the_binary() {
    let iam = gitea().await;
    let mut uh = Lifecycle::start(&iam.url(), "gitea", "").await;
    let base = uh.url();

    // Create: 201 with the User (numeric id).
    let reply = admin(
        &base,
        "POST",
        "/api/v1/admin/users",
        json!({
        "username": "alice", "email": "alice@example.com", "full_name": "Alice",
        "password": CANARY, "must_change_password": false, "send_notify": false}),
    )
    .await;
    assert_eq!(reply.status, 201);
    assert_eq!(
        reply.headers["content-type"],
        "application/json;charset=utf-8"
    );
    let user: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(user["id"], 2);
    let created = user["created"].as_str().expect("created").to_owned();
    let alice =
        |event: &str, action: &str, status: &str, email: &str, enabled: &str, attribution: &str| {
            json!({"event": event, "action": action, "status": status, "id": "2", "name": "alice",
            "email": email, "enabled": enabled, "created_at": created, "attribution": attribution})
        };
    uh.expect(alice(
        "user.created",
        "created",
        "201",
        "alice@example.com",
        "true",
        "exchange",
    ))
    .await;
    // Taken: 422, no event.
    let reply = admin(
        &base,
        "POST",
        "/api/v1/admin/users",
        json!({
        "username": "alice", "email": "other@example.com", "password": CANARY}),
    )
    .await;
    assert_eq!(reply.status, 422);

    // Admin edit by username: 200 with the User.
    let reply = admin(
        &base,
        "PATCH",
        "/api/v1/admin/users/alice",
        json!({
        "login_name": "alice", "source_id": 0, "email": "alice@example.org"}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut ev = alice(
        "user.updated",
        "updated",
        "200",
        "alice@example.org",
        "true",
        "exchange",
    );
    ev["changed"] = json!("Email");
    uh.expect(ev).await;

    // The admin sets her password: `updated`, then `password_changed`.
    let reply = admin(
        &base,
        "PATCH",
        "/api/v1/admin/users/alice",
        json!({
        "login_name": "alice", "source_id": 0, "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(alice(
        "user.updated",
        "updated",
        "200",
        "alice@example.org",
        "true",
        "exchange",
    ))
    .await;
    uh.expect(alice(
        "user.password_changed",
        "password_changed",
        "200",
        "alice@example.org",
        "true",
        "exchange",
    ))
    .await;

    // Web sign-in: a bad password re-renders the form (200); the right one is 303.
    let reply = sign_in(&base, "alice", WRONG).await;
    assert_eq!(reply.status, 200);
    assert!(String::from_utf8_lossy(&reply.body).contains("Username or password is incorrect."));
    uh.expect(alice(
        "user.login_failed",
        "login_failed",
        "200",
        "alice@example.org",
        "true",
        "exchange",
    ))
    .await;
    let reply = sign_in(&base, "Alice", NEW_PASSWORD).await;
    assert_eq!(reply.status, 303);
    assert_eq!(reply.headers["location"], "/");
    let sid = session_id(1);
    uh.expect(alice(
        "user.login",
        "login",
        "303",
        "alice@example.org",
        "true",
        "exchange",
    ))
    .await;

    // An API token (basic auth), then her own settings through it.
    let basic = format!("Basic {}", STANDARD.encode(format!("alice:{NEW_PASSWORD}")));
    let reply = call(
        &base,
        "POST",
        "/api/v1/users/alice/tokens",
        &[
            ("content-type", "application/json"),
            ("authorization", basic.as_str()),
        ],
        r#"{"name":"laptop","scopes":["write:user"]}"#,
    )
    .await;
    assert_eq!(reply.status, 201);
    let token = api_token(1);
    let body: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(body["sha1"], token.as_str());
    uh.expect(alice(
        "user.token_created",
        "token_created",
        "201",
        "alice@example.org",
        "true",
        "exchange",
    ))
    .await;

    // A restart: the session index survives.
    uh.restart().await;
    let base = uh.url();

    // Gitea's own scheme (`request.bearer` reads it as it reads `Bearer`).
    let auth = format!("token {token}");
    let reply = call(
        &base,
        "PATCH",
        "/api/v1/user/settings",
        &[
            ("content-type", "application/json"),
            ("authorization", auth.as_str()),
        ],
        r#"{"full_name":"Alice Liddell"}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut ev = alice(
        "user.updated",
        "updated",
        "200",
        "alice@example.org",
        "true",
        "session",
    );
    ev["changed"] = json!("FullName");
    uh.expect(ev).await;

    // Web sign-out with the session cookie: 200 `{"redirect":"/"}`.
    let cookie = format!("i_like_gitea={sid}; lang=en-US");
    let reply = call(
        &base,
        "POST",
        "/user/logout",
        &[("cookie", cookie.as_str())],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, r#"{"redirect":"/"}"#);
    uh.expect(alice(
        "user.logout",
        "logout",
        "200",
        "alice@example.org",
        "true",
        "session",
    ))
    .await;

    // Rename; her token's `GET /api/v1/user` shows the new name to the cache; delete by it.
    let reply = admin(
        &base,
        "POST",
        "/api/v1/admin/users/alice/rename",
        json!({"new_username": "alice2"}),
    )
    .await;
    assert_eq!(reply.status, 204);
    uh.expect(alice(
        "user.renamed",
        "renamed",
        "204",
        "alice@example.org",
        "true",
        "exchange",
    ))
    .await;
    let reply = call(
        &base,
        "GET",
        "/api/v1/user",
        &[("authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = admin(
        &base,
        "DELETE",
        "/api/v1/admin/users/alice2?purge=true",
        Value::Null,
    )
    .await;
    assert_eq!(reply.status, 204);
    let mut ev = alice(
        "user.deleted",
        "deleted",
        "204",
        "alice@example.org",
        "true",
        "exchange",
    );
    ev["name"] = json!("alice2");
    uh.expect(ev).await;
    uh.assert_all_checked();

    uh.assert_no_canary(&[CANARY, NEW_PASSWORD, WRONG, &token, &sid]);
}

/// In the event itself: the token's name and the new username are details; `FullName` is a
/// user field.
#[tokio::test]
async fn gitea_token_and_rename_details() {
    use support::iam::{next_event, user};
    use support::{config_for, Userhook};
    let iam = gitea().await;
    let uh = Userhook::start(&config_for(&iam.url(), "profiles: [gitea]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    let base = uh.url();
    let reply = admin(
        &base,
        "POST",
        "/api/v1/admin/users",
        json!({
        "username": "erin", "email": "erin@example.com", "full_name": "Erin", "password": CANARY}),
    )
    .await;
    assert_eq!(reply.status, 201);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.user.get("FullName").map(String::as_str), Some("Erin"));
    let basic = format!("Basic {}", STANDARD.encode(format!("erin:{CANARY}")));
    let reply = call(
        &base,
        "POST",
        "/api/v1/users/erin/tokens",
        &[
            ("content-type", "application/json"),
            ("authorization", basic.as_str()),
        ],
        r#"{"name":"ci","scopes":["read:user"]}"#,
    )
    .await;
    assert_eq!(reply.status, 201);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.event_type, "user.token_created");
    assert_eq!(ev.details, user(&[("TokenName", "ci")]));
    assert_eq!(ev.user.get("ID").map(String::as_str), Some("2"));
    let reply = admin(
        &base,
        "POST",
        "/api/v1/admin/users/erin/rename",
        json!({"new_username": "Erin2"}),
    )
    .await;
    assert_eq!(reply.status, 204);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.event_type, "user.renamed");
    assert_eq!(ev.details, user(&[("NewName", "erin2")]));
    assert_eq!(ev.user.get("Name").map(String::as_str), Some("erin"));
    uh.handle.stop().await;
}
