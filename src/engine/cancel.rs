//! Ending a run early: jobs in flight are cancelled, queued ones dropped.

use super::*;

impl Engine {
    /// Ends a run early: jobs in flight are cancelled (their workers killed or abandoned and
    /// replaced), queued ones dropped.
    pub(crate) fn cancel(&mut self, run: &mut Run<'_>) {
        self.cancelling = true;
        self.cancel_inner(run);
        self.cancelling = false;
    }

    pub(super) fn cancel_inner(&mut self, run: &mut Run<'_>) {
        self.told.clear();
        self.reading = None;
        // What threads finished and did not hand over yet is taken first: a thread whose jobs
        // are all done is kept, not abandoned and replaced. So is what process workers sent
        // and was not read yet, which also gives their output regions back.
        self.look_in_threads(run);
        self.read_unread(None, run);
        self.queue.clear();
        let busy: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(&s.state, SlotState::Live(w) if w.busy()))
            .map(|(i, _)| i)
            .collect();
        for w in &mut self.retired {
            w.land_all().for_each(drop);
        }
        for i in busy {
            let SlotState::Live(w) = &mut self.slots[i].state else {
                continue;
            };
            w.land_all().for_each(drop);
            match &w.link {
                Link::Process(link) => {
                    // With a grace (commands and their kill sequence), the job is cancelled
                    // in the worker first; without, the worker is killed at once.
                    if self.cfg.grace.is_some() {
                        link.interrupt();
                    } else {
                        link.kill();
                    }
                    w.dying = true;
                }
                Link::Thread(_) => self.abandon(i, run),
            }
        }
        self.forget_retired(|_| true);
        self.ready.clear();
        // Dead process workers are replaced when their exit is seen; one still running its
        // job's kill sequence when the grace is over is killed.
        let dying = |engine: &Engine| {
            engine
                .slots
                .iter()
                .any(|s| matches!(&s.state, SlotState::Live(w) if w.dying))
        };
        let grace_over = Instant::now() + self.cfg.grace.unwrap_or(Duration::ZERO);
        let mut killed = self.cfg.grace.is_none();
        let mut give_up = Instant::now() + Duration::from_secs(2);
        while dying(self) {
            let now = Instant::now();
            if !killed && now >= grace_over {
                for s in &self.slots {
                    if let SlotState::Live(w) = &s.state
                        && w.dying
                        && let Link::Process(link) = &w.link
                    {
                        link.kill();
                    }
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
        self.ready.clear();
    }
}
