//! Sources and transforms through a real rule, and bodies: encodings, truncation, malformed.

use super::*;

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
    // The bearer's claims are the client's word: used here because the operator says so.
    let rt = runtime(&format!(
        "identity: {{client_tokens: unverified}}\n{SOURCES}"
    ));
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
    // The user's ID came from the response: the exchange named them.
    assert_eq!(ev.attribution, Attribution::Exchange);

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
fn client_token_claims_are_dropped_unless_verified() {
    let x = Extractor::new(10);
    let bearer = token(&json!({"email": "bearer@x", "realm_access": {"roles": ["admin"]}}));
    let c = || {
        call("POST", "/t/acme/users")
            .req_header("authorization", &format!("Bearer {bearer}"))
            .status(201)
            .resp_json(json!({"id": 7}))
    };
    for mode in [
        "",
        "identity: {client_tokens: verify}\n",
        "identity: {client_tokens: ignore}\n",
    ] {
        let rt = runtime(&format!("{mode}{SOURCES}"));
        let ev = run(&x, &rt, c()).expect("event");
        assert_eq!(ev.user.get("Claim"), None, "{mode}");
        assert_eq!(ev.user.get("Nested"), None, "{mode}");
        assert_eq!(ev.user["ID"], "7");
    }
}

#[test]
fn cookies_and_the_bearer_token_are_sources() {
    let rt = runtime(
        r#"
routes:
  - action: login
    method: POST
    path: /sign-in
    fields:
      ID: response.body.user.id
      Session: response.cookie.sid
      Theme: request.cookie.theme
      Raw: request.bearer
"#,
    );
    let x = Extractor::new(10);
    let ev = run(
        &x,
        &rt,
        call("POST", "/sign-in")
            .req_header("cookie", "theme=dark; other=1")
            .req_header("authorization", "Bearer opaque-tok")
            .resp_header("set-cookie", "sid=s-123; Max-Age=60; HttpOnly")
            .resp_json(json!({"user": {"id": "u1"}})),
    )
    .expect("event");
    assert_eq!(
        ev.user,
        user(&[
            ("ID", "u1"),
            ("Session", "s-123"),
            ("Theme", "dark"),
            ("Raw", "opaque-tok")
        ]),
        "an operator may map credentials explicitly"
    );
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
