//! The SCIM, DCE 5.0 and generic profiles, and what an operator's own rules may extract.

use super::keycloak::{kc_create, KC_USER_ID};
use super::*;

// ------------------------------------------------------------------------------------------
// SCIM

fn scim_resource(active: bool) -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
        "emails": [
            {"value": "bjensen@home.example.com", "type": "home"},
            {"value": "bjensen@example.com", "type": "work", "primary": true}
        ],
        "active": active,
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff590\"",
            "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
        }
    })
}

fn scim_user(active: &str) -> UserFields {
    user(&[
        ("ID", "2819c223-7f76-453a-919d-413861904646"),
        ("Name", "bjensen@example.com"),
        ("Email", "bjensen@example.com"),
        ("FirstName", "Barbara"),
        ("LastName", "Jensen"),
        ("Enabled", active),
        ("CreatedAt", "2010-01-23T04:56:22Z"),
    ])
}

#[test]
fn scim_create_patch_delete() {
    let rt = runtime("profiles: [scim]");
    let x = Extractor::new(10);
    let create = call("POST", "/scim/v2/Users")
        .req_header("content-type", "application/scim+json")
        .body(
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bjensen@example.com", "password": CANARY,
                "name": {"familyName": "Jensen", "givenName": "Barbara"}
            })
            .to_string(),
        )
        .status(201)
        .resp_header("content-type", "application/scim+json")
        .resp_header(
            "location",
            "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
        )
        .resp_json(scim_resource(true));
    let ev = run(&x, &rt, create).expect("created");
    assert_eq!(ev.action, Action::Created);
    assert_eq!(ev.user, scim_user("true"));

    let id_path = "/scim/v2/Users/2819c223-7f76-453a-919d-413861904646";
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]
    });
    let ev = run(
        &x,
        &rt,
        call("PATCH", id_path)
            .json(patch.clone())
            .resp_json(scim_resource(false)),
    )
    .expect("patched");
    assert_eq!(ev.action, Action::Updated);
    assert_eq!(ev.user, scim_user("false"));

    // 204 without a resource: id from the path, the op's value and the cache fill the rest.
    let ev = run(&x, &rt, call("PATCH", id_path).json(patch).status(204)).expect("patched");
    assert_eq!(ev.user, scim_user("false"));

    let ev = run(&x, &rt, call("DELETE", id_path).status(204)).expect("deleted");
    assert_eq!(ev.action, Action::Deleted);
    assert_eq!(ev.user, scim_user("false"));

    let ev = run(
        &x,
        &rt,
        call("PUT", id_path)
            .json(scim_resource(true))
            .resp_json(scim_resource(true)),
    )
    .expect("put");
    assert_eq!(ev.user, scim_user("true"));
}

// ------------------------------------------------------------------------------------------
// DCE 5.0 (ghippo)

#[test]
fn dce_users_login_logout() {
    let rt = runtime("profiles: [dce]");
    let x = Extractor::new(10);
    let base = "/apis/ghippo.io/v1alpha1";
    let dce_user = json!({
        "id": "d1f6a3b0-1111-4c2e-8e0a-0123456789ab", "name": "zhangsan", "email": "zs@daocloud.io",
        "firstname": "San", "lastname": "Zhang", "enabled": true, "createdAt": "2024-05-01T08:00:00Z",
        "source": "ghippo"
    });
    let want = user(&[
        ("ID", "d1f6a3b0-1111-4c2e-8e0a-0123456789ab"),
        ("Name", "zhangsan"),
        ("Email", "zs@daocloud.io"),
        ("FirstName", "San"),
        ("LastName", "Zhang"),
        ("Enabled", "true"),
        ("CreatedAt", "2024-05-01T08:00:00Z"),
    ]);
    let ev = run(
        &x,
        &rt,
        call("POST", &format!("{base}/users"))
            .json(json!({"name": "zhangsan", "email": "zs@daocloud.io", "password": CANARY}))
            .resp_json(dce_user.clone()),
    )
    .expect("created");
    assert_eq!(ev.user, want);

    let user_path = format!("{base}/users/d1f6a3b0-1111-4c2e-8e0a-0123456789ab");
    let ev = run(
        &x,
        &rt,
        call("PUT", &user_path)
            .json(json!({"email": "zs@daocloud.io"}))
            .resp_json(dce_user),
    )
    .expect("updated");
    assert_eq!(ev.user, want);

    let id_token = token(
        &json!({"sub": "d1f6a3b0-1111-4c2e-8e0a-0123456789ab", "preferred_username": "zhangsan"}),
    );
    let ev = run(
        &x,
        &rt,
        call("POST", &format!("{base}/login"))
            .json(json!({"username": "zhangsan", "password": CANARY}))
            .resp_json(json!({"idToken": id_token, "refreshToken": "r", "username": "zhangsan"})),
    )
    .expect("login");
    assert_eq!(ev.action, Action::Login);
    assert_eq!(ev.user["ID"], "d1f6a3b0-1111-4c2e-8e0a-0123456789ab");
    assert_eq!(ev.user["Name"], "zhangsan");

    let ev = run(
        &x,
        &rt,
        call("POST", &format!("{base}/login"))
            .json(json!({"username": "zhangsan", "password": CANARY}))
            .status(401)
            .resp_json(json!({"code": 16, "message": "unauthenticated"})),
    )
    .expect("failed");
    assert_eq!(ev.action, Action::LoginFailed);
    assert_eq!(ev.user["Name"], "zhangsan");
    assert_eq!(
        ev.user["ID"], "d1f6a3b0-1111-4c2e-8e0a-0123456789ab",
        "the name known from earlier finds the ID"
    );
    assert!(!x.cache().is_empty());

    let ev = run(
        &x,
        &rt,
        call("DELETE", &format!("{base}/logout"))
            .req_header("authorization", &format!("Bearer {id_token}")),
    )
    .expect("logout");
    assert_eq!(ev.action, Action::Logout);
    assert_eq!(ev.user, want);

    let ev = run(&x, &rt, call("DELETE", &user_path)).expect("deleted");
    assert_eq!(ev.user, want);
}

// ------------------------------------------------------------------------------------------
// generic, credentials

#[test]
fn generic_profile() {
    let rt = runtime("profiles: [generic]");
    let x = Extractor::new(10);
    let ev = run(
        &x,
        &rt,
        call("POST", "/users")
            .json(json!({"username": "ann", "email": "ann@x", "firstName": "Ann", "password": CANARY}))
            .status(201)
            .resp_json(json!({"id": 5, "created_at": "2026-01-01T00:00:00Z", "enabled": true})),
    )
    .expect("created");
    assert_eq!(
        ev.user,
        user(&[
            ("ID", "5"),
            ("Name", "ann"),
            ("Email", "ann@x"),
            ("FirstName", "Ann"),
            ("CreatedAt", "2026-01-01T00:00:00Z"),
            ("Enabled", "true"),
        ])
    );
    let ev = run(
        &x,
        &rt,
        call("PATCH", "/users/5").json(json!({"last_name": "Lee"})),
    )
    .expect("updated");
    assert_eq!(ev.user["LastName"], "Lee");
    assert_eq!(ev.user["Email"], "ann@x");

    let login = || call("POST", "/login").json(json!({"username": "ann", "password": CANARY}));
    let ev = run(
        &x,
        &rt,
        login().resp_json(json!({"token": token(&json!({"sub": "5"}))})),
    )
    .expect("login");
    // Every event is filled from what is known, logins and failed logins too.
    let ann = x.cache().get("5").expect("ann is cached");
    assert_eq!(ev.user, ann);
    for status in [400, 401, 403] {
        let ev = run(&x, &rt, login().status(status)).expect("failed");
        assert_eq!(ev.action, Action::LoginFailed);
        assert_eq!(ev.user, ann, "by name: the ID and the rest from the cache");
    }
    assert!(run(&x, &rt, login().status(429)).is_none());

    let ev = run(
        &x,
        &rt,
        call("POST", "/logout")
            .req_header(
                "authorization",
                &format!("Bearer {}", token(&json!({"sub": "5"}))),
            )
            .status(204),
    )
    .expect("logout");
    assert_eq!(ev.user["Email"], "ann@x");
    let ev = run(&x, &rt, call("DELETE", "/users/5").status(204)).expect("deleted");
    assert_eq!(ev.user["Name"], "ann");
    assert!(x.cache().is_empty());
}

#[test]
fn operator_rule_may_extract_a_named_credential() {
    let rt = runtime("routes:\n  - {action: created, method: POST, path: /u, fields: {Secret: request.body.password}}");
    let x = Extractor::new(10);
    let ex = call("POST", "/u")
        .json(json!({"password": "explicit"}))
        .exchange(&rt)
        .expect("match");
    assert_eq!(
        x.process(&rt, &ex).pop().expect("event").user,
        user(&[("Secret", "explicit")])
    );
}

#[test]
fn extractor_capacity_zero_disables_cache() {
    let rt = runtime("profiles: [keycloak]");
    let x = Extractor::new(0);
    run(&x, &rt, kc_create()).expect("created");
    let ev = run(
        &x,
        &rt,
        call("DELETE", &format!("/admin/realms/acme/users/{KC_USER_ID}")).status(204),
    )
    .expect("deleted");
    assert_eq!(ev.user, user(&[("ID", KC_USER_ID)]));
    x.set_capacity(5);
    run(&x, &rt, kc_create()).expect("created");
    assert_eq!(x.cache().len(), 1);
}
