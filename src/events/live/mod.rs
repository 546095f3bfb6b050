//! The live feed: every detected event and every delivery outcome of a running instance, as
//! the admin API's `GET /events` (Server-Sent Events), `userhook tail` and the web console show
//! them.
//!
//! Publishing is what the event path pays, so it is cheap and never waits: a detected event
//! is packed into its ring slot ([`kept`]: no allocation for a usual one), a delivery
//! outcome's values are kept as they are, and either is rendered into its SSE frame
//! (credentials masked, long values cut) only when a reader first asks for it, so an instance
//! nobody watches never renders one. Items are pushed into a bounded ring ([`RING_ITEMS`]
//! items, [`RING_BYTES`] bytes) and sent on a `tokio::sync::broadcast` channel (a detected
//! event only when someone listens), all under one short lock that no reader holds across an
//! await. A subscriber that falls more than [`LAG_ITEMS`] behind loses the oldest items and is
//! told how many ([`Subscription`] readers see `RecvError::Lagged`); nobody is ever waited for.
//!
//! Every item has a feed id, `<instance>-<n>` (`n` grows by one per item; `instance` is random
//! per process), which the SSE stream sends as `id:`. A reconnect naming the last id it saw
//! resumes from the ring without duplicates or gaps; an id of another instance (a restart)
//! replays what this one kept; what the ring no longer holds is counted as missed.
//!
//! Never shows a credential: user fields whose name marks one are masked
//! ([`crate::redact::is_credential_name`]), the request path goes through
//! [`crate::redact::redact_url`], and no header, body, query or rule detail is included.

mod kept;
mod ring;

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

use super::outbox::Delivery;
use super::records::rfc3339;
use crate::event::{Action, UserEvent};
pub use kept::MAX_VALUE_CHARS;
use kept::{cut, KeptEvent, FILTER_KEYS};
use ring::Ring;
pub use ring::{RING_BYTES, RING_ITEMS};

/// How far one subscriber may fall behind before it loses items (and is told how many).
pub const LAG_ITEMS: usize = 1024;

/// What a delivery outcome was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The target took it.
    Delivered,
    /// The attempt failed; another is scheduled.
    Retrying,
    /// It will not be attempted again: kept as a dead letter.
    Dead,
    /// A webhook's filter left this event out (no delivery made).
    Filtered,
    /// The webhook is paused; the delivery waits.
    Paused,
    /// The spool refused it (full, faulted, overloaded, stopping): recorded as failed, not
    /// kept.
    Refused,
}

impl Outcome {
    /// Every outcome, in the order the docs list them.
    pub const ALL: [Outcome; 6] = [
        Outcome::Delivered,
        Outcome::Retrying,
        Outcome::Dead,
        Outcome::Filtered,
        Outcome::Paused,
        Outcome::Refused,
    ];

    /// The name in the feed and in `?outcome=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retrying",
            Outcome::Dead => "dead",
            Outcome::Filtered => "filtered",
            Outcome::Paused => "paused",
            Outcome::Refused => "refused",
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown outcome `{s}`; expected delivered, retrying, dead, filtered, paused or refused"
                )
            })
    }
}

/// What kind of item the feed carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A detected user event (SSE `event: detected`).
    Detected,
    /// One delivery's outcome (SSE `event: delivery`).
    Delivery,
}

/// One item of the feed: what filters look at, and its SSE frame.
#[derive(Debug)]
pub struct Item {
    /// The feed's number for it (the `n` of its id).
    pub n: u64,
    /// Detected event or delivery outcome.
    pub kind: Kind,
    /// The event's action.
    pub action: Action,
    /// A delivery's user `ID`, `Email` and `Name` (those it has), for `?user=`; a detected
    /// event's are read from its packed values.
    users: Vec<String>,
    /// A detected event's targets (webhooks and sinks it was dispatched to); a delivery's one.
    pub webhooks: Vec<String>,
    /// A delivery's outcome.
    pub outcome: Option<Outcome>,
    /// A detected event's values, kept until its frame is rendered (and then for its user
    /// values).
    event: Option<Box<KeptEvent>>,
    /// A delivery outcome's values, kept until its frame is rendered.
    outcome_view: Option<Box<OutcomeView>>,
    /// The feed's instance number, for the frame's id.
    instance: u32,
    /// `id: …\nevent: …\ndata: {json}\n\n`, ready to write; rendered on first use.
    frame: OnceLock<Bytes>,
}

impl Item {
    /// The item's SSE frame, rendered the first time anyone asks.
    pub fn frame(&self) -> &Bytes {
        self.frame.get_or_init(|| {
            let data = match (&self.event, &self.outcome_view) {
                (Some(event), _) => event.json(&self.webhooks),
                (None, Some(view)) => view.json(self),
                (None, None) => return Bytes::new(),
            };
            match data {
                Ok(data) => frame(self.instance, self.n, self.kind, &data),
                // Unreachable (plain strings and numbers), but never a broken frame.
                Err(_) => Bytes::new(),
            }
        })
    }

    /// The user's `ID`, `Email` and `Name` values the item has.
    pub fn user_values(&self) -> Vec<&str> {
        match &self.event {
            Some(event) => event.user_values().collect(),
            None => self.users.iter().map(String::as_str).collect(),
        }
    }
}

/// Which items a subscriber wants; empty lists allow everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these actions.
    pub actions: Vec<Action>,
    /// Only events about a user with one of these `ID`, `Email` or `Name` values (case-blind).
    pub users: Vec<String>,
    /// Only deliveries to these webhooks, and events dispatched to one of them.
    pub webhooks: Vec<String>,
    /// Only delivery outcomes of these kinds (detected events are left out then).
    pub outcomes: Vec<Outcome>,
}

impl Filter {
    /// True when `item` passes every list that is not empty.
    pub fn matches(&self, item: &Item) -> bool {
        (self.actions.is_empty() || self.actions.contains(&item.action))
            && (self.users.is_empty()
                || item
                    .user_values()
                    .iter()
                    .any(|u| self.users.iter().any(|w| w.eq_ignore_ascii_case(u))))
            && (self.webhooks.is_empty() || item.webhooks.iter().any(|w| self.webhooks.contains(w)))
            && (self.outcomes.is_empty()
                || item.outcome.is_some_and(|o| self.outcomes.contains(&o)))
    }
}

/// Where a new subscriber starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// From now on.
    Now,
    /// With the last `n` retained items (before filters), then live.
    Replay(usize),
    /// After the item with this feed id (an SSE `Last-Event-ID`).
    After(String),
}

/// A subscriber's start: what the ring still had for it, how much it no longer had, and the
/// live channel from right after the backlog (nothing missing, nothing twice).
#[derive(Debug)]
pub struct Subscription {
    /// Retained items to send first, oldest first (not yet filtered).
    pub backlog: Vec<Arc<Item>>,
    /// Items after the subscriber's last id that the ring no longer holds.
    pub missed: u64,
    /// True when the last id named another instance (this one restarted since).
    pub restarted: bool,
    /// Items published after the backlog.
    pub live: broadcast::Receiver<Arc<Item>>,
}

/// The feed's handle; cheap to clone.
#[derive(Clone)]
pub struct LiveFeed {
    inner: Arc<Inner>,
}

struct Inner {
    /// `instance_n` as the 8 hex digits of every feed id.
    instance: Arc<str>,
    instance_n: u32,
    ring: Mutex<Ring<Item>>,
    tx: broadcast::Sender<Arc<Item>>,
}

impl Default for LiveFeed {
    fn default() -> Self {
        LiveFeed::new()
    }
}

impl std::fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveFeed")
            .field("instance", &self.inner.instance)
            .finish_non_exhaustive()
    }
}

impl LiveFeed {
    /// An empty feed with a fresh instance name.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(LAG_ITEMS);
        let instance_n = fastrand::u32(..);
        LiveFeed {
            inner: Arc::new(Inner {
                instance: Arc::from(format!("{instance_n:08x}")),
                instance_n,
                ring: Mutex::new(Ring::new()),
                tx,
            }),
        }
    }

    /// This process's part of every feed id.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Subscribers right now.
    pub fn watchers(&self) -> usize {
        self.inner.tx.receiver_count()
    }

    /// Publishes a detected event and the targets it was dispatched to; nothing is rendered
    /// until a reader asks ([`Item::frame`]).
    pub fn detected(&self, event: &UserEvent, targets: &[&str]) {
        let targets: Vec<String> = targets.iter().map(|t| (*t).to_owned()).collect();
        self.publish_detected(event, &targets);
    }

    /// Publishes a detected event the caller is done with, the targets it was dispatched to,
    /// and then a `filtered` item for each webhook in `filtered` (at `now_ms`). What the
    /// frame shows is packed ([`KeptEvent`]) and the event freed here, while it is in cache.
    pub fn detected_owned(
        &self,
        event: UserEvent,
        targets: Vec<String>,
        filtered: &[String],
        now_ms: u64,
    ) {
        self.publish_detected(&event, &targets);
        for webhook in filtered {
            self.filtered(&event, webhook, now_ms);
        }
    }

    /// Packs `event` into the ring and, when someone listens, sends it as an item.
    fn publish_detected(&self, event: &UserEvent, targets: &[String]) {
        let mut ring = self.ring();
        let n = ring.take_n();
        ring.keep_detected(n, event, targets);
        // Only a reader needs an item; the slot then keeps it, so later readers share it and
        // its rendered frame. Under the ring's lock, so a new subscriber either counts here
        // or finds the event in the ring.
        if self.inner.tx.receiver_count() > 0 {
            let newest = ring.len() - 1;
            if let Some(item) = ring.share(newest, |n, kept| self.detected_item(n, kept)) {
                let _ = self.inner.tx.send(item);
            }
        }
    }

    /// Publishes one delivery's outcome (`http_status`: the target's reply, if there was one).
    /// Its values are kept and rendered when a reader first asks ([`Item::frame`]).
    pub fn delivery(
        &self,
        delivery: &Delivery,
        outcome: Outcome,
        http_status: Option<u16>,
        now_ms: u64,
    ) {
        let view = OutcomeView {
            event_id: delivery.event.id.clone(),
            delivery_id: Some(delivery.id.clone()),
            status: http_status,
            attempt: delivery.attempt,
            time_ms: now_ms,
            event_type: delivery.event.event_type.clone(),
            user_id: delivery.user_id().map(str::to_owned),
            error: delivery.last_error.clone(),
            next_attempt_ms: (outcome == Outcome::Retrying).then_some(delivery.next_attempt_at),
        };
        self.keep_outcome(
            view,
            delivery.event.action.clone(),
            user_keys(&delivery.event),
            delivery.webhook.clone(),
            outcome,
        );
    }

    /// Publishes that a webhook's filter left `event` out: a `delivery` item with outcome
    /// `filtered` and no delivery id (none was made). For the dispatcher's webhook filters.
    pub fn filtered(&self, event: &UserEvent, webhook: &str, now_ms: u64) {
        let view = OutcomeView {
            event_id: event.id.clone(),
            delivery_id: None,
            status: None,
            attempt: 0,
            time_ms: now_ms,
            event_type: event.event_type.clone(),
            user_id: event.user.get("ID").filter(|v| !v.is_empty()).cloned(),
            error: None,
            next_attempt_ms: None,
        };
        self.keep_outcome(
            view,
            event.action.clone(),
            user_keys(event),
            webhook.to_owned(),
            Outcome::Filtered,
        );
    }

    /// Keeps an outcome item, to be rendered when first read.
    fn keep_outcome(
        &self,
        view: OutcomeView,
        action: Action,
        users: Vec<String>,
        webhook: String,
        outcome: Outcome,
    ) {
        let cost = view.estimated_len() + webhook.len();
        let mut ring = self.ring();
        let n = ring.take_n();
        let item = Arc::new(Item {
            n,
            kind: Kind::Delivery,
            action,
            users,
            webhooks: vec![webhook],
            outcome: Some(outcome),
            event: None,
            outcome_view: Some(Box::new(view)),
            instance: self.inner.instance_n,
            frame: OnceLock::new(),
        });
        ring.keep_shared(n, cost, item.clone());
        // No subscriber is not an error: the ring keeps it for the next one.
        let _ = self.inner.tx.send(item);
    }

    /// A reader's item for the detected event numbered `n`.
    fn detected_item(&self, n: u64, event: KeptEvent) -> Item {
        Item {
            n,
            kind: Kind::Detected,
            action: event.action.clone(),
            users: Vec::new(),
            webhooks: event.targets().map(str::to_owned).collect(),
            outcome: None,
            event: Some(Box::new(event)),
            outcome_view: None,
            instance: self.inner.instance_n,
            frame: OnceLock::new(),
        }
    }

    /// A new subscriber starting at `start`.
    pub fn subscribe(&self, start: &Start) -> Subscription {
        // Under the publishers' lock: nothing is published between the backlog and the
        // channel's first item.
        let mut ring = self.ring();
        let live = self.inner.tx.subscribe();
        let oldest = ring.get(0).map_or(ring.next, |e| e.n);
        let (after, restarted) = match start {
            Start::Now => (ring.next - 1, false),
            Start::Replay(k) => {
                let from = ring.len().saturating_sub(*k);
                let after = ring.get(from).map_or(ring.next, |e| e.n) - 1;
                (after, false)
            }
            Start::After(id) => match parse_id(id) {
                Some((instance, n)) if instance == &*self.inner.instance && n < ring.next => {
                    (n, false)
                }
                // Another instance's id (a restart), one from the future, or none we wrote.
                _ => (0, true),
            },
        };
        let missed = match start {
            Start::After(_) => oldest.saturating_sub(after + 1),
            _ => 0,
        };
        // The kept items after `after` are the last ones; each becomes a shared item once.
        let first = ring.len() - ring.iter().filter(|e| e.n > after).count();
        let backlog = (first..ring.len())
            .filter_map(|i| ring.share(i, |n, kept| self.detected_item(n, kept)))
            .collect();
        Subscription {
            backlog,
            missed,
            restarted,
            live,
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring<Item>> {
        self.inner.ring.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The SSE frame of one item.
fn frame(instance: u32, n: u64, kind: Kind, data: &str) -> Bytes {
    let event = match kind {
        Kind::Detected => "detected",
        Kind::Delivery => "delivery",
    };
    // JSON from serde_json has no raw newline, so one `data:` line holds it.
    Bytes::from(format!(
        "id: {instance:08x}-{n}\nevent: {event}\ndata: {data}\n\n"
    ))
}

/// `<instance>-<n>` back into its parts.
fn parse_id(id: &str) -> Option<(&str, u64)> {
    let (instance, n) = id.trim().rsplit_once('-')?;
    Some((instance, n.parse().ok()?))
}

/// `ID`, `Email` and `Name`, those present and not credentials, for the user filter.
fn user_keys(event: &UserEvent) -> Vec<String> {
    FILTER_KEYS
        .into_iter()
        .filter_map(|k| event.user.get(k))
        .filter(|v| !v.is_empty())
        .cloned()
        .collect()
}

/// What a delivery outcome's frame shows, kept until it is rendered.
#[derive(Debug)]
struct OutcomeView {
    event_id: String,
    delivery_id: Option<String>,
    status: Option<u16>,
    attempt: u32,
    time_ms: u64,
    event_type: Cow<'static, str>,
    user_id: Option<String>,
    error: Option<String>,
    next_attempt_ms: Option<u64>,
}

impl OutcomeView {
    /// The `data:` JSON of the outcome `item` carries.
    fn json(&self, item: &Item) -> serde_json::Result<String> {
        let outcome = item.outcome.unwrap_or(Outcome::Delivered);
        serde_json::to_string(&DeliveryJson {
            kind: "delivery",
            event_id: &self.event_id,
            delivery_id: self.delivery_id.as_deref(),
            webhook: item.webhooks.first().map_or("", String::as_str),
            outcome: outcome.as_str(),
            status: self.status,
            attempt: self.attempt,
            time: rfc3339(self.time_ms),
            action: item.action.as_str(),
            event: &self.event_type,
            user_id: self.user_id.as_deref().map(cut),
            error: self.error.as_deref(),
            next_attempt: self.next_attempt_ms.map(rfc3339),
        })
    }

    /// About how long the rendered frame will be.
    fn estimated_len(&self) -> usize {
        const FIXED: usize = 260;
        FIXED
            + self.event_id.len()
            + self.delivery_id.as_ref().map_or(0, String::len)
            + self.event_type.len()
            + self
                .user_id
                .as_ref()
                .map_or(0, |u| u.len().min(MAX_VALUE_CHARS * 4))
            + self.error.as_ref().map_or(0, String::len)
    }
}

#[derive(Serialize)]
struct DeliveryJson<'a> {
    kind: &'static str,
    event_id: &'a str,
    delivery_id: Option<&'a str>,
    webhook: &'a str,
    outcome: &'static str,
    status: Option<u16>,
    attempt: u32,
    time: String,
    action: &'a str,
    event: &'a str,
    user_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{RequestInfo, UserFields};
    use crate::redact::REDACTED;

    const CANARY: &str = "CANARY-LIVE-PASSWORD-0123456789abcdef";

    fn event(id: &str, email: &str, action: Action) -> UserEvent {
        let mut user = UserFields::new();
        user.insert("ID".into(), id.into());
        user.insert("Email".into(), email.into());
        user.insert("password".into(), CANARY.into());
        user.insert("Bio".into(), "x".repeat(1000));
        let request = RequestInfo {
            method: "POST".into(),
            path: format!("/reset/{CANARY}"),
            status: 201,
            ..RequestInfo::default()
        };
        UserEvent::new(1, action, user, request, false)
    }

    fn data(item: &Item) -> serde_json::Value {
        let text = std::str::from_utf8(item.frame()).unwrap();
        let line = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        serde_json::from_str(line).unwrap()
    }

    fn ns(items: &[Arc<Item>]) -> Vec<u64> {
        items.iter().map(|i| i.n).collect()
    }

    #[test]
    fn a_detected_event_reads_the_same_live_and_from_the_ring() {
        let feed = LiveFeed::new();
        let mut live = feed.subscribe(&Start::Now);
        let ev = event("42", "a@example.com", Action::Created);
        feed.detected_owned(ev, vec!["ops".into()], &["quiet".into()], 5_000);
        let first = live.live.try_recv().unwrap();
        let filtered = live.live.try_recv().unwrap();
        assert_eq!((first.n, filtered.n), (1, 2));
        assert_eq!(filtered.outcome, Some(Outcome::Filtered));
        let replayed = feed.subscribe(&Start::Replay(2)).backlog;
        assert_eq!(ns(&replayed), [1, 2]);
        assert_eq!(replayed[0].frame(), first.frame());
        assert_eq!(replayed[1].frame(), filtered.frame());
        // One item per event, shared by every reader (and rendered once).
        assert!(Arc::ptr_eq(&replayed[0], &first));
        let again = feed.subscribe(&Start::Replay(2)).backlog;
        assert!(Arc::ptr_eq(&again[0], &replayed[0]) && Arc::ptr_eq(&again[1], &filtered));
        assert_eq!(first.webhooks, ["ops"]);
        assert_eq!(first.user_values(), ["42", "a@example.com"]);
        // Nobody listening: the ring still keeps it, and a replay renders it the same way.
        drop(live);
        feed.detected(&event("43", "b@example.com", Action::Deleted), &["ops"]);
        {
            // No item was made for nobody: the slot still holds the packed event.
            let ring = feed.ring();
            let newest = ring.get(ring.len() - 1).unwrap();
            assert_eq!(newest.n, 3);
            assert!(matches!(newest.kept, ring::Kept::Detected(_)));
        }
        let kept = feed.subscribe(&Start::Replay(1)).backlog;
        assert_eq!(ns(&kept), [3]);
        assert!(Arc::ptr_eq(
            &kept[0],
            &feed.subscribe(&Start::Replay(1)).backlog[0]
        ));
        assert_eq!(data(&kept[0])["user"]["ID"], "43");
        assert_eq!(data(&kept[0])["action"], "deleted");
    }

    #[test]
    fn frames_carry_id_event_and_masked_data() {
        let feed = LiveFeed::new();
        let ev = event("42", "a@example.com", Action::Created);
        feed.detected(&ev, &["ops", "audit"]);
        let mut d = Delivery::new("ops", ev.clone(), 1_000);
        d.attempt = 1;
        feed.delivery(&d, Outcome::Delivered, Some(200), 2_000);
        let sub = feed.subscribe(&Start::Replay(10));
        assert_eq!(ns(&sub.backlog), [1, 2]);
        let first = std::str::from_utf8(sub.backlog[0].frame()).unwrap();
        let id = format!("id: {}-1\nevent: detected\ndata: {{", feed.instance());
        assert!(first.starts_with(&id), "{first}");
        assert!(first.ends_with("}\n\n"));
        assert!(!first.contains(CANARY), "{first}");
        let v = data(&sub.backlog[0]);
        assert_eq!(v["kind"], "detected");
        assert_eq!(v["id"], ev.id.as_str());
        assert_eq!(v["event"], "user.created");
        assert_eq!(v["user"]["password"], REDACTED);
        assert_eq!(v["user"]["ID"], "42");
        assert_eq!(v["request"]["path"], "/reset/<redacted>");
        assert_eq!(v["webhooks"], serde_json::json!(["ops", "audit"]));
        let bio = v["user"]["Bio"].as_str().unwrap();
        assert_eq!(bio.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(bio.ends_with('…'));
        let v = data(&sub.backlog[1]);
        assert_eq!(
            v,
            serde_json::json!({
                "kind": "delivery", "event_id": ev.id, "delivery_id": d.id, "webhook": "ops",
                "outcome": "delivered", "status": 200, "attempt": 1,
                "time": "1970-01-01T00:00:02.000Z", "action": "created",
                "event": "user.created", "user_id": "42",
            })
        );
        assert!(!std::str::from_utf8(sub.backlog[1].frame())
            .unwrap()
            .contains(CANARY));
    }

    #[test]
    fn resuming_after_an_id_has_no_gap_and_no_duplicate() {
        let feed = LiveFeed::new();
        for i in 0..5 {
            feed.detected(&event(&i.to_string(), "e", Action::Login), &[]);
        }
        let id = format!("{}-3", feed.instance());
        let mut sub = feed.subscribe(&Start::After(id));
        assert_eq!(ns(&sub.backlog), [4, 5]);
        assert_eq!((sub.missed, sub.restarted), (0, false));
        feed.detected(&event("6", "e", Action::Login), &[]);
        assert_eq!(sub.live.try_recv().unwrap().n, 6);
        assert!(sub.live.try_recv().is_err());
        // Now: no backlog; the next item only.
        let mut now = feed.subscribe(&Start::Now);
        assert!(now.backlog.is_empty());
        feed.detected(&event("7", "e", Action::Login), &[]);
        assert_eq!(now.live.try_recv().unwrap().n, 7);
        // Replay: the last k.
        assert_eq!(ns(&feed.subscribe(&Start::Replay(2)).backlog), [6, 7]);
        assert_eq!(
            ns(&feed.subscribe(&Start::Replay(0)).backlog),
            [] as [u64; 0]
        );
        assert_eq!(feed.subscribe(&Start::Replay(99)).backlog.len(), 7);
    }

    #[test]
    fn ids_of_another_instance_or_the_future_replay_everything_kept() {
        let feed = LiveFeed::new();
        for i in 0..3 {
            feed.detected(&event(&i.to_string(), "e", Action::Login), &[]);
        }
        for id in [
            "deadbeef-2".to_string(),
            format!("{}-99", feed.instance()),
            "garbage".to_string(),
        ] {
            let sub = feed.subscribe(&Start::After(id.clone()));
            assert_eq!(ns(&sub.backlog), [1, 2, 3], "{id}");
            assert!(sub.restarted, "{id}");
            assert_eq!(sub.missed, 0, "{id}");
        }
    }

    #[test]
    fn the_ring_is_bounded_and_says_what_a_late_resume_missed() {
        let feed = LiveFeed::new();
        let total = RING_ITEMS as u64 + 10;
        for i in 0..total {
            feed.detected(&event(&i.to_string(), "e", Action::Login), &[]);
        }
        let ring = feed.ring();
        assert_eq!(ring.len(), RING_ITEMS);
        assert_eq!(ring.get(0).unwrap().n, 11);
        assert_eq!(ring.bytes, ring.iter().map(|i| i.cost).sum::<usize>());
        drop(ring);
        let sub = feed.subscribe(&Start::After(format!("{}-5", feed.instance())));
        assert_eq!(sub.missed, 5, "6..=10 are gone");
        assert_eq!(sub.backlog.len(), RING_ITEMS);
    }

    #[test]
    fn a_slow_subscriber_loses_the_oldest_and_is_told_never_waited_for() {
        let feed = LiveFeed::new();
        let mut slow = feed.subscribe(&Start::Now);
        let extra = 7;
        for i in 0..(LAG_ITEMS + extra) {
            feed.detected(&event(&i.to_string(), "e", Action::Login), &[]);
        }
        match slow.live.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, extra as u64),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert_eq!(slow.live.try_recv().unwrap().n, extra as u64 + 1);
    }

    #[test]
    fn filters() {
        let feed = LiveFeed::new();
        let ev = event("42", "Alice@Example.com", Action::Created);
        feed.detected(&ev, &["ops"]);
        feed.delivery(&Delivery::new("ops", ev.clone(), 0), Outcome::Dead, None, 0);
        feed.delivery(
            &Delivery::new("crm", ev.clone(), 0),
            Outcome::Retrying,
            Some(503),
            0,
        );
        feed.detected(&event("7", "bob@example.com", Action::Login), &[]);
        let items = feed.subscribe(&Start::Replay(10)).backlog;
        let pick = |f: Filter| -> Vec<u64> {
            items.iter().filter(|i| f.matches(i)).map(|i| i.n).collect()
        };
        assert_eq!(pick(Filter::default()), [1, 2, 3, 4]);
        let f = |a: Vec<Action>, u: &[&str], w: &[&str], o: Vec<Outcome>| Filter {
            actions: a,
            users: u.iter().map(|s| s.to_string()).collect(),
            webhooks: w.iter().map(|s| s.to_string()).collect(),
            outcomes: o,
        };
        assert_eq!(pick(f(vec![Action::Login], &[], &[], vec![])), [4]);
        assert_eq!(
            pick(f(vec![], &["alice@example.COM"], &[], vec![])),
            [1, 2, 3]
        );
        assert_eq!(pick(f(vec![], &["7"], &[], vec![])), [4]);
        assert_eq!(pick(f(vec![], &[], &["ops"], vec![])), [1, 2]);
        assert_eq!(pick(f(vec![], &[], &["crm"], vec![])), [3]);
        assert_eq!(pick(f(vec![], &[], &[], vec![Outcome::Dead])), [2]);
        assert_eq!(
            pick(f(vec![], &[], &[], vec![Outcome::Dead, Outcome::Retrying])),
            [2, 3]
        );
        assert_eq!(
            pick(f(
                vec![Action::Created],
                &["42"],
                &["crm"],
                vec![Outcome::Retrying]
            )),
            [3]
        );
        assert_eq!(
            pick(f(vec![Action::Deleted], &[], &[], vec![])),
            [] as [u64; 0]
        );
        // A filtered event: an outcome item for that webhook, without a delivery id.
        feed.filtered(&ev, "crm", 5_000);
        let last = feed.subscribe(&Start::Replay(1)).backlog;
        assert!(f(vec![], &["42"], &["crm"], vec![Outcome::Filtered]).matches(&last[0]));
        let v = data(&last[0]);
        assert_eq!(
            (
                v["outcome"].as_str(),
                v["delivery_id"].is_null(),
                v["user_id"].as_str()
            ),
            (Some("filtered"), true, Some("42"))
        );
    }

    #[test]
    fn outcomes_parse() {
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(o));
        }
        assert!("ok"
            .parse::<Outcome>()
            .unwrap_err()
            .contains("expected delivered"));
    }
}
