//! Five one-off worker processes, each napping a random 0.1-1.0 s, started and later joined.
//!
//! Mirrors Python's `multiprocessing.Process(target=f, args=(...,))`, `p.start()`, `p.join()`.
//! Each worker is this example's own binary re-launched: `weft::init` turns it into a worker.
//!
//! ```sh
//! cargo run --example processes
//! ```

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weft::{Context, Failure, Process, Registry, Task};

/// Sleeps `millis`, then says who it was and which process ran it.
#[derive(Serialize, Deserialize)]
struct Nap {
    id: usize,
    millis: u64,
}

impl Task for Nap {
    const NAME: &'static str = "nap";
    type Output = String;

    fn run(self, _cx: &Context) -> Result<String, Failure> {
        std::thread::sleep(Duration::from_millis(self.millis));
        let pid = std::process::id();
        Ok(format!(
            "task {} slept {} ms in pid {pid}",
            self.id, self.millis
        ))
    }
}

/// A random number in `100..=1000`; each `RandomState` is freshly keyed, so std's hasher is
/// randomness enough for an example without the `rand` crate.
fn random_millis() -> u64 {
    100 + std::collections::hash_map::RandomState::new().hash_one(0u8) % 901
}

fn main() -> Result<(), weft::Error> {
    weft::init(&Registry::new().task::<Nap>());

    let start = Instant::now();
    let mut naps_ms = 0;
    let mut processes = Vec::new();
    for id in 1..=5 {
        let nap = Nap {
            id,
            millis: random_millis(),
        };
        naps_ms += nap.millis;
        let process = Process::builder().name(format!("nap-{id}")).spawn(nap)?;
        println!("started {} (pid {})", process.name(), process.pid());
        processes.push(process);
    }
    println!("main (pid {}) goes on", std::process::id());

    for process in processes {
        let name = process.name().to_string();
        match process.into_outcome().into_result() {
            Ok(said) => println!("{name}: {said}"),
            Err(status) => println!("{name}: {status}"),
        }
    }
    println!(
        "all done in {} ms (naps add up to {naps_ms} ms)",
        start.elapsed().as_millis()
    );
    Ok(())
}
