//! The collector's ordering: outcomes leave in completion order, or in input order through a
//! reorder buffer that releases each one as soon as every earlier seq has left. A failed job is
//! an outcome like any other, so a failure never stalls the order.

use std::collections::BTreeMap;
use std::mem::MaybeUninit;

/// Holds outcomes that arrived ahead of their turn.
#[derive(Debug)]
pub(crate) struct Reorder<T> {
    next: u64,
    held: BTreeMap<u64, T>,
}

impl<T> Reorder<T> {
    /// A buffer whose first seq is `first`.
    pub(crate) fn new(first: u64) -> Self {
        Reorder {
            next: first,
            held: BTreeMap::new(),
        }
    }

    /// Takes the item for `seq`; returns every item now due, in order.
    pub(crate) fn push(&mut self, seq: u64, item: T, out: &mut impl Extend<T>) {
        self.held.insert(seq, item);
        while let Some(item) = self.held.remove(&self.next) {
            out.extend(Some(item));
            self.next += 1;
        }
    }

    /// How many items wait for an earlier one.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }
}

/// Items first in, first out: what [`VecDeque`](std::collections::VecDeque) does, plus
/// [`push_with`](Fifo::push_with), which makes an item where it is kept.
///
/// The engine's outcomes go through one: an outcome is a hundred-odd bytes, and one made on
/// the stack and then pushed was read back with wider loads than it was written with, a
/// store-forwarding stall per job. A vector taken from the front, and emptied when all of it
/// is taken, has a slot to write the item into before it is made.
#[derive(Debug)]
pub(crate) struct Fifo<T> {
    items: Vec<Option<T>>,
    /// How many items at the front have been taken (their slots hold `None`).
    taken: usize,
}

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo {
            items: Vec::new(),
            taken: 0,
        }
    }
}

impl<T> Fifo<T> {
    pub(crate) fn push_back(&mut self, item: T) {
        self.items.push(Some(item));
    }

    /// Appends the item `make` makes, made in its slot: room is made before it is.
    #[inline(always)]
    pub(crate) fn push_with(&mut self, make: impl FnOnce() -> T) {
        self.items.reserve(1);
        let len = self.items.len();
        let slot: &mut MaybeUninit<Option<T>> = &mut self.items.spare_capacity_mut()[0];
        slot.write(Some(make()));
        // SAFETY: `reserve` made room for the slot at `len`, and it was just written.
        unsafe { self.items.set_len(len + 1) };
    }

    #[inline(always)]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let item = self.items.get_mut(self.taken)?.take();
        self.taken += 1;
        if self.taken == self.items.len() {
            // SAFETY: every slot has been taken, so each holds `None`, which owns nothing: the
            // slots need no drop (`clear` would look at each in turn).
            unsafe { self.items.set_len(0) };
            self.taken = 0;
        }
        item
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.taken == self.items.len()
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.taken = 0;
    }
}

impl<T> Extend<T> for Fifo<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        self.items.extend(iter.into_iter().map(Some));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_input_order_as_soon_as_the_gap_closes() {
        let mut r = Reorder::new(1);
        let mut out = Vec::new();
        r.push(3, "c", &mut out);
        r.push(2, "b", &mut out);
        assert!(out.is_empty());
        assert_eq!(r.held(), 2);
        r.push(1, "a", &mut out);
        assert_eq!(out, ["a", "b", "c"]);
        r.push(4, "d", &mut out);
        assert_eq!(out, ["a", "b", "c", "d"]);
        assert_eq!(r.held(), 0);
    }

    #[test]
    fn a_fifo_gives_items_back_in_the_order_they_came() {
        let mut q = Fifo::default();
        q.push_back("a".to_string());
        q.push_with(|| "b".to_string());
        assert_eq!(q.pop_front().as_deref(), Some("a"));
        q.extend(["c".to_string()]);
        assert!(!q.is_empty());
        assert_eq!(q.pop_front().as_deref(), Some("b"));
        assert_eq!(q.pop_front().as_deref(), Some("c"));
        assert!(q.is_empty());
        assert_eq!(q.pop_front(), None);
        // Emptied, it starts again from its first slot.
        q.push_with(|| "d".to_string());
        q.push_back("e".to_string());
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.pop_front(), None);
    }
}
