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

mod shared;

use std::ops::Deref;
use std::sync::Arc;

use ipc_channel::ipc::{IpcReceiver, IpcSender, IpcSharedMemory};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::outcome::Status;
use shared::Region;
pub(crate) use shared::{Lent, Returns};

/// Bumped whenever a message changes shape; a worker of another version is refused.
pub(crate) const PROTOCOL: u32 = 6;

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
fn encode_value<T: Serialize + ?Sized>(
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

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
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

fn io_error(e: ipc_channel::IpcError) -> std::io::Error {
    match e {
        ipc_channel::IpcError::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Flags of a job in a batch (see [`encode_batch`]): which of its fields are written out.
const JOB_TICKET: u8 = 1;
const JOB_SEQ: u8 = 2;
const JOB_ATTEMPT: u8 = 4;
const JOB_SHARED: u8 = 8;
/// The longest head of a job: its flags, ticket, seq, attempt and input word.
const JOB_HEAD_MAX: usize = 1 + 10 + 10 + 5 + 10;

/// Encodes jobs of `task` as one batch. Per job, a flags byte says which fields follow, each an
/// unsigned LEB128 varint: the `ticket` unless it is the one after the job before's, the `seq`
/// likewise, the `attempt` unless it is 1; then its input: with the shared flag, the place of
/// its shared-memory region among its message's regions, else the length of its bytes and
/// themselves. A message starts from ticket and seq 0 (so its first job writes both).
///
/// Tickets run on within a batch, and a fresh input's seq follows the one before, so a job with
/// a tiny input takes two bytes plus the input's: fewer bytes to copy into and out of the
/// socket, which at millions of jobs a second cost more than encoding them.
///
/// The jobs are `(seq, attempt, input)`, under consecutive tickets from `first_ticket`. Inline
/// inputs are copied straight into the message; a shared one travels as another handle on its
/// region (the caller keeps its own, which decides the region's reuse).
pub(crate) fn encode_batch<'a, I>(
    task: &str,
    timeout: Option<std::time::Duration>,
    first_ticket: u64,
    jobs: I,
) -> Batch
where
    I: IntoIterator<Item = (u64, u32, &'a Payload)>,
    I::IntoIter: Clone,
{
    let jobs = jobs.into_iter();
    // Sized up front for the usual heads of two bytes; a longer one may grow it.
    let size = jobs
        .clone()
        .map(|(_, _, input)| match input {
            Payload::Inline(bytes) => 2 + bytes.len(),
            Payload::Shared(_) => 2,
        })
        .sum::<usize>()
        + JOB_HEAD_MAX;
    let mut coded = Vec::with_capacity(size);
    let mut batch = Batch {
        task: task.to_string(),
        timeout,
        coded: Vec::new(),
        regions: Vec::new(),
        cuts: Vec::new(),
    };
    let mut next = (0, 0);
    for ((seq, attempt, input), ticket) in jobs.zip(first_ticket..) {
        // The usual job, its head written at once: flags 0 and a one-byte length. `put_job`
        // writes it the same way (`batch_tests::put_job_alone_writes_the_same_bytes`); through
        // it alone, filling a batch took 16 more instructions a job, 3.7% of the
        // coordinator's (200K no-ops on 2 processes, callgrind).
        if let Payload::Inline(bytes) = input
            && (ticket, seq, attempt) == (next.0, next.1, 1)
            && bytes.len() < 0x80
        {
            coded.extend_from_slice(&[0, bytes.len() as u8]);
            if !bytes.is_empty() {
                coded.extend_from_slice(bytes);
            }
            next = (ticket.wrapping_add(1), seq.wrapping_add(1));
            continue;
        }
        put_job(
            &mut coded,
            &mut batch,
            &mut next,
            (ticket, seq, attempt, input),
        );
    }
    batch.coded = coded;
    batch
}

/// Writes a job of any kind into `coded`, a batch's bytes, its region into `batch` (see
/// [`encode_batch`]); `next` is the ticket and seq a job need not write.
#[inline(never)]
fn put_job(
    coded: &mut Vec<u8>,
    batch: &mut Batch,
    next: &mut (u64, u64),
    (ticket, seq, attempt, input): (u64, u64, u32, &Payload),
) {
    let (mut flags, word, bytes): (u8, u64, &[u8]) = match input {
        Payload::Inline(bytes) => (0, bytes.len() as u64, bytes),
        Payload::Shared(_) => {
            let place = batch.regions.len() % REGIONS_PER_MESSAGE;
            if place == 0 && !batch.regions.is_empty() {
                // A message of its own: it starts from ticket and seq 0 again.
                batch.cuts.push(coded.len());
                *next = (0, 0);
            }
            batch.regions.push(input.clone());
            (JOB_SHARED, place as u64, &[])
        }
    };
    if ticket != next.0 {
        flags |= JOB_TICKET;
    }
    if seq != next.1 {
        flags |= JOB_SEQ;
    }
    if attempt != 1 {
        flags |= JOB_ATTEMPT;
    }
    coded.push(flags);
    if flags & JOB_TICKET != 0 {
        put_varint(coded, ticket);
    }
    if flags & JOB_SEQ != 0 {
        put_varint(coded, seq);
    }
    if flags & JOB_ATTEMPT != 0 {
        put_varint(coded, attempt.into());
    }
    put_varint(coded, word);
    coded.extend_from_slice(bytes);
    *next = (ticket.wrapping_add(1), seq.wrapping_add(1));
}

impl Batch {
    /// The messages of a batch, each with at most [`REGIONS_PER_MESSAGE`] regions; the first
    /// carries `returned`.
    fn deliveries(self, returned: Vec<u64>) -> Vec<Delivery> {
        let Batch {
            task,
            timeout,
            mut coded,
            mut regions,
            cuts,
        } = self;
        let mut all = Vec::with_capacity(cuts.len() + 1);
        // From the back, so that each message's regions are the tail left.
        for (k, &cut) in cuts.iter().enumerate().rev() {
            all.push(Delivery {
                task: task.clone(),
                timeout,
                coded: coded.split_off(cut),
                regions: regions.split_off((k + 1) * REGIONS_PER_MESSAGE),
                returned: Vec::new(),
            });
        }
        all.push(Delivery {
            task,
            timeout,
            coded,
            regions,
            returned,
        });
        all.reverse();
        all
    }
}

/// One job of a [`Delivery`], read in place: its input borrows the message's bytes or region.
pub(crate) struct Job<'a> {
    pub(crate) ticket: u64,
    pub(crate) seq: u64,
    pub(crate) attempt: u32,
    pub(crate) input: &'a [u8],
}

impl Delivery {
    /// The jobs of this message, decoded one at a time as they are taken. A garbled message
    /// yields an error, after the jobs before it, and then ends.
    pub(crate) fn jobs(&self) -> Jobs<'_> {
        Jobs {
            bytes: &self.coded,
            regions: &self.regions,
            next_ticket: 0,
            next_seq: 0,
        }
    }
}

/// The jobs of a [`Delivery`]: see [`Delivery::jobs`].
pub(crate) struct Jobs<'a> {
    bytes: &'a [u8],
    regions: &'a [Payload],
    /// The ticket and seq of a job that does not write its own.
    next_ticket: u64,
    next_seq: u64,
}

impl<'a> Jobs<'a> {
    /// The next job. The usual one (flags 0 and a short inline input) is read here at once;
    /// any other by [`any_job`](Self::any_job), which reads the usual one the same way
    /// (`batch_tests::decode_all` holds the two to it). Through `any_job` alone the workers
    /// took 8% more instructions, with [`ResultsOut::begin_any`] alone (200K no-ops on 2
    /// processes, callgrind: 47.0 M against 43.6 M).
    #[inline]
    fn job(&mut self) -> Result<Job<'a>, String> {
        if let [0, len, rest @ ..] = self.bytes
            && let Some((input, rest)) = rest.split_at_checked(*len as usize)
            && *len < 0x80
        {
            self.bytes = rest;
            let (ticket, seq) = (self.next_ticket, self.next_seq);
            (self.next_ticket, self.next_seq) = (ticket.wrapping_add(1), seq.wrapping_add(1));
            return Ok(Job {
                ticket,
                seq,
                attempt: 1,
                input,
            });
        }
        self.any_job()
    }

    /// The next job, of any kind (see [`job`](Self::job)).
    #[inline(never)]
    fn any_job(&mut self) -> Result<Job<'a>, String> {
        let bytes = &mut self.bytes;
        let flags = byte_of(bytes)?;
        if flags & !(JOB_TICKET | JOB_SEQ | JOB_ATTEMPT | JOB_SHARED) != 0 {
            return Err(bad_flags("job", flags));
        }
        let ticket = match flags & JOB_TICKET {
            0 => self.next_ticket,
            _ => varint_of(bytes)?,
        };
        let seq = match flags & JOB_SEQ {
            0 => self.next_seq,
            _ => varint_of(bytes)?,
        };
        let attempt = match flags & JOB_ATTEMPT {
            0 => 1,
            _ => {
                let n = varint_of(bytes)?;
                u32::try_from(n).map_err(|_| format!("attempt {n} out of range"))?
            }
        };
        let input = match flags & JOB_SHARED {
            0 => slice_of(bytes)?,
            _ => {
                let at = varint_of(bytes)?;
                let region = usize::try_from(at)
                    .ok()
                    .and_then(|i| self.regions.get(i))
                    .ok_or_else(|| format!("batch names a missing region {at}"))?;
                &region[..]
            }
        };
        (self.next_ticket, self.next_seq) = (ticket.wrapping_add(1), seq.wrapping_add(1));
        Ok(Job {
            ticket,
            seq,
            attempt,
            input,
        })
    }
}

impl<'a> Iterator for Jobs<'a> {
    type Item = Result<Job<'a>, String>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        let job = self.job();
        if job.is_err() {
            self.bytes = &[];
        }
        Some(job)
    }
}

#[cold]
fn bad_flags(of: &str, flags: u8) -> String {
    format!("bad {of} flags {flags:#x}")
}

#[cold]
fn short(n: u64, left: usize) -> String {
    format!("message cut short: {n} bytes wanted, {left} left")
}

/// Appends `n` as an unsigned LEB128 varint: seven bits a byte, low ones first, the top bit
/// set on every byte but the last.
#[inline]
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    if n < 0x80 {
        out.push(n as u8);
        return;
    }
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a varint that [`put_varint`] wrote.
#[inline]
fn varint_of(bytes: &mut &[u8]) -> Result<u64, String> {
    // Most are one byte: a small length, ticket or runtime.
    match bytes.split_first() {
        Some((&b, rest)) if b < 0x80 => {
            *bytes = rest;
            Ok(b.into())
        }
        _ => long_varint_of(bytes),
    }
}

fn long_varint_of(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut n = 0u64;
    for i in 0..10 {
        let &b = bytes
            .get(i)
            .ok_or_else(|| short(i as u64 + 1, bytes.len()))?;
        // The tenth byte holds the top bit of a u64 and ends it.
        if i == 9 && b > 1 {
            return Err("a varint overflows 64 bits".into());
        }
        n |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *bytes = &bytes[i + 1..];
            return Ok(n);
        }
    }
    unreachable!("the tenth byte ends a varint or is refused")
}

#[inline]
fn byte_of(bytes: &mut &[u8]) -> Result<u8, String> {
    let (&head, rest) = bytes.split_first().ok_or_else(|| short(1, 0))?;
    *bytes = rest;
    Ok(head)
}

/// A varint length and that many bytes.
#[inline]
fn slice_of<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let n = varint_of(bytes)?;
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= bytes.len())
        .ok_or_else(|| short(n, bytes.len()))?;
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

/// A result's flag: its ticket is written, not the one after the result before's.
const RESULT_TICKET: u8 = 1;

// A result's status tag, the high four bits of its flags byte (see [`ResultsOut`]), and what
// follows it before the runtime.
/// A success: its output's length and bytes.
const TAG_OK: u8 = 0;
/// A failure: its message's length and bytes.
const TAG_FAILED: u8 = 1;
const TAG_TIMED_OUT: u8 = 2;
const TAG_CANCELLED: u8 = 3;
/// A panic: its message, then [`LOCATION`] and the location, or [`NO_LOCATION`].
const TAG_PANICKED: u8 = 4;
/// A success whose output is in a shared-memory region: the region's place in the message.
const TAG_OK_SHARED: u8 = 5;

/// The flags of the usual result: the next ticket, a success.
const TAG_USUAL: u8 = TAG_OK << 4;

/// Whether a panic's location follows its message.
const NO_LOCATION: u8 = 0;
const LOCATION: u8 = 1;

/// The most room a new message of results starts with.
const MESSAGE_ROOM: usize = 64 << 10;

/// A message of results, written as the jobs finish. Per job a flags byte, its status's tag in
/// the high four bits; the `ticket` unless it is the one after the result before's; when it
/// started, as the zigzag varint of the nanoseconds since the result before ended (since 0 for
/// the first); the status's bytes and strings, each as a varint length and its bytes (a panic's
/// location after a presence byte; a shared output as the varint place of its region in
/// `regions`); then its `runtime_ns`. Every integer is an unsigned LEB128 varint, so a no-op's
/// result takes four bytes.
///
/// An output is encoded straight into the message as its task returns it: a worker keeps no
/// record of a finished job, and the message needs no pass of its own.
#[derive(Default)]
pub(crate) struct ResultsOut {
    coded: Vec<u8>,
    regions: Vec<Payload>,
    /// Where the result being written starts, and where its status does.
    head: usize,
    body: usize,
    /// When the result being written started.
    started_ns: u64,
    /// The ticket of a result that does not write its own, and when the one before ended.
    next_ticket: u64,
    ended_ns: u64,
}

impl ResultsOut {
    /// Starts the result of job `ticket`, begun at `started_ns`; [`end`](Self::end) finishes
    /// it, after its output or how it ended. Its status is a success until said otherwise.
    ///
    /// The usual result (the next ticket, started as the one before ended) is begun here at
    /// once; any other by [`begin_any`](Self::begin_any), which writes the usual one the same
    /// way (`results_tests::written` holds the two to it). See [`Jobs::job`] for the figure.
    /// Inlined into the worker's loop, as is `end`: a call each cost as much as the usual
    /// case's work, in saving and restoring registers.
    #[inline(always)]
    pub(crate) fn begin(&mut self, ticket: u64, started_ns: u64) {
        if (ticket, started_ns) == (self.next_ticket, self.ended_ns) {
            self.head = self.coded.len();
            self.started_ns = started_ns;
            self.coded.extend_from_slice(&[TAG_USUAL, 0]);
            self.body = self.head + 2;
            self.next_ticket = ticket.wrapping_add(1);
            return;
        }
        self.begin_any(ticket, started_ns);
    }

    /// Begins a result of any kind (see [`begin`](Self::begin)).
    #[inline(never)]
    fn begin_any(&mut self, ticket: u64, started_ns: u64) {
        self.head = self.coded.len();
        self.started_ns = started_ns;
        let written = ticket != self.next_ticket;
        self.coded.push(match written {
            true => TAG_USUAL | RESULT_TICKET,
            false => TAG_USUAL,
        });
        if written {
            put_varint(&mut self.coded, ticket);
        }
        put_varint(
            &mut self.coded,
            zigzag(started_ns.wrapping_sub(self.ended_ns)),
        );
        self.body = self.coded.len();
        self.next_ticket = ticket.wrapping_add(1);
    }

    /// The job's output, encoded inline or, when large, into a shared-memory region.
    #[inline]
    pub(crate) fn ok<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), String> {
        let shared = encode_value(value, &mut self.coded, |out, len| {
            put_varint(out, len as u64);
        })?;
        if let Some(region) = shared {
            self.tag(TAG_OK_SHARED);
            put_varint(&mut self.coded, self.regions.len() as u64);
            self.regions.push(Payload::Shared(region));
        }
        Ok(())
    }

    /// Sets the status tag of the result being written.
    fn tag(&mut self, tag: u8) {
        let flags = &mut self.coded[self.head];
        *flags = *flags & 0x0f | tag << 4;
    }

    /// The job ended without an output: whatever of one was written goes.
    pub(crate) fn ended(&mut self, ended: Ended) {
        self.coded.truncate(self.body);
        let put = |out: &mut Vec<u8>, bytes: &[u8]| {
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        };
        let tag = match ended {
            Ended::Failed(m) => {
                put(&mut self.coded, m.as_bytes());
                TAG_FAILED
            }
            Ended::TimedOut => TAG_TIMED_OUT,
            Ended::Cancelled => TAG_CANCELLED,
            Ended::Panicked { message, location } => {
                put(&mut self.coded, message.as_bytes());
                match &location {
                    Some(at) => {
                        self.coded.push(LOCATION);
                        put(&mut self.coded, at.as_bytes());
                    }
                    None => self.coded.push(NO_LOCATION),
                }
                TAG_PANICKED
            }
        };
        self.tag(tag);
    }

    /// Finishes the result begun last, which ran for `runtime_ns`.
    #[inline]
    pub(crate) fn end(&mut self, runtime_ns: u64) {
        put_varint(&mut self.coded, runtime_ns);
        self.ended_ns = self.started_ns.wrapping_add(runtime_ns);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.coded.is_empty()
    }

    /// Whether an output went into a shared-memory region: the worker sends such a message
    /// at once, so a message carries at most one region.
    pub(crate) fn has_region(&self) -> bool {
        !self.regions.is_empty()
    }

    /// Sends the results written so far, lending their regions (see [`Lent`]), and starts
    /// the next message with room for as many.
    pub(crate) fn send(&mut self, tx: &IpcSender<Results>, lent: &mut Lent) -> std::io::Result<()> {
        let room = self.coded.len();
        let mut message = self.take(room);
        for region in &mut message.regions {
            region.lend(lent);
        }
        tx.send(message).map_err(io_error)
    }

    fn take(&mut self, room: usize) -> Results {
        // Room for as much as the last message, but not the room of one that carried large
        // outputs: a worker keeps it while idle, and under a memory limit it counts.
        let room = room.min(MESSAGE_ROOM);
        // The next message is read from its own start.
        (self.next_ticket, self.ended_ns) = (0, 0);
        Results {
            coded: std::mem::replace(&mut self.coded, Vec::with_capacity(room)),
            regions: std::mem::take(&mut self.regions),
        }
    }
}

/// A signed difference as an unsigned varint's value: small either way stays small.
#[inline]
fn zigzag(n: u64) -> u64 {
    (n << 1) ^ ((n as i64 >> 63) as u64)
}

#[inline]
fn unzigzag(n: u64) -> u64 {
    (n >> 1) ^ (n & 1).wrapping_neg()
}

/// One job's result as the coordinator reads it: the status its outcome takes, with the output
/// already made into what the coordinator keeps (see [`decode_results`]).
pub(crate) struct Received<T> {
    pub(crate) started_ns: u64,
    pub(crate) runtime_ns: u64,
    pub(crate) status: Status<T>,
}

/// Decodes a message of [`ResultsOut`], handing each result to `each` in order, its output
/// made by `output`. The results before a garbled one are handed on, then the error returned.
pub(crate) fn decode_results<T>(
    results: Results,
    mut output: impl FnMut(Payload) -> T,
    mut each: impl FnMut(Received<T>),
) -> Result<(), String> {
    let mut results = ResultsIn::new(results);
    while let Some(r) = results.next() {
        each(Received {
            started_ns: r.started_ns,
            runtime_ns: r.runtime_ns,
            status: r.output.into_status(&mut output),
        });
    }
    results.garbled().map_or(Ok(()), Err)
}

/// One result as [`ResultsIn`] reads it, before its status is made.
pub(crate) struct Read {
    pub(crate) ticket: u64,
    pub(crate) started_ns: u64,
    pub(crate) runtime_ns: u64,
    pub(crate) output: Output,
}

/// How a job ended, as read. The usual result, a success whose output is inline, is its bytes;
/// any other status is boxed, so that a [`Read`] is six words that the reader hands over in
/// registers. Read as a `Status` in place, in an `Option` of a `Result`, each result went
/// through the stack twice: the coordinator took 19% more instructions (200K no-ops on 2
/// processes, callgrind: 130 M against 110 M). As a `Vec` and an `Option<Box<_>>` beside it,
/// 11% more (115 M against 103 M). A garbled message is told apart by
/// [`ResultsIn::garbled`], not by a `Result` around each result: that cost 29 instructions a
/// job.
pub(crate) enum Output {
    Inline(Vec<u8>),
    Other(Box<Status<Payload>>),
}

impl Output {
    /// The status the result takes, its output (if any) made by `output`.
    pub(crate) fn into_status<T>(self, output: impl FnOnce(Payload) -> T) -> Status<T> {
        match self {
            Output::Inline(bytes) => Status::Ok(output(Payload::Inline(bytes))),
            Output::Other(status) => status.map(output),
        }
    }
}

/// A message of [`ResultsOut`], read one result at a time.
pub(crate) struct ResultsIn {
    coded: Vec<u8>,
    /// Where the next result starts.
    at: usize,
    regions: Vec<Option<Payload>>,
    /// The ticket of a result that does not write its own, and when the one before ended.
    next_ticket: u64,
    ended_ns: u64,
    /// What was wrong with the result the message ended at, if it was garbled.
    garbled: Option<String>,
}

impl ResultsIn {
    pub(crate) fn new(results: Results) -> ResultsIn {
        let Results { coded, regions } = results;
        ResultsIn {
            coded,
            at: 0,
            regions: regions.into_iter().map(Some).collect(),
            next_ticket: 0,
            ended_ns: 0,
            garbled: None,
        }
    }

    /// The next result; `None` after the last, or at a garbled one, which ends the message
    /// (see [`garbled`](Self::garbled)).
    ///
    /// The usual result (the next ticket, a success with a short inline output, started less
    /// than 64 ns after the one before ended) is read here at once, its flags, start and
    /// length together; any other by [`next_any`](Self::next_any), which reads the usual one
    /// the same way (`results_tests::decode_all` holds the two to it). Through `next_any`
    /// alone the coordinator took 13% more instructions (200K no-ops on 2 processes,
    /// callgrind: 110 M against 97 M).
    #[inline]
    pub(crate) fn next(&mut self) -> Option<Read> {
        let bytes = self.coded.get(self.at..)?;
        if let [TAG_USUAL, gap, len, rest @ ..] = bytes
            && (gap | len) < 0x80
            && let Some((out, mut rest)) = rest.split_at_checked(*len as usize)
            && let Ok(runtime_ns) = varint_of(&mut rest)
        {
            // An empty output (a task returning `()`) skips the allocator's call.
            let output = if out.is_empty() {
                Vec::new()
            } else {
                out.to_vec()
            };
            let (ticket, started_ns) = (
                self.next_ticket,
                self.ended_ns.wrapping_add(unzigzag((*gap).into())),
            );
            self.at = self.coded.len() - rest.len();
            self.next_ticket = ticket.wrapping_add(1);
            self.ended_ns = started_ns.wrapping_add(runtime_ns);
            return Some(Read {
                ticket,
                started_ns,
                runtime_ns,
                output: Output::Inline(output),
            });
        }
        self.next_any()
    }

    /// The next result, of any kind (see [`next`](Self::next)).
    #[inline(never)]
    fn next_any(&mut self) -> Option<Read> {
        let mut bytes = self.coded.get(self.at..).filter(|b| !b.is_empty())?;
        let read = read_any(
            &mut bytes,
            &mut self.regions,
            self.next_ticket,
            self.ended_ns,
        );
        match read {
            Ok(r) => {
                self.at = self.coded.len() - bytes.len();
                self.next_ticket = r.ticket.wrapping_add(1);
                self.ended_ns = r.started_ns.wrapping_add(r.runtime_ns);
                Some(r)
            }
            Err(e) => {
                self.at = self.coded.len();
                self.garbled = Some(e);
                None
            }
        }
    }

    /// What was wrong with the result that ended the message early, if one did.
    pub(crate) fn garbled(&mut self) -> Option<String> {
        self.garbled.take()
    }
}

/// Reads one result of any kind; the statuses other than an inline success are read by
/// [`ended_of`], out of line.
fn read_any(
    bytes: &mut &[u8],
    regions: &mut [Option<Payload>],
    next_ticket: u64,
    ended_ns: u64,
) -> Result<Read, String> {
    let flags = byte_of(bytes)?;
    if flags & 0x0f & !RESULT_TICKET != 0 {
        return Err(bad_flags("result", flags));
    }
    let ticket = match flags & RESULT_TICKET {
        0 => next_ticket,
        _ => varint_of(bytes)?,
    };
    let started_ns = ended_ns.wrapping_add(unzigzag(varint_of(bytes)?));
    let output = match flags >> 4 {
        TAG_OK => Output::Inline(slice_of(bytes)?.to_vec()),
        tag => Output::Other(Box::new(ended_of(tag, bytes, regions)?)),
    };
    let runtime_ns = varint_of(bytes)?;
    Ok(Read {
        ticket,
        started_ns,
        runtime_ns,
        output,
    })
}

/// The status of a result with tag `tag`, other than an inline success.
#[inline(never)]
fn ended_of(
    tag: u8,
    bytes: &mut &[u8],
    regions: &mut [Option<Payload>],
) -> Result<Status<Payload>, String> {
    fn string_of(bytes: &mut &[u8]) -> Result<String, String> {
        String::from_utf8(slice_of(bytes)?.to_vec()).map_err(|e| e.to_string())
    }
    Ok(match tag {
        TAG_OK_SHARED => {
            let at = varint_of(bytes)?;
            let region = usize::try_from(at)
                .ok()
                .and_then(|i| regions.get_mut(i)?.take())
                .ok_or_else(|| format!("results name a missing region {at}"))?;
            Status::Ok(region)
        }
        TAG_FAILED => Status::Failed(string_of(bytes)?),
        TAG_TIMED_OUT => Status::TimedOut,
        TAG_CANCELLED => Status::Cancelled,
        TAG_PANICKED => Status::Panicked {
            message: string_of(bytes)?,
            location: match byte_of(bytes)? {
                NO_LOCATION => None,
                LOCATION => Some(string_of(bytes)?),
                other => return Err(format!("bad location flag {other}")),
            },
        },
        other => return Err(format!("bad status tag {other}")),
    })
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
        let shown = |ticket, started_ns, runtime_ns, status: &Status<Vec<u8>>| {
            format!("{ticket} {started_ns} {runtime_ns} {status:?}")
        };
        let read = |next: fn(&mut ResultsIn) -> Option<Read>| {
            let mut all = Vec::new();
            let mut results = ResultsIn::new(coded(bytes));
            while let Some(r) = next(&mut results) {
                let (ticket, started_ns, runtime_ns) = (r.ticket, r.started_ns, r.runtime_ns);
                let status = r.output.into_status(|p| p.to_vec());
                all.push(shown(ticket, started_ns, runtime_ns, &status));
            }
            results.garbled().map_or(Ok(all), Err)
        };
        // The usual results read at once, the rest by `next_any`: the same results, and the
        // same error where the message is garbled, as `next_any` alone reads.
        let all = read(ResultsIn::next);
        assert_eq!(all, read(ResultsIn::next_any), "read by next_any alone");
        all
    }

    /// One result as written: ticket, started, runtime, and the output's bytes or how it ended.
    type Sent = (u64, u64, u64, Result<Vec<u8>, Ended>);

    /// Writes `results` as a worker does, the output bytes as a tuple of bytes (which bincode
    /// encodes as themselves), and returns the message and what `decode_all` should show.
    fn written(results: Vec<Sent>) -> (Vec<u8>, Vec<String>) {
        let written = written_by(results.clone(), ResultsOut::begin);
        let any = written_by(results, ResultsOut::begin_any);
        assert_eq!(written, any, "begun by begin_any alone");
        written
    }

    fn written_by(
        results: Vec<Sent>,
        begin: fn(&mut ResultsOut, u64, u64),
    ) -> (Vec<u8>, Vec<String>) {
        use crate::outcome::Status as Received;
        let mut out = ResultsOut::default();
        let mut want = Vec::new();
        for (ticket, started_ns, runtime_ns, status) in results {
            begin(&mut out, ticket, started_ns);
            let shown = match status {
                Ok(bytes) => {
                    match bytes[..] {
                        [] => out.ok(&()).unwrap(),
                        [a, b, c] => out.ok(&(a, b, c)).unwrap(),
                        _ => unreachable!("the outputs tested"),
                    }
                    Received::Ok(bytes)
                }
                Err(ended) => {
                    // Whatever the task had written goes.
                    out.ok(&(7u8, 7u8)).unwrap();
                    let shown = match &ended {
                        Ended::Failed(m) => Received::Failed(m.clone()),
                        Ended::TimedOut => Received::TimedOut,
                        Ended::Cancelled => Received::Cancelled,
                        Ended::Panicked { message, location } => Received::Panicked {
                            message: message.clone(),
                            location: location.clone(),
                        },
                    };
                    out.ended(ended);
                    shown
                }
            };
            out.end(runtime_ns);
            want.push(format!("{ticket} {started_ns} {runtime_ns} {shown:?}"));
        }
        (out.take(0).coded, want)
    }

    /// A value that encodes to one more byte each time it is encoded.
    struct Growing(std::sync::atomic::AtomicUsize);

    impl Serialize for Growing {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            s.collect_seq(std::iter::repeat_n(1u8, n))
        }
    }

    #[test]
    fn an_output_that_changes_while_encoded_fails_its_job_alone() {
        let mut out = ResultsOut::default();
        out.begin(0, 10);
        out.ok(&()).unwrap();
        out.end(1);
        out.begin(1, 20);
        let err = out.ok(&Growing(3.into())).unwrap_err();
        assert!(err.contains("changed while being encoded"), "{err}");
        out.ended(Ended::Failed(err));
        out.end(2);
        let got = decode_all(&out.take(0).coded).expect("the message stays readable");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("0 10 1 Ok("), "{got:?}");
        assert!(got[1].starts_with("1 20 2 Failed("), "{got:?}");
    }

    #[test]
    fn results_round_trip_every_status() {
        let done = |ticket, status| (ticket, u64::MAX - ticket, 1 << 40, status);
        let results = vec![
            done(0, Ok(vec![])),
            done(1, Ok(vec![1, 2, 3])),
            done(2, Err(Ended::Failed("nope: é".into()))),
            done(3, Err(Ended::TimedOut)),
            done(4, Err(Ended::Cancelled)),
            done(
                5,
                Err(Ended::Panicked {
                    message: "boom".into(),
                    location: Some("src/x.rs:1:2".into()),
                }),
            ),
            done(
                6,
                Err(Ended::Panicked {
                    message: String::new(),
                    location: None,
                }),
            ),
            done(7, Ok(vec![4, 5, 6])),
        ];
        let (bytes, want) = written(results);
        assert_eq!(decode_all(&bytes), Ok(want));
        assert_eq!(decode_all(&[]), Ok(vec![]));
    }

    #[test]
    fn truncated_or_garbled_results_are_an_error_not_a_panic() {
        let (bytes, _) = written(vec![(7, 8, 9, Err(Ended::Failed("message".into())))]);
        for n in 0..bytes.len() {
            assert!(decode_all(&bytes[..n]).is_err() || n == 0, "{n} bytes");
        }
        for flags in [0x91, 0x13, 0xf0] {
            let mut bad = bytes.clone();
            bad[0] = flags;
            assert!(decode_all(&bad).is_err(), "flags {flags:#x}");
        }
        // A failure whose message claims more bytes than there are, or than 64 bits hold.
        let mut huge = vec![0x10, 0];
        put_varint(&mut huge, u64::MAX);
        huge.extend_from_slice(b"message\x01");
        assert!(decode_all(&huge).is_err());
        let mut over = vec![0x10, 0];
        over.extend_from_slice(&[0xff; 10]);
        assert!(decode_all(&over).is_err());
    }

    #[test]
    fn results_run_on_from_the_one_before() {
        // Consecutive tickets, each job starting as the one before ended: four bytes a no-op.
        let (bytes, want) = written(vec![
            (10, 1_000, 7, Ok(vec![])),
            (11, 1_007, 3, Ok(vec![])),
            (12, 1_010, 300, Ok(vec![])),
            // Out of turn, and started before the last one ended.
            (20, 1_000, 1, Ok(vec![])),
            (21, 5_000, 2, Err(Ended::TimedOut)),
        ]);
        assert_eq!(decode_all(&bytes), Ok(want));
        // The first took flags, ticket 10, a two-byte start, length 0 and runtime 7.
        assert_eq!(
            &bytes[6..10],
            &[0, 0, 0, 3],
            "the second: flags, start, length, runtime"
        );
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        let mut values = vec![0, 1, 127, 128, 255, 16_383, 16_384, u64::MAX - 1, u64::MAX];
        values.extend((0..64).map(|b| 1u64 << b));
        let mut bytes = Vec::new();
        for &v in &values {
            put_varint(&mut bytes, v);
            put_varint(&mut bytes, zigzag(v));
        }
        let mut read = &bytes[..];
        for &v in &values {
            assert_eq!(varint_of(&mut read), Ok(v));
            assert_eq!(varint_of(&mut read).map(unzigzag), Ok(v));
        }
        assert!(read.is_empty());
        assert_eq!(zigzag(1u64.wrapping_neg()), 1, "-1 is small");
        assert!(varint_of(&mut &[0x80][..]).is_err(), "cut short");
        assert!(varint_of(&mut &[0xff; 10][..]).is_err(), "past 64 bits");
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    type Decoded = (u64, u64, u32, Vec<u8>);

    /// The jobs of `d`, as the worker reads them; `any_job` alone must read the same jobs,
    /// and fail where they do.
    fn decode_all(d: &Delivery) -> Result<Vec<Decoded>, String> {
        let decoded = |j: Job<'_>| (j.ticket, j.seq, j.attempt, j.input.to_vec());
        let all = d.jobs().map(|j| j.map(decoded)).collect();
        let mut jobs = d.jobs();
        let mut any = Vec::new();
        let any = loop {
            if jobs.bytes.is_empty() {
                break Ok(any);
            }
            match jobs.any_job() {
                Ok(j) => any.push(decoded(j)),
                Err(e) => break Err(e),
            }
        };
        assert_eq!(all, any, "read by any_job alone");
        all
    }

    fn delivery(coded: &[u8]) -> Delivery {
        Delivery {
            task: "t".into(),
            timeout: None,
            coded: coded.to_vec(),
            regions: Vec::new(),
            returned: Vec::new(),
        }
    }

    fn shared(bytes: &[u8]) -> Payload {
        let region = Region::filled(bytes.len(), |buf| {
            buf.copy_from_slice(bytes);
            true
        })
        .expect("a small region within the budget");
        Payload::Shared(region)
    }

    /// The messages of `inputs` as jobs under tickets from 10, with seq `100 + i`.
    fn sent(inputs: &[Payload]) -> Vec<Delivery> {
        let jobs = inputs
            .iter()
            .zip(0..)
            .map(|(p, i)| (100 + i, 1 + i as u32, p));
        let batch = encode_batch("t", Some(std::time::Duration::from_secs(3)), 10, jobs);
        batch.deliveries(vec![42])
    }

    fn expected(inputs: &[Payload]) -> Vec<Decoded> {
        inputs
            .iter()
            .zip(0..)
            .map(|(p, i)| (10 + i, 100 + i, 1 + i as u32, p.to_vec()))
            .collect()
    }

    #[test]
    fn put_job_alone_writes_the_same_bytes() {
        let mut inputs = vec![Payload::Inline(vec![]), Payload::Inline(vec![1; 0x7f])];
        inputs.push(Payload::Inline(vec![2; 0x80]));
        for i in 0..REGIONS_PER_MESSAGE + 2 {
            inputs.push(shared(&[i as u8]));
            inputs.push(Payload::Inline(vec![i as u8]));
        }
        // Seqs that skip, attempts past the first, and every job's fields run on.
        let jobs = || {
            inputs.iter().zip(0u64..).map(|(p, i)| {
                let seq = if i % 5 == 3 { i + 100 } else { i };
                (seq, 1 + u32::from(i % 7 == 4), p)
            })
        };
        let batch = encode_batch("t", None, 3, jobs());
        let mut alone = Batch {
            task: "t".into(),
            timeout: None,
            coded: Vec::new(),
            regions: Vec::new(),
            cuts: Vec::new(),
        };
        let (mut coded, mut next) = (Vec::new(), (0, 0));
        for ((seq, attempt, input), ticket) in jobs().zip(3..) {
            put_job(
                &mut coded,
                &mut alone,
                &mut next,
                (ticket, seq, attempt, input),
            );
        }
        assert_eq!(coded, batch.coded);
        assert_eq!(alone.cuts, batch.cuts);
        assert_eq!(alone.regions.len(), batch.regions.len());
        assert!(!batch.cuts.is_empty(), "a cut is tested");
        // Read back as the worker reads them, and by `any_job` alone.
        let mut read = Vec::new();
        for d in batch.deliveries(Vec::new()) {
            read.extend(decode_all(&d).expect("each message decodes"));
        }
        assert_eq!(read.len(), inputs.len());
    }

    #[test]
    fn batches_round_trip_inline_and_shared_inputs() {
        let inputs = vec![
            Payload::Inline(vec![]),
            Payload::Inline(vec![1, 2, 3]),
            shared(b"large"),
            Payload::Inline(vec![9; 1000]),
            shared(b"another"),
        ];
        let batch = encode_batch(
            "t",
            None,
            10,
            inputs
                .iter()
                .zip(0..)
                .map(|(p, i)| (100 + i, 1 + i as u32, p)),
        );
        assert_eq!(batch.coded.len(), 4 + 5 + 2 + 1000 + 5 + 2 + 2);
        assert!(batch.cuts.is_empty());
        let messages = sent(&inputs);
        assert_eq!(messages.len(), 1);
        let d = &messages[0];
        assert_eq!((d.task.as_str(), d.returned.as_slice()), ("t", &[42][..]));
        assert_eq!(d.timeout, Some(std::time::Duration::from_secs(3)));
        assert_eq!(d.regions.len(), 2);
        assert_eq!(decode_all(d), Ok(expected(&inputs)));
        assert_eq!(decode_all(&delivery(&[])), Ok(vec![]));
    }

    #[test]
    fn a_batch_with_many_shared_inputs_is_cut_into_messages() {
        let n = REGIONS_PER_MESSAGE;
        let mut inputs = vec![Payload::Inline(vec![1])];
        for i in 0..2 * n + 3 {
            inputs.push(shared(&[i as u8; 3]));
            inputs.push(Payload::Inline(vec![i as u8]));
        }
        let messages = sent(&inputs);
        assert_eq!(messages.len(), 3);
        let mut all = Vec::new();
        for (k, d) in messages.iter().enumerate() {
            assert!(d.regions.len() <= n);
            assert_eq!(
                d.returned.is_empty(),
                k > 0,
                "only the first carries returns"
            );
            assert_eq!(d.timeout, Some(std::time::Duration::from_secs(3)));
            all.extend(decode_all(d).expect("each message decodes alone"));
        }
        assert_eq!(all, expected(&inputs));
    }

    #[test]
    fn truncated_or_garbled_batches_are_an_error_not_a_panic() {
        let inputs = [Payload::Inline(vec![5; 7]), Payload::Inline(vec![])];
        let messages = sent(&inputs);
        let bytes = &messages[0].coded;
        // Flags, ticket 10, seq 100, length 7 (attempt 1 is not written), then the input; the
        // second job writes only its flags, attempt 2 and length 0.
        assert_eq!(bytes[..4], [JOB_TICKET | JOB_SEQ, 10, 100, 7]);
        assert_eq!(bytes[11..], [JOB_ATTEMPT, 2, 0]);
        let first = 4 + 7;
        for n in 0..bytes.len() {
            let decoded = decode_all(&delivery(&bytes[..n]));
            match n {
                0 => assert_eq!(decoded, Ok(vec![])),
                n if n == first => assert_eq!(decoded.map(|j| j.len()), Ok(1)),
                n => assert!(decoded.is_err(), "{n} bytes"),
            }
        }
        let garbled = |at: usize, with: &[u8]| {
            let mut bad = bytes.clone();
            bad[at..at + with.len()].copy_from_slice(with);
            decode_all(&delivery(&bad))
        };
        assert!(garbled(0, &[0x13]).is_err(), "bad flags");
        assert!(garbled(3, &[0x7f]).is_err(), "a length past the end");
        assert!(
            garbled(11, &[JOB_ATTEMPT, 0xff, 0xff]).is_err(),
            "an attempt cut short"
        );
        let missing = garbled(0, &[JOB_TICKET | JOB_SEQ | JOB_SHARED]);
        assert!(missing.is_err(), "a region the message does not carry");
        // The jobs before a garbled one still come out, then the error, then nothing.
        let mut bad = bytes.clone();
        bad[first] = 0xf0;
        let d = delivery(&bad);
        let mut jobs = d.jobs();
        assert!(matches!(jobs.next(), Some(Ok(j)) if j.input == [5; 7]));
        assert!(matches!(jobs.next(), Some(Err(_))));
        assert!(jobs.next().is_none());
    }
}

/// The bytes of every kind of job and result, pinned: the encoders and decoders are written for
/// speed, and any change of theirs must leave the format as it is (or bump [`PROTOCOL`]).
#[cfg(test)]
mod format_tests {
    use super::*;

    fn shared(bytes: &[u8]) -> Payload {
        let region = Region::filled(bytes.len(), |buf| {
            buf.copy_from_slice(bytes);
            true
        })
        .expect("a small region within the budget");
        Payload::Shared(region)
    }

    #[test]
    fn every_kind_of_job_keeps_its_bytes() {
        let long = Payload::Inline(vec![6; 200]);
        let inputs = [
            (0, 1, Payload::Inline(vec![])),
            (1, 1, Payload::Inline(vec![5])),
            (5, 1, long),
            (6, 3, Payload::Inline(vec![])),
            (7, 1, shared(b"big")),
            (1 << 40, 1, Payload::Inline(vec![7, 8])),
            (1 << 40 | 1, u32::MAX, shared(b"bigger")),
        ];
        let batch = encode_batch("t", None, 10, inputs.iter().map(|(s, a, p)| (*s, *a, p)));
        let mut want = vec![JOB_TICKET, 10, 0, 0, 1, 5, JOB_SEQ, 5, 0xc8, 0x01];
        want.extend([6; 200]);
        want.extend([JOB_ATTEMPT, 3, 0, JOB_SHARED, 0]);
        want.extend([JOB_SEQ, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 2, 7, 8]);
        want.extend([JOB_ATTEMPT | JOB_SHARED, 0xff, 0xff, 0xff, 0xff, 0x0f, 1]);
        assert_eq!(batch.coded, want);
        let delivery = batch.deliveries(Vec::new()).pop().expect("one message");
        let jobs: Vec<_> = delivery
            .jobs()
            .map(|j| j.map(|j| (j.ticket, j.seq, j.attempt, j.input.to_vec())))
            .collect::<Result<_, _>>()
            .expect("the batch decodes");
        let sent: Vec<_> = inputs
            .iter()
            .zip(10..)
            .map(|((s, a, p), t)| (t, *s, *a, p.to_vec()))
            .collect();
        assert_eq!(jobs, sent);
    }

    #[test]
    fn every_kind_of_result_keeps_its_bytes() {
        let mut out = ResultsOut::default();
        let mut written = |ticket, started_ns, output: Result<&[u8], Ended>, runtime_ns| {
            out.begin(ticket, started_ns);
            match output {
                Ok(bytes) => out.ok(bytes).unwrap(),
                Err(ended) => out.ended(ended),
            }
            out.end(runtime_ns);
        };
        let big = vec![9u8; SHARE_AT];
        written(0, 0, Ok(&[]), 5);
        written(1, 5, Ok(&[1, 2, 3]), 300);
        written(7, 400, Err(Ended::Failed("no".into())), 1);
        written(8, 401, Err(Ended::TimedOut), 0);
        written(9, 401, Err(Ended::Cancelled), 0);
        let panicked = |message: &str, location: Option<&str>| Ended::Panicked {
            message: message.into(),
            location: location.map(Into::into),
        };
        written(10, 300, Err(panicked("p", Some("a:1"))), 2);
        written(11, 302, Err(panicked("", None)), 0);
        written(12, 302, Ok(&[6; 200]), 1);
        written(13, 303, Ok(&big), 4);
        assert_eq!(out.regions.len(), 1, "the large output is shared");
        let message = out.take(0);
        // Outputs are bincode: a byte slice is its varint length and its bytes.
        let mut want = vec![0, 0, 1, 0, 5];
        want.extend([0, 0, 4, 3, 1, 2, 3, 0xac, 0x02]);
        want.extend([0x11, 7, 0xbe, 0x01, 2, b'n', b'o', 1]);
        want.extend([0x20, 0, 0, 0x30, 0, 0]);
        want.extend([0x40, 0xc9, 0x01, 1, b'p', 1, 3, b'a', b':', b'1', 2]);
        want.extend([0x40, 0, 0, 0, 0]);
        want.extend([0, 0, 0xc9, 0x01, 200]);
        want.extend([6; 200]);
        want.extend([1, 0x50, 0, 0, 4]);
        assert_eq!(message.coded, want);
        let mut got = Vec::new();
        let mut results = ResultsIn::new(message);
        while let Some(r) = results.next() {
            let (ticket, started_ns, runtime_ns) = (r.ticket, r.started_ns, r.runtime_ns);
            got.push((
                ticket,
                started_ns,
                runtime_ns,
                r.output.into_status(|p| p.to_vec()),
            ));
        }
        assert_eq!(results.garbled(), None, "the message decodes");
        // A length of 251 or more is a marker byte, then the length in as few bytes as hold it.
        let mut big_output = vec![0xfc];
        big_output.extend((SHARE_AT as u32).to_le_bytes());
        big_output.extend(&big);
        let failed = |m: &str| Status::Failed(m.into());
        let sent = vec![
            (0, 0, 5, Status::Ok(vec![0])),
            (1, 5, 300, Status::Ok(vec![3, 1, 2, 3])),
            (7, 400, 1, failed("no")),
            (8, 401, 0, Status::TimedOut),
            (9, 401, 0, Status::Cancelled),
            (
                10,
                300,
                2,
                Status::Panicked {
                    message: "p".into(),
                    location: Some("a:1".into()),
                },
            ),
            (
                11,
                302,
                0,
                Status::Panicked {
                    message: String::new(),
                    location: None,
                },
            ),
            (12, 302, 1, Status::Ok([&[200][..], &[6; 200]].concat())),
            (13, 303, 4, Status::Ok(big_output)),
        ];
        assert_eq!(got.len(), sent.len());
        for (got, sent) in got.iter().zip(&sent) {
            // Shown cut short: the shared output is 256 KiB.
            let (got, sent) = (format!("{got:?}"), format!("{sent:?}"));
            let cut = |s: &str| s.chars().take(200).collect::<String>();
            assert!(got == sent, "got {}, sent {}", cut(&got), cut(&sent));
        }
    }
}
