//! The Keycloak profile: admin REST create, update, delete and get, and the token endpoint's
//! logins, failed logins and logouts.

use super::*;

// ------------------------------------------------------------------------------------------
// Keycloak

pub(super) const KC_USER_ID: &str = "8b1c6f62-2c1f-4b8e-9d1a-5f3e2a7c9d10";

fn kc_access_token() -> String {
    token(&json!({
        "exp": 1_900_000_000, "iat": 1_800_000_000, "iss": "http://kc/realms/acme",
        "sub": KC_USER_ID, "typ": "Bearer", "azp": "app", "preferred_username": "jdoe",
        "email": "jdoe@example.com", "given_name": "John", "family_name": "Doe", "name": "John Doe"
    }))
}

fn kc_refresh_token() -> String {
    token(
        &json!({"exp": 1_900_000_000, "sub": KC_USER_ID, "typ": "Refresh", "azp": "app", "sid": "s-1"}),
    )
}

pub(super) fn kc_create() -> Call {
    call("POST", "/admin/realms/acme/users")
        .req_header(
            "authorization",
            &format!("Bearer {}", token(&json!({"sub": "admin-id"}))),
        )
        .json(json!({
            "username": "JDoe", "email": "JDoe@Example.com", "firstName": "John", "lastName": "Doe",
            "enabled": true,
            "credentials": [{"type": "password", "value": CANARY, "temporary": false}]
        }))
        .status(201)
        .resp_header(
            "location",
            &format!("http://kc:8080/admin/realms/acme/users/{KC_USER_ID}"),
        )
        .resp_header("content-length", "0")
}

fn kc_full_user() -> UserFields {
    user(&[
        ("ID", KC_USER_ID),
        ("Name", "jdoe"),
        ("Email", "jdoe@example.com"),
        ("FirstName", "John"),
        ("LastName", "Doe"),
        ("Enabled", "true"),
    ])
}

#[test]
fn keycloak_create_with_empty_body_and_location() {
    let rt = runtime("profiles: [keycloak]");
    let x = Extractor::new(10);
    let ev = run(&x, &rt, kc_create()).expect("event");
    assert_eq!(ev.action, Action::Created);
    assert_eq!(ev.event_type, "user.created");
    assert_eq!(ev.user, kc_full_user());
    assert_eq!(x.cache().get(KC_USER_ID), Some(kc_full_user()));
}

#[test]
fn keycloak_update_and_delete_filled_from_cache() {
    let rt = runtime("profiles: [keycloak]");
    let x = Extractor::new(10);
    run(&x, &rt, kc_create()).expect("created");
    let path = format!("/admin/realms/acme/users/{KC_USER_ID}");
    let ev = run(
        &x,
        &rt,
        call("PUT", &path)
            .json(json!({"firstName": "Johnny"}))
            .status(204),
    )
    .expect("updated");
    assert_eq!(ev.action, Action::Updated);
    let mut want = kc_full_user();
    want.insert("FirstName".into(), "Johnny".into());
    assert_eq!(ev.user, want);

    let ev = run(&x, &rt, call("DELETE", &path).status(204)).expect("deleted");
    assert_eq!(ev.action, Action::Deleted);
    assert_eq!(ev.user, want);
    assert_eq!(
        x.cache().get(KC_USER_ID),
        None,
        "deleted users leave the cache"
    );

    // Unknown user: only the id.
    let ev = run(
        &x,
        &rt,
        call("DELETE", "/admin/realms/acme/users/other").status(204),
    )
    .expect("deleted");
    assert_eq!(ev.user, user(&[("ID", "other")]));
    // A failed delete is no event.
    assert!(run(&x, &rt, call("DELETE", &path).status(404)).is_none());
}

#[test]
fn keycloak_get_feeds_the_cache() {
    let rt = runtime("profiles: [{name: keycloak, base_path: /auth}]");
    let x = Extractor::new(10);
    let path = format!("/auth/admin/realms/acme/users/{KC_USER_ID}");
    let read = call("GET", &path).resp_json(json!({
        "id": KC_USER_ID, "username": "jdoe", "email": "jdoe@example.com", "firstName": "John",
        "lastName": "Doe", "enabled": true, "createdTimestamp": 1_700_000_000_000_u64,
        "credentials": [{"value": CANARY}]
    }));
    assert!(run(&x, &rt, read).is_none(), "a read is no event");
    let ev = run(&x, &rt, call("DELETE", &path).status(204)).expect("deleted");
    assert_eq!(ev.user, kc_full_user());
}

fn kc_token_call(form: &str) -> Call {
    call("POST", "/realms/acme/protocol/openid-connect/token").form(form)
}

#[test]
fn keycloak_password_grant_is_a_login_with_claims() {
    let rt = runtime("profiles: [keycloak]");
    let x = Extractor::new(10);
    let ok = json!({
        "access_token": kc_access_token(), "expires_in": 300, "refresh_expires_in": 1800,
        "refresh_token": kc_refresh_token(), "token_type": "Bearer", "not-before-policy": 0,
        "session_state": "s-1", "scope": "profile email"
    });
    let form = format!(
        "grant_type=password&client_id=app&client_secret=s3cr3t&username=JDoe&password={CANARY}"
    );
    let ev = run(&x, &rt, kc_token_call(&form).resp_json(ok.clone())).expect("login");
    assert_eq!(ev.action, Action::Login);
    assert_eq!(
        ev.user,
        user(&[
            ("ID", KC_USER_ID),
            ("Name", "jdoe"),
            ("Email", "jdoe@example.com"),
            ("FirstName", "John"),
            ("LastName", "Doe"),
        ])
    );
    let text = serde_json::to_string(&ev).expect("json");
    assert!(!text.contains("s3cr3t") && !text.contains(&kc_access_token()));

    // authorization_code: same; the id_token is the fallback when the access token is lightweight.
    let code =
        json!({"access_token": token(&json!({"typ": "Bearer"})), "id_token": kc_access_token()});
    let ev = run(
        &x,
        &rt,
        kc_token_call("grant_type=authorization_code&code=abc&client_id=app").resp_json(code),
    )
    .expect("login");
    assert_eq!(ev.user["ID"], KC_USER_ID);
    assert_eq!(ev.user["Email"], "jdoe@example.com");

    // Refreshes and service accounts are not logins.
    let refresh = format!(
        "grant_type=refresh_token&client_id=app&refresh_token={}",
        kc_refresh_token()
    );
    assert!(run(&x, &rt, kc_token_call(&refresh).resp_json(ok.clone())).is_none());
    assert!(run(
        &x,
        &rt,
        kc_token_call("grant_type=client_credentials&client_id=svc&client_secret=x")
            .resp_json(ok.clone())
    )
    .is_none());
    assert!(run(&x, &rt, kc_token_call("client_id=app").resp_json(ok)).is_none());
}

#[test]
fn keycloak_invalid_grant_is_login_failed_with_username() {
    let rt = runtime("profiles: [keycloak]");
    let x = Extractor::new(10);
    let err = json!({"error": "invalid_grant", "error_description": "Invalid user credentials"});
    let form = format!("grant_type=password&client_id=app&username=JDoe&password={CANARY}");
    let ev = run(
        &x,
        &rt,
        kc_token_call(&form).status(401).resp_json(err.clone()),
    )
    .expect("failed");
    assert_eq!(ev.action, Action::LoginFailed);
    assert_eq!(ev.event_type, "user.login_failed");
    assert_eq!(ev.user, user(&[("Name", "jdoe")]));
    assert_eq!(ev.request.status, 401);
    // A failed refresh is not a failed login.
    let refresh = format!(
        "grant_type=refresh_token&refresh_token={}",
        kc_refresh_token()
    );
    assert!(run(&x, &rt, kc_token_call(&refresh).status(400).resp_json(err)).is_none());
    // Neither is a server error.
    assert!(run(&x, &rt, kc_token_call(&form).status(500)).is_none());
}

fn kc_login() -> Call {
    let ok = json!({
        "access_token": kc_access_token(), "expires_in": 300, "refresh_expires_in": 1800,
        "refresh_token": kc_refresh_token(), "token_type": "Bearer", "not-before-policy": 0,
        "session_state": "s-1", "scope": "profile email"
    });
    kc_token_call(&format!(
        "grant_type=password&client_id=app&client_secret=s3cr3t&username=jdoe&password={CANARY}"
    ))
    .resp_json(ok)
}

#[test]
fn keycloak_logout_names_the_owner_of_a_token_keycloak_issued() {
    let rt = runtime("profiles: [keycloak]");
    let x = Extractor::new(10);
    run(&x, &rt, kc_create()).expect("created");
    let logout = "/realms/acme/protocol/openid-connect/logout";
    let form = format!(
        "client_id=app&client_secret=s3cr3t&refresh_token={}",
        kc_refresh_token()
    );
    // Before any login: the refresh token is only the client's word (its signature is not
    // checked here), so the confirmed logout names nobody.
    let ev = run(&x, &rt, call("POST", logout).form(&form).status(204)).expect("logout");
    assert_eq!(ev.action, Action::Logout);
    assert_eq!(ev.attribution, Attribution::None);
    assert_eq!(ev.user, UserFields::new());

    let login = run(&x, &rt, kc_login()).expect("login");
    assert_eq!(login.attribution, Attribution::Exchange);
    let ev = run(&x, &rt, call("POST", logout).form(&form).status(204)).expect("logout");
    assert_eq!(ev.attribution, Attribution::Session);
    assert_eq!(
        ev.user,
        kc_full_user(),
        "the owner of the refresh token Keycloak issued, the rest from the cache"
    );
    let json = serde_json::to_string(&ev).expect("json");
    assert!(!json.contains(&kc_refresh_token()));
    assert!(json.contains(r#""attribution":"session""#), "{json}");
    // The logout ended the refresh token: presenting it again names nobody.
    let again = run(&x, &rt, call("POST", logout).form(&form).status(204)).expect("logout");
    assert_eq!(again.attribution, Attribution::None);

    run(&x, &rt, kc_login()).expect("login");
    let ev = run(
        &x,
        &rt,
        call("POST", logout)
            .req_header("authorization", &format!("Bearer {}", kc_access_token()))
            .status(204),
    )
    .expect("logout");
    assert_eq!(ev.user, kc_full_user());
    assert_eq!(ev.attribution, Attribution::Session);

    run(&x, &rt, kc_login()).expect("login");
    let hint = format!(
        "{logout}?id_token_hint={}&post_logout_redirect_uri=https%3A%2F%2Fapp",
        kc_access_token()
    );
    let ev = run(&x, &rt, call("GET", &hint).status(302)).expect("browser logout");
    assert_eq!(ev.user["ID"], KC_USER_ID);

    // The confirmation page (200) means nobody was logged out yet: no event, token or not.
    assert!(run(&x, &rt, call("GET", logout).status(200)).is_none());
    assert!(run(&x, &rt, call("GET", &hint).status(200)).is_none());
    assert!(run(&x, &rt, call("POST", logout).form(&form).status(200)).is_none());
}

#[test]
fn keycloak_logout_trusts_token_claims_only_when_the_operator_says_so() {
    let forged = token(&json!({"sub": KC_USER_ID, "preferred_username": "jdoe"}));
    let logout = || {
        call("POST", "/realms/acme/protocol/openid-connect/logout")
            .req_header("authorization", &format!("Bearer {forged}"))
            .status(204)
    };
    let rt = runtime("profiles: [keycloak]");
    let x = Extractor::new(10);
    run(&x, &rt, kc_create()).expect("created");
    let ev = run(&x, &rt, logout()).expect("logout");
    assert_eq!((ev.attribution, ev.user.len()), (Attribution::None, 0));

    let rt = runtime("profiles: [keycloak]\nidentity: {client_tokens: unverified}");
    let ev = run(&x, &rt, logout()).expect("logout");
    assert_eq!(ev.attribution, Attribution::UnverifiedToken);
    assert_eq!(ev.user, kc_full_user());

    let rt = runtime("profiles: [keycloak]\nidentity: {client_tokens: ignore}");
    let ev = run(&x, &rt, logout()).expect("logout");
    assert_eq!((ev.attribution, ev.user.len()), (Attribution::None, 0));
}

#[test]
fn the_actor_is_the_callers_token_or_basic_user_never_its_password() {
    let rt = runtime("profiles: [keycloak]\nidentity: {client_tokens: unverified}");
    let x = Extractor::new(10);
    let admin = token(&json!({"sub": "svc-9", "azp": "sync-service", "client_id": "sync-service"}));
    let path = format!("/admin/realms/acme/users/{KC_USER_ID}");
    let ev = run(
        &x,
        &rt,
        call("PUT", &path)
            .req_header("authorization", &format!("Bearer {admin}"))
            .req_header("user-agent", "sync/2.1")
            .json(json!({"firstName": "Johnny"}))
            .status(204),
    )
    .expect("updated");
    assert_eq!(
        ev.actor,
        Actor {
            sub: "svc-9".into(),
            azp: "sync-service".into(),
            client_id: "sync-service".into(),
            basic_user: String::new(),
            // Decoded, not verified: no key set vouched for it and the IAM did not issue it here.
            verified: Some(false),
        }
    );
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("ops-admin:{CANARY}"),
    );
    let ev = run(
        &x,
        &rt,
        call("PUT", &path)
            .req_header("authorization", &format!("Basic {basic}"))
            .json(json!({"firstName": "Jo"}))
            .status(204),
    )
    .expect("updated");
    assert_eq!(ev.actor.basic_user, "ops-admin");
    assert_eq!(ev.actor.verified, None);
    // Under `verify` (the default), the claims of a token nothing vouches for are left out:
    // a forged token names no actor. Only the mark says a token was presented.
    let strict = runtime("profiles: [keycloak]");
    let ev = run(
        &x,
        &strict,
        call("PUT", &path)
            .req_header("authorization", &format!("Bearer {admin}"))
            .json(json!({"firstName": "Jon"}))
            .status(204),
    )
    .expect("updated");
    assert_eq!(
        ev.actor,
        Actor {
            verified: Some(false),
            ..Actor::default()
        }
    );
    let ev = run(&x, &rt, call("DELETE", &path).status(204)).expect("deleted");
    assert!(ev.actor.is_empty());
    let text = serde_json::to_string(&ev).expect("json");
    assert!(
        !text.contains("\"actor\""),
        "an empty actor is left out: {text}"
    );
}
