//! Tasks that misbehave on purpose, and what weft does about them.
//!
//! - `leave` starts two processes and returns without waiting for them: a background child,
//!   and a grandchild in a session of its own (`setsid`). weft kills both when their worker
//!   ends (its pool dropped, the worker killed or replaced), and when this program dies,
//!   however it dies.
//! - `chatter` prints its input with `println!`. On a worker process that goes to stderr:
//!   stdout carries only the results (`--jsonl` stays valid JSON).
//!
//! ```sh
//! cargo run --example leaky_tasks -- --jsonl --task chatter --backend process ::: a b
//! # A pool of 2 workers runs `leave` twice and prints the pids left behind, then waits for
//! # stdin to close (kill it meanwhile: the pids die with it).
//! LEAKY_HOLD=2 cargo run --example leaky_tasks
//! ```

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use weft::{Backend, Context, Failure, Pool, Task};

/// Leaves a background child and a `setsid` grandchild running; returns their pids.
#[derive(Serialize, Deserialize)]
struct Leave;

impl Task for Leave {
    const NAME: &'static str = "leave";
    const ABOUT: &'static str = "leave two processes running and return their pids";
    const BACKEND: Backend = Backend::Process;
    type Output = Vec<u32>;

    fn run(self, _cx: &Context) -> Result<Vec<u32>, Failure> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(
                "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!; \
                 sleep 1000 </dev/null >/dev/null 2>&1 & echo $!",
            )
            .stdin(Stdio::null())
            .output()?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|p| {
                p.parse()
                    .map_err(|_| Failure::new(format!("not a pid: {p:?}")))
            })
            .collect()
    }
}

/// Prints its input to stdout, and returns its length.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Chatter(String);

impl Task for Chatter {
    const NAME: &'static str = "chatter";
    const ABOUT: &'static str = "print the input with println! and return its length";
    const BACKEND: Backend = Backend::Process;
    type Output = usize;

    fn run(self, _cx: &Context) -> Result<usize, Failure> {
        println!("chatter {}", self.0);
        Ok(self.0.len())
    }
}

fn main() {
    let registry = weft::tasks::registry().task::<Leave>().task::<Chatter>();
    weft::init(&registry);
    let Some(workers) = std::env::var("LEAKY_HOLD")
        .ok()
        .and_then(|n| n.parse().ok())
    else {
        std::process::exit(weft::cli::main_with(registry));
    };
    let mut pool = Pool::builder()
        .workers(workers)
        .backend(Backend::Process)
        .build()
        .unwrap_or_else(|e| panic!("cannot start the pool: {e}"));
    let mut out = std::io::stdout().lock();
    for outcome in pool.map((0..workers).map(|_| Leave)) {
        let pids = outcome.ok().expect("leave runs");
        for pid in pids {
            writeln!(out, "{pid}").expect("stdout");
        }
    }
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    // Until stdin closes: the time to kill this program.
    for _ in std::io::stdin().lock().lines() {}
}
