//! The spool: every pending delivery, every dead letter and the last delivery records, in one
//! crash-safe redb file (`<delivery.spool_dir>/spool.redb`).
//!
//! ```text
//! pending    (webhook, seq) -> Delivery (JSON)   lanes and retry state; seq orders a webhook's
//!                                                deliveries in event order, across restarts
//! dead       dead_seq -> DeadLetter (JSON)       newest last; dead_ids: delivery id -> dead_seq
//! records    record_seq -> DeliveryRecord (JSON) the last N outcomes; record_ids: id -> seq
//! meta       name -> u64                         next_seq, payload_bytes, next_dead, next_record
//! ```
//!
//! This module is the storage only: [`Spool::apply`] writes a batch of [`Write`]s in ONE durable
//! transaction (one fsync), and the read functions page through what is committed. Batching and
//! the writer thread live in `committer.rs`; scheduling in `engine.rs`. Everything here is
//! blocking I/O and must never run on the request path. It stores events, never a rendered
//! request, so no secret or keyed URL reaches the disk.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use super::outbox::Delivery;
use super::records::{DeadLetter, DeliveryRecord};

/// The file inside `delivery.spool_dir`.
pub const SPOOL_FILE: &str = "spool.redb";

/// redb's page cache. Small on purpose: a million pending deliveries must live on disk, not in
/// RAM (redb's default is 1 GiB); the OS page cache still helps reads.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

const PENDING: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("pending");
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead");
const DEAD_IDS: TableDefinition<&str, u64> = TableDefinition::new("dead_ids");
const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const RECORD_IDS: TableDefinition<&str, u64> = TableDefinition::new("record_ids");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const META_NEXT_SEQ: &str = "next_seq";
const META_PAYLOAD: &str = "payload_bytes";
const META_NEXT_DEAD: &str = "next_dead";
const META_NEXT_RECORD: &str = "next_record";

/// A spool problem, with what was being done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpoolError(pub String);

impl SpoolError {
    fn at(what: &str, e: impl std::fmt::Display) -> Self {
        SpoolError(format!("spool: {what}: {e}"))
    }
}

/// Another process (a running userhook) holds the spool file: its admin API is the way in.
pub fn is_locked(e: &SpoolError) -> bool {
    e.0.contains("already open")
}

/// One change to the spool; a batch of them is committed at once.
#[derive(Debug)]
pub enum Write {
    /// Insert or replace a pending delivery (first write, or new retry state).
    Put {
        webhook: String,
        seq: u64,
        bytes: Vec<u8>,
    },
    /// The delivery succeeded: forget it.
    Remove { webhook: String, seq: u64 },
    /// Move a pending delivery to the dead letters.
    Dead {
        webhook: String,
        seq: u64,
        id: String,
        bytes: Vec<u8>,
    },
    /// Take a dead letter back into pending (as `seq`, at the end of its lane).
    Revive {
        id: String,
        webhook: String,
        seq: u64,
        bytes: Vec<u8>,
    },
    /// Add or update one delivery record, keeping the newest `keep`.
    Record {
        id: String,
        bytes: Vec<u8>,
        keep: usize,
    },
    /// Drop every dead letter.
    PurgeDead,
}

/// What a committed batch changed, for the committer's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Dead letters dropped by `PurgeDead`.
    pub purged: u64,
    /// Payload bytes after the batch.
    pub payload_bytes: u64,
}

/// The open spool database.
pub struct Spool {
    db: Database,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("path", &self.path).finish()
    }
}

/// `spool_dir` as the config gives it, resolved against the config file's directory when it is
/// relative (so a service started from `/` and a test in a temp dir each find their own).
pub fn resolve_dir(config_path: &Path, spool_dir: &str) -> PathBuf {
    let dir = Path::new(spool_dir);
    if dir.is_absolute() {
        return dir.to_path_buf();
    }
    match config_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join(dir),
        _ => dir.to_path_buf(),
    }
}

impl Spool {
    /// Opens (or creates) `dir/spool.redb`, taking redb's exclusive file lock.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SpoolError::at(&format!("cannot create {}", dir.display()), e))?;
        let path = dir.join(SPOOL_FILE);
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| SpoolError::at(&format!("cannot open {}", path.display()), e))?;
        let spool = Spool {
            db,
            path: Some(path),
        };
        spool.init()?;
        Ok(spool)
    }

    /// A spool in memory: same code paths, nothing survives the process (tests, embedding).
    pub fn in_memory() -> Result<Spool, SpoolError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| SpoolError::at("cannot create an in-memory spool", e))?;
        let spool = Spool { db, path: None };
        spool.init()?;
        Ok(spool)
    }

    /// The file, when on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Creates the tables so readers never meet a missing one.
    fn init(&self) -> Result<(), SpoolError> {
        let err = |e: &dyn std::fmt::Display| SpoolError::at("cannot create tables", e);
        let txn = self.db.begin_write().map_err(|e| err(&e))?;
        {
            txn.open_table(PENDING).map_err(|e| err(&e))?;
            txn.open_table(DEAD).map_err(|e| err(&e))?;
            txn.open_table(DEAD_IDS).map_err(|e| err(&e))?;
            txn.open_table(RECORDS).map_err(|e| err(&e))?;
            txn.open_table(RECORD_IDS).map_err(|e| err(&e))?;
            txn.open_table(META).map_err(|e| err(&e))?;
        }
        txn.commit().map_err(|e| err(&e))
    }

    /// Writes `batch` in one durable transaction: all of it or (on error) none of it.
    pub fn apply(&self, batch: &[Write]) -> Result<Applied, SpoolError> {
        let err = |e: &dyn std::fmt::Display| SpoolError::at("commit failed", e);
        let mut txn = self.db.begin_write().map_err(|e| err(&e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| err(&e))?;
        let mut applied = Applied::default();
        {
            let mut pending = txn.open_table(PENDING).map_err(|e| err(&e))?;
            let mut dead = txn.open_table(DEAD).map_err(|e| err(&e))?;
            let mut dead_ids = txn.open_table(DEAD_IDS).map_err(|e| err(&e))?;
            let mut records = txn.open_table(RECORDS).map_err(|e| err(&e))?;
            let mut record_ids = txn.open_table(RECORD_IDS).map_err(|e| err(&e))?;
            let mut meta = txn.open_table(META).map_err(|e| err(&e))?;
            let get = |m: &redb::Table<&str, u64>, k: &str| -> Result<u64, SpoolError> {
                Ok(m.get(k).map_err(|e| err(&e))?.map_or(0, |v| v.value()))
            };
            let mut payload = i128::from(get(&meta, META_PAYLOAD)?);
            let mut next_seq = get(&meta, META_NEXT_SEQ)?;
            let mut next_dead = get(&meta, META_NEXT_DEAD)?;
            let mut next_record = get(&meta, META_NEXT_RECORD)?;
            let len = |n: usize| i128::try_from(n).unwrap_or(i128::MAX);
            for w in batch {
                match w {
                    Write::Put {
                        webhook,
                        seq,
                        bytes,
                    } => {
                        let old = pending
                            .insert((webhook.as_str(), *seq), bytes.as_slice())
                            .map_err(|e| err(&e))?
                            .map_or(0, |v| v.value().len());
                        payload += len(bytes.len()) - len(old);
                        next_seq = next_seq.max(seq.saturating_add(1));
                    }
                    Write::Remove { webhook, seq } => {
                        if let Some(v) = pending
                            .remove((webhook.as_str(), *seq))
                            .map_err(|e| err(&e))?
                        {
                            payload -= len(v.value().len());
                        }
                    }
                    Write::Dead {
                        webhook,
                        seq,
                        id,
                        bytes,
                    } => {
                        if let Some(v) = pending
                            .remove((webhook.as_str(), *seq))
                            .map_err(|e| err(&e))?
                        {
                            payload -= len(v.value().len());
                        }
                        if let Some(old) = dead_ids.get(id.as_str()).map_err(|e| err(&e))? {
                            let old = old.value();
                            if let Some(v) = dead.remove(old).map_err(|e| err(&e))? {
                                payload -= len(v.value().len());
                            }
                        }
                        dead.insert(next_dead, bytes.as_slice())
                            .map_err(|e| err(&e))?;
                        dead_ids
                            .insert(id.as_str(), next_dead)
                            .map_err(|e| err(&e))?;
                        payload += len(bytes.len());
                        next_dead += 1;
                    }
                    Write::Revive {
                        id,
                        webhook,
                        seq,
                        bytes,
                    } => {
                        if let Some(k) = dead_ids.remove(id.as_str()).map_err(|e| err(&e))? {
                            let k = k.value();
                            if let Some(v) = dead.remove(k).map_err(|e| err(&e))? {
                                payload -= len(v.value().len());
                            }
                        }
                        pending
                            .insert((webhook.as_str(), *seq), bytes.as_slice())
                            .map_err(|e| err(&e))?;
                        payload += len(bytes.len());
                        next_seq = next_seq.max(seq.saturating_add(1));
                    }
                    Write::Record { id, bytes, keep } => {
                        let slot = record_ids.get(id.as_str()).map_err(|e| err(&e))?;
                        let slot = match slot.map(|v| v.value()) {
                            Some(s) => s,
                            None => {
                                let s = next_record;
                                next_record += 1;
                                record_ids.insert(id.as_str(), s).map_err(|e| err(&e))?;
                                s
                            }
                        };
                        let old = records
                            .insert(slot, bytes.as_slice())
                            .map_err(|e| err(&e))?
                            .map_or(0, |v| v.value().len());
                        payload += len(bytes.len()) - len(old);
                        while records.len().map_err(|e| err(&e))? > (*keep).max(1) as u64 {
                            let Some((k, v)) = records.pop_first().map_err(|e| err(&e))? else {
                                break;
                            };
                            payload -= len(v.value().len());
                            let k = k.value();
                            let id = serde_json::from_slice::<DeliveryRecord>(v.value())
                                .map(|r| r.delivery_id)
                                .ok();
                            drop(v);
                            if let Some(id) = id {
                                let points_here = record_ids
                                    .get(id.as_str())
                                    .map_err(|e| err(&e))?
                                    .is_some_and(|s| s.value() == k);
                                if points_here {
                                    record_ids.remove(id.as_str()).map_err(|e| err(&e))?;
                                }
                            }
                        }
                    }
                    Write::PurgeDead => {
                        applied.purged += dead.len().map_err(|e| err(&e))?;
                        while let Some((_, v)) = dead.pop_first().map_err(|e| err(&e))? {
                            payload -= len(v.value().len());
                        }
                        while dead_ids.pop_first().map_err(|e| err(&e))?.is_some() {}
                    }
                }
            }
            let payload = u64::try_from(payload.max(0)).unwrap_or(u64::MAX);
            applied.payload_bytes = payload;
            meta.insert(META_PAYLOAD, payload).map_err(|e| err(&e))?;
            meta.insert(META_NEXT_SEQ, next_seq).map_err(|e| err(&e))?;
            meta.insert(META_NEXT_DEAD, next_dead)
                .map_err(|e| err(&e))?;
            meta.insert(META_NEXT_RECORD, next_record)
                .map_err(|e| err(&e))?;
        }
        txn.commit().map_err(|e| err(&e))?;
        Ok(applied)
    }

    /// Every webhook with pending deliveries, with its lowest and highest seq (one seek each).
    pub fn webhooks(&self) -> Result<Vec<(String, u64, u64)>, SpoolError> {
        let err = |e: &dyn std::fmt::Display| SpoolError::at("cannot list pending webhooks", e);
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(PENDING).map_err(|e| err(&e))?;
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let first = match &after {
                None => table.first().map_err(|e| err(&e))?,
                Some(w) => {
                    let from = (w.as_str(), u64::MAX);
                    let mut range = table
                        .range::<(&str, u64)>((Bound::Excluded(from), Bound::Unbounded))
                        .map_err(|e| err(&e))?;
                    range.next().transpose().map_err(|e| err(&e))?
                }
            };
            let Some((key, _)) = first else { break };
            let (name, lo) = key.value();
            let name = name.to_string();
            let last = table
                .range((name.as_str(), lo)..=(name.as_str(), u64::MAX))
                .map_err(|e| err(&e))?
                .next_back()
                .transpose()
                .map_err(|e| err(&e))?
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
        let err = |e: &dyn std::fmt::Display| SpoolError::at("cannot read pending deliveries", e);
        if after >= upto || limit == 0 {
            return Ok((Vec::new(), None));
        }
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(PENDING).map_err(|e| err(&e))?;
        let mut out = Vec::new();
        let mut last = None;
        for row in table
            .range((webhook, after + 1)..=(webhook, upto))
            .map_err(|e| err(&e))?
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(|e| err(&e))?;
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
        def: TableDefinition<K, &'static [u8]>,
    ) -> Result<u64, SpoolError> {
        let err = |e: &dyn std::fmt::Display| SpoolError::at("cannot count", e);
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(def).map_err(|e| err(&e))?;
        table.len().map_err(|e| err(&e))
    }

    /// The counters kept in the meta table: (next seq, payload bytes).
    pub fn meta(&self) -> Result<(u64, u64), SpoolError> {
        let err = |e: &dyn std::fmt::Display| SpoolError::at("cannot read meta", e);
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let meta = txn.open_table(META).map_err(|e| err(&e))?;
        let get = |k: &str| -> Result<u64, SpoolError> {
            Ok(meta.get(k).map_err(|e| err(&e))?.map_or(0, |v| v.value()))
        };
        Ok((get(META_NEXT_SEQ)?.max(1), get(META_PAYLOAD)?))
    }

    /// Dead letters, newest first, at most `limit`.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, SpoolError> {
        let err = |e: &dyn std::fmt::Display| SpoolError::at("cannot read dead letters", e);
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(DEAD).map_err(|e| err(&e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| err(&e))?.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = row.map_err(|e| err(&e))?;
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
        let err = |e: &dyn std::fmt::Display| SpoolError::at("cannot read dead letters", e);
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(DEAD).map_err(|e| err(&e))?;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        for row in table
            .range::<u64>((from, Bound::Unbounded))
            .map_err(|e| err(&e))?
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.map_err(|e| err(&e))?;
            if let Ok(d) = serde_json::from_slice::<DeadLetter>(v.value()) {
                out.push((k.value(), d));
            }
        }
        Ok(out)
    }

    /// One dead letter by delivery id.
    pub fn dead_letter(&self, id: &str) -> Result<Option<DeadLetter>, SpoolError> {
        let err = |e: &dyn std::fmt::Display| SpoolError::at("cannot read a dead letter", e);
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let ids = txn.open_table(DEAD_IDS).map_err(|e| err(&e))?;
        let Some(key) = ids.get(id).map_err(|e| err(&e))?.map(|v| v.value()) else {
            return Ok(None);
        };
        let table = txn.open_table(DEAD).map_err(|e| err(&e))?;
        let letter = table.get(key).map_err(|e| err(&e))?;
        Ok(letter.and_then(|v| serde_json::from_slice(v.value()).ok()))
    }

    /// The newest `limit` delivery records, oldest first.
    pub fn records(&self, limit: usize) -> Result<Vec<DeliveryRecord>, SpoolError> {
        let err = |e: &dyn std::fmt::Display| SpoolError::at("cannot read delivery records", e);
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(RECORDS).map_err(|e| err(&e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| err(&e))?.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = row.map_err(|e| err(&e))?;
            if let Ok(r) = serde_json::from_slice::<DeliveryRecord>(v.value()) {
                out.push(r);
            }
        }
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::event::{Action, RequestInfo, UserEvent, UserFields};

    /// A delivery of an update of `user` to `webhook`, at spool sequence `seq`.
    pub(in crate::events) fn delivery(webhook: &str, user: &str, seq: u64) -> Delivery {
        let mut f = UserFields::new();
        f.insert("ID".into(), user.into());
        let mut d = Delivery::new(
            webhook,
            UserEvent::new(seq, Action::Updated, f, RequestInfo::default(), false),
            1_000,
        );
        d.seq = seq;
        d
    }

    /// The spool write that stores `d`.
    pub(in crate::events) fn put(d: &Delivery) -> Write {
        Write::Put {
            webhook: d.webhook.clone(),
            seq: d.seq,
            bytes: serde_json::to_vec(d).expect("json"),
        }
    }

    #[test]
    fn pending_survives_reopen_with_retry_state_and_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = delivery("w", "a", 1);
        let b = delivery("w", "b", 2);
        let c = delivery("v", "a", 3);
        {
            let spool = Spool::open(dir.path()).expect("open");
            spool.apply(&[put(&a), put(&b), put(&c)]).expect("commit");
            a.attempt = 3;
            a.next_attempt_at = 99_000;
            a.last_error = Some("HTTP 503".into());
            spool.apply(&[put(&a)]).expect("commit");
            // A second open in the same process is refused while the first holds the lock.
            let again = Spool::open(dir.path()).expect_err("locked");
            assert!(is_locked(&again), "{again}");
        }
        let spool = Spool::open(dir.path()).expect("reopen");
        assert_eq!(
            spool.webhooks().expect("webhooks"),
            [("v".to_string(), 3, 3), ("w".to_string(), 1, 2)]
        );
        let (page, last) = spool.page("w", 0, 2, 10).expect("page");
        assert_eq!(page, [a.clone(), b.clone()]);
        assert_eq!(last, Some(2));
        assert_eq!(page[0].attempt, 3);
        assert_eq!(page[0].next_attempt_at, 99_000);
        let (one, last) = spool.page("w", 0, 2, 1).expect("page");
        assert_eq!((one.len(), last), (1, Some(1)));
        assert_eq!(spool.page("w", 2, 2, 10).expect("page").0, []);
        assert_eq!(spool.meta().expect("meta").0, 4, "next seq");
        assert_eq!(spool.pending_count().expect("count"), 3);
    }

    #[test]
    fn dead_letters_move_revive_and_purge_with_exact_byte_accounting() {
        let spool = Spool::in_memory().expect("spool");
        let d = delivery("w", "a", 1);
        let bytes = serde_json::to_vec(&d).expect("json").len() as u64;
        let applied = spool.apply(&[put(&d)]).expect("commit");
        assert_eq!(applied.payload_bytes, bytes);
        let letter = DeadLetter {
            delivery: d.clone(),
            reason: "HTTP 404".into(),
            at: "now".into(),
        };
        let letter_bytes = serde_json::to_vec(&letter).expect("json");
        let dead_len = letter_bytes.len() as u64;
        let applied = spool
            .apply(&[Write::Dead {
                webhook: "w".into(),
                seq: 1,
                id: d.id.clone(),
                bytes: letter_bytes,
            }])
            .expect("commit");
        assert_eq!(applied.payload_bytes, dead_len);
        assert_eq!(spool.pending_count().expect("count"), 0);
        assert_eq!(
            spool.dead_letter(&d.id).expect("read"),
            Some(letter.clone())
        );
        assert_eq!(
            spool.dead_letters(10).expect("list"),
            std::slice::from_ref(&letter)
        );

        let mut back = d.clone();
        back.seq = 7;
        let applied = spool
            .apply(&[Write::Revive {
                id: d.id.clone(),
                webhook: "w".into(),
                seq: 7,
                bytes: serde_json::to_vec(&back).expect("json"),
            }])
            .expect("commit");
        assert_eq!(spool.dead_count().expect("count"), 0);
        assert_eq!(spool.page("w", 0, 10, 10).expect("page").0, [back.clone()]);
        assert_eq!(spool.meta().expect("meta"), (8, applied.payload_bytes));

        spool
            .apply(&[
                Write::Dead {
                    webhook: "w".into(),
                    seq: 7,
                    id: d.id.clone(),
                    bytes: serde_json::to_vec(&letter).expect("json"),
                },
                Write::Remove {
                    webhook: "w".into(),
                    seq: 7,
                },
            ])
            .expect("commit");
        let applied = spool.apply(&[Write::PurgeDead]).expect("commit");
        assert_eq!((applied.purged, applied.payload_bytes), (1, 0));
        assert_eq!(spool.dead_letter(&d.id).expect("read"), None);
    }

    #[test]
    fn records_keep_the_newest_n_and_update_in_place() {
        use super::super::records::DeliveryStatus;
        let spool = Spool::in_memory().expect("spool");
        let ds: Vec<Delivery> = (1..=4).map(|i| delivery("w", &i.to_string(), i)).collect();
        let rec = |d: &Delivery, s| {
            let r = DeliveryRecord::of(d, s, None, 0);
            Write::Record {
                id: r.delivery_id.clone(),
                bytes: serde_json::to_vec(&r).expect("json"),
                keep: 2,
            }
        };
        spool
            .apply(&[
                rec(&ds[0], DeliveryStatus::Retrying),
                rec(&ds[1], DeliveryStatus::Retrying),
                rec(&ds[0], DeliveryStatus::Successful),
            ])
            .expect("commit");
        let users = |s: &Spool| -> Vec<(String, DeliveryStatus)> {
            s.records(10)
                .expect("records")
                .into_iter()
                .map(|r| (r.user_id, r.status))
                .collect()
        };
        assert_eq!(
            users(&spool),
            [
                ("1".into(), DeliveryStatus::Successful),
                ("2".into(), DeliveryStatus::Retrying)
            ]
        );
        spool
            .apply(&[
                rec(&ds[2], DeliveryStatus::Failed),
                rec(&ds[3], DeliveryStatus::Failed),
            ])
            .expect("commit");
        assert_eq!(
            users(&spool),
            [
                ("3".into(), DeliveryStatus::Failed),
                ("4".into(), DeliveryStatus::Failed)
            ]
        );
        // The evicted delivery's index entry went with it: a new outcome is a new record.
        spool
            .apply(&[rec(&ds[0], DeliveryStatus::Failed)])
            .expect("commit");
        assert_eq!(users(&spool)[1], ("1".into(), DeliveryStatus::Failed));
    }

    #[test]
    fn relative_spool_dirs_follow_the_config_file() {
        let cfg = Path::new("/etc/userhook/userhook.yaml");
        assert_eq!(
            resolve_dir(cfg, "./data/spool"),
            Path::new("/etc/userhook/./data/spool")
        );
        assert_eq!(resolve_dir(cfg, "/var/lib/uh"), Path::new("/var/lib/uh"));
        assert_eq!(
            resolve_dir(Path::new("userhook.yaml"), "data"),
            Path::new("data")
        );
    }
}
