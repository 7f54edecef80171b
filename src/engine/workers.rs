//! The workers: each slot's incarnation, a live worker's link and flights (tickets in the
//! order it runs its jobs), and the retired threads that may still hand jobs back.

use super::*;

pub(super) enum Link {
    Thread(thread::Link),
    Process(process::Link),
}

pub(super) struct Worker {
    pub(super) key: Key,
    pub(super) link: Link,
    /// Jobs sent and not yet resolved, in the order the worker runs them; `None` marks one
    /// resolved ahead of an earlier one (timed out), until the front catches up.
    pub(super) flights: VecDeque<Option<Flight>>,
    /// The ticket of the front of `flights`: how many of this worker's jobs were resolved
    /// from the front. Tickets count jobs in the order the worker runs them, so the job its
    /// progress slot says it started as number `n` has ticket `n - 1`.
    pub(super) done: u64,
    /// Set once the worker is being killed: it gets no more jobs.
    pub(super) dying: bool,
}

impl Worker {
    pub(super) fn slot_read(&self) -> (u64, u64) {
        match &self.link {
            Link::Thread(l) => l.slot().read(),
            Link::Process(l) => l.slot().read(),
        }
    }
    pub(super) fn pid(&self) -> u32 {
        match &self.link {
            Link::Thread(_) => own_pid(),
            Link::Process(l) => l.pid,
        }
    }
    pub(super) fn set_draining(&self, on: bool) {
        match &self.link {
            Link::Thread(l) => l.slot().set_draining(on),
            Link::Process(l) => l.slot().set_draining(on),
        }
    }

    /// The ticket the next job launched here gets.
    pub(super) fn next_ticket(&self) -> u64 {
        self.done + self.flights.len() as u64
    }

    /// Puts a job in flight on this worker, under the ticket `next_ticket` gave.
    pub(super) fn launch(&mut self, flight: Flight) {
        self.flights.push_back(Some(flight));
    }

    /// Resolves `ticket`: its flight, if it is still in flight here.
    #[inline(always)]
    pub(super) fn land(&mut self, ticket: u64) -> Option<Flight> {
        land(&mut self.flights, &mut self.done, ticket)
    }

    /// Every flight still unresolved, with its ticket; none is left on the worker.
    pub(super) fn land_all(&mut self) -> impl Iterator<Item = (u64, Flight)> + use<> {
        let first = self.done;
        self.done += self.flights.len() as u64;
        std::mem::take(&mut self.flights)
            .into_iter()
            .enumerate()
            .filter_map(move |(i, f)| Some((first + i as u64, f?)))
    }

    /// How long the job this worker is running has run, at `now` (0 when it runs none).
    pub(super) fn running_for(&self, now: u64) -> u64 {
        let (started, started_ns) = self.slot_read();
        if started > self.done {
            now.saturating_sub(started_ns)
        } else {
            0
        }
    }

    /// Whether jobs are in flight on this worker.
    pub(super) fn busy(&self) -> bool {
        !self.flights.is_empty()
    }
}

impl Worker {
    pub(super) fn new(key: Key, link: Link) -> Worker {
        Worker {
            key,
            link,
            flights: VecDeque::new(),
            done: 0,
            dying: false,
        }
    }
}

pub(super) enum SlotState {
    Live(Box<Worker>),
    Starting,
    Waiting(Instant),
    Failed,
}

pub(super) struct Slot {
    pub(super) generation: u64,
    pub(super) state: SlotState,
    pub(super) failures: u32,
}

pub(super) struct Flight {
    pub(super) seq: u64,
    pub(super) attempt: u32,
    /// Kept for process jobs so that a job can be re-queued; for thread jobs, whose input
    /// moves, an encoded copy is kept only when another attempt may be needed. Dropping it lets
    /// a shared-memory region be refilled, so it goes only once the worker that had it has
    /// answered for it or been killed (see `wire::shared`).
    pub(super) input: Option<wire::Payload>,
}

/// Worker `key`, if it is the live one in its slot (not one retired or since replaced).
#[inline(always)]
pub(super) fn live(slots: &mut [Slot], key: Key) -> Option<&mut Worker> {
    match slots.get_mut(key.0) {
        Some(Slot {
            generation,
            state: SlotState::Live(w),
            ..
        }) if *generation == key.1 => Some(w),
        _ => None,
    }
}

/// Resolves `ticket` among a worker's `flights`, whose front has ticket `done`: its flight,
/// if it is still in flight there.
#[inline(always)]
pub(super) fn land(
    flights: &mut VecDeque<Option<Flight>>,
    done: &mut u64,
    ticket: u64,
) -> Option<Flight> {
    let flight = if ticket == *done {
        // Results come in the order the jobs ran: this is the usual case.
        let flight = flights.pop_front()?;
        *done += 1;
        flight
    } else {
        let i = usize::try_from(ticket.checked_sub(*done)?).ok()?;
        flights.get_mut(i)?.take()
    };
    while let Some(None) = flights.front() {
        flights.pop_front();
        *done += 1;
    }
    flight
}

impl Engine {
    /// Live workers now (not starting, not dying).
    pub(crate) fn live_workers(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(&s.state, SlotState::Live(w) if !w.dying))
            .count()
    }

    /// The pids of the live process workers.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .filter_map(|s| match &s.state {
                SlotState::Live(w) => match &w.link {
                    Link::Process(l) => Some(l.pid),
                    Link::Thread(_) => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Whether any job is in flight, on a live worker or on one retired or dying.
    pub(super) fn in_flight(&self) -> bool {
        self.retired.iter().any(Worker::busy)
            || self
                .slots
                .iter()
                .any(|s| matches!(&s.state, SlotState::Live(w) if w.busy()))
    }

    pub(super) fn worker_mut(&mut self, key: Key) -> Option<&mut Worker> {
        live(&mut self.slots, key).or_else(|| self.retired.iter_mut().find(|w| w.key == key))
    }

    pub(super) fn all_failed(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Failed))
    }

    /// Stops tracking the retired workers `which` picks; their threads linger until they end.
    pub(super) fn forget_retired(&mut self, which: impl Fn(&Worker) -> bool) {
        let (gone, kept) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition(|w| which(w));
        self.retired = kept;
        self.lingering.retain(|l| !l.is_finished());
        for w in gone {
            if let Link::Thread(l) = w.link
                && !l.is_finished()
            {
                self.lingering.push(l);
            }
        }
    }
}
