//! The extractor: from a matched exchange to a user event.
//!
//! Runs on the extractor task, off the request path, after the response completed. It asks
//! detection for the outcome (`detect`), fills gaps from the user cache it owns, and stamps
//! the event with its sequence number. It must never panic on any exchange, and never put a
//! credential into an event unless an operator's rule names it explicitly.

pub mod changes;
pub mod user_cache;

use std::sync::atomic::{AtomicU64, Ordering};

use super::dispatch::Dispatcher;
use super::handoff::{Handoff, HandoffReceiver};
use crate::detect::RuleKind;
use crate::event::{Action, RequestInfo, UserEvent, UserFields};
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

    /// The events this exchange means (one per action of the rule that fired, in order), if
    /// its outcome matches a rule of `snapshot` (the config that served the request).
    pub fn process(&self, snapshot: &Snapshot, ex: &Exchange) -> Vec<UserEvent> {
        let mut events = Vec::new();
        self.process_into(snapshot, ex, &mut events);
        events
    }

    /// [`Extractor::process`] appending to `out`, so the extractor loop reuses one buffer.
    pub fn process_into(&self, snapshot: &Snapshot, ex: &Exchange, out: &mut Vec<UserEvent>) {
        let view = View::new(
            ex,
            snapshot
                .capture_limit
                .saturating_mul(decode::EXPANSION_FACTOR),
        );
        let Some(outcome) = snapshot.routes.outcome(&ex.route, &view) else {
            return;
        };
        let fields = outcome.fields;
        let actions = match outcome.kind {
            RuleKind::Remember => {
                self.cache.remember(&fields);
                return;
            }
            RuleKind::Events(actions) => actions,
        };
        let truncated = view.truncated();
        let request = request_info(ex);
        match actions.split_last() {
            // The usual single action: fields and request move into the event.
            Some((last, [])) => out.extend(self.event(last, fields, request, truncated)),
            Some((last, first)) => {
                for action in first {
                    out.extend(self.event(action, fields.clone(), request.clone(), truncated));
                }
                out.extend(self.event(last, fields, request, truncated));
            }
            None => {}
        }
    }

    /// One action's event: the cache fills the gaps and learns from it, as the action means.
    fn event(
        &self,
        action: &Action,
        mut fields: UserFields,
        request: RequestInfo,
        truncated: bool,
    ) -> Option<UserEvent> {
        // A login or logout of nobody (e.g. Keycloak's logout confirmation page) is no event.
        if matches!(action, Action::Login | Action::Logout) && fields.is_empty() {
            return None;
        }
        let changes = match action {
            Action::Updated => changes::diff(
                fields.get("ID").and_then(|id| self.cache.get(id)).as_ref(),
                &fields,
            ),
            _ => changes::Changes::default(),
        };
        if matches!(
            action,
            Action::Updated | Action::Deleted | Action::Logout | Action::Custom(_)
        ) {
            self.cache.fill(&mut fields);
        }
        match action {
            Action::Created | Action::Updated | Action::Login | Action::Custom(_) => {
                self.cache.remember(&fields)
            }
            Action::Deleted => self.cache.forget(&fields),
            Action::Logout | Action::LoginFailed => {}
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut event = UserEvent::new(seq, action.clone(), fields, request, truncated);
        event.changed = changes.changed;
        event.previous = changes.previous;
        Some(event)
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
    let mut batch = Vec::new();
    while let Some(Handoff {
        snapshot,
        mut exchange,
    }) = exchanges.recv().await
    {
        let mut durable = exchange.durable.take();
        extractor.process_into(&snapshot, &exchange, &mut batch);
        if batch.is_empty() {
            // No event: nothing to make durable, so nothing a strict response waits for.
            if let Some(ack) = durable.take() {
                let _ = ack.send(Durability::Committed);
            }
            continue;
        }
        let last = batch.len();
        let mut refused = 0;
        for (i, event) in batch.drain(..).enumerate() {
            tracing::info!(
                event = event.event_type.as_ref(),
                id = %event.id,
                seq = event.seq,
                user_id = event.user.get("ID").map(String::as_str).unwrap_or(""),
                status = event.request.status,
                request_id = %event.request.request_id,
                "user event"
            );
            crate::metrics::event_detected(&event.action);
            refused += dispatcher.dispatch_counted(&current.load(), &event).refused;
            // Subscribers hear of the event before a strict-mode client sees its response.
            let _ = events.send(event);
            // A strict-mode response waits for all of its events: told after the last one.
            if i + 1 == last {
                if let Some(ack) = durable.take() {
                    if refused > 0 {
                        // A refused delivery is not on disk: the response must not say it is.
                        let _ = ack.send(Durability::Unconfirmed(Unconfirmed::Refused));
                    } else {
                        dispatcher.notify_when_durable(ack);
                    }
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
