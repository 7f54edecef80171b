//! A one-off worker thread: [`Thread`] and its builder.

use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Receiver;

use crate::catch::catch;
use crate::error::Error;
use crate::outcome::{Outcome, Status};
use crate::task::{CancelToken, Context, Task};

/// Configures a one-off [`Thread`].
#[derive(Debug, Clone, Default)]
pub struct ThreadBuilder {
    name: Option<String>,
    daemon: bool,
}

impl ThreadBuilder {
    /// The thread's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Whether dropping the handle cancels the task and detaches the thread (`true`) or joins
    /// it (`false`, the default).
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Starts a thread running `task`.
    ///
    /// # Errors
    /// The operating system refused a new thread.
    pub fn spawn<T: Task>(self, task: T) -> Result<Thread<T::Output>, Error> {
        let name = self.name.unwrap_or_else(|| format!("weft-{}", T::NAME));
        let cancel = CancelToken::new();
        let (tx, rx) = crossbeam_channel::bounded(1);
        let handle = std::thread::Builder::new()
            .name(name.clone())
            .spawn({
                let cancel = cancel.clone();
                move || {
                    let cx = Context::new(1, cancel, None);
                    let wall = SystemTime::now();
                    let start = Instant::now();
                    let status = match catch(|| task.run(&cx)) {
                        Ok(Ok(v)) => Status::Ok(v),
                        Ok(Err(f)) if f.is_timed_out() => Status::TimedOut,
                        Ok(Err(f)) if f.is_cancelled() => Status::Cancelled,
                        Ok(Err(f)) => Status::Failed(f.message().to_string()),
                        Err(p) => Status::Panicked {
                            message: p.message,
                            location: p.location,
                        },
                    };
                    let _ = tx.send(Outcome {
                        seq: 1,
                        status,
                        attempt: 1,
                        worker: 1,
                        pid: std::process::id(),
                        started: Some(wall),
                        runtime: start.elapsed(),
                    });
                }
            })
            .map_err(|e| {
                Error::new(crate::ErrorKind::Spawn, "thread could not start").with_source(e)
            })?;
        Ok(Thread {
            name,
            daemon: self.daemon,
            cancel,
            rx,
            handle: Some(handle),
        })
    }
}

/// A task running on a thread of its own.
///
/// Dropping the handle joins the thread, or for a daemon sets its cancel token and detaches it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft::tasks::{Sleep, Sum};
/// use weft::{Status, Thread};
///
/// let sum = Thread::builder().name("summer").spawn(Sum::new(0..100))?;
/// assert_eq!(sum.name(), "summer");
/// assert_eq!(sum.join().ok(), Some(4950));
///
/// // A long task stopped through its cancel token.
/// let mut nap = Thread::builder().spawn(Sleep::new(Duration::from_secs(3600)))?;
/// assert!(nap.join_timeout(Duration::from_millis(10)).is_none());
/// nap.cancel();
/// assert_eq!(nap.join().status, Status::Cancelled);
/// # Ok::<(), weft::Error>(())
/// ```
pub struct Thread<O> {
    name: String,
    daemon: bool,
    cancel: CancelToken,
    pub(super) rx: Receiver<Outcome<O>>,
    handle: Option<JoinHandle<()>>,
}

impl Thread<()> {
    /// A builder with the defaults.
    pub fn builder() -> ThreadBuilder {
        ThreadBuilder::default()
    }
}

impl<O> Thread<O> {
    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether the task is still running.
    pub fn is_alive(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }
    /// Asks the task to stop through its context's cancel token.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
    /// Waits for the task's outcome.
    pub fn join(mut self) -> Outcome<O> {
        let outcome = self.rx.recv().expect("the thread always reports");
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        outcome
    }
    /// Waits at most `timeout`; the outcome if the task finished by then (given once).
    pub fn join_timeout(&mut self, timeout: Duration) -> Option<Outcome<O>> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl<O> Drop for Thread<O> {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            if self.daemon {
                self.cancel.cancel();
            } else {
                let _ = h.join();
            }
        }
    }
}
