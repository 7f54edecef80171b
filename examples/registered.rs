//! Plain functions and tasks found by worker processes without a hand-built registry, and a
//! task that reports its progress to its caller while it runs.
//!
//! Mirrors Python's `Pool().map(double, range(5))`, `Process(target=greet, args=("bob",))` and
//! a `multiprocessing.Queue` handed to a worker for its progress. weft's tests also use this
//! program as the worker of their process pools (see `tests/py_fn.rs`, `tests/py_send.rs`).
//!
//! ```sh
//! cargo run --example registered
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use weft::{Backend, Context, Failure, Pool, Process, Registry, SendError, Task};

fn double(x: u64) -> u64 {
    x * 2
}

fn greet(name: String) -> String {
    format!("hello {name}")
}

/// The worker's pid: which process ran the job.
fn pid(_: ()) -> u32 {
    std::process::id()
}

// Found by name in every worker process: no `Registry` to build by hand.
weft::register_fn!(double, greet, pid);

/// Sends `count` progress messages to its caller, `"1 of N"` to `"N of N"`, then reads the
/// file `wait` if given (a FIFO: the job ends only once someone writes to it), and outputs
/// how its sends went.
#[derive(Serialize, Deserialize)]
struct Chatter {
    count: u32,
    wait: Option<PathBuf>,
}

/// How a [`Chatter`]'s sends went: passed on, dropped as the caller's channel was full,
/// dropped as nobody reads.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Sends {
    ok: u32,
    full: u32,
    closed: u32,
}

impl Task for Chatter {
    const NAME: &'static str = "chatter";
    type Output = Sends;
    fn run(self, cx: &Context) -> Result<Sends, Failure> {
        let mut sends = Sends::default();
        for i in 1..=self.count {
            match cx.send(format!("{i} of {}", self.count)) {
                Ok(()) => sends.ok += 1,
                Err(SendError::Full) => sends.full += 1,
                Err(_) => sends.closed += 1,
            }
        }
        if let Some(path) = &self.wait {
            std::fs::read(path)?;
        }
        Ok(sends)
    }
}

weft::register!(Chatter);

fn main() -> Result<(), weft::Error> {
    // The registrations above are found without being listed here.
    weft::init(&Registry::new());

    let mut pool = Pool::builder()
        .backend(Backend::Process)
        .workers(2)
        .keep_order(true)
        .build()?;
    let doubled: Vec<u64> = pool
        .map_fn_proc(0..5, double)
        .filter_map(|o| o.ok())
        .collect();
    println!("doubled on processes: {doubled:?}");

    let mut p = Process::builder().spawn_fn(greet, "bob".to_string())?;
    println!("{:?}, exit code {:?}", p.join().clone().ok(), p.exitcode());

    let mut outcomes = pool.map([Chatter {
        count: 3,
        wait: None,
    }]);
    let messages = outcomes.messages::<String>();
    let reader = std::thread::spawn(move || messages.map(|m| m.value).collect::<Vec<_>>());
    let sends = outcomes.next().and_then(|o| o.ok());
    drop(outcomes);
    println!(
        "progress {:?}, sends {sends:?}",
        reader.join().expect("reader")
    );
    Ok(())
}
