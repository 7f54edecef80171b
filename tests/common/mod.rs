//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use weft::{Backend, Pool, PoolBuilder};

/// Makes a FIFO at `path`: a gate a job waits on until the test opens it.
pub fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// The built `weft` binary: the worker program of every process pool in the tests.
pub fn weft_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_weft"))
}

/// A pool builder for `backend` whose process workers are the real `weft` binary.
pub fn pool(backend: Backend, workers: usize) -> PoolBuilder {
    Pool::builder()
        .backend(backend)
        .workers(workers)
        .program(weft_bin())
        .start_timeout(Duration::from_secs(20))
}

/// Pids of the live children of `parent`, read from /proc.
pub fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, state)) = stat(pid)
            && ppid == parent
            && state != 'Z'
        {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` is blocked in a sleep (a task's `thread::sleep`), not waiting for work.
pub fn in_sleep(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.contains("nanosleep"))
}

/// Whether `pid` names a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, state)| state != 'Z' && state != 'X')
}

fn stat(pid: u32) -> Option<(u32, char)> {
    stat_fields(pid).map(|(ppid, state, _)| (ppid, state))
}

/// A process's parent, state and process group, from /proc/PID/stat.
fn stat_fields(pid: u32) -> Option<(u32, char, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((ppid, state, pgrp))
}

/// Pids of the live processes of the process group `pgid` (a command job and whatever it
/// started, unless something left the group).
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&pid| {
            stat_fields(pid).is_some_and(|(_, state, pgrp)| pgrp == pgid && state != 'Z')
        })
        .collect()
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `f` on a thread and fails the test if it takes longer than `limit` (a hang).
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the code under test panicked (see above)")
        }
        Err(_) => panic!("timed out after {limit:?}: the code under test hangs"),
    }
}

/// Both backends, for tests that must hold on each.
pub const BACKENDS: [Backend; 2] = [Backend::Thread, Backend::Process];

/// How long a test waits for something that happens on its own (processes gone after a kill,
/// a run's exit, a file removed): a guard against a hang, not a measure of speed, so long that
/// a loaded machine never reaches it. Promises of speed ("within a second") are measured in
/// `benches/`, not asserted here.
pub const SETTLE: Duration = Duration::from_secs(30);

/// The `weft` binary as an `assert_cmd` command, bounded by a generous timeout so that a hang
/// fails the test instead of blocking it. A run that needs another bound sets it with
/// `.timeout(d)`.
pub fn weft() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(weft_bin());
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// `weft --backend NAME`: the `weft` command of [`weft()`] with its jobs on `backend`.
pub fn weft_on(backend: Backend) -> assert_cmd::Command {
    let mut cmd = weft();
    cmd.args(["--backend", backend.name()]);
    cmd
}

/// The rows of `weft tasks`, split into words: a task's name, then its backend.
pub fn task_table() -> Vec<Vec<String>> {
    let out = weft()
        .arg("tasks")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    lines(&out)
        .iter()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// A fresh directory for one test's files (pid files, markers, joblogs), removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates `$TMPDIR/weft-test-PID-N-name`.
    pub fn new(name: &str) -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("weft-test-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }

    /// The path as a string, for command lines.
    pub fn str(&self) -> &str {
        self.0.to_str().expect("scratch paths are UTF-8")
    }

    /// The names of the files in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every number written in `path` (a file, or each file of a directory): the pids jobs
/// recorded with `echo $$` or `echo $!`.
pub fn pids_in(path: &Path) -> Vec<u32> {
    let files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The pids of `pids` that are still alive.
pub fn survivors(pids: &[u32]) -> Vec<u32> {
    pids.iter().copied().filter(|&p| alive(p)).collect()
}

/// Sends `signal` (a name such as `INT`) to `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -s {signal} {pid}");
}

/// Sends `signal` to every process of the process group `pgid`, as a terminal's Ctrl-C does.
pub fn signal_group(pgid: u32, signal: &str) {
    let ok = Command::new("sh")
        .args(["-c", "kill -s \"$0\" -- \"-$1\"", signal, &pgid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -s {signal} -- -{pgid}");
}

/// The rows of a `--joblog` file below its header, split at TABs.
pub fn joblog_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"),
        "joblog header"
    );
    lines
        .map(|l| l.splitn(9, '\t').map(str::to_string).collect::<Vec<_>>())
        .inspect(|r| assert_eq!(r.len(), 9, "a joblog row has 9 columns: {r:?}"))
        .collect()
}

/// The row of job `seq` in a `--joblog` file (panics if there is none).
pub fn joblog_row(path: &Path, seq: u64) -> Vec<String> {
    let seq = seq.to_string();
    joblog_rows(path)
        .into_iter()
        .find(|r| r[0] == seq)
        .unwrap_or_else(|| panic!("no joblog row for job {seq}"))
}

/// The Seq column of a joblog, sorted.
pub fn joblog_seqs(path: &Path) -> Vec<u64> {
    let mut seqs: Vec<u64> = joblog_rows(path)
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    seqs.sort_unstable();
    seqs
}

/// Waits for `child` to exit for at most `limit`; kills it and fails the test if it does not.
pub fn exits_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let mut status = None;
    let exited = wait_until(limit, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("weft did not exit within {limit:?}");
    }
    status.unwrap()
}

/// Spawns `cmd` with `input` written to its stdin, which is then closed. The input is written
/// before this returns, while nothing reads the child's output yet: keep it small.
pub fn spawn_with_input(cmd: &mut Command, input: impl AsRef<[u8]>) -> Child {
    let mut child = cmd.stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_ref()).unwrap();
    child
}

/// Whether `running`, the sign that `child`'s jobs are under way (their pid files, say), holds
/// within 30 seconds. If it does not, `child` is killed, so that the failing test leaves no run
/// behind.
pub fn jobs_running(child: &mut Child, running: impl FnMut() -> bool) -> bool {
    let started = wait_until(Duration::from_secs(30), running);
    if !started {
        let _ = child.kill();
        let _ = child.wait();
    }
    started
}

/// Waits for `child` as [`exits_within`] does, then reads what it left in its piped stdout and
/// stderr: `(status, stdout, stderr)`.
pub fn output_within(child: &mut Child, limit: Duration) -> (ExitStatus, String, String) {
    fn read_all(mut pipe: impl Read) -> String {
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text
    }
    let status = exits_within(child, limit);
    let stdout = read_all(child.stdout.take().expect("stdout piped"));
    let stderr = read_all(child.stderr.take().expect("stderr piped"));
    (status, stdout, stderr)
}

/// Fails the test, naming `context` and the survivors, unless every process of `pids` is gone
/// within `limit`.
pub fn assert_no_survivors(pids: &[u32], limit: Duration, context: impl std::fmt::Display) {
    assert!(
        wait_until(limit, || survivors(pids).is_empty()),
        "{context}: survivors {:?} of {pids:?}",
        survivors(pids)
    );
}

/// `n` bytes that cover every byte value in no simple pattern, different for each `seed`.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The lines of `bytes` as strings (panics on invalid UTF-8).
pub fn lines(bytes: &[u8]) -> Vec<String> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `items` one a line: input records for weft's stdin.
pub fn records<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items.into_iter().map(|i| format!("{i}\n")).collect()
}

/// The numbers in `bytes`, one a line, sorted (panics on any other line).
pub fn sorted_numbers(bytes: &[u8]) -> Vec<u64> {
    let mut numbers: Vec<u64> = lines(bytes)
        .iter()
        .map(|l| l.parse().unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    numbers.sort_unstable();
    numbers
}

/// The objects of `--jsonl` output (or of a task printing JSON), one a line (panics on a line
/// that is not JSON).
pub fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    lines(bytes)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A file in `dir` that passes weft's check of `PARALLEL_SHELL` before a run (an executable
/// file) but that no job can exec (no program format): every job fails to spawn.
pub fn unrunnable_shell(dir: &Scratch) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let shell = dir.join("not-a-shell");
    std::fs::write(&shell, b"\x7fnot a program").unwrap();
    std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o755)).unwrap();
    shell
}

/// The binary of example `name`, built if `cargo test` has not built it (as it does for every
/// example; `cargo test --test FILE` does not).
pub fn example_bin(name: &str) -> PathBuf {
    // target/<profile>/deps/this-test -> target/<profile>/examples/NAME
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().unwrap().parent().unwrap();
    let bin = profile.join("examples").join(name);
    if !bin.exists() {
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "--example", name]);
        if profile.ends_with("release") {
            cargo.arg("--release");
        }
        assert!(
            cargo.status().unwrap().success(),
            "building the example {name}"
        );
    }
    bin
}
