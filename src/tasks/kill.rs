//! `KillSequence`: how a command is stopped when its job is timed out or cancelled, the
//! command line's `--term-seq`. Its own type, not a list of numbers, so that a caller writes
//! `Signal::TERM` and a `Duration` rather than remember which number of a pair is which.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::sys;

/// A signal, by its number: [`Signal::TERM`], or parsed from `TERM`, `SIGTERM` or `15`.
///
/// # Examples
///
/// ```
/// use weft::tasks::Signal;
///
/// assert_eq!("TERM".parse::<Signal>()?, Signal::TERM);
/// assert_eq!("sigkill".parse::<Signal>()?, Signal::KILL);
/// assert_eq!("2".parse::<Signal>()?.number(), 2);
/// assert!("NOPE".parse::<Signal>().is_err());
/// # Ok::<(), weft::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Signal(i32);

impl Signal {
    /// SIGTERM: asks a process to stop.
    pub const TERM: Signal = Signal(sys::SIGTERM);
    /// SIGKILL: stops a process at once; it cannot be caught.
    pub const KILL: Signal = Signal(sys::SIGKILL);
    /// SIGINT: what Ctrl-C sends.
    pub const INT: Signal = Signal(sys::SIGINT);
    /// SIGHUP: the terminal went away.
    pub const HUP: Signal = Signal(sys::SIGHUP);

    /// The signal's number, as `kill(2)` takes it.
    pub fn number(self) -> i32 {
        self.0
    }
}

impl FromStr for Signal {
    type Err = Error;

    /// A name with or without `SIG`, in any case, or a number.
    fn from_str(name: &str) -> Result<Signal, Error> {
        sys::signal_number(name.trim()).map(Signal).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("{name:?} is not a signal: give a name such as TERM or a number"),
            )
        })
    }
}

impl fmt::Display for Signal {
    /// The signal's name, `SIGTERM`; its number if it has none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match sys::signal_str(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The longest wait of a kill sequence: a stopped job's sequence holds up the end of the run
/// for as long as its waits add up to.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// How a command is stopped when its job is timed out or cancelled: each signal is sent to
/// its process group in turn, then the command gets the wait that follows it to exit; one
/// still running after the last wait is killed with SIGKILL. Waits count in milliseconds, at
/// most an hour each.
///
/// The default is GNU parallel's: TERM, 200 ms, TERM, 100 ms, TERM, 50 ms, KILL, 25 ms. The
/// command line's `--term-seq` is parsed with [`FromStr`]; a missing last wait is 25 ms.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use weft::tasks::{Exec, KillSequence, Signal};
///
/// // INT first, as Ctrl-C would, then the default's last resort.
/// let gentle: KillSequence = "INT,1000,KILL,25".parse()?;
/// assert_eq!(
///     gentle,
///     KillSequence::new([
///         (Signal::INT, Duration::from_secs(1)),
///         (Signal::KILL, Duration::from_millis(25)),
///     ])
/// );
/// assert_eq!(gentle.total_wait(), Duration::from_millis(1025));
/// assert_eq!(KillSequence::default().to_string(), "SIGTERM,200,SIGTERM,100,SIGTERM,50,SIGKILL,25");
///
/// let job = Exec { term_seq: gentle, ..Exec::new("make test") };
/// # let _ = job;
/// # Ok::<(), weft::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KillSequence {
    /// Each signal and the milliseconds to wait after it: what the wire carries, as compact as
    /// the pairs of numbers it replaced.
    steps: Vec<(Signal, u64)>,
}

impl KillSequence {
    /// The signals in order, each with the wait after it (rounded down to the millisecond, at
    /// most an hour).
    pub fn new(steps: impl IntoIterator<Item = (Signal, Duration)>) -> Self {
        KillSequence {
            steps: steps
                .into_iter()
                .map(|(signal, wait)| (signal, wait.min(MAX_WAIT).as_millis() as u64))
                .collect(),
        }
    }

    /// The signals in order, each with the wait after it.
    pub fn steps(&self) -> impl Iterator<Item = (Signal, Duration)> + '_ {
        self.steps
            .iter()
            .map(|&(signal, ms)| (signal, Duration::from_millis(ms).min(MAX_WAIT)))
    }

    /// How long a command that ignores every signal but the last SIGKILL takes to stop: the
    /// waits added up.
    pub fn total_wait(&self) -> Duration {
        self.steps().fold(Duration::ZERO, |total, (_, wait)| {
            total.saturating_add(wait)
        })
    }
}

impl Default for KillSequence {
    /// GNU parallel's: TERM, 200 ms, TERM, 100 ms, TERM, 50 ms, KILL, 25 ms.
    fn default() -> Self {
        let ms = Duration::from_millis;
        KillSequence::new([
            (Signal::TERM, ms(200)),
            (Signal::TERM, ms(100)),
            (Signal::TERM, ms(50)),
            (Signal::KILL, ms(25)),
        ])
    }
}

impl FromStr for KillSequence {
    type Err = Error;

    /// `SIGNAL,MS,SIGNAL,MS,...`: signal names or numbers, each followed by the milliseconds to
    /// wait (25 if the last is missing).
    fn from_str(spec: &str) -> Result<Self, Error> {
        let bad = || {
            Error::new(
                ErrorKind::Config,
                format!("{spec:?}: give SIGNAL,MS,... such as TERM,200,TERM,100,KILL,25"),
            )
        };
        let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
        let mut steps = Vec::new();
        for pair in parts.chunks(2) {
            let signal = sys::signal_number(pair[0]).ok_or_else(bad)?;
            let wait = match pair.get(1) {
                Some(ms) => ms.parse::<u64>().map_err(|_| bad())?,
                None => 25,
            };
            let most = MAX_WAIT.as_millis();
            if u128::from(wait) > most {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("{spec:?}: a wait of {wait} ms: give at most {most} (an hour)"),
                ));
            }
            steps.push((Signal(signal), wait));
        }
        if steps.is_empty() {
            return Err(bad());
        }
        Ok(KillSequence { steps })
    }
}

impl fmt::Display for KillSequence {
    /// As `--term-seq` takes it: `SIGTERM,200,SIGKILL,25`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (signal, wait)) in self.steps().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(f, "{comma}{signal},{}", wait.as_millis())?;
        }
        Ok(())
    }
}
