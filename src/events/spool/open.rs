//! Opening the spool: the file in `delivery.spool_dir` (taking redb's exclusive lock, so one
//! process at a time), a spool in memory for tests and embedding, or the file through a
//! fault-injecting layer ([`FaultSwitch`]) for fault drills. Also what a failing disk needs:
//! [`Spool::reopen`] after redb poisoned its handle ("Previous I/O error occurred"), and, for a
//! file that is no spool, [`move_aside`] so a fresh one can start beside it. Nothing here reads
//! or writes deliveries.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::Database;

use super::error::SpoolError;
use super::faults::{FaultSwitch, FaultyFile};
use super::schema::{create_tables, CACHE_BYTES};

/// The file inside `delivery.spool_dir`.
pub const SPOOL_FILE: &str = "spool.redb";

/// Where a spool's database comes from, so it can be opened again after an I/O error.
#[derive(Debug, Clone)]
pub enum SpoolSource {
    /// `dir/spool.redb` on disk (the directory is created when missing).
    Dir(PathBuf),
    /// `dir/spool.redb` on disk, through a layer that fails writes when told to (ENOSPC and
    /// friends): for fault drills and tests, never chosen by a config.
    Faulty(PathBuf, Arc<FaultSwitch>),
    /// In memory: nothing survives the process, and nothing can be reopened.
    Memory,
}

impl SpoolSource {
    /// The spool file this source opens, when on disk.
    pub fn file(&self) -> Option<PathBuf> {
        match self {
            SpoolSource::Dir(dir) | SpoolSource::Faulty(dir, _) => Some(dir.join(SPOOL_FILE)),
            SpoolSource::Memory => None,
        }
    }
}

/// The open spool database. The handle sits behind a lock so the writer can replace it (a
/// reopen after an I/O error) or compact it while everyone else keeps their `Arc<Spool>`;
/// readers hold the lock only for the length of one read transaction.
pub struct Spool {
    db: RwLock<Option<Database>>,
    source: SpoolSource,
    /// Why the last open failed, while the database is not open: every read and write says it.
    open_error: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.source.file())
            .finish()
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

/// Opens a database from `source` (creating the file and its tables when missing).
fn open_db(source: &SpoolSource) -> Result<Database, SpoolError> {
    let builder = || {
        let mut b = Database::builder();
        b.set_cache_size(CACHE_BYTES);
        b
    };
    let db = match source {
        SpoolSource::Memory => builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| SpoolError::redb("cannot create an in-memory spool", e))?,
        SpoolSource::Dir(dir) | SpoolSource::Faulty(dir, _) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| SpoolError::io(format!("cannot create {}", dir.display()), &e))?;
            let path = dir.join(SPOOL_FILE);
            let context = || format!("cannot open {}", path.display());
            match source {
                SpoolSource::Faulty(_, switch) => {
                    let file = FaultyFile::open(&path, switch.clone())
                        .map_err(|e| SpoolError::io(context(), &e))?;
                    builder()
                        .create_with_backend(file)
                        .map_err(|e| SpoolError::redb(context(), e))?
                }
                _ => builder()
                    .create(&path)
                    .map_err(|e| SpoolError::redb(context(), e))?,
            }
        }
    };
    create_tables(&db)?;
    Ok(db)
}

impl Spool {
    /// Opens (or creates) `dir/spool.redb`, taking redb's exclusive file lock.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        Spool::open_source(SpoolSource::Dir(dir.to_path_buf()))
    }

    /// Opens the spool `source` names.
    pub fn open_source(source: SpoolSource) -> Result<Spool, SpoolError> {
        let db = open_db(&source)?;
        Ok(Spool {
            db: RwLock::new(Some(db)),
            source,
            open_error: std::sync::Mutex::new(None),
        })
    }

    /// A spool whose file could not be opened yet: every read and write fails with `error`'s
    /// kind until [`Spool::reopen`] succeeds (the writer keeps trying). `fast` mode starts
    /// like this rather than keep the proxy down.
    pub fn unopened(source: SpoolSource, error: &SpoolError) -> Spool {
        Spool {
            db: RwLock::new(None),
            source,
            open_error: std::sync::Mutex::new(Some(error.to_string())),
        }
    }

    /// A spool in memory: same code paths, nothing survives the process (tests, embedding).
    pub fn in_memory() -> Result<Spool, SpoolError> {
        Spool::open_source(SpoolSource::Memory)
    }

    /// The file, when on disk.
    pub fn path(&self) -> Option<PathBuf> {
        self.source.file()
    }

    /// True while the database is open (false after a failed reopen, or before the first).
    pub fn is_open(&self) -> bool {
        self.db.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Drops the database handle and opens the file again. After an I/O error redb refuses
    /// every later transaction ("Previous I/O error occurred. Please close and re-open the
    /// database"); a fresh handle runs redb's repair from the last durable commit and works
    /// again once the disk does. On failure the spool stays closed (reads and writes fail)
    /// until a later reopen succeeds. An in-memory spool cannot be reopened: its content
    /// lives in the handle.
    pub fn reopen(&self) -> Result<(), SpoolError> {
        if matches!(self.source, SpoolSource::Memory) {
            return Err(SpoolError::unavailable(
                "an in-memory spool cannot be reopened",
            ));
        }
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        // The old handle must let go of the file (and its lock) before a new one can take it.
        drop(db.take());
        let opened = open_db(&self.source);
        let mut open_error = self.open_error.lock().unwrap_or_else(|p| p.into_inner());
        match opened {
            Ok(new) => {
                *db = Some(new);
                *open_error = None;
                Ok(())
            }
            Err(e) => {
                *open_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// True while the writer holds the database alone (a compaction or a reopen): a read now
    /// would wait for it. Callers on a shared thread (the scheduler, `/metrics`) skip instead.
    pub fn is_busy(&self) -> bool {
        matches!(self.db.try_read(), Err(std::sync::TryLockError::WouldBlock))
    }

    /// Runs `f` over the open database; fails when it is not open. Holds the handle's lock
    /// (shared) for the length of `f`: keep `f` to one transaction.
    pub(super) fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, SpoolError>,
    ) -> Result<T, SpoolError> {
        let db = self.db.read().unwrap_or_else(|p| p.into_inner());
        match db.as_ref() {
            Some(db) => f(db),
            None => Err(self.not_open()),
        }
    }

    /// The error of a read or write while the database is not open: the last open's.
    fn not_open(&self) -> SpoolError {
        let why = self
            .open_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "never opened".into());
        SpoolError::unavailable(why)
    }

    /// Runs `f` over the open database alone (no reader inside): compaction needs that.
    pub(super) fn with_db_mut<T>(
        &self,
        f: impl FnOnce(&mut Database) -> Result<T, SpoolError>,
    ) -> Result<T, SpoolError> {
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        match db.as_mut() {
            Some(db) => f(db),
            None => Err(self.not_open()),
        }
    }
}

/// Renames a spool file that cannot be opened (corrupt, truncated, not a redb file) to
/// `spool.redb.corrupt-<unix seconds>` beside it, for inspection, so a fresh spool can start.
/// Returns the new name.
pub fn move_aside(dir: &Path) -> Result<PathBuf, SpoolError> {
    let from = dir.join(SPOOL_FILE);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut to = dir.join(format!("{SPOOL_FILE}.corrupt-{secs}"));
    let mut n = 1;
    while to.exists() {
        to = dir.join(format!("{SPOOL_FILE}.corrupt-{secs}-{n}"));
        n += 1;
    }
    std::fs::rename(&from, &to).map_err(|e| {
        SpoolError::io(
            format!("cannot move {} aside to {}", from.display(), to.display()),
            &e,
        )
    })?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_file_that_is_no_spool_moves_aside_and_a_fresh_one_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(SPOOL_FILE),
            b"this is not a redb file at all",
        )
        .expect("write");
        let e = Spool::open(dir.path()).expect_err("not a spool");
        assert_eq!(e.kind(), super::super::SpoolErrorKind::Corrupt, "{e}");
        let moved = move_aside(dir.path()).expect("moved");
        let name = moved.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(name.starts_with("spool.redb.corrupt-"), "{name}");
        assert_eq!(
            std::fs::read(&moved).expect("kept"),
            b"this is not a redb file at all"
        );
        let spool = Spool::open(dir.path()).expect("fresh");
        assert_eq!(spool.pending_count().expect("count"), 0);
    }
}
