//! Handing out work: how much a worker may hold (credit), how big a batch is, and the next job.

use super::*;

/// Batches kept in flight per worker: enough that a worker never waits for the next one.
pub(super) const DEPTH: usize = 3;

/// Adaptive batches aim at this much work each, so a batch's tail costs little at the end.
pub(super) const BATCH_TARGET_NS: f64 = 2_000_000.0;

/// The most jobs in a batch to a worker process. With two-byte jobs and the coordinator reading
/// the sockets itself, 1M no-ops ran at 20-24 M/s with 1024, 24-27 with 4096 or 8192, and no
/// faster with 16384 (engine bench, interleaved).
pub(super) const MAX_BATCH: usize = 4096;

/// A worker whose current job has run this many times the average, and at least
/// [`STALL_MIN_NS`], gets nothing more queued behind it until that job ends: it may be stuck,
/// and jobs behind it would wait with it while other workers are free.
pub(super) const STALL_FACTOR: f64 = 8.0;

pub(super) const STALL_MIN_NS: f64 = 1_000_000.0;

/// The most jobs in a batch to a thread, which costs only memory to hold: a window of three
/// such batches keeps tiny jobs flowing while a busy machine keeps the coordinator off its CPU
/// for a time slice, where three of 1024 ran dry in a fraction of one.
pub(super) const MAX_THREAD_BATCH: usize = 4096;

impl Engine {
    /// How many unfinished jobs a worker may hold. Slow or not-yet-measured jobs get no queue
    /// behind them, so a job stuck on one worker never holds others hostage; fast jobs get
    /// several batches so a worker never waits for the coordinator.
    ///
    /// Without lookahead a worker holds one job at a time, so no job starts before the
    /// outcome of the one before it on that worker has been seen and acted on.
    pub(super) fn credit(&self, batch: usize) -> usize {
        if !self.cfg.lookahead {
            return 1;
        }
        match self.avg_ns {
            None => 1,
            Some(avg) if avg >= 5_000_000.0 => 1,
            Some(avg) if avg >= 100_000.0 => 2,
            Some(_) => DEPTH * batch,
        }
    }

    pub(super) fn batch_size(&self) -> usize {
        if let Some(b) = self.cfg.batch {
            return b.max(1);
        }
        match self.avg_ns {
            None => 1,
            Some(avg) => {
                let most = match self.cfg.backend {
                    Backend::Thread => MAX_THREAD_BATCH,
                    Backend::Process => MAX_BATCH,
                };
                ((BATCH_TARGET_NS / avg.max(50.0)) as usize).clamp(1, most)
            }
        }
    }

    /// Hands out work while workers have credit.
    pub(super) fn fill(&mut self, run: &mut Run<'_>) {
        if self.draining {
            // Jobs that workers handed back, or that were waiting here, never start.
            run.exhausted = true;
            let queued: Vec<Queued> = self.queue.drain(..).collect();
            for q in queued {
                let outcome = unstarted(q.seq, q.attempt, Status::Skipped(DRAINED.into()));
                Self::emit(&mut self.ready, run, outcome);
            }
            return;
        }
        if self.live_workers() == 0 && self.all_failed() {
            self.give_up(run);
            return;
        }
        let batch = self.batch_size();
        let credit = self.credit(batch);
        let held = run.reorder.as_ref().map_or(0, |r| r.held());
        let pull = held < (self.cfg.workers * DEPTH * batch).max(4096);
        let stall = (self.avg_ns.unwrap_or(0.0) * STALL_FACTOR).max(STALL_MIN_NS) as u64;
        let now = sys::now_ns();
        for i in 0..self.slots.len() {
            while let SlotState::Live(w) = &self.slots[i].state {
                if w.dying {
                    break;
                }
                let room = credit.saturating_sub(w.flights.len());
                if room == 0 || (room < credit && w.running_for(now) > stall) {
                    break;
                }
                let want = room.min(batch);
                if let Link::Thread(_) = w.link {
                    if !self.fill_thread(i, want, pull, run) {
                        return;
                    }
                    continue;
                }
                if !self.fill_process(i, want, pull, run) {
                    return;
                }
            }
        }
    }

    /// Hands thread worker `i` up to `want` jobs, made straight from the queue and the
    /// source; returns whether there were any.
    pub(super) fn fill_thread(
        &mut self,
        i: usize,
        want: usize,
        pull: bool,
        run: &mut Run<'_>,
    ) -> bool {
        let timeout = self.timeout();
        let Engine {
            slots,
            queue,
            ready,
            cfg,
            ..
        } = self;
        let attempts = cfg.attempts;
        let entry = run.entry;
        let SlotState::Live(w) = &mut slots[i].state else {
            unreachable!("filling a live worker")
        };
        let w = &mut **w;
        let Link::Thread(link) = &w.link else {
            unreachable!("filling a thread worker")
        };
        let mut local = link.buffer(want);
        let mut taken = 0;
        while taken < want
            && let Some(job) = next_job(queue, ready, run, pull)
        {
            taken += 1;
            let mut flight = Flight {
                seq: job.seq,
                attempt: job.attempt,
                input: None,
            };
            let input = match job.input {
                Value::Local(v) => {
                    if job.attempt < attempts {
                        flight.input = (entry.encode_input)(&v).ok();
                    }
                    v
                }
                Value::Encoded(bytes) => {
                    let decoded = (entry.decode_input)(&bytes);
                    if job.attempt < attempts {
                        flight.input = Some(bytes);
                    }
                    match decoded {
                        Ok(v) => v,
                        Err(e) => {
                            let outcome = unstarted(
                                job.seq,
                                job.attempt,
                                Status::Failed(format!("cannot decode {} input: {e}", entry.name)),
                            );
                            Self::emit(ready, run, outcome);
                            continue;
                        }
                    }
                }
            };
            local.push(crate::event::Job {
                ticket: w.next_ticket(),
                seq: job.seq,
                attempt: job.attempt,
                input,
            });
            w.launch(flight);
        }
        if let Link::Thread(link) = &w.link {
            link.send(entry, timeout, local);
        }
        taken > 0
    }

    /// Sends process worker `i` up to `want` jobs as one batch, launched straight from the
    /// queue and the source; returns whether there were any.
    pub(super) fn fill_process(
        &mut self,
        i: usize,
        want: usize,
        pull: bool,
        run: &mut Run<'_>,
    ) -> bool {
        let timeout = self.timeout();
        let Engine {
            slots,
            queue,
            ready,
            ..
        } = self;
        let entry = run.entry;
        let SlotState::Live(w) = &mut slots[i].state else {
            unreachable!("filling a live worker")
        };
        let w = &mut **w;
        let first = w.next_ticket();
        let mut taken = 0;
        while taken < want {
            if queue.is_empty() && pull && !run.exhausted {
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
            let Some(job) = next_job(queue, ready, run, pull) else {
                break;
            };
            taken += 1;
            let bytes = match job.input {
                Value::Encoded(b) => b,
                Value::Local(v) => match (entry.encode_input)(&v) {
                    Ok(b) => b,
                    Err(e) => {
                        let outcome = unstarted(
                            job.seq,
                            job.attempt,
                            Status::Failed(format!("cannot encode {} input: {e}", entry.name)),
                        );
                        Self::emit(ready, run, outcome);
                        continue;
                    }
                },
            };
            w.launch(Flight {
                seq: job.seq,
                attempt: job.attempt,
                input: Some(bytes),
            });
        }
        let launched = (w.next_ticket() - first) as usize;
        if let Link::Process(link) = &w.link
            && launched > 0
        {
            // Encoded straight from the flights just launched, which keep the inputs.
            let flights = w.flights.range(w.flights.len() - launched..).map(|f| {
                let f = f.as_ref().expect("a flight just launched is unresolved");
                let input = f.input.as_ref().expect("a process flight keeps its input");
                (f.seq, f.attempt, input)
            });
            let batch = wire::encode_batch(entry.name, timeout, first, flights);
            if link.send(batch).is_err() {
                // The worker is dead or dying; its reader reports it and the jobs are
                // re-queued.
                w.dying = true;
                link.kill();
            }
        }
        taken > 0
    }
}
