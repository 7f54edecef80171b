//! At most two of six jobs running at once. Python guards each thread's work with
//! `threading.Semaphore(2)`; in weft a pool of two workers is that limit, and a live queue
//! lets another thread hand it work while this one takes the outcomes as they come.
//!
//! ```sh
//! cargo run --example semaphore
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use weft::Pool;

fn main() -> Result<(), weft::Error> {
    let running = Arc::new(AtomicUsize::new(0));
    let mut pool = Pool::builder().workers(2).build()?;
    let (queue, outcomes) = pool.queue_fn({
        let running = running.clone();
        move |job: u32| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(Duration::from_millis(100));
            running.fetch_sub(1, Ordering::SeqCst);
            (job, now)
        }
    });
    let producer = std::thread::spawn(move || {
        for job in 0..6 {
            queue
                .submit(job)
                .expect("the pool takes work until its outcomes are dropped");
        }
    });
    for outcome in outcomes {
        let ticket = outcome.seq;
        match outcome.ok() {
            Some((job, now)) => println!("ticket {ticket}: job {job} ran with {now} running"),
            None => println!("ticket {ticket}: did not succeed"),
        }
    }
    producer.join().expect("the producer does not panic");
    Ok(())
}
