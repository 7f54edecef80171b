//! The broker end to end: `cargo bench --bench broker [TASKS [WORKERS [SLEEP_MS [tcp|URL]]]]`.
//!
//! Starts its own `redis-server` on a unix socket (no persistence; with `tcp`, on a free TCP
//! port of 127.0.0.1 instead; given a `redis://` URL, uses that server), starts
//! WORKERS (default 2) worker processes (this program again, serving with
//! `weft::broker::serve`, one thread each), and runs TASKS (default 1,000,000) typed jobs
//! through the broker from this process: no-op tasks, or with SLEEP_MS tasks sleeping that
//! long. Prints `broker.noop jobs/s value=V tasks=N workers=W seconds=S` (or `broker.sleep`),
//! the line `benches/run.sh` reads.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weft::broker::{Broker, RunOptions, WorkerOptions};
use weft::tasks::{Noop, Sleep};
use weft::{Backend, Registry};

fn main() {
    let registry = Registry::new().task::<Noop>().task::<Sleep>();
    weft::init(&registry);
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("worker") {
        let opts = WorkerOptions {
            workers: 1,
            backend: Backend::Thread,
            exit_when_idle: Some(Duration::from_secs(5)),
            ..WorkerOptions::default()
        };
        weft::broker::serve(&args[1], &registry, &opts).expect("worker");
        return;
    }
    let tasks: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let workers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let sleep_ms: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    let given = args.get(3).filter(|a| a.starts_with("redis")).cloned();
    let tcp = given.is_some() || args.get(3).is_some_and(|a| a == "tcp");
    // A port free a moment ago: the server takes it at once.
    let port = if tcp && given.is_none() {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    } else {
        0
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("sock");
    let redis = given.is_none().then(|| {
        Kill(
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--unixsocket")
                .arg(&sock)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server"),
        )
    });
    let url = if let Some(url) = given {
        url
    } else if tcp {
        format!("redis://127.0.0.1:{port}")
    } else {
        format!("redis+unix://{}", sock.display())
    };
    let start = Instant::now();
    while redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let me = std::env::current_exe().expect("this program");
    let mut pool: Vec<Kill> = (0..workers)
        .map(|_| {
            Kill(
                Command::new(&me)
                    .args(["worker", &url])
                    .spawn()
                    .expect("worker"),
            )
        })
        .collect();

    let broker = Broker::new(url.clone());
    let opts = RunOptions::default();
    let start = Instant::now();
    let (name, ok) = if sleep_ms == 0 {
        let out = broker.map((0..tasks).map(|_| Noop), &opts).expect("run");
        ("noop", out.filter(|o| o.is_ok()).count() as u64)
    } else {
        let jobs = (0..tasks).map(|_| Sleep::new(Duration::from_millis(sleep_ms)));
        let out = broker.map(jobs, &opts).expect("run");
        ("sleep", out.filter(|o| o.is_ok()).count() as u64)
    };
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(ok, tasks, "every job reported ok");
    // One repetition in benches/engine.rs's format; run.sh runs it again and report.py pools
    // the repetitions.
    let rate = tasks as f64 / secs;
    println!(
        "broker.{name} jobs/s median={rate:.6} min={rate:.6} max={rate:.6} n=1 values={rate:.6} \
         tasks={tasks} workers={workers} seconds={secs:.3} via={}",
        if tcp { "tcp" } else { "unix" }
    );
    pool.clear();
    drop(redis);
}

/// A child killed and reaped when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
