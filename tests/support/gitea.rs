//! A fake Gitea (1.2x) that answers like the real one (routers/api/v1/admin/user.go,
//! routers/api/v1/user/{app,settings}.go, routers/web/auth/auth.go):
//!
//! - Admin users API, keyed by username: `POST /api/v1/admin/users` 201 `User`, `PATCH
//!   /api/v1/admin/users/{username}` 200 `User`, `DELETE` 204, `POST …/{username}/rename` 204;
//!   422 `{"message": "user already exists [name: …]", "url": …}`; 403 for non-admins; 404
//!   `{"errors": […], "message": "The target couldn't be found.", "url": …}`.
//! - `GET /api/v1/user` 200 `User` (the token's owner); `PATCH /api/v1/user/settings` 200
//!   `UserSettings` (no id, no username); `POST /api/v1/users/{username}/tokens` (basic auth)
//!   201 `{id, name, sha1, token_last_eight, scopes}`. API tokens go in
//!   `Authorization: token <sha1>` or `Bearer <sha1>`; 401 `{"message":"token is required",…}` without.
//! - Web sign-in `POST /user/login` (form `_csrf`, `user_name`, `password`): success is 303 to
//!   `/` with a regenerated `i_like_gitea` session cookie; bad credentials re-render the form:
//!   200 `text/html` with "Username or password is incorrect.". Sign-out `POST /user/logout`: 200
//!   `{"redirect":"/"}` and the session cookies expired.
//!
//! JSON answers carry Gitea's `Content-Type: application/json;charset=utf-8` and security
//! headers. Admin calls use the admin's token.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::iam::{fake_iam, path_of, Canned};
use super::{FakeUpstream, Recorded};

/// The admin's API token (seeded, as `gitea admin user generate-access-token` would).
pub(crate) const ADMIN_TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";
const ROOT: &str = "http://gitea.test";

#[derive(Debug, Clone)]
struct User {
    id: u64,
    login: String,
    full_name: String,
    email: String,
    password: String,
    is_admin: bool,
    active: bool,
    prohibit_login: bool,
    created: String,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    /// API token -> lower-case username.
    tokens: BTreeMap<String, String>,
    /// Web session id -> lower-case username.
    sessions: BTreeMap<String, String>,
    next_id: u64,
    next_token: u32,
    next_session: u32,
}

/// The `n`th API token this fake issues (40 hex digits, as Gitea's `sha1`).
pub(crate) fn api_token(n: u32) -> String {
    format!("ca7a2f{n:04}00deadbeefcafe0000111122223333")
}

/// The `n`th web session id (16 hex digits, as Gitea's session ids), a canary.
pub(crate) fn session_id(n: u32) -> String {
    format!("c0ffee{n:04}a1b2c3")
}

/// A fake Gitea on 127.0.0.1, with `root` (id 1) as the site admin owning [`ADMIN_TOKEN`].
pub(crate) async fn gitea() -> FakeUpstream {
    let mut s = State {
        next_id: 1,
        ..State::default()
    };
    s.users.insert(
        "root".to_owned(),
        User {
            id: 1,
            login: "root".to_owned(),
            full_name: String::new(),
            email: "root@gitea.test".to_owned(),
            password: "root-password-not-a-canary".to_owned(),
            is_admin: true,
            active: true,
            prohibit_login: false,
            created: "2026-12-01T08:00:00Z".to_owned(),
        },
    );
    s.tokens.insert(ADMIN_TOKEN.to_owned(), "root".to_owned());
    let state = Arc::new(Mutex::new(s));
    fake_iam(move |r| {
        let mut s = state.lock().expect("gitea state");
        answer(&mut s, r)
    })
    .await
}

fn api(status: u16) -> Canned {
    Canned::status(status)
        .header(
            "cache-control",
            "max-age=0, private, must-revalidate, no-transform",
        )
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "SAMEORIGIN")
}

fn api_json(status: u16, v: &Value) -> Canned {
    api(status).json("application/json;charset=utf-8", v)
}

fn api_error(status: u16, message: &str) -> Canned {
    api_json(
        status,
        &json!({"message": message, "url": format!("{ROOT}/api/swagger")}),
    )
}

fn not_found(name: &str) -> Canned {
    api_json(
        404,
        &json!({"errors": [format!("user redirect does not exist [name: {name}]")],
                "message": "The target couldn't be found.", "url": format!("{ROOT}/api/swagger")}),
    )
}

fn user_json(u: &User) -> Value {
    json!({
        "id": u.id, "login": u.login, "login_name": "", "source_id": 0,
        "full_name": u.full_name, "email": u.email,
        "avatar_url": format!("{ROOT}/avatars/{:032x}", u.id),
        "html_url": format!("{ROOT}/{}", u.login), "language": "", "is_admin": u.is_admin,
        "last_login": "0001-01-01T00:00:00Z", "created": u.created, "restricted": false,
        "active": u.active, "prohibit_login": u.prohibit_login, "location": "", "pronouns": "",
        "website": "", "description": "", "visibility": "public", "followers_count": 0,
        "following_count": 0, "starred_repos_count": 0, "username": u.login
    })
}

fn header<'a>(r: &'a Recorded, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn form(r: &Recorded, name: &str) -> Option<String> {
    let body = String::from_utf8_lossy(&r.body);
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%40", "@").replace('+', " "))
    })
}

fn cookie(r: &Recorded, name: &str) -> Option<String> {
    header(r, "cookie")?.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// The API caller: token (`Authorization: token …`) or basic auth.
fn api_user(s: &State, r: &Recorded) -> Option<String> {
    let auth = header(r, "authorization")?;
    // Gitea takes `token <sha1>` and `Bearer <sha1>` alike (services/auth/oauth2.go).
    if let Some(t) = auth
        .strip_prefix("token ")
        .or_else(|| auth.strip_prefix("Bearer "))
    {
        return s.tokens.get(t).cloned();
    }
    let basic = STANDARD.decode(auth.strip_prefix("Basic ")?).ok()?;
    let (user, password) = std::str::from_utf8(&basic).ok()?.split_once(':')?;
    let u = s.users.get(&user.to_lowercase())?;
    (u.password == password && u.active && !u.prohibit_login).then(|| u.login.to_lowercase())
}

fn answer(s: &mut State, r: &Recorded) -> Canned {
    let path = path_of(r).to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (r.method.as_str(), segments.as_slice()) {
        ("POST", ["user", "login"]) => sign_in(s, r),
        ("POST", ["user", "logout"]) => {
            if let Some(sid) = cookie(r, "i_like_gitea") {
                s.sessions.remove(&sid);
            }
            ["i_like_gitea", "gitea_incredible", "_csrf", "redirect_to"]
                .iter()
                .fold(api_json(200, &json!({"redirect": "/"})), |c, name| {
                    c.header(
                        "set-cookie",
                        &format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
                    )
                })
        }
        ("POST", ["api", "v1", "users", name, "tokens"]) => match api_user(s, r) {
            Some(me)
                if me == name.to_lowercase()
                    && header(r, "authorization").is_some_and(|a| a.starts_with("Basic ")) =>
            {
                s.next_token += 1;
                let sha1 = api_token(s.next_token);
                s.tokens.insert(sha1.clone(), me);
                let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                api_json(
                    201,
                    &json!({"id": s.next_token, "name": body["name"], "sha1": sha1,
                            "token_last_eight": &sha1[32..], "scopes": body["scopes"]}),
                )
            }
            _ => api_error(401, "auth required"),
        },
        (_, ["api", "v1", ..]) => match api_user(s, r) {
            None => api_error(401, "token is required"),
            Some(me) => api_call(s, r, &segments[2..], &me),
        },
        _ => Canned::status(404).header("content-type", "text/html; charset=utf-8"),
    }
}

fn sign_in(s: &mut State, r: &Recorded) -> Canned {
    let user_name = form(r, "user_name").unwrap_or_default().to_lowercase();
    let password = form(r, "password").unwrap_or_default();
    let found = s
        .users
        .values()
        .find(|u| u.login.to_lowercase() == user_name || u.email.to_lowercase() == user_name)
        .filter(|u| u.password == password && u.active && !u.prohibit_login)
        .map(|u| u.login.to_lowercase());
    let Some(login) = found.filter(|_| form(r, "_csrf").is_some_and(|c| !c.is_empty())) else {
        return Canned::status(200)
            .header("content-type", "text/html; charset=utf-8")
            .body(
                "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head><title>Sign In - Gitea</title></head>\n\
                 <body><div class=\"ui negative message flash-message flash-error\">\
                 <p>Username or password is incorrect.</p></div></body>\n</html>\n",
            );
    };
    s.next_session += 1;
    let sid = session_id(s.next_session);
    s.sessions.insert(sid.clone(), login);
    Canned::status(303)
        .header("content-type", "text/html; charset=utf-8")
        .header("location", "/")
        .header(
            "set-cookie",
            &format!("i_like_gitea={sid}; Path=/; HttpOnly; SameSite=Lax"),
        )
        .header(
            "set-cookie",
            "_csrf=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax",
        )
        .body("<a href=\"/\">See Other</a>.\n\n")
}

fn api_call(s: &mut State, r: &Recorded, rest: &[&str], me: &str) -> Canned {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let admin = s.users.get(me).is_some_and(|u| u.is_admin);
    match (r.method.as_str(), rest) {
        ("GET", ["user"]) => api_json(200, &user_json(&s.users[me])),
        ("PATCH", ["user", "settings"]) => {
            let Some(u) = s.users.get_mut(me) else {
                return api_error(401, "token is required");
            };
            if let Some(f) = body["full_name"].as_str() {
                u.full_name = f.to_owned();
            }
            api_json(
                200,
                &json!({"full_name": u.full_name, "website": "", "description": "", "location": "",
                        "pronouns": "", "language": "en-US", "theme": "gitea-auto",
                        "diff_view_style": "unified", "hide_email": false, "hide_activity": false}),
            )
        }
        (_, ["admin", ..]) if !admin => api_error(403, "user should be the site admin"),
        ("POST", ["admin", "users"]) => {
            let (Some(login), Some(email)) = (body["username"].as_str(), body["email"].as_str())
            else {
                return api_json(
                    422,
                    &json!([{"fieldNames": ["Username"], "classification": "RequiredError", "message": "Required"}]),
                );
            };
            if s.users.contains_key(&login.to_lowercase()) {
                return api_error(422, &format!("user already exists [name: {login}]"));
            }
            s.next_id += 1;
            let u = User {
                id: s.next_id,
                login: login.to_owned(),
                full_name: body["full_name"].as_str().unwrap_or_default().to_owned(),
                email: email.to_owned(),
                password: body["password"].as_str().unwrap_or_default().to_owned(),
                is_admin: false,
                active: true,
                prohibit_login: false,
                created: format!("2026-12-02T09:{:02}:00Z", s.next_id),
            };
            let out = user_json(&u);
            s.users.insert(login.to_lowercase(), u);
            api_json(201, &out)
        }
        ("PATCH", ["admin", "users", name]) => {
            let Some(u) = s.users.get_mut(&name.to_lowercase()) else {
                return not_found(name);
            };
            if let Some(v) = body["email"].as_str() {
                u.email = v.to_owned();
            }
            if let Some(v) = body["full_name"].as_str() {
                u.full_name = v.to_owned();
            }
            if let Some(v) = body["password"].as_str() {
                u.password = v.to_owned();
            }
            if let Some(v) = body["active"].as_bool() {
                u.active = v;
            }
            if let Some(v) = body["prohibit_login"].as_bool() {
                u.prohibit_login = v;
            }
            if let Some(v) = body["admin"].as_bool() {
                u.is_admin = v;
            }
            api_json(200, &user_json(u))
        }
        ("POST", ["admin", "users", name, "rename"]) => {
            let Some(new) = body["new_username"].as_str() else {
                return api_error(422, "new_username is required");
            };
            if s.users.contains_key(&new.to_lowercase()) {
                return api_error(422, "The username is already taken.");
            }
            let Some(mut u) = s.users.remove(&name.to_lowercase()) else {
                return not_found(name);
            };
            u.login = new.to_owned();
            for owner in s.tokens.values_mut().chain(s.sessions.values_mut()) {
                if *owner == name.to_lowercase() {
                    *owner = new.to_lowercase();
                }
            }
            s.users.insert(new.to_lowercase(), u);
            api(204)
        }
        ("DELETE", ["admin", "users", name]) => {
            let key = name.to_lowercase();
            if key == me {
                return api_error(422, "you cannot delete yourself");
            }
            if s.users.remove(&key).is_none() {
                return not_found(name);
            }
            s.tokens.retain(|_, o| *o != key);
            s.sessions.retain(|_, o| *o != key);
            api(204)
        }
        _ => not_found(rest.join("/").as_str()),
    }
}
