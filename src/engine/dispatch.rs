//! Handing out work: how many jobs a worker may hold (its credit), how big a batch is, and
//! each job's way onto a thread or into a process worker's batch.

use std::time::Duration;

use super::ledger::{DRAINED, Ledger, Queued, unstarted};
use super::workers::{Flight, Link, Worker};
use super::{Config, Engine, Launch, Run};
use crate::event::{Job, Value};
use crate::outcome::Status;
use crate::registry::{AnyBox, Entry};
use crate::task::Backend;
use crate::{sys, wire};

/// Batches kept in flight per worker: enough that a worker never waits for the next one.
const DEPTH: usize = 3;
/// Adaptive batches aim at this much work each, so a batch's tail costs little at the end.
const BATCH_TARGET_NS: f64 = 2_000_000.0;
/// The most jobs in a batch to a worker process. With two-byte jobs and the coordinator reading
/// the sockets itself, 1M no-ops ran at 20-24 M/s with 1024, 24-27 with 4096 or 8192, and no
/// faster with 16384 (engine bench, interleaved).
const MAX_BATCH: usize = 4096;
/// A worker whose current job has run this many times the average, and at least
/// [`STALL_MIN_NS`], gets nothing more queued behind it until that job ends: it may be stuck,
/// and jobs behind it would wait with it while other workers are free.
const STALL_FACTOR: f64 = 8.0;
const STALL_MIN_NS: f64 = 1_000_000.0;
/// The most jobs in a batch to a thread, which costs only memory to hold: a window of three
/// such batches keeps tiny jobs flowing while a busy machine keeps the coordinator off its CPU
/// for a time slice, where three of 1024 ran dry in a fraction of one.
const MAX_THREAD_BATCH: usize = 4096;
/// Jobs averaging at least this long are slow: a worker holds only two of them (see
/// [`credit`]), and the coordinator, woken by each one's result, sleeps again at once.
const SLOW_NS: f64 = 100_000.0;

/// How many unfinished jobs a worker may hold, given the average runtime so far. Slow or
/// not-yet-measured jobs get no queue behind them, so a job stuck on one worker never holds
/// others hostage; fast jobs get several batches so a worker never waits for the coordinator.
///
/// Without lookahead a worker holds one job at a time, so no job starts before the
/// outcome of the one before it on that worker has been seen and acted on.
fn credit(cfg: &Config, avg_ns: Option<f64>, batch: usize) -> usize {
    if !cfg.lookahead {
        return 1;
    }
    match avg_ns {
        None => 1,
        Some(avg) if avg >= 5_000_000.0 => 1,
        Some(avg) if avg >= SLOW_NS => 2,
        Some(_) => DEPTH * batch,
    }
}

/// Whether the next result is likely soon enough that the coordinator should poll for it a
/// moment before it sleeps (see `Inbox::set_spin`): not when jobs are slow, where the poll
/// almost never catches a result and takes its time from a worker on a machine with no spare
/// CPU.
pub(super) fn reply_soon(avg_ns: Option<f64>) -> bool {
    avg_ns.is_none_or(|avg| avg < SLOW_NS)
}

/// How many jobs go to a worker at once, given the average runtime so far.
fn batch_size(cfg: &Config, avg_ns: Option<f64>) -> usize {
    if let Some(b) = cfg.batch {
        return b.max(1);
    }
    match avg_ns {
        None => 1,
        Some(avg) => {
            let most = match cfg.backend {
                Backend::Thread => MAX_THREAD_BATCH,
                Backend::Process => MAX_BATCH,
            };
            ((BATCH_TARGET_NS / avg.max(50.0)) as usize).clamp(1, most)
        }
    }
}

impl Engine {
    /// Hands out work while workers have credit.
    pub(super) fn fill(&mut self, run: &mut Run<'_>) {
        if self.draining {
            self.skip_unstarted(run);
            return;
        }
        if self.workers.live_workers() == 0 && self.workers.all_failed() {
            self.give_up(run);
            return;
        }
        let avg_ns = self.ledger.avg_ns();
        let batch = batch_size(&self.cfg, avg_ns);
        let credit = credit(&self.cfg, avg_ns, batch);
        let held = run.reorder.as_ref().map_or(0, |r| r.held());
        let pull = held < (self.cfg.workers * DEPTH * batch).max(4096);
        let stall = (avg_ns.unwrap_or(0.0) * STALL_FACTOR).max(STALL_MIN_NS) as u64;
        let now = sys::now_ns();
        for i in 0..self.workers.slots.len() {
            while let Some(w) = self.workers.live_at(i) {
                if w.dying {
                    break;
                }
                let room = credit.saturating_sub(w.flights.len());
                if room == 0 || (room < credit && w.running_for(now) > stall) {
                    break;
                }
                let want = room.min(batch);
                let any = match w.link {
                    Link::Thread(_) => self.fill_thread(i, want, pull, run),
                    Link::Process(_) => self.fill_process(i, want, pull, run),
                };
                if !any {
                    return;
                }
            }
        }
    }

    /// A draining run's jobs that workers handed back, or that were waiting here, never
    /// start, and the source is read no further.
    fn skip_unstarted(&mut self, run: &mut Run<'_>) {
        run.exhausted = true;
        for q in self.ledger.take_queue() {
            let outcome = unstarted(q.seq, q.attempt, Status::Skipped(DRAINED.into()));
            self.ledger.emit(run, outcome);
        }
    }

    /// Hands thread worker `i` up to `want` jobs, made straight from the queue and the
    /// source; returns whether there were any.
    fn fill_thread(&mut self, i: usize, want: usize, pull: bool, run: &mut Run<'_>) -> bool {
        let timeout = self.ledger.timeout();
        let Some(w) = self.workers.live_at(i) else {
            unreachable!("filling a live worker")
        };
        let Link::Thread(link) = &w.link else {
            unreachable!("filling a thread worker")
        };
        let mut local = link.buffer(want);
        let mut taken = 0;
        while taken < want
            && let Some(job) = self.ledger.next_job(run, pull)
        {
            taken += 1;
            let (seq, attempt) = (job.seq, job.attempt);
            let Some((input, kept)) = self.ledger.thread_input(job, run) else {
                continue;
            };
            let ticket = w.flights.next_ticket();
            local.push(Job {
                ticket,
                seq,
                attempt,
                input,
            });
            w.flights.launch(Flight {
                seq,
                attempt,
                input: kept,
            });
        }
        link.send(
            run.entry,
            run.closure.as_ref(),
            run.notes.as_ref(),
            timeout,
            local,
        );
        taken > 0
    }

    /// Sends process worker `i` up to `want` jobs as one batch, launched straight from the
    /// queue and the source; returns whether there were any.
    fn fill_process(&mut self, i: usize, want: usize, pull: bool, run: &mut Run<'_>) -> bool {
        let timeout = self.ledger.timeout();
        let Some(w) = self.workers.live_at(i) else {
            unreachable!("filling a live worker")
        };
        let first = w.flights.next_ticket();
        let mut taken = 0;
        while taken < want {
            if self.ledger.queue_is_empty() && pull && !run.exhausted {
                let mut to = Launch {
                    flights: &mut w.flights,
                    next_seq: &mut run.next_seq,
                };
                taken += run.source.launch(want - taken, &mut to);
                if taken == want {
                    break;
                }
            }
            // A re-queued job, or whatever stopped the source's launch.
            let Some(job) = self.ledger.next_job(run, pull) else {
                break;
            };
            taken += 1;
            if let Some(flight) = self.ledger.process_flight(job, run) {
                w.flights.launch(flight);
            }
        }
        w.send_batch(run.entry, timeout, first);
        taken > 0
    }
}

impl Ledger {
    /// A job's input for a thread, and the encoded copy kept in case another attempt is
    /// needed; `None` if its input cannot be decoded (its outcome is reported).
    #[inline]
    fn thread_input(
        &mut self,
        job: Queued,
        run: &mut Run<'_>,
    ) -> Option<(AnyBox, Option<wire::Payload>)> {
        let entry = run.entry;
        let again = self.may_retry(job.attempt);
        match job.input {
            Value::Local(v) => {
                let kept = if again {
                    (entry.encode_input)(&v).ok()
                } else {
                    None
                };
                Some((v, kept))
            }
            Value::Encoded(bytes) => match (entry.decode_input)(&bytes) {
                Ok(v) => Some((v, again.then_some(bytes))),
                Err(e) => {
                    let why = format!("cannot decode {} input: {e}", entry.name);
                    let outcome = unstarted(job.seq, job.attempt, Status::Failed(why));
                    self.emit(run, outcome);
                    None
                }
            },
        }
    }

    /// A job's flight on a process worker, which keeps its encoded input; `None` if its input
    /// cannot be encoded (its outcome is reported).
    fn process_flight(&mut self, job: Queued, run: &mut Run<'_>) -> Option<Flight> {
        let entry = run.entry;
        let bytes = match job.input {
            Value::Encoded(b) => b,
            Value::Local(v) => match (entry.encode_input)(&v) {
                Ok(b) => b,
                Err(e) => {
                    let why = format!("cannot encode {} input: {e}", entry.name);
                    let outcome = unstarted(job.seq, job.attempt, Status::Failed(why));
                    self.emit(run, outcome);
                    return None;
                }
            },
        };
        Some(Flight {
            seq: job.seq,
            attempt: job.attempt,
            input: Some(bytes),
        })
    }
}

impl Worker {
    /// Sends a process worker the jobs launched on it from ticket `first` on, as one batch,
    /// encoded straight from their flights, which keep the inputs.
    fn send_batch(&mut self, entry: Entry, timeout: Option<Duration>, first: u64) {
        let Link::Process(link) = &self.link else {
            return;
        };
        if self.flights.next_ticket() == first {
            return;
        }
        let flights = self.flights.since(first).map(|f| {
            let input = f.input.as_ref().expect("a process flight keeps its input");
            (f.seq, f.attempt, input)
        });
        let batch = wire::encode_batch(entry.name, timeout, first, flights);
        if link.send(batch).is_err() {
            // The worker is dead or dying; its reader reports it and the jobs are re-queued.
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coordinator_polls_for_results_only_of_fast_jobs() {
        assert!(
            reply_soon(None),
            "not measured yet: a tiny job's reply may be due"
        );
        assert!(reply_soon(Some(2_000.0)));
        assert!(!reply_soon(Some(1_000_000.0)), "1 ms jobs");
        assert!(!reply_soon(Some(SLOW_NS)));
    }
}
