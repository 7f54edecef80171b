//! An unbounded queue from one thread to one other, with no lock and no read-modify-write per
//! item: the producer writes an item into a block and publishes its count with one store, the
//! consumer reads up to the count it sees. What is pushed is visible to the consumer at once,
//! whatever the producer does next (a thread worker stuck in its next job included), which a
//! thread-local buffer could not give and a lock per item made costly.
//!
//! Built with `--cfg loom`, the same code runs on loom's atomics, cells and threads, and the
//! tests at the bottom check every interleaving of a push, a pop, a block boundary and the
//! ends' drops (see `.ci/run`).

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;

#[cfg(all(loom, test))]
use loom::{
    cell::UnsafeCell,
    sync::atomic::{AtomicPtr, AtomicUsize, Ordering},
    sync::{Arc, Mutex},
};
#[cfg(not(all(loom, test)))]
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
#[cfg(not(all(loom, test)))]
use std::sync::{Arc, Mutex};

/// Items per block: a block is allocated (or reused) once per this many items. Under loom,
/// two, so that a few items cross blocks.
const BLOCK: usize = if cfg!(all(loom, test)) { 2 } else { 256 };
/// How many items ahead each side asks for the cache lines it will use: the other side's core
/// touched them last, and fetching one when it is needed stalls the side that needs it.
const AHEAD: usize = 8;

/// `std::cell::UnsafeCell` behind loom's interface: an access is a pointer handed to a closure
/// (`with`) or held by a guard (`get_mut`), which loom tracks and std compiles away.
#[cfg(not(all(loom, test)))]
struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(all(loom, test)))]
impl<T> UnsafeCell<T> {
    const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    fn get_mut(&self) -> MutPtr<T> {
        MutPtr(self.0.get())
    }
}

/// A pointer into an [`UnsafeCell`], valid while the cell is.
#[cfg(not(all(loom, test)))]
struct MutPtr<T>(*mut T);

#[cfg(not(all(loom, test)))]
impl<T> MutPtr<T> {
    /// # Safety
    /// No other reference to the cell's value may be live while this one is.
    // loom's `MutPtr::deref` has this shape, which the code is written against.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    unsafe fn deref(&self) -> &mut T {
        // SAFETY: the caller's promise.
        unsafe { &mut *self.0 }
    }

    #[inline]
    fn with<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0)
    }
}

/// Asks for the cache lines of `item` ahead of use, `write` if to be written.
#[inline(always)]
fn prefetch<T>(item: *const T, write: bool) {
    #[cfg(all(target_arch = "x86_64", not(all(loom, test))))]
    {
        use std::arch::x86_64::{_MM_HINT_ET0, _MM_HINT_T0, _mm_prefetch};
        let first = item as *const i8;
        for line in (0..size_of::<T>()).step_by(64) {
            let at = first.wrapping_add(line);
            // SAFETY: SSE is part of x86_64; a prefetch reads and writes nothing, and any
            // address may be named.
            unsafe {
                if write {
                    _mm_prefetch::<_MM_HINT_ET0>(at);
                } else {
                    _mm_prefetch::<_MM_HINT_T0>(at);
                }
            }
        }
    }
    #[cfg(any(not(target_arch = "x86_64"), all(loom, test)))]
    let _ = (item, write);
}

struct Block<T> {
    slots: [UnsafeCell<MaybeUninit<T>>; BLOCK],
    /// The block after this one, set by the producer before it publishes an item there.
    next: AtomicPtr<Block<T>>,
}

impl<T> Block<T> {
    fn new() -> *mut Block<T> {
        Box::into_raw(Box::new(Block {
            #[cfg(not(all(loom, test)))]
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; BLOCK],
            #[cfg(all(loom, test))]
            slots: std::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
            next: AtomicPtr::new(ptr::null_mut()),
        }))
    }
}

/// One side's place in the queue: its block and how many items it has passed in all.
struct Place<T> {
    block: *mut Block<T>,
    count: usize,
    /// The producer's count when it last moved to a new block: a `make` that panicked after
    /// the move leaves the count where it was, and the next push must fill that block's first
    /// slot, not link another block after it (the consumer follows the first link).
    moved_at: usize,
}

/// An emptied block waiting to be reused.
struct Spare<T>(*mut Block<T>);

// SAFETY: a spare block holds no item and belongs to whoever takes it out of the list.
unsafe impl<T> Send for Spare<T> {}

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
    /// Emptied blocks the consumer hands back for the producer to reuse: a block freed and
    /// allocated anew costs page faults, which cost more than the items that passed through it.
    spare: Mutex<Vec<Spare<T>>>,
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
            moved_at: 0,
        })),
        head: Own(UnsafeCell::new(Place {
            block: first,
            count: 0,
            moved_at: 0,
        })),
        spare: Mutex::new(Vec::new()),
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
    #[inline(always)]
    pub(crate) fn push(&mut self, value: T) {
        self.push_with(|| value);
    }

    /// Adds the value `make` makes, made in its slot: the slot is found (and a new block
    /// linked, a call) first. A value of a hundred-odd bytes made before a call is made on
    /// the stack and copied, and read back with wider loads than it was written with.
    ///
    /// If `make` panics, nothing is added and the queue stays whole: the slot is published
    /// only after `make` returns, and a block linked for it is the one the next push fills.
    #[inline(always)]
    pub(crate) fn push_with(&mut self, make: impl FnOnce() -> T) {
        let inner = &*self.inner;
        let tail = inner.tail.0.get_mut();
        // SAFETY: only this Sender touches `tail`, and `&mut self` makes the access exclusive.
        let tail = unsafe { tail.deref() };
        let i = tail.count % BLOCK;
        if i == 0 && tail.count != tail.moved_at {
            Self::next_block(inner, tail);
        }
        // SAFETY: the block is live (the consumer frees none it has not passed, and it has
        // not passed this one); slot `i` is past what was published, so the consumer does not
        // read it until the store of `pushed` below.
        let slot = unsafe { &(*tail.block).slots[i] };
        // SAFETY: as above: nobody else reaches the slot now.
        slot.get_mut().with(|p| unsafe { (*p).write(make()) });
        if i + AHEAD < BLOCK {
            // SAFETY: the slot is in the same block (a hint only: nothing is read or written).
            prefetch(unsafe { &(*tail.block).slots[i + AHEAD] }, true);
        }
        tail.count += 1;
        inner.pushed.0.store(tail.count, Ordering::Release);
    }

    /// Moves the producer on to a new block, linked after its full one.
    #[cold]
    #[inline(never)]
    fn next_block(inner: &Inner<T>, tail: &mut Place<T>) {
        let spare = inner.spare.lock().expect("spare blocks").pop();
        let next = match spare {
            None => Block::new(),
            Some(Spare(block)) => {
                // SAFETY: the consumer handed the block back after reading every item in it;
                // nobody else holds it now.
                unsafe { (*block).next.store(ptr::null_mut(), Ordering::Relaxed) };
                block
            }
        };
        // SAFETY: `tail.block` is live: the consumer frees a block only once it has read an
        // item past it, which the caller has not yet published.
        unsafe { (*tail.block).next.store(next, Ordering::Release) };
        tail.block = next;
        tail.moved_at = tail.count;
    }
}

impl<T> Receiver<T> {
    /// Takes the next item, if one has been pushed.
    ///
    /// Inlined always: the coordinator takes each thread job's result through it, and the
    /// optimiser's own choice flips with unrelated code elsewhere in the caller; called out of
    /// line, it cost 20-odd instructions a job more (callgrind noop.thread: 162.4M against
    /// 157.3M).
    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<T> {
        let inner = &*self.inner;
        let head = inner.head.0.get_mut();
        // SAFETY: only this Receiver touches `head`, and `&mut self` makes the access exclusive.
        let head = unsafe { head.deref() };
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
            // reused.
            inner.spare.lock().expect("spare blocks").push(Spare(old));
        }
        head.count += 1;
        if i + AHEAD < BLOCK && head.count + AHEAD <= self.seen {
            // SAFETY: the slot is in the same block, and its item already written (a hint
            // only: nothing is read).
            prefetch(unsafe { &(*head.block).slots[i + AHEAD] }, false);
        }
        // SAFETY: the block is live (the consumer's own); the item was written before
        // `pushed` covered it (the Acquire load that set `seen`), and it is read once:
        // `head.count` has moved past it.
        let slot = unsafe { &(*head.block).slots[i] };
        // SAFETY: as above.
        Some(slot.get_mut().with(|p| unsafe { (*p).assume_init_read() }))
    }

    /// How many items are waiting to be taken now.
    pub(crate) fn waiting(&mut self) -> usize {
        self.seen = self.inner.pushed.0.load(Ordering::Acquire);
        let head = self.inner.head.0.get_mut();
        // SAFETY: only this Receiver touches `head`, and `&mut self` makes the access exclusive.
        self.seen - unsafe { head.deref() }.count
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        // Both ends are gone: what was pushed and not taken is dropped, and every block freed.
        let (head, tail) = (self.head.0.get_mut(), self.tail.0.get_mut());
        // SAFETY: `&mut self`: nobody else holds the places.
        let (head, end) = unsafe { (head.deref(), tail.deref().count) };
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
            // SAFETY: the block is live, and items from the consumer's place to the producer's
            // are written and unread.
            let slot = unsafe { &(*block).slots[i] };
            // SAFETY: as above.
            slot.get_mut().with(|p| unsafe { (*p).assume_init_drop() });
            count += 1;
        }
        // SAFETY: `block` is the last in use (the producer's); its items are dropped above.
        drop(unsafe { Box::from_raw(block) });
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        for Spare(block) in spare.drain(..) {
            // SAFETY: a spare block belongs to nobody else, and holds no item.
            drop(unsafe { Box::from_raw(block) });
        }
    }
}

#[cfg(all(test, not(loom)))]
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
        assert_eq!(rx.waiting(), 0);
    }

    #[test]
    fn a_panicking_make_adds_nothing_and_leaves_the_queue_whole() {
        let (mut tx, mut rx) = channel::<u64>();
        let mut expected = Vec::new();
        // Panics at a block's first slot (after a new block is linked), in its middle, and
        // twice in a row at the same boundary.
        let panics_at = [BLOCK, BLOCK, BLOCK + 5, 3 * BLOCK];
        let mut n = 0u64;
        while expected.len() < 4 * BLOCK {
            let at = expected.len();
            let times = panics_at.iter().filter(|&&p| p == at).count();
            for _ in 0..times {
                let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    tx.push_with(|| panic!("make panicked"))
                }));
                assert!(caught.is_err());
            }
            n += 1;
            tx.push(n);
            expected.push(n);
        }
        drop(tx);
        let got: Vec<u64> = std::iter::from_fn(|| rx.pop()).collect();
        assert_eq!(got, expected);
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

/// Every interleaving of the two sides, on loom's model: `RUSTFLAGS="--cfg loom" cargo test
/// --lib loom` (a block holds two items there).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// Runs `f` on every interleaving with at most three preemptions, where loom's own
    /// experience puts nearly all bugs; unbounded, the five-item case takes minutes.
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(f);
    }

    /// Takes `n` items, yielding to the producer while none is there.
    fn take(rx: &mut Receiver<usize>, n: usize) -> Vec<usize> {
        let mut got = Vec::new();
        while got.len() < n {
            match rx.pop() {
                Some(v) => got.push(v),
                None => loom::thread::yield_now(),
            }
        }
        got
    }

    #[test]
    fn loom_items_cross_in_order_over_a_block_boundary_and_a_reused_block() {
        model(|| {
            let (mut tx, mut rx) = channel();
            let producer = loom::thread::spawn(move || {
                for i in 0..5 {
                    tx.push(i);
                }
            });
            assert_eq!(take(&mut rx, 5), [0, 1, 2, 3, 4]);
            producer.join().unwrap();
            assert_eq!(rx.pop(), None);
            assert_eq!(rx.waiting(), 0);
        });
    }

    #[test]
    fn loom_the_ends_dropped_on_two_threads_drop_each_item_once() {
        model(|| {
            let item = Arc::new(());
            let (mut tx, mut rx) = channel();
            let pushed = item.clone();
            let producer = loom::thread::spawn(move || {
                for _ in 0..3 {
                    tx.push(pushed.clone());
                }
            });
            // Takes one, then lets go of its end while the producer may still push.
            while rx.pop().is_none() {
                loom::thread::yield_now();
            }
            drop(rx);
            producer.join().unwrap();
            assert_eq!(
                Arc::strong_count(&item),
                1,
                "every pushed copy dropped once"
            );
        });
    }
}
