//! `Pool`: N workers of one backend, fed a stream of tasks, yielding one `Outcome` per task.
//!
//! The backend is a builder setting, not a type parameter: the same code runs a task on
//! threads or on processes, and the results arrive through the same iterator.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::{Config, Engine, Launch, Pull, Run, Source, Waker};
use crate::error::{Error, ErrorKind};

use crate::queue::Queue;
use crate::registry::{Entry, Registry};
use crate::task::{Backend, Task};
use crate::wire::Payload;

mod iter;

#[cfg(doc)]
use crate::outcome::{Outcome, Status};

#[cfg(feature = "broker")]
pub(crate) use iter::EncodedResults;
pub use iter::{FnResults, JsonResults, Results};
use iter::{decode_fn_output, no_closure_output};

/// Builds a [`Pool`].
///
/// # Examples
///
/// ```
/// use weft::{Backend, Pool};
/// use weft::tasks::Sum;
///
/// let mut pool = Pool::builder().workers(2).backend(Backend::Thread).build()?;
/// let total: u128 = pool
///     .map((0..4u64).map(|i| Sum::new(i * 250..(i + 1) * 250)))
///     .filter_map(|o| o.ok())
///     .sum();
/// assert_eq!(total, 999 * 1000 / 2);
/// # Ok::<(), weft::Error>(())
/// ```
#[derive(Debug)]
pub struct PoolBuilder {
    cfg: Config,
    registry: Registry,
}

impl PoolBuilder {
    /// How many workers (default: the number of CPUs): at least 1, at most 4096, or
    /// [`build`](Self::build) fails.
    pub fn workers(mut self, n: usize) -> Self {
        self.cfg.workers = n;
        self
    }
    /// Threads or processes (default: threads).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.cfg.backend = backend;
        self
    }
    /// A job running longer than this is reported [`Status::TimedOut`].
    ///
    /// Every task sees the deadline through [`Context::deadline`](crate::Context::deadline).
    /// On threads the job is also cancelled through its context, reported at the deadline, and
    /// its thread abandoned and replaced. In a process the task gets 500 ms past the deadline
    /// to stop on its own (a command job kills its process group in order), then the worker is
    /// killed and replaced. A timeout too long for an [`Instant`](std::time::Instant) to hold
    /// (such as [`Duration::MAX`]) is never reached: the task sees no deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.cfg.timeout = Some(timeout);
        self
    }
    /// A job running longer than `factor` times the median runtime of the jobs finished so
    /// far is reported [`Status::TimedOut`], as with [`timeout`](Self::timeout); no job is
    /// timed out before three have finished. GNU parallel's `--timeout 200%` is `2.0`. A
    /// factor that is not positive and finite makes [`build`](Self::build) fail.
    pub fn timeout_of_median(mut self, factor: f64) -> Self {
        self.cfg.timeout_of_median = Some(factor);
        self
    }
    /// Limits each process worker's address space to `bytes` (`RLIMIT_AS`; the commands it
    /// runs inherit the limit). A job whose worker dies of running out of memory (its
    /// allocation fails and it aborts, or the kernel kills it) is reported
    /// [`Status::Failed`] with a message that starts `memory limit`, and the worker is
    /// replaced; the coordinator's own memory is never limited. Thread workers share the
    /// coordinator's memory and ignore this setting.
    ///
    /// A worker needs some memory to start at all (measured: 8 MiB for the release `weft`,
    /// 15 MiB for a debug build): a limit under 32 MiB makes [`build`](Self::build) fail with a
    /// configuration [`Error`] that says so.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.cfg.memory_limit = Some(bytes);
        self
    }
    /// Yield outcomes in input order rather than completion order.
    pub fn keep_order(mut self, keep: bool) -> Self {
        self.cfg.keep_order = keep;
        self
    }
    /// A fixed number of jobs per message instead of the adaptive size (rarely needed).
    pub fn batch(mut self, jobs: usize) -> Self {
        self.cfg.batch = Some(jobs);
        self
    }
    /// How many attempts each job gets in all (default 1: no retry). A job that fails,
    /// panics, times out or crashes its worker runs again (a crashed job on another worker)
    /// until it succeeds or has had this many; only its last attempt is reported, with
    /// [`Outcome::attempt`] saying which it was. A task decides what counts as success with
    /// [`Task::succeeded`].
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.cfg.attempts = attempts.max(1);
        self
    }
    /// Whether a worker may be handed its next jobs before it has finished the one it runs
    /// (default: yes, as many as keep it busy). Off, no job starts until the outcome of the
    /// one before it on its worker has been yielded: what the command line needs for commands
    /// and under `--halt`, so that nothing starts after SIGHUP or the job that halts the run.
    pub(crate) fn lookahead(mut self, on: bool) -> Self {
        self.cfg.lookahead = on;
        self
    }
    /// How long a timed-out or cancelled job gets to stop on its own, as a command running its
    /// kill sequence does (default: 500 ms past a process job's deadline, none past a thread
    /// job's; 100 ms for an abandoned thread when the pool is dropped): the command line's
    /// `--term-seq` needs as long as its waits add up to, on either backend, so that a
    /// timed-out command's output so far is reported.
    pub(crate) fn grace(mut self, grace: Duration) -> Self {
        self.cfg.grace = Some(grace);
        self
    }
    /// The registry whose initializer each worker runs (tasks themselves need no
    /// registration for threads; process workers use the registry given to [`init`](crate::init)).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }
    /// The program started as a process worker (default: this executable). It must call
    /// [`init`](crate::init) with a registry holding the tasks it is sent.
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.cfg.program = Some(path.into());
        self
    }
    /// How long a process worker may take to start and say hello (default: 10 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.cfg.start_timeout = timeout;
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    /// A configuration no pool can run with ([`Error::is_config`]): no workers or more than
    /// 4096, a timeout factor that is not positive and finite, a memory limit under 32 MiB
    /// for process workers. Or a process worker that cannot be spawned, dies during its
    /// handshake, or does not answer within the start timeout. Process workers need a temp
    /// directory (`TMPDIR`) that is the absolute path of a writable directory. Called in a
    /// process launched as a worker whose program did not call [`init`](crate::init) first, it
    /// fails at once whatever the backend, and the program that launched it reports the mistake.
    ///
    /// A `TMPDIR` too long for a socket path still works: the handshake sockets (which live for
    /// as long as a worker takes to start, without a name) are then made in a short directory,
    /// `$XDG_RUNTIME_DIR`, `/dev/shm` or `/tmp`. ipc-channel makes them through `tempfile`,
    /// whose temp directory is then set to that one for the whole program
    /// (`tempfile::env::override_temp_dir`); `std::env::temp_dir` and captured outputs are not
    /// affected.
    pub fn build(self) -> Result<Pool, Error> {
        crate::process::worker::refuse_if_launched()?;
        // Kept for `map_json`, which looks tasks up by name; the engine has its own.
        let registry = self.registry.clone();
        Ok(Pool {
            engine: RefCell::new(Engine::start(self.cfg, self.registry)?),
            registry,
        })
    }
}

/// A set of workers, threads or processes, that run tasks and report one [`Outcome`] each.
///
/// # Examples
///
/// ```
/// use weft::tasks::Sum;
/// use weft::{Backend, Pool};
///
/// let mut pool = Pool::builder().workers(2).backend(Backend::Thread).build()?;
/// assert_eq!(pool.num_workers(), 2);
/// let total: u128 = pool
///     .map((0..10).map(|i| Sum::new(i * 10..(i + 1) * 10)))
///     .filter_map(|o| o.ok())
///     .sum();
/// assert_eq!(total, 4950);
/// # Ok::<(), weft::Error>(())
/// ```
///
/// Dropping the pool closes the workers' channels and waits for them: process workers exit
/// (one still running after a second is killed); threads are joined, and a thread stuck in a
/// task is waited for at most 100 ms, then left behind.
///
/// What a process worker's tasks start and leave running (a background child, a `setsid`
/// daemon) is killed when that worker ends: when the pool is dropped, when the worker dies and
/// is replaced, and when this program exits or is killed, by a watchdog process started with
/// the first process worker. A process that drops weft's mark from its environment
/// (`env -i`) escapes it.
#[derive(Debug)]
pub struct Pool {
    engine: RefCell<Engine>,
    /// The builder's registry: the tasks [`map_json`](Self::map_json) knows by name.
    registry: Registry,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A builder with the defaults: one thread worker per CPU.
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            cfg: Config {
                workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
                backend: Backend::Thread,
                timeout: None,
                keep_order: false,
                batch: None,
                program: None,
                start_timeout: Duration::from_secs(10),
                attempts: 1,
                timeout_of_median: None,
                memory_limit: None,
                lookahead: true,
                grace: None,
            },
            registry: Registry::new(),
        }
    }

    /// Runs every task of `tasks`, yielding their outcomes as they complete (or in input order
    /// with [`PoolBuilder::keep_order`]).
    ///
    /// Tasks are pulled from the iterator lazily, a bounded number ahead of the results, so an
    /// endless iterator runs in constant memory. Dropping the returned iterator early cancels
    /// the jobs still running: process workers running them are killed and replaced, thread
    /// workers get their cancel token set and are replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// use weft::tasks::Sum;
    /// use weft::{Pool, Status};
    ///
    /// let mut pool = Pool::builder().workers(2).keep_order(true).build()?;
    /// for outcome in pool.map([Sum::new(0..10), Sum::new(10..20)]) {
    ///     match outcome.status {
    ///         Status::Ok(sum) => println!("job {}: {sum}", outcome.seq),
    ///         other => eprintln!("job {}: {other}", outcome.seq),
    ///     }
    /// }
    /// // An endless source: only what is taken runs.
    /// let first: Vec<u128> = pool
    ///     .map((0..).map(|i| Sum::new(0..i)))
    ///     .take(3)
    ///     .filter_map(|o| o.ok())
    ///     .collect();
    /// assert_eq!(first, [0, 0, 1]);
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn map<'a, T, I>(&'a mut self, tasks: I) -> Results<'a, T>
    where
        T: Task,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
    {
        let engine = self.engine.get_mut();
        let source = typed_source::<T, _>(engine.cfg.backend, tasks.into_iter());
        engine.pump();
        let run = Run::new(Entry::of::<T>(), source, engine.cfg.keep_order);
        Results {
            engine,
            run: Some(run),
            _output: PhantomData,
        }
    }

    /// Runs the closure `f` over every input, yielding one [`Outcome`] per input as
    /// [`map`](Self::map) does, with the same timeouts, cancellation and order: Python's
    /// `pool.map(f, inputs)`, without a [`Task`] struct, its registration or serde. The closure
    /// is shared by the pool's threads and may capture what it needs (an `Arc`, a channel).
    ///
    /// Closures run on thread workers only: nothing names a closure in a worker process. On a
    /// process pool every job is [`Status::Failed`] saying so. A closure's job has one attempt
    /// whatever [`PoolBuilder::attempts`] says (its input is not kept to run it again).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use weft::Pool;
    ///
    /// let seen = Arc::new(AtomicU64::new(0));
    /// let mut pool = Pool::builder().workers(2).keep_order(true).build()?;
    /// let squares: Vec<u64> = pool
    ///     .map_fn(1..=4u64, {
    ///         let seen = seen.clone();
    ///         move |x| {
    ///             seen.fetch_add(1, Ordering::Relaxed);
    ///             x * x
    ///         }
    ///     })
    ///     .filter_map(|o| o.ok())
    ///     .collect();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// assert_eq!(seen.load(Ordering::Relaxed), 4);
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn map_fn<'a, X, O, F, I>(&'a mut self, inputs: I, f: F) -> FnResults<'a, O>
    where
        X: Send + 'static,
        O: Send + 'static,
        F: Fn(X) -> O + Send + Sync + 'static,
        I: IntoIterator<Item = X>,
        I::IntoIter: 'a,
    {
        let engine = self.engine.get_mut();
        let inputs = inputs.into_iter();
        // Boxed as a task is, so a job costs what a task's does (see `Entry::of_fn`).
        let source: Box<dyn Source + 'a> = match engine.cfg.backend {
            Backend::Thread => Box::new(inputs.map(|x| Pull::Ready(Ok(Box::new(x))))),
            Backend::Process => Box::new(
                inputs.map(|_| Pull::Ready(Err(crate::registry::CLOSURE_ON_PROCESS.into()))),
            ),
        };
        engine.pump();
        let mut run = Run::new(Entry::of_fn::<X, O, F>(), source, engine.cfg.keep_order);
        run.closure = Some(crate::sys::Typed::new(f));
        FnResults {
            engine,
            run: Some(run),
            decode: no_closure_output::<O>,
        }
    }

    /// Runs the plain function `f` over every input as [`map_fn`](Self::map_fn) does, on
    /// either backend: on worker processes too, where it is found by its name, so it must be
    /// registered in the worker program ([`register_fn!`](crate::register_fn) at link time, or
    /// [`Registry::function`]). Python's `pool.map(f, inputs)` on a process pool: inputs and
    /// outputs are serde values, and `f` is a named `fn`, not a closure. On a process pool, a
    /// job of a function the worker program did not register fails saying so.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// fn shout(s: String) -> String {
    ///     s.to_uppercase()
    /// }
    /// weft::register_fn!(shout);
    ///
    /// let mut pool = weft::Pool::builder().workers(2).keep_order(true).build()?;
    /// let words: Vec<String> = pool
    ///     .map_fn_proc(["a".to_string(), "b".to_string()], shout)
    ///     .filter_map(|o| o.ok())
    ///     .collect();
    /// assert_eq!(words, ["A", "B"]);
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn map_fn_proc<'a, X, O, F, I>(&'a mut self, inputs: I, f: F) -> FnResults<'a, O>
    where
        X: Serialize + DeserializeOwned + Send + 'static,
        O: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(X) -> O + Copy + Send + Sync + 'static,
        I: IntoIterator<Item = X>,
        I::IntoIter: 'a,
    {
        let engine = self.engine.get_mut();
        let inputs = inputs.into_iter();
        let source: Box<dyn Source + 'a> = match engine.cfg.backend {
            Backend::Thread => Box::new(inputs.map(|x| Pull::Ready(Ok(Box::new(x))))),
            Backend::Process => Box::new(inputs.map(|x| Pull::Encoded(Payload::encode(&x)))),
        };
        engine.pump();
        let mut run = Run::new(
            Entry::of_named_fn::<X, O, F>(),
            source,
            engine.cfg.keep_order,
        );
        run.closure = Some(crate::sys::Typed::new(f));
        FnResults {
            engine,
            run: Some(run),
            decode: decode_fn_output::<O, F>,
        }
    }

    /// A live queue into the pool, Python's `apply_async` / `executor.submit` with
    /// `as_completed`: other threads [`submit`](Queue::submit) tasks through the [`Queue`] (clone
    /// it for each), and the outcomes come here as each job finishes, without waiting for the
    /// next submission. They end once every `Queue` is dropped and every job submitted has
    /// been reported. Dropping the outcomes early cancels the jobs still running, and later
    /// submissions are refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use weft::Pool;
    /// use weft::tasks::Sum;
    ///
    /// let mut pool = Pool::builder().workers(2).build()?;
    /// let (queue, outcomes) = pool.queue();
    /// std::thread::spawn(move || {
    ///     for i in 1..=3u64 {
    ///         queue.submit(Sum::new(0..i)).unwrap();
    ///     }
    /// });
    /// let total: u128 = outcomes.filter_map(|o| o.ok()).sum();
    /// assert_eq!(total, 0 + 1 + 3);
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn queue<T: Task>(&mut self) -> (Queue<T>, Results<'_, T>) {
        let (queue, source) = Queue::new(self.waker());
        (queue, self.map_pending(source))
    }

    /// A live queue of inputs to the closure `f`, as [`queue`](Self::queue) is of tasks and
    /// with what [`map_fn`](Self::map_fn) says of closures.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut pool = weft::Pool::builder().workers(2).build()?;
    /// let (queue, outcomes) = pool.queue_fn(|s: String| s.len());
    /// std::thread::spawn(move || {
    ///     for word in ["a", "bb", "ccc"] {
    ///         queue.submit(word.to_string()).unwrap();
    ///     }
    /// });
    /// let mut lengths: Vec<usize> = outcomes.filter_map(|o| o.ok()).collect();
    /// lengths.sort();
    /// assert_eq!(lengths, [1, 2, 3]);
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn queue_fn<X, O, F>(&mut self, f: F) -> (Queue<X>, FnResults<'_, O>)
    where
        X: Send + 'static,
        O: Send + 'static,
        F: Fn(X) -> O + Send + Sync + 'static,
    {
        let (queue, inputs) = Queue::new(self.waker());
        let engine = self.engine.get_mut();
        let on_threads = engine.cfg.backend == Backend::Thread;
        let source = inputs.map(move |x| match x.task() {
            Ok(x) if on_threads => Pull::Ready(Ok(Box::new(x))),
            Ok(_) => Pull::Ready(Err(crate::registry::CLOSURE_ON_PROCESS.into())),
            Err(pull) => pull,
        });
        engine.pump();
        let mut run = Run::new(
            Entry::of_fn::<X, O, F>(),
            Box::new(source),
            engine.cfg.keep_order,
        );
        run.closure = Some(crate::sys::Typed::new(f));
        (
            queue,
            FnResults {
                engine,
                run: Some(run),
                decode: no_closure_output::<O>,
            },
        )
    }

    /// Like [`map`](Self::map), but `inputs` are read on a thread of their own and each
    /// outcome is handed back as soon as its job ends, however long the iterator then blocks
    /// for its next input (a channel's receiver fed by a producer, lines of a socket): `map`
    /// asks for the next input on the caller's thread, so an outcome would wait for it. The
    /// reading thread ends with the iterator, or once the outcomes are dropped and it has
    /// read one more input.
    ///
    /// # Errors
    /// The operating system refused a thread to read the inputs ([`ErrorKind::Spawn`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use weft::Pool;
    /// use weft::tasks::Sum;
    ///
    /// let mut pool = Pool::builder().workers(2).build()?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let mut outcomes = pool.map_live(rx)?;
    /// tx.send(Sum::new(0..10)).unwrap();
    /// // Handed back while the channel is still open and empty.
    /// assert_eq!(outcomes.next().and_then(|o| o.ok()), Some(45));
    /// drop(tx);
    /// assert!(outcomes.next().is_none());
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn map_live<T, I>(&mut self, inputs: I) -> Result<Results<'_, T>, Error>
    where
        T: Task,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let (queue, outcomes) = self.queue();
        let inputs = inputs.into_iter();
        std::thread::Builder::new()
            .name("weft-input".into())
            .spawn(move || {
                for input in inputs {
                    if queue.submit(input).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| {
                Error::new(
                    ErrorKind::Spawn,
                    "the thread reading the inputs could not start",
                )
                .with_source(e)
            })?;
        Ok(outcomes)
    }

    /// Like [`map`](Self::map), over a source whose inputs may have failed, be skipped or not
    /// be ready yet (see [`Pending`]).
    pub(crate) fn map_pending<'a, T, I>(&'a mut self, tasks: I) -> Results<'a, T>
    where
        T: Task,
        I: IntoIterator<Item = Pending<T>>,
        I::IntoIter: 'a,
    {
        let engine = self.engine.get_mut();
        let source = typed_source::<T, _>(engine.cfg.backend, tasks.into_iter());
        engine.pump();
        let run = Run::new(Entry::of::<T>(), source, engine.cfg.keep_order);
        Results {
            engine,
            run: Some(run),
            _output: PhantomData,
        }
    }

    /// Runs the task registered as `name` (in the registry given to
    /// [`PoolBuilder::registry`]) over JSON inputs, yielding JSON outputs: the engine under the
    /// `weft` command line, for tasks known only by name. An input of `None` means "not ready
    /// yet": the source is asked again after the pool's waker is woken.
    ///
    /// An input that is not the task's JSON fails its job with the reason. A job whose output
    /// cannot be made JSON is [`Status::Failed`] with the reason, on either backend. An output
    /// that is an integer past 64 bits (a `u128`, such as the sum of
    /// [`Sum`](crate::tasks::Sum)) is a string of its decimal digits.
    ///
    /// # Errors
    /// If the pool's registry has no task `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use serde_json::json;
    /// use weft::{Backend, Pool};
    ///
    /// let mut pool = Pool::builder()
    ///     .backend(Backend::Thread)
    ///     .registry(weft::tasks::registry())
    ///     .keep_order(true)
    ///     .build()?;
    /// let sums: Vec<_> = pool
    ///     .map_json("sum", [Some(json!("0..10")), Some(json!("0..6074001001"))])?
    ///     .map(|outcome| outcome.ok())
    ///     .collect();
    /// assert_eq!(sums, [Some(json!(45)), Some(json!("18446744077037500500"))]);
    /// assert!(pool.map_json("nope", [Some(json!(1))]).is_err());
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn map_json<'a, I>(&'a mut self, name: &str, inputs: I) -> Result<JsonResults<'a>, Error>
    where
        I: IntoIterator<Item = Option<serde_json::Value>>,
        I::IntoIter: 'a,
    {
        let inputs = inputs.into_iter().map(|v| match v {
            Some(v) => Pending::Ready(v),
            None => Pending::Wait,
        });
        self.map_json_pending(name, inputs)
    }

    /// [`map_json`](Self::map_json) over a source of [`Pending`] inputs.
    pub(crate) fn map_json_pending<'a, I>(
        &'a mut self,
        name: &str,
        inputs: I,
    ) -> Result<JsonResults<'a>, Error>
    where
        I: IntoIterator<Item = Pending<serde_json::Value>>,
        I::IntoIter: 'a,
    {
        let (entry, closure) = self.registry.lookup(name).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("no task named {name:?}: see `weft tasks`"),
            )
        })?;
        let source = inputs.into_iter().map(move |v| match v.task() {
            Ok(v) => Pull::Ready((entry.from_json)(v)),
            Err(pull) => pull,
        });
        let engine = self.engine.get_mut();
        engine.pump();
        let mut run = Run::new(entry, Box::new(source), engine.cfg.keep_order);
        // A plain function's jobs read it from their context.
        run.closure = closure;
        Ok(JsonResults {
            engine,
            run: Some(run),
        })
    }

    /// Runs the jobs `pulls` gives, of the task `entry`, yielding bincode outputs in
    /// completion order: a broker worker's jobs, taken from the broker as the pool has room.
    #[cfg(feature = "broker")]
    pub(crate) fn map_pulls<'a>(
        &'a mut self,
        entry: Entry,
        pulls: impl Iterator<Item = Pull> + 'a,
    ) -> EncodedResults<'a> {
        let engine = self.engine.get_mut();
        engine.pump();
        let run = Run::new(entry, Box::new(pulls), false);
        EncodedResults {
            engine,
            run: Some(run),
        }
    }

    /// Wakes the pool when a source that said "not ready yet" has input.
    pub(crate) fn waker(&self) -> Waker {
        self.engine.borrow().waker()
    }

    /// How many workers are running now.
    pub fn num_workers(&self) -> usize {
        let mut engine = self.engine.borrow_mut();
        engine.pump();
        engine.live_workers()
    }

    /// The pids of the process workers running now (empty for threads).
    pub fn pids(&self) -> Vec<u32> {
        let mut engine = self.engine.borrow_mut();
        engine.pump();
        engine.pids()
    }

    /// Why workers stopped being replaced, if they did: the last start failure, such as an
    /// [`ErrorKind::Spawn`] (see [`Error::kind`]). When no worker is left at all, the jobs
    /// still to run are reported [`Status::Skipped`] with this reason.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = weft::Pool::builder().workers(1).build()?;
    /// assert!(pool.error().is_none());
    /// # Ok::<(), weft::Error>(())
    /// ```
    pub fn error(&self) -> Option<Error> {
        self.engine.borrow().error().cloned()
    }
}

/// What a source of the command line has next.
pub(crate) enum Pending<T> {
    /// A job's input.
    Ready(T),
    /// An input that could not be made: the job fails with this message.
    Bad(String),
    /// A job not to run (done in an earlier run): reported skipped with this reason.
    Skip(String),
    /// Nothing yet: the source is asked again after the pool's waker is woken.
    Wait,
}

/// An item of a run's input: a task, or what a source of the command line has next.
trait Item<T> {
    /// The task, or what the run pulls for an item that is none.
    fn task(self) -> Result<T, Pull>;
}

impl<T: Task> Item<T> for T {
    #[inline(always)]
    fn task(self) -> Result<T, Pull> {
        Ok(self)
    }
}

impl<T> Item<T> for Pending<T> {
    #[inline(always)]
    fn task(self) -> Result<T, Pull> {
        match self {
            Pending::Ready(t) => Ok(t),
            Pending::Bad(e) => Err(Pull::Ready(Err(e))),
            Pending::Skip(why) => Err(Pull::Skip(why)),
            Pending::Wait => Err(Pull::Wait),
        }
    }
}

/// The source of a run of tasks of type `T`. A task bound for a worker process is encoded
/// here, where its type is known, rather than boxed to be encoded through the registry's entry
/// (see [`Encoding`]); one bound for a thread is boxed, to be moved there.
fn typed_source<'a, T: Task, X: Item<T> + 'a>(
    backend: Backend,
    items: impl Iterator<Item = X> + 'a,
) -> Box<dyn Source + 'a> {
    match backend {
        Backend::Process => Box::new(Encoding {
            items,
            held: None,
            _task: PhantomData::<fn(T)>,
        }),
        Backend::Thread => Box::new(items.map(|x| match x.task() {
            Ok(t) => Pull::Ready(Ok(Box::new(t))),
            Err(pull) => pull,
        })),
    }
}

/// Tasks of type `T` encoded for worker processes, launched a stretch at a time.
struct Encoding<I, T> {
    items: I,
    /// What stopped a launch, for [`Source::next`]: `Some(None)` is the end.
    held: Option<Option<Pull>>,
    _task: PhantomData<fn(T)>,
}

impl<T: Task, X: Item<T>, I: Iterator<Item = X>> Source for Encoding<I, T> {
    fn next(&mut self) -> Option<Pull> {
        match self.held.take() {
            Some(held) => held,
            None => self.items.next().map(|x| match x.task() {
                Ok(t) => Pull::Encoded(Payload::encode(&t)),
                Err(pull) => pull,
            }),
        }
    }

    fn launch(&mut self, want: usize, to: &mut Launch<'_>) -> usize {
        if self.held.is_some() {
            return 0;
        }
        for n in 0..want {
            let held = match self.items.next().map(Item::task) {
                Some(Ok(t)) => match Payload::encode(&t) {
                    Ok(input) => {
                        to.job(input);
                        continue;
                    }
                    Err(e) => Some(Pull::Encoded(Err(e))),
                },
                Some(Err(pull)) => Some(pull),
                None => None,
            };
            self.held = Some(held);
            return n;
        }
        want
    }
}
