//! The mistake this program makes on purpose: `weft::init` is not the first line of `main`.
//!
//! It calls `init` only when run with `--init`, the way a program might call it behind a flag
//! or after parsing its arguments. A worker is launched without the program's arguments, so
//! in a worker the condition never holds: each worker process runs `main` again instead of
//! becoming a worker. weft stops that copy at its first spawn (the pool it builds, or the
//! process it spawns) and the program that launched it reports the mistake at once, instead
//! of every copy launching workers of its own. The fix: `weft::init` first, unconditionally.
//!
//! ```sh
//! cargo run --example forgot_init            # fails at once: init must come first
//! cargo run --example forgot_init -- spawn   # the same through weft::Process
//! cargo run --example forgot_init -- --init  # the same: workers do not get the arguments
//! THREAD_FIRST=1 cargo run --example forgot_init  # init after a thread started: refused
//! ```
//!
//! `THREAD_FIRST` (in the environment, which workers inherit, unlike the arguments) makes the
//! other form of the mistake: `init` is called, but after the program started a thread. A worker must take its marker out of its environment, which is not sound
//! while another thread may read it, so each worker copy refuses to serve and says why.
//!
//! With `FORGOT_INIT_LOG=FILE` each process of the program appends its pid to `FILE` (the tests
//! count them).

use std::io::Write;

use weft::tasks::Sum;
use weft::{Backend, Pool, Process, Registry};

fn main() {
    if let Some(log) = std::env::var_os("FORGOT_INIT_LOG") {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("cannot open FORGOT_INIT_LOG");
        writeln!(log, "{}", std::process::id()).expect("cannot write FORGOT_INIT_LOG");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The mistake: `init` behind a condition.
    if args.iter().any(|a| a == "--init") {
        weft::init(&Registry::new().task::<Sum>());
    }
    // The other mistake: `init` after a thread has started.
    if std::env::var_os("THREAD_FIRST").is_some() {
        std::thread::spawn(|| {
            loop {
                std::thread::park();
            }
        });
        weft::init(&Registry::new().task::<Sum>());
    }

    let result = if args.iter().any(|a| a == "spawn") {
        Process::builder()
            .spawn(Sum::new(0..100))
            .map(|mut p| format!("{:?}", p.join().status))
    } else {
        Pool::builder()
            .workers(2)
            .backend(Backend::Process)
            .build()
            .map(|mut pool| {
                let sums: Vec<_> = pool.map([Sum::new(0..10), Sum::new(10..20)]).collect();
                format!("{} outcomes", sums.len())
            })
    };
    match result {
        Ok(done) => println!("{done}"),
        Err(e) => {
            eprintln!("forgot_init (pid {}): {e}", std::process::id());
            std::process::exit(1);
        }
    }
}
