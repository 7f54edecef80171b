//! The process backend, worker side: what a re-launched program does when `init` finds the
//! worker marker in its environment.
//!
//! The marker is not proof: any program that calls `init` would otherwise become a worker (or
//! quietly exit) whenever the variable leaked into its environment. A worker proves who launched
//! it with two descriptors it inherits: a pipe holding a random token, read and closed before
//! anything else runs (so no job can read it, as it could an environment variable through
//! `/proc/PID/environ`), and the location of the handshake socket, whose name the coordinator
//! removed at once. The coordinator accepts a hello only with its token.
//!
//! Results are sent per batch, except that a job that took a while, or whose output went into a
//! shared-memory region, is sent at once: tiny jobs share one message (a message costs
//! microseconds), a slow job's result never waits behind the next job, so a crash loses at most
//! a few microseconds of finished tiny jobs, which the coordinator then runs again, and a
//! message carries at most one output region.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use ipc_channel::TrySelectError;
use ipc_channel::ipc::{
    self, IpcMessage, IpcReceiver, IpcReceiverSet, IpcSelectionResult, IpcSender, IpcSharedMemory,
};

use crate::catch::catch;
use crate::error::{Error, ErrorKind};
use crate::registry::Registry;
use crate::sys::{self, SharedSlot};
use crate::task::{CancelToken, Context};
use crate::wire::{self, Handshake, PROTOCOL, Token, WORKER_ENV};

/// A finished job that ran at least this long is reported at once rather than with its batch.
const SEND_AT_ONCE: Duration = Duration::from_micros(50);

/// Turns this process into a worker if it was launched as one; otherwise returns at once.
///
/// Call it as the first line of `main`, with the registry of every task the program runs on
/// worker processes. A launched worker serves jobs and exits inside this call, never returning.
/// Code before it runs in every worker too, so keep it free of side effects. A launched copy
/// that reaches a spawn path instead ([`PoolBuilder::build`](crate::PoolBuilder::build),
/// [`ProcessBuilder::spawn`](crate::ProcessBuilder::spawn)) fails there, and its coordinator
/// reports the mistake, rather than each copy starting workers of its own.
///
/// In a worker, stdout is the coordinator's stderr: what a task prints (`println!`) cannot get
/// among the results on the coordinator's stdout (`weft --jsonl`).
///
/// A worker (or the `weft` binary's watchdog) is entered only when the process was started by
/// a weft coordinator, which proves it through descriptors the process inherits: the marker
/// variable alone (`WEFT_WORKER`, `WEFT_WATCHDOG`), set by hand or inherited by mistake, is
/// reported on stderr and the process exits with status 255.
///
/// # Examples
///
/// ```no_run
/// // The first line of `main`:
/// weft::init(&weft::Registry::new().task::<weft::tasks::Sum>());
/// // ... the program proper: build a pool, run tasks.
/// ```
pub fn init(registry: &Registry) {
    if let Some(value) = std::env::var_os(super::watchdog::WATCHDOG_ENV) {
        super::watchdog::serve(&value.to_string_lossy());
    }
    let Some(marker) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    let marker = marker.to_string_lossy().into_owned();
    // Removed before any thread exists, so that nothing this worker runs (a job that launches
    // this same program) turns into a worker by mistake. A program that started threads first
    // cannot have it removed soundly: it is told, as a program that forgot `init` is.
    if let Err(threads) = sys::remove_env_if_single_threaded(WORKER_ENV) {
        say!(
            "weft: this worker process already runs {threads} threads when it calls weft::init: \
             `weft::init(&registry)` must be the first line of `main`, before anything starts a \
             thread"
        );
        std::process::exit(NOT_LAUNCHED);
    }
    // Before anything else: the descriptors are taken (and closed) before any job can run.
    let launch = match Launch::take(&marker) {
        Ok(launch) => launch,
        Err(why) => {
            say!(
                "weft: {WORKER_ENV}={marker:?} was not set by a weft coordinator ({why}): \
                 a program started by hand must not have {WORKER_ENV} set"
            );
            std::process::exit(NOT_LAUNCHED);
        }
    };
    sys::close_on_exec_above_stdio();
    // What a task prints must not land among its coordinator's results (`--jsonl` lines): a
    // worker's stdout is its stderr, and only the commands that are to write to the real stdout
    // (see `real_stdout`) are given it.
    let _ = REAL_STDOUT.set(sys::stdout_to_stderr());
    let code = match serve(registry, launch) {
        Ok(()) => 0,
        Err(e) => {
            say!("weft worker: {e}");
            3
        }
    };
    std::process::exit(code);
}

static REAL_STDOUT: OnceLock<Option<std::fs::File>> = OnceLock::new();

/// In a worker process, the coordinator's stdout, which the worker's own stdout is not (it is
/// the coordinator's stderr): where commands that pass their output on as it comes (`-u`,
/// `--line-buffer`) write. `None` elsewhere, where stdout is the real one.
pub(crate) fn real_stdout() -> Option<&'static std::fs::File> {
    REAL_STDOUT.get()?.as_ref()
}

/// The exit status of a process that carries a worker or watchdog marker its coordinator did
/// not prove.
pub(crate) const NOT_LAUNCHED: i32 = 255;

/// What a program that reached a spawn path while it was a launched worker is told.
const NO_INIT: &str = "this process was started as a weft worker but reached a spawn path \
    before calling `weft::init`: `weft::init(&registry)` must be the first line of `main`";

/// Fails if this process was launched as a worker and did not become one: its program did not
/// call [`init`] first, and is about to start workers of its own (each of which would do the
/// same). Its coordinator is told at once, and reports the mistake.
pub(crate) fn refuse_if_launched() -> Result<(), Error> {
    // A launched watchdog that did not become one has nobody to tell.
    if std::env::var_os(super::watchdog::WATCHDOG_ENV).is_some() {
        return Err(Error::new(ErrorKind::Config, NO_INIT));
    }
    let Some(marker) = std::env::var_os(WORKER_ENV) else {
        return Ok(());
    };
    static TOLD: Once = Once::new();
    TOLD.call_once(|| {
        if let Ok(launch) = Launch::take(&marker.to_string_lossy())
            && let Ok(hello) = launch.connect()
        {
            let _ = hello.send(Handshake::NoInit {
                token: launch.token,
            });
        }
    });
    Err(Error::new(ErrorKind::Config, NO_INIT))
}

/// What a launched worker inherited from its coordinator: its marker, read and checked, and
/// the descriptors it names.
struct Launch {
    id: usize,
    parent: u32,
    token: Token,
    /// The location of the coordinator's handshake socket, whose name is already gone.
    socket: OwnedFd,
}

impl Launch {
    /// Takes the descriptors that `marker` names and reads the token; fails unless they are
    /// what a coordinator gives the workers it launches.
    fn take(marker: &str) -> Result<Launch, String> {
        let fields: Vec<&str> = marker.split(':').collect();
        let [id, parent, token_fd, socket_fd] = fields[..] else {
            return Err("not ID:PID:FD:FD".into());
        };
        let number = |what: &str, s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("{what} {s:?} is not a number"))
        };
        let id = number("worker id", id)? as usize;
        let parent = number("parent pid", parent)?;
        let token_fd = number("descriptor", token_fd)? as RawFd;
        let socket_fd = number("descriptor", socket_fd)? as RawFd;
        if token_fd == socket_fd {
            return Err("the same descriptor twice".into());
        }
        if sys::fd_kind(token_fd) != Some(sys::FdKind::Pipe) {
            return Err(format!("descriptor {token_fd} is not an inherited pipe"));
        }
        if sys::fd_kind(socket_fd) != Some(sys::FdKind::Socket) {
            return Err(format!("descriptor {socket_fd} is not an inherited socket"));
        }
        let (Some(pipe), Some(socket)) = (
            sys::take_inherited(token_fd),
            sys::take_inherited(socket_fd),
        ) else {
            return Err("descriptors 0, 1 and 2 are not a coordinator's".into());
        };
        let mut token = Token::default();
        std::fs::File::from(pipe)
            .read_exact(&mut token)
            .map_err(|e| format!("no token on descriptor {token_fd}: {e}"))?;
        Ok(Launch {
            id,
            parent,
            token,
            socket,
        })
    }

    /// Connects to the coordinator's handshake socket through the inherited location.
    fn connect(&self) -> Result<IpcSender<Handshake>, String> {
        IpcSender::<Handshake>::connect(format!("/proc/self/fd/{}", self.socket.as_raw_fd()))
            .map_err(|e| format!("cannot connect to coordinator: {e}"))
    }
}

fn serve(registry: &Registry, launch: Launch) -> Result<(), String> {
    let id = launch.id;
    // The parent-death signal was armed before exec; if the parent died before that, we were
    // re-parented already and would never get it.
    if sys::parent_pid() != launch.parent {
        return Ok(());
    }

    let hello = launch.connect()?;
    drop(launch.socket);
    let (tasks_tx, tasks) = ipc::channel::<wire::Delivery>().map_err(|e| e.to_string())?;
    let (results, results_rx) = ipc::channel::<wire::Results>().map_err(|e| e.to_string())?;
    let shared = IpcSharedMemory::from_byte(0, sys::SLOT_BYTES);
    hello
        .send(Handshake::Hello {
            pid: std::process::id(),
            version: PROTOCOL,
            token: launch.token,
            tasks: tasks_tx,
            results: results_rx,
            slot: shared.clone(),
        })
        .map_err(|e| format!("cannot send hello: {e:?}"))?;
    drop(hello);
    let shared = SharedSlot::new(shared).ok_or("cannot map the progress slot")?;
    let slot = shared.view();

    let (state, init_error) = match catch(|| registry.init_state(id)) {
        Ok(state) => (state, None),
        Err(p) => (
            None,
            Some(format!("worker initializer panicked: {}", p.message)),
        ),
    };
    // SIGUSR1 from the coordinator (a run stopped early) cancels the job through its token, so
    // a command gets its kill sequence; the worker then exits instead of taking another job.
    let cancel = CancelToken::new();
    sys::set_on_sigusr1(cancel.flag()).map_err(|e| format!("cannot watch SIGUSR1: {e}"))?;
    let mut cx = Context::on_worker(id, cancel, state);
    // A task's messages travel on the result channel, each on its own (see `Context::send`).
    cx.outbox = Some(crate::message::Outbox::Wire(results.clone()));
    let mut started = 0;
    let mut clock = sys::Clock::new();
    let mut out = wire::ResultsOut::default();
    let mut lent = wire::Lent::default();
    let flush = |out: &mut wire::ResultsOut, lent: &mut wire::Lent| -> Result<(), String> {
        if out.is_empty() {
            return Ok(());
        }
        out.send(&results, lent)
            .map_err(|e| format!("cannot send results: {e}"))
    };
    sys::raise_malloc_thresholds();
    let mut batches = Batches::new(tasks)?;
    // `None`: the coordinator dropped its sender, or died.
    while let Some(delivery) = batches.next()? {
        lent.returned(&delivery.returned);
        let entry = match registry.lookup(&delivery.task) {
            Some((entry, closure)) => {
                // A plain function's jobs read it from their context.
                cx.closure = closure;
                Some(entry)
            }
            None => None,
        };
        // A job starts when the one before it ended: one clock read per job, not two.
        let mut started_ns = clock.now();
        for job in delivery.jobs() {
            let job = match job {
                Ok(job) => job,
                // The jobs before it ran: their results go first, then the coordinator
                // accounts for the rest when it sees this worker exit.
                Err(e) => {
                    flush(&mut out, &mut lent)?;
                    return Err(format!("bad batch: {e}"));
                }
            };
            // Cancelled, or told to start nothing new: the coordinator accounts for the jobs
            // this worker never started when it sees it exit.
            if cx.is_cancelled() || slot.draining() {
                flush(&mut out, &mut lent)?;
                return Ok(());
            }
            started += 1;
            slot.begin(started, started_ns);
            cx.seq = job.seq;
            cx.attempt = job.attempt;
            cx.deadline = delivery
                .timeout
                .and_then(|t| std::time::Instant::now().checked_add(t));
            out.begin(job.ticket, started_ns);
            let ended = match (&entry, &init_error) {
                (_, Some(e)) => Some(wire::Ended::Failed(e.clone())),
                (None, _) => Some(wire::Ended::Failed(format!(
                    "task {:?} is not registered in the worker program (weft::register! for a \
                     Task, weft::register_fn! for a function)",
                    delivery.task
                ))),
                // The output goes straight into the message.
                (Some(entry), None) => {
                    match catch(|| (entry.run_bytes)(job.input, &cx, &mut out)) {
                        Ok(Ok(())) => None,
                        Ok(Err(f)) if f.is_timed_out() => Some(wire::Ended::TimedOut),
                        Ok(Err(f)) if f.is_cancelled() => Some(wire::Ended::Cancelled),
                        Ok(Err(f)) => Some(wire::Ended::Failed(f.message().to_string())),
                        Err(p) => Some(wire::Ended::Panicked {
                            message: p.message,
                            location: p.location,
                        }),
                    }
                }
            };
            if let Some(ended) = ended {
                out.ended(ended);
            }
            let ended_ns = clock.now();
            let runtime_ns = ended_ns.saturating_sub(started_ns);
            out.end(runtime_ns);
            if out.has_region() || runtime_ns >= SEND_AT_ONCE.as_nanos() as u64 {
                flush(&mut out, &mut lent)?;
                started_ns = clock.now();
            } else {
                started_ns = ended_ns;
            }
        }
        flush(&mut out, &mut lent)?;
        if cx.is_cancelled() {
            return Ok(());
        }
    }
    Ok(())
}

/// The coordinator's batches. The next one is polled for a moment before the worker sleeps
/// (see [`sys::spin`]): for a tiny job's round trip, neither side then has to be woken.
struct Batches {
    set: IpcReceiverSet,
    arrived: VecDeque<IpcMessage>,
    closed: bool,
}

impl Batches {
    fn new(tasks: IpcReceiver<wire::Delivery>) -> Result<Batches, String> {
        let mut set =
            IpcReceiverSet::new().map_err(|e| format!("cannot watch for batches: {e}"))?;
        set.add(tasks)
            .map_err(|e| format!("cannot watch for batches: {e}"))?;
        Ok(Batches {
            set,
            arrived: VecDeque::new(),
            closed: false,
        })
    }

    fn next(&mut self) -> Result<Option<wire::Delivery>, String> {
        loop {
            if let Some(message) = self.arrived.pop_front() {
                return message
                    .to()
                    .map(Some)
                    .map_err(|e| format!("bad batch: {e}"));
            }
            if self.closed {
                return Ok(None);
            }
            let set = &mut self.set;
            let polled = sys::spin(None, || match set.try_select() {
                Err(TrySelectError::Empty) => None,
                got => Some(got.map_err(|e| format!("cannot read batches: {e:?}"))),
            });
            let got = match polled {
                Some(got) => got?,
                None => {
                    sys::give_back_free_memory();
                    set.select()
                        .map_err(|e| format!("cannot read batches: {e}"))?
                }
            };
            for result in got {
                match result {
                    IpcSelectionResult::MessageReceived(_, message) => {
                        self.arrived.push_back(message)
                    }
                    IpcSelectionResult::ChannelClosed(_) => self.closed = true,
                }
            }
        }
    }
}
