//! Library-level measurements of the engine: `cargo bench --bench engine [GROUP...]`.
//!
//! Each measurement prints one line that people and `benches/run.sh` both read:
//! `NAME UNIT median=M min=A max=B n=R values=V,... [key=value...]`, where the median, min and
//! max are over the R repetitions V taken after a warm-up. Groups: `startup`, `noop`, `roundtrip`, `cpu`,
//! `payload` (the default set), `payload-sizes` (round trips around the shared-memory
//! threshold), `noop.thread`, `noop.process` (one backend of `noop`, to profile it alone) and
//! `noop.thread_fn` (`noop.thread`'s jobs as a closure through `map_fn`; for these three,
//! `WEFT_BENCH_NOOP_TASKS=N` runs N tasks once instead of 1,000,000 three
//! times, short enough for callgrind), `memory` (best alone in a fresh process: it reads this
//! process's peak RSS) and `serve [IDLE [MAX]]`, a loopback HTTP server for the fetch
//! comparison that prints `listening ADDR` and exits after IDLE seconds without a request
//! (default 20) or MAX seconds in all (default 900).
//!
//! The bench program is its own worker program (it calls `weft::init` first), so process and
//! thread pools run exactly the same tasks.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use weft::tasks::Noop;
use weft::{Backend, Context, Failure, Pool, Task};

/// CPU work with no shortcut the optimiser can take: `black_box` hides the state each step.
#[derive(Serialize, Deserialize)]
struct Spin {
    seed: u64,
    steps: u64,
}

impl Task for Spin {
    const NAME: &'static str = "spin";
    type Output = u64;
    fn run(self, _cx: &Context) -> Result<u64, Failure> {
        let mut x = self.seed;
        for _ in 0..self.steps {
            x = std::hint::black_box(x)
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
        }
        Ok(x)
    }
}

/// Sends its bytes back: a payload's round trip through a worker.
#[derive(Serialize, Deserialize)]
struct Echo(ByteBuf);

impl Task for Echo {
    const NAME: &'static str = "echo";
    type Output = ByteBuf;
    fn run(self, _cx: &Context) -> Result<ByteBuf, Failure> {
        Ok(self.0)
    }
}

fn pool(backend: Backend, workers: usize) -> Pool {
    Pool::builder()
        .backend(backend)
        .workers(workers)
        // Named rather than the default `/proc/self/exe`, which under valgrind is valgrind.
        .program(std::env::current_exe().expect("the bench's own path"))
        .build()
        .expect("pool starts")
}

/// Prints one result line over the repetitions `v`.
fn report(name: &str, unit: &str, mut v: Vec<f64>, extra: &str) {
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let values: Vec<String> = v.iter().map(|x| format!("{x:.6}")).collect();
    println!(
        "{name} {unit} median={median:.6} min={:.6} max={:.6} n={} values={}{}{extra}",
        v[0],
        v[v.len() - 1],
        v.len(),
        values.join(","),
        if extra.is_empty() { "" } else { " " },
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn startup() {
    let once = || {
        let t = Instant::now();
        let p = pool(Backend::Process, 2);
        let e = ms(t.elapsed());
        drop(p);
        e
    };
    for _ in 0..3 {
        once();
    }
    report(
        "startup.process_pool2",
        "ms",
        (0..20).map(|_| once()).collect(),
        "",
    );
}

fn noop(backends: &[Backend]) {
    let n = std::env::var("WEFT_BENCH_NOOP_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000u64);
    let reps = if n < 1_000_000 { 1 } else { 3 };
    for &backend in backends {
        let mut p = pool(backend, 2);
        let mut once = |n: u64| {
            let t = Instant::now();
            let done = p.map((0..n).map(|_| Noop)).filter(|o| o.is_ok()).count() as u64;
            assert_eq!(done, n, "every no-op task succeeds");
            n as f64 / t.elapsed().as_secs_f64()
        };
        once(n / 10);
        let rates = (0..reps).map(|_| once(n)).collect();
        report(
            &format!("noop.{}", backend.name()),
            "tasks/s",
            rates,
            &format!("tasks={n} workers=2"),
        );
    }
}

/// `noop.thread`'s jobs as a closure on the thread pool (`Pool::map_fn`): a closure's job
/// should cost what a task's does, measured in the same binary.
fn noop_fn() {
    let n = std::env::var("WEFT_BENCH_NOOP_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000u64);
    let reps = if n < 1_000_000 { 1 } else { 3 };
    let mut p = pool(Backend::Thread, 2);
    let mut once = |n: u64| {
        let t = Instant::now();
        let done = p
            .map_fn(std::iter::repeat_n((), n as usize), |()| ())
            .filter(|o| o.is_ok())
            .count() as u64;
        assert_eq!(done, n, "every no-op closure succeeds");
        n as f64 / t.elapsed().as_secs_f64()
    };
    once(n / 10);
    let rates = (0..reps).map(|_| once(n)).collect();
    report(
        "noop.thread_fn",
        "tasks/s",
        rates,
        &format!("tasks={n} workers=2"),
    );
}

fn roundtrip() {
    let mut p = pool(Backend::Process, 1);
    let mut trip = || {
        let t = Instant::now();
        p.map([Noop]).for_each(|o| assert!(o.is_ok()));
        t.elapsed().as_secs_f64() * 1e6
    };
    for _ in 0..200 {
        trip();
    }
    // Each repetition is the median of 1000 trips, so one descheduled trip moves nothing.
    let reps = (0..5)
        .map(|_| {
            let mut v: Vec<f64> = (0..1000).map(|_| trip()).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect();
    report("roundtrip.process", "us", reps, "trips_per_rep=1000");
}

fn cpu() {
    let parts = 8u64;
    let steps = std::env::var("WEFT_BENCH_SPIN_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000_000u64);
    for backend in [Backend::Thread, Backend::Process] {
        for workers in [1, 2] {
            let mut p = pool(backend, workers);
            let mut once = |steps: u64| {
                let t = Instant::now();
                p.map((0..parts).map(|seed| Spin { seed, steps }))
                    .for_each(|o| assert!(o.is_ok()));
                t.elapsed().as_secs_f64()
            };
            once(steps / 10);
            let times = (0..3).map(|_| once(steps)).collect();
            report(
                &format!("cpu.{}.{workers}", backend.name()),
                "s",
                times,
                &format!("parts={parts} steps_per_part={steps}"),
            );
        }
    }
}

fn payload() {
    let size = 16 << 20;
    let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
    let mut p = pool(Backend::Process, 1);
    let mut once = || {
        let task = Echo(ByteBuf::from(data.clone()));
        let t = Instant::now();
        let out = p.map([task]).next().and_then(|o| o.ok()).expect("echo");
        let e = ms(t.elapsed());
        assert!(out.as_slice() == data.as_slice(), "the echo is the input");
        e
    };
    once();
    report(
        "payload.process",
        "ms",
        (0..5).map(|_| once()).collect(),
        "bytes=16777216",
    );
}

/// Echo round trips of sizes around where payloads move to shared memory (256 KiB), for choosing
/// that threshold: one at a time through one worker (each repetition the median of 50 trips),
/// then streams of 1,000 through two workers (each repetition the time per job).
fn payload_sizes() {
    let mut p = pool(Backend::Process, 1);
    for size in [
        16 << 10,
        32 << 10,
        48 << 10,
        64 << 10,
        128 << 10,
        192 << 10,
        256 << 10,
        384 << 10,
        512 << 10,
        1 << 20,
        4 << 20,
    ] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
        let mut once = || {
            let task = Echo(ByteBuf::from(data.clone()));
            let t = Instant::now();
            let out = p.map([task]).next().and_then(|o| o.ok()).expect("echo");
            let e = t.elapsed().as_secs_f64() * 1e6;
            assert!(out.as_slice() == data.as_slice(), "the echo is the input");
            e
        };
        for _ in 0..20 {
            once();
        }
        let reps = (0..5)
            .map(|_| {
                let mut v: Vec<f64> = (0..50).map(|_| once()).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            })
            .collect();
        report(
            &format!("payload_sizes.{}k", size >> 10),
            "us",
            reps,
            &format!("bytes={size} trips_per_rep=50"),
        );
    }
    let mut p = pool(Backend::Process, 2);
    for size in [16 << 10, 64 << 10, 128 << 10, 256 << 10, 1 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
        let jobs = 1000;
        let mut once = || {
            let tasks: Vec<Echo> = (0..jobs)
                .map(|_| Echo(ByteBuf::from(data.clone())))
                .collect();
            let t = Instant::now();
            for o in p.map(tasks) {
                assert!(o.ok().expect("echo").len() == size, "the echo is the input");
            }
            t.elapsed().as_secs_f64() * 1e6 / jobs as f64
        };
        once();
        report(
            &format!("payload_sizes.stream.{}k", size >> 10),
            "us",
            (0..3).map(|_| once()).collect(),
            &format!("bytes={size} jobs={jobs} workers=2 per_job"),
        );
    }
}

/// A field of `/proc/PID/status` (`VmRSS`, `VmHWM`, `RssAnon`) in MB (10^6 bytes; the file
/// counts KiB).
fn status_mb(pid: &str, field: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("a number of kB");
    kib * 1024.0 / 1e6
}

fn memory() {
    let mut p = pool(Backend::Process, 2);
    let idle = |p: &Pool, what: &str| {
        std::thread::sleep(Duration::from_millis(300));
        let pids: Vec<String> = p.pids().iter().map(u32::to_string).collect();
        for field in ["VmRSS", "RssAnon"] {
            let v = pids.iter().map(|pid| status_mb(pid, field)).collect();
            report(
                &format!("memory.worker_idle_{what}.{field}"),
                "MB",
                v,
                "per_worker",
            );
        }
    };
    idle(&p, "fresh");
    let n = 1_000_000u64;
    let mut at_100k = 0.0;
    let mut done = 0u64;
    for o in p.map((0..n).map(|_| Noop)) {
        assert!(o.is_ok());
        done += 1;
        if done == 100_000 {
            at_100k = status_mb("self", "VmRSS");
        }
    }
    assert_eq!(done, n);
    let at_1m = status_mb("self", "VmRSS");
    report("memory.coordinator.rss_100k", "MB", vec![at_100k], "");
    report("memory.coordinator.rss_1m", "MB", vec![at_1m], "");
    report(
        "memory.coordinator.peak",
        "MB",
        vec![status_mb("self", "VmHWM")],
        "jobs=1000000 backend=process workers=2",
    );
    idle(&p, "after_1m");
}

/// A loopback HTTP/1.1 server with keep-alive, a thread per connection, and a fixed 512-byte
/// body: fast enough that the clients, not the server, are what the fetch comparison measures.
fn serve(idle: u64, max: u64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    println!("listening {}", listener.local_addr().expect("address"));
    std::io::stdout().flush().expect("stdout");
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    {
        let last = last.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let now = start.elapsed().as_secs();
                if now >= max || now.saturating_sub(last.load(Ordering::Relaxed)) >= idle {
                    std::process::exit(0);
                }
            }
        });
    }
    for stream in listener.incoming().flatten() {
        let last = last.clone();
        std::thread::spawn(move || {
            let _ = connection(stream, &last, start);
        });
    }
}

fn connection(stream: TcpStream, last: &AtomicU64, start: Instant) -> std::io::Result<()> {
    const BODY: [u8; 512] = [b'x'; 512];
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    loop {
        // The request line and headers, up to the blank line; a GET has no body.
        let mut lines = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            lines += 1;
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        if lines == 1 {
            continue;
        }
        last.store(start.elapsed().as_secs(), Ordering::Relaxed);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            BODY.len()
        );
        let mut response = head.into_bytes();
        response.extend_from_slice(&BODY);
        writer.write_all(&response)?;
    }
}

fn main() {
    weft::init(
        &weft::Registry::new()
            .task::<Noop>()
            .task::<Spin>()
            .task::<Echo>(),
    );
    // `cargo bench` adds `--bench`; options are not ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().map(String::as_str) == Some("serve") {
        let num =
            |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
        serve(num(1, 20), num(2, 900));
        return;
    }
    let groups: Vec<&str> = if args.is_empty() {
        vec!["startup", "noop", "roundtrip", "cpu", "payload"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    println!(
        "weft engine bench, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for group in groups {
        match group {
            "startup" => startup(),
            "noop" => noop(&[Backend::Thread, Backend::Process]),
            "noop.thread" => noop(&[Backend::Thread]),
            "noop.process" => noop(&[Backend::Process]),
            "noop.thread_fn" => noop_fn(),
            "roundtrip" => roundtrip(),
            "cpu" => cpu(),
            "payload" => payload(),
            "payload-sizes" => payload_sizes(),
            "memory" => memory(),
            other => {
                eprintln!(
                    "engine: no group {other:?}: give startup, noop, noop.thread, noop.process, noop.thread_fn, roundtrip, cpu, payload, payload-sizes, memory or serve"
                );
                std::process::exit(2);
            }
        }
    }
}
