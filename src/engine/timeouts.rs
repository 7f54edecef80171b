//! Jobs past their deadline: a process worker is killed (its death re-queues the rest), a
//! thread is cancelled, abandoned and replaced.

use std::time::{Duration, Instant};

use super::lifecycle::cut_short;
use super::workers::{Link, Worker};
use super::{Engine, PROCESS_GRACE, Run};
use crate::event::{Epoch, Report, Value};
use crate::outcome::{Outcome, Status};
use crate::{sys, wire};

impl Engine {
    /// How long to wait for events at most: a fraction of the timeout, and no later than a
    /// slot is due to start its worker again.
    pub(super) fn tick(&self) -> Duration {
        let mut tick = Duration::from_millis(250);
        if let Some(t) = self.ledger.timeout() {
            tick = tick.min((t / 8).max(Duration::from_millis(1)));
        }
        if let Some(at) = self.workers.next_restart() {
            tick = tick.min(at.saturating_duration_since(Instant::now()));
        }
        tick
    }

    /// Times out jobs running past the deadline.
    pub(super) fn check_timeouts(&mut self, run: &mut Run<'_>) {
        let Some(timeout) = self.ledger.timeout() else {
            return;
        };
        let now = sys::now_ns();
        // A thread job gets a grace only where the pool was given one (commands, whose kill
        // sequence takes it and whose output so far is then reported): other tasks are
        // reported at the deadline.
        let graces = (
            self.cfg.grace.unwrap_or(Duration::ZERO),
            self.cfg.grace.unwrap_or(PROCESS_GRACE),
        );
        let mut abandon = Vec::new();
        let mut timed_out = Vec::new();
        for i in 0..self.workers.slots.len() {
            let Some(w) = self.workers.live_at(i) else {
                continue;
            };
            let Some(overdue) = overdue(w, timeout, graces, now, self.epoch) else {
                continue;
            };
            timed_out.push(overdue);
            match w.link {
                Link::Process(_) => w.kill(),
                Link::Thread(_) => abandon.push(i),
            }
        }
        for (outcome, input) in timed_out {
            self.ledger.settle(run, outcome, input);
        }
        for i in abandon {
            self.abandon(i, run);
        }
    }

    /// Retires slot `i`'s thread and starts a new one in its place.
    pub(super) fn abandon(&mut self, i: usize, run: &mut Run<'_>) {
        let Some(mut w) = self.workers.take_live(i) else {
            return;
        };
        let Link::Thread(link) = &mut w.link else {
            unreachable!("only threads are abandoned")
        };
        let queued = link.retire();
        let key = w.key;
        self.workers.retired.push(*w);
        let returned = queued.into_iter().rev().map(Report::Returned).collect();
        self.accept(key, returned, run);
        // Whatever the abandoned thread still owes it hands back as `Returned`; a timed-out
        // ticket is no longer in flight, so its late result is dropped.
        self.workers.forget_retired(|w| w.key == key && !w.busy());
        self.respawn(i);
    }
}

/// The job worker `w` has run past its limit at `now`, landed: its outcome, and its input for
/// another attempt. `None` if it runs none, or not for that long. A process job's limit is
/// the timeout and a grace to stop on its own (a command runs its kill sequence); a thread
/// job's, the timeout and the thread grace of `(thread, process)`.
fn overdue(
    w: &mut Worker,
    timeout: Duration,
    (thread, process): (Duration, Duration),
    now: u64,
    epoch: Epoch,
) -> Option<(Outcome<Value>, Option<wire::Payload>)> {
    if w.dying {
        return None;
    }
    let limit = match w.link {
        Link::Thread(_) => timeout.saturating_add(thread),
        Link::Process(_) => timeout.saturating_add(process),
    };
    // A limit past 584 years of nanoseconds is never reached (a cast would wrap it).
    let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
    let (started, started_ns) = w.slot_read();
    if started <= w.flights.done() || now.saturating_sub(started_ns) <= limit {
        return None;
    }
    let flight = w.flights.land(started - 1)?;
    let outcome = cut_short(w, &flight, Status::TimedOut, (started_ns, now), epoch);
    Some((outcome, flight.input))
}
