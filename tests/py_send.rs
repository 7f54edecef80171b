//! Messages from a running task to its caller (`Context::send`, issue 18 point 4): received
//! while the task runs, on threads and processes, from pools and one-off handles; bounded; and
//! dropped cleanly once the caller is gone.
//!
//! The process side runs the `registered` example as its worker program: it registers a
//! `chatter` task of the same shape as the one here.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use weft::{Backend, Message, Pool, Process, Thread};

#[path = "../examples/shared/chatter.rs"]
mod chatter;
use chatter::{Chatter, Sends};

fn worker_program() -> PathBuf {
    common::example_bin("registered")
}

fn pool(backend: Backend) -> Pool {
    Pool::builder()
        .backend(backend)
        .workers(2)
        .program(worker_program())
        .start_timeout(Duration::from_secs(20))
        .build()
        .expect("pool starts")
}

/// A FIFO in `dir`: a task reading it waits until the test writes to it.
fn fifo(dir: &common::Scratch, name: &str) -> PathBuf {
    let path = dir.join(name);
    common::mkfifo(&path);
    path
}

/// Lets the task waiting on `fifo` end.
fn release(fifo: &Path) {
    std::fs::write(fifo, b"go").expect("write the fifo");
}

fn progress_reaches_a_pools_caller_before_the_job_ends(backend: Backend) {
    let dir = common::Scratch::new(&format!("py-send-pool-{}", backend.name()));
    let gate = fifo(&dir, "gate");
    let (messages, sends) = common::within(Duration::from_secs(60), move || {
        let mut pool = pool(backend);
        let mut outcomes = pool.map([Chatter {
            count: 3,
            wait: Some(gate.clone()),
        }]);
        let messages = outcomes.messages::<String>();
        // The job ends only once its three messages have been read here.
        let reader = std::thread::spawn(move || {
            let got: Vec<Message<String>> = (0..3).filter_map(|_| messages.recv()).collect();
            release(&gate);
            got
        });
        let outcome = outcomes.next().expect("one outcome");
        assert!(outcomes.next().is_none());
        (reader.join().expect("reader"), outcome.ok())
    });
    let seen: Vec<(u64, &str)> = messages.iter().map(|m| (m.seq, m.value.as_str())).collect();
    assert_eq!(seen, [(1, "1 of 3"), (1, "2 of 3"), (1, "3 of 3")]);
    assert_eq!(
        sends,
        Some(Sends {
            ok: 3,
            ..Sends::default()
        })
    );
}

#[test]
fn progress_messages_reach_a_thread_pools_caller_while_the_job_runs() {
    progress_reaches_a_pools_caller_before_the_job_ends(Backend::Thread);
}

#[test]
fn progress_messages_reach_a_process_pools_caller_while_the_job_runs() {
    progress_reaches_a_pools_caller_before_the_job_ends(Backend::Process);
}

#[test]
fn a_pools_messages_carry_the_seq_of_the_job_that_sent_them_and_end_with_the_run() {
    for backend in [Backend::Thread, Backend::Process] {
        let mut pool = pool(backend);
        let mut outcomes = pool.map((1..=4).map(|count| Chatter { count, wait: None }));
        let messages = outcomes.messages::<String>();
        let reader = std::thread::spawn(move || messages.collect::<Vec<_>>());
        let outcomes: Vec<_> = outcomes.collect();
        assert_eq!(outcomes.len(), 4);
        let mut got: Vec<(u64, String)> = common::within(Duration::from_secs(60), move || {
            reader.join().expect("reader")
        })
        .into_iter()
        .map(|m| (m.seq, m.value))
        .collect();
        got.sort();
        let want: Vec<(u64, String)> = (1..=4u64)
            .flat_map(|n| (1..=n).map(move |i| (n, format!("{i} of {n}"))))
            .collect();
        assert_eq!(got, want, "{backend:?}");
    }
}

#[test]
fn a_thread_handles_messages_arrive_while_its_task_runs() {
    let dir = common::Scratch::new("py-send-thread");
    let gate = fifo(&dir, "gate");
    let (seen, sends) = common::within(Duration::from_secs(60), move || {
        let t = Thread::builder()
            .spawn(Chatter {
                count: 2,
                wait: Some(gate.clone()),
            })
            .expect("thread starts");
        let messages = t.messages::<String>();
        let seen: Vec<String> = (0..2)
            .filter_map(|_| messages.recv())
            .map(|m| m.value)
            .collect();
        assert!(t.is_alive(), "the task waits for the gate");
        release(&gate);
        (seen, t.into_outcome().ok())
    });
    assert_eq!(seen, ["1 of 2", "2 of 2"]);
    assert_eq!(sends.map(|s| s.ok), Some(2));
}

#[test]
fn a_process_handles_messages_arrive_while_its_task_runs() {
    let dir = common::Scratch::new("py-send-process");
    let gate = fifo(&dir, "gate");
    let (seen, sends) = common::within(Duration::from_secs(60), move || {
        let mut p = Process::builder()
            .program(worker_program())
            .start_timeout(Duration::from_secs(20))
            .spawn(Chatter {
                count: 2,
                wait: Some(gate.clone()),
            })
            .expect("process starts");
        let messages = p.messages::<String>();
        let seen: Vec<Message<String>> = (0..2).filter_map(|_| messages.recv()).collect();
        assert_eq!(p.exitcode(), None, "the task waits for the gate");
        release(&gate);
        let sends = p.join().clone().ok();
        // Then they end: the process can send no more.
        assert!(messages.recv().is_none());
        (seen, sends)
    });
    let seen: Vec<(u64, &str)> = seen.iter().map(|m| (m.seq, m.value.as_str())).collect();
    assert_eq!(seen, [(1, "1 of 2"), (1, "2 of 2")]);
    assert_eq!(sends.map(|s| s.ok), Some(2));
}

#[test]
fn a_full_channel_keeps_the_first_messages_and_refuses_the_rest() {
    // A thread: nobody reads until the task has ended; its sends past the bound say so.
    let (sends, messages) = common::within(Duration::from_secs(60), || {
        let mut t = Thread::builder()
            .spawn(Chatter {
                count: 300,
                wait: None,
            })
            .expect("thread starts");
        let sends = t.join().clone().ok().expect("the task ends");
        (sends, t.messages::<String>())
    });
    let cap = messages.capacity() as u32;
    assert!(cap < 300, "the bound is below what the task sends: {cap}");
    assert_eq!(
        sends,
        Sends {
            ok: cap,
            full: 300 - cap,
            closed: 0
        }
    );
    let got: Vec<String> = messages.map(|m| m.value).collect();
    let want: Vec<String> = (1..=cap).map(|i| format!("{i} of 300")).collect();
    assert_eq!(got, want);

    // A process: its messages are on their way once sent; the caller's bound drops the rest.
    let mut p = Process::builder()
        .program(worker_program())
        .start_timeout(Duration::from_secs(20))
        .spawn(Chatter {
            count: 300,
            wait: None,
        })
        .expect("process starts");
    let sends = common::within(Duration::from_secs(60), move || {
        let sends = p.join().clone().ok();
        (
            sends,
            p.messages::<String>().map(|m| m.value).collect::<Vec<_>>(),
        )
    });
    assert_eq!(sends.0.map(|s| s.ok), Some(300));
    assert_eq!(sends.1, want);
}

#[test]
fn sends_after_the_caller_dropped_its_messages_are_refused_and_the_jobs_end() {
    // Threads: each send says nobody reads; every job ends.
    let mut threads = pool(Backend::Thread);
    let sends: Vec<Sends> = common::within(Duration::from_secs(60), move || {
        let mut outcomes = threads.map((0..4).map(|_| Chatter {
            count: 1000,
            wait: None,
        }));
        drop(outcomes.messages::<String>());
        outcomes.filter_map(|o| o.ok()).collect()
    });
    assert_eq!(sends.len(), 4);
    for s in sends {
        assert_eq!(
            s,
            Sends {
                closed: 1000,
                ..Sends::default()
            }
        );
    }

    // Processes: the messages are dropped on the caller's side, without a hang or an error.
    let mut processes = pool(Backend::Process);
    let sends: Vec<Sends> = common::within(Duration::from_secs(60), move || {
        let mut outcomes = processes.map((0..4).map(|_| Chatter {
            count: 1000,
            wait: None,
        }));
        drop(outcomes.messages::<String>());
        outcomes.filter_map(|o| o.ok()).collect()
    });
    assert_eq!(sends.len(), 4);
    assert!(sends.iter().all(|s| s.ok == 1000), "{sends:?}");

    // A run whose caller never asked for messages: the same.
    let mut threads = pool(Backend::Thread);
    let sends: Vec<Sends> = threads
        .map([Chatter {
            count: 5,
            wait: None,
        }])
        .filter_map(|o| o.ok())
        .collect();
    assert_eq!(
        sends,
        [Sends {
            closed: 5,
            ..Sends::default()
        }]
    );
}

#[test]
fn a_message_of_another_type_is_skipped() {
    let mut t = Thread::builder()
        .spawn(Chatter {
            count: 2,
            wait: None,
        })
        .expect("thread starts");
    t.join();
    // The task sent strings.
    assert!(t.messages::<u64>().next().is_none());
}
