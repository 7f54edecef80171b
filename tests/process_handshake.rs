//! How a process worker (or the CLI's watchdog) is launched and proves who launched it: temp
//! directories that cannot hold a socket, socket names that never outlive a handshake, a
//! program that forgot `weft::init`, and marker variables set from outside.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{SETTLE, Scratch, alive, exits_within, pool, wait_until, weft, weft_bin, within};
use weft::Backend;

const LIMIT: Duration = Duration::from_secs(60);

/// Everything under `dir`, recursively.
fn entries_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(entries_under(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn a_bad_tmpdir_is_one_clear_error_before_any_job_runs() {
    let dir = Scratch::new("bad-tmpdir");
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let marker = dir.join("ran");
    for tmpdir in [
        "/nonexistent".to_string(),
        file.display().to_string(),
        "/proc".to_string(),
        "relative/tmp".to_string(),
    ] {
        let out = weft()
            .env("TMPDIR", &tmpdir)
            .current_dir(dir.path())
            .args(["--backend", "process", "--task", "sum", ":::", "0..10"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "TMPDIR={tmpdir}: {err}");
        assert!(out.stdout.is_empty(), "TMPDIR={tmpdir}: no job ran");
        assert!(!err.contains("panicked"), "TMPDIR={tmpdir}: {err}");
        assert_eq!(
            err.lines().count(),
            1,
            "TMPDIR={tmpdir}: one message: {err}"
        );
        assert!(
            err.starts_with(&format!("weft: temp directory {tmpdir} (TMPDIR) "))
                && err.contains("set TMPDIR to the absolute path of a writable directory"),
            "TMPDIR={tmpdir}: {err}"
        );
        // Commands on process workers too.
        let out = weft()
            .env("TMPDIR", &tmpdir)
            .current_dir(dir.path())
            .args(["--backend", "process", "touch", marker.to_str().unwrap()])
            .args([":::", "x"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "TMPDIR={tmpdir}: {out:?}");
        assert!(!marker.exists(), "TMPDIR={tmpdir}: the job did not run");
    }
}

#[test]
fn a_tmpdir_too_long_for_a_socket_still_runs_process_workers_and_keeps_outputs_there() {
    let dir = Scratch::new("long-tmpdir");
    let long = dir.join("x".repeat(120));
    std::fs::create_dir(&long).unwrap();
    assert!(long.as_os_str().len() > 108);
    let out = weft()
        .env("TMPDIR", &long)
        .args([
            "--backend",
            "process",
            "-k",
            "--task",
            "sum",
            ":::",
            "0..10",
            "10..20",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "45\n145\n");
    // The run's directory for captured outputs is made in TMPDIR, however long.
    let out = weft()
        .env("TMPDIR", &long)
        .args([
            "--backend",
            "process",
            "-k",
            "ls -d \"$TMPDIR\"/weft-* # {}",
        ])
        .args([":::", "x"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let spill = String::from_utf8_lossy(&out.stdout);
    assert!(
        spill.starts_with(&format!("{}/weft-", long.display())),
        "{spill}"
    );
    assert_eq!(entries_under(&long), Vec::<PathBuf>::new(), "nothing left");
}

#[test]
fn no_socket_directory_outlives_a_worker_that_dies_before_its_handshake() {
    within(LIMIT, || {
        let dir = Scratch::new("early-death");
        let (script, fds) = worker_script(&dir, "exit 1");
        let err = pool(Backend::Process, 1)
            .program(&script)
            .build()
            .map(drop)
            .unwrap_err();
        assert!(err.to_string().contains("died during handshake"), "{err}");
        let socket = PathBuf::from(inherited_socket(&fds));
        assert!(!socket.parent().unwrap().exists(), "{socket:?}'s directory");
    });
}

/// A worker program that writes where each of its descriptors leads, then never says hello.
fn silent_worker(dir: &Scratch) -> (PathBuf, PathBuf) {
    worker_script(dir, "exec sleep 60")
}

/// A worker program that writes where each of its descriptors leads, then runs `then`.
fn worker_script(dir: &Scratch, then: &str) -> (PathBuf, PathBuf) {
    let fds = dir.join("fds");
    let script = dir.join("silent-worker");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor f in /proc/$$/fd/*; do readlink \"$f\"; done > {0}.part\nmv {0}.part {0}\n{then}\n",
            fds.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, fds)
}

/// The socket the worker inherited, by the name its descriptor shows.
fn inherited_socket(fds: &Path) -> String {
    let links = std::fs::read_to_string(fds).unwrap();
    links
        .lines()
        .find(|l| l.ends_with("/socket (deleted)"))
        .unwrap_or_else(|| panic!("no socket among the worker's descriptors: {links}"))
        .trim_end_matches(" (deleted)")
        .to_string()
}

#[test]
fn a_starting_worker_finds_no_socket_name_and_none_is_left_after_a_start_timeout() {
    within(LIMIT, || {
        let dir = Scratch::new("silent");
        let (script, fds) = silent_worker(&dir);
        let builder = pool(Backend::Process, 1)
            .program(&script)
            .start_timeout(Duration::from_secs(3));
        let build = std::thread::spawn(move || builder.build().map(drop));
        assert!(
            wait_until(Duration::from_secs(20), || fds.exists()),
            "the worker started"
        );
        // While the worker is starting, neither the socket nor its directory has a name: a
        // coordinator killed now (even by SIGKILL) leaves nothing behind.
        let socket = PathBuf::from(inherited_socket(&fds));
        assert!(!socket.exists(), "{} exists", socket.display());
        assert!(!socket.parent().unwrap().exists(), "{socket:?}'s directory");
        let err = build.join().unwrap().unwrap_err();
        assert!(
            err.to_string().contains("did not finish its handshake"),
            "{err}"
        );
        assert!(!socket.parent().unwrap().exists(), "{socket:?}'s directory");
    });
}

/// The `forgot_init` example: a program whose `weft::init` is not the first line of `main`.
fn forgot_init_bin() -> PathBuf {
    common::example_bin("forgot_init")
}

/// How a run of the `forgot_init` example went: its exit, its stderr, its pid, and the pids of
/// every process of it that ran.
struct ForgotInit {
    status: std::process::ExitStatus,
    stderr: String,
    pid: u32,
    pids: Vec<u32>,
}

/// Runs the `forgot_init` example with `args` and `envs` until it exits (a hang fails).
fn run_forgot_init(args: &[&str], envs: &[(&str, &str)]) -> ForgotInit {
    let dir = Scratch::new("forgot-init");
    let log = dir.join("pids");
    let mut child = Command::new(forgot_init_bin())
        .args(args)
        .envs(envs.iter().copied())
        .env("FORGOT_INIT_LOG", &log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = exits_within(&mut child, LIMIT);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    ForgotInit {
        status,
        stderr,
        pid: child.id(),
        pids: common::pids_in(&log),
    }
}

#[test]
fn a_worker_whose_program_started_a_thread_before_init_refuses_to_serve_and_says_why() {
    let run = run_forgot_init(&[], &[("THREAD_FIRST", "1")]);
    let (status, err) = (run.status, &run.stderr);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("already runs 2 threads when it calls weft::init")
            && err.contains("`weft::init(&registry)` must be the first line of `main`"),
        "{err}"
    );
    assert!((2..=3).contains(&run.pids.len()), "{:?}", run.pids);
}

#[test]
fn a_program_that_forgets_init_fails_at_once_instead_of_relaunching_itself() {
    for how in ["pool", "spawn"] {
        let run = run_forgot_init(&[how], &[]);
        let (status, err, pid) = (run.status, &run.stderr, run.pid);
        assert_eq!(status.code(), Some(1), "{how}: {err}");
        // The program itself reports what its copy ran into, not a timeout or a death.
        let own = err
            .lines()
            .find(|l| l.starts_with(&format!("forgot_init (pid {pid}): ")))
            .unwrap_or_else(|| panic!("{how}: no message of the program itself: {err}"));
        assert!(
            own.contains("worker 1 could not start")
                && own.contains("`weft::init(&registry)` must be the first line of `main`"),
            "{how}: {own}"
        );
        // The program and at most one copy per worker (2 in the pool, 1 spawned) ever ran.
        let pids = run.pids;
        assert!(
            (2..=3).contains(&pids.len()),
            "{how}: {} processes ran: {pids:?}",
            pids.len()
        );
        assert!(
            wait_until(SETTLE, || pids.iter().all(|&p| !alive(p))),
            "{how}: every copy is gone"
        );
    }
}

#[test]
fn weft_watchdog_set_from_outside_deletes_kills_and_runs_nothing() {
    within(LIMIT, || {
        let dir = Scratch::new("watchdog-attack");
        let victim = dir.join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("precious"), "keep me").unwrap();
        // A process group and a run mark that a forged watchdog would be told to kill.
        let mut bystander = Command::new("sleep")
            .arg("60")
            .env("WEFT_RUN", "victim-mark")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = bystander.id();
        let token = "0123456789abcdef0123456789abcdef";
        for (value, stdin) in [
            ("999999".to_string(), String::new()),
            (format!("{}", std::process::id()), format!("+{pgid}\n")),
            // Stdin that is data, not the coordinator's: the token is not on it.
            (format!("1:{token}"), format!("+{pgid}\nwrong\n")),
            (format!("1:{token}"), format!("{token}x\n+{pgid}\n")),
        ] {
            let mut child = Command::new(weft_bin())
                .env("WEFT_WATCHDOG", &value)
                .env("WEFT_SPILL_DIR", &victim)
                .env("WEFT_RUN", "victim-mark")
                .args(["echo", "hi", ":::", "1"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut input = child.stdin.take().unwrap();
            let _ = input.write_all(stdin.as_bytes());
            drop(input);
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(255), "{value}: {err}");
            assert!(
                err.contains("WEFT_WATCHDOG") && err.contains("not set by a weft coordinator"),
                "{value}: {err}"
            );
            assert!(out.stdout.is_empty(), "{value}: ran nothing");
            assert_eq!(
                std::fs::read_to_string(victim.join("precious"))
                    .ok()
                    .as_deref(),
                Some("keep me"),
                "{value}: the directory survives"
            );
            assert!(
                bystander.try_wait().unwrap().is_none(),
                "{value}: the named process group survives"
            );
        }
        let _ = bystander.kill();
        let _ = bystander.wait();
    });
}

#[test]
fn forged_weft_worker_values_are_a_clear_error_never_a_silent_exit() {
    let parent = std::process::id();
    for value in [
        "1:1:/x".to_string(),
        String::new(),
        "1".to_string(),
        format!("1:{parent}:3:4"),
        format!("1:{parent}:0:1"),
        format!("1:{parent}:4:4"),
        format!("x:{parent}:3:4"),
    ] {
        let out = weft()
            .env("WEFT_WORKER", &value)
            .args(["echo", "hi", ":::", "1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{value:?}: {err}");
        assert!(
            err.starts_with(&format!(
                "weft: WEFT_WORKER={value:?} was not set by a weft coordinator ("
            )),
            "{value:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{value:?}: ran nothing");
    }
}

#[test]
fn a_job_cannot_read_the_token_of_the_worker_that_runs_it() {
    within(LIMIT, || {
        // A job's parent is its worker: the worker's initial environment (which stays readable
        // in /proc/PID/environ) and its descriptors are where a job could look for the token.
        let mut pool = pool(Backend::Process, 1)
            .registry(weft::tasks::registry())
            .build()
            .unwrap();
        let outcome = pool.map([weft::tasks::Sum::new(0..10)]).next().unwrap();
        let worker = outcome.pid;
        assert_eq!(outcome.ok(), Some(45));
        let environ = std::fs::read(format!("/proc/{worker}/environ")).unwrap();
        let marker = environ
            .split(|&b| b == 0)
            .find_map(|v| v.strip_prefix(b"WEFT_WORKER="))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .expect("the worker was launched with the marker");
        let fields: Vec<&str> = marker.split(':').collect();
        assert_eq!(fields.len(), 4, "{marker}");
        assert!(
            fields.iter().all(|f| f.parse::<u32>().is_ok()),
            "numbers only, no token: {marker}"
        );
        // The token's pipe was read and closed before the worker said hello: an idle worker
        // holds no pipe but those it inherited from this process (cargo's jobserver, say, or
        // this process's stdout, which a worker keeps above stderr for its commands).
        let pipes = |pid: &str, above: u32| -> Vec<(u32, String)> {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .flatten()
                .filter_map(|e| {
                    let fd = e.file_name().to_str()?.parse().ok()?;
                    let target = std::fs::read_link(e.path()).ok()?;
                    let target = target.to_string_lossy().into_owned();
                    (fd > above && target.starts_with("pipe:")).then_some((fd, target))
                })
                .collect()
        };
        let ours: Vec<String> = pipes("self", 0).into_iter().map(|(_, t)| t).collect();
        for (fd, pipe) in pipes(&worker.to_string(), 2) {
            assert!(
                ours.contains(&pipe),
                "descriptor {fd} of the worker is {pipe}"
            );
        }
    });
}
