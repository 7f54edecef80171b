//! The messages between coordinator and worker process, the protocol version, and how an
//! encoded task input or output travels.
//!
//! Task values are bincode. A value of [`SHARE_AT`] bytes or more is encoded straight into a
//! shared-memory region that the message passes as a file descriptor (see [`shared`]), so that
//! megabytes cross without being copied through the socket both ways. ipc-channel passes a
//! region only inside a message it serialises itself (its byte channels drop any descriptor
//! received), so a message's envelope is ipc-channel's own encoding; a batch of jobs still
//! travels as one message.

mod shared;

use std::ops::Deref;
use std::sync::Arc;

use ipc_channel::ipc::{IpcReceiver, IpcSender, IpcSharedMemory};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use shared::Region;
pub(crate) use shared::{Lent, Returns};

/// Bumped whenever a message changes shape; a worker of another version is refused.
pub(crate) const PROTOCOL: u32 = 3;

/// The environment variable that turns a launched program into a worker. Its value is
/// `WORKER_ID:PARENT_PID:SERVER_NAME`.
pub(crate) const WORKER_ENV: &str = "WEFT_WORKER";

/// An encoded value of at least this many bytes travels in a shared-memory region.
///
/// Chosen by measurement (`cargo bench --bench engine -- payload-sizes`, 2 cores). One echo at a
/// time through one worker, a reused region wins from 64 KiB on (at 256 KiB, 0.18 ms against
/// 1.3 ms inline, which the socket carries in fragments). In streams through two workers, where
/// more regions are in flight than are kept for reuse and fresh ones cost a page fault per 4 KiB,
/// inline bytes win up to 128 KiB and the two are level at 256 KiB (shared memory is 2-3x faster
/// at 1 MiB).
pub(crate) const SHARE_AT: usize = 256 << 10;

/// The most regions one message carries. ipc-channel passes at most 64 descriptors in a message
/// (and panics past that), and a message too long for one packet adds one of its own.
pub(crate) const REGIONS_PER_MESSAGE: usize = 32;

/// The first message: the worker hands over its ends of the two channels.
#[derive(Serialize, Deserialize)]
pub(crate) enum Handshake {
    Hello {
        pid: u32,
        version: u32,
        /// The coordinator sends batches here; the worker owns the only receiver.
        tasks: IpcSender<Delivery>,
        /// The worker sends results here; the coordinator owns the only receiver, so its
        /// disconnection means the worker died.
        results: IpcReceiver<Vec<Done>>,
        /// The worker's progress slot (see `sys::SlotView`).
        slot: IpcSharedMemory,
    },
    /// Sent by the coordinator itself to unblock `accept` when the worker died first.
    Abort,
}

/// Coordinator -> worker: a batch, and the worker's output regions the coordinator has let go
/// of since the last one.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Delivery {
    pub(crate) batch: Batch,
    pub(crate) returned: Vec<u64>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Batch {
    pub(crate) task: String,
    /// The job timeout, given to tasks as their context's deadline.
    pub(crate) timeout: Option<std::time::Duration>,
    pub(crate) jobs: Vec<Job>,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Job {
    pub(crate) ticket: u64,
    pub(crate) seq: u64,
    pub(crate) attempt: u32,
    pub(crate) input: Payload,
}

/// Worker -> coordinator: results in the order the jobs ran.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Done {
    pub(crate) ticket: u64,
    pub(crate) started_ns: u64,
    pub(crate) runtime_ns: u64,
    pub(crate) status: Status,
}

#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Status {
    Ok(Payload),
    Failed(String),
    TimedOut,
    Cancelled,
    Panicked {
        message: String,
        location: Option<String>,
    },
}

/// An encoded task input or output: bytes in the message, or a shared-memory region for a
/// large one. Either way it reads as `&[u8]`, so a value decodes straight from the region.
///
/// A clone of a shared payload is another handle on the same mapping; the region is reused
/// only once the payload [`encode`](Payload::encode) returned is dropped, so that one is kept
/// while the peer may still read the region (see [`shared`]).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) enum Payload {
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    Shared(Region),
}

impl Payload {
    /// Encodes `value`, into a shared-memory region when it is [`SHARE_AT`] bytes or more and
    /// the region budget allows.
    pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Payload, String> {
        let mut size = bincode::enc::write::SizeWriter::default();
        bincode::serde::encode_into_writer(value, &mut size, config())
            .map_err(|e| e.to_string())?;
        let len = size.bytes_written;
        if len >= SHARE_AT
            && let Some(region) = Region::filled(len, |buf| {
                bincode::serde::encode_into_slice(value, buf, config()).is_ok()
            })
        {
            return Ok(Payload::Shared(region));
        }
        let mut bytes = Vec::with_capacity(len);
        bincode::serde::encode_into_std_write(value, &mut bytes, config())
            .map_err(|e| e.to_string())?;
        Ok(Payload::Inline(bytes))
    }

    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Payload::Shared(_))
    }

    /// Takes in an output received from a worker: its region is given back to that worker once
    /// let go of, and copied out at once if this process holds more regions than its budget (so
    /// that outputs waiting to be collected do not use up descriptors).
    pub(crate) fn received(&mut self, returns: &Arc<Returns>) {
        if let Payload::Shared(region) = self {
            region.borrowed_from(returns);
            if shared::over_budget() {
                *self = Payload::Inline(region.to_vec());
            }
        }
    }

    /// Lends an output region made by this worker (see [`Lent`]).
    pub(crate) fn lend(&mut self, lent: &mut Lent) {
        if let Payload::Shared(region) = self {
            lent.lend(region);
        }
    }
}

impl Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Payload::Inline(bytes) => bytes,
            Payload::Shared(region) => region,
        }
    }
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::serde::decode_from_slice(bytes, config())
        .map(|(v, _)| v)
        .map_err(|e| e.to_string())
}

/// Sends a batch, in as many messages as its shared payloads need, with the returned region ids.
pub(crate) fn send_batch(
    tx: &IpcSender<Delivery>,
    mut batch: Batch,
    mut returned: Vec<u64>,
) -> std::io::Result<()> {
    while let Some(cut) = cut_after_regions(&batch.jobs, |j| j.input.is_shared()) {
        let rest = batch.jobs.split_off(cut);
        let head = Batch {
            task: batch.task.clone(),
            timeout: batch.timeout,
            jobs: std::mem::replace(&mut batch.jobs, rest),
        };
        tx.send(Delivery {
            batch: head,
            returned: std::mem::take(&mut returned),
        })
        .map_err(io_error)?;
    }
    tx.send(Delivery { batch, returned }).map_err(io_error)
}

/// Sends results, in as many messages as their shared outputs need.
pub(crate) fn send_results(tx: &IpcSender<Vec<Done>>, mut done: Vec<Done>) -> std::io::Result<()> {
    let shared = |d: &Done| matches!(&d.status, Status::Ok(p) if p.is_shared());
    while let Some(cut) = cut_after_regions(&done, shared) {
        let rest = done.split_off(cut);
        tx.send(std::mem::replace(&mut done, rest))
            .map_err(io_error)?;
    }
    tx.send(done).map_err(io_error)
}

/// Where to cut `items` so that the first part carries [`REGIONS_PER_MESSAGE`] regions, if they
/// carry more.
fn cut_after_regions<T>(items: &[T], shared: impl Fn(&T) -> bool) -> Option<usize> {
    let mut regions = 0;
    for (i, item) in items.iter().enumerate() {
        if shared(item) {
            regions += 1;
            if regions > REGIONS_PER_MESSAGE {
                return Some(i);
            }
        }
    }
    None
}

fn io_error(e: ipc_channel::IpcError) -> std::io::Error {
    match e {
        ipc_channel::IpcError::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(shared: &[bool]) -> Option<usize> {
        cut_after_regions(shared, |&s| s)
    }

    #[test]
    fn a_message_carries_at_most_its_share_of_regions() {
        let n = REGIONS_PER_MESSAGE;
        assert_eq!(cut(&[]), None);
        assert_eq!(cut(&vec![true; n]), None, "exactly the limit fits");
        assert_eq!(cut(&vec![true; n + 1]), Some(n));
        // Inline values in between ride along with the regions before the cut.
        let mut mixed = vec![false; 3];
        mixed.extend(std::iter::repeat_n([true, false], n + 2).flatten());
        let at = cut(&mixed).unwrap();
        assert_eq!(mixed[..at].iter().filter(|&&s| s).count(), n);
        assert!(
            mixed[at],
            "the cut falls before the first region that does not fit"
        );
        assert_eq!(cut(&vec![false; 10 * n]), None, "inline values need no cut");
    }
}
