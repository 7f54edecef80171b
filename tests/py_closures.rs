//! Closures where nothing crosses a process boundary (issue 18, point 1): a one-off thread
//! and a thread pool run closures capturing `Arc`s, with a task's outcomes, timeouts and order.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::within;
use weft::{Backend, Pool, Status, Thread};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn threads_spawned_from_closures_share_a_locked_counter() {
    within(LIMIT, || {
        let counter = Arc::new(Mutex::new(0u64));
        let mut threads: Vec<_> = (0..5)
            .map(|i| {
                let counter = counter.clone();
                Thread::builder()
                    .name(format!("t{i}"))
                    .spawn_fn(move || {
                        for _ in 0..1000 {
                            *counter.lock().unwrap() += 1;
                        }
                        i
                    })
                    .unwrap()
            })
            .collect();
        let ids: Vec<u32> = threads
            .iter_mut()
            .map(|t| t.join().clone().ok().unwrap())
            .collect();
        assert_eq!(ids, [0, 1, 2, 3, 4]);
        assert_eq!(*counter.lock().unwrap(), 5000);
    });
}

#[test]
fn a_closure_thread_that_panics_is_an_outcome() {
    within(LIMIT, || {
        let t = Thread::builder()
            .spawn_fn(|| -> u8 { panic!("boom") })
            .unwrap();
        match t.into_outcome().status {
            Status::Panicked { message, .. } => assert_eq!(message, "boom"),
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn map_fn_yields_a_tasks_outcomes_in_order_and_frees_the_closure() {
    within(LIMIT, || {
        let seen = Arc::new(AtomicUsize::new(0));
        let mut pool = Pool::builder().workers(2).keep_order(true).build().unwrap();
        let statuses: Vec<Status<u64>> = pool
            .map_fn(0..6u64, {
                let seen = seen.clone();
                move |x| {
                    seen.fetch_add(1, Ordering::Relaxed);
                    assert!(x != 3, "three is bad");
                    x * 10
                }
            })
            .map(|o| o.status)
            .collect();
        assert_eq!(
            statuses[..3],
            [Status::Ok(0), Status::Ok(10), Status::Ok(20)]
        );
        assert!(
            matches!(&statuses[3], Status::Panicked { message, .. } if message == "three is bad")
        );
        assert_eq!(statuses[4..], [Status::Ok(40), Status::Ok(50)]);
        assert_eq!(seen.load(Ordering::Relaxed), 6);
        // The same pool runs a second closure; the first is let go of once the run is done.
        let words: Vec<String> = pool
            .map_fn(["a", "b"], |s: &str| s.repeat(2))
            .filter_map(|o| o.ok())
            .collect();
        assert_eq!(words, ["aa", "bb"]);
        drop(pool);
        assert_eq!(Arc::strong_count(&seen), 1, "no worker holds the closure");
    });
}

#[test]
fn a_closure_past_the_pools_timeout_is_timed_out() {
    within(LIMIT, || {
        let mut pool = Pool::builder()
            .workers(2)
            .timeout(Duration::from_millis(200))
            .keep_order(true)
            .build()
            .unwrap();
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let rx = Arc::new(Mutex::new(rx));
        let statuses: Vec<Status<u32>> = pool
            .map_fn([0u32, 1], move |x| {
                if x == 1 {
                    // Blocks until the test ends: only the timeout ends this job.
                    let _ = rx.lock().unwrap().recv();
                }
                x
            })
            .map(|o| o.status)
            .collect();
        drop(tx);
        assert_eq!(statuses, [Status::Ok(0), Status::TimedOut]);
    });
}

#[test]
fn a_closure_on_a_process_pool_fails_each_job_with_the_reason() {
    within(LIMIT, || {
        let mut pool = common::pool(Backend::Process, 1).build().unwrap();
        let statuses: Vec<Status<u32>> = pool.map_fn([1u32, 2], |x| x).map(|o| o.status).collect();
        assert_eq!(statuses.len(), 2);
        for s in statuses {
            assert!(
                matches!(&s, Status::Failed(m) if m.contains("thread workers only")),
                "{s:?}"
            );
        }
    });
}
