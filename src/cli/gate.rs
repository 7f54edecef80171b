//! When the next job may start: `--delay` (at least so long after the one before), `--load`
//! (while the machine's load is under a limit) and `--memfree` (while that much memory is
//! free). While the gate is shut no job is handed out, and a timer thread wakes the engine
//! when it is worth looking again; a run with none of these options has no gate.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::engine::Waker;

/// How long a shut `--load`/`--memfree` gate waits before looking again.
const RECHECK: Duration = Duration::from_millis(200);

/// The limits a job starts under.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Limits {
    pub(super) delay: Option<Duration>,
    /// `--delay SECSauto`: the delay grows by 30% after a job fails and shrinks by 10% after
    /// one succeeds (GNU parallel's words; a delay of 0 stays 0).
    pub(super) delay_auto: bool,
    /// `--load`: the most runnable threads (the kernel's count of them, /proc/loadavg).
    pub(super) load: Option<f64>,
    /// `--memfree`: the least available memory, in bytes.
    pub(super) memfree: Option<u64>,
}

impl Limits {
    pub(super) fn any(&self) -> bool {
        self.delay.is_some() || self.load.is_some() || self.memfree.is_some()
    }
}

pub(super) struct Gate {
    limits: Limits,
    /// `--delay` now (it changes with `auto`), shared with whoever tells how jobs end.
    delay: Rc<Cell<Option<Duration>>>,
    /// When the last job was handed out.
    last: Option<Instant>,
    /// The instant a timer was set for, so that one timer runs at a time.
    armed: Option<Instant>,
    waker: Waker,
}

impl Gate {
    /// A gate for `limits` whose delay, read at each look, is `delay`.
    pub(super) fn new(limits: Limits, delay: Rc<Cell<Option<Duration>>>, waker: Waker) -> Gate {
        Gate {
            limits,
            delay,
            last: None,
            armed: None,
            waker,
        }
    }

    /// Whether a job may start now; if not, makes sure the engine is woken when it may, or
    /// when it is time to look again.
    pub(super) fn open(&mut self) -> bool {
        let now = Instant::now();
        let next = self.last.zip(self.delay.get()).map(|(last, d)| last + d);
        let at = if let Some(next) = next.filter(|&next| now < next) {
            next
        } else if self.limits.load.is_some_and(|max| load() >= max)
            || self.limits.memfree.is_some_and(|min| available() < min)
        {
            now + RECHECK
        } else {
            return true;
        };
        if self.armed.is_none_or(|t| t <= now) {
            self.armed = Some(at);
            let waker = self.waker.clone();
            std::thread::spawn(move || {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                waker.wake();
            });
        }
        false
    }

    /// A job was handed out now.
    pub(super) fn started(&mut self) {
        self.last = Some(Instant::now());
    }
}

/// `--delay SECSauto`: the delay after a job ended, `ok` or failed.
pub(super) fn adapt(delay: &Cell<Option<Duration>>, ok: bool) {
    let factor = if ok { 0.9 } else { 1.3 };
    // At most a year, as `--delay` itself.
    let year = Duration::from_secs(366 * 86400);
    delay.set(delay.get().map(|d| d.mul_f64(factor).min(year)));
}

/// The number of runnable threads now (the fourth field of /proc/loadavg, before its `/`),
/// less this process's reading thread: what GNU parallel counts with `ps` as the load.
fn load() -> f64 {
    let Ok(text) = std::fs::read_to_string("/proc/loadavg") else {
        return 0.0;
    };
    text.split_whitespace()
        .nth(3)
        .and_then(|f| f.split('/').next())
        .and_then(|n| n.parse::<f64>().ok())
        .map_or(0.0, |n| (n - 1.0).max(0.0))
}

/// Memory available for new work (/proc/meminfo's MemAvailable), in bytes.
pub(super) fn available() -> u64 {
    meminfo("MemAvailable:").unwrap_or(u64::MAX)
}

/// The machine's memory, in bytes.
pub(super) fn total() -> Option<u64> {
    meminfo("MemTotal:")
}

fn meminfo(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

/// Parses `--load N` or `N%` (of `cpus`, counted as -j counts them).
pub(super) fn parse_load(spec: &str, cpus: usize) -> Result<f64, String> {
    let bad = || format!("--load {spec:?}: give a number of running processes, or N% of the CPUs");
    let (number, percent) = match spec.trim().strip_suffix('%') {
        Some(n) => (n, true),
        None => (spec.trim(), false),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    if !n.is_finite() || n <= 0.0 {
        return Err(format!(
            "--load {spec:?}: no job could ever start: give more than 0"
        ));
    }
    let max = if percent { cpus as f64 * n / 100.0 } else { n };
    // Under 1 a job could start only while nothing at all runs: a run that may never end.
    if max < 1.0 {
        return Err(format!(
            "--load {spec:?}: under 1 running process no job could be sure to start: give at least 1"
        ));
    }
    Ok(max)
}

/// Parses `--memfree SIZE`: GNU parallel's suffixes (K M G T P powers of 1024, k m g t p
/// powers of 1000), at most the machine's memory.
pub(super) fn parse_memfree(spec: &str) -> Result<u64, String> {
    let bad = || format!("--memfree {spec:?}: give a size such as 500M or 2G");
    let s = spec.trim();
    let (number, scale) = match s.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let scale: f64 = match c {
                'K' => 1024.0,
                'M' => 1024f64.powi(2),
                'G' => 1024f64.powi(3),
                'T' => 1024f64.powi(4),
                'P' => 1024f64.powi(5),
                'k' => 1e3,
                'm' => 1e6,
                'g' => 1e9,
                't' => 1e12,
                'p' => 1e15,
                _ => return Err(bad()),
            };
            (&s[..s.len() - 1], scale)
        }
        _ => (s, 1.0),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad());
    }
    let bytes = n * scale;
    if let Some(total) = total()
        && bytes > total as f64
    {
        return Err(format!(
            "--memfree {spec:?}: more than this machine's memory ({} MiB): no job could ever start",
            total >> 20
        ));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_gnu_parallels_suffixes() {
        assert_eq!(parse_memfree("1K"), Ok(1024));
        assert_eq!(parse_memfree("1k"), Ok(1000));
        assert_eq!(parse_memfree("2m"), Ok(2_000_000));
        assert_eq!(parse_memfree("0"), Ok(0));
        assert!(parse_memfree("1P").is_err());
        assert!(parse_memfree("x").is_err());
        assert!(parse_memfree("-1").is_err());
    }

    #[test]
    fn a_load_limit_no_job_could_start_under_is_refused() {
        assert!(parse_load("0", 2).is_err());
        assert!(parse_load("-3", 2).is_err());
        assert!(parse_load("nan", 2).is_err());
        assert!(parse_load("0.5", 2).is_err());
        assert!(parse_load("1%", 2).is_err());
        assert_eq!(parse_load("2.5", 2), Ok(2.5));
        assert!(parse_load("100%", 2).unwrap() >= 1.0);
        assert_eq!(parse_load("50%", 4), Ok(2.0));
    }
}
