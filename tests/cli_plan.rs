//! The command line checked whole before a run starts, and the one drive loop that runs tasks
//! and commands alike (`src/cli/plan.rs`, `src/cli/drive.rs`).

mod common;

use common::*;

#[test]
fn a_bad_option_value_is_refused_before_the_joblog_is_opened() {
    let dir = Scratch::new("plan-joblog");
    let log = dir.join("log");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--memory-limit", "1K", "--task", "noop", ":::", "a"],
            "weft: --memory-limit \"1K\": too small for a worker to start: give at least 32M\n",
        ),
        (
            &["--memory-limit", "lots", "true", ":::", "a"],
            "weft: --memory-limit \"lots\": give a size such as 512M or 2G\n",
        ),
        (
            &[
                "--memory-limit",
                "64M",
                "--backend",
                "thread",
                "true",
                ":::",
                "a",
            ],
            "weft: --memory-limit applies to process workers: drop --backend thread\n",
        ),
    ];
    for (args, message) in cases {
        weft()
            .arg("--joblog")
            .arg(&log)
            .args(*args)
            .assert()
            .code(255)
            .stdout("")
            .stderr(*message);
        assert!(!log.exists(), "{args:?}: the joblog was opened");
    }
}

#[test]
fn a_task_run_logs_and_resumes_from_its_joblog_as_a_command_run_does() {
    let dir = Scratch::new("plan-task-resume");
    let log = dir.join("log");
    let run = |extra: &[&str], records: [&str; 3]| {
        weft()
            .arg("--joblog")
            .arg(&log)
            .args(extra)
            .args(["-k", "--task", "sleep", ":::"])
            .args(records)
            .output()
            .unwrap()
            .status
            .code()
    };
    // Job 2 fails (not a number of seconds), then runs again with --resume-failed and succeeds.
    assert_eq!(run(&[], ["0", "x", "0"]), Some(1));
    assert_eq!(run(&["--resume-failed"], ["0", "0", "0"]), Some(0));
    assert_eq!(run(&["--resume"], ["x", "x", "x"]), Some(0), "nothing runs");
    let rows = joblog_rows(&log);
    let seq_exit_command: Vec<(&str, &str, &str)> =
        rows.iter().map(|r| (&*r[0], &*r[6], &*r[8])).collect();
    assert_eq!(
        seq_exit_command,
        [
            ("1", "0", "sleep 0"),
            ("2", "1", "sleep x"),
            ("3", "0", "sleep 0"),
            ("2", "0", "sleep 0"),
        ]
    );
}
