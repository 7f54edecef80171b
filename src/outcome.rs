//! `Outcome`: the one record every job produces, whatever happened to it.
//!
//! A failed job is data, not an `Err` that stops the run: a thousand-job run with one crash
//! yields a thousand outcomes, one of them `Crashed`.

use std::fmt;
use std::time::{Duration, SystemTime};

/// What happened to one job, with where and when it ran.
///
/// # Examples
///
/// ```
/// use weft::tasks::Sum;
/// use weft::{Pool, Status};
///
/// let mut pool = Pool::builder().workers(1).build()?;
/// let outcome = pool.map([Sum::new(0..100)]).next().unwrap();
/// assert_eq!((outcome.seq, outcome.attempt, outcome.worker), (1, 1, 1));
/// assert_eq!(outcome.pid, std::process::id(), "a thread worker runs in this process");
/// assert!(outcome.is_ok() && outcome.started.is_some());
/// assert_eq!(outcome.into_result(), Ok(4950));
/// # Ok::<(), weft::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Outcome<T> {
    /// The job's position in the input, from 1.
    pub seq: u64,
    /// How the job ended.
    pub status: Status<T>,
    /// The attempt that produced this outcome, from 1.
    pub attempt: u32,
    /// The worker's number within the pool, from 1 (0 if the job never reached a worker).
    pub worker: usize,
    /// The pid of the process that ran the job (the coordinator's own for threads).
    pub pid: u32,
    /// When the job started, if it did.
    pub started: Option<SystemTime>,
    /// How long it ran.
    pub runtime: Duration,
}

impl<T> Outcome<T> {
    /// Whether the job succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self.status, Status::Ok(_))
    }

    /// The output of a successful job.
    pub fn ok(self) -> Option<T> {
        match self.status {
            Status::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// The output, or the status that is not a success.
    ///
    /// # Errors
    /// Returns the status (with the output type erased) when the job did not succeed.
    pub fn into_result(self) -> Result<T, Status<()>> {
        match self.status {
            Status::Ok(v) => Ok(v),
            other => Err(other.map(|_| ())),
        }
    }

    /// Inlined: [`Results`](crate::Results) maps every outcome in its caller's loop.
    #[inline(always)]
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> Status<U>) -> Outcome<U> {
        let status = match self.status {
            Status::Ok(v) => f(v),
            other => other.map(|_| unreachable!("not ok")),
        };
        Outcome {
            seq: self.seq,
            status,
            attempt: self.attempt,
            worker: self.worker,
            pid: self.pid,
            started: self.started,
            runtime: self.runtime,
        }
    }
}

/// How a job ended. A failed job is a status, not an error: the run goes on.
///
/// # Examples
///
/// ```
/// use weft::{Context, Failure, Pool, Status, Task};
/// # use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Half(u32);
///
/// impl Task for Half {
///     const NAME: &'static str = "half";
///     type Output = u32;
///     fn run(self, _cx: &Context) -> Result<u32, Failure> {
///         if self.0 % 2 == 1 {
///             return Err(Failure::new(format!("{} is odd", self.0)));
///         }
///         Ok(self.0 / 2)
///     }
/// }
///
/// let mut pool = Pool::builder().workers(2).keep_order(true).build()?;
/// let statuses: Vec<Status<u32>> = pool.map([Half(4), Half(3)]).map(|o| o.status).collect();
/// assert_eq!(statuses, [Status::Ok(2), Status::Failed("3 is odd".into())]);
/// assert_eq!(statuses[1].kind(), "failed");
/// # Ok::<(), weft::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Status<T> {
    /// The task returned this output.
    Ok(T),
    /// The task returned an error, or its input or output could not be encoded.
    Failed(String),
    /// The task panicked; the worker lived on.
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// The worker running the job died.
    Crashed(Crash),
    /// The job ran past its timeout.
    TimedOut,
    /// The job was cancelled before it finished.
    Cancelled,
    /// The job was never started (the run was stopped, or it could not get a worker).
    Skipped(String),
}

impl<T> Status<T> {
    #[inline]
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Status<U> {
        match self {
            Status::Ok(v) => Status::Ok(f(v)),
            Status::Failed(m) => Status::Failed(m),
            Status::Panicked { message, location } => Status::Panicked { message, location },
            Status::Crashed(c) => Status::Crashed(c),
            Status::TimedOut => Status::TimedOut,
            Status::Cancelled => Status::Cancelled,
            Status::Skipped(m) => Status::Skipped(m),
        }
    }

    /// A short lowercase word for the status: `ok`, `failed`, `panicked`, `crashed`,
    /// `timed-out`, `cancelled`, `skipped`.
    pub fn kind(&self) -> &'static str {
        match self {
            Status::Ok(_) => "ok",
            Status::Failed(_) => "failed",
            Status::Panicked { .. } => "panicked",
            Status::Crashed(_) => "crashed",
            Status::TimedOut => "timed-out",
            Status::Cancelled => "cancelled",
            Status::Skipped(_) => "skipped",
        }
    }
}

impl<T> fmt::Display for Status<T> {
    /// Describes a status that is not a success; `ok` for a success.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok(_) => f.write_str("ok"),
            Status::Failed(m) => write!(f, "failed: {m}"),
            Status::Panicked {
                message,
                location: Some(at),
            } => write!(f, "panicked at {at}: {message}"),
            Status::Panicked { message, .. } => write!(f, "panicked: {message}"),
            Status::Crashed(c) => write!(f, "worker crashed: {c}"),
            Status::TimedOut => f.write_str("timed out"),
            Status::Cancelled => f.write_str("cancelled"),
            Status::Skipped(why) => write!(f, "skipped: {why}"),
        }
    }
}

/// How a worker process died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// Killed by this signal.
    Signal(i32),
    /// Exited with this status in the middle of a job (0 included: exiting mid-job is a crash).
    Exit(i32),
}

impl Crash {
    /// The signal number, if it died of a signal.
    pub fn signal(self) -> Option<i32> {
        match self {
            Crash::Signal(s) => Some(s),
            Crash::Exit(_) => None,
        }
    }
    /// The exit status, if it exited.
    pub fn exit_code(self) -> Option<i32> {
        match self {
            Crash::Exit(c) => Some(c),
            Crash::Signal(_) => None,
        }
    }
}

impl fmt::Display for Crash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Crash::Signal(s) => write!(f, "killed by {}", crate::sys::signal_name(*s)),
            Crash::Exit(c) => write!(f, "exited with status {c}"),
        }
    }
}
