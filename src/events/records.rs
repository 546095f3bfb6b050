//! What happened to recent deliveries, as DCE shows its webhook records, and the dead letters.
//!
//! Records are bounded (`delivery.records`): the oldest go first. Dead letters live in the
//! spool until replayed or purged. Records carry ids, statuses and short error texts only,
//! never a body, header or URL, so listing them over the admin API cannot leak a secret.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::outbox::Delivery;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// The target took it.
    Successful,
    /// Dead-lettered: final error or out of attempts.
    Failed,
    /// Failed at least once; another attempt is scheduled.
    Retrying,
}

/// A status name that is none of `successful`, `failed` and `retrying` (a `?status=` or a
/// `--status` value). Serialises as its message, so the admin API can answer with it as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`; expected successful, failed or retrying")]
pub struct UnknownStatus(String);

impl Serialize for UnknownStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "successful" => Ok(DeliveryStatus::Successful),
            "failed" => Ok(DeliveryStatus::Failed),
            "retrying" => Ok(DeliveryStatus::Retrying),
            _ => Err(UnknownStatus(s.to_string())),
        }
    }
}

/// One delivery's latest outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The webhook's name.
    pub webhook: String,
    /// The delivery's id (`webhook-id`): one record per delivery, updated in place.
    pub delivery_id: String,
    /// The event's id, shared by its deliveries to every webhook.
    pub event_id: String,
    /// `user.created` and the like.
    pub event_type: String,
    /// Empty when the event named no user.
    pub user_id: String,
    /// Where the delivery stands now.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// Why the last attempt failed (or why the delivery was refused), if it did.
    pub last_error: Option<String>,
    /// The last reply's status; absent after a timeout or connection error.
    pub last_http_status: Option<u16>,
    /// RFC 3339: when the delivery was created.
    pub created_at: String,
    /// RFC 3339: when this outcome was recorded.
    pub updated_at: String,
    /// RFC 3339: the next attempt, while retrying.
    pub next_attempt_at: Option<String>,
    /// The digest message (its `webhook-id`) that delivered this event with others, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_id: Option<String>,
}

impl DeliveryRecord {
    /// The record of `delivery` after an attempt with this outcome.
    pub fn of(
        delivery: &Delivery,
        status: DeliveryStatus,
        http_status: Option<u16>,
        now_ms: u64,
    ) -> Self {
        DeliveryRecord {
            webhook: delivery.webhook.clone(),
            delivery_id: delivery.id.clone(),
            event_id: delivery.event.id.clone(),
            event_type: delivery.event.event_type.to_string(),
            user_id: delivery.user_id().unwrap_or("").to_string(),
            status,
            attempts: delivery.attempt,
            last_error: delivery.last_error.clone(),
            last_http_status: http_status,
            created_at: rfc3339(delivery.created_at),
            updated_at: rfc3339(now_ms),
            next_attempt_at: (status == DeliveryStatus::Retrying)
                .then(|| rfc3339(delivery.next_attempt_at)),
            digest_id: None,
        }
    }
}

/// Unix milliseconds as `2026-11-30T03:36:46.123Z`.
pub fn rfc3339(ms: u64) -> String {
    crate::event::rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// The last N outcomes, one entry per delivery (updated in place as it moves from retrying to
/// successful or failed).
#[derive(Debug)]
pub struct Records {
    capacity: usize,
    buf: VecDeque<DeliveryRecord>,
    /// Sequence number of `buf[0]`.
    base: u64,
    /// Delivery id -> sequence number.
    index: HashMap<String, u64>,
}

impl Records {
    /// Keeps at most `capacity` records (at least one).
    pub fn new(capacity: usize) -> Self {
        Records {
            capacity: capacity.max(1),
            buf: VecDeque::new(),
            base: 0,
            index: HashMap::new(),
        }
    }

    /// Adds a record, or replaces the one for the same delivery.
    pub fn upsert(&mut self, record: DeliveryRecord) {
        if let Some(&seq) = self.index.get(&record.delivery_id) {
            let slot = usize::try_from(seq.wrapping_sub(self.base))
                .ok()
                .and_then(|i| self.buf.get_mut(i));
            if let Some(slot) = slot {
                *slot = record;
                return;
            }
        }
        let seq = self.base + self.buf.len() as u64;
        self.index.insert(record.delivery_id.clone(), seq);
        self.buf.push_back(record);
        self.trim();
    }

    /// Changes the bound (config reload); the oldest records go if it shrank.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.trim();
    }

    /// Records newest first, optionally only those with `status`.
    pub fn list(&self, status: Option<DeliveryStatus>) -> Vec<DeliveryRecord> {
        self.buf
            .iter()
            .rev()
            .filter(|r| status.is_none_or(|s| r.status == s))
            .cloned()
            .collect()
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn trim(&mut self) {
        while self.buf.len() > self.capacity {
            if let Some(old) = self.buf.pop_front() {
                if self.index.get(&old.delivery_id) == Some(&self.base) {
                    self.index.remove(&old.delivery_id);
                }
            }
            self.base += 1;
        }
    }
}

/// A delivery that will not be attempted again, and why; kept in the spool until replayed or
/// purged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The delivery as it was at its last attempt (a replay resets its attempts).
    pub delivery: Delivery,
    /// Why it will not be attempted again: a final reply, or out of attempts.
    pub reason: String,
    /// RFC 3339.
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, RequestInfo, UserEvent, UserFields};

    fn delivery(user: &str) -> Delivery {
        let mut f = UserFields::new();
        f.insert("ID".into(), user.into());
        Delivery::new(
            "w",
            UserEvent::new(1, Action::Created, f, RequestInfo::default(), false),
            1_000,
        )
    }

    #[test]
    fn record_fields_come_from_the_delivery() {
        let mut d = delivery("42");
        d.attempt = 2;
        d.last_error = Some("HTTP 503".into());
        d.next_attempt_at = 61_000;
        let r = DeliveryRecord::of(&d, DeliveryStatus::Retrying, Some(503), 2_000);
        assert_eq!(r.user_id, "42");
        assert_eq!(r.event_type, "user.created");
        assert_eq!(r.attempts, 2);
        assert_eq!(r.last_http_status, Some(503));
        assert_eq!(r.created_at, "1970-01-01T00:00:01.000Z");
        assert_eq!(r.updated_at, "1970-01-01T00:00:02.000Z");
        assert_eq!(
            r.next_attempt_at.as_deref(),
            Some("1970-01-01T00:01:01.000Z")
        );
        let done = DeliveryRecord::of(&d, DeliveryStatus::Failed, None, 2_000);
        assert_eq!(done.next_attempt_at, None);
        let v = serde_json::to_value(&done).expect("json");
        assert_eq!(v["status"], "failed");
    }

    #[test]
    fn ring_keeps_the_last_n_and_updates_in_place() {
        let mut rs = Records::new(3);
        let ds: Vec<Delivery> = (0..5).map(|i| delivery(&i.to_string())).collect();
        let rec = |d: &Delivery, s| DeliveryRecord::of(d, s, None, 0);
        rs.upsert(rec(&ds[0], DeliveryStatus::Retrying));
        rs.upsert(rec(&ds[1], DeliveryStatus::Successful));
        rs.upsert(rec(&ds[0], DeliveryStatus::Failed));
        assert_eq!(rs.len(), 2);
        let ids = |v: Vec<DeliveryRecord>| v.into_iter().map(|r| r.user_id).collect::<Vec<_>>();
        assert_eq!(ids(rs.list(None)), ["1", "0"]);
        assert_eq!(ids(rs.list(Some(DeliveryStatus::Failed))), ["0"]);
        for d in &ds[2..] {
            rs.upsert(rec(d, DeliveryStatus::Successful));
        }
        assert_eq!(ids(rs.list(None)), ["4", "3", "2"]);
        // An evicted delivery that reports again comes back as a new record.
        rs.upsert(rec(&ds[0], DeliveryStatus::Failed));
        assert_eq!(ids(rs.list(None)), ["0", "4", "3"]);
        rs.upsert(rec(&ds[3], DeliveryStatus::Failed));
        assert_eq!(ids(rs.list(Some(DeliveryStatus::Failed))), ["0", "3"]);
        assert_eq!(rs.index.len(), 3);
        rs.set_capacity(1);
        assert_eq!(ids(rs.list(None)), ["0"]);
        assert_eq!(rs.index.len(), 1);
    }

    #[test]
    fn statuses_parse() {
        assert_eq!("failed".parse(), Ok(DeliveryStatus::Failed));
        assert_eq!("successful".parse(), Ok(DeliveryStatus::Successful));
        assert_eq!("retrying".parse(), Ok(DeliveryStatus::Retrying));
        let e = "ok".parse::<DeliveryStatus>().expect_err("unknown");
        let text = "unknown status `ok`; expected successful, failed or retrying";
        assert_eq!(e.to_string(), text);
        // The admin API puts it in its JSON answer as it is.
        assert_eq!(
            serde_json::json!({ "error": e }),
            serde_json::json!({ "error": text })
        );
    }
}
