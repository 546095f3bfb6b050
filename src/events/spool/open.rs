//! Opening the spool: the file in `delivery.spool_dir` (taking redb's exclusive lock, so one
//! process at a time), or a spool in memory for tests and embedding. Nothing here reads or
//! writes deliveries.

use std::path::{Path, PathBuf};

use redb::Database;

use super::error::SpoolError;
use super::schema::{create_tables, CACHE_BYTES};

/// The file inside `delivery.spool_dir`.
pub const SPOOL_FILE: &str = "spool.redb";

/// The open spool database.
pub struct Spool {
    pub(super) db: Database,
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
            .map_err(|e| SpoolError::io(format!("cannot create {}", dir.display()), &e))?;
        let path = dir.join(SPOOL_FILE);
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| SpoolError::redb(format!("cannot open {}", path.display()), e))?;
        create_tables(&db)?;
        Ok(Spool {
            db,
            path: Some(path),
        })
    }

    /// A spool in memory: same code paths, nothing survives the process (tests, embedding).
    pub fn in_memory() -> Result<Spool, SpoolError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| SpoolError::redb("cannot create an in-memory spool", e))?;
        create_tables(&db)?;
        Ok(Spool { db, path: None })
    }

    /// The file, when on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
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
}
