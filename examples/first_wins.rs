//! First to answer wins: four alternatives start at once, two on worker processes and two on
//! threads; the first success is taken and the rest are stopped (processes killed, threads
//! cancelled).
//!
//! Mirrors Python's `concurrent.futures.as_completed(futures)`, keeping the first result and
//! calling `cancel()` / `terminate()` on the others.
//!
//! ```sh
//! cargo run --example first_wins
//! ```

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weft::{Context, Failure, Handle, Process, Registry, Task, Thread};

/// The mirrors asked: name, how long each takes to reply, and whether it refuses.
const MIRRORS: [(&str, u64, bool); 4] = [
    ("process-a", 3000, false),
    ("thread-b", 100, true),
    ("process-c", 400, false),
    ("thread-d", 2000, false),
];

/// Asks the mirror at this index of `MIRRORS` for the answer.
#[derive(Serialize, Deserialize)]
struct Ask(usize);

impl Task for Ask {
    const NAME: &'static str = "ask";
    type Output = String;

    fn run(self, cx: &Context) -> Result<String, Failure> {
        let (name, millis, refuses) = MIRRORS[self.0];
        let until = Instant::now() + Duration::from_millis(millis);
        // A thread cannot be killed: it stops only if it looks at its cancel token.
        while Instant::now() < until {
            if cx.is_cancelled() {
                return Err(Failure::cancelled());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if refuses {
            return Err(Failure::new(format!("{name} refused")));
        }
        Ok(format!("42 from {name} (pid {})", std::process::id()))
    }
}

fn main() -> Result<(), weft::Error> {
    weft::init(&Registry::new().task::<Ask>());

    let handles: Vec<Handle<String>> = vec![
        Process::builder().spawn(Ask(0))?.into(),
        Thread::builder().spawn(Ask(1))?.into(),
        Process::builder().spawn(Ask(2))?.into(),
        Thread::builder().spawn(Ask(3))?.into(),
    ];
    println!("asked {} mirrors at once", handles.len());

    let start = Instant::now();
    let mut answers = weft::as_completed(handles);
    for (i, outcome) in answers.by_ref() {
        match outcome.into_result() {
            Ok(answer) => {
                println!("winner after {:.0?}: {answer}", start.elapsed());
                break;
            }
            Err(status) => println!("{} lost: {status}", MIRRORS[i].0),
        }
    }
    answers.stop_all();
    // Draining after stop_all shows how each loser ended, and waits until it has.
    for (i, outcome) in answers {
        println!("{} stopped: {}", MIRRORS[i].0, outcome.status);
    }
    println!("all others stopped after {:.0?}", start.elapsed());
    Ok(())
}
