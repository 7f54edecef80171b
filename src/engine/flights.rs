//! Landing results: a result counts only while its ticket is in flight; thread reports and
//! process messages become outcomes here.

use super::*;

/// How many of a process worker's results are made into outcomes at a time (see
/// `Engine::land_unread`).
pub(super) const LAND_AT_ONCE: usize = 256;

/// How often the coordinator looks for thread results it was not told of yet.
pub(super) const LOOK_EVERY: Duration = Duration::from_millis(250);

/// A message of a process worker's results, read as far as `results` says.
pub(super) struct Unread {
    pub(super) key: Key,
    pub(super) results: wire::ResultsIn,
    /// The results read so far whose runtimes are not yet in the average, and those runtimes
    /// in all (see `take_results`).
    pub(super) untallied: u32,
    pub(super) untallied_ns: u64,
}

impl Unread {
    pub(super) fn new(key: Key, message: wire::Results) -> Unread {
        Unread {
            key,
            results: wire::ResultsIn::new(message),
            untallied: 0,
            untallied_ns: 0,
        }
    }
}

/// Takes in one report of a thread worker whose unresolved jobs are `flights`, from ticket
/// `done`: the outcome to report, if the job is still in flight and not to run again (another
/// attempt, or a job handed back unstarted, goes back in the queue).
#[inline(always)]
pub(super) fn land_report(
    report: Report,
    flights: &mut VecDeque<Option<Flight>>,
    done: &mut u64,
    books: &mut Books<'_>,
    entry: Entry,
) -> Option<Outcome<Value>> {
    match report {
        Report::Finished { ticket, outcome } => {
            let flight = land(flights, done, ticket)?;
            let runtime_ns = outcome.runtime.as_nanos() as u64;
            tally(books.cfg, books.runtimes, books.avg_ns, runtime_ns);
            let again = retried(
                books.cfg.attempts,
                books.queue,
                entry,
                &outcome,
                flight.input,
            );
            (!again).then_some(outcome)
        }
        Report::Returned(job) => {
            let f = land(flights, done, job.ticket)?;
            books.queue.push_front(Queued {
                seq: f.seq,
                attempt: f.attempt,
                input: Value::Local(job.input),
            });
            None
        }
    }
}

/// The status of a process job's result, a shared output taken in (see `Payload::received`).
/// The usual output, inline, is made here; through `Output::into_status` and a closure that
/// takes in payloads, which the compiler did not inline, a job cost 50 more instructions.
#[inline]
pub(super) fn status_of(output: wire::Output, returns: &Arc<wire::Returns>) -> Status<Value> {
    match output {
        wire::Output::Inline(bytes) => Status::Ok(Value::Encoded(wire::Payload::Inline(bytes))),
        wire::Output::Other(status) => other_status(*status, returns),
    }
}

#[inline(never)]
pub(super) fn other_status(
    status: Status<wire::Payload>,
    returns: &Arc<wire::Returns>,
) -> Status<Value> {
    status.map(|mut payload| {
        payload.received(returns);
        Value::Encoded(payload)
    })
}

/// `ns` nanoseconds as a duration; one under a second, as a job's runtime most often is,
/// without the division into seconds.
#[inline(always)]
pub(super) fn nanos(ns: u64) -> Duration {
    if ns < 1_000_000_000 {
        Duration::new(0, ns as u32)
    } else {
        Duration::from_nanos(ns)
    }
}

impl Engine {
    /// Makes outcomes from the process workers' results not read yet until one is ready,
    /// [`LAND_AT_ONCE`] at a time: a whole message of outcomes made at once took more room
    /// than the caches have, and each was written out to memory and read back.
    #[inline(never)]
    pub(super) fn land_unread(&mut self, run: &mut Run<'_>) {
        while self.ready.is_empty() {
            let Some(mut u) = self.unread.pop_front() else {
                return;
            };
            if self.take_results(&mut u, Some(LAND_AT_ONCE), run) {
                self.unread.push_front(u);
            }
        }
    }

    /// Reads the results not read yet, of worker `only` or of all, into `ready`.
    pub(super) fn read_unread(&mut self, only: Option<Key>, run: &mut Run<'_>) {
        let mut kept = VecDeque::new();
        while let Some(mut u) = self.unread.pop_front() {
            if only.is_some_and(|k| k != u.key) {
                kept.push_back(u);
            } else {
                self.take_results(&mut u, None, run);
            }
        }
        self.unread = kept;
    }

    /// The next outcome among the results threads told of, if there is one.
    #[inline(always)]
    pub(super) fn take_told(&mut self, run: &mut Run<'_>) -> Option<Outcome<Value>> {
        let Engine {
            slots,
            told,
            reading,
            cfg,
            queue,
            ready,
            avg_ns,
            runtimes,
            ..
        } = self;
        loop {
            let (key, left) = match reading {
                Some((key, left)) if *left > 0 => (*key, left),
                _ => {
                    let key = told.pop_front()?;
                    *reading = match live(slots, key) {
                        Some(Worker {
                            link: Link::Thread(link),
                            ..
                        }) => Some((key, link.waiting())),
                        _ => None,
                    };
                    continue;
                }
            };
            *left -= 1;
            let Some(Worker {
                link: Link::Thread(link),
                flights,
                done,
                ..
            }) = live(slots, key)
            else {
                *reading = None;
                continue;
            };
            // Written out rather than through `land_report`: an outcome is a hundred-odd bytes,
            // and here it is moved once between the thread's queue and the caller. Through
            // `land_report` 1M no-ops ran at 13 M/s instead of 19.
            match link.take() {
                None => *reading = None,
                Some(Report::Finished { ticket, outcome }) => {
                    let Some(flight) = land(flights, done, ticket) else {
                        continue;
                    };
                    tally(cfg, runtimes, avg_ns, outcome.runtime.as_nanos() as u64);
                    if retried(cfg.attempts, queue, run.entry, &outcome, flight.input) {
                        continue;
                    }
                    match &mut run.reorder {
                        None => return Some(outcome),
                        Some(r) => {
                            r.push(outcome.seq, outcome, ready);
                            if let Some(o) = ready.pop_front() {
                                return Some(o);
                            }
                        }
                    }
                }
                Some(report) => {
                    let mut books = Books {
                        cfg,
                        queue,
                        avg_ns,
                        runtimes,
                    };
                    if let Some(o) = land_report(report, flights, done, &mut books, run.entry) {
                        Self::emit(ready, run, o);
                        if let Some(o) = ready.pop_front() {
                            return Some(o);
                        }
                    }
                }
            }
        }
    }

    /// Takes in what thread workers finished without saying so yet: a thread holding a batch
    /// tells of its results a group at a time, and the job after some of them may hang.
    pub(super) fn look_in_threads(&mut self, run: &mut Run<'_>) {
        self.looked = Instant::now();
        for i in 0..self.slots.len() {
            if let SlotState::Live(w) = &self.slots[i].state
                && let Link::Thread(_) = w.link
            {
                let key = w.key;
                self.handle(Event::Ready(key), run);
            }
        }
    }

    /// Reads a message of a process worker's results straight into outcomes, `most` of them
    /// or all; returns whether any are left. A job counts only while its ticket is in flight; a
    /// result for anything else is late and dropped. A garbled message gets its worker killed,
    /// as a garbled channel does.
    pub(super) fn take_results(
        &mut self,
        u: &mut Unread,
        most: Option<usize>,
        run: &mut Run<'_>,
    ) -> bool {
        // Borrowed apart, as in `accept`: this runs once per job.
        let Engine {
            slots,
            cfg,
            queue,
            ready,
            avg_ns,
            runtimes,
            epoch,
            ..
        } = self;
        let Some(w) = live(slots, u.key) else {
            return false;
        };
        let Link::Process(link) = &w.link else {
            return false;
        };
        let (pid, returns, worker) = (link.pid, link.returns(), u.key.0 + 1);
        let Unread {
            results,
            untallied,
            untallied_ns,
            ..
        } = u;
        // The runtimes go into the average once a message, as their mean, unless a timeout
        // relative to the median needs each.
        let each = cfg.timeout_of_median.is_some();
        let mut left = most.unwrap_or(usize::MAX);
        loop {
            if left == 0 {
                return true;
            }
            left -= 1;
            let Some(r) = results.next() else {
                if results.garbled().is_some()
                    && let Link::Process(link) = &w.link
                {
                    // Its channel then reports the disconnection, and the jobs still in
                    // flight are accounted for.
                    w.dying = true;
                    link.kill();
                }
                break;
            };
            let Some(flight) = w.land(r.ticket) else {
                continue;
            };
            if each {
                tally(cfg, runtimes, avg_ns, r.runtime_ns);
            } else {
                *untallied += 1;
                *untallied_ns = untallied_ns.saturating_add(r.runtime_ns);
            }
            // Every call (`wall`'s) comes first: across one, the status would be made on the
            // stack and moved.
            let started = Some(wall(*epoch, r.started_ns));
            let status = |output| status_of(output, &returns);
            if run.reorder.is_none() && flight.attempt >= cfg.attempts {
                // A last attempt in input-free order goes straight to `ready`, made into its
                // outcome where the outcome is kept (see `Fifo`): made first and moved there,
                // the outcome's fields were read back with wider loads than they were written
                // with, a store-forwarding stall per job and half the time spent here.
                ready.push_with(|| Outcome {
                    seq: flight.seq,
                    status: status(r.output),
                    attempt: flight.attempt,
                    worker,
                    pid,
                    started,
                    runtime: nanos(r.runtime_ns),
                });
                continue;
            }
            let outcome = Outcome {
                seq: flight.seq,
                status: status(r.output),
                attempt: flight.attempt,
                worker,
                pid,
                started,
                runtime: nanos(r.runtime_ns),
            };
            settle(cfg.attempts, queue, ready, run, outcome, flight.input);
        }
        if *untallied > 0 {
            tally_mean(avg_ns, *untallied, *untallied_ns / u64::from(*untallied));
        }
        false
    }

    /// Takes in what thread worker `key` reported, then `more` (what its queue held when it
    /// was retired). A job counts only while its ticket is in flight; a report on anything
    /// else is late and dropped.
    pub(super) fn accept(&mut self, key: Key, more: Vec<Report>, run: &mut Run<'_>) {
        // Borrowed apart: this loop runs once per job, so the worker is looked up once per
        // message, not per job.
        let Engine {
            slots,
            retired,
            cfg,
            queue,
            ready,
            avg_ns,
            runtimes,
            ..
        } = self;
        let Some(w) = live(slots, key).or_else(|| retired.iter_mut().find(|w| w.key == key)) else {
            return;
        };
        let Worker {
            link: Link::Thread(link),
            flights,
            done,
            ..
        } = w
        else {
            return;
        };
        let mut books = Books {
            cfg,
            queue,
            avg_ns,
            runtimes,
        };
        let mut take = |report| {
            if let Some(outcome) = land_report(report, flights, done, &mut books, run.entry) {
                Self::emit(ready, run, outcome);
            }
        };
        link.take_each(&mut take);
        more.into_iter().for_each(take);
    }

    pub(super) fn wall(&self, ns: u64) -> SystemTime {
        wall(self.epoch, ns)
    }
}
