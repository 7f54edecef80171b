//! Job control from the outside: SIGTERM, SIGINT to the process group, SIGHUP, a closed
//! stdout, then `--resume`; and every exit-status rule of plain runs, `--halt` and
//! `--retries`.
//!
//! Jobs record their pids in a scratch directory and survivors are looked up by pid. The only
//! waits are for a job to be running before a signal is sent (a marker file, with a deadline).

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    BACKENDS, SETTLE, Scratch, assert_no_survivors, exits_within, joblog_rows, joblog_seqs,
    jobs_running, json_lines, output_within, pids_in, signal, signal_group, sorted_numbers,
    spawn_with_input, wait_until, weft, weft_bin, weft_on, within,
};
use weft::Backend;

/// The hang guard of every test here.
const LIMIT: Duration = Duration::from_secs(120);

/// How a run is stopped from outside.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// `kill -TERM` to weft alone.
    Term,
    /// `kill -INT` to weft's whole process group, as a terminal's Ctrl-C.
    GroupInt,
}

/// Twenty jobs on four workers: 1-6 end at once, the others, in the first run only, sleep
/// (recording their shell and their background child) until killed. Each job appends its
/// argument to `side` as its very last act.
fn template(d: &str) -> String {
    format!(
        "echo begin {{}}; \
         if [ {{}} -gt 6 ] && [ ! -e {d}/resumed ]; then \
           echo $$ > {d}/pids/{{}}.sh; sleep 60 & echo $! > {d}/pids/{{}}.bg; wait; \
         fi; \
         echo end {{}}; echo {{}} >> {d}/side"
    )
}

/// The numbers jobs appended to the file `path`, one a line, sorted.
fn numbers_in(path: &Path) -> Vec<u64> {
    sorted_numbers(&std::fs::read(path).unwrap())
}

/// The jobs whose whole output (`begin N`, `end N`, together) is in `stdout`; fails on any
/// repeated output, or any partial one but the start (`begin N` alone) of the one job that was
/// passing its output on as it came when the run was stopped.
fn complete_outputs(stdout: &str) -> Vec<u64> {
    let lines: Vec<&str> = stdout.lines().collect();
    let mut done = Vec::new();
    let mut cut = 0;
    let mut i = 0;
    while i < lines.len() {
        let n = lines[i].strip_prefix("begin ").expect(stdout);
        if lines.get(i + 1) == Some(&&*format!("end {n}")) {
            done.push(n.parse().unwrap());
            i += 2;
        } else {
            cut += 1;
            i += 1;
        }
    }
    assert!(cut <= 1, "whole outputs only, but one passed on:\n{stdout}");
    done.sort_unstable();
    let unique: BTreeSet<u64> = done.iter().copied().collect();
    assert_eq!(unique.len(), done.len(), "each output once:\n{stdout}");
    done
}

fn stop_mid_run_then_resume(backend: Backend, how: Stop) {
    let dir = Scratch::new("stop");
    let d = dir.str();
    std::fs::create_dir(dir.join("pids")).unwrap();
    let log = dir.join("log");
    // The run, and later its resumption.
    let run: Vec<String> = [
        "-j",
        "4",
        "--joblog",
        log.to_str().unwrap(),
        &template(d),
        ":::",
    ]
    .map(String::from)
    .into_iter()
    .chain((1..=20).map(|i| i.to_string()))
    .collect();
    let mut first = Command::new(weft_bin());
    first
        .args(["--backend", backend.name()])
        .args(&run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Stop::GroupInt = how {
        first.process_group(0);
    }
    let mut child = first.spawn().unwrap();
    // Mid-run: the quick jobs logged, four sleeping ones running.
    assert!(
        jobs_running(&mut child, || {
            // The header and six rows (counted by line ends: a row may be half written).
            let rows = std::fs::read_to_string(&log).map_or(0, |t| t.matches('\n').count());
            pids_in(&dir.join("pids")).len() == 8 && rows == 7
        }),
        "{backend:?}: four jobs running after six finished"
    );
    let running = pids_in(&dir.join("pids"));
    let code = match how {
        Stop::Term => {
            signal(child.id(), "TERM");
            143
        }
        Stop::GroupInt => {
            signal_group(child.id(), "INT");
            130
        }
    };
    let (status, stdout, stderr) = output_within(&mut child, SETTLE);
    assert_eq!(status.code(), Some(code), "{backend:?} {how:?}: {stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("weft:")).count(),
        1,
        "{backend:?} {how:?}: one message:\n{stderr}"
    );
    assert!(stderr.starts_with("weft: stopped by SIG"), "{stderr}");
    let printed = complete_outputs(&stdout);
    assert_eq!(printed, (1..=6).collect::<Vec<_>>(), "{backend:?} {how:?}");
    assert_eq!(
        joblog_seqs(&log),
        printed,
        "the joblog lists exactly the printed jobs"
    );
    assert_eq!(
        numbers_in(&dir.join("side")),
        printed,
        "finished jobs are the logged ones"
    );
    assert_no_survivors(&running, SETTLE, format!("{backend:?} {how:?}"));

    std::fs::write(dir.join("resumed"), "").unwrap();
    let out = weft_on(backend)
        .arg("--resume")
        .args(&run)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let rest = complete_outputs(&String::from_utf8(out).unwrap());
    assert_eq!(rest, (7..=20).collect::<Vec<_>>(), "{backend:?} {how:?}");
    assert_eq!(
        numbers_in(&dir.join("side")),
        (1..=20).collect::<Vec<_>>(),
        "{backend:?} {how:?}: every job ran to completion exactly once"
    );
    assert_eq!(joblog_seqs(&log), (1..=20).collect::<Vec<_>>());
}

#[test]
fn sigterm_mid_run_keeps_finished_outputs_and_resume_runs_the_rest_once() {
    for backend in BACKENDS {
        within(LIMIT, move || stop_mid_run_then_resume(backend, Stop::Term));
    }
}

#[test]
fn sigint_to_the_process_group_mid_run_keeps_finished_outputs_and_resume_runs_the_rest_once() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            stop_mid_run_then_resume(backend, Stop::GroupInt)
        });
    }
}

#[test]
fn a_second_sigint_exits_at_once_and_leaves_no_survivors() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("second-int");
            let d = dir.str();
            // TERM is ignored, so the first SIGINT's kill sequence takes its full course.
            let mut child = Command::new(weft_bin())
                .args(["--backend", backend.name(), "-j", "2"])
                .args(["--term-seq", "TERM,5000,KILL"])
                .arg(format!(
                    "trap '' TERM; echo $$ > {d}/{{}}.sh; sleep 60 & echo $! > {d}/{{}}.bg; wait"
                ))
                .args([":::", "1", "2"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .unwrap();
            let (said, heard) = std::sync::mpsc::channel();
            let stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stderr).lines() {
                    let _ = said.send(line.unwrap_or_default());
                }
            });
            let files = ["1.sh", "1.bg", "2.sh", "2.bg"].map(|f| dir.join(f));
            assert!(
                jobs_running(&mut child, || files.iter().all(|f| !pids_in(f).is_empty())),
                "both jobs running"
            );
            let pids: Vec<u32> = files.iter().flat_map(|f| pids_in(f)).collect();
            signal_group(child.id(), "INT");
            // Signals of one kind do not queue: the second is sent once weft has acted on the
            // first (and, on threads, waits for the jobs' 5-second kill sequence).
            let stopped = heard
                .recv_timeout(Duration::from_secs(10))
                .expect("weft says it stops");
            assert!(stopped.starts_with("weft: stopped by SIGINT"), "{stopped}");
            // Weft may be gone already (process workers are killed outright).
            let _ = Command::new("kill")
                .args(["-s", "INT", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let status = exits_within(&mut child, SETTLE);
            assert_eq!(status.code(), Some(130), "{backend:?}");
            assert_no_survivors(&pids, SETTLE, format!("{backend:?}"));
        });
    }
}

#[test]
fn sighup_drains_running_jobs_finish_and_print_and_no_new_one_starts() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("hup");
            let d = dir.str();
            // Six quick jobs (so that weft has seen jobs end fast and might hand out more at a
            // time), then jobs that run until released.
            let mut child = Command::new(weft_bin())
                .args(["--backend", backend.name(), "-j", "2"])
                .arg(format!(
                    "[ {{}} -le 6 ] && exit 0; echo $$ > {d}/{{}}.started; \
                     until [ -e {d}/go ]; do sleep 0.01; done; \
                     echo done {{}}; [ {{}} != 8 ]"
                ))
                .arg(":::")
                .args((1..=20).map(|i| i.to_string()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            assert!(
                jobs_running(&mut child, || {
                    dir.join("7.started").exists() && dir.join("8.started").exists()
                }),
                "two jobs running"
            );
            signal(child.id(), "HUP");
            // Released only once weft has taken the signal (it is no longer pending).
            assert!(wait_until(Duration::from_secs(10), || !pending(
                child.id(),
                1
            )));
            std::fs::write(dir.join("go"), "").unwrap();
            let out = within(LIMIT, move || child.wait_with_output().unwrap());
            let stdout = String::from_utf8_lossy(&out.stdout);
            let mut lines: Vec<&str> = stdout.lines().collect();
            lines.sort_unstable();
            assert_eq!(lines, ["done 7", "done 8"], "{backend:?}");
            assert_eq!(
                out.status.code(),
                Some(1),
                "{backend:?}: by the jobs' statuses (job 8 failed): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let started: Vec<_> = (9..=20)
                .filter(|i| dir.join(format!("{i}.started")).exists())
                .collect();
            assert!(started.is_empty(), "{backend:?}: jobs {started:?} started");
        });
    }
}

/// Whether `signal` is pending for process `pid` (not yet taken by any of its threads).
fn pending(pid: u32, signal: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().any(|l| {
        (l.starts_with("ShdPnd:") || l.starts_with("SigPnd:"))
            && u64::from_str_radix(l[7..].trim(), 16).is_ok_and(|m| m & (1 << (signal - 1)) != 0)
    })
}

#[test]
fn an_endless_input_piped_into_head_ends_promptly_and_leaves_no_survivors() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("head");
            let d = dir.str();
            // Each job records its parent (weft, or its worker) and a background child.
            let job =
                format!("echo {{#}}; echo $PPID >> {d}/parents; sleep 60 & echo $! >> {d}/bg");
            let mut child = Command::new("sh")
                .args([
                    "-c",
                    "yes | \"$0\" --backend \"$1\" -j 4 \"$2\" | head -n 3",
                ])
                .arg(weft_bin())
                .args([backend.name(), &job])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let (status, stdout, stderr) = output_within(&mut child, SETTLE);
            assert!(status.success(), "{backend:?}: {stderr}");
            assert_eq!(stdout.lines().count(), 3, "{stdout}");
            assert_eq!(stderr, "", "{backend:?}: quietly");
            let pids: Vec<u32> = pids_in(&dir.join("parents"))
                .into_iter()
                .chain(pids_in(&dir.join("bg")))
                .collect();
            assert!(!pids.is_empty());
            assert_no_survivors(&pids, SETTLE, format!("{backend:?}"));
        });
    }
}

/// Runs weft and returns its exit status.
fn status_of(args: &[&str]) -> i32 {
    let out = weft().args(args).output().unwrap();
    out.status.code().expect("weft exited")
}

#[test]
fn the_exit_status_counts_failed_jobs_up_to_101() {
    for (failures, want) in [(0, 0), (1, 1), (3, 3), (100, 100), (101, 101), (150, 101)] {
        let mut records = vec!["ok"; 5];
        records.extend(std::iter::repeat_n("fail", failures));
        let mut args = vec!["--task", "fault", "--backend", "thread", "-j", "4", ":::"];
        args.extend(&records);
        assert_eq!(status_of(&args), want, "{failures} failures");
    }
    assert_eq!(
        status_of(&[
            "--task",
            "fault",
            "--backend",
            "process",
            ":::",
            "ok",
            "fail",
            "abort"
        ]),
        2
    );
    assert_eq!(status_of(&["exit {}", ":::", "0", "3", "0", "255", "1"]), 3);
}

/// One `--halt` case: jobs `exit N` for each N in `codes`, one at a time so that which job
/// triggers is known; the exit status, and the jobs that ran (from the joblog).
fn halt(spec: &str, codes: &[&str]) -> (i32, Vec<u64>) {
    let dir = Scratch::new("halt");
    let log = dir.join("log");
    let out = weft()
        .args(["-j", "1", "--halt", spec, "--joblog"])
        .arg(&log)
        .args(["exit {}", ":::"])
        .args(codes)
        .output()
        .unwrap();
    (out.status.code().unwrap(), joblog_seqs(&log))
}

#[test]
fn halt_on_failures_exits_with_the_failing_jobs_status_for_1_else_the_failure_count() {
    let codes = ["0", "7", "0", "9", "0", "0", "0", "0", "0", "5"];
    for when in ["now", "soon"] {
        assert_eq!(halt(&format!("{when},fail=1"), &codes), (7, vec![1, 2]));
        assert_eq!(
            halt(&format!("{when},fail=2"), &codes),
            (2, vec![1, 2, 3, 4])
        );
        // 30% of the ten jobs: the third failure. A share exits with the share of all jobs
        // that failed, in percent, as GNU parallel 20221122 does (30 and 20 here).
        assert_eq!(
            halt(&format!("{when},fail=30%"), &codes),
            (30, (1..=10).collect())
        );
        assert_eq!(
            halt(&format!("{when},fail=20%"), &codes),
            (20, vec![1, 2, 3, 4])
        );
    }
    // GNU parallel's old forms: 1 is soon,fail=1, 2 is now,fail=1.
    assert_eq!(halt("1", &codes), (7, vec![1, 2]));
    assert_eq!(halt("2", &codes), (7, vec![1, 2]));
    // A job killed by a signal counts as 128 + the signal.
    let dir = Scratch::new("halt-signal");
    let log = dir.join("log");
    weft()
        .args(["-j", "1", "--halt", "now,fail=1", "--joblog"])
        .arg(&log)
        .args([":::", "true", "kill -s TERM $$", "true"])
        .assert()
        .code(143);
    let rows = joblog_rows(&log);
    assert_eq!(rows.len(), 2);
    assert_eq!((&*rows[1][6], &*rows[1][7]), ("-1", "15"));
}

#[test]
fn halt_on_successes_exits_0() {
    let codes = ["3", "0", "4", "0", "5", "0", "6", "0", "7", "0"];
    for when in ["now", "soon"] {
        assert_eq!(halt(&format!("{when},success=1"), &codes), (0, vec![1, 2]));
        assert_eq!(
            halt(&format!("{when},success=2"), &codes),
            (0, vec![1, 2, 3, 4])
        );
        assert_eq!(
            halt(&format!("{when},success=30%"), &codes),
            (0, (1..=6).collect())
        );
    }
}

#[test]
fn halt_on_done_jobs_exits_with_the_jobs_status_for_1_else_the_failure_count() {
    let codes = ["4", "0", "6", "0", "0", "0"];
    for when in ["now", "soon"] {
        assert_eq!(halt(&format!("{when},done=1"), &codes), (4, vec![1]));
        assert_eq!(halt(&format!("{when},done=1"), &["0", "4"]), (0, vec![1]));
        assert_eq!(halt(&format!("{when},done=3"), &codes), (2, vec![1, 2, 3]));
        // Two of six jobs failed: GNU parallel exits ceil(33.3) = 34.
        assert_eq!(
            halt(&format!("{when},done=50%"), &codes),
            (34, vec![1, 2, 3])
        );
    }
}

#[test]
fn halt_now_kills_running_jobs_and_halt_soon_lets_them_finish() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("now-soon");
            let d = dir.str();
            // Job 1 runs until job 2 has failed (soon) or forever (now); job 3 never runs.
            let records = format!(
                "echo $$ > {d}/1.sh; sleep 60 & echo $! > {d}/1.bg; wait\n\
                 until [ -s {d}/1.bg ]; do sleep 0.01; done; exit 5\n\
                 echo three\n"
            );
            let out = weft_on(backend)
                .args(["-j", "2", "--halt", "now,fail=1"])
                .write_stdin(records)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(5), "{backend:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{backend:?}");
            let pids = pids_in(&dir.join("1.sh"))
                .into_iter()
                .chain(pids_in(&dir.join("1.bg")))
                .collect::<Vec<_>>();
            assert_eq!(pids.len(), 2);
            assert_no_survivors(
                &pids,
                SETTLE,
                format!("{backend:?}: now kills the running job"),
            );

            // Job 1 ends only once weft has logged job 2's failure, and so has acted on it:
            // from then on no job may start.
            let log = dir.join("log");
            let records = format!(
                "until grep -q second {log}; do sleep 0.01; done; echo finished\n\
                 exit 5; : second\n\
                 echo three\n",
                log = log.display()
            );
            weft_on(backend)
                .args(["-j", "2", "--halt", "soon,fail=1", "--joblog"])
                .arg(&log)
                .write_stdin(records)
                .assert()
                .code(5)
                .stdout("finished\n");
        });
    }
}

#[test]
fn retries_make_n_attempts_in_all_and_report_the_last() {
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["--task", "fault", "--json", "--jsonl", "--retries", "3"])
            .arg(":::")
            .args(["\"ok\"", r#"{"failuntil":3}"#, r#"{"failuntil":4}"#])
            .assert()
            .code(1)
            .get_output()
            .stdout
            .clone();
        let mut got: Vec<(u64, u64, String)> = json_lines(&out)
            .iter()
            .map(|v| {
                (
                    v["seq"].as_u64().unwrap(),
                    v["attempt"].as_u64().unwrap(),
                    v["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                (1, 1, "ok".into()),
                (2, 3, "ok".into()),
                (3, 3, "failed".into())
            ],
            "{backend:?}"
        );
    }
    // A worker that aborts on its first attempt: the second runs on a fresh worker.
    weft_on(Backend::Process)
        .args(["--task", "fault", "--json", "--jsonl", "--retries", "2"])
        .args([":::", r#"{"abortuntil":2}"#])
        .assert()
        .success()
        .stdout(predicates::str::contains("\"attempt\":2"));
    // --retries 1 is a single attempt.
    weft()
        .args(["--task", "fault", "--json", "--retries", "1"])
        .args([":::", r#"{"failuntil":2}"#])
        .assert()
        .code(1);
}

#[test]
fn a_retried_command_prints_and_logs_only_its_last_attempt() {
    for backend in BACKENDS {
        let dir = Scratch::new("retry-cmd");
        let d = dir.str();
        let log = dir.join("log");
        // Fails on its first two attempts, each printing which attempt it is.
        let job = format!(
            "n=$(cat {d}/{{}} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {d}/{{}}; \
             echo {{}} attempt $n; [ $n -ge 3 ]"
        );
        let out = weft_on(backend)
            .args(["-k", "--retries", "3", "--joblog"])
            .arg(&log)
            .args([&job, ":::", "a", "b"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a attempt 3\nb attempt 3\n",
            "{backend:?}"
        );
        assert_eq!(joblog_seqs(&log), [1, 2], "{backend:?}: one row per job");
        // A job that succeeds on a retry does not trip --halt now,fail=1.
        std::fs::remove_file(dir.join("a")).unwrap();
        weft_on(backend)
            .args(["--retries", "3", "--halt", "now,fail=1"])
            .args([&job, ":::", "a"])
            .assert()
            .success()
            .stdout("a attempt 3\n");
    }
}

#[test]
fn term_seq_sends_its_signals_in_order_before_the_kill() {
    for backend in BACKENDS {
        let dir = Scratch::new("term-seq");
        let d = dir.str();
        let got = dir.join("got");
        weft_on(backend)
            // The traps must be set before the timeout: 3 s leaves a loaded machine (the
            // tests run in parallel) ample time to start the shell.
            .args(["--timeout", "3"])
            // The shell runs a trap once its `sleep` returns: a second between signals leaves
            // it ample time even on a loaded machine.
            .args(["--term-seq", "INT,1000,USR1,1000,KILL,25"])
            .arg(format!(
                "trap 'echo INT >> {d}/got' INT; trap 'echo USR1 >> {d}/got' USR1; \
                 while :; do sleep 0.01; done; : {{}}"
            ))
            .args([":::", "x"])
            .assert()
            .code(1)
            .stderr(predicates::str::contains("timed out"));
        assert_eq!(
            std::fs::read_to_string(&got).unwrap(),
            "INT\nUSR1\n",
            "{backend:?}"
        );
    }
}

/// SIGTERM mid-run: a running command that traps TERM gets the whole `--term-seq` (two
/// TERMs here) before the KILL, rather than being killed outright at exit.
fn stop_signal_runs_the_kill_sequence(backend: Backend) {
    within(LIMIT, move || {
        let dir = Scratch::new("stop-term-seq");
        let d = dir.str();
        let mut child = Command::new(weft_bin())
            .args(["--backend", backend.name()])
            .args(["--term-seq", "TERM,150,TERM,150,KILL,25"])
            .arg(format!(
                "trap 'echo TERM >> {d}/got' TERM; echo $$ > {d}/sh; \
                 while :; do sleep 0.05; done; : {{}}"
            ))
            .args([":::", "x"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            jobs_running(&mut child, || !pids_in(&dir.join("sh")).is_empty()),
            "the job runs"
        );
        let sh = pids_in(&dir.join("sh"));
        signal(child.id(), "TERM");
        let status = exits_within(&mut child, SETTLE);
        assert_eq!(status.code(), Some(143));
        assert_eq!(
            std::fs::read_to_string(dir.join("got")).unwrap_or_default(),
            "TERM\nTERM\n",
            "{backend:?}"
        );
        assert_no_survivors(&sh, SETTLE, format!("{backend:?}"));
    });
}

#[test]
fn a_stop_signal_gives_running_commands_their_kill_sequence_on_threads() {
    stop_signal_runs_the_kill_sequence(Backend::Thread);
}

#[test]
fn a_stop_signal_gives_running_commands_their_kill_sequence_on_processes() {
    stop_signal_runs_the_kill_sequence(Backend::Process);
}

#[test]
fn resume_failed_runs_the_failed_jobs_again_and_resume_then_runs_nothing() {
    for backend in BACKENDS {
        let dir = Scratch::new("resume-failed");
        let d = dir.str();
        let log = dir.join("log");
        let job = format!("echo {{}} >> {d}/side; [ -e {d}/fixed ] || exit {{}}");
        let run = |extra: Option<&str>| {
            let out = weft_on(backend)
                .arg("--joblog")
                .arg(&log)
                .args(extra)
                .args([&job, ":::", "0", "3", "0", "4"])
                .output()
                .unwrap();
            out.status.code().unwrap()
        };
        assert_eq!(run(None), 2, "{backend:?}");
        std::fs::write(dir.join("fixed"), "").unwrap();
        assert_eq!(run(Some("--resume-failed")), 0, "{backend:?}");
        assert_eq!(run(Some("--resume")), 0, "{backend:?}");
        assert_eq!(
            numbers_in(&dir.join("side")),
            [0, 0, 3, 3, 4, 4],
            "{backend:?}: 3 and 4 ran twice"
        );
        let rows = joblog_rows(&log);
        assert_eq!(
            rows.len(),
            6,
            "{backend:?}: four rows, then one per job run again"
        );
        let mut last: Vec<(&str, &str)> = rows[4..].iter().map(|r| (&*r[0], &*r[6])).collect();
        last.sort_unstable();
        assert_eq!(last, [("2", "0"), ("4", "0")], "{backend:?}");
    }
}

#[test]
fn a_plus_joblog_appends_and_a_plain_one_starts_afresh() {
    let dir = Scratch::new("joblog-plus");
    let log = dir.join("log");
    let spec = format!("+{}", log.display());
    let commands = || -> Vec<String> {
        joblog_rows(&log)
            .into_iter()
            .map(|r| r[8].clone())
            .collect()
    };
    for arg in ["a", "b"] {
        weft()
            .args(["--joblog", &spec, "echo", ":::", arg])
            .assert()
            .success();
    }
    assert_eq!(commands(), ["echo a", "echo b"]);
    weft()
        .arg("--joblog")
        .arg(&log)
        .args(["echo", ":::", "c"])
        .assert()
        .success();
    assert_eq!(commands(), ["echo c"]);
}

/// Tasks are handed to workers ahead of time when they are fast; after SIGHUP those that had
/// not started must not start. 500 instant jobs, then eight 2-second ones on two workers,
/// handed out in the same batches: SIGHUP once the instant ones are out leaves only the sleeps
/// already running to finish. Every sleep that finished started before the signal.
///
/// A worker sends the results of a batch's instant jobs when the batch ends or a job in it
/// takes long, so the last instant results may come only as the first sleeps end: what
/// started by then is judged by each outcome's start time, not by a count.
#[test]
fn sighup_starts_no_task_that_a_worker_was_handed_ahead() {
    within(LIMIT, || {
        for backend in BACKENDS {
            let mut input = "0\n".repeat(500);
            input.push_str(&"2\n".repeat(8));
            let mut child = spawn_with_input(
                Command::new(weft_bin())
                    .args(["--task", "sleep", "-j2", "--jsonl"])
                    .args(["--backend", backend.name()])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null()),
                input,
            );
            use std::io::BufRead;
            let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut all = String::new();
            let mut n = 0;
            while n < 500 && out.read_line(&mut all).unwrap() > 0 {
                n += 1;
            }
            let hup = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            signal(child.id(), "HUP");
            out.read_to_string(&mut all).unwrap();
            let status = exits_within(&mut child, Duration::from_secs(30));
            assert_eq!(status.code(), Some(0), "{backend:?}");
            let outcomes: Vec<serde_json::Value> = all
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect();
            let instant = outcomes.iter().filter(|o| o["args"][0] == "0").count();
            assert_eq!(instant, 500, "{backend:?}: every instant job finished");
            let sleeps: Vec<f64> = outcomes
                .iter()
                .filter(|o| o["args"][0] == "2")
                .map(|o| o["start"].as_f64().expect("a start time"))
                .collect();
            // Two workers: at most one sleep each had ended and one more begun.
            assert!(
                !sleeps.is_empty() && sleeps.len() <= 4,
                "{backend:?}: {} sleeps finished",
                sleeps.len()
            );
            for start in sleeps {
                // A job begun in the moment the signal takes to arrive is allowed; one begun
                // a tenth of a second after it is not.
                assert!(
                    start < hup + 0.1,
                    "{backend:?}: a sleep started {:.3} s after SIGHUP",
                    start - hup
                );
            }
        }
    });
}
