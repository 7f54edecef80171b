//! Ending a run early: jobs in flight are cancelled (their workers killed or abandoned and
//! replaced), queued ones dropped.

use std::time::{Duration, Instant};

use super::workers::Link;
use super::{Engine, Run};

impl Engine {
    /// Ends a run early: jobs in flight are cancelled, queued ones dropped.
    pub(crate) fn cancel(&mut self, run: &mut Run<'_>) {
        self.cancelling = true;
        self.landing.forget_told();
        // What threads finished and did not hand over yet is taken first: a thread whose jobs
        // are all done is kept, not abandoned and replaced. So is what process workers sent
        // and was not read yet, which also gives their output regions back.
        self.look_in_threads(run);
        self.read_unread(None, run);
        self.ledger.clear_queue();
        self.drop_in_flight(run);
        self.workers.forget_retired(|_| true);
        self.ledger.ready.clear();
        self.wait_for_dying(run);
        self.ledger.ready.clear();
        self.cancelling = false;
    }

    /// Drops every job in flight: a process worker running one is interrupted or killed, a
    /// thread abandoned and replaced.
    fn drop_in_flight(&mut self, run: &mut Run<'_>) {
        for w in &mut self.workers.retired {
            w.flights.land_all().for_each(drop);
        }
        // With a grace (commands and their kill sequence), the job is cancelled in the worker
        // first; without, the worker is killed at once.
        let interrupt = self.cfg.grace.is_some();
        for i in 0..self.workers.slots.len() {
            let Some(w) = self.workers.live_at(i) else {
                continue;
            };
            if !w.busy() {
                continue;
            }
            w.flights.land_all().for_each(drop);
            match &w.link {
                Link::Process(link) => {
                    if interrupt {
                        link.interrupt();
                    } else {
                        link.kill();
                    }
                    w.dying = true;
                }
                Link::Thread(_) => self.abandon(i, run),
            }
        }
    }

    /// Waits for the process workers being killed to go: dead ones are replaced when their
    /// exit is seen, and one still running its job's kill sequence when the grace is over is
    /// killed.
    fn wait_for_dying(&mut self, run: &mut Run<'_>) {
        let grace_over = Instant::now() + self.cfg.grace.unwrap_or(Duration::ZERO);
        let mut killed = self.cfg.grace.is_none();
        let mut give_up = Instant::now() + Duration::from_secs(2);
        while self.workers.any_dying() {
            let now = Instant::now();
            if !killed && now >= grace_over {
                for w in self.workers.all_mut().filter(|w| w.dying) {
                    w.kill();
                }
                killed = true;
                give_up = now + Duration::from_secs(2);
            }
            let until = if killed { give_up } else { grace_over };
            match self.inbox.recv(Some(until)) {
                Some(event) => self.handle(event, run),
                None if killed => break,
                None => {}
            }
        }
    }
}
