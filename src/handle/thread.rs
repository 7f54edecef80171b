//! A one-off worker thread: [`Thread`] and its builder.

use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Receiver;

use crate::catch::catch;
use crate::error::Error;
use crate::message::{Messages, Note, Outbox, Sink};
use crate::outcome::{Outcome, Status};
use crate::task::{CancelToken, Context, Failure, Task};

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
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("weft-{}", T::NAME));
        self.start(name, true, move |cx| task.run(cx))
    }

    /// Starts a thread running the closure `f`, as Python's `threading.Thread(target=f)`: no
    /// struct, no registration, and it may capture what it needs (an `Arc`, a channel). Its
    /// value is the outcome's output; a panic is [`Status::Panicked`], as for a task.
    ///
    /// # Errors
    /// The operating system refused a new thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use weft::Thread;
    ///
    /// let hits = Arc::new(Mutex::new(0));
    /// let mut t = Thread::builder().name("t1").spawn_fn({
    ///     let hits = hits.clone();
    ///     move || {
    ///         *hits.lock().unwrap() += 1;
    ///         "done"
    ///     }
    /// })?;
    /// assert_eq!(t.join().clone().ok(), Some("done"));
    /// assert_eq!(*hits.lock().unwrap(), 1);
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn spawn_fn<O, F>(self, f: F) -> Result<Thread<O>, Error>
    where
        F: FnOnce() -> O + Send + 'static,
        O: Send + 'static,
    {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| "weft-thread".to_string());
        self.start(name, false, move |_| Ok(f()))
    }

    /// Starts the thread; `sends` says whether its work has a context to send messages with.
    fn start<O, F>(self, name: String, sends: bool, run: F) -> Result<Thread<O>, Error>
    where
        F: FnOnce(&Context) -> Result<O, Failure> + Send + 'static,
        O: Send + 'static,
    {
        let cancel = CancelToken::new();
        let (notes, notes_rx) = match sends {
            true => {
                let (sink, rx) = Sink::new();
                (Some(sink), Some(rx))
            }
            false => (None, None),
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let handle = std::thread::Builder::new()
            .name(name.clone())
            .spawn({
                let cancel = cancel.clone();
                move || {
                    let mut cx = Context::on_worker(1, cancel, None);
                    cx.seq = 1;
                    cx.outbox = notes.map(Outbox::Local);
                    let wall = SystemTime::now();
                    let start = Instant::now();
                    let status = match catch(|| run(&cx)) {
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
            ident: handle.thread().id(),
            cancel,
            rx,
            notes: notes_rx,
            outcome: None,
            handle: Some(handle),
        })
    }
}

/// A task running on a thread of its own.
///
/// As in Python, joining does not use the handle up: [`join`](Self::join) and
/// [`join_timeout`](Self::join_timeout) take it by reference and, once the task has finished,
/// return the same outcome every time; [`into_outcome`](Self::into_outcome) moves it out.
/// Dropping the handle joins the thread, or for a daemon sets its cancel token and detaches it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft::tasks::{Sleep, Sum};
/// use weft::{Status, Thread};
///
/// let mut sum = Thread::builder().name("summer").spawn(Sum::new(0..100))?;
/// assert_eq!((sum.name(), sum.daemon()), ("summer", false));
/// assert_eq!(sum.join().status, Status::Ok(4950));
/// assert_eq!(sum.into_outcome().ok(), Some(4950));
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
    ident: ThreadId,
    cancel: CancelToken,
    pub(super) rx: Receiver<Outcome<O>>,
    /// The task's messages (`None` for a closure, which has no context to send them with).
    notes: Option<Receiver<Note>>,
    /// The outcome once received: every later join returns it.
    pub(super) outcome: Option<Outcome<O>>,
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
    /// Whether the thread is a daemon (see [`ThreadBuilder::daemon`]).
    pub fn daemon(&self) -> bool {
        self.daemon
    }
    /// The thread's id (Python's `ident`), the same as `std::thread::current().id()` in it.
    pub fn ident(&self) -> ThreadId {
        self.ident
    }
    /// Whether the task is still running.
    pub fn is_alive(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }
    /// The messages the task sends ([`Context::send`]) while it runs, as they come: each
    /// handle of them reads from the same channel, which holds up to
    /// [`capacity`](Messages::capacity) messages unread (a task's further ones are dropped, its
    /// send says so). They end once the task has ended and they are read. A thread running a
    /// closure ([`ThreadBuilder::spawn_fn`]) has no context to send with: its messages end at
    /// once.
    ///
    /// # Examples
    ///
    /// ```
    /// use weft::{Context, Failure, Task, Thread};
    /// # use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Halves(u64);
    ///
    /// impl Task for Halves {
    ///     const NAME: &'static str = "halves";
    ///     type Output = u64;
    ///     fn run(self, cx: &Context) -> Result<u64, Failure> {
    ///         let mut n = self.0;
    ///         while n > 1 {
    ///             n /= 2;
    ///             let _ = cx.send(n);
    ///         }
    ///         Ok(n)
    ///     }
    /// }
    ///
    /// let mut t = Thread::builder().spawn(Halves(8))?;
    /// let seen: Vec<u64> = t.messages().map(|m| m.value).collect();
    /// assert_eq!(seen, [4, 2, 1]);
    /// assert_eq!(t.join().clone().ok(), Some(1));
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn messages<M: serde::de::DeserializeOwned + 'static>(&self) -> Messages<M> {
        let rx = self.notes.clone().unwrap_or_else(|| {
            // Nothing sends on it: it ends at once.
            crossbeam_channel::bounded(0).1
        });
        Messages::new(rx)
    }
    /// Asks the task to stop through its context's cancel token.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
    /// Waits for the task's outcome, the same one on every call.
    pub fn join(&mut self) -> &Outcome<O> {
        if self.outcome.is_none() {
            let outcome = self.rx.recv().unwrap_or_else(|_| lost());
            self.finish(outcome);
        }
        self.outcome.as_ref().expect("set above")
    }
    /// Waits at most `timeout`; the outcome if the task has finished by then, the same one on
    /// every call.
    pub fn join_timeout(&mut self, timeout: Duration) -> Option<&Outcome<O>> {
        if self.outcome.is_none() {
            let outcome = match self.rx.recv_timeout(timeout) {
                Ok(outcome) => outcome,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => return None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => lost(),
            };
            self.finish(outcome);
        }
        self.outcome.as_ref()
    }
    /// Waits for the task's outcome and hands it over, output and all.
    pub fn into_outcome(mut self) -> Outcome<O> {
        self.join();
        self.outcome.take().expect("joined")
    }

    fn finish(&mut self, outcome: Outcome<O>) {
        self.outcome = Some(outcome);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The outcome of a thread that ended without sending one: it cannot, since the task runs
/// under `catch`, but a join must not panic for it.
pub(super) fn lost<O>() -> Outcome<O> {
    Outcome {
        seq: 1,
        status: Status::Panicked {
            message: "the thread ended without an outcome".into(),
            location: None,
        },
        attempt: 1,
        worker: 1,
        pid: std::process::id(),
        started: None,
        runtime: Duration::ZERO,
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
