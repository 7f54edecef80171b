//! The collector's ordering: outcomes leave in completion order, or in input order through a
//! reorder buffer that releases each one as soon as every earlier seq has left. A failed job is
//! an outcome like any other, so a failure never stalls the order.

use std::collections::BTreeMap;

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
}
