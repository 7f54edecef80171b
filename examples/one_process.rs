//! One worker process started with an argument, joined, then asked how it exited.
//!
//! Mirrors Python's `p = multiprocessing.Process(target=count_primes, args=(200_000,))`,
//! `p.start()`, `p.join()`, then `p.exitcode`.
//!
//! ```sh
//! cargo run --example one_process
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weft::{Context, Failure, Process, Registry, Task};

/// Counts the primes below `below`: the argument travels to the worker inside the task.
#[derive(Serialize, Deserialize)]
struct CountPrimes {
    below: u64,
}

impl Task for CountPrimes {
    const NAME: &'static str = "count-primes";
    type Output = (u64, u32);

    fn run(self, _cx: &Context) -> Result<(u64, u32), Failure> {
        let is_prime = |n: u64| {
            n >= 2
                && (2..)
                    .take_while(|d| d * d <= n)
                    .all(|d| !n.is_multiple_of(d))
        };
        let count = (0..self.below).filter(|&n| is_prime(n)).count() as u64;
        Ok((count, std::process::id()))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    weft::init(&Registry::new().task::<CountPrimes>());

    let below = 200_000;
    let mut process = Process::builder()
        .name("count-primes")
        .spawn(CountPrimes { below })?;
    println!(
        "started {} (pid {}) with below = {below}; alive: {}",
        process.name(),
        process.pid(),
        process.is_alive()
    );

    // Joined by reference, as in Python: the handle stays, for `exitcode`.
    let outcome = process
        .join_timeout(Duration::from_secs(600))
        .ok_or("the process did not finish within 10 minutes")?
        .clone();
    let code = process.exitcode().ok_or("no exit code after join")?;
    println!("joined; alive: {}, exitcode {code}", process.is_alive());

    let (count, pid) = outcome
        .into_result()
        .map_err(|status| format!("the job did not succeed: {status}"))?;
    println!("result: {count} primes below {below}, counted in pid {pid}");
    Ok(())
}
