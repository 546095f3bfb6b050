//! A fake OpenStack Keystone (Identity API v3) that answers like the real one: users
//! (`POST /v3/users` 201 with the user ref, `PATCH` 200, `DELETE` 204, `GET` 200 or 404), the
//! self-service password change (`POST /v3/users/{id}/password` 204, 401 for a wrong original
//! password) and tokens (`POST /v3/auth/tokens` 201 with the token in `X-Subject-Token` and
//! the token body, 401 with `WWW-Authenticate` for bad credentials; re-scoping with the
//! `token` method; `GET`/`HEAD` validation 200 or 404; `DELETE` revocation 204 or 404).
//!
//! Every answer carries `Vary: X-Auth-Token` and an `x-openstack-request-id`, as Keystone's
//! Flask application adds them; errors are Keystone's `{"error": {code, message, title}}`.
//! State is kept (users, passwords, issued tokens) so a lifecycle reads like a real one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::iam::{fake_iam, path_of, Canned};
use super::{FakeUpstream, Recorded};

/// The admin token the tests send as `X-Auth-Token` on admin calls.
pub(crate) const ADMIN_TOKEN: &str = "gAAAAABadmin-token-not-a-canary";
/// Where Keystone says it lives (`WWW-Authenticate`, links).
const PUBLIC: &str = "http://keystone.test:5000";

#[derive(Debug, Clone)]
struct User {
    id: String,
    name: String,
    domain_id: String,
    email: Option<String>,
    description: Option<String>,
    enabled: bool,
    password: Option<String>,
}

#[derive(Debug, Clone)]
struct Token {
    user_id: String,
    methods: Vec<String>,
    issued_at: String,
    expires_at: String,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    tokens: BTreeMap<String, Token>,
    next_user: u32,
    next_token: u32,
    next_request: u32,
}

/// The id Keystone gives the `n`th user this fake creates (32 hex digits, as Keystone's
/// `uuid4().hex`).
pub(crate) fn user_id(n: u32) -> String {
    format!("{n:08x}b7e04c1d9f3a5e6b7c8d9e0f")
}

/// The `n`th token this fake issues: fernet-shaped (`gAAAAAB` + url-safe base64), unique and
/// recognisable as a canary.
pub(crate) fn token(n: u32) -> String {
    format!("gAAAAABCANARY-TOKEN-{n:04}-k1P9x3wQ7mZ2vB8nR4tY6uI0oE5aS3dF7gH1jK9lL2zX4cV6bN8m")
}

/// A fake Keystone on 127.0.0.1.
pub(crate) async fn keystone() -> FakeUpstream {
    let state = Arc::new(Mutex::new(State::default()));
    fake_iam(move |r| {
        let mut s = state.lock().expect("keystone state");
        s.next_request += 1;
        let request_id = format!("req-6f1c2d3e-4a5b-4c6d-8e7f-{:012x}", s.next_request);
        answer(&mut s, r).header("x-openstack-request-id", &request_id)
    })
    .await
}

fn answer(s: &mut State, r: &Recorded) -> Canned {
    let path = path_of(r).to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    match (r.method.as_str(), segments.as_slice()) {
        ("POST", ["v3", "auth", "tokens"]) => issue(s, &body, r),
        ("GET" | "HEAD", ["v3", "auth", "tokens"]) => validate(s, r),
        ("DELETE", ["v3", "auth", "tokens"]) => revoke(s, r),
        (_, ["v3", ..]) if !authorized(s, r) => unauthorized(),
        ("POST", ["v3", "users"]) => create(s, &body),
        ("GET", ["v3", "users", id]) => match s.users.get(*id) {
            Some(u) => ks(200).json("application/json", &json!({"user": user_ref(u)})),
            None => not_found("user", id),
        },
        ("PATCH", ["v3", "users", id]) => update(s, id, &body),
        ("DELETE", ["v3", "users", id]) => match s.users.remove(*id) {
            Some(_) => {
                s.tokens.retain(|_, t| t.user_id != *id);
                ks(204)
            }
            None => not_found("user", id),
        },
        ("POST", ["v3", "users", id, "password"]) => change_password(s, id, &body),
        _ => ks(404).json(
            "application/json",
            &json!({"error": {"code": 404, "message": "The resource could not be found.", "title": "Not Found"}}),
        ),
    }
}

/// Every Keystone answer: `Vary: X-Auth-Token`.
fn ks(status: u16) -> Canned {
    Canned::status(status).header("vary", "X-Auth-Token")
}

fn error(status: u16, title: &str, message: &str) -> Canned {
    ks(status).json(
        "application/json",
        &json!({"error": {"code": status, "message": message, "title": title}}),
    )
}

fn unauthorized() -> Canned {
    error(
        401,
        "Unauthorized",
        "The request you have made requires authentication.",
    )
    .header("www-authenticate", &format!("Keystone uri=\"{PUBLIC}\""))
}

fn not_found(kind: &str, id: &str) -> Canned {
    error(404, "Not Found", &format!("Could not find {kind}: {id}."))
}

/// Admin calls need the admin token or any token this fake issued.
fn authorized(s: &State, r: &Recorded) -> bool {
    header(r, "x-auth-token").is_some_and(|t| t == ADMIN_TOKEN || s.tokens.contains_key(&t))
}

fn header(r: &Recorded, name: &str) -> Option<String> {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn user_ref(u: &User) -> Value {
    let mut v = json!({
        "domain_id": u.domain_id, "enabled": u.enabled, "id": u.id,
        "links": {"self": format!("{PUBLIC}/v3/users/{}", u.id)},
        "name": u.name, "options": {}, "password_expires_at": null,
    });
    if let Some(e) = &u.email {
        v["email"] = json!(e);
    }
    if let Some(d) = &u.description {
        v["description"] = json!(d);
    }
    v
}

fn create(s: &mut State, body: &Value) -> Canned {
    let u = &body["user"];
    let Some(name) = u["name"].as_str() else {
        return error(
            400,
            "Bad Request",
            "Invalid input for field 'user': 'name' is a required property",
        );
    };
    let domain_id = u["domain_id"].as_str().unwrap_or("default").to_owned();
    if s.users
        .values()
        .any(|x| x.name == name && x.domain_id == domain_id)
    {
        return error(
            409,
            "Conflict",
            &format!(
                "Conflict occurred attempting to store user - Duplicate entry found with name {name} at domain ID {domain_id}."
            ),
        );
    }
    s.next_user += 1;
    let user = User {
        id: user_id(s.next_user),
        name: name.to_owned(),
        domain_id,
        email: u["email"].as_str().map(str::to_owned),
        description: u["description"].as_str().map(str::to_owned),
        enabled: u["enabled"].as_bool().unwrap_or(true),
        password: u["password"].as_str().map(str::to_owned),
    };
    let reply = ks(201).json("application/json", &json!({"user": user_ref(&user)}));
    s.users.insert(user.id.clone(), user);
    reply
}

fn update(s: &mut State, id: &str, body: &Value) -> Canned {
    let Some(user) = s.users.get_mut(id) else {
        return not_found("user", id);
    };
    let u = &body["user"];
    if let Some(n) = u["name"].as_str() {
        user.name = n.to_owned();
    }
    if let Some(e) = u["email"].as_str() {
        user.email = Some(e.to_owned());
    }
    if let Some(d) = u["description"].as_str() {
        user.description = Some(d.to_owned());
    }
    if let Some(e) = u["enabled"].as_bool() {
        user.enabled = e;
    }
    if let Some(p) = u["password"].as_str() {
        user.password = Some(p.to_owned());
    }
    ks(200).json("application/json", &json!({"user": user_ref(user)}))
}

fn change_password(s: &mut State, id: &str, body: &Value) -> Canned {
    let Some(user) = s.users.get_mut(id) else {
        return not_found("user", id);
    };
    let (Some(new), Some(original)) = (
        body["user"]["password"].as_str(),
        body["user"]["original_password"].as_str(),
    ) else {
        return error(
            400,
            "Bad Request",
            "Invalid input for field 'user': 'original_password' is a required property",
        );
    };
    if user.password.as_deref() != Some(original) {
        return unauthorized();
    }
    user.password = Some(new.to_owned());
    ks(204)
}

/// `POST /v3/auth/tokens`: password (by user id, or name and domain) or token re-scoping.
fn issue(s: &mut State, body: &Value, r: &Recorded) -> Canned {
    let identity = &body["auth"]["identity"];
    let methods: Vec<String> = identity["methods"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let user_id = if methods.iter().any(|m| m == "password") {
        let u = &identity["password"]["user"];
        let found = s.users.values().find(|x| match u["id"].as_str() {
            Some(id) => x.id == id,
            None => {
                u["name"].as_str() == Some(x.name.as_str())
                    && (u["domain"]["id"].as_str() == Some(x.domain_id.as_str())
                        || (u["domain"]["name"].as_str() == Some("Default")
                            && x.domain_id == "default"))
            }
        });
        match found {
            Some(x) if x.enabled && x.password.as_deref() == u["password"].as_str() => x.id.clone(),
            _ => return unauthorized(),
        }
    } else if methods.iter().any(|m| m == "token") {
        let presented = identity["token"]["id"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| header(r, "x-auth-token"));
        match presented.and_then(|t| s.tokens.get(&t).cloned()) {
            Some(t) => t.user_id,
            None => return unauthorized(),
        }
    } else {
        return unauthorized();
    };
    s.next_token += 1;
    let id = token(s.next_token);
    let mut issued_methods = methods.clone();
    if let Some(original) = methods
        .iter()
        .any(|m| m == "token")
        .then(|| {
            identity["token"]["id"]
                .as_str()
                .and_then(|t| s.tokens.get(t))
        })
        .flatten()
    {
        for m in &original.methods {
            if !issued_methods.contains(m) {
                issued_methods.push(m.clone());
            }
        }
    }
    let t = Token {
        user_id,
        methods: issued_methods,
        issued_at: format!("2026-12-02T09:{:02}:00.000000Z", s.next_token % 60),
        expires_at: format!("2026-12-02T21:{:02}:00.000000Z", s.next_token % 60),
    };
    let reply = ks(201)
        .header("x-subject-token", &id)
        .json("application/json", &token_body(s, &t, s.next_token));
    s.tokens.insert(id, t);
    reply
}

fn token_body(s: &State, t: &Token, n: u32) -> Value {
    let user = s.users.get(&t.user_id);
    let name = user.map(|u| u.name.clone()).unwrap_or_default();
    let domain_id = user.map(|u| u.domain_id.clone()).unwrap_or_default();
    let domain_name = if domain_id == "default" {
        "Default".to_owned()
    } else {
        domain_id.clone()
    };
    json!({"token": {
        "methods": t.methods,
        "user": {
            "domain": {"id": domain_id, "name": domain_name},
            "id": t.user_id, "name": name, "password_expires_at": null
        },
        "audit_ids": [format!("3T2dc1CGQxyJsHdDu1xkcw{n:02}")],
        "expires_at": t.expires_at,
        "issued_at": t.issued_at
    }})
}

fn subject(s: &State, r: &Recorded) -> Option<(String, Token)> {
    let id = header(r, "x-subject-token")?;
    s.tokens.get(&id).cloned().map(|t| (id, t))
}

/// `GET`/`HEAD /v3/auth/tokens`: validation, never a login.
fn validate(s: &State, r: &Recorded) -> Canned {
    if !authorized(s, r) {
        return unauthorized();
    }
    match subject(s, r) {
        Some((id, t)) => {
            let reply = ks(200).header("x-subject-token", &id);
            if r.method == http::Method::HEAD {
                reply
            } else {
                reply.json("application/json", &token_body(s, &t, 0))
            }
        }
        None => not_found("token", &header(r, "x-subject-token").unwrap_or_default()),
    }
}

/// `DELETE /v3/auth/tokens`: revokes the `X-Subject-Token`.
fn revoke(s: &mut State, r: &Recorded) -> Canned {
    if !authorized(s, r) {
        return unauthorized();
    }
    match subject(s, r) {
        Some((id, _)) => {
            s.tokens.remove(&id);
            ks(204)
        }
        None => not_found("token", &header(r, "x-subject-token").unwrap_or_default()),
    }
}
