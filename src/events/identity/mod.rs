//! Identity: what userhook knows about who a call is about, across calls and restarts.
//!
//! Three parts, owned here and used only by the extractor (never on the request path): the
//! user cache (`extractor::user_cache`: last known fields by ID, with Name and Email as
//! secondary keys), the session index (`session`: keyed hash of a credential -> its owner),
//! and the IAM's signing keys (`jwks`) for tokens clients present. `store` keeps the first
//! two in `identity.redb`, written behind memory by [`run_flusher`]; `secret` is the hashing
//! key. Nothing here ever holds or writes a raw credential or logs a key.

pub mod jwks;
pub mod secret;
pub mod session;
pub mod store;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::ConfigFile;
use crate::shutdown::ShutdownSignal;
use jwks::Jwks;
use session::{CredentialHash, Hasher, SessionIndex};
use store::{Store, StoreError};
use users::UserCache;

/// How often changes are written to the identity file (what a SIGKILL can lose at most).
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// How often expired sessions are swept out (lookups drop an expired entry they meet anyway).
pub const PURGE_EVERY: Duration = Duration::from_secs(60);

/// The file name of the identity store inside `delivery.spool_dir` when `identity.path` is
/// not given.
pub const IDENTITY_FILE: &str = "identity.redb";

/// Why identity could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The hashing key could not be read or made.
    #[error(transparent)]
    Secret(#[from] secret::SecretError),
    /// The identity file could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user cache, the session index and the key sets, with their file.
#[derive(Debug)]
pub struct Identity {
    /// Last known fields per user.
    pub users: UserCache,
    /// Credential hash -> owner.
    pub sessions: SessionIndex,
    hasher: Hasher,
    /// The IAM's signing keys.
    pub jwks: Jwks,
    store: Option<Store>,
}

/// Seconds since the Unix epoch: the clock of session expiries.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The user limit the config asks for: `identity.max_users`, else `user_cache.capacity`.
pub fn max_users(file: &ConfigFile) -> usize {
    file.identity.max_users.unwrap_or(file.user_cache.capacity)
}

/// Where the identity file of a config lives.
pub fn store_path(config_path: &Path, file: &ConfigFile) -> PathBuf {
    match &file.identity.path {
        Some(p) => super::spool::resolve_dir(config_path, p),
        None => {
            super::spool::resolve_dir(config_path, &file.delivery.spool_dir).join(IDENTITY_FILE)
        }
    }
}

impl Identity {
    /// Identity in memory only, keyed with a random key: tests and embedding.
    pub fn in_memory(max_users: usize, max_sessions: usize) -> Identity {
        let mut key = [0u8; 32];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key);
        Identity {
            users: UserCache::new(max_users),
            sessions: SessionIndex::new(max_sessions),
            hasher: Hasher::new(&key),
            jwks: Jwks::new(),
            store: None,
        }
    }

    /// Opens the identity file of this config (creating it and its key on first start) and
    /// loads what it holds.
    pub fn open(config_path: &Path, file: &ConfigFile) -> Result<Identity, IdentityError> {
        let path = store_path(config_path, file);
        let key = secret::load(file.identity.secret.as_deref(), &secret::key_path(&path))?;
        let hasher = Hasher::new(&key);
        let store = Store::open(&path)?;
        let loaded = store.load(&hasher.fingerprint(), unix_now())?;
        let identity = Identity {
            users: UserCache::tracked(max_users(file)),
            sessions: SessionIndex::tracked(file.identity.max_sessions),
            hasher,
            jwks: Jwks::new(),
            store: None,
        };
        let (users, sessions) = (loaded.users.len(), loaded.sessions.len());
        identity.users.restore(loaded.users);
        identity.sessions.restore(loaded.sessions);
        tracing::info!(
            path = %path.display(),
            users,
            sessions,
            dropped_sessions = loaded.dropped_sessions,
            "identity loaded"
        );
        Ok(Identity {
            store: Some(store),
            ..identity
        })
    }

    /// Applies reloaded limits.
    pub fn set_limits(&self, max_users: usize, max_sessions: usize) {
        self.users.set_capacity(max_users);
        self.sessions.set_capacity(max_sessions);
    }

    /// The keyed hash of a credential value.
    pub fn hash(&self, credential: &str) -> CredentialHash {
        self.hasher.hash(credential)
    }

    /// Forgets a deleted user: cache entry and every session.
    pub fn forget_user(&self, id: &str) {
        self.users.forget_id(id);
        self.sessions.forget_user(id);
    }

    /// Writes what changed since the last flush (blocking I/O: call off the async threads).
    /// On failure the changes stay marked and are written with the next flush.
    pub fn flush(&self) -> Result<(), StoreError> {
        let Some(store) = &self.store else {
            // Nothing to write to: drop the marks so they do not pile up.
            let _ = (self.users.take_dirty(), self.sessions.take_dirty());
            return Ok(());
        };
        let users = self.users.take_dirty();
        let sessions = self.sessions.take_dirty();
        store.apply(&users, &sessions).inspect_err(|_| {
            self.users
                .mark_dirty(users.iter().map(|(id, _)| id.clone()));
            self.sessions.mark_dirty(sessions.iter().map(|(h, _)| *h));
        })
    }

    /// Compacts the identity file (blocking I/O: call off the async threads): what deletions
    /// left in free pages is gone afterwards.
    pub fn compact(&self) -> Result<(), StoreError> {
        self.store.as_ref().map_or(Ok(()), Store::compact)
    }

    /// True when something changed since the last flush.
    pub fn has_changes(&self) -> bool {
        self.users.has_dirty() || self.sessions.has_dirty()
    }

    /// The identity file, when there is one.
    pub fn store_path(&self) -> Option<&Path> {
        self.store.as_ref().map(Store::path)
    }
}

/// Flushes identity changes every [`FLUSH_EVERY`] (sweeping expired sessions every
/// [`PURGE_EVERY`], updating the size gauges) until shutdown; the last flush is the caller's
/// ([`Identity::flush`] after the extractor stopped).
pub async fn run_flusher(identity: Arc<Identity>, mut signal: ShutdownSignal) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut purged = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = signal.recv() => return,
        }
        if purged.elapsed() >= PURGE_EVERY {
            purged = tokio::time::Instant::now();
            identity.sessions.purge_expired(unix_now());
        }
        crate::metrics::identity_size(identity.users.len(), identity.sessions.len());
        // An idle instance (or one without a file) costs nothing: no thread, no transaction;
        // once idle after deletions, the file is compacted so deleted users' fields do not
        // stay readable in its free pages.
        if identity.store.is_none() || !identity.has_changes() {
            if identity.store.as_ref().is_some_and(Store::needs_compaction) {
                let id = identity.clone();
                match tokio::task::spawn_blocking(move || id.compact()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot compact the identity file"),
                    Err(e) => tracing::error!(error = %e, "identity compaction task failed"),
                }
            }
            continue;
        }
        let id = identity.clone();
        let result = tokio::task::spawn_blocking(move || id.flush()).await;
        match result {
            Ok(Ok(())) if failing => {
                failing = false;
                tracing::info!("identity file writable again");
            }
            Ok(Ok(())) => {}
            Ok(Err(e)) if !failing => {
                failing = true;
                tracing::error!(error = %e, "cannot write the identity file; identity is kept in memory and written when it can be");
            }
            Ok(Err(_)) => {}
            Err(e) => tracing::error!(error = %e, "identity flush task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::UserFields;

    #[test]
    fn survives_a_reopen_and_forgets_deleted_users() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("userhook.yaml");
        let file: ConfigFile =
            crate::config::parse_yaml_as("upstream: http://127.0.0.1:1\n").expect("config");
        let alice: UserFields = [("ID", "a1"), ("Name", "alice")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        {
            let id = Identity::open(&config, &file).expect("open");
            id.users.remember(&alice);
            id.sessions
                .learn(id.hash("cookie-1"), "a1", unix_now() + 60);
            id.sessions
                .learn(id.hash("cookie-2"), "b2", unix_now() + 60);
            id.flush().expect("flush");
        }
        let path = dir.path().join("data/spool").join(IDENTITY_FILE);
        assert!(path.exists(), "beside the spool by default");
        let raw = std::fs::read(&path).expect("read");
        assert!(
            !raw.windows(8).any(|w| w == b"cookie-1"),
            "no raw credential in the file"
        );
        {
            let id = Identity::open(&config, &file).expect("reopen");
            assert_eq!(id.users.get("a1"), Some(alice.clone()));
            assert_eq!(
                id.sessions
                    .owner(&id.hash("cookie-1"), unix_now())
                    .as_deref(),
                Some("a1")
            );
            id.forget_user("a1");
            id.flush().expect("flush");
        }
        let id = Identity::open(&config, &file).expect("reopen");
        assert_eq!(id.users.get("a1"), None);
        assert_eq!(id.sessions.owner(&id.hash("cookie-1"), unix_now()), None);
        assert_eq!(
            id.sessions
                .owner(&id.hash("cookie-2"), unix_now())
                .as_deref(),
            Some("b2")
        );
    }
}
