//! The `dce` profile in front of a fake DCE 5.0 ghippo API, and the `generic` profile beside
//! an operator's own `routes:` rule (`when:`, custom fields, a fallback list, a brotli answer).

mod support;

use serde_json::{json, Value};
use support::iam::*;
use support::*;

const BASE: &str = "/apis/ghippo.io/v1alpha1";
const BOB: &str = "5d1c7a3e-2f4b-4c6d-8e9f-0a1b2c3d4e5f";

fn dce_user() -> Value {
    json!({
        "id": BOB, "name": "bob", "email": "bob@example.com", "description": "platform team",
        "firstname": "Bob", "lastname": "Builder", "source": "", "enabled": true,
        "createdAt": "2024-11-30T03:36:46Z", "updatedAt": "2024-11-30T03:36:46Z",
        "lastLoginAt": "", "canDelete": true, "phone": ""
    })
}

/// grpc-gateway's answers: 200 with JSON, empty messages as `{}`.
fn dce(v: &Value) -> Canned {
    Canned::status(200)
        .header("grpc-metadata-content-type", "application/grpc")
        .json("application/json", v)
}

/// The ID token ghippo's login issues to bob.
fn bob_id_token() -> String {
    jwt(&json!({
        "exp": 1_732_938_300, "iat": 1_732_938_000, "iss": "https://dce.example.com/auth/realms/ghippo",
        "sub": BOB, "typ": "ID", "azp": "ghippo", "preferred_username": "bob",
        "email": "robert@example.com", "email_verified": true
    }))
}

async fn ghippo() -> FakeUpstream {
    fake_iam(|r| {
        let users = format!("{BASE}/users");
        let one = format!("{users}/{BOB}");
        match (r.method.as_str(), path_of(r)) {
            ("POST", p) if p == users => dce(&dce_user()),
            ("PUT" | "DELETE", p) if p == one => dce(&json!({})),
            ("DELETE", p) if p == format!("{BASE}/logout") => dce(&json!({})),
            ("POST", p) if p == format!("{BASE}/login") => dce(&json!({
                "idToken": bob_id_token(), "refreshToken": "opaque-refresh", "username": "bob"
            })),
            _ => Canned::status(404).json(
                "application/json",
                &json!({"code": 5, "message": "Not Found", "details": []}),
            ),
        }
    })
    .await
}

#[tokio::test]
async fn dce_create_update_logout_delete() {
    let up = ghippo().await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [dce]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    let users = format!("{BASE}/users");
    let one = format!("{users}/{BOB}");

    let create = json!({
        "name": "bob", "password": CANARY, "email": "bob@example.com",
        "firstname": "Bob", "lastname": "Builder", "description": "platform team"
    })
    .to_string();
    let reply = call(&uh.url(), "POST", &users, JSON, create.clone()).await;
    reply.assert_is(&dce(&dce_user()));
    assert_eq!(last_seen(&up, "POST", &users).body, create.as_bytes());
    let ev = next_event(&mut rx).await;
    let created = [
        ("ID", BOB),
        ("Name", "bob"),
        ("Email", "bob@example.com"),
        ("FirstName", "Bob"),
        ("LastName", "Builder"),
        ("Enabled", "true"),
        ("CreatedAt", "2024-11-30T03:36:46Z"),
    ];
    assert_event(&ev, "user.created", ("POST", &users, 200), &created, false);

    // The update answers `{}`: fields from the request, the rest from the cache.
    let update = r#"{"email":"robert@example.com","firstname":"Robert","lastname":"Builder","description":""}"#;
    let reply = call(&uh.url(), "PUT", &one, JSON, update).await;
    reply.assert_is(&dce(&json!({})));
    let ev = next_event(&mut rx).await;
    let updated = [
        ("ID", BOB),
        ("Name", "bob"),
        ("Email", "robert@example.com"),
        ("FirstName", "Robert"),
        ("LastName", "Builder"),
        ("Enabled", "true"),
        ("CreatedAt", "2024-11-30T03:36:46Z"),
    ];
    assert_event(&ev, "user.updated", ("PUT", &one, 200), &updated, false);

    // Login issues the ID token; the logout that carries only it is about its owner.
    let login = format!("{BASE}/login");
    let body = format!(r#"{{"username":"bob","password":"{CANARY}"}}"#);
    call(&uh.url(), "POST", &login, JSON, body).await;
    let ev = next_event(&mut rx).await;
    assert_event(&ev, "user.login", ("POST", &login, 200), &updated, false);
    let token = bob_id_token();
    let logout = format!("{BASE}/logout");
    let bearer = format!("Bearer {token}");
    let reply = call(
        &uh.url(),
        "DELETE",
        &logout,
        &[("authorization", &bearer)],
        "",
    )
    .await;
    reply.assert_is(&dce(&json!({})));
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.logout",
        ("DELETE", &logout, 200),
        &updated,
        false,
    );
    assert_eq!(ev.attribution, userhook::event::Attribution::Session);

    let reply = call(&uh.url(), "DELETE", &one, &[("authorization", &bearer)], "").await;
    reply.assert_is(&dce(&json!({})));
    let ev = next_event(&mut rx).await;
    assert_event(&ev, "user.deleted", ("DELETE", &one, 200), &updated, false);
    uh.handle.stop().await;
}

const ROUTES: &str = r#"
profiles: [generic]
routes:
  - action: created
    method: POST
    path: /api/v2/accounts
    status: [201]
    when: {request.body.kind: [person, employee]}
    fields:
      ID: [response.body.id, response.header.location | last_segment]
      Email: request.body.email
      Name: request.body.username
      Department: request.body.attributes.department.0
"#;

#[tokio::test]
async fn custom_route_with_when_fallbacks_and_brotli() {
    let plain = br#"{"id":"acc-2","status":"active"}"#;
    let brotli_answer = Canned::status(201)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .header("location", "/api/v2/accounts/not-this-one")
        .body(brotli(plain));
    let location_answer = Canned::status(201).header("location", "/api/v2/accounts/acc-1/");
    let ok_answer = Canned::status(200).json("application/json", &json!({"id": "acc-3"}));
    let users_answer = Canned::status(201).json(
        "application/json",
        &json!({"id": "u-7", "username": "dave", "email": "dave@example.com",
                "first_name": "Dave", "last_name": "Lister", "enabled": true,
                "created_at": "2026-11-30T03:36:46.123Z"}),
    );
    let (b, l, o, u) = (
        brotli_answer.clone(),
        location_answer.clone(),
        ok_answer.clone(),
        users_answer.clone(),
    );
    let up = fake_iam(move |r| {
        let text = body_text(r);
        match path_of(r) {
            "/users" => u.clone(),
            _ if text.contains("carol") => b.clone(),
            _ if text.contains("\"status200\"") => o.clone(),
            _ => l.clone(),
        }
    })
    .await;
    let uh = Userhook::start(&config_for(&up.url(), ROUTES), false).await;
    let mut rx = uh.handle.subscribe();
    let path = "/api/v2/accounts";

    // No id in a body: the fallback takes the last segment of Location.
    let alice = json!({"kind": "person", "username": "alice", "email": "alice@example.com",
                       "password": CANARY, "attributes": {"department": ["R&D", "Ops"]}});
    let reply = call(&uh.url(), "POST", path, JSON, alice.to_string()).await;
    reply.assert_is(&location_answer);
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", path, 201),
        &[
            ("ID", "acc-1"),
            ("Name", "alice"),
            ("Email", "alice@example.com"),
            ("Department", "R&D"),
        ],
        false,
    );

    // The `when` condition fails (a robot account), then the status is not the listed 201:
    // neither is an event; the next one seen is the brotli create after them.
    let robot = json!({"kind": "robot", "username": "ci-bot"});
    call(&uh.url(), "POST", path, JSON, robot.to_string())
        .await
        .assert_is(&location_answer);
    let status200 = json!({"kind": "employee", "username": "status200"});
    call(&uh.url(), "POST", path, JSON, status200.to_string())
        .await
        .assert_is(&ok_answer);

    // A brotli body: decoded for extraction (its id wins over Location), untouched for the client.
    let carol = json!({"kind": "employee", "username": "carol", "email": "carol@example.com",
                       "attributes": {"department": ["Finance"]}});
    let reply = call(
        &uh.url(),
        "POST",
        path,
        &[
            ("content-type", "application/json"),
            ("accept-encoding", "br"),
        ],
        carol.to_string(),
    )
    .await;
    reply.assert_is(&brotli_answer);
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", path, 201),
        &[
            ("ID", "acc-2"),
            ("Name", "carol"),
            ("Email", "carol@example.com"),
            ("Department", "Finance"),
        ],
        false,
    );

    // The generic profile, beside the operator's rule.
    let dave = json!({"username": "dave", "email": "dave@example.com", "password": CANARY});
    let reply = call(&uh.url(), "POST", "/users", JSON, dave.to_string()).await;
    reply.assert_is(&users_answer);
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", "/users", 201),
        &[
            ("ID", "u-7"),
            ("Name", "dave"),
            ("Email", "dave@example.com"),
            ("FirstName", "Dave"),
            ("LastName", "Lister"),
            ("Enabled", "true"),
            ("CreatedAt", "2026-11-30T03:36:46.123Z"),
        ],
        false,
    );
    uh.handle.stop().await;
}
