//! A worker's death: the one job it was running is its crash, the rest go back in line, and
//! the slot is respawned, or given up after repeated failures to start.

use crossbeam_channel::{Receiver, Sender};

use super::*;

/// A slot whose worker fails to start this many times in a row is given up.
/// Where handshake threads leave their results.
pub(super) struct Starts {
    pub(super) tx: Sender<(Key, Result<process::Link, Error>)>,
    pub(super) rx: Receiver<(Key, Result<process::Link, Error>)>,
}

impl Starts {
    pub(super) fn new() -> Starts {
        let (tx, rx) = crossbeam_channel::unbounded();
        Starts { tx, rx }
    }
}

pub(super) const MAX_START_FAILURES: u32 = 5;

pub(super) fn socket_error(i: usize, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Spawn,
        format!("worker {} could not be read from", i + 1),
    )
    .with_source(e)
}

impl Engine {
    pub(super) fn process_args(&self) -> (PathBuf, Duration, Option<u64>) {
        (
            process::worker_program(self.cfg.program.as_deref()),
            self.cfg.start_timeout,
            self.cfg.memory_limit,
        )
    }

    pub(super) fn start_thread(&self, i: usize) -> Result<Box<Worker>, Error> {
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

    /// A process worker is gone: the job it was running crashed, the others go back in line.
    pub(super) fn died(&mut self, key: Key, crash: Crash, run: &mut Run<'_>) {
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

    pub(super) fn respawn(&mut self, i: usize) {
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
        for i in 0..self.slots.len() {
            if let SlotState::Waiting(at) = self.slots[i].state
                && at <= now
            {
                self.respawn(i);
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

    /// Takes in the handshakes that ended: a worker that started goes live in its slot, unless
    /// the slot moved on meanwhile.
    pub(super) fn take_started(&mut self) {
        while let Ok((key, result)) = self.starts.rx.try_recv() {
            self.started(key, result);
        }
    }

    fn started(&mut self, key: Key, result: Result<process::Link, Error>) {
        let slot = &mut self.slots[key.0];
        if slot.generation != key.1 || !matches!(slot.state, SlotState::Starting) {
            return;
        }
        match result {
            Ok(mut link) => match self.inbox.add(key, &mut link) {
                Ok(()) => {
                    slot.failures = 0;
                    slot.state = SlotState::Live(Box::new(Worker::new(key, Link::Process(link))));
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
