//! Reading the spool: pages of pending deliveries, dead letters and records, and the counters,
//! always as last committed. Never writes. Every row is checked against its checksum
//! (`frame`) before it is parsed: a pending delivery that fails is reported in its [`Page`]
//! (the scheduler has it quarantined, so it is never delivered altered); a dead letter or a
//! record that fails is logged and left out of the listing rather than failing all of it.

use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;

use super::error::{at, SpoolError};
use super::frame;
use super::open::Spool;
use super::schema::{
    DEAD, DEAD_IDS, DELIVERED, META, META_NEXT_SEQ, META_PAYLOAD, PENDING, QUARANTINE, RECORDS,
};
use crate::events::outbox::Delivery;
use crate::events::records::{DeadLetter, DeliveryRecord};

/// Where a kept successful delivery sits: (when it succeeded in Unix ms, a counter).
pub type KeptKey = (u64, u64);

/// One page of a webhook's pending deliveries.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    /// The deliveries that passed their checksum and parsed, in seq order.
    pub deliveries: Vec<Delivery>,
    /// The last seq looked at (damaged rows included).
    pub last: Option<u64>,
    /// Seqs of rows that failed their checksum or no longer parse: to be quarantined.
    pub damaged: Vec<u64>,
}

/// A stored row as `T`, once its checksum holds; `Err` says what is wrong, for the log.
fn decode<T: DeserializeOwned>(stored: &[u8]) -> Result<T, String> {
    let json = frame::open(stored).map_err(|e| e.to_string())?;
    serde_json::from_slice(json).map_err(|e| format!("does not parse: {e}"))
}

impl Spool {
    /// Every webhook with pending deliveries, with its lowest and highest seq (one seek each).
    pub fn webhooks(&self) -> Result<Vec<(String, u64, u64)>, SpoolError> {
        let ctx = "cannot list pending webhooks";
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let table = txn.open_table(PENDING).map_err(at(ctx))?;
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let first = match &after {
                    None => table.first().map_err(at(ctx))?,
                    Some(w) => {
                        let from = (w.as_str(), u64::MAX);
                        let mut range = table
                            .range::<(&str, u64)>((Bound::Excluded(from), Bound::Unbounded))
                            .map_err(at(ctx))?;
                        range.next().transpose().map_err(at(ctx))?
                    }
                };
                let Some((key, _)) = first else { break };
                let (name, lo) = key.value();
                let name = name.to_string();
                let last = table
                    .range((name.as_str(), lo)..=(name.as_str(), u64::MAX))
                    .map_err(at(ctx))?
                    .next_back()
                    .transpose()
                    .map_err(at(ctx))?
                    .map_or(lo, |(k, _)| k.value().1);
                out.push((name.clone(), lo, last));
                after = Some(name);
            }
            Ok(out)
        })
    }

    /// How many deliveries of `webhook` are pending on disk (one pass over its keys).
    pub fn pending_of(&self, webhook: &str) -> Result<u64, SpoolError> {
        let ctx = "cannot count pending deliveries";
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let table = txn.open_table(PENDING).map_err(at(ctx))?;
            let mut n = 0u64;
            for row in table
                .range((webhook, 0)..=(webhook, u64::MAX))
                .map_err(at(ctx))?
            {
                row.map_err(at(ctx))?;
                n += 1;
            }
            Ok(n)
        })
    }

    /// Up to `limit` pending deliveries of `webhook` with `after < seq <= upto`, in seq order,
    /// with the last seq looked at and the seqs of damaged rows (logged here; they stay on disk
    /// until the writer quarantines them).
    pub fn page(
        &self,
        webhook: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<Page, SpoolError> {
        let ctx = "cannot read pending deliveries";
        if after >= upto || limit == 0 {
            return Ok(Page::default());
        }
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let table = txn.open_table(PENDING).map_err(at(ctx))?;
            let mut page = Page::default();
            for row in table
                .range((webhook, after + 1)..=(webhook, upto))
                .map_err(at(ctx))?
            {
                if page.deliveries.len() + page.damaged.len() >= limit {
                    break;
                }
                let (k, v) = row.map_err(at(ctx))?;
                let seq = k.value().1;
                page.last = Some(seq);
                match decode::<Delivery>(v.value()) {
                    Ok(mut d) if d.webhook == webhook => {
                        d.seq = seq;
                        page.deliveries.push(d);
                    }
                    Ok(_) => {
                        tracing::error!(
                            webhook,
                            seq,
                            "a pending delivery in the spool names another webhook than its key; quarantined, never delivered"
                        );
                        page.damaged.push(seq);
                    }
                    Err(e) => {
                        tracing::error!(
                            webhook,
                            seq,
                            error = %e,
                            "a pending delivery in the spool is damaged; quarantined, never delivered"
                        );
                        page.damaged.push(seq);
                    }
                }
            }
            Ok(page)
        })
    }

    /// Pending deliveries on disk.
    pub fn pending_count(&self) -> Result<u64, SpoolError> {
        self.count(PENDING)
    }

    /// Dead letters on disk.
    pub fn dead_count(&self) -> Result<u64, SpoolError> {
        self.count(DEAD)
    }

    /// Damaged rows set aside (never delivered), kept for inspection until a purge.
    pub fn quarantined_count(&self) -> Result<u64, SpoolError> {
        let ctx = "cannot count";
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let table = txn.open_table(QUARANTINE).map_err(at(ctx))?;
            table.len().map_err(at(ctx))
        })
    }

    fn count<K: redb::Key + 'static>(
        &self,
        def: TableDefinition<'static, K, &'static [u8]>,
    ) -> Result<u64, SpoolError> {
        let ctx = "cannot count";
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let table = txn.open_table(def).map_err(at(ctx))?;
            table.len().map_err(at(ctx))
        })
    }

    /// The counters kept in the meta table: (next seq, payload bytes).
    pub fn meta(&self) -> Result<(u64, u64), SpoolError> {
        let ctx = "cannot read meta";
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let meta = txn.open_table(META).map_err(at(ctx))?;
            let get = |k: &str| -> Result<u64, SpoolError> {
                Ok(meta.get(k).map_err(at(ctx))?.map_or(0, |v| v.value()))
            };
            Ok((get(META_NEXT_SEQ)?.max(1), get(META_PAYLOAD)?))
        })
    }

    /// Dead letters, newest first, at most `limit`.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, SpoolError> {
        let ctx = "cannot read dead letters";
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let table = txn.open_table(DEAD).map_err(at(ctx))?;
            let mut out = Vec::new();
            for row in table.iter().map_err(at(ctx))?.rev() {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = row.map_err(at(ctx))?;
                if let Some(d) = checked_letter(k.value(), v.value()) {
                    out.push(d);
                }
            }
            Ok(out)
        })
    }

    /// Dead letters oldest first with a key above `after`, at most `limit`, with their keys
    /// (for replaying all of them page by page).
    pub fn dead_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter)>, SpoolError> {
        let ctx = "cannot read dead letters";
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let table = txn.open_table(DEAD).map_err(at(ctx))?;
            let from = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut out = Vec::new();
            for row in table
                .range::<u64>((from, Bound::Unbounded))
                .map_err(at(ctx))?
            {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = row.map_err(at(ctx))?;
                if let Some(d) = checked_letter(k.value(), v.value()) {
                    out.push((k.value(), d));
                }
            }
            Ok(out)
        })
    }

    /// Kept successful deliveries (`delivery.retain_delivered`) oldest first, with a key
    /// above `after`, at most `limit`, with their keys (for re-sending page by page). A row
    /// that fails its checksum is logged and left out.
    pub fn delivered_page(
        &self,
        after: Option<KeptKey>,
        limit: usize,
    ) -> Result<Vec<(KeptKey, Delivery)>, SpoolError> {
        let ctx = "cannot read kept deliveries";
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let table = txn.open_table(DELIVERED).map_err(at(ctx))?;
            let from = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut out = Vec::new();
            for row in table
                .range::<(u64, u64)>((from, Bound::Unbounded))
                .map_err(at(ctx))?
            {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = row.map_err(at(ctx))?;
                match decode::<Delivery>(v.value()) {
                    Ok(d) => out.push((k.value(), d)),
                    Err(e) => tracing::error!(
                        kept_delivery = k.value().1,
                        error = %e,
                        "a kept delivery in the spool is damaged; left out, never re-sent"
                    ),
                }
            }
            Ok(out)
        })
    }

    /// How many successful deliveries are kept for re-sending.
    pub fn delivered_count(&self) -> Result<u64, SpoolError> {
        self.count(DELIVERED)
    }

    /// One dead letter by delivery id.
    pub fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, SpoolError> {
        let ctx = "cannot read a dead letter";
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let ids = txn.open_table(DEAD_IDS).map_err(at(ctx))?;
            let Some(key) = ids.get(id).map_err(at(ctx))?.map(|v| v.value()) else {
                return Ok(None);
            };
            let table = txn.open_table(DEAD).map_err(at(ctx))?;
            let letter = table.get(key).map_err(at(ctx))?;
            Ok(letter.and_then(|v| checked_letter(key, v.value())))
        })
    }

    /// The newest `limit` delivery records, oldest first.
    pub fn records(&self, limit: usize) -> Result<Vec<DeliveryRecord>, SpoolError> {
        let ctx = "cannot read delivery records";
        self.with_db(|db| {
            let txn = db.begin_read().map_err(at(ctx))?;
            let table = txn.open_table(RECORDS).map_err(at(ctx))?;
            let mut out = Vec::new();
            for row in table.iter().map_err(at(ctx))?.rev() {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = row.map_err(at(ctx))?;
                match decode::<DeliveryRecord>(v.value()) {
                    Ok(r) => out.push(r),
                    Err(e) => tracing::error!(
                        record = k.value(),
                        error = %e,
                        "a delivery record in the spool is damaged; left out"
                    ),
                }
            }
            out.reverse();
            Ok(out)
        })
    }
}

/// A dead letter once its checksum holds; a damaged one is logged and left out (it stays on
/// disk until a purge, and is never replayed altered).
fn checked_letter(key: u64, stored: &[u8]) -> Option<DeadLetter> {
    match decode::<DeadLetter>(stored) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::error!(
                dead_letter = key,
                error = %e,
                "a dead letter in the spool is damaged; left out, never replayed"
            );
            None
        }
    }
}
