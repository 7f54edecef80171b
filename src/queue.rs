//! A live queue into a pool: [`Queue`], the submitting end of [`Pool::queue`] and
//! [`Pool::queue_fn`], which other threads hold while the pool's owner takes the outcomes as
//! they finish (Python's `apply_async` / `executor.submit` with `as_completed`).
//!
//! It feeds the engine as the command line's input thread does: the run's source says "not
//! ready yet" when the queue is empty, and each submission wakes the engine, so an outcome is
//! handed back as soon as its job ends, whenever the next submission comes.

use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::engine::Waker;
use crate::pool::Pending;

/// The submitting end of a pool's live queue: clone it, send it to other threads, and
/// [`submit`](Self::submit) work; the pool's owner iterates the outcomes as they finish. The
/// outcomes end once every `Queue` is dropped and every job submitted has been reported.
///
/// # Examples
///
/// ```
/// use weft::Pool;
/// use weft::tasks::Sum;
///
/// let mut pool = Pool::builder().workers(2).build()?;
/// let (queue, outcomes) = pool.queue::<Sum>();
/// let producer = std::thread::spawn(move || {
///     // Each submission returns its ticket: the `seq` of its outcome.
///     let tickets: Vec<u64> = (0..3u64)
///         .map(|i| queue.submit(Sum::new(0..i * 10)).expect("the pool takes it"))
///         .collect();
///     tickets
/// });
/// let mut done: Vec<(u64, u128)> = outcomes.map(|o| (o.seq, o.ok().unwrap())).collect();
/// done.sort();
/// assert_eq!(producer.join().unwrap(), [1, 2, 3]);
/// assert_eq!(done, [(1, 0), (2, 45), (3, 190)]);
/// # Ok::<(), weft::Error>(())
/// ```
pub struct Queue<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

struct Inner<T> {
    /// The next ticket, and where submissions go: taken together, so that tickets follow the
    /// order the pool takes submissions in. `None` once the last `Queue` is gone.
    tx: Mutex<Option<(u64, Sender<T>)>>,
    waker: Waker,
}

impl<T> Queue<T> {
    /// A queue feeding a run of the pool `waker` wakes, and the run's source.
    pub(crate) fn new(waker: Waker) -> (Queue<T>, impl Iterator<Item = Pending<T>>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let queue = Queue {
            inner: Arc::new(Inner {
                tx: Mutex::new(Some((1, tx))),
                waker,
            }),
        };
        (queue, Source(rx))
    }

    /// Submits `input` to run on the pool; returns its ticket, the [`seq`](crate::Outcome::seq)
    /// its outcome will carry. Each submission wakes the pool.
    ///
    /// # Errors
    /// Gives `input` back when the pool no longer takes work: its outcomes were dropped.
    pub fn submit(&self, input: T) -> Result<u64, T> {
        let mut tx = self.inner.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some((next, sender)) = tx.as_mut() else {
            return Err(input);
        };
        if let Err(e) = sender.send(input) {
            return Err(e.into_inner());
        }
        let ticket = *next;
        *next += 1;
        drop(tx);
        self.inner.waker.wake();
        Ok(ticket)
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        // Closed first, then the pool woken to see it: its outcomes end once the jobs do.
        let tx = self.tx.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        drop(tx);
        self.waker.wake();
    }
}

/// The run's end of the queue: an input when there is one, "not yet" when it is empty, the
/// end when every [`Queue`] is gone.
struct Source<T>(Receiver<T>);

impl<T> Iterator for Source<T> {
    type Item = Pending<T>;
    fn next(&mut self) -> Option<Pending<T>> {
        match self.0.try_recv() {
            Ok(input) => Some(Pending::Ready(input)),
            Err(TryRecvError::Empty) => Some(Pending::Wait),
            Err(TryRecvError::Disconnected) => None,
        }
    }
}
