//! The process backend, coordinator side: spawning a worker and the handshake, the link that
//! sends it batches, and the reading of its results: by a pool's coordinator itself, with every
//! worker's socket in its [`inbox`], or by a reader thread that forwards them and reports the
//! worker's death (a one-off [`Process`](crate::Process)).
//!
//! Every worker is forked by one long-lived spawner thread, because the parent-death signal
//! fires when the thread that forked the child exits, not the process.

pub(crate) mod inbox;
pub(crate) mod watchdog;
pub(crate) mod worker;

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use ipc_channel::IpcError;
use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};

use crate::error::{Error, ErrorKind};
use crate::event::{Event, Key};
use crate::outcome::Crash;
use crate::sys::{self, SharedSlot, SlotView};
use crate::wire::{self, Handshake, PROTOCOL, WORKER_ENV};

/// The longest socket path the kernel takes (`sun_path` is 108 bytes with its NUL); ipc-channel
/// silently truncates longer ones.
const MAX_SOCKET_PATH: usize = 107;

/// What ipc-channel adds to its temp directory for a handshake socket.
const SOCKET_SUFFIX: &str = "/.tmpXXXXXX/socket";

/// How long the message of a worker that exited during its handshake may take to come through
/// (a worker killed by a signal sent none).
const LAST_WORDS: Duration = Duration::from_millis(250);

type SpawnRequest = (Command, Sender<std::io::Result<Child>>);

/// Forks `cmd` from the spawner thread, which lives as long as the process.
pub(crate) fn spawn(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<SpawnRequest>();
        std::thread::Builder::new()
            .name("weft-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the weft spawner thread");
        Mutex::new(tx)
    });
    let (reply, answer) = crossbeam_channel::bounded(1);
    spawner
        .lock()
        .expect("spawner")
        .send((cmd, reply))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

/// The program a worker runs: the one given, or this very executable.
pub(crate) fn worker_program(program: Option<&Path>) -> PathBuf {
    program.map_or_else(|| PathBuf::from("/proc/self/exe"), Path::to_path_buf)
}

/// Checks that worker sockets can be made, with a clear message where they cannot (ipc-channel
/// panics instead): the temp directory must be an absolute path to a writable directory.
///
/// A temp directory too long for a socket path (a sandbox's, or macOS's) still holds captured
/// outputs; sockets then go to a short directory instead (`$XDG_RUNTIME_DIR`, `/dev/shm` or
/// `/tmp`, the first one that is writable). ipc-channel makes them in `tempfile`'s temp
/// directory, which can only be changed for the whole process, so this changes it only then.
/// The socket is there for as long as a worker takes to start: its name is removed as soon as
/// it is made (see [`start`]).
pub(crate) fn check_socket_dir() -> Result<(), Error> {
    let dir = std::env::temp_dir();
    let unusable = |why: String| {
        Error::new(
            ErrorKind::Config,
            format!(
                "temp directory {} (TMPDIR) {why}: set TMPDIR to the absolute path of a writable directory",
                dir.display()
            ),
        )
    };
    if !dir.is_absolute() {
        return Err(unusable("is not an absolute path".into()));
    }
    // A directory is made and removed once per process and temp directory (on a busy ext4
    // that costs a quarter of a millisecond, a tenth of a pool's start). Should it go later,
    // `Rendezvous::open` still fails cleanly.
    static CHECKED: Mutex<Option<(PathBuf, PathBuf)>> = Mutex::new(None);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if checked
        .as_ref()
        .is_some_and(|(d, s)| *d == dir && *s == tempfile::env::temp_dir())
    {
        return Ok(());
    }
    // What ipc-channel does first (and panics if it fails).
    tempfile::Builder::new()
        .tempdir_in(&dir)
        .map_err(|e| unusable(format!("cannot hold worker sockets ({})", os_reason(&e))))?;
    let fits = |d: &Path| d.as_os_str().len() + SOCKET_SUFFIX.len() <= MAX_SOCKET_PATH;
    let mut sockets = tempfile::env::temp_dir();
    if !fits(&sockets) && sockets == dir {
        if let Some(short) = short_socket_dir() {
            // Fails only if it was set meanwhile, which the check below sees.
            let _ = tempfile::env::override_temp_dir(&short);
        }
        sockets = tempfile::env::temp_dir();
    }
    if !fits(&sockets) {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "temp directory {} is too long for a worker socket and none of $XDG_RUNTIME_DIR, /dev/shm and /tmp is a writable directory: set TMPDIR to a shorter path",
                sockets.display()
            ),
        ));
    }
    if sockets != dir {
        tempfile::Builder::new().tempdir_in(&sockets).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "directory {} cannot hold worker sockets ({})",
                    sockets.display(),
                    os_reason(&e)
                ),
            )
        })?;
    }
    *checked = Some((dir, sockets));
    Ok(())
}

/// What went wrong, without the path that tempfile adds (the message names it already).
fn os_reason(e: &std::io::Error) -> String {
    std::io::Error::from(e.kind()).to_string()
}

/// A short, writable directory for worker sockets when the temp directory is too long.
fn short_socket_dir() -> Option<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    runtime
        .into_iter()
        .chain(["/dev/shm", "/tmp"].map(PathBuf::from))
        .filter(|d| d.is_absolute() && d.as_os_str().len() + SOCKET_SUFFIX.len() <= MAX_SOCKET_PATH)
        .find(|d| tempfile::Builder::new().tempdir_in(d).is_ok())
}

/// The coordinator's side of one handshake: ipc-channel's one-shot server, whose socket file
/// (and directory) are removed as soon as they are made, and the location through which the
/// worker connects all the same. Nothing is left in the file system whatever becomes of the
/// worker, and nothing but a process given the location can connect.
struct Rendezvous {
    server: IpcOneShotServer<Handshake>,
    /// The socket, by location (`O_PATH`): what the worker inherits.
    location: OwnedFd,
}

impl Rendezvous {
    fn open() -> std::io::Result<Rendezvous> {
        // ipc-channel panics where it cannot make its directory (checked by
        // `check_socket_dir`, but the temp directory may have gone since).
        let (server, name) = std::panic::catch_unwind(IpcOneShotServer::<Handshake>::new)
            .map_err(|_| std::io::Error::other("ipc-channel could not make a socket"))??;
        let socket = PathBuf::from(name);
        let location = sys::open_location(&socket).and_then(sys::above_stdio);
        let _ = std::fs::remove_file(&socket);
        if let Some(dir) = socket.parent() {
            let _ = std::fs::remove_dir(dir);
        }
        Ok(Rendezvous {
            server,
            location: location?,
        })
    }
}

/// The coordinator's end of one worker process.
pub(crate) struct Link {
    pub(crate) pid: u32,
    tasks: Option<IpcSender<wire::Delivery>>,
    /// Output regions of this worker that the coordinator has let go of.
    returns: Arc<wire::Returns>,
    slot: SharedSlot,
    child: Arc<Mutex<Child>>,
    /// The worker's results, until the coordinator takes them into its inbox.
    results: Option<IpcReceiver<wire::Results>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Set once `shutdown` has seen the worker go (or killed it).
    ended: bool,
    /// Dropped after the worker is killed (see `Drop`): the watchdog then kills what it left.
    _mark: watchdog::WorkerMark,
}

/// Who reads a worker's results.
pub(crate) enum Reading {
    /// A reader thread, posting each message, and the worker's end, to this channel; its
    /// tasks' messages go to the sink, read while the task runs.
    Thread(Sender<Event>, Arc<crate::message::Sink>),
    /// The coordinator, from its [`inbox`]: see [`Link::take_results`].
    Inbox,
}

/// Starts worker `id` of a pool: spawn, handshake, and the reading of its results.
///
/// # Errors
/// A spawn failure, a worker that dies or stays silent for `start_timeout`, or one that speaks
/// another protocol version.
pub(crate) fn start(
    program: &Path,
    id: usize,
    key: Key,
    start_timeout: Duration,
    memory_limit: Option<u64>,
    reading: Reading,
) -> Result<Link, Error> {
    worker::refuse_if_launched()?;
    check_socket_dir()?;
    let spawn_error = |what: String| Error::new(ErrorKind::Spawn, format!("worker {id} {what}"));
    let Rendezvous { server, location } = Rendezvous::open()
        .map_err(|e| spawn_error("could not open its handshake socket".into()).with_source(e))?;
    let token = sys::random_bytes::<16>()
        .map_err(|e| spawn_error("could not make its token".into()).with_source(e))?;
    // The token goes through a pipe that only this child inherits: other processes of the
    // user can read a process's environment.
    let token_rx = sys::pipe()
        .and_then(|(rx, tx)| std::fs::File::from(tx).write_all(&token).map(|()| rx))
        .and_then(sys::above_stdio)
        .map_err(|e| spawn_error("could not pass its token".into()).with_source(e))?;
    let mut cmd = Command::new(program);
    let fds = [token_rx.as_raw_fd(), location.as_raw_fd()];
    cmd.env(
        WORKER_ENV,
        format!("{id}:{}:{}:{}", std::process::id(), fds[0], fds[1]),
    )
    .stdin(Stdio::null());
    let mark = watchdog::WorkerMark::new();
    mark.apply(&mut cmd);
    watchdog::pass_spill_dir(&mut cmd);
    sys::inherit(&mut cmd, fds);
    sys::isolate(&mut cmd, true);
    if let Some(bytes) = memory_limit {
        sys::limit_memory(&mut cmd, bytes);
    }
    let spawned = spawn(cmd);
    drop(token_rx);
    let mut child = spawned.map_err(|e| {
        spawn_error(format!("could not be spawned from {}", program.display())).with_source(e)
    })?;
    let rendezvous = format!("/proc/self/fd/{}", location.as_raw_fd());

    let (accepted_tx, accepted) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("weft-handshake".into())
        .spawn(move || {
            let _ = accepted_tx.send(server.accept());
        })
        .map_err(|e| spawn_error("could not start its handshake thread".into()).with_source(e))?;

    let deadline = Instant::now() + start_timeout;
    let mut poll = Duration::from_micros(200);
    let end = |child: &mut Child, error: Error| {
        let _ = child.kill();
        let _ = child.wait();
        // accept() has no timeout: connect to our own server so the helper thread ends.
        if let Ok(tx) = IpcSender::<Handshake>::connect(rendezvous.clone()) {
            let _ = tx.send(Handshake::Abort);
        }
        let _ = accepted.recv_timeout(Duration::from_secs(1));
        Err(error)
    };
    let fail = |child: &mut Child, why: String| end(child, spawn_error(why));
    let (results, hello) = loop {
        match accepted.recv_timeout(poll) {
            Ok(Ok(pair)) => break pair,
            Ok(Err(e)) => return fail(&mut child, format!("failed its handshake: {e:?}")),
            Err(_) => {
                if let Ok(Some(status)) = child.try_wait() {
                    // What one that exited sent first (a copy that did not call `init` says
                    // so) may still be on its way through the handshake thread.
                    let words = status.code().map(|_| accepted.recv_timeout(LAST_WORDS));
                    match words {
                        Some(Ok(Ok(pair))) => break pair,
                        _ => return fail(&mut child, died_during_handshake(status)),
                    }
                }
                if Instant::now() > deadline {
                    return fail(
                        &mut child,
                        format!("did not finish its handshake within {start_timeout:?}"),
                    );
                }
                poll = (poll * 2).min(Duration::from_millis(5));
            }
        }
    };
    drop(results);
    let (pid, version, tasks, results, slot) = match hello {
        Handshake::Hello {
            pid,
            version,
            token: told,
            tasks,
            results,
            slot,
        } if told == token => (pid, version, tasks, results, slot),
        Handshake::NoInit { token: told } if told == token => {
            let why = format!(
                "worker {id} could not start: its program {} does not call `weft::init` first (it started workers of its own instead of becoming one): `weft::init(&registry)` must be the first line of `main`",
                program.display()
            );
            return end(&mut child, Error::new(ErrorKind::Config, why));
        }
        Handshake::Hello { .. } | Handshake::NoInit { .. } => {
            return fail(&mut child, "sent a hello without its token".into());
        }
        Handshake::Abort => return fail(&mut child, "sent no hello".into()),
    };
    if version != PROTOCOL {
        return fail(
            &mut child,
            format!(
                "speaks protocol {version}, this coordinator {PROTOCOL}: rebuild the worker program"
            ),
        );
    }
    let Some(slot) = SharedSlot::new(slot) else {
        return fail(&mut child, "sent a progress slot that is too small".into());
    };
    // Its program calls `init`, so it can be this process's watchdog too (started once).
    if let Err(e) = watchdog::ensure(program) {
        return end(
            &mut child,
            spawn_error("could not start the watchdog that kills what its tasks leave".into())
                .with_source(e),
        );
    }
    let child = Arc::new(Mutex::new(child));
    let returns = Arc::new(wire::Returns::default());
    let (results, reader) = match reading {
        Reading::Inbox => (Some(results), None),
        Reading::Thread(events, notes) => {
            let child = child.clone();
            let reader = std::thread::Builder::new()
                .name(format!("weft-reader-{id}"))
                .spawn(move || read(key, results, child, events, notes))
                .map_err(|e| {
                    spawn_error("could not start its reader thread".into()).with_source(e)
                })?;
            (None, Some(reader))
        }
    };
    Ok(Link {
        pid,
        tasks: Some(tasks),
        returns,
        slot,
        child,
        results,
        reader,
        ended: false,
        _mark: mark,
    })
}

impl Link {
    /// Sends one batch.
    pub(crate) fn send(&self, batch: wire::Batch) -> std::io::Result<()> {
        match &self.tasks {
            Some(tx) => wire::send_batch(tx, batch, self.returns.take()),
            None => Err(std::io::Error::other("worker is shutting down")),
        }
    }

    /// The worker's results channel, once, for an inbox to read.
    pub(crate) fn take_results(&mut self) -> Option<IpcReceiver<wire::Results>> {
        self.results.take()
    }

    pub(crate) fn child(&self) -> Arc<Mutex<Child>> {
        self.child.clone()
    }

    /// What [`read_results`] gives this worker's output regions back through.
    pub(crate) fn returns(&self) -> Arc<wire::Returns> {
        self.returns.clone()
    }

    pub(crate) fn slot(&self) -> SlotView<'_> {
        self.slot.view()
    }

    /// Closes the task channel: an idle worker exits with status 0.
    pub(crate) fn close(&mut self) {
        self.tasks = None;
    }

    /// How the worker ended, if it has (and was reaped).
    pub(crate) fn try_exit(&self) -> Option<ExitStatus> {
        self.child
            .lock()
            .expect("worker child")
            .try_wait()
            .ok()
            .flatten()
    }

    /// Asks the worker to cancel the job it is running (through the job's cancel token, so a
    /// command gets its kill sequence) and to exit once that job returns.
    pub(crate) fn interrupt(&self) {
        let mut child = self.child.lock().expect("worker child");
        // Not yet reaped, so the pid cannot have been reused.
        if matches!(child.try_wait(), Ok(None)) {
            let _ = sys::kill(child.id(), sys::SIGUSR1);
        }
    }

    /// SIGKILLs the worker (a reaped worker is not signalled again).
    pub(crate) fn kill(&self) {
        let _ = self.child.lock().expect("worker child").kill();
    }

    /// Closes the task channel (the worker exits on its own), waits at most `bound`, then kills.
    pub(crate) fn shutdown(&mut self, bound: Duration) {
        self.tasks = None;
        if self.ended {
            return;
        }
        self.ended = true;
        let until = Instant::now() + bound;
        match self.reader.take() {
            Some(reader) => {
                while !reader.is_finished() && Instant::now() < until {
                    std::thread::sleep(Duration::from_micros(500));
                }
                if !reader.is_finished() {
                    self.kill();
                }
                let _ = reader.join();
            }
            None => {
                while self.try_exit().is_none() && Instant::now() < until {
                    std::thread::sleep(Duration::from_micros(500));
                }
                let mut child = self.child.lock().expect("worker child");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if !self.ended {
            self.kill();
        }
    }
}

/// Forwards results until the worker's end disconnects, then reaps it and reports how it ended.
fn read(
    key: Key,
    results: IpcReceiver<wire::Results>,
    child: Arc<Mutex<Child>>,
    events: Sender<Event>,
    notes: Arc<crate::message::Sink>,
) {
    loop {
        match results.recv() {
            // A task's message: to its reader at once, while the task runs.
            Ok(message) if message.is_note() => {
                if let Some((seq, bytes)) = message.into_note() {
                    let _ = notes.post(crate::message::Note {
                        seq,
                        body: crate::message::Body::Encoded(bytes),
                    });
                }
            }
            // Read on the coordinator's thread, straight into outcomes: made into reports here,
            // each result was built, moved through a growing vector and moved out again.
            Ok(message) => {
                let _ = events.send(Event::Results(key, message));
            }
            Err(IpcError::Disconnected) => break,
            // Undecodable (or its regions lost on the way): the worker is killed, and its
            // channel then reports the disconnection.
            Err(IpcError::SerializationError(_)) => {
                let _ = events.send(Event::Garbled(key));
                let _ = child.lock().expect("worker child").kill();
            }
            Err(IpcError::Io(_)) => {
                let _ = events.send(Event::Garbled(key));
                let _ = child.lock().expect("worker child").kill();
                break;
            }
        }
    }
    // The task can send no more.
    notes.close();
    let status = reap(&child);
    let _ = events.send(Event::Exited(key, status));
}

/// Reads a message of results from a worker, handing each to `each` with its output made by
/// `output`: an output's region goes back to the worker through `returns` once let go of. The
/// results before a garbled one are handed on, then the error returned (the caller kills the
/// worker).
pub(crate) fn read_results<T>(
    message: wire::Results,
    returns: &Arc<wire::Returns>,
    mut output: impl FnMut(wire::Payload) -> T,
    each: impl FnMut(wire::Received<T>),
) -> Result<(), String> {
    wire::decode_results(
        message,
        |mut payload| {
            payload.received(returns);
            output(payload)
        },
        each,
    )
}

/// Waits for a worker that has closed its channel; one that lingers past a second is killed.
pub(crate) fn reap(child: &Mutex<Child>) -> Crash {
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        let mut child = child.lock().expect("worker child");
        match child.try_wait() {
            Ok(Some(status)) => return crash_of(status),
            Ok(None) if Instant::now() > until => {
                let _ = child.kill();
            }
            Ok(None) => {}
            Err(_) => return Crash::Exit(-1),
        }
        drop(child);
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// How the worker ended, if it has: reaped now, without waiting.
pub(crate) fn reaped(child: &Mutex<Child>) -> Option<Crash> {
    let status = child.lock().expect("worker child").try_wait().ok()??;
    Some(crash_of(status))
}

fn crash_of(status: ExitStatus) -> Crash {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(sig) => Crash::Signal(sig),
        None => Crash::Exit(status.code().unwrap_or(-1)),
    }
}

/// Why a worker that exited before its hello did not start. One that exited with status 0 most
/// likely ran its program's `main` through instead of becoming a worker.
fn died_during_handshake(status: ExitStatus) -> String {
    let how = crash_of(status);
    if status.success() {
        format!(
            "exited before its handshake ({how}): does its program call `weft::init(&registry)` as the first line of `main`?"
        )
    } else {
        format!("died during handshake ({how})")
    }
}
