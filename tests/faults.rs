//! Faults injected for real into the `weft` binary: workers killed mid-job, a crash next to
//! megabytes of output, jobs that outlive their timeout or shrug off TERM, a SIGKILLed
//! coordinator, a tight fd limit, 100,000 jobs, hostile paths, two runs side by side.
//!
//! Jobs write their pids (`$$`, `$!`) into a scratch directory and survivors are looked up by
//! pid, never by name.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{
    BACKENDS, SETTLE, Scratch, assert_no_survivors, children_of, group_members, in_sleep,
    joblog_row, joblog_rows, joblog_seqs, jobs_running, json_lines, pids_in, records, signal,
    sorted_numbers, spawn_with_input, wait_until, weft, weft_bin, weft_on, within,
};
use predicates::str::contains;
use weft::Backend;

/// The hang guard of every test here.
const LIMIT: Duration = Duration::from_secs(120);

/// Forty records, each `ok` but the 20th, which is `fault`.
fn forty_with(fault: &str) -> String {
    records((1..=40).map(|i| if i == 20 { fault } else { "ok" }))
}

/// A run of [`forty_with`] records as fault tasks on four worker processes, reported as
/// `--jsonl`; a joblog path follows.
const CRASH_RUN: [&str; 8] = [
    "--task",
    "fault",
    "--backend",
    "process",
    "-j",
    "4",
    "--jsonl",
    "--joblog",
];

/// Checks a 40-job `--jsonl` run in which job 20 and only job 20 crashed its worker: every
/// other job is reported once and ok, and the joblog names job 20 with `exitval` and `signal`.
fn only_job_20_crashed(stdout: &[u8], log: &Path, why: &str, exitval: &str, signal: &str) {
    let mut by_seq: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for v in json_lines(stdout) {
        if v["seq"] == 20 {
            assert_eq!(v["error"], format!("worker crashed: {why}"), "{v}");
        }
        by_seq
            .entry(v["seq"].as_u64().unwrap())
            .or_default()
            .push(v["status"].as_str().unwrap().to_string());
    }
    assert_eq!(by_seq.len(), 40, "every job reported: {by_seq:?}");
    for (seq, statuses) in &by_seq {
        let want = if *seq == 20 { "crashed" } else { "ok" };
        assert_eq!(statuses, &[want], "job {seq} reported once, {want}");
    }
    assert_eq!(joblog_seqs(log), (1..=40).collect::<Vec<_>>());
    for row in joblog_rows(log) {
        let (want_exit, want_signal) = if row[0] == "20" {
            (exitval, signal)
        } else {
            ("0", "0")
        };
        assert_eq!((&*row[6], &*row[7]), (want_exit, want_signal), "{row:?}");
    }
}

#[test]
fn a_worker_that_aborts_segfaults_or_exits_mid_job_fails_only_that_job() {
    for (fault, signal, why) in [
        ("abort", "6", "killed by SIGABRT"),
        ("segv", "11", "killed by SIGSEGV"),
        // Exit status 0 mid-job is still a crash, and logged as not having exited on its own,
        // so that --resume-failed runs it again.
        ("exit", "0", "exited with status 0"),
    ] {
        let dir = Scratch::new("crash");
        let log = dir.join("log");
        let out = weft()
            .args(CRASH_RUN)
            .arg(&log)
            .write_stdin(forty_with(fault))
            .assert()
            .code(1);
        only_job_20_crashed(&out.get_output().stdout, &log, why, "-1", signal);
    }
}

#[test]
fn a_worker_sigkilled_from_outside_fails_only_the_job_it_was_running() {
    within(LIMIT, || {
        let dir = Scratch::new("sigkill-worker");
        let log = dir.join("log");
        let mut child = spawn_with_input(
            Command::new(weft_bin())
                .args(CRASH_RUN)
                .arg(&log)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
            forty_with("hang"),
        );
        // The worker running `hang` sleeps; the others wait for work.
        let pid = child.id();
        let mut victim = None;
        assert!(
            jobs_running(&mut child, || {
                victim = children_of(pid).into_iter().find(|&w| in_sleep(w));
                victim.is_some()
            }),
            "a worker running the hanging job"
        );
        signal(victim.unwrap(), "KILL");
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        only_job_20_crashed(&out.stdout, &log, "killed by SIGKILL", "-1", "9");
    });
}

/// A command on the process backend whose shell's parent is its worker: killing `$PPID`
/// kills the worker under it. (SIGSEGV is left out: sent with kill(2) rather than raised by a
/// fault, the Rust runtime's stack-overflow handler swallows the first one; the `segv` task
/// covers a real segfault.)
#[test]
fn a_command_that_kills_its_worker_fails_only_itself() {
    for (sig, num) in [("KILL", "9"), ("ABRT", "6"), ("TERM", "15")] {
        let dir = Scratch::new("kill-ppid");
        let log = dir.join("log");
        let jobs = records((1..=40).map(|i| {
            if i == 20 {
                format!("kill -s {sig} $PPID")
            } else {
                format!("echo {i}")
            }
        }));
        let out = weft_on(Backend::Process)
            .args(["-j", "4", "--joblog"])
            .arg(&log)
            .write_stdin(jobs)
            .assert()
            .code(1)
            .stderr(contains("job 20 (kill -s"))
            .get_output()
            .stdout
            .clone();
        let others: Vec<u64> = (1..=40).filter(|&i| i != 20).collect();
        assert_eq!(
            sorted_numbers(&out),
            others,
            "the other 39 print exactly once ({sig})"
        );
        assert_eq!(joblog_seqs(&log), (1..=40).collect::<Vec<_>>());
        let row = joblog_row(&log, 20);
        assert_eq!((&*row[6], &*row[7]), ("-1", num), "{row:?}");
        assert_eq!(row[8], format!("kill -s {sig} $PPID"));
    }
}

/// Splits output into runs of one repeated byte: `(byte, length)`.
fn runs(bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut out: Vec<(u8, usize)> = Vec::new();
    for &b in bytes {
        match out.last_mut() {
            Some((c, n)) if *c == b => *n += 1,
            _ => out.push((b, 1)),
        }
    }
    out
}

#[test]
fn a_worker_crash_while_megabytes_of_output_are_in_flight_loses_nothing_else() {
    const HALF: usize = 1_500_000;
    for keep_order in [false, true] {
        within(LIMIT, move || {
            let dir = Scratch::new("crash-big");
            let victim = dir.join("victim");
            let v = victim.to_str().unwrap();
            // Half the output, then (for at most 10 s) until the crashed worker is gone and
            // reaped, then the other half: the crash lands while these outputs are half
            // written.
            let big = |c: char| {
                format!(
                    "head -c {HALF} /dev/zero | tr '\\0' {c}; n=0; \
                     until [ -s {v} ] && ! kill -0 $(cat {v}) 2>/dev/null || [ $n -ge 1000 ]; \
                     do sleep 0.01; n=$((n+1)); done; head -c {HALF} /dev/zero | tr '\\0' {c}\n"
                )
            };
            let crash = format!("echo $PPID > {v}.new && mv {v}.new {v}; kill -s KILL $PPID\n");
            let mut jobs = String::new();
            for c in ['a', 'b', 'c'] {
                jobs += &big(c);
            }
            jobs += &crash;
            for c in ['d', 'e', 'f', 'g'] {
                jobs += &big(c);
            }
            let log = dir.join("log");
            let out = weft_on(Backend::Process)
                .args(["-j", "4", "--joblog"])
                .arg(&log)
                .args(keep_order.then_some("-k"))
                .write_stdin(jobs)
                .assert()
                .code(1)
                .get_output()
                .stdout
                .clone();
            let mut got = runs(&out);
            if !keep_order {
                got.sort_unstable();
            }
            let want: Vec<(u8, usize)> = b"abcdefg".iter().map(|&c| (c, 2 * HALF)).collect();
            assert_eq!(
                got, want,
                "every output whole, once (keep order: {keep_order})"
            );
            let crashed = joblog_row(&log, 4);
            assert_eq!((&*crashed[6], &*crashed[7]), ("-1", "9"));
        });
    }
}

#[test]
fn a_timed_out_job_leaves_nothing_alive_even_with_background_children_or_a_term_trap() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("timeout");
            let d = dir.str();
            // Background grandchildren; TERM ignored (and so by its children too); TERM
            // caught and shrugged off.
            let jobs = format!(
                "echo $$ > {d}/plain.sh; sleep 60 & echo $! > {d}/plain.bg; sleep 60\n\
                 trap '' TERM; echo $$ > {d}/ignore.sh; sleep 60 & echo $! > {d}/ignore.bg; sleep 60\n\
                 trap 'echo TERM' TERM; echo $$ > {d}/trap.sh; while :; do sleep 0.1; done\n"
            );
            let log = dir.join("log");
            let child = spawn_with_input(
                Command::new(weft_bin())
                    .args(["--backend", backend.name(), "-j", "3", "--timeout", "3"])
                    .arg("--joblog")
                    .arg(&log)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped()),
                jobs,
            );
            // Every process of each job's group, seen while it runs (the foreground sleeps
            // included).
            let mut pids = Vec::new();
            let started = wait_until(Duration::from_secs(20), || {
                let shells = pids_in(&dir.join("plain.sh"))
                    .into_iter()
                    .chain(pids_in(&dir.join("ignore.sh")))
                    .chain(pids_in(&dir.join("trap.sh")))
                    .collect::<Vec<_>>();
                pids = shells.iter().flat_map(|&sh| group_members(sh)).collect();
                shells.len() == 3 && dir.join("plain.bg").exists() && dir.join("ignore.bg").exists()
            });
            let out = child.wait_with_output().unwrap();
            assert!(started, "the three jobs started");
            for f in ["plain.sh", "plain.bg", "ignore.sh", "ignore.bg", "trap.sh"] {
                pids.extend(pids_in(&dir.join(f)));
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "{backend:?}: {stderr}");
            assert_eq!(stderr.matches("timed out").count(), 3, "{stderr}");
            assert_no_survivors(&pids, SETTLE, format!("{backend:?}"));
            for row in joblog_rows(&log) {
                assert_eq!(
                    row[6], "-1",
                    "a timed-out job did not exit on its own: {row:?}"
                );
            }
        });
    }
}

#[test]
fn a_task_that_ignores_its_timeout_is_reported_timed_out_and_its_worker_does_not_linger() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("task-timeout");
            let log = dir.join("log");
            let child = Command::new(weft_bin())
                .args(["--task", "fault", "--backend", backend.name(), "-j", "2"])
                .args(["--timeout", "0.5", "--joblog"])
                .arg(&log)
                .args([":::", "hang", "ok"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut workers = Vec::new();
            assert!(
                wait_until(Duration::from_secs(20), || {
                    workers = children_of(child.id());
                    backend == Backend::Thread || !workers.is_empty()
                }),
                "{backend:?}: the process workers start"
            );
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(1), "{backend:?}: {stderr}");
            assert!(stderr.contains("job 1 (hang) timed out"), "{stderr}");
            let row = joblog_row(&log, 1);
            assert_eq!(row[6], "-1");
            assert_no_survivors(
                &workers,
                SETTLE,
                format!("{backend:?}: workers outlived the run"),
            );
        });
    }
}

#[test]
fn no_worker_or_job_process_outlives_a_sigkilled_coordinator() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("coordinator-kill");
            let d = dir.str();
            let mut coordinator = Command::new(weft_bin())
                .args(["--backend", backend.name(), "-j", "3"])
                .arg(format!(
                    "echo $$ > {d}/{{}}.sh; sleep 60 & echo $! > {d}/{{}}.bg; sleep 60"
                ))
                .args([":::", "1", "2", "3"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            let mut pids = Vec::new();
            assert!(
                jobs_running(&mut coordinator, || {
                    let shells: Vec<u32> = (1..=3)
                        .flat_map(|i| pids_in(&dir.join(format!("{i}.sh"))))
                        .collect();
                    let bgs = (1..=3)
                        .flat_map(|i| pids_in(&dir.join(format!("{i}.bg"))))
                        .count();
                    // Each job's group: its shell, its foreground sleep, its background one.
                    pids = shells.iter().flat_map(|&sh| group_members(sh)).collect();
                    shells.len() == 3 && bgs == 3 && pids.len() == 9
                }),
                "three jobs running, each with two sleeps: {pids:?}"
            );
            // The workers (process backend) and the watchdog.
            let helpers = children_of(coordinator.id());
            pids.extend(&helpers);
            sigkill_leaves_none_of(
                coordinator,
                &pids,
                format!("{backend:?} (helpers {helpers:?})"),
            );
        });
    }
}

/// SIGKILLs `coordinator` and expects none of `pids` alive a second later.
fn sigkill_leaves_none_of(mut coordinator: Child, pids: &[u32], what: String) {
    coordinator.kill().unwrap();
    coordinator.wait().unwrap();
    assert_no_survivors(
        pids,
        SETTLE,
        format!("{what}: a second after the coordinator died"),
    );
}

#[test]
fn a_tight_fd_limit_runs_every_job_without_emfile() {
    for (backend, what) in [
        ("thread", "echo"),
        ("process", "echo"),
        ("process", "--task sum"),
    ] {
        // `sum` of `i..i+1` prints `i`, as `echo i` does.
        let input = if what == "echo" {
            records(1..=2000)
        } else {
            records((1..=2000).map(|i| format!("{i}..{}", i + 1)))
        };
        let script = format!("ulimit -n 64 && exec \"$0\" -j 32 --backend {backend} {what}");
        let out = assert_cmd::Command::new("sh")
            .args(["-c", &script])
            .arg(weft_bin())
            .write_stdin(input)
            .timeout(LIMIT)
            .assert()
            .success()
            .get_output()
            .clone();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{backend} {what}: {stderr}");
        assert!(
            !stderr.contains("Too many open files"),
            "{backend} {what}: {stderr}"
        );
        assert_eq!(
            sorted_numbers(&out.stdout),
            (1..=2000).collect::<Vec<_>>(),
            "{backend} {what}"
        );
    }
}

/// The descriptors a shell started by this test sees: 0, 1 and 2, plus any the test itself
/// inherited without close-on-exec (a harness may leak some; weft's coordinator passes those
/// on, as GNU parallel does, while process workers keep them to themselves).
fn inherited_fds() -> Vec<String> {
    let out = Command::new("sh")
        .args(["-c", "ls /proc/$$/fd; true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let fds: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    if fds != ["0", "1", "2"] {
        eprintln!("note: this test runs with inherited descriptors {fds:?}");
    }
    fds
}

#[test]
fn jobs_see_only_stdin_stdout_and_stderr() {
    let inherited = inherited_fds();
    for backend in BACKENDS {
        for mode in [None, Some("--line-buffer"), Some("-u")] {
            // `ls` runs as a child of the job's shell, so it lists the shell's descriptors,
            // not its own.
            let out = weft_on(backend)
                .args(["-j", "4"])
                .args(mode)
                .args(["ls /proc/$$/fd; true", ":::"])
                .args((1..=20).map(|i| i.to_string()))
                .assert()
                .success()
                .get_output()
                .stdout
                .clone();
            let out = String::from_utf8(out).unwrap();
            for fd in ["0", "1", "2"] {
                assert_eq!(out.lines().filter(|l| *l == fd).count(), 20, "{out}");
            }
            assert!(
                out.lines().all(|l| inherited.iter().any(|fd| fd == l)),
                "{backend:?} {mode:?}: fds beyond {inherited:?}:\n{out}"
            );
        }
    }
}

/// Peak resident set in KiB: from `/usr/bin/time` when there is one (the largest of the
/// coordinator and the processes it waited for: the coordinator, in these runs), else the
/// coordinator's sampled from /proc while it runs (then a lower bound).
fn run_measured(args: &[&str], input: String) -> (Output, Option<u64>) {
    let dir = Scratch::new("rss");
    let time = Path::new("/usr/bin/time");
    let report = dir.join("rss");
    let mut cmd = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-o").arg(&report).args(["-f", "%M"]).arg(weft_bin());
        c
    } else {
        Command::new(weft_bin())
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // From a thread: weft's output is read only below, so writing all the input first could
    // leave both pipes full.
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let pid = child.id();
    let sampler = (!time.exists()).then(|| {
        std::thread::spawn(move || {
            let mut peak = 0;
            while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kb) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                {
                    peak = kb;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    let peak = match sampler {
        Some(s) => Some(s.join().unwrap()),
        None => std::fs::read_to_string(&report)
            .ok()
            .and_then(|s| s.lines().last()?.trim().parse().ok()),
    };
    (out, peak)
}

/// Checks a run of `n` jobs that print their number: it succeeded, and every job printed and
/// logged once.
fn check_every_job_once(out: &Output, log: &Path, n: u64) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = sorted_numbers(&out.stdout);
    lines.dedup();
    assert_eq!(lines.len() as u64, n, "unique output lines");
    assert_eq!(lines.first(), Some(&1));
    assert_eq!(lines.last(), Some(&n));
    let seqs = joblog_seqs(log);
    assert_eq!(seqs.len() as u64, n, "joblog rows");
    assert!(
        seqs.windows(2).all(|w| w[0] + 1 == w[1]),
        "unique seqs 1..={n}"
    );
}

/// 100,000 jobs run as a registered task (`sum` of `i..i+1` prints `i`): 100,000 commands
/// take minutes in a debug build, so commands get their own, smaller run below.
#[test]
fn a_hundred_thousand_task_jobs_each_print_and_log_once() {
    const N: u64 = 100_000;
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("100k");
            let log = dir.join("log");
            let input = records((1..=N).map(|i| format!("{i}..{}", i + 1)));
            let (out, peak) = run_measured(
                &[
                    "--task",
                    "sum",
                    "--backend",
                    backend.name(),
                    "--joblog",
                    log.to_str().unwrap(),
                ],
                input,
            );
            check_every_job_once(&out, &log, N);
            eprintln!("{N} task jobs on the {backend:?} backend: peak RSS {peak:?} KiB");
            // Measured 13-15 MB; a coordinator that kept every job would need far more.
            if let Some(kib) = peak {
                assert!(kib < 64 * 1024, "{backend:?}: peak RSS {kib} KiB");
            }
        });
    }
}

#[test]
fn ten_thousand_commands_each_print_and_log_once() {
    const N: u64 = 10_000;
    within(LIMIT * 2, move || {
        let dir = Scratch::new("10k");
        let log = dir.join("log");
        let input = records(1..=N);
        let (out, peak) = run_measured(&["--joblog", log.to_str().unwrap(), "echo"], input);
        check_every_job_once(&out, &log, N);
        eprintln!("{N} commands: peak RSS {peak:?} KiB");
    });
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn a_hostile_working_directory_and_tmpdir_run_nothing_from_their_names() {
    const NAME: &str = "a b'c\"d\n$(touch PWNED)`touch PWNED2`";
    let dir = Scratch::new("hostile");
    let cwd = dir.join(NAME);
    let tmp = dir.join(format!("tmp {NAME}"));
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let big = 1_100_000; // past the inline limit: spilled to a file under TMPDIR
    for backend in BACKENDS {
        let out = weft_on(backend)
            .current_dir(&cwd)
            .env("TMPDIR", &tmp)
            .args(["-k", "--joblog", "log"])
            .arg(format!(
                "printf '%s\\n' {{}}; pwd; head -c {big} /dev/zero | tr '\\0' y; echo"
            ))
            .args([":::", "plain", "$(touch PWNED3)", "`touch PWNED4`"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let ys = "y".repeat(big);
        let want: String = ["plain", "$(touch PWNED3)", "`touch PWNED4`"]
            .iter()
            .map(|a| format!("{a}\n{}\n{ys}\n", cwd.display()))
            .collect();
        assert!(out == want.as_bytes(), "{backend:?}: output byte-exact");
        assert_eq!(joblog_seqs(&cwd.join("log")), [1, 2, 3]);
        weft_on(backend)
            .current_dir(&cwd)
            .env("TMPDIR", &tmp)
            .args(["--task", "sum", "-k", ":::", "0..4", "4..5"])
            .assert()
            .success()
            .stdout("6\n4\n");
    }
    let pwned: Vec<_> = files_under(dir.path())
        .into_iter()
        .chain(files_under(&std::env::current_dir().unwrap()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("PWNED"))
        })
        .collect();
    assert!(pwned.is_empty(), "executed from a name: {pwned:?}");
    assert_eq!(
        files_under(&tmp),
        Vec::<std::path::PathBuf>::new(),
        "temp files left behind"
    );
}

#[test]
fn two_runs_in_one_directory_at_once_keep_to_their_own_outputs_and_logs() {
    within(LIMIT, || {
        let dir = Scratch::new("two-runs");
        let start = |run: &str, backend: &str| {
            Command::new(weft_bin())
                .current_dir(dir.path())
                .args(["--backend", backend, "-j", "4", "-k", "--joblog"])
                .arg(format!("{run}.log"))
                .arg(format!(
                    "echo {run} {{}}; echo {run} {{}} >> {run}.side; \
                     [ {{}} -le 3 ] && head -c 1200000 /dev/zero | tr '\\0' {run}; true"
                ))
                .arg(":::")
                .args((1..=100).map(|i| i.to_string()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let a = start("a", "thread");
        let b = start("b", "process");
        for (run, child) in [("a", a), ("b", b)] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{run}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let want: String = (1..=100)
                .map(|i| {
                    let big = if i <= 3 {
                        run.repeat(1_200_000)
                    } else {
                        String::new()
                    };
                    format!("{run} {i}\n{big}")
                })
                .collect();
            assert!(out.stdout == want.as_bytes(), "{run}: output exact");
            assert_eq!(
                joblog_seqs(&dir.join(format!("{run}.log"))),
                (1..=100).collect::<Vec<_>>()
            );
            for row in joblog_rows(&dir.join(format!("{run}.log"))) {
                assert!(row[8].starts_with(&format!("echo {run} ")), "{row:?}");
            }
            let mut side: Vec<String> = std::fs::read_to_string(dir.join(format!("{run}.side")))
                .unwrap()
                .lines()
                .map(String::from)
                .collect();
            side.sort();
            let mut want: Vec<String> = (1..=100).map(|i| format!("{run} {i}")).collect();
            want.sort();
            assert_eq!(side, want);
        }
    });
}

#[test]
fn no_temp_file_outlives_a_failed_stopped_or_killed_run() {
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("leftovers");
            let tmp = dir.join("tmp");
            let pids = dir.join("pids");
            std::fs::create_dir(&tmp).unwrap();
            std::fs::create_dir(&pids).unwrap();
            let left = || files_under(&tmp);
            // Jobs that cannot be spawned.
            weft_on(backend)
                .env("TMPDIR", &tmp)
                .env("PARALLEL_SHELL", common::unrunnable_shell(&dir))
                .args(["echo", ":::", "a", "b"])
                .assert()
                .code(2);
            assert_eq!(
                left(),
                Vec::<std::path::PathBuf>::new(),
                "{backend:?}: spawn failure"
            );
            // Jobs running when the run is stopped, and when its coordinator is SIGKILLed.
            for how in ["TERM", "KILL"] {
                let _ = std::fs::remove_dir_all(&pids);
                std::fs::create_dir(&pids).unwrap();
                let mut child = Command::new(weft_bin())
                    .env("TMPDIR", &tmp)
                    .args(["--backend", backend.name(), "-j", "2"])
                    .arg(format!(
                        "echo output; echo $$ > {}/{{}}; sleep 60",
                        pids.display()
                    ))
                    .args([":::", "1", "2"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                assert!(
                    jobs_running(&mut child, || pids_in(&pids).len() == 2),
                    "both jobs running"
                );
                let running = pids_in(&pids);
                signal(child.id(), how);
                child.wait().unwrap();
                assert_no_survivors(&running, SETTLE, format!("{backend:?} {how}"));
                // After a SIGKILL the watchdog removes the run's directory once it has swept.
                assert!(
                    wait_until(SETTLE, || left().is_empty()),
                    "{backend:?}: after SIG{how}: {:?}",
                    left()
                );
            }
        });
    }
}

#[test]
fn a_large_output_nobody_prints_leaves_no_file_behind() {
    // Past the inline limit (1 MiB) a captured output is a named file until it is printed.
    const BIG: &str = "head -c 2000000 /dev/zero";
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("unprinted");
            let tmp = dir.join("tmp");
            std::fs::create_dir(&tmp).unwrap();
            let d = dir.str();
            // A failed attempt's output is dropped when the job runs again.
            let out = weft_on(backend)
                .env("TMPDIR", &tmp)
                .args(["--retries", "2"])
                .arg(format!(
                    "{BIG}; test -e {d}/{{}}.again && exit 0; touch {d}/{{}}.again; exit 1"
                ))
                .args([":::", "1", "2"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{backend:?}: {out:?}");
            assert_eq!(
                out.stdout.len(),
                4_000_000,
                "{backend:?}: the last attempts' output"
            );
            assert_eq!(
                files_under(&tmp),
                Vec::<std::path::PathBuf>::new(),
                "{backend:?}: retries"
            );
            // With -k, job 2's output waits for job 1's; the coordinator dies first.
            let mut child = Command::new(weft_bin())
                .env("TMPDIR", &tmp)
                .args(["--backend", backend.name(), "-k", "-j", "2"])
                .arg(format!(
                    "test {{}} = 2 && {{ {BIG}; touch {d}/held; exit 0; }}; echo $$ > {d}/first; sleep 60"
                ))
                .args([":::", "1", "2"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            assert!(
                jobs_running(&mut child, || {
                    dir.join("held").exists() && !pids_in(&dir.join("first")).is_empty()
                }),
                "{backend:?}: job 2 done, job 1 running"
            );
            // The held output is named once the job's result is in.
            assert!(
                wait_until(Duration::from_secs(10), || files_under(&tmp)
                    .iter()
                    .any(|p| p.is_file())),
                "{backend:?}: job 2's output spilled under TMPDIR"
            );
            signal(child.id(), "KILL");
            child.wait().unwrap();
            assert!(
                wait_until(SETTLE, || files_under(&tmp).is_empty()),
                "{backend:?}: left after SIGKILL: {:?}",
                files_under(&tmp)
            );
        });
    }
}

#[test]
fn a_job_that_drops_its_environment_still_dies_with_a_sigkilled_coordinator() {
    // `env -i` takes the run's mark away, which the watchdog's sweep goes by; the job's
    // process group is what finds it then.
    for backend in BACKENDS {
        within(LIMIT, move || {
            let dir = Scratch::new("no-env");
            let d = dir.str();
            let mut coordinator = Command::new(weft_bin())
                .args(["--backend", backend.name(), "-j", "2"])
                .arg(format!("echo $$ > {d}/{{}}; exec env -i /bin/sleep 60"))
                .args([":::", "1", "2"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            let mut pids = Vec::new();
            assert!(
                jobs_running(&mut coordinator, || {
                    pids = (1..=2)
                        .flat_map(|i| pids_in(&dir.join(i.to_string())))
                        .collect();
                    pids.len() == 2 && pids.iter().all(|&p| in_sleep(p))
                }),
                "{backend:?}: both jobs in their sleep: {pids:?}"
            );
            sigkill_leaves_none_of(coordinator, &pids, format!("{backend:?}"));
        });
    }
}

#[test]
fn a_nested_run_keeps_to_its_own_output_directory() {
    // The inner run cannot make a directory of its own (its TMPDIR does not exist); it must
    // not use, or remove, the outer run's.
    let dir = Scratch::new("nested");
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let inner = format!(
        "TMPDIR=/nonexistent {} echo inner ::: x",
        weft_bin().display()
    );
    let out = weft()
        .env("TMPDIR", &tmp)
        .args(["-j1", "-k", ":::", &inner, "head -c 2000000 /dev/zero"])
        .output()
        .unwrap();
    assert!(
        out.stdout.ends_with(&[0u8; 2_000_000]),
        "the outer run's second job printed its 2,000,000 bytes: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(files_under(&tmp), Vec::<std::path::PathBuf>::new());
}
