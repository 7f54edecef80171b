//! Job control on the command line: what each finished job means for the run (`--halt`,
//! `--joblog`), and stopping on signals (SIGINT/SIGTERM stop now, SIGHUP drains).
//!
//! The signal thread never touches the pool: it only sets the shared [`Stop`] level and wakes
//! the engine, and the results loop acts on it, so a signal can never tear a job's output or
//! its joblog row in half.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::time::{Duration, SystemTime};

use super::joblog::{Joblog, Row};
use crate::engine::Waker;
use crate::sys;

/// How far the run has been told to stop.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    level: AtomicU8,
    signal: AtomicI32,
}

/// Start no new job; let running ones finish.
const DRAIN: u8 = 1;
/// Kill running jobs and stop.
const NOW: u8 = 2;

impl Stop {
    /// Whether new jobs may start.
    pub(crate) fn draining(&self) -> bool {
        self.level.load(Ordering::Acquire) >= DRAIN
    }
    fn raise(&self, level: u8) -> u8 {
        self.level.fetch_max(level, Ordering::AcqRel)
    }
    /// The signal that stopped the run, if one did.
    pub(crate) fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::Acquire) {
            0 => None,
            s => Some(s),
        }
    }
}

/// Turns SIGINT and SIGTERM into "stop now" and SIGHUP into "drain"; a second SIGINT or
/// SIGTERM exits at once (the watchdog then kills whatever is left).
pub(crate) fn watch_signals(stop: Arc<Stop>, waker: Waker) -> Result<(), String> {
    sys::watch_signals(move |signal| {
        if signal == sys::SIGHUP {
            stop.raise(DRAIN);
            waker.drain();
            return;
        }
        let _ = stop
            .signal
            .compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire);
        if stop.raise(NOW) == NOW {
            std::process::exit(128 + signal);
        }
        waker.interrupt();
    })
    .map_err(|e| format!("cannot watch signals: {e}"))
}

/// What `--halt` stops on.
#[derive(Clone, Copy, Debug, PartialEq)]
enum On {
    Fail,
    Success,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Limit {
    Count(u64),
    Percent(f64),
}

/// `--halt now|soon,fail|success|done=N|N%`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Halt {
    now: bool,
    on: On,
    limit: Limit,
}

impl Halt {
    /// Whether the limit is a share of all the jobs (`N%`), which needs their number.
    pub(crate) fn of_all(&self) -> bool {
        matches!(self.limit, Limit::Percent(_))
    }

    /// Parses GNU parallel's `--halt` forms, including the old `0`, `1` and `2`.
    pub(crate) fn parse(spec: &str) -> Result<Option<Halt>, String> {
        let bad =
            || format!("--halt {spec:?}: give now|soon,fail|success|done=N|N% (e.g. now,fail=1)");
        let (when, rule) = match spec {
            "0" | "never" => return Ok(None),
            "1" => ("soon", "fail=1"),
            "2" => ("now", "fail=1"),
            _ => spec.split_once(',').ok_or_else(bad)?,
        };
        let now = match when {
            "now" => true,
            "soon" => false,
            _ => return Err(bad()),
        };
        let (on, n) = rule.split_once('=').ok_or_else(bad)?;
        let on = match on {
            "fail" => On::Fail,
            "success" => On::Success,
            "done" => On::Done,
            _ => return Err(bad()),
        };
        let limit = match n.strip_suffix('%') {
            Some(p) => match p.parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Limit::Percent(p),
                _ => return Err(bad()),
            },
            None => match n.parse::<u64>() {
                Ok(n) if n > 0 => Limit::Count(n),
                _ => return Err(bad()),
            },
        };
        Ok(Some(Halt { now, on, limit }))
    }
}

/// A finished job as job control sees it.
pub(crate) struct Finished<'a> {
    pub(crate) seq: u64,
    pub(crate) start: Option<SystemTime>,
    pub(crate) runtime: Duration,
    pub(crate) ok: bool,
    pub(crate) exitval: i32,
    pub(crate) signal: i32,
    pub(crate) receive: u64,
    pub(crate) command: &'a [u8],
}

/// What the results loop does next.
#[derive(Debug, PartialEq)]
pub(crate) enum Flow {
    Go,
    /// `--halt now`: stop collecting; dropping the results kills what runs.
    Halt,
}

/// Counts finished jobs, logs them and applies `--halt`.
pub(crate) struct Control {
    joblog: Option<Joblog>,
    halt: Option<Halt>,
    stop: Arc<Stop>,
    done: u64,
    failed: u64,
    /// The exit status `--halt` decided, once it triggered.
    halted: Option<i32>,
}

impl Control {
    pub(crate) fn new(joblog: Option<Joblog>, halt: Option<Halt>, stop: Arc<Stop>) -> Self {
        Control {
            joblog,
            halt,
            stop,
            done: 0,
            failed: 0,
            halted: None,
        }
    }

    /// Records one finished job; `total` counts the jobs (a share `N%` is of all of them, or
    /// while the input is still being read, of those read so far).
    pub(crate) fn finished(
        &mut self,
        job: &Finished<'_>,
        total: &super::Total,
    ) -> Result<Flow, String> {
        if let Some(log) = &mut self.joblog {
            log.write(&Row {
                seq: job.seq,
                start: job.start,
                runtime: job.runtime,
                send: 0,
                receive: job.receive,
                exitval: job.exitval,
                signal: job.signal,
                command: job.command,
            })?;
        }
        self.done += 1;
        if !job.ok {
            self.failed += 1;
        }
        Ok(self.halt_after(job, total))
    }

    /// Applies `--halt` once `job` is counted.
    fn halt_after(&mut self, job: &Finished<'_>, total: &super::Total) -> Flow {
        let Some(halt) = self.halt else {
            return Flow::Go;
        };
        let matches = match halt.on {
            On::Fail => !job.ok,
            On::Success => job.ok,
            On::Done => true,
        };
        if !matches {
            return Flow::Go;
        }
        // Each job that counts towards the limit is named, as GNU parallel names it.
        let what = match halt.on {
            On::Fail => "failed",
            On::Success => "succeeded",
            On::Done => "finished",
        };
        say!(
            "weft: This job {what}:\n{}",
            String::from_utf8_lossy(job.command)
        );
        if self.halted.is_some() {
            return Flow::Go;
        }
        let count = match halt.on {
            On::Fail => self.failed,
            On::Success => self.done - self.failed,
            On::Done => self.done,
        };
        // A share `N%` is of all the jobs: counted before the first started (the plan asks
        // the input to), else once the input has ended, else those read so far.
        let of = (super::template::counted_total())
            .or_else(|| total.get())
            .unwrap_or_else(|| total.at_least());
        let of = of.max(self.done).max(1);
        // The limit as a count of jobs: GNU parallel's `total * N%`.
        let limit = match halt.limit {
            Limit::Count(n) => n as f64,
            Limit::Percent(p) => of as f64 * p / 100.0,
        };
        if (count as f64) < limit {
            return Flow::Go;
        }
        // GNU parallel's exit status: the triggering job's own for a limit of one job, else
        // the share of all jobs that failed (in percent) or the number that failed.
        self.halted = Some(match (halt.on, halt.limit) {
            (On::Success, _) => 0,
            _ if limit == 1.0 => job_status(job),
            (_, Limit::Percent(_)) => (self.failed as f64 * 100.0 / of as f64).ceil() as i32,
            (_, Limit::Count(_)) => self.failed.min(101) as i32,
        });
        if halt.now {
            self.stop.raise(NOW);
            Flow::Halt
        } else {
            self.stop.raise(DRAIN);
            Flow::Go
        }
    }

    /// Whether finished jobs go to a joblog.
    pub(crate) fn logs(&self) -> bool {
        self.joblog.is_some()
    }

    /// The exit status `--halt` decided, if it triggered.
    pub(crate) fn halted(&self) -> Option<i32> {
        self.halted
    }
}

/// A job's own exit status as the run's: its exit code, 128 + the signal that killed it, or
/// 1 for a task that failed.
fn job_status(job: &Finished<'_>) -> i32 {
    if job.ok {
        0
    } else if job.exitval > 0 {
        job.exitval
    } else if job.signal > 0 {
        128 + job.signal
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::super::Total;
    use super::*;

    #[test]
    fn halt_understands_gnu_parallels_forms() {
        let h = |s| Halt::parse(s).unwrap();
        assert_eq!(h("never"), None);
        assert_eq!(h("0"), None);
        assert_eq!(
            h("2"),
            Some(Halt {
                now: true,
                on: On::Fail,
                limit: Limit::Count(1)
            })
        );
        assert_eq!(
            h("soon,success=25%"),
            Some(Halt {
                now: false,
                on: On::Success,
                limit: Limit::Percent(25.0)
            })
        );
        for bad in [
            "later,fail=1",
            "now,fail",
            "now,fail=0",
            "now,oops=1",
            "now,done=200%",
        ] {
            assert!(Halt::parse(bad).is_err(), "{bad}");
        }
    }

    fn job(seq: u64, ok: bool, exitval: i32) -> Finished<'static> {
        Finished {
            seq,
            start: None,
            runtime: Duration::ZERO,
            ok,
            exitval,
            signal: 0,
            receive: 0,
            command: b"x",
        }
    }

    #[test]
    fn now_fail_1_halts_on_the_first_failure_with_its_exit_status() {
        let stop = Arc::new(Stop::default());
        let mut c = Control::new(None, Halt::parse("now,fail=1").unwrap(), stop.clone());
        let unknown = Total::default();
        assert_eq!(c.finished(&job(1, true, 0), &unknown), Ok(Flow::Go));
        assert_eq!(c.finished(&job(2, false, 7), &unknown), Ok(Flow::Halt));
        assert_eq!(c.halted(), Some(7));
        assert!(stop.draining());
    }

    #[test]
    fn soon_fail_percent_drains_with_the_failure_count() {
        let stop = Arc::new(Stop::default());
        let mut c = Control::new(None, Halt::parse("soon,fail=50%").unwrap(), stop.clone());
        assert_eq!(c.finished(&job(1, false, 1), &Total::of(4)), Ok(Flow::Go));
        assert!(!stop.draining());
        assert_eq!(c.finished(&job(2, false, 1), &Total::of(4)), Ok(Flow::Go));
        assert!(stop.draining());
        // GNU parallel's status: the share of all jobs that failed, in percent.
        assert_eq!(c.halted(), Some(50));
    }

    #[test]
    fn success_halts_with_status_zero() {
        let stop = Arc::new(Stop::default());
        let mut c = Control::new(None, Halt::parse("now,success=1").unwrap(), stop);
        let unknown = Total::default();
        assert_eq!(c.finished(&job(1, false, 3), &unknown), Ok(Flow::Go));
        assert_eq!(c.finished(&job(2, true, 0), &unknown), Ok(Flow::Halt));
        assert_eq!(c.halted(), Some(0));
    }

    #[test]
    fn a_percentage_is_of_all_jobs_once_the_input_is_read() {
        let stop = Arc::new(Stop::default());
        let mut c = Control::new(None, Halt::parse("now,fail=30%").unwrap(), stop);
        let ten = Total::of(10);
        assert_eq!(c.finished(&job(1, false, 1), &ten), Ok(Flow::Go));
        assert_eq!(c.finished(&job(2, false, 1), &ten), Ok(Flow::Go));
        assert_eq!(c.finished(&job(3, false, 1), &ten), Ok(Flow::Halt));
        assert_eq!(c.halted(), Some(30));
    }
}
