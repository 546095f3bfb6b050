//! A fake ZITADEL (v2 APIs over HTTP/JSON, as its gRPC gateway serves them:
//! proto/zitadel/user/v2/user_service.proto, proto/zitadel/session/v2/session_service.proto):
//!
//! - Users: `POST /v2/users/human` (AddHumanUser) 201 `{userId, details}`; `PUT
//!   /v2/users/human/{user_id}` 200 `{details}`; `GET /v2/users/{user_id}` 200 `{details, user}`;
//!   `DELETE /v2/users/{user_id}` 200 `{details}`; `POST /v2/users/{user_id}/password` 200;
//!   `POST /v2/users/{user_id}/deactivate` / `reactivate` 200.
//! - Sessions: `POST /v2/sessions` (CreateSession) 201 `{details, sessionId, sessionToken}`;
//!   `PATCH /v2/sessions/{session_id}` (SetSession: more checks) 200 `{details, sessionToken}`;
//!   `GET /v2/sessions/{session_id}` 200 `{session}`; `DELETE /v2/sessions/{session_id}` 200
//!   `{details}`.
//! - Errors: the gateway's `{"code": <gRPC code>, "message": "… (ID)", "details": […]}` with
//!   400 (invalid argument: a wrong password), 404 (not found), 409 (already exists), 401.
//!
//! IDs are ZITADEL's 18-digit snowflakes as strings; `details` carry `sequence`, `changeDate`,
//! `resourceOwner`. Callers authenticate with a bearer token (a PAT, or a session token).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::iam::{fake_iam, path_of, Canned};
use super::{FakeUpstream, Recorded};

/// The login UI's service-user PAT (as the custom login UI guide sets up).
pub(crate) const PAT: &str = "Bearer admin-pat-not-a-canary";
/// The organization every user here belongs to.
pub(crate) const ORG: &str = "300000000000000001";

#[derive(Debug, Clone)]
struct User {
    id: String,
    username: String,
    given: String,
    family: String,
    email: String,
    password: String,
    active: bool,
}

#[derive(Debug, Clone)]
struct Session {
    user: Option<String>,
    password_checked: bool,
    token: String,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    sessions: BTreeMap<String, Session>,
    next: u32,
    sequence: u32,
}

/// The id of the `n`th object this fake creates (users and sessions share the counter, as
/// ZITADEL's snowflake ids do).
pub(crate) fn object_id(n: u32) -> String {
    format!("3{:017}", 100_000 + n)
}

/// The `n`th session token (ZITADEL's are long opaque strings), a canary.
pub(crate) fn session_token(n: u32) -> String {
    format!("CANARY-ZSESS-{n:04}-Hm4kR9xT2pQ7wL3nV8bY5cJ1dF6gS0aZ")
}

/// A fake ZITADEL on 127.0.0.1.
pub(crate) async fn zitadel() -> FakeUpstream {
    let state = Arc::new(Mutex::new(State::default()));
    fake_iam(move |r| {
        let mut s = state.lock().expect("zitadel state");
        answer(&mut s, r)
    })
    .await
}

fn reply(status: u16, v: &Value) -> Canned {
    Canned::status(status)
        .header("grpc-metadata-content-type", "application/grpc")
        .json("application/json", v)
}

/// The gateway's `google.rpc.Status`, keys in its order (`code`, `message`, `details`).
fn error(status: u16, code: u32, id: &str, message: &str) -> Canned {
    let body = format!(
        r#"{{"code":{code},"message":{},"details":[{{"@type":"type.googleapis.com/zitadel.v1.ErrorDetail","id":{},"message":{}}}]}}"#,
        Value::from(format!("{message} ({id})")),
        Value::from(id),
        Value::from(message),
    );
    Canned::status(status)
        .header("grpc-metadata-content-type", "application/grpc")
        .header("content-type", "application/json")
        .body(body)
}

fn details(s: &mut State) -> Value {
    s.sequence += 1;
    json!({"sequence": s.sequence.to_string(),
           "changeDate": format!("2026-12-02T09:{:02}:00.123456Z", s.sequence % 60),
           "resourceOwner": ORG})
}

fn next_id(s: &mut State) -> (u32, String) {
    s.next += 1;
    (s.next, object_id(s.next))
}

fn bearer(r: &Recorded) -> Option<&str> {
    r.headers.get("authorization")?.to_str().ok()
}

/// The caller is the PAT, or holds a live session token with a checked password.
fn authorized(s: &State, r: &Recorded) -> bool {
    bearer(r).is_some_and(|b| {
        b == PAT
            || s.sessions
                .values()
                .any(|x| x.password_checked && b.strip_prefix("Bearer ") == Some(x.token.as_str()))
    })
}

fn answer(s: &mut State, r: &Recorded) -> Canned {
    if !authorized(s, r) {
        return error(401, 16, "AUTH-7fs1e", "auth header missing");
    }
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let path = path_of(r).to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (r.method.as_str(), segments.as_slice()) {
        ("POST", ["v2", "users", "human"]) => add_human(s, &body),
        ("PUT", ["v2", "users", "human", id]) => {
            let Some(u) = s.users.get_mut(*id) else {
                return error(404, 5, "QUERY-Dfbg2", "User could not be found");
            };
            if let Some(v) = body["username"].as_str() {
                u.username = v.to_owned();
            }
            if let Some(v) = body["profile"]["givenName"].as_str() {
                u.given = v.to_owned();
            }
            if let Some(v) = body["profile"]["familyName"].as_str() {
                u.family = v.to_owned();
            }
            if let Some(v) = body["email"]["email"].as_str() {
                u.email = v.to_owned();
            }
            let d = details(s);
            reply(200, &json!({"details": d}))
        }
        ("GET", ["v2", "users", id]) => match s.users.get(*id).cloned() {
            Some(u) => {
                let d = details(s);
                reply(200, &json!({"details": d, "user": user_json(&u)}))
            }
            None => error(404, 5, "QUERY-Dfbg2", "User could not be found"),
        },
        ("DELETE", ["v2", "users", id]) => match s.users.remove(*id) {
            Some(_) => {
                s.sessions.retain(|_, x| x.user.as_deref() != Some(*id));
                let d = details(s);
                reply(200, &json!({"details": d}))
            }
            None => error(404, 5, "COMMAND-5M0ds", "User could not be found"),
        },
        ("POST", ["v2", "users", id, "password"]) => {
            let Some(u) = s.users.get_mut(*id) else {
                return error(404, 5, "COMMAND-3M0fs", "User could not be found");
            };
            if let Some(current) = body["currentPassword"].as_str() {
                if current != u.password {
                    return error(400, 3, "COMMAND-3M0fs", "Password is invalid");
                }
            }
            u.password = body["newPassword"]["password"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let d = details(s);
            reply(200, &json!({"details": d}))
        }
        ("POST", ["v2", "users", id, action @ ("deactivate" | "reactivate")]) => {
            let Some(u) = s.users.get_mut(*id) else {
                return error(404, 5, "COMMAND-m9cV8", "User could not be found");
            };
            let deactivate = *action == "deactivate";
            if u.active != deactivate {
                return error(
                    400,
                    9,
                    "COMMAND-5M0sf",
                    "User is in an invalid state for this action",
                );
            }
            u.active = !deactivate;
            let d = details(s);
            reply(200, &json!({"details": d}))
        }
        ("POST", ["v2", "sessions"]) => create_session(s, &body),
        ("PATCH", ["v2", "sessions", id]) => set_session(s, id, &body),
        ("GET", ["v2", "sessions", id]) => match s.sessions.get(*id).cloned() {
            Some(x) => {
                let user = x.user.as_ref().and_then(|u| s.users.get(u)).cloned();
                let mut factors = json!({});
                if let Some(u) = &user {
                    factors["user"] = json!({"verifiedAt": "2026-12-02T09:00:00Z", "id": u.id,
                        "loginName": u.username, "displayName": format!("{} {}", u.given, u.family),
                        "organizationId": ORG});
                }
                if x.password_checked {
                    factors["password"] = json!({"verifiedAt": "2026-12-02T09:00:01Z"});
                }
                reply(
                    200,
                    &json!({"session": {"id": id, "creationDate": "2026-12-02T09:00:00Z",
                    "changeDate": "2026-12-02T09:00:01Z", "sequence": "7", "factors": factors,
                    "metadata": {}, "expirationDate": "2026-12-02T14:00:00Z"}}),
                )
            }
            None => error(404, 5, "QUERY-SFeaa", "Session does not exist"),
        },
        ("DELETE", ["v2", "sessions", id]) => match s.sessions.remove(*id) {
            Some(_) => {
                let d = details(s);
                reply(200, &json!({"details": d}))
            }
            None => error(404, 5, "QUERY-SFeaa", "Session does not exist"),
        },
        _ => error(404, 5, "HTTP-404", "Not Found"),
    }
}

fn user_json(u: &User) -> Value {
    json!({"userId": u.id, "details": {"sequence": "1", "changeDate": "2026-12-02T09:00:00Z",
        "resourceOwner": ORG},
        "state": if u.active { "USER_STATE_ACTIVE" } else { "USER_STATE_INACTIVE" },
        "username": u.username, "loginNames": [u.username.clone()],
        "preferredLoginName": u.username,
        "human": {"profile": {"givenName": u.given, "familyName": u.family,
            "displayName": format!("{} {}", u.given, u.family), "preferredLanguage": "en",
            "gender": "GENDER_UNSPECIFIED"},
            "email": {"email": u.email, "isVerified": false}, "phone": {},
            "passwordChanged": "2026-12-02T09:00:00Z"}})
}

fn add_human(s: &mut State, body: &Value) -> Canned {
    let username = body["username"]
        .as_str()
        .or_else(|| body["email"]["email"].as_str())
        .unwrap_or_default()
        .to_owned();
    if s.users.values().any(|u| u.username == username) {
        return error(409, 6, "COMMAND-CxnLF", "User already exists");
    }
    let (_, id) = next_id(s);
    let u = User {
        id: id.clone(),
        username,
        given: body["profile"]["givenName"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        family: body["profile"]["familyName"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        email: body["email"]["email"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        password: body["password"]["password"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        active: true,
    };
    s.users.insert(id.clone(), u);
    let d = details(s);
    reply(201, &json!({"userId": id, "details": d}))
}

/// Runs the user and password checks of a request on a session.
fn check(s: &State, session: &mut Session, checks: &Value) -> Result<(), Canned> {
    let user = &checks["user"];
    if !user.is_null() {
        let found = s.users.values().find(|u| match user["userId"].as_str() {
            Some(id) => u.id == id,
            None => user["loginName"].as_str() == Some(u.username.as_str()),
        });
        match found {
            Some(u) => session.user = Some(u.id.clone()),
            None => return Err(error(404, 5, "QUERY-Dfbg2", "User could not be found")),
        }
    }
    if let Some(password) = checks["password"]["password"].as_str() {
        let Some(u) = session.user.as_ref().and_then(|id| s.users.get(id)) else {
            return Err(error(400, 9, "COMMAND-Sfw3f", "User not checked"));
        };
        if !u.active {
            return Err(error(400, 9, "COMMAND-Df4b3", "User is not active"));
        }
        if u.password != password {
            return Err(error(400, 3, "COMMAND-3M0fs", "Password is invalid"));
        }
        session.password_checked = true;
    }
    Ok(())
}

fn create_session(s: &mut State, body: &Value) -> Canned {
    let mut session = Session {
        user: None,
        password_checked: false,
        token: String::new(),
    };
    if let Err(e) = check(s, &mut session, &body["checks"]) {
        return e;
    }
    let (n, id) = next_id(s);
    session.token = session_token(n);
    let token = session.token.clone();
    s.sessions.insert(id.clone(), session);
    let d = details(s);
    reply(
        201,
        &json!({"details": d, "sessionId": id, "sessionToken": token}),
    )
}

fn set_session(s: &mut State, id: &str, body: &Value) -> Canned {
    let Some(mut session) = s.sessions.get(id).cloned() else {
        return error(404, 5, "QUERY-SFeaa", "Session does not exist");
    };
    if let Err(e) = check(s, &mut session, &body["checks"]) {
        return e;
    }
    s.next += 1;
    session.token = session_token(s.next);
    let token = session.token.clone();
    s.sessions.insert(id.to_owned(), session);
    let d = details(s);
    reply(200, &json!({"details": d, "sessionToken": token}))
}
