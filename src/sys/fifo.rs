//! A first-in, first-out queue whose items are made where they are kept: the engine's ready
//! outcomes. It lives here, with the other code that needs `unsafe`, for two `set_len` calls.

use std::mem::MaybeUninit;

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
