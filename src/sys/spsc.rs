//! An unbounded queue from one thread to one other, with no lock and no read-modify-write per
//! item: the producer writes an item into a block and publishes its count with one store, the
//! consumer reads up to the count it sees. What is pushed is visible to the consumer at once,
//! whatever the producer does next (a thread worker stuck in its next job included), which a
//! thread-local buffer could not give and a lock per item made costly.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Items per block: a block is allocated (or reused) once per this many items.
const BLOCK: usize = 256;

struct Block<T> {
    slots: [UnsafeCell<MaybeUninit<T>>; BLOCK],
    /// The block after this one, set by the producer before it publishes an item there.
    next: AtomicPtr<Block<T>>,
}

impl<T> Block<T> {
    fn new() -> *mut Block<T> {
        Box::into_raw(Box::new(Block {
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; BLOCK],
            next: AtomicPtr::new(ptr::null_mut()),
        }))
    }
}

/// One side's place in the queue: its block and how many items it has passed in all.
struct Place<T> {
    block: *mut Block<T>,
    count: usize,
}

/// Keeps what one side writes off the other side's cache line.
#[repr(align(128))]
struct Own<T>(T);

struct Inner<T> {
    /// How many items have been pushed: the producer's one store per item.
    pushed: Own<AtomicUsize>,
    /// The producer's place; only the [`Sender`] (or the last owner, in `drop`) touches it.
    tail: Own<UnsafeCell<Place<T>>>,
    /// The consumer's place; only the [`Receiver`] (or the last owner) touches it.
    head: Own<UnsafeCell<Place<T>>>,
    /// One emptied block the consumer hands back for the producer's next.
    spare: AtomicPtr<Block<T>>,
}

// SAFETY: the places are each touched by one side only (Sender and Receiver are neither Clone
// nor Sync), items cross from one thread to the other, hence `T: Send`.
unsafe impl<T: Send> Send for Inner<T> {}
// SAFETY: as above; shared access goes through the atomics.
unsafe impl<T: Send> Sync for Inner<T> {}

/// The producing end.
pub(crate) struct Sender<T> {
    inner: Arc<Inner<T>>,
    _not_sync: PhantomData<*mut ()>,
}

/// The consuming end.
pub(crate) struct Receiver<T> {
    inner: Arc<Inner<T>>,
    /// How many items the consumer last saw pushed: it reads the producer's count again only
    /// once it has taken that many, so the line the producer writes per item is read once per
    /// run of items, not per item.
    seen: usize,
    _not_sync: PhantomData<*mut ()>,
}

// SAFETY: each end may move to another thread; it is used from one thread at a time (`&mut`
// or not `Sync`), and its items are `Send`.
unsafe impl<T: Send> Send for Sender<T> {}
// SAFETY: as for `Sender`.
unsafe impl<T: Send> Send for Receiver<T> {}

/// A new empty queue.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let first = Block::new();
    let inner = Arc::new(Inner {
        pushed: Own(AtomicUsize::new(0)),
        tail: Own(UnsafeCell::new(Place {
            block: first,
            count: 0,
        })),
        head: Own(UnsafeCell::new(Place {
            block: first,
            count: 0,
        })),
        spare: AtomicPtr::new(ptr::null_mut()),
    });
    (
        Sender {
            inner: inner.clone(),
            _not_sync: PhantomData,
        },
        Receiver {
            inner,
            seen: 0,
            _not_sync: PhantomData,
        },
    )
}

impl<T> Sender<T> {
    /// Adds `value`; the consumer can take it as soon as this returns.
    #[inline]
    pub(crate) fn push(&mut self, value: T) {
        let inner = &*self.inner;
        // SAFETY: only this Sender touches `tail`, and `&mut self` makes the access exclusive.
        let tail = unsafe { &mut *inner.tail.0.get() };
        let i = tail.count % BLOCK;
        if i == 0 && tail.count != 0 {
            let spare = inner.spare.swap(ptr::null_mut(), Ordering::Acquire);
            let next = if spare.is_null() {
                Block::new()
            } else {
                // SAFETY: the consumer handed the block back after reading every item in it;
                // nobody else holds it now.
                unsafe { (*spare).next.store(ptr::null_mut(), Ordering::Relaxed) };
                spare
            };
            // SAFETY: `tail.block` is live: the consumer frees a block only once it has
            // read an item past it, which this store has not yet published.
            unsafe { (*tail.block).next.store(next, Ordering::Release) };
            tail.block = next;
        }
        // SAFETY: slot `i` of the producer's block is past what was published, so the
        // consumer does not read it until the store of `pushed` below.
        unsafe { (*(*tail.block).slots[i].get()).write(value) };
        tail.count += 1;
        inner.pushed.0.store(tail.count, Ordering::Release);
    }
}

impl<T> Receiver<T> {
    /// Takes the next item, if one has been pushed.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        let inner = &*self.inner;
        // SAFETY: only this Receiver touches `head`, and `&mut self` makes the access exclusive.
        let head = unsafe { &mut *inner.head.0.get() };
        if head.count == self.seen {
            self.seen = inner.pushed.0.load(Ordering::Acquire);
            if head.count == self.seen {
                return None;
            }
        }
        let i = head.count % BLOCK;
        if i == 0 && head.count != 0 {
            let old = head.block;
            // SAFETY: the item at `head.count` is published and lies in the next block, which
            // the producer linked (Release) before publishing it (the Acquire load of
            // `pushed` that set `seen`).
            let next = unsafe { (*old).next.load(Ordering::Acquire) };
            head.block = next;
            // The producer left `old` before publishing into `next`: hand it back to be
            // reused, or free it if one is already waiting.
            let displaced = inner.spare.swap(old, Ordering::AcqRel);
            if !displaced.is_null() {
                // SAFETY: a block in `spare` belongs to nobody until taken out of it, and this
                // one was just taken out.
                drop(unsafe { Box::from_raw(displaced) });
            }
        }
        head.count += 1;
        // SAFETY: the item was written before `pushed` covered it (the Acquire load that set
        // `seen`), and it is read once: `head.count` has moved past it.
        Some(unsafe { (*(*head.block).slots[i].get()).assume_init_read() })
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        // Both ends are gone: what was pushed and not taken is dropped, and every block freed.
        let head = self.head.0.get_mut();
        let end = self.tail.0.get_mut().count;
        let (mut block, mut count) = (head.block, head.count);
        while count < end {
            let i = count % BLOCK;
            if i == 0 && count != 0 {
                // SAFETY: blocks up to the producer's are linked and owned by nobody else now.
                let next = unsafe { (*block).next.load(Ordering::Relaxed) };
                // SAFETY: every item of `block` has been read or dropped.
                drop(unsafe { Box::from_raw(block) });
                block = next;
            }
            // SAFETY: items from the consumer's place to the producer's are written and unread.
            unsafe { (*(*block).slots[i].get()).assume_init_drop() };
            count += 1;
        }
        // SAFETY: `block` is the last in use (the producer's); its items are dropped above.
        drop(unsafe { Box::from_raw(block) });
        let spare = *self.spare.get_mut();
        if !spare.is_null() {
            // SAFETY: a block in `spare` belongs to nobody else.
            drop(unsafe { Box::from_raw(spare) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_cross_threads_in_order_over_many_blocks() {
        let (mut tx, mut rx) = channel();
        let n = BLOCK * 10 + 7;
        let producer = std::thread::spawn(move || {
            for i in 0..n {
                tx.push(Box::new(i));
            }
        });
        let mut next = 0;
        while next < n {
            if let Some(v) = rx.pop() {
                assert_eq!(*v, next);
                next += 1;
            }
        }
        producer.join().unwrap();
        assert!(rx.pop().is_none());
    }

    #[test]
    fn dropping_both_ends_drops_what_was_not_taken() {
        let counted = Arc::new(());
        let (mut tx, mut rx) = channel();
        for _ in 0..BLOCK * 2 + 3 {
            tx.push(counted.clone());
        }
        for _ in 0..BLOCK + 1 {
            rx.pop();
        }
        drop(tx);
        drop(rx);
        assert_eq!(Arc::strong_count(&counted), 1);
    }
}
