//! Where the engine's events come from: a channel that threads post to and, in a pool of
//! process workers, the workers' result sockets themselves, read on the coordinator's thread.
//!
//! A reader thread per worker would put a third thread in every round trip: the worker wakes
//! its reader, which wakes the coordinator. On two cores that extra wake-up is most of the
//! trip (75 µs against 5 µs for a ping-pong between two parties, on the VM the benches ran
//! on), so the coordinator waits on every result socket at once, with a bell for what threads
//! post: the respawner, the waker, and the reaper of a worker whose socket closed.

use std::collections::VecDeque;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use ipc_channel::TrySelectError;
use ipc_channel::ipc::{self, IpcReceiverSet, IpcSelectionResult, IpcSender};

use crate::event::{Event, Key};
use crate::message::{Body, Note, Sink};
use crate::process::{self, Link};
use crate::wire;

/// Posts events to the engine, ringing its bell if it is asleep on the sockets.
#[derive(Clone)]
pub(crate) struct Post {
    tx: Sender<Event>,
    bell: Option<Arc<Bell>>,
    parked: Option<Arc<Parked>>,
}

impl Post {
    pub(crate) fn send(&self, event: Event) {
        let _ = self.tx.send(event);
        if let Some(bell) = &self.bell {
            // Pairs with the fence in `Inbox::recv`: either the engine sees the event before it
            // sleeps, or this sees it asleep and wakes it.
            fence(Ordering::SeqCst);
            if bell.asleep.swap(false, Ordering::SeqCst) {
                let _ = bell.ring.lock().expect("bell").send(());
            }
        }
        if let Some(parked) = &self.parked {
            // Pairs with the fence in `Inbox::recv_parked`, as the bell's does.
            fence(Ordering::SeqCst);
            if parked.asleep.swap(false, Ordering::SeqCst)
                && let Some(engine) = &*parked.thread.lock().expect("parked engine")
            {
                engine.unpark();
            }
        }
    }
}

/// Where the engine of thread workers sleeps: parked, woken by a post. The channel's own
/// blocking receive spins, then yields four times before it sleeps; on two cores busy with
/// two workers each yield let a worker run a while with the engine still queued beside it, and
/// threads took 1.04-1.10 times rayon's time on 400 jobs of about 1 ms where processes, whose
/// engine sleeps on its sockets, took 1.025-1.037.
struct Parked {
    asleep: AtomicBool,
    /// The thread the engine runs on; it may change between runs (a run's results can be read
    /// from any thread).
    thread: Mutex<Option<std::thread::Thread>>,
}

struct Bell {
    asleep: AtomicBool,
    ring: Mutex<IpcSender<()>>,
}

/// The engine's end: events posted, and (for process workers) results read off the sockets.
pub(crate) struct Inbox {
    rx: Receiver<Event>,
    direct: Option<Direct>,
    /// For a pool of thread workers: how the engine sleeps (see [`Parked`]).
    parked: Option<Arc<Parked>>,
}

struct Direct {
    set: IpcReceiverSet,
    bell: Arc<Bell>,
    bell_id: u64,
    /// The sockets in the set: each one's id, its worker, and the worker's child to reap.
    sockets: Vec<(u64, Key, Arc<Mutex<Child>>)>,
    /// Events read off the sockets and not handed out yet, in the order they came.
    read: VecDeque<Event>,
    post: Post,
    /// Where tasks' messages go (see `Context::send`), if the run's caller reads them.
    notes: Option<Arc<Sink>>,
    /// Whether a wait polls the sockets for a moment before it sleeps (see [`Inbox::set_spin`]).
    spin: bool,
}

impl Inbox {
    /// An inbox and the post into it; `sockets` for a pool of process workers.
    pub(crate) fn new(sockets: bool) -> std::io::Result<(Inbox, Post)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        if !sockets {
            let parked = Arc::new(Parked {
                asleep: AtomicBool::new(false),
                thread: Mutex::new(None),
            });
            let post = Post {
                tx,
                bell: None,
                parked: Some(parked.clone()),
            };
            let inbox = Inbox {
                rx,
                direct: None,
                parked: Some(parked),
            };
            return Ok((inbox, post));
        }
        crate::sys::raise_malloc_thresholds();
        let (ring, rung) = ipc::channel::<()>()?;
        let mut set = IpcReceiverSet::new()?;
        let bell_id = set.add(rung)?;
        let bell = Arc::new(Bell {
            asleep: AtomicBool::new(false),
            ring: Mutex::new(ring),
        });
        let post = Post {
            tx,
            bell: Some(bell.clone()),
            parked: None,
        };
        let direct = Direct {
            set,
            bell,
            bell_id,
            sockets: Vec::new(),
            read: VecDeque::new(),
            post: post.clone(),
            notes: None,
            spin: true,
        };
        Ok((
            Inbox {
                rx,
                direct: Some(direct),
                parked: None,
            },
            post,
        ))
    }

    /// Reads worker `key`'s results from now on.
    pub(crate) fn add(&mut self, key: Key, link: &mut Link) -> std::io::Result<()> {
        let (Some(d), Some(results)) = (&mut self.direct, link.take_results()) else {
            return Ok(());
        };
        let id = d.set.add(results)?;
        d.sockets.push((id, key, link.child()));
        Ok(())
    }

    /// Where tasks' messages read off the sockets go from now on.
    pub(crate) fn set_notes(&mut self, notes: Option<Arc<Sink>>) {
        if let Some(d) = &mut self.direct {
            d.notes = notes;
        }
    }

    /// Whether a wait polls the sockets for a moment (`sys::spin`) before it sleeps: worth it
    /// only when a reply is due within that moment. Two workers busy with 1 ms jobs on two
    /// cores lost the poll's 50 us to the coordinator after each result, one CPU in twenty:
    /// weft's processes took 1.055-1.072 times rayon's time on 400 such jobs.
    pub(crate) fn set_spin(&mut self, on: bool) {
        if let Some(d) = &mut self.direct {
            d.spin = on;
        }
    }

    /// An event that is already in, if any: none is read off the sockets here.
    #[inline]
    pub(crate) fn try_recv(&mut self) -> Option<Event> {
        if let Some(d) = &mut self.direct
            && let Some(event) = d.read.pop_front()
        {
            return Some(event);
        }
        self.rx.try_recv().ok()
    }

    /// The next event, waiting until `until` at the latest (`None`: for ever).
    pub(crate) fn recv(&mut self, until: Option<Instant>) -> Option<Event> {
        if let Some(event) = self.try_recv() {
            return Some(event);
        }
        let Some(d) = &mut self.direct else {
            return self.recv_parked(until);
        };
        let rx = &self.rx;
        loop {
            // Polled for first, at least once however near `until` is: the reply to a tiny job
            // comes within microseconds, and taken so it wakes no one. Without the spin, once.
            let spin = d.spin;
            let mut poll = || {
                d.read
                    .pop_front()
                    .or_else(|| {
                        d.select(Some(Duration::ZERO));
                        d.read.pop_front()
                    })
                    .or_else(|| rx.try_recv().ok())
            };
            let polled = if spin {
                crate::sys::spin(until, poll)
            } else {
                poll()
            };
            if polled.is_some() {
                return polled;
            }
            let left = until.map(|t| t.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return None;
            }
            d.bell.asleep.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if let Ok(event) = rx.try_recv() {
                d.bell.asleep.store(false, Ordering::SeqCst);
                return Some(event);
            }
            d.select(left);
            d.bell.asleep.store(false, Ordering::SeqCst);
        }
    }
}

impl Inbox {
    /// `recv` in a pool of thread workers: parks until a post, or `until`.
    fn recv_parked(&mut self, until: Option<Instant>) -> Option<Event> {
        let Some(parked) = &self.parked else {
            return match until {
                Some(t) => self.rx.recv_deadline(t).ok(),
                None => self.rx.recv().ok(),
            };
        };
        let me = std::thread::current();
        {
            let mut engine = parked.thread.lock().expect("parked engine");
            if engine.as_ref().map(|t| t.id()) != Some(me.id()) {
                *engine = Some(me);
            }
        }
        loop {
            parked.asleep.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if let Ok(event) = self.rx.try_recv() {
                parked.asleep.store(false, Ordering::SeqCst);
                return Some(event);
            }
            match until {
                None => std::thread::park(),
                Some(t) => {
                    let left = t.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        parked.asleep.store(false, Ordering::SeqCst);
                        return None;
                    }
                    std::thread::park_timeout(left);
                }
            }
            // A wake-up with nothing posted (spurious, or a post's unpark that came after
            // the event was taken) goes round again.
        }
    }
}

impl Direct {
    /// Reads what the sockets have, waiting at most `wait` (`None`: until something comes).
    fn select(&mut self, wait: Option<Duration>) {
        let got = match wait {
            // A day stands for ever: mio takes the timeout in milliseconds.
            None => self.set.try_select_timeout(Duration::from_secs(86_400)),
            Some(w) => self.set.try_select_timeout(w),
        };
        let results = match got {
            Ok(results) => results,
            Err(TrySelectError::Empty) => return,
            Err(TrySelectError::IoError(_)) => {
                // A socket failed without saying which: every worker is killed, each socket
                // then closes, and each worker's jobs are accounted for as its death.
                for (_, _, child) in &self.sockets {
                    let _ = child.lock().expect("worker child").kill();
                }
                return;
            }
        };
        for result in results {
            match result {
                IpcSelectionResult::MessageReceived(id, _) if id == self.bell_id => {}
                IpcSelectionResult::MessageReceived(id, message) => {
                    let Some((_, key, child)) = self.sockets.iter().find(|s| s.0 == id) else {
                        continue;
                    };
                    match message.to::<wire::Results>() {
                        // A task's message: on to its reader at once, never to the engine.
                        Ok(results) if results.is_note() => note(self.notes.as_deref(), results),
                        Ok(results) => self.read.push_back(Event::Results(*key, results)),
                        Err(_) => {
                            // Undecodable: the worker is killed, and its socket then closes.
                            self.read.push_back(Event::Garbled(*key));
                            let _ = child.lock().expect("worker child").kill();
                        }
                    }
                }
                IpcSelectionResult::ChannelClosed(id) => {
                    let Some(at) = self.sockets.iter().position(|s| s.0 == id) else {
                        continue;
                    };
                    let (_, key, child) = self.sockets.swap_remove(at);
                    if let Some(crash) = process::reaped(&child) {
                        self.read.push_back(Event::Exited(key, crash));
                        continue;
                    }
                    // Reaping may take a while (a worker that closed its socket and lingers
                    // is given a second): off the coordinator's thread.
                    let (post, reaped) = (self.post.clone(), child.clone());
                    let reaper = std::thread::Builder::new()
                        .name("weft-reaper".into())
                        .spawn(move || post.send(Event::Exited(key, process::reap(&reaped))));
                    if reaper.is_err() {
                        // No thread to spare: reaped here.
                        self.read
                            .push_back(Event::Exited(key, process::reap(&child)));
                    }
                }
            }
        }
    }
}

/// Passes a task's message on to `sink`; with no sink (nobody reads), or a full one, it is
/// dropped.
#[cold]
#[inline(never)]
fn note(sink: Option<&Sink>, message: wire::Results) {
    if let (Some(sink), Some((seq, bytes))) = (sink, message.into_note()) {
        let _ = sink.post(Note {
            seq,
            body: Body::Encoded(bytes),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A post made once `inbox` is asleep wakes it long before its deadline: without the bell
    /// the select sleeps to its deadline and only then finds the event.
    fn assert_a_later_post_wakes(inbox: &mut Inbox, post: Post) {
        let poster = std::thread::spawn(move || {
            // Long past the polling before sleep: the inbox is asleep in its select by then.
            std::thread::sleep(Duration::from_millis(200));
            post.send(Event::Input);
        });
        let deadline = Duration::from_secs(60);
        let start = Instant::now();
        let got = inbox.recv(Some(start + deadline));
        assert!(matches!(got, Some(Event::Input)));
        assert!(start.elapsed() < deadline / 2, "woken only by the deadline");
        poster.join().expect("poster");
    }

    #[test]
    fn a_post_wakes_an_inbox_asleep_on_its_sockets() {
        let (mut inbox, post) = Inbox::new(true).expect("inbox");
        assert_a_later_post_wakes(&mut inbox, post);
    }

    #[test]
    fn an_inbox_that_does_not_spin_still_takes_and_is_woken() {
        let (mut inbox, post) = Inbox::new(true).expect("inbox");
        inbox.set_spin(false);
        // Already in: taken by the one poll, however near the deadline.
        post.send(Event::Drain);
        assert!(matches!(
            inbox.recv(Some(Instant::now())),
            Some(Event::Drain)
        ));
        assert_a_later_post_wakes(&mut inbox, post);
    }

    #[test]
    fn a_post_wakes_an_inbox_without_sockets_on_whichever_thread_waits() {
        let (mut inbox, post) = Inbox::new(false).expect("inbox");
        let deadline = Duration::from_secs(60);
        for _ in 0..2 {
            let post = post.clone();
            let poster = std::thread::spawn(move || {
                // Long past any polling: the engine is parked by then.
                std::thread::sleep(Duration::from_millis(200));
                post.send(Event::Input);
            });
            // Each round waits on a thread of its own, as a run's results may be read anywhere.
            inbox = std::thread::spawn(move || {
                let start = Instant::now();
                let got = inbox.recv(Some(start + deadline));
                assert!(matches!(got, Some(Event::Input)));
                assert!(start.elapsed() < deadline / 2, "woken only by the deadline");
                inbox
            })
            .join()
            .expect("waiter");
            poster.join().expect("poster");
        }
        // And the deadline still ends a wait with nothing posted.
        assert!(
            inbox
                .recv(Some(Instant::now() + Duration::from_millis(10)))
                .is_none()
        );
    }

    #[test]
    fn an_inbox_without_sockets_is_a_plain_channel() {
        let (mut inbox, post) = Inbox::new(false).expect("inbox");
        assert!(inbox.recv(Some(Instant::now())).is_none());
        post.send(Event::Drain);
        assert!(matches!(inbox.try_recv(), Some(Event::Drain)));
    }
}
