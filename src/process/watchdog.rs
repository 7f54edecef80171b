//! The watchdog: this same program re-launched as a small process that outlives the
//! coordinator just long enough to kill every job process the run leaves behind.
//!
//! Worker processes die with the coordinator through the parent-death signal, but that signal
//! reaches only a direct child: a job's own children (`cmd &`, a pipeline, a shell that
//! forks) would be orphaned when a coordinator is SIGKILLed. So every job process carries the
//! run's mark in its environment (inherited by whatever it starts), and when the watchdog's
//! stdin closes (the coordinator exited, however it exited) it kills every process that bears
//! the mark, until none is left.

use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::sys;

/// Names the watchdog's coordinator; its presence turns a launched program into a watchdog.
pub(crate) const WATCHDOG_ENV: &str = "WEFT_WATCHDOG";
/// The run's mark, carried by the coordinator, its workers and every job process.
pub(crate) const RUN_ENV: &str = "WEFT_RUN";

/// The run's own directory for large captured outputs (see `tasks::exec`), which the watchdog
/// removes with whatever is left in it: an output nobody printed (an attempt that was retried,
/// a run stopped before its turn) is not left behind in the temp directory.
pub(crate) const SPILL_ENV: &str = "WEFT_SPILL_DIR";

/// Whether a watchdog of this process is running, so that its jobs need no parent-death signal.
static SWEEPING: AtomicBool = AtomicBool::new(false);

/// Whether a watchdog will kill this process's job processes if this process dies, however it
/// dies (the parent-death signal is then not needed).
pub(crate) fn sweeps_jobs() -> bool {
    SWEEPING.load(Ordering::Relaxed)
}

/// The coordinator's end: dropping it (or exiting) lets the watchdog sweep.
pub(crate) struct Watchdog {
    child: Option<Child>,
}

impl Watchdog {
    /// Marks this process's environment with a fresh run mark and starts the watchdog.
    ///
    /// Must be called before this process starts any thread (it changes the environment).
    pub(crate) fn start(program: &Path) -> std::io::Result<Watchdog> {
        let mark = format!("{}.{}", std::process::id(), sys::now_ns());
        sys::set_env(RUN_ENV, &mark);
        // Made afresh and private; if it cannot be (it exists already), outputs go to the temp
        // directory itself, as they do without a watchdog.
        let spill = std::env::temp_dir().join(format!("weft-{mark}"));
        if std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&spill)
            .is_ok()
        {
            sys::set_env(SPILL_ENV, &spill.to_string_lossy());
        }
        let mut cmd = Command::new(program);
        cmd.env(WATCHDOG_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        // Its own process group: a terminal's Ctrl-C must not kill it before it has swept.
        cmd.process_group(0);
        let child = cmd.spawn()?;
        SWEEPING.store(true, Ordering::Relaxed);
        Ok(Watchdog { child: Some(child) })
    }
}

/// How long the coordinator waits for the watchdog to sweep before exiting.
const SWEEP_WAIT: Duration = Duration::from_secs(2);

impl Drop for Watchdog {
    /// Lets the watchdog sweep now and waits (at most two seconds) until it has.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            SWEEPING.store(false, Ordering::Relaxed);
            drop(child.stdin.take());
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

/// Runs the watchdog: waits for the coordinator to close our stdin, then sweeps and exits.
pub(crate) fn serve(coordinator: &str) -> ! {
    let coordinator: u32 = coordinator.parse().unwrap_or(0);
    let mark = std::env::var(RUN_ENV).unwrap_or_default();
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
    if !mark.is_empty() {
        let spare = [coordinator, std::process::id()];
        // A process may fork while we sweep: go again until a round finds nobody.
        for _ in 0..50 {
            let marked: Vec<u32> = sys::marked_processes(RUN_ENV, &mark)
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
    // Nothing of the run is left to write there.
    if let Some(dir) = std::env::var_os(SPILL_ENV) {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::process::exit(0)
}
