//! From one user event to one [`Delivery`] per subscribed webhook and sink.
//!
//! Runs on the extractor's task, off the request path, and must never wait: it reads the
//! webhooks of the snapshot its caller passes (the current config: it never reaches for the
//! engine's config cell), builds the deliveries and hands them to the engine (short locks; the
//! spool's writer commits them in the background). It never renders or sends anything; that
//! happens per attempt, with the webhook's config as it is then. Every event is published on
//! the engine's live feed (`GET /events`) with the targets it went to, before its deliveries.

use super::clock::now_ms;
use super::engine::DeliveryEngine;
use super::outbox::Delivery;
use crate::event::UserEvent;
use crate::exchange::Durability;
use crate::sink::Sinks;
use crate::snapshot::Snapshot;
use crate::webhook::Webhooks;

/// Hands events to the delivery engine.
#[derive(Clone)]
pub struct Dispatcher {
    engine: DeliveryEngine,
}

impl Dispatcher {
    /// A dispatcher feeding `engine`. Which webhooks get a delivery comes from the snapshot
    /// each [`Dispatcher::dispatch`] is given, not from the engine.
    pub fn new(engine: DeliveryEngine) -> Self {
        Dispatcher { engine }
    }

    /// Queues one delivery per enabled webhook of `snapshot` subscribed to the event; returns
    /// how many. The caller passes the current config: a webhook removed by a reload gets no
    /// new deliveries.
    pub fn dispatch(&self, snapshot: &Snapshot, event: &UserEvent) -> usize {
        self.dispatch_counted(snapshot, event).planned
    }

    /// [`Dispatcher::dispatch`], also saying how many deliveries the engine refused (a
    /// `strict` response must not be released as durable then). The live feed keeps a copy
    /// of the event.
    pub fn dispatch_counted(&self, snapshot: &Snapshot, event: &UserEvent) -> Dispatched {
        self.dispatch_owned(snapshot, event.clone())
    }

    /// [`Dispatcher::dispatch_counted`] of an event the caller is done with: the live feed
    /// keeps it as it is, so an event costs no copy beyond its deliveries' own.
    pub fn dispatch_owned(&self, snapshot: &Snapshot, event: UserEvent) -> Dispatched {
        let mut filtered = Vec::new();
        let mut deliveries = plan_noting(&event, &snapshot.webhooks, now_ms(), &mut |w| {
            filtered.push(w.to_owned())
        });
        deliveries.extend(plan_sinks(&event, &snapshot.sinks, now_ms()));
        let planned = deliveries.len();
        // Watchers see the event, then the webhooks that filtered it out, before any outcome
        // of its deliveries.
        let targets: Vec<String> = deliveries.iter().map(|d| d.webhook.clone()).collect();
        self.engine
            .live()
            .detected_owned(event, targets, &filtered, now_ms());
        let refused = deliveries
            .into_iter()
            .filter_map(|d| self.engine.enqueue(d))
            .count();
        Dispatched { planned, refused }
    }

    /// Answers `ack` once every delivery dispatched before this call is committed to disk
    /// (fsync'd), so a strict-mode response can be released: `Committed`, or `Unconfirmed`
    /// when that commit failed or the spool is closed. Never waits itself: the spool's writer
    /// answers after its next commit.
    pub fn notify_when_durable(&self, ack: tokio::sync::oneshot::Sender<Durability>) {
        self.engine.notify_when_durable(ack);
    }
}

/// What one dispatch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatched {
    /// Deliveries the event caused (one per subscribed webhook and sink).
    pub planned: usize,
    /// Of those, refused by the engine (recorded as failed).
    pub refused: usize,
}

/// The deliveries an event causes: one per enabled webhook watching its object and action
/// whose `when:` filter accepts it, in config order, each with a fresh id. An event a filter
/// turns away is counted for that webhook (`userhook_webhook_filtered_total`) and never
/// spooled.
pub fn plan(event: &UserEvent, webhooks: &Webhooks, now_ms: u64) -> Vec<Delivery> {
    plan_noting(event, webhooks, now_ms, &mut |_| {})
}

/// [`plan`], telling `turned_away` each webhook whose filter turned the event away (for the
/// live feed's `filtered` outcome).
pub fn plan_noting(
    event: &UserEvent,
    webhooks: &Webhooks,
    now_ms: u64,
    turned_away: &mut dyn FnMut(&str),
) -> Vec<Delivery> {
    webhooks
        .iter()
        .filter(|w| w.enabled && event.object == "user" && w.subscribes(&event.action))
        .filter(|w| {
            let accepted = w.filter.accepts(event);
            if !accepted {
                crate::metrics::webhook_filtered(&w.name);
                turned_away(&w.name);
            }
            accepted
        })
        .map(|w| Delivery::new(&w.name, event.clone(), now_ms))
        .collect()
}

/// The deliveries an event causes to sinks: one per enabled sink watching it, in config
/// order, after the webhooks' (a sink is a target beside webhooks in the same engine).
pub fn plan_sinks(event: &UserEvent, sinks: &Sinks, now_ms: u64) -> Vec<Delivery> {
    sinks
        .iter()
        .filter(|s| s.enabled && event.object == "user" && s.subscribes(&event.action))
        .map(|s| Delivery::new(&s.name, event.clone(), now_ms))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, RequestInfo, UserFields};

    #[test]
    fn one_delivery_per_enabled_subscribed_webhook() {
        let text = "upstream: http://127.0.0.1:1\nwebhooks:\n  - {name: all, actions: ['*'], url: 'http://x/'}\n  - {name: created, actions: [created], url: 'http://x/'}\n  - {name: off, actions: ['*'], url: 'http://x/', enabled: false}\n  - {name: deleted, actions: [deleted, login], url: 'http://x/'}\n";
        let file = crate::config::parse_str(text).unwrap_or_else(|e| panic!("{e}"));
        let hooks = Webhooks::compile(&file).unwrap_or_else(|e| panic!("{e:?}"));
        let ev = UserEvent::new(
            1,
            Action::Created,
            UserFields::new(),
            RequestInfo::default(),
            false,
        );
        let ds = plan(&ev, &hooks, 77);
        let names: Vec<_> = ds.iter().map(|d| d.webhook.as_str()).collect();
        assert_eq!(names, ["all", "created"]);
        assert_ne!(ds[0].id, ds[1].id);
        assert!(ds.iter().all(|d| d.attempt == 0
            && d.created_at == 77
            && d.next_attempt_at == 77
            && d.event == ev
            && uuid::Uuid::parse_str(&d.id).map(|u| u.get_version_num()) == Ok(7)));
        let login = UserEvent::new(
            2,
            Action::Login,
            UserFields::new(),
            RequestInfo::default(),
            false,
        );
        let names: Vec<_> = plan(&login, &hooks, 0)
            .into_iter()
            .map(|d| d.webhook)
            .collect();
        assert_eq!(names, ["all", "deleted"]);
    }
}
