//! The admin API's spool endpoints, which `userhook deadletter …` uses on a running instance:
//!
//! - `GET /spool`: counters (commits, pending, dead letters, refusals, bytes).
//! - `GET /deadletters[?limit=N]`: dead letters, newest first (default 100).
//! - `GET /deadletters/{id}`: one dead letter, or 404.
//! - `POST /deadletters/replay[?id=ID]`: back into pending (one, or all without `id`), or
//!   `?webhook=W&since=T&until=T`: those of a webhook and/or a time window.
//! - `POST /deliveries/resend?webhook=W&since=T&until=T`: kept successful deliveries sent
//!   again with their `webhook-id` (`delivery.retain_delivered`).
//! - `POST /deadletters/purge`: drop them all.
//!
//! Dead letters carry their event (user fields): this is why the admin port is localhost by
//! default. Never shows a secret: deliveries store events, not rendered requests.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::respond::{error, ok as to_json};
use super::state::AdminState;
use crate::events::replay::Window;
use crate::events::{now_ms, EngineError, Replay};

/// Dead letters listed when no `limit` is given.
const DEFAULT_LIMIT: usize = 100;

/// `GET /spool`.
pub(crate) fn stats(state: &AdminState) -> Response<Full<Bytes>> {
    to_json(&state.deliveries.stats())
}

/// `GET /deadletters[?limit=N]`.
pub(crate) async fn list(state: &AdminState, query: Option<&str>) -> Response<Full<Bytes>> {
    let mut limit = DEFAULT_LIMIT;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("limit", v)) => match v.parse::<usize>() {
                Ok(n) => limit = n.min(crate::events::engine::LIST_LIMIT),
                Err(_) => return bad("limit must be a number"),
            },
            _ => return bad("unknown parameter; expected limit=N"),
        }
    }
    match state.deliveries.dead_letter_list(limit).await {
        Ok(letters) => to_json(&serde_json::json!({ "dead_letters": letters })),
        Err(e) => unavailable(&e),
    }
}

/// `GET /deadletters/{id}`.
pub(crate) async fn show(state: &AdminState, id: &str) -> Response<Full<Bytes>> {
    let id = decode(id);
    let id = id.as_str();
    match state.deliveries.dead_letter(id).await {
        Ok(Some(letter)) => to_json(&letter),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            &format!("no dead letter with id `{id}`"),
        ),
        Err(e) => unavailable(&e),
    }
}

/// `POST /deadletters/replay[?id=ID]` or `[?webhook=W][&since=T][&until=T]`.
pub(crate) async fn replay(state: &AdminState, query: Option<&str>) -> Response<Full<Bytes>> {
    let mut id = None;
    let mut window = WindowQuery::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("id", v)) if !v.is_empty() => id = Some(decode(v)),
            Some((k, v)) if window.take(k, v) => {}
            _ => {
                return bad(
                    "unknown parameter; expected id=DELIVERY_ID, or webhook=NAME, since=TIME and \
                     until=TIME (RFC 3339 or a span back from now such as 24h), or nothing for all",
                )
            }
        }
    }
    let which = match (id, window.is_empty()) {
        (Some(id), true) => Replay::One(id),
        (Some(_), false) => return bad("id=… names one dead letter; it takes no window"),
        (None, true) => Replay::All,
        (None, false) => match window.parse() {
            Ok(w) => Replay::Window(w),
            Err(e) => return bad(&e),
        },
    };
    match state.deliveries.replay(which).await {
        Ok(n) => to_json(&serde_json::json!({ "replayed": n })),
        Err(e) if e.is_not_found() => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e) => unavailable(&e),
    }
}

/// `POST /deliveries/resend[?webhook=W][&since=T][&until=T]`.
pub(crate) async fn resend(state: &AdminState, query: Option<&str>) -> Response<Full<Bytes>> {
    let mut window = WindowQuery::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if window.take(k, v) => {}
            _ => {
                return bad(
                    "unknown parameter; expected webhook=NAME, since=TIME and until=TIME (RFC \
                     3339 or a span back from now such as 24h)",
                )
            }
        }
    }
    let window = match window.parse() {
        Ok(w) => w,
        Err(e) => return bad(&e),
    };
    let kept = state.runtime.load().file.delivery.retain_delivered.count;
    match state.deliveries.resend(&window).await {
        Ok(n) => to_json(&serde_json::json!({ "resent": n, "retained": kept > 0 })),
        Err(e) => unavailable(&e),
    }
}

/// The `webhook`, `since` and `until` of a query, as given.
#[derive(Debug, Default)]
struct WindowQuery {
    webhook: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl WindowQuery {
    /// Takes `key=value` if it is one of the three; false for any other key.
    fn take(&mut self, key: &str, value: &str) -> bool {
        let slot = match key {
            "webhook" => &mut self.webhook,
            "since" => &mut self.since,
            "until" => &mut self.until,
            _ => return false,
        };
        *slot = Some(decode(value));
        true
    }

    fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.since.is_none() && self.until.is_none()
    }

    fn parse(&self) -> Result<Window, String> {
        Window::parse(
            self.webhook.as_deref(),
            self.since.as_deref(),
            self.until.as_deref(),
            now_ms(),
        )
    }
}

/// `POST /deadletters/purge`.
pub(crate) async fn purge(state: &AdminState) -> Response<Full<Bytes>> {
    match state.deliveries.purge_dead_letters().await {
        Ok(n) => to_json(&serde_json::json!({ "purged": n })),
        Err(e) => unavailable(&e),
    }
}

/// A percent-encoded id as sent by `userhook deadletter` (invalid UTF-8 stays as given).
pub(crate) fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map_or_else(|_| s.to_string(), |c| c.into_owned())
}

fn bad(message: &str) -> Response<Full<Bytes>> {
    error(StatusCode::BAD_REQUEST, message)
}

/// 503 with the engine's reason: the spool is closed, or failed to read or write.
fn unavailable(e: &EngineError) -> Response<Full<Bytes>> {
    error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())
}
