//! The `zitadel` profile through the real binary, in front of a fake ZITADEL that answers like
//! its v2 gRPC gateway (tests/support/zitadel.rs): users created, updated (by an admin and by
//! the user with their session token), password change, deactivation and reactivation,
//! deletion; sessions created with a user check and then a password check (the custom login UI
//! flow), failed checks, and the session's deletion (logout) — every event asserted exactly at
//! a webhook receiver. The password check and the logout carry only the session id: attributed
//! through the session index, across a restart.

mod support;

use serde_json::{json, Value};
use support::iam::{call, Reply, CANARY};
use support::lifecycle::Lifecycle;
use support::zitadel::{object_id, session_token, zitadel, PAT};

const NEW_PASSWORD: &str = "CANARY-NEW-PW-456";
const WRONG: &str = "CANARY-WRONG-PW-789";

async fn api(base: &str, method: &str, path: &str, bearer: &str, body: Value) -> Reply {
    call(
        base,
        method,
        path,
        &[
            ("content-type", "application/json"),
            ("authorization", bearer),
        ],
        if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
    )
    .await
}

#[tokio::test]
async fn zitadel_lifecycle_through_the_binary() {
    let iam = zitadel().await;
    let mut uh = Lifecycle::start(&iam.url(), "zitadel", "").await;
    let base = uh.url();
    let alice = object_id(1);

    // AddHumanUser: 201 `{userId, details}`.
    let add = json!({"username": "alice", "organization": {"orgId": "300000000000000001"},
        "profile": {"givenName": "Alice", "familyName": "Liddell", "displayName": "Alice Liddell"},
        "email": {"email": "alice@example.com", "sendCode": {}},
        "password": {"password": CANARY, "changeRequired": false}});
    let reply = api(&base, "POST", "/v2/users/human", PAT, add.clone()).await;
    assert_eq!(reply.status, 201);
    let body: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(body["userId"], alice.as_str());
    let ev =
        |event: &str, action: &str, status: &str, first: &str, email: &str, attribution: &str| {
            json!({"event": event, "action": action, "status": status, "id": alice, "name": "alice",
            "email": email, "first_name": first, "last_name": "Liddell",
            "attribution": attribution})
        };
    uh.expect(ev(
        "user.created",
        "created",
        "201",
        "Alice",
        "alice@example.com",
        "exchange",
    ))
    .await;
    // The same username again: 409 AlreadyExists, no event.
    let reply = api(&base, "POST", "/v2/users/human", PAT, add).await;
    assert_eq!(reply.status, 409);
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        r#"{"code":6,"message":"User already exists (COMMAND-CxnLF)","details":[{"@type":"type.googleapis.com/zitadel.v1.ErrorDetail","id":"COMMAND-CxnLF","message":"User already exists"}]}"#
    );

    // An admin changes her email.
    let path = format!("/v2/users/human/{alice}");
    let reply = api(
        &base,
        "PUT",
        &path,
        PAT,
        json!({"email": {"email": "alice@example.org", "isVerified": true}}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut e = ev(
        "user.updated",
        "updated",
        "200",
        "Alice",
        "alice@example.org",
        "exchange",
    );
    e["changed"] = json!("Email");
    uh.expect(e).await;

    // A session with a wrong password: 400, the checked user.
    let reply = api(
        &base,
        "POST",
        "/v2/sessions",
        PAT,
        json!({"checks": {
        "user": {"loginName": "alice"}, "password": {"password": WRONG}}}),
    )
    .await;
    assert_eq!(reply.status, 400);
    uh.expect(ev(
        "user.login_failed",
        "login_failed",
        "400",
        "Alice",
        "alice@example.org",
        "exchange",
    ))
    .await;

    // The login UI: a session with a user check (no event), then the password check.
    let reply = api(
        &base,
        "POST",
        "/v2/sessions",
        PAT,
        json!({"checks": {
        "user": {"loginName": "alice"}}, "lifetime": "18000s"}),
    )
    .await;
    assert_eq!(reply.status, 201);
    let sid = object_id(2);
    let body: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(body["sessionId"], sid.as_str());
    let session_path = format!("/v2/sessions/{sid}");
    let reply = api(
        &base,
        "PATCH",
        &session_path,
        PAT,
        json!({"checks": {
        "password": {"password": CANARY}}}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let token = session_token(3);
    let body: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(body["sessionToken"], token.as_str());
    uh.expect(ev(
        "user.login",
        "login",
        "200",
        "Alice",
        "alice@example.org",
        "session",
    ))
    .await;

    // Her own profile update and password change, with her session token as bearer.
    let own = format!("Bearer {token}");
    let reply = api(
        &base,
        "PUT",
        &path,
        &own,
        json!({"profile": {"givenName": "Alicia",
        "familyName": "Liddell"}}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut e = ev(
        "user.updated",
        "updated",
        "200",
        "Alicia",
        "alice@example.org",
        "exchange",
    );
    e["changed"] = json!("FirstName");
    uh.expect(e).await;
    let pw = format!("/v2/users/{alice}/password");
    let reply = api(
        &base,
        "POST",
        &pw,
        &own,
        json!({"newPassword": {"password": NEW_PASSWORD,
        "changeRequired": false}, "currentPassword": WRONG}),
    )
    .await;
    assert_eq!(reply.status, 400);
    let reply = api(
        &base,
        "POST",
        &pw,
        &own,
        json!({"newPassword": {"password": NEW_PASSWORD,
        "changeRequired": false}, "currentPassword": CANARY}),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(ev(
        "user.password_changed",
        "password_changed",
        "200",
        "Alicia",
        "alice@example.org",
        "exchange",
    ))
    .await;

    uh.restart().await;
    let base = uh.url();

    // Logout: the session's deletion names only the session id.
    let reply = api(&base, "DELETE", &session_path, PAT, json!({})).await;
    assert_eq!(reply.status, 200);
    uh.expect(ev(
        "user.logout",
        "logout",
        "200",
        "Alicia",
        "alice@example.org",
        "session",
    ))
    .await;
    // Again: 404, no event.
    let reply = api(&base, "DELETE", &session_path, PAT, json!({})).await;
    assert_eq!(reply.status, 404);

    // Deactivated, a sign-in fails, reactivated, deleted.
    let reply = api(
        &base,
        "POST",
        &format!("/v2/users/{alice}/deactivate"),
        PAT,
        json!({}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut e = ev(
        "user.deactivated",
        "deactivated",
        "200",
        "Alicia",
        "alice@example.org",
        "exchange",
    );
    e["enabled"] = json!("false");
    uh.expect(e).await;
    let reply = api(
        &base,
        "POST",
        "/v2/sessions",
        PAT,
        json!({"checks": {
        "user": {"userId": alice}, "password": {"password": NEW_PASSWORD}}}),
    )
    .await;
    assert_eq!(reply.status, 400);
    let mut e = ev(
        "user.login_failed",
        "login_failed",
        "400",
        "Alicia",
        "alice@example.org",
        "exchange",
    );
    e["enabled"] = json!("false");
    uh.expect(e).await;
    let reply = api(
        &base,
        "POST",
        &format!("/v2/users/{alice}/reactivate"),
        PAT,
        json!({}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut e = ev(
        "user.reactivated",
        "reactivated",
        "200",
        "Alicia",
        "alice@example.org",
        "exchange",
    );
    e["enabled"] = json!("true");
    uh.expect(e).await;
    let reply = api(
        &base,
        "DELETE",
        &format!("/v2/users/{alice}"),
        PAT,
        Value::Null,
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut e = ev(
        "user.deleted",
        "deleted",
        "200",
        "Alicia",
        "alice@example.org",
        "exchange",
    );
    e["enabled"] = json!("true");
    uh.expect(e).await;
    uh.assert_all_checked();

    uh.assert_no_canary(&[CANARY, NEW_PASSWORD, WRONG, &session_token(2), &token]);
}

/// In the event itself: the gateway's error message is the failed login's `Reason` detail.
#[tokio::test]
async fn zitadel_refusal_message_is_a_detail() {
    use support::iam::{next_event, user};
    use support::{config_for, Userhook};
    let iam = zitadel().await;
    let uh = Userhook::start(&config_for(&iam.url(), "profiles: [zitadel]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    let base = uh.url();
    let reply = api(
        &base,
        "POST",
        "/v2/sessions",
        PAT,
        json!({"checks": {
        "user": {"loginName": "nobody"}, "password": {"password": WRONG}}}),
    )
    .await;
    assert_eq!(reply.status, 404);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.event_type, "user.login_failed");
    assert_eq!(
        ev.details,
        user(&[("Reason", "User could not be found (QUERY-Dfbg2)")])
    );
    assert_eq!(ev.user, user(&[("Name", "nobody")]));
    uh.handle.stop().await;
}
