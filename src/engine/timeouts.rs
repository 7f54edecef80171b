//! Jobs past their deadline: a process worker is killed, a thread abandoned and replaced.

use super::*;

impl Engine {
    pub(super) fn tick(&self) -> Duration {
        let mut tick = Duration::from_millis(250);
        if let Some(t) = self.timeout() {
            tick = tick.min((t / 8).max(Duration::from_millis(1)));
        }
        for s in &self.slots {
            if let SlotState::Waiting(at) = s.state {
                tick = tick.min(at.saturating_duration_since(Instant::now()));
            }
        }
        tick
    }

    /// Times out jobs running past the deadline: a process worker is killed (its death
    /// re-queues the rest), a thread is cancelled, abandoned and replaced.
    pub(super) fn check_timeouts(&mut self, run: &mut Run<'_>) {
        let Some(timeout) = self.timeout() else {
            return;
        };
        let now = sys::now_ns();
        let epoch = self.epoch;
        let mut abandon = Vec::new();
        let mut timed_out = Vec::new();
        for i in 0..self.slots.len() {
            let SlotState::Live(w) = &mut self.slots[i].state else {
                continue;
            };
            if w.dying {
                continue;
            }
            let limit = match w.link {
                Link::Thread(_) => timeout,
                Link::Process(_) => timeout.saturating_add(self.cfg.grace.unwrap_or(PROCESS_GRACE)),
            };
            // A limit past 584 years of nanoseconds is never reached (a cast would wrap it).
            let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
            let (started, started_ns) = w.slot_read();
            if started <= w.done || now.saturating_sub(started_ns) <= limit {
                continue;
            }
            let Some(flight) = w.land(started - 1) else {
                continue;
            };
            let outcome = Outcome {
                seq: flight.seq,
                status: Status::TimedOut,
                attempt: flight.attempt,
                worker: i + 1,
                pid: w.pid(),
                started: Some(wall(epoch, started_ns)),
                runtime: Duration::from_nanos(now.saturating_sub(started_ns)),
            };
            timed_out.push((outcome, flight.input));
            match &mut w.link {
                Link::Process(link) => {
                    w.dying = true;
                    link.kill();
                }
                Link::Thread(_) => abandon.push(i),
            }
        }
        for (outcome, input) in timed_out {
            self.settle(run, outcome, input);
        }
        for i in abandon {
            self.abandon(i, run);
        }
    }

    /// Retires slot `i`'s thread and starts a new one in its place.
    pub(super) fn abandon(&mut self, i: usize, run: &mut Run<'_>) {
        let SlotState::Live(mut w) =
            std::mem::replace(&mut self.slots[i].state, SlotState::Starting)
        else {
            return;
        };
        let Link::Thread(link) = &mut w.link else {
            unreachable!("only threads are abandoned")
        };
        let queued = link.retire();
        let key = w.key;
        self.retired.push(*w);
        let returned = queued.into_iter().rev().map(Report::Returned).collect();
        self.accept(key, returned, run);
        // Whatever the abandoned thread still owes it hands back as `Returned`; a timed-out
        // ticket is no longer in flight, so its late result is dropped.
        self.forget_retired(|w| w.key == key && !w.busy());
        self.respawn(i);
    }
}
