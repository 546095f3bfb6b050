//! Reading the spool: pages of pending deliveries, dead letters and records, and the counters,
//! always as last committed. Never writes; a row that no longer parses is skipped (and, for a
//! pending delivery, logged) rather than failing a whole listing.

use std::ops::Bound;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::error::{at, SpoolError};
use super::open::Spool;
use super::schema::{DEAD, DEAD_IDS, META, META_NEXT_SEQ, META_PAYLOAD, PENDING, RECORDS};
use crate::events::outbox::Delivery;
use crate::events::records::{DeadLetter, DeliveryRecord};

impl Spool {
    /// Every webhook with pending deliveries, with its lowest and highest seq (one seek each).
    pub fn webhooks(&self) -> Result<Vec<(String, u64, u64)>, SpoolError> {
        let ctx = "cannot list pending webhooks";
        let txn = self.db.begin_read().map_err(at(ctx))?;
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
    }

    /// Up to `limit` pending deliveries of `webhook` with `after < seq <= upto`, in seq order,
    /// and the last seq looked at. A row that no longer parses is logged and skipped (it stays
    /// on disk for inspection).
    pub fn page(
        &self,
        webhook: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> Result<(Vec<Delivery>, Option<u64>), SpoolError> {
        let ctx = "cannot read pending deliveries";
        if after >= upto || limit == 0 {
            return Ok((Vec::new(), None));
        }
        let txn = self.db.begin_read().map_err(at(ctx))?;
        let table = txn.open_table(PENDING).map_err(at(ctx))?;
        let mut out = Vec::new();
        let mut last = None;
        for row in table
            .range((webhook, after + 1)..=(webhook, upto))
            .map_err(at(ctx))?
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(at(ctx))?;
            let seq = k.value().1;
            last = Some(seq);
            match serde_json::from_slice::<Delivery>(v.value()) {
                Ok(mut d) => {
                    d.seq = seq;
                    out.push(d);
                }
                Err(e) => tracing::error!(
                    webhook,
                    seq,
                    error = %e,
                    "a pending delivery in the spool does not parse; skipped"
                ),
            }
        }
        Ok((out, last))
    }

    /// Pending deliveries on disk.
    pub fn pending_count(&self) -> Result<u64, SpoolError> {
        self.count(PENDING)
    }

    /// Dead letters on disk.
    pub fn dead_count(&self) -> Result<u64, SpoolError> {
        self.count(DEAD)
    }

    fn count<K: redb::Key + 'static>(
        &self,
        def: TableDefinition<'static, K, &'static [u8]>,
    ) -> Result<u64, SpoolError> {
        let ctx = "cannot count";
        let txn = self.db.begin_read().map_err(at(ctx))?;
        let table = txn.open_table(def).map_err(at(ctx))?;
        table.len().map_err(at(ctx))
    }

    /// The counters kept in the meta table: (next seq, payload bytes).
    pub fn meta(&self) -> Result<(u64, u64), SpoolError> {
        let ctx = "cannot read meta";
        let txn = self.db.begin_read().map_err(at(ctx))?;
        let meta = txn.open_table(META).map_err(at(ctx))?;
        let get = |k: &str| -> Result<u64, SpoolError> {
            Ok(meta.get(k).map_err(at(ctx))?.map_or(0, |v| v.value()))
        };
        Ok((get(META_NEXT_SEQ)?.max(1), get(META_PAYLOAD)?))
    }

    /// Dead letters, newest first, at most `limit`.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, SpoolError> {
        let ctx = "cannot read dead letters";
        let txn = self.db.begin_read().map_err(at(ctx))?;
        let table = txn.open_table(DEAD).map_err(at(ctx))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(at(ctx))?.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = row.map_err(at(ctx))?;
            if let Ok(d) = serde_json::from_slice::<DeadLetter>(v.value()) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Dead letters oldest first with a key above `after`, at most `limit`, with their keys
    /// (for replaying all of them page by page).
    pub fn dead_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter)>, SpoolError> {
        let ctx = "cannot read dead letters";
        let txn = self.db.begin_read().map_err(at(ctx))?;
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
            if let Ok(d) = serde_json::from_slice::<DeadLetter>(v.value()) {
                out.push((k.value(), d));
            }
        }
        Ok(out)
    }

    /// One dead letter by delivery id.
    pub fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, SpoolError> {
        let ctx = "cannot read a dead letter";
        let txn = self.db.begin_read().map_err(at(ctx))?;
        let ids = txn.open_table(DEAD_IDS).map_err(at(ctx))?;
        let Some(key) = ids.get(id).map_err(at(ctx))?.map(|v| v.value()) else {
            return Ok(None);
        };
        let table = txn.open_table(DEAD).map_err(at(ctx))?;
        let letter = table.get(key).map_err(at(ctx))?;
        Ok(letter.and_then(|v| serde_json::from_slice(v.value()).ok()))
    }

    /// The newest `limit` delivery records, oldest first.
    pub fn records(&self, limit: usize) -> Result<Vec<DeliveryRecord>, SpoolError> {
        let ctx = "cannot read delivery records";
        let txn = self.db.begin_read().map_err(at(ctx))?;
        let table = txn.open_table(RECORDS).map_err(at(ctx))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(at(ctx))?.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = row.map_err(at(ctx))?;
            if let Ok(r) = serde_json::from_slice::<DeliveryRecord>(v.value()) {
                out.push(r);
            }
        }
        out.reverse();
        Ok(out)
    }
}
