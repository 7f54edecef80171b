//! Landing results: a result counts only while its ticket is in flight, and becomes an
//! outcome here, for a thread's report and a process worker's message alike.
//!
//! In a pool without timeouts, results are landed as the caller asks for outcomes: a thread's
//! straight from its queue, a process worker's message a part at a time. No deadline can then
//! misjudge a job whose result waits to be landed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ledger::{Ledger, Queued};
use super::workers::{Flight, Flights, Link, Worker};
use super::{Engine, Run};
use crate::event::{Epoch, Event, Job, Key, Report, Value, wall};
use crate::outcome::{Outcome, Status};
use crate::registry::Entry;
use crate::wire;

/// How many of a process worker's results are made into outcomes at a time (see
/// `Engine::land_unread`).
const LAND_AT_ONCE: usize = 256;

/// How often the coordinator looks for thread results it was not told of yet.
pub(super) const LOOK_EVERY: Duration = Duration::from_millis(250);

/// A message of a process worker's results, read as far as `results` says.
pub(super) struct Unread {
    key: Key,
    results: wire::ResultsIn,
    /// The results read so far whose runtimes are not yet in the average, and those runtimes
    /// in all (see `take_results`).
    untallied: u32,
    untallied_ns: u64,
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

/// The results received and not landed yet.
pub(super) struct Landing {
    /// Thread workers that told of results not taken yet, taken one at a time as the caller
    /// asks for outcomes (`take_told`), straight from the thread's queue.
    pub(super) told: VecDeque<Key>,
    /// The told worker whose results are being taken, and how many are left of those it had
    /// when its turn came: a thread that keeps finishing jobs does not keep the others waiting.
    reading: Option<(Key, usize)>,
    /// Messages of process workers' results not read yet, in the order they came (see
    /// `land_unread`); a worker's are all read before its death is handled.
    pub(super) unread: VecDeque<Unread>,
    /// Whether results are landed as above, rather than all at once when told of or received:
    /// in a pool without timeouts.
    pub(super) lazy: bool,
    /// When the threads' buffers were last looked in without being told (`look_in_threads`).
    pub(super) looked: Instant,
}

impl Landing {
    pub(super) fn new(lazy: bool) -> Landing {
        Landing {
            told: VecDeque::new(),
            reading: None,
            unread: VecDeque::new(),
            lazy,
            looked: Instant::now(),
        }
    }

    /// Forgets which threads told of results: they are looked in instead.
    pub(super) fn forget_told(&mut self) {
        self.told.clear();
        self.reading = None;
    }
}

/// Who a process worker's results came from, as their outcomes say.
struct Origin {
    worker: usize,
    pid: u32,
    returns: Arc<wire::Returns>,
}

impl Engine {
    /// Makes outcomes from the process workers' results not read yet until one is ready,
    /// [`LAND_AT_ONCE`] at a time: a whole message of outcomes made at once took more room
    /// than the caches have, and each was written out to memory and read back.
    #[inline(never)]
    pub(super) fn land_unread(&mut self, run: &mut Run<'_>) {
        while self.ledger.ready.is_empty() {
            let Some(mut u) = self.landing.unread.pop_front() else {
                return;
            };
            if self.take_results(&mut u, Some(LAND_AT_ONCE), run) {
                self.landing.unread.push_front(u);
            }
        }
    }

    /// Reads the results not read yet, of worker `only` or of all, into `ready`.
    pub(super) fn read_unread(&mut self, only: Option<Key>, run: &mut Run<'_>) {
        let mut kept = VecDeque::new();
        while let Some(mut u) = self.landing.unread.pop_front() {
            if only.is_some_and(|k| k != u.key) {
                kept.push_back(u);
            } else {
                self.take_results(&mut u, None, run);
            }
        }
        self.landing.unread = kept;
    }

    /// The next outcome among the results threads told of, if there is one. It is landed
    /// as every thread report is (`Ledger::land_finished`, `Ledger::land_returned`), and
    /// handed back without passing through `ready` unless the run keeps input order: an
    /// outcome is a hundred-odd bytes.
    /// Inlined always, into `Engine::next` (see there).
    #[inline(always)]
    pub(super) fn take_told(&mut self, run: &mut Run<'_>) -> Option<Outcome<Value>> {
        loop {
            let key = self.reading()?;
            let Some(Worker {
                link: Link::Thread(link),
                flights,
                ..
            }) = self.workers.live(key)
            else {
                self.landing.reading = None;
                continue;
            };
            let Some(report) = link.take() else {
                self.landing.reading = None;
                continue;
            };
            let (ticket, outcome) = match report {
                Report::Finished { ticket, outcome } => (ticket, outcome),
                Report::Returned(job) => {
                    self.ledger.land_returned(job, flights);
                    continue;
                }
            };
            // Decided on in place: an outcome moved in and out of a function costs two copies
            // of its hundred-odd bytes, and every job's passes here.
            if !self
                .ledger
                .land_finished(ticket, &outcome, flights, run.entry)
            {
                continue;
            }
            let Some(r) = &mut run.reorder else {
                return Some(outcome);
            };
            r.push(outcome.seq, outcome, &mut self.ledger.ready);
            if let Some(o) = self.ledger.ready.pop_front() {
                return Some(o);
            }
        }
    }

    /// The told thread whose result is to be taken next, if any: the one whose turn it is
    /// while it has results left of those it had then.
    #[inline]
    fn reading(&mut self) -> Option<Key> {
        loop {
            if let Some((key, left)) = &mut self.landing.reading
                && *left > 0
            {
                *left -= 1;
                return Some(*key);
            }
            let key = self.landing.told.pop_front()?;
            self.landing.reading = match self.workers.live(key) {
                Some(Worker {
                    link: Link::Thread(link),
                    ..
                }) => Some((key, link.waiting())),
                _ => None,
            };
        }
    }

    /// Takes in what thread workers finished without saying so yet: a thread holding a batch
    /// tells of its results a group at a time, and the job after some of them may hang.
    pub(super) fn look_in_threads(&mut self, run: &mut Run<'_>) {
        self.landing.looked = Instant::now();
        for i in 0..self.workers.slots.len() {
            if let Some(w) = self.workers.live_at(i)
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
        let Some(w) = self.workers.live(u.key) else {
            return false;
        };
        let Link::Process(link) = &w.link else {
            return false;
        };
        let origin = Origin {
            worker: u.key.0 + 1,
            pid: link.pid,
            returns: link.returns(),
        };
        // The runtimes go into the average once a message, as their mean, unless a timeout
        // relative to the median needs each.
        let each = self.ledger.keeps_runtimes();
        let mut left = most.unwrap_or(usize::MAX);
        loop {
            if left == 0 {
                return true;
            }
            left -= 1;
            let Some(r) = u.results.next() else {
                if u.results.garbled().is_some() {
                    // Its channel then reports the disconnection, and the jobs still in
                    // flight are accounted for.
                    w.kill();
                }
                break;
            };
            let Some(flight) = w.flights.land(r.ticket) else {
                continue;
            };
            if each {
                self.ledger.tally(r.runtime_ns);
            } else {
                u.untallied += 1;
                u.untallied_ns = u.untallied_ns.saturating_add(r.runtime_ns);
            }
            self.ledger.land_read(run, flight, r, &origin, self.epoch);
        }
        if u.untallied > 0 {
            let mean = u.untallied_ns / u64::from(u.untallied);
            self.ledger.tally_mean(u.untallied, mean);
        }
        false
    }

    /// Takes in what thread worker `key` reported, then `more` (what its queue held when it
    /// was retired). A job counts only while its ticket is in flight; a report on anything
    /// else is late and dropped.
    pub(super) fn accept(&mut self, key: Key, more: Vec<Report>, run: &mut Run<'_>) {
        // The worker is looked up once per message, not per job.
        let Some(Worker {
            link: Link::Thread(link),
            flights,
            ..
        }) = self.workers.find(key)
        else {
            return;
        };
        let ledger = &mut self.ledger;
        let mut take = |report| {
            if let Some(outcome) = ledger.land_report(report, flights, run.entry) {
                ledger.emit(run, outcome);
            }
        };
        link.take_each(&mut take);
        more.into_iter().for_each(take);
    }
}

impl Ledger {
    /// Takes in one report of a thread worker whose unresolved jobs are `flights`: the
    /// outcome to report, if the job is still in flight and not to run again (another
    /// attempt, or a job handed back unstarted, goes back in the queue).
    #[inline]
    fn land_report(
        &mut self,
        report: Report,
        flights: &mut Flights,
        entry: Entry,
    ) -> Option<Outcome<Value>> {
        match report {
            Report::Finished { ticket, outcome } => self
                .land_finished(ticket, &outcome, flights, entry)
                .then_some(outcome),
            Report::Returned(job) => {
                self.land_returned(job, flights);
                None
            }
        }
    }

    /// Lands a thread's finished job: whether its outcome is to be reported, as it is if the
    /// job was still in flight and is not to run again.
    // Inlined always: left to the compiler it was called per job, and 200k no-ops on threads
    // took 161.7M instructions instead of 156.9M (callgrind, `noop.thread`).
    #[inline(always)]
    fn land_finished(
        &mut self,
        ticket: u64,
        outcome: &Outcome<Value>,
        flights: &mut Flights,
        entry: Entry,
    ) -> bool {
        let Some(flight) = flights.land(ticket) else {
            return false;
        };
        self.tally(outcome.runtime.as_nanos() as u64);
        !self.retried(entry, outcome, flight.input)
    }

    /// A job a retired thread hands back unstarted goes back in the queue, if it is still in
    /// flight.
    fn land_returned(&mut self, job: Job, flights: &mut Flights) {
        if let Some(f) = flights.land(job.ticket) {
            self.requeue(Queued {
                seq: f.seq,
                attempt: f.attempt,
                input: Value::Local(job.input),
            });
        }
    }

    /// Makes the outcome of `flight` from a process worker's result `r` and reports it, or
    /// queues the job's next attempt.
    #[inline]
    fn land_read(
        &mut self,
        run: &mut Run<'_>,
        flight: Flight,
        r: wire::Read,
        origin: &Origin,
        epoch: Epoch,
    ) {
        // Every call (`wall`'s) comes first: across one, the status would be made on the
        // stack and moved.
        let started = Some(wall(epoch, r.started_ns));
        let outcome = || Outcome {
            seq: flight.seq,
            status: status_of(r.output, &origin.returns),
            attempt: flight.attempt,
            worker: origin.worker,
            pid: origin.pid,
            started,
            runtime: nanos(r.runtime_ns),
        };
        if run.reorder.is_none() && !self.may_retry(flight.attempt) {
            // A last attempt in input-free order goes straight to `ready`, made into its
            // outcome where the outcome is kept (see `Fifo`): made first and moved there,
            // the outcome's fields were read back with wider loads than they were written
            // with, a store-forwarding stall per job and half the time spent here.
            self.ready.push_with(outcome);
            return;
        }
        self.settle(run, outcome(), flight.input);
    }
}

/// The status of a process job's result, a shared output taken in (see `Payload::received`).
/// The usual output, inline, is made here; through `Output::into_status` and a closure that
/// takes in payloads, which the compiler did not inline, a job cost 50 more instructions.
#[inline]
fn status_of(output: wire::Output, returns: &Arc<wire::Returns>) -> Status<Value> {
    match output {
        wire::Output::Inline(bytes) => Status::Ok(Value::Encoded(wire::Payload::Inline(bytes))),
        wire::Output::Other(status) => other_status(*status, returns),
    }
}

#[inline(never)]
fn other_status(status: Status<wire::Payload>, returns: &Arc<wire::Returns>) -> Status<Value> {
    status.map(|mut payload| {
        payload.received(returns);
        Value::Encoded(payload)
    })
}

/// `ns` nanoseconds as a duration; one under a second, as a job's runtime most often is,
/// without the division into seconds.
#[inline]
fn nanos(ns: u64) -> Duration {
    if ns < 1_000_000_000 {
        Duration::new(0, ns as u32)
    } else {
        Duration::from_nanos(ns)
    }
}
