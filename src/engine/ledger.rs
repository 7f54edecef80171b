//! The jobs' books: the queue of jobs to run again, the outcomes ready, the runtimes, and the
//! one decision of whether a finished attempt is reported or run again.

use super::*;

pub(super) struct Queued {
    pub(super) seq: u64,
    pub(super) attempt: u32,
    pub(super) input: Value,
}

/// Why a job that a drained run never started is skipped.
pub(crate) const DRAINED: &str = "not started: the run was draining";

/// How many recent runtimes a timeout relative to the median looks at.
pub(super) const RUNTIMES_KEPT: usize = 255;

/// The next job to hand out: a re-queued one first, then the source's next if `pull` (inputs
/// that are bad or skipped become outcomes on the way); `None` when there is none for now.
#[inline(always)]
pub(super) fn next_job(
    queue: &mut VecDeque<Queued>,
    ready: &mut Fifo<Outcome<Value>>,
    run: &mut Run<'_>,
    pull: bool,
) -> Option<Queued> {
    if let Some(q) = queue.pop_front() {
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
            Err(status) => Engine::emit(ready, run, unstarted(seq, 1, status)),
        }
    }
    None
}

/// Reports a finished attempt, or queues the next attempt of a job that did not succeed
/// (at the front, so that input order is not held up behind it).
#[inline(always)]
pub(super) fn settle(
    attempts: u32,
    queue: &mut VecDeque<Queued>,
    ready: &mut Fifo<Outcome<Value>>,
    run: &mut Run<'_>,
    outcome: Outcome<Value>,
    input: Option<wire::Payload>,
) {
    if !retried(attempts, queue, run.entry, &outcome, input) {
        Engine::emit(ready, run, outcome);
    }
}

/// Queues the next attempt of a job that did not succeed (at the front, so that input order is
/// not held up behind it), if it has attempts left and its input was kept; returns whether it
/// did. The outcome is looked at, not moved: it is a hundred-odd bytes, and every job's
/// passes here.
#[inline(always)]
pub(super) fn retried(
    attempts: u32,
    queue: &mut VecDeque<Queued>,
    entry: Entry,
    outcome: &Outcome<Value>,
    input: Option<wire::Payload>,
) -> bool {
    if outcome.attempt < attempts
        && !succeeded(entry, &outcome.status)
        && let Some(input) = input
    {
        queue.push_front(Queued {
            seq: outcome.seq,
            attempt: outcome.attempt + 1,
            input: Value::Encoded(input),
        });
        return true;
    }
    false
}

/// What taking in a thread's report updates besides its worker, borrowed apart from the
/// engine.
pub(super) struct Books<'e> {
    pub(super) cfg: &'e Config,
    pub(super) queue: &'e mut VecDeque<Queued>,
    pub(super) avg_ns: &'e mut Option<f64>,
    pub(super) runtimes: &'e mut VecDeque<u64>,
}

/// Counts a finished job's runtime into the average (and the recent runtimes, when a timeout
/// is relative to their median).
#[inline(always)]
pub(super) fn tally(
    cfg: &Config,
    runtimes: &mut VecDeque<u64>,
    avg_ns: &mut Option<f64>,
    runtime_ns: u64,
) {
    if cfg.timeout_of_median.is_some() {
        if runtimes.len() == RUNTIMES_KEPT {
            runtimes.pop_front();
        }
        runtimes.push_back(runtime_ns);
    }
    tally_mean(avg_ns, 1, runtime_ns);
}

/// Counts `n` runtimes whose mean is `mean_ns` into the average, as `n` runtimes of the mean.
#[inline(always)]
pub(super) fn tally_mean(avg_ns: &mut Option<f64>, n: u32, mean_ns: u64) {
    let sample = mean_ns as f64;
    *avg_ns = Some(match *avg_ns {
        None => sample,
        Some(avg) if n == 1 => avg * 0.9 + sample * 0.1,
        Some(avg) => sample + (avg - sample) * 0.9f64.powi(n.min(1 << 16) as i32),
    });
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
pub(super) fn succeeded(entry: Entry, status: &Status<Value>) -> bool {
    match status {
        Status::Ok(Value::Local(out)) => (entry.succeeded)(out),
        Status::Ok(Value::Encoded(bytes)) => {
            (entry.decode_output)(bytes).is_ok_and(|out| (entry.succeeded)(&out))
        }
        _ => false,
    }
}

impl Engine {
    /// The timeout in force now.
    pub(super) fn timeout(&self) -> Option<Duration> {
        if self.cfg.timeout.is_some() {
            return self.cfg.timeout;
        }
        let factor = self.cfg.timeout_of_median?;
        if self.runtimes.len() < 3 {
            return None;
        }
        let mut sorted: Vec<u64> = self.runtimes.iter().copied().collect();
        let mid = sorted.len() / 2;
        let (_, median, _) = sorted.select_nth_unstable(mid);
        Some(Duration::from_nanos((*median as f64 * factor) as u64))
    }

    #[inline(always)]
    pub(super) fn emit(
        ready: &mut Fifo<Outcome<Value>>,
        run: &mut Run<'_>,
        outcome: Outcome<Value>,
    ) {
        match &mut run.reorder {
            Some(r) => r.push(outcome.seq, outcome, ready),
            None => ready.push_back(outcome),
        }
    }

    pub(super) fn settle(
        &mut self,
        run: &mut Run<'_>,
        outcome: Outcome<Value>,
        input: Option<wire::Payload>,
    ) {
        settle(
            self.cfg.attempts,
            &mut self.queue,
            &mut self.ready,
            run,
            outcome,
            input,
        );
    }
}
