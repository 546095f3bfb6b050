//! A fault-injecting file layer under redb, for drills and tests of a full or failing disk
//! without mount privileges: [`FaultyFile`] is redb's own file backend with a [`FaultSwitch`]
//! in front of its writes. Told to, it answers writes, growth and syncs with ENOSPC ("No space
//! left on device"), exactly as a full file system does, and heals when told to. Only chosen
//! through [`SpoolSource::Faulty`](super::SpoolSource::Faulty), never by a config.

use std::fs::{File, OpenOptions};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// What the layer does to writes; shared by every handle opened on it, so a reopen meets the
/// same disk.
#[derive(Debug, Default)]
pub struct FaultSwitch {
    /// Every write, growth and sync fails (an unwritable disk).
    fail_all: AtomicBool,
    /// Writes and growth past this many bytes of file fail (a full disk); `u64::MAX`: none.
    limit: AtomicU64,
    /// Failures injected so far.
    injected: AtomicU64,
}

impl FaultSwitch {
    /// A switch that lets everything through.
    pub fn new() -> Arc<FaultSwitch> {
        Arc::new(FaultSwitch {
            fail_all: AtomicBool::new(false),
            limit: AtomicU64::new(u64::MAX),
            injected: AtomicU64::new(0),
        })
    }

    /// From now on every write, growth and sync fails with ENOSPC.
    pub fn fill_disk(&self) {
        self.fail_all.store(true, Ordering::SeqCst);
    }

    /// Writes and growth beyond `bytes` of file fail with ENOSPC; writes within it succeed
    /// (redb can still reuse its free pages), like a file system with that much room.
    pub fn limit_file(&self, bytes: u64) {
        self.limit.store(bytes, Ordering::SeqCst);
    }

    /// Space is back: nothing fails any more.
    pub fn heal(&self) {
        self.fail_all.store(false, Ordering::SeqCst);
        self.limit.store(u64::MAX, Ordering::SeqCst);
    }

    /// Failures injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    fn check(&self, end: Option<u64>) -> std::io::Result<()> {
        let over = end.is_some_and(|end| end > self.limit.load(Ordering::SeqCst));
        if self.fail_all.load(Ordering::SeqCst) || over {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(no_space());
        }
        Ok(())
    }
}

/// The error a full Linux file system gives (`ENOSPC`, os error 28).
fn no_space() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::StorageFull,
        "No space left on device (injected by FaultSwitch)",
    )
}

/// redb's file backend behind a [`FaultSwitch`]: reads always work, writes fail when told.
#[derive(Debug)]
pub struct FaultyFile {
    inner: FileBackend,
    switch: Arc<FaultSwitch>,
}

impl FaultyFile {
    /// Opens (or creates) `path` for redb, with `switch` in front of its writes.
    pub fn open(path: &Path, switch: Arc<FaultSwitch>) -> std::io::Result<FaultyFile> {
        let file: File = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let inner = FileBackend::new(file).map_err(std::io::Error::other)?;
        Ok(FaultyFile { inner, switch })
    }
}

impl StorageBackend for FaultyFile {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        let current = self.inner.len()?;
        // Shrinking needs no room; growing does.
        self.switch.check((len > current).then_some(len))?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.switch.check(None)?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.switch
            .check(Some(offset.saturating_add(data.len() as u64)))?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
