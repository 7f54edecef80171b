//! One-off workers mirroring Python's `threading.Thread` and `multiprocessing.Process`: start a
//! single task, then join, join with a timeout, poll, terminate or kill it. Both kinds can be
//! waited on together with [`as_completed`], first finished first.
//!
//! A process handle is a worker of the process backend used once: same spawn, handshake,
//! wire and crash reporting as a pool's, so a one-off process behaves exactly like a pool job.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Receiver;

use crate::error::Error;
use crate::event::Event;
use crate::message::{Messages, Note, Sink};
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
        let input = wire::Payload::encode(&task);
        self.start(T::NAME, input)
    }

    /// Starts a worker process running the plain function `f` on `arg`, Python's
    /// `Process(target=f, args=(arg,))`: `f` is found there by its name, so the worker program
    /// registers it ([`register_fn!`](crate::register_fn) or [`Registry::function`]); one that
    /// does not makes the job fail saying so.
    ///
    /// [`Registry::function`]: crate::Registry::function
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn).
    ///
    /// # Examples
    ///
    /// ```no_run,standalone_crate
    /// fn greet(name: String) -> String {
    ///     format!("hello {name}")
    /// }
    /// weft::register_fn!(greet);
    ///
    /// weft::init(&weft::Registry::new());
    /// let mut p = weft::Process::builder().name("greeter").spawn_fn(greet, "bob".to_string())?;
    /// assert_eq!(p.join().clone().ok().as_deref(), Some("hello bob"));
    /// assert_eq!(p.exitcode(), Some(0));
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn spawn_fn<F, X, O>(self, f: F, arg: X) -> Result<Process<O>, Error>
    where
        F: Fn(X) -> O + Copy + Send + Sync + 'static,
        X: serde::Serialize + Send + 'static,
        O: serde::de::DeserializeOwned,
    {
        let _ = f;
        let input = wire::Payload::encode(&arg);
        self.start(crate::registry::fn_name::<F>(), input)
    }

    /// Starts a worker process running the job of task (or function) `name` on `input`.
    fn start<O>(
        self,
        name: &str,
        input: Result<wire::Payload, String>,
    ) -> Result<Process<O>, Error> {
        let (tx, events) = crossbeam_channel::unbounded();
        let (notes, notes_rx) = Sink::new();
        let program = process::worker_program(self.program.as_deref());
        let link = process::start(
            &program,
            1,
            (0, 0),
            self.start_timeout,
            None,
            process::Reading::Thread(tx, notes),
        )?;
        let input = input.map_err(|e| {
            Error::new(
                crate::ErrorKind::Input,
                format!("cannot encode {name} input"),
            )
            .with_source(std::io::Error::other(e))
        })?;
        let batch = wire::encode_batch(name, None, 0, [(1, 1, &input)]);
        // A send failure means the worker already died; its reader reports that as a crash.
        let _ = link.send(batch);
        let pid = link.pid;
        Ok(Process {
            name: self.name.unwrap_or_else(|| format!("process-{pid}")),
            pid,
            daemon: self.daemon,
            link: Some(Box::new(link)),
            events,
            notes: notes_rx,
            outcome: None,
            exit: None,
            done: false,
            stopped: AtomicBool::new(false),
            spawned: (SystemTime::now(), sys::now_ns()),
            _input: Box::new(input),
        })
    }
}

/// A task running alone in a worker process of its own.
///
/// As in Python, joining does not use the handle up: [`join`](Self::join) and
/// [`join_timeout`](Self::join_timeout) take it by reference and, once the process has ended,
/// return the same outcome every time, and [`exitcode`](Self::exitcode) reads how it ended.
/// [`into_outcome`](Self::into_outcome) moves the outcome out.
///
/// Dropping the handle kills the process if it is a daemon (the default), else waits for it;
/// then whatever its task started and left running is killed too.
///
/// # Examples
///
/// ```no_run
/// use weft::Status;
///
/// weft::init(&weft::tasks::registry());
/// let mut p = weft::Process::builder().spawn(weft::tasks::Sum::new(0..100))?;
/// assert_eq!(p.exitcode(), None, "running");
/// assert_eq!(p.join().status, Status::Ok(4950));
/// assert_eq!(p.exitcode(), Some(0));
///
/// // Stopped on purpose: cancelled, and Python's negative signal number.
/// let mut nap = weft::Process::builder().spawn(weft::tasks::Sleep::new(std::time::Duration::MAX))?;
/// nap.terminate();
/// assert_eq!(nap.join().status, Status::Cancelled);
/// assert_eq!(nap.exitcode(), Some(-15));
/// # Ok::<(), weft::Error>(())
/// ```
pub struct Process<O> {
    name: String,
    pid: u32,
    daemon: bool,
    link: Option<Box<process::Link>>,
    events: Receiver<Event>,
    /// The task's messages, as its reader thread passes them on.
    notes: Receiver<Note>,
    outcome: Option<Outcome<O>>,
    exit: Option<ExitStatus>,
    /// Whether the process has ended (and `outcome` is set for good).
    done: bool,
    /// Whether [`terminate`](Self::terminate) or [`kill`](Self::kill) was called: the process
    /// dying of it is the job cancelled, not crashed.
    stopped: AtomicBool,
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
    /// Whether dropping the handle kills the process (see [`ProcessBuilder::daemon`]).
    pub fn daemon(&self) -> bool {
        self.daemon
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
    /// Python's `exitcode`: `None` while the process runs, then its exit code (0 once its
    /// task has finished; what a task passed to `std::process::exit`), or minus the signal
    /// that killed it (`-15` after [`terminate`](Self::terminate), `-9` after
    /// [`kill`](Self::kill)).
    pub fn exitcode(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let status = self.exit_status()?;
        status.code().or_else(|| status.signal().map(|s| -s))
    }
    /// The messages the task sends ([`Context::send`](crate::Context::send)) while it runs,
    /// decoded as `M`, as they come: each handle of them reads from the same channel, which
    /// holds up to [`capacity`](Messages::capacity) messages unread (further ones are dropped).
    /// They end once the process has ended and they are read.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use weft::{Context, Failure, Process, Registry, Task};
    /// # use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Countdown(u32);
    ///
    /// impl Task for Countdown {
    ///     const NAME: &'static str = "countdown";
    ///     type Output = ();
    ///     fn run(self, cx: &Context) -> Result<(), Failure> {
    ///         for left in (0..self.0).rev() {
    ///             let _ = cx.send(left);
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// weft::init(&Registry::new().task::<Countdown>());
    /// let mut p = Process::builder().spawn(Countdown(3))?;
    /// let left: Vec<u32> = p.messages().map(|m| m.value).collect();
    /// assert_eq!(left, [2, 1, 0]);
    /// assert!(p.join().is_ok());
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn messages<M: serde::de::DeserializeOwned + 'static>(&self) -> Messages<M> {
        Messages::new(self.notes.clone())
    }
    /// Sends SIGTERM. The job then reads [`Status::Cancelled`] unless it had finished.
    pub fn terminate(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let _ = sys::kill(self.pid, sys::SIGTERM);
    }
    /// Sends SIGKILL. The job then reads [`Status::Cancelled`] unless it had finished.
    pub fn kill(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        if let Some(link) = &self.link {
            link.kill();
        }
    }

    /// Waits for the task's outcome, then for the process to exit; the same outcome on every
    /// call.
    pub fn join(&mut self) -> &Outcome<O> {
        while !self.step(None) {}
        self.outcome.get_or_insert_with(|| lost(self.pid))
    }

    /// Waits at most `timeout` for the task's outcome and the process's exit; the outcome if
    /// both came by then, the same one on every call.
    pub fn join_timeout(&mut self, timeout: Duration) -> Option<&Outcome<O>> {
        let Some(until) = Instant::now().checked_add(timeout) else {
            // Longer than the clock can count: the same as waiting for ever.
            return Some(self.join());
        };
        while !self.step(Some(until)) {
            if Instant::now() >= until {
                return None;
            }
        }
        Some(self.outcome.get_or_insert_with(|| lost(self.pid)))
    }

    /// Waits for the process as [`join`](Self::join) does and hands the outcome over, output
    /// and all.
    pub fn into_outcome(mut self) -> Outcome<O> {
        self.join();
        self.outcome.take().unwrap_or_else(|| lost(self.pid))
    }

    /// Handles one event, waiting until `until`; returns whether the process has exited.
    fn step(&mut self, until: Option<Instant>) -> bool {
        if self.done {
            return true;
        }
        // `Err(true)`: the reader is gone without saying the process exited, so nothing more
        // comes; `Err(false)`: the deadline passed.
        let event = match until {
            None => self.events.recv().map_err(|_| true),
            Some(t) => self
                .events
                .recv_deadline(t)
                .map_err(|e| e.is_disconnected()),
        };
        match event {
            Ok(Event::Results(_, message)) => {
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
            Ok(Event::Exited(_, crash)) => {
                self.exit = self.link.as_ref().and_then(|l| l.try_exit());
                self.done = true;
                if self.outcome.is_none() {
                    let (started, started_ns) =
                        self.link.as_ref().map_or((0, 0), |l| l.slot().read());
                    let started_ns = if started == 0 {
                        sys::now_ns()
                    } else {
                        started_ns
                    };
                    let runtime = sys::now_ns().saturating_sub(started_ns);
                    let status = if self.stopped.load(Ordering::Relaxed) {
                        Status::Cancelled
                    } else {
                        Status::Crashed(crash)
                    };
                    self.outcome = Some(self.outcome_of(status, started_ns, runtime));
                }
                true
            }
            Ok(_) | Err(false) => false,
            Err(true) => {
                self.done = true;
                if self.outcome.is_none() {
                    self.outcome = Some(lost(self.pid));
                }
                true
            }
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

/// The outcome of a process whose end was never told of: cannot happen (its reader always
/// tells), but a join must not panic for it.
fn lost<O>(pid: u32) -> Outcome<O> {
    Outcome {
        seq: 1,
        status: Status::Skipped("the worker process was lost".into()),
        attempt: 1,
        worker: 1,
        pid,
        started: None,
        runtime: Duration::ZERO,
    }
}

impl<O> Drop for Process<O> {
    fn drop(&mut self) {
        if let Some(mut link) = self.link.take() {
            if self.daemon {
                link.kill();
            } else if !self.done {
                while self.outcome.is_none() {
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
