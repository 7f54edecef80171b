//! The workers: each slot's incarnation, a live worker's link and flights (tickets in the
//! order it runs its jobs), and the retired threads that may still hand jobs back.
//!
//! A ticket is the job's place in its worker's sequence, so the flights of a worker are a
//! queue indexed by ticket, not a map: tiny jobs pass through here millions of times a second.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::event::{Key, own_pid};
use crate::{process, thread, wire};

pub(super) enum Link {
    Thread(thread::Link),
    Process(process::Link),
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

/// A worker's jobs sent and not yet resolved, in the order the worker runs them.
#[derive(Default)]
pub(super) struct Flights {
    /// `None` marks one resolved ahead of an earlier one (timed out), until the front catches
    /// up.
    queue: VecDeque<Option<Flight>>,
    /// The ticket of the front of `queue`: how many of this worker's jobs were resolved from
    /// the front. Tickets count jobs in the order the worker runs them, so the job its
    /// progress slot says it started as number `n` has ticket `n - 1`.
    done: u64,
}

impl Flights {
    /// The ticket the next job launched here gets.
    pub(super) fn next_ticket(&self) -> u64 {
        self.done + self.queue.len() as u64
    }

    /// How many of this worker's jobs were resolved from the front.
    pub(super) fn done(&self) -> u64 {
        self.done
    }

    /// Puts a job in flight, under the ticket `next_ticket` gave.
    pub(super) fn launch(&mut self, flight: Flight) {
        self.queue.push_back(Some(flight));
    }

    /// How many jobs are in flight (or resolved behind an unresolved one).
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether jobs are in flight.
    pub(super) fn busy(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The flights launched since ticket `first`, in order.
    pub(super) fn since(&self, first: u64) -> impl Iterator<Item = &Flight> + Clone {
        let from = (first - self.done) as usize;
        self.queue
            .range(from..)
            .map(|f| f.as_ref().expect("a flight just launched is unresolved"))
    }

    /// Resolves `ticket`: its flight, if it is still in flight here. Every job lands here:
    /// left to the compiler (`#[inline]`) it was called rather than inlined, and with
    /// `Ledger::next_job` likewise, 200k no-ops took 182M instructions instead of 151M on
    /// threads and 100M instead of 91M on processes (callgrind, `noop.thread`/`noop.process`).
    #[inline(always)]
    pub(super) fn land(&mut self, ticket: u64) -> Option<Flight> {
        let flight = if ticket == self.done {
            // Results come in the order the jobs ran: this is the usual case.
            let flight = self.queue.pop_front()?;
            self.done += 1;
            flight
        } else {
            let i = usize::try_from(ticket.checked_sub(self.done)?).ok()?;
            self.queue.get_mut(i)?.take()
        };
        while let Some(None) = self.queue.front() {
            self.queue.pop_front();
            self.done += 1;
        }
        flight
    }

    /// Every flight still unresolved, with its ticket; none is left here.
    pub(super) fn land_all(&mut self) -> impl Iterator<Item = (u64, Flight)> + use<> {
        let first = self.done;
        self.done += self.queue.len() as u64;
        std::mem::take(&mut self.queue)
            .into_iter()
            .enumerate()
            .filter_map(move |(i, f)| Some((first + i as u64, f?)))
    }
}

pub(super) struct Worker {
    pub(super) key: Key,
    pub(super) link: Link,
    pub(super) flights: Flights,
    /// Set once the worker is being killed: it gets no more jobs.
    pub(super) dying: bool,
}

impl Worker {
    pub(super) fn new(key: Key, link: Link) -> Worker {
        Worker {
            key,
            link,
            flights: Flights::default(),
            dying: false,
        }
    }

    /// The progress slot: how many jobs the worker started, and when it started the last.
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

    /// How long the job this worker is running has run, at `now` (0 when it runs none).
    pub(super) fn running_for(&self, now: u64) -> u64 {
        let (started, started_ns) = self.slot_read();
        if started > self.flights.done() {
            now.saturating_sub(started_ns)
        } else {
            0
        }
    }

    /// Whether jobs are in flight on this worker.
    pub(super) fn busy(&self) -> bool {
        self.flights.busy()
    }

    /// Kills a process worker: its death is reported through its channel, and the jobs still
    /// in flight are accounted for then. It gets no more jobs meanwhile.
    pub(super) fn kill(&mut self) {
        if let Link::Process(link) = &self.link {
            self.dying = true;
            link.kill();
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

/// Every worker the engine knows: one slot per worker, each with its live incarnation or the
/// state of its replacement, and the abandoned threads.
pub(super) struct Workers {
    pub(super) slots: Vec<Slot>,
    /// Abandoned thread workers that may still hand back jobs they took.
    pub(super) retired: Vec<Worker>,
    /// Abandoned threads that owe nothing but may still be stopping their job (a command
    /// running its kill sequence): dropping the pool gives them until the grace to end.
    pub(super) lingering: Vec<thread::Link>,
}

impl Workers {
    /// `n` slots, each with a worker starting.
    pub(super) fn new(n: usize) -> Workers {
        let slot = || Slot {
            generation: 0,
            state: SlotState::Starting,
            failures: 0,
        };
        Workers {
            slots: (0..n).map(|_| slot()).collect(),
            retired: Vec::new(),
            lingering: Vec::new(),
        }
    }

    /// Worker `key`, if it is the live one in its slot (not one retired or since replaced).
    #[inline]
    pub(super) fn live(&mut self, key: Key) -> Option<&mut Worker> {
        match self.slots.get_mut(key.0) {
            Some(Slot {
                generation,
                state: SlotState::Live(w),
                ..
            }) if *generation == key.1 => Some(w),
            _ => None,
        }
    }

    /// The live worker of slot `i`, whatever its generation.
    pub(super) fn live_at(&mut self, i: usize) -> Option<&mut Worker> {
        match &mut self.slots[i].state {
            SlotState::Live(w) => Some(w),
            _ => None,
        }
    }

    /// Worker `key`, live or retired.
    pub(super) fn find(&mut self, key: Key) -> Option<&mut Worker> {
        match self.slots.get_mut(key.0) {
            Some(Slot {
                generation,
                state: SlotState::Live(w),
                ..
            }) if *generation == key.1 => Some(w),
            _ => self.retired.iter_mut().find(|w| w.key == key),
        }
    }

    /// The live workers.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Worker> {
        self.slots.iter().filter_map(|s| match &s.state {
            SlotState::Live(w) => Some(&**w),
            _ => None,
        })
    }

    /// The live workers, then the retired ones.
    pub(super) fn all_mut(&mut self) -> impl Iterator<Item = &mut Worker> {
        let live = self.slots.iter_mut().filter_map(|s| match &mut s.state {
            SlotState::Live(w) => Some(&mut **w),
            _ => None,
        });
        live.chain(self.retired.iter_mut())
    }

    /// Takes slot `i`'s worker out, if one is live there; the slot is left starting either way.
    pub(super) fn take_live(&mut self, i: usize) -> Option<Box<Worker>> {
        match std::mem::replace(&mut self.slots[i].state, SlotState::Starting) {
            SlotState::Live(w) => Some(w),
            _ => None,
        }
    }

    /// Live workers now (not starting, not dying).
    pub(super) fn live_workers(&self) -> usize {
        self.iter().filter(|w| !w.dying).count()
    }

    /// The pids of the live process workers.
    pub(super) fn pids(&self) -> Vec<u32> {
        self.iter()
            .filter_map(|w| match &w.link {
                Link::Process(l) => Some(l.pid),
                Link::Thread(_) => None,
            })
            .collect()
    }

    /// Whether any job is in flight, on a live worker or on one retired or dying.
    pub(super) fn in_flight(&self) -> bool {
        self.retired.iter().any(Worker::busy) || self.iter().any(Worker::busy)
    }

    /// Whether any live worker is being killed.
    pub(super) fn any_dying(&self) -> bool {
        self.iter().any(|w| w.dying)
    }

    pub(super) fn all_failed(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Failed))
    }

    /// The earliest time a slot waits for to start its worker again.
    pub(super) fn next_restart(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| match s.state {
                SlotState::Waiting(at) => Some(at),
                _ => None,
            })
            .min()
    }

    pub(super) fn set_draining(&self, on: bool) {
        for w in self.iter() {
            w.set_draining(on);
        }
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

    /// Whether a process worker is still running.
    fn any_process_running(&self) -> bool {
        self.iter().any(|w| match &w.link {
            Link::Process(l) => l.try_exit().is_none(),
            Link::Thread(_) => false,
        })
    }

    /// Closes every process worker's channel, so that they wind down together.
    fn close(&mut self) {
        for w in self.all_mut() {
            if let Link::Process(l) = &mut w.link {
                l.close();
            }
        }
    }

    /// Stops every worker: the process workers' channels are closed first and `wait` is
    /// called until they have exited or a second is over (their last results must be read
    /// meanwhile: a worker blocked on a full socket could not see its channel close).
    pub(super) fn shut_down(&mut self, grace: Duration, mut wait: impl FnMut(Instant)) {
        self.close();
        let until = Instant::now() + Duration::from_secs(1);
        while self.any_process_running() && Instant::now() < until {
            wait(until.min(Instant::now() + Duration::from_millis(1)));
        }
        for slot in &mut self.slots {
            if let SlotState::Live(w) = &mut slot.state {
                match &mut w.link {
                    Link::Thread(l) => l.shutdown(super::ABANDON_WAIT),
                    Link::Process(l) => l.shutdown(Duration::from_secs(1)),
                }
            }
        }
        // Abandoned threads may be stopping their jobs in order: they share one wait.
        let until = Instant::now() + grace;
        let abandoned = self
            .retired
            .iter_mut()
            .filter_map(|w| match &mut w.link {
                Link::Thread(l) => Some(l),
                Link::Process(_) => None,
            })
            .chain(self.lingering.iter_mut());
        for l in abandoned {
            l.shutdown(until.saturating_duration_since(Instant::now()));
        }
    }
}
