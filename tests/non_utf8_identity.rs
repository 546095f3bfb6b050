//! A body that is not UTF-8 never yields an ID-less delivery to a collapsed URL (issue 13):
//! the fake IAM answers a create with an `id` that is not UTF-8; the extractor reads it as no
//! value, the event has no ID, and the webhook whose URL path needs the ID is not sent to
//! `/hook/` but fails visibly (dead letter, failed record, with the reason). A valid member
//! beside an invalid one is still read. Real servers on 127.0.0.1, in-process userhook.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use support::receiver::WebhookReceiver;
use support::{config_for, eventually, full, respond, send, FakeUpstream, Userhook};
use userhook::events::DeliveryStatus;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_that_is_not_utf8_is_no_value_and_no_delivery_goes_to_a_shortened_url() {
    let iam = FakeUpstream::start(|r| async move {
        // The client's body says which answer to give: one with a broken id, one with a
        // broken name only.
        if r.body.starts_with(b"broken-id") {
            respond(
                201,
                Bytes::from_static(b"{\"id\":\"\xff\xfe\",\"email\":\"a@example.com\"}"),
            )
        } else {
            respond(
                201,
                Bytes::from_static(b"{\"id\":\"42\",\"name\":\"\xc3\x28\"}"),
            )
        }
    })
    .await;
    let receiver = WebhookReceiver::fixed(200, "ok").await;
    let yaml = config_for(
        &iam.url(),
        &format!(
            "routes:\n  - {{action: created, method: POST, path: /users, fields: {{ID: response.body.id, Email: response.body.email, Name: response.body.name}}}}\nwebhooks:\n  - {{name: by-path, actions: ['*'], url: '{}', retry: {{attempts: 3, initial: 10ms, max: 20ms}}}}\n",
            receiver.url("/hook/{{$$.ID$$}}")
        ),
    );
    let uh = Userhook::start(&yaml, false).await;
    let mut events = uh.handle.subscribe();

    let post = |body: &'static str| {
        Request::post(format!("{}/users", uh.url()))
            .header("content-type", "text/plain")
            .body(full(body))
            .expect("request")
    };
    let (status, _, _) = send(post("broken-id")).await;
    assert_eq!(status, 201, "the client gets the IAM's answer unchanged");
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event")
        .expect("event");
    assert_eq!(
        event.user.get("ID"),
        None,
        "an id that is not UTF-8 is no value"
    );
    assert_eq!(
        event.user.get("Email").map(String::as_str),
        Some("a@example.com")
    );
    assert!(
        !event.user.values().any(|v| v.contains('\u{fffd}')),
        "no replacement characters: {:?}",
        event.user
    );

    // The delivery fails at once, visibly, and nothing is sent.
    let engine = uh.handle.deliveries.clone();
    let failed = eventually(WAIT, "the ID-less delivery to fail", || {
        let engine = engine.clone();
        async move {
            engine
                .records(Some(DeliveryStatus::Failed))
                .into_iter()
                .next()
        }
    })
    .await;
    assert_eq!(failed.attempts, 1, "not retried: no retry can fill the ID");
    assert_eq!(
        failed.last_error.as_deref(),
        Some("{{$$.ID$$}} in the URL path has no value for this event; sending would go to a shortened URL, so it is not sent")
    );
    let letters = engine.dead_letter_list(10).await.expect("dead letters");
    assert_eq!(
        letters.len(),
        1,
        "kept as a dead letter for replay after a fix"
    );

    // A valid id beside a broken name: delivered to the id's URL, the name is no value.
    let (status, _, _) = send(post("broken-name")).await;
    assert_eq!(status, 201);
    let got = eventually(WAIT, "the delivery for user 42", || {
        let r = receiver.received();
        async move { r.into_iter().next() }
    })
    .await;
    assert_eq!(got.uri, "/hook/42");
    let body: serde_json::Value = serde_json::from_slice(&got.body).expect("JSON body");
    assert_eq!(body["id"], "42");
    assert_eq!(body["username"], "", "a name that is not UTF-8 is no value");
    assert!(!got.text().contains('\u{fffd}'));
    assert!(
        receiver.received().iter().all(|r| r.uri != "/hook/"),
        "nothing went to the shortened URL"
    );
    uh.handle.stop().await;
}
