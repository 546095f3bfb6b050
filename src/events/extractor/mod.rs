//! The extractor: from a matched exchange to a user event.
//!
//! Runs on the extractor task, off the request path, after the response completed. It asks
//! detection for the outcome (`detect`), fills gaps from the user cache it owns, and stamps
//! the event with its sequence number. It must never panic on any exchange, and never put a
//! credential into an event unless an operator's rule names it explicitly.

pub mod user_cache;

use std::sync::atomic::{AtomicU64, Ordering};

use super::dispatch::Dispatcher;
use super::handoff::{Handoff, HandoffReceiver};
use crate::detect::RuleKind;
use crate::event::{Action, RequestInfo, UserEvent};
use crate::exchange::{Durability, Exchange, Unconfirmed};
use crate::extract::decode;
use crate::extract::view::View;
use crate::snapshot::Snapshot;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::broadcast;
use user_cache::UserCache;

/// Turns exchanges into events; lives across config reloads (it owns the user cache).
#[derive(Debug)]
pub struct Extractor {
    /// Next event sequence number; starts at 1 and grows by one per event.
    seq: AtomicU64,
    cache: UserCache,
}

impl Extractor {
    /// An extractor whose user cache holds `capacity` users (0 disables the cache).
    pub fn new(capacity: usize) -> Self {
        Extractor {
            seq: AtomicU64::new(1),
            cache: UserCache::new(capacity),
        }
    }

    /// Applies a reloaded `user_cache.capacity`, keeping the most recent users.
    pub fn set_capacity(&self, capacity: usize) {
        self.cache.set_capacity(capacity);
    }

    /// The user cache, for metrics and tests.
    pub fn cache(&self) -> &UserCache {
        &self.cache
    }

    /// The event this exchange means, if its outcome matches a rule of `snapshot` (the
    /// config that served the request).
    pub fn process(&self, snapshot: &Snapshot, ex: &Exchange) -> Option<UserEvent> {
        let view = View::new(
            ex,
            snapshot
                .capture_limit
                .saturating_mul(decode::EXPANSION_FACTOR),
        );
        let outcome = snapshot.routes.outcome(&ex.route, &view)?;
        let mut fields = outcome.fields;
        let action = match outcome.kind {
            RuleKind::Remember => {
                self.cache.remember(&fields);
                return None;
            }
            RuleKind::Event(action) => action,
        };
        // A login or logout of nobody (e.g. Keycloak's logout confirmation page) is no event.
        if matches!(action, Action::Login | Action::Logout) && fields.is_empty() {
            return None;
        }
        if matches!(action, Action::Updated | Action::Deleted | Action::Logout) {
            self.cache.fill(&mut fields);
        }
        match action {
            Action::Created | Action::Updated | Action::Login => self.cache.remember(&fields),
            Action::Deleted => self.cache.forget(&fields),
            Action::Logout | Action::LoginFailed => {}
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        Some(UserEvent::new(
            seq,
            action,
            fields,
            request_info(ex),
            view.truncated(),
        ))
    }
}

/// Turns finished exchanges into events and hands each to the dispatcher, off the request
/// path. Dispatching only queues (a short lock, no I/O), so this loop never waits on a target.
///
/// The exchange is judged by the rules of the snapshot that served it; its deliveries go to
/// the webhooks of the `current` config, so a webhook removed by a reload gets no new ones.
pub async fn run(
    mut exchanges: HandoffReceiver,
    extractor: Arc<Extractor>,
    events: broadcast::Sender<UserEvent>,
    dispatcher: Dispatcher,
    current: Arc<ArcSwap<Snapshot>>,
) {
    while let Some(Handoff {
        snapshot,
        mut exchange,
    }) = exchanges.recv().await
    {
        let durable = exchange.durable.take();
        let Some(event) = extractor.process(&snapshot, &exchange) else {
            // No event: nothing to make durable, so nothing a strict response waits for.
            if let Some(ack) = durable {
                let _ = ack.send(Durability::Committed);
            }
            continue;
        };
        {
            tracing::info!(
                event = event.event_type,
                id = %event.id,
                seq = event.seq,
                user_id = event.user.get("ID").map(String::as_str).unwrap_or(""),
                status = event.request.status,
                request_id = %event.request.request_id,
                "user event"
            );
            crate::metrics::event_detected(event.action);
            let dispatched = dispatcher.dispatch_counted(&current.load(), &event);
            // Subscribers hear of the event before a strict-mode client sees its response.
            let _ = events.send(event);
            if let Some(ack) = durable {
                if dispatched.refused > 0 {
                    // A refused delivery is not on disk: the response must not say it is.
                    let _ = ack.send(Durability::Unconfirmed(Unconfirmed::Refused));
                } else {
                    dispatcher.notify_when_durable(ack);
                }
            }
        }
    }
}

/// Where the event came from: method, path without query, status, client and request ids.
fn request_info(ex: &Exchange) -> RequestInfo {
    RequestInfo {
        method: ex.method.as_str().to_owned(),
        path: ex.uri.path().to_owned(),
        status: ex.status.as_u16(),
        remote_addr: ex
            .remote_ip
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        request_id: String::from_utf8_lossy(ex.request_id.as_bytes()).into_owned(),
        user_agent: ex
            .request_headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests;
