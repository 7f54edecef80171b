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

/// `--lb ... | head`: a job whose lines meet a closed stdout ends the run quietly, with 141, as
/// grouped output does; no "killed by SIGPIPE" message (par_incomplete_linebuffer).
#[test]
fn line_buffer_into_a_closed_pipe_ends_quietly() {
    for lb in ["--lb", "--line-buffer", "--linebuffer"] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "\"$0\" {lb} 'yes {{}}' ::: y | head -n 3; exit \"${{PIPESTATUS[0]}}\""
            ))
            .arg(common::weft_bin())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "y\ny\ny\n", "{lb}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{lb}");
        assert_eq!(out.status.code(), Some(141), "{lb}");
    }
}

/// `--result DIR` is GNU parallel's spelling of --results too (par_result).
#[test]
fn result_is_a_spelling_of_results() {
    let dir = common::Scratch::new("result-spelling");
    let res = dir.join("res");
    weft()
        .args(["--result", res.to_str().unwrap(), "echo", ":::", "c"])
        .assert()
        .code(0)
        .stdout("");
    assert_eq!(
        std::fs::read_to_string(res.join("1/c/stdout")).unwrap(),
        "c\n"
    );
}

/// `--line-buffer --files`: the outputs go to the files only, as GNU parallel keeps them; no
/// line is printed beside the names (par_linebuffer_files).
#[test]
fn line_buffer_with_files_prints_only_the_file_names() {
    let dir = common::Scratch::new("lb-files");
    let out = weft()
        .args(["--linebuffer", "--files", "-k", "--tmpdir", dir.str()])
        .args(["seq {}", ":::", "1", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let names = common::lines(&out.stdout);
    assert_eq!(names.len(), 2, "{names:?}");
    let kept: Vec<String> = names
        .iter()
        .map(|n| std::fs::read_to_string(n).unwrap())
        .collect();
    assert_eq!(kept, ["1\n", "1\n2\n"]);
}
