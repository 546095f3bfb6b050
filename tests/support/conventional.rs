//! Stateful fakes of the four first profiles' IAMs, for tests that replay a whole lifecycle
//! of several users (the detect_* tests use canned answers instead):
//!
//! - [`generic`]: a conventional JSON users API. `POST /users` 201 `{id, username, email}`,
//!   `PUT /users/{id}` 200 the user, `DELETE` 204, `GET` 200 or 404; `POST /login` (JSON
//!   `username`, `password`) 200 `{access_token (JWT, sub = id), token_type, user}` or 401
//!   `{"error":"invalid_credentials"}`; `POST /logout` with the bearer token 204, after which
//!   the token is refused (401) by `GET /users/me`.
//! - [`keycloak`]: the admin REST API (`POST /admin/realms/{realm}/users` 201 with `Location`
//!   and no body, `PUT` 204, `DELETE` 204, `GET` 200 `UserRepresentation`) and the OIDC token
//!   (form `grant_type=password`: 200 `{access_token, refresh_token, id_token, expires_in, …}`,
//!   401 `{"error":"invalid_grant"}`) and logout endpoints (form `refresh_token`: 204; a
//!   refresh with the logged-out token is 400 `invalid_grant`).
//! - [`scim`]: SCIM 2.0 `/scim/v2/Users` (POST 201 with `Location` and the resource, PUT and
//!   PATCH 200, DELETE 204, GET 200; 409 `uniqueness` on a taken `userName`).
//! - [`dce`]: DCE 5.0 ghippo (`/apis/ghippo.io/v1alpha1/users` POST 200 the user, PUT 200 `{}`,
//!   DELETE 200 `{}`, GET 200; `POST /login` 200 `{idToken, username}` or 401; `DELETE /logout`
//!   with the bearer token 200 `{}`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::iam::{fake_iam, jwt, path_of, Canned};
use super::{FakeUpstream, Recorded};

#[derive(Debug, Clone)]
struct User {
    id: String,
    username: String,
    email: String,
    password: String,
    first: String,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    /// token -> user id
    tokens: BTreeMap<String, String>,
    next: u32,
}

fn body_of(r: &Recorded) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn form_of(r: &Recorded) -> BTreeMap<String, String> {
    String::from_utf8_lossy(&r.body)
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%40", "@").replace('+', " ")))
        .collect()
}

fn bearer(r: &Recorded) -> Option<String> {
    r.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

const JSON: &str = "application/json";

fn json_reply(status: u16, v: &Value) -> Canned {
    Canned::status(status).json(JSON, v)
}

/// The `n`th token a fake issues: a JWT naming `sub`, long and unique (a canary).
pub(crate) fn token(kind: &str, n: u32, sub: &str) -> String {
    jwt(
        &json!({"sub": sub, "typ": kind, "jti": format!("CANARY-TOKEN-{kind}-{n:04}-9f8e7d6c5b4a3")}),
    )
}

/// The generic fake's `n`th user id (numeric).
pub(crate) fn generic_id(n: u32) -> String {
    (1000 + n).to_string()
}

/// A fake generic users API.
pub(crate) async fn generic() -> FakeUpstream {
    let state = Arc::new(Mutex::new(State::default()));
    fake_iam(move |r| {
        let mut s = state.lock().expect("state");
        let path = path_of(r).to_owned();
        let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let body = body_of(r);
        let user_json =
            |u: &User| json!({"id": u.id.parse::<u64>().unwrap_or(0), "username": u.username, "email": u.email, "first_name": u.first});
        match (r.method.as_str(), seg.as_slice()) {
            ("POST", ["users"]) => {
                let name = body["username"].as_str().unwrap_or_default().to_owned();
                if s.users.values().any(|u| u.username == name) {
                    return json_reply(409, &json!({"error": "username taken"}));
                }
                s.next += 1;
                let u = User {
                    id: generic_id(s.next),
                    username: name,
                    email: body["email"].as_str().unwrap_or_default().to_owned(),
                    password: body["password"].as_str().unwrap_or_default().to_owned(),
                    first: body["first_name"].as_str().unwrap_or_default().to_owned(),
                };
                let reply = json_reply(201, &user_json(&u));
                s.users.insert(u.id.clone(), u);
                reply
            }
            ("GET", ["users", "me"]) => match bearer(r).and_then(|t| s.tokens.get(&t).cloned()) {
                Some(id) => json_reply(200, &user_json(&s.users[&id])),
                None => json_reply(401, &json!({"error": "unauthorized"})),
            },
            ("GET", ["users", id]) => match s.users.get(*id) {
                Some(u) => json_reply(200, &user_json(u)),
                None => json_reply(404, &json!({"error": "not found"})),
            },
            ("PUT", ["users", id]) => match s.users.get_mut(*id) {
                Some(u) => {
                    if let Some(e) = body["email"].as_str() {
                        u.email = e.to_owned();
                    }
                    let u = u.clone();
                    json_reply(200, &user_json(&u))
                }
                None => json_reply(404, &json!({"error": "not found"})),
            },
            ("DELETE", ["users", id]) => match s.users.remove(*id) {
                Some(_) => Canned::status(204),
                None => json_reply(404, &json!({"error": "not found"})),
            },
            ("POST", ["login"]) => {
                let name = body["username"].as_str().unwrap_or_default();
                let pw = body["password"].as_str().unwrap_or_default();
                match s.users.values().find(|u| u.username == name && u.password == pw).cloned() {
                    Some(u) => {
                        s.next += 1;
                        let t = token("access", s.next, &u.id);
                        s.tokens.insert(t.clone(), u.id.clone());
                        json_reply(200, &json!({"access_token": t, "token_type": "Bearer", "user": user_json(&u)}))
                    }
                    None => json_reply(401, &json!({"error": "invalid_credentials"})),
                }
            }
            ("POST", ["logout"]) => match bearer(r).and_then(|t| s.tokens.remove(&t)) {
                Some(_) => Canned::status(204),
                None => json_reply(401, &json!({"error": "unauthorized"})),
            },
            _ => json_reply(404, &json!({"error": "not found"})),
        }
    })
    .await
}

/// The Keycloak fake's `n`th user id (a UUID v4).
pub(crate) fn keycloak_id(n: u32) -> String {
    format!("{n:08x}-4b1c-4d2e-8f3a-5b6c7d8e9f0a")
}

/// A fake Keycloak (admin API and OIDC endpoints of every realm).
pub(crate) async fn keycloak() -> FakeUpstream {
    let state = Arc::new(Mutex::new(State::default()));
    fake_iam(move |r| {
        let mut s = state.lock().expect("state");
        let path = path_of(r).to_owned();
        let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let body = body_of(r);
        let rep = |u: &User| json!({"id": u.id, "username": u.username, "email": u.email, "firstName": u.first, "enabled": true, "createdTimestamp": 1764640000000u64});
        match (r.method.as_str(), seg.as_slice()) {
            ("POST", ["admin", "realms", realm, "users"]) => {
                let name = body["username"].as_str().unwrap_or_default().to_lowercase();
                if s.users.values().any(|u| u.username == name) {
                    return json_reply(409, &json!({"errorMessage": "User exists with same username"}));
                }
                s.next += 1;
                let id = keycloak_id(s.next);
                let pw = body["credentials"][0]["value"].as_str().unwrap_or_default().to_owned();
                s.users.insert(id.clone(), User {
                    id: id.clone(),
                    username: name,
                    email: body["email"].as_str().unwrap_or_default().to_owned(),
                    password: pw,
                    first: body["firstName"].as_str().unwrap_or_default().to_owned(),
                });
                Canned::status(201).header("location", &format!("http://kc.test/admin/realms/{realm}/users/{id}"))
            }
            ("GET", ["admin", "realms", _, "users", id]) => match s.users.get(*id) {
                Some(u) => json_reply(200, &rep(u)),
                None => json_reply(404, &json!({"error": "User not found"})),
            },
            ("PUT", ["admin", "realms", _, "users", id]) => match s.users.get_mut(*id) {
                Some(u) => {
                    if let Some(e) = body["email"].as_str() {
                        u.email = e.to_owned();
                    }
                    Canned::status(204)
                }
                None => json_reply(404, &json!({"error": "User not found"})),
            },
            ("DELETE", ["admin", "realms", _, "users", id]) => match s.users.remove(*id) {
                Some(_) => Canned::status(204),
                None => json_reply(404, &json!({"error": "User not found"})),
            },
            ("POST", ["realms", _, "protocol", "openid-connect", "token"]) => {
                let f = form_of(r);
                let user = match f.get("grant_type").map(String::as_str) {
                    Some("password") => s
                        .users
                        .values()
                        .find(|u| Some(&u.username) == f.get("username") && Some(&u.password) == f.get("password"))
                        .map(|u| u.id.clone()),
                    Some("refresh_token") => f.get("refresh_token").and_then(|t| s.tokens.get(t)).cloned(),
                    _ => None,
                };
                match user {
                    Some(id) => {
                        s.next += 1;
                        let n = s.next;
                        let (a, rt, it) = (token("access", n, &id), token("refresh", n, &id), token("id", n, &id));
                        s.tokens.insert(rt.clone(), id.clone());
                        json_reply(200, &json!({"access_token": a, "expires_in": 300, "refresh_expires_in": 1800,
                            "refresh_token": rt, "token_type": "Bearer", "id_token": it,
                            "not-before-policy": 0, "session_state": format!("{n:08x}-sess"), "scope": "openid profile email"}))
                    }
                    None if f.get("grant_type").map(String::as_str) == Some("password") => json_reply(401, &json!({"error": "invalid_grant", "error_description": "Invalid user credentials"})),
                    None => json_reply(400, &json!({"error": "invalid_grant", "error_description": "Token is not active"})),
                }
            }
            ("POST", ["realms", _, "protocol", "openid-connect", "logout"]) => {
                let f = form_of(r);
                match f.get("refresh_token").and_then(|t| s.tokens.remove(t)) {
                    Some(_) => Canned::status(204),
                    None => json_reply(400, &json!({"error": "invalid_grant", "error_description": "Invalid refresh token"})),
                }
            }
            _ => json_reply(404, &json!({"error": "HTTP 404 Not Found"})),
        }
    })
    .await
}

/// The SCIM fake's `n`th resource id (a UUID v7).
pub(crate) fn scim_id(n: u32) -> String {
    format!("0193a1b2-c3d4-7e5f-8a9b-{n:012x}")
}

/// A fake SCIM 2.0 service provider under `/scim/v2`.
pub(crate) async fn scim() -> FakeUpstream {
    let state = Arc::new(Mutex::new(State::default()));
    fake_iam(move |r| {
        let mut s = state.lock().expect("state");
        let path = path_of(r).to_owned();
        let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let body = body_of(r);
        let ct = "application/scim+json";
        let res = |u: &User| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": u.id,
            "userName": u.username, "name": {"givenName": u.first}, "emails": [{"value": u.email, "primary": true}],
            "active": true, "meta": {"resourceType": "User", "location": format!("https://scim.test/scim/v2/Users/{}", u.id)}});
        let error = |status: u16, detail: &str| Canned::status(status).json(ct, &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.to_string(), "detail": detail}));
        match (r.method.as_str(), seg.as_slice()) {
            ("POST", ["scim", "v2", "Users"]) => {
                let name = body["userName"].as_str().unwrap_or_default().to_owned();
                if s.users.values().any(|u| u.username == name) {
                    return error(409, "userName is already taken");
                }
                s.next += 1;
                let u = User {
                    id: scim_id(s.next),
                    username: name,
                    email: body["emails"][0]["value"].as_str().unwrap_or_default().to_owned(),
                    password: String::new(),
                    first: body["name"]["givenName"].as_str().unwrap_or_default().to_owned(),
                };
                let reply = Canned::status(201)
                    .header("location", &format!("https://scim.test/scim/v2/Users/{}", u.id))
                    .json(ct, &res(&u));
                s.users.insert(u.id.clone(), u);
                reply
            }
            ("GET", ["scim", "v2", "Users", id]) => match s.users.get(*id) {
                Some(u) => Canned::status(200).json(ct, &res(u)),
                None => error(404, "Resource not found"),
            },
            ("PUT" | "PATCH", ["scim", "v2", "Users", id]) => match s.users.get_mut(*id) {
                Some(u) => {
                    if let Some(e) = body["emails"][0]["value"].as_str() {
                        u.email = e.to_owned();
                    }
                    let u = u.clone();
                    Canned::status(200).json(ct, &res(&u))
                }
                None => error(404, "Resource not found"),
            },
            ("DELETE", ["scim", "v2", "Users", id]) => match s.users.remove(*id) {
                Some(_) => Canned::status(204),
                None => error(404, "Resource not found"),
            },
            _ => error(404, "Endpoint not found"),
        }
    })
    .await
}

/// The DCE fake's `n`th user id (a UUID v4).
pub(crate) fn dce_id(n: u32) -> String {
    format!("{n:08x}-9a8b-4c7d-b6e5-f4a3b2c1d0e9")
}

/// A fake DCE 5.0 ghippo API.
pub(crate) async fn dce() -> FakeUpstream {
    let state = Arc::new(Mutex::new(State::default()));
    fake_iam(move |r| {
        let mut s = state.lock().expect("state");
        let path = path_of(r).to_owned();
        let Some(rest) = path.strip_prefix("/apis/ghippo.io/v1alpha1") else {
            return json_reply(404, &json!({"code": 5, "message": "Not Found", "details": []}));
        };
        let seg: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let body = body_of(r);
        let user_json = |u: &User| json!({"id": u.id, "name": u.username, "email": u.email, "firstname": u.first, "enabled": true, "createdAt": "2026-12-02T10:00:00Z"});
        match (r.method.as_str(), seg.as_slice()) {
            ("POST", ["users"]) => {
                s.next += 1;
                let u = User {
                    id: dce_id(s.next),
                    username: body["name"].as_str().unwrap_or_default().to_owned(),
                    email: body["email"].as_str().unwrap_or_default().to_owned(),
                    password: body["password"].as_str().unwrap_or_default().to_owned(),
                    first: body["firstname"].as_str().unwrap_or_default().to_owned(),
                };
                let reply = json_reply(200, &user_json(&u));
                s.users.insert(u.id.clone(), u);
                reply
            }
            ("GET", ["users", id]) => match s.users.get(*id) {
                Some(u) => json_reply(200, &user_json(u)),
                None => json_reply(404, &json!({"code": 5, "message": "user not found", "details": []})),
            },
            ("PUT", ["users", id]) => match s.users.get_mut(*id) {
                Some(u) => {
                    if let Some(e) = body["email"].as_str() {
                        u.email = e.to_owned();
                    }
                    json_reply(200, &json!({}))
                }
                None => json_reply(404, &json!({"code": 5, "message": "user not found", "details": []})),
            },
            ("DELETE", ["users", id]) => match s.users.remove(*id) {
                Some(_) => json_reply(200, &json!({})),
                None => json_reply(404, &json!({"code": 5, "message": "user not found", "details": []})),
            },
            ("POST", ["login"]) => {
                let name = body["username"].as_str().unwrap_or_default();
                let pw = body["password"].as_str().unwrap_or_default();
                match s.users.values().find(|u| u.username == name && u.password == pw).cloned() {
                    Some(u) => {
                        s.next += 1;
                        let t = token("id", s.next, &u.id);
                        s.tokens.insert(t.clone(), u.id.clone());
                        json_reply(200, &json!({"idToken": t, "username": u.username, "expiresIn": 3600}))
                    }
                    None => json_reply(401, &json!({"code": 16, "message": "invalid username or password", "details": []})),
                }
            }
            ("DELETE", ["logout"]) => match bearer(r).and_then(|t| s.tokens.remove(&t)) {
                Some(_) => json_reply(200, &json!({})),
                None => json_reply(401, &json!({"code": 16, "message": "unauthenticated", "details": []})),
            },
            _ => json_reply(404, &json!({"code": 5, "message": "Not Found", "details": []})),
        }
    })
    .await
}
