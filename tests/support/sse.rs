//! A Server-Sent Events reader for the `GET /events` tests, written from the SSE rules
//! (fields `id`, `event`, `data`, comments starting with `:`, a blank line ends an event) and
//! not from userhook's code, so the tests check the wire format rather than agree with it.
//! Keeps every byte it read, for the canary checks.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use serde_json::Value;

/// One event as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SseEvent {
    /// The `id:` field, if the event had one.
    pub id: Option<String>,
    /// The `event:` field (`message` when absent).
    pub event: String,
    /// The `data:` lines joined with newlines, parsed as JSON.
    pub data: Value,
}

impl SseEvent {
    /// The feed number after the instance in `<instance>-<n>`.
    pub(crate) fn n(&self) -> u64 {
        let id = self.id.as_deref().expect("an id");
        id.rsplit_once('-')
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("an id `<instance>-<n>`: {id}"))
    }

    /// The instance part of the id.
    pub(crate) fn instance(&self) -> String {
        let id = self.id.as_deref().expect("an id");
        id.rsplit_once('-').expect("instance-n").0.to_owned()
    }
}

/// An open stream.
pub(crate) struct Sse {
    resp: reqwest::Response,
    buf: Vec<u8>,
    /// Every byte read so far.
    pub raw: Vec<u8>,
    /// Comments seen so far (without the colon).
    pub comments: Vec<String>,
    /// `retry:` values seen.
    pub retry: Vec<String>,
    ended: bool,
}

/// `GET {admin}/events{query}` with the token and a `Last-Event-ID`; the status, headers and
/// the stream (when 200) or the error body.
pub(crate) async fn open(
    admin: &str,
    query: &str,
    token: Option<&str>,
    last_id: Option<&str>,
) -> Result<(HeaderMap, Sse), (StatusCode, String)> {
    // reqwest is built without a default TLS provider; userhook installs ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut req = client.get(format!("{admin}/events{query}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(id) = last_id {
        req = req.header("last-event-id", id);
    }
    let resp = req.send().await.expect("connect to /events");
    let status = resp.status();
    if status != StatusCode::OK {
        let body = resp.text().await.unwrap_or_default();
        return Err((status, body));
    }
    let headers = resp.headers().clone();
    Ok((
        headers,
        Sse {
            resp,
            buf: Vec::new(),
            raw: Vec::new(),
            comments: Vec::new(),
            retry: Vec::new(),
            ended: false,
        },
    ))
}

impl Sse {
    /// The next event within `wait`; `None` when the stream ended. Panics on timeout.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        tokio::time::timeout(wait, self.next_event())
            .await
            .unwrap_or_else(|_| panic!("no SSE event within {wait:?}"))
    }

    /// The next event, or `None` when the stream ended.
    async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(block) = self.take_block() {
                if let Some(ev) = self.parse_block(&block) {
                    return Some(ev);
                }
                continue;
            }
            if self.ended {
                return None;
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => {
                    self.raw.extend_from_slice(&chunk);
                    self.buf.extend_from_slice(&chunk);
                }
                Ok(None) | Err(_) => self.ended = true,
            }
        }
    }

    /// Waits until the stream ends within `wait`; the events read meanwhile.
    pub(crate) async fn until_end(&mut self, wait: Duration) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        tokio::time::timeout(wait, async {
            while let Some(ev) = self.next_event().await {
                seen.push(ev);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the stream did not end within {wait:?}"));
        seen
    }

    /// Events until `n` have been read.
    pub(crate) async fn take(&mut self, n: usize, wait: Duration) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.next(wait).await {
                Some(ev) => out.push(ev),
                None => panic!("stream ended after {} of {n} events: {out:?}", out.len()),
            }
        }
        out
    }

    /// Everything read so far as text.
    pub(crate) fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    fn take_block(&mut self) -> Option<String> {
        let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
        let block: Vec<u8> = self.buf.drain(..end + 2).collect();
        Some(String::from_utf8(block).expect("SSE is UTF-8"))
    }

    fn parse_block(&mut self, block: &str) -> Option<SseEvent> {
        let mut id = None;
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(comment) = line.strip_prefix(':') {
                self.comments.push(comment.trim().to_owned());
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.to_owned()),
                "event" => event = Some(value.to_owned()),
                "data" => data.push(value),
                "retry" => self.retry.push(value.to_owned()),
                "" => {}
                other => panic!("unknown SSE field `{other}` in {block:?}"),
            }
        }
        if data.is_empty() {
            return None;
        }
        let data = serde_json::from_str(&data.join("\n"))
            .unwrap_or_else(|e| panic!("data is not JSON ({e}): {block:?}"));
        Some(SseEvent {
            id,
            event: event.unwrap_or_else(|| "message".into()),
            data,
        })
    }
}
