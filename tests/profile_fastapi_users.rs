//! The `fastapi-users` profile through the real binary, in front of a fake FastAPI Users
//! application that answers like the real one (tests/support/fastapi_users.rs): register,
//! bearer (JWT) and cookie logins, a failed login, the user's own update of `/users/me` (with
//! a password change), logouts of both transports, a superuser's update and delete, and a
//! password reset — every event asserted exactly at a webhook receiver. Logouts and
//! `/users/me` calls present only a token or a cookie: attributed through the session index.

mod support;

use serde_json::{json, Value};
use support::fastapi_users::{access_token, fastapi_users, reset_token, user_id, COOKIE};
use support::iam::{call, Reply, CANARY};
use support::lifecycle::Lifecycle;

const NEW_PASSWORD: &str = "CANARY-NEW-PW-456";
const WRONG: &str = "CANARY-WRONG-PW-789";
const ADMIN_PW: &str = "CANARY-ADMIN-PW-321";
const FORM: &str = "application/x-www-form-urlencoded";

async fn login(base: &str, backend: &str, email: &str, password: &str) -> Reply {
    let body = format!(
        "grant_type=password&username={}&password={password}&scope=",
        email.replace('@', "%40")
    );
    call(
        base,
        "POST",
        &format!("/auth/{backend}/login"),
        &[("content-type", FORM)],
        body,
    )
    .await
}

async fn with_bearer(base: &str, method: &str, path: &str, token: &str, body: &str) -> Reply {
    let auth = format!("Bearer {token}");
    call(
        base,
        method,
        path,
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        body.to_owned(),
    )
    .await
}

#[tokio::test]
async fn fastapi_users_lifecycle_through_the_binary() {
    let iam = fastapi_users().await;
    let mut uh = Lifecycle::start(&iam.url(), "fastapi-users", "").await;
    let base = uh.url();
    let (admin, alice) = (user_id(1), user_id(2));
    let json_h = [("content-type", "application/json")];

    // Register the superuser and Alice: 201 `UserRead`.
    for (email, password, id) in [
        ("admin@example.com", ADMIN_PW, &admin),
        ("alice@example.com", CANARY, &alice),
    ] {
        let reply = call(
            &base,
            "POST",
            "/auth/register",
            &json_h,
            json!({"email": email, "password": password}).to_string(),
        )
        .await;
        assert_eq!(reply.status, 201);
        let body: Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(body["id"], id.as_str());
        uh.expect(
            json!({"event": "user.created", "action": "created", "status": "201",
            "id": id, "name": email, "email": email, "enabled": "true",
            "attribution": "exchange"}),
        )
        .await;
    }
    // A second registration: 400, no event.
    let reply = call(
        &base,
        "POST",
        "/auth/register",
        &json_h,
        json!({"email": "alice@example.com", "password": "whatever"}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body, r#"{"detail":"REGISTER_USER_ALREADY_EXISTS"}"#);

    let alice_event = |event: &str, action: &str, status: &str, email: &str, attribution: &str| {
        json!({"event": event, "action": action, "status": status, "id": alice,
            "name": email, "email": email, "enabled": "true", "attribution": attribution})
    };

    // A failed login: 400 LOGIN_BAD_CREDENTIALS, the attempted email; the cache names her.
    let reply = login(&base, "jwt", "alice@example.com", WRONG).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body, r#"{"detail":"LOGIN_BAD_CREDENTIALS"}"#);
    uh.expect(alice_event(
        "user.login_failed",
        "login_failed",
        "400",
        "alice@example.com",
        "exchange",
    ))
    .await;

    // Bearer login (token 1).
    let reply = login(&base, "jwt", "alice@example.com", CANARY).await;
    assert_eq!(reply.status, 200);
    let token1 = access_token(&alice, 1);
    assert_eq!(
        reply.body,
        json!({"access_token": token1, "token_type": "bearer"}).to_string()
    );
    uh.expect(alice_event(
        "user.login",
        "login",
        "200",
        "alice@example.com",
        "exchange",
    ))
    .await;

    // Her own update through the token: a new email, then a new password.
    let reply = with_bearer(
        &base,
        "PATCH",
        "/users/me",
        &token1,
        r#"{"email":"alice@example.org"}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut ev = alice_event(
        "user.updated",
        "updated",
        "200",
        "alice@example.org",
        "exchange",
    );
    ev["changed"] = json!("Email, Name");
    uh.expect(ev).await;
    let reply = with_bearer(
        &base,
        "PATCH",
        "/users/me",
        &token1,
        &json!({"password": NEW_PASSWORD}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(alice_event(
        "user.updated",
        "updated",
        "200",
        "alice@example.org",
        "exchange",
    ))
    .await;
    uh.expect(alice_event(
        "user.password_changed",
        "password_changed",
        "200",
        "alice@example.org",
        "exchange",
    ))
    .await;

    // Cookie login (token 2): 204 and the cookie; the email from the form.
    let reply = login(&base, "cookie", "alice@example.org", NEW_PASSWORD).await;
    assert_eq!(reply.status, 204);
    let token2 = access_token(&alice, 2);
    assert_eq!(
        reply.headers["set-cookie"],
        format!("{COOKIE}={token2}; HttpOnly; Max-Age=3600; Path=/; SameSite=lax; Secure").as_str()
    );
    uh.expect(alice_event(
        "user.login",
        "login",
        "204",
        "alice@example.org",
        "exchange",
    ))
    .await;

    // A restart between login and logout.
    uh.restart().await;
    let base = uh.url();

    // Bearer logout: 204, only the token; its owner from the session index.
    let reply = with_bearer(&base, "POST", "/auth/jwt/logout", &token1, "").await;
    assert_eq!(reply.status, 204);
    uh.expect(alice_event(
        "user.logout",
        "logout",
        "204",
        "alice@example.org",
        "session",
    ))
    .await;
    // The logged-out token is refused: 401, no event.
    let reply = with_bearer(&base, "POST", "/auth/jwt/logout", &token1, "").await;
    assert_eq!(reply.status, 401);

    // Cookie logout: 204 and the cookie expired.
    let cookie = format!("{COOKIE}={token2}");
    let reply = call(
        &base,
        "POST",
        "/auth/cookie/logout",
        &[("cookie", cookie.as_str())],
        "",
    )
    .await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.headers["set-cookie"],
        format!("{COOKIE}=\"\"; HttpOnly; Max-Age=0; Path=/; SameSite=lax; Secure").as_str()
    );
    uh.expect(alice_event(
        "user.logout",
        "logout",
        "204",
        "alice@example.org",
        "session",
    ))
    .await;

    // A password reset with the mailed token: its `sub` is a claim of a token the client
    // presents, signed with the app's secret (no JWKS to verify it against), so by default
    // (`identity.client_tokens: verify`) it names nobody: an unattributed event.
    let reply = call(
        &base,
        "POST",
        "/auth/reset-password",
        &json_h,
        json!({"token": reset_token(&alice), "password": CANARY}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "null");
    uh.expect(
        json!({"event": "user.password_changed", "action": "password_changed",
        "status": "200", "attribution": "none"}),
    )
    .await;

    // The superuser (token 3) disables and deletes her.
    let reply = login(&base, "jwt", "admin@example.com", ADMIN_PW).await;
    assert_eq!(reply.status, 200);
    uh.expect(
        json!({"event": "user.login", "action": "login", "status": "200", "id": admin,
        "name": "admin@example.com", "email": "admin@example.com", "enabled": "true",
        "attribution": "exchange"}),
    )
    .await;
    let token3 = access_token(&admin, 3);
    let alice_path = format!("/users/{alice}");
    let reply = with_bearer(
        &base,
        "PATCH",
        &alice_path,
        &token3,
        r#"{"is_active":false}"#,
    )
    .await;
    assert_eq!(reply.status, 200);
    let mut ev = alice_event(
        "user.updated",
        "updated",
        "200",
        "alice@example.org",
        "exchange",
    );
    ev["enabled"] = json!("false");
    ev["changed"] = json!("Enabled");
    uh.expect(ev).await;
    let reply = with_bearer(&base, "DELETE", &alice_path, &token3, "").await;
    assert_eq!(reply.status, 204);
    let mut ev = alice_event(
        "user.deleted",
        "deleted",
        "204",
        "alice@example.org",
        "exchange",
    );
    ev["enabled"] = json!("false");
    uh.expect(ev).await;
    uh.assert_all_checked();

    let tokens = [token1, token2, token3, reset_token(&alice)];
    let mut canaries = vec![CANARY, NEW_PASSWORD, WRONG, ADMIN_PW];
    canaries.extend(tokens.iter().map(String::as_str));
    uh.assert_no_canary(&canaries);
}

/// With `identity.client_tokens: unverified` the reset token's `sub` names the user, marked
/// `unverified_token`.
#[tokio::test]
async fn fastapi_users_reset_names_the_user_when_unverified_claims_are_allowed() {
    let iam = fastapi_users().await;
    let mut uh = Lifecycle::start(
        &iam.url(),
        "fastapi-users",
        "identity: {client_tokens: unverified}\n",
    )
    .await;
    let base = uh.url();
    let json_h = [("content-type", "application/json")];
    let reply = call(
        &base,
        "POST",
        "/auth/register",
        &json_h,
        json!({"email": "carol@example.com", "password": CANARY}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 201);
    let carol = user_id(1);
    uh.expect(
        json!({"event": "user.created", "action": "created", "status": "201",
        "id": carol, "name": "carol@example.com", "email": "carol@example.com",
        "enabled": "true", "attribution": "exchange"}),
    )
    .await;
    // A token the IAM refuses (400) is no event.
    let reply = call(
        &base,
        "POST",
        "/auth/reset-password",
        &json_h,
        json!({"token": "not-a-token", "password": NEW_PASSWORD}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body, r#"{"detail":"RESET_PASSWORD_BAD_TOKEN"}"#);
    let reply = call(
        &base,
        "POST",
        "/auth/reset-password",
        &json_h,
        json!({"token": reset_token(&carol), "password": NEW_PASSWORD}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    uh.expect(
        json!({"event": "user.password_changed", "action": "password_changed",
        "status": "200", "id": carol, "name": "carol@example.com", "email": "carol@example.com",
        "enabled": "true", "attribution": "unverified_token"}),
    )
    .await;
    uh.assert_all_checked();
    uh.assert_no_canary(&[CANARY, NEW_PASSWORD, &reset_token(&carol)]);
}

/// In the event itself: FastAPI Users' `detail` code is the failed login's `Reason`.
#[tokio::test]
async fn fastapi_users_refusal_code_is_a_detail() {
    use support::iam::{next_event, user};
    use support::{config_for, Userhook};
    let iam = fastapi_users().await;
    let uh = Userhook::start(
        &config_for(&iam.url(), "profiles: [fastapi-users]\n"),
        false,
    )
    .await;
    let mut rx = uh.handle.subscribe();
    let reply = login(&uh.url(), "cookie", "ghost@example.com", WRONG).await;
    assert_eq!(reply.status, 400);
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.event_type, "user.login_failed");
    assert_eq!(ev.details, user(&[("Reason", "LOGIN_BAD_CREDENTIALS")]));
    assert_eq!(
        ev.user,
        user(&[
            ("Email", "ghost@example.com"),
            ("Name", "ghost@example.com")
        ])
    );
    uh.handle.stop().await;
}
