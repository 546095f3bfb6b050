//! Extraction tests: every source and transform through a real rule, and each profile's happy
//! path with the bytes the real IAM sends. A canary password must appear in no event.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde_json::json;

use super::*;
use crate::event::UserFields;
use crate::exchange::CapturedBody;
use crate::extract::decode::tests::{brotli, gzip, raw_deflate, zlib};
use crate::extract::jwt::tests::token;
use crate::snapshot::Snapshot;

const CANARY: &str = "CANARY-PW-123";

fn runtime(yaml: &str) -> Arc<Snapshot> {
    let text = format!("upstream: http://127.0.0.1:1\n{yaml}");
    Arc::new(Snapshot::from_text(&text, None).expect("valid config"))
}

/// One request/response pair as the proxy would capture it.
struct Call {
    method: Method,
    uri: Uri,
    request_headers: HeaderMap,
    request_body: CapturedBody,
    status: u16,
    response_headers: HeaderMap,
    response_body: CapturedBody,
}

fn call(method: &str, uri: &str) -> Call {
    Call {
        method: method.parse().expect("method"),
        uri: uri.parse().expect("uri"),
        request_headers: HeaderMap::new(),
        request_body: CapturedBody::default(),
        status: 200,
        response_headers: HeaderMap::new(),
        response_body: CapturedBody::default(),
    }
}

fn header(h: &mut HeaderMap, k: &str, v: &str) {
    h.append(
        HeaderName::from_bytes(k.as_bytes()).expect("name"),
        HeaderValue::from_str(v).expect("value"),
    );
}

impl Call {
    fn req_header(mut self, k: &str, v: &str) -> Self {
        header(&mut self.request_headers, k, v);
        self
    }
    fn json(self, body: serde_json::Value) -> Self {
        self.req_header("content-type", "application/json")
            .body(body.to_string())
    }
    fn form(self, body: &str) -> Self {
        self.req_header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
    }
    fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.request_body.bytes = body.into();
        self
    }
    fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }
    fn resp_header(mut self, k: &str, v: &str) -> Self {
        header(&mut self.response_headers, k, v);
        self
    }
    fn resp_json(self, body: serde_json::Value) -> Self {
        self.resp_header("content-type", "application/json")
            .resp_body(body.to_string())
    }
    fn resp_body(mut self, body: impl Into<Bytes>) -> Self {
        self.response_body.bytes = body.into();
        self
    }
    fn resp_truncated(mut self) -> Self {
        self.response_body.truncated = true;
        self
    }

    /// The exchange the proxy would hand over; `None` when the route table does not match.
    fn exchange(self, rt: &Arc<Snapshot>) -> Option<Exchange> {
        let route = rt.routes.classify(&self.method, self.uri.path())?;
        Some(Exchange {
            route,
            method: self.method,
            uri: self.uri,
            request_headers: self.request_headers,
            request_body: self.request_body,
            status: StatusCode::from_u16(self.status).expect("status"),
            response_headers: self.response_headers,
            response_body: self.response_body,
            remote_ip: Some(http::HeaderValue::from_static("10.1.2.3")),
            request_id: http::HeaderValue::from_static("req-1"),
            durable: None,
        })
    }
}

/// Runs `c` through the extractor; asserts the canary never leaks into an event.
fn run(x: &Extractor, rt: &Arc<Snapshot>, c: Call) -> Option<UserEvent> {
    let ex = c.exchange(rt).expect("route must match");
    let ev = x.process(rt, &ex)?;
    let text = serde_json::to_string(&ev).expect("serialise");
    assert!(!text.contains(CANARY), "canary leaked: {text}");
    Some(ev)
}

fn user(pairs: &[(&str, &str)]) -> UserFields {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Sources and transforms

const SOURCES: &str = r#"
routes:
  - action: created
    method: POST
    path: "/t/{tenant}/users"
    fields:
      Dept: request.body.profile.dept
      Tag: request.body.tags.1
      Age: request.body.age
      Vip: request.body.vip
      Obj: request.body.profile
      Arr: request.body.tags
      Nil: request.body.nothing
      Empty: request.body.empty
      ID: response.body.id
      Tenant: path.tenant
      Src: query.source
      Team: request.header.X-Team
      Loc: response.header.location | last_segment
      Claim: request.jwt.email
      Nested: request.jwt.realm_access.roles.0
      Mail: request.body.Mail | lower
      Fallback: [request.body.missing, request.body.empty, query.source]
      Issued: response.body.access_token | jwt.preferred_username
      Garbage: response.body.junk | jwt.sub
      NoToken: response.body.absent | jwt.sub
  - action: login
    method: POST
    path: /form
    fields:
      Name: request.form.username
      Grant: request.form.grant_type
      Missing: request.form.nope
"#;

#[test]
fn every_source_and_transform() {
    let rt = runtime(SOURCES);
    let x = Extractor::new(10);
    let bearer = token(&json!({"email": "bearer@x", "realm_access": {"roles": ["admin"]}}));
    let issued = token(&json!({"preferred_username": "jdoe"}));
    let ev = run(
        &x,
        &rt,
        call("POST", "/t/ac%20me/users?source=import&x=1")
            .req_header("x-team", "blue")
            .req_header("authorization", &format!("Bearer {bearer}"))
            .json(json!({
                "profile": {"dept": "R&D"}, "tags": ["a", "b"], "age": 42, "vip": true,
                "nothing": null, "empty": "", "Mail": "MiXeD@Example.COM"
            }))
            .status(201)
            .resp_header("location", "/t/acme/users/u-77")
            .resp_json(json!({"id": 77, "access_token": issued, "junk": "not.a.jwt"})),
    )
    .expect("event");
    assert_eq!(
        ev.user,
        user(&[
            ("Dept", "R&D"),
            ("Tag", "b"),
            ("Age", "42"),
            ("Vip", "true"),
            ("ID", "77"),
            ("Tenant", "ac me"),
            ("Src", "import"),
            ("Team", "blue"),
            ("Loc", "u-77"),
            ("Claim", "bearer@x"),
            ("Nested", "admin"),
            ("Mail", "mixed@example.com"),
            ("Fallback", "import"),
            ("Issued", "jdoe"),
        ])
    );
    assert_eq!(ev.action, Action::Created);
    assert!(!ev.truncated);

    let ev = run(
        &x,
        &rt,
        call("POST", "/form")
            .form("grant_type=password&username=J%C3%B6+Doe&password=CANARY-PW-123"),
    )
    .expect("event");
    assert_eq!(ev.user, user(&[("Name", "Jö Doe"), ("Grant", "password")]));
}

#[test]
fn bearer_missing_or_garbage_yields_nothing() {
    let rt = runtime(SOURCES);
    let x = Extractor::new(10);
    for auth in [None, Some("Bearer garbage"), Some("Basic dXNlcjpwYXNz")] {
        let mut c = call("POST", "/t/a/users").json(json!({"age": 1}));
        if let Some(a) = auth {
            c = c.req_header("authorization", a);
        }
        let ev = run(&x, &rt, c).expect("event");
        assert_eq!(ev.user, user(&[("Age", "1"), ("Tenant", "a")]), "{auth:?}");
    }
}

#[test]
fn request_info_and_seq() {
    let rt = runtime(SOURCES);
    let x = Extractor::new(10);
    let c = || {
        call("POST", "/t/a/users?q=1")
            .req_header("user-agent", "curl/8")
            .status(201)
    };
    let first = run(&x, &rt, c()).expect("event");
    let second = run(&x, &rt, c()).expect("event");
    assert_eq!((first.seq, second.seq), (1, 2));
    assert_eq!(
        first.request,
        RequestInfo {
            method: "POST".into(),
            path: "/t/a/users".into(),
            status: 201,
            remote_addr: "10.1.2.3".into(),
            request_id: "req-1".into(),
            user_agent: "curl/8".into(),
        }
    );
    assert_ne!(first.id, second.id);
}

#[test]
fn status_outside_the_rule_is_no_event() {
    let rt = runtime(SOURCES);
    let x = Extractor::new(10);
    assert!(run(&x, &rt, call("POST", "/t/a/users").status(409)).is_none());
    assert!(run(&x, &rt, call("POST", "/t/a/users").status(500)).is_none());
}

// ------------------------------------------------------------------------------------------
// Bodies: encodings, truncation, malformed

const RESP_ID: &str = r#"
capture_limit: 4KiB
routes:
  - action: created
    method: POST
    path: /u
    fields: {ID: response.body.id, Email: response.body.email, Name: response.body.name}
"#;

#[test]
fn compressed_responses_are_decoded() {
    let rt = runtime(RESP_ID);
    let x = Extractor::new(10);
    let body = br#"{"id":"9","email":"z@x","name":"zed"}"#;
    for (coding, data) in [
        ("gzip", gzip(body)),
        ("deflate", zlib(body)),
        ("deflate", raw_deflate(body)),
        ("br", brotli(body)),
    ] {
        let ev = run(
            &x,
            &rt,
            call("POST", "/u")
                .resp_header("content-encoding", coding)
                .resp_body(data),
        )
        .expect("event");
        assert_eq!(
            ev.user,
            user(&[("ID", "9"), ("Email", "z@x"), ("Name", "zed")]),
            "{coding}"
        );
        assert!(!ev.truncated);
    }
    let ev = run(
        &x,
        &rt,
        call("POST", "/u")
            .resp_header("content-encoding", "zstd")
            .resp_body(&body[..]),
    )
    .expect("event");
    assert!(ev.user.is_empty());
}

#[test]
fn truncated_json_keeps_complete_members() {
    let rt = runtime(RESP_ID);
    let x = Extractor::new(10);
    let ev = run(
        &x,
        &rt,
        call("POST", "/u")
            .resp_body(r#"{"id":"9","email":"z@x","name":"ze"#)
            .resp_truncated(),
    )
    .expect("event");
    assert_eq!(ev.user, user(&[("ID", "9"), ("Email", "z@x")]));
    assert!(ev.truncated);
    assert_eq!(serde_json::to_value(&ev).expect("json")["truncated"], true);

    // A truncated gzip stream: decoded as far as it goes.
    let pad: String = (0..5_000u32)
        .map(|i| format!("{:x}", i.wrapping_mul(2_654_435_761)))
        .collect();
    let long = format!(r#"{{"id":"9","email":"z@x","pad":"{pad}"}}"#);
    let gz = gzip(long.as_bytes());
    let ev = run(
        &x,
        &rt,
        call("POST", "/u")
            .resp_header("content-encoding", "gzip")
            .resp_body(gz[..gz.len() / 2].to_vec())
            .resp_truncated(),
    )
    .expect("event");
    assert_eq!(ev.user, user(&[("ID", "9"), ("Email", "z@x")]));
    assert!(ev.truncated);
}

#[test]
fn zip_bomb_is_cut_at_the_expansion_cap() {
    let rt = runtime(RESP_ID);
    let x = Extractor::new(10);
    let mut bomb = br#"{"id":"1","pad":""#.to_vec();
    bomb.extend(std::iter::repeat_n(b'a', 4 << 20));
    let ev = run(
        &x,
        &rt,
        call("POST", "/u")
            .resp_header("content-encoding", "gzip")
            .resp_body(gzip(&bomb)),
    )
    .expect("event");
    assert!(ev.truncated, "decoding stopped at 8 x 4KiB");
    assert_eq!(ev.user, user(&[("ID", "1")]));
}

#[test]
fn malformed_bodies_yield_no_fields_and_no_panic() {
    let rt = runtime(RESP_ID);
    let x = Extractor::new(10);
    for body in [
        &b"{\"id\":\"9\",,}"[..],
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[1,2,3]",
        b"\"id\"",
        b"",
        b"{\"id\":",
    ] {
        let ev = run(&x, &rt, call("POST", "/u").resp_body(body.to_vec())).expect("event");
        assert!(ev.user.is_empty(), "{body:?}");
        assert!(!ev.truncated);
    }
    let deep = "[".repeat(100_000);
    let ev = run(&x, &rt, call("POST", "/u").resp_body(deep).resp_truncated()).expect("event");
    assert!(ev.user.is_empty());
    let ev = run(
        &x,
        &rt,
        call("POST", "/u")
            .resp_header("content-encoding", "gzip")
            .resp_body("nope"),
    )
    .expect("event");
    assert!(ev.user.is_empty());
}

// ------------------------------------------------------------------------------------------
// Keycloak

const KC_USER_ID: &str = "8b1c6f62-2c1f-4b8e-9d1a-5f3e2a7c9d10";

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

fn kc_create() -> Call {
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

#[test]
fn keycloak_logout_from_refresh_token_or_bearer() {
    let rt = runtime("profiles: [keycloak]");
    let x = Extractor::new(10);
    run(&x, &rt, kc_create()).expect("created");
    let logout = "/realms/acme/protocol/openid-connect/logout";
    let form = format!(
        "client_id=app&client_secret=s3cr3t&refresh_token={}",
        kc_refresh_token()
    );
    let ev = run(&x, &rt, call("POST", logout).form(&form).status(204)).expect("logout");
    assert_eq!(ev.action, Action::Logout);
    assert_eq!(
        ev.user,
        kc_full_user(),
        "id from the refresh token, the rest from the cache"
    );
    assert!(!serde_json::to_string(&ev)
        .expect("json")
        .contains(&kc_refresh_token()));

    let ev = run(
        &x,
        &rt,
        call("POST", logout)
            .req_header("authorization", &format!("Bearer {}", kc_access_token()))
            .status(204),
    )
    .expect("logout");
    assert_eq!(ev.user, kc_full_user());

    let hint = format!(
        "{logout}?id_token_hint={}&post_logout_redirect_uri=https%3A%2F%2Fapp",
        kc_access_token()
    );
    let ev = run(&x, &rt, call("GET", &hint).status(302)).expect("browser logout");
    assert_eq!(ev.user["ID"], KC_USER_ID);

    // The confirmation page of a logout without any token names nobody: no event.
    assert!(run(&x, &rt, call("GET", logout).status(200)).is_none());
    assert!(run(
        &x,
        &rt,
        call("POST", logout).form("client_id=app").status(200)
    )
    .is_none());
}

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
    assert_eq!(ev.user, user(&[("Name", "zhangsan")]));

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
    assert_eq!(ev.user, user(&[("ID", "5"), ("Name", "ann")]));
    for status in [400, 401, 403] {
        let ev = run(&x, &rt, login().status(status)).expect("failed");
        assert_eq!(ev.action, Action::LoginFailed);
        assert_eq!(ev.user, user(&[("Name", "ann")]));
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
        x.process(&rt, &ex).expect("event").user,
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
