//! The coordinator's state machine, shared by both backends: it hands jobs to workers in
//! batches within a credit window, accepts each result once, attributes a worker's death to the
//! one job it was running, times jobs out, and replaces workers.
//!
//! It runs on the caller's thread, inside the results iterator, so input is pulled lazily and
//! memory stays bounded by the window; threads exist only to run thread workers (process
//! workers' results are read off their sockets on the caller's thread: see `process::inbox`).
//! Every dispatch gets a ticket, and a result counts only while its ticket is in flight: that
//! single rule discards late results of timed-out jobs, results of jobs that were re-queued,
//! and anything from a worker that was replaced. A ticket is the job's place
//! in its worker's sequence, so the flights of a worker are a queue indexed by ticket, not a
//! map: tiny jobs pass through here millions of times a second.
//!
//! The state is in three parts, each owning its own, so that a function takes the part it
//! needs: [`workers`] (the slots, each live worker's link and flights, the retired threads),
//! [`ledger`] (the queue, the outcomes ready, the runtimes, and the one decision of whether
//! an attempt is reported or run again) and [`flights`] (the results received and not landed
//! yet, and how each becomes an outcome). What the engine does with them: hand out work
//! ([`dispatch`]), start, replace and give up on workers ([`lifecycle`]), time jobs out
//! ([`timeouts`]) and end a run early ([`cancel`]). Its types that workers use too are in
//! [`crate::event`].

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::collect::Reorder;
use crate::error::{Error, ErrorKind};
use crate::event::Epoch;
// Named through the engine by its users (`pool`, `handle`): they are the engine's words too.
use crate::event::{Event, Value};
use crate::outcome::Outcome;
use crate::process::{self, inbox::Inbox, inbox::Post};
use crate::registry::{Entry, Registry};
use crate::sys;
use crate::task::Backend;

mod cancel;
mod config;
mod dispatch;
mod flights;
mod ledger;
mod lifecycle;
mod source;
mod timeouts;
mod workers;

pub(crate) use config::{
    ABANDON_WAIT, Config, MAX_WORKERS, MIN_MEMORY_LIMIT, PROCESS_GRACE, human_bytes,
};
pub(crate) use ledger::DRAINED;
pub(crate) use source::{Launch, Pull, Source, Waker};

use flights::{LOOK_EVERY, Landing, Unread};
use ledger::Ledger;
use lifecycle::Starts;
use workers::Workers;

/// The run in progress: where inputs come from and where outcomes go.
pub(crate) struct Run<'a> {
    pub(crate) entry: Entry,
    /// The closure a run of [`Pool::map_fn`](crate::Pool::map_fn) hands its thread workers.
    pub(crate) closure: Option<crate::registry::Closure>,
    /// Where the run's tasks send messages, once its caller asked for them
    /// ([`Results::messages`](crate::Results::messages)).
    pub(crate) notes: Option<Arc<crate::message::Sink>>,
    pub(crate) source: Box<dyn Source + 'a>,
    next_seq: u64,
    exhausted: bool,
    reorder: Option<Reorder<Outcome<Value>>>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(entry: Entry, source: Box<dyn Source + 'a>, keep_order: bool) -> Self {
        Run {
            entry,
            closure: None,
            notes: None,
            source,
            next_seq: 1,
            exhausted: false,
            reorder: keep_order.then(|| Reorder::new(1)),
        }
    }

    /// A run of no jobs, to take in what happens between runs: whatever lands in it is late
    /// and dropped, so its task is never run.
    fn idle() -> Run<'static> {
        Run::new(Entry::of::<Idle>(), Box::new(std::iter::empty()), false)
    }
}

/// The task of [`Run::idle`]: the engine's own, so that it depends on no task module.
#[derive(serde::Serialize, serde::Deserialize)]
struct Idle;

impl crate::task::Task for Idle {
    const NAME: &'static str = "weft.idle";
    type Output = ();
    fn run(self, _cx: &crate::task::Context) -> Result<(), crate::task::Failure> {
        Ok(())
    }
}

/// The coordinator: its configuration and channels, and the three parts of its state, each
/// owning its own: the workers, the jobs' books, and the results not landed yet.
pub(crate) struct Engine {
    pub(crate) cfg: Config,
    registry: Arc<Registry>,
    /// Where events come from: threads' posts and, for process workers, their sockets.
    inbox: Inbox,
    post: Post,
    /// The handshakes of replacement process workers that ended.
    starts: Starts,
    epoch: Epoch,
    workers: Workers,
    ledger: Ledger,
    landing: Landing,
    error: Option<Error>,
    interrupted: bool,
    /// Set by [`Event::Drain`]: no job is handed out any more.
    draining: bool,
    /// Set while [`cancel`](Self::cancel) waits for workers to go.
    cancelling: bool,
}

impl Engine {
    /// Starts every worker; fails if any cannot start.
    pub(crate) fn start(cfg: Config, registry: Registry) -> Result<Engine, Error> {
        cfg.check()?;
        if cfg.backend == Backend::Process {
            process::check_socket_dir()?;
        }
        let (inbox, post) = Inbox::new(cfg.backend == Backend::Process).map_err(|e| {
            Error::new(ErrorKind::Spawn, "could not open the pool's event sockets").with_source(e)
        })?;
        let mut engine = Engine {
            registry: Arc::new(registry),
            inbox,
            post,
            starts: Starts::new(),
            epoch: (SystemTime::now(), sys::now_ns()),
            workers: Workers::new(cfg.workers),
            ledger: Ledger::new(&cfg),
            landing: Landing::new(cfg.timeout.is_none() && cfg.timeout_of_median.is_none()),
            error: None,
            interrupted: false,
            draining: false,
            cancelling: false,
            cfg,
        };
        match engine.cfg.backend {
            Backend::Thread => engine.start_threads()?,
            Backend::Process => engine.start_processes()?,
        }
        Ok(engine)
    }

    /// Live workers now (not starting, not dying).
    pub(crate) fn live_workers(&self) -> usize {
        self.workers.live_workers()
    }

    /// The pids of the live process workers.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.workers.pids()
    }

    /// Handles whatever happened between runs (replacements that finished starting, idle
    /// workers that died).
    pub(crate) fn pump(&mut self) {
        let mut idle = Run::idle();
        let now = Instant::now();
        while let Some(event) = self.inbox.recv(Some(now)) {
            self.handle(event, &mut idle);
        }
        self.read_unread(None, &mut idle);
        self.restart_waiting();
        self.ledger.ready.clear();
        self.landing.forget_told();
        self.interrupted = false;
        if self.draining {
            self.draining = false;
            self.workers.set_draining(false);
        }
    }

    pub(crate) fn waker(&self) -> Waker {
        Waker(self.post.clone())
    }

    pub(crate) fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The next outcome already made, or made from a result already received, if there is
    /// one. Inlined always, into `next` (see there).
    #[inline(always)]
    pub(crate) fn pop_ready(&mut self, run: &mut Run<'_>) -> Option<Outcome<Value>> {
        if let Some(o) = self.ledger.ready.pop_front() {
            return Some(o);
        }
        if self.landing.unread.is_empty() {
            return None;
        }
        self.land_unread(run);
        self.ledger.ready.pop_front()
    }

    /// The next outcome of `run`, or `None` when every job has one. Inlined always, with
    /// `pop_ready` and `take_told`: left to the compiler, `next` was called and the outcome
    /// moved out of it, and 200k no-ops on threads took 163.5M instructions instead of 151M
    /// (callgrind, `noop.thread`).
    #[inline(always)]
    pub(crate) fn next(&mut self, run: &mut Run<'_>) -> Option<Outcome<Value>> {
        // Outcomes mostly arrive by the batch: most calls take one that is ready, or one a
        // thread told of. Inlined into the caller (`Results::next_unready`), which then moves
        // it once.
        if let Some(o) = self.pop_ready(run) {
            return Some(o);
        }
        if let Some(o) = self.take_told(run) {
            return Some(o);
        }
        self.wait(run)
    }

    /// `next` when no outcome is ready: hands out work and waits for workers.
    fn wait(&mut self, run: &mut Run<'_>) -> Option<Outcome<Value>> {
        loop {
            if let Some(o) = self.pop_ready(run) {
                return Some(o);
            }
            if let Some(o) = self.take_told(run) {
                return Some(o);
            }
            if self.interrupted {
                return None;
            }
            self.fill(run);
            if self.ledger.ready.is_empty() && self.finished(run) {
                return None;
            }
            if !self.ledger.ready.is_empty() {
                continue;
            }
            let tick = self.tick();
            self.inbox
                .set_spin(dispatch::reply_soon(self.ledger.avg_ns()));
            match self.inbox.recv(Some(Instant::now() + tick)) {
                Some(event) => {
                    self.receive(event, run);
                    while let Some(event) = self.inbox.try_recv() {
                        self.receive(event, run);
                    }
                }
                None => self.look_in_threads(run),
            }
            // Other workers' news may keep the wait above from ever timing out.
            if self.landing.looked.elapsed() >= LOOK_EVERY {
                self.look_in_threads(run);
            }
            self.check_timeouts(run);
            self.restart_waiting();
        }
    }

    /// Where process workers' messages from their tasks go from now on (see
    /// [`Results::messages`](crate::Results::messages)): read off the workers' sockets with
    /// their results, and passed on there by the inbox.
    pub(crate) fn set_notes(&mut self, notes: Option<Arc<crate::message::Sink>>) {
        self.inbox.set_notes(notes);
    }

    /// Whether every job of `run` was handed out and has come back.
    fn finished(&self, run: &Run<'_>) -> bool {
        run.exhausted && self.ledger.queue_is_empty() && !self.workers.in_flight()
    }

    /// Handles `event` while waiting for outcomes: a live thread's news is noted, its results
    /// taken as they are asked for (see `Landing::told`), and so is a process worker's message
    /// (see `Landing::unread`).
    fn receive(&mut self, event: Event, run: &mut Run<'_>) {
        match event {
            Event::Ready(key) if self.landing.lazy && self.workers.live(key).is_some() => {
                self.landing.told.push_back(key)
            }
            Event::Results(key, message) if self.landing.lazy => {
                self.landing.unread.push_back(Unread::new(key, message))
            }
            event => self.handle(event, run),
        }
    }

    fn handle(&mut self, event: Event, run: &mut Run<'_>) {
        match event {
            Event::Results(key, message) => {
                self.take_results(&mut Unread::new(key, message), None, run);
            }
            Event::Ready(key) => {
                self.accept(key, Vec::new(), run);
                self.workers.forget_retired(|w| !w.busy());
            }
            Event::Garbled(key) => {
                if let Some(w) = self.workers.find(key) {
                    w.dying = true;
                }
            }
            Event::Exited(key, crash) => {
                // What it sent before it died counts first.
                self.read_unread(Some(key), run);
                self.died(key, crash, run)
            }
            Event::Input => {}
            Event::Interrupt => self.interrupted = true,
            Event::Drain => {
                self.draining = true;
                self.workers.set_draining(true);
            }
            Event::Started => self.take_started(),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let grace = self.cfg.grace.unwrap_or(ABANDON_WAIT);
        let inbox = &mut self.inbox;
        self.workers.shut_down(grace, |until| {
            let _ = inbox.recv(Some(until));
        });
    }
}
