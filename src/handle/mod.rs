//! One-off workers mirroring Python's `threading.Thread` and `multiprocessing.Process`: start a
//! single task, then join, join with a timeout, poll, terminate or kill it. Both kinds can be
//! waited on together with [`as_completed`], first finished first.
//!
//! A process handle is a worker of the process backend used once: same spawn, handshake,
//! wire and crash reporting as a pool's, so a one-off process behaves exactly like a pool job.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Receiver;

use crate::error::Error;
use crate::event::Event;
use crate::outcome::{Outcome, Status};
use crate::process;
use crate::sys;
use crate::task::Task;
use crate::wire;

mod completed;
mod thread;

pub use completed::{AsCompleted, Handle, IntoHandle, as_completed};
pub use thread::{Thread, ThreadBuilder};

/// Configures a one-off [`Process`].
#[derive(Debug, Clone)]
pub struct ProcessBuilder {
    name: Option<String>,
    program: Option<PathBuf>,
    daemon: bool,
    start_timeout: Duration,
}

impl ProcessBuilder {
    /// The handle's name (default: `process-PID`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// The worker program (default: this executable, which must call [`init`](crate::init)).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }
    /// Whether dropping the handle kills the process (`true`, the default) or waits for it to
    /// finish. Either way the process dies with its parent, and what its task left running
    /// dies with the handle (see [`Pool`](crate::Pool) for how).
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }
    /// How long the process may take to start (default: 10 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Starts a worker process running `task`.
    ///
    /// # Errors
    /// The process could not be spawned or did not finish its handshake, or the temp directory
    /// cannot hold its socket (see [`PoolBuilder::build`](crate::PoolBuilder::build)). Called
    /// in a process launched as a worker whose program did not call [`init`](crate::init)
    /// first, it fails at once, and the program that launched it reports the mistake.
    pub fn spawn<T: Task>(self, task: T) -> Result<Process<T::Output>, Error> {
        let (tx, events) = crossbeam_channel::unbounded();
        let program = process::worker_program(self.program.as_deref());
        let link = process::start(
            &program,
            1,
            (0, 0),
            self.start_timeout,
            None,
            process::Reading::Thread(tx),
        )?;
        let input = wire::Payload::encode(&task).map_err(|e| {
            Error::new(
                crate::ErrorKind::Input,
                format!("cannot encode {} input", T::NAME),
            )
            .with_source(std::io::Error::other(e))
        })?;
        let batch = wire::encode_batch(T::NAME, None, 0, [(1, 1, &input)]);
        // A send failure means the worker already died; its reader reports that as a crash.
        let _ = link.send(batch);
        let pid = link.pid;
        Ok(Process {
            name: self.name.unwrap_or_else(|| format!("process-{pid}")),
            pid,
            daemon: self.daemon,
            link: Some(Box::new(link)),
            events,
            outcome: None,
            exit: None,
            taken: false,
            spawned: (SystemTime::now(), sys::now_ns()),
            _input: Box::new(input),
        })
    }
}

/// A task running alone in a worker process of its own.
///
/// Dropping the handle kills the process if it is a daemon (the default), else waits for it;
/// then whatever its task started and left running is killed too.
///
/// # Examples
///
/// ```no_run
/// weft::init(&weft::tasks::registry());
/// let p = weft::Process::builder().spawn(weft::tasks::Sum::new(0..100))?;
/// let outcome = p.join();
/// assert_eq!(outcome.ok(), Some(4950));
/// # Ok::<(), weft::Error>(())
/// ```
pub struct Process<O> {
    name: String,
    pid: u32,
    daemon: bool,
    link: Option<Box<process::Link>>,
    events: Receiver<Event>,
    outcome: Option<Outcome<O>>,
    exit: Option<ExitStatus>,
    taken: bool,
    spawned: (SystemTime, u64),
    /// The encoded task, kept until the process is gone: a shared-memory region is reused once
    /// its last handle here is dropped, and the process may still be reading it.
    _input: Box<wire::Payload>,
}

impl Process<()> {
    /// A builder with the defaults.
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder {
            name: None,
            program: None,
            daemon: true,
            start_timeout: Duration::from_secs(10),
        }
    }
}

impl<O: serde::de::DeserializeOwned> Process<O> {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }
    /// The handle's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether the process is still running.
    pub fn is_alive(&self) -> bool {
        self.exit.is_none() && self.link.as_ref().is_some_and(|l| l.try_exit().is_none())
    }
    /// How the process ended, once it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit
            .or_else(|| self.link.as_ref().and_then(|l| l.try_exit()))
    }
    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = sys::kill(self.pid, sys::SIGTERM);
    }
    /// Sends SIGKILL.
    pub fn kill(&self) {
        if let Some(link) = &self.link {
            link.kill();
        }
    }

    /// Waits for the task's outcome, then for the process to exit.
    pub fn join(mut self) -> Outcome<O> {
        while !self.step(None) {}
        self.take().expect("joined once")
    }

    /// Waits at most `timeout`; the outcome if the task finished by then (given once).
    pub fn join_timeout(&mut self, timeout: Duration) -> Option<Outcome<O>> {
        let Some(until) = Instant::now().checked_add(timeout) else {
            // Longer than the clock can count: the same as waiting for ever.
            while !self.step(None) {}
            return self.take();
        };
        while !self.step(Some(until)) {
            if Instant::now() >= until {
                return None;
            }
        }
        self.take()
    }

    fn take(&mut self) -> Option<Outcome<O>> {
        if self.taken {
            return None;
        }
        self.taken = true;
        self.outcome.take()
    }

    /// Handles one event, waiting until `until`; returns whether the process has exited.
    fn step(&mut self, until: Option<Instant>) -> bool {
        if self.exit.is_some() {
            return true;
        }
        let event = match until {
            None => self.events.recv().ok(),
            Some(t) => self.events.recv_deadline(t).ok(),
        };
        match event {
            Some(Event::Results(_, message)) => {
                let mut first = None;
                let read = self.link.as_ref().map(|link| {
                    let decode = |bytes: wire::Payload| wire::decode::<O>(&bytes);
                    process::read_results(message, &link.returns(), decode, |r| {
                        first.get_or_insert(r);
                    })
                });
                if let Some(r) = first {
                    let status = match r.status {
                        Status::Ok(Ok(v)) => Status::Ok(v),
                        Status::Ok(Err(e)) => Status::Failed(format!("cannot decode output: {e}")),
                        other => other.map(|_| unreachable!("not ok")),
                    };
                    self.outcome = Some(self.outcome_of(status, r.started_ns, r.runtime_ns));
                }
                if let (Some(Err(_)), Some(link)) = (read, &self.link) {
                    // Garbled: the worker is killed, and its exit reported as a crash.
                    link.kill();
                }
                // Done: closing the channel lets the worker exit 0.
                if let Some(link) = &mut self.link {
                    link.close();
                }
                false
            }
            Some(Event::Exited(_, crash)) => {
                self.exit = self.link.as_ref().and_then(|l| l.try_exit());
                if self.outcome.is_none() {
                    let (started, started_ns) =
                        self.link.as_ref().map_or((0, 0), |l| l.slot().read());
                    let started_ns = if started == 0 {
                        sys::now_ns()
                    } else {
                        started_ns
                    };
                    let runtime = sys::now_ns().saturating_sub(started_ns);
                    self.outcome =
                        Some(self.outcome_of(Status::Crashed(crash), started_ns, runtime));
                }
                true
            }
            Some(_) => false,
            None => until.is_none(),
        }
    }

    fn outcome_of(&self, status: Status<O>, started_ns: u64, runtime_ns: u64) -> Outcome<O> {
        let (wall, mono) = self.spawned;
        Outcome {
            seq: 1,
            status,
            attempt: 1,
            worker: 1,
            pid: self.pid,
            started: Some(wall + Duration::from_nanos(started_ns.saturating_sub(mono))),
            runtime: Duration::from_nanos(runtime_ns),
        }
    }
}

impl<O> Drop for Process<O> {
    fn drop(&mut self) {
        if let Some(mut link) = self.link.take() {
            if self.daemon {
                link.kill();
            } else if self.exit.is_none() {
                while self.outcome.is_none() && self.exit.is_none() {
                    match self.events.recv() {
                        Ok(Event::Results(..)) => break,
                        Ok(Event::Exited(..)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
            link.shutdown(Duration::from_secs(1));
        }
    }
}
