//! The submitting and collecting side: a run's inputs go to the queue stream of its task kind
//! in batches, with back-pressure, and its outcomes come back from the run's results stream,
//! each job's first result kept and duplicates counted.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::time::{Duration, Instant, SystemTime};

use super::proto::{self, Batch, Done, Job, Link, PAYLOAD_LIMIT};
use crate::error::{Error, ErrorKind};
use crate::outcome::{Outcome, Status};
use crate::pool::Pending;
use crate::task::Task;

/// How a run on the broker goes: the settings a local pool would have.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunOptions {
    /// A job running longer than this is reported timed out (on its worker).
    pub timeout: Option<Duration>,
    /// Attempts per job (`--retries`); a delivery lost with its worker counts as well, and a
    /// job delivered `max(attempts, 3)` times is dead-lettered and reported failed.
    pub attempts: u32,
    /// Outcomes in input order rather than completion order.
    pub keep_order: bool,
    /// How long jobs wait for a worker that runs their kind before they fail for want of one.
    pub grace: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: None,
            attempts: 1,
            keep_order: false,
            grace: proto::knob("WEFT_BROKER_GRACE_MS", Duration::from_secs(10)),
        }
    }
}

impl RunOptions {
    /// With a per-job timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// With `n` attempts per job.
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = n.max(1);
        self
    }
    /// Outcomes in input order.
    pub fn keep_order(mut self, keep: bool) -> Self {
        self.keep_order = keep;
        self
    }
    /// How long jobs wait for a worker of their kind.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

/// A Redis server used as the queue: runs typed tasks on `weft worker`s anywhere.
///
/// Jobs are executed at least once and reported exactly once: a job whose worker is lost
/// runs again elsewhere, so tasks must be idempotent.
#[derive(Clone, Debug)]
pub struct Broker {
    url: String,
}

impl Broker {
    /// A broker at `url` (`redis://HOST[:PORT][/DB]`, `rediss://` for TLS, `redis+unix:///PATH`,
    /// user and password in the URL). Nothing is connected until a run starts.
    pub fn new(url: impl Into<String>) -> Broker {
        Broker { url: url.into() }
    }

    /// Runs `tasks` on the broker's workers, yielding one outcome per task as a pool's
    /// [`map`](crate::Pool::map) does. Inputs are sent with back-pressure: only a bounded
    /// number of jobs are out at once, so an endless iterator runs in constant memory.
    ///
    /// This is the remote form of [`Pool::map`](crate::Pool::map): the same [`Task`], the
    /// same [`Outcome`] items (numbered by `seq` from 1 in input order, in completion order
    /// or in input order with [`RunOptions::keep_order`]), and dropping the iterator early
    /// cancels the run (its workers stop the jobs they run). What differs: the settings a
    /// pool's builder holds come with each run ([`RunOptions`]); an outcome's `pid` is of a
    /// process on the worker's machine, and `worker` is 1; a job may run more than once
    /// (never reported twice), so tasks must be idempotent. There is no
    /// `Backend::Broker`: closures ([`Pool::map_fn`](crate::Pool::map_fn)) and handles cannot
    /// go to another machine, and a pool's workers are its own while a broker's are shared.
    ///
    /// # Examples
    ///
    /// The same loop over a local pool and over workers elsewhere (`weft worker --broker
    /// redis://queue-host` there, or [`serve`](crate::broker::serve) in a program that
    /// registers the task):
    ///
    /// ```no_run
    /// use weft::broker::{Broker, RunOptions};
    /// use weft::tasks::Sum;
    /// use weft::{Outcome, Pool};
    ///
    /// let tasks = || (0..100u64).map(|i| Sum::new(0..i));
    /// let mut pool = Pool::builder().keep_order(true).build()?;
    /// let here: Vec<Outcome<u128>> = pool.map(tasks()).collect();
    ///
    /// let broker = Broker::new("redis://queue-host:6379");
    /// let there: Vec<Outcome<u128>> = broker
    ///     .map(tasks(), &RunOptions::default().keep_order(true))?
    ///     .collect();
    ///
    /// let sums = |v: Vec<Outcome<u128>>| v.into_iter().map(|o| (o.seq, o.ok())).collect::<Vec<_>>();
    /// assert_eq!(sums(here), sums(there));
    /// # Ok::<(), weft::Error>(())
    /// ```
    ///
    /// # Errors
    /// The broker cannot be reached.
    pub fn map<'a, T, I>(&self, tasks: I, opts: &RunOptions) -> Result<Remote<'a, T>, Error>
    where
        T: Task,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
    {
        let inputs = tasks.into_iter().map(|t| match crate::wire::encode(&t) {
            Ok(bytes) => Pending::Ready(bytes),
            Err(e) => Pending::Bad(format!("cannot encode {} input: {e}", T::NAME)),
        });
        let sub = Submission::start(&self.url, T::NAME, opts, Box::new(inputs))
            .map_err(|e| Error::new(ErrorKind::Io, e))?;
        Ok(Remote {
            sub,
            _task: PhantomData,
        })
    }
}

/// The outcomes of [`Broker::map`].
pub struct Remote<'a, T: Task> {
    sub: Submission<'a>,
    _task: PhantomData<fn() -> T>,
}

impl<T: Task> Remote<'_, T> {
    /// Why the run stopped early (the broker lost it or could not be reached), if it did:
    /// its jobs not reported by then were reported failed with this message.
    pub fn error(&self) -> Option<&str> {
        self.sub.fatal.as_deref()
    }
    /// Results that arrived for a job already reported, and were dropped.
    pub fn duplicates(&self) -> u64 {
        self.sub.duplicates
    }
    /// The run's id on the broker.
    pub fn id(&self) -> &str {
        &self.sub.run
    }
}

impl<T: Task> Iterator for Remote<'_, T> {
    type Item = Outcome<T::Output>;
    fn next(&mut self) -> Option<Self::Item> {
        let o = self.sub.next()?;
        Some(
            o.map(|bytes| match crate::wire::decode::<T::Output>(&bytes) {
                Ok(v) => Status::Ok(v),
                Err(e) => Status::Failed(format!("cannot decode {} output: {e}", T::NAME)),
            }),
        )
    }
}

/// `keep_order`'s buffer: the next seq due, and the outcomes that came before it.
type Reorder = (u64, BTreeMap<u64, Outcome<Vec<u8>>>);

/// How far the run has been told to stop (the command line's signals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stopping {
    No,
    /// Send nothing more; collect what was sent.
    Drain,
    /// Stop now: the jobs out are cancelled.
    Now,
}

/// Which halves of a run this process does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Submits the inputs and collects the outcomes.
    Both,
    /// Submits the inputs and leaves (`weft submit`): outcomes of jobs that never reach a
    /// worker go to the results stream too, for the collector.
    Submit,
    /// Collects the outcomes of a run submitted elsewhere (`weft collect`), from the cursor
    /// the last collector left.
    Collect,
}

/// The most jobs out at once, whatever the batch size.
const MAX_OUT: u64 = 1 << 18;
/// The most jobs in one entry.
const MAX_BATCH: usize = 4096;
/// An entry holds about this much work, once job runtimes are known.
const ENTRY_WORK_US: f64 = 20_000.0;
/// An entry stops growing past this many bytes of input.
const ENTRY_BYTES: usize = 256 * 1024;

/// One run on the broker, type-erased: bincode inputs in, bincode outputs out.
pub(crate) struct Submission<'a> {
    link: Link,
    pub(crate) run: String,
    kind: String,
    queue: String,
    results: String,
    run_key: String,
    opts: RunOptions,
    source: Box<dyn Iterator<Item = Pending<Vec<u8>>> + 'a>,
    input_done: bool,
    next_seq: u64,
    sent: Bits,
    seen: Bits,
    /// Jobs sent and not yet reported.
    out: u64,
    ready: VecDeque<Outcome<Vec<u8>>>,
    reorder: Option<Reorder>,
    cursor: String,
    batch: usize,
    mean_us: Option<f64>,
    no_worker_since: Option<Instant>,
    last_watch: Instant,
    /// Why jobs can no longer run (no worker of the kind): later ones fail at once.
    dead: Option<String>,
    pub(crate) fatal: Option<String>,
    pub(crate) duplicates: u64,
    finished: bool,
    closed: bool,
    pub(crate) stop: Option<Box<dyn Fn() -> Stopping + 'a>>,
    mode: Mode,
    /// Result entries handed on but not yet marked collected on the broker: they are, once
    /// the caller asks for more (it has printed them by then). A collector's go through
    /// `unwritten` and `written` instead.
    uncommitted: Option<(Vec<String>, u64)>,
    /// A collector's last batch: its intent is stored and its output written, and it is
    /// committed with the next intent, or by [`Submission::confirm`].
    written: Option<(Vec<String>, u64)>,
    /// The intent the last collector stored and did not confirm (it was killed), until
    /// [`Submission::settle`] says whether its batch was written.
    intent: Option<Intent>,
    /// A collector's result entries read and not yet written, oldest first: each id, and
    /// how many outcomes it gave.
    unwritten: VecDeque<(String, u64)>,
    /// How many of those were handed to the caller.
    handed: usize,
    /// Outcomes collected, by this process and those before it (`weft collect`).
    collected: u64,
    /// How many jobs the run has, once its input has ended.
    sealed: Option<u64>,
    /// Outcomes made here that a collector elsewhere must see (`Mode::Submit`).
    local: Vec<Done>,
}

impl<'a> Submission<'a> {
    pub(crate) fn start(
        url: &str,
        kind: &str,
        opts: &RunOptions,
        source: Box<dyn Iterator<Item = Pending<Vec<u8>>> + 'a>,
    ) -> Result<Submission<'a>, String> {
        let patience = proto::knob("WEFT_BROKER_RECONNECT_MS", Duration::from_secs(30));
        let mut link = Link::open(url, patience)?;
        let run = {
            let r = crate::sys::random_bytes::<8>().unwrap_or([0; 8]);
            r.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let queue = proto::queue_key(kind);
        let run_key = proto::run_key(&run);
        link.run(|con| {
            proto::ensure_group(con, &queue)?;
            redis::pipe()
                .cmd("HSET")
                .arg(&run_key)
                .arg("state")
                .arg("running")
                .arg("kind")
                .arg(kind)
                .arg("submitted")
                .arg(0)
                .arg("done")
                .arg(0)
                .ignore()
                .cmd("EXPIRE")
                .arg(&run_key)
                .arg(7 * 24 * 3600)
                .ignore()
                .query::<()>(con)
        })?;
        Ok(Submission::start_on(link, run, kind, opts, source))
    }

    fn start_on(
        link: Link,
        run: String,
        kind: &str,
        opts: &RunOptions,
        source: Box<dyn Iterator<Item = Pending<Vec<u8>>> + 'a>,
    ) -> Submission<'a> {
        let queue = proto::queue_key(kind);
        let run_key = proto::run_key(&run);
        Submission {
            link,
            results: proto::results_key(&run),
            run,
            kind: kind.to_string(),
            queue,
            run_key,
            opts: opts.clone(),
            source,
            input_done: false,
            next_seq: 1,
            sent: Bits::default(),
            seen: Bits::default(),
            out: 0,
            ready: VecDeque::new(),
            reorder: opts.keep_order.then(|| (1, BTreeMap::new())),
            cursor: "0-0".into(),
            batch: 1,
            mean_us: None,
            no_worker_since: None,
            last_watch: Instant::now(),
            dead: None,
            fatal: None,
            duplicates: 0,
            finished: false,
            closed: false,
            stop: None,
            mode: Mode::Both,
            uncommitted: None,
            written: None,
            intent: None,
            unwritten: VecDeque::new(),
            handed: 0,
            collected: 0,
            sealed: None,
            local: Vec::new(),
        }
    }

    /// Only submits (`weft submit`): the outcomes are left for `weft collect`.
    pub(crate) fn submit_only(&mut self) {
        self.mode = Mode::Submit;
        self.reorder = None;
    }

    /// Collects run `run`, submitted elsewhere, from where the last collector stopped.
    pub(crate) fn attach(url: &str, run: &str) -> Result<Submission<'a>, String> {
        let patience = proto::knob("WEFT_BROKER_RECONNECT_MS", Duration::from_secs(30));
        let mut link = Link::open(url, patience)?;
        let run_key = proto::run_key(run);
        let hash: std::collections::HashMap<String, String> =
            link.run(|con| redis::cmd("HGETALL").arg(&run_key).query(con))?;
        let Some(kind) = hash.get("kind") else {
            return Err(format!(
                "no run {run} on the broker (never submitted, or finished an hour ago or more)"
            ));
        };
        let mut sub = Submission::start_on(
            link,
            run.to_string(),
            kind,
            &RunOptions::default(),
            Box::new(std::iter::empty()),
        );
        sub.mode = Mode::Collect;
        sub.input_done = true;
        sub.cursor = hash.get("cursor").cloned().unwrap_or_else(|| "0-0".into());
        sub.collected = hash
            .get("collected")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        sub.sealed = hash.get("sealed").and_then(|c| c.parse().ok());
        sub.intent = hash.get("pending").and_then(|p| Intent::parse(p));
        if hash.get("state").map(String::as_str) == Some("done") {
            sub.finished = true;
            sub.closed = true;
        }
        Ok(sub)
    }

    /// The kind of task the run's jobs are.
    pub(crate) fn kind(&self) -> &str {
        &self.kind
    }

    /// Reports an outcome, through the reorder buffer with `keep_order`.
    fn push(&mut self, o: Outcome<Vec<u8>>) {
        if self.mode == Mode::Submit {
            self.local.push(Done {
                seq: o.seq,
                ended: o.status.into(),
                attempt: o.attempt,
                pid: o.pid,
                started_ms: None,
                runtime_us: 0,
            });
            return;
        }
        match &mut self.reorder {
            None => self.ready.push_back(o),
            Some((next, held)) => {
                held.insert(o.seq, o);
                while let Some(o) = held.remove(next) {
                    *next += 1;
                    self.ready.push_back(o);
                }
            }
        }
    }

    fn outcome(seq: u64, status: Status<Vec<u8>>) -> Outcome<Vec<u8>> {
        Outcome {
            seq,
            status,
            attempt: 1,
            worker: 0,
            pid: 0,
            started: None,
            runtime: Duration::ZERO,
        }
    }

    /// Sends entries while fewer jobs than the cap are out and inputs are ready.
    fn submit(&mut self) -> Result<(), String> {
        let cap = (self.batch as u64 * 64).clamp(256, MAX_OUT);
        let mut entries: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut waiting = false;
        while !self.input_done && !waiting && self.out < cap && entries.len() < 16 {
            let mut jobs = Vec::new();
            let mut bytes = 0;
            while jobs.len() < self.batch && bytes < ENTRY_BYTES {
                let Some(item) = self.source.next() else {
                    self.input_done = true;
                    break;
                };
                let seq = self.next_seq;
                match item {
                    Pending::Wait => {
                        waiting = true;
                        break;
                    }
                    Pending::Ready(input) => {
                        self.next_seq += 1;
                        if input.len() > PAYLOAD_LIMIT {
                            let why = format!(
                                "its input of {} bytes is above the broker's limit of {} KiB",
                                input.len(),
                                PAYLOAD_LIMIT / 1024
                            );
                            self.push(Self::outcome(seq, Status::Failed(why)));
                        } else if let Some(why) = &self.dead {
                            let why = why.clone();
                            self.push(Self::outcome(seq, Status::Failed(why)));
                        } else {
                            bytes += input.len();
                            jobs.push(Job { seq, input });
                        }
                    }
                    Pending::Bad(why) => {
                        self.next_seq += 1;
                        self.push(Self::outcome(seq, Status::Failed(why)));
                    }
                    Pending::Skip(why) => {
                        self.next_seq += 1;
                        self.push(Self::outcome(seq, Status::Skipped(why)));
                    }
                }
            }
            if jobs.is_empty() {
                break;
            }
            for j in &jobs {
                self.sent.set(j.seq);
            }
            let n = jobs.len();
            self.out += n as u64;
            let batch = Batch {
                run: self.run.clone(),
                kind: self.kind.clone(),
                timeout_ms: self.opts.timeout.map(|t| t.as_millis() as u64),
                attempts: self.opts.attempts,
                deliveries: self.opts.attempts.max(3),
                jobs,
            };
            entries.push((crate::wire::encode(&batch)?, n));
        }
        let local = if self.local.is_empty() {
            None
        } else {
            let jobs = std::mem::take(&mut self.local);
            let n = jobs.len();
            let r = proto::Results {
                worker: "submitter".into(),
                jobs,
            };
            Some((crate::wire::encode(&r)?, n))
        };
        if entries.is_empty() && local.is_none() {
            return Ok(());
        }
        let (queue, run, run_key, results) = (&self.queue, &self.run, &self.run_key, &self.results);
        let total: usize = entries.iter().map(|e| e.1).sum();
        self.link.run(|con| {
            let mut p = redis::pipe();
            if let Some((b, n)) = &local {
                p.cmd("XADD")
                    .arg(results)
                    .arg("*")
                    .arg("b")
                    .arg(b.as_slice())
                    .ignore();
                p.cmd("EXPIRE").arg(results).arg(7 * 24 * 3600).ignore();
                p.cmd("HINCRBY").arg(run_key).arg("done").arg(*n).ignore();
            }
            for (b, _) in &entries {
                p.cmd("XADD")
                    .arg(queue)
                    .arg("*")
                    .arg("r")
                    .arg(run)
                    .arg("b")
                    .arg(b.as_slice())
                    .ignore();
            }
            p.cmd("HINCRBY")
                .arg(run_key)
                .arg("submitted")
                .arg(total)
                .ignore();
            p.query::<()>(con)
        })
    }

    /// Reads the results that came, waiting up to `block` for the first.
    fn collect(&mut self, block: Duration) -> Result<usize, String> {
        let (results, cursor) = (&self.results, &self.cursor);
        let read: redis::Value = self.link.run(|con| {
            redis::cmd("XREAD")
                .arg("COUNT")
                .arg(64)
                .arg("BLOCK")
                .arg(block.as_millis() as u64)
                .arg("STREAMS")
                .arg(results)
                .arg(cursor)
                .query(con)
        })?;
        let mut ids = Vec::new();
        let before = self.collected;
        for stream in proto::items(&read) {
            let [_, entries] = proto::items(stream) else {
                continue;
            };
            for e in proto::items(entries) {
                let [id, fields] = proto::items(e) else {
                    continue;
                };
                let Some(id) = proto::text(id) else { continue };
                let mut payload = None;
                for pair in proto::items(fields).chunks(2) {
                    if let [k, v] = pair
                        && proto::bytes(k) == Some(b"b")
                    {
                        payload = proto::bytes(v);
                    }
                }
                let at = self.collected;
                if let Some(r) = payload.and_then(|p| crate::wire::decode::<proto::Results>(p).ok())
                {
                    for d in r.jobs {
                        self.take(d);
                    }
                }
                if self.mode == Mode::Collect {
                    self.unwritten.push_back((id.clone(), self.collected - at));
                }
                ids.push(id);
            }
        }
        let Some(last) = ids.last().cloned() else {
            return Ok(0);
        };
        self.cursor = last;
        let n = ids.len();
        let took = self.collected - before;
        if self.mode != Mode::Collect {
            self.uncommitted = Some((ids, took));
        }
        Ok(n)
    }

    /// Marks the result entries handed on as collected: called once the caller has taken
    /// them (it asks for the next outcome only then). A collector (`weft collect`) commits
    /// with its intents instead ([`Submission::intend`]), so that one killed between printing
    /// and committing is found out when started again.
    fn commit(&mut self) -> Result<(), String> {
        let Some((ids, took)) = self.uncommitted.take() else {
            return Ok(());
        };
        let (results, run_key) = (&self.results, &self.run_key);
        self.link.run(|con| {
            let mut p = redis::pipe();
            Self::commit_cmds(&mut p, results, run_key, &ids, took);
            p.query::<()>(con)
        })
    }

    /// The collector's next read of the results stream: the outcomes of each entry read (up
    /// to 64), or `None` once every job of the run is collected, the collector is stopped, or
    /// the run failed ([`Submission::fatal`] says why). The caller prints the entries in
    /// batches of one or more, each after [`intend`](Submission::intend), and asks for the
    /// next read only once all are written.
    pub(crate) fn next_batch(&mut self) -> Option<Vec<Vec<Outcome<Vec<u8>>>>> {
        debug_assert_eq!(self.mode, Mode::Collect);
        loop {
            if self.handed < self.unwritten.len() {
                let entries = self
                    .unwritten
                    .iter()
                    .skip(self.handed)
                    .map(|&(_, took)| {
                        let took = (took as usize).min(self.ready.len());
                        self.ready.drain(..took).collect()
                    })
                    .collect();
                self.handed = self.unwritten.len();
                return Some(entries);
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.step() {
                // Nothing is out of a collector's hands: what it has not read stays on the
                // broker for the next one.
                self.fatal = Some(e);
                self.closed = true;
                self.finished = true;
            }
        }
    }

    /// Stores the collector's intent to write a batch: the next `entries` entries of the
    /// last read (`mark` says where they go, for the next collector to check), in one round
    /// trip with the commit of the batch before, whose write has ended.
    pub(crate) fn intend(&mut self, entries: usize, mark: &str) -> Result<(), String> {
        let n = entries.min(self.unwritten.len());
        if n == 0 {
            return Ok(());
        }
        let (ids, took) = self
            .unwritten
            .drain(..n)
            .inspect(|_| self.handed = self.handed.saturating_sub(1))
            .fold((Vec::new(), 0), |(mut ids, took), (id, t)| {
                ids.push(id);
                (ids, took + t)
            });
        let value = Intent::encode(&ids, took, mark);
        let prev = self.written.take();
        let (results, run_key) = (&self.results, &self.run_key);
        self.link.run(|con| {
            let mut p = redis::pipe();
            p.atomic();
            if let Some((ids, took)) = &prev {
                Self::commit_cmds(&mut p, results, run_key, ids, *took);
            }
            p.cmd("HSET")
                .arg(run_key)
                .arg("pending")
                .arg(&value)
                .ignore();
            p.query::<()>(con)
        })?;
        self.written = Some((ids, took));
        Ok(())
    }

    /// Commits the collector's last batch, written whole, and clears its intent.
    pub(crate) fn confirm(&mut self) -> Result<(), String> {
        let Some((ids, took)) = self.written.take() else {
            return Ok(());
        };
        let (results, run_key) = (&self.results, &self.run_key);
        self.link.run(|con| {
            let mut p = redis::pipe();
            p.atomic();
            Self::commit_cmds(&mut p, results, run_key, &ids, took);
            p.cmd("HDEL").arg(run_key).arg("pending").ignore();
            p.query::<()>(con)
        })
    }

    /// The intent the last collector stored and did not confirm: its caller's mark, and how
    /// many outcomes its batch holds.
    pub(crate) fn intent(&self) -> Option<(&str, u64)> {
        self.intent.as_ref().map(|i| (i.mark.as_str(), i.took))
    }

    /// Settles the last collector's intent: a batch `written` whole is committed and this
    /// collector goes on after it; any other is read (and printed) again.
    pub(crate) fn settle(&mut self, written: bool) -> Result<(), String> {
        let Some(intent) = self.intent.take() else {
            return Ok(());
        };
        if !written {
            // Its intent stays until this collector's own intent for the batch replaces it.
            return Ok(());
        }
        let Some(last) = intent.ids.last().cloned() else {
            return Ok(());
        };
        self.cursor = last;
        self.collected += intent.took;
        self.written = Some((intent.ids, intent.took));
        self.confirm()
    }

    /// The commands that mark entries `ids` (`took` outcomes) collected: the cursor moves
    /// past the last of them, and they are deleted.
    fn commit_cmds(
        p: &mut redis::Pipeline,
        results: &str,
        run_key: &str,
        ids: &[String],
        took: u64,
    ) {
        let Some(last) = ids.last() else { return };
        p.cmd("HSET")
            .arg(run_key)
            .arg("cursor")
            .arg(last)
            .ignore()
            .cmd("HINCRBY")
            .arg(run_key)
            .arg("collected")
            .arg(took)
            .ignore()
            .cmd("XDEL")
            .arg(results)
            .arg(ids)
            .ignore();
    }

    /// Takes in one job's result: the first per job is reported, later ones are counted.
    fn take(&mut self, d: Done) {
        let known = self.mode == Mode::Collect || self.sent.get(d.seq);
        if !known || self.seen.get(d.seq) {
            self.duplicates += 1;
            return;
        }
        self.seen.set(d.seq);
        self.out = self.out.saturating_sub(1);
        self.collected += 1;
        let us = d.runtime_us as f64;
        self.mean_us = Some(self.mean_us.map_or(us, |m| m * 0.9 + us * 0.1));
        let m = self.mean_us.unwrap_or(us).max(1.0);
        self.batch = ((ENTRY_WORK_US / m) as usize).clamp(1, MAX_BATCH);
        self.push(Outcome {
            seq: d.seq,
            status: d.ended.into(),
            attempt: d.attempt,
            worker: 1,
            pid: d.pid,
            started: d
                .started_ms
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
            runtime: Duration::from_micros(d.runtime_us),
        });
    }

    /// Every second while jobs are out: is the run still on the broker, and is any worker
    /// of its kind alive?
    fn watch(&mut self) -> Result<(), String> {
        if self.last_watch.elapsed() < Duration::from_millis(500) {
            return Ok(());
        }
        self.last_watch = Instant::now();
        let run_key = self.run_key.clone();
        let workers = proto::workers_key(&self.kind);
        let (state, sealed, live): (Option<String>, Option<u64>, i64) = self.link.run(|con| {
            let (state, sealed): (Option<String>, Option<u64>) = redis::cmd("HMGET")
                .arg(&run_key)
                .arg("state")
                .arg("sealed")
                .query(con)?;
            let live: i64 = redis::Script::new(proto::LIVE).key(&workers).invoke(con)?;
            Ok((state, sealed, live))
        })?;
        self.sealed = sealed;
        match state.as_deref() {
            Some("running") => {}
            None => {
                return Err(format!(
                    "the broker lost run {}: its keys are gone (was Redis restarted without \
                     persistence?)",
                    self.run
                ));
            }
            Some(other) => return Err(format!("run {} was {other} on the broker", self.run)),
        }
        // Jobs wait for a worker: those out of a whole run, or, for a collector, those not
        // collected yet (all of them until the submitter has sealed the run).
        let waiting = match self.mode {
            Mode::Both => self.out > 0,
            Mode::Collect => self.sealed.is_none_or(|n| self.collected < n),
            Mode::Submit => false,
        };
        if live > 0 || !waiting {
            self.no_worker_since = None;
            return Ok(());
        }
        let since = *self.no_worker_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.opts.grace {
            let hint = if self.kind == "exec" {
                " (workers run commands only with --allow-commands)"
            } else {
                ""
            };
            let why = format!(
                "no worker registers task kind {} (none alive for {:.0?})",
                self.kind, self.opts.grace
            );
            let why = format!("{why}{hint}");
            if self.mode == Mode::Collect {
                // A collector only reads: the run stays on the broker for a worker to come.
                return Err(format!(
                    "{why}: run {} stays on the broker; start a worker and collect it again",
                    self.run
                ));
            }
            self.fail_out(&why);
            self.dead = Some(why);
        }
        Ok(())
    }

    /// Reports every job out as failed for `why`.
    fn fail_out(&mut self, why: &str) {
        for seq in 1..self.next_seq {
            if self.sent.get(seq) && !self.seen.get(seq) {
                self.seen.set(seq);
                self.push(Self::outcome(seq, Status::Failed(why.to_string())));
            }
        }
        self.out = 0;
    }

    /// Marks the run over on the broker: its keys expire.
    fn close(&mut self, state: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        let (run_key, results) = (&self.run_key, &self.results);
        // A short patience: a broker that is gone is not waited for again.
        let _ = self.link.run(|con| {
            redis::pipe()
                .cmd("HSET")
                .arg(run_key)
                .arg("state")
                .arg(state)
                .ignore()
                .cmd("EXPIRE")
                .arg(run_key)
                .arg(3600)
                .ignore()
                .cmd("DEL")
                .arg(results)
                .ignore()
                .query::<()>(con)
        });
    }

    fn step(&mut self) -> Result<(), String> {
        if self.mode != Mode::Collect {
            self.commit()?;
        }
        let stopping = self.stop.as_ref().map_or(Stopping::No, |s| s());
        match stopping {
            // A collector stopped leaves the run to the next one, its last batch committed.
            Stopping::Now if self.mode == Mode::Collect => {
                self.confirm()?;
                self.closed = true;
                self.finished = true;
                return Ok(());
            }
            Stopping::Now => {
                self.close("cancelled");
                self.finished = true;
                return Ok(());
            }
            Stopping::Drain => self.input_done = true,
            Stopping::No => {}
        }
        match self.mode {
            Mode::Both => self.step_both(),
            Mode::Submit => self.step_submit(),
            Mode::Collect => self.step_collect(),
        }
    }

    fn step_both(&mut self) -> Result<(), String> {
        self.submit()?;
        let pending = self.reorder.as_ref().is_some_and(|(_, h)| !h.is_empty());
        if self.input_done && self.out == 0 && !pending {
            self.close("done");
            self.finished = true;
            return Ok(());
        }
        if !self.ready.is_empty() {
            return Ok(());
        }
        if self.out > 0 {
            // Short waits while inputs may come or a stop may be asked for.
            let block = if self.input_done { 200 } else { 10 };
            self.collect(Duration::from_millis(block))?;
        } else if !self.input_done {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.ready.is_empty() {
            self.watch()?;
        }
        Ok(())
    }

    fn step_submit(&mut self) -> Result<(), String> {
        self.submit()?;
        if self.input_done && self.local.is_empty() {
            let (run_key, total) = (&self.run_key, self.next_seq - 1);
            self.link.run(|con| {
                redis::cmd("HSET")
                    .arg(run_key)
                    .arg("sealed")
                    .arg(total)
                    .query::<()>(con)
            })?;
            self.closed = true;
            self.finished = true;
            return Ok(());
        }
        // Jobs out are those submitted and not yet done by a worker: waits for workers, not
        // for a collector, so a million inputs never sit here or on the broker at once.
        let run_key = &self.run_key;
        let done: u64 = self.link.run(|con| {
            redis::cmd("HGET")
                .arg(run_key)
                .arg("done")
                .query::<Option<u64>>(con)
                .map(Option::unwrap_or_default)
        })?;
        let submitted = self.sent.count();
        self.out = submitted.saturating_sub(done);
        std::thread::sleep(Duration::from_millis(10));
        self.watch()
    }

    fn step_collect(&mut self) -> Result<(), String> {
        if self.sealed.is_some_and(|n| self.collected >= n) {
            self.confirm()?;
            self.close("done");
            self.finished = true;
            return Ok(());
        }
        let read = self.collect(Duration::from_millis(500))?;
        if read == 0 {
            // Nothing came: the last batch is confirmed now rather than with the next one,
            // which may be long in coming.
            self.confirm()?;
        }
        if self.ready.is_empty() {
            self.last_watch = Instant::now() - Duration::from_secs(1);
            self.watch()?;
        }
        Ok(())
    }
}

impl Iterator for Submission<'_> {
    type Item = Outcome<Vec<u8>>;

    fn next(&mut self) -> Option<Outcome<Vec<u8>>> {
        loop {
            if let Some(o) = self.ready.pop_front() {
                return Some(o);
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.step() {
                // Loud, and each job out is still reported once: failed, saying why.
                let why = format!("the run failed on the broker: {e}");
                self.fail_out(&why);
                if let Some((_, held)) = &mut self.reorder {
                    let rest: Vec<_> = std::mem::take(held).into_values().collect();
                    self.ready.extend(rest);
                }
                self.fatal = Some(e);
                // Not closed: the broker is gone or has lost the run; waiting for it again
                // would only delay the report.
                self.closed = true;
                self.finished = true;
            }
        }
    }
}

impl Drop for Submission<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.close("cancelled");
        }
    }
}

/// A collector's intent, stored in the run's hash (field `pending`) before it writes a batch:
/// the batch's result entries, how many outcomes they hold, and the caller's mark (where the
/// batch goes: see `cli/landing.rs`). Stored as `TOOK IDS MARK`, the ids joined by commas.
struct Intent {
    ids: Vec<String>,
    took: u64,
    mark: String,
}

impl Intent {
    fn encode(ids: &[String], took: u64, mark: &str) -> String {
        format!("{took} {} {mark}", ids.join(","))
    }

    fn parse(value: &str) -> Option<Intent> {
        let mut parts = value.splitn(3, ' ');
        let took = parts.next()?.parse().ok()?;
        let ids = parts.next()?.split(',').map(str::to_string).collect();
        let mark = parts.next().unwrap_or_default().to_string();
        Some(Intent { ids, took, mark })
    }
}

/// A set of job seqs: a bit each, so a million jobs take 125 KiB.
#[derive(Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn set(&mut self, i: u64) {
        let w = (i / 64) as usize;
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (i % 64);
    }
    fn count(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }
    fn get(&self, i: u64) -> bool {
        self.0
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// What `weft status` shows of a run on a broker.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RunStatus {
    /// The run's id.
    pub run: String,
    /// `running`, `done` or `cancelled`.
    pub state: String,
    /// Its task kind.
    pub kind: String,
    /// Jobs submitted so far.
    pub submitted: u64,
    /// The number of jobs, once the input has ended.
    pub sealed: Option<u64>,
    /// Jobs whose results are written (ok or not).
    pub done: u64,
    /// Of those, jobs that did not succeed.
    pub failed: u64,
    /// Of those, jobs dead-lettered.
    pub dead: u64,
    /// Jobs whose outcomes a collector printed.
    pub collected: u64,
    /// Live workers that run the kind.
    pub workers: i64,
    /// Entries of the kind held by each worker (all runs of the kind).
    pub held: Vec<(String, u64)>,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "run {}: {}, task kind {}",
            self.run, self.state, self.kind
        )?;
        let input = match self.sealed {
            Some(n) => format!("{n} in all"),
            None => "input still coming".into(),
        };
        writeln!(
            f,
            "jobs: {} submitted ({input}), {} queued or running, {} done ({} failed, {} \
             dead-lettered), {} collected",
            self.submitted,
            self.submitted.saturating_sub(self.done),
            self.done,
            self.failed,
            self.dead,
            self.collected
        )?;
        write!(f, "workers running {}: {} alive", self.kind, self.workers)?;
        for (w, n) in &self.held {
            write!(f, "\n  {w} holds {n} entries")?;
        }
        Ok(())
    }
}

/// How many workers of task kind `kind` are alive on the broker at `url`.
pub(crate) fn live_workers(url: &str, kind: &str) -> Result<i64, String> {
    let mut link = Link::open(url, Duration::from_secs(5))?;
    let workers = proto::workers_key(kind);
    link.run(|con| redis::Script::new(proto::LIVE).key(&workers).invoke(con))
}

/// The state of run `run` on the broker at `url`.
///
/// # Errors
/// The broker cannot be reached, or has no such run.
pub fn status(url: &str, run: &str) -> Result<RunStatus, Error> {
    let io = |m: String| Error::new(ErrorKind::Io, m);
    let mut link = Link::open(url, Duration::from_secs(5)).map_err(io)?;
    let run_key = proto::run_key(run);
    let hash: std::collections::HashMap<String, String> = link
        .run(|con| redis::cmd("HGETALL").arg(&run_key).query(con))
        .map_err(io)?;
    let Some(kind) = hash.get("kind").cloned() else {
        return Err(io(format!("no run {run} on the broker")));
    };
    let num = |k: &str| hash.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
    let (queue, workers_key) = (proto::queue_key(&kind), proto::workers_key(&kind));
    let (workers, pending): (i64, redis::Value) = link
        .run(|con| {
            let live = redis::Script::new(proto::LIVE)
                .key(&workers_key)
                .invoke(con)?;
            let pending = redis::cmd("XPENDING")
                .arg(&queue)
                .arg(proto::GROUP)
                .query(con)
                .unwrap_or(redis::Value::Nil);
            Ok((live, pending))
        })
        .map_err(io)?;
    let held = match proto::items(&pending) {
        [_, _, _, consumers] => proto::items(consumers)
            .iter()
            .filter_map(|c| match proto::items(c) {
                [name, n] => Some((proto::text(name)?, proto::int(n)? as u64)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(RunStatus {
        run: run.to_string(),
        state: hash.get("state").cloned().unwrap_or_default(),
        kind,
        submitted: num("submitted"),
        sealed: hash.get("sealed").and_then(|v| v.parse().ok()),
        done: num("done"),
        failed: num("failed"),
        dead: num("dead"),
        collected: num("collected"),
        workers,
        held,
    })
}
