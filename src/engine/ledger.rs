//! The jobs' books: the queue of jobs to run again, the outcomes ready, the recent runtimes,
//! and the one decision of whether a finished attempt is reported or run again.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Config, Pull, Run};
use crate::event::Value;
use crate::outcome::{Outcome, Status};
use crate::registry::Entry;
use crate::sys::Fifo;
use crate::wire;

/// A job waiting for a worker: one handed back or to run again, or the source's next.
pub(super) struct Queued {
    pub(super) seq: u64,
    pub(super) attempt: u32,
    pub(super) input: Value,
}

/// Why a job that a drained run never started is skipped.
pub(crate) const DRAINED: &str = "not started: the run was draining";

/// How many recent runtimes a timeout relative to the median looks at.
const RUNTIMES_KEPT: usize = 255;

pub(super) struct Ledger {
    /// Jobs to hand out before the source's next, front first.
    queue: VecDeque<Queued>,
    /// Outcomes made and not yet taken, in the order they are to be reported.
    pub(super) ready: Fifo<Outcome<Value>>,
    /// The average runtime of the jobs finished so far (a moving one).
    avg_ns: Option<f64>,
    /// Runtimes of the latest jobs, for a timeout relative to the median.
    runtimes: VecDeque<u64>,
    /// Attempts per job in all (see `Config::attempts`).
    attempts: u32,
    timeout: Option<Duration>,
    timeout_of_median: Option<f64>,
}

impl Ledger {
    pub(super) fn new(cfg: &Config) -> Ledger {
        Ledger {
            queue: VecDeque::new(),
            ready: Fifo::default(),
            avg_ns: None,
            runtimes: VecDeque::new(),
            attempts: cfg.attempts,
            timeout: cfg.timeout,
            timeout_of_median: cfg.timeout_of_median,
        }
    }

    /// The average runtime so far, once a job has finished.
    pub(super) fn avg_ns(&self) -> Option<f64> {
        self.avg_ns
    }

    /// Whether each runtime is kept, rather than only their average.
    pub(super) fn keeps_runtimes(&self) -> bool {
        self.timeout_of_median.is_some()
    }

    /// The timeout in force now.
    pub(super) fn timeout(&self) -> Option<Duration> {
        if self.timeout.is_some() {
            return self.timeout;
        }
        let factor = self.timeout_of_median?;
        if self.runtimes.len() < 3 {
            return None;
        }
        let mut sorted: Vec<u64> = self.runtimes.iter().copied().collect();
        let mid = sorted.len() / 2;
        let (_, median, _) = sorted.select_nth_unstable(mid);
        Some(Duration::from_nanos((*median as f64 * factor) as u64))
    }

    /// Counts a finished job's runtime into the average (and the recent runtimes, when a
    /// timeout is relative to their median).
    // Inlined always, as are `emit`, `settle` and `retried`: every job passes here, and
    // left to the compiler (`retried` was called, not inlined), 200k no-ops took 163.0M
    // instructions instead of 156.9M on threads and 93.7M instead of 90.7M on processes
    // (callgrind, `noop.thread` and `noop.process`).
    #[inline(always)]
    pub(super) fn tally(&mut self, runtime_ns: u64) {
        if self.timeout_of_median.is_some() {
            if self.runtimes.len() == RUNTIMES_KEPT {
                self.runtimes.pop_front();
            }
            self.runtimes.push_back(runtime_ns);
        }
        self.tally_mean(1, runtime_ns);
    }

    /// Counts `n` runtimes whose mean is `mean_ns` into the average, as `n` runtimes of the
    /// mean.
    #[inline]
    pub(super) fn tally_mean(&mut self, n: u32, mean_ns: u64) {
        let sample = mean_ns as f64;
        self.avg_ns = Some(match self.avg_ns {
            None => sample,
            Some(avg) if n == 1 => avg * 0.9 + sample * 0.1,
            Some(avg) => sample + (avg - sample) * 0.9f64.powi(n.min(1 << 16) as i32),
        });
    }

    /// Whether a job's attempt `attempt` may be followed by another, should it not succeed:
    /// the one place the number of attempts is looked at.
    #[inline]
    pub(super) fn may_retry(&self, attempt: u32) -> bool {
        attempt < self.attempts
    }

    /// Reports an outcome, in input order if the run keeps it.
    // Inlined always: see `tally`.
    #[inline(always)]
    pub(super) fn emit(&mut self, run: &mut Run<'_>, outcome: Outcome<Value>) {
        match &mut run.reorder {
            Some(r) => r.push(outcome.seq, outcome, &mut self.ready),
            None => self.ready.push_back(outcome),
        }
    }

    /// Reports a finished attempt, or queues the next attempt of a job that did not succeed.
    // Inlined always: see `tally`.
    #[inline(always)]
    pub(super) fn settle(
        &mut self,
        run: &mut Run<'_>,
        outcome: Outcome<Value>,
        input: Option<wire::Payload>,
    ) {
        if !self.retried(run.entry, &outcome, input) {
            self.emit(run, outcome);
        }
    }

    /// Queues the next attempt of a job that did not succeed (at the front, so that input
    /// order is not held up behind it), if it has attempts left and its input was kept;
    /// returns whether it did. The outcome is looked at, not moved: it is a hundred-odd
    /// bytes, and every job's passes here.
    // Inlined always: see `tally`.
    #[inline(always)]
    pub(super) fn retried(
        &mut self,
        entry: Entry,
        outcome: &Outcome<Value>,
        input: Option<wire::Payload>,
    ) -> bool {
        if self.may_retry(outcome.attempt)
            && !succeeded(entry, &outcome.status)
            && let Some(input) = input
        {
            self.queue.push_front(Queued {
                seq: outcome.seq,
                attempt: outcome.attempt + 1,
                input: Value::Encoded(input),
            });
            return true;
        }
        false
    }

    /// Puts a job back at the front of the queue, as it was: it never ran to an end.
    pub(super) fn requeue(&mut self, job: Queued) {
        self.queue.push_front(job);
    }

    /// Whether no job is queued.
    pub(super) fn queue_is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Drops every queued job.
    pub(super) fn clear_queue(&mut self) {
        self.queue.clear();
    }

    /// Every queued job, taken out.
    pub(super) fn take_queue(&mut self) -> impl Iterator<Item = Queued> + use<> {
        std::mem::take(&mut self.queue).into_iter()
    }

    /// The next job to hand out: a re-queued one first, then the source's next if `pull`
    /// (inputs that are bad or skipped become outcomes on the way); `None` when there is none
    /// for now. Every job passes here: inlined always, as `Flights::land` is and for the same
    /// measured reason (see there).
    #[inline(always)]
    pub(super) fn next_job(&mut self, run: &mut Run<'_>, pull: bool) -> Option<Queued> {
        if let Some(q) = self.queue.pop_front() {
            return Some(q);
        }
        while pull && !run.exhausted {
            let seq = run.next_seq;
            let input = match run.source.next() {
                None => {
                    run.exhausted = true;
                    continue;
                }
                Some(Pull::Wait) => return None,
                // A bad input, or one to skip, is given its outcome here.
                Some(Pull::Ready(input)) => input
                    .map(Value::Local)
                    .map_err(|e| Status::Failed(format!("bad input: {e}"))),
                Some(Pull::Encoded(input)) => input.map(Value::Encoded).map_err(|e| {
                    Status::Failed(format!("cannot encode {} input: {e}", run.entry.name))
                }),
                Some(Pull::Skip(why)) => Err(Status::Skipped(why)),
            };
            run.next_seq += 1;
            match input {
                Ok(input) => {
                    return Some(Queued {
                        seq,
                        attempt: 1,
                        input,
                    });
                }
                Err(status) => self.emit(run, unstarted(seq, 1, status)),
            }
        }
        None
    }
}

/// The outcome of a job that never reached a worker.
pub(super) fn unstarted(seq: u64, attempt: u32, status: Status<Value>) -> Outcome<Value> {
    Outcome {
        seq,
        status,
        attempt,
        worker: 0,
        pid: 0,
        started: None,
        runtime: Duration::ZERO,
    }
}

/// Whether a finished attempt succeeded: an output the task counts as a success.
fn succeeded(entry: Entry, status: &Status<Value>) -> bool {
    match status {
        Status::Ok(Value::Local(out)) => (entry.succeeded)(out),
        Status::Ok(Value::Encoded(bytes)) => {
            (entry.decode_output)(bytes).is_ok_and(|out| (entry.succeeded)(&out))
        }
        _ => false,
    }
}
