//! weft against rayon, the Rust anchor for threads: `cargo bench --bench rayon [GROUP...]`.
//!
//! Each group runs the same jobs through `par_iter().map(..).collect()` on a rayon pool of 2
//! threads, a weft pool of 2 threads (`map` of a task and `map_fn` of a closure) and a weft pool
//! of 2 processes, the contenders interleaved within each repetition so that a noisy machine
//! slows them alike. Groups:
//!
//! - `cpu`: CPU-bound jobs of about 1 ms each (the spin is calibrated once at the start),
//!   `WEFT_BENCH_RAYON_JOBS` of them (default 400). Targets: weft's threads within 3% of
//!   rayon's time, its processes within 5%.
//! - `tiny`: `WEFT_BENCH_RAYON_TINY` (default 1,000,000) jobs that do next to nothing: the
//!   ratio to rayon is the per-job overhead of each.
//!
//! Output is one line per contender in `benches/engine.rs`'s format
//! (`NAME UNIT median=M min=A max=B n=R values=...`), then one `ratio` line per weft
//! contender: its median over rayon's. `WEFT_BENCH_RAYON_REPS` sets the repetitions (default 7).
//!
//! The bench program is its own worker program (it calls `weft::init` first).

use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use weft::{Backend, Context, Failure, Pool, Task};

/// `steps` rounds of a multiply-add whose state `black_box` hides: no shortcut to take.
fn spin(seed: u64, steps: u64) -> u64 {
    let mut x = seed;
    for _ in 0..steps {
        x = std::hint::black_box(x)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }
    x
}

/// One CPU-bound job as a weft task.
#[derive(Serialize, Deserialize)]
struct Spin {
    seed: u64,
    steps: u64,
}

impl Task for Spin {
    const NAME: &'static str = "rayon.spin";
    type Output = u64;
    fn run(self, _cx: &Context) -> Result<u64, Failure> {
        Ok(spin(self.seed, self.steps))
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn pool(backend: Backend) -> Pool {
    Pool::builder()
        .backend(backend)
        .workers(2)
        // Named rather than `/proc/self/exe`, which under valgrind is valgrind.
        .program(std::env::current_exe().expect("the bench's own path"))
        .build()
        .expect("pool starts")
}

/// Spin steps that take about `target` on this machine, on one thread.
fn calibrate(target: Duration) -> u64 {
    let mut steps = 1_000u64;
    loop {
        let t = Instant::now();
        std::hint::black_box(spin(1, steps));
        let took = t.elapsed();
        if took >= Duration::from_millis(20) {
            return (steps as f64 * target.as_secs_f64() / took.as_secs_f64()) as u64;
        }
        steps *= 2;
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Prints one result line per contender, then each weft contender's ratio to rayon.
fn report(group: &str, names: &[&str], mut times: Vec<Vec<f64>>, extra: &str) {
    let mut medians = Vec::new();
    for (name, v) in names.iter().zip(times.iter_mut()) {
        let m = median(v);
        medians.push(m);
        let values: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
        println!(
            "rayon.{group}.{name} ms median={m:.3} min={:.3} max={:.3} n={} values={} {extra}",
            v[0],
            v[v.len() - 1],
            v.len(),
            values.join(","),
        );
    }
    for (name, m) in names.iter().zip(&medians).skip(1) {
        println!(
            "rayon.{group}.{name}/rayon ratio median={:.4}",
            m / medians[0]
        );
    }
}

/// Runs each contender once per repetition, in turn; returns each one's times in ms.
fn interleaved(reps: u64, contenders: &mut [&mut dyn FnMut() -> f64]) -> Vec<Vec<f64>> {
    // A warm-up of each.
    for c in contenders.iter_mut() {
        c();
    }
    let mut times = vec![Vec::new(); contenders.len()];
    for _ in 0..reps {
        for (c, t) in contenders.iter_mut().zip(times.iter_mut()) {
            t.push(c());
        }
    }
    times
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn cpu(reps: u64) {
    let jobs = env("WEFT_BENCH_RAYON_JOBS", 400);
    let steps = calibrate(Duration::from_millis(1));
    let seeds: Vec<u64> = (0..jobs).collect();
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon pool");
    let mut threads = pool(Backend::Thread);
    let mut threads_fn = pool(Backend::Thread);
    let mut processes = pool(Backend::Process);
    let expect: u64 = seeds
        .iter()
        .map(|&s| spin(s, steps))
        .fold(0, u64::wrapping_add);
    let check = |sum: u64| assert_eq!(sum, expect, "every job's output");
    let times = interleaved(
        reps,
        &mut [
            &mut || {
                let t = Instant::now();
                let out: Vec<u64> =
                    rayon.install(|| seeds.par_iter().map(|&s| spin(s, steps)).collect());
                let e = ms(t);
                check(out.into_iter().fold(0, u64::wrapping_add));
                e
            },
            &mut || {
                let t = Instant::now();
                let out: Vec<u64> = threads
                    .map(seeds.iter().map(|&seed| Spin { seed, steps }))
                    .filter_map(|o| o.ok())
                    .collect();
                let e = ms(t);
                check(out.into_iter().fold(0, u64::wrapping_add));
                e
            },
            &mut || {
                let t = Instant::now();
                let out: Vec<u64> = threads_fn
                    .map_fn(seeds.iter().copied(), move |s| spin(s, steps))
                    .filter_map(|o| o.ok())
                    .collect();
                let e = ms(t);
                check(out.into_iter().fold(0, u64::wrapping_add));
                e
            },
            &mut || {
                let t = Instant::now();
                let out: Vec<u64> = processes
                    .map(seeds.iter().map(|&seed| Spin { seed, steps }))
                    .filter_map(|o| o.ok())
                    .collect();
                let e = ms(t);
                check(out.into_iter().fold(0, u64::wrapping_add));
                e
            },
        ],
    );
    report(
        "cpu",
        &["rayon", "thread", "thread_fn", "process"],
        times,
        &format!("jobs={jobs} steps_per_job={steps} workers=2"),
    );
}

fn tiny(reps: u64) {
    let jobs = env("WEFT_BENCH_RAYON_TINY", 1_000_000);
    let inputs: Vec<u64> = (0..jobs).collect();
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon pool");
    let mut threads = pool(Backend::Thread);
    let mut threads_fn = pool(Backend::Thread);
    let mut processes = pool(Backend::Process);
    let expect: u64 = inputs
        .iter()
        .map(|&s| spin(s, 1))
        .fold(0, u64::wrapping_add);
    let check = |sum: u64| assert_eq!(sum, expect, "every job's output");
    let times = interleaved(
        reps,
        &mut [
            &mut || {
                let t = Instant::now();
                let out: Vec<u64> =
                    rayon.install(|| inputs.par_iter().map(|&s| spin(s, 1)).collect());
                let e = ms(t);
                check(out.into_iter().fold(0, u64::wrapping_add));
                e
            },
            &mut || {
                let t = Instant::now();
                let out: Vec<u64> = threads
                    .map(inputs.iter().map(|&seed| Spin { seed, steps: 1 }))
                    .filter_map(|o| o.ok())
                    .collect();
                let e = ms(t);
                check(out.into_iter().fold(0, u64::wrapping_add));
                e
            },
            &mut || {
                let t = Instant::now();
                let out: Vec<u64> = threads_fn
                    .map_fn(inputs.iter().copied(), |s| spin(s, 1))
                    .filter_map(|o| o.ok())
                    .collect();
                let e = ms(t);
                check(out.into_iter().fold(0, u64::wrapping_add));
                e
            },
            &mut || {
                let t = Instant::now();
                let out: Vec<u64> = processes
                    .map(inputs.iter().map(|&seed| Spin { seed, steps: 1 }))
                    .filter_map(|o| o.ok())
                    .collect();
                let e = ms(t);
                check(out.into_iter().fold(0, u64::wrapping_add));
                e
            },
        ],
    );
    report(
        "tiny",
        &["rayon", "thread", "thread_fn", "process"],
        times,
        &format!("jobs={jobs} workers=2"),
    );
}

fn main() {
    weft::init(&weft::Registry::new().task::<Spin>());
    // `cargo bench` adds `--bench`; options are not ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let reps = env("WEFT_BENCH_RAYON_REPS", 7);
    let groups: Vec<&str> = if args.is_empty() {
        vec!["cpu", "tiny"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    println!(
        "weft rayon bench, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for group in groups {
        match group {
            "cpu" => cpu(reps),
            "tiny" => tiny(reps),
            other => {
                eprintln!("rayon: no group {other:?}: give cpu or tiny");
                std::process::exit(2);
            }
        }
    }
}
