//! Output and job control as GNU parallel's own test suite checks them (`--verbose`, `--timeout`
//! units, the kill sequence, `--line-buffer`, `--halt` messages...): each test a minimal
//! reproduction of a case, asserting the output and exit status GNU parallel 20221122 gives.

mod common;

use common::weft;
use predicates::str::contains;

/// GNU parallel's `--verbose` is its `-t`: each command line on stderr, not on stdout before
/// the output as `-v` prints it (par_verbose_t).
#[test]
fn verbose_long_option_prints_command_lines_on_stderr_as_minus_t() {
    weft()
        .args(["-k", "--verbose", "echo", "{}ar", ":::", "b", "c"])
        .assert()
        .code(0)
        .stdout("bar\ncar\n")
        .stderr("echo bar\necho car\n");
    weft()
        .args(["-k", "-v", "echo", "{}ar", ":::", "b", "c"])
        .assert()
        .code(0)
        .stdout("echo bar\nbar\necho car\ncar\n")
        .stderr("");
}

/// `--timeout 1.4m`, `2h30m`: GNU parallel's time units (par_dryrun_timeout_ungroup,
/// par_children_receive_sig).
#[test]
fn timeout_takes_gnu_time_units() {
    weft()
        .args([
            "--dry-run",
            "--timeout",
            "1.4m",
            "-u",
            "echo",
            ":::",
            "1",
            "2",
        ])
        .assert()
        .code(0)
        .stdout("echo 1\necho 2\n");
    weft()
        .args(["--timeout", "1m", "echo", "{}", ":::", "a"])
        .assert()
        .code(0)
        .stdout("a\n");
    // 1.2 seconds, written in minutes: the job is stopped, and fails.
    weft()
        .args(["--timeout", "0.02m", "sleep 30; echo no", ":::", "1"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains("timed out"));
    weft()
        .args(["--timeout", "1x", "echo", ":::", "a"])
        .assert()
        .code(255)
        .stderr(contains("--timeout \"1x\""));
}

/// `--delay 0.1s`, `--delay 0.01m` (par_delay_human_readable).
#[test]
fn delay_takes_gnu_time_units() {
    for delay in ["0.1s", "0.01m", "0.05s0.05"] {
        weft()
            .args(["-k", "--delay", delay, "echo", ":::", "a", "b", "c"])
            .assert()
            .code(0)
            .stdout("a\nb\nc\n");
    }
}

/// The kill sequence goes on while any process of the job's group lives, as GNU parallel's
/// does: a child that traps TERM outlives the shell that the first TERM killed, and gets the
/// second TERM too (par_children_receive_sig).
#[test]
fn kill_sequence_goes_on_until_the_whole_group_is_gone() {
    // `; true` keeps the outer shell from exec'ing the inner one: the outer is the group's
    // leader, killed by the first TERM; the inner says each TERM it gets.
    let command = r#"sh -c 'trap "echo Got TERM" TERM; while :; do sleep 0.01; done'; true"#;
    weft()
        .env("PARALLEL_SHELL", "/bin/sh")
        .args([
            "--timeout",
            "1",
            "--termseq",
            "TERM,1000,TERM,1000,KILL,25",
            "-u",
            command,
            ":::",
            "1",
        ])
        .assert()
        .code(1)
        .stdout("Got TERM\nGot TERM\n");
}
