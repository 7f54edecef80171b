//! The `weft` binary running its built-in tasks over arguments and stdin records.

mod common;

use common::{BACKENDS, task_table, weft, weft_on};
use predicates::str::contains;
use weft::Backend;

#[test]
fn sum_prints_the_sum_of_a_half_open_range_on_either_backend() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["--task", "sum", "-k", ":::", "0..1000000", "5..6", "3..3"])
            .assert()
            .success()
            .stdout("499999500000\n5\n0\n");
    }
}

#[test]
fn records_come_from_stdin_lines_without_arguments() {
    weft()
        .args(["--task", "sum", "-k"])
        .write_stdin("0..10\n10..20\n")
        .assert()
        .success()
        .stdout("45\n145\n");
}

#[test]
fn sleep_takes_fractional_seconds_and_prints_nothing() {
    for backend in BACKENDS {
        weft_on(backend)
            .args([
                "--task", "sleep", "-j", "4", ":::", "0.05", "0", "0.01", "1e-3",
            ])
            .assert()
            .success()
            .stdout("");
    }
}

#[test]
fn noop_accepts_any_record() {
    weft()
        .args(["--task", "noop", ":::", "", "x", "{}"])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn a_bad_record_fails_its_job_names_it_and_counts_in_the_exit_status() {
    weft()
        .args(["--task", "sum", "-k", ":::", "1..2", "ten..20", "0..x"])
        .assert()
        .code(2)
        .stdout("1\n")
        .stderr(contains("\"ten..20\" is not a range"));
}

#[test]
fn a_crash_fails_only_its_job() {
    weft_on(Backend::Process)
        .args(["--task", "fault", "-j", "2"])
        .args([":::", "fail", "abort", "exit", "ok", "ok"])
        .assert()
        .code(3)
        .stderr(contains("killed by SIGABRT"))
        .stderr(contains("exited with status 0"));
}

#[test]
fn an_unknown_task_is_an_error_that_says_where_to_look() {
    weft()
        .args(["--task", "nope", ":::", "x"])
        .assert()
        .code(255)
        .stderr("weft: no task named \"nope\": see `weft tasks`\n");
}

#[test]
fn tasks_lists_the_built_in_tasks_with_their_backend() {
    let rows = task_table();
    for (name, backend) in [("sum", "process"), ("sleep", "thread"), ("noop", "thread")] {
        assert!(
            rows.iter().any(|r| r.iter().take(2).eq([name, backend])),
            "{name} {backend} in {rows:?}"
        );
    }
}
