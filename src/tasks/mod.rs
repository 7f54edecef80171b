//! The built-in tasks of the `weft` binary. They are ordinary [`Task`]s, public so that
//! programs can run them on pools of their own.

use std::ops::Range;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

mod capture;
mod direct;
pub(crate) mod exec;
pub(crate) mod feed;
#[cfg(feature = "fetch")]
mod fetch;
mod kill;
#[cfg(feature = "sha256")]
mod sha256;

pub(crate) use capture::compress_into;
pub use exec::{Block, Captured, Compress, Compressed, Exec, ExecOutput, Input, Output};
#[cfg(feature = "fetch")]
pub use fetch::{Fetch, Fetched};
pub use kill::{KillSequence, Signal};
#[cfg(feature = "sha256")]
pub use sha256::Sha256Sum;

use crate::registry::Registry;
use crate::task::{Backend, Context, Failure, Task};
use crate::text::brief_quoted;

/// Every built-in task: what the `weft` binary serves, to extend with tasks of one's own.
/// `sha256` and `fetch` are there with their features (both default).
///
/// # Examples
///
/// ```
/// let names: Vec<&str> = weft::tasks::registry().tasks().map(|t| t.name).collect();
/// # #[cfg(all(feature = "fetch", feature = "sha256"))]
/// assert_eq!(names, ["exec", "fetch", "noop", "sha256", "sleep", "sum"]);
/// ```
pub fn registry() -> Registry {
    let registry = Registry::new()
        .task::<Exec>()
        .task::<Sleep>()
        .task::<Sum>()
        .task::<Noop>();
    #[cfg(feature = "sha256")]
    let registry = registry.task::<Sha256Sum>();
    #[cfg(feature = "fetch")]
    let registry = registry.task::<Fetch>();
    registry
}

/// The OS's words for an I/O error, as coreutils prints them ("No such file or directory").
#[cfg_attr(not(any(feature = "fetch", feature = "sha256")), allow(dead_code))]
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Sleeps for a number of seconds (fractions allowed) and outputs nothing. Stops early, as
/// cancelled, when its job is cancelled. From the command line the input is the seconds,
/// `weft --task sleep ::: 0.5 2`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft::tasks::Sleep;
///
/// let mut pool = weft::Pool::builder().workers(4).build()?;
/// let naps = pool.map((0..4).map(|_| Sleep::new(Duration::from_millis(20))));
/// assert!(naps.map(|o| o.is_ok()).all(|ok| ok));
/// # Ok::<(), weft::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sleep(Seconds);

/// A duration in seconds, written as a number or a numeric string (`"0.25"`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Seconds(f64);

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
            SecondsRepr::Text(t) => t.trim().parse().map_err(|_| {
                format!("{} is not a number of seconds", brief_quoted(t.as_bytes()))
            })?,
        };
        Seconds(s).duration().map(|_| Seconds(s))
    }
}

impl Seconds {
    /// The duration, if this is a number of seconds a [`Duration`] can hold.
    fn duration(self) -> Result<Duration, String> {
        // `{:?}` writes 1e300 as such, where `{}` writes its 301 digits.
        if self.0.is_nan() || self.0 < 0.0 {
            return Err(format!("{:?} is not a number of seconds", self.0));
        }
        Duration::try_from_secs_f64(self.0).map_err(|_| {
            // u64::MAX seconds at most, which an f64 rounds up past: 1e19 is the round figure.
            format!(
                "{:?} seconds is too long: give at most 1e19 seconds",
                self.0
            )
        })
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
        let length = self.0.duration().map_err(Failure::new)?;
        // Past what an `Instant` can hold, the sleep ends only when the job is cancelled.
        let until = Instant::now().checked_add(length);
        let tick = Duration::from_millis(10);
        loop {
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) {
                return Ok(());
            }
            if cx.is_cancelled() {
                return Err(Failure::cancelled());
            }
            std::thread::sleep(until.map_or(tick, |u| (u - now).min(tick)));
        }
    }
}

/// The sum of the integers in a half-open range `A..B` (empty when `B <= A`), worked out in
/// closed form: right for every range of `u64`, whose sum can pass `u64::MAX` (a `u128`
/// holds them all). From the command line a sum that fits in a `u64` is a JSON number, a
/// larger one a string of its decimal digits, so that the plain output prints every digit.
/// From the command line the input is the range, `weft --task sum ::: 0..1000000`.
///
/// # Examples
///
/// ```
/// use weft::tasks::Sum;
///
/// let sum = weft::Thread::builder().spawn(Sum::new(0..u64::MAX))?;
/// assert_eq!(sum.into_outcome().ok(), Some(u128::from(u64::MAX) * u128::from(u64::MAX - 1) / 2));
/// # Ok::<(), weft::Error>(())
/// ```
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
                let bad = || {
                    format!(
                        "{} is not a range A..B of integers from 0 to {}",
                        brief_quoted(t.as_bytes()),
                        u64::MAX
                    )
                };
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
    fn run(self, _cx: &Context) -> Result<u128, Failure> {
        Ok(sum_of(self.range))
    }
}

/// `a + (a+1) + ... + (b-1)` as `n * (a + b - 1) / 2` with `n = b - a` terms. The product is
/// below `b * (b - 1) < 2^128`, and of `n` and `a + b - 1` one is even (they differ by the
/// odd `2a - 1`), so halving it first keeps every step exact.
fn sum_of(range: Range<u64>) -> u128 {
    if range.end <= range.start {
        return 0;
    }
    let n = u128::from(range.end - range.start);
    let ends = u128::from(range.start) + u128::from(range.end) - 1;
    if n % 2 == 0 {
        n / 2 * ends
    } else {
        ends / 2 * n
    }
}

/// Does nothing: the floor of per-job overhead, for benchmarks (`weft --task noop` reads any
/// records and prints nothing). Any input record will do.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use weft::tasks::Noop;
///
/// let mut pool = weft::Pool::builder().workers(2).build()?;
/// let start = Instant::now();
/// let jobs = pool.map((0..10_000).map(|_| Noop)).count();
/// println!("{:.0} jobs/s", jobs as f64 / start.elapsed().as_secs_f64());
/// assert_eq!(jobs, 10_000);
/// # Ok::<(), weft::Error>(())
/// ```
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The sum by adding, for ranges short enough to add up.
    fn added(range: Range<u64>) -> u128 {
        range.map(u128::from).sum()
    }

    #[test]
    fn sum_in_closed_form_matches_adding_up() {
        let top = u64::MAX;
        for range in [
            0..0,
            5..5,
            Range { start: 9, end: 3 },
            0..1,
            0..10,
            1..2,
            7..1000,
            top - 1000..top,
            top - 1..top,
        ] {
            assert_eq!(sum_of(range.clone()), added(range.clone()), "{range:?}");
        }
    }

    #[test]
    fn sum_of_the_largest_ranges_is_exact() {
        let top = u128::from(u64::MAX);
        // 0 + 1 + ... + (2^64 - 2) = (2^64 - 1)(2^64 - 2) / 2.
        assert_eq!(sum_of(0..u64::MAX), top * (top - 1) / 2);
        assert_eq!(
            sum_of(0..u64::MAX),
            170_141_183_460_469_231_704_017_187_605_319_778_305
        );
        assert_eq!(sum_of(1..u64::MAX), top * (top - 1) / 2);
        assert_eq!(sum_of(0..6_074_001_001), 18_446_744_077_037_500_500);
        assert!(sum_of(0..6_074_001_001) > u128::from(u64::MAX));
    }

    #[test]
    fn seconds_past_a_duration_are_refused_not_panicked_on() {
        let refused = |r: SecondsRepr| Seconds::try_from(r).unwrap_err();
        assert!(refused(SecondsRepr::Number(1e300)).contains("too long"));
        assert!(refused(SecondsRepr::Number(f64::NAN)).contains("not a number"));
        assert!(refused(SecondsRepr::Number(-1.0)).contains("not a number"));
        assert!(refused(SecondsRepr::Text("1e300".into())).contains("too long"));
        let big = "x".repeat(1 << 20);
        assert!(refused(SecondsRepr::Text(big)).len() < 300);
        assert_eq!(
            Seconds::try_from(SecondsRepr::Number(1e19)),
            Ok(Seconds(1e19))
        );
    }

    #[test]
    fn a_huge_record_makes_a_short_sum_error() {
        let big = format!("1..{}", "9".repeat(1 << 20));
        let e = Sum::try_from(SumRepr::Text(big)).unwrap_err();
        assert!(e.len() < 300, "{} bytes", e.len());
        assert!(e.contains("(1048579 bytes)"), "{e}");
    }
}
