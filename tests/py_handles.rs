//! Python-shaped one-off handles (issue 18, point 3): joined by reference and again after a
//! join with a timeout, `exitcode` as Python reads it, stopped on purpose reads cancelled, the
//! getters, and a `Context` of one's own to run a task inline.

mod common;

use std::time::Duration;

use common::{weft_bin, within};
use weft::tasks::Sum;
use weft::testing::Fault;
use weft::{Context, Crash, Process, Status, Task, Thread};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_thread_joined_after_join_timeout_returns_the_same_outcome() {
    within(LIMIT, || {
        let mut t = Thread::builder().spawn(Sum::new(0..10)).unwrap();
        let first = t.join_timeout(LIMIT).expect("finished").clone();
        assert_eq!(first.status, Status::Ok(45));
        assert_eq!(t.join_timeout(Duration::ZERO), Some(&first));
        assert_eq!(t.join(), &first);
        assert_eq!(t.join(), &first, "joined by reference, again");
        assert!(!t.is_alive());
        assert_eq!(t.into_outcome(), first);
    });
}

#[test]
fn a_process_joined_after_join_timeout_returns_the_same_outcome() {
    within(LIMIT, || {
        let mut p = Process::builder()
            .program(weft_bin())
            .spawn(Sum::new(0..10))
            .unwrap();
        let first = p.join_timeout(LIMIT).expect("finished").clone();
        assert_eq!(first.status, Status::Ok(45));
        assert_eq!(p.join(), &first);
        assert_eq!(p.join(), &first, "joined by reference, again");
        assert_eq!(p.exitcode(), Some(0));
        assert_eq!(p.into_outcome(), first);
    });
}

#[test]
fn exitcode_is_none_while_running_then_what_the_task_passed_to_exit() {
    within(LIMIT, || {
        let mut p = Process::builder()
            .program(weft_bin())
            .spawn(Fault::ExitWith(3))
            .unwrap();
        let status = p.join().status.clone();
        assert_eq!(status, Status::Crashed(Crash::Exit(3)));
        assert_eq!(p.exitcode(), Some(3));

        let mut hang = Process::builder()
            .program(weft_bin())
            .spawn(Fault::Hang)
            .unwrap();
        assert!(hang.join_timeout(Duration::from_millis(20)).is_none());
        assert_eq!(hang.exitcode(), None, "running");
        hang.kill();
        assert_eq!(hang.join().status, Status::Cancelled);
        assert_eq!(hang.exitcode(), Some(-9));
    });
}

#[test]
fn terminate_on_purpose_reads_cancelled_but_a_signal_from_outside_is_a_crash() {
    within(LIMIT, || {
        let mut stopped = Process::builder()
            .program(weft_bin())
            .spawn(Fault::Hang)
            .unwrap();
        assert!(common::wait_until(LIMIT, || common::in_sleep(
            stopped.pid()
        )));
        stopped.terminate();
        let outcome = stopped.join();
        assert_eq!(outcome.status, Status::Cancelled);
        assert_eq!(outcome.status.to_string(), "cancelled");
        assert_eq!(stopped.exitcode(), Some(-15));

        let mut shot = Process::builder()
            .program(weft_bin())
            .spawn(Fault::Hang)
            .unwrap();
        assert!(common::wait_until(LIMIT, || common::in_sleep(shot.pid())));
        common::signal(shot.pid(), "KILL");
        assert_eq!(shot.join().status, Status::Crashed(Crash::Signal(9)));
        assert_eq!(shot.exitcode(), Some(-9));
    });
}

#[test]
fn handles_tell_their_name_daemon_flag_and_ident() {
    within(LIMIT, || {
        let mut t = Thread::builder()
            .name("t1")
            .daemon(true)
            .spawn_fn(|| std::thread::current().id())
            .unwrap();
        assert_eq!((t.name(), t.daemon()), ("t1", true));
        let ident = t.ident();
        assert_eq!(t.join().status, Status::Ok(ident));

        let p = Process::builder()
            .name("p1")
            .daemon(false)
            .program(weft_bin())
            .spawn(Sum::new(0..1))
            .unwrap();
        assert_eq!((p.name(), p.daemon()), ("p1", false));
        assert!(p.pid() > 0);
    });
}

#[test]
fn a_task_runs_inline_with_a_context_of_its_own() {
    let cx = Context::new().with_state(7u32);
    assert_eq!(Sum::new(0..10).run(&cx), Ok(45));
    assert_eq!(cx.state::<u32>(), Some(&7));
    assert_eq!(
        Fault::Fail.run(&Context::default()).unwrap_err().message(),
        "failed on purpose"
    );
}
