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
mod message;
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

/// What the registration macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::Linked;
    pub use inventory;
}

/// Registers [`Task`] types at link time, so that a worker process finds them by name without
/// a hand-built [`Registry`]: every registry (including `Registry::new()` handed to [`init`])
/// falls back on what was registered so, and lists it among its [`tasks`](Registry::tasks). A
/// registry's own task of the same name comes first.
/// Write it at module level, once per type, in the program whose workers run the tasks.
///
/// # Examples
///
/// ```no_run,standalone_crate
/// use serde::{Deserialize, Serialize};
/// use weft::{Context, Failure, Pool, Backend, Task};
///
/// #[derive(Serialize, Deserialize)]
/// struct Square(u64);
///
/// impl Task for Square {
///     const NAME: &'static str = "square";
///     type Output = u64;
///     fn run(self, _cx: &Context) -> Result<u64, Failure> {
///         Ok(self.0 * self.0)
///     }
/// }
///
/// weft::register!(Square);
///
/// fn main() -> Result<(), weft::Error> {
///     weft::init(&weft::Registry::new());
///     let mut pool = Pool::builder().backend(Backend::Process).workers(2).build()?;
///     let total: u64 = pool.map((1..=3).map(Square)).filter_map(|o| o.ok()).sum();
///     assert_eq!(total, 1 + 4 + 9);
///     Ok(())
/// }
/// ```
#[macro_export]
macro_rules! register {
    ($($task:ty),+ $(,)?) => {
        $(
            const _: () = {
                fn add(registry: $crate::Registry) -> $crate::Registry {
                    registry.task::<$task>()
                }
                $crate::__private::inventory::submit! { $crate::__private::Linked(add) }
            };
        )+
    };
}

/// Registers plain functions (`fn(In) -> Out`, serde in and out) at link time under their
/// names (the last segment of the path), so that [`Pool::map_fn_proc`] and
/// [`ProcessBuilder::spawn_fn`] run them on worker processes: no struct, no
/// [`Task`] impl, no hand-built [`Registry`] (see [`register!`]; [`Registry::function`] is the
/// explicit form). The worker program must register the same names: it is this program when
/// it re-launches itself, as it does by default.
///
/// # Examples
///
/// ```no_run,standalone_crate
/// use weft::{Backend, Pool, Process};
///
/// fn double(x: u64) -> u64 {
///     x * 2
/// }
///
/// weft::register_fn!(double);
///
/// fn main() -> Result<(), weft::Error> {
///     weft::init(&weft::Registry::new());
///     let mut pool = Pool::builder().backend(Backend::Process).workers(2).keep_order(true).build()?;
///     let doubled: Vec<u64> = pool.map_fn_proc(1..=3, double).filter_map(|o| o.ok()).collect();
///     assert_eq!(doubled, [2, 4, 6]);
///
///     // Python's `Process(target=double, args=(21,))`.
///     let mut p = Process::builder().spawn_fn(double, 21)?;
///     assert_eq!(p.join().clone().ok(), Some(42));
///     Ok(())
/// }
/// ```
#[macro_export]
macro_rules! register_fn {
    ($($f:path),+ $(,)?) => {
        $(
            const _: () = {
                fn add(registry: $crate::Registry) -> $crate::Registry {
                    registry.function($f)
                }
                $crate::__private::inventory::submit! { $crate::__private::Linked(add) }
            };
        )+
    };
}

pub use error::{Error, ErrorKind};
pub use handle::{
    AsCompleted, Handle, IntoHandle, Process, ProcessBuilder, Thread, ThreadBuilder, as_completed,
};
pub use message::{Message, Messages, SendError};
pub use outcome::{Crash, Outcome, Status};
pub use pool::{FnResults, JsonResults, Pool, PoolBuilder, Results};
pub use process::worker::init;
pub use queue::Queue;
pub use registry::{Registry, TaskInfo};
pub use task::{Backend, CancelToken, Context, Failure, Task};
