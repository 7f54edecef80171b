//! Test doubles, with the `testing` feature: tasks that misbehave on purpose, to see what weft
//! does about it. weft's own tests and benches use them; they are not part of its API.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::registry::Registry;
use crate::task::{Backend, Context, Failure, Task};

/// Every built-in task and the test doubles: what the `weft` binary serves when built with the
/// `testing` feature.
pub fn registry() -> Registry {
    crate::tasks::registry().task::<Fault>().task::<Echo>()
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
    /// Calls `std::process::exit` with this status (`{"exitwith": 3}`).
    ExitWith(i32),
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
            Fault::ExitWith(code) => std::process::exit(code),
            Fault::Segv => crate::sys::die_by(crate::sys::SIGSEGV),
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
