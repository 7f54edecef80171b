//! The watchdog: this same program re-launched as a small process that outlives the
//! coordinator just long enough to kill every job process the run leaves behind.
//!
//! Worker processes die with the coordinator through the parent-death signal, but that signal
//! reaches only a direct child: a job's own children (`cmd &`, a pipeline, a shell that
//! forks) would be orphaned when a coordinator is SIGKILLed. So every job process carries the
//! run's mark in its environment (inherited by whatever it starts), and when the watchdog's
//! stdin closes (the coordinator exited, however it exited) it kills every process that bears
//! the mark, until none is left.
//!
//! Job commands that the coordinator starts itself (thread workers) go without the
//! parent-death signal, which would cost a fork per command (see `sys::isolate`): instead the
//! coordinator tells the watchdog each job's process group as it starts and ends, one line on
//! the same stdin (`+PGID`, `-PGID`), and the watchdog kills the groups still open first. A job
//! that drops the mark from its environment (`env -i`) or cannot have it read still dies with
//! its group.
//!
//! Process workers, of the CLI and of every library pool and one-off process, are marked too,
//! each with a mark of its own under the run's (`RUN/N`, through the worker's environment, never
//! this process's: a library's caller may have threads). When a worker ends (it exited, was
//! killed or replaced, or its pool dropped), the coordinator tells the watchdog its mark
//! (`!RUN/N`), and the watchdog kills whatever still bears it: what the worker's tasks started
//! and left running, `setsid` daemons included. A library process starts its watchdog once,
//! with the first worker that proved it calls `init` (so a program that forgot `init` never
//! launches one), and keeps it until it exits; the CLI's is started before any thread.
//!
//! The mode is entered only on proof: the coordinator names itself and a fresh random token in
//! [`WATCHDOG_ENV`], and writes the same token first on the watchdog's stdin, then the run's
//! spill directory, the one thing the watchdog deletes (and only if it is named as this run's
//! own). The variable alone, set by hand or leaked into a program that calls `init`, is an
//! error: it neither sweeps nor deletes anything.
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::sys;

/// Names the watchdog's coordinator and its token (`PID:TOKEN`); with the token on stdin, it
/// turns a launched program into a watchdog.
pub(crate) const WATCHDOG_ENV: &str = "WEFT_WATCHDOG";
/// The run's mark, carried by the coordinator, its workers and every job process.
pub(crate) const RUN_ENV: &str = "WEFT_RUN";

/// The run's own directory for large captured outputs (see `tasks::exec`), which the watchdog
/// removes with whatever is left in it: an output nobody printed (an attempt that was retried,
/// a run stopped before its turn) is not left behind in the temp directory.
pub(crate) const SPILL_ENV: &str = "WEFT_SPILL_DIR";

/// The pipe to this process's watchdog while one runs: its jobs' process groups and its
/// workers' ends are told through it, and closing it lets the watchdog sweep.
static PIPE: Mutex<Option<ChildStdin>> = Mutex::new(None);

/// The spill directory this process made for its run (see [`Watchdog::start`]).
static OWN_SPILL: OnceLock<PathBuf> = OnceLock::new();

/// Where this process's jobs keep captured outputs past the inline limit: its own run's
/// directory, or in a worker process the one its coordinator passed in [`SPILL_ENV`]; else the
/// temp directory (which nobody sweeps; the files have no name while their job runs).
pub(crate) fn spill_dir() -> PathBuf {
    match OWN_SPILL.get() {
        Some(dir) => dir.clone(),
        None => std::env::var_os(SPILL_ENV).map_or_else(std::env::temp_dir, PathBuf::from),
    }
}

/// The file in the run's spill directory that says which running command may pass its output
/// on as it comes (`Output::Group`), 8 bytes little-endian written by the coordinator: with
/// outputs in input order (`-k`), the seq of the job due next; else [`ANY_TURN`]; once the run
/// is stopping, [`NO_TURN`]. `None` outside a run that has a spill directory of its own.
pub(crate) fn turn_file() -> Option<PathBuf> {
    let dir = match OWN_SPILL.get() {
        Some(dir) => dir.clone(),
        None => PathBuf::from(std::env::var_os(SPILL_ENV)?),
    };
    Some(dir.join("turn"))
}

/// In the turn file: any job may take the turn.
pub(crate) const ANY_TURN: u64 = 0;

/// In the turn file: no job may take the turn (the run is stopping).
pub(crate) const NO_TURN: u64 = u64::MAX;

/// Gives a worker process that `cmd` starts this process's spill directory, and nothing it
/// may have inherited from an enclosing run.
pub(crate) fn pass_spill_dir(cmd: &mut Command) {
    match OWN_SPILL.get() {
        Some(dir) => cmd.env(SPILL_ENV, dir),
        None => cmd.env_remove(SPILL_ENV),
    };
}

/// Marks a job command that this process starts itself (on a thread) with the run's mark,
/// where a watchdog sweeps this process's jobs, so that what the job leaves running is swept
/// too. A command started in a worker process inherits that worker's mark instead. Neither
/// gets the spill directory, which is the run's and not the jobs'.
pub(crate) fn mark_job(cmd: &mut Command) {
    if sweeps_jobs() {
        cmd.env(RUN_ENV, run_mark());
    }
    cmd.env_remove(SPILL_ENV);
}

/// This process's run mark, made once: the prefix of every mark its workers carry.
fn run_mark() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| format!("{}.{}", std::process::id(), sys::now_ns()))
}

/// The mark of one worker process, carried in its environment and so by everything it starts:
/// dropping it tells the watchdog that the worker has ended, and the watchdog kills every
/// process left with the mark.
pub(crate) struct WorkerMark(String);

impl WorkerMark {
    /// A fresh mark, unique in this process.
    pub(crate) fn new() -> WorkerMark {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let n = SERIAL.fetch_add(1, Ordering::Relaxed) + 1;
        WorkerMark(format!("{}/{n}", run_mark()))
    }

    /// Marks the worker that `cmd` starts.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        cmd.env(RUN_ENV, &self.0);
    }
}

impl Drop for WorkerMark {
    fn drop(&mut self) {
        tell(format_args!("!{}\n", self.0));
    }
}

/// Makes sure a watchdog runs for this process, starting one from `program` (which calls
/// `init`: a worker of it has just said so) if none does. Only a pool's or a one-off process's
/// first worker starts it; later ones find it running.
pub(crate) fn ensure(program: &Path) -> std::io::Result<()> {
    let mut pipe = PIPE
        .lock()
        .map_err(|_| std::io::Error::other("watchdog pipe poisoned"))?;
    if pipe.is_none() {
        // Never waited for: it outlives this process, which is what it is for.
        let (_child, stdin) = launch(program, run_mark(), None)?;
        *pipe = Some(stdin);
    }
    Ok(())
}

/// Whether a watchdog will kill this process's job processes if this process dies, however it
/// dies, provided their process groups are told to it (see [`JobGroup`]).
pub(crate) fn sweeps_jobs() -> bool {
    PIPE.lock().is_ok_and(|p| p.is_some())
}

/// A job's process group, told to the watchdog while it lives: dropping it says the job ended.
pub(crate) struct JobGroup(u32);

impl JobGroup {
    /// Tells the watchdog that process group `pgid` is a job's.
    pub(crate) fn open(pgid: u32) -> JobGroup {
        tell(format_args!("+{pgid}\n"));
        JobGroup(pgid)
    }
}

impl Drop for JobGroup {
    fn drop(&mut self) {
        tell(format_args!("-{}\n", self.0));
    }
}

/// Writes one line to the watchdog (a write of a few bytes to a pipe is atomic).
fn tell(line: std::fmt::Arguments<'_>) {
    if let Ok(mut pipe) = PIPE.lock()
        && let Some(pipe) = pipe.as_mut()
    {
        let _ = pipe.write_all(line.to_string().as_bytes());
    }
}

/// The coordinator's end: dropping it (or exiting) lets the watchdog sweep.
pub(crate) struct Watchdog {
    child: Option<Child>,
}

impl Watchdog {
    /// Starts the watchdog of this process's run, with a fresh directory for the jobs' large
    /// outputs that it removes at the end. The run's mark and that directory reach jobs and
    /// workers through their own environments ([`mark_job`], [`pass_spill_dir`],
    /// [`WorkerMark`]), never through this process's, which may have threads by now.
    pub(crate) fn start(program: &Path) -> std::io::Result<Watchdog> {
        super::worker::refuse_if_launched().map_err(std::io::Error::other)?;
        let mark = run_mark();
        // Made afresh and private, and removed by this run's watchdog alone. If it cannot be
        // made, outputs go to the temp directory itself, as they do without a watchdog (not to
        // a directory inherited from an enclosing run, which that run's watchdog removes).
        let spill = std::env::temp_dir().join(spill_name(mark));
        let made = OWN_SPILL.get().is_none()
            && std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&spill)
                .is_ok();
        match launch(program, mark, made.then_some(spill.as_path())) {
            Ok((child, pipe)) => {
                if made {
                    let _ = OWN_SPILL.set(spill);
                }
                *PIPE.lock().expect("watchdog pipe") = Some(pipe);
                Ok(Watchdog { child: Some(child) })
            }
            Err(e) => {
                if made {
                    let _ = std::fs::remove_dir(&spill);
                }
                Err(e)
            }
        }
    }
}

/// Starts `program` as the watchdog of run `mark` (and of `spill`, the run's directory, if it
/// has one) and gives it its proof; returns it and the pipe that keeps it waiting.
fn launch(
    program: &Path,
    mark: &str,
    spill: Option<&Path>,
) -> std::io::Result<(Child, ChildStdin)> {
    let token = hex(&sys::random_bytes::<16>()?);
    let mut cmd = Command::new(program);
    cmd.env(WATCHDOG_ENV, format!("{}:{token}", std::process::id()))
        .env(RUN_ENV, mark)
        .env_remove(SPILL_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    // Its own process group: a terminal's Ctrl-C must not kill it before it has swept.
    cmd.process_group(0);
    let mut child = cmd.spawn()?;
    let mut pipe = child.stdin.take().expect("piped stdin");
    let mut preamble = format!("{token}\n").into_bytes();
    if let Some(spill) = spill {
        preamble.extend_from_slice(spill.as_os_str().as_bytes());
    }
    preamble.push(0);
    // Far less than a pipe holds: the write does not wait for the watchdog.
    if let Err(e) = pipe.write_all(&preamble) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok((child, pipe))
}

/// The name of run `mark`'s spill directory in the temp directory.
fn spill_name(mark: &str) -> String {
    format!("weft-{mark}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How long the coordinator waits for the watchdog to sweep before exiting.
const SWEEP_WAIT: Duration = Duration::from_secs(2);

impl Drop for Watchdog {
    /// Lets the watchdog sweep now and waits (at most two seconds) until it has.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(PIPE.lock().map(|mut p| p.take()));
            let until = Instant::now() + SWEEP_WAIT;
            while Instant::now() < until {
                if !matches!(child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// What a launched watchdog was told by its coordinator, checked.
struct Told {
    coordinator: u32,
    mark: String,
    /// The run's spill directory, if it made one.
    spill: Option<PathBuf>,
}

/// Reads and checks what the coordinator named in `value` (the value of [`WATCHDOG_ENV`]) wrote
/// first on `stdin`: the token of `value`, then the run's spill directory.
fn proof(value: &str, stdin: &mut impl BufRead) -> Result<Told, String> {
    let (coordinator, token) = value.split_once(':').ok_or("not PID:TOKEN")?;
    let coordinator: u32 = coordinator
        .parse()
        .map_err(|_| format!("coordinator pid {coordinator:?} is not a number"))?;
    if token.len() != 32 {
        return Err("no token".into());
    }
    if sys::fd_kind(0) != Some(sys::FdKind::Pipe) {
        return Err("stdin is not a coordinator's pipe".into());
    }
    let mut line = Vec::new();
    stdin
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    if line.strip_suffix(b"\n") != Some(token.as_bytes()) {
        return Err("stdin does not start with the token".into());
    }
    let mut spill = Vec::new();
    stdin
        .read_until(0, &mut spill)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    if spill.pop() != Some(0) {
        return Err("stdin ends before the spill directory".into());
    }
    let mark = std::env::var(RUN_ENV).unwrap_or_default();
    // Only its own run's: a fresh directory in the temp directory named for this coordinator.
    let spill = PathBuf::from(std::ffi::OsString::from_vec(spill));
    let own = mark.starts_with(&format!("{coordinator}."))
        && spill.is_absolute()
        && spill.file_name() == Some(std::ffi::OsStr::new(&spill_name(&mark)));
    Ok(Told {
        coordinator,
        mark,
        spill: own.then_some(spill),
    })
}

/// How long the watchdog lets lines gather in its pipe before it reads them.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

/// Runs the watchdog: keeps track of the job groups the coordinator tells it of, and kills what
/// an ended worker left (the processes bearing its mark), until the coordinator closes our
/// stdin; then kills those groups, sweeps the processes marked with the run's mark, removes the
/// run's spill directory, and exits. Without the coordinator's proof (see [`proof`]) it reports the
/// stray variable and exits with status 255.
pub(crate) fn serve(value: &str) -> ! {
    // A `BufReader` of its own, whose buffer can be looked at (`StdinLock`'s cannot).
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let Told {
        coordinator,
        mark,
        spill,
    } = match proof(value, &mut stdin) {
        Ok(told) => told,
        Err(why) => {
            say!(
                "weft: {WATCHDOG_ENV}={value:?} was not set by a weft coordinator ({why}): \
                 a program started by hand must not have {WATCHDOG_ENV} set"
            );
            std::process::exit(super::worker::NOT_LAUNCHED);
        }
    };
    let spare = [coordinator, std::process::id()];
    let mut groups = HashSet::new();
    // Ended workers' marks, swept together once no more lines wait (a pool's workers end
    // together); at the end the run's sweep takes them all.
    let mut ended: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let Some((&sign, rest)) = line.split_first() else {
            continue;
        };
        let Ok(rest) = std::str::from_utf8(rest) else {
            continue;
        };
        match sign {
            // Only a worker of this run: a mark under the run's own.
            b'!' if !mark.is_empty()
                && rest
                    .strip_prefix(mark.as_str())
                    .is_some_and(|n| n.starts_with('/')) =>
            {
                ended.push(rest.to_string());
            }
            b'+' | b'-' => {
                let Ok(pgid) = rest.parse::<u32>() else {
                    continue;
                };
                if sign == b'+' {
                    groups.insert(pgid);
                } else {
                    groups.remove(&pgid);
                }
            }
            _ => {}
        }
        // Once every line that came is handled:
        if stdin.buffer().is_empty() && !sys::readable_now(0) {
            if !ended.is_empty() {
                let marks: Vec<&str> = ended.iter().map(String::as_str).collect();
                sweep(&marks, &spare);
                ended.clear();
            }
            // Lines come two per command job: waking for each would take a core from the jobs
            // twice per job. Nothing here is urgent (a sweep 10 ms later kills the same
            // processes), and the pipe holds thousands of lines meanwhile.
            std::thread::sleep(BATCH_PAUSE);
        }
    }
    for pgid in groups {
        let _ = sys::kill_group(pgid, sys::SIGKILL);
    }
    if !mark.is_empty() {
        sweep(&[&mark], &spare);
    }
    // Nothing of the run is left to write there.
    if let Some(dir) = spill {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::process::exit(0)
}

/// Kills every process marked with one of `marks` or a mark under it (`MARK/...`), except
/// `spare`.
fn sweep(marks: &[&str], spare: &[u32]) {
    // A process may fork while we sweep: go again until a round finds nobody.
    for _ in 0..50 {
        let marked: Vec<u32> = sys::marked_processes(RUN_ENV, marks)
            .into_iter()
            .filter(|p| !spare.contains(p))
            .collect();
        if marked.is_empty() {
            break;
        }
        for pid in marked {
            let _ = sys::kill(pid, sys::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
