//! The only module that talks to the operating system below std: signals, process groups,
//! the parent-death signal, a monotonic clock shared between processes (and a cheap per-job
//! reading of it, [`Clock`]), the shared progress slot, shared-memory regions for large values
//! ([`region`]), a lock-free queue from one thread to
//! another ([`spsc`]), and the engine's queue of ready outcomes ([`Fifo`]), two data structures
//! that need `unsafe` for their speed. Everything else calls these safe functions, so `unsafe`
//! and `nix` stay here.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

mod clock;
mod fifo;
mod pipe;
pub(crate) mod region;
mod slot;
pub(crate) mod spsc;
mod typed;

pub(crate) use clock::Clock;
pub(crate) use fifo::Fifo;
pub(crate) use pipe::{
    input_pipe, make_fifo, open_fifo_writer, output_pipe, splice_some, wait_writable, widen_stdin,
    write_some,
};
pub(crate) use slot::{SLOT_BYTES, SLOT_WORDS, SharedSlot, SlotView};
pub(crate) use typed::Typed;

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process on the machine, so a worker's
/// job start time can be compared with the coordinator's deadline.
pub(crate) fn now_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// How long a process worker or its coordinator polls for the other's next message before
/// it sleeps. Waking a sleeping CPU costs the waker tens of microseconds on a virtual machine
/// (the wake-up goes through the hypervisor): a reply that comes within this is taken without
/// either side sleeping, and a longer wait costs at most this much CPU before the sleep.
pub(crate) const SPIN_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(50);

/// Polls `ready` until it gives something or [`SPIN_BEFORE_SLEEP`] (or `until`, if sooner) has
/// passed. It does not yield between polls: on a busy machine `sched_yield` hands the CPU to
/// another process for the rest of its time slice (4 ms a round trip, with two busy loops on
/// two cores), where a poller that then sleeps is woken ahead of them.
pub(crate) fn spin<T>(
    until: Option<std::time::Instant>,
    mut ready: impl FnMut() -> Option<T>,
) -> Option<T> {
    let now = std::time::Instant::now();
    let end = until.map_or(now + SPIN_BEFORE_SLEEP, |u| u.min(now + SPIN_BEFORE_SLEEP));
    loop {
        if let Some(t) = ready() {
            return Some(t);
        }
        if std::time::Instant::now() >= end {
            return None;
        }
        std::hint::spin_loop();
    }
}

/// Lets glibc's malloc serve ipc-channel's receive buffers from the heap it keeps.
///
/// ipc-channel allocates a buffer the size of the largest fragment (some 200 KiB) for every
/// message it reads, and for every read that finds none. Past glibc's first mmap threshold
/// (128 KiB) each such buffer was mapped and unmapped, or grew the heap and was trimmed off it
/// again on free: two page faults a message. glibc raises both thresholds by itself when a
/// mapped block larger than the threshold is freed (mallopt(3), "dynamic adjustment"); one
/// freed 1 MiB block does that now, so the buffers come from the heap, as they would in any
/// program that had once freed a megabyte. A no-op elsewhere, and where the thresholds were set.
pub(crate) fn raise_malloc_thresholds() {
    drop(std::hint::black_box(Vec::<u8>::with_capacity(1 << 20)));
}

/// Returns the heap's free memory to the system (glibc's `malloc_trim`): what a worker does
/// before it sleeps, so that an idle worker keeps only what it uses. With the thresholds
/// raised (above) glibc no longer trims on free, and the buffers of the last batches stayed
/// resident. A no-op on other C libraries.
pub(crate) fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Sends `signal` to every process of the process group `pgid`.
pub(crate) fn kill_group(pgid: u32, signal: i32) -> io::Result<()> {
    send(Pid::from_raw(-(pgid as i32)), signal)
}

/// Whether process group `pgid` still has a process that is not a zombie: read from /proc,
/// since a zombie leader that is not yet waited for keeps `kill(-pgid, 0)` succeeding. A
/// process that cannot be read is taken as gone.
pub(crate) fn group_has_live(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    let mut stat = Vec::with_capacity(512);
    dir.flatten().any(|entry| {
        let name = entry.file_name();
        if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            return false;
        }
        stat.clear();
        let read = std::fs::File::open(entry.path().join("stat"))
            .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut stat));
        read.is_ok() && live_in_group(&stat, pgid)
    })
}

/// Whether a /proc/PID/stat line (`pid (comm) state ppid pgrp ...`) is of a live process in
/// group `pgid`. The command name may hold spaces and parentheses: the fields start after its
/// last `)`.
fn live_in_group(stat: &[u8], pgid: u32) -> bool {
    let Some(end) = stat.iter().rposition(|&b| b == b')') else {
        return false;
    };
    let mut fields = stat[end + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    let state = fields.next();
    let pgrp = fields.nth(1);
    !matches!(state, Some(b"Z" | b"X" | b"x")) && pgrp == Some(pgid.to_string().as_bytes())
}

/// A process's pid file descriptor: readable once the process has exited, so a wait can have
/// a timeout without polling.
pub(crate) struct PidFd(std::os::fd::OwnedFd);

impl PidFd {
    /// Opens the pidfd of `pid`, which must be this process's unreaped child.
    pub(crate) fn open(pid: u32) -> io::Result<PidFd> {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
        // passed. The fd is owned by nobody else, so wrapping it in OwnedFd is sound.
        let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as i32, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor returned by the kernel just above.
        Ok(PidFd(unsafe {
            std::os::fd::OwnedFd::from_raw_fd(fd as i32)
        }))
    }
}

/// SIGTERM's number.
pub(crate) const SIGTERM: i32 = Signal::SIGTERM as i32;
/// SIGKILL's number.
pub(crate) const SIGKILL: i32 = Signal::SIGKILL as i32;
/// SIGINT's number.
pub(crate) const SIGINT: i32 = Signal::SIGINT as i32;
/// SIGUSR1's number: what asks a worker process to cancel its job and exit.
pub(crate) const SIGUSR1: i32 = Signal::SIGUSR1 as i32;
/// SIGSEGV's number.
#[cfg(feature = "testing")]
pub(crate) const SIGSEGV: i32 = Signal::SIGSEGV as i32;
/// SIGHUP's number.
pub(crate) const SIGHUP: i32 = Signal::SIGHUP as i32;

/// The number of a signal named `TERM`, `SIGTERM` or `15`.
pub(crate) fn signal_number(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return Signal::try_from(n).ok().map(|s| s as i32);
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<Signal>().ok().map(|s| s as i32)
}

/// Calls `on_signal` on a thread of its own for every SIGINT, SIGTERM and SIGHUP this process
/// receives, instead of their default action.
pub(crate) fn watch_signals(on_signal: impl Fn(i32) + Send + 'static) -> io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("weft-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                on_signal(signal);
            }
        })?;
    Ok(())
}

/// Sets `flag` whenever this process receives SIGUSR1.
pub(crate) fn set_on_sigusr1(
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> io::Result<()> {
    signal_hook::flag::register(SIGUSR1, flag).map(drop)
}

/// The pids of the processes whose initial environment holds `key=VALUE` or `key=VALUE/...` (a
/// mark under it) for one of `values`; other users' processes cannot be read and are never
/// listed.
pub(crate) fn marked_processes(key: &str, values: &[&str]) -> Vec<u32> {
    let needles: Vec<String> = values.iter().map(|v| format!("{key}={v}")).collect();
    let marked = |var: &[u8]| {
        needles.iter().any(|n| {
            var.strip_prefix(n.as_bytes())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
        })
    };
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ.split(|&b| b == 0).any(marked) {
            out.push(pid);
        }
    }
    out
}

/// Points this process's stdout at its stderr (or at /dev/null if it has no stderr), and
/// returns what stdout was, close-on-exec, if it was open.
pub(crate) fn stdout_to_stderr() -> Option<std::fs::File> {
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    let saved = nix::fcntl::fcntl(
        io::stdout().as_fd(),
        nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3),
    )
    .ok()
    // SAFETY: a fresh descriptor the kernel just returned, owned by nobody else.
    .map(|fd| std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }));
    if nix::unistd::dup2_stdout(io::stderr().as_fd()).is_err()
        && let Ok(null) = std::fs::File::open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdout(null.as_fd());
    }
    saved
}

/// Whether writes to `fd` append (it was opened with `O_APPEND`, as `>>` does): each lands at
/// the file's end, wherever the offset is.
pub(crate) fn appends(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<bool> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = fcntl(fd, FcntlArg::F_GETFL)?;
    Ok(OFlag::from_bits_truncate(flags).contains(OFlag::O_APPEND))
}

/// Whether descriptor `fd` has something to read (or its end) right now, without waiting.
pub(crate) fn readable_now(fd: std::os::fd::RawFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // SAFETY: `fd` is only polled, for the length of this call, by a caller that owns it.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

/// Sends `signal` (a number) to one process; a process that is already gone is not an error.
pub(crate) fn kill(pid: u32, signal: i32) -> io::Result<()> {
    send(Pid::from_raw(pid as i32), signal)
}

fn send(target: Pid, signal: i32) -> io::Result<()> {
    let sig = Signal::try_from(signal).map_err(io::Error::from)?;
    match signal::kill(target, sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Dies of `signal` as if it were not handled (the Rust runtime handles SIGSEGV itself, so a
/// plain `kill` of ourselves would return). Only the test double `Fault::Segv` needs it.
#[cfg(feature = "testing")]
pub(crate) fn die_by(signal: i32) -> ! {
    if let Ok(sig) = Signal::try_from(signal) {
        // SAFETY: restoring the default disposition is always sound; no handler is running.
        let _ = unsafe { signal::signal(sig, signal::SigHandler::SigDfl) };
        let _ = signal::raise(sig);
    }
    std::process::abort()
}

/// The name of a signal number, `SIGKILL` for 9, if it has one.
pub(crate) fn signal_str(signal: i32) -> Option<&'static str> {
    Signal::try_from(signal).ok().map(|s| s.as_str())
}

/// The name of a signal number, `SIGKILL` for 9; the number itself if it has none.
pub(crate) fn signal_name(signal: i32) -> String {
    Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// Whether `signal` is SIGPIPE: a job killed by it wrote to a reader that had gone (`| head`),
/// which is no failure to tell of (GNU parallel says nothing of it either).
pub(crate) fn is_sigpipe(signal: i32) -> bool {
    signal == Signal::SIGPIPE as i32
}

/// The line dash writes on stderr when a command it waits for is killed by `signal`
/// (`strsignal(3)`, then " (core dumped)" if it dumped core), or `None` for SIGINT and SIGPIPE,
/// of which it says nothing.
pub(crate) fn shell_signal_note(signal: i32, core_dumped: bool) -> Option<Vec<u8>> {
    if signal == SIGINT || signal == Signal::SIGPIPE as i32 {
        return None;
    }
    // strsignal's buffer for an unknown signal is shared: one caller at a time.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: strsignal takes any int and returns a pointer to a NUL-terminated string,
    // copied out at once while the lock keeps other callers of this function away.
    let mut note = unsafe {
        let text = libc::strsignal(signal);
        if text.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(text).to_bytes().to_vec()
    };
    if core_dumped {
        note.extend_from_slice(b" (core dumped)");
    }
    note.push(b'\n');
    Some(note)
}

/// The pid of this process's parent.
pub(crate) fn parent_pid() -> u32 {
    nix::unistd::getppid().as_raw() as u32
}

/// Prepares `cmd` so that the child lives in its own process group (a terminal's Ctrl-C reaches
/// only the coordinator) and, if `die_with_parent`, gets SIGKILL when the thread that spawns it
/// exits.
///
/// The parent-death signal fires when the *spawning thread* ends, so callers spawn from a
/// thread that lives as long as the process (see `process::spawner`). It is set in the child
/// between fork and exec, which rules out `posix_spawn`: a fork copies the parent's page tables,
/// and on a small machine that doubles the cost of starting a short command. Without it the
/// child is started through `posix_spawn`.
pub(crate) fn isolate(cmd: &mut Command, die_with_parent: bool) {
    cmd.process_group(0);
    if !die_with_parent {
        return;
    }
    // SAFETY: the closure runs in the forked child before exec and calls only prctl(2),
    // which is async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            Ok(())
        });
    }
}

/// Limits the address space of the process `cmd` starts to `bytes` (`RLIMIT_AS`).
pub(crate) fn limit_memory(cmd: &mut Command, bytes: u64) {
    use nix::sys::resource::{Resource, setrlimit};
    // SAFETY: the closure runs in the forked child before exec and calls only setrlimit(2),
    // which is async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            setrlimit(Resource::RLIMIT_AS, bytes, bytes).map_err(io::Error::from)?;
            Ok(())
        });
    }
}

/// Whether a process that died of `signal` under a memory limit most likely ran out of memory:
/// a failed allocation aborts a Rust program (SIGABRT), the kernel's OOM killer sends SIGKILL,
/// and a stack that cannot grow faults (SIGSEGV).
pub(crate) fn is_out_of_memory_signal(signal: i32) -> bool {
    [Signal::SIGABRT, Signal::SIGKILL, Signal::SIGSEGV]
        .iter()
        .any(|s| *s as i32 == signal)
}

/// An exclusive lock on one of this process's output streams, shared with every process
/// that writes to the same pipe, file or terminal, so that their writes do not interleave.
///
/// Processes that inherited the stream share one open file description, on which `flock`
/// would not exclude them from each other; so the stream is reopened through `/proc` to get a
/// description of our own, used only for locking (never written to). A stream that cannot be
/// reopened (a socket) is written without the lock.
pub(crate) struct StreamLock(Option<std::fs::File>);

impl StreamLock {
    /// The lock of file descriptor `fd` (1 for stdout, 2 for stderr).
    pub(crate) fn open(fd: i32) -> StreamLock {
        StreamLock(
            std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/self/fd/{fd}"))
                .ok(),
        )
    }

    /// Whether the stream could be reopened for locking: if not, no one can hold its lock.
    pub(crate) fn is_open(&self) -> bool {
        self.0.is_some()
    }

    /// Runs `write` while holding the lock, if it can be taken at once; `None` if another
    /// holds it, or it cannot be locked at all.
    pub(crate) fn try_hold<R>(&mut self, write: impl FnOnce() -> R) -> Option<R> {
        use nix::fcntl::{Flock, FlockArg};
        let file = self.0.take()?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(guard) => {
                let result = write();
                self.0 = guard.unlock().ok();
                Some(result)
            }
            Err((file, _)) => {
                self.0 = Some(file);
                None
            }
        }
    }

    /// Runs `write` while holding the lock.
    pub(crate) fn hold<R>(&mut self, write: impl FnOnce() -> R) -> R {
        use nix::fcntl::{Flock, FlockArg};
        let Some(file) = self.0.take() else {
            return write();
        };
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(guard) => {
                let result = write();
                self.0 = guard.unlock().ok();
                result
            }
            Err((file, _)) => {
                self.0 = Some(file);
                write()
            }
        }
    }
}

/// A new file in `dir` that has no name (`O_TMPFILE`): it vanishes with its last descriptor,
/// however the process holding it ends. Fails where the filesystem has no unnamed files.
pub(crate) fn unnamed_file(dir: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_TMPFILE)
        .open(dir)
}

/// Gives `file`, made by [`unnamed_file`], the name `path`; fails with `AlreadyExists` if
/// the name is taken.
pub(crate) fn name_file(file: &std::fs::File, path: &std::path::Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let to = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated strings that outlive the call, which only reads
    // them; following the /proc link is how an unnamed file gets a name.
    let done = unsafe {
        nix::libc::linkat(
            nix::libc::AT_FDCWD,
            from.as_ptr(),
            nix::libc::AT_FDCWD,
            to.as_ptr(),
            nix::libc::AT_SYMLINK_FOLLOW,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The soft limit on this process's open file descriptors (`ulimit -n`), if there is one.
pub(crate) fn fd_limit() -> Option<u64> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    (soft != RLIM_INFINITY).then_some(soft)
}

/// How many file descriptors this process has open.
pub(crate) fn open_fds() -> u64 {
    // The listing holds one open itself.
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1) as u64)
}

/// Marks every descriptor above stderr close-on-exec, so that what this process runs gets
/// stdin, stdout and stderr only.
///
/// A worker process calls it first: it may have inherited a descriptor by accident (ipc-channel
/// accepts a handshake connection without close-on-exec, and a worker forked at that moment gets
/// a copy), and would pass it on to every job it runs.
pub(crate) fn close_on_exec_above_stdio() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD and F_SETFD read and set the descriptor's flags and touch no memory;
        // a descriptor that is not open (the listing's own) makes them fail with EBADF, which
        // is ignored.
        unsafe {
            let flags = nix::libc::fcntl(fd, nix::libc::F_GETFD);
            if flags >= 0 && flags & nix::libc::FD_CLOEXEC == 0 {
                nix::libc::fcntl(fd, nix::libc::F_SETFD, flags | nix::libc::FD_CLOEXEC);
            }
        }
    }
}

/// Removes `key` from this process's environment, if this is the process's only thread;
/// otherwise changes nothing and returns how many threads it has.
///
/// Changing the environment while another thread may read it (any C code calling `getenv`) is
/// undefined behaviour, so the rule "only before any thread exists" is checked here, not
/// trusted to the caller: `init`, a public function, is the one caller.
pub(crate) fn remove_env_if_single_threaded(key: &str) -> Result<(), usize> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    if threads != 1 {
        return Err(threads);
    }
    // SAFETY: this process has one thread, this one (counted above; only it could start
    // another, and it is here), so nothing reads the environment concurrently.
    unsafe { std::env::remove_var(key) }
    Ok(())
}

/// Sets `key` to `value` in this process's environment, if this is the process's only thread;
/// otherwise changes nothing and returns how many threads it has (see
/// [`remove_env_if_single_threaded`]).
pub(crate) fn set_env_if_single_threaded(key: &str, value: &std::ffi::OsStr) -> Result<(), usize> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    if threads != 1 {
        return Err(threads);
    }
    // SAFETY: this process has one thread, this one (counted above), so nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var(key, value) }
    Ok(())
}

/// Sets the calling thread's niceness to `n` (on Linux a thread's own; the threads and
/// processes it starts afterwards inherit it).
pub(crate) fn set_nice(n: i32) -> io::Result<()> {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `N` random bytes from the kernel (`getrandom(2)`): the tokens by which a launched worker or
/// watchdog proves that its coordinator started it.
pub(crate) fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    let mut filled = 0;
    while filled < N {
        // SAFETY: the pointer and length describe the unfilled rest of `bytes`, which
        // getrandom only writes.
        let n = unsafe { libc::getrandom(bytes[filled..].as_mut_ptr().cast(), N - filled, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            continue;
        }
        filled += n as usize;
    }
    Ok(bytes)
}

/// A pipe, read end first, both ends close-on-exec.
pub(crate) fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// `fd`, moved above stderr if it is not (in a process started with stdin, stdout or stderr
/// closed): a child's stdio replaces descriptors 0 to 2, so only those above can be inherited.
pub(crate) fn above_stdio(fd: std::os::fd::OwnedFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    use std::os::fd::FromRawFd;
    let moved = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(io::Error::from)?;
    // SAFETY: `moved` is a fresh descriptor the kernel just returned, owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(moved) })
}

/// Opens `path` as a location only (`O_PATH`, close-on-exec): a handle on a socket file that
/// stays valid once the file's name is removed, and through which (as `/proc/self/fd/N`) a
/// process can still connect to it.
pub(crate) fn open_location(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)?;
    Ok(file.into())
}

/// Lets the program that `cmd` starts inherit `fds`, which are close-on-exec in this process
/// (so no other child gets them).
pub(crate) fn inherit(cmd: &mut Command, fds: [std::os::fd::RawFd; 2]) {
    // SAFETY: the closure runs in the forked child before exec and calls only fcntl(2), which
    // is async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            for fd in fds {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// What an inherited descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A pipe (or FIFO).
    Pipe,
    /// A socket, or a location (`O_PATH`) of a socket file.
    Socket,
    /// Anything else.
    Other,
}

/// What the open descriptor `fd` is, if it is open.
pub(crate) fn fd_kind(fd: std::os::fd::RawFd) -> Option<FdKind> {
    // SAFETY: fstat writes only into the stat buffer it is given; a descriptor that is not
    // open makes it fail with EBADF.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `st` is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some(match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => FdKind::Pipe,
        libc::S_IFSOCK => FdKind::Socket,
        _ => FdKind::Other,
    })
}

/// Takes ownership of `fd`, a descriptor this process inherited when it was started (named to
/// it by its coordinator) and which nothing in it has taken yet.
///
/// Returns `None` if `fd` is not open or is stdin, stdout or stderr.
pub(crate) fn take_inherited(fd: std::os::fd::RawFd) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if fd <= 2 || fd_kind(fd).is_none() {
        return None;
    }
    // SAFETY: the descriptor is open (fstat succeeded) and was inherited at exec, so no object
    // of this process owns it; the callers take each one once (`init`, before anything else
    // runs, or under a `Once`).
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::live_in_group;

    #[test]
    fn group_members_are_read_past_the_command_name() {
        let line = b"42 (a) b (c)) S 1 77 77 0 -1 4194560 0";
        assert!(live_in_group(line, 77));
        assert!(!live_in_group(line, 7));
        assert!(!live_in_group(b"42 (sh) Z 1 77 77 0", 77), "a zombie");
        assert!(!live_in_group(b"garbage", 77));
    }
}
