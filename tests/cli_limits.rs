//! `--memory-limit`, `--timeout N%` and `--term-seq` from the command line.

mod common;

use std::time::Duration;

use common::{BACKENDS, json_lines, weft, weft_on};
use predicates::prelude::*;

#[test]
fn a_job_over_the_memory_limit_fails_as_memory_limit_and_the_others_succeed() {
    let out = weft()
        .args([
            "--task",
            "fault",
            "--json",
            "-j2",
            "--memory-limit",
            "256M",
            "--jsonl",
        ])
        .args([":::", "\"ok\"", "{\"hog\":2048}", "\"ok\"", "{\"hog\":16}"])
        .env("RUST_BACKTRACE", "0")
        .timeout(Duration::from_secs(60))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let jobs = json_lines(&out);
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    for j in &jobs {
        let over = j["seq"] == 2;
        assert_eq!(j["status"] == "ok", !over, "{j}");
        if over {
            let error = j["error"].as_str().unwrap_or("");
            assert!(error.contains("memory limit"), "{j}");
        }
    }
}

#[test]
fn memory_limit_refuses_thread_workers_and_bad_sizes() {
    weft()
        .args([
            "--backend",
            "thread",
            "--memory-limit",
            "1G",
            "true",
            ":::",
            "a",
        ])
        .assert()
        .code(255)
        .stderr(predicate::str::contains(
            "--memory-limit applies to process workers",
        ));
    weft()
        .args(["--memory-limit", "lots", "true", ":::", "a"])
        .assert()
        .code(255)
        .stderr(predicate::str::contains("--memory-limit \"lots\""));
}

#[test]
fn a_timeout_relative_to_the_median_stops_only_the_outlier() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-j1", "-k", "--timeout", "2000%"])
            .args([
                "sleep {}; echo {}",
                ":::",
                "0.05",
                "0.05",
                "0.05",
                "30",
                "0.05",
            ])
            .timeout(Duration::from_secs(30))
            .assert()
            .code(1)
            .stdout("0.05\n0.05\n0.05\n0.05\n")
            .stderr(predicate::str::contains(
                "job 4 (sleep 30; echo 30) timed out",
            ));
    }
}

#[test]
fn term_seq_sends_its_signals_in_order_and_a_job_that_ignores_them_still_dies() {
    // The job traps INT and TERM; the sequence's last word, KILL, ends it.
    weft()
        .args(["--timeout", "0.2", "--term-seq", "INT,50,TERM,50,KILL,25"])
        .args(["trap '' INT TERM; sleep 30; echo survived {}", ":::", "a"])
        .timeout(Duration::from_secs(20))
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("timed out"));
    weft()
        .args(["--term-seq", "NOPE,10", "true", ":::", "a"])
        .assert()
        .code(255)
        .stderr(predicate::str::contains("--term-seq"));
}
