//! A fake Casdoor that answers like the real one (controllers/{auth,account,user}.go of
//! github.com/casdoor/casdoor): every answer is HTTP 200 with Casdoor's `Response`
//! `{"status":"ok"|"error","msg","sub","name","data","data2","data3"}`; success or failure is
//! only in `status`.
//!
//! - `POST /api/signup` → `data: "<owner>/<name>"`, and the session is signed in.
//! - `POST /api/login` (`type: login`) → `data: "<owner>/<name>"`; bad password →
//!   `{"status":"error","msg":"password or code is incorrect, you have 4 remaining chances"}`.
//! - `POST /api/logout` → `data: "<owner>/<name>"` of the session's user (a fresh session id is
//!   set: Beego regenerates it); without a session `{"status":"ok"}` and `data: null`.
//! - `GET /api/get-account` → `sub` (the user's UUID), `name`, `data` the user object;
//!   `"Please login first"` without a session.
//! - `GET /api/get-user?id=<owner>/<name>` → `data` the user object (`null` if none).
//! - `POST /api/add-user`, `POST /api/update-user?id=<owner>/<name>`, `POST /api/delete-user` →
//!   `data: "Affected"` (or `"Unaffected"`); `POST /api/set-password` (form `userOwner`,
//!   `userName`, `oldPassword`, `newPassword`) → `{"status":"ok"}` or `"The password is incorrect"`.
//!
//! The session is Beego's `casdoor_session_id` cookie (`Path=/; Expires=…; Max-Age=2592000;
//! HttpOnly`), set on the first answer of a session. Admin calls authenticate with the
//! application's client id and secret (basic auth), as Casdoor's SDKs do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::iam::{fake_iam, path_of, Canned};
use super::{FakeUpstream, Recorded};

/// The application's `clientId:clientSecret` the admin calls use (basic auth).
pub(crate) const ADMIN_BASIC: &str = "Basic YWRtaW4tY2xpZW50OmFkbWluLXNlY3JldA==";

#[derive(Debug, Clone)]
struct User {
    owner: String,
    name: String,
    id: String,
    display_name: String,
    email: String,
    password: String,
    is_forbidden: bool,
    created_time: String,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    /// Session id -> signed-in `owner/name` (None: anonymous).
    sessions: BTreeMap<String, Option<String>>,
    next_user: u32,
    next_session: u32,
}

/// The UUID Casdoor gives the `n`th user.
pub(crate) fn user_uuid(n: u32) -> String {
    format!("9f3c2b1a-0d4e-4f5a-8b6c-{n:012x}")
}

/// The `n`th session id (32 hex digits), a canary.
pub(crate) fn session_id(n: u32) -> String {
    format!("ca5d0a{n:04}0123456789abcdef0123456789")[..32].to_owned()
}

/// A fake Casdoor on 127.0.0.1 (organization `built-in`).
pub(crate) async fn casdoor() -> FakeUpstream {
    let state = Arc::new(Mutex::new(State::default()));
    fake_iam(move |r| {
        let mut s = state.lock().expect("casdoor state");
        answer(&mut s, r)
    })
    .await
}

/// Casdoor's `Response`, fields in the struct's order (as Go's encoding/json writes them).
fn response(status: &str, msg: &str, sub: &str, name: &str, data: Value, data2: Value) -> String {
    format!(
        r#"{{"status":{},"msg":{},"sub":{},"name":{},"data":{data},"data2":{data2},"data3":null}}"#,
        Value::from(status),
        Value::from(msg),
        Value::from(sub),
        Value::from(name),
    )
}

fn ok(data: Value) -> String {
    response("ok", "", "", "", data, Value::Null)
}

fn error(msg: &str, data: Value) -> String {
    response("error", msg, "", "", data, Value::Null)
}

fn user_json(u: &User) -> Value {
    let mut v = json!({
        "owner": u.owner, "name": u.name, "createdTime": u.created_time,
        "updatedTime": "", "deletedTime": "", "id": u.id, "externalId": "", "type": "normal-user",
        "password": "***", "passwordSalt": "", "passwordType": "plain",
        "displayName": u.display_name, "firstName": "", "lastName": "",
        "avatar": "https://cdn.casbin.org/img/casbin.svg", "email": u.email,
        "emailVerified": false, "phone": "", "countryCode": "", "region": "", "location": ""
    });
    let more = json!({
        "affiliation": "", "title": "", "idCardType": "", "idCard": "", "homepage": "", "bio": "",
        "tag": "", "language": "", "gender": "", "birthday": "", "education": "", "score": 2000,
        "karma": 0, "ranking": 1, "isDefaultAvatar": false, "isOnline": false, "isAdmin": false,
        "isForbidden": u.is_forbidden, "isDeleted": false, "signupApplication": "app-built-in",
        "hash": "", "preHash": "", "properties": {}
    });
    if let (Some(v), Value::Object(more)) = (v.as_object_mut(), more) {
        v.extend(more);
    }
    v
}

fn cookie(r: &Recorded) -> Option<String> {
    r.headers
        .get("cookie")?
        .to_str()
        .ok()?
        .split(';')
        .find_map(|c| {
            c.trim()
                .strip_prefix("casdoor_session_id=")
                .map(str::to_owned)
        })
}

fn form(r: &Recorded, name: &str) -> Option<String> {
    let body = String::from_utf8_lossy(&r.body);
    body.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%2F", "/").replace('+', " "))
    })
}

fn new_session(s: &mut State) -> String {
    s.next_session += 1;
    let sid = session_id(s.next_session);
    s.sessions.insert(sid.clone(), None);
    sid
}

fn answer(s: &mut State, r: &Recorded) -> Canned {
    // Beego: a request without a live session cookie starts a session and sets its cookie.
    let (sid, fresh) = match cookie(r).filter(|c| s.sessions.contains_key(c)) {
        Some(c) => (c, false),
        None => (new_session(s), true),
    };
    let (body, set) = route(s, r, &sid);
    let mut reply = Canned::status(200)
        .header("content-type", "application/json; charset=utf-8")
        .body(body);
    for sid in fresh.then_some(sid).into_iter().chain(set) {
        reply = reply.header(
            "set-cookie",
            &format!(
                "casdoor_session_id={sid}; Path=/; Expires=Fri, 01 Jan 2027 09:00:00 GMT; Max-Age=2592000; HttpOnly"
            ),
        );
    }
    reply
}

/// The answer's body, and a regenerated session id to set (logout).
fn route(s: &mut State, r: &Recorded, sid: &str) -> (String, Option<String>) {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let admin = r
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a == ADMIN_BASIC)
        && STANDARD.decode(&ADMIN_BASIC[6..]).is_ok();
    let path = path_of(r).to_owned();
    let me = s.sessions.get(sid).cloned().flatten();
    match (r.method.as_str(), path.as_str()) {
        ("POST", "/api/signup") => {
            let (Some(org), Some(username)) =
                (body["organization"].as_str(), body["username"].as_str())
            else {
                return (
                    error(
                        "The application does not allow to sign up new account",
                        Value::Null,
                    ),
                    None,
                );
            };
            let key = format!("{org}/{username}");
            if s.users.contains_key(&key) {
                return (error("Username already exists", Value::Null), None);
            }
            s.next_user += 1;
            let user = User {
                owner: org.to_owned(),
                name: username.to_owned(),
                id: user_uuid(s.next_user),
                display_name: body["name"].as_str().unwrap_or_default().to_owned(),
                email: body["email"].as_str().unwrap_or_default().to_owned(),
                password: body["password"].as_str().unwrap_or_default().to_owned(),
                is_forbidden: false,
                created_time: format!("2026-12-02T17:{:02}:00+08:00", s.next_user),
            };
            s.users.insert(key.clone(), user);
            s.sessions.insert(sid.to_owned(), Some(key.clone()));
            (ok(json!(key)), None)
        }
        ("POST", "/api/login") => {
            let key = format!(
                "{}/{}",
                body["organization"].as_str().unwrap_or_default(),
                body["username"].as_str().unwrap_or_default()
            );
            match s.users.get(&key) {
                Some(u) if u.is_forbidden => (
                    error(
                        "The user is forbidden to sign in, please contact the administrator",
                        Value::Null,
                    ),
                    None,
                ),
                Some(u) if Some(u.password.as_str()) == body["password"].as_str() => {
                    s.sessions.insert(sid.to_owned(), Some(key.clone()));
                    (ok(json!(key)), None)
                }
                Some(_) => (
                    error(
                        "password or code is incorrect, you have 4 remaining chances",
                        Value::Null,
                    ),
                    None,
                ),
                None => (
                    error(&format!("The user: {key} doesn't exist"), Value::Null),
                    None,
                ),
            }
        }
        ("POST" | "GET", "/api/logout") => match me {
            None => (ok(Value::Null), None),
            Some(key) => {
                s.sessions.remove(sid);
                let fresh = new_session(s);
                (ok(json!(key)), Some(fresh))
            }
        },
        ("GET", "/api/get-account") => match me.and_then(|k| s.users.get(&k)) {
            None => (
                error("Please login first", json!("Please login first")),
                None,
            ),
            Some(u) => (
                response(
                    "ok",
                    "",
                    &u.id,
                    &u.name,
                    user_json(u),
                    json!({"owner": "admin", "name": u.owner, "displayName": "Built-in Organization"}),
                ),
                None,
            ),
        },
        ("GET", "/api/get-user") if admin => {
            let id = r
                .uri
                .split_once("id=")
                .map(|(_, v)| v.replace("%2F", "/"))
                .unwrap_or_default();
            match s.users.get(&id) {
                Some(u) => (ok(user_json(u)), None),
                None => (ok(Value::Null), None),
            }
        }
        ("POST", "/api/update-user") => {
            let id = r
                .uri
                .split_once("id=")
                .map(|(_, v)| v.replace("%2F", "/"))
                .unwrap_or_default();
            if !admin && me.as_deref() != Some(id.as_str()) {
                return (error("Unauthorized operation", Value::Null), None);
            }
            let Some(u) = s.users.get_mut(&id) else {
                return (
                    error(&format!("The user: {id} doesn't exist"), Value::Null),
                    None,
                );
            };
            let mut changed = false;
            if let Some(v) = body["displayName"]
                .as_str()
                .filter(|v| *v != u.display_name)
            {
                u.display_name = v.to_owned();
                changed = true;
            }
            if let Some(v) = body["email"].as_str().filter(|v| *v != u.email) {
                u.email = v.to_owned();
                changed = true;
            }
            if let Some(v) = body["isForbidden"]
                .as_bool()
                .filter(|v| *v != u.is_forbidden)
            {
                u.is_forbidden = v;
                changed = true;
            }
            (
                ok(json!(if changed { "Affected" } else { "Unaffected" })),
                None,
            )
        }
        ("POST", "/api/add-user") if admin => {
            let key = format!(
                "{}/{}",
                body["owner"].as_str().unwrap_or_default(),
                body["name"].as_str().unwrap_or_default()
            );
            if s.users.contains_key(&key) {
                return (ok(json!("Unaffected")), None);
            }
            s.next_user += 1;
            let user = User {
                owner: body["owner"].as_str().unwrap_or_default().to_owned(),
                name: body["name"].as_str().unwrap_or_default().to_owned(),
                id: body["id"]
                    .as_str()
                    .filter(|i| !i.is_empty())
                    .map(str::to_owned)
                    .unwrap_or_else(|| user_uuid(s.next_user)),
                display_name: body["displayName"].as_str().unwrap_or_default().to_owned(),
                email: body["email"].as_str().unwrap_or_default().to_owned(),
                password: body["password"].as_str().unwrap_or_default().to_owned(),
                is_forbidden: false,
                created_time: format!("2026-12-02T17:{:02}:00+08:00", s.next_user),
            };
            s.users.insert(key, user);
            (ok(json!("Affected")), None)
        }
        ("POST", "/api/delete-user") if admin => {
            let key = format!(
                "{}/{}",
                body["owner"].as_str().unwrap_or_default(),
                body["name"].as_str().unwrap_or_default()
            );
            let affected = s.users.remove(&key).is_some();
            s.sessions.retain(|_, k| k.as_deref() != Some(key.as_str()));
            (
                ok(json!(if affected { "Affected" } else { "Unaffected" })),
                None,
            )
        }
        ("POST", "/api/set-password") => {
            let key = format!(
                "{}/{}",
                form(r, "userOwner").unwrap_or_default(),
                form(r, "userName").unwrap_or_default()
            );
            if me.as_deref() != Some(key.as_str()) && !admin {
                return (
                    error("Please login first", json!("Please login first")),
                    None,
                );
            }
            let Some(u) = s.users.get_mut(&key) else {
                return (
                    error(&format!("The user: {key} doesn't exist"), Value::Null),
                    None,
                );
            };
            if form(r, "oldPassword").as_deref() != Some(u.password.as_str()) {
                return (error("The password is incorrect", Value::Null), None);
            }
            u.password = form(r, "newPassword").unwrap_or_default();
            (ok(Value::Null), None)
        }
        (_, "/api/add-user" | "/api/delete-user") => {
            (error("Unauthorized operation", Value::Null), None)
        }
        _ => (error("Unauthorized operation", Value::Null), None),
    }
}
