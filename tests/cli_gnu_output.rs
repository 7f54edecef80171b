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

#[test]
fn halt_now_fail_1_names_the_job_that_failed_as_gnu_does() {
    // GNU: `parallel -j1 --halt now,fail=1 'echo {}; exit {}' ::: 0 3 0` prints 0 and 3,
    // says "parallel: This job failed:" and the command on stderr, and exits 3.
    weft()
        .args([
            "-j1",
            "--halt",
            "now,fail=1",
            "echo {}; exit {}",
            ":::",
            "0",
            "3",
            "0",
        ])
        .timeout(LIMIT)
        .assert()
        .code(3)
        .stdout("0\n3\n")
        .stderr("weft: This job failed:\necho 3; exit 3\n");
}

#[test]
fn halt_on_a_share_of_the_jobs_exits_with_gnus_status_and_names_each_job_counted() {
    // GNU parallel 20221122, each with `-j1 'exit {}'`: the share of all jobs that failed, in
    // percent, for fail=N% and done=N%; the job's own status when N% of the jobs is one job;
    // 0 for success=N%.
    let zeros = |n| std::iter::repeat_n("0", n);
    let cases: [(&str, Vec<&str>, i32, &str); 5] = [
        (
            "soon,fail=20%",
            ["0", "1", "2", "3"].into_iter().chain(zeros(6)).collect(),
            20,
            "weft: This job failed:\nexit 1\nweft: This job failed:\nexit 2\n",
        ),
        (
            "now,fail=20%",
            ["0", "1", "2", "3"].into_iter().chain(zeros(6)).collect(),
            20,
            "weft: This job failed:\nexit 1\nweft: This job failed:\nexit 2\n",
        ),
        (
            "now,fail=10%",
            ["0", "3"].into_iter().chain(zeros(8)).collect(),
            3,
            "weft: This job failed:\nexit 3\n",
        ),
        (
            "soon,done=30%",
            ["0", "3"].into_iter().chain(zeros(8)).collect(),
            10,
            "weft: This job finished:\nexit 0\nweft: This job finished:\nexit 3\n\
             weft: This job finished:\nexit 0\n",
        ),
        (
            "now,success=20%",
            ["1", "0", "0"].into_iter().chain(["1"; 7]).collect(),
            0,
            "weft: This job succeeded:\nexit 0\nweft: This job succeeded:\nexit 0\n",
        ),
    ];
    for (halt, args, code, stderr) in cases {
        weft()
            .args(["-j1", "--halt", halt, "exit {}", ":::"])
            .args(args)
            .timeout(LIMIT)
            .assert()
            .code(code)
            .stdout("")
            .stderr(stderr.to_string());
    }
}

#[test]
fn line_buffer_passes_many_lines_whole_and_tagged_and_a_last_line_without_newline() {
    // GNU: `parallel --line-buffer --tag 'seq 200000; printf end' ::: a` prints each line
    // tagged "a<TAB>", the last one "a<TAB>end" with no newline. Lines now pass on in whole
    // buffers, several per write: none may lose its tag or be cut.
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args([
                "--line-buffer",
                "--tag",
                "seq 200000; printf end",
                ":::",
                "a",
            ])
            .timeout(LIMIT)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let mut expected: String = (1..=200_000).map(|i| format!("a\t{i}\n")).collect();
        expected.push_str("a\tend");
        assert!(
            out == expected.as_bytes(),
            "{backend:?}: {} bytes",
            out.len()
        );
    }
}

/// Runs `weft ARGS` with its stdout piped, reads `n` lines of it, then closes it as `head -n`
/// does: the lines and the run's exit status and stderr. The run is killed if the lines do not
/// come or it does not end then (a hang), and its spilled outputs go to `tmp`.
fn head(args: &[&str], n: usize, tmp: &Scratch) -> (Vec<String>, Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let mut child = Command::new(weft_bin())
        .args(args)
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let lines: Vec<String> = (0..n)
            .map(|_| {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                line
            })
            .collect();
        // Closing the pipe is what `head` does once it has its lines.
        drop(reader);
        let _ = tx.send(lines);
    });
    let Ok(lines) = rx.recv_timeout(LIMIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{args:?}: no {n} lines within {LIMIT:?}: the output waits for its job to end");
    };
    let status = exits_within(&mut child, LIMIT);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (lines, status.code(), stderr)
}

#[test]
fn an_endless_jobs_output_piped_into_head_ends_the_run_at_once() {
    // GNU parallel hangs here, filling TMPDIR: one running job at a time passes its output on
    // as it comes, so `weft 'yes {}' ::: a b c | head -3` prints three lines of one job and the
    // run ends, quietly, as on any closed stdout.
    for backend in BACKENDS {
        let tmp = Scratch::new("endless");
        let args = [
            "--backend",
            backend.name(),
            "-j3",
            "yes {}",
            ":::",
            "a",
            "b",
            "c",
        ];
        let (lines, code, stderr) = head(&args, 3, &tmp);
        assert!(
            ["a\n", "b\n", "c\n"].contains(&&*lines[0]) && lines.iter().all(|l| *l == lines[0]),
            "{backend:?}: the lines of one job: {lines:?}"
        );
        assert_eq!((code, &*stderr), (Some(141), ""), "{backend:?}");
    }
}

#[test]
fn a_job_passing_its_output_on_never_interleaves_with_others_outputs() {
    // One job writes for a while (its output passed on as it comes); the others finish
    // meanwhile and wait for it: every job's lines stay together.
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args([
                "-j4",
                "for i in $(seq 300); do echo {}-$i; done; sleep 0.{}",
            ])
            .args([":::", "5", "1", "2", "3", "4", "6", "7"])
            .timeout(LIMIT)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let lines = lines(&out);
        assert_eq!(lines.len(), 7 * 300, "{backend:?}");
        for block in lines.chunks(300) {
            let job = block[0].split('-').next().unwrap();
            let expected: Vec<String> = (1..=300).map(|i| format!("{job}-{i}")).collect();
            assert_eq!(
                block,
                &expected[..],
                "{backend:?}: a job's lines were split"
            );
        }
    }
}

#[test]
fn with_keep_order_the_oldest_unfinished_job_passes_its_output_on() {
    // With -k the job passing its output on is the one due next in input order: `weft -k
    // 'yes {}' ::: a b c | head -3` prints three lines of job a, and ends.
    for backend in BACKENDS {
        let tmp = Scratch::new("endless-k");
        let args = [
            "--backend",
            backend.name(),
            "-k",
            "-j3",
            "yes {}",
            ":::",
            "a",
            "b",
            "c",
        ];
        let (lines, code, stderr) = head(&args, 3, &tmp);
        assert_eq!(lines, ["a\n"; 3], "{backend:?}");
        assert_eq!((code, &*stderr), (Some(141), ""), "{backend:?}");
        // A job that writes, then waits: its line comes while it still runs, after the whole
        // output of the job before it. GNU: `parallel -k -j2 'echo {}; sleep {}' ::: 0.2 600`
        // prints the same lines (at its end). The run is then stopped.
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mut child = Command::new(weft_bin())
            .args([
                "--backend",
                backend.name(),
                "-k",
                "-j2",
                "echo {}; sleep {}",
            ])
            .args([":::", "0.2", "600"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut text = String::new();
            while text.lines().count() < 2 && reader.read_line(&mut text).unwrap_or(0) > 0 {}
            let _ = tx.send(text);
        });
        let text = rx.recv_timeout(LIMIT);
        signal(child.id(), "TERM");
        let status = exits_within(&mut child, LIMIT);
        assert_eq!(text.as_deref(), Ok("0.2\n600\n"), "{backend:?}");
        assert_eq!(status.code(), Some(128 + 15), "{backend:?}");
    }
}

#[test]
fn with_keep_order_outputs_passed_on_still_come_in_input_order() {
    // GNU: `parallel -k -j4 'for i in $(seq 300); do echo {}-$i; done; sleep 0.{}' ::: 5 1 2 3
    // 4 6 7` prints each job's 300 lines, the jobs in input order.
    for backend in BACKENDS {
        let jobs = ["5", "1", "2", "3", "4", "6", "7"];
        let out = weft_on(backend)
            .args([
                "-k",
                "-j4",
                "for i in $(seq 300); do echo {}-$i; done; sleep 0.{}",
            ])
            .arg(":::")
            .args(jobs)
            .timeout(LIMIT)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let expected: String = jobs
            .iter()
            .flat_map(|j| (1..=300).map(move |i| format!("{j}-{i}\n")))
            .collect();
        assert!(
            out == expected.as_bytes(),
            "{backend:?}: {:?}",
            &lines(&out)[..5]
        );
    }
}

#[test]
fn halt_at_a_share_of_the_jobs_counts_all_of_them_not_those_read_so_far() {
    // GNU parallel 20221122: `parallel -j1 --halt soon,done=1% echo ::: $(seq 2000)` prints
    // 20 lines (1% of 2000); weft read its input as the jobs ran and stopped at 1% of the
    // first thousand or so.
    let args: Vec<String> = (1..=2000).map(|i| i.to_string()).collect();
    let out = weft()
        .args(["-j1", "--halt", "soon,done=1%", "echo", ":::"])
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 20);
}
