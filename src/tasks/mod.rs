//! The built-in tasks of the `weft` binary. They are ordinary [`Task`]s, public so that
//! programs and tests can run them on pools of their own.

use std::ops::Range;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub(crate) mod exec;
mod net;

pub use exec::{Captured, Exec, ExecOutput, INLINE_LIMIT, Output, default_term_seq};
pub use net::{Fetch, Fetched, Sha256Sum};

use crate::registry::Registry;
use crate::task::{Backend, Context, Failure, Task};

/// Every built-in task.
pub fn registry() -> Registry {
    Registry::new()
        .task::<Exec>()
        .task::<Sha256Sum>()
        .task::<Fetch>()
        .task::<Sleep>()
        .task::<Sum>()
        .task::<Noop>()
        .task::<Fault>()
        .task::<Echo>()
}

/// Sleeps for a number of seconds (fractions allowed) and outputs nothing. Stops early, as
/// cancelled, when its job is cancelled.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sleep(pub Seconds);

/// A duration in seconds, written as a number or a numeric string (`"0.25"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seconds(pub f64);

impl Serialize for Seconds {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Text formats (the command line's JSON) take a number or a string; binary ones (the
        // wire to process workers) cannot guess a type and carry the f64 alone.
        let repr = if d.is_human_readable() {
            SecondsRepr::deserialize(d)?
        } else {
            SecondsRepr::Number(f64::deserialize(d)?)
        };
        Seconds::try_from(repr).map_err(serde::de::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SecondsRepr {
    Number(f64),
    Text(String),
}

impl TryFrom<SecondsRepr> for Seconds {
    type Error = String;
    fn try_from(r: SecondsRepr) -> Result<Self, String> {
        let s = match r {
            SecondsRepr::Number(n) => n,
            SecondsRepr::Text(t) => t
                .trim()
                .parse()
                .map_err(|_| format!("{t:?} is not a number of seconds"))?,
        };
        if s.is_finite() && s >= 0.0 {
            Ok(Seconds(s))
        } else {
            Err(format!("{s} is not a number of seconds"))
        }
    }
}

impl Sleep {
    /// Sleeps this long.
    pub fn new(d: Duration) -> Self {
        Sleep(Seconds(d.as_secs_f64()))
    }
}

impl Task for Sleep {
    const NAME: &'static str = "sleep";
    const ABOUT: &'static str = "sleep SECONDS (fractions allowed); prints nothing";
    type Output = ();
    fn run(self, cx: &Context) -> Result<(), Failure> {
        let until = Instant::now() + Duration::from_secs_f64(self.0.0);
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            if cx.is_cancelled() {
                return Err(Failure::cancelled());
            }
            std::thread::sleep((until - now).min(Duration::from_millis(10)));
        }
    }
}

/// The sum of the integers in a half-open range `A..B`.
#[derive(Clone, Debug)]
pub struct Sum {
    range: Range<u64>,
}

impl Serialize for Sum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&format_args!("{}..{}", self.range.start, self.range.end))
        } else {
            (self.range.start, self.range.end).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Sum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = if d.is_human_readable() {
            SumRepr::deserialize(d)?
        } else {
            let (a, b) = <(u64, u64)>::deserialize(d)?;
            SumRepr::Pair([a, b])
        };
        Sum::try_from(repr).map_err(serde::de::Error::custom)
    }
}

impl Sum {
    /// Sums `range`.
    pub fn new(range: Range<u64>) -> Self {
        Sum { range }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SumRepr {
    Text(String),
    Pair([u64; 2]),
}

impl TryFrom<SumRepr> for Sum {
    type Error = String;
    fn try_from(r: SumRepr) -> Result<Self, String> {
        match r {
            SumRepr::Pair([a, b]) => Ok(Sum::new(a..b)),
            SumRepr::Text(t) => {
                let bad = || format!("{t:?} is not a range A..B of non-negative integers");
                let (a, b) = t.trim().split_once("..").ok_or_else(bad)?;
                let a = a.trim().parse().map_err(|_| bad())?;
                let b = b.trim().parse().map_err(|_| bad())?;
                Ok(Sum::new(a..b))
            }
        }
    }
}

impl Task for Sum {
    const NAME: &'static str = "sum";
    const ABOUT: &'static str = "sum of the integers in the half-open range A..B";
    const BACKEND: Backend = Backend::Process;
    type Output = u128;
    fn run(self, cx: &Context) -> Result<u128, Failure> {
        let mut total: u128 = 0;
        for (i, n) in self.range.enumerate() {
            total += n as u128;
            if i % (1 << 20) == 0 && cx.is_cancelled() {
                return Err(Failure::cancelled());
            }
        }
        Ok(total)
    }
}

/// Does nothing: the floor of per-job overhead, for benchmarks. Any input record will do.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Noop;

impl<'de> Deserialize<'de> for Noop {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            serde::de::IgnoredAny::deserialize(d)?;
        } else {
            <()>::deserialize(d)?;
        }
        Ok(Noop)
    }
}

impl Task for Noop {
    const NAME: &'static str = "noop";
    const ABOUT: &'static str = "do nothing (measures per-job overhead)";
    type Output = ();
    fn run(self, _cx: &Context) -> Result<(), Failure> {
        Ok(())
    }
}

/// Misbehaves on purpose, to see what weft does about it: `ok`, `fail`, `panic`, `abort`,
/// `exit` (exits the worker with status 0 mid-job), `segv`, `hang` (ignores cancellation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Succeeds, outputting the worker's pid.
    Ok,
    /// Returns an error.
    Fail,
    /// Panics.
    Panic,
    /// Calls `std::process::abort()`.
    Abort,
    /// Calls `std::process::exit(0)` in the middle of the job.
    Exit,
    /// Raises SIGSEGV.
    Segv,
    /// Sleeps for an hour without looking at its cancel token.
    Hang,
    /// Aborts its worker on every attempt before this one, then succeeds
    /// (`{"abortuntil": 3}` on the command line): a job that needs retries.
    AbortUntil(u32),
    /// Fails on every attempt before this one, then succeeds (`{"failuntil": 3}`).
    FailUntil(u32),
    /// Allocates and touches this many MiB, then succeeds (`{"hog": 512}`).
    Hog(u64),
}

impl Task for Fault {
    const NAME: &'static str = "fault";
    const ABOUT: &'static str = "misbehave on purpose: ok|fail|panic|abort|exit|segv|hang, or JSON {\"abortuntil\":N} {\"failuntil\":N} {\"hog\":MiB}";
    const BACKEND: Backend = Backend::Process;
    type Output = u32;
    fn run(self, cx: &Context) -> Result<u32, Failure> {
        match self {
            Fault::Ok => Ok(std::process::id()),
            Fault::AbortUntil(n) if cx.attempt() < n => std::process::abort(),
            Fault::FailUntil(n) if cx.attempt() < n => {
                Err(Failure::new(format!("failed on attempt {}", cx.attempt())))
            }
            Fault::AbortUntil(_) | Fault::FailUntil(_) => Ok(std::process::id()),
            Fault::Hog(mib) => {
                let hog = vec![1u8; (mib as usize) << 20];
                Ok(std::process::id() + u32::from(hog[hog.len() / 2] - 1))
            }
            Fault::Fail => Err(Failure::new("failed on purpose")),
            Fault::Panic => panic!("panicked on purpose"),
            Fault::Abort => std::process::abort(),
            Fault::Exit => std::process::exit(0),
            Fault::Segv => crate::sys::die_by(nix::sys::signal::Signal::SIGSEGV as i32),
            Fault::Hang => {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(std::process::id())
            }
        }
    }
}

/// Sends its bytes back after doing what its [`Fault`] says: a payload's round trip through a
/// worker, for tests and benchmarks (`{"bytes": "hello", "fault": "ok"}` on the command line
/// with `--json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Echo {
    /// The bytes sent back.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// What to do first: [`Fault::Ok`] does nothing more.
    pub fault: Fault,
}

impl Task for Echo {
    const NAME: &'static str = "echo";
    const ABOUT: &'static str = "send the input bytes back (measures payload transfer)";
    const BACKEND: Backend = Backend::Process;
    type Output = serde_bytes::ByteBuf;
    fn run(self, cx: &Context) -> Result<serde_bytes::ByteBuf, Failure> {
        self.fault.run(cx)?;
        Ok(serde_bytes::ByteBuf::from(self.bytes))
    }
}
