//! A worker's progress slot: three words the worker writes and its coordinator reads, in
//! memory the two share (process workers) or in the pool's own (threads).

use std::sync::atomic::{AtomicU64, Ordering};

/// Number of 64-bit words in a progress slot.
pub(crate) const SLOT_WORDS: usize = 3;
/// Size in bytes of a progress slot.
pub(crate) const SLOT_BYTES: usize = SLOT_WORDS * 8;

/// A worker's progress slot in memory shared with another process: the region, owned here,
/// and the words in it, reached through a pointer taken from the region's one mutable view.
///
/// The words are written through: a pointer made from the region's shared `&[u8]` would
/// carry read-only provenance, and storing through it would be undefined behaviour, atomics
/// or not.
pub(crate) struct SharedSlot {
    /// Kept mapped for as long as `words` points into it.
    _region: ipc_channel::ipc::IpcSharedMemory,
    words: *mut u64,
}

// SAFETY: `words` points into the mapping `_region` keeps alive, and is only ever used as
// atomics (see `view`), which any thread may share.
unsafe impl Send for SharedSlot {}
// SAFETY: as above: every access through `words` is atomic.
unsafe impl Sync for SharedSlot {}

impl SharedSlot {
    /// Takes `region` as a progress slot; `None` if it is shorter than [`SLOT_BYTES`] or its
    /// start not 8-byte aligned.
    pub(crate) fn new(mut region: ipc_channel::ipc::IpcSharedMemory) -> Option<SharedSlot> {
        // SAFETY: `region` is owned here and never read as bytes again: from now on this
        // mapping is reached through `words` alone, and only with atomics. Other mappings of
        // the same memory (the peer's) are other addresses, accessed with atomics too.
        let bytes = unsafe { region.deref_mut() };
        if bytes.len() < SLOT_BYTES || bytes.as_ptr().align_offset(8) != 0 {
            return None;
        }
        let words = bytes.as_mut_ptr().cast::<u64>();
        Some(SharedSlot {
            _region: region,
            words,
        })
    }

    /// The slot's words.
    pub(crate) fn view(&self) -> SlotView<'_> {
        // SAFETY: each word is 8-byte aligned (checked in `new`), inside the mapping `self`
        // keeps alive for the borrow, and reached only with atomic operations for as long as
        // the reference lives, by this process and by the peer mapping the same page; the
        // words are lock-free, hence address-free across processes (`AtomicU64::from_ptr`'s
        // conditions).
        let word = |i: usize| unsafe { AtomicU64::from_ptr(self.words.add(i)) };
        SlotView {
            words: [word(0), word(1), word(2)],
        }
    }
}

/// A view of a worker's progress slot: how many jobs it has begun and when the current one
/// began. The worker writes, the coordinator reads; in process mode the words live in memory
/// shared between the two ([`SharedSlot`]), so the coordinator can tell which job was running
/// when a worker died and time it out without a message per job.
pub(crate) struct SlotView<'a> {
    words: [&'a AtomicU64; SLOT_WORDS],
}

impl<'a> SlotView<'a> {
    /// Views words owned by this process (the thread backend's slot).
    pub(crate) fn from_words(words: &'a [AtomicU64; SLOT_WORDS]) -> Self {
        SlotView {
            words: [&words[0], &words[1], &words[2]],
        }
    }

    /// Records that the job with index `started - 1` began at `at_ns`.
    pub(crate) fn begin(&self, started: u64, at_ns: u64) {
        self.words[1].store(at_ns, Ordering::Relaxed);
        self.words[0].store(started, Ordering::Release);
    }

    /// How many jobs have begun, and when the last one began.
    pub(crate) fn read(&self) -> (u64, u64) {
        let started = self.words[0].load(Ordering::Acquire);
        (started, self.words[1].load(Ordering::Relaxed))
    }

    /// Asks the worker to start no further job (the coordinator's side), or withdraws the
    /// request.
    pub(crate) fn set_draining(&self, on: bool) {
        self.words[2].store(u64::from(on), Ordering::Release);
    }

    /// Whether the worker is to start no further job (the worker's side).
    pub(crate) fn draining(&self) -> bool {
        self.words[2].load(Ordering::Acquire) != 0
    }
}
