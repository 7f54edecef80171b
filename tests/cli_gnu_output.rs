//! How a job's output and its end are reported, side by side with GNU parallel 20221122
//! (issue 16, points 5 and 7): each test asserts what GNU parallel gives for the same command
//! line (run once with `--will-cite` and written in here, as CI has no GNU parallel).

mod common;

use std::time::Duration;

use common::*;

/// A hang guard, never a timing assertion.
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_timed_out_jobs_output_so_far_is_printed_and_its_joblog_row_names_the_signal() {
    // GNU: `seq 3 | parallel -k -j3 --joblog LOG --timeout 1 'echo {}; sleep 10'` prints
    // 1, 2, 3, exits 3, and logs each job with Exitval -1 and Signal 15 (TERM ended it).
    for backend in BACKENDS {
        let dir = Scratch::new("timeout-output");
        let log = dir.join("log");
        weft_on(backend)
            .args(["-k", "-j3", "--timeout", "1", "--joblog"])
            .arg(&log)
            .arg("echo {}; sleep 10")
            .write_stdin("1\n2\n3\n")
            .timeout(LIMIT)
            .assert()
            .code(3)
            .stdout("1\n2\n3\n")
            .stderr(predicates::str::contains(
                "job 3 (echo 3; sleep 10) timed out",
            ));
        for seq in 1..=3 {
            let row = joblog_row(&log, seq);
            // Receive, Exitval, Signal.
            assert_eq!(
                (&*row[5], &*row[6], &*row[7]),
                ("2", "-1", "15"),
                "{backend:?}"
            );
        }
    }
}

#[test]
fn a_timed_out_job_that_ignores_term_is_logged_with_kill() {
    // GNU: `seq 2 | parallel -k -j2 --joblog LOG --timeout 1 'trap "" TERM; echo {}; sleep 10'`
    // prints 1, 2, exits 2, and logs Exitval -1 and Signal 9 (KILL, the sequence's last word).
    for backend in BACKENDS {
        let dir = Scratch::new("timeout-kill");
        let log = dir.join("log");
        weft_on(backend)
            .args(["-k", "-j2", "--timeout", "1", "--joblog"])
            .arg(&log)
            .arg("trap '' TERM; echo {}; sleep 10")
            .write_stdin("1\n2\n")
            .timeout(LIMIT)
            .assert()
            .code(2)
            .stdout("1\n2\n");
        for seq in 1..=2 {
            let row = joblog_row(&log, seq);
            assert_eq!((&*row[6], &*row[7]), ("-1", "9"), "{backend:?}");
        }
    }
}
