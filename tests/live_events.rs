//! `GET /events` on the real binary (README "Watch it live"): detected events and delivery
//! outcomes as Server-Sent Events, behind the admin token; filters by action, user, webhook
//! and outcome; `replay=N`; a reconnect with `Last-Event-ID` that resumes with neither a gap
//! nor a duplicate; an id of another instance; the stream ending at shutdown; and no
//! credential of the traffic in any byte of any stream (long canaries).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};
use support::eventually;
use support::live::{assert_no_canary, LiveRig, RESET, TOKEN};
use support::sse::{open, Sse, SseEvent};

const WAIT: Duration = Duration::from_secs(15);

async fn stream(rig: &LiveRig, query: &str, last: Option<&str>) -> Sse {
    let (headers, sse) = open(&rig.admin_url(), query, Some(TOKEN), last)
        .await
        .unwrap_or_else(|(s, b)| panic!("/events{query} answered {s}: {b}"));
    assert_eq!(
        headers["content-type"], "text/event-stream; charset=utf-8",
        "{headers:?}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-accel-buffering"], "no");
    sse
}

/// The kind, webhook and outcome of an item, for comparing sets.
fn shape(ev: &SseEvent) -> (String, String, String, String) {
    let d = &ev.data;
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    (
        s(&d["kind"]),
        s(&d["action"]),
        s(&d["webhook"]),
        s(&d["outcome"]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_outcomes_stream_filtered_behind_the_token_without_credentials() {
    let rig = LiveRig::new().await;
    let bin = rig.start().await;

    // The token is required, like on every read endpoint.
    for token in [None, Some("a-wrong-token-of-some-length")] {
        let err = open(&rig.admin_url(), "", token, None).await.err();
        let (status, body) = err.expect("refused");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(
            body.contains("Authorization: Bearer <admin.token>"),
            "{body}"
        );
    }
    // A bad filter is a 400 that says what is allowed, before any stream starts.
    for (query, want) in [
        ("?action=create", "did you mean `created`"),
        (
            "?outcome=ok",
            "expected delivered, retrying, dead, filtered, paused or refused",
        ),
        ("?password=x", "unknown parameter `password`"),
    ] {
        let (status, body) = open(&rig.admin_url(), query, Some(TOKEN), None)
            .await
            .err()
            .expect("refused");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(body.contains(want), "{query}: {body}");
    }

    let mut all = stream(&rig, "", None).await;
    let mut dead = stream(&rig, "?webhook=dead-hook&outcome=dead", None).await;
    let mut logins = stream(&rig, "?action=login", None).await;
    let mut alice = stream(&rig, "?user=ALICE@example.com,u-1", None).await;

    let id = rig.create(&bin, "alice").await;
    assert_eq!(id, "u-1");
    rig.login(&bin, "alice").await;
    rig.delete(&bin, &id).await;

    // 3 events; created goes to both webhooks, login and deleted to ok-hook: 4 outcomes.
    let items = all.take(7, WAIT).await;
    let ns: Vec<u64> = items.iter().map(SseEvent::n).collect();
    assert_eq!(ns, (1..=7).collect::<Vec<_>>(), "{items:#?}");
    let instance = items[0].instance();
    assert_eq!(instance.len(), 8, "{instance}");
    assert!(items.iter().all(|i| i.instance() == instance));
    assert_eq!(all.retry, ["2000"]);
    assert!(
        all.comments[0].starts_with(&format!("userhook live feed of instance {instance}")),
        "{:?}",
        all.comments
    );

    let created = &items[0];
    assert_eq!(created.event, "detected");
    let d = &created.data;
    assert_eq!(d["kind"], "detected");
    assert_eq!(d["action"], "created");
    assert_eq!(d["event"], "user.created");
    assert_eq!(d["attribution"], "exchange");
    assert_eq!(d["seq"], 1);
    assert_eq!(
        d["user"],
        json!({"ID": "u-1", "Name": "alice", "Email": "alice@example.com", "ResetToken": "<redacted>"})
    );
    assert_eq!(d["request"]["method"], "POST");
    assert_eq!(d["request"]["path"], "/users");
    assert_eq!(d["request"]["status"], 201);
    assert_eq!(d["webhooks"], json!(["ok-hook", "dead-hook"]));
    let event_id = d["id"].as_str().expect("event id").to_owned();
    assert_eq!(uuid_version(&event_id), 7);

    let got: BTreeSet<_> = items.iter().map(shape).collect();
    let want: BTreeSet<_> = [
        ("detected", "created", "", ""),
        ("delivery", "created", "ok-hook", "delivered"),
        ("delivery", "created", "dead-hook", "dead"),
        ("detected", "login", "", ""),
        ("delivery", "login", "ok-hook", "delivered"),
        ("detected", "deleted", "", ""),
        ("delivery", "deleted", "ok-hook", "delivered"),
    ]
    .into_iter()
    .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()))
    .collect();
    assert_eq!(got, want);
    // Every outcome comes after its event was announced.
    for (i, item) in items.iter().enumerate() {
        if item.event == "delivery" {
            let ev = item.data["event_id"].as_str().expect("event_id");
            assert!(
                items[..i].iter().any(|e| e.data["id"] == ev),
                "outcome before its event: {items:#?}"
            );
        }
    }
    let dead_one = items
        .iter()
        .find(|i| i.data["outcome"] == "dead")
        .expect("dead");
    assert_eq!(dead_one.event, "delivery");
    let d = &dead_one.data;
    assert_eq!(d["event_id"], event_id.as_str());
    assert_eq!(
        (d["status"].as_u64(), d["attempt"].as_u64()),
        (Some(400), Some(1))
    );
    assert_eq!(d["user_id"], "u-1");
    assert_eq!(d["event"], "user.created");
    assert!(d["delivery_id"].as_str().is_some_and(|s| s.len() == 36));
    assert!(d["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(
        d["error"].as_str().is_some_and(|e| e.contains("400")),
        "{d}"
    );
    let login = items
        .iter()
        .find(|i| i.data["kind"] == "detected" && i.data["action"] == "login")
        .expect("login");
    // The user cache knew alice by her name: her login carries all her fields, masked alike.
    assert_eq!(login.data["user"], d_user_of(created));
    assert_eq!(login.data["webhooks"], json!(["ok-hook"]));

    // One more of each kind as a sentinel: each filtered stream's next item must be it, so
    // nothing else got through before it.
    rig.create(&bin, "bob").await;
    rig.login(&bin, "bob").await;
    let d = dead.take(2, WAIT).await;
    assert_eq!(
        d.iter().map(|e| (e.n(), shape(e).3)).collect::<Vec<_>>(),
        [
            (dead_one.n(), "dead".to_owned()),
            (d[1].n(), "dead".to_owned())
        ]
    );
    assert_eq!(d[1].data["user_id"], "u-2");
    let l = logins.take(3, WAIT).await;
    let l_shapes: Vec<_> = l.iter().map(shape).collect();
    let login = |kind: &str, hook: &str, outcome: &str| {
        (
            kind.to_owned(),
            "login".to_owned(),
            hook.to_owned(),
            outcome.to_owned(),
        )
    };
    assert_eq!(
        l_shapes,
        [
            login("detected", "", ""),
            login("delivery", "ok-hook", "delivered"),
            login("detected", "", "")
        ]
    );
    assert_eq!(l[0].data["user"]["Email"], "alice@example.com");
    assert_eq!(l[2].data["user"]["Email"], "bob@example.com");
    assert_eq!(l[2].data["user"]["ResetToken"], "<redacted>");
    // alice by email (either case) or by id: all of her 3 events and 4 outcomes, then
    // nothing of bob's (the sentinel below is hers again).
    let a = alice.take(7, WAIT).await;
    assert_eq!(a.iter().map(shape).collect::<BTreeSet<_>>(), want);
    // (After her deletion the cache forgot her: a new account under her email is next.)
    rig.create(&bin, "alice").await;
    let again = alice.next(WAIT).await.expect("alice's new account");
    assert_eq!(again.data["action"], "created");
    assert_eq!(again.data["user"]["ID"], "u-3");

    // The receiver got the reset code (it is in the event, mapped by the rule), so it is the
    // feed that masked it.
    eventually(WAIT, "ok-hook received created", || async {
        rig.ok
            .received()
            .iter()
            .any(|r| r.text().contains(RESET))
            .then_some(())
    })
    .await;
    for (name, s) in [
        ("all", &all),
        ("dead", &dead),
        ("logins", &logins),
        ("alice", &alice),
    ] {
        assert_no_canary(&format!("the `{name}` stream"), &s.raw_text());
    }
}

fn d_user_of(ev: &SseEvent) -> Value {
    ev.data["user"].clone()
}

fn uuid_version(id: &str) -> u32 {
    id.split('-')
        .nth(2)
        .and_then(|s| s.chars().next())
        .and_then(|c| c.to_digit(16))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_resumes_after_its_last_id_and_streams_end_at_shutdown() {
    let rig = LiveRig::new().await;
    let mut bin = rig.start().await;
    let mut first = stream(&rig, "?webhook=ok-hook", None).await;
    for name in ["a1", "a2", "a3"] {
        rig.login(&bin, name).await;
    }
    let seen = first.take(6, WAIT).await;
    let last = seen[5].id.clone().expect("id");
    drop(first);

    // While nobody listens: two more events and their outcomes.
    rig.login(&bin, "b1").await;
    rig.login(&bin, "b2").await;
    eventually(WAIT, "b2 delivered", || async {
        (rig.ok.received().len() == 5).then_some(())
    })
    .await;
    let mut resumed = stream(&rig, "", Some(&last)).await;
    rig.login(&bin, "c1").await;
    let next = resumed.take(6, WAIT).await;
    assert_eq!(
        next.iter().map(SseEvent::n).collect::<Vec<_>>(),
        (7..=12).collect::<Vec<_>>(),
        "{next:#?}"
    );
    let names: Vec<_> = next
        .iter()
        .filter(|e| e.event == "detected")
        .map(|e| e.data["user"]["Name"].clone())
        .collect();
    assert_eq!(names, [json!("b1"), json!("b2"), json!("c1")]);
    // Nothing was said to be missed: the ring had it all.
    assert!(!resumed.raw_text().contains("event: missed"));

    // `replay=N`: the last N kept, then live.
    let mut replay = stream(&rig, "?replay=3", None).await;
    let r = replay.take(3, WAIT).await;
    assert_eq!(r.iter().map(SseEvent::n).collect::<Vec<_>>(), [10, 11, 12]);

    // An id of another instance (this one restarted since): told, then everything it kept.
    let mut other = stream(&rig, "?action=login&outcome=delivered", Some("0badc0de-3")).await;
    let notice = other.next(WAIT).await.expect("notice");
    assert_eq!(notice.event, "missed");
    assert_eq!(notice.id, None);
    assert_eq!(notice.data["missed"], 0);
    assert!(notice.data["reason"]
        .as_str()
        .is_some_and(|r| r.contains("restarted")));
    let o = other.take(6, WAIT).await;
    let delivered: Vec<u64> = seen
        .iter()
        .chain(&next)
        .filter(|e| e.data["outcome"] == "delivered")
        .map(SseEvent::n)
        .collect();
    assert_eq!(o.iter().map(SseEvent::n).collect::<Vec<_>>(), delivered);

    // Shutdown ends every stream cleanly, and the process exits 0 within its grace.
    bin.signal("TERM");
    for s in [&mut resumed, &mut replay, &mut other] {
        s.until_end(WAIT).await;
    }
    let exit = tokio::time::timeout(WAIT, bin.child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert_eq!(exit.code(), Some(0), "{}", bin.log_text());
    for s in [&resumed, &replay, &other] {
        assert_no_canary("a resumed stream", &s.raw_text());
    }
}
