//! Sums `0..N` on a pool of worker processes by splitting the range into chunks, and checks
//! the total against the closed form `N * (N - 1) / 2`.
//!
//! Mirrors Python's `multiprocessing.Pool().map(sum_range, chunks)` followed by `sum(...)`.
//!
//! ```sh
//! cargo run --example parallel_sum
//! cargo run --example parallel_sum -- 18446744073709551615
//! ```

use std::time::Instant;

use weft::tasks::Sum;
use weft::{Backend, Pool, Registry};

/// `Sum` works in closed form, so any `N` up to `u64::MAX` takes no time: the example shows
/// the split, the collection and the check, not a speed-up.
const DEFAULT_N: u64 = 2_000_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    weft::init(&Registry::new().task::<Sum>());

    let n = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("usage: parallel_sum [N], not {arg:?}"))?,
        None => DEFAULT_N,
    };
    let mut pool = Pool::builder().backend(Backend::Process).build()?;
    let workers = pool.num_workers();
    // More chunks than workers, so a worker that finishes early picks up another chunk.
    let chunks = 4 * workers as u64;
    let step = n.div_ceil(chunks);
    let at = move |i: u64| i.saturating_mul(step).min(n);
    let ranges = (0..chunks).map(|i| Sum::new(at(i)..at(i + 1)));

    let start = Instant::now();
    let mut total: u128 = 0;
    for outcome in pool.map(ranges) {
        match outcome.into_result() {
            Ok(part) => total += part,
            Err(status) => return Err(format!("a chunk did not finish: {status}").into()),
        }
    }
    let elapsed = start.elapsed();

    let expected = u128::from(n) * u128::from(n.saturating_sub(1)) / 2;
    println!("sum of 0..{n} on {workers} worker processes, {chunks} chunks");
    println!("total:       {total}");
    println!("n*(n-1)/2:   {expected}");
    println!("match:       {}", total == expected);
    println!("elapsed:     {elapsed:.2?}");
    if total == expected {
        Ok(())
    } else {
        Err("the totals differ".into())
    }
}
