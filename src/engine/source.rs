//! Where a run's jobs come from: the [`Source`] of [`Pull`]s, the [`Launch`] a source of one
//! task type fills a process worker's flights through, and the [`Waker`] an input thread rings.

use super::workers::{Flight, Flights};
use crate::event::Event;
use crate::process::inbox::Post;
use crate::registry::AnyBox;
use crate::wire;

/// What a run's source has next.
pub(crate) enum Pull {
    /// A job's input, or why it could not be made.
    Ready(Result<AnyBox, String>),
    /// A job's input encoded for a worker process, or why it could not be.
    Encoded(Result<wire::Payload, String>),
    /// A job that is not to run (done in an earlier run): it is reported skipped, for this
    /// reason, without reaching a worker.
    Skip(String),
    /// Nothing yet; an [`Event::Input`] will say when there is.
    Wait,
}

/// Where a run's inputs come from: what it has next, as an iterator of [`Pull`]s, and for a
/// source that can, a way to launch a stretch of jobs at once.
pub(crate) trait Source {
    /// The next item, or `None` at the end.
    fn next(&mut self) -> Option<Pull>;

    /// Launches jobs of the next inputs, at most `want`, while each is ready and encodes for
    /// a worker process, and returns how many; anything else it comes to is left for
    /// [`next`](Self::next). A source of tasks of one type does this without an item leaving
    /// its loop, which millions of tiny jobs a second go through.
    fn launch(&mut self, want: usize, to: &mut Launch<'_>) -> usize {
        let _ = (want, to);
        0
    }
}

impl<I: Iterator<Item = Pull>> Source for I {
    fn next(&mut self) -> Option<Pull> {
        Iterator::next(self)
    }
}

/// Puts jobs [`Source::launch`] makes in flight on a process worker, numbered from the
/// run's next seq.
pub(crate) struct Launch<'w> {
    pub(super) flights: &'w mut Flights,
    pub(super) next_seq: &'w mut u64,
}

impl Launch<'_> {
    /// Launches the first attempt of the next job, with this encoded input.
    #[inline]
    pub(crate) fn job(&mut self, input: wire::Payload) {
        self.flights.launch(Flight {
            seq: *self.next_seq,
            attempt: 1,
            input: Some(input),
        });
        *self.next_seq += 1;
    }
}

/// Lets an input thread wake the engine when a job is ready.
#[derive(Clone)]
pub(crate) struct Waker(pub(super) Post);

impl Waker {
    pub(crate) fn wake(&self) {
        self.0.send(Event::Input);
    }

    /// Drains the run in progress: no further job starts, running ones finish, and every job
    /// not started is reported [`Status::Skipped`](crate::outcome::Status::Skipped) with
    /// [`DRAINED`](super::DRAINED).
    pub(crate) fn drain(&self) {
        self.0.send(Event::Drain);
    }

    /// Ends the run in progress: outcomes already finished are still yielded, then the
    /// iterator ends and dropping it cancels what is running.
    pub(crate) fn interrupt(&self) {
        self.0.send(Event::Interrupt);
    }
}
