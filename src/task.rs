//! The `Task` trait, the `Context` a task runs in, and `Failure`, a task's own error.
//!
//! A task is data plus a registered name, never a closure: that is what lets the same value run
//! on a thread (moved) or in a worker process (encoded, sent, looked up by name).

use std::any::Any;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::message::{Body, Note, Outbox, SendError};

/// Where jobs run: on worker threads of this process or in worker processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// Worker threads: cheap, shared memory; the default, right for I/O and tiny tasks.
    #[default]
    Thread,
    /// Worker processes: isolated and killable; right for CPU-heavy or untrusted work.
    Process,
}

impl Backend {
    /// The backend's name as the CLI spells it: `thread` or `process`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Thread => "thread",
            Backend::Process => "process",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "thread" | "threads" => Ok(Backend::Thread),
            "process" | "processes" => Ok(Backend::Process),
            _ => Err(format!("unknown backend {s:?}: use thread or process")),
        }
    }
}

/// A unit of work that can run on a thread or in a worker process.
///
/// The value is the input; [`Task::NAME`] is how a worker process finds the code, so every task
/// type run on processes must be registered in the [`Registry`](crate::Registry) that the worker
/// program passes to [`init`](crate::init).
///
/// # Examples
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use weft::{Context, Failure, Task};
///
/// #[derive(Serialize, Deserialize)]
/// struct Square(u64);
///
/// impl Task for Square {
///     const NAME: &'static str = "square";
///     type Output = u64;
///     fn run(self, _cx: &Context) -> Result<u64, Failure> {
///         self.0.checked_mul(self.0).ok_or_else(|| Failure::new("overflow"))
///     }
/// }
/// ```
pub trait Task: Serialize + DeserializeOwned + Send + 'static {
    /// The registered name, unique within a registry.
    const NAME: &'static str;
    /// One line saying what the task does, shown by `weft tasks`.
    const ABOUT: &'static str = "";
    /// The backend that suits the task when the caller does not choose one.
    const BACKEND: Backend = Backend::Thread;
    /// What a successful run produces.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Runs the task. An `Err` is reported as a failed job; the pool goes on.
    fn run(self, cx: &Context) -> Result<Self::Output, Failure>;
    /// Whether an output counts as a success when deciding on another attempt
    /// ([`PoolBuilder::attempts`](crate::PoolBuilder::attempts)). Every output does unless the
    /// task says otherwise: a command that exited non-zero returns an output, yet failed.
    fn succeeded(_output: &Self::Output) -> bool {
        true
    }
}

/// A task's own error: the job is reported as failed with this message.
///
/// Any error type converts into it, so `?` works inside [`Task::run`].
///
/// # Examples
///
/// ```
/// use weft::{Context, Failure, Status, Task, Thread};
/// # use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct ParsePort(String);
///
/// impl Task for ParsePort {
///     const NAME: &'static str = "parse-port";
///     type Output = u16;
///     fn run(self, cx: &Context) -> Result<u16, Failure> {
///         if cx.is_cancelled() {
///             return Err(Failure::cancelled());
///         }
///         // A `ParseIntError` becomes a `Failure` through `?`.
///         Ok(self.0.parse::<u16>()?)
///     }
/// }
///
/// let t = Thread::builder().spawn(ParsePort("http".into()))?;
/// assert_eq!(t.into_outcome().status, Status::Failed("invalid digit found in string".into()));
/// assert!(Failure::timed_out().is_timed_out());
/// # Ok::<(), weft::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    message: String,
    kind: FailureKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailureKind {
    Error,
    TimedOut,
    Cancelled,
}

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            kind: FailureKind::Error,
        }
    }

    /// The task stopped because its [`Context::deadline`] passed: the job is reported
    /// [`Status::TimedOut`](crate::Status::TimedOut).
    pub fn timed_out() -> Self {
        Failure {
            message: "timed out".into(),
            kind: FailureKind::TimedOut,
        }
    }

    /// The task stopped because its job was cancelled ([`Context::is_cancelled`]): the job is
    /// reported [`Status::Cancelled`](crate::Status::Cancelled).
    pub fn cancelled() -> Self {
        Failure {
            message: "cancelled".into(),
            kind: FailureKind::Cancelled,
        }
    }

    /// Whether this is [`Failure::timed_out`].
    pub fn is_timed_out(&self) -> bool {
        self.kind == FailureKind::TimedOut
    }

    /// Whether this is [`Failure::cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.kind == FailureKind::Cancelled
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::new(e.to_string())
    }
}

/// A cancellation flag shared between a running job and whoever may cancel it.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the work watching this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }
    /// The flag itself, for a signal handler to set.
    pub(crate) fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What a running task can know about its job and worker: its place in the input, its attempt,
/// its worker and the state the registry's initializer built there, and whether it should stop.
///
/// # Examples
///
/// ```
/// use weft::{Context, Failure, Pool, Registry, Task};
/// # use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Greet(String);
///
/// impl Task for Greet {
///     const NAME: &'static str = "greet";
///     type Output = String;
///     fn run(self, cx: &Context) -> Result<String, Failure> {
///         if cx.deadline().is_some_and(|d| std::time::Instant::now() >= d) {
///             return Err(Failure::timed_out());
///         }
///         let greeting = cx.state::<String>().map_or("hello", |s| s.as_str());
///         let (job, attempt, worker) = (cx.seq(), cx.attempt(), cx.worker_id());
///         Ok(format!("{greeting} {} (job {job}, attempt {attempt}, worker {worker})", self.0))
///     }
/// }
///
/// let registry = Registry::new().task::<Greet>().initializer(|_worker| "hi".to_string());
/// let mut pool = Pool::builder().workers(1).registry(registry).build()?;
/// let out = pool.map([Greet("ann".into())]).next().unwrap().ok();
/// assert_eq!(out.as_deref(), Some("hi ann (job 1, attempt 1, worker 1)"));
/// # Ok::<(), weft::Error>(())
/// ```
pub struct Context {
    pub(crate) seq: u64,
    pub(crate) attempt: u32,
    pub(crate) worker: usize,
    pub(crate) cancel: CancelToken,
    pub(crate) deadline: Option<Instant>,
    pub(crate) state: Option<Rc<dyn Any>>,
    /// The closure of a run of [`Pool::map_fn`](crate::Pool::map_fn), set per batch: its
    /// jobs' inputs are the closure's arguments alone, boxed as a task would be.
    pub(crate) closure: Option<crate::registry::Closure>,
    /// Where [`send`](Self::send) puts messages: set per batch on a thread (when the caller
    /// asked for the run's messages), once on a worker process.
    pub(crate) outbox: Option<Outbox>,
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Context {
    /// A context of its own, to run a task inline (Python's `Thread.run()`) or in a unit test:
    /// job 1, attempt 1, worker 1, no deadline, no state, a cancel token of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use weft::tasks::Sum;
    /// use weft::{Context, Task};
    ///
    /// assert_eq!(Sum::new(0..10).run(&Context::new()), Ok(45));
    ///
    /// let cx = Context::new()
    ///     .with_state(String::from("hi"))
    ///     .with_deadline(Instant::now() + Duration::from_secs(1));
    /// assert_eq!(cx.state::<String>().map(String::as_str), Some("hi"));
    /// assert_eq!((cx.seq(), cx.attempt(), cx.worker_id()), (1, 1, 1));
    /// cx.cancel_token().cancel();
    /// assert!(cx.is_cancelled() && cx.deadline().is_some());
    /// ```
    pub fn new() -> Self {
        let mut cx = Self::on_worker(1, CancelToken::new(), None);
        cx.seq = 1;
        cx
    }

    /// This context with `state` as what [`state`](Self::state) returns, as a registry's
    /// initializer would have built it.
    pub fn with_state<S: 'static>(mut self, state: S) -> Self {
        self.state = Some(Rc::new(state));
        self
    }

    /// This context with a deadline, as a pool's timeout would set it.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    pub(crate) fn on_worker(
        worker: usize,
        cancel: CancelToken,
        state: Option<Rc<dyn Any>>,
    ) -> Self {
        Context {
            seq: 0,
            attempt: 1,
            worker,
            cancel,
            deadline: None,
            state,
            closure: None,
            outbox: None,
        }
    }

    /// The job's sequence number: its position in the input, from 1.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// Which attempt this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// The worker's number within its pool, from 1.
    pub fn worker_id(&self) -> usize {
        self.worker
    }
    /// Whether the job was asked to stop (timeout or cancellation). Long tasks should check.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
    /// The token behind [`is_cancelled`](Self::is_cancelled), to hand to other code.
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }
    /// When the job's timeout expires, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
    /// Sends `message` to the job's caller while the task runs: progress, partial results
    /// (Python's `queue.put` on a `multiprocessing.Queue` handed to the worker). The caller
    /// reads it from [`Results::messages`](crate::Results::messages) for a pool's run, or
    /// [`Thread::messages`](crate::Thread::messages) /
    /// [`Process::messages`](crate::Process::messages), tagged with this job's
    /// [`seq`](Self::seq). On threads the value is moved; from a worker process it travels
    /// encoded (bincode), so the caller reads it as any type that decodes from it.
    ///
    /// It never waits. Up to [`Messages::capacity`](crate::Messages::capacity) messages wait
    /// for the caller; one past that is dropped and this returns [`SendError::Full`]; with
    /// nobody reading it returns [`SendError::Closed`]. Either error is the caller's business,
    /// and the task may ignore it. From a worker process, a message is on its way once this
    /// returns `Ok`, and one that finds the caller's channel full or closed is dropped there.
    ///
    /// # Errors
    /// [`SendError::Full`], [`SendError::Closed`], or [`SendError::Encode`] for a value that
    /// cannot be encoded for a process worker's channel.
    ///
    /// # Examples
    ///
    /// ```
    /// use weft::{Context, SendError};
    ///
    /// // A context of its own has nobody to send to: the task goes on.
    /// assert_eq!(Context::new().send("50%"), Err(SendError::Closed));
    /// ```
    pub fn send<M: Serialize + Send + 'static>(&self, message: M) -> Result<(), SendError> {
        match &self.outbox {
            None => Err(SendError::Closed),
            Some(Outbox::Local(sink)) => sink.post(Note {
                seq: self.seq,
                body: Body::Local(Box::new(message)),
            }),
            Some(Outbox::Wire(tx)) => {
                let note =
                    crate::wire::Results::note(self.seq, &message).map_err(SendError::Encode)?;
                tx.send(note).map_err(|_| SendError::Closed)
            }
        }
    }

    /// The per-worker state built by the registry's initializer, if it is of type `S`.
    pub fn state<S: 'static>(&self) -> Option<&S> {
        self.state.as_deref().and_then(|s| s.downcast_ref())
    }
}
