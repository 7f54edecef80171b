//! What the coordinator and its workers say to each other, shared by the engine and both
//! backends: a leaf that names no backend and not the engine, so that `thread` and `process`
//! depend on it and the engine on them, with no circle.

use std::time::{Duration, SystemTime};

use crate::outcome::{Crash, Outcome};
use crate::registry::AnyBox;
use crate::wire;

/// A worker incarnation: its slot index and generation.
pub(crate) type Key = (usize, u64);

/// One moment read on both clocks, wall and monotonic: how monotonic job times become
/// wall-clock start times.
pub(crate) type Epoch = (SystemTime, u64);

/// What workers and helper threads tell the coordinator.
pub(crate) enum Event {
    /// A message of a process worker's results, in the order its jobs ran, as it arrived: it
    /// is read straight into outcomes (see `take_results`).
    Results(Key, wire::Results),
    /// A process worker sent something undecodable (it is killed).
    Garbled(Key),
    /// A thread worker has results in its buffer.
    Ready(Key),
    /// A process worker's channel closed and it was reaped.
    Exited(Key, Crash),
    /// A replacement process worker finished (or failed) its handshake: the engine takes
    /// the result from where it keeps them, so that no backend's type is named here.
    Started,
    /// Input arrived for a source that had none ready.
    Input,
    /// The run is to end now: the results iterator stops after what is already finished.
    Interrupt,
    /// Start no further job: running ones finish, the rest are reported skipped.
    Drain,
}

/// What a worker says about one of its jobs.
pub(crate) enum Report {
    /// The job ran on a thread, which made its outcome: that work is off the coordinator's
    /// thread, which every job passes through.
    Finished {
        ticket: u64,
        outcome: Outcome<Value>,
    },
    /// A job a retired thread took, handed back unstarted.
    Returned(Job),
}

/// An input or output as the engine holds it: moved for threads, encoded for processes.
pub(crate) enum Value {
    Local(AnyBox),
    Encoded(wire::Payload),
}

/// One job handed to a thread: the input moves, nothing is encoded.
pub(crate) struct Job {
    pub(crate) ticket: u64,
    pub(crate) seq: u64,
    pub(crate) attempt: u32,
    pub(crate) input: AnyBox,
}

/// This process's pid, read once (`getpid` is a system call, and threads ask per job).
pub(crate) fn own_pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// The wall-clock time of a monotonic instant, given one moment read on both clocks.
pub(crate) fn wall((wall, mono): Epoch, ns: u64) -> SystemTime {
    if ns >= mono {
        wall + Duration::from_nanos(ns - mono)
    } else {
        wall - Duration::from_nanos(mono - ns)
    }
}
