//! Worker processes start, fail to start, and die with their coordinator.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    SETTLE, Scratch, assert_no_survivors, children_of, pool, wait_until, weft_bin, within,
};
use weft::Backend;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn workers_die_when_their_coordinator_is_sigkilled() {
    within(LIMIT, || {
        let mut coordinator = Command::new(weft_bin())
            .args(["--task", "fault", "--backend", "process", "-j", "2"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        coordinator
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"hang\nhang\n")
            .unwrap();
        let pid = coordinator.id();
        let mut workers = Vec::new();
        assert!(
            wait_until(Duration::from_secs(20), || {
                // Its children but the watchdog, which outlives it on purpose.
                workers = children_of(pid)
                    .into_iter()
                    .filter(|&c| {
                        !std::fs::read(format!("/proc/{c}/environ"))
                            .unwrap_or_default()
                            .split(|&b| b == 0)
                            .any(|v| v.starts_with(b"WEFT_WATCHDOG="))
                    })
                    .collect();
                workers.len() == 2 && workers.iter().all(|&w| common::in_sleep(w))
            }),
            "two workers running their long task"
        );
        coordinator.kill().unwrap();
        coordinator.wait().unwrap();
        let killed = Instant::now();
        assert_no_survivors(&workers, SETTLE, "workers outlived their coordinator");
        eprintln!("workers gone {:?} after the coordinator", killed.elapsed());
    });
}

#[test]
fn a_worker_program_that_does_not_exist_is_a_spawn_error() {
    within(LIMIT, || {
        let err = pool(Backend::Process, 2)
            .program("/nonexistent/weft-worker")
            .build()
            .unwrap_err();
        assert!(err.is_spawn(), "{err}");
        assert!(err.to_string().contains("could not be spawned"), "{err}");
    });
}

#[test]
fn a_worker_that_exits_before_its_handshake_is_reported_not_awaited() {
    within(LIMIT, || {
        let err = pool(Backend::Process, 1)
            .program("/bin/true")
            .build()
            .unwrap_err();
        assert!(err.is_spawn());
        assert_eq!(
            err.to_string(),
            "worker 1 exited before its handshake (exited with status 0): does its program call `weft::init(&registry)` as the first line of `main`?"
        );
    });
}

#[test]
fn a_worker_that_never_says_hello_times_out_and_is_killed() {
    within(LIMIT, || {
        let dir = Scratch::new("silent");
        let script = dir.join("silent");
        std::fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let started = Instant::now();
        let err = pool(Backend::Process, 1)
            .program(&script)
            .start_timeout(Duration::from_millis(300))
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains("did not finish its handshake"),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bounded by the start timeout"
        );
        assert!(
            wait_until(SETTLE, || children_of(std::process::id()).iter().all(
                |&c| !std::fs::read_to_string(format!("/proc/{c}/cmdline"))
                    .unwrap_or_default()
                    .contains("sleep")
            )),
            "the silent worker was killed"
        );
    });
}
