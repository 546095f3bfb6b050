//! The session index: credential (as a keyed hash) -> the user the IAM issued it to.
//!
//! A login or sign-up response shows both a credential (a session cookie, a token in the body
//! or a header) and the user; a later call that presents only the credential (logout, "update
//! me", change my password) is then about that user. The raw value is never kept: only its
//! HMAC-SHA256 under the instance's secret, so the index (and its file) cannot be used to
//! impersonate anyone. Entries expire with the credential and the index is bounded (the least
//! recently used go first). Every change marks the entry dirty for the identity store.

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use hmac::{Hmac, Mac};
use lru::LruCache;
use sha2::Sha256;

/// A credential's keyed hash: what the index and the store keep instead of the value.
pub type CredentialHash = [u8; 32];

/// Hashes credentials under the instance secret.
#[derive(Clone)]
pub struct Hasher {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is never shown.
        f.write_str("Hasher(<redacted>)")
    }
}

impl Hasher {
    /// A hasher keyed with `key` (any length: HMAC takes it as is).
    pub fn new(key: &[u8]) -> Self {
        Hasher {
            mac: Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| {
                // HMAC accepts keys of every length; this branch cannot be taken.
                Hmac::<Sha256>::new_from_slice(&[0u8; 32]).unwrap_or_else(|_| unreachable!())
            }),
        }
    }

    /// The keyed hash of one credential value.
    pub fn hash(&self, credential: &str) -> CredentialHash {
        self.keyed(b"credential\0", credential.as_bytes())
    }

    /// A value that tells whether two hashers share a key (kept in the store: hashes made
    /// with another key mean nothing and are dropped), revealing nothing about the key.
    pub fn fingerprint(&self) -> CredentialHash {
        self.keyed(b"fingerprint\0", b"userhook identity store")
    }

    fn keyed(&self, domain: &[u8], value: &[u8]) -> CredentialHash {
        let mut mac = self.mac.clone();
        mac.update(domain);
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

/// Who a credential belongs to and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The owner's user ID.
    pub user: String,
    /// Unix seconds after which the credential is no longer honoured by the IAM.
    pub expires_at: u64,
}

#[derive(Debug, Default)]
struct Inner {
    lru: Option<LruCache<CredentialHash, Session>>,
    dirty: HashSet<CredentialHash>,
    /// Changes are marked only when a store takes them.
    tracking: bool,
}

/// The bounded, expiring map from credential hash to owner.
#[derive(Debug)]
pub struct SessionIndex {
    inner: Mutex<Inner>,
}

impl SessionIndex {
    /// An index of at most `capacity` credentials; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        SessionIndex {
            inner: Mutex::new(Inner {
                lru: NonZeroUsize::new(capacity).map(LruCache::new),
                ..Inner::default()
            }),
        }
    }

    /// An index whose changes are marked for a store to take ([`SessionIndex::take_dirty`]).
    pub fn tracked(capacity: usize) -> Self {
        let index = SessionIndex::new(capacity);
        index.lock().tracking = true;
        index
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resizes, dropping the least recently used credentials if it shrinks.
    pub fn set_capacity(&self, capacity: usize) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        match (inner.lru.as_mut(), NonZeroUsize::new(capacity)) {
            (Some(lru), Some(n)) => {
                while lru.len() > n.get() {
                    match lru.pop_lru() {
                        Some((h, _)) => {
                            if inner.tracking {
                                inner.dirty.insert(h);
                            }
                        }
                        None => break,
                    }
                }
                lru.resize(n);
            }
            (None, Some(n)) => inner.lru = Some(LruCache::new(n)),
            (_, None) => {
                if let Some(lru) = inner.lru.take() {
                    for (h, _) in lru {
                        if inner.tracking {
                            inner.dirty.insert(h);
                        }
                    }
                }
            }
        }
    }

    /// Records that `hash` belongs to `user` until `expires_at` (unix seconds).
    pub fn learn(&self, hash: CredentialHash, user: &str, expires_at: u64) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(lru) = inner.lru.as_mut() else {
            return;
        };
        if let Some((old, _)) = lru.push(
            hash,
            Session {
                user: user.to_owned(),
                expires_at,
            },
        ) {
            if inner.tracking {
                inner.dirty.insert(old);
            }
        }
        if inner.tracking {
            inner.dirty.insert(hash);
        }
    }

    /// The owner of `hash` if it is known and not expired at `now` (unix seconds); an
    /// expired entry is dropped.
    pub fn owner(&self, hash: &CredentialHash, now: u64) -> Option<String> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let lru = inner.lru.as_mut()?;
        match lru.get(hash) {
            Some(s) if s.expires_at > now => Some(s.user.clone()),
            Some(_) => {
                lru.pop(hash);
                if inner.tracking {
                    inner.dirty.insert(*hash);
                }
                None
            }
            None => None,
        }
    }

    /// Forgets one credential (the call ended it).
    pub fn forget(&self, hash: &CredentialHash) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner.lru.as_mut().and_then(|lru| lru.pop(hash)).is_some() && inner.tracking {
            inner.dirty.insert(*hash);
        }
    }

    /// Forgets every credential of `user` (the user was deleted). Scans the index: deletes
    /// are rare beside logins.
    pub fn forget_user(&self, user: &str) -> usize {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(lru) = inner.lru.as_mut() else {
            return 0;
        };
        let theirs: Vec<CredentialHash> = lru
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(h, _)| *h)
            .collect();
        for h in &theirs {
            lru.pop(h);
            if inner.tracking {
                inner.dirty.insert(*h);
            }
        }
        theirs.len()
    }

    /// Drops every entry expired at `now`; returns how many.
    pub fn purge_expired(&self, now: u64) -> usize {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(lru) = inner.lru.as_mut() else {
            return 0;
        };
        let expired: Vec<CredentialHash> = lru
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(h, _)| *h)
            .collect();
        for h in &expired {
            lru.pop(h);
            if inner.tracking {
                inner.dirty.insert(*h);
            }
        }
        expired.len()
    }

    /// True when changes wait for the store.
    pub fn has_dirty(&self) -> bool {
        !self.lock().dirty.is_empty()
    }

    /// The changes since the last call: each changed hash with its entry now (`None`: gone).
    pub fn take_dirty(&self) -> Vec<(CredentialHash, Option<Session>)> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let dirty = std::mem::take(&mut inner.dirty);
        dirty
            .into_iter()
            .map(|h| (h, inner.lru.as_ref().and_then(|lru| lru.peek(&h).cloned())))
            .collect()
    }

    /// Marks changes as not yet written (a failed write is retried with the next one).
    pub fn mark_dirty(&self, hashes: impl IntoIterator<Item = CredentialHash>) {
        let mut guard = self.lock();
        if guard.tracking {
            guard.dirty.extend(hashes);
        }
    }

    /// Loads entries read back from the store, oldest first, without marking them dirty
    /// (those that do not fit are dropped, and marked so the store drops them too).
    pub fn restore(&self, entries: impl IntoIterator<Item = (CredentialHash, Session)>) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(lru) = inner.lru.as_mut() else {
            for (h, _) in entries {
                if inner.tracking {
                    inner.dirty.insert(h);
                }
            }
            return;
        };
        for (h, s) in entries {
            if let Some((old, _)) = lru.push(h, s) {
                if old != h && inner.tracking {
                    inner.dirty.insert(old);
                }
            }
        }
    }

    /// Credentials currently known.
    pub fn len(&self) -> usize {
        self.lock().lru.as_ref().map_or(0, LruCache::len)
    }

    /// True when no credential is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_keyed_and_never_the_value() {
        let a = Hasher::new(b"0123456789abcdef-key-a");
        let b = Hasher::new(b"0123456789abcdef-key-b");
        assert_eq!(a.hash("tok"), a.hash("tok"));
        assert_ne!(a.hash("tok"), b.hash("tok"), "another key, another hash");
        assert_ne!(a.hash("tok"), a.hash("tok2"));
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), a.hash("userhook identity store"));
        assert!(!format!("{a:?}").contains("key-a"));
    }

    #[test]
    fn learns_expires_forgets_and_is_bounded() {
        let h = Hasher::new(b"k");
        let idx = SessionIndex::tracked(2);
        idx.learn(h.hash("t1"), "alice", 100);
        idx.learn(h.hash("t2"), "bob", 200);
        assert_eq!(idx.owner(&h.hash("t1"), 50).as_deref(), Some("alice"));
        assert_eq!(idx.owner(&h.hash("t1"), 100), None, "expired at its time");
        assert_eq!(idx.len(), 1, "the expired entry is gone");
        idx.learn(h.hash("t3"), "bob", 300);
        idx.learn(h.hash("t4"), "carol", 300); // evicts t2, the oldest
        assert_eq!(idx.owner(&h.hash("t2"), 0), None);
        assert_eq!(idx.len(), 2);
        idx.forget(&h.hash("t4"));
        assert_eq!(idx.owner(&h.hash("t4"), 0), None);
        idx.learn(h.hash("t5"), "bob", 300);
        assert_eq!(idx.forget_user("bob"), 2);
        assert!(idx.is_empty());
        let dirty = idx.take_dirty();
        assert_eq!(dirty.len(), 5, "t1..t5 all changed");
        assert!(dirty.iter().all(|(_, s)| s.is_none()));
        assert!(idx.take_dirty().is_empty());
    }

    #[test]
    fn purges_restores_and_resizes() {
        let h = Hasher::new(b"k");
        let idx = SessionIndex::new(3);
        idx.restore([
            (
                h.hash("a"),
                Session {
                    user: "u1".into(),
                    expires_at: 10,
                },
            ),
            (
                h.hash("b"),
                Session {
                    user: "u2".into(),
                    expires_at: 99,
                },
            ),
        ]);
        assert!(idx.take_dirty().is_empty());
        assert_eq!(idx.purge_expired(50), 1);
        assert_eq!(idx.owner(&h.hash("b"), 50).as_deref(), Some("u2"));
        idx.set_capacity(0);
        assert_eq!(idx.owner(&h.hash("b"), 50), None);
        idx.learn(h.hash("c"), "u3", 99);
        assert!(idx.is_empty(), "capacity 0 disables the index");
    }
}
