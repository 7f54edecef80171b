//! How output is printed: grouped (the default), `--line-buffer`, `-u`, `--tag`, `-k`, large
//! outputs, `--jsonl`, `--dry-run` and the progress line.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command as Std, Stdio};
use std::time::Duration;

use common::{
    BACKENDS, Scratch, json_lines, lines, noise, records, weft, weft_bin, weft_on, within,
};
use serde_json::Value;
use weft::Backend;

/// A job printing `n` numbered lines, one `echo` each, so that parallel jobs would interleave
/// if their outputs were not kept apart.
fn counting(n: usize) -> String {
    format!("i=0; while [ $i -lt {n} ]; do echo {{}}-$i; i=$((i+1)); done")
}

/// Checks that `out` holds, for every job, its `n` lines in order; with `whole`, also that
/// each job's lines are contiguous.
fn check_counting(out: &[u8], jobs: &[&str], n: usize, whole: bool) {
    let got = lines(out);
    assert_eq!(got.len(), jobs.len() * n);
    let mut next: BTreeMap<&str, usize> = jobs.iter().map(|j| (*j, 0)).collect();
    let mut current: Option<String> = None;
    for line in &got {
        let (job, i) = line.rsplit_once('-').unwrap();
        let i: usize = i.parse().unwrap();
        assert_eq!(next[job], i, "line {line} out of order");
        *next.get_mut(job).unwrap() += 1;
        if whole && current.as_deref() != Some(job) {
            assert_eq!(
                current.map(|c| next[c.as_str()]).unwrap_or(n),
                n,
                "{line} cuts in"
            );
            current = Some(job.to_string());
        }
    }
}

#[test]
fn grouped_output_keeps_each_jobs_output_whole() {
    let jobs = ["a", "b", "c", "d", "e", "f"];
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["-j4", &counting(300), ":::"])
            .args(jobs)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        check_counting(&out, &jobs, 300, true);
    }
}

#[test]
fn stdout_and_stderr_stay_apart() {
    for backend in BACKENDS {
        weft_on(backend)
            .arg("-k")
            .arg("echo out-{}; echo err-{} >&2; echo more-{}")
            .args([":::", "1", "2"])
            .assert()
            .success()
            .stdout("out-1\nmore-1\nout-2\nmore-2\n")
            .stderr("err-1\nerr-2\n");
    }
}

#[test]
fn keep_order_prints_in_input_order_and_a_slow_first_job_does_not_hold_back_the_rest() {
    // The first job ends only once the last one has run: -k must not wait for it to start them.
    let first = "if [ {} = first ]; then i=0; while [ ! -e last ] && [ $i -lt 3000 ]; do \
                 sleep 0.01; i=$((i+1)); done; [ -e last ] || exit 9; fi; touch {}; echo {}";
    for backend in BACKENDS {
        let dir = Scratch::new(&format!("keep-order-{}", backend.name()));
        weft_on(backend)
            .args(["-k", "-j2", first])
            .args([":::", "first", "second", "third", "last"])
            .current_dir(dir.path())
            .assert()
            .success()
            .stdout("first\nsecond\nthird\nlast\n");
    }
}

/// The last job ends only once the test has read the first job's output: passes only if each
/// job's output is written as soon as the job ends, not held until the run ends.
#[test]
fn a_finished_jobs_output_arrives_while_later_jobs_still_run() {
    let script = "if [ {} = last ]; then i=0; while [ ! -e seen ] && [ $i -lt 2000 ]; do \
                  sleep 0.01; i=$((i+1)); done; [ -e seen ] || exit 9; fi; echo {}";
    for backend in BACKENDS {
        for order in [None, Some("-k")] {
            let dir = Scratch::new(&format!("prompt-{}", backend.name()));
            let mut child = Std::new(weft_bin())
                .args(["-j2", "--backend", backend.name()])
                .args(order)
                .args([script, ":::", "first", "last"])
                .current_dir(dir.path())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let seen = dir.join("seen");
            let (first, rest) = within(Duration::from_secs(90), move || {
                let mut reader = BufReader::new(stdout);
                let mut first = String::new();
                reader.read_line(&mut first).unwrap();
                std::fs::write(seen, "").unwrap();
                let mut rest = String::new();
                reader.read_to_string(&mut rest).unwrap();
                (first, rest)
            });
            let status = child.wait().unwrap();
            assert_eq!((first.as_str(), rest.as_str()), ("first\n", "last\n"));
            assert!(status.success(), "{} {order:?}: {status}", backend.name());
        }
    }
}

/// `weft ... | head -1`: once stdout is closed, weft stops starting jobs and exits with 141.
#[test]
fn a_closed_stdout_stops_the_run() {
    for backend in BACKENDS {
        let dir = Scratch::new(&format!("closed-{}", backend.name()));
        std::fs::write(dir.join("records"), records(1..=20_000)).unwrap();
        let mut child = Std::new(weft_bin())
            .args(["-j2", "--backend", backend.name(), "-a", "records"])
            .arg("echo {} >> ran; echo {}")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        drop(stdout);
        let status = within(Duration::from_secs(120), move || child.wait().unwrap());
        assert_eq!(status.code(), Some(141), "{}", backend.name());
        let ran = std::fs::read_to_string(dir.join("ran"))
            .unwrap()
            .lines()
            .count();
        assert!(
            ran < 1000,
            "{}: {ran} of 20000 jobs ran after stdout closed",
            backend.name()
        );
    }
}

#[test]
fn keep_order_holds_over_many_jobs() {
    let input = records(1..=2000);
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "-j4", "echo"])
            .write_stdin(input.clone())
            .assert()
            .success()
            .stdout(input.clone());
    }
}

/// Four files of 5 MB, each different, each ending with a newline.
fn big_files(dir: &Scratch) -> (Vec<String>, Vec<u8>) {
    let mut names = Vec::new();
    let mut all = Vec::new();
    for seed in 1..=4u64 {
        let mut bytes = noise(5_000_000, seed);
        bytes.push(b'\n');
        let name = format!("big{seed}");
        std::fs::write(dir.join(&name), &bytes).unwrap();
        all.extend_from_slice(&bytes);
        names.push(name);
    }
    (names, all)
}

/// What `weft FLAGS cat ::: FILES` prints on `backend`, run in `dir`; it must succeed.
fn cat_files(
    backend: Backend,
    flags: &[&str],
    dir: &Scratch,
    files: &[impl AsRef<str>],
) -> Vec<u8> {
    weft_on(backend)
        .args(flags)
        .args(["cat", ":::"])
        .args(files.iter().map(AsRef::as_ref))
        .current_dir(dir.path())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone()
}

#[test]
fn large_outputs_of_parallel_jobs_arrive_whole_and_byte_exact() {
    let dir = Scratch::new("big");
    let (names, all) = big_files(&dir);
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["-k", "-j4", "cat {}; cat {} >&2", ":::"])
            .args(&names)
            .current_dir(dir.path())
            .assert()
            .success()
            .get_output()
            .clone();
        assert!(out.stdout == all, "{}: stdout differs", backend.name());
        assert!(out.stderr == all, "{}: stderr differs", backend.name());
        let out = cat_files(backend, &["-j4"], &dir, &names);
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut rest = &out[..];
        while !rest.is_empty() {
            assert!(rest.len() >= 5_000_001, "{}: short output", backend.name());
            parts.push(rest[..5_000_001].to_vec());
            rest = &rest[5_000_001..];
        }
        let mut expected: Vec<Vec<u8>> = all.chunks(5_000_001).map(<[u8]>::to_vec).collect();
        parts.sort();
        expected.sort();
        assert!(
            parts == expected,
            "{}: a job's output was cut",
            backend.name()
        );
    }
}

#[test]
fn large_outputs_pass_through_line_buffer_and_ungroup_byte_exact() {
    let dir = Scratch::new("big-direct");
    let (names, all) = big_files(&dir);
    let mut expected: Vec<&[u8]> = all.split_inclusive(|&b| b == b'\n').collect();
    expected.sort();
    for backend in BACKENDS {
        let out = cat_files(backend, &["-j4", "--line-buffer"], &dir, &names);
        let mut got: Vec<&[u8]> = out.split_inclusive(|&b| b == b'\n').collect();
        got.sort();
        assert!(
            got == expected,
            "{}: --line-buffer lost or cut lines",
            backend.name()
        );
        let out = cat_files(backend, &["-j1", "-u"], &dir, &names);
        assert!(out == all, "{}: -u output differs", backend.name());
    }
}

#[test]
fn line_buffer_passes_whole_lines_in_each_jobs_order() {
    let jobs = ["a", "b", "c", "d"];
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["-j4", "--line-buffer", &counting(500)])
            .arg(":::")
            .args(jobs)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        check_counting(&out, &jobs, 500, false);
    }
}

#[test]
fn line_buffer_with_keep_order_prints_in_input_order() {
    let jobs = ["a", "b", "c", "d"];
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["-k", "-j4", "--line-buffer"])
            .arg(counting(200))
            .arg(":::")
            .args(jobs)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let expected: String = jobs
            .iter()
            .flat_map(|j| (0..200).map(move |i| format!("{j}-{i}\n")))
            .collect();
        assert!(
            out == expected.as_bytes(),
            "{}: {:?}...",
            backend.name(),
            &lines(&out)[..20]
        );
    }
}

/// Lines longer than a pipe writes atomically (4 KiB), from jobs on different worker processes.
#[test]
fn line_buffer_keeps_long_lines_whole_across_worker_processes() {
    let dir = Scratch::new("long-lines");
    let names = ["a", "b", "c", "d"];
    for name in names {
        let line = format!("{}\n", name.repeat(200_000));
        std::fs::write(dir.join(name), line.repeat(10)).unwrap();
    }
    for backend in BACKENDS {
        let out = cat_files(backend, &["-j4", "--line-buffer"], &dir, &names);
        let got = lines(&out);
        assert_eq!(got.len(), 40, "{}", backend.name());
        let cut = got
            .iter()
            .filter(|l| l.len() != 200_000 || l.bytes().any(|b| b != l.as_bytes()[0]))
            .count();
        assert_eq!(cut, 0, "{}: {cut} of 40 lines mixed", backend.name());
    }
}

/// Checks that under output `mode`, jobs run one at a time that each write a line to stdout and
/// one to stderr leave each stream only its own lines, in job order.
fn streams_stay_apart_under(mode: &str) {
    for backend in BACKENDS {
        weft_on(backend)
            .args([mode, "-j1", "echo out-{}; echo err-{} >&2", ":::", "a", "b"])
            .assert()
            .success()
            .stdout("out-a\nout-b\n")
            .stderr("err-a\nerr-b\n");
    }
}

#[test]
fn line_buffer_keeps_stdout_and_stderr_apart() {
    streams_stay_apart_under("--line-buffer");
}

#[test]
fn ungroup_lets_commands_write_straight_through() {
    streams_stay_apart_under("-u");
}

#[test]
fn tag_prefixes_every_line_with_the_arguments_and_a_tab() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["--tag", "-k"])
            .arg("echo {}; echo second; echo err >&2")
            .args([":::", "a", "b c"])
            .assert()
            .success()
            .stdout("a\ta\na\tsecond\nb c\tb c\nb c\tsecond\n")
            .stderr("a\terr\nb c\terr\n");
        weft_on(backend)
            .args(["--tag", "-k", "echo", "x"])
            .args([":::", "a", ":::", "1", "2"])
            .assert()
            .success()
            .stdout("a 1\tx a 1\na 2\tx a 2\n");
        weft_on(backend)
            .args(["--tag", "--line-buffer", "-j1", "echo"])
            .args([":::", "a", "b"])
            .assert()
            .success()
            .stdout("a\ta\nb\tb\n");
        weft_on(backend)
            .args(["--tag", "-k", "--task", "sum"])
            .args([":::", "1..3", "0..5"])
            .assert()
            .success()
            .stdout("1..3\t3\n0..5\t10\n");
    }
}

const JSONL_KEYS: [&str; 15] = [
    "seq",
    "args",
    "command",
    "task",
    "status",
    "exit_code",
    "signal",
    "stdout",
    "stderr",
    "output",
    "error",
    "worker",
    "attempt",
    "start",
    "runtime",
];

/// The `--jsonl` objects in `out`, each checked to have every key.
fn jsonl(out: &[u8]) -> Vec<Value> {
    let objects = json_lines(out);
    for v in &objects {
        for key in JSONL_KEYS {
            assert!(v.get(key).is_some(), "no {key} in {v}");
        }
    }
    objects
}

#[test]
fn jsonl_prints_one_object_per_command_job() {
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["--jsonl", "-k", "-j2"])
            .arg("printf 'out-%s' {}; printf 'err-%s' {} >&2; [ {} = kill ] && kill -9 $$; exit {}")
            .args([":::", "0", "3", "kill"])
            .assert()
            .code(2)
            .get_output()
            .stdout
            .clone();
        let v = jsonl(&out);
        assert_eq!(v.len(), 3);
        for (i, arg) in ["0", "3", "kill"].iter().enumerate() {
            let job = &v[i];
            assert_eq!(job["seq"], i as u64 + 1);
            assert_eq!(job["args"], serde_json::json!([arg]));
            assert_eq!(job["stdout"], format!("out-{arg}"));
            assert_eq!(job["stderr"], format!("err-{arg}"));
            assert!(
                job["command"]
                    .as_str()
                    .unwrap()
                    .starts_with("printf 'out-%s' ")
            );
            assert_eq!(job["task"], Value::Null);
            assert_eq!(job["output"], Value::Null);
            assert_eq!(job["attempt"], 1);
            assert!((1..=2).contains(&job["worker"].as_u64().unwrap()), "{job}");
            assert!(job["start"].as_f64().unwrap() > 1.5e9, "{job}");
            assert!(job["runtime"].as_f64().unwrap() >= 0.0, "{job}");
        }
        assert_eq!(v[0]["status"], "ok");
        assert_eq!(v[0]["exit_code"], 0);
        assert_eq!(v[0]["signal"], Value::Null);
        assert_eq!(v[0]["error"], Value::Null);
        assert_eq!(v[1]["status"], "failed");
        assert_eq!(v[1]["exit_code"], 3);
        assert_eq!(v[1]["signal"], Value::Null);
        assert_eq!(v[2]["status"], "failed");
        assert_eq!(v[2]["exit_code"], Value::Null);
        assert_eq!(v[2]["signal"], 9);
    }
}

#[test]
fn jsonl_prints_one_object_per_task_job() {
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["--jsonl", "-k", "--task", "sum"])
            .args([":::", "1..3", "bad"])
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        let v = jsonl(&out);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0]["task"], "sum");
        assert_eq!(v[0]["command"], Value::Null);
        assert_eq!(v[0]["args"], serde_json::json!(["1..3"]));
        assert_eq!(v[0]["status"], "ok");
        assert_eq!(v[0]["output"], 3);
        assert_eq!(v[0]["error"], Value::Null);
        assert_eq!(v[0]["exit_code"], Value::Null);
        assert_eq!(v[1]["seq"], 2);
        assert_eq!(v[1]["status"], "failed");
        assert_eq!(v[1]["output"], Value::Null);
        assert!(
            v[1]["error"]
                .as_str()
                .unwrap()
                .contains("\"bad\" is not a range"),
            "{}",
            v[1]
        );
    }
}

#[test]
fn dry_run_prints_the_commands_and_runs_none() {
    let dir = Scratch::new("dry-run");
    weft()
        .args([
            "--dry-run",
            "-j1",
            "touch",
            "{}",
            "{#}",
            "{%}",
            ":::",
            "a",
            "b c",
            "$(x)",
        ])
        .current_dir(dir.path())
        .assert()
        .success()
        .stdout("touch a 1 1\ntouch 'b c' 2 1\ntouch '$(x)' 3 1\n");
    weft()
        .arg("--dry-run")
        .write_stdin("touch made\n")
        .current_dir(dir.path())
        .assert()
        .success()
        .stdout("touch made\n");
    assert!(dir.files().is_empty(), "{:?}", dir.files());
}

#[test]
fn forced_progress_goes_to_stderr_and_leaves_stdout_alone() {
    for (flag, shows) in [
        ("--bar", "100%"),
        ("--eta", "ETA"),
        ("--progress", "3/3 done"),
    ] {
        for backend in BACKENDS {
            let out = weft_on(backend)
                .args([flag, "--force-progress", "-k"])
                .args(["echo", ":::", "a", "b", "c"])
                .assert()
                .success()
                .stdout("a\nb\nc\n")
                .get_output()
                .stderr
                .clone();
            let err = String::from_utf8(out).unwrap();
            assert!(err.contains(shows), "{flag}: {err:?}");
            assert!(err.contains("3/3"), "{flag}: {err:?}");
        }
    }
}

#[test]
fn progress_is_silent_when_stderr_is_not_a_terminal() {
    for flag in ["--bar", "--eta", "--progress"] {
        weft()
            .args([flag, "-k", "echo", ":::", "a", "b"])
            .assert()
            .success()
            .stdout("a\nb\n")
            .stderr("");
    }
}

#[test]
fn dry_run_shows_a_nul_as_backslash_zero_and_says_so_as_gnu_does() {
    // GNU parallel 20221122: echo a / echo 'b\0c' / echo d, and a warning.
    weft()
        .args(["--dry-run", "echo"])
        .write_stdin(&b"a\nb\0c\nd\n"[..])
        .assert()
        .success()
        .stdout("echo a\necho 'b\\0c'\necho d\n")
        .stderr(predicates::str::contains(
            "NUL character in the input was replaced",
        ));
}

#[test]
fn a_failure_message_shortens_a_huge_command_line() {
    let long = "x".repeat(100_000);
    // A shell that passes weft's check before the run but that no job can exec.
    let dir = Scratch::new("huge-command-line");
    let shell = common::unrunnable_shell(&dir);
    let out = weft()
        .env("PARALLEL_SHELL", &shell)
        .args(["echo", ":::", &long])
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(err.len() < 1000, "{} bytes of message", err.len());
    assert!(err.contains("(100005 bytes)"), "{err}");
    assert!(
        err.contains(&format!("cannot run {}", shell.display())),
        "{err}"
    );
}

#[test]
fn a_closed_stderr_never_turns_a_message_into_a_panic() {
    // Failure messages go to a stderr whose reader is gone: each write fails with EPIPE, and
    // the run still ends with its own status (3 failed jobs), not a panic's 101.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(common::weft_bin())
        .args(["--task", "sum", ":::", "bad", "worse", "worst"])
        .stdout(std::process::Stdio::null())
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

#[test]
fn a_job_killed_by_sigpipe_after_the_reader_left_is_not_told_of() {
    // GNU parallel says nothing of `weft -u ... | head -1`'s jobs that SIGPIPE ends. Job 2
    // writes only once this test has read job 1's line and closed its end of the pipe.
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    common::mkfifo(&gate);
    let line = format!(
        "if [ {{}} = 1 ]; then echo x; else cat {} >/dev/null; echo y; fi",
        gate.display()
    );
    let mut child = std::process::Command::new(common::weft_bin())
        .args(["-u", "-j2", &line, ":::", "1", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    assert_eq!(first, "x\n");
    drop(out);
    std::fs::write(&gate, "go\n").unwrap();
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(!err.contains("SIGPIPE"), "{err}");
}
