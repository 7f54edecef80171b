//! weft runs jobs in parallel on worker threads or worker processes, with one task trait, one
//! result collector and one job-control layer.
//!
//! - Write a [`Task`]: data plus a registered name and a `run` method.
//! - Build a [`Pool`] with [`Pool::builder`], choosing [`Backend::Thread`] or
//!   [`Backend::Process`]; [`Pool::map`] runs a stream of tasks and yields one [`Outcome`]
//!   per task, whatever happened to it (see [`Status`]).
//! - Process workers are this same program re-launched: [`init`] at the top of `main` turns a
//!   launched copy into a worker serving the tasks of a [`Registry`].
//! - One-off workers mirror Python's API: [`Process`] and [`Thread`], waited on together with
//!   [`as_completed`].
//!
//! ```
//! use weft::{Backend, Pool, Status};
//! use weft::tasks::Sum;
//!
//! let mut pool = Pool::builder().workers(2).backend(Backend::Thread).keep_order(true).build()?;
//! for outcome in pool.map([Sum::new(0..10), Sum::new(10..20)]) {
//!     assert!(matches!(outcome.status, Status::Ok(_)));
//! }
//! # Ok::<(), weft::Error>(())
//! ```
//!
//! # Features
//!
//! The default features are what the `weft` binary needs: `cli` (the command line, `weft::cli`,
//! with clap), `fetch` (the `tasks::Fetch` task, with ureq and rustls) and `sha256` (the
//! `tasks::Sha256Sum` task). A program that only uses the library builds without them:
//! `weft = { version = "0.1", default-features = false }`.
#![deny(missing_docs)]
// The command line is the only user of a few of the crate's inner pieces (the live job source,
// the watchdog's job groups, some limits): built without it, they are unused, not dead.
#![cfg_attr(not(feature = "cli"), allow(dead_code, unused_imports))]

/// `eprintln!` that cannot panic: a closed stderr (`2>&1 | head`) must not turn a message into
/// a panic, whose exit status 101 reads as "more than 100 jobs failed".
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod catch;
mod collect;
mod engine;
mod error;
mod event;
mod handle;
mod outcome;
mod pool;
mod process;
mod queue;
mod registry;
mod sys;
mod task;
mod text;
mod thread;
mod wire;

#[cfg(feature = "broker")]
pub mod broker;
#[cfg(feature = "cli")]
pub mod cli;
pub mod tasks;
#[cfg(feature = "testing")]
pub mod testing;

/// The "From Python" guide (`docs/from-python.md`), included so that its snippets run as doc
/// tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/from-python.md")]
pub struct FromPython;

pub use error::{Error, ErrorKind};
pub use handle::{
    AsCompleted, Handle, IntoHandle, Process, ProcessBuilder, Thread, ThreadBuilder, as_completed,
};
pub use outcome::{Crash, Outcome, Status};
pub use pool::{FnResults, JsonResults, Pool, PoolBuilder, Results};
pub use process::worker::init;
pub use queue::Queue;
pub use registry::{Registry, TaskInfo};
pub use task::{Backend, CancelToken, Context, Failure, Task};
