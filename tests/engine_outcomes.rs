//! Every job yields exactly one outcome, on both backends, whatever the task does.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{BACKENDS, pool, within};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use weft::tasks::{Sleep, Sum};
use weft::testing::Fault;
use weft::{Backend, Context, Crash, Failure, Pool, Status, Task};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn both_backends_give_the_same_results_in_any_order_and_in_input_order() {
    within(LIMIT, || {
        let tasks = || (0..200u64).map(|i| Sum::new(i * 1000..(i + 1) * 1000 + i));
        let mut per_backend = Vec::new();
        for backend in BACKENDS {
            let mut unordered: Vec<(u64, u128)> = pool(backend, 3)
                .build()
                .unwrap()
                .map(tasks())
                .map(|o| (o.seq, o.ok().expect("sum succeeds")))
                .collect();
            unordered.sort();
            let ordered: Vec<(u64, u128)> = pool(backend, 3)
                .keep_order(true)
                .build()
                .unwrap()
                .map(tasks())
                .map(|o| (o.seq, o.ok().expect("sum succeeds")))
                .collect();
            assert_eq!(
                unordered, ordered,
                "{backend:?}: keep_order yields input order"
            );
            per_backend.push(ordered);
        }
        assert_eq!(per_backend[0], per_backend[1]);
        let expected: Vec<(u64, u128)> = tasks()
            .enumerate()
            .map(|(i, _)| {
                let i = i as u64;
                (i + 1, (i * 1000..(i + 1) * 1000 + i).map(u128::from).sum())
            })
            .collect();
        assert_eq!(per_backend[0], expected);
    });
}

#[test]
fn a_panic_reports_its_message_and_location_across_the_process_boundary() {
    within(LIMIT, || {
        for backend in BACKENDS {
            let mut p = pool(backend, 1).build().unwrap();
            let outcomes: Vec<_> = p.map([Fault::Panic, Fault::Ok]).collect();
            assert_eq!(outcomes.len(), 2);
            match &outcomes[0].status {
                Status::Panicked { message, location } => {
                    assert_eq!(message, "panicked on purpose");
                    let at = location.as_deref().expect("location");
                    assert!(at.starts_with("src/testing.rs:"), "{backend:?}: {at}");
                }
                other => panic!("{backend:?}: expected a panic, got {other:?}"),
            }
            assert!(outcomes[1].is_ok(), "{backend:?}: the worker lives on");
            assert_eq!(
                outcomes[0].pid, outcomes[1].pid,
                "same worker after a panic"
            );
        }
    });
}

#[test]
fn a_task_error_is_a_failed_outcome_not_an_error() {
    within(LIMIT, || {
        for backend in BACKENDS {
            let outcomes: Vec<_> = pool(backend, 2)
                .build()
                .unwrap()
                .map([Fault::Fail])
                .collect();
            assert_eq!(
                outcomes[0].status,
                Status::Failed("failed on purpose".into())
            );
        }
    });
}

/// Encodes as the built-in `noop` task does (so a worker runs it as one), unless it refuses:
/// then its encoding fails.
struct MaybeNoop {
    refuse: bool,
}

impl Serialize for MaybeNoop {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.refuse {
            return Err(serde::ser::Error::custom("refused on purpose"));
        }
        ().serialize(s)
    }
}

impl<'de> Deserialize<'de> for MaybeNoop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        Ok(MaybeNoop { refuse: false })
    }
}

impl Task for MaybeNoop {
    const NAME: &'static str = "noop";
    type Output = ();
    fn run(self, _cx: &Context) -> Result<(), Failure> {
        Ok(())
    }
}

#[test]
fn an_input_that_cannot_be_encoded_fails_only_its_job() {
    within(LIMIT, || {
        for keep_order in [false, true] {
            let mut outcomes: Vec<_> = pool(Backend::Process, 2)
                .keep_order(keep_order)
                .build()
                .unwrap()
                .map((0..50).map(|i| MaybeNoop { refuse: i % 7 == 3 }))
                .map(|o| (o.seq, o.status))
                .collect();
            if keep_order {
                assert!(outcomes.is_sorted_by_key(|(seq, _)| *seq), "input order");
            }
            outcomes.sort_by_key(|(seq, _)| *seq);
            assert_eq!(outcomes.len(), 50, "one outcome per job");
            for (i, (seq, status)) in outcomes.iter().enumerate() {
                assert_eq!(*seq, i as u64 + 1);
                match status {
                    Status::Failed(m) if i % 7 == 3 => assert!(
                        m.starts_with("cannot encode noop input:")
                            && m.contains("refused on purpose"),
                        "{m}"
                    ),
                    Status::Ok(()) if i % 7 != 3 => {}
                    other => panic!("job {seq}, keep_order {keep_order}: {other:?}"),
                }
            }
        }
    });
}

fn crash_of(fault: Fault) -> Status<u32> {
    let mut p = pool(Backend::Process, 1).build().unwrap();
    let outcomes: Vec<_> = p.map([fault, Fault::Ok]).collect();
    assert_eq!(outcomes.len(), 2, "one outcome per job");
    let crashed = outcomes.iter().find(|o| o.seq == 1).unwrap();
    let after = outcomes.iter().find(|o| o.seq == 2).unwrap();
    assert!(
        after.is_ok(),
        "the next job runs on a replacement: {:?}",
        after.status
    );
    assert_ne!(crashed.pid, after.pid, "a new worker process");
    crashed.status.clone()
}

#[test]
fn abort_in_a_process_worker_is_a_crash_by_sigabrt() {
    within(LIMIT, || {
        assert_eq!(crash_of(Fault::Abort), Status::Crashed(Crash::Signal(6)));
    });
}

#[test]
fn exiting_with_status_zero_mid_job_is_a_crash_not_a_success() {
    within(LIMIT, || {
        assert_eq!(crash_of(Fault::Exit), Status::Crashed(Crash::Exit(0)));
    });
}

#[test]
fn a_segfault_is_a_crash_by_sigsegv() {
    within(LIMIT, || {
        assert_eq!(crash_of(Fault::Segv), Status::Crashed(Crash::Signal(11)));
    });
}

#[test]
fn a_worker_sigkilled_from_outside_fails_only_its_job() {
    within(LIMIT, || {
        let mut p = pool(Backend::Process, 2).build().unwrap();
        let victim = p.pids()[0];
        let killer = std::thread::spawn(move || {
            // Unmeasured jobs get no queue behind them, so each worker holds one hang; kill
            // the first worker once its hang has begun.
            assert!(common::wait_until(Duration::from_secs(20), || {
                common::in_sleep(victim)
            }));
            nix_kill(victim);
        });
        let jobs = vec![Fault::Hang, Fault::Hang];
        let mut outcomes: Vec<_> = p
            .map(jobs.into_iter().chain((0..20).map(|_| Fault::Ok)))
            .take(21)
            .collect();
        killer.join().unwrap();
        outcomes.sort_by_key(|o| o.seq);
        let crashed: Vec<_> = outcomes.iter().filter(|o| !o.is_ok()).collect();
        assert_eq!(crashed.len(), 1, "exactly one job fails: {outcomes:?}");
        assert_eq!(crashed[0].status, Status::Crashed(Crash::Signal(9)));
        assert_eq!(crashed[0].pid, victim);
        assert!(outcomes.iter().filter(|o| o.is_ok()).count() == 20);
    });
}

fn nix_kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn twenty_crashes_in_a_row_leave_the_pool_at_full_strength() {
    within(Duration::from_secs(120), || {
        let mut p = pool(Backend::Process, 3).build().unwrap();
        let jobs = (0..60).map(|i| if i % 3 == 0 { Fault::Abort } else { Fault::Ok });
        let outcomes: Vec<_> = p.map(jobs).collect();
        assert_eq!(outcomes.len(), 60);
        let crashed = outcomes
            .iter()
            .filter(|o| o.status == Status::Crashed(Crash::Signal(6)))
            .count();
        assert_eq!(crashed, 20);
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 40);
        assert!(common::wait_until(Duration::from_secs(20), || p
            .num_workers()
            == 3));
        let again: Vec<_> = p.map((0..10).map(|_| Fault::Ok)).collect();
        assert!(again.iter().all(|o| o.is_ok()), "the pool is still usable");
    });
}

#[test]
fn a_process_job_over_its_timeout_is_killed_and_its_worker_replaced() {
    within(LIMIT, || {
        let mut p = pool(Backend::Process, 1)
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let before = p.pids();
        let outcomes: Vec<_> = p.map([Fault::Hang, Fault::Ok]).collect();
        let hung = outcomes.iter().find(|o| o.seq == 1).unwrap();
        assert_eq!(hung.status, Status::TimedOut);
        assert!(
            !common::alive(before[0])
                || common::wait_until(common::SETTLE, || !common::alive(before[0]))
        );
        let next = outcomes.iter().find(|o| o.seq == 2).unwrap();
        assert!(next.is_ok());
        assert_ne!(next.pid, before[0]);
    });
}

#[test]
fn a_thread_job_that_ignores_its_token_is_timed_out_at_the_deadline_and_reported_once() {
    within(LIMIT, || {
        let mut p = pool(Backend::Thread, 1)
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let outcomes: Vec<_> = p.map([Fault::Hang, Fault::Ok, Fault::Ok]).collect();
        assert_eq!(
            outcomes.len(),
            3,
            "one outcome each, the late result discarded"
        );
        assert_eq!(
            outcomes.iter().find(|o| o.seq == 1).unwrap().status,
            Status::TimedOut
        );
        assert!(outcomes.iter().filter(|o| o.seq != 1).all(|o| o.is_ok()));
        assert_eq!(p.num_workers(), 1, "the abandoned thread was replaced");
    });
}

#[test]
fn a_cooperative_thread_task_sees_its_cancel_token_on_timeout() {
    within(LIMIT, || {
        let mut p = pool(Backend::Thread, 2)
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        let outcomes: Vec<_> = p
            .map([
                Sleep::new(Duration::from_secs(30)),
                Sleep::new(Duration::from_millis(1)),
            ])
            .collect();
        assert_eq!(
            outcomes.iter().find(|o| o.seq == 1).unwrap().status,
            Status::TimedOut
        );
        assert!(outcomes.iter().find(|o| o.seq == 2).unwrap().is_ok());
    });
}

#[test]
fn a_timeout_after_a_run_of_fast_jobs_fails_only_the_hung_job() {
    // The fast jobs make batches large, so the hung job shares one with jobs after it: none of
    // them, and no finished result before it, may be held by the worker that is given up.
    within(LIMIT, || {
        for backend in BACKENDS {
            let mut p = pool(backend, 1)
                .timeout(Duration::from_millis(300))
                .build()
                .unwrap();
            let jobs = (0..5000)
                .map(|_| Fault::Ok)
                .chain([Fault::Hang])
                .chain((0..500).map(|_| Fault::Ok));
            let mut outcomes: Vec<_> = p.map(jobs).collect();
            outcomes.sort_by_key(|o| o.seq);
            assert_eq!(outcomes.len(), 5501, "{backend:?}: one outcome per job");
            for o in &outcomes {
                if o.seq == 5001 {
                    assert_eq!(o.status, Status::TimedOut, "{backend:?}");
                } else {
                    assert!(o.is_ok(), "{backend:?}: job {} {:?}", o.seq, o.status);
                }
            }
        }
    });
}

#[test]
fn dropping_the_results_of_a_fast_run_midway_leaves_the_pool_whole() {
    within(LIMIT, || {
        for backend in BACKENDS {
            let mut p = pool(backend, 2).build().unwrap();
            let seen = p.map((0..200_000).map(|_| Fault::Ok)).take(5000).count();
            assert_eq!(seen, 5000);
            let again: Vec<_> = p.map((0..1000).map(|_| Fault::Ok)).collect();
            assert_eq!(again.len(), 1000, "{backend:?}");
            assert!(again.iter().all(|o| o.is_ok()), "{backend:?}");
            // Killed process workers are replaced in the background.
            assert!(
                common::wait_until(Duration::from_secs(20), || p.num_workers() == 2),
                "{backend:?}: {} workers",
                p.num_workers()
            );
        }
    });
}

/// Names the thread it runs on.
#[derive(Serialize, Deserialize)]
struct WhichThread;

/// How many `WhichThread` jobs have run to their end (only the test below counts them).
static WHICH_THREAD_RAN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Task for WhichThread {
    const NAME: &'static str = "which-thread";
    type Output = String;
    fn run(self, _cx: &Context) -> Result<String, Failure> {
        let name = format!("{:?}", std::thread::current().id());
        WHICH_THREAD_RAN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(name)
    }
}

#[test]
fn dropping_results_whose_jobs_all_finished_keeps_the_threads() {
    within(LIMIT, || {
        let mut p = pool(Backend::Thread, 2).build().unwrap();
        let threads = |p: &mut Pool| -> HashSet<String> {
            p.map((0..1000).map(|_| WhichThread))
                .filter_map(|o| o.ok())
                .collect()
        };
        let before = threads(&mut p);
        for _ in 0..5 {
            use std::sync::atomic::{AtomicUsize, Ordering};
            // Every job the pool takes from the input is handed to a thread at once (the
            // input is pulled only to fill the threads' credit).
            let pulled = AtomicUsize::new(0);
            let ran_before = WHICH_THREAD_RAN.load(Ordering::SeqCst);
            let mut results = p.map((0..1000).map(|_| {
                pulled.fetch_add(1, Ordering::SeqCst);
                WhichThread
            }));
            assert!(results.next().is_some_and(|o| o.is_ok()));
            // The jobs handed out finish; their results wait to be taken when the run is
            // dropped, and no thread is running anything.
            assert!(
                common::wait_until(common::SETTLE, || {
                    WHICH_THREAD_RAN.load(Ordering::SeqCst) - ran_before
                        == pulled.load(Ordering::SeqCst)
                }),
                "the jobs handed out finish"
            );
        }
        let after = threads(&mut p);
        assert!(
            after.is_subset(&before),
            "threads were replaced: {before:?} then {after:?}"
        );
    });
}

#[test]
fn outcomes_finished_before_a_hung_thread_job_are_not_held_back() {
    // No timeout: a thread takes whole batches and tells of results a group at a time. The
    // jobs before the hang still reach the caller, though the hang never ends.
    within(LIMIT, || {
        let mut p = pool(Backend::Thread, 1).build().unwrap();
        let jobs = (0..5000)
            .map(|_| Fault::Ok)
            .chain([Fault::Hang])
            .chain((0..100).map(|_| Fault::Ok));
        let done = p.map(jobs).take(5000).filter(|o| o.is_ok()).count();
        assert_eq!(done, 5000);
    });
}

/// A worker that sends results and then dies, both seen at once: what it sent counts, and
/// nothing it finished runs again. The slow job after the first is reported from the worker
/// that ran it, not run again on its replacement.
#[test]
fn results_a_worker_sent_before_it_died_count_and_do_not_run_again() {
    within(LIMIT, || {
        let mut p = pool(Backend::Process, 1).build().unwrap();
        // Measured fast, so the three jobs below go to the worker in one batch.
        assert!(p.map((0..200).map(|_| Fault::Ok)).all(|o| o.is_ok()));
        let first = p.pids()[0];
        // Each hog takes long enough to be sent at once; then the worker aborts.
        let mut outcomes = p.map([Fault::Hog(4), Fault::Hog(64), Fault::Abort]);
        let a = outcomes.next().expect("the first hog's outcome");
        // The second hog ends, its result is sent, and the worker dies, all before the
        // engine next looks.
        assert!(
            common::wait_until(common::SETTLE, || !common::alive(first)),
            "the worker aborts after the second hog"
        );
        let mut rest: Vec<_> = outcomes.collect();
        rest.sort_by_key(|o| o.seq);
        assert_eq!(a.seq, 1);
        assert!(a.is_ok(), "{a:?}");
        assert_eq!(rest.len(), 2, "{rest:?}");
        assert!(rest[0].is_ok(), "{:?}", rest[0]);
        assert_eq!(
            (rest[0].pid, rest[0].attempt),
            (first, 1),
            "the second hog is reported from the worker that ran it: {rest:?}"
        );
        assert_eq!(rest[1].status, Status::Crashed(Crash::Signal(6)));
        assert_eq!(rest[1].pid, first);
    });
}
