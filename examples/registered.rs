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

use weft::{Backend, Pool, Process, Registry};

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

#[path = "shared/chatter.rs"]
mod chatter;
use chatter::Chatter;

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
