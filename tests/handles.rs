//! One-off `Process` and `Thread` handles, and waiting on both kinds together.

mod common;

use std::time::Duration;

use common::{weft_bin, within};
use weft::tasks::{Sleep, Sum};
use weft::testing::Fault;
use weft::{Handle, Process, Status, Thread, as_completed};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_process_runs_its_task_then_exits_zero() {
    within(LIMIT, || {
        let p = Process::builder()
            .name("adder")
            .program(weft_bin())
            .spawn(Sum::new(0..101))
            .unwrap();
        assert_eq!(p.name(), "adder");
        assert!(common::alive(p.pid()));
        let pid = p.pid();
        let outcome = p.into_outcome();
        assert_eq!(outcome.ok(), Some(5050));
        assert!(common::wait_until(common::SETTLE, || {
            !common::alive(pid)
        }));
    });
}

#[test]
fn join_timeout_returns_nothing_while_running_and_kill_ends_it_as_cancelled() {
    within(LIMIT, || {
        let mut p = Process::builder()
            .program(weft_bin())
            .spawn(Fault::Hang)
            .unwrap();
        assert!(p.join_timeout(Duration::from_millis(50)).is_none());
        assert!(p.is_alive());
        p.kill();
        let outcome = p.join_timeout(Duration::from_secs(10)).expect("ended");
        assert_eq!(outcome.status, Status::Cancelled);
        assert!(!p.is_alive());
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(p.exit_status().and_then(|s| s.signal()), Some(9));
    });
}

#[test]
fn terminate_sends_sigterm() {
    within(LIMIT, || {
        let mut p = Process::builder()
            .program(weft_bin())
            .spawn(Fault::Hang)
            .unwrap();
        assert!(common::wait_until(Duration::from_secs(10), || {
            common::in_sleep(p.pid())
        }));
        p.terminate();
        assert_eq!(p.join().status, Status::Cancelled);
        assert_eq!(p.exitcode(), Some(-15));
    });
}

#[test]
fn a_daemon_process_dies_with_its_handle() {
    within(LIMIT, || {
        let p = Process::builder()
            .program(weft_bin())
            .spawn(Fault::Hang)
            .unwrap();
        let pid = p.pid();
        drop(p);
        assert!(common::wait_until(common::SETTLE, || {
            !common::alive(pid)
        }));
    });
}

#[test]
fn a_thread_can_be_cancelled_through_its_context() {
    within(LIMIT, || {
        let mut t = Thread::builder()
            .name("sleeper")
            .spawn(Sleep::new(Duration::from_secs(60)))
            .unwrap();
        assert_eq!(t.name(), "sleeper");
        assert!(t.join_timeout(Duration::from_millis(20)).is_none());
        assert!(t.is_alive());
        t.cancel();
        let outcome = t.join();
        assert_eq!(outcome.status, Status::Cancelled);
    });
}

#[test]
fn a_thread_panic_is_an_outcome() {
    within(LIMIT, || {
        let mut t = Thread::builder().spawn(Fault::Panic).unwrap();
        assert!(matches!(t.join().status, Status::Panicked { .. }));
    });
}

#[test]
fn as_completed_yields_mixed_handles_first_finished_first() {
    within(LIMIT, || {
        let slow = Process::builder()
            .program(weft_bin())
            .spawn(Fault::Hang)
            .unwrap();
        let quick = Thread::builder().spawn(Fault::Ok).unwrap();
        let proc_quick = Process::builder()
            .program(weft_bin())
            .spawn(Fault::Ok)
            .unwrap();
        let mut done = as_completed([Handle::from(slow), quick.into(), proc_quick.into()]);
        let mut first_two: Vec<usize> = done
            .by_ref()
            .take(2)
            .map(|(i, o)| {
                assert!(o.is_ok());
                i
            })
            .collect();
        first_two.sort();
        assert_eq!(first_two, [1, 2], "the hanging process finishes last");
        done.stop_all();
        let (i, last) = done.next().expect("the killed one reports too");
        assert_eq!(i, 0);
        assert_eq!(last.status, Status::Cancelled, "stopped on purpose");
        assert!(done.next().is_none());
    });
}
