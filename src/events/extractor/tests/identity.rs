//! Identity through real rules: `details:` never cached, the session index naming callers by a
//! cookie or a header token, unattributed events, and deletes forgetting sessions.

use super::*;

const RULES: &str = r#"
routes:
  - action: login
    method: POST
    path: /login
    fields:
      ID: response.body.user.id
      Name: response.body.user.name
      Email: response.body.user.email
    details:
      Method: request.body.method
      Remember: request.body.remember
    session:
      issues: [response.cookie.sid, response.header.x-subject-token]
  - action: updated
    method: POST
    path: /me
    fields:
      Name: request.body.name
    session:
      presents: [request.cookie.sid]
  - action: logout
    method: POST
    path: /logout
    session:
      presents: [request.cookie.sid, request.header.x-subject-token]
      ends: true
  - action: deleted
    method: DELETE
    path: /users/{id}
    fields:
      ID: path.id
"#;

fn login(cookie: &str) -> Call {
    call("POST", "/login")
        .json(json!({"method": "password", "remember": true, "password": CANARY}))
        .resp_header(
            "set-cookie",
            &format!("sid={cookie}; Max-Age=3600; HttpOnly"),
        )
        .resp_header("x-subject-token", &format!("{cookie}-header"))
        .resp_json(json!({"user": {"id": "u1", "name": "ann", "email": "ann@x"}}))
}

#[test]
fn details_belong_to_their_event_only() {
    let rt = runtime(RULES);
    let x = Extractor::new(10);
    let ev = run(&x, &rt, login("c1")).expect("login");
    assert_eq!(
        ev.details,
        user(&[("Method", "password"), ("Remember", "true")])
    );
    assert_eq!(
        ev.user,
        user(&[("ID", "u1"), ("Name", "ann"), ("Email", "ann@x")])
    );
    let json = serde_json::to_value(&ev).expect("json");
    assert_eq!(json["details"]["Method"], "password");
    assert_eq!(json["attribution"], "exchange");
    assert_eq!(
        x.cache().get("u1"),
        Some(ev.user.clone()),
        "no detail in the cache"
    );
    let deleted = run(&x, &rt, call("DELETE", "/users/u1")).expect("deleted");
    assert_eq!(
        deleted.user, ev.user,
        "the delete names ann, without the login's details"
    );
    assert!(deleted.details.is_empty());
    assert!(serde_json::to_value(&deleted)
        .expect("json")
        .get("details")
        .is_none());
}

#[test]
fn the_cookie_names_the_caller_until_it_ends() {
    let rt = runtime(RULES);
    let x = Extractor::new(10);
    run(&x, &rt, login("canary-sid-7f3a")).expect("login");
    let me = run(
        &x,
        &rt,
        call("POST", "/me")
            .req_header("cookie", "theme=dark; sid=canary-sid-7f3a")
            .json(json!({"name": "annie"})),
    )
    .expect("updated");
    assert_eq!(me.attribution, Attribution::Session);
    assert_eq!(
        me.user,
        user(&[("ID", "u1"), ("Name", "annie"), ("Email", "ann@x")])
    );
    assert_eq!(
        x.cache().get("u1").expect("cached")["Name"],
        "annie",
        "the cache learned it"
    );
    assert!(!serde_json::to_string(&me)
        .expect("json")
        .contains("canary-sid-7f3a"));

    let out = run(
        &x,
        &rt,
        call("POST", "/logout").req_header("cookie", "sid=canary-sid-7f3a"),
    )
    .expect("logout");
    assert_eq!(
        (out.attribution, out.user["Name"].as_str()),
        (Attribution::Session, "annie")
    );
    let again = run(
        &x,
        &rt,
        call("POST", "/logout").req_header("cookie", "sid=canary-sid-7f3a"),
    )
    .expect("logout");
    assert_eq!(
        (again.attribution, again.user.len()),
        (Attribution::None, 0)
    );

    // The header token issued by the same login still names ann; an unknown one nobody.
    let header = run(
        &x,
        &rt,
        call("POST", "/logout").req_header("x-subject-token", "canary-sid-7f3a-header"),
    )
    .expect("logout");
    assert_eq!(header.user["ID"], "u1");
    let unknown = run(
        &x,
        &rt,
        call("POST", "/logout").req_header("x-subject-token", "made-up"),
    )
    .expect("logout");
    assert_eq!(unknown.attribution, Attribution::None);
}

#[test]
fn a_deleted_user_takes_their_sessions_along() {
    let rt = runtime(RULES);
    let x = Extractor::new(10);
    run(&x, &rt, login("c1")).expect("login");
    assert_eq!(x.identity().sessions.len(), 2);
    run(&x, &rt, call("DELETE", "/users/u1")).expect("deleted");
    assert!(x.identity().sessions.is_empty());
    assert!(x.cache().is_empty());
    let ev = run(
        &x,
        &rt,
        call("POST", "/logout").req_header("cookie", "sid=c1"),
    )
    .expect("logout");
    assert_eq!(ev.attribution, Attribution::None);
}

#[test]
fn a_deleted_cookie_is_no_session() {
    let rt = runtime(RULES);
    let x = Extractor::new(10);
    let gone = call("POST", "/login")
        .resp_header("set-cookie", "sid=; Max-Age=0")
        .resp_json(json!({"user": {"id": "u1"}}));
    run(&x, &rt, gone).expect("login");
    assert!(x.identity().sessions.is_empty());
}
