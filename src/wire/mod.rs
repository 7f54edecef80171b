//! The messages between coordinator and worker process, the protocol version, and how an
//! encoded task input or output travels.
//!
//! Task values are bincode. A value of [`SHARE_AT`] bytes or more is encoded straight into a
//! shared-memory region that the message passes as a file descriptor (see [`shared`]), so that
//! megabytes cross without being copied through the socket both ways. ipc-channel passes a
//! region only inside a message it serialises itself (its byte channels drop any descriptor
//! received), so a message's envelope is ipc-channel's own encoding; a batch of jobs still
//! travels as one message.
//!
//! The jobs of a batch and their results are not serde values: a job or a result is a few fixed
//! fields and a byte string, and through serde each one cost hundreds of instructions to encode
//! on one side and as many to decode on the other, for every tiny job. A batch and a message of
//! results each travel as one byte string in a layout of their own (see [`encode_batch`] and
//! [`ResultsOut`]), with the regions of large values beside it, and are read in place. Its
//! integers are varints, and a field that follows from the job or result before (the next
//! ticket, the next seq, a first attempt, a start where the last job ended) is not written at
//! all: a no-op job takes 2 bytes and its result 4, where fixed fields took 29 and 33, and
//! every byte is copied into the socket and out of it on its way.

mod batch;
mod results;
mod varint;

use std::ops::Deref;
use std::sync::Arc;

use ipc_channel::ipc::{IpcReceiver, IpcSender, IpcSharedMemory};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::outcome::Status;
use crate::sys::region::{self as shared, Region};
pub(crate) use crate::sys::region::{Lent, Returns};
pub(crate) use batch::encode_batch;
pub(crate) use results::{Output, Read, Received, ResultsIn, ResultsOut, decode_results};

/// Bumped whenever a message changes shape; a worker of another version is refused.
pub(crate) const PROTOCOL: u32 = 7;

/// The environment variable that marks a launched program as a worker. Its value is
/// `WORKER_ID:PARENT_PID:TOKEN_FD:SOCKET_FD`, the last two descriptors it inherited: a pipe
/// holding the coordinator's [`Token`] and the location of the handshake socket. The variable
/// alone turns nothing into a worker (see `process::worker`).
pub(crate) const WORKER_ENV: &str = "WEFT_WORKER";

/// The random bytes a coordinator gives a worker it launches through an inherited pipe (never
/// the environment, which other processes of the user can read in `/proc/PID/environ`), and
/// which the worker hands back in its first message.
pub(crate) type Token = [u8; 16];

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
        /// What the coordinator gave this worker: no other process can say hello in its place.
        token: Token,
        /// The coordinator sends batches here; the worker owns the only receiver.
        tasks: IpcSender<Delivery>,
        /// The worker sends results here; the coordinator owns the only receiver, so its
        /// disconnection means the worker died.
        results: IpcReceiver<Results>,
        /// The worker's progress slot (see `sys::SlotView`).
        slot: IpcSharedMemory,
    },
    /// Sent by the coordinator itself to unblock `accept` when the worker died first.
    Abort,
    /// Sent by a launched program that reached a spawn path instead of calling `weft::init`
    /// first: the coordinator reports that mistake instead of a timeout.
    NoInit { token: Token },
}

/// Coordinator -> worker: jobs of one task, as [`encode_batch`] makes them, and the worker's
/// output regions the coordinator has let go of since the last message.
#[derive(Serialize, Deserialize)]
pub(crate) struct Delivery {
    pub(crate) task: String,
    /// The job timeout, given to tasks as their context's deadline.
    pub(crate) timeout: Option<std::time::Duration>,
    #[serde(with = "serde_bytes")]
    coded: Vec<u8>,
    /// The shared-memory inputs, which the coded jobs name by their place here.
    regions: Vec<Payload>,
    pub(crate) returned: Vec<u64>,
}

/// A batch of jobs encoded for a worker, not yet sent: [`send_batch`] sends it in as many
/// [`Delivery`] messages as its shared inputs need.
pub(crate) struct Batch {
    task: String,
    timeout: Option<std::time::Duration>,
    coded: Vec<u8>,
    regions: Vec<Payload>,
    /// Where in `coded` a further message starts, once the regions before it fill one (see
    /// [`REGIONS_PER_MESSAGE`]).
    cuts: Vec<usize>,
}

/// Worker -> coordinator: results in the order the jobs ran, as [`ResultsOut`] writes them.
#[derive(Serialize, Deserialize)]
pub(crate) struct Results {
    #[serde(with = "serde_bytes")]
    coded: Vec<u8>,
    /// The shared-memory outputs, which the coded results name by their place here.
    regions: Vec<Payload>,
}

/// How a job that returned no output ended (see [`ResultsOut::ended`]).
#[derive(Debug, Clone)]
pub(crate) enum Ended {
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

// A payload is no larger than an inline one's vector: the engine moves one per job several
// times (see `Region`).
const _: () = assert!(size_of::<Payload>() == size_of::<Vec<u8>>());

impl Payload {
    /// Encodes `value`, into a shared-memory region when it is [`SHARE_AT`] bytes or more and
    /// the region budget allows.
    pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Payload, String> {
        let mut bytes = Vec::new();
        Ok(match encode_value(value, &mut bytes, |_, _| {})? {
            Some(region) => Payload::Shared(region),
            None => Payload::Inline(bytes),
        })
    }

    /// Takes in an output received from a worker: its region is given back to that worker once
    /// let go of, and copied out at once if this process holds more regions than its budget (so
    /// that outputs waiting to be collected do not use up descriptors). Inline outputs need
    /// nothing.
    #[inline]
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

    // Every output is read through this once, as it is collected.
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Payload::Inline(bytes) => bytes,
            Payload::Shared(region) => region,
        }
    }
}

/// Encodes `value` into a shared-memory region when it is [`SHARE_AT`] bytes or more and the
/// region budget allows, and returns the region; else appends it to `out`, after what `head`
/// writes there given its length.
///
/// Values are sized first, so that a large one is encoded straight into its region and an
/// inline one into room reserved once.
pub(super) fn encode_value<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    head: impl FnOnce(&mut Vec<u8>, usize),
) -> Result<Option<Region>, String> {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config()).map_err(|e| e.to_string())?;
    let len = size.bytes_written;
    if len >= SHARE_AT
        && let Some(region) = Region::filled(len, |buf| {
            bincode::serde::encode_into_slice(value, buf, config()).is_ok()
        })
    {
        return Ok(Some(region));
    }
    head(out, len);
    if len > 0 {
        out.reserve(len);
        let start = out.len();
        bincode::serde::encode_into_std_write(value, out, config()).map_err(|e| e.to_string())?;
        // The length went ahead of the bytes: a value that encodes differently the second
        // time (state changed by another thread) would garble the whole message.
        if out.len() - start != len {
            return Err(format!(
                "the value encoded to {} bytes, then to {len}: it changed while being encoded",
                out.len() - start
            ));
        }
    }
    Ok(None)
}

pub(super) fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// `value` as bincode in a vector of its own (never a shared region): what leaves this machine.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| e.to_string())
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::serde::decode_from_slice(bytes, config())
        .map(|(v, _)| v)
        .map_err(|e| e.to_string())
}

/// Sends a batch, in as many messages as its shared inputs need, with the returned region ids.
pub(crate) fn send_batch(
    tx: &IpcSender<Delivery>,
    batch: Batch,
    returned: Vec<u64>,
) -> std::io::Result<()> {
    for delivery in batch.deliveries(returned) {
        tx.send(delivery).map_err(io_error)?;
    }
    Ok(())
}

pub(super) fn io_error(e: ipc_channel::IpcError) -> std::io::Error {
    match e {
        ipc_channel::IpcError::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod format_tests;

#[cfg(test)]
mod test_support {
    use super::*;

    /// `bytes` in a shared-memory region, as a large payload travels.
    pub(super) fn shared(bytes: &[u8]) -> Payload {
        let region = Region::filled(bytes.len(), |buf| {
            buf.copy_from_slice(bytes);
            true
        })
        .expect("a small region within the budget");
        Payload::Shared(region)
    }
}
