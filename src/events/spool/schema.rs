//! The spool's tables and meta keys, and their creation: the one place the file's layout is
//! written down (see the table in `spool/mod.rs`). Nothing here reads or writes a row.

use redb::{Database, TableDefinition};

use super::error::{at, SpoolError};

/// redb's page cache. Small on purpose: a million pending deliveries must live on disk, not in
/// RAM (redb's default is 1 GiB); the OS page cache still helps reads.
pub(super) const CACHE_BYTES: usize = 16 * 1024 * 1024;

pub(super) const PENDING: TableDefinition<'static, (&str, u64), &[u8]> =
    TableDefinition::new("pending");
pub(super) const DEAD: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("dead");
pub(super) const DEAD_IDS: TableDefinition<'static, &str, u64> = TableDefinition::new("dead_ids");
pub(super) const RECORDS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("records");
pub(super) const RECORD_IDS: TableDefinition<'static, &str, u64> =
    TableDefinition::new("record_ids");
/// Successful deliveries kept for re-sending (`delivery.retain_delivered`), keyed by (when it
/// succeeded in Unix ms, a counter), so the oldest come first and age out from the front.
pub(super) const DELIVERED: TableDefinition<'static, (u64, u64), &[u8]> =
    TableDefinition::new("delivered");
/// Delivery id -> its row in `DELIVERED`: a delivery re-sent and delivered again is kept once.
pub(super) const DELIVERED_IDS: TableDefinition<'static, &str, (u64, u64)> =
    TableDefinition::new("delivered_ids");
pub(super) const META: TableDefinition<'static, &str, u64> = TableDefinition::new("meta");
/// Rows that failed their checksum (or no longer parse), moved out of `pending` so they are
/// never delivered; kept as stored, for inspection, until a purge.
pub(super) const QUARANTINE: TableDefinition<'static, (&str, u64), &[u8]> =
    TableDefinition::new("quarantine");

pub(super) const META_NEXT_SEQ: &str = "next_seq";
pub(super) const META_PAYLOAD: &str = "payload_bytes";
pub(super) const META_NEXT_DEAD: &str = "next_dead";
pub(super) const META_NEXT_RECORD: &str = "next_record";
pub(super) const META_NEXT_DELIVERED: &str = "next_delivered";

/// Creates the tables so readers never meet a missing one.
pub(super) fn create_tables(db: &Database) -> Result<(), SpoolError> {
    let ctx = "cannot create tables";
    let txn = db.begin_write().map_err(at(ctx))?;
    {
        txn.open_table(PENDING).map_err(at(ctx))?;
        txn.open_table(DEAD).map_err(at(ctx))?;
        txn.open_table(DEAD_IDS).map_err(at(ctx))?;
        txn.open_table(RECORDS).map_err(at(ctx))?;
        txn.open_table(RECORD_IDS).map_err(at(ctx))?;
        txn.open_table(META).map_err(at(ctx))?;
        txn.open_table(QUARANTINE).map_err(at(ctx))?;
        txn.open_table(DELIVERED).map_err(at(ctx))?;
        txn.open_table(DELIVERED_IDS).map_err(at(ctx))?;
    }
    txn.commit().map_err(at(ctx))
}
