//! No spelling of a matched path reaches the IAM undetected, and every spelling is forwarded
//! exactly as the client sent it: against the real server, over raw sockets, with the fake
//! IAM recording each request line.

mod support;

use std::time::Duration;

use support::{config_for, eventually, get, raw_exchange, respond, FakeUpstream, Userhook};

const WAIT: Duration = Duration::from_secs(10);

/// Held by each test that compares counters before and after: the recorder is process-wide,
/// and a refused request counts as an unmatched 4xx too.
static COUNTERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn metric(uh: &Userhook, series: &str) -> f64 {
    let (_, _, body) = get(&format!("{}/metrics", uh.admin_url())).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn every_spelling_of_post_users_is_detected_and_forwarded_as_sent() {
    let _counters = COUNTERS.lock().await;
    let iam =
        FakeUpstream::start(|_| async { respond(201, r#"{"id":"u-1","username":"ann"}"#) }).await;
    let uh = Userhook::start(&config_for(&iam.url(), "profiles: [generic]\n"), false).await;
    let created = r#"userhook_events_total{action="created"}"#;
    let matched = r#"userhook_proxied_requests_total{rule="POST /users",status="2xx"}"#;
    let spellings = [
        "/users",
        "//users",
        "/./users",
        "/x/../users",
        "/%75sers",
        "/%75%73%65%72%73",
        "/users/.",
        "///users//",
    ];
    let (events_before, matched_before) = (metric(&uh, created).await, metric(&uh, matched).await);
    for spelling in spellings {
        let request = format!(
            "POST {spelling} HTTP/1.1\r\nHost: iam\r\nContent-Type: application/json\r\n\
             Content-Length: 16\r\nConnection: close\r\n\r\n{{\"username\":\"a\"}}"
        );
        let answer = raw_exchange(uh.handle.proxy_addr, request.as_bytes(), b"").await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 201 Created\r\n"),
            "{spelling}: {text}"
        );
    }
    let seen: Vec<String> = iam.requests().into_iter().map(|r| r.uri).collect();
    assert_eq!(seen, spellings, "each forwarded exactly as sent");
    let n = spellings.len() as f64;
    eventually(WAIT, "one event per spelling", || async {
        (metric(&uh, created).await == events_before + n).then_some(())
    })
    .await;
    assert_eq!(metric(&uh, matched).await, matched_before + n);
}

#[tokio::test]
async fn an_encoded_slash_that_would_dodge_a_rule_is_refused_and_never_reaches_the_iam() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::start(|_| async { respond(201, r#"{"id":"u-1"}"#) }).await;
    let uh = Userhook::start(&config_for(&iam.url(), "profiles: [generic]\n"), false).await;
    let refused = r#"userhook_client_errors_total{kind="bad_request"}"#;
    let before = metric(&uh, refused).await;
    // An IAM that decodes before routing (Go's net/http) would create a user for each.
    for spelling in ["/%2fusers", "/%2Fusers", "/x%2F..%2Fusers", "/users%2F"] {
        let request = format!(
            "POST {spelling} HTTP/1.1\r\nHost: iam\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let answer = raw_exchange(uh.handle.proxy_addr, request.as_bytes(), b"").await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{spelling}: {text}"
        );
        assert!(
            text.ends_with(
                r#"{"error":"bad_request","message":"the path's encoded slash (%2F) makes it ambiguous"}"#
            ),
            "{spelling}: {text}"
        );
    }
    assert!(iam.requests().is_empty(), "none reached the IAM");
    eventually(WAIT, "each refusal counted", || async {
        (metric(&uh, refused).await == before + 4.0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_encoded_slash_that_matches_no_rule_either_way_is_forwarded_as_sent() {
    let _counters = COUNTERS.lock().await;
    let iam = FakeUpstream::start(|_| async { respond(404, "") }).await;
    let uh = Userhook::start(&config_for(&iam.url(), "profiles: [generic]\n"), false).await;
    let unmatched = r#"userhook_proxied_requests_total{rule="none",status="4xx"}"#;
    let before = metric(&uh, unmatched).await;
    let request =
        b"POST /files/a%2fb HTTP/1.1\r\nHost: iam\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let answer = raw_exchange(uh.handle.proxy_addr, request, b"").await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 404 Not Found\r\n"));
    assert_eq!(iam.requests()[0].uri, "/files/a%2fb");
    assert_eq!(metric(&uh, unmatched).await, before + 1.0);
}
