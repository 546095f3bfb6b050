//! The admin API's spool endpoints, which `userhook deadletter …` uses on a running instance:
//!
//! - `GET /spool`: counters (commits, pending, dead letters, refusals, bytes).
//! - `GET /deadletters[?limit=N]`: dead letters, newest first (default 100).
//! - `GET /deadletters/{id}`: one dead letter, or 404.
//! - `POST /deadletters/replay[?id=ID]`: back into pending (one, or all without `id`).
//! - `POST /deadletters/purge`: drop them all.
//!
//! Dead letters carry their event (user fields): this is why the admin port is localhost by
//! default. Never shows a secret: deliveries store events, not rendered requests.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::respond::{error, ok as to_json};
use super::state::AdminState;
use crate::events::{EngineError, Replay};

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

/// `POST /deadletters/replay[?id=ID]`.
pub(crate) async fn replay(state: &AdminState, query: Option<&str>) -> Response<Full<Bytes>> {
    let mut which = Replay::All;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("id", v)) if !v.is_empty() => which = Replay::One(decode(v)),
            _ => return bad("unknown parameter; expected id=DELIVERY_ID or nothing for all"),
        }
    }
    match state.deliveries.replay(which).await {
        Ok(n) => to_json(&serde_json::json!({ "replayed": n })),
        Err(e) if e.is_not_found() => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e) => unavailable(&e),
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
