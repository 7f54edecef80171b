//! What one timed outcome per job costs with no engine at all: `cargo bench --bench floor`.
//!
//! The tiny-task comparison (comparison 3 of `benches/run.sh`) asks for rates that only a very
//! thin layer could reach, so this measures the floor on the same machine in the same run: the
//! least that any pool giving each job its own outcome must do. Nothing here is weft's
//! code but its `Status` type.
//!
//! - `clock`: what one per-job clock read costs. Every job needs its own start time and
//!   runtime (the outcome carries them, and a timeout or a crash is attributed by them), so at
//!   one read per job the clock alone caps the rate at cores / cost. Like weft's workers, the
//!   floor reads the CPU's time-stamp counter where the kernel keeps time by it (`source=tsc`),
//!   and the monotonic clock elsewhere (`source=vdso`).
//! - `thread`: 1,000,000 no-op jobs on 2 threads. The caller's thread pulls inputs in batches
//!   of 4,096 and hands them over a channel; a worker runs each, reads the clock once per job,
//!   and builds an outcome as big as weft's; the caller takes the outcomes back and counts
//!   them.
//! - `process`: the same through 2 worker processes (this program re-launched), over pipes,
//!   with fixed little-endian records: one input byte per job out, 13 bytes per result back (start,
//!   runtime, status), decoded into outcomes by a reader thread per worker.
//!
//! It has none of what makes a pool safe to use: no retries, no timeouts, no crash attribution,
//! no re-queue of unstarted jobs, no inputs or outputs of any type, no order. It is a ceiling to
//! judge the engine against, not an alternative to it. Each prints the line format of
//! `benches/engine.rs`.

use std::hint::black_box;
use std::io::{BufReader, BufWriter, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use weft::Status;

const JOBS: u64 = 1_000_000;
const BATCH: usize = 4096;
/// Batches handed to a worker ahead of its results.
const AHEAD: usize = 4;
const WORKERS: usize = 2;
/// Set in a re-launched copy of this program: it serves as a worker process.
const WORKER_ENV: &str = "WEFT_FLOOR_WORKER";
/// One result on the wire: start (u64 ns), runtime (u32 ns), status (u8).
const RECORD: usize = 13;

/// `weft::Outcome<()>`'s fields (it cannot be built outside weft): what a caller gets per job.
#[allow(dead_code)]
struct Outcome {
    seq: u64,
    status: Status<()>,
    attempt: u32,
    worker: usize,
    pid: u32,
    started: Option<SystemTime>,
    runtime: Duration,
}

const _: () = assert!(size_of::<Outcome>() == size_of::<weft::Outcome<()>>());

/// A job: its input is one byte (an encoded empty value's length).
fn noop(_input: u8) -> Status<()> {
    Status::Ok(())
}

/// Prints one measurement over the repetitions `v`, then `extra` (`key=value` pairs).
fn report(name: &str, unit: &str, mut v: Vec<f64>, extra: &str) {
    v.sort_by(f64::total_cmp);
    let values: Vec<String> = v.iter().map(|x| format!("{x:.6}")).collect();
    println!(
        "{name} {unit} median={:.6} min={:.6} max={:.6} n={} values={} {extra}",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len(),
        values.join(",")
    );
}

/// Nanoseconds since the clock was made, as cheaply as a worker can read them.
struct JobClock {
    epoch: Instant,
    /// The counter at `epoch` and nanoseconds per tick in 32.32 fixed point, where the
    /// counter is the kernel's own clocksource.
    counter: Option<(u64, u64)>,
}

impl JobClock {
    /// Measures the counter's rate over 20 ms, if it is to be used.
    fn new() -> JobClock {
        let tsc = std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .is_ok_and(|s| s.trim() == "tsc");
        let epoch = Instant::now();
        let counter = (tsc && cfg!(target_arch = "x86_64")).then(|| {
            let start = ticks();
            std::thread::sleep(Duration::from_millis(20));
            let (span, ns) = (ticks() - start, epoch.elapsed().as_nanos() as u64);
            (start, ((ns as u128) << 32).div_ceil(span as u128) as u64)
        });
        JobClock { epoch, counter }
    }

    #[inline(always)]
    fn now(&self) -> u64 {
        match self.counter {
            Some((start, rate)) => {
                ((ticks().wrapping_sub(start) as u128 * rate as u128) >> 32) as u64
            }
            None => self.epoch.elapsed().as_nanos() as u64,
        }
    }

    fn source(&self) -> &'static str {
        if self.counter.is_some() {
            "tsc"
        } else {
            "vdso"
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ticks() -> u64 {
    // SAFETY: RDTSC has no preconditions on x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    0
}

fn clock() {
    const READS: u32 = 10_000_000;
    let clock = JobClock::new();
    let per_read = || {
        let t = Instant::now();
        for _ in 0..READS {
            black_box(clock.now());
        }
        t.elapsed().as_nanos() as f64 / READS as f64
    };
    per_read();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    report(
        "floor.clock",
        "ns",
        (0..5).map(|_| per_read()).collect(),
        &format!("cores={cores} source={}", clock.source()),
    );
}

/// The extra fields of a rate's line.
fn run_fields() -> String {
    format!("tasks={JOBS} workers={WORKERS}")
}

/// Drives one run: hands batches of inputs to `send(worker, first_seq, count)` while each
/// worker has fewer than `AHEAD` out, and counts the successful outcomes `recv` returns (with
/// the worker they came from) until every job is back. Returns jobs per second.
fn drive(
    mut send: impl FnMut(usize, u64, Vec<u8>),
    mut recv: impl FnMut() -> (usize, Vec<Outcome>),
) -> f64 {
    let t = Instant::now();
    let mut inputs = (0..JOBS).map(|_| 0u8);
    let (mut seq, mut out, mut done, mut exhausted) = (0u64, [0usize; WORKERS], 0u64, false);
    while done < JOBS {
        for (w, out) in out.iter_mut().enumerate() {
            while !exhausted && *out < AHEAD {
                let batch: Vec<u8> = inputs.by_ref().take(BATCH).map(black_box).collect();
                if batch.is_empty() {
                    exhausted = true;
                    break;
                }
                let n = batch.len() as u64;
                send(w, seq, batch);
                seq += n;
                *out += 1;
            }
        }
        let (w, outcomes) = recv();
        out[w] -= 1;
        done += outcomes
            .iter()
            .filter(|o| matches!(black_box(o).status, Status::Ok(())))
            .count() as u64;
    }
    JOBS as f64 / t.elapsed().as_secs_f64()
}

fn threads() {
    let (results_tx, results) = crossbeam_channel::unbounded();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (tx, rx) = crossbeam_channel::unbounded::<(u64, Vec<u8>)>();
        let results_tx = results_tx.clone();
        std::thread::spawn(move || {
            let (clock, wall, pid) = (JobClock::new(), SystemTime::now(), std::process::id());
            while let Ok((first, jobs)) = rx.recv() {
                let mut outcomes = Vec::with_capacity(jobs.len());
                let mut start = clock.now();
                for (i, job) in jobs.into_iter().enumerate() {
                    let status = black_box(noop(black_box(job)));
                    let end = clock.now();
                    outcomes.push(Outcome {
                        seq: first + i as u64,
                        status,
                        attempt: 1,
                        worker: w + 1,
                        pid,
                        started: Some(wall + Duration::from_nanos(start)),
                        runtime: Duration::from_nanos(end - start),
                    });
                    start = end;
                }
                if results_tx.send((w, outcomes)).is_err() {
                    return;
                }
            }
        });
        workers.push(tx);
    }
    let once = || {
        drive(
            |w, first, batch| workers[w].send((first, batch)).unwrap(),
            || results.recv().unwrap(),
        )
    };
    once();
    let v = (0..3).map(|_| once()).collect();
    report("floor.thread", "tasks/s", v, &run_fields());
}

fn processes() {
    let program = std::env::current_exe().expect("the bench's own path");
    let (results_tx, results) = crossbeam_channel::unbounded();
    let mut children = Vec::new();
    let mut pipes = Vec::new();
    for w in 0..WORKERS {
        let mut child = Command::new(&program)
            .env(WORKER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("worker starts");
        let pid = child.id();
        let mut from = BufReader::with_capacity(1 << 20, child.stdout.take().unwrap());
        pipes.push(BufWriter::with_capacity(
            1 << 20,
            child.stdin.take().unwrap(),
        ));
        let results_tx = results_tx.clone();
        std::thread::spawn(move || {
            let wall = SystemTime::now();
            let (mut header, mut records) = ([0u8; 12], Vec::new());
            while from.read_exact(&mut header).is_ok() {
                let (first, count) = split_header(&header);
                records.resize(count * RECORD, 0);
                from.read_exact(&mut records).unwrap();
                let outcomes = records
                    .chunks_exact(RECORD)
                    .enumerate()
                    .map(|(i, r)| Outcome {
                        seq: first + i as u64,
                        status: if r[12] == 1 {
                            Status::Ok(())
                        } else {
                            Status::Failed(String::new())
                        },
                        attempt: 1,
                        worker: w + 1,
                        pid,
                        started: Some(wall + Duration::from_nanos(le_u64(&r[..8]))),
                        runtime: Duration::from_nanos(le_u32(&r[8..12]) as u64),
                    })
                    .collect();
                if results_tx.send((w, outcomes)).is_err() {
                    return;
                }
            }
        });
        children.push(child);
    }
    let mut once = || {
        drive(
            |w, first, batch| {
                let to = &mut pipes[w];
                to.write_all(&first.to_le_bytes()).unwrap();
                to.write_all(&(batch.len() as u32).to_le_bytes()).unwrap();
                to.write_all(&batch).unwrap();
                to.flush().unwrap();
            },
            || results.recv().unwrap(),
        )
    };
    once();
    let v = (0..3).map(|_| once()).collect();
    report("floor.process", "tasks/s", v, &run_fields());
    drop(pipes);
    for mut c in children {
        let _ = c.wait();
    }
}

/// A worker process: runs each batch it reads and writes back one record per job.
fn serve() {
    let mut from = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let mut to = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let clock = JobClock::new();
    let (mut header, mut inputs, mut records) = ([0u8; 12], Vec::new(), Vec::new());
    while from.read_exact(&mut header).is_ok() {
        let (_, count) = split_header(&header);
        inputs.resize(count, 0u8);
        from.read_exact(&mut inputs).unwrap();
        records.clear();
        records.extend_from_slice(&header);
        let mut start = clock.now();
        for &input in &inputs {
            let ok = matches!(black_box(noop(black_box(input))), Status::Ok(()));
            let end = clock.now();
            records.extend_from_slice(&start.to_le_bytes());
            records.extend_from_slice(&((end - start) as u32).to_le_bytes());
            records.push(ok as u8);
            start = end;
        }
        to.write_all(&records).unwrap();
        to.flush().unwrap();
    }
}

/// A batch's header: its first job's seq (u64) and its job count (u32).
fn split_header(h: &[u8; 12]) -> (u64, usize) {
    (le_u64(&h[..8]), le_u32(&h[8..]) as usize)
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().unwrap())
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().unwrap())
}

fn main() {
    if std::env::var_os(WORKER_ENV).is_some() {
        serve();
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let groups: Vec<&str> = if args.is_empty() {
        vec!["clock", "thread", "process"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    for group in groups {
        match group {
            "clock" => clock(),
            "thread" => threads(),
            "process" => processes(),
            other => {
                eprintln!("floor: no group {other:?}: give clock, thread or process");
                std::process::exit(2);
            }
        }
    }
}
