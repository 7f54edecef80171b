//! The thread backend: one OS thread per worker, fed through its own channel.
//!
//! Jobs and results pass through two queues shared with the coordinator instead of a message
//! per job, and a doorbell rings only when a queue turns non-empty. When a thread must be
//! abandoned (timeout) the coordinator takes back what it had not started and what it
//! finished straight out of the queues, so in a pool with a timeout a thread takes one job at
//! a time and tells the coordinator of each result as it finishes. Without one, nothing is
//! ever taken back, so a thread takes a whole batch in one lock and tells of its results
//! several hundred at a time: tiny jobs then wake the coordinator rarely. A thread also makes
//! each job's `Outcome` itself, since the coordinator's one thread is what every job waits on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::catch::catch;
use crate::event::{self, Epoch, Event, Job, Key, Report, Value};
use crate::message::{Outbox, Sink};
use crate::outcome::{Outcome, Status};
use crate::process::inbox::Post;
use crate::registry::{Closure, Entry, Registry};
use crate::sys::{self, SLOT_WORDS, SlotView, spsc};
use crate::task::{CancelToken, Context};

/// A job that finished running this long is told of at once rather than with its batch, so
/// its outcome never waits behind the jobs after it.
const TELL_AT_ONCE: Duration = Duration::from_micros(50);
/// A thread holding a whole batch tells the coordinator of its results this many at a time
/// (and at the end of the batch); the coordinator also looks on its own every 250 ms, which
/// bounds the wait of results finished before a job that hangs. Telling of fewer at a time
/// wakes the coordinator for less work each time: 128 measured 5% slower on 1M no-ops and
/// took 10% more CPU (more of it spent waiting); 512 to 4096 measured alike.
const TELL_EVERY: usize = 512;

/// Jobs sent together, which share a task and a timeout.
struct Batch {
    entry: Entry,
    /// The run's closure, for a run of closures: set in the worker's context for the batch.
    closure: Option<Closure>,
    /// Where its tasks' messages go, when the run's caller reads them.
    notes: Option<Arc<Sink>>,
    timeout: Option<Duration>,
    jobs: VecDeque<Job>,
}

/// How many emptied job buffers a thread keeps for the coordinator's next batches.
const SPARE_BUFFERS: usize = 4;

struct Shared {
    slot: [AtomicU64; SLOT_WORDS],
    jobs: Mutex<VecDeque<Batch>>,
    /// Emptied job buffers, for the coordinator to fill again: a batch's buffer freed and
    /// allocated anew costs page faults, more than the jobs it carried.
    buffers: Mutex<Vec<Vec<Job>>>,
    /// Set when the thread has told the coordinator of results it has not taken yet (a
    /// thread that takes one job at a time tells only then).
    told: AtomicBool,
    retired: AtomicBool,
    cancel: CancelToken,
    /// Whether the thread takes whole batches and tells of results in groups: only when no
    /// timeout can make the coordinator take back what the thread holds.
    whole: bool,
}

/// The coordinator's end of one worker thread.
pub(crate) struct Link {
    /// Rung when `jobs` turns non-empty; dropped to tell the thread to finish.
    doorbell: Option<Sender<()>>,
    shared: Arc<Shared>,
    /// The thread's results, each there as soon as it is finished.
    results: spsc::Receiver<Report>,
    handle: Option<JoinHandle<()>>,
}

impl Link {
    /// Starts worker thread `id`; `whole` says that it is never abandoned with jobs it holds
    /// (the pool has no timeout), so it may take a batch at a time.
    pub(crate) fn start(
        id: usize,
        key: Key,
        registry: Arc<Registry>,
        events: Post,
        whole: bool,
        epoch: Epoch,
    ) -> std::io::Result<Link> {
        let (doorbell, rings) = crossbeam_channel::unbounded();
        let (out, results) = spsc::channel();
        let shared = Arc::new(Shared {
            slot: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            jobs: Mutex::new(VecDeque::new()),
            buffers: Mutex::new(Vec::new()),
            told: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            cancel: CancelToken::new(),
            whole,
        });
        let handle = std::thread::Builder::new()
            .name(format!("weft-worker-{id}"))
            .spawn({
                let shared = shared.clone();
                move || {
                    serve(
                        id,
                        key,
                        Ends { rings, out },
                        shared,
                        registry,
                        events,
                        epoch,
                    )
                }
            })?;
        Ok(Link {
            doorbell: Some(doorbell),
            shared,
            results,
            handle: Some(handle),
        })
    }

    /// An empty buffer for up to `n` jobs, one the thread emptied if there is one.
    pub(crate) fn buffer(&self, n: usize) -> Vec<Job> {
        let spare = self.shared.buffers.lock().expect("job buffers").pop();
        let mut buffer = spare.unwrap_or_default();
        buffer.reserve(n);
        buffer
    }

    /// Queues jobs of task `entry` for the thread.
    pub(crate) fn send(
        &self,
        entry: Entry,
        closure: Option<&Closure>,
        notes: Option<&Arc<Sink>>,
        timeout: Option<Duration>,
        jobs: Vec<Job>,
    ) {
        if jobs.is_empty() {
            return;
        }
        let batch = Batch {
            entry,
            closure: closure.cloned(),
            notes: notes.cloned(),
            timeout,
            jobs: jobs.into(),
        };
        let mut queue = self.shared.jobs.lock().expect("worker queue");
        let was_empty = queue.is_empty();
        queue.push_back(batch);
        drop(queue);
        if was_empty && let Some(doorbell) = &self.doorbell {
            let _ = doorbell.send(());
        }
    }

    pub(crate) fn slot(&self) -> SlotView<'_> {
        SlotView::from_words(&self.shared.slot)
    }

    /// How many results the thread has reported and the coordinator not taken yet.
    pub(crate) fn waiting(&mut self) -> usize {
        // Cleared before counting, as in `take_each`.
        self.shared.told.swap(false, Ordering::SeqCst);
        self.results.waiting()
    }

    /// The thread's next result, if it has reported one not taken yet.
    #[inline(always)]
    pub(crate) fn take(&mut self) -> Option<Report> {
        self.results.pop()
    }

    /// Hands `take` everything the thread has reported so far, in the order it reported.
    pub(crate) fn take_each(&mut self, mut take: impl FnMut(Report)) {
        // Cleared before taking, so that a result pushed after the last one taken here is
        // told of again (see `serve`).
        self.shared.told.swap(false, Ordering::SeqCst);
        while let Some(report) = self.results.pop() {
            take(report);
        }
    }

    /// Cancels the running job and stops the thread from starting another; returns the jobs
    /// still queued for it. The thread itself is left to finish on its own.
    pub(crate) fn retire(&mut self) -> Vec<Job> {
        self.shared.retired.store(true, Ordering::Release);
        self.shared.cancel.cancel();
        self.doorbell = None;
        self.shared
            .jobs
            .lock()
            .expect("worker queue")
            .drain(..)
            .flat_map(|b| b.jobs)
            .collect()
    }

    /// Whether the thread has ended.
    pub(crate) fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Closes the channel and waits for the thread, at most `bound` if it is stuck in a task.
    pub(crate) fn shutdown(&mut self, bound: Duration) {
        self.doorbell = None;
        if let Some(handle) = self.handle.take() {
            let until = Instant::now() + bound;
            while !handle.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}

/// The thread's ends of what the coordinator shares with it alone.
struct Ends {
    /// The doorbell, rung when its job queue turns non-empty.
    rings: Receiver<()>,
    /// Where its results go.
    out: spsc::Sender<Report>,
}

fn serve(
    id: usize,
    key: Key,
    Ends { rings, mut out }: Ends,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    events: Post,
    epoch: Epoch,
) {
    // Every result goes straight into the shared queue, so none is ever held by a thread
    // that is stuck in its next job; what is batched is telling the coordinator.
    let tell = || {
        events.send(Event::Ready(key));
    };
    let state = catch(|| registry.init_state(id));
    let mut cx = Context::on_worker(id, shared.cancel.clone(), None);
    let init_error = match state {
        Ok(state) => {
            cx.state = state;
            None
        }
        Err(p) => Some(format!("worker initializer panicked: {}", p.message)),
    };
    let mut worker = Worker {
        slot: SlotView::from_words(&shared.slot),
        cx,
        init_error,
        started: 0,
        clock: None,
        time: sys::Clock::new(),
        epoch,
        pid: event::own_pid(),
    };
    loop {
        let mut queue = shared.jobs.lock().expect("worker queue");
        let Some(front) = queue.front_mut() else {
            drop(queue);
            // Empty: wait for the doorbell; a closed doorbell means the pool is done with us.
            worker.clock = None;
            if rings.recv().is_err() {
                return;
            }
            continue;
        };
        if shared.whole {
            let Some(Batch {
                entry,
                closure,
                notes,
                timeout,
                mut jobs,
            }) = queue.pop_front()
            else {
                unreachable!("the queue has a front")
            };
            drop(queue);
            worker.cx.closure = closure;
            worker.cx.outbox = notes.map(Outbox::Local);
            // Results the coordinator has not been told of.
            let mut untold = 0;
            while let Some(job) = jobs.pop_front() {
                if shared.retired.load(Ordering::Acquire) || worker.draining() {
                    for job in std::iter::once(job).chain(jobs.drain(..)) {
                        out.push(Report::Returned(job));
                    }
                    untold += 1;
                    break;
                }
                let mut slow = false;
                out.push_with(|| {
                    let (done, long) = worker.run(job, entry, timeout);
                    slow = long;
                    done
                });
                untold += 1;
                if slow || untold >= TELL_EVERY {
                    tell();
                    untold = 0;
                }
            }
            if untold > 0 {
                tell();
            }
            recycle(&shared, jobs);
        } else {
            let (entry, timeout) = (front.entry, front.timeout);
            if front.closure.is_some() || worker.cx.closure.is_some() {
                worker.cx.closure.clone_from(&front.closure);
            }
            if front.notes.is_some() || worker.cx.outbox.is_some() {
                worker.cx.outbox = front.notes.clone().map(Outbox::Local);
            }
            let job = front.jobs.pop_front();
            let emptied = if front.jobs.is_empty() {
                queue.pop_front()
            } else {
                None
            };
            drop(queue);
            if let Some(batch) = emptied {
                recycle(&shared, batch.jobs);
            }
            let Some(job) = job else {
                continue;
            };
            let report = if shared.retired.load(Ordering::Acquire) || worker.draining() {
                Report::Returned(job)
            } else {
                worker.run(job, entry, timeout).0
            };
            // The coordinator takes everything when told, so it needs telling only when it
            // has taken everything told of before: it clears `told` first, then takes
            // (`Link::take_each`). Both sides' swaps are sequentially consistent, so either the
            // coordinator's taking sees this result or this swap sees `told` cleared.
            out.push(report);
            if !shared.told.swap(true, Ordering::SeqCst) {
                tell();
            }
        }
    }
}

/// Hands an emptied job buffer back for the coordinator's next batch.
fn recycle(shared: &Shared, jobs: VecDeque<Job>) {
    let mut buffer = Vec::from(jobs);
    buffer.clear();
    let mut buffers = shared.buffers.lock().expect("job buffers");
    if buffers.len() < SPARE_BUFFERS {
        buffers.push(buffer);
    }
}

/// A worker thread's own state between jobs.
struct Worker<'a> {
    slot: SlotView<'a>,
    cx: Context,
    init_error: Option<String>,
    /// How many jobs this thread has begun.
    started: u64,
    /// When the last job ended, if the thread has not waited since: the next job starts then,
    /// which saves a clock read per job.
    clock: Option<u64>,
    time: sys::Clock,
    epoch: Epoch,
    pid: u32,
}

impl Worker<'_> {
    /// Whether the coordinator said to start no further job (the run drains).
    fn draining(&self) -> bool {
        self.slot.draining()
    }

    /// Runs one job; returns its result and whether it took long enough to be told of at once.
    /// Inlined: its result, a hundred-odd bytes, would otherwise be written out by this function
    /// and read back by the caller, a stall per job.
    #[inline(always)]
    fn run(&mut self, job: Job, entry: Entry, timeout: Option<Duration>) -> (Report, bool) {
        self.started += 1;
        let started_ns = match self.clock.take() {
            Some(ns) => ns,
            None => self.time.now(),
        };
        self.slot.begin(self.started, started_ns);
        // Worked out first: made after the task, across this call, the status would be
        // made on the stack and copied.
        let started = Some(event::wall(self.epoch, started_ns));
        let cx = &mut self.cx;
        cx.seq = job.seq;
        cx.attempt = job.attempt;
        // A deadline past what an `Instant` can hold is never reached: no deadline.
        cx.deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let ran = match &self.init_error {
            Some(e) => Err(Status::Failed(e.clone())),
            None => match catch(|| (entry.run_value)(job.input, cx)) {
                Ok(Ok(out)) => Ok(out),
                Ok(Err(f)) if f.is_timed_out() => Err(Status::TimedOut),
                Ok(Err(f)) if f.is_cancelled() => Err(Status::Cancelled),
                Ok(Err(f)) => Err(Status::Failed(f.message().to_string())),
                Err(p) => Err(Status::Panicked {
                    message: p.message,
                    location: p.location,
                }),
            },
        };
        let ended_ns = self.time.now();
        self.clock = Some(ended_ns);
        let runtime_ns = ended_ns.saturating_sub(started_ns);
        let done = Report::Finished {
            ticket: job.ticket,
            outcome: Outcome {
                seq: job.seq,
                // Made here, after the clock's read (which may call), from the output
                // itself: a status made before it was made on the stack and copied.
                status: match ran {
                    Ok(out) => Status::Ok(Value::Local(out)),
                    Err(status) => status,
                },
                attempt: job.attempt,
                worker: self.cx.worker,
                pid: self.pid,
                started,
                runtime: Duration::from_nanos(runtime_ns),
            },
        };
        (done, runtime_ns >= TELL_AT_ONCE.as_nanos() as u64)
    }
}
