//! The user cache: the last fields seen per user ID, to name users in deletes and logouts.
//!
//! Bounded (LRU, `user_cache.capacity`) so memory stays fixed whatever the traffic; guarded by
//! a mutex held only for a map operation. It holds only extracted fields, never credentials
//! beyond what a rule explicitly extracts, and never blocks the request path (only the
//! extractor uses it).

use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use lru::LruCache;

use crate::event::UserFields;

/// The key field: users are cached by `ID`.
const ID: &str = "ID";

/// Bounded map from user ID to the user's last known fields.
#[derive(Debug)]
pub struct UserCache {
    /// `None`: capacity 0, caching disabled.
    inner: Mutex<Option<LruCache<String, UserFields>>>,
}

impl UserCache {
    /// A cache of at most `capacity` users; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        UserCache {
            inner: Mutex::new(NonZeroUsize::new(capacity).map(LruCache::new)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<LruCache<String, UserFields>>> {
        // A panic elsewhere while holding the lock leaves a usable map: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resizes, dropping the least recently used users if it shrinks.
    pub fn set_capacity(&self, capacity: usize) {
        let mut guard = self.lock();
        match (guard.as_mut(), NonZeroUsize::new(capacity)) {
            (Some(lru), Some(n)) => lru.resize(n),
            (None, Some(n)) => *guard = Some(LruCache::new(n)),
            (_, None) => *guard = None,
        }
    }

    /// Merges `fields` into the user's entry (new values win); ignored without an `ID`.
    pub fn remember(&self, fields: &UserFields) {
        let Some(id) = fields.get(ID) else { return };
        let mut guard = self.lock();
        let Some(lru) = guard.as_mut() else { return };
        match lru.get_mut(id) {
            Some(known) => merge(known, fields),
            None => {
                lru.put(id.clone(), fields.clone());
            }
        }
    }

    /// Adds the cached fields the event lacks (the event's own values win).
    pub fn fill(&self, fields: &mut UserFields) {
        let Some(id) = fields.get(ID) else { return };
        let known = {
            let mut guard = self.lock();
            guard.as_mut().and_then(|lru| lru.get(id).cloned())
        };
        for (k, v) in known.into_iter().flatten() {
            fields.entry(k).or_insert(v);
        }
    }

    /// Drops the user (after a delete).
    pub fn forget(&self, fields: &UserFields) {
        let Some(id) = fields.get(ID) else { return };
        if let Some(lru) = self.lock().as_mut() {
            lru.pop(id);
        }
    }

    /// The cached fields of one user.
    pub fn get(&self, id: &str) -> Option<UserFields> {
        self.lock().as_mut().and_then(|lru| lru.peek(id).cloned())
    }

    /// Users currently cached.
    pub fn len(&self) -> usize {
        self.lock().as_ref().map_or(0, LruCache::len)
    }

    /// True when no user is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `known` takes `fields`' values. The same user logging in or being updated again mostly
/// repeats what is known: equal values are left alone and changed ones reuse their buffer,
/// so a repeat costs no allocation.
fn merge(known: &mut UserFields, fields: &UserFields) {
    for (k, v) in fields {
        match known.get_mut(k) {
            Some(old) if old == v => {}
            Some(old) => old.clone_from(v),
            None => {
                known.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(pairs: &[(&str, &str)]) -> UserFields {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fills_missing_fields_event_wins() {
        let c = UserCache::new(10);
        c.remember(&user(&[("ID", "1"), ("Email", "old@x"), ("Name", "jo")]));
        c.remember(&user(&[("ID", "1"), ("Email", "new@x")]));
        let mut ev = user(&[("ID", "1"), ("Name", "joanna")]);
        c.fill(&mut ev);
        assert_eq!(
            ev,
            user(&[("ID", "1"), ("Email", "new@x"), ("Name", "joanna")])
        );
        c.forget(&ev);
        assert_eq!(c.get("1"), None);
    }

    #[test]
    fn repeats_change_only_what_differs() {
        let c = UserCache::new(10);
        c.remember(&user(&[("ID", "1"), ("Email", "a@x"), ("Name", "jo")]));
        c.remember(&user(&[("ID", "1"), ("Email", "a@x"), ("Enabled", "true")]));
        c.remember(&user(&[("ID", "1"), ("Name", "joanna-long-name")]));
        c.remember(&user(&[("ID", "1"), ("Name", "j")]));
        assert_eq!(
            c.get("1"),
            Some(user(&[
                ("ID", "1"),
                ("Email", "a@x"),
                ("Enabled", "true"),
                ("Name", "j")
            ]))
        );
    }

    #[test]
    fn merging_an_equal_or_changed_value_reuses_its_buffer() {
        let mut known = user(&[("ID", "1"), ("Name", "joanna-long-name")]);
        let before = known["Name"].as_ptr();
        merge(
            &mut known,
            &user(&[("ID", "1"), ("Name", "joanna-long-name")]),
        );
        assert_eq!(
            known["Name"].as_ptr(),
            before,
            "an equal value is left alone"
        );
        merge(&mut known, &user(&[("Name", "jo")]));
        assert_eq!(known["Name"], "jo");
        assert_eq!(
            known["Name"].as_ptr(),
            before,
            "a shorter value fits the old buffer"
        );
    }

    #[test]
    fn without_id_nothing_happens() {
        let c = UserCache::new(10);
        c.remember(&user(&[("Name", "jo")]));
        assert!(c.is_empty());
        let mut ev = user(&[("Name", "jo")]);
        c.fill(&mut ev);
        assert_eq!(ev, user(&[("Name", "jo")]));
    }

    #[test]
    fn bounded_and_resizable() {
        let c = UserCache::new(2);
        for id in ["1", "2", "3"] {
            c.remember(&user(&[("ID", id)]));
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("1"), None);
        c.set_capacity(1);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get("3"), Some(user(&[("ID", "3")])));
        assert_eq!(c.get("2"), None);
        c.set_capacity(0);
        c.remember(&user(&[("ID", "4")]));
        assert_eq!(c.len(), 0);
        c.set_capacity(5);
        c.remember(&user(&[("ID", "4")]));
        assert_eq!(c.len(), 1);
    }
}
