//! `delivery.guarantee: strict` end to end: responses with and without a body complete
//! byte-identical, and each event already exists when its client has the whole response.
//! (That the end is really held until the acknowledgement is shown deterministically by the
//! unit tests of `proxy::tap`, where the acknowledgement is under the test's control; here
//! the in-memory outbox acknowledges at once, so fast mode would usually pass too.)

mod support;

use bytes::Bytes;
use http::{Request, StatusCode};
use support::*;

async fn iam() -> FakeUpstream {
    FakeUpstream::start(|req| async move {
        match (req.method.as_str(), req.uri.as_str()) {
            ("POST", "/users") => respond(
                201,
                r#"{"id":"u-7","username":"alice","email":"alice@example.com"}"#,
            ),
            ("DELETE", _) => respond(204, ""),
            _ => respond(200, "ok"),
        }
    })
    .await
}

/// Every request waits for its response; then the event must already be there.
async fn run(guarantee: &str) -> (usize, usize) {
    let up = iam().await;
    let uh = Userhook::start(
        &config_for(
            &up.url(),
            &format!("profiles: [generic]\ndelivery:\n  guarantee: {guarantee}\n"),
        ),
        false,
    )
    .await;
    let mut events = uh.handle.subscribe();
    let (mut created_ready, mut deleted_ready) = (0, 0);
    for i in 0..50 {
        let req = Request::post(format!("{}/users", uh.url()))
            .header("content-type", "application/json")
            .body(full(format!(r#"{{"username":"alice{i}"}}"#)))
            .expect("request");
        let (status, _, body) = send(req).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(
            body,
            Bytes::from_static(br#"{"id":"u-7","username":"alice","email":"alice@example.com"}"#)
        );
        if let Ok(ev) = events.try_recv() {
            assert_eq!(ev.event_type, "user.created");
            created_ready += 1;
        } else {
            // Fast mode: it comes a moment later.
            let ev = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
                .await
                .expect("event in time")
                .expect("event");
            assert_eq!(ev.event_type, "user.created");
        }
        let req = Request::delete(format!("{}/users/u-{i}", uh.url()))
            .body(full(""))
            .expect("request");
        let (status, _, body) = send(req).await;
        assert_eq!((status, body.len()), (StatusCode::NO_CONTENT, 0));
        if let Ok(ev) = events.try_recv() {
            assert_eq!(ev.event_type, "user.deleted");
            deleted_ready += 1;
        } else {
            let ev = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
                .await
                .expect("event in time")
                .expect("event");
            assert_eq!(ev.event_type, "user.deleted");
        }
    }
    uh.handle.stop().await;
    (created_ready, deleted_ready)
}

#[tokio::test]
async fn strict_mode_events_exist_before_the_client_sees_the_response() {
    // With a body (201) the last frame is held; without (204) the headers are.
    assert_eq!(run("strict").await, (50, 50));
}

/// `strict` on a full disk: a response whose event is not durable is never released as if it
/// were. A body is cut off before its end (the client sees a broken response, never a
/// complete 201); a bodiless answer (204) becomes a 503 saying so; both are counted.
#[tokio::test]
async fn strict_never_releases_a_response_whose_event_is_not_durable() {
    use http_body_util::BodyExt;
    use userhook::events::spool::{FaultSwitch, SpoolSource};

    let up = iam().await;
    let hook = receiver::WebhookReceiver::fixed(200, "ok").await;
    let yaml = config_for(
        &up.url(),
        &format!(
            "profiles: [generic]\ndelivery:\n  guarantee: strict\nwebhooks:\n  - {{name: ops, actions: ['*'], url: '{}'}}\n",
            hook.url("/hook")
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("userhook.yaml");
    std::fs::write(&config_path, &yaml).expect("write");
    let switch = FaultSwitch::new();
    let handle = userhook::app::start_with_spool(
        userhook::app::Options {
            config_path,
            watch: false,
        },
        userhook::snapshot::Snapshot::from_text(&yaml, None).expect("config"),
        userhook::proxy::ProxyThreads::Caller,
        Some(SpoolSource::Faulty(
            dir.path().join("spool"),
            switch.clone(),
        )),
    )
    .await
    .expect("start");
    let proxy = format!("http://{}", handle.proxy_addr);
    let admin = format!("http://{}", handle.admin_addr);
    let create = |i: usize| {
        Request::post(format!("{proxy}/users"))
            .header("content-type", "application/json")
            .body(full(format!(r#"{{"username":"alice{i}"}}"#)))
            .expect("request")
    };
    // Healthy: the whole response.
    let (status, _, body) = send(create(0)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        body,
        Bytes::from_static(br#"{"id":"u-7","username":"alice","email":"alice@example.com"}"#)
    );

    switch.fill_disk();
    // A commit fails (commit_failed), later deliveries are refused at once (refused): either
    // way the body never completes.
    for i in 1..=3 {
        let resp = client().request(create(i)).await.expect("head");
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "the head was already sent"
        );
        let body = resp.into_body().collect().await;
        assert!(body.is_err(), "request {i}: a complete body was released");
    }
    let (status, headers, body) = send(
        Request::delete(format!("{proxy}/users/u-1"))
            .body(full(""))
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["x-userhook-upstream-status"], "204");
    assert_eq!(
        body,
        Bytes::from_static(br#"{"error":"event_not_durable","message":"the identity service answered, but userhook could not record the change durably (delivery.guarantee: strict); the change may have been applied"}"#)
    );
    let (_, _, m) = get(&format!("{admin}/metrics")).await;
    let m = String::from_utf8_lossy(&m).into_owned();
    let count = |reason: &str| -> f64 {
        let series = format!("userhook_strict_unconfirmed_total{{reason=\"{reason}\"}}");
        m.lines()
            .find_map(|l| l.strip_prefix(series.as_str())?.trim().parse().ok())
            .unwrap_or(-1.0)
    };
    // The first may meet the failing commit itself, or find the spool already faulted (if
    // the first delivery's bookkeeping hit the full disk first): either way, all four count.
    assert!(count("commit_failed") + count("refused") >= 4.0, "{m}");
    assert_eq!(count("timeout"), 0.0, "{m}");
    assert_eq!(count("not_examined"), 0.0, "{m}");

    // Space returns: whole responses again.
    switch.heal();
    eventually(
        std::time::Duration::from_secs(10),
        "spool writable",
        || async { handle.deliveries.spool_fault().is_none().then_some(()) },
    )
    .await;
    let (status, _, body) = send(create(9)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        body,
        Bytes::from_static(br#"{"id":"u-7","username":"alice","email":"alice@example.com"}"#)
    );
    handle.stop().await;
}
