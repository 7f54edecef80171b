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

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::collect::Reorder;
use crate::error::{Error, ErrorKind};
use crate::outcome::{Crash, Outcome, Status};
use crate::process::{self, inbox::Inbox, inbox::Post};
use crate::registry::{AnyBox, Entry, Registry};
use crate::sys::{self, Fifo};
use crate::task::Backend;
use crate::thread;
use crate::wire;

mod cancel;
mod config;
mod deaths;
mod dispatch;
mod flights;
mod ledger;
mod source;
mod timeouts;
mod workers;

use crate::event::{Epoch, Key, Report, own_pid, wall};
pub(crate) use crate::event::{Event, Value};
pub(crate) use config::{
    ABANDON_WAIT, Config, MAX_WORKERS, MIN_MEMORY_LIMIT, PROCESS_GRACE, human_bytes,
};
use deaths::*;
use flights::*;
pub(crate) use ledger::DRAINED;
use ledger::*;
pub(crate) use source::{Launch, Pull, Source, Waker};
use workers::*;

/// The run in progress: where inputs come from and where outcomes go.
pub(crate) struct Run<'a> {
    pub(crate) entry: Entry,
    pub(crate) source: Box<dyn Source + 'a>,
    next_seq: u64,
    exhausted: bool,
    reorder: Option<Reorder<Outcome<Value>>>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(entry: Entry, source: Box<dyn Source + 'a>, keep_order: bool) -> Self {
        Run {
            entry,
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

pub(crate) struct Engine {
    pub(crate) cfg: Config,
    registry: Arc<Registry>,
    /// Where events come from: threads' posts and, for process workers, their sockets.
    inbox: Inbox,
    post: Post,
    slots: Vec<Slot>,
    /// Abandoned thread workers that may still hand back jobs they took.
    retired: Vec<Worker>,
    /// Abandoned threads that owe nothing but may still be stopping their job (a command
    /// running its kill sequence): dropping the pool gives them until the grace to end.
    lingering: Vec<thread::Link>,
    /// When the threads' buffers were last looked in without being told (`look_in_threads`).
    looked: Instant,
    queue: VecDeque<Queued>,
    ready: Fifo<Outcome<Value>>,
    /// Thread workers that told of results not taken yet. In a pool without timeouts their
    /// results are taken one at a time as the caller asks for outcomes (`take_told`), straight
    /// from the thread's queue: no deadline can misjudge a job whose result waits there.
    told: VecDeque<Key>,
    /// The told worker whose results are being taken, and how many are left of those it had
    /// when its turn came: a thread that keeps finishing jobs does not keep the others waiting.
    reading: Option<(Key, usize)>,
    /// Messages of process workers' results not read yet, in the order they came. In a pool
    /// without timeouts they are read a part at a time as the caller asks for outcomes
    /// (`land_unread`), as threads' results are; a worker's are all read before its death is
    /// handled.
    unread: VecDeque<Unread>,
    /// Whether results are taken as above, rather than all at once when told of or received.
    lazy: bool,
    avg_ns: Option<f64>,
    epoch: Epoch,
    error: Option<Error>,
    interrupted: bool,
    /// Set by [`Event::Drain`]: no job is handed out any more.
    draining: bool,
    /// Set while [`cancel`](Self::cancel) waits for workers to go.
    cancelling: bool,
    /// Runtimes of the latest jobs, for a timeout relative to the median.
    runtimes: VecDeque<u64>,
    /// The handshakes of replacement process workers that ended, each told of by an
    /// [`Event::Started`].
    starts: Starts,
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
            slots: (0..cfg.workers)
                .map(|_| Slot {
                    generation: 0,
                    state: SlotState::Starting,
                    failures: 0,
                })
                .collect(),
            retired: Vec::new(),
            lingering: Vec::new(),
            looked: Instant::now(),
            queue: VecDeque::new(),
            ready: Fifo::default(),
            told: VecDeque::new(),
            reading: None,
            unread: VecDeque::new(),
            lazy: cfg.timeout.is_none() && cfg.timeout_of_median.is_none(),
            avg_ns: None,
            epoch: (SystemTime::now(), sys::now_ns()),
            error: None,
            interrupted: false,
            draining: false,
            cancelling: false,
            runtimes: VecDeque::new(),
            starts: Starts::new(),
            cfg,
        };
        match engine.cfg.backend {
            Backend::Thread => {
                for i in 0..engine.cfg.workers {
                    let link = engine.start_thread(i)?;
                    engine.slots[i].state = SlotState::Live(link);
                }
            }
            Backend::Process => {
                // All handshakes at once: start-up costs one worker's, not N.
                let starts: Vec<_> = (0..engine.cfg.workers)
                    .map(|i| {
                        let (program, timeout, limit) = engine.process_args();
                        std::thread::spawn(move || {
                            let reading = process::Reading::Inbox;
                            process::start(&program, i + 1, (i, 0), timeout, limit, reading)
                        })
                    })
                    .collect();
                let mut first_error = None;
                for (i, start) in starts.into_iter().enumerate() {
                    match start.join().expect("handshake thread") {
                        Ok(mut link) => match engine.inbox.add((i, 0), &mut link) {
                            Ok(()) => {
                                let worker = Worker::new((i, 0), Link::Process(link));
                                engine.slots[i].state = SlotState::Live(Box::new(worker))
                            }
                            Err(e) => first_error = first_error.or(Some(socket_error(i, e))),
                        },
                        Err(e) => first_error = first_error.or(Some(e)),
                    }
                }
                if let Some(e) = first_error {
                    return Err(e);
                }
            }
        }
        Ok(engine)
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
        self.ready.clear();
        self.told.clear();
        self.reading = None;
        self.interrupted = false;
        if self.draining {
            self.draining = false;
            for s in &self.slots {
                if let SlotState::Live(w) = &s.state {
                    w.set_draining(false);
                }
            }
        }
    }

    pub(crate) fn waker(&self) -> Waker {
        Waker(self.post.clone())
    }

    pub(crate) fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The next outcome already made, or made from a result already received, if there is
    /// one.
    #[inline(always)]
    pub(crate) fn pop_ready(&mut self, run: &mut Run<'_>) -> Option<Outcome<Value>> {
        if let Some(o) = self.ready.pop_front() {
            return Some(o);
        }
        if self.unread.is_empty() {
            return None;
        }
        self.land_unread(run);
        self.ready.pop_front()
    }

    /// The next outcome of `run`, or `None` when every job has one.
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
            if self.ready.is_empty() && run.exhausted && self.queue.is_empty() && !self.in_flight()
            {
                return None;
            }
            if !self.ready.is_empty() {
                continue;
            }
            let tick = self.tick();
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
            if self.looked.elapsed() >= LOOK_EVERY {
                self.look_in_threads(run);
            }
            self.check_timeouts(run);
            self.restart_waiting();
        }
    }

    /// Handles `event` while waiting for outcomes: a live thread's news is noted, its results
    /// taken as they are asked for (see `told`), and so is a process worker's message (see
    /// `unread`).
    fn receive(&mut self, event: Event, run: &mut Run<'_>) {
        match event {
            Event::Ready(key) if self.lazy && live(&mut self.slots, key).is_some() => {
                self.told.push_back(key)
            }
            Event::Results(key, message) if self.lazy => {
                self.unread.push_back(Unread::new(key, message))
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
                self.forget_retired(|w| !w.busy());
            }
            Event::Garbled(key) => {
                if let Some(w) = self.worker_mut(key) {
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
                for s in &self.slots {
                    if let SlotState::Live(w) = &s.state {
                        w.set_draining(true);
                    }
                }
            }
            Event::Started => self.take_started(),
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Close every channel first so the workers wind down together, then wait for each.
        for slot in &mut self.slots {
            if let SlotState::Live(w) = &mut slot.state
                && let Link::Process(l) = &mut w.link
            {
                l.close();
            }
        }
        // Their last results are read meanwhile (and dropped): a worker blocked on a full
        // socket could not see its channel close.
        let until = Instant::now() + Duration::from_secs(1);
        let running = |engine: &Engine| {
            engine.slots.iter().any(|s| match &s.state {
                SlotState::Live(w) => match &w.link {
                    Link::Process(l) => l.try_exit().is_none(),
                    Link::Thread(_) => false,
                },
                _ => false,
            })
        };
        while running(self) && Instant::now() < until {
            let _ = self
                .inbox
                .recv(Some(until.min(Instant::now() + Duration::from_millis(1))));
        }
        for slot in &mut self.slots {
            if let SlotState::Live(w) = &mut slot.state {
                match &mut w.link {
                    Link::Thread(l) => l.shutdown(ABANDON_WAIT),
                    Link::Process(l) => l.shutdown(Duration::from_secs(1)),
                }
            }
        }
        // Abandoned threads may be stopping their jobs in order: they share one wait.
        let until = Instant::now() + self.cfg.grace.unwrap_or(ABANDON_WAIT);
        let abandoned = self
            .retired
            .iter_mut()
            .filter_map(|w| match &mut w.link {
                Link::Thread(l) => Some(l),
                Link::Process(_) => None,
            })
            .chain(self.lingering.iter_mut());
        for l in abandoned {
            l.shutdown(until.saturating_duration_since(Instant::now()));
        }
    }
}
