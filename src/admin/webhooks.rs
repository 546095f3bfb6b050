//! The admin API's webhook endpoints, which `userhook webhooks …` uses:
//!
//! - `GET /webhooks`: every configured webhook's state (active or paused, why, since when,
//!   the next probe, its rate, its pending deliveries), in config order.
//! - `POST /webhooks/{name}/resume`: resume a paused webhook now; 404 for an unknown name.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::respond::{error, ok as to_json};
use super::spool::decode;
use super::state::AdminState;
use crate::events::WebhooksError;

/// `GET /webhooks`.
pub(crate) fn list(state: &AdminState) -> Response<Full<Bytes>> {
    to_json(&serde_json::json!({ "webhooks": state.deliveries.webhook_states() }))
}

/// `POST /webhooks/{name}/resume`; `rest` is the path after `/webhooks/`.
pub(crate) fn post(state: &AdminState, rest: &str) -> Response<Full<Bytes>> {
    let Some(name) = rest.strip_suffix("/resume").filter(|n| !n.is_empty()) else {
        return error(
            StatusCode::NOT_FOUND,
            "not found; expected POST /webhooks/{name}/resume",
        );
    };
    let name = decode(name);
    match state.deliveries.resume_webhook(&name) {
        Ok(()) => to_json(&serde_json::json!({ "resumed": name })),
        Err(e @ WebhooksError::Unknown { .. }) => error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}
