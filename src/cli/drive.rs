//! The one drive loop, whatever the kind of job: the input read on a thread of its own and
//! handed to the pool, `--resume` skips, each outcome printed then logged and counted against
//! `--halt`, stop signals, and the exit status. A new option of the run is read here once;
//! what differs between tasks and commands is `kind.rs`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

use super::control::{self, Control, Flow};
use super::gate::{self, Gate};
use super::kind::{JobKind, check_shell};
use super::output::Printer;
use super::plan::{Kind, Plan, Run};
use super::progress::Progress;
use crate::pool::Pending;
use crate::process::watchdog::Watchdog;
use crate::tasks::Block;
use crate::{Registry, Status};

/// Runs `plan`; returns the exit status.
pub(super) fn run(registry: &Registry, plan: Plan) -> Result<i32, String> {
    settle_process(&plan.run)?;
    match plan.kind {
        Kind::Task(tasks) => drive(registry, plan.run, &tasks),
        Kind::Command(commands) if commands.dry_run => match &plan.run.piping {
            Some(piping) => commands.dry_run_blocks(piping, plan.run.pool.workers),
            None => commands.dry_run(&plan.run.shape, plan.run.pool.workers),
        },
        Kind::Command(commands) => {
            check_shell()?;
            // Started before any other thread: it marks this process's environment for the
            // jobs. Declared before the pool, so that it sweeps after the pool has stopped
            // every job.
            let _watchdog = Watchdog::start(&crate::process::worker_program(None))
                .map_err(|e| format!("cannot start the watchdog that kills leftover jobs: {e}"))?;
            drive(registry, plan.run, &commands)
        }
    }
}

/// What `--tmpdir` and `--nice` change in this process, for the workers and commands it starts:
/// done first, while it has one thread (the environment is changed safely only then, and a
/// Linux thread's niceness passes to the threads and processes it starts afterwards).
fn settle_process(run: &Run) -> Result<(), String> {
    if let Some(dir) = &run.tmpdir {
        crate::sys::set_env_if_single_threaded("TMPDIR", dir.as_os_str()).map_err(|n| {
            format!("--tmpdir: cannot set TMPDIR with {n} threads running: set TMPDIR instead")
        })?;
    }
    if let Some(n) = run.nice {
        crate::sys::set_nice(n).map_err(|e| format!("--nice {n}: {e}"))?;
    }
    Ok(())
}

/// Runs every job of `run` as `kind` makes them, printing and logging each outcome as the
/// pool yields it.
fn drive<K: JobKind>(registry: &Registry, run: Run, kind: &K) -> Result<i32, String> {
    let stop = Arc::new(control::Stop::default());
    let broker = run.broker.clone();
    if broker.is_some() && run.piping.is_some() {
        return Err("--pipe is not supported with --broker".into());
    }
    let log = run.log.open()?;
    let mut pool = run.pool.build(registry)?;
    control::watch_signals(stop.clone(), pool.waker())?;
    let mut ctl = Control::new(log, run.halt, stop.clone());
    // What each running job's outcome is printed and logged with, by seq.
    let kept = RefCell::new(HashMap::new());
    let mut feed = match run.piping {
        // A few blocks per worker at most wait to be handed out: memory stays bounded by the
        // block size, whatever the input's.
        Some(piping) => Feed::start(
            move || {
                piping
                    .open()
                    .map(|b| Box::new(b.map(|b| b.map(Job::Block))) as _)
            },
            run.pool.workers.max(1),
            pool.waker(),
            stop.clone(),
        ),
        None => {
            let (shape, shuf) = (run.shape, run.shuf);
            Feed::start(
                move || {
                    shape.open().map(|jobs| {
                        let jobs: Box<dyn Iterator<Item = _>> = if shuf {
                            Box::new(shuffled(jobs))
                        } else {
                            Box::new(jobs)
                        };
                        Box::new(jobs.map(|j| j.map(Job::Args))) as _
                    })
                },
                1024,
                pool.waker(),
                stop.clone(),
            )
        }
    };
    let failed_input = feed.error.clone();
    let total = feed.total.clone();
    let mut seq = 0u64;
    let delay = std::rc::Rc::new(std::cell::Cell::new(run.limits.delay));
    let mut gate = run
        .limits
        .any()
        .then(|| Gate::new(run.limits, delay.clone(), pool.waker()));
    let feed = std::iter::from_fn(move || {
        let Some(gate) = &mut gate else {
            return feed.next();
        };
        if !gate.open() {
            return Some(None);
        }
        let next = feed.next();
        if matches!(next, Some(Some(_))) {
            gate.started();
        }
        next
    });
    let inputs = feed.map(|record| {
        let Some(record) = record else {
            return Pending::Wait;
        };
        seq += 1;
        if run.log.done_before(seq) {
            return Pending::Skip(RESUMED.into());
        }
        let (keep, job) = match record {
            Job::Args(record) => kind.job(record, seq),
            Job::Block(block) => kind.block(block, seq),
        };
        kept.borrow_mut().insert(seq, keep);
        job
    });
    let progress = Progress::new(run.progress, run.force_progress, total.clone());
    let mut printer = Printer::new(run.style, kind.what(), progress).with_book(run.book);
    let mut command = Vec::new();
    #[cfg(feature = "broker")]
    let fatal = std::rc::Rc::new(std::cell::Cell::new(None));
    #[cfg(feature = "broker")]
    let mut submitted = None;
    let mut outcomes = match &broker {
        None => Outs::Local(kind.outcomes(&mut pool, inputs)?),
        #[cfg(feature = "broker")]
        Some(url) => {
            let opts = run.pool.broker_options()?;
            let mut remote = kind.remote(registry, url, &opts, inputs)?;
            let stop = stop.clone();
            remote.watch(move || {
                use crate::broker::Stopping;
                if stop.signal().is_some() {
                    Stopping::Now
                } else if stop.draining() {
                    Stopping::Drain
                } else {
                    Stopping::No
                }
            });
            remote.fatal = fatal.clone();
            if run.submit_only {
                remote.submit_only();
                submitted = Some((remote.id().to_string(), remote.kind().to_string()));
            }
            Outs::Remote(remote)
        }
        #[cfg(not(feature = "broker"))]
        Some(_) => return Err("--broker: this weft was built without the broker feature".into()),
    };
    #[cfg(not(feature = "broker"))]
    let _: &Outs<_, std::iter::Empty<_>> = &outcomes;
    for outcome in outcomes.by_ref() {
        if left_out(&outcome.status) {
            printer.through(outcome.seq);
            continue;
        }
        let keep = kept.borrow_mut().remove(&outcome.seq).unwrap_or_default();
        let finished = kind.finished(&outcome, &keep, &mut command);
        if run.limits.delay_auto {
            gate::adapt(&delay, finished.ok);
        }
        if let Err(e) = kind.print(&mut printer, outcome, &keep) {
            return Ok(printer.write_failed(&e));
        }
        if ctl.finished(&finished, &total)? == Flow::Halt {
            break;
        }
    }
    // Stops whatever still runs (`--halt now`, a signal: dropping the outcomes cancels it)
    // before what waits is printed, as a job passing its output on holds stdout until it
    // ends; first, no job may start passing its output on.
    printer.close_turn();
    drop(outcomes);
    drop(pool);
    let code = conclude(printer, &ctl, &stop, &failed_input, broker.is_some())?;
    #[cfg(feature = "broker")]
    if let Some(e) = fatal.take() {
        return Err(format!(
            "--broker: {e}: the jobs not reported by then are reported failed"
        ));
    }
    #[cfg(feature = "broker")]
    if let (Some((id, kind)), Some(url)) = (submitted, &broker) {
        println!("{id}");
        if crate::broker::live_workers(url, &kind) == Ok(0) {
            say!(
                "weft: note: no worker of task kind {kind} is alive now: the jobs wait on the \
                 broker for one (`weft worker --broker URL`)"
            );
        }
        say!(
            "weft: submitted as run {id}: `weft collect --broker {url} --job {id}` prints the outcomes"
        );
    }
    Ok(code)
}

/// The outcomes of a local run or of a run on a broker: one type for the drive loop, with
/// no virtual call per job.
enum Outs<A, B> {
    Local(A),
    #[cfg_attr(not(feature = "broker"), allow(dead_code))]
    Remote(B),
}

impl<T, A: Iterator<Item = T>, B: Iterator<Item = T>> Iterator for Outs<A, B> {
    type Item = T;
    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        match self {
            Outs::Local(a) => a.next(),
            Outs::Remote(b) => b.next(),
        }
    }
}

/// Why a job the joblog lists as done is not run again.
const RESUMED: &str = "finished in an earlier run (--resume)";

/// Whether a job was left out on purpose (done in an earlier run, or not started because the
/// run drained): it is neither printed, logged nor counted.
fn left_out<T>(status: &Status<T>) -> bool {
    matches!(status, Status::Skipped(why) if why == RESUMED || why == crate::engine::DRAINED)
}

/// The run's exit status, once every outcome is printed.
fn conclude(
    printer: Printer,
    ctl: &Control,
    stop: &control::Stop,
    failed_input: &std::cell::Cell<Option<String>>,
    remote: bool,
) -> Result<i32, String> {
    let code = printer.finish();
    if let Some(e) = failed_input.take() {
        return Err(e);
    }
    if let Some(signal) = stop.signal() {
        // On a broker, the run is cancelled there and each worker stops its jobs when its
        // heartbeat sees that (within a third of the lease).
        let killed = if remote {
            "the run was cancelled; its running jobs are being stopped on their workers"
        } else {
            "running jobs were killed"
        };
        say!(
            "weft: stopped by {}: {killed}; finished ones are printed{}",
            crate::sys::signal_name(signal),
            if ctl.logs() {
                " and logged (--resume runs the rest)"
            } else {
                ""
            }
        );
        return Ok(128 + signal);
    }
    Ok(ctl.halted().unwrap_or(code))
}

/// How many jobs the input holds, counted by the input thread as it reads: the total once it
/// has read the end, so that `--halt ...=N%` and progress know it as soon as the input is
/// read, not only once the last job has been handed out.
#[derive(Clone, Default)]
pub(crate) struct Total(Arc<TotalInner>);

#[derive(Default)]
struct TotalInner {
    read: std::sync::atomic::AtomicU64,
    ended: std::sync::atomic::AtomicBool,
}

impl Total {
    /// The number of jobs, once the input has ended.
    pub(crate) fn get(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        self.0
            .ended
            .load(Ordering::Acquire)
            .then(|| self.0.read.load(Ordering::Acquire))
    }

    /// The number of jobs read so far: the total, or a lower bound while reading goes on.
    pub(crate) fn at_least(&self) -> u64 {
        self.0.read.load(std::sync::atomic::Ordering::Acquire)
    }

    fn add_one(&self) {
        self.0
            .read
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn end(&self) {
        self.0
            .ended
            .store(true, std::sync::atomic::Ordering::Release);
    }
    /// An input of `n` jobs, all read.
    #[cfg(test)]
    pub(crate) fn of(n: u64) -> Total {
        let t = Total::default();
        t.0.read.store(n, std::sync::atomic::Ordering::Release);
        t.end();
        t
    }
}

/// One job's input as the input thread reads it: a record's arguments, or a block of input
/// (`--pipe`).
enum Job {
    Args(Vec<Vec<u8>>),
    Block(Block),
}

/// What the input thread reads jobs from, opened on that thread.
type Jobs = Box<dyn Iterator<Item = io::Result<Job>>>;

/// Jobs read on a thread of their own, so that waiting for input (a slow pipe) never stops
/// the pool from collecting results or timing jobs out. The queue between is bounded.
struct Feed {
    rx: crossbeam_channel::Receiver<io::Result<Job>>,
    error: Rc<std::cell::Cell<Option<String>>>,
    total: Total,
    /// Once set, no further job is handed out (`--halt`, SIGHUP, SIGINT).
    stop: Arc<control::Stop>,
}

impl Feed {
    /// Reads the jobs `open` opens on a new thread, at most `queue` of them ahead.
    fn start(
        open: impl FnOnce() -> io::Result<Jobs> + Send + 'static,
        queue: usize,
        waker: crate::engine::Waker,
        stop: Arc<control::Stop>,
    ) -> Feed {
        let (tx, rx) = crossbeam_channel::bounded(queue);
        let total = Total::default();
        let counter = total.clone();
        std::thread::Builder::new()
            .name("weft-input".into())
            .spawn(move || {
                let jobs = match open() {
                    Ok(jobs) => jobs,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        waker.wake();
                        return;
                    }
                };
                for job in jobs {
                    let stop = job.is_err();
                    if !stop {
                        counter.add_one();
                    }
                    let was_empty = tx.is_empty();
                    if tx.send(job).is_err() {
                        return;
                    }
                    if was_empty {
                        waker.wake();
                    }
                    if stop {
                        return;
                    }
                }
                counter.end();
                drop(tx);
                waker.wake();
            })
            .expect("cannot start the input thread");
        Feed {
            rx,
            error: Rc::new(std::cell::Cell::new(None)),
            total,
            stop,
        }
    }
}

/// `--shuf`: every job read, then handed out in a random order (an input error ends the input
/// where it occurred, after the jobs read before it).
fn shuffled<I: Iterator<Item = io::Result<Vec<Vec<u8>>>>>(
    jobs: I,
) -> impl Iterator<Item = io::Result<Vec<Vec<u8>>>> {
    let (mut all, error) = super::input::read_all(jobs);
    // Fisher-Yates with xorshift64*, seeded by the kernel: no need for a cryptographic order.
    let mut state = u64::from_ne_bytes(crate::sys::random_bytes::<8>().unwrap_or([7; 8])) | 1;
    for i in (1..all.len()).rev() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        all.swap(i, (r % (i as u64 + 1)) as usize);
    }
    all.into_iter().map(Ok).chain(error.map(Err))
}

impl Iterator for Feed {
    /// `Some(None)`: no job ready yet.
    type Item = Option<Job>;

    fn next(&mut self) -> Option<Self::Item> {
        use crossbeam_channel::TryRecvError;
        if self.stop.draining() {
            return None;
        }
        match self.rx.try_recv() {
            Ok(Ok(job)) => Some(Some(job)),
            Ok(Err(e)) => {
                self.error.set(Some(e.to_string()));
                None
            }
            Err(TryRecvError::Empty) => Some(None),
            Err(TryRecvError::Disconnected) => None,
        }
    }
}
