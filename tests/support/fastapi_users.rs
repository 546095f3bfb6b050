//! A fake FastAPI Users application (fastapi_users/router/*.py) that answers like the real
//! one, with the routers mounted as its documentation does: `/auth/register`,
//! `/auth/jwt/{login,logout}` (bearer transport), `/auth/cookie/{login,logout}` (cookie
//! transport), `/auth/{forgot,reset}-password`, `/auth/{request-verify-token,verify}`,
//! `/users/me`, `/users/{id}`.
//!
//! - Register: 201 `UserRead` (`id`, `email`, `is_active`, `is_superuser`, `is_verified`); 400
//!   `{"detail":"REGISTER_USER_ALREADY_EXISTS"}`.
//! - Login (`application/x-www-form-urlencoded` `username` and `password`): bearer 200
//!   `{"access_token": <JWT>, "token_type": "bearer"}`; cookie 204 with
//!   `Set-Cookie: fastapiusersauth=<JWT>; HttpOnly; Max-Age=3600; Path=/; SameSite=lax; Secure`;
//!   400 `{"detail":"LOGIN_BAD_CREDENTIALS"}`. The JWT strategy's token: HS256, `sub` the
//!   user id, `aud: ["fastapi-users:auth"]`.
//! - Logout: 204 (bearer), 204 with the cookie expired (cookie); 401 `{"detail":"Unauthorized"}`
//!   without a valid token.
//! - `/users/me` GET/PATCH 200 `UserRead`; `/users/{id}` GET/PATCH 200, DELETE 204 (superuser;
//!   403 `{"detail":"Forbidden"}` otherwise, 404 `{"detail":"Not Found"}`).
//! - Reset password: 200 `null`, the reset token a JWT with `sub` and
//!   `aud: "fastapi-users:reset"`; 400 `{"detail":"RESET_PASSWORD_BAD_TOKEN"}`.
//!
//! Tokens are kept in a table so a logged-out one is refused, as with a database strategy.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::iam::{fake_iam, path_of, Canned};
use super::{FakeUpstream, Recorded};

/// The cookie transport's cookie name (FastAPI Users' default).
pub(crate) const COOKIE: &str = "fastapiusersauth";

#[derive(Debug, Clone)]
struct User {
    id: String,
    email: String,
    password: String,
    is_active: bool,
    is_superuser: bool,
    is_verified: bool,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    /// Live tokens -> user id.
    tokens: BTreeMap<String, String>,
    next_user: u32,
    next_token: u32,
}

/// The UUID of the `n`th registered user.
pub(crate) fn user_id(n: u32) -> String {
    format!("4b2c7e1a-9d3f-4e5b-8a6c-{n:012x}")
}

/// A JWT as PyJWT writes it (HS256; the signature bytes are recognisable as a canary).
pub(crate) fn jwt(claims: &Value, n: u32) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims"));
    format!("{header}.{payload}.CANARYSIG{n:04}xQ2mR7tW9yB4nK6pL1sD3fG5hJ8kZ0vC")
}

/// The `n`th access token (login) for `user`.
pub(crate) fn access_token(user: &str, n: u32) -> String {
    jwt(
        &json!({"sub": user, "aud": ["fastapi-users:auth"], "exp": 1_796_212_800 + n}),
        n,
    )
}

/// A password-reset token for `user` (as `/auth/forgot-password` mails it).
pub(crate) fn reset_token(user: &str) -> String {
    jwt(
        &json!({"sub": user, "password_fgpt": "$argon2id$v=19$m=65536,t=3,p=4$fgpt",
                "aud": "fastapi-users:reset", "exp": 1_796_212_800}),
        9999,
    )
}

/// A fake FastAPI Users application on 127.0.0.1.
pub(crate) async fn fastapi_users() -> FakeUpstream {
    let state = Arc::new(Mutex::new(State::default()));
    fake_iam(move |r| {
        let mut s = state.lock().expect("fastapi-users state");
        answer(&mut s, r)
    })
    .await
}

fn json_reply(status: u16, v: &Value) -> Canned {
    Canned::status(status)
        .header("server", "uvicorn")
        .json("application/json", v)
}

fn detail(status: u16, d: &str) -> Canned {
    json_reply(status, &json!({"detail": d}))
}

fn user_read(u: &User) -> Value {
    json!({"id": u.id, "email": u.email, "is_active": u.is_active,
           "is_superuser": u.is_superuser, "is_verified": u.is_verified})
}

fn form(r: &Recorded, name: &str) -> Option<String> {
    let body = String::from_utf8_lossy(&r.body);
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%40", "@").replace('+', " "))
    })
}

/// The user of the bearer token or the auth cookie, if it is live.
fn current(s: &State, r: &Recorded) -> Option<(String, String)> {
    let header = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok());
    let token = header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| {
            header("cookie")?.split(';').find_map(|c| {
                c.trim()
                    .strip_prefix(COOKIE)
                    .and_then(|v| v.strip_prefix('='))
                    .map(str::to_owned)
            })
        })?;
    let user = s.tokens.get(&token)?.clone();
    s.users
        .get(&user)
        .filter(|u| u.is_active)
        .map(|_| (token, user))
}

fn answer(s: &mut State, r: &Recorded) -> Canned {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let path = path_of(r).to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (r.method.as_str(), segments.as_slice()) {
        ("POST", ["auth", "register"]) => register(s, &body),
        ("POST", ["auth", backend @ ("jwt" | "cookie"), "login"]) => login(s, r, backend),
        ("POST", ["auth", backend @ ("jwt" | "cookie"), "logout"]) => match current(s, r) {
            None => detail(401, "Unauthorized"),
            Some((token, _)) => {
                s.tokens.remove(&token);
                let reply = Canned::status(204).header("server", "uvicorn");
                if *backend == "cookie" {
                    reply.header(
                        "set-cookie",
                        &format!(
                            "{COOKIE}=\"\"; HttpOnly; Max-Age=0; Path=/; SameSite=lax; Secure"
                        ),
                    )
                } else {
                    reply
                }
            }
        },
        ("POST", ["auth", "forgot-password"]) => json_reply(202, &Value::Null),
        ("POST", ["auth", "reset-password"]) => reset(s, &body),
        (_, ["users", ..]) => match current(s, r) {
            None => detail(401, "Unauthorized"),
            Some((_, me)) => users(s, r, &segments[1..], &body, &me),
        },
        _ => detail(404, "Not Found"),
    }
}

fn register(s: &mut State, body: &Value) -> Canned {
    let (Some(email), Some(password)) = (body["email"].as_str(), body["password"].as_str()) else {
        return json_reply(
            422,
            &json!({"detail": [{"type": "missing", "loc": ["body", "email"], "msg": "Field required", "input": body}]}),
        );
    };
    if password.len() < 3 {
        return json_reply(
            400,
            &json!({"detail": {"code": "REGISTER_INVALID_PASSWORD", "reason": "Password should be at least 3 characters"}}),
        );
    }
    if s.users
        .values()
        .any(|u| u.email.eq_ignore_ascii_case(email))
    {
        return detail(400, "REGISTER_USER_ALREADY_EXISTS");
    }
    s.next_user += 1;
    let user = User {
        id: user_id(s.next_user),
        email: email.to_owned(),
        password: password.to_owned(),
        is_active: true,
        // `register` never trusts these from the client (safe create).
        is_superuser: email.starts_with("admin@"),
        is_verified: false,
    };
    let out = user_read(&user);
    s.users.insert(user.id.clone(), user);
    json_reply(201, &out)
}

fn login(s: &mut State, r: &Recorded, backend: &str) -> Canned {
    let (username, password) = (form(r, "username"), form(r, "password"));
    let Some(user) = s
        .users
        .values()
        .find(|u| Some(&u.email) == username.as_ref() && Some(&u.password) == password.as_ref())
        .filter(|u| u.is_active)
        .cloned()
    else {
        return detail(400, "LOGIN_BAD_CREDENTIALS");
    };
    s.next_token += 1;
    let token = access_token(&user.id, s.next_token);
    s.tokens.insert(token.clone(), user.id.clone());
    if backend == "cookie" {
        Canned::status(204).header("server", "uvicorn").header(
            "set-cookie",
            &format!("{COOKIE}={token}; HttpOnly; Max-Age=3600; Path=/; SameSite=lax; Secure"),
        )
    } else {
        json_reply(200, &json!({"access_token": token, "token_type": "bearer"}))
    }
}

fn reset(s: &mut State, body: &Value) -> Canned {
    let token = body["token"].as_str().unwrap_or_default();
    let Some(user) = s.users.values_mut().find(|u| reset_token(&u.id) == token) else {
        return detail(400, "RESET_PASSWORD_BAD_TOKEN");
    };
    if let Some(p) = body["password"].as_str() {
        user.password = p.to_owned();
    }
    json_reply(200, &Value::Null)
}

fn patch(u: &mut User, body: &Value, superuser: bool) {
    if let Some(e) = body["email"].as_str() {
        u.email = e.to_owned();
    }
    if let Some(p) = body["password"].as_str() {
        u.password = p.to_owned();
    }
    if superuser {
        if let Some(a) = body["is_active"].as_bool() {
            u.is_active = a;
        }
        if let Some(v) = body["is_verified"].as_bool() {
            u.is_verified = v;
        }
    }
}

fn users(s: &mut State, r: &Recorded, rest: &[&str], body: &Value, me: &str) -> Canned {
    let superuser = s.users.get(me).is_some_and(|u| u.is_superuser);
    match (r.method.as_str(), rest) {
        ("GET", ["me"]) => json_reply(200, &user_read(&s.users[me])),
        ("PATCH", ["me"]) => {
            if let Some(e) = body["email"].as_str() {
                if s.users.values().any(|u| u.email == e && u.id != me) {
                    return detail(400, "UPDATE_USER_EMAIL_ALREADY_EXISTS");
                }
            }
            let u = s.users.get_mut(me).expect("me exists");
            patch(u, body, false);
            json_reply(200, &user_read(u))
        }
        (_, [_]) if !superuser => detail(403, "Forbidden"),
        (method, [id]) => {
            let id = (*id).to_owned();
            match method {
                "GET" => match s.users.get(&id) {
                    Some(u) => json_reply(200, &user_read(u)),
                    None => detail(404, "Not Found"),
                },
                "PATCH" => match s.users.get_mut(&id) {
                    Some(u) => {
                        patch(u, body, true);
                        json_reply(200, &user_read(u))
                    }
                    None => detail(404, "Not Found"),
                },
                "DELETE" => match s.users.remove(&id) {
                    Some(_) => {
                        s.tokens.retain(|_, u| *u != id);
                        Canned::status(204).header("server", "uvicorn")
                    }
                    None => detail(404, "Not Found"),
                },
                _ => detail(405, "Method Not Allowed"),
            }
        }
        _ => detail(404, "Not Found"),
    }
}
