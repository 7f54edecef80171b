//! Library-level rates of the engine, printed as a table: `cargo bench --bench engine`.
//!
//! The bench program is its own worker program (it calls `weft::init` first), so process and
//! thread pools run exactly the same tasks.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use weft::tasks::Noop;
use weft::{Backend, Context, Failure, Pool, Task};

fn pool(backend: Backend, workers: usize) -> Pool {
    Pool::builder()
        .backend(backend)
        .workers(workers)
        .build()
        .expect("pool starts")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn noop_rate(backend: Backend, n: u64) -> f64 {
    let mut p = pool(backend, 2);
    let start = Instant::now();
    let done = p.map((0..n).map(|_| Noop)).filter(|o| o.is_ok()).count() as u64;
    assert_eq!(done, n);
    n as f64 / start.elapsed().as_secs_f64()
}

/// CPU work with no shortcut the optimiser can take.
#[derive(Serialize, Deserialize)]
struct Spin(u64);

impl Task for Spin {
    const NAME: &'static str = "spin";
    type Output = u64;
    fn run(self, _cx: &Context) -> Result<u64, Failure> {
        let mut x = self.0;
        for _ in 0..300_000_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
        Ok(x)
    }
}

fn main() {
    weft::init(&weft::Registry::new().task::<Noop>().task::<Spin>());
    let reps = 5;
    println!(
        "weft engine bench, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let starts: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let p = pool(Backend::Process, 2);
            let e = t.elapsed().as_secs_f64() * 1e3;
            drop(p);
            e
        })
        .collect();
    println!("process pool of 2 ready: median {:.2} ms", median(starts));

    let n = 1_000_000;
    for backend in [Backend::Thread, Backend::Process] {
        let rates: Vec<f64> = (0..3).map(|_| noop_rate(backend, n)).collect();
        let r = median(rates);
        println!(
            "{n} no-op tasks on 2 {} workers: {:.3} s, {:.2} M tasks/s",
            backend.name(),
            n as f64 / r,
            r / 1e6
        );
    }

    let mut p = pool(Backend::Process, 1);
    for _ in 0..100 {
        p.map([Noop]).for_each(drop);
    }
    let trips: Vec<f64> = (0..2000)
        .map(|_| {
            let t = Instant::now();
            p.map([Noop]).for_each(drop);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    println!(
        "round trip of one tiny task through a process worker: median {:.1} us",
        median(trips)
    );
    drop(p);

    let parts = 8;
    for backend in [Backend::Thread, Backend::Process] {
        let mut times = Vec::new();
        for workers in [1, 2] {
            let mut p = pool(backend, workers);
            let t = Instant::now();
            p.map((0..parts).map(Spin)).for_each(|o| assert!(o.is_ok()));
            times.push(t.elapsed());
        }
        println!(
            "{parts} CPU parts on {}: 1 worker {:.3} s, 2 workers {:.3} s, speed-up {:.2}x",
            backend.name(),
            times[0].as_secs_f64(),
            times[1].as_secs_f64(),
            times[0].as_secs_f64() / times[1].as_secs_f64()
        );
    }
}
