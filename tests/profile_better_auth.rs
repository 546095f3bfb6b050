//! The `better-auth` profile through the real binary, in front of a fake better-auth that
//! answers like the real one (tests/support/better_auth.rs): sign-up (a new user signing in:
//! `created` and `login`), sign-in, failed sign-in, the user's own update (`{"status":true}`),
//! password change, sign-out (`{}` and a cookie), deletion, and the admin plugin — every event
//! asserted exactly at a webhook receiver. Calls that present only the session cookie are
//! attributed through the session index, across a restart. A duplicate sign-up answered with
//! a synthetic user is no `created`.

mod support;

use serde_json::{json, Value};
use support::better_auth::{
    better_auth, cookie_header, cookie_value, session_token, user_id, Options,
};
use support::iam::{call, Reply, CANARY};
use support::lifecycle::Lifecycle;

const NEW_PASSWORD: &str = "CANARY-NEW-PW-456";
const WRONG: &str = "CANARY-WRONG-PW-789";
const ADMIN_PW: &str = "CANARY-ADMIN-PW-321";

async fn post(base: &str, path: &str, session: Option<u32>, body: Value) -> Reply {
    let cookie = session.map(cookie_header);
    let mut headers = vec![("content-type", "application/json")];
    if let Some(c) = &cookie {
        headers.push(("cookie", c.as_str()));
    }
    call(base, "POST", path, &headers, body.to_string()).await
}

fn set_cookies(r: &Reply) -> Vec<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("text").to_owned())
        .collect()
}

#[tokio::test]
async fn better_auth_lifecycle_through_the_binary() {
    let iam = better_auth(Options::default()).await;
    let mut uh = Lifecycle::start(&iam.url(), "better-auth", "").await;
    let base = uh.url();
    let (admin, alice, bob) = (user_id(1), user_id(2), user_id(3));

    // The admin signs up: a new user and a session (`created`, then `login`).
    let reply = post(
        &base,
        "/api/auth/sign-up/email",
        None,
        json!({"name": "Admin", "email": "admin@example.com", "password": ADMIN_PW}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        set_cookies(&reply),
        [format!(
            "better-auth.session_token={}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax",
            cookie_value(1)
        )]
    );
    let created_at = "2026-12-02T09:00:01.000Z";
    for (event, action) in [("user.created", "created"), ("user.login", "login")] {
        uh.expect(
            json!({"event": event, "action": action, "status": "200", "id": admin,
            "name": "Admin", "email": "admin@example.com", "enabled": "true",
            "created_at": created_at, "attribution": "exchange"}),
        )
        .await;
    }

    // Alice signs up (session 2); a duplicate sign-up is 422 and no event.
    let signup = json!({"name": "Alice", "email": "Alice@Example.com", "password": CANARY,
        "rememberMe": true});
    let reply = post(&base, "/api/auth/sign-up/email", None, signup.clone()).await;
    assert_eq!(reply.status, 200);
    let body: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(body["token"], session_token(2).as_str());
    assert_eq!(body["user"]["id"], alice.as_str());
    let alice_created = body["user"]["createdAt"]
        .as_str()
        .expect("createdAt")
        .to_owned();
    let alice_event = |event: &str, action: &str, status: &str, name: &str, attribution: &str| {
        json!({"event": event, "action": action, "status": status, "id": alice, "name": name,
            "email": "alice@example.com", "enabled": "true", "created_at": alice_created,
            "attribution": attribution})
    };
    uh.expect(alice_event(
        "user.created",
        "created",
        "200",
        "Alice",
        "exchange",
    ))
    .await;
    uh.expect(alice_event(
        "user.login",
        "login",
        "200",
        "Alice",
        "exchange",
    ))
    .await;
    let reply = post(&base, "/api/auth/sign-up/email", None, signup).await;
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.body,
        r#"{"message":"User already exists. Use another email.","code":"USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"}"#
    );

    // Her own update: only `{"status":true}` comes back; the user from her session cookie.
    let reply = post(
        &base,
        "/api/auth/update-user",
        Some(2),
        json!({"name": "Alice Liddell"}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, r#"{"status":true}"#);
    let mut ev = alice_event("user.updated", "updated", "200", "Alice Liddell", "session");
    ev["changed"] = json!("Name");
    uh.expect(ev).await;

    // A failed sign-in: 401, the attempted email; the cache names her.
    let reply = post(
        &base,
        "/api/auth/sign-in/email",
        None,
        json!({"email": "alice@example.com", "password": WRONG}),
    )
    .await;
    assert_eq!(reply.status, 401);
    uh.expect(alice_event(
        "user.login_failed",
        "login_failed",
        "401",
        "Alice Liddell",
        "exchange",
    ))
    .await;

    // Sign-in (session 3); reading the session is no event.
    let reply = post(
        &base,
        "/api/auth/sign-in/email",
        None,
        json!({"email": "alice@example.com", "password": CANARY, "rememberMe": true}),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(alice_event(
        "user.login",
        "login",
        "200",
        "Alice Liddell",
        "exchange",
    ))
    .await;
    let cookie = cookie_header(3);
    let reply = call(
        &base,
        "GET",
        "/api/auth/get-session",
        &[("cookie", cookie.as_str())],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);

    // Password change, revoking other sessions: a new session cookie (4) is issued.
    let reply = post(
        &base,
        "/api/auth/change-password",
        Some(3),
        json!({
        "newPassword": NEW_PASSWORD, "currentPassword": CANARY, "revokeOtherSessions": true}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(set_cookies(&reply).len(), 1);
    uh.expect(alice_event(
        "user.password_changed",
        "password_changed",
        "200",
        "Alice Liddell",
        "exchange",
    ))
    .await;

    // A restart between sign-in and sign-out.
    uh.restart().await;
    let base = uh.url();

    // Sign-out: `{}` and the cookie. Every session cookie is expired in the answer.
    let reply = post(&base, "/api/auth/sign-out", Some(4), json!({})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, r#"{"success":true}"#);
    assert_eq!(set_cookies(&reply).len(), 3);
    uh.expect(alice_event(
        "user.logout",
        "logout",
        "200",
        "Alice Liddell",
        "session",
    ))
    .await;
    // The session ended with it: signing out again is confirmed by better-auth (200) but
    // nobody can be named.
    let reply = post(&base, "/api/auth/sign-out", Some(4), json!({})).await;
    assert_eq!(reply.status, 200);
    uh.expect(
        json!({"event": "user.logout", "action": "logout", "status": "200",
        "attribution": "none"}),
    )
    .await;

    // The admin plugin: the admin signs in (session 5) and manages Bob.
    let reply = post(
        &base,
        "/api/auth/sign-in/email",
        None,
        json!({"email": "admin@example.com", "password": ADMIN_PW}),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(
        json!({"event": "user.login", "action": "login", "status": "200", "id": admin,
        "name": "Admin", "email": "admin@example.com", "enabled": "true",
        "created_at": created_at, "attribution": "exchange"}),
    )
    .await;
    let reply = post(
        &base,
        "/api/auth/admin/create-user",
        Some(5),
        json!({
        "email": "bob@example.com", "password": CANARY, "name": "Bob", "role": "user"}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let body: Value = serde_json::from_slice(&reply.body).expect("json");
    let bob_created = body["user"]["createdAt"]
        .as_str()
        .expect("createdAt")
        .to_owned();
    let bob_event = |event: &str, action: &str, name: &str, enabled: &str| {
        json!({"event": event, "action": action, "status": "200", "id": bob, "name": name,
            "email": "bob@example.com", "enabled": enabled, "created_at": bob_created,
            "attribution": "exchange"})
    };
    uh.expect(bob_event("user.created", "created", "Bob", "true"))
        .await;
    let reply = post(
        &base,
        "/api/auth/admin/update-user",
        Some(5),
        json!({"userId": bob, "data": {"name": "Robert"}}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut ev = bob_event("user.updated", "updated", "Robert", "true");
    ev["changed"] = json!("Name");
    uh.expect(ev).await;
    let reply = post(
        &base,
        "/api/auth/admin/ban-user",
        Some(5),
        json!({"userId": bob, "banReason": "spam"}),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(bob_event("user.banned", "banned", "Robert", "false"))
        .await;
    let reply = post(
        &base,
        "/api/auth/sign-in/email",
        None,
        json!({"email": "bob@example.com", "password": CANARY}),
    )
    .await;
    assert_eq!(reply.status, 403);
    let mut ev = bob_event("user.login_failed", "login_failed", "Robert", "false");
    ev["status"] = json!("403");
    uh.expect(ev).await;
    let reply = post(
        &base,
        "/api/auth/admin/unban-user",
        Some(5),
        json!({"userId": bob}),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(bob_event("user.unbanned", "unbanned", "Robert", "true"))
        .await;
    let reply = post(
        &base,
        "/api/auth/admin/set-user-password",
        Some(5),
        json!({"userId": bob, "newPassword": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(bob_event(
        "user.password_changed",
        "password_changed",
        "Robert",
        "true",
    ))
    .await;
    let reply = post(
        &base,
        "/api/auth/admin/remove-user",
        Some(5),
        json!({"userId": bob}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, r#"{"success":true}"#);
    uh.expect(bob_event("user.deleted", "deleted", "Robert", "true"))
        .await;

    // Alice signs in again (session 6) and deletes her own account: attributed by the cookie.
    let reply = post(
        &base,
        "/api/auth/sign-in/email",
        None,
        json!({"email": "alice@example.com", "password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(alice_event(
        "user.login",
        "login",
        "200",
        "Alice Liddell",
        "exchange",
    ))
    .await;
    let reply = post(&base, "/api/auth/delete-user", Some(6), json!({})).await;
    assert_eq!(reply.status, 200);
    uh.expect(alice_event(
        "user.deleted",
        "deleted",
        "200",
        "Alice Liddell",
        "session",
    ))
    .await;
    uh.assert_all_checked();

    let secrets: Vec<String> = (1..=6)
        .flat_map(|n| [session_token(n), cookie_value(n)])
        .collect();
    let mut canaries = vec![CANARY, NEW_PASSWORD, WRONG, ADMIN_PW];
    canaries.extend(secrets.iter().map(String::as_str));
    uh.assert_no_canary(&canaries);
}

/// With `requireEmailVerification`, a new sign-up and a duplicate one answer alike (200,
/// `token: null`, a user object, no cookie): neither is a `created`; the user's first event is
/// their sign-in.
#[tokio::test]
async fn better_auth_generic_duplicate_sign_up_is_no_event() {
    let iam = better_auth(Options {
        generic_duplicates: true,
    })
    .await;
    let mut uh = Lifecycle::start(&iam.url(), "better-auth", "").await;
    let base = uh.url();
    let signup = json!({"name": "Carol", "email": "carol@example.com", "password": CANARY});
    let first = post(&base, "/api/auth/sign-up/email", None, signup.clone()).await;
    let again = post(&base, "/api/auth/sign-up/email", None, signup).await;
    for reply in [&first, &again] {
        assert_eq!(reply.status, 200);
        assert!(set_cookies(reply).is_empty());
        let body: Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(body["token"], Value::Null);
        assert_eq!(body["user"]["email"], "carol@example.com");
    }
    let real: Value = serde_json::from_slice(&first.body).expect("json");
    let fake: Value = serde_json::from_slice(&again.body).expect("json");
    assert_ne!(
        real["user"]["id"], fake["user"]["id"],
        "the duplicate's user is synthetic"
    );

    let reply = post(
        &base,
        "/api/auth/sign-in/email",
        None,
        json!({"email": "carol@example.com", "password": CANARY}),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(
        json!({"event": "user.login", "action": "login", "status": "200",
        "id": user_id(1), "name": "Carol", "email": "carol@example.com", "enabled": "true",
        "created_at": real["user"]["createdAt"], "attribution": "exchange"}),
    )
    .await;
    uh.assert_all_checked();
    uh.assert_no_canary(&[CANARY, &session_token(1), &cookie_value(1)]);
}

/// In the event itself: the refusal's code and the ban reason are details; `Role` is a user
/// field.
#[tokio::test]
async fn better_auth_reasons_are_details() {
    use support::iam::{next_event, user};
    use support::{config_for, Userhook};
    let iam = better_auth(Options::default()).await;
    let uh = Userhook::start(&config_for(&iam.url(), "profiles: [better-auth]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    let base = uh.url();
    post(
        &base,
        "/api/auth/sign-up/email",
        None,
        json!({"name": "Admin", "email": "admin@example.com", "password": ADMIN_PW}),
    )
    .await;
    post(
        &base,
        "/api/auth/sign-up/email",
        None,
        json!({"name": "Dan", "email": "dan@example.com", "password": CANARY}),
    )
    .await;
    for _ in 0..4 {
        let ev = next_event(&mut rx).await;
        assert!(ev.details.is_empty());
    }
    let reply = post(
        &base,
        "/api/auth/sign-in/email",
        None,
        json!({"email": "DAN@example.com", "password": WRONG}),
    )
    .await;
    assert_eq!(reply.status, 401);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.event_type, "user.login_failed");
    assert_eq!(ev.details, user(&[("Reason", "INVALID_EMAIL_OR_PASSWORD")]));
    assert_eq!(
        ev.user.get("ID").map(String::as_str),
        Some(user_id(2).as_str())
    );
    assert_eq!(ev.user.get("Role").map(String::as_str), Some("user"));
    let reply = post(
        &base,
        "/api/auth/admin/ban-user",
        Some(1),
        json!({"userId": user_id(2), "banReason": "spam"}),
    )
    .await;
    assert_eq!(reply.status, 200);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.event_type, "user.banned");
    assert_eq!(ev.details, user(&[("Reason", "spam")]));
    assert_eq!(ev.user.get("Enabled").map(String::as_str), Some("false"));
    uh.handle.stop().await;
}
