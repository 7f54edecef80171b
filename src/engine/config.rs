//! The pool's fixed configuration and the limits it is checked against.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::task::Backend;

/// Configuration fixed when the pool is built.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) backend: Backend,
    pub(crate) timeout: Option<Duration>,
    pub(crate) keep_order: bool,
    pub(crate) batch: Option<usize>,
    pub(crate) program: Option<PathBuf>,
    pub(crate) start_timeout: Duration,
    /// A timeout as a multiple of the median runtime of the jobs finished so far (`--timeout
    /// 200%` is 2.0), in force once three jobs have finished; `timeout` wins if both are set.
    pub(crate) timeout_of_median: Option<f64>,
    /// The address-space limit of each process worker, in bytes (inherited by the commands it
    /// runs).
    pub(crate) memory_limit: Option<u64>,
    /// Attempts per job in all: a job that fails, crashes or times out runs again until this
    /// many have been made.
    pub(crate) attempts: u32,
    /// Whether a worker may be handed jobs beyond the one it runs (see `credit`).
    pub(crate) lookahead: bool,
    /// How long a job past its deadline, or cancelled, gets to stop on its own (a command
    /// runs its kill sequence): before its process worker is killed or its thread abandoned,
    /// and before dropping the pool gives up on its abandoned thread. `None`:
    /// [`PROCESS_GRACE`], no grace for a thread, and [`ABANDON_WAIT`].
    pub(crate) grace: Option<Duration>,
}

impl Config {
    /// Refuses settings no pool can run with, so that none reaches a worker as a panic.
    pub(super) fn check(&self) -> Result<(), Error> {
        let bad = |message: String| Err(Error::new(ErrorKind::Config, message));
        if self.workers == 0 {
            return bad("a pool needs at least one worker".into());
        }
        if self.workers > MAX_WORKERS {
            return bad(format!(
                "{} workers asked for: a pool has at most {MAX_WORKERS}",
                self.workers
            ));
        }
        if let Some(f) = self.timeout_of_median
            && !(f.is_finite() && f > 0.0)
        {
            return bad(format!(
                "a timeout of {f} times the median runtime: give a positive, finite factor"
            ));
        }
        if let Some(bytes) = self.memory_limit
            && self.backend == Backend::Process
            && bytes < MIN_MEMORY_LIMIT
        {
            return bad(format!(
                "a memory limit of {} is too small to start a worker: give at least {}",
                human_bytes(bytes),
                human_bytes(MIN_MEMORY_LIMIT)
            ));
        }
        Ok(())
    }
}

/// The most workers a pool may have: past it, starting them would exhaust threads,
/// processes or memory long before they did any work.
pub(crate) const MAX_WORKERS: usize = 4096;

/// The smallest memory limit a process worker starts under. Measured by lowering
/// `--memory-limit` until a `weft` worker no longer finished its handshake: 15 MiB for a debug
/// build, 8 MiB for a release build (the loader maps the libraries, then each thread its
/// stack); twice the larger, for other programs and other C libraries.
pub(crate) const MIN_MEMORY_LIMIT: u64 = 32 << 20;

/// A process job gets its deadline through its context and this long past it to stop on its
/// own (a command job uses it to kill its process group in order) before its worker is killed.
pub(crate) const PROCESS_GRACE: Duration = Duration::from_millis(500);

/// How long dropping the pool waits for a thread stuck in a task.
pub(crate) const ABANDON_WAIT: Duration = Duration::from_millis(100);

/// `67108864` as `64 MiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
