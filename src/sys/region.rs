//! Shared-memory regions for large encoded values, and their reuse. Here, in `sys`, because
//! filling a region that another process may map is `unsafe` (see `fill_region`).
//!
//! A fresh region is slow to fill: each of its pages is allocated and zeroed on first touch
//! (measured 16 MiB: ~20 ms to make and fill a region, 2.4 ms to refill one already in use).
//! So the process that made a region keeps it once every other handle on it is gone, and fills
//! it again for the next large value:
//!
//! - An input region is made by the coordinator, which keeps it for the job (a re-queued job is
//!   sent again). Dropping the job's copy frees the region for reuse: the engine drops it only
//!   once the job's result came back (the worker decoded the input before running it) or its
//!   worker was killed (whatever that worker still reads, its results are discarded).
//! - An output region is made by a worker, which cannot know when the coordinator is done with
//!   the value. The worker lends it ([`Lent`]); dropping the coordinator's handle records the
//!   region's id ([`Returns`]), and the next message to the worker carries the ids back.
//!
//! Every region holds a file descriptor, so the regions a process holds are counted, and past a
//! budget large values travel inline instead (ipc-channel issue 240: descriptors passed in
//! messages are easy to leak, and a process out of descriptors fails in ways it cannot handle).

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ipc_channel::ipc::IpcSharedMemory;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super as sys;

/// At most this many regions, and this many bytes of them, wait in a process's cache or on
/// loan from a worker; more are let go.
const KEPT_REGIONS: usize = 32;
const KEPT_BYTES: usize = 64 << 20;

/// Mappings this process holds. Each holds a descriptor.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Regions made by this process and free to refill.
static CACHE: Mutex<Vec<Mapping>> = Mutex::new(Vec::new());

/// How many mappings this process may hold before large values travel inline again: a quarter
/// of its descriptor limit, so that a run of large values never runs it out of descriptors.
fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        sys::fd_limit().map_or(1024, |n| usize::try_from(n / 4).unwrap_or(1024).min(1024))
    })
}

/// Whether this process holds more mappings than its budget.
pub(crate) fn over_budget() -> bool {
    LIVE.load(Ordering::Relaxed) > budget()
}

/// One mapping of a region, counted while it lives. Dropping it unmaps the region and closes
/// its descriptor.
struct Mapping(IpcSharedMemory);

impl Mapping {
    fn adopt(memory: IpcSharedMemory) -> Mapping {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Mapping(memory)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A region holding one encoded value (its first `len` bytes). Handles in one process share
/// one mapping.
///
/// A pointer wide, so that a payload, which is most often a few inline bytes, is no larger
/// than those bytes' vector: the engine moves one per job several times.
pub(crate) struct Region(Box<Handle>);

struct Handle {
    /// Always set; taken only by `drop`.
    mapping: Option<Arc<Mapping>>,
    len: usize,
    /// Unique among the regions made by the process that made this one.
    id: u64,
    role: Role,
}

enum Role {
    /// Made here, and the handle that decides its reuse: dropped, it goes to the cache.
    Owner,
    /// Another handle: dropped, it is unmapped.
    View,
    /// Received from the worker that made it, which reuses it once told this handle is gone.
    Borrowed(Arc<Returns>),
}

impl Region {
    /// A region holding the `len` bytes `fill` writes: a cached one if one fits, else a new one
    /// if the budget allows. `None` if neither, or if `fill` fails.
    pub(crate) fn filled(len: usize, fill: impl FnOnce(&mut [u8]) -> bool) -> Option<Region> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let mut mapping = match reuse(len) {
            Some(m) => m,
            None if LIVE.load(Ordering::Relaxed) < budget() => {
                Mapping::adopt(IpcSharedMemory::from_byte(0, len))
            }
            None => return None,
        };
        // SAFETY: a fresh mapping has no other handle; a cached one has none that is still
        // read (see the module's documentation).
        if !unsafe { fill_region(&mut mapping.0, len, fill) } {
            keep(mapping);
            return None;
        }
        Some(Region(Box::new(Handle {
            mapping: Some(Arc::new(mapping)),
            len,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            role: Role::Owner,
        })))
    }

    fn mapping(&self) -> &Mapping {
        self.0
            .mapping
            .as_deref()
            .expect("a live region has its mapping")
    }

    /// Marks a region received from the worker that made it: dropping this handle tells that
    /// worker, through `returns`, that it may reuse the region.
    pub(crate) fn borrowed_from(&mut self, returns: &Arc<Returns>) {
        if matches!(self.0.role, Role::View) {
            self.0.role = Role::Borrowed(returns.clone());
        }
    }
}

impl Deref for Region {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.mapping().0[..self.0.len]
    }
}

impl Clone for Region {
    /// Another handle on the same mapping; it never decides the region's reuse.
    fn clone(&self) -> Region {
        Region(Box::new(Handle {
            mapping: self.0.mapping.clone(),
            len: self.0.len,
            id: self.0.id,
            role: Role::View,
        }))
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let Some(mapping) = self.0.mapping.take() else {
            return;
        };
        match &self.0.role {
            // Another handle here still reads it (none does in practice: the owner is dropped
            // last), so it is not reused.
            Role::Owner => {
                if let Some(mapping) = Arc::into_inner(mapping) {
                    keep(mapping);
                }
            }
            Role::View => {}
            Role::Borrowed(returns) => returns.push(self.0.id),
        }
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region {{ id: {}, len: {} }}", self.0.id, self.0.len)
    }
}

/// How a region travels: its id, the length of its value, and its descriptor (which
/// ipc-channel passes beside the message's bytes).
#[derive(Serialize, Deserialize)]
struct RegionWire<M> {
    id: u64,
    len: u64,
    memory: M,
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        debug_assert!(
            !matches!(self.0.role, Role::Owner),
            "an owner stays home: send a clone, or lend it"
        );
        RegionWire {
            id: self.0.id,
            len: self.0.len as u64,
            memory: &self.mapping().0,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = RegionWire::<IpcSharedMemory>::deserialize(d)?;
        let mapping = Arc::new(Mapping::adopt(wire.memory));
        let len = usize::try_from(wire.len)
            .ok()
            .filter(|&len| len <= mapping.0.len())
            .ok_or_else(|| serde::de::Error::custom("a region's value is longer than it"))?;
        Ok(Region(Box::new(Handle {
            mapping: Some(mapping),
            len,
            id: wire.id,
            role: Role::View,
        })))
    }
}

/// Takes the smallest cached region that holds `len` bytes without wasting more than as much
/// again.
fn reuse(len: usize) -> Option<Mapping> {
    let mut cache = CACHE.lock().expect("region cache");
    let best = cache
        .iter()
        .enumerate()
        .filter(|(_, m)| m.0.len() >= len && m.0.len() / 2 <= len)
        .min_by_key(|(_, m)| m.0.len())
        .map(|(i, _)| i)?;
    Some(cache.swap_remove(best))
}

/// Caches a region no one else reads any more, letting the oldest go past the limits.
fn keep(mapping: Mapping) {
    if mapping.0.len() > KEPT_BYTES {
        return;
    }
    let mut cache = CACHE.lock().expect("region cache");
    cache.push(mapping);
    while cache.len() > KEPT_REGIONS || cache.iter().map(|m| m.0.len()).sum::<usize>() > KEPT_BYTES
    {
        cache.remove(0);
    }
}

/// The ids of a worker's output regions the coordinator has let go of, waiting to be sent
/// back to it.
#[derive(Default)]
pub(crate) struct Returns(Mutex<Vec<u64>>);

impl Returns {
    fn push(&self, id: u64) {
        self.0.lock().expect("returns").push(id);
    }

    /// The ids recorded since the last call.
    pub(crate) fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.0.lock().expect("returns"))
    }
}

/// A worker's output regions on loan to the coordinator, by id.
#[derive(Default)]
pub(crate) struct Lent {
    regions: HashMap<u64, Region>,
    bytes: usize,
}

impl Lent {
    /// Turns `region` into a handle to send, keeping the owner until the coordinator gives it
    /// back; past the limits the region is given away instead (not reused).
    pub(crate) fn lend(&mut self, region: &mut Region) {
        if !matches!(region.0.role, Role::Owner) {
            return;
        }
        let size = region.mapping().0.len();
        if self.regions.len() < KEPT_REGIONS && self.bytes + size <= KEPT_BYTES {
            let view = region.clone();
            let owner = std::mem::replace(region, view);
            self.bytes += size;
            self.regions.insert(owner.0.id, owner);
        } else {
            region.0.role = Role::View;
        }
    }

    /// The coordinator is done with these regions: they go back to the cache.
    pub(crate) fn returned(&mut self, ids: &[u64]) {
        for id in ids {
            if let Some(owner) = self.regions.remove(id) {
                self.bytes -= owner.mapping().0.len();
            }
        }
    }
}

/// Writes the first `len` bytes of a shared-memory region with `fill`; returns what it does.
///
/// # Safety
/// Nothing may read or write the region's memory meanwhile through another handle: another
/// mapping of it, in this process or another (a receiver still decoding a payload from it).
///
/// # Panics
/// If `len` is past the region's end.
unsafe fn fill_region(
    region: &mut ipc_channel::ipc::IpcSharedMemory,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> bool,
) -> bool {
    // SAFETY: `region` is borrowed mutably, so no other reference into this mapping exists;
    // other mappings of the same memory are other addresses, which the caller keeps unused.
    let bytes = unsafe { region.deref_mut() };
    fill(&mut bytes[..len])
}
