//! The worker side: `weft worker --broker URL` and [`serve`]. It reads entries of the kinds
//! its registry has from their streams (taking over those idle past the lease first), runs
//! their jobs on a local [`Pool`], renews the lease of what it holds from a heartbeat thread,
//! and writes each entry's results with its ack in one owner-checked step.
//!
//! The heartbeat also looks at the state of the runs it holds entries of: a run cancelled
//! (its submitter interrupted), finished (its jobs reported by other workers) or gone has its
//! jobs here stopped. The local pool can only end a whole run of its own, so it is
//! interrupted (commands get their kill sequence) and the jobs of other broker runs that ran
//! with them in it start again; their entries stay held, so this costs no delivery.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::proto::{self, Batch, Delivered, Done, Ended, GROUP, Link, PAYLOAD_LIMIT};
use crate::engine::{Pull, Waker};
use crate::error::{Error, ErrorKind};
use crate::outcome::Status;
use crate::wire::Payload;
use crate::{Backend, Pool, Registry};

/// Where a worker tells what its operator should know.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// What a worker does, besides serving its registry's tasks.
#[derive(Clone)]
pub struct WorkerOptions {
    /// Jobs run at once on this machine (the local pool's workers).
    pub workers: usize,
    /// The local pool's backend.
    pub backend: Backend,
    /// Stop once no entry came for this long.
    pub exit_when_idle: Option<Duration>,
    /// Whether command jobs (the `exec` task) are run: a broker is a remote-execution channel,
    /// so they are not unless asked.
    pub allow_commands: bool,
    /// Told what the worker does that its operator should know (a late result discarded, an
    /// entry dead-lettered); the library prints nothing itself.
    pub log: Option<Log>,
}

impl std::fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("workers", &self.workers)
            .field("backend", &self.backend)
            .field("exit_when_idle", &self.exit_when_idle)
            .field("allow_commands", &self.allow_commands)
            .finish_non_exhaustive()
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            backend: Backend::Thread,
            exit_when_idle: None,
            allow_commands: false,
            log: None,
        }
    }
}

/// What a worker did before it stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Served {
    /// Jobs run whose results were written.
    pub jobs: u64,
    /// Entries whose results were discarded: the lease was lost before they were written.
    pub discarded: u64,
}

/// Serves `registry`'s tasks to the broker at `url` until idle for
/// [`WorkerOptions::exit_when_idle`] (or forever).
///
/// # Errors
/// The URL is not a Redis URL, the broker cannot be reached (for 30 s in a row), the local
/// pool cannot start, or the registry has no task to serve.
pub fn serve(url: &str, registry: &Registry, opts: &WorkerOptions) -> Result<Served, Error> {
    let io = |m: String| Error::new(ErrorKind::Io, m);
    let kinds: Vec<String> = registry
        .tasks()
        .map(|t| t.name.to_string())
        .filter(|k| opts.allow_commands || k != "exec")
        .collect();
    if kinds.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            "the registry has no task to serve",
        ));
    }
    let patience = proto::knob("WEFT_BROKER_RECONNECT_MS", Duration::from_secs(30));
    let mut link = Link::open(url, patience).map_err(io)?;
    let me = consumer_name();
    let lease = proto::lease();
    let queues: Vec<String> = kinds.iter().map(|k| proto::queue_key(k)).collect();
    for q in &queues {
        link.run(|con| proto::ensure_group(con, q)).map_err(io)?;
    }
    let held: Held = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let over = Shared::default();
    let beat = Heartbeat {
        link: Link::open(url, patience).map_err(io)?,
        me: me.clone(),
        kinds: kinds.clone(),
        held: held.clone(),
        lease,
        stop: stop.clone(),
        over: over.clone(),
    };
    // Announced before the first read, so a submitter waiting for this kind sees it.
    let mut beat = beat;
    beat.tick();
    let beating = std::thread::Builder::new()
        .name("weft-heartbeat".into())
        .spawn(move || beat.run())
        .map_err(|e| {
            Error::new(ErrorKind::Spawn, "the heartbeat thread could not start").with_source(e)
        })?;
    let w = Rc::new(RefCell::new(Worker {
        link,
        me,
        queues,
        opts,
        lease,
        held,
        served: Served::default(),
        flights: Vec::new(),
        free: Vec::new(),
        drops_seen: 0,
        buffer: VecDeque::new(),
        running: HashMap::new(),
        last_read: Instant::now(),
        error: None,
        suspect: None,
        over,
    }));
    let result = run_all(&w, registry, opts);
    stop.store(true, Ordering::Release);
    let _ = beating.join();
    let mut w = w.borrow_mut();
    let me = w.me.clone();
    // Gone: no submitter should count on this worker any more.
    let keys: Vec<String> = kinds.iter().map(|k| proto::workers_key(k)).collect();
    let _ = w.link.run(|con| {
        let s = redis::Script::new(proto::WITHDRAW);
        let mut inv = s.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        inv.arg(&me).invoke::<i64>(con)
    });
    result.map(|()| w.served)
}

/// A consumer name unique across machines and restarts: host, pid and a random part.
fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let r = u32::from_ne_bytes(crate::sys::random_bytes::<4>().unwrap_or([0; 4]));
    format!("{host}-{}-{r:08x}", std::process::id())
}

/// The entries this worker holds, by stream, with their runs: what the heartbeat renews.
type Held = Arc<Mutex<HashMap<String, BTreeMap<String, String>>>>;

/// What the heartbeat tells the serving loop: the runs no longer running that this worker
/// holds entries of, and how to interrupt the local pool's run in progress.
#[derive(Default)]
struct Over {
    runs: Mutex<HashSet<String>>,
    waker: Mutex<Option<Waker>>,
}

type Shared = Arc<Over>;

struct Heartbeat {
    link: Link,
    me: String,
    kinds: Vec<String>,
    held: Held,
    lease: Duration,
    stop: Arc<AtomicBool>,
    over: Shared,
}

impl Heartbeat {
    fn run(mut self) {
        let period = self.lease / 3;
        let mut next = Instant::now() + period;
        while !self.stop.load(Ordering::Acquire) {
            // Short naps so that the worker's end is not held up by a whole period.
            let now = Instant::now();
            if now < next {
                std::thread::sleep((next - now).min(Duration::from_millis(50)));
                continue;
            }
            next = now + period;
            self.tick();
        }
    }

    /// Announces this worker's kinds and renews the lease of every entry it holds.
    fn tick(&mut self) {
        let keys: Vec<String> = self.kinds.iter().map(|k| proto::workers_key(k)).collect();
        let ttl = (self.lease * 3).as_millis() as u64;
        let me = self.me.clone();
        let _ = self.link.run(|con| {
            let s = redis::Script::new(proto::ANNOUNCE);
            let mut inv = s.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            inv.arg(&me).arg(ttl).invoke::<i64>(con)
        });
        let held: Vec<(String, Vec<String>)> = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(s, ids)| (s.clone(), ids.keys().cloned().collect()))
            .collect();
        self.look_at_runs();
        for (stream, ids) in held {
            let _ = self.link.run(|con| {
                let s = redis::Script::new(proto::RENEW);
                let mut inv = s.prepare_invoke();
                inv.key(&stream).arg(GROUP).arg(&me);
                for id in &ids {
                    inv.arg(id);
                }
                inv.invoke::<Vec<String>>(con)
            });
        }
    }

    /// Finds the runs of held entries that are no longer running (cancelled, done, gone)
    /// and interrupts the local pool's run, so that their jobs stop. Their entries stay held
    /// until the serving loop has dropped them, so a lost interrupt is sent again next tick.
    fn look_at_runs(&mut self) {
        let runs: BTreeSet<String> = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flat_map(|ids| ids.values().cloned())
            .collect();
        if runs.is_empty() {
            return;
        }
        let keys: Vec<String> = runs.iter().map(|r| proto::run_key(r)).collect();
        // A failed read says nothing about the runs: only a state seen counts.
        let Ok(states) = self.link.run(|con| {
            let mut p = redis::pipe();
            for k in &keys {
                p.cmd("HGET").arg(k).arg("state");
            }
            p.query::<Vec<Option<String>>>(con)
        }) else {
            return;
        };
        let over: Vec<String> = runs
            .into_iter()
            .zip(states)
            .filter(|(_, s)| s.as_deref() != Some("running"))
            .map(|(r, _)| r)
            .collect();
        if over.is_empty() {
            return;
        }
        self.over
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(over);
        if let Some(waker) = &*self.over.waker.lock().unwrap_or_else(|e| e.into_inner()) {
            waker.interrupt();
        }
    }
}

struct Worker<'r> {
    link: Link,
    me: String,
    queues: Vec<String>,
    opts: &'r WorkerOptions,
    lease: Duration,
    held: Held,
    served: Served,
    /// The entries taken and not yet written back, by slot.
    flights: Vec<Option<Flight>>,
    free: Vec<usize>,
    /// The link's dropped connections already looked past (see [`Worker::lost_deliveries`]).
    drops_seen: u64,
    /// Slots of entries whose jobs are not all handed to the local pool yet, in order.
    buffer: VecDeque<usize>,
    /// The run's jobs on the local pool: seq -> (slot, job index).
    running: HashMap<u64, (usize, usize)>,
    last_read: Instant,
    /// What stopped the source of a run (the broker unreachable).
    error: Option<String>,
    /// The slot of an entry taken over from a lost worker: it runs alone (it starts once
    /// what runs has ended, and nothing more is read until it is done).
    suspect: Option<usize>,
    over: Shared,
}

/// An entry taken, decoded, with what is left to do for it.
struct Taken {
    d: Delivered,
    batch: Batch,
    done: Vec<Done>,
    /// Its jobs were dead-lettered.
    dead: bool,
}

/// An entry whose jobs run.
struct Flight {
    t: Taken,
    /// Jobs handed to the local pool.
    pulled: usize,
    /// Jobs not yet ended.
    left: usize,
}

/// What a local pool's run is for: jobs of one kind and settings.
type Key = (String, Option<u64>, u32);

fn key_of(b: &Batch) -> Key {
    (b.kind.clone(), b.timeout_ms, b.attempts)
}

/// Serves until idle for `exit_when_idle` (or forever): each run of the local pool takes
/// entries of one kind and settings as it has room for them, and ends when the next entry is
/// of another (or when nothing is left to run).
fn run_all(
    w: &Rc<RefCell<Worker<'_>>>,
    registry: &Registry,
    opts: &WorkerOptions,
) -> Result<(), Error> {
    let io = |m: String| Error::new(ErrorKind::Io, m);
    let mut pools: HashMap<(Option<u64>, u32, bool), Pool> = HashMap::new();
    let mut idle_since = Instant::now();
    loop {
        let key = {
            let mut wm = w.borrow_mut();
            if let Some(e) = wm.error.take() {
                return Err(io(e));
            }
            wm.settle().map_err(io)?;
            if wm.buffer.is_empty() {
                wm.read(1000).map_err(io)?;
            }
            match wm.buffer.front() {
                Some(&slot) => key_of(&wm.flights[slot].as_ref().expect("buffered").t.batch),
                None => {
                    if opts
                        .exit_when_idle
                        .is_some_and(|t| idle_since.elapsed() >= t)
                    {
                        return Ok(());
                    }
                    continue;
                }
            }
        };
        idle_since = Instant::now();
        let entry = *registry
            .entry(&key.0)
            .ok_or_else(|| Error::new(ErrorKind::Config, format!("no task {:?}", key.0)))?;
        // Commands wait for a free slot, as on the command line: one queued behind a long
        // command would wait for it while another slot is idle.
        let ahead = key.0 != "exec";
        let pool = pool(&mut pools, registry, opts, (key.1, key.2, ahead)).map_err(io)?;
        *w.borrow()
            .over
            .waker
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(pool.waker());
        // The source says "not yet" while the broker has nothing: the pool is woken to ask
        // again (a read costs a round trip, so at most every few milliseconds).
        let ticking = Arc::new(AtomicBool::new(true));
        let ticker = {
            let (ticking, waker) = (ticking.clone(), pool.waker());
            std::thread::Builder::new()
                .name("weft-ticker".into())
                .spawn(move || {
                    while ticking.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(5));
                        waker.wake();
                    }
                })
                .map_err(|e| {
                    Error::new(ErrorKind::Spawn, "the ticker thread could not start").with_source(e)
                })?
        };
        let source = RunSource {
            w: w.clone(),
            key: key.clone(),
            entry,
            on_threads: opts.backend == Backend::Thread,
            seq: 0,
        };
        let result = (|| {
            let outcomes = pool.map_pulls(entry, source);
            for o in outcomes {
                w.borrow_mut().landed(o, &key.0).map_err(io)?;
            }
            Ok(())
        })();
        ticking.store(false, Ordering::Release);
        let _ = ticker.join();
        result?;
        w.borrow_mut().settle().map_err(io)?;
    }
}

/// The jobs of one run of the local pool, taken from the broker as the pool has room.
struct RunSource<'r> {
    w: Rc<RefCell<Worker<'r>>>,
    key: Key,
    entry: crate::registry::Entry,
    on_threads: bool,
    /// Jobs handed out: the engine numbers them from 1 in this order.
    seq: u64,
}

impl Iterator for RunSource<'_> {
    type Item = Pull;

    fn next(&mut self) -> Option<Pull> {
        let mut w = self.w.borrow_mut();
        // Read ahead while a job or two per local worker is left, so that the pool does not
        // wait a round trip for its next job (at most one read a millisecond).
        let low = w.opts.workers.max(1);
        if w.buffer.len() < low
            && w.last_read.elapsed() >= Duration::from_millis(1)
            && let Err(e) = w.read(0)
        {
            w.error = Some(e);
            return None;
        }
        loop {
            if let Some(&slot) = w.buffer.front() {
                if w.suspect == Some(slot) && !w.running.is_empty() {
                    // Runs alone, once what runs has ended.
                    return Some(Pull::Wait);
                }
                let f = w.flights[slot].as_mut().expect("buffered");
                if key_of(&f.t.batch) != self.key {
                    // Another kind or settings: this run ends once its jobs have.
                    return None;
                }
                let i = f.pulled;
                f.pulled += 1;
                // The input stays with its entry until the entry is written back: a job
                // stopped with a cancelled run's jobs starts again from it.
                let input = &f.t.batch.jobs[i].input;
                let pull = if self.on_threads {
                    Pull::Ready((self.entry.decode_input)(input))
                } else {
                    Pull::Encoded(Ok(Payload::Inline(input.clone())))
                };
                if f.pulled == f.t.batch.jobs.len() {
                    w.buffer.pop_front();
                }
                self.seq += 1;
                w.running.insert(self.seq, (slot, i));
                return Some(pull);
            }
            if w.running.is_empty() {
                // Nothing runs and nothing is buffered: the serving loop waits on the broker.
                return None;
            }
            if w.last_read.elapsed() < Duration::from_millis(5) {
                return Some(Pull::Wait);
            }
            if let Err(e) = w.read(0) {
                w.error = Some(e);
                return None;
            }
            if w.buffer.is_empty() {
                return Some(Pull::Wait);
            }
        }
    }
}

impl Worker<'_> {
    /// After a run of the local pool ended (interrupted, it was cancelled with what it ran):
    /// the entries of runs no longer running are acked away, and the jobs of other runs that
    /// did not end are set to start again.
    fn settle(&mut self) -> Result<(), String> {
        let over = std::mem::take(&mut *self.over.runs.lock().unwrap_or_else(|e| e.into_inner()));
        let mut unended: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (_, (slot, i)) in self.running.drain() {
            unended.entry(slot).or_default().push(i);
        }
        for (slot, mut left) in unended {
            let f = self.flights[slot].as_mut().expect("running");
            if over.contains(&f.t.batch.run) {
                continue;
            }
            // Its jobs that did not end start again, and those not handed out yet run too.
            left.sort_unstable();
            let pulled = f.pulled;
            let mut i = 0;
            f.t.batch.jobs.retain(|_| {
                let keep = i >= pulled || left.binary_search(&i).is_ok();
                i += 1;
                keep
            });
            f.left = f.t.batch.jobs.len();
            f.pulled = 0;
            self.buffer.retain(|&s| s != slot);
            self.buffer.push_front(slot);
        }
        if over.is_empty() {
            return Ok(());
        }
        for slot in 0..self.flights.len() {
            let Some(f) = &self.flights[slot] else {
                continue;
            };
            if !over.contains(&f.t.batch.run) {
                continue;
            }
            let f = self.flights[slot].take().expect("a flight");
            self.free.push(slot);
            self.buffer.retain(|&s| s != slot);
            if self.suspect == Some(slot) {
                self.suspect = None;
            }
            self.finish(&f.t.d)?;
        }
        Ok(())
    }

    /// Takes entries from the broker into the buffer, waiting up to `block_ms` for one (0:
    /// not at all).
    fn read(&mut self, block_ms: u64) -> Result<(), String> {
        self.last_read = Instant::now();
        if self.suspect.is_some() {
            return Ok(());
        }
        // Room for about two entries per local worker: the others stay on the broker for
        // workers with room.
        let room = (self.opts.workers.max(1) * 2).saturating_sub(self.buffer.len());
        if room == 0 {
            return Ok(());
        }
        let got = self.take(room, block_ms)?;
        {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            for d in &got {
                held.entry(d.stream.clone())
                    .or_default()
                    .insert(d.id.clone(), d.run.clone());
            }
        }
        for d in got {
            if let Some(t) = self.triage(d)? {
                let left = t.batch.jobs.len();
                let f = Flight { t, pulled: 0, left };
                let slot = match self.free.pop() {
                    Some(s) => {
                        self.flights[s] = Some(f);
                        s
                    }
                    None => {
                        self.flights.push(Some(f));
                        self.flights.len() - 1
                    }
                };
                if left == 0 {
                    self.complete_slot(slot)?;
                } else {
                    if self.flights[slot]
                        .as_ref()
                        .is_some_and(|f| f.t.d.count >= 2)
                    {
                        self.suspect = Some(slot);
                    }
                    self.buffer.push_back(slot);
                }
            }
        }
        Ok(())
    }

    /// Takes in the outcome of a job of the run: its entry's results are written once its
    /// last job has ended.
    fn landed(&mut self, o: crate::Outcome<Vec<u8>>, kind: &str) -> Result<(), String> {
        let Some((slot, i)) = self.running.remove(&o.seq) else {
            return Ok(());
        };
        let f = self.flights[slot].as_mut().expect("running");
        let seq = f.t.batch.jobs[i].seq;
        let status = limit_output(kind, o.status);
        f.t.done.push(Done {
            seq,
            ended: status.into(),
            attempt: o.attempt,
            pid: o.pid,
            started_ms: o.started.and_then(|s| {
                s.duration_since(SystemTime::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_millis() as u64)
            }),
            runtime_us: o.runtime.as_micros() as u64,
        });
        f.left -= 1;
        if f.left == 0 {
            self.complete_slot(slot)?;
        }
        Ok(())
    }

    fn complete_slot(&mut self, slot: usize) -> Result<(), String> {
        let f = self.flights[slot].take().expect("a flight");
        self.free.push(slot);
        if self.suspect == Some(slot) {
            self.suspect = None;
        }
        self.complete(&f.t)
    }

    /// Entries to run: first those idle past the lease (their worker is gone), else new ones,
    /// waiting up to a second for them.
    fn take(&mut self, want: usize, block_ms: u64) -> Result<Vec<Delivered>, String> {
        let lease_ms = self.lease.as_millis() as u64;
        let mut got = Vec::new();
        // Entries of lost workers are taken over one at a time, by a worker with nothing
        // waiting to start; one with several jobs is split, one of a single job runs alone
        // (see `suspect`): a job that kills whoever runs it then takes no other entry's
        // deliveries with it.
        let idle = self.buffer.is_empty();
        for q in self.queues.clone() {
            if !idle || !got.is_empty() {
                break;
            }
            let me = self.me.clone();
            let claimed: redis::Value = self.link.run(|con| {
                redis::Script::new(proto::CLAIM)
                    .key(&q)
                    .arg(GROUP)
                    .arg(&me)
                    .arg(lease_ms)
                    .arg(1)
                    .invoke(con)
            })?;
            for e in proto::items(&claimed) {
                let [id, fields, count] = proto::items(e) else {
                    continue;
                };
                let count = proto::int(count).unwrap_or(1).max(1) as u32;
                if let Some(d) = Delivered::parse(&q, id, fields, count) {
                    got.push(d);
                }
            }
        }
        if !got.is_empty() {
            return Ok(got);
        }
        let lost = self.lost_deliveries()?;
        if !lost.is_empty() {
            return Ok(lost);
        }
        self.read_group(want, block_ms, ">")
    }

    /// Entries delivered to this worker that it never saw: a connection dropped while an
    /// `XREADGROUP` reply was on its way (a read interrupted by a signal, as one on a socket
    /// with a read timeout is even under `SA_RESTART`), and the read asked again. They are
    /// in this consumer's pending list; read from there, those not held are taken now rather
    /// than after a lease.
    fn lost_deliveries(&mut self) -> Result<Vec<Delivered>, String> {
        if self.link.drops == self.drops_seen {
            return Ok(Vec::new());
        }
        self.drops_seen = self.link.drops;
        let mine = self.read_group(100_000, 0, "0")?;
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let lost: Vec<Delivered> = mine
            .into_iter()
            .filter(|d| {
                !held
                    .get(&d.stream)
                    .is_some_and(|ids| ids.contains_key(&d.id))
            })
            .collect();
        drop(held);
        if !lost.is_empty() {
            self.say(&format!(
                "took {} entries delivered to it in a reply lost with its connection",
                lost.len()
            ));
        }
        Ok(lost)
    }

    /// `XREADGROUP` on every queue from `from` (`>`: new entries; `0`: this consumer's own
    /// pending ones), at most `want` per queue, waiting up to `block_ms` (0: not at all).
    fn read_group(
        &mut self,
        want: usize,
        block_ms: u64,
        from: &str,
    ) -> Result<Vec<Delivered>, String> {
        let mut got = Vec::new();
        let me = self.me.clone();
        let queues = self.queues.clone();
        let read: redis::Value = self.link.run(|con| {
            let mut c = redis::cmd("XREADGROUP");
            c.arg("GROUP").arg(GROUP).arg(&me).arg("COUNT").arg(want);
            if block_ms > 0 {
                c.arg("BLOCK").arg(block_ms);
            }
            c.arg("STREAMS");
            for q in &queues {
                c.arg(q);
            }
            for _ in &queues {
                c.arg(from);
            }
            match c.query(con) {
                // The group went away with the server's data (a restart without persistence):
                // made again, and read again next time.
                Err(e) if e.code() == Some("NOGROUP") => {
                    for q in &queues {
                        proto::ensure_group(con, q)?;
                    }
                    Ok(redis::Value::Nil)
                }
                other => other,
            }
        })?;
        for stream in proto::items(&read) {
            let [key, entries] = proto::items(stream) else {
                continue;
            };
            let Some(key) = proto::text(key) else {
                continue;
            };
            for e in proto::items(entries) {
                let [id, fields] = proto::items(e) else {
                    continue;
                };
                if let Some(d) = Delivered::parse(&key, id, fields, 1) {
                    got.push(d);
                }
            }
        }
        Ok(got)
    }

    /// What to do with an entry: run it, or (redelivered) split it into one entry per job, or
    /// (delivered too often) dead-letter its jobs.
    fn triage(&mut self, d: Delivered) -> Result<Option<Taken>, String> {
        let batch: Batch = match crate::wire::decode(&d.batch) {
            Ok(b) => b,
            Err(e) => {
                self.say(&format!(
                    "entry {} of {} is not a batch ({e}): dropped",
                    d.id, d.stream
                ));
                self.finish(&d)?;
                return Ok(None);
            }
        };
        // A run cancelled (interrupted, failed for want of a worker) or gone: its jobs are
        // not run, and its entry is acked away.
        let run_key = proto::run_key(&batch.run);
        let state: Option<String> = self
            .link
            .run(|con| redis::cmd("HGET").arg(&run_key).arg("state").query(con))?;
        if state.as_deref() != Some("running") {
            self.finish(&d)?;
            return Ok(None);
        }
        let deliveries = d.carried + d.count;
        if d.count >= 2 && batch.jobs.len() > 1 {
            // Its worker was lost with it: its jobs go on one by one, so that one job that
            // kills whoever runs it is dead-lettered alone.
            let parts: Vec<Vec<u8>> = batch
                .jobs
                .iter()
                .map(|j| {
                    crate::wire::encode(&Batch {
                        run: batch.run.clone(),
                        kind: batch.kind.clone(),
                        timeout_ms: batch.timeout_ms,
                        attempts: batch.attempts,
                        deliveries: batch.deliveries,
                        jobs: vec![j.clone()],
                    })
                })
                .collect::<Result<_, _>>()?;
            let me = self.me.clone();
            let carried = deliveries - 1;
            self.link.run(|con| {
                let s = redis::Script::new(proto::SPLIT);
                let mut inv = s.prepare_invoke();
                inv.key(&d.stream)
                    .arg(GROUP)
                    .arg(&me)
                    .arg(&d.id)
                    .arg(carried)
                    .arg(&d.run);
                for p in &parts {
                    inv.arg(p.as_slice());
                }
                inv.invoke::<i64>(con)
            })?;
            self.release(&d);
            return Ok(None);
        }
        let mut t = Taken {
            d,
            batch,
            done: Vec::new(),
            dead: false,
        };
        if deliveries > t.batch.deliveries {
            let why = format!(
                "dead-lettered after {deliveries} deliveries: every worker that took it was lost \
                 (crashed, killed, or past its lease)"
            );
            self.say(&format!(
                "job {} of run {}: {why}",
                t.batch
                    .jobs
                    .iter()
                    .map(|j| j.seq.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                t.batch.run
            ));
            t.done = t
                .batch
                .jobs
                .iter()
                .map(|j| failed(j.seq, deliveries, why.clone()))
                .collect();
            t.dead = true;
            self.complete(&t)?;
            return Ok(None);
        }
        if t.batch.kind == "exec" && !self.opts.allow_commands {
            let why = "this worker does not run commands (start it with --allow-commands)";
            t.done = t
                .batch
                .jobs
                .iter()
                .map(|j| failed(j.seq, 1, why.into()))
                .collect();
            self.complete(&t)?;
            return Ok(None);
        }
        Ok(Some(t))
    }

    fn complete(&mut self, t: &Taken) -> Result<(), String> {
        complete_on(
            &mut self.link,
            &self.me,
            &self.held,
            &mut self.served,
            self.opts,
            t,
        )
    }

    /// Acks an entry without results (not a batch, or its run is over).
    fn finish(&mut self, d: &Delivered) -> Result<i64, String> {
        let me = self.me.clone();
        let r = ack(&mut self.link, &me, d, "", &[], [0, 0, 0]);
        self.release(d);
        r
    }

    fn release(&self, d: &Delivered) {
        release(&self.held, d);
    }

    fn say(&self, what: &str) {
        if let Some(log) = &self.opts.log {
            log(what);
        }
    }
}

/// The local pool for jobs of these settings, started the first time.
fn pool<'p>(
    pools: &'p mut HashMap<(Option<u64>, u32, bool), Pool>,
    registry: &Registry,
    opts: &WorkerOptions,
    settings: (Option<u64>, u32, bool),
) -> Result<&'p mut Pool, String> {
    use std::collections::hash_map::Entry;
    let (timeout_ms, attempts, ahead) = settings;
    if let Entry::Vacant(slot) = pools.entry(settings) {
        let mut b = Pool::builder()
            .workers(opts.workers.max(1))
            .backend(opts.backend)
            .attempts(attempts)
            .lookahead(ahead)
            .registry(registry.clone());
        if let Some(ms) = timeout_ms {
            b = b.timeout(Duration::from_millis(ms));
        }
        let pool = b.build().map_err(|e| e.to_string())?;
        slot.insert(pool);
    }
    Ok(pools.get_mut(&settings).expect("inserted above"))
}

fn release(held: &Held, d: &Delivered) {
    if let Some(ids) = held
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(&d.stream)
    {
        ids.remove(&d.id);
    }
}

/// Writes `payload` with the ack of `d`; `counts` are its jobs, failed ones and
/// dead-lettered ones.
fn ack(
    link: &mut Link,
    me: &str,
    d: &Delivered,
    run: &str,
    payload: &[u8],
    counts: [usize; 3],
) -> Result<i64, String> {
    let results = proto::results_key(run);
    let run_key = proto::run_key(run);
    link.run(|con| {
        redis::Script::new(proto::ACK)
            .key(&d.stream)
            .key(&results)
            .key(&run_key)
            .arg(GROUP)
            .arg(me)
            .arg(&d.id)
            .arg(payload)
            .arg(counts[0])
            .arg(counts[1])
            .arg(counts[2])
            .invoke::<i64>(con)
    })
}

/// Writes an entry's results with its ack, if this worker still owns it.
fn complete_on(
    link: &mut Link,
    me: &str,
    held: &Held,
    served: &mut Served,
    opts: &WorkerOptions,
    t: &Taken,
) -> Result<(), String> {
    let payload = crate::wire::encode(&proto::Results {
        worker: me.to_string(),
        jobs: t.done.iter().map(clone_done).collect(),
    })?;
    let failed = t
        .done
        .iter()
        .filter(|d| !matches!(d.ended, Ended::Ok(_)))
        .count();
    let dead = if t.dead { t.done.len() } else { 0 };
    let r = ack(
        link,
        me,
        &t.d,
        &t.batch.run,
        &payload,
        [t.done.len(), failed, dead],
    );
    release(held, &t.d);
    match r? {
        0 => {
            served.discarded += 1;
            if let Some(log) = &opts.log {
                log(&format!(
                    "lost the lease of entry {} of run {} before its results were written: \
                     they are discarded (another worker runs its jobs)",
                    t.d.id, t.batch.run
                ));
            }
        }
        1 => served.jobs += t.done.len() as u64,
        _ => {}
    }
    Ok(())
}

fn clone_done(d: &Done) -> Done {
    Done {
        seq: d.seq,
        ended: match &d.ended {
            Ended::Ok(b) => Ended::Ok(b.clone()),
            Ended::Failed(m) => Ended::Failed(m.clone()),
            Ended::Panicked(m, l) => Ended::Panicked(m.clone(), l.clone()),
            Ended::Signal(s) => Ended::Signal(*s),
            Ended::Exit(c) => Ended::Exit(*c),
            Ended::TimedOut => Ended::TimedOut,
            Ended::Cancelled => Ended::Cancelled,
            Ended::Skipped(m) => Ended::Skipped(m.clone()),
        },
        attempt: d.attempt,
        pid: d.pid,
        started_ms: d.started_ms,
        runtime_us: d.runtime_us,
    }
}

fn failed(seq: u64, attempt: u32, why: String) -> Done {
    Done {
        seq,
        ended: Ended::Failed(why),
        attempt,
        pid: std::process::id(),
        started_ms: None,
        runtime_us: 0,
    }
}

/// An output too large for the broker fails its job, saying so; a command's output spilled
/// to a file on this machine is such an output (and its file is removed).
fn limit_output(kind: &str, status: Status<Vec<u8>>) -> Status<Vec<u8>> {
    let Status::Ok(bytes) = status else {
        return status;
    };
    let mut size = bytes.len() as u64;
    if kind == "exec"
        && let Ok(out) = crate::wire::decode::<crate::tasks::ExecOutput>(&bytes)
    {
        {
            for c in [&out.stdout, &out.stderr] {
                if let Some(path) = &c.spill {
                    size = size.max(c.len());
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
    if size > PAYLOAD_LIMIT as u64 {
        return Status::Failed(format!(
            "its output of {size} bytes is above the broker's limit of {} KiB",
            PAYLOAD_LIMIT / 1024
        ));
    }
    Status::Ok(bytes)
}
