//! Waiting on one-off workers of both kinds together: [`Handle`] and [`as_completed`].

use std::time::Instant;

use crossbeam_channel::Select;

use crate::outcome::Outcome;

use super::{Process, Thread};

/// A one-off worker of either kind, for [`as_completed`].
pub enum Handle<O> {
    /// A worker process.
    Process(Process<O>),
    /// A thread.
    Thread(Thread<O>),
}

impl<O> From<Process<O>> for Handle<O> {
    fn from(p: Process<O>) -> Self {
        Handle::Process(p)
    }
}

impl<O> From<Thread<O>> for Handle<O> {
    fn from(t: Thread<O>) -> Self {
        Handle::Thread(t)
    }
}

impl<O> Handle<O> {
    /// Kills a process, cancels a thread.
    pub fn stop(&self) {
        match self {
            Handle::Process(p) => {
                p.stopped.store(true, std::sync::atomic::Ordering::Relaxed);
                if let Some(link) = &p.link {
                    link.kill();
                }
            }
            Handle::Thread(t) => t.cancel(),
        }
    }
}

/// Waits on handles of both kinds together and yields `(index, outcome)` as each finishes,
/// first finished first, like Python's `concurrent.futures.as_completed`.
///
/// The handles are [`Process`]es, [`Thread`]s, or a mix of both as [`Handle`]s; the outcome
/// type comes from them. Handles still running when the iterator is dropped are dropped with it
/// (daemon processes killed, threads joined or detached as configured).
///
/// # Examples
///
/// ```
/// use weft::{Context, Failure, Task, Thread, as_completed};
/// # use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Square(u64);
///
/// impl Task for Square {
///     const NAME: &'static str = "square";
///     type Output = u64;
///     fn run(self, _cx: &Context) -> Result<u64, Failure> {
///         Ok(self.0 * self.0)
///     }
/// }
///
/// let threads = (1..=3)
///     .map(|n| Thread::builder().spawn(Square(n)))
///     .collect::<Result<Vec<_>, _>>()?;
/// let mut squares: Vec<(usize, u64)> = as_completed(threads)
///     .map(|(i, outcome)| (i, outcome.ok().unwrap()))
///     .collect();
/// squares.sort();
/// assert_eq!(squares, [(0, 1), (1, 4), (2, 9)]);
/// # Ok::<(), weft::Error>(())
/// ```
///
/// Processes and threads together, as [`Handle`]s (`no_run`: a process worker is this program
/// re-launched, which needs [`init`](crate::init) at the top of `main`):
///
/// ```no_run
/// use weft::tasks::Sum;
/// use weft::{Handle, Process, Thread, as_completed};
///
/// weft::init(&weft::tasks::registry());
/// let handles = [
///     Handle::from(Process::builder().spawn(Sum::new(0..100))?),
///     Handle::from(Thread::builder().spawn(Sum::new(0..10))?),
/// ];
/// for (i, outcome) in as_completed(handles) {
///     println!("handle {i}: {:?}", outcome.ok());
/// }
/// # Ok::<(), weft::Error>(())
/// ```
pub fn as_completed<H: IntoHandle>(handles: impl IntoIterator<Item = H>) -> AsCompleted<H::Output>
where
    H::Output: serde::de::DeserializeOwned,
{
    AsCompleted {
        handles: handles.into_iter().map(|h| Some(h.into_handle())).collect(),
    }
}

/// What [`as_completed`] waits on: a [`Process`], a [`Thread`] or a [`Handle`] of either.
///
/// Its output type is the outcome type of the handle, so that `as_completed` needs no type
/// annotation. Sealed: weft's handles are the only ones.
pub trait IntoHandle: sealed::Sealed {
    /// The task's output.
    type Output;
    /// The handle as a [`Handle`].
    fn into_handle(self) -> Handle<Self::Output>;
}

mod sealed {
    pub trait Sealed {}
    impl<O> Sealed for super::Process<O> {}
    impl<O> Sealed for super::Thread<O> {}
    impl<O> Sealed for super::Handle<O> {}
}

impl<O> IntoHandle for Process<O> {
    type Output = O;
    fn into_handle(self) -> Handle<O> {
        Handle::Process(self)
    }
}

impl<O> IntoHandle for Thread<O> {
    type Output = O;
    fn into_handle(self) -> Handle<O> {
        Handle::Thread(self)
    }
}

impl<O> IntoHandle for Handle<O> {
    type Output = O;
    fn into_handle(self) -> Handle<O> {
        self
    }
}

/// The iterator of [`as_completed`].
pub struct AsCompleted<O> {
    handles: Vec<Option<Handle<O>>>,
}

impl<O> AsCompleted<O> {
    /// Stops every handle still running (kills processes, cancels threads).
    pub fn stop_all(&self) {
        for h in self.handles.iter().flatten() {
            h.stop();
        }
    }
}

impl<O: serde::de::DeserializeOwned> Iterator for AsCompleted<O> {
    type Item = (usize, Outcome<O>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // A handle that already has its outcome (a process's came before its exit, or a
            // join with a timeout received it) is finished; report it first.
            for (i, slot) in self.handles.iter_mut().enumerate() {
                let outcome = match slot {
                    Some(Handle::Process(p)) => p.outcome.take(),
                    Some(Handle::Thread(t)) => t.outcome.take(),
                    None => None,
                };
                if let Some(outcome) = outcome {
                    *slot = None;
                    return Some((i, outcome));
                }
            }
            let live: Vec<usize> = (0..self.handles.len())
                .filter(|&i| self.handles[i].is_some())
                .collect();
            if live.is_empty() {
                return None;
            }
            let mut select = Select::new();
            for &i in &live {
                match self.handles[i].as_ref().expect("live") {
                    Handle::Process(p) => select.recv(&p.events),
                    Handle::Thread(t) => select.recv(&t.rx),
                };
            }
            let ready = select.ready();
            let i = live[ready];
            match self.handles[i].as_mut().expect("live") {
                Handle::Process(p) => {
                    // An exit sets the outcome, which the loop above then reports.
                    p.step(Some(Instant::now()));
                }
                Handle::Thread(t) => {
                    let outcome = match t.rx.try_recv() {
                        Ok(outcome) => outcome,
                        Err(crossbeam_channel::TryRecvError::Disconnected) => super::thread::lost(),
                        Err(crossbeam_channel::TryRecvError::Empty) => continue,
                    };
                    self.handles[i] = None;
                    return Some((i, outcome));
                }
            }
        }
    }
}
