//! A delivery's record: its latest outcome, kept in memory for listing, in the spool for
//! listing a stopped instance, and published on the live feed. Every outcome path (settle,
//! hold, dead letter, refusal) ends here.

use super::state::{lock, Shared};
use crate::events::clock::now_ms;
use crate::events::live::Outcome;
use crate::events::outbox::Delivery;
use crate::events::records::{DeliveryRecord, DeliveryStatus};
use crate::events::spool::Write;

/// Keeps the delivery's latest outcome, in memory for listing and in the spool for listing a
/// stopped instance, and publishes it on the live feed.
pub(super) fn record(
    shared: &Shared,
    delivery: &Delivery,
    status: DeliveryStatus,
    http: Option<u16>,
) {
    record_digested(shared, delivery, status, http, None);
}

/// The live feed's outcome of a record of `status`.
fn outcome_of(status: DeliveryStatus) -> Outcome {
    match status {
        DeliveryStatus::Successful => Outcome::Delivered,
        DeliveryStatus::Retrying => Outcome::Retrying,
        DeliveryStatus::Failed => Outcome::Dead,
    }
}

/// [`record`], naming the digest message that carried the delivery, if one did.
pub(super) fn record_digested(
    shared: &Shared,
    delivery: &Delivery,
    status: DeliveryStatus,
    http: Option<u16>,
    digest: Option<&str>,
) {
    record_full(shared, delivery, status, http, outcome_of(status), digest);
}

/// [`record`], with the live feed's outcome given (a refusal is recorded as failed but is no
/// dead letter; a delivery held by a paused webhook is retrying, shown as paused).
pub(super) fn record_as(
    shared: &Shared,
    delivery: &Delivery,
    status: DeliveryStatus,
    http: Option<u16>,
    outcome: Outcome,
) {
    record_full(shared, delivery, status, http, outcome, None);
}

/// Keeps the record (memory and spool) and tells the live feed.
fn record_full(
    shared: &Shared,
    delivery: &Delivery,
    status: DeliveryStatus,
    http: Option<u16>,
    outcome: Outcome,
    digest: Option<&str>,
) {
    let now = now_ms();
    shared.live.delivery(delivery, outcome, http, now);
    let capacity = shared.runtime.load().file.delivery.records;
    let mut rec = DeliveryRecord::of(delivery, status, http, now);
    rec.digest_id = digest.map(str::to_owned);
    if let Ok(bytes) = serde_json::to_vec(&rec) {
        shared.committer.push(Write::Record {
            id: rec.delivery_id.clone(),
            bytes,
            keep: capacity,
        });
    }
    let mut records = lock(&shared.records);
    records.set_capacity(capacity);
    records.upsert(rec);
}
