//! The rule language through a real exchange: operators in `when:`, constants and transforms,
//! custom actions, multi-action rules, and what an update changed.

use super::*;

const KEYSTONE_LOGIN: &str = r#"
routes:
  - action: login
    method: POST
    path: /v3/auth/tokens
    status: [201]
    when:
      request.body.auth.identity.methods: password
      request.body.auth.scope.system: {exists: false}
    fields:
      ID: response.body.token.user.id
      Name: response.body.token.user.name
  - action: login
    method: POST
    path: /v3/auth/tokens
    status: [201]
    when:
      request.body.auth.identity.methods: {contains: application_credential}
    fields:
      ID: response.body.token.user.id
      Method: request.body.auth.identity.methods | first
      Methods: request.body.auth.identity.methods | join
"#;

fn keystone_login(methods: serde_json::Value, scope: serde_json::Value) -> Call {
    call("POST", "/v3/auth/tokens")
        .json(json!({"auth": {"identity": {"methods": methods, "password": {"user": {"name": "admin", "password": CANARY}}}, "scope": scope}}))
        .status(201)
        .resp_header("x-subject-token", "gAAAAAB-opaque")
        .resp_json(json!({"token": {"methods": ["password"], "user": {"id": "u-1", "name": "admin"}}}))
}

#[test]
fn the_shorthand_matches_an_element_of_an_array() {
    let rt = runtime(KEYSTONE_LOGIN);
    let x = Extractor::new(10);
    let ev = run(
        &x,
        &rt,
        keystone_login(json!(["password"]), json!({"project": {"id": "p"}})),
    )
    .expect("a password login");
    assert_eq!(ev.user, user(&[("ID", "u-1"), ("Name", "admin")]));
    // Re-scoping with a token is no login; a system scope is excluded by `exists: false`.
    assert!(run(&x, &rt, keystone_login(json!(["token"]), json!({}))).is_none());
    assert!(run(
        &x,
        &rt,
        keystone_login(json!(["password"]), json!({"system": {"all": true}}))
    )
    .is_none());
    // `contains`, `| first` and `| join` on the same array.
    let ev = run(
        &x,
        &rt,
        keystone_login(json!(["application_credential", "totp"]), json!({})),
    )
    .expect("an application credential login");
    // Every event is filled from what is known: the name from the first login.
    assert_eq!(
        ev.user,
        user(&[
            ("ID", "u-1"),
            ("Method", "application_credential"),
            ("Methods", "application_credential, totp"),
            ("Name", "admin")
        ])
    );
}

const BETTER_AUTH: &str = r#"
routes:
  - action: [created, login]
    method: POST
    path: /api/auth/sign-up/email
    status: [200]
    when:
      response.body.token: {exists: true}
      response.body.user.email: {not: [fake@example.com]}
    fields:
      ID: response.body.user.id
      Email: response.body.user.email
      Name: [response.body.user.name | default.unknown]
      Enabled: [response.body.user.banned | not, const.true]
      Source: const.better-auth
  - action: updated
    method: POST
    path: /api/auth/admin/ban-user
    status: [200]
    when:
      response.body.user.role: {any: [user, member]}
      request.body.banReason: {prefix: ["spam", "abuse"]}
    fields:
      ID: response.body.user.id
      Enabled: response.body.user.banned | not
"#;

#[test]
fn multi_action_sign_up_emits_created_then_login_with_constants_and_transforms() {
    let rt = runtime(BETTER_AUTH);
    let x = Extractor::new(10);
    let sign_up = |token: serde_json::Value, email: &str, name: serde_json::Value| {
        call("POST", "/api/auth/sign-up/email")
            .json(json!({"email": email, "password": CANARY, "name": name}))
            .resp_json(json!({"token": token, "user": {"id": "ba-1", "email": email, "name": name, "banned": false}}))
    };
    let events = run_all(&x, &rt, sign_up(json!("sess-tok"), "ann@x.io", json!("")));
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["created", "login"]);
    let want = user(&[
        ("ID", "ba-1"),
        ("Email", "ann@x.io"),
        ("Name", "unknown"),
        ("Enabled", "true"),
        ("Source", "better-auth"),
    ]);
    for ev in &events {
        assert_eq!(ev.user, want, "{}", ev.event_type);
    }
    assert_eq!(events[1].seq, events[0].seq + 1);
    assert_ne!(events[0].id, events[1].id);
    assert_eq!(events[0].request, events[1].request);
    // A duplicate sign-up answers 200 with no token: not a created.
    assert!(run_all(&x, &rt, sign_up(json!(null), "ann@x.io", json!("Ann"))).is_empty());
    assert!(run_all(
        &x,
        &rt,
        sign_up(json!("t"), "fake@example.com", json!("Ann"))
    )
    .is_empty());

    let ban = |role: &str, reason: &str| {
        call("POST", "/api/auth/admin/ban-user")
            .json(json!({"userId": "ba-1", "banReason": reason}))
            .resp_json(json!({"user": {"id": "ba-1", "role": role, "banned": true}}))
    };
    let ev = run(&x, &rt, ban("user", "spam links")).expect("a ban");
    assert_eq!(ev.user["Enabled"], "false");
    assert_eq!(ev.user["Email"], "ann@x.io", "filled from the cache");
    assert!(run(&x, &rt, ban("admin", "spam")).is_none());
    assert!(run(&x, &rt, ban("user", "other")).is_none());
}

const CUSTOM: &str = r#"
routes:
  - {action: created, method: POST, path: /v3/users, status: [201], fields: {ID: response.body.user.id, Name: response.body.user.name, Email: response.body.user.email}}
  - {action: password_changed, method: POST, path: "/v3/users/{user_id}/password", status: [204], fields: {ID: path.user_id}}
  - {action: updated, method: PATCH, path: "/v3/users/{user_id}", fields: {ID: path.user_id, Email: request.body.user.email, Name: request.body.user.name}}
"#;

#[test]
fn custom_actions_are_events_filled_from_the_cache() {
    let rt = runtime(CUSTOM);
    let x = Extractor::new(10);
    run(
        &x,
        &rt,
        call("POST", "/v3/users")
            .json(json!({"user": {"name": "bob", "password": CANARY}}))
            .status(201)
            .resp_json(json!({"user": {"id": "k-9", "name": "bob", "email": "bob@x.io"}})),
    )
    .expect("created");
    let ev = run(
        &x,
        &rt,
        call("POST", "/v3/users/k-9/password")
            .json(json!({"user": {"password": CANARY, "original_password": CANARY}}))
            .status(204),
    )
    .expect("password_changed");
    assert_eq!(ev.action.as_str(), "password_changed");
    assert_eq!(ev.event_type, "user.password_changed");
    assert_eq!(
        ev.user,
        user(&[("ID", "k-9"), ("Name", "bob"), ("Email", "bob@x.io")])
    );
    assert!(ev.changed.is_empty());
}

#[test]
fn updates_say_what_changed_and_what_it_was() {
    let rt = runtime(CUSTOM);
    let x = Extractor::new(10);
    let update = |body: serde_json::Value| {
        call("PATCH", "/v3/users/k-9")
            .json(json!({"user": body}))
            .resp_json(json!({"user": {"id": "k-9"}}))
    };
    // Not seen before: nothing is claimed to have changed.
    let ev = run(&x, &rt, update(json!({"email": "a@x.io", "name": "bob"}))).expect("updated");
    assert!(ev.changed.is_empty() && ev.previous.is_empty(), "{ev:?}");
    let ev = run(&x, &rt, update(json!({"email": "b@x.io", "name": "bob"}))).expect("updated");
    assert_eq!(ev.changed, ["Email"]);
    assert_eq!(ev.previous, user(&[("Email", "a@x.io")]));
    let rendered = crate::template::BodyTemplate::compile(
        "{{$$.Name$$}}: {{$$.Changed$$}} from {{$$.Previous.Email$$}} to {{$$.Email$$}}",
        crate::template::BodyKind::Text,
        &|_| false,
    )
    .expect("template")
    .render(&crate::template::EventVars(&ev));
    assert_eq!(rendered, b"bob: Email from a@x.io to b@x.io");
    // A partial update: only what it carries counts; the event still has the rest.
    let ev = run(&x, &rt, update(json!({"name": "robert"}))).expect("updated");
    assert_eq!(ev.changed, ["Name"]);
    assert_eq!(ev.previous, user(&[("Name", "bob")]));
    assert_eq!(ev.user["Email"], "b@x.io");
    let ev = run(&x, &rt, update(json!({"name": "robert"}))).expect("updated");
    assert!(ev.changed.is_empty());
}
