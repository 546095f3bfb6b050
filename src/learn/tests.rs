//! The learner end to end in memory: recorded-style exchanges in, a proposal out that
//! compiles as a config, names the right rules, and holds no value it saw.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};

use super::Learner;
use crate::exchange::{CapturedBody, Exchange};
use crate::snapshot::Snapshot;

const CANARIES: [&str; 4] = [
    "CANARY-PASSWORD-0a9b8c7d6e5f",
    "CANARY-TOKEN-1f2e3d4c5b6a",
    "CANARY-COOKIE-99887766",
    "CANARY-NAME-Annabelle",
];

fn ex(
    method: &str,
    path: &str,
    req: &[(&str, &str)],
    body: &str,
    status: u16,
    resp: &[(&str, &str)],
    resp_body: &str,
) -> Exchange {
    let headers = |pairs: &[(&str, &str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    };
    Exchange {
        route: None,
        method: Method::from_bytes(method.as_bytes()).unwrap(),
        uri: Uri::try_from(path).unwrap(),
        request_headers: headers(req),
        request_body: CapturedBody {
            bytes: Bytes::from(body.to_owned()),
            truncated: false,
        },
        status: StatusCode::from_u16(status).unwrap(),
        response_headers: headers(resp),
        response_body: CapturedBody {
            bytes: Bytes::from(resp_body.to_owned()),
            truncated: false,
        },
        remote_ip: None,
        request_id: HeaderValue::from_static(""),
        durable: None,
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// A small home-grown IAM: create, read, update, delete users, log in with a cookie, fail a
/// login, log out (and the cookie is refused after).
fn traffic(l: &Learner) {
    let [pw, _token, cookie, name] = CANARIES;
    for i in 0..5 {
        let id = format!("0192f3a4-5b6c-7d8e-9f01-23456789ab{i:02}");
        let user = format!("{name}{i}");
        let created =
            format!(r#"{{"id":"{id}","username":"{user}","email":"{user}@example.com"}}"#);
        l.observe(&ex(
            "POST",
            "/api/v1/users",
            &[JSON],
            &format!(r#"{{"username":"{user}","email":"{user}@example.com","password":"{pw}"}}"#),
            201,
            &[JSON],
            &created,
        ));
        l.observe(&ex(
            "GET",
            &format!("/api/v1/users/{id}"),
            &[],
            "",
            200,
            &[JSON],
            &created,
        ));
        l.observe(&ex(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            &[JSON],
            &format!(r#"{{"email":"{user}@new.example"}}"#),
            200,
            &[JSON],
            &created,
        ));
        let sid = format!("{cookie}-{i}");
        l.observe(&ex(
            "POST",
            "/api/v1/login",
            &[JSON],
            &format!(r#"{{"username":"{user}","password":"{pw}"}}"#),
            200,
            &[
                JSON,
                ("set-cookie", &format!("sid={sid}; Path=/; HttpOnly")),
            ],
            &format!(r#"{{"user":{{"id":"{id}","username":"{user}"}}}}"#),
        ));
        l.observe(&ex(
            "POST",
            "/api/v1/login",
            &[JSON],
            &format!(r#"{{"username":"{user}","password":"wrong-{pw}"}}"#),
            401,
            &[JSON],
            r#"{"error":"invalid credentials"}"#,
        ));
        let c = format!("sid={sid}");
        l.observe(&ex(
            "GET",
            "/api/v1/me",
            &[("cookie", &c)],
            "",
            200,
            &[JSON],
            &created,
        ));
        l.observe(&ex(
            "POST",
            "/api/v1/session/end",
            &[("cookie", &c)],
            "",
            204,
            &[],
            "",
        ));
        l.observe(&ex(
            "GET",
            "/api/v1/me",
            &[("cookie", &c)],
            "",
            401,
            &[JSON],
            r#"{"error":"no"}"#,
        ));
        l.observe(&ex(
            "DELETE",
            &format!("/api/v1/users/{id}"),
            &[],
            "",
            204,
            &[],
            "",
        ));
        l.observe(&ex(
            "GET",
            "/static/app.js",
            &[],
            "",
            200,
            &[("content-type", "text/javascript")],
            "x",
        ));
    }
}

#[test]
fn a_home_grown_iam_is_learned_and_the_proposal_compiles() {
    let l = Learner::new(
        "/nonexistent/learned.yaml".into(),
        "http://127.0.0.1:8081",
        1 << 20,
    );
    traffic(&l);
    let text = l.proposal();
    for c in CANARIES {
        assert!(!text.contains(c), "canary {c} in the proposal:\n{text}");
    }
    let learned = l.learned.lock().unwrap();
    let debug = format!("{:?}", learned.endpoints);
    for c in CANARIES {
        assert!(!debug.contains(c), "canary {c} kept in memory");
    }
    drop(learned);
    let snapshot = Snapshot::from_text(&text, None)
        .unwrap_or_else(|e| panic!("the proposal does not compile: {e}\n{text}"));
    let rules: Vec<String> = snapshot
        .file
        .routes
        .iter()
        .map(|r| format!("{:?} {} {}", r.action, r.method, r.path))
        .collect();
    let rules = rules.join("\n");
    for want in [
        "POST /api/v1/users",
        "PATCH /api/v1/users/{user}",
        "DELETE /api/v1/users/{user}",
        "GET /api/v1/users/{user}",
        "POST /api/v1/login",
        "POST /api/v1/session/end",
    ] {
        assert!(rules.contains(want), "no rule for {want}:\n{rules}\n{text}");
    }
    assert!(text.contains("- action: created\n    method: POST\n    path: /api/v1/users\n    status: [201]\n    fields:\n      ID: [response.body.id]"), "{text}");
    assert!(
        text.contains(
            "- action: login_failed\n    method: POST\n    path: /api/v1/login\n    status: [401]"
        ),
        "{text}"
    );
    assert!(text.contains("issues: [response.cookie.sid]"), "{text}");
    assert!(
        text.contains("presents: [request.cookie.sid]\n      ends: true"),
        "{text}"
    );
    assert!(text.contains("ID: [path.user]"), "{text}");
    assert!(!text.contains("/static"), "{text}");
}

#[test]
fn the_proposal_is_written_to_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("learned.yaml");
    let l = Learner::new(out.clone(), "http://127.0.0.1:8081", 1 << 20);
    traffic(&l);
    l.write().unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), l.proposal());
    let bad = Learner::new(dir.path().join("no/such/dir/x.yaml"), "http://x", 1);
    let e = bad.write().unwrap_err().to_string();
    assert!(e.starts_with("cannot write the learned rules to "), "{e}");
}

#[test]
fn memory_is_bounded() {
    let l = Learner::new("/x".into(), "http://x", 1 << 20);
    for i in 0..(super::observe::MAX_ENDPOINTS + 50) {
        l.observe(&ex("GET", &format!("/r{i}/list"), &[], "", 200, &[], ""));
    }
    let learned = l.learned.lock().unwrap();
    assert_eq!(learned.endpoints.len(), super::observe::MAX_ENDPOINTS);
    assert_eq!(learned.overflow, 50);
}
