//! The `casdoor` profile through the real binary, in front of a fake Casdoor that answers like
//! the real one (tests/support/casdoor.rs): every answer is 200 and success is the body's
//! `status`, so failures (a wrong password, an unchanged update, a duplicate) must be no
//! events or `login_failed` — every event asserted exactly at a webhook receiver. The user's own
//! password change names them only by name: the cache adds ID and email; sign-out is
//! attributed through the session cookie (and names them as `owner/name`), and ends it.

mod support;

use serde_json::{json, Value};
use support::casdoor::{casdoor, session_id, user_uuid, ADMIN_BASIC};
use support::iam::{call, Reply, CANARY};
use support::lifecycle::Lifecycle;

const NEW_PASSWORD: &str = "CANARY-NEW-PW-456";
const WRONG: &str = "CANARY-WRONG-PW-789";

async fn admin(base: &str, path: &str, body: &Value) -> Reply {
    let method = if body.is_null() { "GET" } else { "POST" };
    call(
        base,
        method,
        path,
        &[
            ("content-type", "application/json"),
            ("authorization", ADMIN_BASIC),
        ],
        if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
    )
    .await
}

async fn as_session(
    base: &str,
    method: &str,
    path: &str,
    sid: Option<&str>,
    ct: &str,
    body: String,
) -> Reply {
    let cookie = sid.map(|s| format!("casdoor_session_id={s}"));
    let mut h = vec![("content-type", ct)];
    if let Some(c) = &cookie {
        h.push(("cookie", c.as_str()));
    }
    call(base, method, path, &h, body).await
}

fn status_of(r: &Reply) -> String {
    assert_eq!(r.status, 200, "Casdoor answers 200 to everything");
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    v["status"].as_str().expect("status").to_owned()
}

#[tokio::test]
async fn casdoor_lifecycle_through_the_binary() {
    let iam = casdoor().await;
    let mut uh = Lifecycle::start(&iam.url(), "casdoor", "").await;
    let base = uh.url();
    let alice_id = user_uuid(1);

    // Admin add-user (no UUID in the request): `Affected`.
    let user = json!({"owner": "built-in", "name": "alice", "type": "normal-user",
        "password": CANARY, "displayName": "Alice", "email": "alice@example.com",
        "isForbidden": false, "signupApplication": "app-built-in"});
    let reply = admin(&base, "/api/add-user", &user).await;
    assert_eq!(status_of(&reply), "ok");
    uh.expect(
        json!({"event": "user.created", "action": "created", "status": "200",
        "name": "alice", "email": "alice@example.com", "enabled": "true",
        "attribution": "exchange"}),
    )
    .await;
    // The same again: `Unaffected`, no event.
    let reply = admin(&base, "/api/add-user", &user).await;
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        r#"{"status":"ok","msg":"","sub":"","name":"","data":"Unaffected","data2":null,"data3":null}"#
    );
    // The admin UI reads the user back: the cache learns the UUID.
    let reply = admin(&base, "/api/get-user?id=built-in/alice", &Value::Null).await;
    assert_eq!(status_of(&reply), "ok");
    let fetched: Value = serde_json::from_slice(&reply.body).expect("json");
    let created = fetched["data"]["createdTime"]
        .as_str()
        .expect("createdTime")
        .to_owned();
    let alice = |event: &str, action: &str, email: &str, enabled: &str, attribution: &str| {
        json!({"event": event, "action": action, "status": "200", "id": alice_id,
            "name": "alice", "email": email, "enabled": enabled, "created_at": created,
            "attribution": attribution})
    };

    // A wrong password: 200 and `status: error`.
    let login = |password: &str| {
        json!({"application": "app-built-in", "organization": "built-in", "username": "alice",
            "password": password, "autoSignin": true, "type": "login", "signinMethod": "Password"})
        .to_string()
    };
    let reply = as_session(
        &base,
        "POST",
        "/api/login",
        None,
        "application/json",
        login(WRONG),
    )
    .await;
    assert_eq!(status_of(&reply), "error");
    uh.expect(alice(
        "user.login_failed",
        "login_failed",
        "alice@example.com",
        "true",
        "exchange",
    ))
    .await;

    // Sign-in: the session cookie is set on this first answer of the session.
    let reply = as_session(
        &base,
        "POST",
        "/api/login",
        None,
        "application/json",
        login(CANARY),
    )
    .await;
    assert_eq!(status_of(&reply), "ok");
    // Every call without a session so far started one (Beego): this is the fifth.
    let sid = session_id(5);
    assert_eq!(
        reply.headers["set-cookie"],
        format!("casdoor_session_id={sid}; Path=/; Expires=Fri, 01 Jan 2027 09:00:00 GMT; Max-Age=2592000; HttpOnly").as_str()
    );
    uh.expect(alice(
        "user.login",
        "login",
        "alice@example.com",
        "true",
        "exchange",
    ))
    .await;

    // Her account page, then her own update: the whole user object to `update-user`.
    let reply = as_session(
        &base,
        "GET",
        "/api/get-account",
        Some(&sid),
        "application/json",
        String::new(),
    )
    .await;
    assert_eq!(status_of(&reply), "ok");
    let account: Value = serde_json::from_slice(&reply.body).expect("json");
    assert_eq!(account["sub"], alice_id.as_str());
    let mut me = account["data"].clone();
    me["email"] = json!("alice@example.org");
    let reply = as_session(
        &base,
        "POST",
        "/api/update-user?id=built-in/alice",
        Some(&sid),
        "application/json",
        me.to_string(),
    )
    .await;
    assert_eq!(status_of(&reply), "ok");
    let mut ev = alice(
        "user.updated",
        "updated",
        "alice@example.org",
        "true",
        "exchange",
    );
    ev["changed"] = json!("Email");
    uh.expect(ev).await;
    // Saving it unchanged: `Unaffected`, no event.
    let reply = as_session(
        &base,
        "POST",
        "/api/update-user?id=built-in/alice",
        Some(&sid),
        "application/json",
        me.to_string(),
    )
    .await;
    assert!(String::from_utf8_lossy(&reply.body).contains(r#""data":"Unaffected""#));

    // Password change: a wrong old password is `status: error`, no event.
    let form = |old: &str| {
        format!("userOwner=built-in&userName=alice&oldPassword={old}&newPassword={NEW_PASSWORD}")
    };
    let ct = "application/x-www-form-urlencoded";
    let reply = as_session(
        &base,
        "POST",
        "/api/set-password",
        Some(&sid),
        ct,
        form(WRONG),
    )
    .await;
    assert_eq!(status_of(&reply), "error");
    let reply = as_session(
        &base,
        "POST",
        "/api/set-password",
        Some(&sid),
        ct,
        form(CANARY),
    )
    .await;
    assert_eq!(status_of(&reply), "ok");
    uh.expect(alice(
        "user.password_changed",
        "password_changed",
        "alice@example.org",
        "true",
        "exchange",
    ))
    .await;

    uh.restart().await;
    let base = uh.url();

    // Sign-out: `data` is `built-in/alice`; a fresh session id is set.
    let reply = as_session(
        &base,
        "POST",
        "/api/logout",
        Some(&sid),
        "application/json",
        String::new(),
    )
    .await;
    assert_eq!(status_of(&reply), "ok");
    // The presented session names her (its owner has the UUID; `data` only `owner/name`).
    uh.expect(alice(
        "user.logout",
        "logout",
        "alice@example.org",
        "true",
        "session",
    ))
    .await;
    // Signing out again: nobody is signed in (`data: null`), no event.
    let reply = as_session(
        &base,
        "POST",
        "/api/logout",
        Some(&sid),
        "application/json",
        String::new(),
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        r#"{"status":"ok","msg":"","sub":"","name":"","data":null,"data2":null,"data3":null}"#
    );

    // The admin forbids her (the whole user object again), a sign-in fails, she is deleted.
    let mut forbidden = me.clone();
    forbidden["isForbidden"] = json!(true);
    let reply = admin(&base, "/api/update-user?id=built-in/alice", &forbidden).await;
    assert_eq!(status_of(&reply), "ok");
    let mut ev = alice(
        "user.updated",
        "updated",
        "alice@example.org",
        "false",
        "exchange",
    );
    ev["changed"] = json!("Enabled");
    uh.expect(ev).await;
    let reply = as_session(
        &base,
        "POST",
        "/api/login",
        None,
        "application/json",
        login(NEW_PASSWORD),
    )
    .await;
    assert_eq!(status_of(&reply), "error");
    uh.expect(alice(
        "user.login_failed",
        "login_failed",
        "alice@example.org",
        "false",
        "exchange",
    ))
    .await;
    let reply = admin(&base, "/api/delete-user", &forbidden).await;
    assert_eq!(status_of(&reply), "ok");
    uh.expect(alice(
        "user.deleted",
        "deleted",
        "alice@example.org",
        "false",
        "exchange",
    ))
    .await;
    uh.assert_all_checked();

    let sessions: Vec<String> = (1..=9).map(session_id).collect();
    let mut canaries = vec![CANARY, NEW_PASSWORD, WRONG];
    canaries.extend(sessions.iter().map(String::as_str));
    uh.assert_no_canary(&canaries);
}

/// In the event itself: Casdoor's refusal message is a detail; `Organization` a user field.
#[tokio::test]
async fn casdoor_refusal_message_is_a_detail() {
    use support::iam::{next_event, user};
    use support::{config_for, Userhook};
    let iam = casdoor().await;
    let uh = Userhook::start(&config_for(&iam.url(), "profiles: [casdoor]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    let base = uh.url();
    let login = json!({"application": "app-built-in", "organization": "built-in",
        "username": "frank", "password": WRONG, "type": "login"})
    .to_string();
    let reply = as_session(&base, "POST", "/api/login", None, "application/json", login).await;
    assert_eq!(status_of(&reply), "error");
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.event_type, "user.login_failed");
    assert_eq!(
        ev.details,
        user(&[("Reason", "The user: built-in/frank doesn't exist")])
    );
    assert_eq!(
        ev.user,
        user(&[("Name", "frank"), ("Organization", "built-in")])
    );
    uh.handle.stop().await;
}
