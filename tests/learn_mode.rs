//! Learn mode inside `serve` (`learn: {out: FILE}`), the real server in process: unmatched
//! calls are forwarded exactly as without it (no `X-Request-Id` added, same answer), matched
//! calls are still detected, `GET /learn` shows the proposal (404 when learn mode is off), the
//! file is written at shutdown, and `learn:` is checked like every other key.

mod support;

use serde_json::json;
use support::iam::{call, fake_iam, Canned, JSON};
use support::{config_for, eventually, Userhook};

fn users_iam() -> impl Fn(&support::Recorded) -> Canned + Send + Sync + 'static {
    |r| match (r.method.as_str(), support::iam::path_of(r)) {
        ("POST", "/users") => {
            Canned::status(201).json("application/json", &json!({"id": 7, "username": "ann"}))
        }
        ("GET", "/static/app.js") => Canned::status(200)
            .header("content-type", "text/javascript")
            .body("console.log(1)"),
        ("POST", "/ping") => Canned::status(204),
        _ => Canned::status(404),
    }
}

#[tokio::test]
async fn learn_mode_learns_everything_and_changes_nothing() {
    let iam = fake_iam(users_iam()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("learned.yaml");
    let uh = Userhook::start(
        &config_for(
            &iam.url(),
            &format!(
                "profiles: [generic]\nlearn: {{out: '{}'}}\ndelivery: {{guarantee: strict, spool_dir: '{}'}}\n",
                out.display(),
                dir.path().join("spool").display()
            ),
        ),
        false,
    )
    .await;
    let mut events = uh.handle.subscribe();
    let base = uh.url();

    // Unmatched: the answer and what the IAM saw are as without userhook's learn mode.
    let r = call(&base, "GET", "/static/app.js", &[("accept", "*/*")], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], b"console.log(1)");
    // An unmatched bodiless answer in strict mode is never held (it can be no event).
    let r = call(&base, "POST", "/ping", JSON, "{}").await;
    assert_eq!(r.status, 204);
    for seen in iam.requests() {
        assert!(
            seen.headers.get("x-request-id").is_none(),
            "learn mode added a request id to {}",
            seen.uri
        );
    }

    // Matched: still detected.
    let r = call(
        &base,
        "POST",
        "/users",
        JSON,
        r#"{"username":"ann","password":"CANARY-learn-mode-pw-42"}"#,
    )
    .await;
    assert_eq!(r.status, 201);
    let ev = support::iam::next_event(&mut events).await;
    assert_eq!(ev.action.to_string(), "created");
    assert_eq!(ev.user.get("ID").map(String::as_str), Some("7"));

    // GET /learn: every exchange counted, matched or not.
    let admin = format!("http://{}", uh.handle.admin_addr);
    let text = eventually(
        std::time::Duration::from_secs(10),
        "three exchanges learned",
        || async {
            let r = call(&admin, "GET", "/learn", &[], "").await;
            assert_eq!(r.status, 200);
            assert_eq!(r.headers["content-type"], "text/yaml; charset=utf-8");
            let t = String::from_utf8(r.body.to_vec()).expect("utf-8");
            t.contains("from 3 exchanges (3 endpoints)").then_some(t)
        },
    )
    .await;
    assert!(
        text.contains(
            "  - action: created\n    method: POST\n    path: /users\n    status: [201]\n"
        ),
        "{text}"
    );
    assert!(!text.contains("CANARY"), "{text}");
    assert!(
        !text.contains("/static"),
        "a script download is no lifecycle call: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).expect("written on GET /learn"),
        text
    );

    uh.handle.stop().await;
    assert_eq!(
        std::fs::read_to_string(&out).expect("written at shutdown"),
        text
    );
}

#[tokio::test]
async fn learn_is_404_when_learn_mode_is_off() {
    let iam = fake_iam(users_iam()).await;
    let uh = Userhook::start(&config_for(&iam.url(), ""), false).await;
    let admin = format!("http://{}", uh.handle.admin_addr);
    let r = call(&admin, "GET", "/learn", &[], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(&r.body[..], br#"{"error":"learn mode is off"}"#);
    assert!(uh.handle.learner().is_none());
}

#[test]
fn learn_config_is_checked() {
    let check = |extra: &str| {
        userhook::snapshot::Snapshot::from_text(
            &format!("upstream: http://127.0.0.1:1\n{extra}"),
            None,
        )
        .err()
        .map(|e| e.to_string())
    };
    assert_eq!(check("learn: {out: learned.yaml}\n"), None);
    let empty = check("learn: {out: ''}\n").expect("refused");
    assert!(empty.contains("learn.out: is empty"), "{empty}");
    let unknown = check("learn: {file: x.yaml}\n").expect("refused");
    assert!(
        unknown.contains("learn") && unknown.contains("file"),
        "{unknown}"
    );
}
