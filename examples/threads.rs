//! Five one-off threads, each napping a random 0.1-1.0 s, started and later joined.
//!
//! Mirrors Python's `threading.Thread(target=f, args=(...,))`, `t.start()`, then `t.join()`.
//!
//! ```sh
//! cargo run --example threads
//! ```

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weft::{Context, Failure, Task, Thread};

/// Sleeps `millis`, then says who it was.
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
        Ok(format!("task {} slept {} ms", self.id, self.millis))
    }
}

/// A random number in `100..=1000`; each `RandomState` is freshly keyed, so std's hasher is
/// randomness enough for an example without the `rand` crate.
fn random_millis() -> u64 {
    100 + std::collections::hash_map::RandomState::new().hash_one(0u8) % 901
}

fn main() -> Result<(), weft::Error> {
    let start = Instant::now();
    let mut naps_ms = 0;
    let threads = (1..=5)
        .map(|id| {
            let nap = Nap {
                id,
                millis: random_millis(),
            };
            naps_ms += nap.millis;
            Thread::builder().name(format!("nap-{id}")).spawn(nap)
        })
        .collect::<Result<Vec<_>, _>>()?;
    println!("started {} threads, main goes on", threads.len());

    for thread in threads {
        let name = thread.name().to_string();
        match thread.into_outcome().into_result() {
            Ok(said) => println!("{name}: {said}"),
            Err(status) => println!("{name}: {status}"),
        }
    }
    // Less than the naps added up: they overlapped.
    println!(
        "all done in {} ms (naps add up to {naps_ms} ms)",
        start.elapsed().as_millis()
    );
    Ok(())
}
