//! The user cache: the last fields seen per user ID, to name users in every event.
//!
//! Bounded (LRU, `identity.max_users`) so memory stays fixed whatever the traffic; guarded by
//! a mutex held only for a map operation. Besides the ID it keeps two secondary keys, `Name`
//! and `Email`, so a call that names a user only by either (a failed login by username) gets
//! the ID. It holds only user attributes (`fields:`), never a rule's `details:` and never a
//! credential beyond what an operator's rule explicitly extracts, and never blocks the request
//! path (only the extractor uses it). Every change marks the user dirty so the identity store
//! can write it behind (or delete it) without a lock held across I/O.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use lru::LruCache;

use crate::event::UserFields;

/// The key field: users are cached by `ID`.
const ID: &str = "ID";
/// The secondary keys: a user named only by one of these is looked up by it.
const SECONDARY: [&str; 2] = [EMAIL, NAME];
const EMAIL: &str = "Email";
const NAME: &str = "Name";

#[derive(Debug, Default)]
struct Inner {
    /// `None`: capacity 0, caching disabled.
    lru: Option<LruCache<String, UserFields>>,
    /// `(field, value)` -> ID, for the [`SECONDARY`] fields of cached users.
    by_key: HashMap<(&'static str, String), String>,
    /// IDs changed (or dropped) since the store last took them.
    dirty: HashSet<String>,
    /// Changes are marked only when a store takes them (else the set would only grow).
    tracking: bool,
}

impl Inner {
    fn mark(&mut self, id: &str) {
        if self.tracking && !self.dirty.contains(id) {
            self.dirty.insert(id.to_owned());
        }
    }

    /// Drops `id`'s secondary keys (before its entry goes).
    fn unindex(&mut self, id: &str, fields: &UserFields) {
        for key in SECONDARY {
            if let Some(v) = fields.get(key) {
                let k = (key, v.clone());
                if self.by_key.get(&k).is_some_and(|owner| owner == id) {
                    self.by_key.remove(&k);
                }
            }
        }
    }

    /// Inserts or merges, evicting the least recently used user when full. A repeat of what
    /// is known costs no allocation (no mark is new, no key moves, no value changes).
    fn upsert(&mut self, id: &str, fields: &UserFields) {
        let Inner { lru, by_key, .. } = self;
        let Some(lru) = lru.as_mut() else { return };
        let evicted = match lru.get_mut(id) {
            // A repeat of what is known (a user seen again): nothing to re-index or merge.
            Some(known) if fields.iter().all(|(k, v)| known.get(k) == Some(v)) => None,
            Some(known) => {
                for key in SECONDARY {
                    let Some(new) = fields.get(key) else { continue };
                    match known.get(key) {
                        Some(old) if old == new => continue,
                        Some(old) => {
                            let k = (key, old.clone());
                            if by_key.get(&k).is_some_and(|owner| owner == id) {
                                by_key.remove(&k);
                            }
                        }
                        None => {}
                    }
                    by_key.insert((key, new.clone()), id.to_owned());
                }
                merge(known, fields);
                None
            }
            None => {
                let evicted = lru.push(id.to_owned(), fields.clone());
                for key in SECONDARY {
                    if let Some(v) = fields.get(key) {
                        by_key.insert((key, v.clone()), id.to_owned());
                    }
                }
                evicted.filter(|(k, _)| k != id)
            }
        };
        if let Some((old, old_fields)) = evicted {
            self.unindex(&old, &old_fields);
            self.mark(&old);
        }
        self.mark(id);
    }
}

/// Bounded map from user ID to the user's last known fields.
#[derive(Debug)]
pub struct UserCache {
    inner: Mutex<Inner>,
}

impl UserCache {
    /// A cache of at most `capacity` users; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        UserCache {
            inner: Mutex::new(Inner {
                lru: NonZeroUsize::new(capacity).map(LruCache::new),
                ..Inner::default()
            }),
        }
    }

    /// A cache whose changes are marked for a store to take ([`UserCache::take_dirty`]).
    pub fn tracked(capacity: usize) -> Self {
        let cache = UserCache::new(capacity);
        cache.lock().tracking = true;
        cache
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves a usable map: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resizes, dropping the least recently used users if it shrinks.
    pub fn set_capacity(&self, capacity: usize) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        match (inner.lru.as_mut(), NonZeroUsize::new(capacity)) {
            (Some(lru), Some(n)) => {
                let mut dropped = Vec::new();
                while lru.len() > n.get() {
                    match lru.pop_lru() {
                        Some(e) => dropped.push(e),
                        None => break,
                    }
                }
                lru.resize(n);
                for (id, fields) in dropped {
                    inner.unindex(&id, &fields);
                    inner.mark(&id);
                }
            }
            (None, Some(n)) => inner.lru = Some(LruCache::new(n)),
            (_, None) => {
                if let Some(lru) = inner.lru.take() {
                    for (id, _) in lru {
                        inner.mark(&id);
                    }
                }
                inner.by_key.clear();
            }
        }
    }

    /// Merges `fields` into the user's entry (new values win); ignored without an `ID`.
    pub fn remember(&self, fields: &UserFields) {
        let Some(id) = fields.get(ID) else { return };
        self.lock().upsert(id, fields);
    }

    /// Adds the cached fields the event lacks (the event's own values win). Without an `ID`,
    /// the user is looked up by `Email`, then `Name`; found, the event gets the ID too, unless
    /// found by Name with another Email (a new `mallory@x` named `alice` is not the cached
    /// alice of `alice@x`: names are often unique per organization or domain only).
    pub fn fill(&self, fields: &mut UserFields) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if !fields.contains_key(ID) {
            let Inner { lru, by_key, .. } = &mut *inner;
            let found = SECONDARY.iter().find_map(|key| {
                let v = fields.get(*key)?;
                by_key.get(&(*key, v.clone())).map(|id| (*key, id.clone()))
            });
            // Found by Name, the Email must agree (found by Email, a new Name is a rename).
            let contradicted = found.as_ref().is_some_and(|(by, id)| {
                *by == NAME
                    && lru
                        .as_ref()
                        .and_then(|lru| lru.peek(id.as_str()))
                        .and_then(|known| known.get(EMAIL))
                        .zip(fields.get(EMAIL))
                        .is_some_and(|(known, event)| known != event)
            });
            let found = found.filter(|_| !contradicted).map(|(_, id)| id);
            match found {
                Some(id) => {
                    fields.insert(ID.to_owned(), id);
                }
                None => return,
            }
        }
        let Some(lru) = inner.lru.as_mut() else {
            return;
        };
        let Some(known) = fields.get(ID).and_then(|id| lru.get(id.as_str())) else {
            return;
        };
        // Only what the event lacks is copied: an event that names everything costs nothing.
        for (k, v) in known {
            if !fields.contains_key(k) {
                fields.insert(k.clone(), v.clone());
            }
        }
    }

    /// Drops the user (after a delete).
    pub fn forget(&self, fields: &UserFields) {
        let Some(id) = fields.get(ID) else { return };
        self.forget_id(id);
    }

    /// Drops the user with this ID.
    pub fn forget_id(&self, id: &str) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let Some(fields) = inner.lru.as_mut().and_then(|lru| lru.pop(id)) {
            inner.unindex(id, &fields);
        }
        inner.mark(id);
    }

    /// The cached fields of one user.
    pub fn get(&self, id: &str) -> Option<UserFields> {
        self.lock()
            .lru
            .as_mut()
            .and_then(|lru| lru.peek(id).cloned())
    }

    /// True when changes wait for the store.
    pub fn has_dirty(&self) -> bool {
        !self.lock().dirty.is_empty()
    }

    /// The changes since the last call: each changed ID with its fields now (`None`: gone).
    pub fn take_dirty(&self) -> Vec<(String, Option<UserFields>)> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let dirty = std::mem::take(&mut inner.dirty);
        dirty
            .into_iter()
            .map(|id| {
                let now = inner.lru.as_ref().and_then(|lru| lru.peek(&id).cloned());
                (id, now)
            })
            .collect()
    }

    /// Marks changes as not yet written again (a failed write is retried on the next one).
    pub fn mark_dirty(&self, ids: impl IntoIterator<Item = String>) {
        let mut guard = self.lock();
        if guard.tracking {
            guard.dirty.extend(ids);
        }
    }

    /// Every cached user, least recently used first: the order [`UserCache::restore`] takes.
    pub fn snapshot(&self) -> Vec<(String, UserFields)> {
        let guard = self.lock();
        guard
            .lru
            .as_ref()
            .map(|lru| {
                lru.iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Loads users read back from the store, oldest first, without marking them dirty.
    pub fn restore(&self, users: impl IntoIterator<Item = (String, UserFields)>) {
        let mut guard = self.lock();
        for (id, fields) in users {
            guard.upsert(&id, &fields);
            guard.dirty.remove(&id);
        }
    }

    /// Users currently cached.
    pub fn len(&self) -> usize {
        self.lock().lru.as_ref().map_or(0, LruCache::len)
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
    fn a_name_with_another_email_is_another_user() {
        let c = UserCache::new(10);
        c.remember(&user(&[
            ("ID", "1"),
            ("Email", "alice@a"),
            ("Name", "alice"),
        ]));
        let mut other = user(&[("Name", "alice"), ("Email", "mallory@b")]);
        c.fill(&mut other);
        assert_eq!(other, user(&[("Name", "alice"), ("Email", "mallory@b")]));
        let mut bare = user(&[("Name", "alice")]);
        c.fill(&mut bare);
        assert_eq!(bare["ID"], "1", "a bare name still finds her");
        let mut renamed = user(&[("Name", "ally"), ("Email", "alice@a")]);
        c.fill(&mut renamed);
        assert_eq!(renamed["ID"], "1", "found by email, a new name is a rename");
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
    fn secondary_keys_find_the_id() {
        let c = UserCache::new(10);
        c.remember(&user(&[("ID", "1"), ("Email", "a@x"), ("Name", "alice")]));
        let mut by_name = user(&[("Name", "alice")]);
        c.fill(&mut by_name);
        assert_eq!(
            by_name,
            user(&[("ID", "1"), ("Email", "a@x"), ("Name", "alice")])
        );
        let mut by_email = user(&[("Email", "a@x")]);
        c.fill(&mut by_email);
        assert_eq!(by_email.get("ID").map(String::as_str), Some("1"));
        // A rename moves the key: the old name no longer finds the user.
        c.remember(&user(&[("ID", "1"), ("Name", "alicia")]));
        let mut old = user(&[("Name", "alice")]);
        c.fill(&mut old);
        assert_eq!(old, user(&[("Name", "alice")]));
        let mut new = user(&[("Name", "alicia")]);
        c.fill(&mut new);
        assert_eq!(new.get("ID").map(String::as_str), Some("1"));
        // Forgotten or evicted users take their keys with them.
        c.forget_id("1");
        let mut gone = user(&[("Email", "a@x")]);
        c.fill(&mut gone);
        assert_eq!(gone, user(&[("Email", "a@x")]));
        let small = UserCache::new(1);
        small.remember(&user(&[("ID", "1"), ("Name", "a")]));
        small.remember(&user(&[("ID", "2"), ("Name", "b")]));
        let mut evicted = user(&[("Name", "a")]);
        small.fill(&mut evicted);
        assert_eq!(evicted, user(&[("Name", "a")]));
    }

    #[test]
    fn a_repeat_keeps_the_keys_and_still_counts_as_recent() {
        let c = UserCache::tracked(2);
        let alice = user(&[("ID", "1"), ("Email", "a@x"), ("Name", "alice")]);
        c.remember(&alice);
        c.remember(&user(&[("ID", "2")]));
        let _ = c.take_dirty();
        // Seen again unchanged: marked (its recency is what the store restores), and the
        // least recently used is now 2, not 1.
        c.remember(&alice);
        assert_eq!(c.take_dirty(), vec![("1".to_owned(), Some(alice.clone()))]);
        c.remember(&user(&[("ID", "3")]));
        assert_eq!(c.get("1"), Some(alice));
        assert_eq!(c.get("2"), None, "the older user went");
        let mut by_name = user(&[("Name", "alice")]);
        c.fill(&mut by_name);
        assert_eq!(by_name.get("ID").map(String::as_str), Some("1"));
    }

    #[test]
    fn changes_are_tracked_for_the_store() {
        let untracked = UserCache::new(2);
        untracked.remember(&user(&[("ID", "1")]));
        assert!(
            untracked.take_dirty().is_empty(),
            "without a store nothing piles up"
        );
        let c = UserCache::tracked(2);
        c.restore([("0".to_owned(), user(&[("ID", "0")]))]);
        assert!(c.take_dirty().is_empty(), "restored users are not dirty");
        c.remember(&user(&[("ID", "1"), ("Name", "a")]));
        c.remember(&user(&[("ID", "2")])); // evicts 0
        c.forget_id("1");
        let mut dirty = c.take_dirty();
        dirty.sort();
        assert_eq!(
            dirty,
            vec![
                ("0".to_owned(), None),
                ("1".to_owned(), None),
                ("2".to_owned(), Some(user(&[("ID", "2")]))),
            ]
        );
        assert!(c.take_dirty().is_empty());
        c.remember(&user(&[("ID", "3")]));
        assert_eq!(
            c.snapshot().into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
            vec!["2".to_owned(), "3".to_owned()],
            "oldest first"
        );
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
