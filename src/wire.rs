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
//! Results are the exception: a job's result is a few fixed fields and a status, and through
//! serde each one cost hundreds of instructions to encode in the worker and as many to decode
//! in the coordinator, for every tiny job. They travel as one byte string in a fixed
//! little-endian layout of their own (see [`encode_results`]), with the regions of large
//! outputs beside it.

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
        results: IpcReceiver<Results>,
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

/// Worker -> coordinator: results in the order the jobs ran, as [`encode_results`] makes them.
#[derive(Serialize, Deserialize)]
pub(crate) struct Results {
    #[serde(with = "serde_bytes")]
    coded: Vec<u8>,
    /// The shared-memory outputs, which the coded results name by their place here.
    regions: Vec<Payload>,
}

/// One job's result.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) ticket: u64,
    pub(crate) started_ns: u64,
    pub(crate) runtime_ns: u64,
    pub(crate) status: Status,
}

#[derive(Debug)]
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
pub(crate) fn send_results(tx: &IpcSender<Results>, mut done: Vec<Done>) -> std::io::Result<()> {
    let shared = |d: &Done| matches!(&d.status, Status::Ok(p) if p.is_shared());
    while let Some(cut) = cut_after_regions(&done, shared) {
        let rest = done.split_off(cut);
        tx.send(encode_results(std::mem::replace(&mut done, rest)))
            .map_err(io_error)?;
    }
    tx.send(encode_results(done)).map_err(io_error)
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

/// Encodes results as one message: per job `ticket`, `started_ns`, `runtime_ns` (u64 each), a
/// status tag byte, then the status's bytes and strings, each as a u64 length and its bytes
/// (a panic's location after a presence byte; a shared output as its u64 place in
/// `regions`). Integers are little-endian.
pub(crate) fn encode_results(results: Vec<Done>) -> Results {
    // Sized up front: growing the buffer cost more than the encoding itself.
    let size = results
        .iter()
        .map(|d| {
            25 + match &d.status {
                Status::Ok(Payload::Inline(bytes)) => 8 + bytes.len(),
                Status::Ok(Payload::Shared(_)) => 8,
                Status::Failed(m) => 8 + m.len(),
                Status::TimedOut | Status::Cancelled => 0,
                Status::Panicked { message, location } => {
                    9 + message.len() + location.as_ref().map_or(0, |at| 8 + at.len())
                }
            }
        })
        .sum();
    let mut out = Vec::with_capacity(size);
    let put = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    let mut regions = Vec::new();
    for d in results {
        out.extend_from_slice(&d.ticket.to_le_bytes());
        out.extend_from_slice(&d.started_ns.to_le_bytes());
        out.extend_from_slice(&d.runtime_ns.to_le_bytes());
        match d.status {
            Status::Ok(Payload::Inline(bytes)) => {
                out.push(0);
                put(&mut out, &bytes);
            }
            Status::Ok(shared @ Payload::Shared(_)) => {
                out.push(5);
                out.extend_from_slice(&(regions.len() as u64).to_le_bytes());
                regions.push(shared);
            }
            Status::Failed(m) => {
                out.push(1);
                put(&mut out, m.as_bytes());
            }
            Status::TimedOut => out.push(2),
            Status::Cancelled => out.push(3),
            Status::Panicked { message, location } => {
                out.push(4);
                put(&mut out, message.as_bytes());
                match &location {
                    Some(at) => {
                        out.push(1);
                        put(&mut out, at.as_bytes());
                    }
                    None => out.push(0),
                }
            }
        }
    }
    Results {
        coded: out,
        regions,
    }
}

/// Decodes a message of [`encode_results`], handing each result to `each` in order.
pub(crate) fn decode_results(results: Results, mut each: impl FnMut(Done)) -> Result<(), String> {
    let Results { coded, regions } = results;
    let mut regions: Vec<Option<Payload>> = regions.into_iter().map(Some).collect();
    let mut bytes = &coded[..];
    fn short(n: usize, left: usize) -> String {
        format!("results cut short: {n} bytes wanted, {left} left")
    }
    #[inline(always)]
    fn u64_of(bytes: &mut &[u8]) -> Result<u64, String> {
        let (head, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| short(8, bytes.len()))?;
        *bytes = rest;
        Ok(u64::from_le_bytes(*head))
    }
    #[inline(always)]
    fn byte_of(bytes: &mut &[u8]) -> Result<u8, String> {
        let (&head, rest) = bytes.split_first().ok_or_else(|| short(1, 0))?;
        *bytes = rest;
        Ok(head)
    }
    #[inline(always)]
    fn vec_of(bytes: &mut &[u8]) -> Result<Vec<u8>, String> {
        let n = u64_of(bytes)?;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= bytes.len())
            .ok_or_else(|| short(n as usize, bytes.len()))?;
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head.to_vec())
    }
    fn string_of(bytes: &mut &[u8]) -> Result<String, String> {
        String::from_utf8(vec_of(bytes)?).map_err(|e| e.to_string())
    }
    while !bytes.is_empty() {
        let ticket = u64_of(&mut bytes)?;
        let started_ns = u64_of(&mut bytes)?;
        let runtime_ns = u64_of(&mut bytes)?;
        let status = match byte_of(&mut bytes)? {
            0 => Status::Ok(Payload::Inline(vec_of(&mut bytes)?)),
            5 => {
                let at = u64_of(&mut bytes)?;
                let region = usize::try_from(at)
                    .ok()
                    .and_then(|i| regions.get_mut(i)?.take())
                    .ok_or_else(|| format!("results name a missing region {at}"))?;
                Status::Ok(region)
            }
            1 => Status::Failed(string_of(&mut bytes)?),
            2 => Status::TimedOut,
            3 => Status::Cancelled,
            4 => Status::Panicked {
                message: string_of(&mut bytes)?,
                location: match byte_of(&mut bytes)? {
                    0 => None,
                    1 => Some(string_of(&mut bytes)?),
                    other => return Err(format!("bad location flag {other}")),
                },
            },
            other => return Err(format!("bad status tag {other}")),
        };
        each(Done {
            ticket,
            started_ns,
            runtime_ns,
            status,
        });
    }
    Ok(())
}

#[cfg(test)]
mod results_tests {
    use super::*;

    fn coded(bytes: &[u8]) -> Results {
        Results {
            coded: bytes.to_vec(),
            regions: Vec::new(),
        }
    }

    /// The results as text, to compare: payloads are compared by their bytes.
    fn decode_all(bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut all = Vec::new();
        decode_results(coded(bytes), |d| all.push(shown(&d))).map(|()| all)
    }

    fn shown(d: &Done) -> String {
        let status = match &d.status {
            Status::Ok(p) => format!("ok {:?}", &p[..]),
            other => format!("{other:?}"),
        };
        format!("{} {} {} {status}", d.ticket, d.started_ns, d.runtime_ns)
    }

    #[test]
    fn results_round_trip_every_status() {
        let done = |ticket, status| Done {
            ticket,
            started_ns: u64::MAX - ticket,
            runtime_ns: 1 << 40,
            status,
        };
        let results = vec![
            done(0, Status::Ok(Payload::Inline(vec![]))),
            done(1, Status::Ok(Payload::Inline(vec![1, 2, 3]))),
            done(2, Status::Failed("nope: é".into())),
            done(3, Status::TimedOut),
            done(4, Status::Cancelled),
            done(
                5,
                Status::Panicked {
                    message: "boom".into(),
                    location: Some("src/x.rs:1:2".into()),
                },
            ),
            done(
                6,
                Status::Panicked {
                    message: String::new(),
                    location: None,
                },
            ),
        ];
        let want: Vec<String> = results.iter().map(shown).collect();
        let bytes = encode_results(results).coded;
        assert_eq!(bytes.capacity(), bytes.len(), "sized exactly");
        assert_eq!(decode_all(&bytes), Ok(want));
        assert_eq!(decode_all(&[]), Ok(vec![]));
    }

    #[test]
    fn truncated_or_garbled_results_are_an_error_not_a_panic() {
        let bytes = encode_results(vec![Done {
            ticket: 7,
            started_ns: 8,
            runtime_ns: 9,
            status: Status::Failed("message".into()),
        }])
        .coded;
        for n in 0..bytes.len() {
            assert!(decode_all(&bytes[..n]).is_err() || n == 0, "{n} bytes");
        }
        let mut bad = bytes.clone();
        bad[24] = 9;
        assert!(decode_all(&bad).is_err());
        let mut huge = bytes;
        huge[25..33].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_all(&huge).is_err());
    }
}
