//! Five threads adding to one counter behind a lock, each a closure capturing an `Arc`.
//!
//! Mirrors Python's `threading.Lock` example: `with lock: counter += 1` in each of five
//! `threading.Thread(target=add)`, then `t.join()` for each.
//!
//! ```sh
//! cargo run --example locked_counter
//! ```

use std::sync::{Arc, Mutex};

use weft::Thread;

fn main() -> Result<(), weft::Error> {
    let counter = Arc::new(Mutex::new(0u64));
    let mut threads = Vec::new();
    for i in 0..5 {
        let counter = counter.clone();
        let thread = Thread::builder()
            .name(format!("adder-{i}"))
            .spawn_fn(move || {
                for _ in 0..100_000 {
                    // The lock is held for the statement, as Python's `with lock:`.
                    *counter.lock().expect("no thread panics holding it") += 1;
                }
            })?;
        threads.push(thread);
    }
    for thread in &mut threads {
        let (name, ident) = (thread.name().to_string(), thread.ident());
        // Joined by reference: the handle stays, as in Python.
        println!("{name} ({ident:?}): {}", thread.join().status);
    }
    println!("counter = {}", counter.lock().expect("no thread panicked"));
    Ok(())
}
