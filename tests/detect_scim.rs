//! The `scim` profile in front of a fake SCIM 2.0 service provider (RFC 7643/7644): create
//! answers 201 with the full resource, PATCH takes a PatchOp, PUT replaces, DELETE is 204,
//! and a gzip-compressed answer still yields the event while the client gets the bytes as sent.

mod support;

use serde_json::{json, Value};
use support::iam::*;
use support::*;

const USERS: &str = "/scim/v2/Users";
const BJENSEN: &str = "2819c223-7f76-453a-919d-413861904646";
const GZ: &str = "6c5bb468-14b2-4183-baf2-06d523e03bd3";
const SCIM: &str = "application/scim+json";

fn resource(id: &str, user_name: &str, active: bool, family: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": id,
        "externalId": "701984",
        "userName": user_name,
        "name": {
            "formatted": format!("Ms. Barbara J {family}, III"),
            "familyName": family,
            "givenName": "Barbara",
            "middleName": "Jane",
            "honorificPrefix": "Ms.",
            "honorificSuffix": "III"
        },
        "displayName": "Babs Jensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work"},
            {"value": "babs@jensen.org", "type": "home", "primary": true}
        ],
        "active": active,
        "groups": [],
        "meta": {
            "resourceType": "User",
            "created": "2011-08-01T18:29:49.793Z",
            "lastModified": "2011-08-01T18:29:49.793Z",
            "location": format!("https://example.com/v2/Users/{id}"),
            "version": "W/\"f250dd84f0671c3\""
        }
    })
}

fn created() -> Canned {
    Canned::status(201)
        .header(
            "location",
            &format!("https://example.com/v2/Users/{BJENSEN}"),
        )
        .header("etag", "W/\"f250dd84f0671c3\"")
        .json(SCIM, &resource(BJENSEN, "bjensen", true, "Jensen"))
}

fn patched() -> Canned {
    Canned::status(200)
        .header(
            "location",
            &format!("https://example.com/v2/Users/{BJENSEN}"),
        )
        .header("etag", "W/\"3694e05e9dff591\"")
        .json(SCIM, &resource(BJENSEN, "bjensen", false, "Jensen"))
}

fn replaced() -> Canned {
    Canned::status(200)
        .header(
            "location",
            &format!("https://example.com/v2/Users/{BJENSEN}"),
        )
        .header("etag", "W/\"3694e05e9dff592\"")
        .json(SCIM, &resource(BJENSEN, "bjensen", true, "Jensen-Smith"))
}

/// The same resource shape for another user, gzip-compressed as a real server may send it.
fn created_gzip() -> Canned {
    let plain = serde_json::to_vec(&resource(GZ, "gzuser", true, "Zipper")).expect("json");
    Canned::status(201)
        .header("content-type", SCIM)
        .header("content-encoding", "gzip")
        .header("vary", "Accept-Encoding")
        .header("location", &format!("https://example.com/v2/Users/{GZ}"))
        .body(gzip(&plain))
}

fn not_found() -> Canned {
    Canned::status(404).json(
        SCIM,
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "detail": "Resource not found", "status": "404"}),
    )
}

async fn scim_server() -> FakeUpstream {
    fake_iam(|r| {
        let one = format!("{USERS}/{BJENSEN}");
        match (r.method.as_str(), path_of(r)) {
            ("POST", USERS) if body_text(r).contains("gzuser") => created_gzip(),
            ("POST", USERS) => created(),
            ("PATCH", p) if p == one => patched(),
            ("PUT", p) if p == one => replaced(),
            ("DELETE", p) if p == one => Canned::status(204),
            _ => not_found(),
        }
    })
    .await
}

const SCIM_HEADERS: &[(&str, &str)] = &[
    ("content-type", SCIM),
    ("authorization", "Bearer scim-provisioning-token"),
];

fn bjensen(enabled: &str, last: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ID", BJENSEN.to_owned()),
        ("Name", "bjensen".to_owned()),
        ("Email", "babs@jensen.org".to_owned()),
        ("FirstName", "Barbara".to_owned()),
        ("LastName", last.to_owned()),
        ("Enabled", enabled.to_owned()),
        ("CreatedAt", "2011-08-01T18:29:49.793Z".to_owned()),
    ]
}

fn pairs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn create_patch_put_delete() {
    let up = scim_server().await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [scim]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    let one = format!("{USERS}/{BJENSEN}");

    let create = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen", "externalId": "701984",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "emails": [{"value": "bjensen@example.com", "type": "work"},
                   {"value": "babs@jensen.org", "type": "home", "primary": true}],
        "password": CANARY, "active": true
    })
    .to_string();
    let reply = call(&uh.url(), "POST", USERS, SCIM_HEADERS, create.clone()).await;
    reply.assert_is(&created());
    assert_eq!(last_seen(&up, "POST", USERS).body, create.as_bytes());
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", USERS, 201),
        &pairs(&bjensen("true", "Jensen")),
        false,
    );

    // RFC 7644 PatchOp: the fields come from the returned resource.
    let patch = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}"#;
    let reply = call(&uh.url(), "PATCH", &one, SCIM_HEADERS, patch).await;
    reply.assert_is(&patched());
    assert_eq!(last_seen(&up, "PATCH", &one).body, patch.as_bytes());
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.updated",
        ("PATCH", &one, 200),
        &pairs(&bjensen("false", "Jensen")),
        false,
    );

    let put =
        serde_json::to_string(&resource(BJENSEN, "bjensen", true, "Jensen-Smith")).expect("json");
    let reply = call(&uh.url(), "PUT", &one, SCIM_HEADERS, put).await;
    reply.assert_is(&replaced());
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.updated",
        ("PUT", &one, 200),
        &pairs(&bjensen("true", "Jensen-Smith")),
        false,
    );

    // DELETE answers 204 with nothing: the cache names the user as last seen.
    let reply = call(&uh.url(), "DELETE", &one, SCIM_HEADERS, "").await;
    reply.assert_is(&Canned::status(204));
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.deleted",
        ("DELETE", &one, 204),
        &pairs(&bjensen("true", "Jensen-Smith")),
        false,
    );

    // A 404 on a delete is no event: the next one seen is the create after it.
    let missing = format!("{USERS}/does-not-exist");
    call(&uh.url(), "DELETE", &missing, SCIM_HEADERS, "")
        .await
        .assert_is(&not_found());
    call(&uh.url(), "POST", USERS, SCIM_HEADERS, create)
        .await
        .assert_is(&created());
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.event_type, "user.created");
    assert_eq!(ev.request.path, USERS);
    uh.handle.stop().await;
}

#[tokio::test]
async fn gzip_response_is_decoded_for_extraction_only() {
    let up = scim_server().await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [scim]\n"), false).await;
    let mut rx = uh.handle.subscribe();

    let create =
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"gzuser"}"#;
    let headers = [
        ("content-type", SCIM),
        ("accept-encoding", "gzip, deflate, br"),
    ];
    let reply = call(&uh.url(), "POST", USERS, &headers, create).await;
    // The client receives the compressed bytes exactly as the IAM sent them.
    reply.assert_is(&created_gzip());
    assert_eq!(reply.body[..2], [0x1f, 0x8b]);
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", USERS, 201),
        &[
            ("ID", GZ),
            ("Name", "gzuser"),
            ("Email", "babs@jensen.org"),
            ("FirstName", "Barbara"),
            ("LastName", "Zipper"),
            ("Enabled", "true"),
            ("CreatedAt", "2011-08-01T18:29:49.793Z"),
        ],
        false,
    );
    uh.handle.stop().await;
}

/// RFC 7644 section 3.5.2: a PATCH may answer 204 without the resource. Then the event must
/// still say what the PatchOp changed (`active` -> false), not the cached `true`.
#[tokio::test]
async fn patch_answered_204_takes_the_change_from_the_patch_op() {
    let up = fake_iam(|r| match r.method.as_str() {
        "POST" => created(),
        _ => Canned::status(204),
    })
    .await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [scim]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    let one = format!("{USERS}/{BJENSEN}");
    // The path form (`path` + scalar `value`) and the path-less form (`value` object).
    for patch in [
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}"#,
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}"#,
    ] {
        // Each time the cache knows the user as active.
        call(
            &uh.url(),
            "POST",
            USERS,
            SCIM_HEADERS,
            r#"{"userName":"bjensen"}"#,
        )
        .await
        .assert_is(&created());
        assert_eq!(next_event(&mut rx).await.user["Enabled"], "true");
        let reply = call(&uh.url(), "PATCH", &one, SCIM_HEADERS, patch).await;
        reply.assert_is(&Canned::status(204));
        let ev = next_event(&mut rx).await;
        assert_event(
            &ev,
            "user.updated",
            ("PATCH", &one, 204),
            &pairs(&bjensen("false", "Jensen")),
            false,
        );
    }
    uh.handle.stop().await;
}
