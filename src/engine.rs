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
    /// A replacement process worker finished (or failed) its handshake.
    Started(Key, Box<Result<process::Link, Error>>),
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
    Returned(thread::Job),
}

/// What a run's source has next.
pub(crate) enum Pull {
    /// A job's input, or why it could not be made.
    Ready(Result<AnyBox, String>),
    /// A job's input encoded for a worker process, or why it could not be.
    Encoded(Result<wire::Payload, String>),
    /// A job that is not to run (done in an earlier run): it is reported skipped, for this
    /// reason, without reaching a worker.
    Skip(String),
    /// Nothing yet; an [`Event::Input`] will say when there is.
    Wait,
}

/// Where a run's inputs come from: what it has next, as an iterator of [`Pull`]s, and for a
/// source that can, a way to launch a stretch of jobs at once.
pub(crate) trait Source {
    /// The next item, or `None` at the end.
    fn next(&mut self) -> Option<Pull>;

    /// Launches jobs of the next inputs, at most `want`, while each is ready and encodes for
    /// a worker process, and returns how many; anything else it comes to is left for
    /// [`next`](Self::next). A source of tasks of one type does this without an item leaving
    /// its loop, which millions of tiny jobs a second go through.
    fn launch(&mut self, want: usize, to: &mut Launch<'_>) -> usize {
        let _ = (want, to);
        0
    }
}

impl<I: Iterator<Item = Pull>> Source for I {
    fn next(&mut self) -> Option<Pull> {
        Iterator::next(self)
    }
}

/// Puts jobs [`Source::launch`] makes in flight on a process worker, numbered from the
/// run's next seq.
pub(crate) struct Launch<'w> {
    flights: &'w mut VecDeque<Option<Flight>>,
    next_seq: &'w mut u64,
}

impl Launch<'_> {
    /// Launches the first attempt of the next job, with this encoded input.
    #[inline(always)]
    pub(crate) fn job(&mut self, input: wire::Payload) {
        self.flights.push_back(Some(Flight {
            seq: *self.next_seq,
            attempt: 1,
            input: Some(input),
        }));
        *self.next_seq += 1;
    }
}

/// Lets an input thread wake the engine when a job is ready.
#[derive(Clone)]
pub(crate) struct Waker(Post);

impl Waker {
    pub(crate) fn wake(&self) {
        self.0.send(Event::Input);
    }

    /// Drains the run in progress: no further job starts, running ones finish, and every job
    /// not started is reported [`Status::Skipped`] with [`DRAINED`].
    pub(crate) fn drain(&self) {
        self.0.send(Event::Drain);
    }

    /// Ends the run in progress: outcomes already finished are still yielded, then the
    /// iterator ends and dropping it cancels what is running.
    pub(crate) fn interrupt(&self) {
        self.0.send(Event::Interrupt);
    }
}

/// An input or output as the engine holds it: moved for threads, encoded for processes.
pub(crate) enum Value {
    Local(AnyBox),
    Encoded(wire::Payload),
}

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
    /// runs its kill sequence): before its process worker is killed, and before dropping the
    /// pool gives up on its abandoned thread. `None`: [`PROCESS_GRACE`] and [`ABANDON_WAIT`].
    pub(crate) grace: Option<Duration>,
}

impl Config {
    /// Refuses settings no pool can run with, so that none reaches a worker as a panic.
    fn check(&self) -> Result<(), Error> {
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

/// Batches kept in flight per worker: enough that a worker never waits for the next one.
const DEPTH: usize = 3;
/// Adaptive batches aim at this much work each, so a batch's tail costs little at the end.
const BATCH_TARGET_NS: f64 = 2_000_000.0;
/// The most jobs in a batch to a worker process. With two-byte jobs and the coordinator reading
/// the sockets itself, 1M no-ops ran at 20-24 M/s with 1024, 24-27 with 4096 or 8192, and no
/// faster with 16384 (engine bench, interleaved).
const MAX_BATCH: usize = 4096;
/// How many of a process worker's results are made into outcomes at a time (see
/// `Engine::land_unread`).
const LAND_AT_ONCE: usize = 256;
/// A worker whose current job has run this many times the average, and at least
/// [`STALL_MIN_NS`], gets nothing more queued behind it until that job ends: it may be stuck,
/// and jobs behind it would wait with it while other workers are free.
const STALL_FACTOR: f64 = 8.0;
const STALL_MIN_NS: f64 = 1_000_000.0;
/// Why a job that a drained run never started is skipped.
pub(crate) const DRAINED: &str = "not started: the run was draining";
/// The most jobs in a batch to a thread, which costs only memory to hold: a window of three
/// such batches keeps tiny jobs flowing while a busy machine keeps the coordinator off its CPU
/// for a time slice, where three of 1024 ran dry in a fraction of one.
const MAX_THREAD_BATCH: usize = 4096;
/// How often the coordinator looks for thread results it was not told of yet.
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// How many recent runtimes a timeout relative to the median looks at.
const RUNTIMES_KEPT: usize = 255;
/// A slot whose worker fails to start this many times in a row is given up.
const MAX_START_FAILURES: u32 = 5;
/// A process job gets its deadline through its context and this long past it to stop on its
/// own (a command job uses it to kill its process group in order) before its worker is killed.
pub(crate) const PROCESS_GRACE: Duration = Duration::from_millis(500);
/// How long dropping the pool waits for a thread stuck in a task.
pub(crate) const ABANDON_WAIT: Duration = Duration::from_millis(100);

enum Link {
    Thread(thread::Link),
    Process(process::Link),
}

struct Worker {
    key: Key,
    link: Link,
    /// Jobs sent and not yet resolved, in the order the worker runs them; `None` marks one
    /// resolved ahead of an earlier one (timed out), until the front catches up.
    flights: VecDeque<Option<Flight>>,
    /// The ticket of the front of `flights`: how many of this worker's jobs were resolved
    /// from the front. Tickets count jobs in the order the worker runs them, so the job its
    /// progress slot says it started as number `n` has ticket `n - 1`.
    done: u64,
    /// Set once the worker is being killed: it gets no more jobs.
    dying: bool,
}

impl Worker {
    fn slot_read(&self) -> (u64, u64) {
        match &self.link {
            Link::Thread(l) => l.slot().read(),
            Link::Process(l) => l.slot().read(),
        }
    }
    fn pid(&self) -> u32 {
        match &self.link {
            Link::Thread(_) => own_pid(),
            Link::Process(l) => l.pid,
        }
    }
    fn set_draining(&self, on: bool) {
        match &self.link {
            Link::Thread(l) => l.slot().set_draining(on),
            Link::Process(l) => l.slot().set_draining(on),
        }
    }

    /// The ticket the next job launched here gets.
    fn next_ticket(&self) -> u64 {
        self.done + self.flights.len() as u64
    }

    /// Puts a job in flight on this worker, under the ticket `next_ticket` gave.
    fn launch(&mut self, flight: Flight) {
        self.flights.push_back(Some(flight));
    }

    /// Resolves `ticket`: its flight, if it is still in flight here.
    #[inline(always)]
    fn land(&mut self, ticket: u64) -> Option<Flight> {
        land(&mut self.flights, &mut self.done, ticket)
    }

    /// Every flight still unresolved, with its ticket; none is left on the worker.
    fn land_all(&mut self) -> impl Iterator<Item = (u64, Flight)> + use<> {
        let first = self.done;
        self.done += self.flights.len() as u64;
        std::mem::take(&mut self.flights)
            .into_iter()
            .enumerate()
            .filter_map(move |(i, f)| Some((first + i as u64, f?)))
    }

    /// How long the job this worker is running has run, at `now` (0 when it runs none).
    fn running_for(&self, now: u64) -> u64 {
        let (started, started_ns) = self.slot_read();
        if started > self.done {
            now.saturating_sub(started_ns)
        } else {
            0
        }
    }

    /// Whether jobs are in flight on this worker.
    fn busy(&self) -> bool {
        !self.flights.is_empty()
    }
}

enum SlotState {
    Live(Box<Worker>),
    Starting,
    Waiting(Instant),
    Failed,
}

struct Slot {
    generation: u64,
    state: SlotState,
    failures: u32,
}

struct Flight {
    seq: u64,
    attempt: u32,
    /// Kept for process jobs so that a job can be re-queued; for thread jobs, whose input
    /// moves, an encoded copy is kept only when another attempt may be needed. Dropping it lets
    /// a shared-memory region be refilled, so it goes only once the worker that had it has
    /// answered for it or been killed (see `wire::shared`).
    input: Option<wire::Payload>,
}

/// A message of a process worker's results, read as far as `results` says.
struct Unread {
    key: Key,
    results: wire::ResultsIn,
    /// The results read so far whose runtimes are not yet in the average, and those runtimes
    /// in all (see `take_results`).
    untallied: u32,
    untallied_ns: u64,
}

impl Unread {
    fn new(key: Key, message: wire::Results) -> Unread {
        Unread {
            key,
            results: wire::ResultsIn::new(message),
            untallied: 0,
            untallied_ns: 0,
        }
    }
}

struct Queued {
    seq: u64,
    attempt: u32,
    input: Value,
}

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

    fn process_args(&self) -> (PathBuf, Duration, Option<u64>) {
        (
            process::worker_program(self.cfg.program.as_deref()),
            self.cfg.start_timeout,
            self.cfg.memory_limit,
        )
    }

    fn start_thread(&self, i: usize) -> Result<Box<Worker>, Error> {
        let key = (i, self.slots[i].generation);
        // A thread that no timeout can abandon may hold a whole batch (see `thread`).
        let whole = self.cfg.timeout.is_none() && self.cfg.timeout_of_median.is_none();
        let link = thread::Link::start(
            i + 1,
            key,
            self.registry.clone(),
            self.post.channel(),
            whole,
            self.epoch,
        )
        .map_err(|e| {
            Error::new(
                ErrorKind::Spawn,
                format!("worker {} thread could not start", i + 1),
            )
            .with_source(e)
        })?;
        Ok(Box::new(Worker::new(key, Link::Thread(link))))
    }

    /// Live workers now (not starting, not dying).
    pub(crate) fn live_workers(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(&s.state, SlotState::Live(w) if !w.dying))
            .count()
    }

    /// The pids of the live process workers.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .filter_map(|s| match &s.state {
                SlotState::Live(w) => match &w.link {
                    Link::Process(l) => Some(l.pid),
                    Link::Thread(_) => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Handles whatever happened between runs (replacements that finished starting, idle
    /// workers that died).
    pub(crate) fn pump(&mut self) {
        let mut idle = Run::new(
            Entry::of::<crate::tasks::Noop>(),
            Box::new(std::iter::empty()),
            false,
        );
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

    /// Makes outcomes from the process workers' results not read yet until one is ready,
    /// [`LAND_AT_ONCE`] at a time: a whole message of outcomes made at once took more room
    /// than the caches have, and each was written out to memory and read back.
    #[inline(never)]
    fn land_unread(&mut self, run: &mut Run<'_>) {
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
    fn read_unread(&mut self, only: Option<Key>, run: &mut Run<'_>) {
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

    /// The next outcome among the results threads told of, if there is one.
    #[inline(always)]
    fn take_told(&mut self, run: &mut Run<'_>) -> Option<Outcome<Value>> {
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

    /// Takes in what thread workers finished without saying so yet: a thread holding a batch
    /// tells of its results a group at a time, and the job after some of them may hang.
    fn look_in_threads(&mut self, run: &mut Run<'_>) {
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

    /// Whether any job is in flight, on a live worker or on one retired or dying.
    fn in_flight(&self) -> bool {
        self.retired.iter().any(Worker::busy)
            || self
                .slots
                .iter()
                .any(|s| matches!(&s.state, SlotState::Live(w) if w.busy()))
    }

    /// The timeout in force now.
    fn timeout(&self) -> Option<Duration> {
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

    fn tick(&self) -> Duration {
        let mut tick = Duration::from_millis(250);
        if let Some(t) = self.timeout() {
            tick = tick.min((t / 8).max(Duration::from_millis(1)));
        }
        for s in &self.slots {
            if let SlotState::Waiting(at) = s.state {
                tick = tick.min(at.saturating_duration_since(Instant::now()));
            }
        }
        tick
    }

    /// How many unfinished jobs a worker may hold. Slow or not-yet-measured jobs get no queue
    /// behind them, so a job stuck on one worker never holds others hostage; fast jobs get
    /// several batches so a worker never waits for the coordinator.
    ///
    /// Without lookahead a worker holds one job at a time, so no job starts before the
    /// outcome of the one before it on that worker has been seen and acted on.
    fn credit(&self, batch: usize) -> usize {
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

    fn batch_size(&self) -> usize {
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
    fn fill(&mut self, run: &mut Run<'_>) {
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
    fn fill_thread(&mut self, i: usize, want: usize, pull: bool, run: &mut Run<'_>) -> bool {
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
            local.push(thread::Job {
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
    fn fill_process(&mut self, i: usize, want: usize, pull: bool, run: &mut Run<'_>) -> bool {
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

    #[inline(always)]
    fn emit(ready: &mut Fifo<Outcome<Value>>, run: &mut Run<'_>, outcome: Outcome<Value>) {
        match &mut run.reorder {
            Some(r) => r.push(outcome.seq, outcome, ready),
            None => ready.push_back(outcome),
        }
    }

    fn worker_mut(&mut self, key: Key) -> Option<&mut Worker> {
        live(&mut self.slots, key).or_else(|| self.retired.iter_mut().find(|w| w.key == key))
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
            Event::Started(key, result) => {
                let slot = &mut self.slots[key.0];
                if slot.generation != key.1 || !matches!(slot.state, SlotState::Starting) {
                    return;
                }
                match *result {
                    Ok(mut link) => match self.inbox.add(key, &mut link) {
                        Ok(()) => {
                            slot.failures = 0;
                            slot.state =
                                SlotState::Live(Box::new(Worker::new(key, Link::Process(link))));
                        }
                        Err(e) => {
                            // Dropping the link kills the worker.
                            slot.state = SlotState::Failed;
                            self.error = Some(socket_error(key.0, e));
                        }
                    },
                    Err(e) => {
                        slot.failures += 1;
                        if slot.failures >= MAX_START_FAILURES {
                            slot.state = SlotState::Failed;
                            self.error = Some(e);
                        } else {
                            let backoff = Duration::from_millis(10 << (2 * slot.failures));
                            slot.state = SlotState::Waiting(Instant::now() + backoff);
                        }
                    }
                }
            }
        }
    }

    /// Reads a message of a process worker's results straight into outcomes, `most` of them
    /// or all; returns whether any are left. A job counts only while its ticket is in flight; a
    /// result for anything else is late and dropped. A garbled message gets its worker killed,
    /// as a garbled channel does.
    fn take_results(&mut self, u: &mut Unread, most: Option<usize>, run: &mut Run<'_>) -> bool {
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
    fn accept(&mut self, key: Key, more: Vec<Report>, run: &mut Run<'_>) {
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

    fn settle(&mut self, run: &mut Run<'_>, outcome: Outcome<Value>, input: Option<wire::Payload>) {
        settle(
            self.cfg.attempts,
            &mut self.queue,
            &mut self.ready,
            run,
            outcome,
            input,
        );
    }

    fn wall(&self, ns: u64) -> SystemTime {
        wall(self.epoch, ns)
    }

    /// A process worker is gone: the job it was running crashed, the others go back in line.
    fn died(&mut self, key: Key, crash: Crash, run: &mut Run<'_>) {
        let slot = &mut self.slots[key.0];
        if slot.generation != key.1 {
            return;
        }
        let SlotState::Live(mut w) = std::mem::replace(&mut slot.state, SlotState::Starting) else {
            return;
        };
        let (started, started_ns) = w.slot_read();
        let now = sys::now_ns();
        let mut requeue = Vec::new();
        let mut crashed = None;
        for (ticket, flight) in w.land_all() {
            if ticket + 1 == started {
                let status = match self.cfg.memory_limit {
                    Some(limit) if crash.signal().is_some_and(sys::is_out_of_memory_signal) => {
                        Status::Failed(format!(
                            "memory limit: the worker went over its {} and died ({crash})",
                            human_bytes(limit)
                        ))
                    }
                    _ => Status::Crashed(crash),
                };
                let outcome = Outcome {
                    seq: flight.seq,
                    status,
                    attempt: flight.attempt,
                    worker: key.0 + 1,
                    pid: w.pid(),
                    started: Some(self.wall(started_ns)),
                    runtime: Duration::from_nanos(now.saturating_sub(started_ns)),
                };
                crashed = Some((outcome, flight.input));
            } else {
                // Never started, or finished with its result unsent: run it again.
                requeue.push(Queued {
                    seq: flight.seq,
                    attempt: flight.attempt,
                    input: Value::Encoded(flight.input.expect("process jobs keep their input")),
                });
            }
        }
        for q in requeue.into_iter().rev() {
            self.queue.push_front(q);
        }
        if let Some((outcome, input)) = crashed {
            self.settle(run, outcome, input);
        }
        if self.cancelling {
            // The run was stopped and the pool may be dropped next: a handshake cut short by
            // the process exiting would leave its socket behind. Replace it on next use.
            let slot = &mut self.slots[key.0];
            slot.generation += 1;
            slot.state = SlotState::Waiting(Instant::now());
        } else {
            self.respawn(key.0);
        }
    }

    fn respawn(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.generation += 1;
        slot.state = SlotState::Starting;
        let key = (i, slot.generation);
        match self.cfg.backend {
            Backend::Thread => match self.start_thread(i) {
                Ok(w) => self.slots[i].state = SlotState::Live(w),
                Err(e) => {
                    self.slots[i].state = SlotState::Failed;
                    self.error = Some(e);
                }
            },
            Backend::Process => {
                let (program, timeout, limit) = self.process_args();
                let post = self.post.clone();
                std::thread::spawn(move || {
                    let reading = process::Reading::Inbox;
                    let result = process::start(&program, i + 1, key, timeout, limit, reading);
                    post.send(Event::Started(key, Box::new(result)));
                });
            }
        }
    }

    fn restart_waiting(&mut self) {
        let now = Instant::now();
        for i in 0..self.slots.len() {
            if let SlotState::Waiting(at) = self.slots[i].state
                && at <= now
            {
                self.respawn(i);
            }
        }
    }

    fn all_failed(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Failed))
    }

    /// No worker can ever start again: every remaining job is skipped with the reason.
    fn give_up(&mut self, run: &mut Run<'_>) {
        let why = match &self.error {
            Some(e) => format!("no worker could be started: {e}"),
            None => "no worker could be started".to_string(),
        };
        let skipped = |seq, attempt| unstarted(seq, attempt, Status::Skipped(why.clone()));
        let mut outcomes: Vec<_> = self
            .queue
            .drain(..)
            .map(|q| skipped(q.seq, q.attempt))
            .collect();
        let workers = self
            .retired
            .iter_mut()
            .chain(self.slots.iter_mut().filter_map(|s| match &mut s.state {
                SlotState::Live(w) => Some(&mut **w),
                _ => None,
            }));
        for w in workers {
            outcomes.extend(w.land_all().map(|(_, f)| skipped(f.seq, f.attempt)));
        }
        while !run.exhausted {
            match run.source.next() {
                Some(Pull::Wait) => std::thread::sleep(Duration::from_millis(1)),
                Some(Pull::Ready(_) | Pull::Encoded(_) | Pull::Skip(_)) => {
                    outcomes.push(skipped(run.next_seq, 1));
                    run.next_seq += 1;
                }
                None => run.exhausted = true,
            }
        }
        outcomes.sort_by_key(|o| o.seq);
        for o in outcomes {
            Self::emit(&mut self.ready, run, o);
        }
    }

    /// Times out jobs running past the deadline: a process worker is killed (its death
    /// re-queues the rest), a thread is cancelled, abandoned and replaced.
    fn check_timeouts(&mut self, run: &mut Run<'_>) {
        let Some(timeout) = self.timeout() else {
            return;
        };
        let now = sys::now_ns();
        let epoch = self.epoch;
        let mut abandon = Vec::new();
        let mut timed_out = Vec::new();
        for i in 0..self.slots.len() {
            let SlotState::Live(w) = &mut self.slots[i].state else {
                continue;
            };
            if w.dying {
                continue;
            }
            let limit = match w.link {
                Link::Thread(_) => timeout,
                Link::Process(_) => timeout.saturating_add(self.cfg.grace.unwrap_or(PROCESS_GRACE)),
            };
            // A limit past 584 years of nanoseconds is never reached (a cast would wrap it).
            let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
            let (started, started_ns) = w.slot_read();
            if started <= w.done || now.saturating_sub(started_ns) <= limit {
                continue;
            }
            let Some(flight) = w.land(started - 1) else {
                continue;
            };
            let outcome = Outcome {
                seq: flight.seq,
                status: Status::TimedOut,
                attempt: flight.attempt,
                worker: i + 1,
                pid: w.pid(),
                started: Some(wall(epoch, started_ns)),
                runtime: Duration::from_nanos(now.saturating_sub(started_ns)),
            };
            timed_out.push((outcome, flight.input));
            match &mut w.link {
                Link::Process(link) => {
                    w.dying = true;
                    link.kill();
                }
                Link::Thread(_) => abandon.push(i),
            }
        }
        for (outcome, input) in timed_out {
            self.settle(run, outcome, input);
        }
        for i in abandon {
            self.abandon(i, run);
        }
    }

    /// Retires slot `i`'s thread and starts a new one in its place.
    fn abandon(&mut self, i: usize, run: &mut Run<'_>) {
        let SlotState::Live(mut w) =
            std::mem::replace(&mut self.slots[i].state, SlotState::Starting)
        else {
            return;
        };
        let Link::Thread(link) = &mut w.link else {
            unreachable!("only threads are abandoned")
        };
        let queued = link.retire();
        let key = w.key;
        self.retired.push(*w);
        let returned = queued.into_iter().rev().map(Report::Returned).collect();
        self.accept(key, returned, run);
        // Whatever the abandoned thread still owes it hands back as `Returned`; a timed-out
        // ticket is no longer in flight, so its late result is dropped.
        self.forget_retired(|w| w.key == key && !w.busy());
        self.respawn(i);
    }

    /// Stops tracking the retired workers `which` picks; their threads linger until they end.
    fn forget_retired(&mut self, which: impl Fn(&Worker) -> bool) {
        let (gone, kept) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition(|w| which(w));
        self.retired = kept;
        self.lingering.retain(|l| !l.is_finished());
        for w in gone {
            if let Link::Thread(l) = w.link
                && !l.is_finished()
            {
                self.lingering.push(l);
            }
        }
    }

    /// Ends a run early: jobs in flight are cancelled (their workers killed or abandoned and
    /// replaced), queued ones dropped.
    pub(crate) fn cancel(&mut self, run: &mut Run<'_>) {
        self.cancelling = true;
        self.cancel_inner(run);
        self.cancelling = false;
    }

    fn cancel_inner(&mut self, run: &mut Run<'_>) {
        self.told.clear();
        self.reading = None;
        // What threads finished and did not hand over yet is taken first: a thread whose jobs
        // are all done is kept, not abandoned and replaced. So is what process workers sent
        // and was not read yet, which also gives their output regions back.
        self.look_in_threads(run);
        self.read_unread(None, run);
        self.queue.clear();
        let busy: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(&s.state, SlotState::Live(w) if w.busy()))
            .map(|(i, _)| i)
            .collect();
        for w in &mut self.retired {
            w.land_all().for_each(drop);
        }
        for i in busy {
            let SlotState::Live(w) = &mut self.slots[i].state else {
                continue;
            };
            w.land_all().for_each(drop);
            match &w.link {
                Link::Process(link) => {
                    // With a grace (commands and their kill sequence), the job is cancelled
                    // in the worker first; without, the worker is killed at once.
                    if self.cfg.grace.is_some() {
                        link.interrupt();
                    } else {
                        link.kill();
                    }
                    w.dying = true;
                }
                Link::Thread(_) => self.abandon(i, run),
            }
        }
        self.forget_retired(|_| true);
        self.ready.clear();
        // Dead process workers are replaced when their exit is seen; one still running its
        // job's kill sequence when the grace is over is killed.
        let dying = |engine: &Engine| {
            engine
                .slots
                .iter()
                .any(|s| matches!(&s.state, SlotState::Live(w) if w.dying))
        };
        let grace_over = Instant::now() + self.cfg.grace.unwrap_or(Duration::ZERO);
        let mut killed = self.cfg.grace.is_none();
        let mut give_up = Instant::now() + Duration::from_secs(2);
        while dying(self) {
            let now = Instant::now();
            if !killed && now >= grace_over {
                for s in &self.slots {
                    if let SlotState::Live(w) = &s.state
                        && w.dying
                        && let Link::Process(link) = &w.link
                    {
                        link.kill();
                    }
                }
                killed = true;
                give_up = now + Duration::from_secs(2);
            }
            let until = if killed { give_up } else { grace_over };
            match self.inbox.recv(Some(until)) {
                Some(event) => self.handle(event, run),
                None if killed => break,
                None => {}
            }
        }
        self.ready.clear();
    }
}

fn socket_error(i: usize, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Spawn,
        format!("worker {} could not be read from", i + 1),
    )
    .with_source(e)
}

/// This process's pid, read once (`getpid` is a system call, and threads ask per job).
pub(crate) fn own_pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// `ns` nanoseconds as a duration; one under a second, as a job's runtime most often is,
/// without the division into seconds.
#[inline(always)]
fn nanos(ns: u64) -> Duration {
    if ns < 1_000_000_000 {
        Duration::new(0, ns as u32)
    } else {
        Duration::from_nanos(ns)
    }
}

/// The wall-clock time of a monotonic instant, given one moment read on both clocks.
pub(crate) fn wall((wall, mono): Epoch, ns: u64) -> SystemTime {
    if ns >= mono {
        wall + Duration::from_nanos(ns - mono)
    } else {
        wall - Duration::from_nanos(mono - ns)
    }
}

/// The next job to hand out: a re-queued one first, then the source's next if `pull` (inputs
/// that are bad or skipped become outcomes on the way); `None` when there is none for now.
#[inline(always)]
fn next_job(
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
fn settle(
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
fn retried(
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
struct Books<'e> {
    cfg: &'e Config,
    queue: &'e mut VecDeque<Queued>,
    avg_ns: &'e mut Option<f64>,
    runtimes: &'e mut VecDeque<u64>,
}

/// Takes in one report of a thread worker whose unresolved jobs are `flights`, from ticket
/// `done`: the outcome to report, if the job is still in flight and not to run again (another
/// attempt, or a job handed back unstarted, goes back in the queue).
#[inline(always)]
fn land_report(
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

/// Counts a finished job's runtime into the average (and the recent runtimes, when a timeout
/// is relative to their median).
#[inline(always)]
fn tally(cfg: &Config, runtimes: &mut VecDeque<u64>, avg_ns: &mut Option<f64>, runtime_ns: u64) {
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
fn tally_mean(avg_ns: &mut Option<f64>, n: u32, mean_ns: u64) {
    let sample = mean_ns as f64;
    *avg_ns = Some(match *avg_ns {
        None => sample,
        Some(avg) if n == 1 => avg * 0.9 + sample * 0.1,
        Some(avg) => sample + (avg - sample) * 0.9f64.powi(n.min(1 << 16) as i32),
    });
}

/// Worker `key`, if it is the live one in its slot (not one retired or since replaced).
#[inline(always)]
fn live(slots: &mut [Slot], key: Key) -> Option<&mut Worker> {
    match slots.get_mut(key.0) {
        Some(Slot {
            generation,
            state: SlotState::Live(w),
            ..
        }) if *generation == key.1 => Some(w),
        _ => None,
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

/// Resolves `ticket` among a worker's `flights`, whose front has ticket `done`: its flight,
/// if it is still in flight there.
#[inline(always)]
fn land(flights: &mut VecDeque<Option<Flight>>, done: &mut u64, ticket: u64) -> Option<Flight> {
    let flight = if ticket == *done {
        // Results come in the order the jobs ran: this is the usual case.
        let flight = flights.pop_front()?;
        *done += 1;
        flight
    } else {
        let i = usize::try_from(ticket.checked_sub(*done)?).ok()?;
        flights.get_mut(i)?.take()
    };
    while let Some(None) = flights.front() {
        flights.pop_front();
        *done += 1;
    }
    flight
}

/// The outcome of a job that never reached a worker.
fn unstarted(seq: u64, attempt: u32, status: Status<Value>) -> Outcome<Value> {
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

impl Worker {
    fn new(key: Key, link: Link) -> Worker {
        Worker {
            key,
            link,
            flights: VecDeque::new(),
            done: 0,
            dying: false,
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
