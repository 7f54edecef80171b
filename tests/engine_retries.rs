//! Attempts: a job that does not succeed runs again, up to the pool's number of attempts, and
//! is reported once, by its last attempt.

mod common;

use std::time::Duration;

use common::{BACKENDS, alive, pool, wait_until, within};
use weft::tasks::Sleep;
use weft::testing::Fault;
use weft::{Backend, Crash, Status};

const LIMIT: Duration = Duration::from_secs(60);
const SIGABRT: i32 = 6;

#[test]
fn a_failing_job_is_retried_until_it_succeeds_and_reported_once() {
    within(LIMIT, || {
        for backend in BACKENDS {
            let mut p = pool(backend, 2).attempts(3).build().unwrap();
            let tasks = [Fault::FailUntil(3), Fault::Ok, Fault::FailUntil(2)];
            let mut got: Vec<(u64, u32, bool)> = p
                .map(tasks)
                .map(|o| (o.seq, o.attempt, o.is_ok()))
                .collect();
            got.sort();
            assert_eq!(
                got,
                [(1, 3, true), (2, 1, true), (3, 2, true)],
                "{backend:?}"
            );
        }
    });
}

#[test]
fn attempts_are_a_total_so_the_last_failure_is_what_is_reported() {
    within(LIMIT, || {
        for backend in BACKENDS {
            let mut p = pool(backend, 1).attempts(2).build().unwrap();
            let outcomes: Vec<_> = p.map([Fault::FailUntil(5)]).collect();
            assert_eq!(outcomes.len(), 1, "{backend:?}");
            assert_eq!(outcomes[0].attempt, 2, "{backend:?}");
            assert_eq!(
                outcomes[0].status,
                Status::Failed("failed on attempt 2".into()),
                "{backend:?}"
            );
        }
    });
}

#[test]
fn a_job_that_crashed_its_worker_is_retried_on_a_fresh_worker() {
    within(LIMIT, || {
        let mut p = pool(Backend::Process, 2).attempts(3).build().unwrap();
        let outcomes: Vec<_> = p.map([Fault::AbortUntil(3), Fault::Ok]).collect();
        assert_eq!(outcomes.len(), 2);
        let o = outcomes.iter().find(|o| o.seq == 1).unwrap();
        assert_eq!(o.attempt, 3);
        let Status::Ok(pid) = o.status else {
            panic!("the third attempt succeeds: {:?}", o.status)
        };
        assert_eq!(o.pid, pid);
        assert!(alive(pid), "the last attempt ran on a worker that lives on");
        assert!(wait_until(LIMIT, || p.num_workers() == 2));
        // Without attempts left, the crash itself is the outcome.
        let mut p = pool(Backend::Process, 1).attempts(2).build().unwrap();
        let outcomes: Vec<_> = p.map([Fault::AbortUntil(3)]).collect();
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].attempt, 2);
        assert_eq!(outcomes[0].status, Status::Crashed(Crash::Signal(SIGABRT)));
        assert_eq!(p.num_workers(), 1);
    });
}

#[test]
fn a_timed_out_job_gets_its_further_attempts_too() {
    within(LIMIT, || {
        for backend in BACKENDS {
            let mut p = pool(backend, 1)
                .attempts(2)
                .timeout(Duration::from_millis(100))
                .build()
                .unwrap();
            let outcomes: Vec<_> = p.map([Sleep::new(Duration::from_secs(30))]).collect();
            assert_eq!(outcomes.len(), 1, "{backend:?}");
            assert_eq!(outcomes[0].attempt, 2, "{backend:?}");
            assert_eq!(outcomes[0].status, Status::TimedOut, "{backend:?}");
        }
    });
}
