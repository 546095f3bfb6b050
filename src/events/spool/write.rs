//! Changing the spool: a [`Write`] is one change, and [`Spool::apply`] commits a batch of them
//! in ONE durable transaction (one fsync), keeping the byte count and the counters in the meta
//! table exact. Every value is stored sealed with its checksum (`frame::seal`). The only
//! writer is the committer's thread (or the offline CLI on a stopped spool); nothing here
//! decides what to write. [`Spool::compact`] rewrites the file without its free pages, so the
//! bytes of delivered (or purged) deliveries do not linger in it.

use redb::{Durability, ReadableTable, ReadableTableMetadata};

use super::error::{at, SpoolError};
use super::frame;
use super::open::Spool;
use super::schema::{
    DEAD, DEAD_IDS, DELIVERED, DELIVERED_IDS, META, META_NEXT_DEAD, META_NEXT_DELIVERED,
    META_NEXT_RECORD, META_NEXT_SEQ, META_PAYLOAD, PENDING, QUARANTINE, RECORDS, RECORD_IDS,
};
use crate::events::records::DeliveryRecord;

/// One change to the spool; a batch of them is committed at once.
#[derive(Debug)]
pub enum Write {
    /// Insert or replace a pending delivery (first write, or new retry state).
    Put {
        /// The webhook: with `seq`, the row's key, so a webhook's rows read in seq order.
        webhook: String,
        /// The delivery's spool seq.
        seq: u64,
        /// The [`Delivery`](crate::events::outbox::Delivery) as JSON.
        bytes: Vec<u8>,
    },
    /// The delivery succeeded: forget it.
    Remove {
        /// The row's webhook.
        webhook: String,
        /// The row's seq.
        seq: u64,
    },
    /// The delivery succeeded: drop its pending row and, under `delivery.retain_delivered`,
    /// keep it for re-sending; the kept ones past their bounds are dropped in the same commit.
    Delivered {
        /// The pending row's webhook.
        webhook: String,
        /// The pending row's seq.
        seq: u64,
        /// What to keep and the bounds to keep it within.
        retain: Retain,
    },
    /// Move a pending delivery to the dead letters.
    Dead {
        /// The pending row's webhook.
        webhook: String,
        /// The pending row's seq.
        seq: u64,
        /// The delivery id, to find the dead letter by (and to replace an older one).
        id: String,
        /// The [`DeadLetter`](crate::events::records::DeadLetter) as JSON.
        bytes: Vec<u8>,
    },
    /// Move a pending row that failed its checksum (or no longer parses) to the quarantine,
    /// as stored, so it is never delivered.
    Quarantine {
        /// The pending row's webhook.
        webhook: String,
        /// The pending row's seq.
        seq: u64,
    },
    /// Take a dead letter back into pending (as `seq`, at the end of its lane). Written only
    /// while the dead letter exists: a second replay of the same one writes nothing.
    Revive {
        /// The delivery id of the dead letter to drop.
        id: String,
        /// The new pending row's webhook.
        webhook: String,
        /// The new pending row's seq: a fresh one, past every seq in use.
        seq: u64,
        /// The reset [`Delivery`](crate::events::outbox::Delivery) as JSON.
        bytes: Vec<u8>,
    },
    /// Add or update one delivery record, keeping the newest `keep`.
    Record {
        /// The delivery id: one record per delivery.
        id: String,
        /// The [`DeliveryRecord`] as JSON.
        bytes: Vec<u8>,
        /// `delivery.records`: how many records the spool keeps.
        keep: usize,
    },
    /// Drop every dead letter (and every quarantined row).
    PurgeDead,
}

/// A successful delivery to keep for re-sending, and the bounds of what is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retain {
    /// The delivery id and the [`Delivery`](crate::events::outbox::Delivery) as JSON; `None`
    /// keeps nothing new (retention is off) but still applies the bounds.
    pub row: Option<(String, Vec<u8>)>,
    /// Kept deliveries at most (`delivery.retain_delivered.count`); 0 drops them all.
    pub keep: usize,
    /// A kept delivery older than this (ms since it succeeded) is dropped.
    pub max_age_ms: u64,
    /// When it succeeded, Unix ms.
    pub now_ms: u64,
}

/// What a committed batch changed, for the committer's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Dead letters dropped by `PurgeDead`.
    pub purged: u64,
    /// Payload bytes after the batch.
    pub payload_bytes: u64,
    /// Payload bytes the batch removed (delivered, dead-lettered, purged): what compaction
    /// has to clear from the file's free pages.
    pub freed_bytes: u64,
    /// `Revive`s skipped because their dead letter was already gone (replayed twice).
    pub revives_skipped: u64,
}

impl Spool {
    /// Writes `batch` in one durable transaction: all of it or (on error) none of it.
    pub fn apply(&self, batch: &[Write]) -> Result<Applied, SpoolError> {
        self.with_db(|db| apply_to(db, batch))
    }

    /// Rewrites the file without free pages, so no byte of a delivery that left the spool
    /// (delivered, dead-lettered then purged, replaced by newer retry state) stays readable in
    /// it, and gives the space back to the file system. Holds the database alone while it
    /// runs (readers and the writer wait): the committer runs it when the spool is idle.
    /// Returns whether anything moved.
    pub fn compact(&self) -> Result<bool, SpoolError> {
        let ctx = "compaction failed";
        self.with_db_mut(|db| {
            let mut moved = false;
            // Each pass moves what it can towards the start; a few passes reach the end.
            for _ in 0..8 {
                match db.compact() {
                    Ok(true) => moved = true,
                    Ok(false) => break,
                    Err(e) => return Err(SpoolError::redb(ctx, e)),
                }
            }
            Ok(moved)
        })
    }
}

/// [`Spool::apply`] on the open database.
fn apply_to(db: &redb::Database, batch: &[Write]) -> Result<Applied, SpoolError> {
    {
        let ctx = "commit failed";
        let mut txn = db.begin_write().map_err(at(ctx))?;
        txn.set_durability(Durability::Immediate).map_err(at(ctx))?;
        let mut applied = Applied::default();
        {
            let mut pending = txn.open_table(PENDING).map_err(at(ctx))?;
            let mut dead = txn.open_table(DEAD).map_err(at(ctx))?;
            let mut dead_ids = txn.open_table(DEAD_IDS).map_err(at(ctx))?;
            let mut records = txn.open_table(RECORDS).map_err(at(ctx))?;
            let mut record_ids = txn.open_table(RECORD_IDS).map_err(at(ctx))?;
            let mut meta = txn.open_table(META).map_err(at(ctx))?;
            let mut quarantine = txn.open_table(QUARANTINE).map_err(at(ctx))?;
            let mut delivered = txn.open_table(DELIVERED).map_err(at(ctx))?;
            let mut delivered_ids = txn.open_table(DELIVERED_IDS).map_err(at(ctx))?;

            let get = |m: &redb::Table<'_, &str, u64>, k: &str| -> Result<u64, SpoolError> {
                Ok(m.get(k).map_err(at(ctx))?.map_or(0, |v| v.value()))
            };
            let mut tally = Tally {
                payload: i128::from(get(&meta, META_PAYLOAD)?),
                freed: 0,
            };
            let mut next_seq = get(&meta, META_NEXT_SEQ)?;
            let mut next_dead = get(&meta, META_NEXT_DEAD)?;
            let mut next_record = get(&meta, META_NEXT_RECORD)?;
            let mut next_delivered = get(&meta, META_NEXT_DELIVERED)?;
            for w in batch {
                match w {
                    Write::Put {
                        webhook,
                        seq,
                        bytes,
                    } => {
                        let row = frame::seal(bytes);
                        let old = pending
                            .insert((webhook.as_str(), *seq), row.as_slice())
                            .map_err(at(ctx))?
                            .map_or(0, |v| v.value().len());
                        tally.added(row.len());
                        tally.dropped(old);
                        next_seq = next_seq.max(seq.saturating_add(1));
                    }
                    Write::Remove { webhook, seq } => {
                        if let Some(v) =
                            pending.remove((webhook.as_str(), *seq)).map_err(at(ctx))?
                        {
                            tally.dropped(v.value().len());
                        }
                    }
                    Write::Delivered {
                        webhook,
                        seq,
                        retain,
                    } => {
                        if let Some(v) =
                            pending.remove((webhook.as_str(), *seq)).map_err(at(ctx))?
                        {
                            tally.dropped(v.value().len());
                        }
                        if retain.keep == 0 && delivered.is_empty().map_err(at(ctx))? {
                            continue;
                        }
                        if let Some((id, bytes)) = retain.row.as_ref().filter(|_| retain.keep > 0) {
                            if let Some(old) = delivered_ids.remove(id.as_str()).map_err(at(ctx))? {
                                let old = old.value();
                                if let Some(v) = delivered.remove(old).map_err(at(ctx))? {
                                    tally.dropped(v.value().len());
                                }
                            }
                            let key = (retain.now_ms, next_delivered);
                            next_delivered += 1;
                            let row = frame::seal(bytes);
                            delivered.insert(key, row.as_slice()).map_err(at(ctx))?;
                            delivered_ids.insert(id.as_str(), key).map_err(at(ctx))?;
                            tally.added(row.len());
                        }
                        let oldest_kept = retain.now_ms.saturating_sub(retain.max_age_ms);
                        loop {
                            let over = delivered.len().map_err(at(ctx))? > retain.keep as u64;
                            let first = delivered.first().map_err(at(ctx))?.map(|(k, _)| k.value());
                            let Some(first) = first else { break };
                            if !over && first.0 >= oldest_kept {
                                break;
                            }
                            let Some((k, v)) = delivered.pop_first().map_err(at(ctx))? else {
                                break;
                            };
                            tally.dropped(v.value().len());
                            let k = k.value();
                            let id = frame::open(v.value())
                                .ok()
                                .and_then(|json| {
                                    serde_json::from_slice::<crate::events::outbox::Delivery>(json)
                                        .ok()
                                })
                                .map(|d| d.id);
                            drop(v);
                            if let Some(id) = id {
                                let points_here = delivered_ids
                                    .get(id.as_str())
                                    .map_err(at(ctx))?
                                    .is_some_and(|s| s.value() == k);
                                if points_here {
                                    delivered_ids.remove(id.as_str()).map_err(at(ctx))?;
                                }
                            }
                        }
                        if delivered.is_empty().map_err(at(ctx))? {
                            // Ids of rows that no longer parsed: nothing may point nowhere.
                            while delivered_ids.pop_first().map_err(at(ctx))?.is_some() {}
                        }
                    }
                    Write::Quarantine { webhook, seq } => {
                        if let Some(v) =
                            pending.remove((webhook.as_str(), *seq)).map_err(at(ctx))?
                        {
                            let row = v.value().to_vec();
                            drop(v);
                            quarantine
                                .insert((webhook.as_str(), *seq), row.as_slice())
                                .map_err(at(ctx))?;
                        }
                    }
                    Write::Dead {
                        webhook,
                        seq,
                        id,
                        bytes,
                    } => {
                        if let Some(v) =
                            pending.remove((webhook.as_str(), *seq)).map_err(at(ctx))?
                        {
                            tally.dropped(v.value().len());
                        }
                        if let Some(old) = dead_ids.get(id.as_str()).map_err(at(ctx))? {
                            let old = old.value();
                            if let Some(v) = dead.remove(old).map_err(at(ctx))? {
                                tally.dropped(v.value().len());
                            }
                        }
                        let row = frame::seal(bytes);
                        dead.insert(next_dead, row.as_slice()).map_err(at(ctx))?;
                        dead_ids.insert(id.as_str(), next_dead).map_err(at(ctx))?;
                        tally.added(row.len());
                        next_dead += 1;
                    }
                    Write::Revive {
                        id,
                        webhook,
                        seq,
                        bytes,
                    } => {
                        let Some(k) = dead_ids.remove(id.as_str()).map_err(at(ctx))? else {
                            // Already replayed (or purged): one dead letter revives once.
                            applied.revives_skipped += 1;
                            continue;
                        };
                        let k = k.value();
                        if let Some(v) = dead.remove(k).map_err(at(ctx))? {
                            tally.dropped(v.value().len());
                        }
                        let row = frame::seal(bytes);
                        pending
                            .insert((webhook.as_str(), *seq), row.as_slice())
                            .map_err(at(ctx))?;
                        tally.added(row.len());
                        next_seq = next_seq.max(seq.saturating_add(1));
                    }
                    Write::Record { id, bytes, keep } => {
                        let slot = record_ids.get(id.as_str()).map_err(at(ctx))?;
                        let slot = match slot.map(|v| v.value()) {
                            Some(s) => s,
                            None => {
                                let s = next_record;
                                next_record += 1;
                                record_ids.insert(id.as_str(), s).map_err(at(ctx))?;
                                s
                            }
                        };
                        let row = frame::seal(bytes);
                        let old = records
                            .insert(slot, row.as_slice())
                            .map_err(at(ctx))?
                            .map_or(0, |v| v.value().len());
                        tally.added(row.len());
                        tally.dropped(old);
                        while records.len().map_err(at(ctx))? > (*keep).max(1) as u64 {
                            let Some((k, v)) = records.pop_first().map_err(at(ctx))? else {
                                break;
                            };
                            tally.dropped(v.value().len());
                            let k = k.value();
                            let id = frame::open(v.value())
                                .ok()
                                .and_then(|json| {
                                    serde_json::from_slice::<DeliveryRecord>(json).ok()
                                })
                                .map(|r| r.delivery_id);
                            drop(v);
                            if let Some(id) = id {
                                let points_here = record_ids
                                    .get(id.as_str())
                                    .map_err(at(ctx))?
                                    .is_some_and(|s| s.value() == k);
                                if points_here {
                                    record_ids.remove(id.as_str()).map_err(at(ctx))?;
                                }
                            }
                        }
                    }
                    Write::PurgeDead => {
                        applied.purged += dead.len().map_err(at(ctx))?;
                        while let Some((_, v)) = dead.pop_first().map_err(at(ctx))? {
                            tally.dropped(v.value().len());
                        }
                        while dead_ids.pop_first().map_err(at(ctx))?.is_some() {}
                        applied.purged += quarantine.len().map_err(at(ctx))?;
                        while let Some((_, v)) = quarantine.pop_first().map_err(at(ctx))? {
                            tally.dropped(v.value().len());
                        }
                    }
                }
            }
            let payload = u64::try_from(tally.payload.max(0)).unwrap_or(u64::MAX);
            applied.payload_bytes = payload;
            applied.freed_bytes = u64::try_from(tally.freed.max(0)).unwrap_or(u64::MAX);
            meta.insert(META_PAYLOAD, payload).map_err(at(ctx))?;
            meta.insert(META_NEXT_SEQ, next_seq).map_err(at(ctx))?;
            meta.insert(META_NEXT_DEAD, next_dead).map_err(at(ctx))?;
            meta.insert(META_NEXT_RECORD, next_record)
                .map_err(at(ctx))?;
            meta.insert(META_NEXT_DELIVERED, next_delivered)
                .map_err(at(ctx))?;
        }
        txn.commit().map_err(at(ctx))?;
        Ok(applied)
    }
}
/// A commit's running byte counts: the stored payload after it, and what its removals and
/// overwrites freed (compaction's cue).
struct Tally {
    payload: i128,
    freed: i128,
}

impl Tally {
    /// A row of `n` bytes was stored.
    fn added(&mut self, n: usize) {
        self.payload += i128::try_from(n).unwrap_or(i128::MAX);
    }

    /// A row of `n` bytes was removed or overwritten.
    fn dropped(&mut self, n: usize) {
        let n = i128::try_from(n).unwrap_or(i128::MAX);
        self.payload -= n;
        self.freed += n;
    }
}
