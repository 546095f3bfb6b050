//! `GET /events`: the live feed ([`crate::events::live`]) as Server-Sent Events, for
//! `userhook tail` and the web console.
//!
//! ```text
//! GET /events?action=created,deleted&user=42&webhook=ops&outcome=dead&replay=50
//! Last-Event-ID: 3f2a9c01-1234          (optional: resume after that item)
//! ```
//!
//! Every parameter may be repeated or hold a comma-separated list; within one the values are
//! alternatives, across them all must hold. `outcome` keeps delivery outcomes only. `replay=N`
//! (or `all`) starts with the last N items the instance kept when no `Last-Event-ID` is sent.
//! The stream: `retry:` and a comment first, then `event: detected` / `event: delivery` items
//! each with an `id:`, `event: missed` when items were lost (a slow reader, a resume older
//! than the ring, a restart), and a `: heartbeat` comment every [`HEARTBEAT`].
//!
//! One task per stream copies items from the feed into the response; when the client reads
//! slowly that task waits, the feed never does (the task falls behind and is told what it
//! missed). Streams end at shutdown and when the client goes away. Behind the same access
//! checks as every read endpoint; the feed carries no credential.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame};
use tokio::sync::{broadcast, mpsc};

use super::respond::error;
use crate::event::Action;
use crate::events::live::{Filter, LiveFeed, Outcome, Start, Subscription, RING_ITEMS};
use crate::shutdown::ShutdownSignal;

/// How often an idle stream sends a comment, so proxies and clients see it is alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(15);

/// Streams open at once at most; more are refused (503) rather than grow memory.
pub(crate) const MAX_STREAMS: usize = 64;

/// What a client waits before reconnecting (the SSE `retry:` field).
const RETRY_MS: u32 = 2000;

/// Chunks buffered between the stream's task and the connection.
const BUFFERED: usize = 16;

/// The response body of a stream: chunks from its task until the task ends.
pub(crate) struct SseBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// What a `GET /events` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub filter: Filter,
    pub start: Start,
}

impl Request {
    /// From the query and the `Last-Event-ID` header; the error is the 400's sentence.
    pub(crate) fn parse(query: Option<&str>, headers: &HeaderMap) -> Result<Request, String> {
        let mut filter = Filter::default();
        let mut replay = None;
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let values = value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned);
            match key.as_ref() {
                "action" => {
                    for v in values {
                        filter.actions.push(v.parse::<Action>()?);
                    }
                }
                "user" => filter.users.extend(values),
                "webhook" => filter.webhooks.extend(values),
                "outcome" => {
                    for v in values {
                        filter.outcomes.push(v.parse::<Outcome>()?);
                    }
                }
                "replay" => {
                    replay = Some(match value.as_ref() {
                        "all" => RING_ITEMS,
                        n => n
                            .parse::<usize>()
                            .map_err(|_| "replay must be a number or `all`".to_string())?
                            .min(RING_ITEMS),
                    })
                }
                other => {
                    return Err(format!(
                        "unknown parameter `{}`; expected action, user, webhook, outcome or replay",
                        other.chars().take(40).collect::<String>()
                    ))
                }
            }
        }
        let last_id = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let start = match (last_id, replay) {
            (Some(id), _) => Start::After(id.to_owned()),
            (None, Some(n)) => Start::Replay(n),
            (None, None) => Start::Now,
        };
        Ok(Request { filter, start })
    }
}

/// The admin API's response bodies: whole ones, and streams.
pub(crate) type AdminBody = http_body_util::Either<http_body_util::Full<Bytes>, SseBody>;

/// `GET /events` (`head`: headers only, no stream).
pub(crate) fn stream(
    feed: &LiveFeed,
    query: Option<&str>,
    headers: &HeaderMap,
    head: bool,
    signal: ShutdownSignal,
) -> Response<AdminBody> {
    use http_body_util::Either;
    let req = match Request::parse(query, headers) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e).map(Either::Left),
    };
    if feed.watchers() >= MAX_STREAMS {
        let msg = format!(
            "{MAX_STREAMS} live streams are open already; close one (another tail or console) and retry"
        );
        return error(StatusCode::SERVICE_UNAVAILABLE, &msg).map(Either::Left);
    }
    let body = if head {
        Either::Left(http_body_util::Full::new(Bytes::new()))
    } else {
        let sub = feed.subscribe(&req.start);
        let (tx, rx) = mpsc::channel(BUFFERED);
        let out = Out { tx, signal };
        tokio::spawn(pump(sub, req.filter, out, feed.instance().to_owned()));
        Either::Right(SseBody { rx })
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Reverse proxies (nginx) must pass each item on at once, not buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// The stream's way out: its chunks, unless the client left or the process is stopping.
struct Out {
    tx: mpsc::Sender<Bytes>,
    signal: ShutdownSignal,
}

impl Out {
    /// Hands on a chunk; false once the stream should end.
    async fn put(&mut self, chunk: Bytes) -> bool {
        tokio::select! {
            sent = self.tx.send(chunk) => sent.is_ok(),
            _ = self.signal.recv() => false,
        }
    }
}

/// An `event: missed` item: how many items this stream lost, and why.
fn missed(n: u64, reason: &str) -> Bytes {
    let data = serde_json::json!({"kind": "missed", "missed": n, "reason": reason});
    Bytes::from(format!("event: missed\ndata: {data}\n\n"))
}

/// Copies one subscription into its stream until the client leaves or shutdown.
async fn pump(mut sub: Subscription, filter: Filter, mut out: Out, instance: String) {
    let hello = format!(
        "retry: {RETRY_MS}\n: userhook live feed of instance {instance}; a heartbeat every {}s\n\n",
        HEARTBEAT.as_secs()
    );
    if !out.put(Bytes::from(hello)).await {
        return;
    }
    if sub.restarted {
        let reason = "the instance restarted since that id; replaying what it kept";
        if !out.put(missed(sub.missed, reason)).await {
            return;
        }
    } else if sub.missed > 0 {
        let reason = "older than what the instance keeps";
        if !out.put(missed(sub.missed, reason)).await {
            return;
        }
    }
    for item in std::mem::take(&mut sub.backlog) {
        if filter.matches(&item) && !out.put(item.frame().clone()).await {
            return;
        }
    }
    let start = tokio::time::Instant::now() + HEARTBEAT;
    let mut beat = tokio::time::interval_at(start, HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let chunk = tokio::select! {
            item = sub.live.recv() => match item {
                Ok(item) if filter.matches(&item) => item.frame().clone(),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    missed(n, "this reader was too slow; the oldest items were dropped")
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = beat.tick() => Bytes::from_static(b": heartbeat\n\n"),
            _ = out.tx.closed() => return,
            _ = out.signal.recv() => return,
        };
        if !out.put(chunk).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{RequestInfo, UserEvent, UserFields};
    use crate::shutdown::Shutdown;

    fn event(id: &str) -> UserEvent {
        let mut user = UserFields::new();
        user.insert("ID".into(), id.into());
        UserEvent::new(1, Action::Login, user, RequestInfo::default(), false)
    }

    fn parse(q: &str, last: Option<&str>) -> Result<Request, String> {
        let mut h = HeaderMap::new();
        if let Some(l) = last {
            h.insert("last-event-id", HeaderValue::from_str(l).unwrap());
        }
        Request::parse(Some(q), &h)
    }

    #[test]
    fn queries_parse_into_filters() {
        let r = parse(
            "action=created,deleted&action=login&user=a%2Bb%40x.io&webhook=ops&outcome=dead",
            None,
        )
        .unwrap();
        assert_eq!(
            r.filter.actions,
            [Action::Created, Action::Deleted, Action::Login]
        );
        assert_eq!(r.filter.users, ["a+b@x.io"]);
        assert_eq!(r.filter.webhooks, ["ops"]);
        assert_eq!(r.filter.outcomes, [Outcome::Dead]);
        assert_eq!(r.start, Start::Now);
        assert_eq!(parse("replay=5", None).unwrap().start, Start::Replay(5));
        assert_eq!(
            parse("replay=all", None).unwrap().start,
            Start::Replay(RING_ITEMS)
        );
        assert_eq!(
            parse("replay=999999", None).unwrap().start,
            Start::Replay(RING_ITEMS)
        );
        // Last-Event-ID wins over replay: a reconnect resumes.
        assert_eq!(
            parse("replay=5", Some(" ab-3 ")).unwrap().start,
            Start::After("ab-3".into())
        );
        assert_eq!(parse("", None).unwrap(), parse("", Some("")).unwrap());
        for (q, want) in [
            ("action=create", "did you mean `created`"),
            ("outcome=ok", "unknown outcome `ok`"),
            ("replay=-1", "replay must be a number"),
            ("token=x", "unknown parameter `token`"),
        ] {
            let e = parse(q, None).unwrap_err();
            assert!(e.contains(want), "{q}: {e}");
        }
    }

    async fn next(rx: &mut mpsc::Receiver<Bytes>) -> String {
        let b = rx.recv().await.expect("a chunk");
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_says_hello_replays_filters_beats_and_ends_at_shutdown() {
        let feed = LiveFeed::new();
        feed.detected(&event("1"), &[]);
        feed.detected(&event("2"), &[]);
        let filter = Filter {
            users: vec!["2".into(), "3".into()],
            ..Filter::default()
        };
        let sub = feed.subscribe(&Start::Replay(10));
        let (shutdown, signal) = Shutdown::new();
        let (tx, mut rx) = mpsc::channel(BUFFERED);
        let task = tokio::spawn(pump(sub, filter, Out { tx, signal }, "i".into()));
        assert_eq!(
            next(&mut rx).await,
            "retry: 2000\n: userhook live feed of instance i; a heartbeat every 15s\n\n"
        );
        let second = next(&mut rx).await;
        assert!(
            second.starts_with(&format!("id: {}-2\n", feed.instance())),
            "{second}"
        );
        feed.detected(&event("9"), &[]);
        feed.detected(&event("3"), &[]);
        let third = next(&mut rx).await;
        assert!(
            third.starts_with(&format!("id: {}-4\n", feed.instance())),
            "{third}"
        );
        // Nothing for 15 s: a heartbeat (paused time advances as the task sleeps).
        assert_eq!(next(&mut rx).await, ": heartbeat\n\n");
        shutdown.trigger();
        task.await.unwrap();
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn resumes_say_what_was_missed_and_a_closed_client_ends_the_task() {
        let feed = LiveFeed::new();
        feed.detected(&event("1"), &[]);
        let sub = feed.subscribe(&Start::After("other-7".into()));
        let (_shutdown, signal) = Shutdown::new();
        let (tx, mut rx) = mpsc::channel(BUFFERED);
        let task = tokio::spawn(pump(sub, Filter::default(), Out { tx, signal }, "i".into()));
        next(&mut rx).await;
        assert_eq!(
            next(&mut rx).await,
            "event: missed\ndata: {\"kind\":\"missed\",\"missed\":0,\"reason\":\"the instance restarted since that id; replaying what it kept\"}\n\n"
        );
        assert!(next(&mut rx).await.contains("event: detected\n"));
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task ends when its client is gone")
            .unwrap();
    }

    #[tokio::test]
    async fn a_reader_that_stalls_is_told_what_it_lost() {
        let feed = LiveFeed::new();
        let sub = feed.subscribe(&Start::Now);
        let (_shutdown, signal) = Shutdown::new();
        let (tx, mut rx) = mpsc::channel(1);
        let task = tokio::spawn(pump(sub, Filter::default(), Out { tx, signal }, "i".into()));
        next(&mut rx).await;
        // The reader stalls; the publisher never waits for it.
        let total = crate::events::live::LAG_ITEMS + 200;
        let started = std::time::Instant::now();
        for i in 0..total {
            feed.detected(&event(&i.to_string()), &[]);
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        let mut items = 0;
        let mut lost = 0;
        while items + lost < total as u64 {
            let chunk = next(&mut rx).await;
            if chunk.starts_with("event: missed") {
                let data = chunk.trim().strip_prefix("event: missed\ndata: ").unwrap();
                let v: serde_json::Value = serde_json::from_str(data).unwrap();
                lost += v["missed"].as_u64().unwrap();
                assert!(v["reason"].as_str().unwrap().contains("too slow"));
            } else {
                items += 1;
            }
        }
        assert!(lost > 0, "nothing was lost");
        assert_eq!(items + lost, total as u64);
        drop(rx);
        task.await.unwrap();
    }
}
