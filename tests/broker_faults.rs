//! `weft --broker` and `weft worker` against a real redis-server that each test starts on its
//! own (a unix socket in a temp dir, no TCP port) and stops by pid, also on panic. Each test
//! counts at the collector that every job was reported exactly once.

#[path = "common/broker.rs"]
mod broker;
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use broker::{Redis, Worker, counts, each_job_once, inputs, with_inputs};
use common::{SETTLE, exits_within, mkfifo, signal, wait_until, weft_bin, within};

/// A submitter (`weft --broker URL ARGS`) whose stdout lines come in as they are printed.
struct Submitter {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Submitter {
    fn start(redis: &Redis, args: &[&str]) -> Submitter {
        Self::start_env(redis, args, &[])
    }

    fn start_env(redis: &Redis, args: &[&str], env: &[(&str, &str)]) -> Submitter {
        Self::spawn(redis, args, env, Stdio::null())
    }

    /// A submitter reading its records from a pipe the test holds: the run goes on (its
    /// collector with it) until the test closes it.
    fn start_piped(redis: &Redis, args: &[&str]) -> Submitter {
        Self::spawn(redis, args, &[], Stdio::piped())
    }

    fn spawn(redis: &Redis, args: &[&str], env: &[(&str, &str)], stdin: Stdio) -> Submitter {
        let mut child = Command::new(weft_bin())
            .args(["--broker", &redis.url])
            .args(args)
            .envs(env.iter().copied())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rx = broker::stdout_lines(&mut child);
        Submitter {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for an output line equal to `line`.
    fn wait_line(&mut self, line: &str) {
        loop {
            match self.lines.recv_timeout(SETTLE) {
                Ok(l) => {
                    let hit = l == line;
                    self.seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(e) => panic!("no output line {line:?} (saw {:?}): {e}", self.seen),
            }
        }
    }

    /// Waits for `n` output lines in all.
    fn wait_lines(&mut self, n: usize) {
        while self.seen.len() < n {
            match self.lines.recv_timeout(SETTLE) {
                Ok(l) => self.seen.push(l),
                Err(e) => panic!("{} output lines, not {n}: {e}", self.seen.len()),
            }
        }
    }

    /// Waits for the exit; returns the status code, every output line, and stderr.
    fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        drop(self.stdin.take());
        let status = exits_within(&mut self.child, Duration::from_secs(90));
        while let Ok(l) = self.lines.recv_timeout(SETTLE) {
            self.seen.push(l);
        }
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        eprintln!("submitter stderr:\n{err}");
        (status.code(), std::mem::take(&mut self.seen), err)
    }
}

impl Drop for Submitter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens a FIFO for reading and reads it whole: returns once a job has opened it, written and
/// closed it (the job has started).
fn read_fifo(path: &Path) -> String {
    let path = path.to_path_buf();
    within(SETTLE, move || std::fs::read_to_string(path).unwrap())
}

/// Writes to a FIFO: returns once a job has opened it for reading (and so goes on).
fn write_fifo(path: &Path) {
    let path = path.to_path_buf();
    within(SETTLE, move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all(b"go\n").unwrap();
    });
}

#[test]
fn two_workers_report_each_command_job_exactly_once() {
    let redis = Redis::start();
    let _a = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let _b = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let n = inputs(300);
    let sub = Submitter::start(&redis, &with_inputs(&["echo", "job", "{}"], &n));
    let (code, lines, _) = sub.finish();
    assert_eq!(code, Some(0));
    each_job_once(&lines, 300);
}

#[test]
fn typed_tasks_run_on_workers_with_their_outputs_in_input_order() {
    let redis = Redis::start();
    let _a = Worker::start(&redis, &["-j", "2"]);
    let _b = Worker::start(&redis, &["-j", "2"]);
    let ranges: Vec<String> = (0..2000).map(|i| format!("0..{i}")).collect();
    let sub = Submitter::start(&redis, &with_inputs(&["--task", "sum", "-k"], &ranges));
    let (code, lines, _) = sub.finish();
    assert_eq!(code, Some(0));
    let want: Vec<String> = (0..2000u64)
        .map(|i| (i * i.saturating_sub(1) / 2).to_string())
        .collect();
    assert_eq!(lines, want);
}

#[test]
fn worker_sigkilled_mid_job_its_job_completes_elsewhere_once() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    mkfifo(&started);
    let once = dir.path().join("once");
    // Job 5's first run tells it started, then hangs; a second run just prints.
    let line = format!(
        "if [ {{}} = 5 ] && mkdir {} 2>/dev/null; then echo go > {}; sleep 60; fi; echo job {{}}",
        once.display(),
        started.display()
    );
    let a = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let n = inputs(20);
    let sub = Submitter::start(&redis, &with_inputs(&[&line], &n));
    read_fifo(&started);
    signal(a.pid(), "KILL");
    let _b = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let (code, lines, _) = sub.finish();
    assert_eq!(code, Some(0));
    each_job_once(&lines, 20);
}

#[test]
fn worker_sigstopped_past_its_lease_has_its_late_result_discarded() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let (started, release) = (dir.path().join("started"), dir.path().join("release"));
    for f in [&started, &release] {
        mkfifo(f);
    }
    let once = dir.path().join("once");
    // Job 5's first run tells it started and waits to be released, then prints `late`.
    let line = format!(
        "if [ {{}} = 5 ] && mkdir {once} 2>/dev/null; then echo go > {started}; \
         cat {release} >/dev/null; echo late; fi; echo job {{}}",
        once = once.display(),
        started = started.display(),
        release = release.display(),
    );
    let a = Worker::start(&redis, &["-j", "1", "--allow-commands"]);
    // The records come through a pipe held open: the collector is still collecting when the
    // stopped worker's late result comes.
    let mut sub = Submitter::start_piped(&redis, &[&line]);
    let records: String = (1..=20).map(|i| format!("{i}\n")).collect();
    sub.stdin
        .as_mut()
        .unwrap()
        .write_all(records.as_bytes())
        .unwrap();
    sub.stdin.as_mut().unwrap().flush().unwrap();
    read_fifo(&started);
    signal(a.pid(), "STOP");
    let _b = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    // Job 5 ran again on the other worker, after the lease.
    sub.wait_line("job 5");
    signal(a.pid(), "CONT");
    write_fifo(&release);
    a.wait_err("discarded");
    let (code, lines, _) = sub.finish();
    assert_eq!(code, Some(0));
    assert!(!lines.iter().any(|l| l == "late"), "{lines:?}");
    each_job_once(&lines, 20);
}

#[test]
fn redis_restarted_with_aof_loses_nothing() {
    let mut redis = Redis::start_aof();
    let _a = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let _b = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let n = inputs(200);
    let mut sub = Submitter::start(&redis, &with_inputs(&["sleep 0.01; echo job {}"], &n));
    sub.wait_lines(20);
    redis.crash_and_restart();
    let (code, lines, _) = sub.finish();
    assert_eq!(code, Some(0));
    each_job_once(&lines, 200);
}

#[test]
fn redis_restarted_without_persistence_fails_the_run_loudly() {
    let mut redis = Redis::start();
    let _a = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let n = inputs(400);
    let mut sub = Submitter::start(&redis, &with_inputs(&["sleep 0.02; echo job {}"], &n));
    sub.wait_lines(10);
    redis.crash_and_restart();
    let (code, lines, err) = sub.finish();
    assert_eq!(code, Some(255), "{err}");
    assert!(err.contains("lost run"), "{err}");
    // Nothing was reported twice, and the jobs not reported were reported failed.
    let c = counts(&lines);
    assert!(c.values().all(|&k| k == 1), "{c:?}");
    assert!(lines.len() < 400);
    assert!(
        err.contains("failed: the run failed on the broker"),
        "{err}"
    );
}

#[test]
fn poison_job_crashing_every_worker_is_dead_lettered_and_the_rest_completes() {
    let redis = Redis::start();
    let mut tasks: Vec<String> = (0..30).map(|_| "ok".to_string()).collect();
    tasks[10] = "abort".into();
    let sub = Submitter::start(
        &redis,
        &with_inputs(&["--task", "fault", "--jsonl"], &tasks),
    );
    // Workers die with the poison job: keep two running, for a bounded number of deaths.
    let mut workers = [
        Worker::start(&redis, &["-j", "1"]),
        Worker::start(&redis, &["-j", "1"]),
    ];
    let mut sub = sub;
    let mut deaths = 0;
    let done = wait_until(Duration::from_secs(60), || {
        if let Ok(Some(_)) = sub.child.try_wait() {
            return true;
        }
        for w in workers.iter_mut() {
            if let Ok(Some(_)) = w.child.try_wait() {
                deaths += 1;
                *w = Worker::start(&redis, &["-j", "1"]);
            }
        }
        false
    });
    assert!(done, "the run did not end");
    assert!((3..=6).contains(&deaths), "{deaths} worker deaths");
    let (code, lines, err) = sub.finish();
    assert_eq!(code, Some(1), "{err}");
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=30).collect::<Vec<_>>());
    let failed: Vec<_> = records.iter().filter(|r| r["status"] != "ok").collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["seq"], 11);
    assert!(
        failed[0].to_string().contains("dead-lettered"),
        "{failed:?}"
    );
}

#[test]
fn workers_joining_and_leaving_mid_run_report_each_job_once() {
    let redis = Redis::start();
    let a = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let n = inputs(300);
    let mut sub = Submitter::start(&redis, &with_inputs(&["sleep 0.005; echo job {}"], &n));
    sub.wait_lines(30);
    let _b = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    sub.wait_lines(100);
    signal(a.pid(), "KILL");
    let _c = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let (code, lines, _) = sub.finish();
    assert_eq!(code, Some(0));
    each_job_once(&lines, 300);
}

#[test]
fn command_job_waits_for_a_worker_that_runs_commands() {
    let redis = Redis::start();
    // This worker lacks the kind (it does not run commands): the jobs wait for one that has it.
    let _plain = Worker::start(&redis, &["-j", "2"]);
    let n = inputs(10);
    let sub = Submitter::start_env(
        &redis,
        &with_inputs(&["echo", "job", "{}"], &n),
        &[("WEFT_BROKER_GRACE_MS", "60000")],
    );
    let _cmd = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let (code, lines, _) = sub.finish();
    assert_eq!(code, Some(0));
    each_job_once(&lines, 10);
}

#[test]
fn job_of_a_kind_no_worker_registers_fails_clearly_after_the_grace() {
    let redis = Redis::start();
    let _plain = Worker::start(&redis, &["-j", "2"]);
    let n = inputs(3);
    let sub = Submitter::start_env(
        &redis,
        &with_inputs(&["echo", "job", "{}"], &n),
        &[("WEFT_BROKER_GRACE_MS", "1000")],
    );
    let (code, lines, err) = sub.finish();
    assert_eq!(code, Some(3), "{err}");
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(
        err.matches("no worker registers task kind exec").count(),
        3,
        "{err}"
    );
}

#[test]
fn inputs_above_the_payload_limit_are_refused_naming_it() {
    let redis = Redis::start();
    let _a = Worker::start(&redis, &["-j", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inputs");
    // A file to hash, then a path far past the limit.
    let big = "x".repeat(600 * 1024);
    std::fs::write(&file, format!("{}\n{big}\n", file.display())).unwrap();
    let file = file.display().to_string();
    let sub = Submitter::start(&redis, &["--task", "sha256", "--jsonl", "-a", &file]);
    let (code, lines, err) = sub.finish();
    assert_eq!(code, Some(1), "{err}");
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{lines:?}");
    let refused: Vec<_> = records.iter().filter(|r| r["status"] != "ok").collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["seq"], 2);
    assert!(
        refused[0]
            .to_string()
            .contains("above the broker's limit of 512 KiB"),
        "{refused:?}"
    );
}

/// `weft collect` for run `id`, its stdout lines coming in as they are printed.
fn collector(redis: &Redis, id: &str) -> Submitter {
    let mut child = Command::new(weft_bin())
        .args(["collect", "--broker", &redis.url, "--job", id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = broker::stdout_lines(&mut child);
    Submitter {
        child,
        stdin: None,
        lines: rx,
        seen: Vec::new(),
    }
}

#[test]
fn collector_killed_and_restarted_reports_each_job_once() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    mkfifo(&gate);
    // Job 21 waits at the gate: the first collector has printed jobs 1-20 and waits for more
    // when it is killed.
    let line = format!(
        "if [ {{}} = 21 ]; then cat {} >/dev/null; fi; echo job {{}}",
        gate.display()
    );
    let n = inputs(40);
    let submitted = common::weft()
        .args(["submit", "--broker", &redis.url])
        .args(with_inputs(&[&line], &n))
        .output()
        .unwrap();
    assert!(submitted.status.success(), "{submitted:?}");
    let id = String::from_utf8(submitted.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(redis.run_field(&id, "sealed").as_deref(), Some("40"));
    let _w = Worker::start(&redis, &["-j", "1", "--allow-commands"]);
    let mut first = collector(&redis, &id);
    // Killed once it has caught up: jobs 1-20 printed and marked collected, and it waits for
    // the jobs behind the gate.
    let caught_up = wait_until(SETTLE, || {
        while let Ok(l) = first.lines.try_recv() {
            first.seen.push(l);
        }
        let field = |f: &str| {
            redis
                .run_field(&id, f)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        };
        let (done, collected) = (field("done"), field("collected"));
        done == 20 && collected == 20 && first.seen.len() == 20
    });
    assert!(caught_up, "the first collector did not catch up");
    signal(first.child.id(), "KILL");
    let _ = first.child.wait();
    // What it printed before it died, to the last line.
    while let Ok(l) = first.lines.recv_timeout(SETTLE) {
        first.seen.push(l);
    }
    let mut lines = std::mem::take(&mut first.seen);
    write_fifo(&gate);
    let second = collector(&redis, &id);
    let (code, rest, err) = second.finish();
    assert_eq!(code, Some(0), "{err}");
    lines.extend(rest);
    each_job_once(&lines, 40);
    assert_eq!(redis.run_field(&id, "state").as_deref(), Some("done"));
}

#[test]
fn status_counts_a_runs_jobs() {
    let redis = Redis::start();
    let submitted = common::weft()
        .args(["submit", "--broker", &redis.url, "--task", "sum", ":::"])
        .args((1..=5).map(|i| format!("0..{i}")))
        .output()
        .unwrap();
    assert!(submitted.status.success(), "{submitted:?}");
    let id = String::from_utf8(submitted.stdout)
        .unwrap()
        .trim()
        .to_string();
    let status = |redis: &Redis| {
        let out = common::weft()
            .args(["status", "--broker", &redis.url, "--job", &id])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let before = status(&redis);
    assert!(
        before.contains("5 submitted (5 in all), 5 queued or running, 0 done"),
        "{before}"
    );
    let _w = Worker::start(&redis, &["-j", "1"]);
    assert!(wait_until(SETTLE, || redis
        .run_field(&id, "done")
        .as_deref()
        == Some("5")));
    let after = status(&redis);
    assert!(
        after.contains("0 queued or running, 5 done (0 failed, 0 dead-lettered), 0 collected"),
        "{after}"
    );
}

#[test]
fn outputs_above_the_payload_limit_fail_their_job_naming_it() {
    let redis = Redis::start();
    let _a = Worker::start(&redis, &["-j", "1", "--allow-commands"]);
    let sub = Submitter::start(
        &redis,
        &["head -c {} /dev/zero | tr '\\0' x", ":::", "1000", "600000"],
    );
    let (code, lines, err) = sub.finish();
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(lines, ["x".repeat(1000)]);
    assert!(
        err.contains("its output of") && err.contains("above the broker's limit of 512 KiB"),
        "{err}"
    );
}

#[test]
fn library_runs_typed_tasks_on_a_served_registry() {
    let redis = Redis::start();
    let url = redis.url.clone();
    let worker = std::thread::spawn(move || {
        let opts = weft::broker::WorkerOptions {
            workers: 2,
            exit_when_idle: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        weft::broker::serve(&url, &weft::tasks::registry(), &opts)
    });
    let broker = weft::broker::Broker::new(redis.url.clone());
    let opts = weft::broker::RunOptions::default().keep_order(true);
    let sums: Vec<u128> = broker
        .map((0..500u64).map(|i| weft::tasks::Sum::new(0..i)), &opts)
        .unwrap()
        .map(|o| o.ok().unwrap())
        .collect();
    let want: Vec<u128> = (0..500u128).map(|i| i * i.saturating_sub(1) / 2).collect();
    assert_eq!(sums, want);
    let served = worker.join().unwrap().unwrap();
    assert_eq!(served.jobs, 500);
}

#[test]
fn retries_timeout_joblog_and_halt_behave_as_in_a_local_run() {
    let redis = Redis::start();
    let _a = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    // --retries: attempts on the worker.
    let sub = Submitter::start(
        &redis,
        &[
            "--task",
            "fault",
            "--json",
            "--retries",
            "3",
            "--jsonl",
            ":::",
            r#"{"failuntil":3}"#,
        ],
    );
    let (code, lines, err) = sub.finish();
    assert_eq!(code, Some(0), "{err}");
    let r: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        (r["status"].as_str(), r["attempt"].as_u64()),
        (Some("ok"), Some(3))
    );
    // --timeout and --joblog: the slow job is timed out on its worker, each job logged once.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let log_arg = log.display().to_string();
    let sub = Submitter::start(
        &redis,
        &[
            "--timeout",
            "1",
            "--joblog",
            &log_arg,
            "sleep {}; echo slept {}",
            ":::",
            "0",
            "30",
        ],
    );
    let (code, lines, err) = sub.finish();
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(lines, ["slept 0"]);
    assert_eq!(common::joblog_seqs(&log), [1, 2]);
    // --halt now,fail=1: the run stops at the first failure, with its exit status.
    let sub = Submitter::start(
        &redis,
        &[
            "--halt",
            "now,fail=1",
            "-j",
            "1",
            "exit {}",
            ":::",
            "0",
            "7",
            "0",
        ],
    );
    let (code, _, err) = sub.finish();
    assert_eq!(code, Some(7), "{err}");
}
