//! Deliveries waiting to be attempted, and the order they may be attempted in.
//!
//! A [`Delivery`] holds the *event*, never the rendered request: each attempt renders with the
//! webhook's current config, so no secret or keyed URL is ever stored, and a fixed URL applies
//! to pending retries. The record is plain serde data so a disk-backed outbox can store it
//! unchanged; [`Outbox`] keeps its storage behind five operations (enqueue, next ready, ack,
//! retry later, dead letter) so that storage can be swapped.
//!
//! Ordering: deliveries of one webhook about one user form a FIFO *lane*; only a lane's head
//! may be attempted, so a later event about a user is never sent before an earlier one has
//! succeeded or been dead-lettered. Different users (and events without a user ID, which get a
//! lane each) never wait for each other. This module does no I/O and never reads the clock.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::event::UserEvent;

/// One event on its way to one webhook, across all its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// UUIDv7; sent as `webhook-id` on every attempt so receivers can de-duplicate.
    pub id: String,
    /// The webhook's name; its compiled config is looked up at each attempt.
    pub webhook: String,
    /// The event itself (never the rendered request): each attempt renders it afresh.
    pub event: UserEvent,
    /// Attempts made so far.
    pub attempt: u32,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Unix milliseconds; not attempted before this.
    pub next_attempt_at: u64,
    /// Why the last attempt failed, if it did.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Spool order: grows by one per delivery and survives restarts, so one webhook's
    /// deliveries about one user keep their event order. 0 until the engine accepts it.
    #[serde(default)]
    pub seq: u64,
}

impl Delivery {
    /// A fresh delivery of `event` to `webhook`, due at once.
    pub fn new(webhook: &str, event: UserEvent, now_ms: u64) -> Self {
        Delivery {
            id: crate::ids::now_v7()
                .hyphenated()
                .encode_lower(&mut [0u8; uuid::fmt::Hyphenated::LENGTH])
                .to_owned(),
            webhook: webhook.to_string(),
            event,
            attempt: 0,
            created_at: now_ms,
            next_attempt_at: now_ms,
            last_error: None,
            seq: 0,
        }
    }

    /// The user this delivery is about, if the event named one.
    pub fn user_id(&self) -> Option<&str> {
        self.event
            .user
            .get("ID")
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The ordering lane: per webhook and user ID; an event without ID is a lane of its own.
    fn lane(&self) -> Lane {
        let key = match self.user_id() {
            Some(id) => format!("user:{id}"),
            None => format!("event:{}", self.event.id),
        };
        (self.webhook.clone(), key)
    }
}

type Lane = (String, String);

/// `(due ms, enqueue order, id)`: earliest first, FIFO among equals.
type Slot = (u64, u64, String);

struct Entry {
    delivery: Delivery,
    lane: Lane,
    order: u64,
}

/// The in-memory queue of pending deliveries.
pub struct Outbox {
    entries: HashMap<String, Entry>,
    lanes: HashMap<Lane, VecDeque<String>>,
    /// Lane heads not in flight, per webhook, by due time.
    due: HashMap<String, BTreeSet<Slot>>,
    in_flight: HashSet<String>,
    /// Deliveries held per webhook (waiting or in flight), for digests' "and N more".
    per_webhook: HashMap<String, usize>,
    next_order: u64,
    capacity: usize,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` deliveries (a full one refuses more rather
    /// than grow without bound while a target is down).
    pub fn new(capacity: usize) -> Self {
        Outbox {
            entries: HashMap::new(),
            lanes: HashMap::new(),
            due: HashMap::new(),
            in_flight: HashSet::new(),
            per_webhook: HashMap::new(),
            next_order: 0,
            capacity,
        }
    }

    /// Adds a delivery at the end of its lane; gives it back when the outbox is full.
    pub fn enqueue(&mut self, delivery: Delivery) -> Result<(), Box<Delivery>> {
        if self.entries.len() >= self.capacity || self.entries.contains_key(&delivery.id) {
            return Err(Box::new(delivery));
        }
        let lane = delivery.lane();
        *self
            .per_webhook
            .entry(delivery.webhook.clone())
            .or_default() += 1;
        let order = self.next_order;
        self.next_order += 1;
        let queue = self.lanes.entry(lane.clone()).or_default();
        queue.push_back(delivery.id.clone());
        if queue.len() == 1 {
            self.schedule(
                &delivery.webhook,
                delivery.next_attempt_at,
                order,
                &delivery.id,
            );
        }
        self.entries.insert(
            delivery.id.clone(),
            Entry {
                delivery,
                lane,
                order,
            },
        );
        Ok(())
    }

    /// Takes the earliest due delivery (due at or before `now_ms`) of a webhook that
    /// `can_start` admits, and marks it in flight.
    pub fn next_ready(
        &mut self,
        now_ms: u64,
        mut can_start: impl FnMut(&str) -> bool,
    ) -> Option<Delivery> {
        self.next_ready_by(now_ms, |w, _| can_start(w))
    }

    /// [`Outbox::next_ready`], with the webhook's earliest due time given to `can_start` too
    /// (a digest window counts from it).
    pub fn next_ready_by(
        &mut self,
        now_ms: u64,
        mut can_start: impl FnMut(&str, u64) -> bool,
    ) -> Option<Delivery> {
        let mut best: Option<(&String, &Slot)> = None;
        for (webhook, slots) in &self.due {
            let Some(first) = slots.first() else { continue };
            if first.0 > now_ms || !can_start(webhook, first.0) {
                continue;
            }
            if best.is_none_or(|(_, b)| (first.0, first.1) < (b.0, b.1)) {
                best = Some((webhook, first));
            }
        }
        let (webhook, slot) = best.map(|(w, s)| (w.clone(), s.clone()))?;
        if let Some(slots) = self.due.get_mut(&webhook) {
            slots.remove(&slot);
            if slots.is_empty() {
                self.due.remove(&webhook);
            }
        }
        self.in_flight.insert(slot.2.clone());
        self.entries.get(&slot.2).map(|e| e.delivery.clone())
    }

    /// Takes the earliest due lane head of `webhook` (due at or before `now_ms`) and marks it
    /// in flight: the further members of a digest. Lane heads only, so a digest holds at most
    /// one event per user and per-user order holds across digests.
    pub fn next_ready_of(&mut self, webhook: &str, now_ms: u64) -> Option<Delivery> {
        let slots = self.due.get_mut(webhook)?;
        let first = slots.first().filter(|s| s.0 <= now_ms)?.clone();
        slots.remove(&first);
        if slots.is_empty() {
            self.due.remove(webhook);
        }
        self.in_flight.insert(first.2.clone());
        self.entries.get(&first.2).map(|e| e.delivery.clone())
    }

    /// Lane heads of `webhook` due at `now_ms`, counted up to `limit`.
    pub fn ready_count(&self, webhook: &str, now_ms: u64, limit: usize) -> usize {
        self.due.get(webhook).map_or(0, |slots| {
            slots
                .iter()
                .take(limit)
                .take_while(|s| s.0 <= now_ms)
                .count()
        })
    }

    /// The earliest due time of `webhook`'s waiting lane heads.
    pub fn first_due_of(&self, webhook: &str) -> Option<u64> {
        self.due.get(webhook).and_then(|s| s.first()).map(|s| s.0)
    }

    /// Makes every waiting lane head of `webhook` due at `now_ms` (a webhook resumed by hand).
    pub fn due_now(&mut self, webhook: &str, now_ms: u64) {
        let Some(slots) = self.due.get_mut(webhook) else {
            return;
        };
        let later: Vec<Slot> = slots.iter().filter(|s| s.0 > now_ms).cloned().collect();
        for slot in later {
            slots.remove(&slot);
            if let Some(e) = self.entries.get_mut(&slot.2) {
                e.delivery.next_attempt_at = now_ms;
            }
            slots.insert((now_ms, slot.1, slot.2));
        }
    }

    /// Deliveries of `webhook` held (waiting or in flight).
    pub fn count_of(&self, webhook: &str) -> usize {
        self.per_webhook.get(webhook).copied().unwrap_or(0)
    }

    /// The earliest due time of any waiting lane head, for the scheduler's timer.
    pub fn next_due(&self) -> Option<u64> {
        self.due
            .values()
            .filter_map(|s| s.first())
            .map(|s| s.0)
            .min()
    }

    /// The delivery succeeded: forget it and let its lane move on.
    pub fn ack(&mut self, id: &str) -> Option<Delivery> {
        self.remove(id)
    }

    /// The delivery failed for good: forget it (the caller keeps it as a dead letter) and let
    /// its lane move on.
    pub fn dead_letter(&mut self, id: &str) -> Option<Delivery> {
        self.remove(id)
    }

    /// The delivery failed and will be tried again at `delivery.next_attempt_at`; it stays at
    /// the head of its lane, so later deliveries about the same user keep waiting.
    pub fn retry_later(&mut self, delivery: Delivery) {
        let id = delivery.id.clone();
        self.in_flight.remove(&id);
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.delivery = delivery;
        let (webhook, due, order) = (
            entry.delivery.webhook.clone(),
            entry.delivery.next_attempt_at,
            entry.order,
        );
        self.schedule(&webhook, due, order, &id);
    }

    /// An in-flight delivery that was not attempted after all (shutdown): due again as it was.
    pub fn release(&mut self, id: &str) {
        if !self.in_flight.remove(id) {
            return;
        }
        if let Some(e) = self.entries.get(id) {
            let (webhook, due, order) = (
                e.delivery.webhook.clone(),
                e.delivery.next_attempt_at,
                e.order,
            );
            self.schedule(&webhook, due, order, id);
        }
    }

    /// Every in-flight delivery back to waiting (their attempts were abandoned).
    pub fn release_all(&mut self) {
        let ids: Vec<String> = self.in_flight.iter().cloned().collect();
        for id in ids {
            self.release(&id);
        }
    }

    /// Deliveries waiting or in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Deliveries being attempted right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Every pending delivery, in enqueue order (for listing and, later, persisting).
    pub fn pending(&self) -> Vec<Delivery> {
        let mut all: Vec<&Entry> = self.entries.values().collect();
        all.sort_by_key(|e| e.order);
        all.into_iter().map(|e| e.delivery.clone()).collect()
    }

    fn schedule(&mut self, webhook: &str, due: u64, order: u64, id: &str) {
        self.due
            .entry(webhook.to_string())
            .or_default()
            .insert((due, order, id.to_string()));
    }

    fn remove(&mut self, id: &str) -> Option<Delivery> {
        self.in_flight.remove(id);
        let entry = self.entries.remove(id)?;
        if let Some(n) = self.per_webhook.get_mut(&entry.delivery.webhook) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_webhook.remove(&entry.delivery.webhook);
            }
        }
        if let Some(slots) = self.due.get_mut(&entry.delivery.webhook) {
            slots.remove(&(entry.delivery.next_attempt_at, entry.order, id.to_string()));
        }
        if let Some(queue) = self.lanes.get_mut(&entry.lane) {
            queue.retain(|x| x != id);
            let head = queue.front().and_then(|h| self.entries.get(h));
            let next = head.map(|h| {
                (
                    h.delivery.webhook.clone(),
                    h.delivery.next_attempt_at,
                    h.order,
                    h.delivery.id.clone(),
                )
            });
            match next {
                // Schedule the new head unless it already is (it was the head all along when
                // `id` was not at the front, or it is in flight).
                Some((w, due, order, hid)) => {
                    if !self.in_flight.contains(&hid) {
                        self.schedule(&w, due, order, &hid);
                    }
                }
                None => {
                    self.lanes.remove(&entry.lane);
                }
            }
        }
        Some(entry.delivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, RequestInfo, UserFields};

    fn event(user: Option<&str>) -> UserEvent {
        let mut fields = UserFields::new();
        if let Some(u) = user {
            fields.insert("ID".into(), u.into());
        }
        UserEvent::new(0, Action::Updated, fields, RequestInfo::default(), false)
    }

    fn delivery(webhook: &str, user: Option<&str>, now: u64) -> Delivery {
        Delivery::new(webhook, event(user), now)
    }

    fn take_all(o: &mut Outbox, now: u64) -> Vec<String> {
        std::iter::from_fn(|| o.next_ready(now, |_| true).map(|d| d.id)).collect()
    }

    #[test]
    fn one_user_is_a_fifo_lane() {
        let mut o = Outbox::new(100);
        let a1 = delivery("w", Some("a"), 0);
        let a2 = delivery("w", Some("a"), 0);
        let b1 = delivery("w", Some("b"), 0);
        for d in [&a1, &a2, &b1] {
            o.enqueue(d.clone()).expect("room");
        }
        assert_eq!(take_all(&mut o, 0), [a1.id.clone(), b1.id.clone()]);
        assert_eq!(o.in_flight(), 2);
        // a1 fails and waits: a2 must not start, b's lane is unaffected.
        let mut retry = a1.clone();
        retry.attempt = 1;
        retry.next_attempt_at = 100;
        o.retry_later(retry);
        assert_eq!(take_all(&mut o, 50), Vec::<String>::new());
        assert_eq!(o.next_due(), Some(100));
        assert_eq!(take_all(&mut o, 100), vec![a1.id.clone()]);
        assert_eq!(o.ack(&a1.id).map(|d| d.attempt), Some(1));
        assert_eq!(take_all(&mut o, 100), vec![a2.id.clone()]);
        assert!(o.dead_letter(&a2.id).is_some());
        assert!(o.ack(&b1.id).is_some());
        assert!(o.is_empty());
        assert_eq!(o.next_due(), None);
        assert!(o.lanes.is_empty() && o.due.is_empty() && o.in_flight.is_empty());
    }

    #[test]
    fn same_user_on_different_webhooks_is_independent() {
        let mut o = Outbox::new(100);
        let w1 = delivery("w1", Some("a"), 0);
        let w2 = delivery("w2", Some("a"), 0);
        o.enqueue(w1.clone()).expect("room");
        o.enqueue(w2.clone()).expect("room");
        assert_eq!(take_all(&mut o, 0), [w1.id, w2.id]);
    }

    #[test]
    fn events_without_user_id_are_unordered() {
        let mut o = Outbox::new(100);
        let x = delivery("w", None, 0);
        let y = delivery("w", None, 0);
        o.enqueue(x.clone()).expect("room");
        o.enqueue(y.clone()).expect("room");
        assert_eq!(take_all(&mut o, 0), [x.id, y.id]);
    }

    #[test]
    fn earliest_due_first_and_future_ones_wait() {
        let mut o = Outbox::new(100);
        let late = delivery("w", Some("a"), 50);
        let early = delivery("v", Some("b"), 10);
        o.enqueue(late.clone()).expect("room");
        o.enqueue(early.clone()).expect("room");
        assert_eq!(o.next_due(), Some(10));
        assert_eq!(take_all(&mut o, 5), Vec::<String>::new());
        assert_eq!(take_all(&mut o, 60), [early.id, late.id]);
    }

    #[test]
    fn can_start_skips_busy_webhooks() {
        let mut o = Outbox::new(100);
        let busy = delivery("busy", Some("a"), 0);
        let free = delivery("free", Some("b"), 1);
        o.enqueue(busy.clone()).expect("room");
        o.enqueue(free.clone()).expect("room");
        let got = o.next_ready(10, |w| w != "busy").map(|d| d.id);
        assert_eq!(got, Some(free.id));
        assert_eq!(o.next_ready(10, |w| w != "busy"), None);
        assert_eq!(o.next_ready(10, |_| true).map(|d| d.id), Some(busy.id));
    }

    #[test]
    fn digests_take_lane_heads_of_one_webhook_only() {
        let mut o = Outbox::new(100);
        let a1 = delivery("w", Some("a"), 0);
        let a2 = delivery("w", Some("a"), 0);
        let b1 = delivery("w", Some("b"), 5);
        let c1 = delivery("w", Some("c"), 50);
        let other = delivery("v", Some("a"), 0);
        for d in [&a1, &a2, &b1, &c1, &other] {
            o.enqueue(d.clone()).expect("room");
        }
        assert_eq!(
            (o.count_of("w"), o.count_of("v"), o.count_of("x")),
            (4, 1, 0)
        );
        assert_eq!(
            o.ready_count("w", 10, 100),
            2,
            "a1 and b1: a2 waits behind a1"
        );
        assert_eq!(o.ready_count("w", 10, 1), 1);
        assert_eq!(o.first_due_of("w"), Some(0));
        let got: Vec<String> =
            std::iter::from_fn(|| o.next_ready_of("w", 10).map(|d| d.id)).collect();
        assert_eq!(got, [a1.id.clone(), b1.id.clone()]);
        assert_eq!(o.first_due_of("w"), Some(50));
        o.ack(&a1.id);
        assert_eq!(o.next_ready_of("w", 10).map(|d| d.id), Some(a2.id.clone()));
        assert_eq!(o.count_of("w"), 3);
        o.release(&b1.id);
        assert_eq!(o.ready_count("w", 10, 100), 1);
    }

    #[test]
    fn capacity_and_duplicates_are_refused() {
        let mut o = Outbox::new(2);
        let d = delivery("w", Some("a"), 0);
        o.enqueue(d.clone()).expect("room");
        assert!(o.enqueue(d.clone()).is_err(), "same id twice");
        o.enqueue(delivery("w", Some("a"), 0)).expect("room");
        let third = delivery("w", Some("c"), 0);
        assert_eq!(o.enqueue(third.clone()), Err(Box::new(third)));
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn release_puts_it_back_as_it_was() {
        let mut o = Outbox::new(10);
        let d = delivery("w", Some("a"), 0);
        o.enqueue(d.clone()).expect("room");
        assert!(o.next_ready(0, |_| true).is_some());
        assert_eq!(o.next_ready(0, |_| true), None);
        o.release(&d.id);
        assert_eq!(o.in_flight(), 0);
        assert_eq!(o.next_ready(0, |_| true), Some(d));
    }

    #[test]
    fn pending_lists_in_enqueue_order_and_records_round_trip() {
        let mut o = Outbox::new(10);
        let a = delivery("w", Some("a"), 0);
        let b = delivery("w", Some("b"), 0);
        o.enqueue(a.clone()).expect("room");
        o.enqueue(b.clone()).expect("room");
        assert_eq!(o.pending(), [a.clone(), b]);
        let text = serde_json::to_string(&a).expect("serialise");
        assert!(!text.contains("http"), "no URL is stored: {text}");
        let back: Delivery = serde_json::from_str(&text).expect("deserialise");
        assert_eq!(back, a);
    }
}
