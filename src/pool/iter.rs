//! The iterators a [`Pool`](super::Pool) run yields: [`Results`] (typed), [`JsonResults`]
//! (by task name), [`FnResults`] (closures) and the CLI's encoded ones. Dropping one early
//! cancels the jobs still running.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::engine::{Engine, Run};
use crate::event::Value;
use crate::message::{Messages, Sink};
use crate::outcome::{Outcome, Status};
use crate::task::Task;

/// The outcomes of [`Pool::map`](super::Pool::map), one per task: an iterator of [`Outcome`]s of the task's
/// output type. Dropping it early cancels the jobs still running.
///
/// # Examples
///
/// ```
/// use weft::tasks::Sum;
/// use weft::{Outcome, Pool, Results};
///
/// let mut pool = Pool::builder().workers(2).build()?;
/// let results: Results<'_, Sum> = pool.map([Sum::new(0..4), Sum::new(4..8)]);
/// let mut outcomes: Vec<Outcome<u128>> = results.collect();
/// outcomes.sort_by_key(|o| o.seq);
/// assert_eq!(outcomes[1].clone().ok(), Some(4 + 5 + 6 + 7));
/// # Ok::<(), weft::Error>(())
/// ```
pub struct Results<'p, T: Task> {
    pub(super) engine: &'p mut Engine,
    pub(super) run: Option<Run<'p>>,
    pub(super) _output: PhantomData<fn() -> T>,
}

impl<T: Task> Results<'_, T> {
    /// The next outcome when none is ready: outcomes a thread told of, or a wait for workers.
    #[inline(never)]
    fn next_unready(&mut self) -> Option<Outcome<Value>> {
        self.engine.next(self.run.as_mut()?)
    }

    /// The messages this run's tasks send ([`Context::send`](crate::Context::send)) while they
    /// run, each tagged with its job's [`seq`](crate::Outcome::seq), on both backends. Ask
    /// for them before taking the first outcome: a job handed out before does not send any.
    /// Move them to another thread to read them while this one takes the outcomes (or read
    /// them between outcomes with [`Messages::try_recv`]). They end once the outcomes are
    /// dropped (as a `for` loop over them does at its end). Asking again ends the messages
    /// given before.
    ///
    /// On a process pool a message reaches its channel while the outcomes are being taken
    /// (the pool's thread reads the workers' channels then).
    ///
    /// # Examples
    ///
    /// ```
    /// use weft::{Context, Failure, Pool, Task};
    /// # use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Steps(u32);
    ///
    /// impl Task for Steps {
    ///     const NAME: &'static str = "steps";
    ///     type Output = u32;
    ///     fn run(self, cx: &Context) -> Result<u32, Failure> {
    ///         for step in 0..self.0 {
    ///             let _ = cx.send(step);
    ///         }
    ///         Ok(self.0)
    ///     }
    /// }
    ///
    /// let mut pool = Pool::builder().workers(2).build()?;
    /// let mut outcomes = pool.map([Steps(2), Steps(3)]);
    /// let messages = outcomes.messages::<u32>();
    /// let reader = std::thread::spawn(move || messages.map(|m| (m.seq, m.value)).collect::<Vec<_>>());
    /// assert_eq!(outcomes.filter_map(|o| o.ok()).sum::<u32>(), 5);
    /// let mut got = reader.join().unwrap();
    /// got.sort();
    /// assert_eq!(got, [(1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]);
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn messages<M: DeserializeOwned + 'static>(&mut self) -> Messages<M> {
        let (sink, rx) = Sink::new();
        match self.run.as_mut() {
            Some(run) => {
                close_notes(run);
                // Thread workers get it with their batches; process workers' messages come
                // with their results, read by the engine's inbox.
                self.engine.set_notes(Some(sink.clone()));
                run.notes = Some(sink);
            }
            None => sink.close(),
        }
        Messages::new(rx)
    }
}

/// Ends the messages of `run` (see [`Results::messages`]).
fn close_notes(run: &mut Run<'_>) {
    if let Some(old) = run.notes.take() {
        old.close();
    }
}

impl<T: Task> Iterator for Results<'_, T> {
    type Item = Outcome<T::Output>;

    /// Inlined into the caller's loop, which most often takes an outcome that is ready: one
    /// returned from a call was read back with wider loads than it was written with, a
    /// store-forwarding stall per job.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let outcome = match self.engine.pop_ready(self.run.as_mut()?) {
            Some(o) => o,
            None => self.next_unready()?,
        };
        Some(outcome.map(|value| match value {
            Value::Local(b) => Status::Ok(*b.downcast::<T::Output>().expect("output type")),
            Value::Encoded(bytes) => match crate::wire::decode::<T::Output>(&bytes) {
                Ok(v) => Status::Ok(v),
                Err(e) => Status::Failed(format!("cannot decode {} output: {e}", T::NAME)),
            },
        }))
    }
}

impl<T: Task> Drop for Results<'_, T> {
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take() {
            close_notes(&mut run);
            self.engine.cancel(&mut run);
        }
    }
}

/// The outcomes of [`Pool::map_json`](super::Pool::map_json), outputs as JSON.
pub struct JsonResults<'p> {
    pub(super) engine: &'p mut Engine,
    pub(super) run: Option<Run<'p>>,
}

impl Iterator for JsonResults<'_> {
    type Item = Outcome<serde_json::Value>;

    fn next(&mut self) -> Option<Self::Item> {
        let run = self.run.as_mut()?;
        let entry = run.entry;
        let outcome = self.engine.next(run)?;
        let json = |b: &crate::registry::AnyBox| match (entry.to_json)(b) {
            Ok(v) => Status::Ok(v),
            Err(e) => Status::Failed(e),
        };
        Some(outcome.map(|value| match value {
            Value::Local(b) => json(&b),
            Value::Encoded(bytes) => match (entry.decode_output)(&bytes) {
                Ok(b) => json(&b),
                Err(e) => Status::Failed(format!("cannot decode {} output: {e}", entry.name)),
            },
        }))
    }
}

impl Drop for JsonResults<'_> {
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take() {
            self.engine.cancel(&mut run);
        }
    }
}

/// The outcomes of [`Pool::map_encoded`](super::Pool::map_encoded), outputs as bincode.
#[cfg(feature = "broker")]
pub(crate) struct EncodedResults<'p> {
    pub(super) engine: &'p mut Engine,
    pub(super) run: Option<Run<'p>>,
}

#[cfg(feature = "broker")]
impl Iterator for EncodedResults<'_> {
    type Item = Outcome<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let run = self.run.as_mut()?;
        let entry = run.entry;
        let outcome = self.engine.next(run)?;
        Some(outcome.map(|value| match value {
            Value::Local(b) => match (entry.encode_output)(&b) {
                Ok(bytes) => Status::Ok(bytes),
                Err(e) => Status::Failed(format!("cannot encode {} output: {e}", entry.name)),
            },
            Value::Encoded(bytes) => Status::Ok(bytes.to_vec()),
        }))
    }
}

#[cfg(feature = "broker")]
impl Drop for EncodedResults<'_> {
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take() {
            self.engine.cancel(&mut run);
        }
    }
}

/// The outcomes of [`Pool::map_fn`](super::Pool::map_fn), one per input: an iterator of [`Outcome`]s of the
/// closure's output type. Dropping it early cancels the jobs still running.
///
/// # Examples
///
/// ```
/// use weft::{FnResults, Pool};
///
/// let mut pool = Pool::builder().workers(2).build()?;
/// let results: FnResults<'_, String> = pool.map_fn(["a", "b"], |s| s.to_uppercase());
/// let mut words: Vec<String> = results.filter_map(|o| o.ok()).collect();
/// words.sort();
/// assert_eq!(words, ["A", "B"]);
/// # Ok::<(), weft::Error>(())
/// ```
pub struct FnResults<'p, O> {
    pub(super) engine: &'p mut Engine,
    pub(super) run: Option<Run<'p>>,
    /// An output from a worker process: a registered function's, decoded; a closure's cannot be.
    pub(super) decode: fn(&[u8]) -> Status<O>,
}

/// What [`FnResults`] makes of a closure's output from a worker process: none can come.
pub(super) fn no_closure_output<O>(_: &[u8]) -> Status<O> {
    Status::Failed(crate::registry::CLOSURE_ON_PROCESS.into())
}

/// A registered function's output from a worker process.
pub(super) fn decode_fn_output<O: DeserializeOwned, F>(bytes: &[u8]) -> Status<O> {
    match crate::wire::decode::<O>(bytes) {
        Ok(v) => Status::Ok(v),
        Err(e) => Status::Failed(format!(
            "cannot decode {} output: {e}",
            crate::registry::fn_name::<F>()
        )),
    }
}

impl<O: 'static> FnResults<'_, O> {
    /// As [`Results::next_unready`].
    #[inline(never)]
    fn next_unready(&mut self) -> Option<Outcome<Value>> {
        self.engine.next(self.run.as_mut()?)
    }
}

impl<O: 'static> Iterator for FnResults<'_, O> {
    type Item = Outcome<O>;

    /// Inlined, as [`Results`]'s is.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let outcome = match self.engine.pop_ready(self.run.as_mut()?) {
            Some(o) => o,
            None => self.next_unready()?,
        };
        Some(outcome.map(|value| match value {
            Value::Local(b) => Status::Ok(*b.downcast::<O>().expect("output type")),
            Value::Encoded(bytes) => (self.decode)(&bytes),
        }))
    }
}

impl<O> Drop for FnResults<'_, O> {
    fn drop(&mut self) {
        if let Some(mut run) = self.run.take() {
            self.engine.cancel(&mut run);
        }
    }
}
