//! The live feed's ring: the last [`RING_ITEMS`] items (at most [`RING_BYTES`] of frames), in
//! slots that are reused in place.
//!
//! Every detected event passes through here, watched or not, so keeping one must cost next
//! to nothing: a new event is packed straight into the slot of the one it replaces
//! ([`KeptEvent::repack`]). Once the ring has grown, nothing is allocated, moved or freed for
//! an event that fits in its slot while nobody listens, and the memory written is the slot
//! the oldest event had, in order. A reader turns a slot into a shared item once
//! ([`Ring::share`]); later readers share it and its rendered frame. The ring knows nothing of
//! the feed's item type (`T`), so it depends only on [`KeptEvent`].

use std::sync::Arc;

use super::kept::KeptEvent;
use crate::event::UserEvent;

/// Items the ring keeps for resuming (`Last-Event-ID`) and replays (`?replay=N`).
pub const RING_ITEMS: usize = 1000;

/// Bytes the ring keeps at most, counted as each item's estimated frame length (for a
/// detected event: its packed values, in which `ID`, `Email` and `Name` are whole even where
/// the frame cuts them); the oldest items go first.
pub const RING_BYTES: usize = 4 << 20;

/// One item the ring keeps; `T` is what readers share (the feed's item).
#[derive(Debug)]
pub(super) struct Entry<T> {
    /// The feed's number for it.
    pub(super) n: u64,
    /// What it counts against [`RING_BYTES`]: its frame's estimated length.
    pub(super) cost: usize,
    pub(super) kept: Kept<T>,
}

/// How the ring keeps an item.
// The packed event is large on purpose: it lives in the slot instead of an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Kept<T> {
    /// A detected event, packed; made an item only for a reader.
    Detected(KeptEvent),
    /// An item as readers get it: a delivery outcome, or a detected event a reader asked for.
    Shared(Arc<T>),
    /// A slot whose item was dropped for the byte limit, waiting to be reused.
    Gone,
}

/// The kept items, oldest first, and the numbering of new ones.
#[derive(Debug)]
pub(super) struct Ring<T> {
    /// The next item's number.
    pub(super) next: u64,
    /// Frame bytes of the kept items (their `cost`s).
    pub(super) bytes: usize,
    /// Grows to [`RING_ITEMS`] and is then used as a circle.
    slots: Vec<Entry<T>>,
    /// The oldest kept item's slot.
    head: usize,
    /// How many items are kept.
    len: usize,
}

impl<T> Ring<T> {
    /// An empty ring numbering from 1.
    pub(super) fn new() -> Ring<T> {
        Ring {
            next: 1,
            bytes: 0,
            // Never reallocated, so growing never copies the kept items.
            slots: Vec::with_capacity(RING_ITEMS),
            head: 0,
            len: 0,
        }
    }

    /// How many items are kept.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The `i`-th oldest kept item.
    pub(super) fn get(&self, i: usize) -> Option<&Entry<T>> {
        if i >= self.len {
            return None;
        }
        self.slots.get((self.head + i) % self.slots.len())
    }

    /// The kept items, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Entry<T>> {
        (0..self.len).filter_map(|i| self.get(i))
    }

    /// Numbers a new item.
    pub(super) fn take_n(&mut self) -> u64 {
        let n = self.next;
        self.next += 1;
        n
    }

    /// Keeps detected event `n`, packed in place of the oldest when the ring is full.
    pub(super) fn keep_detected(&mut self, n: u64, event: &UserEvent, targets: &[String]) {
        let at = self.claim();
        let entry = &mut self.slots[at];
        match &mut entry.kept {
            Kept::Detected(kept) => kept.repack(event, targets),
            other => *other = Kept::Detected(KeptEvent::pack(event, targets)),
        }
        let cost = match &entry.kept {
            Kept::Detected(kept) => kept.estimated_frame_len(),
            _ => 0,
        };
        entry.n = n;
        entry.cost = cost;
        self.bytes += cost;
        self.trim();
    }

    /// The `i`-th oldest item as readers get it: a packed event becomes an item (`make`) the
    /// first time, and the slot keeps that item for the next reader.
    pub(super) fn share(
        &mut self,
        i: usize,
        make: impl FnOnce(u64, KeptEvent) -> T,
    ) -> Option<Arc<T>> {
        if i >= self.len {
            return None;
        }
        let at = (self.head + i) % self.slots.len();
        let entry = self.slots.get_mut(at)?;
        if matches!(entry.kept, Kept::Detected(_)) {
            if let Kept::Detected(kept) = std::mem::replace(&mut entry.kept, Kept::Gone) {
                entry.kept = Kept::Shared(Arc::new(make(entry.n, kept)));
            }
        }
        match &entry.kept {
            Kept::Shared(item) => Some(item.clone()),
            _ => None,
        }
    }

    /// Keeps an item readers share (a delivery outcome).
    pub(super) fn keep_shared(&mut self, n: u64, cost: usize, item: Arc<T>) {
        let at = self.claim();
        self.slots[at] = Entry {
            n,
            cost,
            kept: Kept::Shared(item),
        };
        self.bytes += cost;
        self.trim();
    }

    /// The slot for a new newest item: a new one while the ring grows, else the one after
    /// the newest (the oldest's, dropped here, when all are in use).
    fn claim(&mut self) -> usize {
        if self.len == self.slots.len() && self.slots.len() < RING_ITEMS {
            // Growing: the circle must start at slot 0 for the new slot to follow the newest.
            self.slots.rotate_left(self.head);
            self.head = 0;
            self.slots.push(Entry {
                n: 0,
                cost: 0,
                kept: Kept::Gone,
            });
            self.len += 1;
            return self.slots.len() - 1;
        }
        if self.len == self.slots.len() {
            // Full: the newest takes the oldest's slot.
            let at = self.head;
            self.bytes -= self.slots[at].cost;
            self.head = (self.head + 1) % self.slots.len();
            return at;
        }
        let at = (self.head + self.len) % self.slots.len();
        self.len += 1;
        at
    }

    /// Drops the oldest items while the frames are over [`RING_BYTES`] (never the newest).
    fn trim(&mut self) {
        while self.bytes > RING_BYTES && self.len > 1 {
            let oldest = &mut self.slots[self.head];
            self.bytes -= oldest.cost;
            oldest.cost = 0;
            oldest.kept = Kept::Gone;
            self.head = (self.head + 1) % self.slots.len();
            self.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, RequestInfo, UserFields};

    /// A detected event whose frame is about `size` bytes (its `ID`, kept whole).
    fn event(id: usize, size: usize) -> UserEvent {
        let mut user = UserFields::new();
        user.insert("ID".into(), format!("{id}-{}", "x".repeat(size)));
        UserEvent::new(
            id as u64,
            Action::Login,
            user,
            RequestInfo::default(),
            false,
        )
    }

    /// What must hold after every change: the newest numbers, contiguous, oldest first;
    /// the byte count adds up; both limits hold (the newest is kept whatever its size).
    fn check(ring: &Ring<()>) {
        let ns: Vec<u64> = ring.iter().map(|e| e.n).collect();
        assert_eq!(ns.len(), ring.len());
        let newest = ring.next - 1;
        let want: Vec<u64> = (newest + 1 - ns.len() as u64..=newest).collect();
        assert_eq!(ns, want);
        assert_eq!(ring.bytes, ring.iter().map(|e| e.cost).sum::<usize>());
        assert!(ring.len() <= RING_ITEMS);
        assert!(
            ring.bytes <= RING_BYTES || ring.len() == 1,
            "{}",
            ring.bytes
        );
        assert!(ring.iter().all(|e| !matches!(e.kept, Kept::Gone)));
        for e in ring.iter() {
            if let Kept::Detected(kept) = &e.kept {
                let id = kept.user_values().next().unwrap_or_default();
                assert!(
                    id.starts_with(&format!("{}-", e.n)),
                    "{} holds {id:.20}",
                    e.n
                );
            }
        }
    }

    fn keep(ring: &mut Ring<()>, size: usize) {
        let n = ring.take_n();
        ring.keep_detected(n, &event(n as usize, size), &[]);
        check(ring);
    }

    #[test]
    fn keeps_the_newest_items_in_order_through_growth_wrap_and_byte_trims() {
        let mut ring = Ring::new();
        // Fill and wrap by count.
        for _ in 0..RING_ITEMS + 250 {
            keep(&mut ring, 10);
        }
        assert_eq!(ring.len(), RING_ITEMS);
        // Large events: the byte limit drops many small ones at once, then slots are reused.
        for _ in 0..30 {
            keep(&mut ring, 300_000);
        }
        assert!(ring.len() < 20, "{}", ring.len());
        // Small again: the freed slots fill up to the count limit once more.
        for _ in 0..RING_ITEMS * 2 {
            keep(&mut ring, 10);
        }
        assert_eq!(ring.len(), RING_ITEMS);
        // One larger than the limit is still kept, alone.
        keep(&mut ring, RING_BYTES + 1);
        assert_eq!(ring.len(), 1);
        keep(&mut ring, 10);
        assert_eq!(ring.len(), 1, "the huge one goes when the next arrives");
    }

    #[test]
    fn grows_again_after_byte_trims_before_it_was_full() {
        let mut ring = Ring::new();
        for _ in 0..100 {
            keep(&mut ring, 10);
        }
        keep(&mut ring, RING_BYTES);
        assert_eq!(ring.len(), 1);
        // The circle restarts from its oldest item when it must grow again.
        for _ in 0..RING_ITEMS + 5 {
            keep(&mut ring, 10);
        }
        assert_eq!(ring.len(), RING_ITEMS);
    }

    #[test]
    fn shared_slots_are_reused_like_packed_ones_and_counted() {
        // Readers share the number the slot held when it was first shared.
        let mut ring: Ring<u64> = Ring::new();
        let make = |n: u64, _: KeptEvent| n;
        for round in 0..(3 * RING_ITEMS) {
            let n = ring.take_n();
            if round % 3 == 0 {
                // A delivery outcome, costed as the caller says.
                ring.keep_shared(n, 700, Arc::new(n));
            } else {
                ring.keep_detected(n, &event(n as usize, 10), &[]);
            }
            if round % 5 == 0 {
                // A reader arrives: the newest and the oldest become shared.
                let newest = ring.len() - 1;
                assert_eq!(ring.share(newest, make).as_deref(), Some(&n));
                let oldest = ring.get(0).map(|e| e.n);
                assert_eq!(ring.share(0, make).as_deref().copied(), oldest);
            }
            assert!(ring.share(ring.len(), make).is_none());
            let ns: Vec<u64> = ring.iter().map(|e| e.n).collect();
            assert_eq!(*ns.last().unwrap(), n);
            assert!(ns.windows(2).all(|w| w[1] == w[0] + 1));
            assert_eq!(ring.bytes, ring.iter().map(|e| e.cost).sum::<usize>());
            for (i, e) in ring.iter().enumerate() {
                match &e.kept {
                    Kept::Shared(shared) => assert_eq!(**shared, e.n, "slot {i}"),
                    Kept::Detected(kept) => {
                        let id = kept.user_values().next().unwrap_or_default();
                        assert!(id.starts_with(&format!("{}-", e.n)));
                    }
                    Kept::Gone => panic!("slot {i} is kept but gone"),
                }
            }
        }
        assert_eq!(ring.len(), RING_ITEMS);
        // Every slot shared, then all reused by packed events: the readers' items go.
        for i in 0..ring.len() {
            assert!(ring.share(i, make).is_some());
        }
        for _ in 0..RING_ITEMS {
            let n = ring.take_n();
            ring.keep_detected(n, &event(n as usize, 10), &[]);
        }
        assert!(ring.iter().all(|e| matches!(e.kept, Kept::Detected(_))));
        assert_eq!(ring.bytes, ring.iter().map(|e| e.cost).sum::<usize>());
    }
}
