//! The identity file (`identity.redb`): the user cache and the session index, kept across
//! restarts so the first logout after one is still attributed.
//!
//! Memory is the truth while userhook runs; this file is written behind it. The extractor
//! only marks entries dirty (a set insert under a short lock); a flush, every
//! [`FLUSH_EVERY`](super::FLUSH_EVERY) on a blocking thread and once more at shutdown, writes
//! each dirty entry as it is now (or deletes it) in one transaction. So a SIGKILL loses at most
//! the identity learned in the last flush interval; deliveries are unaffected (they are in the
//! spool). The file holds user fields and *keyed hashes* of credentials with their owner and
//! expiry, never a raw credential and never the hashing key (that is in its own file, or in
//! the config). It is as bounded as memory: whatever memory drops (evicted, expired, deleted)
//! the next flush deletes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::session::{CredentialHash, Session};
use crate::event::UserFields;

/// User ID -> (write sequence, fields as JSON). The sequence restores the cache's order.
const USERS: TableDefinition<'static, &str, (u64, &[u8])> = TableDefinition::new("users");
/// Credential hash -> (owner's user ID, expiry in unix seconds, write sequence).
const SESSIONS: TableDefinition<'static, &[u8], (&str, u64, u64)> =
    TableDefinition::new("sessions");
/// `key_check`: the hasher's fingerprint; `seq`: the last write sequence.
const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");

const META_KEY_CHECK: &str = "key_check";
const META_SEQ: &str = "seq";

/// redb's page cache for this small file.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Why the identity file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("identity file {path}: {message}")]
pub struct StoreError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong, with the storage engine's words.
    pub message: String,
}

/// What the file held at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Users, oldest write first.
    pub users: Vec<(String, UserFields)>,
    /// Sessions still valid, oldest write first.
    pub sessions: Vec<(CredentialHash, Session)>,
    /// Sessions dropped at load: expired, or hashed with another key.
    pub dropped_sessions: usize,
}

/// The open identity file.
#[derive(Debug)]
pub struct Store {
    /// Behind a lock only so compaction (which needs the database alone) can run through a
    /// shared handle; the flusher is its only user while userhook runs.
    db: Mutex<Database>,
    path: PathBuf,
    /// Something was deleted (a user, a session) since the last compaction: its bytes may
    /// still sit in free pages until [`Store::compact`].
    removed: AtomicBool,
}

impl Store {
    /// Opens (or creates) the file, taking redb's exclusive lock.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(path, format!("cannot create its directory: {e}")))?;
        }
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| err(path, format!("cannot open: {e}")))?;
        let store = Store {
            db: Mutex::new(db),
            path: path.to_path_buf(),
            removed: AtomicBool::new(false),
        };
        store.write(|txn| {
            txn.open_table(USERS)?;
            txn.open_table(SESSIONS)?;
            txn.open_table(META)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database; a panic elsewhere while holding it leaves nothing half-done here (redb
    /// transactions are atomic), so a poisoned lock is taken as it is.
    fn db(&self) -> MutexGuard<'_, Database> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when a deletion since the last compaction may have left bytes in free pages.
    pub fn needs_compaction(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// Rewrites the file without free pages, so a deleted user's fields (and dropped
    /// sessions) are not readable in it any more; the flusher runs it when identity is idle.
    /// The file is small (bounded like memory), so this takes milliseconds.
    pub fn compact(&self) -> Result<(), StoreError> {
        self.removed.store(false, Ordering::Relaxed);
        let mut db = self.db();
        for _ in 0..8 {
            match db.compact() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.removed.store(true, Ordering::Relaxed);
                    return Err(err(&self.path, format!("cannot compact: {e}")));
                }
            }
        }
        Ok(())
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let txn = self
            .db()
            .begin_write()
            .map_err(|e| err(&self.path, format!("cannot write: {e}")))?;
        f(&txn).map_err(|e| err(&self.path, format!("cannot write: {e}")))?;
        txn.commit()
            .map_err(|e| err(&self.path, format!("cannot commit: {e}")))
    }

    /// Reads everything back. Sessions hashed under another key than `fingerprint`'s (the
    /// secret changed) or expired at `now` are deleted from the file.
    pub fn load(&self, fingerprint: &CredentialHash, now: u64) -> Result<Loaded, StoreError> {
        let read_err = |e: redb::Error| err(&self.path, format!("cannot read: {e}"));
        let mut loaded = Loaded::default();
        let same_key;
        let mut stale: Vec<Vec<u8>> = Vec::new();
        {
            let txn = self.db().begin_read().map_err(|e| read_err(e.into()))?;
            let meta = txn.open_table(META).map_err(|e| read_err(e.into()))?;
            same_key = match meta.get(META_KEY_CHECK).map_err(|e| read_err(e.into()))? {
                Some(v) => v.value() == fingerprint.as_slice(),
                None => true,
            };
            let users = txn.open_table(USERS).map_err(|e| read_err(e.into()))?;
            let mut rows = Vec::new();
            for row in users.iter().map_err(|e| read_err(e.into()))? {
                let (k, v) = row.map_err(|e| read_err(e.into()))?;
                let (seq, json) = v.value();
                // A row this build cannot read is skipped (and overwritten when seen again).
                if let Ok(fields) = serde_json::from_slice::<UserFields>(json) {
                    rows.push((seq, k.value().to_owned(), fields));
                }
            }
            rows.sort_by_key(|r| r.0);
            loaded.users = rows.into_iter().map(|(_, k, f)| (k, f)).collect();
            let sessions = txn.open_table(SESSIONS).map_err(|e| read_err(e.into()))?;
            let mut rows = Vec::new();
            for row in sessions.iter().map_err(|e| read_err(e.into()))? {
                let (k, v) = row.map_err(|e| read_err(e.into()))?;
                let (user, expires_at, seq) = v.value();
                let hash: Option<CredentialHash> = k.value().try_into().ok();
                match hash {
                    Some(h) if same_key && expires_at > now => rows.push((
                        seq,
                        h,
                        Session {
                            user: user.to_owned(),
                            expires_at,
                        },
                    )),
                    _ => stale.push(k.value().to_vec()),
                }
            }
            rows.sort_by_key(|r| r.0);
            loaded.sessions = rows.into_iter().map(|(_, h, s)| (h, s)).collect();
        }
        loaded.dropped_sessions = stale.len();
        self.write(|txn| {
            let mut sessions = txn.open_table(SESSIONS)?;
            for k in &stale {
                sessions.remove(k.as_slice())?;
            }
            txn.open_table(META)?
                .insert(META_KEY_CHECK, fingerprint.as_slice())?;
            Ok(())
        })?;
        Ok(loaded)
    }

    /// Writes one flush: each changed user and session as it is now (`None`: delete).
    pub fn apply(
        &self,
        users: &[(String, Option<UserFields>)],
        sessions: &[(CredentialHash, Option<Session>)],
    ) -> Result<(), StoreError> {
        if users.is_empty() && sessions.is_empty() {
            return Ok(());
        }
        if users.iter().any(|(_, f)| f.is_none()) || sessions.iter().any(|(_, s)| s.is_none()) {
            self.removed.store(true, Ordering::Relaxed);
        }
        self.write(|txn| {
            let mut meta = txn.open_table(META)?;
            let seq = meta
                .get(META_SEQ)?
                .and_then(|v| <[u8; 8]>::try_from(v.value()).ok())
                .map_or(0, u64::from_be_bytes)
                + 1;
            meta.insert(META_SEQ, seq.to_be_bytes().as_slice())?;
            let mut table = txn.open_table(USERS)?;
            for (id, fields) in users {
                match fields {
                    Some(f) => {
                        let json = serde_json::to_vec(f).unwrap_or_default();
                        table.insert(id.as_str(), (seq, json.as_slice()))?;
                    }
                    None => {
                        table.remove(id.as_str())?;
                    }
                }
            }
            let mut table = txn.open_table(SESSIONS)?;
            for (hash, session) in sessions {
                match session {
                    Some(s) => {
                        table.insert(hash.as_slice(), (s.user.as_str(), s.expires_at, seq))?;
                    }
                    None => {
                        table.remove(hash.as_slice())?;
                    }
                }
            }
            Ok(())
        })
    }
}

fn err(path: &Path, message: String) -> StoreError {
    StoreError {
        path: path.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, name: &str) -> UserFields {
        [("ID", id), ("Name", name)]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_deleted_users_fields_are_gone_from_the_file_after_compaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("identity.redb");
        let s = Store::open(&path).expect("open");
        let canary = "deleted-user-canary@example.com";
        s.apply(&[("9".into(), Some(user("9", canary)))], &[])
            .expect("write");
        // Other users keep the file busy, so the deleted row's page is freed, not reused.
        for i in 0..200 {
            s.apply(
                &[(format!("k{i}"), Some(user(&format!("k{i}"), "kept")))],
                &[],
            )
            .expect("write");
        }
        assert!(!s.needs_compaction());
        s.apply(&[("9".into(), None)], &[]).expect("delete");
        assert!(s.needs_compaction(), "a deletion asks for a compaction");
        s.compact().expect("compact");
        assert!(!s.needs_compaction());
        let raw = std::fs::read(&path).expect("read");
        assert!(
            !raw.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "the deleted user's email is still in the file"
        );
        assert_eq!(s.load(&[7u8; 32], 0).expect("load").users.len(), 200);
    }

    #[test]
    fn round_trips_in_write_order_and_drops_what_memory_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("identity.redb");
        let key = [7u8; 32];
        {
            let s = Store::open(&path).expect("open");
            assert!(s.load(&key, 0).expect("load").users.is_empty());
            s.apply(&[("2".into(), Some(user("2", "b")))], &[])
                .expect("write");
            s.apply(
                &[("1".into(), Some(user("1", "a")))],
                &[
                    (
                        [1; 32],
                        Some(Session {
                            user: "1".into(),
                            expires_at: 500,
                        }),
                    ),
                    (
                        [2; 32],
                        Some(Session {
                            user: "2".into(),
                            expires_at: 50,
                        }),
                    ),
                ],
            )
            .expect("write");
            s.apply(
                &[("3".into(), Some(user("3", "c"))), ("3".into(), None)],
                &[],
            )
            .expect("write");
        }
        let s = Store::open(&path).expect("reopen");
        let loaded = s.load(&key, 100).expect("load");
        assert_eq!(
            loaded.users,
            vec![("2".into(), user("2", "b")), ("1".into(), user("1", "a"))]
        );
        assert_eq!(
            loaded.sessions,
            vec![(
                [1; 32],
                Session {
                    user: "1".into(),
                    expires_at: 500
                }
            )]
        );
        assert_eq!(loaded.dropped_sessions, 1, "the expired session is gone");
        // Another key: every session hash is meaningless and dropped.
        let other = s.load(&[9u8; 32], 100).expect("load");
        assert!(other.sessions.is_empty());
        assert_eq!(other.dropped_sessions, 1);
        assert_eq!(other.users.len(), 2, "users are not keyed");
    }
}
