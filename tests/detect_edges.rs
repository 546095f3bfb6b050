//! Detection at the edges: bodies past `capture_limit`, malformed and corrupt bodies,
//! traffic that must produce nothing, failed IAM calls, the canary password, and the
//! `X-Request-Id` that ties an event to the request the IAM saw.
//!
//! "Nothing happened" is shown without sleeping: a matching request is sent afterwards and
//! the next event received must be that one.

mod support;

use serde_json::json;
use support::iam::*;
use support::*;

/// A generic users API that answers a create with 201 and a small resource.
async fn users_api() -> FakeUpstream {
    fake_iam(|r| match (r.method.as_str(), path_of(r)) {
        ("POST", "/users") if body_text(r).contains("boom") => {
            Canned::status(500).json("application/json", &json!({"error": "internal error"}))
        }
        ("POST", "/users") if serde_json::from_slice::<serde_json::Value>(&r.body).is_err() => {
            Canned::status(400).json("application/json", &json!({"error": "invalid JSON"}))
        }
        ("POST", "/users") => Canned::status(201).json("application/json", &json!({"id": "u-1"})),
        ("POST", "/tolerant/users") => {
            Canned::status(201).json("application/json", &json!({"id": "u-tolerant"}))
        }
        ("GET", "/health") => Canned::status(200)
            .header("content-type", "text/plain")
            .body("ok"),
        _ => Canned::status(404).body("not found"),
    })
    .await
}

/// An operator rule for an IAM that accepts anything; its request fields come from JSON.
const TOLERANT: &str = "profiles: [generic]
routes:
  - action: created
    method: POST
    path: /tolerant/users
    fields:
      ID: response.body.id
      Name: request.body.username
      Email: request.body.email
";

fn big_json(username: &str, size: usize) -> String {
    let head = format!(r#"{{"username":"{username}","email":"{username}@example.com","bio":""#);
    let pad = size - head.len() - 2;
    format!("{head}{}\"}}", "x".repeat(pad))
}

#[tokio::test]
async fn request_larger_than_capture_limit_passes_whole_and_event_is_truncated() {
    let up = users_api().await;
    let uh = Userhook::start(
        &config_for(&up.url(), "profiles: [generic]\ncapture_limit: 1KiB\n"),
        false,
    )
    .await;
    let mut rx = uh.handle.subscribe();

    let body = big_json("bigbob", 64 * 1024);
    assert_eq!(body.len(), 64 * 1024);
    let reply = call(&uh.url(), "POST", "/users", JSON, body.clone()).await;
    reply.assert_is(&Canned::status(201).json("application/json", &json!({"id": "u-1"})));
    // The IAM got every byte, in order.
    assert_eq!(last_seen(&up, "POST", "/users").body, body.as_bytes());
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", "/users", 201),
        &[
            ("ID", "u-1"),
            ("Name", "bigbob"),
            ("Email", "bigbob@example.com"),
        ],
        true,
    );
    uh.handle.stop().await;
}

#[tokio::test]
async fn response_larger_than_capture_limit_reaches_the_client_whole() {
    let big = big_json("bigresp", 64 * 1024);
    let answer = Canned::status(201)
        .header("content-type", "application/json")
        .body(big.replacen('{', r#"{"id":"u-big","#, 1));
    let a = answer.clone();
    let up = fake_iam(move |_| a.clone()).await;
    let uh = Userhook::start(
        &config_for(&up.url(), "profiles: [generic]\ncapture_limit: 1KiB\n"),
        false,
    )
    .await;
    let mut rx = uh.handle.subscribe();
    let reply = call(&uh.url(), "POST", "/users", JSON, r#"{"username":"x"}"#).await;
    reply.assert_is(&answer);
    assert_eq!(reply.body.len(), answer.body.len());
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", "/users", 201),
        &[
            ("ID", "u-big"),
            ("Name", "bigresp"),
            ("Email", "bigresp@example.com"),
        ],
        true,
    );
    uh.handle.stop().await;
}

#[tokio::test]
async fn malformed_json_is_proxied_byte_identical_and_yields_no_fields() {
    let up = users_api().await;
    let uh = Userhook::start(&config_for(&up.url(), TOLERANT), false).await;
    let mut rx = uh.handle.subscribe();
    let broken = "{\"username\": \"mal\", \"email\": \"mal@example.com\", oops \u{0}\u{ff} ]";

    // A real IAM refuses it (400): no event. Shown by the next event being the tolerant one.
    let reply = call(&uh.url(), "POST", "/users", JSON, broken).await;
    reply.assert_is(
        &Canned::status(400).json("application/json", &json!({"error": "invalid JSON"})),
    );
    assert_eq!(last_seen(&up, "POST", "/users").body, broken.as_bytes());

    // A tolerant IAM accepts it (201): the event has what the response says, nothing from the
    // unreadable request (it is not a cut body, so there is no guessing from a prefix).
    let reply = call(&uh.url(), "POST", "/tolerant/users", JSON, broken).await;
    reply.assert_is(&Canned::status(201).json("application/json", &json!({"id": "u-tolerant"})));
    assert_eq!(
        last_seen(&up, "POST", "/tolerant/users").body,
        broken.as_bytes()
    );
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", "/tolerant/users", 201),
        &[("ID", "u-tolerant")],
        false,
    );
    uh.handle.stop().await;
}

#[tokio::test]
async fn corrupt_gzip_answer_does_not_panic_and_reaches_the_client_unchanged() {
    let answer = Canned::status(201)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(&b"\x1f\x8b\x08\x00 this is not really gzip \xff\x00\x01"[..]);
    let a = answer.clone();
    let up = fake_iam(move |_| a.clone()).await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [generic]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    let reply = call(
        &uh.url(),
        "POST",
        "/users",
        JSON,
        r#"{"username":"zed","email":"zed@example.com"}"#,
    )
    .await;
    reply.assert_is(&answer);
    let ev = next_event(&mut rx).await;
    // Nothing could be read from the answer; the request's fields still name the user, and the
    // event says its view of a body was incomplete.
    assert_event(
        &ev,
        "user.created",
        ("POST", "/users", 201),
        &[("Name", "zed"), ("Email", "zed@example.com")],
        true,
    );
    uh.handle.stop().await;
}

#[tokio::test]
async fn unmatched_traffic_and_failed_calls_produce_nothing() {
    let up = users_api().await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [generic]\n"), false).await;
    let mut rx = uh.handle.subscribe();

    let health = call(&uh.url(), "GET", "/health", &[], "").await;
    health.assert_is(
        &Canned::status(200)
            .header("content-type", "text/plain")
            .body("ok"),
    );
    for (method, path) in [
        ("POST", "/other"),
        ("GET", "/users"),
        ("PUT", "/users"),
        ("POST", "/users/u-1/extra"),
    ] {
        let reply = call(&uh.url(), method, path, JSON, r#"{"username":"nobody"}"#).await;
        reply.assert_is(&Canned::status(404).body("not found"));
        // Unmatched requests are a plain pass-through: not even a request id is added.
        assert_eq!(request_id_seen(&last_seen(&up, method, path)), None);
    }
    // Matched route, but the IAM failed (500) or refused (404): no event.
    call(&uh.url(), "POST", "/users", JSON, r#"{"username":"boom"}"#)
        .await
        .assert_is(
            &Canned::status(500).json("application/json", &json!({"error": "internal error"})),
        );
    call(&uh.url(), "DELETE", "/users/u-404", &[], "")
        .await
        .assert_is(&Canned::status(404).body("not found"));

    // The first event after all that is this create.
    call(&uh.url(), "POST", "/users", JSON, r#"{"username":"first"}"#).await;
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", "/users", 201),
        &[("ID", "u-1"), ("Name", "first")],
        false,
    );
    assert!(rx.is_empty(), "no other event queued");
    uh.handle.stop().await;
}

#[tokio::test]
async fn canary_password_reaches_the_iam_but_no_event() {
    let up = fake_iam(|r| match path_of(r) {
        "/admin/realms/acme/users" => {
            Canned::status(201).header("location", "http://kc/admin/realms/acme/users/kc-1")
        }
        "/realms/acme/protocol/openid-connect/token" => Canned::status(200).json(
            "application/json",
            &json!({"access_token": jwt(&json!({"sub": "kc-1", "preferred_username": "alice"})),
                    "token_type": "Bearer", "expires_in": 300}),
        ),
        _ => Canned::status(201).json("application/json", &json!({"id": "g-1"})),
    })
    .await;
    let uh = Userhook::start(
        &config_for(&up.url(), "profiles: [keycloak, generic]\n"),
        false,
    )
    .await;
    let mut rx = uh.handle.subscribe();
    let sends = [
        (
            "/admin/realms/acme/users",
            JSON,
            json!({"username": "alice", "credentials": [{"type": "password", "value": CANARY}]})
                .to_string(),
        ),
        (
            "/realms/acme/protocol/openid-connect/token",
            FORM,
            format!("grant_type=password&username=alice&password={CANARY}&client_id=app"),
        ),
        (
            "/users",
            JSON,
            json!({"username": "gina", "password": CANARY, "secret": CANARY,
                   "credentials": CANARY, "token": CANARY})
            .to_string(),
        ),
    ];
    for (path, headers, body) in sends {
        call(&uh.url(), "POST", path, headers, body.clone()).await;
        assert!(body_text(&last_seen(&up, "POST", path)).contains(CANARY));
        let ev = rx.recv().await.expect("event");
        let text = serde_json::to_string(&ev).expect("serialise");
        assert!(!text.contains(CANARY), "{path}: {text}");
        assert!(!text.contains("CANARY"), "{path}: {text}");
        assert!(text.contains("alice") || text.contains("gina"), "{text}");
    }
    uh.handle.stop().await;
}

#[tokio::test]
async fn request_id_is_sent_upstream_and_named_in_the_event() {
    let up = users_api().await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [generic]\n"), false).await;
    let mut rx = uh.handle.subscribe();

    // Generated when the client sent none.
    call(
        &uh.url(),
        "POST",
        "/users",
        &[
            ("content-type", "application/json"),
            ("user-agent", "provisioner/1.2"),
        ],
        r#"{"username":"rid"}"#,
    )
    .await;
    let seen = request_id_seen(&last_seen(&up, "POST", "/users")).expect("x-request-id sent");
    assert_eq!(seen.len(), 36, "a UUID: {seen}");
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.request.request_id, seen);
    assert_eq!(ev.request.user_agent, "provisioner/1.2");

    // Kept when the client sent one.
    call(
        &uh.url(),
        "POST",
        "/users",
        &[
            ("content-type", "application/json"),
            ("x-request-id", "client-req-42"),
        ],
        r#"{"username":"rid2"}"#,
    )
    .await;
    let seen = request_id_seen(&last_seen(&up, "POST", "/users"));
    assert_eq!(seen.as_deref(), Some("client-req-42"));
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.request.request_id, "client-req-42");
    assert_eq!(ev.user["Name"], "rid2");
    uh.handle.stop().await;
}

#[tokio::test]
async fn chunked_request_with_expect_continue_is_read_whole() {
    let up = users_api().await;
    let uh = Userhook::start(&config_for(&up.url(), "profiles: [generic]\n"), false).await;
    let mut rx = uh.handle.subscribe();
    // How curl sends a large body: chunked, after `Expect: 100-continue`.
    let part1 = r#"{"username":"chunky","#;
    let part2 = r#""email":"chunky@example.com"}"#;
    let raw = format!(
        "POST /users HTTP/1.1\r\nHost: iam.example\r\nContent-Type: application/json\r\n\
         Expect: 100-continue\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{part1}\r\n{:x}\r\n{part2}\r\n0\r\n\r\n",
        part1.len(),
        part2.len()
    );
    let out = raw_exchange(uh.handle.proxy_addr, raw.as_bytes(), br#""u-1"}"#).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("HTTP/1.1 201"), "{text}");
    assert_eq!(
        last_seen(&up, "POST", "/users").body,
        format!("{part1}{part2}").as_bytes()
    );
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", "/users", 201),
        &[
            ("ID", "u-1"),
            ("Name", "chunky"),
            ("Email", "chunky@example.com"),
        ],
        false,
    );
    uh.handle.stop().await;
}

#[tokio::test]
async fn gzip_request_body_is_decoded_for_extraction_only() {
    let up = users_api().await;
    let uh = Userhook::start(&config_for(&up.url(), TOLERANT), false).await;
    let mut rx = uh.handle.subscribe();
    let body = gzip(br#"{"username":"zipped","email":"zipped@example.com"}"#);
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    call(&uh.url(), "POST", "/tolerant/users", &headers, body.clone()).await;
    // The IAM got the compressed bytes as sent.
    assert_eq!(last_seen(&up, "POST", "/tolerant/users").body, body);
    let ev = next_event(&mut rx).await;
    assert_event(
        &ev,
        "user.created",
        ("POST", "/tolerant/users", 201),
        &[
            ("ID", "u-tolerant"),
            ("Name", "zipped"),
            ("Email", "zipped@example.com"),
        ],
        false,
    );
    uh.handle.stop().await;
}
