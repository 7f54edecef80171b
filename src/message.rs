//! Messages from a running task to its caller: [`Context::send`](crate::Context::send) on the
//! task's side, [`Messages`] on the caller's (what a `multiprocessing.Queue` handed to a worker
//! is used for: progress, partial results).
//!
//! A thread worker moves the value into a bounded channel; a process worker encodes it and
//! sends it on its result channel (see `wire::Results::note`), whose reader passes it into the
//! same kind of channel on the caller's side. A task that never sends costs nothing per job:
//! its worker's context holds the way out, set once per batch or per worker.
//!
//! The channel is bounded and a send never blocks: a message that finds it full is dropped and
//! the send says so. A task blocked on a full channel would hold its worker, and a caller that
//! takes outcomes on the same thread as it reads messages (the usual loop) would then wait for
//! an outcome that waits for it.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use serde::de::DeserializeOwned;

/// How many messages wait for the caller before further ones are dropped.
pub(crate) const CAPACITY: usize = 256;

/// A message's value as it travels: moved, from a thread, or encoded, from a process.
pub(crate) enum Body {
    Local(Box<dyn Any + Send>),
    Encoded(Vec<u8>),
}

/// A message and the job it came from.
pub(crate) struct Note {
    pub(crate) seq: u64,
    pub(crate) body: Body,
}

/// The caller's side of the channel as the senders share it: closed by the caller's side
/// (a run that ends) so that every sender sees the end at once.
pub(crate) struct Sink {
    tx: Mutex<Option<Sender<Note>>>,
}

impl Sink {
    /// A bounded channel's sink and a receiver of it.
    pub(crate) fn new() -> (Arc<Sink>, Receiver<Note>) {
        let (tx, rx) = crossbeam_channel::bounded(CAPACITY);
        (
            Arc::new(Sink {
                tx: Mutex::new(Some(tx)),
            }),
            rx,
        )
    }

    /// Passes `note` on, never waiting: dropped if the channel is full or closed.
    pub(crate) fn post(&self, note: Note) -> Result<(), SendError> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = tx.as_ref() else {
            return Err(SendError::Closed);
        };
        tx.try_send(note).map_err(|e| match e {
            TrySendError::Full(_) => SendError::Full,
            TrySendError::Disconnected(_) => SendError::Closed,
        })
    }

    /// Ends the channel for its receivers once they have read what is in it.
    pub(crate) fn close(&self) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(tx);
    }
}

/// Where a worker's tasks send their messages.
#[derive(Clone)]
pub(crate) enum Outbox {
    /// A thread's: straight into the caller's channel.
    Local(Arc<Sink>),
    /// A worker process's: onto its result channel.
    Wire(ipc_channel::ipc::IpcSender<crate::wire::Results>),
}

/// Why [`Context::send`](crate::Context::send) did not pass a message on. Either way the task
/// may go on: the message is dropped and nothing else is affected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The caller has [`CAPACITY`](Messages::capacity) messages it has not read yet.
    Full,
    /// Nobody reads this job's messages: the caller never asked for them, dropped its
    /// [`Messages`], or its run has ended.
    Closed,
    /// The value could not be encoded for the trip from a worker process.
    Encode(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full => f.write_str("the caller's message channel is full"),
            SendError::Closed => f.write_str("nobody reads this job's messages"),
            SendError::Encode(e) => write!(f, "cannot encode the message: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// One message a task sent with [`Context::send`](crate::Context::send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<M> {
    /// The job that sent it: its outcome's [`seq`](crate::Outcome::seq), its input's place in
    /// a pool's run (from 1); 1 for a one-off [`Thread`](crate::Thread) or
    /// [`Process`](crate::Process).
    pub seq: u64,
    /// What the task sent.
    pub value: M,
}

/// The caller's end of a task's messages ([`Context::send`](crate::Context::send)), typed `M`:
/// from a pool's run ([`Results::messages`](crate::Results::messages)) or a one-off handle
/// ([`Thread::messages`](crate::Thread::messages), [`Process::messages`](crate::Process::messages)).
/// It can be moved to another thread, to read messages while the owner takes outcomes.
///
/// Iterating waits for each message and ends once no task can send any more: the run's
/// outcomes were dropped, or the thread or process ended. At most
/// [`capacity`](Self::capacity) messages wait to be read; a task's further ones are dropped
/// (its send says [`SendError::Full`]). A message that is not an `M` (a task sent another
/// type) is skipped.
///
/// # Examples
///
/// ```
/// use weft::{Context, Failure, Task, Thread};
/// # use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Count(u32);
///
/// impl Task for Count {
///     const NAME: &'static str = "count";
///     type Output = ();
///     fn run(self, cx: &Context) -> Result<(), Failure> {
///         for i in 1..=self.0 {
///             // Progress: an error (nobody reads, or the caller is behind) is not the task's.
///             let _ = cx.send(format!("{i} of {}", self.0));
///         }
///         Ok(())
///     }
/// }
///
/// let mut t = Thread::builder().spawn(Count(3))?;
/// let progress: Vec<String> = t.messages::<String>().map(|m| m.value).collect();
/// assert_eq!(progress, ["1 of 3", "2 of 3", "3 of 3"]);
/// assert!(t.join().is_ok());
/// # Ok::<(), weft::Error>(())
/// ```
pub struct Messages<M> {
    rx: Receiver<Note>,
    _value: PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for Messages<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messages")
            .field("waiting", &self.rx.len())
            .finish_non_exhaustive()
    }
}

impl<M: DeserializeOwned + 'static> Messages<M> {
    pub(crate) fn new(rx: Receiver<Note>) -> Self {
        Messages {
            rx,
            _value: PhantomData,
        }
    }

    /// Waits for the next message; `None` once no task can send any more.
    pub fn recv(&self) -> Option<Message<M>> {
        loop {
            let note = self.rx.recv().ok()?;
            if let Some(m) = Self::typed(note) {
                return Some(m);
            }
        }
    }

    /// Waits at most `timeout` for the next message; `None` if none came by then or no task
    /// can send any more.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Message<M>> {
        let until = Instant::now().checked_add(timeout);
        loop {
            let note = match until {
                Some(t) => self.rx.recv_deadline(t),
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            if let Some(m) = Self::typed(note.ok()?) {
                return Some(m);
            }
        }
    }

    /// The next message if one is waiting.
    pub fn try_recv(&self) -> Option<Message<M>> {
        loop {
            let note = match self.rx.try_recv() {
                Ok(note) => note,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return None,
            };
            if let Some(m) = Self::typed(note) {
                return Some(m);
            }
        }
    }

    /// How many messages may wait to be read before a task's further ones are dropped.
    pub fn capacity(&self) -> usize {
        self.rx.capacity().unwrap_or(CAPACITY)
    }

    fn typed(note: Note) -> Option<Message<M>> {
        let value = match note.body {
            Body::Local(b) => *b.downcast::<M>().ok()?,
            Body::Encoded(bytes) => crate::wire::decode::<M>(&bytes).ok()?,
        };
        Some(Message {
            seq: note.seq,
            value,
        })
    }
}

impl<M: DeserializeOwned + 'static> Iterator for Messages<M> {
    type Item = Message<M>;
    fn next(&mut self) -> Option<Message<M>> {
        self.recv()
    }
}
