//! `weft collect` killed at any moment and started again, against a real redis-server: to a
//! file it never prints an outcome twice nor loses one; to a pipe it prints the batch in doubt
//! again and says so. The collector's fault-injection point `WEFT_FAULT_COLLECT`
//! (`after-write:K`, `mid-write:K`) makes it SIGKILL itself in the window between writing a
//! batch and confirming it, every time.

#[path = "common/broker.rs"]
mod broker;
mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use std::os::unix::process::ExitStatusExt;

use broker::{Redis, Worker, counts, each_job_once, inputs, submit, with_inputs};
use common::{SETTLE, exits_within, signal, wait_until, weft_bin};

/// A hang guard for a collector's whole run.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Submits `echo job {}` for jobs 1..=n and waits until a worker has run them all, so that a
/// collector started then reads them in full batches (64 result entries, one job each).
fn run_done(redis: &Redis, n: usize) -> String {
    let n_in = inputs(n);
    let id = submit(redis, &with_inputs(&["echo", "job", "{}"], &n_in));
    let done = wait_until(SETTLE, || {
        redis
            .run_field(&id, "done")
            .and_then(|d| d.parse::<usize>().ok())
            == Some(n)
    });
    assert!(done, "the workers did not run the {n} jobs");
    id
}

/// `weft collect` of run `id` with stdout to `out` and stderr to `err`, and `env`.
fn collect_to(redis: &Redis, id: &str, out: Stdio, err: &Path, env: &[(&str, &str)]) -> Child {
    let err = OpenOptions::new()
        .append(true)
        .create(true)
        .open(err)
        .unwrap();
    Command::new(weft_bin())
        .args(["collect", "--broker", &redis.url, "--job", id])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap()
}

/// `path` opened as `>` does.
fn truncating(path: &Path) -> Stdio {
    File::create(path).unwrap().into()
}

/// `path` opened as `>>` does.
fn appending(path: &Path) -> Stdio {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .into()
}

fn lines_of(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(str::to_string).collect()
}

fn killed(status: ExitStatus) -> bool {
    status.signal() == Some(9)
}

#[test]
fn collector_killed_after_writing_a_batch_to_a_file_does_not_print_it_again() {
    for append in [false, true] {
        let redis = Redis::start();
        let _w = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
        let id = run_done(&redis, 200);
        let dir = tempfile::tempdir().unwrap();
        let (out1, out2, err) = (
            dir.path().join("out1"),
            dir.path().join("out2"),
            dir.path().join("err"),
        );
        let open = |p: &Path| if append { appending(p) } else { truncating(p) };
        let mut first = collect_to(
            &redis,
            &id,
            open(&out1),
            &err,
            &[("WEFT_FAULT_COLLECT", "after-write:2")],
        );
        let status = exits_within(&mut first, RUN_LIMIT);
        assert!(killed(status), "the fault did not kill it: {status:?}");
        let printed = lines_of(&out1).len();
        assert_eq!(printed, 128, "two batches of 64 were written");
        // `>>` to the same file, or `>` to another one.
        let second_out = if append { &out1 } else { &out2 };
        let mut second = collect_to(&redis, &id, open(second_out), &err, &[]);
        let status = exits_within(&mut second, RUN_LIMIT);
        let err = std::fs::read_to_string(&err).unwrap();
        assert_eq!(status.code(), Some(0), "{err}");
        assert!(!err.contains("weft:"), "a warning: {err}");
        let mut lines = lines_of(&out1);
        if !append {
            lines.extend(lines_of(&out2));
        }
        each_job_once(&lines, 200);
        assert_eq!(redis.run_field(&id, "state").as_deref(), Some("done"));
    }
}

#[test]
fn collector_killed_mid_write_truncates_the_partial_batch_and_prints_it_once() {
    let redis = Redis::start();
    let _w = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let id = run_done(&redis, 200);
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut first = collect_to(
        &redis,
        &id,
        appending(&out),
        &err,
        &[("WEFT_FAULT_COLLECT", "mid-write:2")],
    );
    let status = exits_within(&mut first, RUN_LIMIT);
    assert!(killed(status), "the fault did not kill it: {status:?}");
    let size = std::fs::metadata(&out).unwrap().len();
    let whole = lines_of(&out)[..64]
        .iter()
        .map(|l| l.len() + 1)
        .sum::<usize>() as u64;
    assert!(size > whole, "no part of the second batch was written");
    let mut second = collect_to(&redis, &id, appending(&out), &err, &[]);
    let status = exits_within(&mut second, RUN_LIMIT);
    let err = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("weft:"), "a warning: {err}");
    each_job_once(&lines_of(&out), 200);
}

#[test]
fn collector_killed_writing_to_a_pipe_warns_that_the_batch_may_repeat() {
    let redis = Redis::start();
    let _w = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let id = run_done(&redis, 50);
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("err");
    let read_all = |mut child: Child| {
        let mut text = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let status = exits_within(&mut child, RUN_LIMIT);
        (status, text)
    };
    let first = collect_to(
        &redis,
        &id,
        Stdio::piped(),
        &err,
        &[("WEFT_FAULT_COLLECT", "after-write:3")],
    );
    let (status, text) = read_all(first);
    assert!(killed(status), "the fault did not kill it: {status:?}");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // To a pipe a batch is one result entry: one job here.
    assert_eq!(lines.len(), 3, "{lines:?}");
    let in_doubt = lines[2].clone();
    let second = collect_to(&redis, &id, Stdio::piped(), &err, &[]);
    let (status, text) = read_all(second);
    let err = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(
        err,
        "weft: collect: the last collector was killed while writing 1 outcome to a pipe; it may \
         be printed twice\n"
    );
    lines.extend(text.lines().map(str::to_string));
    let c = counts(&lines);
    let twice: Vec<_> = c.iter().filter(|(_, k)| **k > 1).collect();
    assert_eq!(twice, [(&in_doubt, &2)], "only the batch in doubt repeats");
    assert_eq!(c.len(), 50, "{c:?}");
}

#[test]
fn collector_killed_at_random_moments_and_restarted_prints_each_job_once() {
    const JOBS: usize = 2000;
    let redis = Redis::start();
    let _a = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let _b = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    // Submitted in the background: it prints the run's id once all its jobs are out, and
    // the last of them still run while the first collectors print.
    let n = inputs(JOBS);
    let mut submitter = Command::new(weft_bin())
        .args(["submit", "--broker", &redis.url])
        .args(with_inputs(&["echo", "job", "{}"], &n))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut id = String::new();
    BufReader::new(submitter.stdout.take().unwrap())
        .read_line(&mut id)
        .unwrap();
    let id = id.trim().to_string();
    assert!(!id.is_empty(), "no run id");
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    // "job N\n" is 9 bytes on average over 1..2000: about 18 KB in all. Each collector is
    // killed once the file has grown past the next of ten sizes (or is left to finish).
    let total: u64 = (1..=JOBS).map(|i| format!("job {i}\n").len() as u64).sum();
    let mut kills = 0;
    for k in 1..=10u64 {
        let past = total * k / 11;
        let mut c = collect_to(&redis, &id, appending(&out), &err, &[]);
        let mut ended = None;
        let grew = wait_until(RUN_LIMIT, || {
            ended = c.try_wait().unwrap();
            ended.is_some() || std::fs::metadata(&out).map_or(0, |m| m.len()) >= past
        });
        assert!(grew, "the output did not grow past {past} bytes");
        if ended.is_none() {
            signal(c.id(), "KILL");
            kills += 1;
        }
        let _ = c.wait();
    }
    let mut last = collect_to(&redis, &id, appending(&out), &err, &[]);
    let status = exits_within(&mut last, RUN_LIMIT);
    let err = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    let _ = exits_within(&mut submitter, RUN_LIMIT);
    eprintln!("{kills} collectors killed");
    assert!(
        kills >= 5,
        "only {kills} collectors were killed before the end"
    );
    assert!(!err.contains("weft:"), "a warning: {err}");
    each_job_once(&lines_of(&out), JOBS);
}

#[test]
fn collector_killed_writing_to_a_file_since_removed_prints_the_batch_again_and_says_so() {
    let redis = Redis::start();
    let _w = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let id = run_done(&redis, 200);
    let dir = tempfile::tempdir().unwrap();
    let (out1, out2, err) = (
        dir.path().join("out1"),
        dir.path().join("out2"),
        dir.path().join("err"),
    );
    let mut first = collect_to(
        &redis,
        &id,
        truncating(&out1),
        &err,
        &[("WEFT_FAULT_COLLECT", "after-write:2")],
    );
    let status = exits_within(&mut first, RUN_LIMIT);
    assert!(killed(status), "the fault did not kill it: {status:?}");
    // The first batch is committed; the second, in the file removed, is not known to be kept.
    let mut lines = lines_of(&out1)[..64].to_vec();
    std::fs::remove_file(&out1).unwrap();
    let mut second = collect_to(&redis, &id, truncating(&out2), &err, &[]);
    let status = exits_within(&mut second, RUN_LIMIT);
    let err = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(
        err,
        format!(
            "weft: collect: the last collector died while writing 64 outcomes to {}, which is \
             gone; they are printed again\n",
            out1.display()
        )
    );
    lines.extend(lines_of(&out2));
    each_job_once(&lines, 200);
}

#[test]
fn collector_stopped_by_sigint_commits_its_last_batch_and_exits_130() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    common::mkfifo(&gate);
    // Job 21 waits at the gate: the collector has printed jobs 1-20 and waits for more.
    let line = format!(
        "if [ {{}} = 21 ]; then cat {} >/dev/null; fi; echo job {{}}",
        gate.display()
    );
    let n = inputs(21);
    let id = submit(&redis, &with_inputs(&[&line], &n));
    let _w = Worker::start(&redis, &["-j", "2", "--allow-commands"]);
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut c = collect_to(&redis, &id, truncating(&out), &err, &[]);
    let printed = wait_until(SETTLE, || lines_of(&out).len() == 20);
    assert!(printed, "the collector did not print jobs 1-20");
    signal(c.id(), "INT");
    let status = exits_within(&mut c, RUN_LIMIT);
    let said = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.code(), Some(130), "{status:?} {said}");
    assert_eq!(redis.run_field(&id, "collected").as_deref(), Some("20"));
    assert_eq!(redis.run_field(&id, "pending"), None);
    // Opened for writing: job 21 goes on.
    std::fs::write(&gate, b"go\n").unwrap();
    let mut again = collect_to(&redis, &id, appending(&out), &err, &[]);
    let status = exits_within(&mut again, RUN_LIMIT);
    assert_eq!(status.code(), Some(0));
    each_job_once(&lines_of(&out), 21);
}
