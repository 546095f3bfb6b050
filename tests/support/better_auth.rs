//! A fake better-auth server (email and password, the admin plugin) that answers like the
//! real one (better-auth 1.x, `packages/better-auth/src/api/routes/*.ts`,
//! `plugins/admin/routes.ts`):
//!
//! - `POST /api/auth/sign-up/email` → 200 `{token, user}` and a signed
//!   `better-auth.session_token` cookie (`<token>.<signature>`, URL-encoded; `Max-Age=604800;
//!   Path=/; HttpOnly; SameSite=Lax`). An existing email is 422
//!   `USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL`, unless the server runs in generic-duplicate mode
//!   (`requireEmailVerification` or `autoSignIn: false`): then a real sign-up and a duplicate
//!   both answer 200 `{"token":null,"user":{…}}` without a cookie — the duplicate's user is
//!   synthetic, with a fresh random id.
//! - `POST /api/auth/sign-in/email` → 200 `{redirect, token, user}` + cookie; 401
//!   `INVALID_EMAIL_OR_PASSWORD`; 403 `BANNED_USER` for a banned user.
//! - `POST /api/auth/sign-out` (`{}` + cookie) → 200 `{"success":true}` and every session
//!   cookie expired (`Max-Age=0`).
//! - `POST /api/auth/update-user` → 200 `{"status":true}` (and the session cookie set again);
//!   `POST /api/auth/change-password` → 200 `{token, user}`; `GET /api/auth/get-session` →
//!   `{session, user}` or `null`; `POST /api/auth/delete-user` → `{"success":true,"message":"User deleted"}`.
//! - Admin: `create-user` → `{user}`, `update-user` → the user, `ban-user`/`unban-user` →
//!   `{user}`, `remove-user` → `{"success":true}`, `set-user-password` → `{"status":true}`.
//!
//! Errors are better-call's `{"message": …, "code": …}`; a call without a valid session is 401
//! `{"message":"Unauthorized","code":"UNAUTHORIZED"}`, as better-auth's session middleware answers.
//! Admins are the deployment's `adminUserIds`; here, whoever signs up as `admin@…`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::iam::{fake_iam, path_of, Canned};
use super::{FakeUpstream, Recorded};

/// The cookie better-auth names its session with (no `__Secure-` prefix on plain HTTP).
pub(crate) const SESSION_COOKIE: &str = "better-auth.session_token";

/// How the fake server is configured.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// `emailAndPassword.requireEmailVerification: true`: sign-ups open no session, and an
    /// existing email gets the same opaque 200 as a new one.
    pub generic_duplicates: bool,
}

#[derive(Debug, Clone)]
struct User {
    id: String,
    email: String,
    name: String,
    image: Option<String>,
    role: String,
    banned: bool,
    ban_reason: Option<String>,
    created_at: String,
    updated_at: String,
    password: String,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    /// Session token -> user id.
    sessions: BTreeMap<String, String>,
    next_user: u32,
    next_session: u32,
    next_synthetic: u32,
    clock: u32,
}

/// The id better-auth gives the `n`th user (32 alphanumerics, as `generateId()`).
pub(crate) fn user_id(n: u32) -> String {
    format!("u{n:03}Xk2Qm9Lr7Tz4Wb8Nc1Vd6Hf3Jg5")
}

/// The `n`th session token (32 alphanumerics), recognisable as a canary.
pub(crate) fn session_token(n: u32) -> String {
    format!("CANARYSESS{n:04}q8Zr3Lm6Tb1Xw9Kc5Fh")
}

/// The signed cookie value of session token `n`: `<token>.<base64 HMAC>`, URL-encoded as
/// better-call writes it (`=` as `%3D`, `/` as `%2F`, `+` as `%2B`).
pub(crate) fn cookie_value(n: u32) -> String {
    let token = session_token(n);
    let sig: Vec<u8> = token
        .bytes()
        .cycle()
        .take(32)
        .map(|b| b.wrapping_mul(31) ^ 0x5a)
        .collect();
    let sig = STANDARD.encode(sig);
    let encoded = sig
        .replace('=', "%3D")
        .replace('/', "%2F")
        .replace('+', "%2B");
    format!("{token}.{encoded}")
}

/// `Cookie:` header presenting session `n`.
pub(crate) fn cookie_header(n: u32) -> String {
    format!("{SESSION_COOKIE}={}", cookie_value(n))
}

/// A fake better-auth on 127.0.0.1 under `/api/auth`.
pub(crate) async fn better_auth(options: Options) -> FakeUpstream {
    let state = Arc::new(Mutex::new(State::default()));
    fake_iam(move |r| {
        let mut s = state.lock().expect("better-auth state");
        s.clock += 1;
        answer(&mut s, options, r)
    })
    .await
}

fn json_reply(status: u16, v: &Value) -> Canned {
    Canned::status(status).json("application/json", v)
}

/// better-call's error body, keys in its order (`message`, then `code`).
fn error(status: u16, code: &str, message: &str) -> Canned {
    let body = format!(
        r#"{{"message":{},"code":{}}}"#,
        Value::from(message),
        Value::from(code)
    );
    Canned::status(status)
        .header("content-type", "application/json")
        .body(body)
}

fn unauthorized() -> Canned {
    error(401, "UNAUTHORIZED", "Unauthorized")
}

fn now(s: &State) -> String {
    format!(
        "2026-12-02T09:{:02}:{:02}.000Z",
        s.clock / 60 % 60,
        s.clock % 60
    )
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id, "email": u.email, "name": u.name, "image": u.image,
        "emailVerified": false, "createdAt": u.created_at, "updatedAt": u.updated_at,
        "role": u.role, "banned": u.banned, "banReason": u.ban_reason, "banExpires": null
    })
}

fn session_cookie(n: u32) -> String {
    format!(
        "{SESSION_COOKIE}={}; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax",
        cookie_value(n)
    )
}

/// The session cookies sign-out (and delete-user) expire.
fn expired_cookies(c: Canned) -> Canned {
    [
        "better-auth.session_token",
        "better-auth.session_data",
        "better-auth.dont_remember",
    ]
    .iter()
    .fold(c, |c, name| {
        c.header(
            "set-cookie",
            &format!("{name}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"),
        )
    })
}

fn open_session(s: &mut State, user_id: &str) -> u32 {
    s.next_session += 1;
    s.sessions
        .insert(session_token(s.next_session), user_id.to_owned());
    s.next_session
}

/// The user of the request's session cookie (signature checked by exact value).
fn session_user(s: &State, r: &Recorded) -> Option<(String, String)> {
    let cookies = r.headers.get("cookie")?.to_str().ok()?;
    let value = cookies.split(';').find_map(|c| {
        c.trim()
            .strip_prefix(SESSION_COOKIE)
            .and_then(|v| v.strip_prefix('='))
    })?;
    let token = value.split('.').next()?;
    let n: u32 = token.strip_prefix("CANARYSESS")?.get(..4)?.parse().ok()?;
    if cookie_value(n) != value {
        return None;
    }
    let user = s.sessions.get(token)?.clone();
    Some((token.to_owned(), user))
}

fn answer(s: &mut State, o: Options, r: &Recorded) -> Canned {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let path = path_of(r).to_owned();
    let Some(route) = path.strip_prefix("/api/auth") else {
        return Canned::status(404);
    };
    match (r.method.as_str(), route) {
        ("POST", "/sign-up/email") => sign_up(s, o, &body),
        ("POST", "/sign-in/email") => sign_in(s, &body),
        ("POST", "/sign-out") => {
            if let Some((token, _)) = session_user(s, r) {
                s.sessions.remove(&token);
            }
            expired_cookies(json_reply(200, &json!({"success": true})))
        }
        ("GET", "/get-session") => match session_user(s, r) {
            Some((token, id)) => {
                let u = &s.users[&id];
                json_reply(
                    200,
                    &json!({"session": {"id": format!("sess-{token}"), "token": token,
                        "userId": id, "expiresAt": "2026-12-09T09:00:00.000Z",
                        "createdAt": now(s), "updatedAt": now(s), "ipAddress": "127.0.0.1",
                        "userAgent": "", "impersonatedBy": null},
                        "user": user_json(u)}),
                )
            }
            None => json_reply(200, &Value::Null),
        },
        (_, route) => match session_user(s, r) {
            None => unauthorized(),
            Some((token, me)) => authenticated(s, route, &body, &token, &me),
        },
    }
}

fn sign_up(s: &mut State, o: Options, body: &Value) -> Canned {
    let (Some(email), Some(name), Some(password)) = (
        body["email"].as_str(),
        body["name"].as_str(),
        body["password"].as_str(),
    ) else {
        return error(400, "VALIDATION_ERROR", "[body.email] Invalid input");
    };
    if password.len() < 8 {
        return error(400, "PASSWORD_TOO_SHORT", "Password too short");
    }
    let email = email.to_lowercase();
    if s.users.values().any(|u| u.email == email) {
        if !o.generic_duplicates {
            return error(
                422,
                "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
                "User already exists. Use another email.",
            );
        }
        // The synthetic user: what a new sign-up would look like, with a fresh id.
        s.next_synthetic += 1;
        let fake = User {
            id: format!("s{:03}Pq7Rt2Yw5Ue8Io1Az4Sx6Dc9Fv3", s.next_synthetic),
            email,
            name: name.to_owned(),
            image: body["image"].as_str().map(str::to_owned),
            role: "user".to_owned(),
            banned: false,
            ban_reason: None,
            created_at: now(s),
            updated_at: now(s),
            password: String::new(),
        };
        return json_reply(200, &json!({"token": null, "user": user_json(&fake)}));
    }
    s.next_user += 1;
    let user = User {
        id: user_id(s.next_user),
        name: name.to_owned(),
        image: body["image"].as_str().map(str::to_owned),
        // The deployment's `adminUserIds`: here, whoever signs up as `admin@…`.
        role: if email.starts_with("admin@") {
            "admin"
        } else {
            "user"
        }
        .to_owned(),
        banned: false,
        ban_reason: None,
        created_at: now(s),
        updated_at: now(s),
        password: password.to_owned(),
        email,
    };
    let id = user.id.clone();
    let out = user_json(&user);
    s.users.insert(id.clone(), user);
    if o.generic_duplicates {
        return json_reply(200, &json!({"token": null, "user": out}));
    }
    let n = open_session(s, &id);
    json_reply(200, &json!({"token": session_token(n), "user": out}))
        .header("set-cookie", &session_cookie(n))
}

fn sign_in(s: &mut State, body: &Value) -> Canned {
    let email = body["email"].as_str().unwrap_or_default().to_lowercase();
    let password = body["password"].as_str().unwrap_or_default();
    let Some(user) = s
        .users
        .values()
        .find(|u| u.email == email && u.password == password)
        .cloned()
    else {
        return error(
            401,
            "INVALID_EMAIL_OR_PASSWORD",
            "Invalid email or password",
        );
    };
    if user.banned {
        return error(
            403,
            "BANNED_USER",
            "You have been banned from this application. Please contact support if you believe this is an error.",
        );
    }
    let n = open_session(s, &user.id);
    json_reply(
        200,
        &json!({"redirect": false, "token": session_token(n), "user": user_json(&user)}),
    )
    .header("set-cookie", &session_cookie(n))
}

fn authenticated(s: &mut State, route: &str, body: &Value, token: &str, me: &str) -> Canned {
    let stamp = now(s);
    let is_admin = s.users.get(me).is_some_and(|u| u.role == "admin");
    let target = body["userId"].as_str().map(str::to_owned);
    match route {
        "/update-user" => {
            if body.get("email").is_some() {
                return error(400, "EMAIL_CAN_NOT_BE_UPDATED", "Email can not be updated");
            }
            let Some(u) = s.users.get_mut(me) else {
                return unauthorized();
            };
            if body.get("name").is_none() && body.get("image").is_none() {
                return error(400, "BAD_REQUEST", "No fields to update");
            }
            if let Some(n) = body["name"].as_str() {
                u.name = n.to_owned();
            }
            if let Some(i) = body["image"].as_str() {
                u.image = Some(i.to_owned());
            }
            u.updated_at = stamp;
            let n: u32 = token
                .get(10..14)
                .and_then(|d| d.parse().ok())
                .unwrap_or_default();
            json_reply(200, &json!({"status": true})).header("set-cookie", &session_cookie(n))
        }
        "/change-password" => {
            let (Some(new), Some(current)) = (
                body["newPassword"].as_str(),
                body["currentPassword"].as_str(),
            ) else {
                return error(400, "VALIDATION_ERROR", "[body.newPassword] Invalid input");
            };
            let Some(u) = s.users.get_mut(me) else {
                return unauthorized();
            };
            if u.password != current {
                return error(400, "INVALID_PASSWORD", "Invalid password");
            }
            u.password = new.to_owned();
            let out = user_json(u);
            if body["revokeOtherSessions"].as_bool() == Some(true) {
                s.sessions.retain(|_, id| id != me);
                let n = open_session(s, me);
                return json_reply(200, &json!({"token": session_token(n), "user": out}))
                    .header("set-cookie", &session_cookie(n));
            }
            json_reply(200, &json!({"token": null, "user": out}))
        }
        "/delete-user" => {
            s.users.remove(me);
            s.sessions.retain(|_, id| id != me);
            expired_cookies(json_reply(
                200,
                &json!({"success": true, "message": "User deleted"}),
            ))
        }
        admin if admin.starts_with("/admin/") && !is_admin => error(
            403,
            "YOU_ARE_NOT_ALLOWED_TO_PERFORM_THIS_ACTION",
            "You are not allowed to perform this action",
        ),
        "/admin/create-user" => {
            let (Some(email), Some(name)) = (body["email"].as_str(), body["name"].as_str()) else {
                return error(400, "VALIDATION_ERROR", "[body.email] Invalid input");
            };
            let email = email.to_lowercase();
            if s.users.values().any(|u| u.email == email) {
                return error(
                    400,
                    "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
                    "User already exists. Use another email.",
                );
            }
            s.next_user += 1;
            let user = User {
                id: user_id(s.next_user),
                email,
                name: name.to_owned(),
                image: None,
                role: body["role"].as_str().unwrap_or("user").to_owned(),
                banned: false,
                ban_reason: None,
                created_at: stamp.clone(),
                updated_at: stamp,
                password: body["password"].as_str().unwrap_or_default().to_owned(),
            };
            let out = user_json(&user);
            s.users.insert(user.id.clone(), user);
            json_reply(200, &json!({"user": out}))
        }
        "/admin/update-user" => {
            let Some(u) = target.as_deref().and_then(|t| s.users.get_mut(t)) else {
                return error(404, "USER_NOT_FOUND", "User not found");
            };
            let data = &body["data"];
            if let Some(n) = data["name"].as_str() {
                u.name = n.to_owned();
            }
            if let Some(e) = data["email"].as_str() {
                u.email = e.to_lowercase();
            }
            if let Some(r) = data["role"].as_str() {
                u.role = r.to_owned();
            }
            u.updated_at = stamp;
            json_reply(200, &user_json(u))
        }
        "/admin/ban-user" | "/admin/unban-user" => {
            let ban = route == "/admin/ban-user";
            if ban && target.as_deref() == Some(me) {
                return error(400, "YOU_CANNOT_BAN_YOURSELF", "You cannot ban yourself");
            }
            let Some(t) = target else {
                return error(404, "USER_NOT_FOUND", "User not found");
            };
            let Some(u) = s.users.get_mut(&t) else {
                return error(404, "USER_NOT_FOUND", "User not found");
            };
            u.banned = ban;
            u.ban_reason =
                ban.then(|| body["banReason"].as_str().unwrap_or("No reason").to_owned());
            u.updated_at = stamp;
            let out = user_json(u);
            if ban {
                s.sessions.retain(|_, id| *id != t);
            }
            json_reply(200, &json!({"user": out}))
        }
        "/admin/remove-user" => {
            if target.as_deref() == Some(me) {
                return error(
                    400,
                    "YOU_CANNOT_REMOVE_YOURSELF",
                    "You cannot remove yourself",
                );
            }
            let Some(t) = target.filter(|t| s.users.contains_key(t)) else {
                return error(404, "USER_NOT_FOUND", "User not found");
            };
            s.users.remove(&t);
            s.sessions.retain(|_, id| *id != t);
            json_reply(200, &json!({"success": true}))
        }
        "/admin/set-user-password" => {
            let Some(u) = target.as_deref().and_then(|t| s.users.get_mut(t)) else {
                return error(404, "USER_NOT_FOUND", "User not found");
            };
            u.password = body["newPassword"].as_str().unwrap_or_default().to_owned();
            json_reply(200, &json!({"status": true}))
        }
        _ => Canned::status(404),
    }
}
