//! The thread backend: one OS thread per worker, fed through its own channel.
//!
//! Results go into a buffer shared with the coordinator instead of a message per job: a job
//! costs a lock and a push, the coordinator is woken once per drain, and when a thread must be
//! abandoned (timeout) the coordinator takes what it finished straight out of the buffer.

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
    out: Mutex<Vec<Msg>>,
    retired: AtomicBool,
    cancel: CancelToken,
}

/// The coordinator's end of one worker thread.
pub(crate) struct Link {
    tx: Option<Sender<Job>>,
    rx: Receiver<Job>,
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
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            slot: [AtomicU64::new(0), AtomicU64::new(0)],
            out: Mutex::new(Vec::new()),
            retired: AtomicBool::new(false),
            cancel: CancelToken::new(),
        });
        let handle = std::thread::Builder::new()
            .name(format!("weft-worker-{id}"))
            .spawn({
                let (rx, shared) = (rx.clone(), shared.clone());
                move || serve(id, key, rx, shared, registry, events)
            })?;
        Ok(Link {
            tx: Some(tx),
            rx,
            shared,
            handle: Some(handle),
        })
    }

    pub(crate) fn send(&self, job: Job) {
        if let Some(tx) = &self.tx {
            // The thread holds the receiver until the link drops it, so this cannot fail.
            let _ = tx.send(job);
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
        self.tx = None;
        self.rx.try_iter().collect()
    }

    /// Closes the channel and waits for the thread, at most `bound` if it is stuck in a task.
    pub(crate) fn shutdown(&mut self, bound: Duration) {
        self.tx = None;
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
    rx: Receiver<Job>,
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
    for job in rx.iter() {
        if shared.retired.load(Ordering::Acquire) {
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
                Ok(Err(failure)) => Status::Failed(failure.message().to_string()),
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
