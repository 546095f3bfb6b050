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
