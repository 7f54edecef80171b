//! Workers' lives: starting them, a death (the one job a worker was running is its crash,
//! the rest go back in line), the respawn after it, and giving up on a slot whose worker
//! keeps failing to start.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::ledger::{Queued, unstarted};
use super::workers::{Flight, Link, SlotState, Worker};
use super::{Engine, Pull, Run, human_bytes};
use crate::error::{Error, ErrorKind};
use crate::event::{Epoch, Event, Key, Value, wall};
use crate::outcome::{Crash, Outcome, Status};
use crate::task::Backend;
use crate::{process, sys, thread};

/// A slot whose worker fails to start this many times in a row is given up.
const MAX_START_FAILURES: u32 = 5;

/// What a handshake thread hands back: the worker it started, or why it could not.
type Started = (Key, Result<process::Link, Error>);

/// Where handshake threads leave their results, each then told of by an [`Event::Started`].
pub(super) struct Starts {
    tx: Sender<Started>,
    rx: Receiver<Started>,
}

impl Starts {
    pub(super) fn new() -> Starts {
        let (tx, rx) = crossbeam_channel::unbounded();
        Starts { tx, rx }
    }
}

fn socket_error(i: usize, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Spawn,
        format!("worker {} could not be read from", i + 1),
    )
    .with_source(e)
}

/// The outcome of the job worker `w` was running, `flight`, started at `started_ns` and cut
/// short at `now` with `status`.
pub(super) fn cut_short(
    w: &Worker,
    flight: &Flight,
    status: Status<Value>,
    (started_ns, now): (u64, u64),
    epoch: Epoch,
) -> Outcome<Value> {
    Outcome {
        seq: flight.seq,
        status,
        attempt: flight.attempt,
        worker: w.key.0 + 1,
        pid: w.pid(),
        started: Some(wall(epoch, started_ns)),
        runtime: Duration::from_nanos(now.saturating_sub(started_ns)),
    }
}

impl Engine {
    fn process_args(&self) -> (PathBuf, Duration, Option<u64>) {
        (
            process::worker_program(self.cfg.program.as_deref()),
            self.cfg.start_timeout,
            self.cfg.memory_limit,
        )
    }

    /// Starts a thread in every slot.
    pub(super) fn start_threads(&mut self) -> Result<(), Error> {
        for i in 0..self.cfg.workers {
            let w = self.start_thread(i)?;
            self.workers.slots[i].state = SlotState::Live(w);
        }
        Ok(())
    }

    /// Starts a process worker in every slot, with all handshakes at once: start-up costs one
    /// worker's, not N.
    pub(super) fn start_processes(&mut self) -> Result<(), Error> {
        let starts: Vec<_> = (0..self.cfg.workers)
            .map(|i| {
                let (program, timeout, limit) = self.process_args();
                std::thread::spawn(move || {
                    let reading = process::Reading::Inbox;
                    process::start(&program, i + 1, (i, 0), timeout, limit, reading)
                })
            })
            .collect();
        let mut first_error = None;
        for (i, start) in starts.into_iter().enumerate() {
            let added = start
                .join()
                .expect("handshake thread")
                .and_then(|mut link| {
                    self.inbox
                        .add((i, 0), &mut link)
                        .map_err(|e| socket_error(i, e))?;
                    Ok(link)
                });
            match added {
                Ok(link) => {
                    let worker = Worker::new((i, 0), Link::Process(link));
                    self.workers.slots[i].state = SlotState::Live(Box::new(worker));
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn start_thread(&self, i: usize) -> Result<Box<Worker>, Error> {
        let key = (i, self.workers.slots[i].generation);
        // A thread that no timeout can abandon may hold a whole batch (see `thread`).
        let whole = self.cfg.timeout.is_none() && self.cfg.timeout_of_median.is_none();
        let link = thread::Link::start(
            i + 1,
            key,
            self.registry.clone(),
            self.post.clone(),
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

    /// A process worker is gone: the job it was running crashed, the others go back in line.
    pub(super) fn died(&mut self, key: Key, crash: Crash, run: &mut Run<'_>) {
        if self.workers.slots[key.0].generation != key.1 {
            return;
        }
        let Some(mut w) = self.workers.take_live(key.0) else {
            return;
        };
        let (started, started_ns) = w.slot_read();
        let now = sys::now_ns();
        let mut requeue = Vec::new();
        let mut crashed = None;
        for (ticket, flight) in w.flights.land_all() {
            if ticket + 1 == started {
                crashed = Some(flight);
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
            self.ledger.requeue(q);
        }
        if let Some(flight) = crashed {
            let status = self.crash_status(crash);
            let outcome = cut_short(&w, &flight, status, (started_ns, now), self.epoch);
            self.ledger.settle(run, outcome, flight.input);
        }
        if self.cancelling {
            // The run was stopped and the pool may be dropped next: a handshake cut short by
            // the process exiting would leave its socket behind. Replace it on next use.
            let slot = &mut self.workers.slots[key.0];
            slot.generation += 1;
            slot.state = SlotState::Waiting(Instant::now());
        } else {
            self.respawn(key.0);
        }
    }

    /// The status of a job whose process worker died of `crash` while running it.
    fn crash_status(&self, crash: Crash) -> Status<Value> {
        match self.cfg.memory_limit {
            Some(limit) if crash.signal().is_some_and(sys::is_out_of_memory_signal) => {
                Status::Failed(format!(
                    "memory limit: the worker went over its {} and died ({crash})",
                    human_bytes(limit)
                ))
            }
            _ => Status::Crashed(crash),
        }
    }

    pub(super) fn respawn(&mut self, i: usize) {
        let slot = &mut self.workers.slots[i];
        slot.generation += 1;
        slot.state = SlotState::Starting;
        let key = (i, slot.generation);
        match self.cfg.backend {
            Backend::Thread => match self.start_thread(i) {
                Ok(w) => self.workers.slots[i].state = SlotState::Live(w),
                Err(e) => {
                    self.workers.slots[i].state = SlotState::Failed;
                    self.error = Some(e);
                }
            },
            Backend::Process => {
                let (program, timeout, limit) = self.process_args();
                let post = self.post.clone();
                let starts = self.starts.tx.clone();
                std::thread::spawn(move || {
                    let reading = process::Reading::Inbox;
                    let result = process::start(&program, i + 1, key, timeout, limit, reading);
                    // The result first: the event only says where to look.
                    let _ = starts.send((key, result));
                    post.send(Event::Started);
                });
            }
        }
    }

    pub(super) fn restart_waiting(&mut self) {
        let now = Instant::now();
        for i in 0..self.workers.slots.len() {
            if let SlotState::Waiting(at) = self.workers.slots[i].state
                && at <= now
            {
                self.respawn(i);
            }
        }
    }

    /// Takes in the handshakes that ended: a worker that started goes live in its slot, unless
    /// the slot moved on meanwhile.
    pub(super) fn take_started(&mut self) {
        while let Ok((key, result)) = self.starts.rx.try_recv() {
            self.started(key, result);
        }
    }

    fn started(&mut self, key: Key, result: Result<process::Link, Error>) {
        let slot = &mut self.workers.slots[key.0];
        if slot.generation != key.1 || !matches!(slot.state, SlotState::Starting) {
            return;
        }
        match result {
            Ok(mut link) => match self.inbox.add(key, &mut link) {
                Ok(()) => {
                    slot.failures = 0;
                    let worker = Worker::new(key, Link::Process(link));
                    slot.state = SlotState::Live(Box::new(worker));
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

    /// No worker can ever start again: every remaining job is skipped with the reason.
    pub(super) fn give_up(&mut self, run: &mut Run<'_>) {
        let why = match &self.error {
            Some(e) => format!("no worker could be started: {e}"),
            None => "no worker could be started".to_string(),
        };
        let skipped = |seq, attempt| unstarted(seq, attempt, Status::Skipped(why.clone()));
        let mut outcomes: Vec<_> = self
            .ledger
            .take_queue()
            .map(|q| skipped(q.seq, q.attempt))
            .collect();
        for w in self.workers.all_mut() {
            outcomes.extend(w.flights.land_all().map(|(_, f)| skipped(f.seq, f.attempt)));
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
            self.ledger.emit(run, o);
        }
    }
}
