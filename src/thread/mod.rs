//! The thread backend: one OS thread per worker, fed through its own channel.
//!
//! Jobs and results pass through two queues shared with the coordinator instead of a message
//! per job: a job costs a lock and a push each way, a doorbell rings only when a queue turns
//! non-empty, and when a thread must be abandoned (timeout) the coordinator takes back what it
//! had not started and what it finished straight out of the queues.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::catch::catch;
use crate::engine::{Event, Key};
use crate::outcome::Status;
use crate::registry::{AnyBox, Entry, Registry};
use crate::sys::{self, SLOT_WORDS, SlotView};
use crate::task::{CancelToken, Context};

/// One job handed to a thread: the input moves, nothing is encoded.
pub(crate) struct Job {
    pub(crate) ticket: u64,
    pub(crate) seq: u64,
    pub(crate) attempt: u32,
    pub(crate) input: AnyBox,
    pub(crate) entry: Entry,
    pub(crate) timeout: Option<Duration>,
}

/// What a thread reports back.
pub(crate) enum Msg {
    Done {
        ticket: u64,
        started_ns: u64,
        runtime_ns: u64,
        status: Status<AnyBox>,
    },
    /// A job taken after the thread was retired, handed back unstarted.
    Returned(Job),
}

struct Shared {
    slot: [AtomicU64; SLOT_WORDS],
    jobs: Mutex<VecDeque<Job>>,
    out: Mutex<Vec<Msg>>,
    retired: AtomicBool,
    cancel: CancelToken,
}

/// The coordinator's end of one worker thread.
pub(crate) struct Link {
    /// Rung when `jobs` turns non-empty; dropped to tell the thread to finish.
    doorbell: Option<Sender<()>>,
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

impl Link {
    pub(crate) fn start(
        id: usize,
        key: Key,
        registry: Arc<Registry>,
        events: Sender<Event>,
    ) -> std::io::Result<Link> {
        let (doorbell, rings) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            slot: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            jobs: Mutex::new(VecDeque::new()),
            out: Mutex::new(Vec::new()),
            retired: AtomicBool::new(false),
            cancel: CancelToken::new(),
        });
        let handle = std::thread::Builder::new()
            .name(format!("weft-worker-{id}"))
            .spawn({
                let shared = shared.clone();
                move || serve(id, key, rings, shared, registry, events)
            })?;
        Ok(Link {
            doorbell: Some(doorbell),
            shared,
            handle: Some(handle),
        })
    }

    /// Queues jobs for the thread.
    pub(crate) fn send(&self, jobs: impl IntoIterator<Item = Job>) {
        let mut queue = self.shared.jobs.lock().expect("worker queue");
        let was_empty = queue.is_empty();
        queue.extend(jobs);
        let ring = was_empty && !queue.is_empty();
        drop(queue);
        if ring && let Some(doorbell) = &self.doorbell {
            let _ = doorbell.send(());
        }
    }

    pub(crate) fn slot(&self) -> SlotView<'_> {
        SlotView::from_words(&self.shared.slot)
    }

    /// Takes everything the thread has reported so far.
    pub(crate) fn drain(&self) -> Vec<Msg> {
        std::mem::take(&mut *self.shared.out.lock().expect("worker buffer"))
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

fn serve(
    id: usize,
    key: Key,
    rings: Receiver<()>,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    events: Sender<Event>,
) {
    let post = |msg: Msg| {
        let mut out = shared.out.lock().expect("worker buffer");
        let was_empty = out.is_empty();
        out.push(msg);
        drop(out);
        if was_empty {
            let _ = events.send(Event::Ready(key));
        }
    };
    let state = catch(|| registry.init_state(id));
    let mut cx = Context::new(id, shared.cancel.clone(), None);
    let init_error = match state {
        Ok(state) => {
            cx.state = state;
            None
        }
        Err(p) => Some(format!("worker initializer panicked: {}", p.message)),
    };
    let slot = SlotView::from_words(&shared.slot);
    let mut started = 0;
    loop {
        let next = shared.jobs.lock().expect("worker queue").pop_front();
        let Some(job) = next else {
            // Empty: wait for the doorbell; a closed doorbell means the pool is done with us.
            if rings.recv().is_err() {
                return;
            }
            continue;
        };
        if shared.retired.load(Ordering::Acquire) || slot.draining() {
            post(Msg::Returned(job));
            continue;
        }
        started += 1;
        let started_ns = sys::now_ns();
        slot.begin(started, started_ns);
        cx.seq = job.seq;
        cx.attempt = job.attempt;
        cx.deadline = job.timeout.map(|t| Instant::now() + t);
        let status = match &init_error {
            Some(e) => Status::Failed(e.clone()),
            None => match catch(|| (job.entry.run_value)(job.input, &cx)) {
                Ok(Ok(out)) => Status::Ok(out),
                Ok(Err(f)) if f.is_timed_out() => Status::TimedOut,
                Ok(Err(f)) if f.is_cancelled() => Status::Cancelled,
                Ok(Err(f)) => Status::Failed(f.message().to_string()),
                Err(p) => Status::Panicked {
                    message: p.message,
                    location: p.location,
                },
            },
        };
        post(Msg::Done {
            ticket: job.ticket,
            started_ns,
            runtime_ns: sys::now_ns().saturating_sub(started_ns),
            status,
        });
    }
}
