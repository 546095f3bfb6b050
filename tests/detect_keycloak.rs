//! The `keycloak` profile in front of a fake Keycloak that answers like the real one: admin
//! create is 201 with an empty body and the id only in `Location`, update and delete are 204,
//! the token endpoint issues JWTs (or 401 `invalid_grant`), logout is 204.

mod support;

use serde_json::json;
use support::iam::*;
use support::*;
use userhook::event::Attribution;

const USERS: &str = "/admin/realms/acme/users";
const TOKEN: &str = "/realms/acme/protocol/openid-connect/token";
const LOGOUT: &str = "/realms/acme/protocol/openid-connect/logout";
const ALICE: &str = "8d4a3c1e-5b6f-4e2a-9c7d-1f0e2d3c4b5a";
const BOB: &str = "0b9e6c1d-7a2f-4d3e-8b1c-2e3f4a5b6c7d";
const SERVICE: &str = "c0ffee00-1111-4222-8333-444455556666";

/// Keycloak's security headers, sent on every answer.
fn kc(status: u16) -> Canned {
    Canned::status(status)
        .header("referrer-policy", "no-referrer")
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "SAMEORIGIN")
}

fn created() -> Canned {
    kc(201).header("location", &format!("http://kc{USERS}/{ALICE}"))
}

fn bob_representation() -> Canned {
    kc(200).json(
        "application/json",
        &json!({
            "id": BOB, "createdTimestamp": 1_732_938_000_000u64, "username": "bob",
            "enabled": true, "totp": false, "emailVerified": true, "firstName": "Bob",
            "lastName": "Builder", "email": "bob@example.com",
            "disableableCredentialTypes": [], "requiredActions": [], "notBefore": 0,
            "access": {"manageGroupMembership": true, "view": true, "mapRoles": true,
                       "impersonate": false, "manage": true}
        }),
    )
}

fn access_token(sub: &str, username: &str, user: Option<(&str, &str, &str)>) -> String {
    let mut claims = json!({
        "exp": 1_732_938_300, "iat": 1_732_938_000, "jti": "onrtac:5c2d3e4f",
        "iss": "http://kc/realms/acme", "aud": "account", "sub": sub, "typ": "Bearer",
        "azp": "app", "sid": "7e1f2a3b-0000-4000-8000-000000000001", "acr": "1",
        "allowed-origins": ["http://localhost:3000"],
        "realm_access": {"roles": ["offline_access", "uma_authorization", "default-roles-acme"]},
        "scope": "openid email profile", "preferred_username": username,
    });
    if let Some((email, given, family)) = user {
        claims["email_verified"] = json!(true);
        claims["name"] = json!(format!("{given} {family}"));
        claims["given_name"] = json!(given);
        claims["family_name"] = json!(family);
        claims["email"] = json!(email);
    }
    jwt(&claims)
}

/// Keycloak refresh tokens carry little more than `sub`.
fn refresh_token(sub: &str) -> String {
    jwt(&json!({
        "exp": 1_732_939_800, "iat": 1_732_938_000, "jti": "6f1b2c3d-aaaa-4bbb-8ccc-ddddeeeeffff",
        "iss": "http://kc/realms/acme", "aud": "http://kc/realms/acme", "sub": sub,
        "typ": "Refresh", "azp": "app", "sid": "7e1f2a3b-0000-4000-8000-000000000001",
        "scope": "openid email profile"
    }))
}

fn alice_tokens() -> Canned {
    kc(200)
        .header("cache-control", "no-store")
        .header("pragma", "no-cache")
        .json(
            "application/json",
            &json!({
                "access_token": access_token(ALICE, "alice", Some(("alice@example.com", "Alice", "Liddell"))),
                "expires_in": 300, "refresh_expires_in": 1800,
                "refresh_token": refresh_token(ALICE), "token_type": "Bearer",
                "not-before-policy": 0, "session_state": "7e1f2a3b-0000-4000-8000-000000000001",
                "scope": "openid email profile"
            }),
        )
}

fn service_token() -> Canned {
    kc(200)
        .header("cache-control", "no-store")
        .header("pragma", "no-cache")
        .json(
            "application/json",
            &json!({
                "access_token": access_token(SERVICE, "service-account-app", None),
                "expires_in": 300, "refresh_expires_in": 0, "token_type": "Bearer",
                "not-before-policy": 0, "scope": "email profile"
            }),
        )
}

fn invalid_grant() -> Canned {
    kc(401)
        .header("cache-control", "no-store")
        .header("pragma", "no-cache")
        .json(
            "application/json",
            &json!({"error": "invalid_grant", "error_description": "Invalid user credentials"}),
        )
}

/// A fake Keycloak 26.
async fn keycloak() -> FakeUpstream {
    fake_iam(|r| {
        let path = path_of(r);
        let form = body_text(r);
        match (r.method.as_str(), path) {
            ("POST", USERS) => created(),
            ("GET", p) if p == format!("{USERS}/{BOB}") => bob_representation(),
            ("PUT" | "DELETE", p) if p.starts_with(USERS) => kc(204),
            ("POST", TOKEN) if form.contains("grant_type=password") => {
                if form.contains(&format!("password={CANARY}")) {
                    alice_tokens()
                } else {
                    invalid_grant()
                }
            }
            ("POST", TOKEN) if form.contains("grant_type=refresh_token") => alice_tokens(),
            ("POST", TOKEN) if form.contains("grant_type=client_credentials") => service_token(),
            ("POST", LOGOUT) => kc(204),
            _ => kc(404).json("application/json", &json!({"error": "HTTP 404 Not Found"})),
        }
    })
    .await
}

#[tokio::test]
async fn admin_create_update_delete() {
    let up = keycloak().await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [keycloak]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    let admin = format!("Bearer {}", access_token("admin-id", "admin", None));
    let auth: &[(&str, &str)] = &[
        ("content-type", "application/json"),
        ("authorization", &admin),
    ];

    // Create: 201, empty body, the id only in Location; fields from the request.
    let create = json!({
        "username": "Alice", "email": "Alice@Example.com", "firstName": "Alice",
        "lastName": "Liddell", "enabled": true, "emailVerified": false,
        "attributes": {"department": ["R&D"]},
        "credentials": [{"type": "password", "value": CANARY, "temporary": false}]
    })
    .to_string();
    let reply = call(&uh.url(), "POST", USERS, auth, create.clone()).await;
    reply.assert_is(&created());
    assert!(reply.body.is_empty());
    assert_eq!(last_seen(&up, "POST", USERS).body, create.as_bytes());
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", USERS, 201),
        &[
            ("ID", ALICE),
            ("Name", "alice"),
            ("Email", "alice@example.com"),
            ("FirstName", "Alice"),
            ("LastName", "Liddell"),
            ("Enabled", "true"),
        ],
        false,
    );

    // Update: 204; what the request says, the rest from the cache.
    let alice_path = format!("{USERS}/{ALICE}");
    let update = r#"{"firstName":"Alicia","email":"alicia@example.com","enabled":false}"#;
    let reply = call(&uh.url(), "PUT", &alice_path, auth, update).await;
    reply.assert_is(&kc(204));
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.updated",
        ("PUT", &alice_path, 204),
        &[
            ("ID", ALICE),
            ("Name", "alice"),
            ("Email", "alicia@example.com"),
            ("FirstName", "Alicia"),
            ("LastName", "Liddell"),
            ("Enabled", "false"),
        ],
        false,
    );

    // A password reset is not a user update (and its body holds a credential): no event; the
    // next event seen is the delete after it.
    let reset = format!("{alice_path}/reset-password");
    let body = format!(r#"{{"type":"password","value":"{CANARY}","temporary":false}}"#);
    call(&uh.url(), "PUT", &reset, auth, body)
        .await
        .assert_is(&kc(204));

    // Delete: 204 and no body; every field but the id comes from the cache.
    let reply = call(&uh.url(), "DELETE", &alice_path, auth, "").await;
    reply.assert_is(&kc(204));
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.deleted",
        ("DELETE", &alice_path, 204),
        &[
            ("ID", ALICE),
            ("Name", "alice"),
            ("Email", "alicia@example.com"),
            ("FirstName", "Alicia"),
            ("LastName", "Liddell"),
            ("Enabled", "false"),
        ],
        false,
    );

    // A user read is no event but names the user of a later delete.
    let bob_path = format!("{USERS}/{BOB}");
    let reply = call(&uh.url(), "GET", &bob_path, auth, "").await;
    reply.assert_is(&bob_representation());
    let reply = call(&uh.url(), "DELETE", &bob_path, auth, "").await;
    reply.assert_is(&kc(204));
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.deleted",
        ("DELETE", &bob_path, 204),
        &[
            ("ID", BOB),
            ("Name", "bob"),
            ("Email", "bob@example.com"),
            ("FirstName", "Bob"),
            ("LastName", "Builder"),
            ("Enabled", "true"),
        ],
        false,
    );

    // Alice was forgotten with her delete: deleting her again names only the id.
    let reply = call(&uh.url(), "DELETE", &alice_path, auth, "").await;
    reply.assert_is(&kc(204));
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.deleted",
        ("DELETE", &alice_path, 204),
        &[("ID", ALICE)],
        false,
    );
    uh.handle.stop().await;
}

#[tokio::test]
async fn token_endpoint_login_refresh_failure_and_logout() {
    let up = keycloak().await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [keycloak]\n"), false).await;
    let mut rx = uh.handle.subscribe();

    // Password grant: a login, the user from the issued access token's claims.
    let login = format!("grant_type=password&username=alice&password={CANARY}&client_id=app");
    let reply = call(&uh.url(), "POST", TOKEN, FORM, login.clone()).await;
    reply.assert_is(&alice_tokens());
    assert_eq!(last_seen(&up, "POST", TOKEN).body, login.as_bytes());
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.login",
        ("POST", TOKEN, 200),
        &[
            ("ID", ALICE),
            ("Name", "alice"),
            ("Email", "alice@example.com"),
            ("FirstName", "Alice"),
            ("LastName", "Liddell"),
        ],
        false,
    );

    // A token refresh and a client_credentials grant are no logins: the next event seen is
    // the failed login sent after them.
    let refresh = format!(
        "grant_type=refresh_token&refresh_token={}&client_id=app",
        refresh_token(ALICE)
    );
    call(&uh.url(), "POST", TOKEN, FORM, refresh)
        .await
        .assert_is(&alice_tokens());
    call(
        &uh.url(),
        "POST",
        TOKEN,
        FORM,
        "grant_type=client_credentials&client_id=app&client_secret=s3cr3t",
    )
    .await
    .assert_is(&service_token());
    let bad = "grant_type=password&username=Alice&password=wrong-guess&client_id=app";
    let reply = call(&uh.url(), "POST", TOKEN, FORM, bad).await;
    reply.assert_is(&invalid_grant());
    let ev = next_event(&mut rx).await;
    // The attempted name is known from the login: the failed login carries alice's ID.
    assert_event(
        &ev,
        "user.login_failed",
        ("POST", TOKEN, 401),
        &[
            ("ID", ALICE),
            ("Name", "alice"),
            ("Email", "alice@example.com"),
            ("FirstName", "Alice"),
            ("LastName", "Liddell"),
        ],
        false,
    );
    assert_eq!(ev.attribution, Attribution::Exchange);

    // Logout with the refresh token Keycloak issued at login: its owner, the cache fills the rest.
    let logout = format!("client_id=app&refresh_token={}", refresh_token(ALICE));
    let reply = call(&uh.url(), "POST", LOGOUT, FORM, logout).await;
    reply.assert_is(&kc(204));
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.logout",
        ("POST", LOGOUT, 204),
        &[
            ("ID", ALICE),
            ("Name", "alice"),
            ("Email", "alice@example.com"),
            ("FirstName", "Alice"),
            ("LastName", "Liddell"),
        ],
        false,
    );
    assert_eq!(ev.attribution, Attribution::Session);

    // A token Keycloak was never seen issuing, whose signature cannot be checked (this fake
    // publishes no keys): the client's word alone names nobody, but the logout is an event.
    let logout = format!("client_id=app&refresh_token={}", refresh_token(BOB));
    call(&uh.url(), "POST", LOGOUT, FORM, logout)
        .await
        .assert_is(&kc(204));
    let ev = next_event(&mut rx).await;
    assert_event(&ev, "user.logout", ("POST", LOGOUT, 204), &[], false);
    assert_eq!(ev.attribution, Attribution::None);

    // The same with a bearer token instead of a form field.
    let bearer = format!(
        "Bearer {}",
        access_token(BOB, "bob", Some(("bob@example.com", "Bob", "Builder")))
    );
    call(
        &uh.url(),
        "POST",
        LOGOUT,
        &[("authorization", bearer.as_str())],
        "",
    )
    .await
    .assert_is(&kc(204));
    let ev = next_event(&mut rx).await;
    assert_event(&ev, "user.logout", ("POST", LOGOUT, 204), &[], false);
    assert_eq!(ev.attribution, Attribution::None);
    uh.handle.stop().await;
}

/// Keycloak before 17 (`/auth`), a 409 on a duplicate create, an `authorization_code` login
/// answered with an id_token, and a percent-encoded username in a failed login.
#[tokio::test]
async fn legacy_base_path_conflict_code_grant_and_encoded_username() {
    let conflict = || {
        kc(409).json(
            "application/json",
            &json!({"errorMessage": "User exists with same username"}),
        )
    };
    let code_tokens = || {
        kc(200).header("cache-control", "no-store").json(
            "application/json",
            &json!({
                "access_token": access_token(BOB, "bob", None),
                "id_token": jwt(&json!({"sub": BOB, "typ": "ID", "preferred_username": "bob",
                                       "email": "bob@example.com", "given_name": "Bob",
                                       "family_name": "Builder"})),
                "refresh_token": refresh_token(BOB), "token_type": "Bearer", "expires_in": 300
            }),
        )
    };
    let up = fake_iam(move |r| match path_of(r) {
        "/auth/admin/realms/acme/users" if body_text(r).contains("taken") => conflict(),
        "/auth/admin/realms/acme/users" => kc(201).header(
            "location",
            "http://kc/auth/admin/realms/acme/users/legacy-1",
        ),
        p if p.ends_with("/token") && body_text(r).contains("authorization_code") => code_tokens(),
        _ => invalid_grant(),
    })
    .await;
    let uh = Userhook::start(
        &config_for(
            &up.url(),
            "profiles: [{name: keycloak, base_path: /auth}]\n",
        ),
        false,
    )
    .await;
    let mut rx = uh.handle.subscribe();
    let users = "/auth/admin/realms/acme/users";
    let token = "/auth/realms/acme/protocol/openid-connect/token";

    call(&uh.url(), "POST", users, JSON, r#"{"username":"taken"}"#)
        .await
        .assert_is(&conflict());
    call(&uh.url(), "POST", users, JSON, r#"{"username":"Legacy"}"#)
        .await
        .assert_is(&kc(201).header(
            "location",
            "http://kc/auth/admin/realms/acme/users/legacy-1",
        ));
    let first = next_event(&mut rx).await;
    assert_event(
        &first,
        "user.created",
        ("POST", users, 201),
        &[("ID", "legacy-1"), ("Name", "legacy")],
        false,
    );

    // This access token has no email or names: each field takes the first token that has it,
    // so the id_token supplies them.
    let code = "grant_type=authorization_code&code=5f1e2d3c.4b5a&redirect_uri=http%3A%2F%2Flocalhost%3A3000%2Fcb&client_id=app";
    call(&uh.url(), "POST", token, FORM, code)
        .await
        .assert_is(&code_tokens());
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.login",
        ("POST", token, 200),
        &[
            ("ID", BOB),
            ("Name", "bob"),
            ("Email", "bob@example.com"),
            ("FirstName", "Bob"),
            ("LastName", "Builder"),
        ],
        false,
    );
    assert_eq!(ev.seq, first.seq + 1, "seq grows by one per event");

    let bad = "grant_type=password&username=Carol%40Example.COM&password=nope&client_id=app";
    call(&uh.url(), "POST", token, FORM, bad)
        .await
        .assert_is(&invalid_grant());
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.login_failed",
        ("POST", token, 401),
        &[("Name", "carol@example.com")],
        false,
    );
    uh.handle.stop().await;
}
