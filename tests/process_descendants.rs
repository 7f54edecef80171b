//! No process a task starts outlives its worker: what a process worker's tasks leave running
//! (a background child, a `setsid` grandchild in a session of its own) dies when the worker
//! ends (its pool dropped, the worker killed and replaced, a one-off process done) and when the
//! coordinator is SIGKILLed. And what a task prints on a process worker does not get into the
//! coordinator's stdout.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde::{Deserialize, Serialize};
use weft::tasks::Exec;
use weft::{Backend, Context, Failure, Process, Status, Task};

const LIMIT: Duration = Duration::from_secs(60);
/// How long a leftover process may take to die once its worker (or coordinator) is gone.
const GONE: Duration = Duration::from_secs(10);

/// A command that leaves a `setsid` grandchild and a background child running, and prints their
/// pids.
const LEAVE: &str = "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!; \
                     sleep 1000 </dev/null >/dev/null 2>&1 & echo $!";

/// The example program with the `leave` and `chatter` tasks (see examples/leaky_tasks.rs).
fn leaky_bin() -> PathBuf {
    common::example_bin("leaky_tasks")
}

/// The example's `leave` task, as this side sees it: a name and no input.
#[derive(Serialize, Deserialize)]
struct Leave;

impl Task for Leave {
    const NAME: &'static str = "leave";
    type Output = Vec<u32>;
    fn run(self, _cx: &Context) -> Result<Vec<u32>, Failure> {
        unreachable!("runs in the example's workers")
    }
}

/// The pids an `Exec` of [`LEAVE`] printed.
fn exec_pids(status: Status<weft::tasks::ExecOutput>) -> Vec<u32> {
    let Status::Ok(out) = status else {
        panic!("the command ran: {status:?}")
    };
    let pids: Vec<u32> = String::from_utf8(out.stdout.into_bytes())
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "two pids: {pids:?}");
    pids
}

fn assert_all_alive(pids: &[u32], what: &str) {
    assert!(
        pids.iter().all(|&p| alive(p)),
        "{what}: left running first: {pids:?}, alive {:?}",
        survivors(pids)
    );
}

#[test]
fn what_process_workers_leave_running_dies_when_the_pool_is_dropped() {
    within(LIMIT, || {
        // A library `Exec` on the `weft` binary's workers.
        let mut execs = pool(Backend::Process, 2).build().unwrap();
        let pids: Vec<u32> = execs
            .map([Exec::new(LEAVE), Exec::new(LEAVE)])
            .flat_map(|o| exec_pids(o.status))
            .collect();
        assert_all_alive(&pids, "exec");
        drop(execs);
        assert_no_survivors(&pids, GONE, "exec: after the pool was dropped");

        // A task of a program's own that forks, on that program's workers.
        let mut pool = pool(Backend::Process, 2)
            .program(leaky_bin())
            .build()
            .unwrap();
        let pids: Vec<u32> = pool
            .map([Leave, Leave])
            .flat_map(|o| o.ok().expect("leave runs"))
            .collect();
        assert_eq!(pids.len(), 4, "{pids:?}");
        assert_all_alive(&pids, "leave");
        drop(pool);
        assert_no_survivors(&pids, GONE, "leave: after the pool was dropped");
    });
}

#[test]
fn what_a_killed_worker_left_running_dies_when_it_is_replaced_and_the_pool_works_on() {
    within(LIMIT, || {
        let mut pool = pool(Backend::Process, 1).build().unwrap();
        let outcome = pool.map([Exec::new(LEAVE)]).next().unwrap();
        let worker = outcome.pid;
        let pids = exec_pids(outcome.status);
        assert_all_alive(&pids, "exec");
        signal(worker, "KILL");
        assert!(wait_until(GONE, || !alive(worker)), "worker {worker} died");
        // The pool notices the death on its next run, and replaces the worker.
        let next = pool.map([Exec::new("echo on")]).next().unwrap();
        assert_ne!(next.pid, worker, "a new worker ran the next job");
        let Status::Ok(out) = next.status else {
            panic!("the pool works on: {:?}", next.status)
        };
        assert_eq!(out.stdout.into_bytes(), b"on\n");
        assert_no_survivors(&pids, GONE, "after the worker was killed and replaced");
    });
}

#[test]
fn what_a_one_off_process_left_running_dies_with_it() {
    within(LIMIT, || {
        // Done, then dropped.
        let mut p = Process::builder()
            .program(weft_bin())
            .spawn(Exec::new(LEAVE))
            .unwrap();
        let outcome = p.join_timeout(LIMIT).expect("the task ends").clone();
        let pids = exec_pids(outcome.status);
        assert_all_alive(&pids, "done");
        drop(p);
        assert_no_survivors(&pids, GONE, "after the process was dropped");

        // Killed while its task runs.
        let dir = Scratch::new("one-off-killed");
        let file = dir.join("pids");
        let command = format!("({LEAVE}) > {}; sleep 1000", file.display());
        let p = Process::builder()
            .program(weft_bin())
            .spawn(Exec::new(command))
            .unwrap();
        assert!(
            wait_until(LIMIT, || pids_in(&file).len() == 2),
            "the task left two processes"
        );
        let pids = pids_in(&file);
        assert_all_alive(&pids, "killed");
        p.kill();
        let outcome = p.into_outcome();
        assert!(
            matches!(outcome.status, Status::Cancelled),
            "{:?}",
            outcome.status
        );
        assert_no_survivors(&pids, GONE, "after the process was killed");
    });
}

#[test]
fn what_process_workers_left_running_dies_when_the_coordinator_is_sigkilled() {
    within(LIMIT, || {
        let mut coordinator = Command::new(leaky_bin())
            .env("LEAKY_HOLD", "2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pids = Vec::new();
        for line in BufReader::new(coordinator.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if line == "ready" {
                break;
            }
            pids.push(line.parse::<u32>().unwrap());
        }
        assert_eq!(pids.len(), 4, "two tasks left two processes each: {pids:?}");
        assert_all_alive(&pids, "leave");
        let workers = children_of(coordinator.id());
        coordinator.kill().unwrap();
        coordinator.wait().unwrap();
        pids.extend(workers);
        assert_no_survivors(&pids, GONE, "after the coordinator was SIGKILLed");
    });
}

#[test]
fn what_a_task_prints_on_a_process_worker_goes_to_stderr_not_among_jsonl_results() {
    let out = Command::new(leaky_bin())
        .args([
            "--jsonl",
            "--task",
            "chatter",
            "--backend",
            "process",
            "-j2",
        ])
        .args([":::", "a", "bb", "ccc"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Only the outcomes, each one valid JSON.
    let mut lengths: Vec<u64> = json_lines(&out.stdout)
        .iter()
        .map(|o| o["output"].as_u64().unwrap())
        .collect();
    lengths.sort_unstable();
    assert_eq!(lengths, [1, 2, 3]);
    let mut printed: Vec<&str> = err.lines().filter(|l| l.starts_with("chatter")).collect();
    printed.sort_unstable();
    assert_eq!(printed, ["chatter a", "chatter bb", "chatter ccc"], "{err}");
}

#[test]
fn commands_on_process_workers_still_write_to_stdout_when_ungrouped_or_line_buffered() {
    for mode in ["-u", "--line-buffer"] {
        let out = weft_on(Backend::Process)
            .args([
                mode, "-j2", "echo", "out", "{}", ";", "echo", "err", "{}", ">&2",
            ])
            .args([":::", "1", "2"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{mode}");
        let mut stdout = lines(&out.stdout);
        stdout.sort();
        assert_eq!(stdout, ["out 1", "out 2"], "{mode}");
        let mut stderr = lines(&out.stderr);
        stderr.sort();
        assert_eq!(stderr, ["err 1", "err 2"], "{mode}");
    }
}
