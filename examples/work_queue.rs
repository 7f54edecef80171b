//! A queue of 20 inputs drained by a fixed set of 3 worker processes, each set up once by an
//! initializer whose state every job on that worker can reach.
//!
//! Mirrors Python's `multiprocessing.Pool(3, initializer=init)` with
//! `pool.imap_unordered(f, inputs)`.
//!
//! ```sh
//! cargo run --example work_queue
//! ```

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft::{Backend, Context, Failure, Pool, Registry, Status, Task};

/// What each worker builds once, before its first job: a stand-in for a database connection
/// or a loaded model, things too costly to set up per job.
struct WorkerState {
    pid: u32,
    jobs_done: Cell<u32>,
}

/// Squares a number, slowly enough that all workers get a share of the queue.
#[derive(Serialize, Deserialize)]
struct Square(u64);

impl Task for Square {
    const NAME: &'static str = "square";
    type Output = String;

    fn run(self, cx: &Context) -> Result<String, Failure> {
        let state = cx
            .state::<WorkerState>()
            .ok_or_else(|| Failure::new("worker has no state: initializer missing"))?;
        state.jobs_done.set(state.jobs_done.get() + 1);
        std::thread::sleep(Duration::from_millis(50));
        Ok(format!(
            "{:2}^2 = {:3} by worker {} (pid {}, its job #{})",
            self.0,
            self.0 * self.0,
            cx.worker_id(),
            state.pid,
            state.jobs_done.get()
        ))
    }
}

fn main() -> Result<(), weft::Error> {
    let registry = Registry::new()
        .task::<Square>()
        .initializer(|_worker| WorkerState {
            pid: std::process::id(),
            jobs_done: Cell::new(0),
        });
    weft::init(&registry);

    // Worker processes run the initializer of the registry given to `init`; a thread pool
    // would need it passed through `PoolBuilder::registry`.
    let mut pool = Pool::builder()
        .workers(3)
        .backend(Backend::Process)
        .build()?;
    println!("3 workers up: pids {:?}", pool.pids());

    let mut per_worker = BTreeMap::new();
    for outcome in pool.map((1..=20).map(Square)) {
        *per_worker.entry(outcome.worker).or_insert(0) += 1;
        match &outcome.status {
            Status::Ok(line) => println!("job {:2}: {line}", outcome.seq),
            failed => println!("job {:2}: {failed}", outcome.seq),
        }
    }
    println!("jobs per worker id: {per_worker:?}");
    Ok(())
}
