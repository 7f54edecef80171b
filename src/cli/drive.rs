//! Running the jobs: the input read on a thread of its own, what a finished job means for the
//! joblog and the exit status, and the checks made once before the first job starts.

use std::io;
use std::rc::Rc;
use std::sync::Arc;

use super::control;
use super::input::Shape;
use super::output::Printer;
use crate::Status;

/// Why a job the joblog lists as done is not run again.
pub(super) const RESUMED: &str = "finished in an earlier run (--resume)";

/// Whether a job was left out on purpose (done in an earlier run, or not started because the
/// run drained): it is neither printed, logged nor counted.
pub(super) fn left_out<T>(status: &Status<T>) -> bool {
    matches!(status, Status::Skipped(why) if why == RESUMED || why == crate::engine::DRAINED)
}

/// The run's exit status, once every outcome is printed.
pub(super) fn conclude(
    printer: Printer,
    ctl: &control::Control,
    stop: &control::Stop,
    failed_input: &std::cell::Cell<Option<String>>,
) -> Result<i32, String> {
    let code = printer.finish();
    if let Some(e) = failed_input.take() {
        return Err(e);
    }
    if let Some(signal) = stop.signal() {
        eprintln!(
            "weft: stopped by {}: running jobs were killed; finished ones are printed{}",
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

/// Jobs read on a thread of their own, so that waiting for input (a slow pipe) never stops
/// the pool from collecting results or timing jobs out. The queue between is bounded.
pub(super) struct Feed {
    rx: crossbeam_channel::Receiver<io::Result<Vec<Vec<u8>>>>,
    pub(super) error: Rc<std::cell::Cell<Option<String>>>,
    pub(super) total: Total,
    /// Once set, no further job is handed out (`--halt`, SIGHUP, SIGINT).
    stop: Arc<control::Stop>,
}

impl Feed {
    pub(super) fn start(
        shape: Shape,
        waker: crate::engine::Waker,
        stop: Arc<control::Stop>,
    ) -> Feed {
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let total = Total::default();
        let counter = total.clone();
        std::thread::Builder::new()
            .name("weft-input".into())
            .spawn(move || {
                let jobs = match shape.open() {
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

impl Iterator for Feed {
    /// `Some(None)`: no job ready yet.
    type Item = Option<Vec<Vec<u8>>>;

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
